//! The per-jail action task: runs the jail's actions for each ban and unban, in order, as
//! fail2ban's per-jail action thread does. Errors are logged; they never stop the jail.
//!
//! Two kinds of action: fail2ban's shell actions ([`CommandAction`], one command per ban), and
//! ferroban's native firewall actions ([`Firewall`]: `ferroban-nftables`, `ferroban-iptables`,
//! `ferroban-ufw`, recognised by the `ferroban_native` option of their action file). Bans that
//! are queued together (the bans restored at start, a burst of bans) reach a native action as one
//! batch, i.e. one firewall transaction; at start the native action is reconciled with the
//! restored bans (missing elements added with their remaining time, stale ones removed) in one
//! transaction.

use std::sync::Arc;

use ferroban_config::{ActionDef, JailDef};
use tokio::sync::{mpsc, oneshot};

use super::jail::Ticket;
use super::log::{self, Level};
use crate::action::{BanInfo, CommandAction, LogSink, TicketTime};
use crate::clock::Clock;
use crate::firewall::{Firewall, JailRule, Runner};
use crate::flog;
use crate::ip::HostId;

/// A ban for the actions, with the id's matches from the store when a command wants them.
#[derive(Debug)]
pub struct BanJob {
    /// The ban.
    pub ticket: Ticket,
    /// `<ipmatches>`.
    pub ipmatches: Option<Vec<String>>,
    /// `<ipjailmatches>`.
    pub ipjailmatches: Option<Vec<String>>,
    /// A local ban's fleet publication, reported once the ban's actions ran (`None`: restored
    /// and remote bans, or nothing published).
    pub fleet: Option<super::fleet::Publication>,
}

/// Work for the action task.
#[derive(Debug)]
pub enum Job {
    /// `actionstart` (each action, unless it starts on demand).
    Start,
    /// The bans restored from the store at start (native actions: one reconciliation); sent
    /// once after [`Job::Start`], even when empty. Logs that the jail started.
    Restore(Vec<BanJob>),
    /// `actionban`.
    Ban(Box<BanJob>),
    /// A ban in force was lengthened: native actions write the element's new remaining time
    /// (the kernel's timeout would end it early), shell actions run `actionprolong` if they
    /// have one.
    /// (The job's `fleet`: the lengthening's publication, reported once the actions ran.)
    Prolong(Box<BanJob>),
    /// `actionunban`.
    Unban(Box<Ticket>),
    /// Reload in place: `actions` is the jail's new list of actions, in order. Kept actions run
    /// nothing; running actions not kept (removed, or their definition changed) take `tickets`
    /// out of the firewall (`actionflush` or `actionunban` each) and stop; new actions start
    /// and get every ban in `tickets`. Then `done` is signalled.
    Reload {
        /// The new list.
        actions: Vec<ReloadAction>,
        /// The bans in force.
        tickets: Vec<Ticket>,
        /// The jail's `bantime` (seconds), for the kept shell actions' `<bantime>`.
        bantime: f64,
        /// Signalled when finished.
        done: oneshot::Sender<()>,
    },
    /// Jail stop: remove `tickets` from the firewall (`actionflush`, or `actionunban` each), then
    /// `actionstop`; then report on `done` and end.
    Stop {
        /// The bans in force.
        tickets: Vec<Ticket>,
        /// Signalled when finished.
        done: oneshot::Sender<()>,
    },
}

/// One entry of a reloaded jail's list of actions.
pub enum ReloadAction {
    /// The running action of this name stays as it is (its definition did not change).
    Keep(String),
    /// A new action: started, then given the bans in force.
    New(Box<JailAction>),
    /// A running action of the same name whose definition changed. A shell action keeps running
    /// with the new definition and runs `actionreload` (fail2ban 1.0.2: the bans stay, no
    /// start or stop runs); a native one leaves the firewall and starts again.
    Changed(Box<JailAction>),
}

impl std::fmt::Debug for ReloadAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReloadAction::Keep(n) => write!(f, "Keep({n})"),
            ReloadAction::New(a) => write!(f, "New({})", a.name()),
            ReloadAction::Changed(a) => write!(f, "Changed({})", a.name()),
        }
    }
}

