//! Metrics: Prometheus counters, gauges and histograms of the daemon, a bounded feed of recent
//! bans for `ferroban top`, and totals that survive restarts.
//!
//! - [`Metrics`] is the registry, shared by `Arc`: every value is an atomic, so a hook is a few
//!   nanoseconds and never waits for the HTTP endpoint or the database. Jail tasks hold their
//!   [`JailMetrics`] and bump it through one-line hooks.
//! - [`http`]: the `/metrics` endpoint (off by default; `metrics = 127.0.0.1:9191` or a Unix
//!   socket path in fail2ban.local `[Definition]`, or `ferroban server --metrics ADDR`), served by
//!   its own thread, which also writes the totals to the database every few seconds.
//! - [`feed`]: recent bans and unbans, top offenders and per-minute rates for `top`.
//!
//! Names follow Prometheus' conventions: `ferroban_` prefix, base units (`_seconds`), `_total`
//! only on counters, `_info` for metadata. Labels are bounded by the configuration (jail, log
//! path, action, a fixed set of origins and reasons); never one series per address.

pub mod feed;
pub mod hooks;
pub mod http;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use prometheus::core::Collector;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use ferroban_bans::StatRow;

pub use feed::{Feed, FeedEvent};

/// Where a ban came from (`origin` label of `ferroban_jail_bans_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanOrigin {
    /// Failures counted in a log.
    Log,
    /// `banip`/`set <jail> banip` by hand.
    Manual,
    /// Restored from the database at start or reload.
    Restored,
    /// Received from another node of the fleet.
    Fleet,
}

impl BanOrigin {
    /// Every origin.
    pub const ALL: [BanOrigin; 4] = [Self::Log, Self::Manual, Self::Restored, Self::Fleet];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Log => "log",
            Self::Manual => "manual",
            Self::Restored => "restored",
            Self::Fleet => "fleet",
        }
    }
}

/// Why a ban ended (`reason` label of `ferroban_jail_unbans_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnbanReason {
    /// Its bantime ran out.
    Expired,
    /// `unban`/`unbanip` by hand.
    Manual,
    /// Its jail was reloaded (the ban is restored right after, counted as `restored`).
    Reload,
    /// Its jail or the daemon stopped.
    Stop,
}

impl UnbanReason {
    /// Every reason.
    pub const ALL: [UnbanReason; 4] = [Self::Expired, Self::Manual, Self::Reload, Self::Stop];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Manual => "manual",
            Self::Reload => "reload",
            Self::Stop => "stop",
        }
    }
}

/// Why a line was not counted as a failure although the filter looked at it (`reason` label of
/// `ferroban_source_lines_ignored_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreReason {
    /// An `ignoreregex` matched.
    IgnoreRegex,
    /// Older than `findtime` (catching up at start).
    TooOld,
    /// The address is in `ignoreip`, is the host's own (`ignoreself`) or `ignorecommand` said so.
    IgnoreIp,
}

impl IgnoreReason {
    /// Every reason.
    pub const ALL: [IgnoreReason; 3] = [Self::IgnoreRegex, Self::TooOld, Self::IgnoreIp];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::IgnoreRegex => "ignoreregex",
            Self::TooOld => "too_old",
            Self::IgnoreIp => "ignoreip",
        }
    }
}

/// Counts of one log source over one read, added to its counters at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineCounts {
    /// Lines read.
    pub read: u64,
    /// Lines a failregex matched.
    pub matched: u64,
    /// Lines dropped by an `ignoreregex`.
    pub ignored_regex: u64,
    /// Lines older than `findtime`.
    pub too_old: u64,
    /// Failures whose address is ignored (`ignoreip`, `ignoreself`, `ignorecommand`).
    pub ignored_ip: u64,
    /// Lines a failregex matched without a date found.
    pub dateless: u64,
}

