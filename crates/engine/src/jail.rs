//! One jail's state, driven synchronously: log lines in, ban and unban orders out.
//!
//! [`Jail`] owns the filter, the failure tracker, the current bans and (with a database) the ban
//! history of `bantime.increment` ([`History`], in memory); the daemon feeds it lines and the
//! time. It does no I/O: what the ban store must write comes out as [`StoreWrite`]s
//! ([`Jail::take_writes`]), and the daemon writes them **before** it hands the [`Event::Ban`]s of
//! the same call to the actions. Nothing here sleeps or reads the clock: tests drive it with any
//! time.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use ferroban_bans::{
    AddOutcome, Ban, BanHistory, BanManager, BanTimeIncrement, BanTimePolicy, FailureTracker,
    History, HistoryChange, IncrementOptions, KnownOffender, Outcome, SplitMix64, TrackerConfig,
};
use ferroban_config::JailDef;
use ferroban_matcher::{GroupValue, UseDns};

use crate::filter::{Filter, FilterOptions};
use crate::ignore::{IgnoreCache, IgnoreList, Lookup, Verdict};
use crate::ip::HostId;
use crate::log::flog;
use crate::ttl::TtlCache;

/// fail2ban-server's defaults for options a jail does not set.
pub const DEFAULT_MAXRETRY: u32 = 3;
/// Seconds.
pub const DEFAULT_FINDTIME: f64 = 600.0;
/// Seconds.
pub const DEFAULT_BANTIME: f64 = 600.0;

/// Why a jail could not be built.
#[derive(Debug, thiserror::Error)]
pub enum JailError {
    /// The jail has no filter.
    #[error("jail '{0}' has no filter")]
    NoFilter(String),
    /// The filter's regexes or date pattern are invalid.
    #[error("jail '{jail}': filter {filter}: {error}")]
    Filter {
        /// The jail.
        jail: String,
        /// The filter name.
        filter: String,
        /// What is wrong.
        error: Box<crate::filter::FilterError>,
    },
    /// An option has an invalid value.
    #[error("jail '{jail}': {message}")]
    Option {
        /// The jail.
        jail: String,
        /// What is wrong.
        message: String,
    },
}

/// A ban as the actions see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    /// The banned id.
    pub id: HostId,
    /// Ban start (time of the last failure).
    pub time: f64,
    /// Seconds; negative is permanent.
    pub bantime: f64,
    /// Bans of this id so far, this one included.
    pub ban_count: u64,
    /// Failures that led to the ban.
    pub failures: u32,
    /// Matched lines.
    pub matches: Vec<String>,
    /// Captured `F-*` values of the last failure (`user`, `fid`, ...).
    pub fields: Vec<(String, String)>,
    /// Restored from the store at start.
    pub restored: bool,
}

/// What the actions must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Ban (`actionban`).
    Ban(Ticket),
    /// A ban in force was lengthened (a re-ban that ends later): the ticket as it stands now
    /// (its start kept, its `bantime` longer). Native actions give the element its new remaining
    /// time (the kernel would otherwise drop it at the old end); shell actions run
    /// `actionprolong` when they define one.
    Prolong(Ticket),
    /// Unban (`actionunban`).
    Unban(Ticket),
}

/// A write the ban store must make for a jail's decision, in the order made (the daemon takes
/// them with [`Jail::take_writes`] and writes them before the events of the same call reach the
/// actions).
#[derive(Debug, Clone, PartialEq)]
pub enum StoreWrite {
    /// Record a ban ([`Store::record_ban`](ferroban_bans::Store::record_ban)).
    Ban {
        /// The banned id, as stored.
        id: String,
        /// Ban start.
        banned_at: f64,
        /// Seconds; negative is permanent.
        bantime: f64,
        /// Bans of the id so far, this one included.
        ban_count: u64,
        /// Matched lines.
        matches: Vec<String>,
        /// Failures that led to the ban.
        failures: u64,
    },
    /// Remove a ban and its history (an unban by hand,
    /// [`Store::remove_ban`](ferroban_bans::Store::remove_ban)).
    Unban {
        /// The id, as stored.
        id: String,
    },
}

impl StoreWrite {
    /// The change this write makes to the ban history.
    pub fn history_change(&self) -> HistoryChange {
        match self {
            StoreWrite::Ban {
                id,
                banned_at,
                bantime,
                ban_count,
                ..
            } => HistoryChange::Ban {
                id: id.clone(),
                banned_at: *banned_at,
                bantime: *bantime,
                ban_count: *ban_count,
            },
            StoreWrite::Unban { id } => HistoryChange::Remove { id: id.clone() },
        }
    }
}

/// Counters for `status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JailCounts {
    /// Ids with failures counted now.
    pub currently_failed: usize,
    /// Failures ever counted.
    pub total_failed: u64,
    /// Ids banned now.
    pub currently_banned: usize,
    /// Bans ever made.
    pub total_banned: u64,
    /// Ids whose pending failures were evicted because the table was full (`maxfailed`).
    pub evicted_failed: u64,
}

/// What the filter made of the lines so far (for the metrics; counted per line, cheap).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineStats {
    /// Lines a failregex matched (and no ignoreregex).
    pub matched: u64,
    /// Lines an ignoreregex dropped.
    pub ignored_regex: u64,
    /// Lines or failures older than findtime.
    pub too_old: u64,
    /// Failures of an ignored address (`ignoreip`, `ignoreself`, `ignorecommand`).
    pub ignored_ip: u64,
    /// Lines a failregex matched without a date.
    pub dateless: u64,
}

impl LineStats {
    fn note(&mut self, res: &crate::filter::LineResult) {
        self.matched += u64::from(!res.failures.is_empty());
        self.ignored_regex += u64::from(!res.ignored.is_empty());
        self.too_old += u64::from(res.too_old);
        self.dateless += u64::from(res.no_date);
    }
}