/// One action of a jail.
pub enum JailAction {
    /// A fail2ban shell action.
    Shell(CommandAction),
    /// A native firewall action.
    Native {
        /// Its name in the jail (`actname`).
        name: String,
        /// The backend.
        fw: Firewall,
    },
}

impl JailAction {
    /// The action's name in the jail.
    pub fn name(&self) -> &str {
        match self {
            JailAction::Shell(a) => a.name(),
            JailAction::Native { name, .. } => name,
        }
    }

    /// Whether the action substitutes `tag` (native actions use none).
    pub fn uses_tag(&self, tag: &str) -> bool {
        match self {
            JailAction::Shell(a) => a.uses_tag(tag),
            JailAction::Native { .. } => false,
        }
    }
}

fn native_of(def: &ActionDef, jail: &str) -> Result<Option<JailAction>, String> {
    let Some(kind) = def.param("ferroban_native") else {
        return Ok(None);
    };
    let p = |k: &str, d: &'static str| def.param(k).map(str::trim).unwrap_or(d).to_string();
    let rule = JailRule::new(
        jail,
        &p("type", "multiport"),
        &p("port", "0:65535"),
        &p("protocol", "tcp"),
        &p("blocktype", "reject"),
    )
    .map_err(|e| format!("jail '{jail}' action '{}': {e}", def.name))?;
    let banaction = format!("ferroban-{}", kind.trim());
    let fw = Firewall::for_banaction(&banaction, rule, Runner::new()).ok_or_else(|| {
        format!(
            "jail '{jail}' action '{}': unknown native action {kind:?} (ferroban_native)",
            def.name
        )
    })?;
    Ok(Some(JailAction::Native {
        name: def.name.clone(),
        fw,
    }))
}

/// Builds the jail's actions. A Python action or an unusable definition fails the jail.
pub fn build(def: &JailDef) -> Result<Vec<JailAction>, String> {
    let sink = LogSink::new(|sev, logger, msg| {
        let module = logger.strip_prefix("fail2ban.").unwrap_or(logger);
        let level: Level = sev;
        if log::enabled(level) {
            log::log(level, module, msg);
        }
    });
    let bantime = def.bantime.unwrap_or(super::jail::DEFAULT_BANTIME);
    def.actions
        .iter()
        .map(|a| {
            if let Some(native) = native_of(a, &def.name)? {
                return Ok(native);
            }
            let mut act = CommandAction::new(a, &def.name)
                .map_err(|e| e.to_string())?
                .with_log(sink.clone());
            act.set_jail_bantime(bantime as i64);
            Ok(JailAction::Shell(act))
        })
        .collect()
}

/// Whether any action substitutes `tag` (so the daemon fetches the value only then).
pub fn uses_tag(actions: &[JailAction], tag: &str) -> bool {
    actions.iter().any(|a| a.uses_tag(tag))
}

fn info_of(t: &Ticket) -> BanInfo {
    let mut info = BanInfo::new(t.id.clone(), TicketTime::Float(t.time));
    info.failures = u64::from(t.failures);
    info.bantime = if t.bantime < 0.0 {
        -1
    } else {
        t.bantime.round() as i64
    };
    info.ticket_bantime = Some(info.bantime);
    info.bancount = t.ban_count.saturating_sub(1);
    info.matches = t.matches.clone();
    info.restored = t.restored;
    info.fields = t.fields.clone();
    info
}

/// A ban as a firewall element: the id and its remaining time at `now` (`None`: permanent).
fn element(t: &Ticket, now: f64) -> (HostId, Option<f64>) {
    let remaining = (t.bantime >= 0.0).then_some(t.time + t.bantime - now);
    (t.id.clone(), remaining)
}

/// Accounts for one action command on `id`: its duration and outcome go to the metrics under
/// `op`, and a failure is logged in fail2ban's words.
fn account(
    hook: &crate::metrics::JailHook,
    jail: &str,
    action: &str,
    op: &str,
    started: std::time::Instant,
    r: &Result<(), String>,
    id: &HostId,
) {
    hook.m
        .action(jail, action, op, started.elapsed(), r.is_ok());
    if let Err(e) = r {
        flog!(
            Error,
            "actions",
            "Failed to execute {op} jail '{jail}' action '{action}' info '{id}': {e}"
        );
    }
}

