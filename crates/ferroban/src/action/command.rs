//! [`CommandAction`]: one `action.d` shell action of a jail, with fail2ban's start/ban/unban/
//! flush/stop bookkeeping per address family.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ferroban_config::omap::OrderedMap;
use ferroban_config::{ActionDef, ActionKind};

use super::exec;
use super::info::{BanInfo, TicketTime, validate_address_text};
use super::tags::{
    ShellCommand, conditional, is_conditional_key, replace_dynamic, replace_static,
    resolve_properties,
};
use super::{ActionError, CommandFailure, LogSink, Severity};
use crate::clock::{Clock, SystemClock};
use crate::ip::HostId;

/// fail2ban's default command timeout (seconds).
const DEFAULT_TIMEOUT: f64 = 60.0;
/// fail2ban's default jail ban time, used for `<bantime>` in start/stop commands until set.
const DEFAULT_BANTIME: i64 = 600;

/// The operations of an action (each is an `action*` command).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `actionstart`.
    Start,
    /// `actionstop`.
    Stop,
    /// `actionflush`.
    Flush,
    /// `actioncheck`.
    Check,
    /// `actionrepair`.
    Repair,
    /// `actionban`.
    Ban,
    /// `actionreban`.
    Reban,
    /// `actionprolong`.
    Prolong,
    /// `actionunban`.
    Unban,
    /// `actionreload`.
    Reload,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 10] = [
        Operation::Start,
        Operation::Stop,
        Operation::Flush,
        Operation::Check,
        Operation::Repair,
        Operation::Ban,
        Operation::Reban,
        Operation::Prolong,
        Operation::Unban,
        Operation::Reload,
    ];

    /// The option holding the command (`actionban`).
    pub fn option(self) -> &'static str {
        match self {
            Operation::Start => "actionstart",
            Operation::Stop => "actionstop",
            Operation::Flush => "actionflush",
            Operation::Check => "actioncheck",
            Operation::Repair => "actionrepair",
            Operation::Ban => "actionban",
            Operation::Reban => "actionreban",
            Operation::Prolong => "actionprolong",
            Operation::Unban => "actionunban",
            Operation::Reload => "actionreload",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Operation::Start => "starting",
            Operation::Stop => "stopping",
            Operation::Flush => "flushing",
            Operation::Check => "checking",
            Operation::Repair => "repairing",
            Operation::Ban => "banning",
            Operation::Reban => "rebanning",
            Operation::Prolong => "prolonging",
            Operation::Unban => "unbanning",
            Operation::Reload => "reloading",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.verb())
    }
}

/// A family key of the start bookkeeping, as fail2ban keys it: `None` for raw ids (no family),
/// `Some("")` for an action without conditional options, `Some("inet4")`, `Some("inet6")`.
type Fam = Option<String>;

/// `started` flags: bit 0 started, bit 1 holds bans.
const STARTED: u8 = 1;
const HAS_BANS: u8 = 2;

/// What to do after each family's command of a multi-family operation.
#[derive(Clone, Copy)]
enum After {
    Nothing,
    Started,
    Stopped,
    Flushed,
}

/// Whether a failed check may be repaired (fail2ban's `beforeRepair`).
enum Gate<'a> {
    Always,
    /// Unban: repair only with `actionrepair_on_unban`.
    Unban,
    Custom(&'a mut (dyn FnMut() -> bool + Send)),
}

/// One shell action of a jail.
pub struct CommandAction {
    jail: String,
    name: String,
    props: OrderedMap<String>,
    timeout: Duration,
    timeout_text: String,
    start_on_demand: bool,
    norestored: bool,
    repair_on_unban: bool,
    has_cond: bool,
    families_param: Option<Vec<String>>,
    ipv6_allowed: bool,
    started: Vec<(Fam, u8)>,
    executed: HashMap<Operation, Vec<(Fam, String)>>,
    resolved: HashMap<String, OrderedMap<String>>,
    rendered: OnceLock<Vec<String>>,
    ban_epoch: u64,
    jail_bantime: i64,
    clock: Arc<dyn Clock>,
    log: LogSink,
}

impl fmt::Debug for CommandAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandAction")
            .field("jail", &self.jail)
            .field("name", &self.name)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

fn bool_text(b: bool) -> String {
    if b { "True" } else { "False" }.to_string()
}