/// One jail.
pub struct Jail {
    name: String,
    def: JailDef,
    filter: Filter,
    tracker: FailureTracker<HostId>,
    bans: BanManager<HostId>,
    tickets: BTreeMap<HostId, Ticket>,
    policy: BanTimePolicy,
    /// `ignoreip`, `ignoreself`, `ignorecommand`.
    pub ignore: IgnoreList,
    rng: SplitMix64,
    total_failed: u64,
    prefixes: PrefixPolicy,
    line_stats: LineStats,
    /// Evictions already logged, and when the next log line may be written (once a minute).
    evictions_logged: u64,
    next_eviction_log: f64,
    /// When fail2ban's once-a-day warnings may be written again: a match without a date, lines
    /// older than findtime skipped while catching up (its `_logWarnOnce`).
    next_no_date_warn: f64,
    next_too_old_warn: f64,
    /// Ignore look-ups (DNS, `ignorecommand`) off the engine: the failures waiting for one, by
    /// id in arrival order, which ids wait on which look-up, the look-ups asked and not answered,
    /// and those not yet handed out ([`Jail::take_lookups`]).
    waiting: HashMap<HostId, VecDeque<Parked>>,
    waiting_count: usize,
    waiters: HashMap<Lookup, Vec<HostId>>,
    asked: HashSet<Lookup>,
    lookups: Vec<Lookup>,
    /// Host names found in log lines (`usedns = yes|warn`), resolved off the engine: the
    /// addresses of each name as last resolved (fail2ban's DNS cache: 1000 names, 5 minutes,
    /// a name without address included), and the failures waiting for a name's answer, in
    /// arrival order (counted in `waiting_count`).
    dns: TtlCache<Vec<std::net::IpAddr>>,
    dns_waiting: HashMap<String, Vec<Parked>>,
    /// Failures counted since the last [`Jail::take_counted`] (id, time, weight), kept only
    /// when tapped ([`Jail::tap_failures`]: fleet shared failure counting).
    counted: Option<Vec<(HostId, f64, u32)>>,
    /// The ban history `bantime.increment` reads (`None`: no database, so no history, as
    /// before a store exists): this jail's rows, or every jail's with `bantime.overalljails`.
    history: Option<History>,
    /// Writes for the ban store not yet taken ([`Jail::take_writes`]).
    writes: Vec<StoreWrite>,
}

/// A failure waiting for a look-up.
#[derive(Debug, Clone)]
struct Parked {
    time: f64,
    matches: Vec<String>,
    fields: Vec<(String, String)>,
    weight: u32,
}

/// Failures that may wait for ignore look-ups at once, per jail (beyond: dropped, logged).
pub const MAX_WAITING_FAILURES: usize = 100_000;

/// fail2ban's cache of host names resolved for log lines (`DNSUtils.CACHE_nameToIp`): this many
/// names, each trusted for [`DNS_CACHE_TIME`] seconds.
pub const DNS_CACHE_COUNT: usize = 1000;
/// Seconds.
pub const DNS_CACHE_TIME: f64 = 300.0;

/// Subnet bans: `banprefix.ipv4` / `banprefix.ipv6` ban the covering prefix of an offending
/// address instead of the address; `banprefix.escalate = N` bans the
/// `banprefix.escalate.ipv4` (default 24) / `banprefix.escalate.ipv6` (default 64) prefix once N
/// addresses of it are banned. `ignoreip` always wins: a prefix that covers an ignored address is
/// never banned (the address alone is).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrefixPolicy {
    /// Prefix length banned for an IPv4 address (32: the address).
    pub v4: u8,
    /// Prefix length banned for an IPv6 address (128: the address).
    pub v6: u8,
    /// Banned addresses of one prefix that make the prefix banned (0: never).
    pub escalate: u32,
    /// The IPv4 prefix length of escalation.
    pub escalate_v4: u8,
    /// The IPv6 prefix length of escalation.
    pub escalate_v6: u8,
}

impl Default for PrefixPolicy {
    fn default() -> Self {
        PrefixPolicy {
            v4: 32,
            v6: 128,
            escalate: 0,
            escalate_v4: 24,
            escalate_v6: 64,
        }
    }
}

impl PrefixPolicy {
    fn of(def: &JailDef) -> Result<PrefixPolicy, JailError> {
        let mut p = PrefixPolicy::default();
        let num = |key: &str, max: u32| -> Result<Option<u32>, JailError> {
            let Some(v) = def.value(key).map(str::trim).filter(|v| !v.is_empty()) else {
                return Ok(None);
            };
            match v.parse::<u32>() {
                Ok(n) if n <= max => Ok(Some(n)),
                _ => Err(JailError::Option {
                    jail: def.name.clone(),
                    message: format!("{key} = {v:?}: expected a number from 0 to {max}"),
                }),
            }
        };
        if let Some(n) = num("banprefix.ipv4", 32)? {
            p.v4 = n as u8;
        }
        if let Some(n) = num("banprefix.ipv6", 128)? {
            p.v6 = n as u8;
        }
        if let Some(n) = num("banprefix.escalate", u32::MAX)? {
            p.escalate = n;
        }
        if let Some(n) = num("banprefix.escalate.ipv4", 32)? {
            p.escalate_v4 = n as u8;
        }
        if let Some(n) = num("banprefix.escalate.ipv6", 128)? {
            p.escalate_v6 = n as u8;
        }
        Ok(p)
    }

    /// The id to ban for `id` (its covering prefix when configured).
    pub fn ban_id(&self, id: &HostId) -> HostId {
        match id {
            HostId::Addr(a) => {
                let p = if a.is_ipv4() { self.v4 } else { self.v6 };
                HostId::with_prefix(&a.to_string(), crate::ip::Family::Any, Some(p))
            }
            other => other.clone(),
        }
    }

    /// The escalation prefix of `id`, when escalation is on and `id` is an address.
    pub fn escalation(&self, id: &HostId) -> Option<HostId> {
        if self.escalate == 0 {
            return None;
        }
        match id {
            HostId::Addr(a) => {
                let p = if a.is_ipv4() {
                    self.escalate_v4
                } else {
                    self.escalate_v6
                };
                Some(HostId::with_prefix(
                    &a.to_string(),
                    crate::ip::Family::Any,
                    Some(p),
                ))
                .filter(|n| matches!(n, HostId::Net(..)))
            }
            _ => None,
        }
    }
}

impl std::fmt::Debug for Jail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jail").field("name", &self.name).finish()
    }
}

fn group_text(v: &GroupValue) -> Option<String> {
    match v {
        GroupValue::None => None,
        GroupValue::Str(s) => Some(s.to_string()),
        GroupValue::Tuple(t) => t.iter().flatten().next().cloned(),
    }
}