impl std::ops::AddAssign for LineCounts {
    fn add_assign(&mut self, o: Self) {
        self.read += o.read;
        self.matched += o.matched;
        self.ignored_regex += o.ignored_regex;
        self.too_old += o.too_old;
        self.ignored_ip += o.ignored_ip;
        self.dateless += o.dateless;
    }
}

impl std::ops::Sub for LineCounts {
    type Output = LineCounts;
    fn sub(self, o: Self) -> LineCounts {
        LineCounts {
            read: self.read.saturating_sub(o.read),
            matched: self.matched.saturating_sub(o.matched),
            ignored_regex: self.ignored_regex.saturating_sub(o.ignored_regex),
            too_old: self.too_old.saturating_sub(o.too_old),
            ignored_ip: self.ignored_ip.saturating_sub(o.ignored_ip),
            dateless: self.dateless.saturating_sub(o.dateless),
        }
    }
}

/// Buckets of the ban latency (line read → firewall confirmed): 0.5 ms to ~16 s.
fn latency_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(0.0005, 2.0, 16).expect("valid buckets")
}

/// Buckets of one action's run time: 0.5 ms to ~33 s.
fn action_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(0.0005, 2.0, 17).expect("valid buckets")
}

/// The series of the daemon.
struct Families {
    jails: IntGauge,
    failures_current: IntGaugeVec,
    failures_total: IntCounterVec,
    banned_current: IntGaugeVec,
    bans_total: IntCounterVec,
    unbans_total: IntCounterVec,
    bantime: GaugeVec,
    findtime: GaugeVec,
    maxretry: IntGaugeVec,
    lines_read: IntCounterVec,
    lines_matched: IntCounterVec,
    lines_ignored: IntCounterVec,
    lines_dateless: IntCounterVec,
    read_lag: GaugeVec,
    ban_latency: HistogramVec,
    action_duration: HistogramVec,
    action_errors: IntCounterVec,
    set_elements: IntGaugeVec,
}

/// The fail2ban exporter's names (opt-in compatibility).
struct Compat {
    registry: Registry,
    up: IntGauge,
    jail_count: IntGauge,
    banned_current: IntGaugeVec,
    banned_total: IntGaugeVec,
    failed_current: IntGaugeVec,
    failed_total: IntGaugeVec,
    ban_time: IntGaugeVec,
    find_time: IntGaugeVec,
    max_retries: IntGaugeVec,
}

/// Registry options.
#[derive(Debug, Clone, Default)]
pub struct MetricsOptions {
    /// Also emit the fail2ban exporter's `f2b_*` names.
    pub compat: bool,
}

/// The registry shared by every task.
pub struct Metrics {
    registry: Registry,
    f: Families,
    compat: Option<Compat>,
    jails: RwLock<HashMap<String, Arc<JailMetrics>>>,
    /// Totals read from the database, not yet given to a series (a series takes its value the
    /// first time it is created).
    restored: Mutex<HashMap<(String, String), f64>>,
    /// Recent events for `top`.
    pub feed: Feed,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help)
}

fn reg<C: Collector + Clone + 'static>(r: &Registry, c: C) -> C {
    r.register(Box::new(c.clone()))
        .expect("metric names are unique");
    c
}