/// Splits a `families` value at commas, spaces and newlines.
fn split_words(s: &str) -> Vec<String> {
    s.split([' ', ',', '\n'])
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// True when the host has an IPv6 address (fail2ban's `allowipv6 = auto`).
fn host_has_ipv6() -> bool {
    std::fs::read_to_string("/proc/net/if_inet6").is_ok_and(|s| !s.trim().is_empty())
}

impl CommandAction {
    /// The action `def` of jail `jail`. Python actions are refused.
    pub fn new(def: &ActionDef, jail: &str) -> Result<Self, ActionError> {
        if let ActionKind::Python { path } = &def.kind {
            return Err(ActionError::PythonAction {
                instead: super::python_action_replacement(path)
                    .unwrap_or("use a shell action from action.d/*.conf")
                    .to_string(),
                jail: jail.to_string(),
                action: def.name.clone(),
                path: path.clone(),
            });
        }
        let timeout_secs = def.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if !(timeout_secs.is_finite() && timeout_secs >= 0.0) {
            return Err(ActionError::Definition {
                jail: jail.to_string(),
                action: def.name.clone(),
                message: format!("invalid timeout {timeout_secs}"),
            });
        }
        let timeout_text =
            super::pyfmt::seconds(timeout_secs, def.timeout.and(def.param("timeout")));
        let mut entries: Vec<(String, String)> = def
            .params
            .iter()
            .filter(|(k, _)| k != "bantime" && k != "timeout")
            .cloned()
            .collect();
        let commands = [
            ("actionban", &def.actionban),
            ("actioncheck", &def.actioncheck),
            ("actionflush", &def.actionflush),
            ("actionreban", &def.actionreban),
            ("actionreload", &def.actionreload),
            ("actionrepair", &def.actionrepair),
            ("actionstart", &def.actionstart),
            ("actionstop", &def.actionstop),
            ("actionunban", &def.actionunban),
        ];
        for (k, v) in commands {
            entries.push((k.to_string(), v.clone().unwrap_or_default()));
        }
        if let Some(p) = &def.actionprolong {
            entries.push(("actionprolong".into(), p.clone()));
        }
        for (k, v) in [
            ("actionstart_on_demand", def.actionstart_on_demand),
            ("actionrepair_on_unban", def.actionrepair_on_unban),
            ("norestored", def.norestored),
        ] {
            if let Some(v) = v {
                entries.push((k.to_string(), bool_text(v)));
            }
        }
        entries.push(("timeout".into(), timeout_text.clone()));
        entries.push(("banEpoch".into(), "0".into()));
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let props: OrderedMap<String> = entries.into_iter().collect();
        let has_cond = props.keys().any(|k| is_conditional_key(k));
        let families_param = def.param("families").map(split_words);
        if let Some(f) = &families_param
            && let Some(bad) = f.iter().find(|w| {
                !w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            })
        {
            return Err(ActionError::Definition {
                jail: jail.to_string(),
                action: def.name.clone(),
                message: format!("families: {bad:?} is not a family name"),
            });
        }
        Ok(CommandAction {
            jail: jail.to_string(),
            name: def.name.clone(),
            props,
            timeout: Duration::from_secs_f64(timeout_secs),
            timeout_text,
            start_on_demand: def.actionstart_on_demand.unwrap_or(has_cond),
            norestored: def.norestored.unwrap_or(false),
            repair_on_unban: def.actionrepair_on_unban.unwrap_or(false),
            has_cond,
            families_param,
            ipv6_allowed: host_has_ipv6(),
            started: Vec::new(),
            executed: HashMap::new(),
            resolved: HashMap::new(),
            rendered: OnceLock::new(),
            ban_epoch: 0,
            jail_bantime: DEFAULT_BANTIME,
            clock: Arc::new(SystemClock),
            log: LogSink::none(),
        })
    }

    /// Sends log records to `sink`.
    pub fn with_log(mut self, sink: LogSink) -> Self {
        self.log = sink;
        self
    }

    /// Uses `clock` for `<time>` of start/stop/flush commands.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The jail's ban time (seconds; `<bantime>` of start/stop/flush commands).
    pub fn set_jail_bantime(&mut self, secs: i64) {
        self.jail_bantime = secs;
    }

    /// Whether IPv6 is allowed (fail2ban's `allowipv6`; detected from the host by default):
    /// with conditional options, `actionstart` on a raw id starts `inet6` too only when allowed.
    pub fn set_ipv6_allowed(&mut self, allowed: bool) {
        self.ipv6_allowed = allowed;
    }

    /// The action's name in its jail (`actname`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The jail.
    pub fn jail(&self) -> &str {
        &self.jail
    }

    /// `norestored`: bans of restored tickets are skipped.
    pub fn norestored(&self) -> bool {
        self.norestored
    }

    /// `actionstart` runs on the first ban of each family rather than at [`CommandAction::start`].
    pub fn starts_on_demand(&self) -> bool {
        self.start_on_demand
    }

    /// The action has a non-empty `actionflush` (otherwise flushing means unbanning each ticket).
    pub fn has_flush(&self) -> bool {
        !self.raw(Operation::Flush).is_empty()
    }

    /// The action has an `actionprolong` that is not blank.
    pub fn is_prolongable(&self) -> bool {
        !self.raw(Operation::Prolong).trim().is_empty()
    }

    /// Incremented whenever a failed check led to a repair (tickets banned before must be
    /// re-banned).
    pub fn ban_epoch(&self) -> u64 {
        self.ban_epoch
    }

    /// The timeout of each command.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// True when some command of the action refers to run-time tag `tag` (`ipmatches`,
    /// `ipjailmatches`, `ip-host`, `F-USER`, ...), so the caller knows whether to provide it.
    pub fn uses_tag(&self, tag: &str) -> bool {
        let needle = format!("<{tag}>");
        self.rendered
            .get_or_init(|| {
                let mut all = Vec::new();
                for cond in ["", "family=inet4", "family=inet6"] {
                    let Ok(resolved) = resolve_properties(&self.props, cond) else {
                        continue;
                    };
                    for op in Operation::ALL {
                        if let Ok(c) = replace_static(&format!("<{}>", op.option()), &resolved) {
                            all.push(c);
                        }
                    }
                }
                all
            })
            .iter()
            .any(|c| c.contains(&needle))
    }

    /// The raw (unsubstituted) command of `op`.
    fn raw(&self, op: Operation) -> &str {
        self.props.get(op.option()).map_or("", String::as_str)
    }

    fn failure(&self, op: Operation, command: ShellCommand, o: exec::Output) -> ActionError {
        ActionError::Command(Box::new(CommandFailure {
            jail: self.jail.clone(),
            action: self.name.clone(),
            operation: op,
            command,
            exit: o.exit,
            stdout: o.stdout,
            stderr: o.stderr,
        }))
    }

    fn tags_error(&self, op: Operation, message: String) -> ActionError {
        ActionError::Tags {
            jail: self.jail.clone(),
            action: self.name.clone(),
            operation: op,
            message,
        }
    }

    fn log(&self, level: Severity, message: &str) {
        self.log.emit(level, "fail2ban.actions", message);
    }

    /// The families `actionstart` covers when no family is given.
    fn families(&self) -> Vec<Fam> {
        if let Some(f) = &self.families_param
            && !f.is_empty()
        {
            return f.iter().cloned().map(Some).collect();
        }
        if self.has_cond {
            let mut v = vec![Some("inet4".to_string())];
            if self.ipv6_allowed {
                v.push(Some("inet6".to_string()));
            }
            v
        } else {
            vec![Some(String::new())]
        }
    }

    fn started_get(&self, fam: &Fam) -> u8 {
        self.started
            .iter()
            .find(|(f, _)| f == fam)
            .map_or(0, |(_, v)| *v)
    }

    fn started_set(&mut self, fam: &Fam, v: u8) {
        match self.started.iter_mut().find(|(f, _)| f == fam) {
            Some(slot) => slot.1 = v,
            None => self.started.push((fam.clone(), v)),
        }
    }

    /// Records (non-empty `cmd`) or forgets (empty) the command last run for `fam`; forgetting
    /// also forgets other families that ran the same command.
    fn set_executed(&mut self, op: Operation, fam: &Fam, cmd: &str) {
        let list = self.executed.entry(op).or_default();
        if !cmd.is_empty() {
            match list.iter_mut().find(|(f, _)| f == fam) {
                Some(slot) => slot.1 = cmd.to_string(),
                None => list.push((fam.clone(), cmd.to_string())),
            }
        } else if let Some(pos) = list.iter().position(|(f, _)| f == fam) {
            let (_, old) = list.remove(pos);
            list.retain(|(_, c)| *c != old);
        }
    }

    fn executed_by_others(&self, op: Operation, fam: &Fam, cmd: &str) -> bool {
        self.executed
            .get(&op)
            .is_some_and(|l| l.iter().any(|(f, c)| f != fam && c == cmd))
    }

    fn resolved(&mut self, cond: &str) -> Result<&OrderedMap<String>, String> {
        if !self.resolved.contains_key(cond) {
            let r = resolve_properties(&self.props, cond)?;
            self.resolved.insert(cond.to_string(), r);
        }
        Ok(&self.resolved[cond])
    }

    /// `op`'s command with static tags substituted for `fam` (conditional values, `<family>`).
    fn static_command(&mut self, op: Operation, fam: &Fam) -> Result<String, ActionError> {
        if self.props.get(op.option()).is_none() {
            return Ok(String::new());
        }
        let cond = conditional(fam.as_deref());
        let query = format!("<{}>", op.option());
        let cmd = self
            .resolved(&cond)
            .and_then(|r| replace_static(&query, r))
            .map_err(|m| self.tags_error(op, m))?;
        Ok(cmd)
    }

    /// An operation's command for family `fam`: static tags, then `<family>` (and `<F-*>` tags
    /// emptied), as fail2ban prepares start/stop/flush/check commands.
    fn operation_command(&mut self, op: Operation, fam: &Fam) -> Result<String, ActionError> {
        let cmd = self.static_command(op, fam)?;
        match fam.as_deref() {
            Some(f) if !f.is_empty() && cmd.contains('<') => {
                let c = replace_dynamic(&cmd, |t| (t == "family").then(|| f.to_string()), |_| None);
                if !c.args.is_empty() {
                    return Err(self.tags_error(op, format!("family {f:?} is not a plain word")));
                }
                Ok(c.script)
            }
            _ => Ok(cmd),
        }
    }

    /// The ban information of start/stop/flush/reload commands (an empty ticket at the current
    /// time with the jail's ban time).
    fn operation_info(&self) -> BanInfo {
        let mut info = BanInfo::new(HostId::raw(""), TicketTime::Float(self.clock.now()));
        info.bantime = self.jail_bantime;
        info
    }

    /// The command `op` would run for family `family` (`None` for a raw id, `Some("")` without
    /// family) in a start/stop/flush/reload/check/repair operation, at the current time.
    pub fn render_operation(
        &mut self,
        op: Operation,
        family: Option<&str>,
    ) -> Result<ShellCommand, ActionError> {
        let fam: Fam = family.map(str::to_string);
        let cmd = self.operation_command(op, &fam)?;
        let info = self.operation_info();
        Ok(replace_dynamic(
            &cmd,
            |t| info.value(t, fam.as_deref()),
            |k| info.field(k),
        ))
    }

    /// The command `op` (ban, reban, prolong, unban) would run for `info`, without looking up
    /// `<ip-host>` (the value of [`BanInfo::ip_host`] or `None` is used).
    pub fn render(&mut self, op: Operation, info: &BanInfo) -> Result<ShellCommand, ActionError> {
        let fam: Fam = info.family().map(str::to_string);
        if let Err(message) = validate_address_text(info.address()) {
            return Err(ActionError::InvalidId {
                jail: self.jail.clone(),
                action: self.name.clone(),
                operation: op,
                message,
            });
        }
        let cmd = self.static_command(op, &fam)?;
        Ok(replace_dynamic(
            &cmd,
            |t| info.value(t, fam.as_deref()),
            |k| info.field(k),
        ))
    }

    /// Runs a prepared command; an empty command succeeds without running anything.
    async fn run(&self, op: Operation, cmd: ShellCommand) -> Result<(), ActionError> {
        if cmd.is_empty() {
            return Ok(());
        }
        let out = exec::run(&cmd, self.timeout, &self.timeout_text, &self.log).await;
        if out.exit.success() {
            Ok(())
        } else {
            Err(self.failure(op, cmd, out))
        }
    }

    /// Runs `op` for each family in `families` (every started family when `None`), skipping a
    /// family whose command was already run for another family.
    async fn execute_operation(
        &mut self,
        op: Operation,
        families: Option<Vec<Fam>>,
        after: After,
    ) -> Result<(), ActionError> {
        let families = match families {
            Some(f) if !f.is_empty() => f,
            _ => self
                .started
                .iter()
                .filter(|(_, v)| *v != 0)
                .map(|(f, _)| f.clone())
                .collect(),
        };
        let mut first_error = None;
        for fam in families {
            let cmd = match self.operation_command(op, &fam) {
                Ok(c) => c,
                Err(e) => {
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            let mut ok = true;
            if !cmd.is_empty() && !self.executed_by_others(op, &fam, &cmd) {
                let info = self.operation_info();
                let real =
                    replace_dynamic(&cmd, |t| info.value(t, fam.as_deref()), |k| info.field(k));
                if let Err(e) = self.run(op, real).await {
                    ok = false;
                    first_error.get_or_insert(e);
                }
            }
            match after {
                After::Started if ok => {
                    self.set_executed(Operation::Stop, &fam, "");
                    self.started_set(&fam, STARTED);
                }
                After::Stopped if ok => self.set_executed(Operation::Start, &fam, ""),
                After::Flushed if ok => {
                    let v = self.started_get(&fam);
                    if v != 0 {
                        self.started_set(&fam, v & !HAS_BANS);
                    }
                }
                _ => {}
            }
            self.set_executed(op, &fam, if ok { &cmd } else { "" });
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Cleans up what an unclean stop (the daemon killed, the machine kept running) left in the
    /// firewall, so that the next start does not add its rules a second time: for each family
    /// of the action whose `actioncheck` succeeds before anything was started, runs `actionstop`.
    /// Checks run silently (a failing check is the normal case). Returns the families cleaned
    /// (`""` for an action without families). fail2ban 1.0.2 has no such step and duplicates
    /// its rules after `kill -9` and restart.
    pub async fn clean_stale(&mut self) -> Vec<String> {
        let mut cleaned = Vec::new();
        if self.raw(Operation::Check).is_empty() || self.raw(Operation::Stop).is_empty() {
            return cleaned;
        }
        let quiet = LogSink::none();
        for fam in self.families() {
            let Ok(check) = self.render_operation(Operation::Check, fam.as_deref()) else {
                continue;
            };
            if check.is_empty() {
                continue;
            }
            let out = exec::run(&check, self.timeout, &self.timeout_text, &quiet).await;
            if !out.exit.success() {
                continue;
            }
            if let Ok(stop) = self.render_operation(Operation::Stop, fam.as_deref())
                && !stop.is_empty()
            {
                let _ = exec::run(&stop, self.timeout, &self.timeout_text, &self.log).await;
                cleaned.push(fam.unwrap_or_default());
            }
        }
        cleaned
    }

    /// Runs `actionstart` (fail2ban's `start`): for each family of the action, unless the action
    /// starts on demand (then the first ban of a family starts it).
    pub async fn start(&mut self) -> Result<(), ActionError> {
        self.start_family(None, false).await
    }

    /// `family`: `None` for every family of the action.
    async fn start_family(&mut self, family: Fam, force: bool) -> Result<(), ActionError> {
        if self.start_on_demand {
            if !force {
                return Ok(());
            }
        } else if !force && self.started_get(&family) != 0 {
            return Ok(());
        }
        let families = match family {
            Some(f) => vec![Some(f)],
            None => self.families(),
        };
        self.execute_operation(Operation::Start, Some(families), After::Started)
            .await
    }

    /// Runs `actionstop` once for each started family (nothing when none was started).
    pub async fn stop(&mut self) -> Result<(), ActionError> {
        self.stop_family(None).await
    }

    /// `family`: `None` for every started family.
    async fn stop_family(&mut self, family: Fam) -> Result<(), ActionError> {
        let families = match family {
            None => {
                let f: Vec<Fam> = self
                    .started
                    .iter()
                    .filter(|(_, v)| *v != 0)
                    .map(|(f, _)| f.clone())
                    .collect();
                if f.is_empty() {
                    return Ok(());
                }
                self.started.clear();
                f
            }
            Some(f) => {
                let fam = Some(f);
                if !self.started.iter().any(|(x, _)| *x == fam) {
                    return Ok(());
                }
                self.started_set(&fam, 0);
                vec![fam]
            }
        };
        self.execute_operation(Operation::Stop, Some(families), After::Stopped)
            .await
    }

    /// Runs `actionflush` for each family that holds bans; `Ok` without running anything when
    /// none does. Callers flush only when [`CommandAction::has_flush`] (else they unban each
    /// ticket).
    pub async fn flush(&mut self) -> Result<(), ActionError> {
        let families: Vec<Fam> = self
            .started
            .iter()
            .filter(|(_, v)| v & (STARTED | HAS_BANS) == STARTED | HAS_BANS)
            .map(|(f, _)| f.clone())
            .collect();
        if families.is_empty() {
            return Ok(());
        }
        self.execute_operation(Operation::Flush, Some(families), After::Flushed)
            .await
    }

    /// Takes over the run-time state of `old`, the same action before a `reload` changed its
    /// definition (fail2ban keeps the action object and only replaces its parameters): the
    /// families it started, the commands it ran, its ban epoch. Run [`reload`](Self::reload)
    /// next.
    pub fn take_state_of(&mut self, old: CommandAction) {
        self.started = old.started;
        self.executed = old.executed;
        self.ban_epoch = old.ban_epoch;
    }

    /// Runs `actionreload` for each started family.
    pub async fn reload(&mut self) -> Result<(), ActionError> {
        self.execute_operation(Operation::Reload, None, After::Nothing)
            .await
    }

    /// Bans `info`: starts the family first when starting on demand, runs `actionban` (after a
    /// failure: `actioncheck`, repair, and one retry). `Ok(false)`: skipped, the ticket is
    /// restored and the action is `norestored`.
    pub async fn ban(&mut self, info: &BanInfo) -> Result<bool, ActionError> {
        if info.restored && self.norestored {
            return Ok(false);
        }
        self.ban_with(info, Operation::Ban).await?;
        Ok(true)
    }

    /// Re-bans `info` with `actionreban`, or `actionban` when there is none (after a repair, or
    /// for tickets of an older ban epoch).
    pub async fn reban(&mut self, info: &BanInfo) -> Result<(), ActionError> {
        let op = if self.raw(Operation::Reban).is_empty() {
            Operation::Ban
        } else {
            Operation::Reban
        };
        self.ban_with(info, op).await
    }

    async fn ban_with(&mut self, info: &BanInfo, op: Operation) -> Result<(), ActionError> {
        let fam: Fam = info.family().map(str::to_string);
        if self.start_on_demand && self.started_get(&fam) == 0 {
            self.start_family(fam.clone(), true).await?;
        }
        self.process(op, info).await?;
        let v = self.started_get(&fam);
        self.started_set(&fam, v | STARTED | HAS_BANS);
        Ok(())
    }

    /// Runs `actionprolong` for `info` (a ban time increase). `Ok(false)`: skipped (no
    /// `actionprolong`, or a restored ticket with `norestored`).
    pub async fn prolong(&mut self, info: &BanInfo) -> Result<bool, ActionError> {
        if (info.restored && self.norestored) || !self.is_prolongable() {
            return Ok(false);
        }
        self.process(Operation::Prolong, info).await?;
        Ok(true)
    }

    /// Unbans `info` with `actionunban`. `Ok(false)`: nothing to do, the family holds no bans
    /// (never started, or flushed).
    pub async fn unban(&mut self, info: &BanInfo) -> Result<bool, ActionError> {
        let fam: Fam = info.family().map(str::to_string);
        if self.started_get(&fam) & HAS_BANS == 0 {
            return Ok(false);
        }
        self.process(Operation::Unban, info).await?;
        Ok(true)
    }

    /// Runs `actioncheck` for each started family, repairing a broken one (`actionrepair`, or
    /// stop + start). `Ok(false)`: some family could not be restored (it is marked not
    /// started).
    pub async fn check(&mut self) -> Result<bool, ActionError> {
        self.consistency_check(None).await
    }

    /// [`CommandAction::check`] where `before_repair` decides, when a check fails, whether to
    /// repair (`false`: leave it broken, e.g. when stopping).
    pub async fn consistency_check(
        &mut self,
        before_repair: Option<&mut (dyn FnMut() -> bool + Send)>,
    ) -> Result<bool, ActionError> {
        if self.raw(Operation::Check).is_empty() {
            return Ok(true);
        }
        let mut gate = match before_repair {
            Some(f) => Gate::Custom(f),
            None => Gate::Always,
        };
        let mut ret = true;
        for (fam, v) in self.started.clone() {
            if v != 0 && self.invariant_check(&fam, &mut gate, true).await? == 0 {
                self.started_set(&fam, 0);
                self.set_executed(Operation::Start, &fam, "");
                ret = false;
            }
        }
        Ok(ret)
    }

    /// Checks (and repairs) family `fam`: 1 sane (or restored), 0 broken, -1 broken and repair
    /// declined.
    async fn invariant_check(
        &mut self,
        fam: &Fam,
        gate: &mut Gate<'_>,
        force_start: bool,
    ) -> Result<i8, ActionError> {
        if !force_start && fam.is_some() && !self.started.iter().any(|(f, _)| f == fam) {
            return Ok(1);
        }
        let check = self.operation_command(Operation::Check, fam)?;
        if check.is_empty()
            || self
                .run(Operation::Check, ShellCommand::plain(check.clone()))
                .await
                .is_ok()
        {
            return Ok(1);
        }
        let repair_allowed = match gate {
            Gate::Always => true,
            Gate::Unban => {
                if !self.repair_on_unban {
                    self.log(
                        Severity::Error,
                        "Invariant check failed. Unban is impossible.",
                    );
                }
                self.repair_on_unban
            }
            Gate::Custom(f) => f(),
        };
        if !repair_allowed {
            return Ok(-1);
        }
        self.log(
            Severity::Error,
            "Invariant check failed. Trying to restore a sane environment",
        );
        self.ban_epoch += 1;
        let repair = self.operation_command(Operation::Repair, fam)?;
        if !repair.is_empty() {
            if self
                .run(Operation::Repair, ShellCommand::plain(repair))
                .await
                .is_err()
            {
                self.started_set(fam, 0);
                self.log(Severity::Critical, "Unable to restore environment");
                return Ok(0);
            }
            self.started_set(fam, STARTED);
        } else {
            // No repair command: restart the family (a failed stop does not matter).
            let _ = self.stop_family(fam.clone()).await;
            let force = force_start || !self.start_on_demand;
            self.start_family(fam.clone(), force).await?;
        }
        if self.started_get(fam) != 0
            && self
                .run(Operation::Check, ShellCommand::plain(check))
                .await
                .is_err()
        {
            self.log(Severity::Critical, "Unable to restore environment");
            return Ok(0);
        }
        Ok(1)
    }

    /// Runs a ticket command (`ban`, `reban`, `prolong`, `unban`), checking and repairing after
    /// a failure and retrying once.
    async fn process(&mut self, op: Operation, info: &BanInfo) -> Result<(), ActionError> {
        let fam: Fam = info.family().map(str::to_string);
        let looked_up;
        let info = if info.ip_host.is_none() && self.static_command(op, &fam)?.contains("<ip-host>")
        {
            looked_up = with_host(info).await;
            &looked_up
        } else {
            info
        };
        let mut last_error: Option<ActionError> = None;
        for attempt in 0..2 {
            if attempt > 0 && !self.raw(Operation::Check).is_empty() {
                let mut gate = if op == Operation::Unban {
                    Gate::Unban
                } else {
                    Gate::Always
                };
                let sane = self
                    .invariant_check(&fam, &mut gate, op != Operation::Unban)
                    .await?;
                if sane != 1 {
                    break;
                }
            }
            let cmd = self.render(op, info)?;
            match self.run(op, cmd).await {
                Ok(()) => return Ok(()),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("a failed attempt left its error"))
    }
}

/// `info` with `<ip-host>` looked up (reverse DNS of the address, `None` when it has none) unless
/// given.
async fn with_host(info: &BanInfo) -> BanInfo {
    let mut info = info.clone();
    if info.ip_host.is_none() {
        let host = match info.address() {
            HostId::Addr(a) => {
                let a = *a;
                tokio::task::spawn_blocking(move || super::info::reverse_lookup(a))
                    .await
                    .ok()
                    .flatten()
            }
            _ => None,
        };
        info.ip_host = Some(host.unwrap_or_else(|| "None".to_string()));
    }
    info
}