/// fail2ban's `usedns` values.
pub fn parse_usedns(v: Option<&str>) -> UseDns {
    match v.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        Some("yes") => UseDns::Yes,
        Some("no") => UseDns::No,
        Some("raw") => UseDns::Raw,
        _ => UseDns::Warn,
    }
}

impl Jail {
    /// Builds the jail from its configuration.
    pub fn new(def: JailDef) -> Result<Jail, JailError> {
        let name = def.name.clone();
        let fdef = def
            .filter_def
            .clone()
            .ok_or_else(|| JailError::NoFilter(name.clone()))?;
        let findtime = def.findtime.unwrap_or(DEFAULT_FINDTIME);
        let maxretry = def.maxretry.unwrap_or(DEFAULT_MAXRETRY);
        let opts = FilterOptions {
            use_dns: parse_usedns(def.usedns.as_deref()),
            // Host names are resolved by the caller, off the engine (`Lookup::HostName`).
            defer_dns: true,
            find_time: findtime,
            check_find_time: true,
            log_timezone: def.logtimezone.clone(),
            ..FilterOptions::default()
        };
        let mut filter = Filter::new(&fdef, opts).map_err(|error| JailError::Filter {
            jail: name.clone(),
            filter: fdef.name.clone(),
            error: Box::new(error),
        })?;
        // Catching up with existing log content: lines older than findtime are dropped. Once a
        // source reached the end of its files the daemon switches to live operation.
        filter.in_operation = false;
        let max_entries = match def.value("maxfailed").map(str::trim) {
            None | Some("") => ferroban_bans::failures::DEFAULT_MAX_ENTRIES,
            Some(v) => v.parse::<usize>().map_err(|_| JailError::Option {
                jail: name.clone(),
                message: format!(
                    "maxfailed = {v:?}: expected the number of ids with pending failures to keep (0: no bound)"
                ),
            })?,
        };
        let tracker = FailureTracker::new(TrackerConfig {
            findtime,
            maxretry,
            maxmatches: def.maxmatches.unwrap_or(maxretry) as usize,
            max_entries,
            ..TrackerConfig::default()
        });
        let policy = policy_of(&def)?;
        let prefixes = PrefixPolicy::of(&def)?;
        let mut ignore = IgnoreList::new(
            &def.ignoreip,
            def.ignoreself.unwrap_or(true),
            def.ignorecommand.clone(),
        );
        if let Some(c) = def.ignorecache.as_deref().filter(|c| !c.trim().is_empty()) {
            let cache = IgnoreCache::parse(c).map_err(|message| JailError::Option {
                jail: name.clone(),
                message,
            })?;
            ignore.set_cache(Some(cache));
        }
        Ok(Jail {
            name,
            def,
            filter,
            tracker,
            bans: BanManager::new(),
            tickets: BTreeMap::new(),
            policy,
            ignore,
            rng: SplitMix64::from_entropy(),
            total_failed: 0,
            prefixes,
            line_stats: LineStats::default(),
            evictions_logged: 0,
            next_eviction_log: f64::NEG_INFINITY,
            next_no_date_warn: f64::NEG_INFINITY,
            next_too_old_warn: f64::NEG_INFINITY,
            waiting: HashMap::new(),
            waiting_count: 0,
            waiters: HashMap::new(),
            asked: HashSet::new(),
            lookups: Vec::new(),
            dns: TtlCache::new(DNS_CACHE_COUNT, DNS_CACHE_TIME),
            dns_waiting: HashMap::new(),
            counted: None,
            history: None,
            writes: Vec::new(),
        })
    }

    /// The writes for the ban store that the calls since the last one made, in order. The
    /// caller writes them before it hands the events of those calls to the actions.
    pub fn take_writes(&mut self) -> Vec<StoreWrite> {
        std::mem::take(&mut self.writes)
    }

    /// Whether writes wait for [`Jail::take_writes`].
    pub fn has_writes(&self) -> bool {
        !self.writes.is_empty()
    }

    /// The ban history this jail reads, when it reads one: `Some(true)` every jail's
    /// (`bantime.overalljails`), `Some(false)` its own; `None` without `bantime.increment`.
    pub fn history_wanted(&self) -> Option<bool> {
        self.policy.increment.as_ref().map(|i| i.overalljails())
    }

    /// The history to load for this jail ([`Jail::set_history`]): `Some(all)` when it reads one
    /// and has none of that scope yet.
    pub fn needs_history(&self) -> Option<bool> {
        let all = self.history_wanted()?;
        match &self.history {
            Some(h) if h.is_all() == all => None,
            _ => Some(all),
        }
    }

    /// Gives the jail its ban history (read from the store at its start; `None` drops it). From
    /// then on the jail keeps it current with its own bans and unbans; the changes made by other
    /// jails come through [`Jail::history_changed`], the store's purges through
    /// [`Jail::purge_history`].
    pub fn set_history(&mut self, history: Option<History>) {
        self.history = history;
    }

    /// Whether the jail holds a history of every jail's bans (`bantime.overalljails`): the one
    /// that [`Jail::history_changed`] keeps the other jails' changes in.
    pub fn keeps_all_history(&self) -> bool {
        self.history.as_ref().is_some_and(|h| h.is_all())
    }

    /// Jail `jail` (another one) changed the history: kept when this jail reads every jail's.
    pub fn history_changed(&mut self, jail: &str, changes: &[HistoryChange]) {
        if jail == self.name {
            return;
        }
        if let Some(h) = self.history.as_mut().filter(|h| h.is_all()) {
            for c in changes {
                h.apply(jail, c);
            }
        }
    }

    /// The store purged its history at `limit` with `outdated_factor`: the same rows go here
    /// ([`History::purge`]).
    pub fn purge_history(&mut self, limit: f64, outdated_factor: f64) {
        if let Some(h) = self.history.as_mut() {
            h.purge(limit, outdated_factor);
        }
    }

    /// Keeps the failures counted from now on for [`Jail::take_counted`] (`false`: stops).
    pub fn tap_failures(&mut self, on: bool) {
        if on != self.counted.is_some() {
            self.counted = on.then(Vec::new);
        }
    }