impl Metrics {
    /// A registry with every series described (no jail yet).
    pub fn new(o: MetricsOptions) -> Arc<Metrics> {
        let r = Registry::new();
        let j = &["jail"];
        let js = &["jail", "source"];
        let f = Families {
            jails: reg(&r, IntGauge::with_opts(opts("ferroban_jails", "Jails running.")).unwrap()),
            failures_current: reg(
                &r,
                IntGaugeVec::new(
                    opts(
                        "ferroban_jail_failures_current",
                        "Addresses with failures counted within findtime, not banned.",
                    ),
                    j,
                )
                .unwrap(),
            ),
            failures_total: reg(
                &r,
                IntCounterVec::new(
                    opts("ferroban_jail_failures_total", "Failures counted."),
                    j,
                )
                .unwrap(),
            ),
            banned_current: reg(
                &r,
                IntGaugeVec::new(opts("ferroban_jail_banned_current", "Bans in force."), j)
                    .unwrap(),
            ),
            bans_total: reg(
                &r,
                IntCounterVec::new(
                    opts(
                        "ferroban_jail_bans_total",
                        "Bans, by origin (log, manual, restored, fleet).",
                    ),
                    &["jail", "origin"],
                )
                .unwrap(),
            ),
            unbans_total: reg(
                &r,
                IntCounterVec::new(
                    opts(
                        "ferroban_jail_unbans_total",
                        "Bans ended, by reason (expired, manual, reload, stop).",
                    ),
                    &["jail", "reason"],
                )
                .unwrap(),
            ),
            bantime: reg(
                &r,
                GaugeVec::new(
                    opts(
                        "ferroban_jail_config_bantime_seconds",
                        "Configured bantime (-1: permanent).",
                    ),
                    j,
                )
                .unwrap(),
            ),
            findtime: reg(
                &r,
                GaugeVec::new(
                    opts("ferroban_jail_config_findtime_seconds", "Configured findtime."),
                    j,
                )
                .unwrap(),
            ),
            maxretry: reg(
                &r,
                IntGaugeVec::new(opts("ferroban_jail_config_maxretry", "Configured maxretry."), j)
                    .unwrap(),
            ),
            lines_read: reg(
                &r,
                IntCounterVec::new(opts("ferroban_source_lines_read_total", "Log lines read."), js)
                    .unwrap(),
            ),
            lines_matched: reg(
                &r,
                IntCounterVec::new(
                    opts(
                        "ferroban_source_lines_matched_total",
                        "Log lines a failregex matched.",
                    ),
                    js,
                )
                .unwrap(),
            ),
            lines_ignored: reg(
                &r,
                IntCounterVec::new(
                    opts(
                        "ferroban_source_lines_ignored_total",
                        "Matching log lines not counted, by reason (ignoreregex, too_old, ignoreip).",
                    ),
                    &["jail", "source", "reason"],
                )
                .unwrap(),
            ),
            lines_dateless: reg(
                &r,
                IntCounterVec::new(
                    opts(
                        "ferroban_source_lines_dateless_total",
                        "Log lines a failregex matched but with no date found.",
                    ),
                    js,
                )
                .unwrap(),
            ),
            read_lag: reg(
                &r,
                GaugeVec::new(
                    opts(
                        "ferroban_source_read_lag_seconds",
                        "How long the oldest data not yet read has been in the file (0: caught up).",
                    ),
                    js,
                )
                .unwrap(),
            ),
            ban_latency: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "ferroban_ban_latency_seconds",
                        "From reading the line that completed maxretry to the ban actions finished.",
                    )
                    .buckets(latency_buckets()),
                    j,
                )
                .unwrap(),
            ),
            action_duration: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "ferroban_action_duration_seconds",
                        "Run time of one action operation (start, ban, unban, restore, stop).",
                    )
                    .buckets(action_buckets()),
                    &["jail", "action", "operation"],
                )
                .unwrap(),
            ),
            action_errors: reg(
                &r,
                IntCounterVec::new(
                    opts("ferroban_action_errors_total", "Action operations that failed."),
                    &["jail", "action", "operation"],
                )
                .unwrap(),
            ),
            set_elements: reg(
                &r,
                IntGaugeVec::new(
                    opts(
                        "ferroban_firewall_set_elements",
                        "Elements ferroban put in the jail's firewall set (native actions).",
                    ),
                    &["jail", "action"],
                )
                .unwrap(),
            ),
        };
        let info = reg(
            &r,
            IntGaugeVec::new(
                opts("ferroban_build_info", "Build information (value 1)."),
                &["version", "fail2ban_compat"],
            )
            .unwrap(),
        );
        info.with_label_values(&[env!("CARGO_PKG_VERSION"), crate::daemon::FAIL2BAN_VERSION])
            .set(1);
        #[cfg(target_os = "linux")]
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("process metrics register once");
        let compat = o.compat.then(|| {
            let c = Registry::new();
            let g =
                |name: &str, help: &str| reg(&c, IntGaugeVec::new(opts(name, help), j).unwrap());
            Compat {
                up: reg(
                    &c,
                    IntGauge::with_opts(opts("f2b_up", "The daemon answers (1).")).unwrap(),
                ),
                jail_count: reg(
                    &c,
                    IntGauge::with_opts(opts("f2b_jail_count", "Jails.")).unwrap(),
                ),
                banned_current: g("f2b_jail_banned_current", "Bans in force."),
                banned_total: g(
                    "f2b_jail_banned_total",
                    "Bans (as the fail2ban exporter, a gauge).",
                ),
                failed_current: g(
                    "f2b_jail_failed_current",
                    "Addresses with failures within findtime.",
                ),
                failed_total: g(
                    "f2b_jail_failed_total",
                    "Failures (as the fail2ban exporter, a gauge).",
                ),
                ban_time: g("f2b_config_jail_ban_time", "Configured bantime in seconds."),
                find_time: g(
                    "f2b_config_jail_find_time",
                    "Configured findtime in seconds.",
                ),
                max_retries: g("f2b_config_jail_max_retries", "Configured maxretry."),
                registry: c,
            }
        });
        Arc::new(Metrics {
            registry: r,
            f,
            compat,
            jails: RwLock::new(HashMap::new()),
            restored: Mutex::new(HashMap::new()),
            feed: Feed::new(),
        })
    }

    /// Gives the totals read from the database to the series: each series starts from its
    /// stored total when it is created. Call before the jails start.
    pub fn restore_totals(&self, rows: Vec<StatRow>) {
        let mut rest = self.restored.lock().unwrap();
        for r in rows {
            rest.insert((r.metric, r.labels), r.value);
        }
    }

    /// A counter of `vec` for `labels` (in the vector's label order), starting from its stored
    /// total the first time it is created.
    fn counter(
        &self,
        vec: &IntCounterVec,
        metric: &str,
        names: &[&str],
        values: &[&str],
    ) -> IntCounter {
        let c = vec.with_label_values(values);
        let key = (metric.to_string(), label_key(names, values));
        if let Some(v) = self.restored.lock().unwrap().remove(&key) {
            let v = v.max(0.0) as u64;
            if v > c.get() {
                c.inc_by(v - c.get());
            }
        }
        c
    }

    /// The series of jail `name` (created on first use), with its configuration.
    pub fn jail(&self, name: &str, bantime: f64, findtime: f64, maxretry: u32) -> Arc<JailMetrics> {
        let f = &self.f;
        f.bantime.with_label_values(&[name]).set(bantime);
        f.findtime.with_label_values(&[name]).set(findtime);
        f.maxretry
            .with_label_values(&[name])
            .set(i64::from(maxretry));
        if let Some(j) = self.jails.read().unwrap().get(name) {
            return j.clone();
        }
        let bans = BanOrigin::ALL.map(|o| {
            self.counter(
                &f.bans_total,
                "ferroban_jail_bans_total",
                &["jail", "origin"],
                &[name, o.label()],
            )
        });
        let unbans = UnbanReason::ALL.map(|u| {
            self.counter(
                &f.unbans_total,
                "ferroban_jail_unbans_total",
                &["jail", "reason"],
                &[name, u.label()],
            )
        });
        let j = Arc::new(JailMetrics {
            name: name.to_string(),
            failures_current: f.failures_current.with_label_values(&[name]),
            failures_total: self.counter(
                &f.failures_total,
                "ferroban_jail_failures_total",
                &["jail"],
                &[name],
            ),
            banned_current: f.banned_current.with_label_values(&[name]),
            bans,
            unbans,
            latency: f.ban_latency.with_label_values(&[name]),
            pending: Mutex::new(HashMap::new()),
            sources: Mutex::new(HashMap::new()),
            rates: Mutex::new(feed::Rates::default()),
            behind_since: Mutex::new(HashMap::new()),
        });
        // Sources with stored totals get their series now (not only at their next line).
        let stored: Vec<String> = self
            .restored
            .lock()
            .unwrap()
            .keys()
            .filter(|(m, _)| m.starts_with("ferroban_source_"))
            .filter_map(|(_, l)| stored_source(l, name))
            .collect();
        for src in stored {
            j.source(self, Path::new(&src));
        }
        let mut map = self.jails.write().unwrap();
        let j = map.entry(name.to_string()).or_insert(j).clone();
        f.jails.set(map.len() as i64);
        j
    }

    /// Jail `name` stopped (and is not in the configuration any more): its gauges go; its
    /// counters stay, so that rates over the stop stay right.
    pub fn jail_stopped(&self, name: &str) {
        let mut map = self.jails.write().unwrap();
        if let Some(j) = map.remove(name) {
            j.failures_current.set(0);
            j.banned_current.set(0);
        }
        self.f.jails.set(map.len() as i64);
    }

    /// Jail `name`'s series, if it runs.
    pub fn get(&self, name: &str) -> Option<Arc<JailMetrics>> {
        self.jails.read().unwrap().get(name).cloned()
    }

    /// The running jails' series, by name.
    pub fn jails(&self) -> Vec<Arc<JailMetrics>> {
        let mut v: Vec<_> = self.jails.read().unwrap().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// One action operation of `jail` took `took`; `ok` is false when it failed.
    pub fn action(&self, jail: &str, action: &str, operation: &str, took: Duration, ok: bool) {
        let l = [jail, action, operation];
        self.f
            .action_duration
            .with_label_values(&l)
            .observe(took.as_secs_f64());
        let errs = self.f.action_errors.with_label_values(&l);
        if !ok {
            errs.inc();
        }
    }

    /// Sets the number of elements action `action` of `jail` keeps in its firewall set.
    pub fn set_elements(&self, jail: &str, action: &str, n: i64) {
        self.f
            .set_elements
            .with_label_values(&[jail, action])
            .set(n.max(0));
    }

    /// Adds `d` (may be negative) to the elements of `action` of `jail`.
    pub fn add_elements(&self, jail: &str, action: &str, d: i64) {
        let g = self.f.set_elements.with_label_values(&[jail, action]);
        g.set((g.get() + d).max(0));
    }

    /// The text format of every series (and the fail2ban exporter's names when enabled).
    pub fn render(&self) -> String {
        let mut fams = self.registry.gather();
        // Fleet mode (issue 13): ferroban_fleet_* from the fleet's status.
        fams.extend(crate::daemon::fleet::metric_families());
        if let Some(c) = &self.compat {
            let jails = self.jails();
            c.up.set(1);
            c.jail_count.set(jails.len() as i64);
            for j in &jails {
                let l = [j.name.as_str()];
                c.banned_current
                    .with_label_values(&l)
                    .set(j.banned_current.get());
                c.banned_total
                    .with_label_values(&l)
                    .set(j.bans_total() as i64);
                c.failed_current
                    .with_label_values(&l)
                    .set(j.failures_current.get());
                c.failed_total
                    .with_label_values(&l)
                    .set(j.failures_total.get() as i64);
                c.ban_time
                    .with_label_values(&l)
                    .set(self.f.bantime.with_label_values(&l).get() as i64);
                c.find_time
                    .with_label_values(&l)
                    .set(self.f.findtime.with_label_values(&l).get() as i64);
                c.max_retries
                    .with_label_values(&l)
                    .set(self.f.maxretry.with_label_values(&l).get());
            }
            fams.extend(c.registry.gather());
        }
        let mut out = Vec::with_capacity(16 * 1024);
        TextEncoder::new()
            .encode(&fams, &mut out)
            .expect("text encoding into memory");
        String::from_utf8(out).expect("the text format is UTF-8")
    }

    /// Every `ferroban_*` counter series with its value, for the database.
    pub fn totals(&self) -> Vec<StatRow> {
        let mut rows = Vec::new();
        for fam in self.registry.gather() {
            if fam.get_field_type() != prometheus::proto::MetricType::COUNTER
                || !fam.name().starts_with("ferroban_")
            {
                continue;
            }
            for m in fam.get_metric() {
                let mut pairs: Vec<(&str, &str)> = m
                    .get_label()
                    .iter()
                    .map(|l| (l.name(), l.value()))
                    .collect();
                pairs.sort();
                let labels = pairs
                    .iter()
                    .map(|(k, v)| format!("{k}={}", escape_label(v)))
                    .collect::<Vec<_>>()
                    .join(",");
                rows.push(StatRow {
                    metric: fam.name().to_string(),
                    labels,
                    value: m.get_counter().get_value(),
                });
            }
        }
        // Totals of jails not running in this run stay as they were in the database.
        rows
    }
}