/// Tells every action that the ban of `t` now ends later: a native action whose elements carry
/// timeouts writes the element again with its new remaining time (each backend's `ban` sets the
/// time of an element that is there already; ufw's rules have none: nothing runs), a shell
/// action runs its `actionprolong` (none: nothing runs, as in fail2ban).
async fn prolong(
    jail: &str,
    actions: &mut [JailAction],
    t: &Ticket,
    now: f64,
    hook: &crate::metrics::JailHook,
) {
    for a in actions.iter_mut() {
        let t0 = std::time::Instant::now();
        let r = match a {
            // ufw rules carry no time: nothing to lengthen, no command to run.
            JailAction::Native { fw, .. } if !fw.keeps_timeouts() => Ok(false),
            JailAction::Native { fw, .. } => fw
                .ban(&[element(t, now)])
                .await
                .map(|_| true)
                .map_err(|e| e.to_string()),
            JailAction::Shell(a) => a.prolong(&info_of(t)).await.map_err(|e| e.to_string()),
        };
        // Nothing ran (no actionprolong, no timeouts): nothing to account for.
        if !matches!(r, Ok(false)) {
            account(hook, jail, a.name(), "prolong", t0, &r.map(|_| ()), &t.id);
        }
    }
}

/// Runs every action for `bans`. Once the last action ran for a ban (a shell action: that
/// ban's command; a native one: the batch's transaction), successfully or not, the fleet may
/// publish it ([`super::fleet::enforced`]; restored and remote bans have nothing to publish).
async fn ban_all(
    jail: &str,
    actions: &mut [JailAction],
    bans: &[BanJob],
    now: f64,
    hook: &crate::metrics::JailHook,
) {
    let last = actions.len().saturating_sub(1);
    for (k, a) in actions.iter_mut().enumerate() {
        let t0 = std::time::Instant::now();
        let report = k == last;
        match a {
            JailAction::Native { name, fw } => {
                let batch: Vec<(HostId, Option<f64>)> =
                    bans.iter().map(|b| element(&b.ticket, now)).collect();
                let r = fw.ban(&batch).await;
                hook.m.action(jail, name, "ban", t0.elapsed(), r.is_ok());
                if r.is_ok() {
                    hook.m.add_elements(jail, name, batch.len() as i64);
                }
                if let Err(e) = r {
                    flog!(
                        Error,
                        "actions",
                        "Failed to execute ban jail '{jail}' action '{name}' ({} ids): {e}",
                        batch.len()
                    );
                }
                if report {
                    super::fleet::enforced(jail, bans);
                }
            }
            JailAction::Shell(a) => shell_ban(jail, a, bans, hook, report).await,
        }
    }
    if actions.is_empty() {
        super::fleet::enforced(jail, bans);
    }
    for b in bans {
        hook.j.ban_confirmed(&b.ticket.id.to_string());
    }
}

/// Runs shell action `a` for each of `bans`; `report`: it is the jail's last action, each
/// ban is enforced once its command ran (see [`ban_all`]).
async fn shell_ban(
    jail: &str,
    a: &mut CommandAction,
    bans: &[BanJob],
    hook: &crate::metrics::JailHook,
    report: bool,
) {
    for b in bans {
        let mut info = info_of(&b.ticket);
        info.ipmatches = b.ipmatches.clone();
        info.ipjailmatches = b.ipjailmatches.clone();
        let t0 = std::time::Instant::now();
        let r = a.ban(&info).await.map(|_| ()).map_err(|e| e.to_string());
        account(hook, jail, a.name(), "ban", t0, &r, &b.ticket.id);
        if report {
            super::fleet::enforced(jail, std::slice::from_ref(b));
        }
    }
}