    /// The failures counted since the last call (id, time, weight), when tapped.
    pub fn take_counted(&mut self) -> Vec<(HostId, f64, u32)> {
        self.counted
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The look-ups the last calls need (each once): the caller resolves the name or runs the
    /// command off the engine, with a timeout, and answers with [`Jail::answer_resolve`],
    /// [`Jail::answer_command`] or [`Jail::answer_dns`] (a host name found in a log line).
    pub fn take_lookups(&mut self) -> Vec<Lookup> {
        std::mem::take(&mut self.lookups)
    }

    /// Failures waiting for a look-up now.
    pub fn waiting_failures(&self) -> usize {
        self.waiting_count
    }

    /// The answer to [`Lookup::Resolve`]: the failures that waited for it go on.
    pub fn answer_resolve(
        &mut self,
        name: &str,
        addrs: Vec<std::net::IpAddr>,
        now: f64,
    ) -> Vec<Event> {
        self.ignore.resolved(name, addrs, now);
        self.resume(&Lookup::Resolve(name.to_string()), now)
    }

    /// The answer to [`Lookup::HostName`]: the addresses of `name`, or why it has none (a
    /// resolver error, a timeout). Cached as fail2ban caches it (an answer without address
    /// too); the failures that waited for the name count now, once per address, as fail2ban
    /// counts them. Logs fail2ban's warnings: `Unable to find a corresponding IP address for
    /// NAME: ERROR` when there is none and an error, and with `usedns = warn` `Determined IP
    /// using DNS Lookup: NAME = {...}` for each failure counted.
    pub fn answer_dns(
        &mut self,
        name: &str,
        answer: Result<Vec<std::net::IpAddr>, String>,
        now: f64,
    ) -> Vec<Event> {
        self.asked.remove(&Lookup::HostName(name.to_string()));
        let mut addrs = match answer {
            Ok(a) => a,
            Err(e) => {
                flog!(
                    Warning,
                    "ipdns",
                    "Unable to find a corresponding IP address for {name}: {e}"
                );
                Vec::new()
            }
        };
        addrs.sort();
        addrs.dedup();
        self.dns.set(name.to_string(), addrs.clone(), now);
        let mut out = Vec::new();
        for p in self.dns_waiting.remove(name).unwrap_or_default() {
            self.waiting_count -= 1;
            out.extend(self.named_failure(name, &addrs, p, now));
        }
        out
    }

    /// Host-name failures waiting for [`Jail::answer_dns`] now.
    pub fn waiting_for_dns(&self) -> usize {
        self.dns_waiting.values().map(Vec::len).sum()
    }

    /// A failure of host `name` (not an address): counted for each address of `name` when it
    /// is known (cached), else waiting for [`Lookup::HostName`].
    fn add_named_failure(&mut self, name: String, p: Parked, now: f64) -> Vec<Event> {
        if let Some(addrs) = self.dns.get(&name, now).cloned() {
            return self.named_failure(&name, &addrs, p, now);
        }
        if self.waiting_count >= MAX_WAITING_FAILURES {
            flog!(
                Warning,
                "filter",
                "[{}] failure of {name} dropped: {} failures already wait for look-ups",
                self.name,
                self.waiting_count
            );
            return Vec::new();
        }
        self.waiting_count += 1;
        self.dns_waiting.entry(name.clone()).or_default().push(p);
        let lookup = Lookup::HostName(name);
        if self.asked.insert(lookup.clone()) {
            self.lookups.push(lookup);
        }
        Vec::new()
    }

    /// Counts failure `p` of host `name` once for each of its `addrs` (fail2ban's
    /// `textToIp`), each through the ignore rules; none when it has no address.
    fn named_failure(
        &mut self,
        name: &str,
        addrs: &[std::net::IpAddr],
        p: Parked,
        now: f64,
    ) -> Vec<Event> {
        if addrs.is_empty() {
            return Vec::new();
        }
        if self.filter.options().use_dns == UseDns::Warn {
            // fail2ban prints the Python set of addresses.
            let set: Vec<String> = addrs.iter().map(|a| format!("'{a}'")).collect();
            flog!(
                Warning,
                "ipdns",
                "Determined IP using DNS Lookup: {name} = {{{}}}",
                set.join(", ")
            );
        }
        let mut out = Vec::new();
        let last = addrs.len() - 1;
        let mut p = Some(p);
        for (i, a) in addrs.iter().enumerate() {
            let Some(q) = (if i == last { p.take() } else { p.clone() }) else {
                break;
            };
            out.extend(self.add_failure(
                HostId::Addr(*a),
                q.time,
                q.matches,
                q.fields,
                q.weight,
                now,
            ));
        }
        out
    }

    /// The answer to [`Lookup::Command`] (`true`: exit status 0, the id is ignored): the failures
    /// that waited for this run go on with it.
    pub fn answer_command(&mut self, command: &str, ignored: bool, now: f64) -> Vec<Event> {
        self.ignore.command_done(command, ignored);
        let out = self.resume(&Lookup::Command(command.to_string()), now);
        self.ignore.forget_answer(command);
        out
    }

    fn wait_on(&mut self, id: HostId, lookup: Lookup) {
        self.waiters.entry(lookup.clone()).or_default().push(id);
        if self.asked.insert(lookup.clone()) {
            self.lookups.push(lookup);
        }
    }

    fn resume(&mut self, lookup: &Lookup, now: f64) -> Vec<Event> {
        self.asked.remove(lookup);
        let ids = self.waiters.remove(lookup).unwrap_or_default();
        let mut out = Vec::new();
        for id in ids {
            let Some(mut queue) = self.waiting.remove(&id) else {
                continue;
            };
            while let Some(p) = queue.pop_front() {
                match self.ignore.verdict(&id, now, &p.fields) {
                    Verdict::Unknown(next) => {
                        queue.push_front(p);
                        self.wait_on(id.clone(), next);
                        break;
                    }
                    v => {
                        self.waiting_count -= 1;
                        out.extend(self.judged_failure(id.clone(), p, v, now));
                    }
                }
            }
            if !queue.is_empty() {
                self.waiting.insert(id, queue);
            }
        }
        out
    }

    fn judged_failure(&mut self, id: HostId, p: Parked, verdict: Verdict, now: f64) -> Vec<Event> {
        if let Verdict::Ignored(reason) = verdict {
            flog!(
                Info,
                "filter",
                "[{}] Ignore {id} by {}",
                self.name,
                reason.word()
            );
            self.line_stats.ignored_ip += 1;
            return Vec::new();
        }
        self.count_failure(id, p.time, p.matches, p.fields, p.weight, now)
    }

    /// fail2ban's `inOperation`: `false` while reading existing log content at start (lines
    /// older than `findtime` are dropped), `true` when following new lines (a line whose date is
    /// more than a minute off is taken as written now).
    pub fn set_in_operation(&mut self, live: bool) {
        self.filter.in_operation = live;
    }

    /// `bantime.maxtime` with increment, else `bantime`: the cap for bans restored from the store.
    pub fn max_bantime(&self) -> Option<f64> {
        self.policy.max_bantime()
    }

    /// The jail's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The failregexes with their tags expanded (`get <jail> failregex`).
    pub fn failregex(&self) -> Vec<String> {
        self.filter
            .failregex()
            .iter()
            .map(|r| r.expanded().to_string())
            .collect()
    }

    /// The ignoreregexes with their tags expanded.
    pub fn ignoreregex(&self) -> Vec<String> {
        self.filter
            .ignoreregex()
            .iter()
            .map(|r| r.expanded().to_string())
            .collect()
    }

    /// The prefregex with its tags expanded (`get <jail> prefregex`).
    pub fn prefregex(&self) -> Option<String> {
        self.filter.prefregex().map(|r| r.expanded().to_string())
    }

    /// Its configuration.
    pub fn def(&self) -> &JailDef {
        &self.def
    }

    /// `findtime` in seconds.
    pub fn findtime(&self) -> f64 {
        self.tracker.config().findtime
    }

    /// `maxretry`.
    pub fn maxretry(&self) -> u32 {
        self.tracker.config().maxretry
    }

    /// `bantime` in seconds.
    pub fn bantime(&self) -> f64 {
        self.policy.bantime
    }

    /// `set <jail> findtime`.
    pub fn set_findtime(&mut self, secs: f64) {
        let mut c = *self.tracker.config();
        c.findtime = secs;
        self.tracker.set_config(c);
        self.filter.set_find_time(secs);
    }

    /// `set <jail> maxretry`.
    pub fn set_maxretry(&mut self, n: u32) {
        let mut c = *self.tracker.config();
        c.maxretry = n;
        self.tracker.set_config(c);
    }

    /// `set <jail> bantime`.
    pub fn set_bantime(&mut self, secs: f64) {
        self.policy.bantime = secs;
    }

    /// Status counters.
    pub fn counts(&self) -> JailCounts {
        JailCounts {
            currently_failed: self.tracker.len(),
            total_failed: self.total_failed,
            currently_banned: self.bans.len(),
            total_banned: self.bans.total(),
            evicted_failed: self.tracker.evicted(),
        }
    }

    /// `maxfailed`: the most ids with pending failures kept (0: no bound).
    pub fn maxfailed(&self) -> usize {
        self.tracker.config().max_entries
    }

    /// The banned ids, in ban order (oldest first), with their ban (a walk of an index, no sort).
    pub fn banned(&self) -> Vec<(&HostId, &Ban)> {
        self.bans.by_start().collect()
    }

    /// The banned ids ordered by the end of their ban (soonest first, permanent last).
    pub fn banned_by_end(&self) -> Vec<(&HostId, &Ban)> {
        self.bans.by_end()
    }

    /// The ban of `id`, if banned here.
    pub fn ban_of(&self, id: &HostId) -> Option<&Ban> {
        self.bans.get(id)
    }

    /// What the filter made of the lines so far.
    pub fn line_stats(&self) -> LineStats {
        self.line_stats
    }

    /// Whether `id` is banned here.
    pub fn is_banned(&self, id: &HostId) -> bool {
        self.bans.is_banned(id)
    }

    /// When the next ban ends.
    pub fn next_deadline(&self) -> Option<f64> {
        self.bans.next_deadline()
    }

    /// Processes one log line read at `now`.
    pub fn process_line(&mut self, line: &str, now: f64) -> Vec<Event> {
        let hit = self.filter.detect_date(line, now);
        self.process_line_dated(line, hit, now)
    }

    /// The settings a line's date depends on (`datepattern`, `logtimezone`): jails with equal
    /// keys find the same date in a line ([`detect_date`](Self::detect_date)).
    pub fn date_key(&self) -> (Option<&str>, Option<&str>) {
        let pattern = ferroban_date::DateDetector::pattern_in_effect(
            self.def
                .filter_def
                .as_ref()
                .and_then(|f| f.datepattern.as_deref()),
        );
        (pattern, self.def.logtimezone.as_deref())
    }

    /// A date detector of its own with this jail's date settings ([`date_key`](Self::date_key)):
    /// it finds the dates [`detect_date`](Self::detect_date) finds (for a reader that dates the
    /// lines of jails with these settings; `None` if the settings do not build one).
    pub fn new_date_detector(&self) -> Option<ferroban_date::DateDetector> {
        let pattern = self
            .def
            .filter_def
            .as_ref()
            .and_then(|f| f.datepattern.as_deref());
        let opts = FilterOptions {
            log_timezone: self.def.logtimezone.clone(),
            ..FilterOptions::default()
        };
        Filter::date_detector_for(pattern, &opts).ok()
    }

    /// The date this jail's filter finds in `line` at `now`.
    pub fn detect_date(&mut self, line: &str, now: f64) -> Option<ferroban_date::DateHit> {
        self.filter.detect_date(line, now)
    }

    /// [`process_line`](Self::process_line) with the date found by
    /// [`detect_date`](Self::detect_date) of a jail with the same [`date_key`](Self::date_key).
    pub fn process_line_dated(
        &mut self,
        line: &str,
        hit: Option<ferroban_date::DateHit>,
        now: f64,
    ) -> Vec<Event> {
        let res = self.filter.process_line_dated(line, hit, now);
        self.line_stats.note(&res);
        self.warn_once(&res, line, now);
        self.failures(res, line, now)
    }

    /// fail2ban's once-a-day warnings about line times (`Filter._logWarnOnce`), same words: a
    /// failregex matched a line without a date (after a restart, such backlog lines are skipped:
    /// their time is unknown), or lines older than findtime were skipped while catching up.
    /// Between two warnings the same messages go to the trace level.
    fn warn_once(&mut self, res: &crate::filter::LineResult, line: &str, now: f64) {
        if res.no_date {
            let level = if now >= self.next_no_date_warn {
                self.next_no_date_warn = now + 24.0 * 3600.0;
                crate::log::Level::Warning
            } else {
                crate::log::Level::Trace
            };
            // fail2ban shows the time text the line was dated with: the last one when the line
            // was counted (within a minute of it), none when it was skipped.
            let text = if res.failures.is_empty() {
                ""
            } else {
                self.filter.last_time_text()
            };
            if crate::log::enabled(level) {
                let name = &self.name;
                for msg in [
                    format!(
                        "[{name}] Found a match but no valid date/time found for {}.",
                        py_str_repr(text)
                    ),
                    format!("[{name}] Match without a timestamp: {line}"),
                    format!(
                        "[{name}] Please try setting a custom date pattern (see man page jail.conf(5))."
                    ),
                ] {
                    crate::log::log(level, "filter", &msg);
                }
            }
        }
        if res.too_old {
            let level = if now >= self.next_too_old_warn {
                self.next_too_old_warn = now + 24.0 * 3600.0;
                crate::log::Level::Warning
            } else {
                crate::log::Level::Trace
            };
            if crate::log::enabled(level) {
                let name = &self.name;
                let ft = self.filter.options().find_time;
                let ft = if ft.fract() == 0.0 {
                    format!("{}", ft as i64)
                } else {
                    format!("{ft}")
                };
                for msg in [
                    format!(
                        "[{name}] Ignoring all log entries older than {ft}s; these are probably messages generated while fail2ban was not running."
                    ),
                    format!(
                        "[{name}] Please check a jail for a timing issue. Line with odd timestamp: {line}"
                    ),
                ] {
                    crate::log::log(level, "filter", &msg);
                }
            }
        }
    }

    /// Processes one journal entry: `message` logged at `date`, shown after `time_text`.
    pub fn process_dated(
        &mut self,
        time_text: &str,
        message: &str,
        date: f64,
        now: f64,
    ) -> Vec<Event> {
        let res = self.filter.process_dated(time_text, message, date, now);
        self.line_stats.note(&res);
        if res.failures.is_empty() {
            return Vec::new();
        }
        self.failures(res, &format!("{time_text}{message}"), now)
    }

    /// Counts the failures `res` found in `line`.
    fn failures(&mut self, res: crate::filter::LineResult, line: &str, now: f64) -> Vec<Event> {
        if res.failures.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for f in res.failures {
            if f.is_nofail() {
                continue;
            }
            if f.id.is_none() && f.host_name.is_none() {
                continue;
            }
            let time = f.time.unwrap_or(now);
            let matches: Vec<String> = f
                .data
                .matches
                .as_ref()
                .map(|m| m.iter().map(|l| l.text.to_string()).collect())
                .unwrap_or_else(|| vec![line.to_string()]);
            let fields: Vec<(String, String)> = f
                .data
                .fields
                .iter()
                .filter_map(|(k, v)| group_text(v).map(|t| (k.to_string(), t)))
                .collect();
            let weight = f.data.attempts().max(1) as u32;
            let events = match (f.id, f.host_name) {
                (Some(id), _) => self.add_failure(id, time, matches, fields, weight, now),
                (None, Some(name)) => {
                    let p = Parked {
                        time,
                        matches,
                        fields,
                        weight,
                    };
                    self.add_named_failure(name, p, now)
                }
                (None, None) => Vec::new(),
            };
            out.extend(events);
        }
        if let Some(n) = self.tracker.service(now)
            && n > 0
        {
            flog!(Debug, "filter", "[{}] {n} failure(s) expired", self.name);
        }
        self.log_evictions(now);
        out
    }

    /// Logs evictions from the full failure table, at most once a minute.
    fn log_evictions(&mut self, now: f64) {
        let evicted = self.tracker.evicted();
        if evicted == self.evictions_logged || now < self.next_eviction_log {
            return;
        }
        flog!(
            Warning,
            "filter",
            "[{}] {} id(s) with pending failures evicted (the stalest first): more than maxfailed = {} ids are failing at once; {evicted} evicted in total",
            self.name,
            evicted - self.evictions_logged,
            self.maxfailed()
        );
        self.evictions_logged = evicted;
        self.next_eviction_log = now + 60.0;
    }

    /// Counts one failure of `id` at `time`; returns the bans it leads to (the address or its
    /// prefix, and an escalation to a wider prefix).
    ///
    /// When the ignore rules need a look-up first (a host name of `ignoreip`, `ignorecommand`),
    /// the failure waits, with any later failure of the same id, until the answer comes
    /// ([`Jail::take_lookups`]); other ids go on.
    #[allow(clippy::too_many_arguments)]
    pub fn add_failure(
        &mut self,
        id: HostId,
        time: f64,
        matches: Vec<String>,
        fields: Vec<(String, String)>,
        weight: u32,
        now: f64,
    ) -> Vec<Event> {
        let p = Parked {
            time,
            matches,
            fields,
            weight,
        };
        let verdict = if self.waiting.contains_key(&id) {
            None
        } else {
            match self.ignore.verdict(&id, now, &p.fields) {
                Verdict::Unknown(lookup) => {
                    self.wait_on(id.clone(), lookup);
                    None
                }
                v => Some(v),
            }
        };
        match verdict {
            Some(v) => self.judged_failure(id, p, v, now),
            None => {
                if self.waiting_count >= MAX_WAITING_FAILURES {
                    flog!(
                        Warning,
                        "filter",
                        "[{}] failure of {id} dropped: {} failures already wait for ignore look-ups",
                        self.name,
                        self.waiting_count
                    );
                    if self.waiting.get(&id).is_none_or(|q| q.is_empty()) {
                        self.waiting.remove(&id);
                    }
                    return Vec::new();
                }
                self.waiting_count += 1;
                self.waiting.entry(id).or_default().push_back(p);
                Vec::new()
            }
        }
    }

    /// Counts a failure the ignore rules let through.
    #[allow(clippy::too_many_arguments)]
    fn count_failure(
        &mut self,
        id: HostId,
        time: f64,
        matches: Vec<String>,
        fields: Vec<(String, String)>,
        weight: u32,
        now: f64,
    ) -> Vec<Event> {
        if time < now - self.findtime() {
            self.line_stats.too_old += 1;
            flog!(
                Debug,
                "filter",
                "[{}] Ignore line since time {} < {} - {}",
                self.name,
                time,
                now,
                self.findtime()
            );
            return Vec::new();
        }
        flog!(
            Info,
            "filter",
            "[{}] Found {id} - {}",
            self.name,
            crate::log::local_time(time as i64)
        );
        self.total_failed += 1;
        if let Some(c) = self.counted.as_mut() {
            c.push((id.clone(), time, weight));
        }
        let history = self.history(&id);
        let outcome = match (&self.policy.increment, history) {
            (Some(_), Some(h)) => self.tracker.record_known(
                id.clone(),
                time,
                matches,
                Some(KnownOffender {
                    ban_count: h.count,
                    last_banned_at: h.last_banned_at,
                }),
            ),
            _ => self
                .tracker
                .record_weighted(id.clone(), time, matches, weight),
        };
        let order = match outcome {
            Outcome::Ban(o) => o,
            Outcome::Counted { .. } | Outcome::Ignored => return Vec::new(),
        };
        let (decision, err) =
            self.policy
                .decide_or_base(order.time, history.as_ref(), &mut self.rng);
        if let Some(e) = err {
            flog!(
                Error,
                "actions",
                "[{}] bantime.formula failed ({e}); banning for bantime",
                self.name
            );
        }
        let mut ban_id = self.prefixes.ban_id(&order.id);
        if ban_id != order.id && self.ignore.check(&ban_id, now).is_some() {
            flog!(
                Notice,
                "filter",
                "[{}] not banning {ban_id}: it covers an ignored address; banning {} alone",
                self.name,
                order.id
            );
            ban_id = order.id.clone();
        }
        let ticket = Ticket {
            id: ban_id,
            time: order.time,
            bantime: decision.bantime,
            ban_count: decision.ban_count,
            failures: order.failures,
            matches: order.matches,
            fields,
            restored: false,
        };
        let mut out = Vec::new();
        let escalation = self.prefixes.escalation(&ticket.id);
        let template = ticket.clone();
        out.extend(self.ban(ticket, now, !decision.already_recorded));
        if let Some(net) = escalation
            && !out.is_empty()
            && !self.bans.is_banned(&net)
        {
            // The addresses of `net` are one range of the ban index (ids order by address).
            let n = match &net {
                HostId::Net(base, plen) => {
                    let (lo, hi) = crate::ip::range_of(*base, *plen);
                    self.bans
                        .range(HostId::Addr(lo)..=HostId::Addr(hi))
                        .take(self.prefixes.escalate as usize)
                        .count()
                }
                _ => 0,
            };
            if n >= self.prefixes.escalate as usize {
                if self.ignore.check(&net, now).is_some() {
                    flog!(
                        Notice,
                        "filter",
                        "[{}] not escalating to {net}: it covers an ignored address",
                        self.name
                    );
                } else {
                    flog!(
                        Notice,
                        "actions",
                        "[{}] {n} addresses of {net} banned: banning the prefix",
                        self.name
                    );
                    let t = Ticket {
                        id: net,
                        ..template
                    };
                    out.extend(self.ban(t, now, true));
                }
            }
        }
        out
    }

    /// The ban history of `id` for `bantime.increment` (in memory, see [`Jail::set_history`]).
    fn history(&self, id: &HostId) -> Option<BanHistory> {
        let inc: &BanTimeIncrement = self.policy.increment.as_ref()?;
        self.history
            .as_ref()?
            .get(&id.to_string(), inc.scope(&self.name))
    }

    /// Bans `ticket` at `now`: records it (when `record`: in the history and as a
    /// [`StoreWrite`] for [`Jail::take_writes`]), then returns the [`Event::Ban`] for the actions.
    /// Logs like fail2ban.
    pub fn ban(&mut self, ticket: Ticket, now: f64, record: bool) -> Option<Event> {
        let ban = Ban {
            banned_at: ticket.time,
            bantime: ticket.bantime,
            ban_count: ticket.ban_count,
        };
        match self.bans.add(ticket.id.clone(), ban, now) {
            AddOutcome::Added => {}
            outcome @ (AddOutcome::Prolonged { .. } | AddOutcome::AlreadyBanned) => {
                flog!(
                    Notice,
                    "actions",
                    "[{}] {} already banned",
                    self.name,
                    ticket.id
                );
                if let AddOutcome::Prolonged { ban, .. } = outcome {
                    flog!(
                        Debug,
                        "actions",
                        "[{}] ban of {} extended to {} s",
                        self.name,
                        ticket.id,
                        ban.bantime.round()
                    );
                    self.record(&ticket, record);
                    // The actions' ticket follows the ban as it stands now.
                    if let Some(t) = self.tickets.get_mut(&ticket.id) {
                        t.time = ban.banned_at;
                        t.bantime = ban.bantime;
                        return Some(Event::Prolong(t.clone()));
                    }
                }
                return None;
            }
            AddOutcome::Expired => {
                flog!(
                    Info,
                    "actions",
                    "[{}] Ban of {} skipped: it ended before now",
                    self.name,
                    ticket.id
                );
                return None;
            }
        }
        self.tracker.remove(&ticket.id);
        if ticket.restored {
            flog!(
                Notice,
                "actions",
                "[{}] Restore Ban {}",
                self.name,
                ticket.id
            );
        } else {
            // "Ban <id>" is logged by the daemon once the store committed it (a batch is one
            // transaction): a ban logged as such is never lost to a crash.
            self.record(&ticket, record);
        }
        self.tickets.insert(ticket.id.clone(), ticket.clone());
        Some(Event::Ban(ticket))
    }

    fn record(&mut self, t: &Ticket, record: bool) {
        if !record {
            return;
        }
        let id = t.id.to_string();
        if let Some(h) = self.history.as_mut() {
            h.record(&self.name, &id, t.time, t.bantime, t.ban_count);
        }
        self.writes.push(StoreWrite::Ban {
            id,
            banned_at: t.time,
            bantime: t.bantime,
            ban_count: t.ban_count,
            matches: t.matches.clone(),
            failures: u64::from(t.failures),
        });
    }

    /// Bans `id` by hand (`set <jail> banip`) at `now`; returns the ban for the actions (`None`:
    /// banned already).
    ///
    /// An id banned already is banned again as fail2ban 1.0.2 does: not counted, but its ban
    /// restarts at `now` for the jail's `bantime` when that ends later than the ban in force (the
    /// ban keeps its start and gets longer; a longer ban, e.g. an incremented one, stays).
    pub fn ban_by_hand(&mut self, id: HostId, now: f64) -> Option<Event> {
        if let Some(old) = self.bans.get(&id) {
            let ticket = Ticket {
                id,
                time: now,
                bantime: self.bantime(),
                ban_count: old.ban_count,
                failures: self.maxretry(),
                matches: Vec::new(),
                fields: Vec::new(),
                restored: false,
            };
            return self.ban(ticket, now, true);
        }
        // A ban by hand does not look at the id's history (its bantime is the jail's).
        let (decision, _) = self.policy.decide_or_base(now, None, &mut self.rng);
        let failures = self.maxretry();
        let ticket = Ticket {
            id,
            time: now,
            bantime: decision.bantime,
            ban_count: decision.ban_count,
            failures,
            matches: Vec::new(),
            fields: Vec::new(),
            restored: false,
        };
        self.ban(ticket, now, true)
    }

    /// Restores a ban read from the store at start.
    pub fn restore(&mut self, ticket: Ticket, now: f64) -> Option<Event> {
        self.ban(ticket, now, false)
    }

    /// Unbans `id` by hand; its history goes (from the history and, through
    /// [`Jail::take_writes`], from the store) as in fail2ban.
    pub fn unban(&mut self, id: &HostId) -> Option<Event> {
        self.bans.remove(id)?;
        let sid = id.to_string();
        if let Some(h) = self.history.as_mut() {
            h.remove(&self.name, &sid);
        }
        self.writes.push(StoreWrite::Unban { id: sid });
        flog!(Notice, "actions", "[{}] Unban {id}", self.name);
        let t = self.tickets.remove(id).unwrap_or_else(|| Ticket {
            id: id.clone(),
            time: 0.0,
            bantime: 0.0,
            ban_count: 0,
            failures: 0,
            matches: Vec::new(),
            fields: Vec::new(),
            restored: false,
        });
        Some(Event::Unban(t))
    }

    /// Unbans everything whose ban ended at `now`.
    pub fn expire(&mut self, now: f64) -> Vec<Event> {
        let mut out = Vec::new();
        for (id, ban) in self.bans.expire(now) {
            flog!(Notice, "actions", "[{}] Unban {id}", self.name);
            let t = self.tickets.remove(&id).unwrap_or(Ticket {
                id: id.clone(),
                time: ban.banned_at,
                bantime: ban.bantime,
                ban_count: ban.ban_count,
                failures: 0,
                matches: Vec::new(),
                fields: Vec::new(),
                restored: false,
            });
            out.push(Event::Unban(t));
        }
        out
    }

    /// Reload in place (fail2ban's `reload`): takes `new`'s configuration (filter, findtime,
    /// maxretry and the rest of the tracker's options, ban time policy, prefixes, ignore rules)
    /// and keeps this jail's state: its bans, the failures counted so far and the counters.
    /// Whether the filter is catching up or following live is kept too.
    pub fn reconfigure(&mut self, new: Jail) {
        let live = self.filter.in_operation;
        self.def = new.def;
        self.filter = new.filter;
        self.filter.in_operation = live;
        self.tracker.set_config(*new.tracker.config());
        self.policy = new.policy;
        self.ignore = new.ignore;
        self.prefixes = new.prefixes;
        // The history stays unless the new configuration reads none (or a history of another
        // scope: the caller loads it, see [`Jail::needs_history`]).
        if new.history.is_some() {
            self.history = new.history;
        } else if self.history_wanted().is_none() {
            self.history = None;
        }
    }

    /// The bans in force, as tickets (oldest first): what a newly added action must apply.
    pub fn tickets_in_force(&self) -> Vec<Ticket> {
        self.banned()
            .into_iter()
            .map(|(id, b)| {
                self.tickets.get(id).cloned().unwrap_or_else(|| Ticket {
                    id: id.clone(),
                    time: b.banned_at,
                    bantime: b.bantime,
                    ban_count: b.ban_count,
                    failures: 0,
                    matches: Vec::new(),
                    fields: Vec::new(),
                    restored: false,
                })
            })
            .collect()
    }

    /// Drops every ban (jail stop: `actionstop` flushes the firewall), returning their tickets.
    pub fn take_all(&mut self) -> Vec<Ticket> {
        let bans = self.bans.flush();
        bans.into_iter()
            .map(|(id, b)| {
                self.tickets.remove(&id).unwrap_or(Ticket {
                    id,
                    time: b.banned_at,
                    bantime: b.bantime,
                    ban_count: b.ban_count,
                    failures: 0,
                    matches: Vec::new(),
                    fields: Vec::new(),
                    restored: false,
                })
            })
            .collect()
    }
}

fn policy_of(def: &JailDef) -> Result<BanTimePolicy, JailError> {
    let bantime = def.bantime.unwrap_or(DEFAULT_BANTIME);
    let inc = &def.bantime_increment;
    if inc.increment != Some(true) {
        return Ok(BanTimePolicy::fixed(bantime));
    }
    let opts = IncrementOptions {
        factor: inc.factor.map(|f| f.to_string()),
        formula: inc.formula.clone(),
        multipliers: inc.multipliers.clone(),
        maxtime: inc.maxtime,
        rndtime: inc.rndtime,
        overalljails: inc.overalljails.unwrap_or(false),
    };
    let increment = BanTimeIncrement::from_options(&opts).map_err(|e| JailError::Option {
        jail: def.name.clone(),
        message: format!("bantime.increment: {e}"),
    })?;
    Ok(BanTimePolicy {
        bantime,
        increment: Some(increment),
    })
}

/// Python's `repr()` of a date text in a log message (quotes and backslashes escaped, the
/// quote chosen as Python chooses it).
fn py_str_repr(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}