/// `k=v,k=v` sorted by name, values with `\` and `,` escaped.
fn label_key(names: &[&str], values: &[&str]) -> String {
    let mut pairs: Vec<(&str, &str)> = names.iter().copied().zip(values.iter().copied()).collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", escape_label(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// The `source` of a stored label key whose `jail` is `jail`.
fn stored_source(key: &str, jail: &str) -> Option<String> {
    let mut pairs = Vec::new();
    let mut cur = String::new();
    let mut chars = key.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => cur.extend(chars.next()),
            ',' => pairs.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    pairs.push(cur);
    let get = |k: &str| {
        pairs
            .iter()
            .find_map(|p| p.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
    };
    (get("jail")? == jail).then(|| get("source").map(str::to_string))?
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace(',', "\\,")
}

/// One log source's counters.
struct SourceMetrics {
    read: IntCounter,
    matched: IntCounter,
    ignored: [IntCounter; 3],
    dateless: IntCounter,
    lag: prometheus::Gauge,
}

/// One jail's series, held by its tasks.
pub struct JailMetrics {
    /// The jail's name.
    pub name: String,
    failures_current: IntGauge,
    failures_total: IntCounter,
    banned_current: IntGauge,
    bans: [IntCounter; 4],
    unbans: [IntCounter; 4],
    latency: prometheus::Histogram,
    /// Bans ordered and not yet confirmed by the actions, with when their line was read.
    pending: Mutex<HashMap<String, Instant>>,
    sources: Mutex<HashMap<std::path::PathBuf, Arc<SourceMetrics>>>,
    rates: Mutex<feed::Rates>,
    /// Log paths with unread data, since when.
    behind_since: Mutex<HashMap<std::path::PathBuf, f64>>,
}

/// A jail's series with the registry: what its action task holds.
#[derive(Clone)]
pub struct JailHook {
    /// The registry.
    pub m: Arc<Metrics>,
    /// The jail's series.
    pub j: Arc<JailMetrics>,
}

/// At most this many bans wait for their confirmation (beyond, the oldest are not measured).
const MAX_PENDING: usize = 100_000;

impl JailMetrics {
    /// Bans counted, every origin.
    pub fn bans_total(&self) -> u64 {
        self.bans.iter().map(IntCounter::get).sum()
    }

    /// Failures counted.
    pub fn failures_total(&self) -> u64 {
        self.failures_total.get()
    }

    /// Addresses with failures (gauge).
    pub fn failures_current(&self) -> i64 {
        self.failures_current.get()
    }

    /// Bans in force (gauge).
    pub fn banned_current(&self) -> i64 {
        self.banned_current.get()
    }

    /// Per-minute failures and bans of the last [`feed::MINUTES`] minutes, oldest first, at `now`.
    pub fn per_minute(&self, now: f64) -> (Vec<u64>, Vec<u64>) {
        self.rates.lock().unwrap().series(now)
    }

    /// The current counts of the jail (after a read or a ban change).
    pub fn set_current(&self, failed: usize, banned: usize) {
        self.failures_current.set(failed as i64);
        self.banned_current.set(banned as i64);
    }

    /// `n` failures counted at `now`.
    pub fn failures(&self, n: u64, now: f64) {
        if n == 0 {
            return;
        }
        self.failures_total.inc_by(n);
        self.rates.lock().unwrap().add(now, n, 0);
    }

    fn source(&self, metrics: &Metrics, path: &Path) -> Arc<SourceMetrics> {
        let mut map = self.sources.lock().unwrap();
        if let Some(s) = map.get(path) {
            return s.clone();
        }
        let src = path.display().to_string();
        let f = &metrics.f;
        let js = ["jail", "source"];
        let v = [self.name.as_str(), src.as_str()];
        let ignored = IgnoreReason::ALL.map(|r| {
            metrics.counter(
                &f.lines_ignored,
                "ferroban_source_lines_ignored_total",
                &["jail", "source", "reason"],
                &[self.name.as_str(), src.as_str(), r.label()],
            )
        });
        let s = Arc::new(SourceMetrics {
            read: metrics.counter(&f.lines_read, "ferroban_source_lines_read_total", &js, &v),
            matched: metrics.counter(
                &f.lines_matched,
                "ferroban_source_lines_matched_total",
                &js,
                &v,
            ),
            ignored,
            dateless: metrics.counter(
                &f.lines_dateless,
                "ferroban_source_lines_dateless_total",
                &js,
                &v,
            ),
            lag: f.read_lag.with_label_values(&v),
        });
        map.insert(path.to_path_buf(), s.clone());
        s
    }

    /// Adds the counts of one read of `path`.
    pub fn lines(&self, metrics: &Metrics, path: &Path, c: LineCounts) {
        let s = self.source(metrics, path);
        s.read.inc_by(c.read);
        s.matched.inc_by(c.matched);
        s.ignored[0].inc_by(c.ignored_regex);
        s.ignored[1].inc_by(c.too_old);
        s.ignored[2].inc_by(c.ignored_ip);
        s.dateless.inc_by(c.dateless);
    }

    /// Sets the read lag of `path`.
    pub fn read_lag(&self, metrics: &Metrics, path: &Path, secs: f64) {
        self.source(metrics, path).lag.set(secs.max(0.0));
    }

    /// A ban of `id` until `end` (`None`: permanent) was ordered at `now`. `read_at`: when the line
    /// that completed it was read (log bans), for the latency histogram.
    pub fn banned(
        &self,
        metrics: &Metrics,
        origin: BanOrigin,
        id: &str,
        end: Option<f64>,
        now: f64,
        read_at: Option<Instant>,
    ) {
        self.bans[origin as usize].inc();
        if origin != BanOrigin::Restored {
            self.rates.lock().unwrap().add(now, 0, 1);
        }
        if let Some(t) = read_at {
            let mut p = self.pending.lock().unwrap();
            if p.len() < MAX_PENDING {
                p.insert(id.to_string(), t);
            }
        }
        metrics
            .feed
            .push(FeedEvent::ban(&self.name, id, origin, now, end));
    }

    /// The actions finished banning `id` (the latency of a log ban ends here).
    pub fn ban_confirmed(&self, id: &str) {
        let t = self.pending.lock().unwrap().remove(id);
        if let Some(t) = t {
            self.latency.observe(t.elapsed().as_secs_f64());
        }
    }

    /// The ban of `id` ended at `now`.
    pub fn unbanned(&self, metrics: &Metrics, reason: UnbanReason, id: &str, now: f64) {
        self.unbans[reason as usize].inc();
        self.pending.lock().unwrap().remove(id);
        metrics
            .feed
            .push(FeedEvent::unban(&self.name, id, reason, now));
    }
}

#[cfg(test)]
mod tests;