/// Runs the jobs of jail `jail` until [`Job::Stop`] (or until the queue closes).
pub async fn worker(
    jail: String,
    mut actions: Vec<JailAction>,
    mut rx: mpsc::UnboundedReceiver<Job>,
    clock: Arc<dyn Clock>,
    hook: crate::metrics::JailHook,
) {
    let mut pending: Option<Job> = None;
    loop {
        let job = match pending.take() {
            Some(j) => j,
            None => match rx.recv().await {
                Some(j) => j,
                None => return,
            },
        };
        match job {
            Job::Start => start(&jail, &mut actions, &hook).await,
            Job::Restore(bans) => {
                let now = clock.now();
                for a in actions.iter_mut() {
                    match a {
                        JailAction::Native { name, fw } => {
                            let desired: Vec<(HostId, Option<f64>)> =
                                bans.iter().map(|b| element(&b.ticket, now)).collect();
                            let t0 = std::time::Instant::now();
                            let r = fw.reconcile(&desired).await;
                            hook.m
                                .action(&jail, name, "restore", t0.elapsed(), r.is_ok());
                            if r.is_ok() {
                                hook.m.set_elements(&jail, name, desired.len() as i64);
                            }
                            match r {
                                Ok(r) => flog!(
                                    Info,
                                    "actions",
                                    "[{jail}] {name}: {} restored bans reconciled in one transaction ({} added, {} updated, {} removed, {} unchanged)",
                                    desired.len(),
                                    r.added,
                                    r.updated,
                                    r.removed,
                                    r.unchanged
                                ),
                                Err(e) => flog!(
                                    Error,
                                    "actions",
                                    "Failed to restore bans of jail '{jail}' action '{name}': {e}"
                                ),
                            }
                        }
                        JailAction::Shell(a) => shell_ban(&jail, a, &bans, &hook, false).await,
                    }
                }
                // The daemon sends this job once, right after Start: the jail is up.
                flog!(Info, "jail", "Jail '{jail}' started");
                super::lean::jail_started();
                // Its stored bans are enforced again: the fleet publishes what a crash left
                // unpublished.
                super::fleet::restored(&jail);
            }
            Job::Ban(first) => {
                // Take every ban already queued behind it: one batch, one transaction.
                let mut batch = vec![*first];
                while let Ok(next) = rx.try_recv() {
                    match next {
                        Job::Ban(b) => batch.push(*b),
                        other => {
                            pending = Some(other);
                            break;
                        }
                    }
                }
                ban_all(&jail, &mut actions, &batch, clock.now(), &hook).await;
            }
            Job::Prolong(b) => {
                prolong(&jail, &mut actions, &b.ticket, clock.now(), &hook).await;
                // Enforced here: the fleet may publish the later end.
                super::fleet::enforced(&jail, std::slice::from_ref(&b));
            }
            Job::Unban(t) => {
                for a in actions.iter_mut() {
                    let t0 = std::time::Instant::now();
                    let r = match a {
                        JailAction::Native { fw, .. } => fw
                            .unban(std::slice::from_ref(&t.id))
                            .await
                            .map_err(|e| e.to_string()),
                        JailAction::Shell(a) => a
                            .unban(&info_of(&t))
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string()),
                    };
                    account(&hook, &jail, a.name(), "unban", t0, &r, &t.id);
                    if r.is_ok() && matches!(a, JailAction::Native { .. }) {
                        hook.m.add_elements(&jail, a.name(), -1);
                    }
                }
            }
            Job::Reload {
                actions: wanted,
                tickets,
                bantime,
                done,
            } => {
                let mut old = std::mem::take(&mut actions);
                let mut added = Vec::new();
                for w in wanted {
                    match w {
                        ReloadAction::Keep(name) => {
                            if let Some(i) = old.iter().position(|a| a.name() == name) {
                                let mut a = old.remove(i);
                                if let JailAction::Shell(s) = &mut a {
                                    s.set_jail_bantime(bantime as i64);
                                }
                                actions.push(a);
                            }
                        }
                        ReloadAction::New(a) => {
                            added.push(actions.len());
                            actions.push(*a);
                        }
                        ReloadAction::Changed(a) => {
                            let i = old.iter().position(|o| o.name() == a.name());
                            match (*a, i) {
                                (JailAction::Shell(mut new), Some(i))
                                    if matches!(old[i], JailAction::Shell(_)) =>
                                {
                                    let JailAction::Shell(prev) = old.remove(i) else {
                                        unreachable!("matched above");
                                    };
                                    new.take_state_of(prev);
                                    new.set_jail_bantime(bantime as i64);
                                    if let Err(e) = new.reload().await {
                                        flog!(
                                            Error,
                                            "actions",
                                            "[{jail}] Failed to execute reload of action '{}': {e}",
                                            new.name()
                                        );
                                    }
                                    actions.push(JailAction::Shell(new));
                                }
                                // Native, or a change of kind: the old one stops (below), the
                                // new one starts and gets the bans.
                                (a, _) => {
                                    added.push(actions.len());
                                    actions.push(a);
                                }
                            }
                        }
                    }
                }
                // What is no longer wanted leaves the firewall first.
                stop(&jail, &mut old, &tickets, &hook).await;
                let bans: Vec<BanJob> = tickets
                    .into_iter()
                    .map(|t| BanJob {
                        ticket: Ticket {
                            restored: true,
                            ..t
                        },
                        ipmatches: None,
                        ipjailmatches: None,
                        fleet: None,
                    })
                    .collect();
                for i in added {
                    let one = std::slice::from_mut(&mut actions[i]);
                    start(&jail, one, &hook).await;
                    if !bans.is_empty() {
                        ban_all(&jail, one, &bans, clock.now(), &hook).await;
                    }
                }
                let _ = done.send(());
            }
            Job::Stop { tickets, done } => {
                stop(&jail, &mut actions, &tickets, &hook).await;
                let _ = done.send(());
                return;
            }
        }
    }
}

async fn start(jail: &str, actions: &mut [JailAction], hook: &crate::metrics::JailHook) {
    for a in actions.iter_mut() {
        let t0 = std::time::Instant::now();
        let r = match a {
            JailAction::Native { fw, .. } => fw.start().await.map_err(|e| e.to_string()),
            JailAction::Shell(a) => {
                if !a.clean_stale().await.is_empty() {
                    flog!(
                        Warning,
                        "actions",
                        "[{jail}] action '{}' was not stopped cleanly before (found by actioncheck); stopped it before starting again",
                        a.name()
                    );
                }
                a.start().await.map_err(|e| e.to_string())
            }
        };
        hook.m
            .action(jail, a.name(), "start", t0.elapsed(), r.is_ok());
        if let Err(e) = r {
            flog!(
                Error,
                "actions",
                "Failed to start jail '{jail}' action '{}': {e}",
                a.name()
            );
        }
    }
}

async fn stop(
    jail: &str,
    actions: &mut [JailAction],
    tickets: &[Ticket],
    hook: &crate::metrics::JailHook,
) {
    for a in actions.iter_mut().rev() {
        let name = a.name().to_string();
        match a {
            // Removes the jail's sets and rules (and the table when it was the last user).
            JailAction::Native { fw, .. } => {
                let t0 = std::time::Instant::now();
                let r = fw.stop().await;
                hook.m.action(jail, &name, "stop", t0.elapsed(), r.is_ok());
                hook.m.set_elements(jail, &name, 0);
                if let Err(e) = r {
                    flog!(
                        Error,
                        "actions",
                        "Failed to stop jail '{jail}' action '{name}': {e}"
                    );
                }
            }
            JailAction::Shell(a) => {
                if a.has_flush() {
                    if let Err(e) = a.flush().await {
                        flog!(
                            Error,
                            "actions",
                            "Failed to flush jail '{jail}' action '{name}': {e}"
                        );
                    }
                } else {
                    for t in tickets {
                        if let Err(e) = a.unban(&info_of(t)).await {
                            flog!(
                                Error,
                                "actions",
                                "Failed to unban jail '{jail}' action '{name}' info '{}': {e}",
                                t.id
                            );
                        }
                    }
                }
                if let Err(e) = a.stop().await {
                    flog!(
                        Error,
                        "actions",
                        "Failed to stop jail '{jail}' action '{name}': {e}"
                    );
                }
            }
        }
    }
}
