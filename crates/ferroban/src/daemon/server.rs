//! The running daemon: jails, their log sources, the unban timer, the control socket and signals,
//! on one current-thread tokio runtime.
//!
//! All jail state lives in one [`State`] behind `Rc<RefCell<…>>`; tasks borrow it only between
//! awaits, so there are no locks and no borrow is ever held across a suspension point. Each
//! jail's actions run in their own task (in order, one command at a time, as fail2ban's per-jail
//! action thread does), so a slow action never delays matching or the other jails.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use ferroban_bans::{LogPosition, Store, StoreOptions};
use ferroban_config::{JailDef, JailsOptions};
use ferroban_source::{
    Backend, FirstLineHash, LogEncoding, LogPathSpec, LogSource, Notice, Position, SourceOptions,
    StartAt,
};
use tokio::io::unix::AsyncFd;
use tokio::sync::{Notify, mpsc, oneshot};

use super::actions::{self, Job};
use super::jail::{Event, Jail, Ticket};
use super::journal::{self, JailSource};
use crate::clock::Clock;
use crate::control::server::ControlRequest;
use crate::flog;
use crate::ip::HostId;

/// How often every source is polled even without inotify events (and the polling backend's
/// interval, fail2ban's `sleeptime`).
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How often read positions are written to the store when they changed.
const POSITION_SAVE_INTERVAL: f64 = 5.0;
/// Bytes a jail reads and matches before it yields to the other tasks (about 400 nginx lines,
/// well under a millisecond): while jails catch up with a large append, the control socket, the
/// unban timer and the other jails get the thread between slices. A control request needs a few
/// scheduler rounds (accept, read, dispatch, reply), each one slice of every busy jail.
pub const INGEST_SLICE_BYTES: u64 = 64 * 1024;

/// Where the daemon's settings come from (fail2ban.conf, overridden by the command line).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The configuration (`-c DIR` or the default directories, over the embedded defaults).
    pub conf: crate::defaults::ConfigLocation,
    /// Control socket.
    pub socket: PathBuf,
    /// Pid file.
    pub pidfile: PathBuf,
    /// `dbfile` (`None`: no database).
    pub dbfile: Option<PathBuf>,
    /// `dbpurgeage` in seconds.
    pub dbpurgeage: f64,
    /// `dbmaxmatches`.
    pub dbmaxmatches: Option<u32>,
    /// `/metrics` address (`metrics` of fail2ban.local, `--metrics`); `None`: off.
    pub metrics: Option<crate::metrics::http::MetricsAddr>,
    /// Also the fail2ban exporter's `f2b_*` names (`metrics_compat`, `--metrics-compat`).
    pub metrics_compat: bool,
}

/// A jail with its source and action queue.
pub struct JailRt {
    /// The jail.
    pub jail: Jail,
    /// Its log files or the journal.
    pub source: JailSource,
    /// Its action task's queue.
    pub jobs: mpsc::UnboundedSender<Job>,
    /// Names of its actions (`get <jail> actions`).
    pub action_names: Vec<String>,
    /// Its metrics.
    pub metrics: Arc<crate::metrics::JailMetrics>,
    /// Some action uses `<ipmatches>` or `<ipjailmatches>`.
    pub history_matches: bool,
    /// `set <jail> idle on`: its logs are not read until `idle off` (then read from where
    /// reading stopped).
    pub idle: bool,
    positions_saved: Vec<Position>,
    next_position_save: f64,
    /// Wakes the source task (a stop or reload).
    pub stop: Rc<Notify>,
    /// The source task's end.
    pub task: Option<tokio::task::JoinHandle<()>>,
    /// The action task's end.
    pub action_task: Option<tokio::task::JoinHandle<()>>,
}

/// Everything the tasks share.
pub struct State {
    /// Settings.
    pub settings: Settings,
    /// Jails in configuration order.
    pub jails: Vec<JailRt>,
    /// The ban database.
    pub store: Option<Store>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Wakes the unban timer when a ban that ends earlier was added.
    pub timer: Rc<Notify>,
    /// Set to stop the daemon.
    pub shutdown: Rc<Notify>,
    /// Set to reload (SIGHUP, `reload`).
    pub reload: Rc<Notify>,
    /// Reload requested for these jails only (`reload <jail>`); empty: all.
    pub reload_only: Vec<String>,
    /// Jails whose configuration failed at the last (re)load, with why.
    pub broken: BTreeMap<String, String>,
    /// Metrics (counters, feed of bans for `top`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Jails are being stopped for a reload (their bans end as `reload`, not `stop`).
    pub reloading: bool,
}

/// The shared state.
pub type Shared = Rc<RefCell<State>>;

impl State {
    /// The jail named `name`.
    pub fn jail(&self, name: &str) -> Option<&JailRt> {
        self.jails.iter().find(|j| j.jail.name() == name)
    }

    /// The jail named `name`, mutable.
    pub fn jail_mut(&mut self, name: &str) -> Option<&mut JailRt> {
        self.jails.iter_mut().find(|j| j.jail.name() == name)
    }

    /// Sends `events` of jail `idx` to its actions.
    fn dispatch(&mut self, idx: usize, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let ban_added = events.iter().any(|e| matches!(e, Event::Ban(_)));
        let _lines = super::log::Batch::begin();
        let jail = &self.jails[idx];
        let now = self.clock.now();
        for ev in events {
            let job = match ev {
                Event::Ban(t) => {
                    // After the store's commit (every caller ends its batch first).
                    if !t.restored {
                        flog!(Notice, "actions", "[{}] Ban {}", jail.jail.name(), t.id);
                    }
                    // Its publication is in the store before the actions get it; the job
                    // carries its tag to the action task, which reports it.
                    let fleet = super::fleet::local_ban(self.store.as_mut(), jail.jail.name(), &t);
                    Job::Ban(Box::new(actions::BanJob {
                        fleet,
                        ..self.ban_job_data(idx, t)
                    }))
                }
                // A remote ban of the same address that still holds keeps the element.
                Event::Unban(t) if super::fleet::held_remotely(jail.jail.name(), &t.id, now) => {
                    continue;
                }
                Event::Prolong(t) => {
                    // Published like a ban (its later end), once the actions ran.
                    let fleet = super::fleet::local_ban(self.store.as_mut(), jail.jail.name(), &t);
                    Job::Prolong(Box::new(actions::BanJob {
                        ticket: t,
                        ipmatches: None,
                        ipjailmatches: None,
                        fleet,
                    }))
                }
                Event::Unban(t) => Job::Unban(Box::new(t)),
            };
            let _ = jail.jobs.send(job);
        }
        super::fleet::wake(self.store.as_ref());
        if ban_added {
            self.timer.notify_one();
        }
    }

    fn ban_job_data(&self, idx: usize, t: Ticket) -> actions::BanJob {
        let jail = &self.jails[idx];
        let id = t.id.to_string();
        let (ipmatches, ipjailmatches) = match &self.store {
            Some(store) if jail.history_matches => {
                store_matches(store, &id, jail.jail.name()).unzip()
            }
            _ => (None, None),
        };
        actions::BanJob {
            ticket: t,
            ipmatches,
            ipjailmatches,
            fleet: None,
        }
    }

    /// Unbans `id` in jail `idx` by hand.
    pub fn unban_in(&mut self, idx: usize, id: &HostId) -> bool {
        let ev = {
            let store = self.store.as_mut();
            if let Some(s) = store {
                // The unban and the fleet's publication of it: one transaction.
                s.begin_batch();
            }
            let ev = self.jails[idx].jail.unban(id, self.store.as_mut());
            if ev.is_some() {
                super::fleet::local_unban(self.store.as_mut(), self.jails[idx].jail.name(), id);
            }
            self.end_store_batch();
            ev
        };
        match ev {
            Some(ev) => {
                let one = std::slice::from_ref(&ev);
                self.metric_events(idx, one, crate::metrics::BanOrigin::Manual, None);
                self.dispatch(idx, vec![ev]);
                true
            }
            None => false,
        }
    }

    /// `set <jail> attempt <id> [<match>...]`: counts a failure of `id` in jail `idx` now, of
    /// the weight of its matches (one without), as if read in its log; the bans it leads to go
    /// to the actions.
    pub fn attempt_in(&mut self, idx: usize, id: HostId, matches: Vec<String>) {
        let now = self.clock.now();
        let weight = u32::try_from(matches.len().max(1)).unwrap_or(u32::MAX);
        let failed_before = self.jails[idx].jail.counts().total_failed;
        let events = {
            let State { jails, store, .. } = self;
            if let Some(s) = store.as_mut() {
                s.begin_batch();
            }
            let events = jails[idx].jail.add_failure(
                id,
                now,
                matches,
                Vec::new(),
                weight,
                now,
                store.as_mut(),
            );
            // The fleet's publication of its ban commits with it.
            super::fleet::publish_bans(store.as_mut(), jails[idx].jail.name(), &events);
            events
        };
        self.end_store_batch();
        self.failure_metrics(idx, &events, failed_before, now, None);
        self.dispatch(idx, events);
    }

    /// Counts the bans `events` of jail `idx` that failures led to, and its failure counts
    /// (`failed_before`: its total before them).
    fn failure_metrics(
        &self,
        idx: usize,
        events: &[Event],
        failed_before: u64,
        now: f64,
        read_at: Option<std::time::Instant>,
    ) {
        let rt = &self.jails[idx];
        rt.metrics.events(
            &self.metrics,
            events,
            crate::metrics::BanOrigin::Log,
            crate::metrics::UnbanReason::Expired,
            now,
            read_at,
        );
        rt.metrics.counts(failed_before, rt.jail.counts(), now);
    }

    /// Bans `id` in jail `idx` by hand.
    pub fn ban_in(&mut self, idx: usize, id: HostId) -> bool {
        self.ban_many_in(idx, std::iter::once(id)) == 1
    }

    /// Bans `ids` in jail `idx` by hand (`set <jail> banip ...`): the store writes them in one
    /// transaction before the actions get them, as one batch. Returns how many were new.
    pub fn ban_many_in(&mut self, idx: usize, ids: impl IntoIterator<Item = HostId>) -> usize {
        let now = self.clock.now();
        let mut events = Vec::new();
        {
            let State { jails, store, .. } = self;
            let jail = &mut jails[idx].jail;
            if let Some(s) = store.as_mut() {
                s.begin_batch();
            }
            for id in ids {
                events.extend(jail.ban_by_hand(id, now, store.as_mut()));
            }
            // Their publication commits with them.
            super::fleet::publish_bans(store.as_mut(), jail.name(), &events);
        }
        self.end_store_batch();
        // New bans (a re-ban of a banned address lengthens it: not counted, as in fail2ban).
        let n = events.iter().filter(|e| matches!(e, Event::Ban(_))).count();
        self.metric_events(idx, &events, crate::metrics::BanOrigin::Manual, None);
        self.dispatch(idx, events);
        n
    }

    /// Counts `events` of jail `idx` (bans from `origin`; unbans by hand when the origin is
    /// manual, else expired; `reload` while reloading) and takes the jail's current counts.
    fn metric_events(
        &self,
        idx: usize,
        events: &[Event],
        origin: crate::metrics::BanOrigin,
        read_at: Option<std::time::Instant>,
    ) {
        use crate::metrics::{BanOrigin, UnbanReason};
        let rt = &self.jails[idx];
        let reason = if self.reloading {
            UnbanReason::Reload
        } else if origin == BanOrigin::Manual {
            UnbanReason::Manual
        } else {
            UnbanReason::Expired
        };
        let now = self.clock.now();
        rt.metrics
            .events(&self.metrics, events, origin, reason, now, read_at);
        let c = rt.jail.counts();
        rt.metrics.counts(c.total_failed, c, now);
    }

    /// Commits the store's batch; a failure is logged once (the store then queues its writes).
    pub fn end_store_batch(&mut self) {
        if let Some(s) = self.store.as_mut()
            && let Err(e) = s.end_batch()
        {
            flog!(
                Error,
                "database",
                "{e}; bans stay enforced and are kept in memory until the database can be written again"
            );
        }
        // The fleet's publications written in the batch are committed: to the publisher.
        super::fleet::wake(self.store.as_ref());
    }

    /// Reads new lines of jail `idx`; returns whether more is pending (read budget exhausted).
    /// A jail that shares its reader reads for all its jails (or leaves it to the one that does).
    pub fn poll_jail(&mut self, idx: usize) -> bool {
        if let JailSource::Shared(shared) = &self.jails[idx].source {
            let shared = shared.clone();
            return super::shared::poll(self, idx, &shared);
        }
        // The Found/Ban lines of this read: one write at its end.
        let _lines = super::log::Batch::begin();
        let now = self.clock.now();
        let read_at = std::time::Instant::now();
        let failed_before = self.jails[idx].jail.counts().total_failed;
        let mut counts = crate::metrics::hooks::ReadCounts::default();
        let mut events = Vec::new();
        if let Some(s) = self.store.as_mut() {
            // The bans and positions of this read: one transaction.
            s.begin_batch();
        }
        let report = {
            let State { jails, store, .. } = self;
            let rt = &mut jails[idx];
            let jail = &mut rt.jail;
            let mut store = store.as_mut();
            match &mut rt.source {
                JailSource::Files(source) => source.poll(&mut |line| {
                    let before = jail.line_stats();
                    events.extend(jail.process_line(line.text, now, store.as_deref_mut()));
                    counts.line(line.path, before, jail.line_stats());
                }),
                JailSource::Shared(_) => unreachable!("read by shared::poll"),
                // The journal switches the jail to live operation itself, once caught up.
                JailSource::Journal(j) => Ok(ferroban_source::PollReport {
                    more: j.poll(jail, now, store, &mut events),
                    ..Default::default()
                }),
            }
        };
        let name = self.jails[idx].jail.name().to_string();
        let more = match report {
            Ok(r) => {
                for n in &r.notices {
                    log_notice(&name, n);
                }
                r.more
            }
            Err(e) => {
                flog!(Error, "filter", "[{name}] {e}");
                false
            }
        };
        self.read_done(idx, counts, &events, failed_before, now, read_at, more);
        self.end_store_batch();
        self.read_dispatched(idx, events, now);
        more
    }

    /// After a read of jail `idx` that found `events` (inside the store batch of the read):
    /// metrics, positions, the fleet's publication of its bans.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn read_done(
        &mut self,
        idx: usize,
        counts: crate::metrics::hooks::ReadCounts,
        events: &[Event],
        failed_before: u64,
        now: f64,
        read_at: std::time::Instant,
        more: bool,
    ) {
        if !more
            && matches!(
                self.jails[idx].source,
                JailSource::Files(_) | JailSource::Shared(_)
            )
        {
            self.jails[idx].jail.set_in_operation(true);
        }
        counts.flush(&self.metrics, &self.jails[idx].metrics);
        self.failure_metrics(idx, events, failed_before, now, Some(read_at));
        let banned = !events.is_empty();
        // Positions go to the store before the actions run, with the ban already recorded: a
        // crash after this point neither loses the ban nor re-reads its lines.
        if banned || now >= self.jails[idx].next_position_save {
            self.save_positions(idx, now);
        }
        // The fleet's publication of these bans commits with them.
        super::fleet::publish_bans(self.store.as_mut(), self.jails[idx].jail.name(), events);
    }

    /// After the store batch of a read of jail `idx`: its `events` go to the actions.
    pub(super) fn read_dispatched(&mut self, idx: usize, events: Vec<Event>, now: f64) {
        // Shared failure counting (fleet): this read's failures of addresses not banned.
        super::fleet::local_failures(&mut self.jails[idx].jail, now);
        self.dispatch(idx, events);
    }

    /// Writes jail `idx`'s read positions to the store when they changed.
    pub fn save_positions(&mut self, idx: usize, now: f64) {
        let State {
            jails,
            store,
            metrics,
            ..
        } = self;
        let rt = &mut jails[idx];
        rt.next_position_save = now + POSITION_SAVE_INTERVAL;
        let current = match &rt.source {
            JailSource::Files(source) => source.positions(),
            JailSource::Shared(shared) => shared.borrow().source.positions(),
            JailSource::Journal(_) => Vec::new(),
        };
        for p in &current {
            rt.metrics.backlog(metrics, &p.path, p.offset, now);
        }
        let Some(store) = store.as_mut() else { return };
        if let JailSource::Journal(j) = &mut rt.source {
            return j.save(rt.jail.name(), store);
        }
        if current == rt.positions_saved {
            return;
        }
        for p in &current {
            if rt.positions_saved.contains(p) {
                continue;
            }
            let lp = LogPosition {
                path: p.path.display().to_string(),
                first_line_hash: p.first_line_hash.map(|h| h.to_hex()),
                offset: p.offset,
            };
            if let Err(e) = store.set_position(rt.jail.name(), &lp) {
                flog!(Error, "database", "[{}] {e}", rt.jail.name());
            }
        }
        rt.positions_saved = current;
    }

    /// Ends bans whose time is up, the jails' own and the fleet's remote bans alike (the same
    /// dispatch to `actionunban`); returns when the next one ends.
    pub fn expire(&mut self) -> Option<f64> {
        let now = self.clock.now();
        for idx in 0..self.jails.len() {
            // Remote bans first: one whose address a local ban still holds is left to it.
            let mut events = super::fleet::expire_remote(&self.jails[idx].jail, now);
            events.extend(self.jails[idx].jail.expire(now));
            if !events.is_empty() {
                self.metric_events(idx, &events, crate::metrics::BanOrigin::Log, None);
            }
            self.dispatch(idx, events);
        }
        self.jails
            .iter()
            .filter_map(|j| j.jail.next_deadline())
            .chain(super::fleet::next_remote_deadline())
            .min_by(f64::total_cmp)
    }
}

/// The stored matches of `id`: over every jail (`<ipmatches>`) and in `jail` (`<ipjailmatches>`),
/// from one read of the store.
fn store_matches(store: &Store, id: &str, jail: &str) -> Option<(Vec<String>, Vec<String>)> {
    let mut all = Vec::new();
    let mut own = Vec::new();
    for b in store.current_bans(0.0).ok()? {
        if b.id != id {
            continue;
        }
        if b.jail == jail {
            own.extend(b.data.matches.iter().cloned());
        }
        all.extend(b.data.matches);
    }
    Some((all, own))
}

pub(super) fn log_notice(jail: &str, n: &Notice) {
    match n {
        Notice::Missing { path } => flog!(
            Warning,
            "filter",
            "[{jail}] Log file {} does not exist (yet); waiting for it",
            path.display()
        ),
        Notice::Appeared { path } => {
            flog!(
                Info,
                "filter",
                "[{jail}] Log file {} appeared",
                path.display()
            )
        }
        Notice::Rotated { path, kind } => flog!(
            Info,
            "filter",
            "[{jail}] Log rotation detected for {} ({kind:?}); reading the new file from its start",
            path.display()
        ),
        Notice::Resumed { path, offset } => flog!(
            Debug,
            "filter",
            "[{jail}] Resuming {} at {offset}",
            path.display()
        ),
        Notice::Error(e) => flog!(Error, "filter", "[{jail}] {e}"),
        Notice::Forgotten { path } => {
            flog!(
                Info,
                "filter",
                "[{jail}] Removed logfile: '{}'",
                path.display()
            )
        }
        _ => flog!(Debug, "filter", "[{jail}] {n:?}"),
    }
}

/// Builds the source of a jail: the journal (`backend = systemd[...]`, or `auto` without log
/// files and with a `journalmatch`), else its `logpath` entries, backend and encoding.
pub fn source_of(def: &JailDef) -> Result<JailSource, String> {
    if journal::selection_of(def)?.is_none() && def.logpath.is_empty() {
        return Err(format!("jail '{}': no logpath", def.name));
    }
    source_any(def)
}

/// [`source_of`] without its demand for a log path: the source of a jail made or changed at
/// run time (`add <JAIL>`, `set <JAIL> dellogpath` of its last file) follows no file until
/// `addlogpath`, as in fail2ban.
pub fn source_any(def: &JailDef) -> Result<JailSource, String> {
    if let Some(sel) = journal::selection_of(def)? {
        return journal::journal_source(def, sel).map(JailSource::Journal);
    }
    let backend_name = def.backend.split('[').next().unwrap_or("").trim();
    let backend = match backend_name {
        "gamin" => Backend::Auto,
        other => other
            .parse::<Backend>()
            .map_err(|e| format!("jail '{}': {e}", def.name))?,
    };
    let encoding = match def.logencoding.as_deref().map(str::trim) {
        None | Some("") | Some("auto") => LogEncoding::Utf8,
        Some(e) => LogEncoding::parse(e).map_err(|e| format!("jail '{}': {e}", def.name))?,
    };
    // fail2ban 1.1.1's `skip_if_nologs = true`: a jail none of whose logpath entries names an
    // existing file is not started (said so) instead of waiting for its files.
    if def
        .value("skip_if_nologs")
        .is_some_and(ferroban_config::as_bool)
        && !journal::any_log_file(&def.logpath)
    {
        let paths: Vec<&str> = def.logpath.iter().map(|l| l.path.as_str()).collect();
        return Err(format!(
            "jail '{}': no log file found ({}); skipped (skip_if_nologs)",
            def.name,
            paths.join(", ")
        ));
    }
    let specs = def
        .logpath
        .iter()
        .map(|l| LogPathSpec {
            pattern: l.path.clone(),
            start: if l.tail { StartAt::Tail } else { StartAt::Head },
        })
        .collect();
    LogSource::new(
        specs,
        SourceOptions {
            backend,
            encoding,
            read_budget: INGEST_SLICE_BYTES,
            ..SourceOptions::default()
        },
    )
    .map(JailSource::Files)
    .map_err(|e| format!("jail '{}': {e}", def.name))
}

/// Opens the store named by the settings.
pub fn open_store(s: &Settings, now: f64) -> Option<Store> {
    let path = s.dbfile.as_ref()?;
    let mut opts = StoreOptions {
        purge_age: s.dbpurgeage,
        ..StoreOptions::default()
    };
    if let Some(m) = s.dbmaxmatches {
        opts.max_matches = m as usize;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    match Store::open_or_move_aside(path, opts, now) {
        Ok((store, moved)) => {
            if let Some(m) = moved {
                flog!(
                    Error,
                    "database",
                    "Database {} was corrupt; moved to {} and started anew",
                    path.display(),
                    m.display()
                );
            }
            flog!(
                Info,
                "database",
                "Connected to fail2ban persistent database '{}'",
                path.display()
            );
            Some(store)
        }
        Err(e) => {
            flog!(Error, "database", "{e}; running without a database");
            None
        }
    }
}

/// Reads the jails from the configuration directory.
pub fn load_jails(
    conf: &crate::defaults::ConfigLocation,
) -> Result<ferroban_config::JailsConfig, String> {
    ferroban_config::read_jails_with(&conf.loader(), &JailsOptions::default())
        .map_err(|e| e.to_string())
}

/// Sets `source` of jail `def` to the read positions (or journal cursor) stored for the jail.
fn restore_positions(st: &State, def: &JailDef, source: &mut JailSource, now: f64) {
    let name = &def.name;
    if let JailSource::Journal(j) = source {
        let findtime = def.findtime.unwrap_or(super::jail::DEFAULT_FINDTIME);
        j.restore(name, st.store.as_ref(), now, findtime);
    }
    if let (Some(store), JailSource::Files(source)) = (&st.store, source) {
        match store.positions(name) {
            Ok(ps) => {
                for p in &ps {
                    flog!(
                        Info,
                        "filter",
                        "Added logfile: '{}' (pos = {}, hash = {})",
                        p.path,
                        p.offset,
                        p.first_line_hash.as_deref().unwrap_or("")
                    );
                }
                source.restore(ps.into_iter().map(|p| {
                    Position {
                        path: PathBuf::from(&p.path),
                        first_line_hash: p
                            .first_line_hash
                            .as_deref()
                            .and_then(FirstLineHash::from_hex),
                        offset: p.offset,
                        inode: None,
                    }
                }))
            }
            Err(e) => flog!(Error, "database", "[{name}] {e}"),
        }
    }
}

/// The settings that make a jail's source: a change of any of them builds a new source.
fn source_settings(def: &JailDef) -> impl PartialEq + use<'_> {
    (
        &def.logpath,
        &def.backend,
        &def.logencoding,
        &def.journalmatch,
    )
}

/// Reloads running jail `def.name` in place (fail2ban's `reload`): nothing happens when its
/// configuration did not change; otherwise the filter and options are replaced while the bans,
/// the failures counted and the counters stay; a changed log source is rebuilt at its stored
/// positions; actions whose definition did not change run nothing, changed shell actions take
/// their new definition and run `actionreload` (as fail2ban's do), changed native ones and
/// removed ones leave the firewall and stop, new ones start and get every ban in force. Errors
/// leave the jail running as it was.
pub async fn reload_jail(state: &Shared, def: JailDef) -> Result<(), String> {
    let name = def.name.clone();
    let old = match state.borrow().jail(&name) {
        Some(rt) => rt.jail.def().clone(),
        None => return Err(format!("Sorry but the jail '{name}' does not exist")),
    };
    if old == def {
        flog!(Info, "jail", "Jail '{name}' reloaded (unchanged)");
        return Ok(());
    }
    flog!(Info, "jail", "Reload jail '{name}'");
    let jail = Jail::new(def.clone()).map_err(|e| e.to_string())?;
    let mut source = if source_settings(&old) != source_settings(&def) {
        Some(source_of(&def)?)
    } else {
        None
    };
    let built = actions::build(&def)?;
    let action_names: Vec<String> = built.iter().map(|a| a.name().to_string()).collect();
    let history_matches =
        actions::uses_tag(&built, "ipmatches") || actions::uses_tag(&built, "ipjailmatches");
    let wanted: Vec<actions::ReloadAction> = def
        .actions
        .iter()
        .zip(built)
        .map(|(d, a)| {
            if old.actions.iter().any(|o| o == d) {
                actions::ReloadAction::Keep(d.name.clone())
            } else if old.actions.iter().any(|o| o.name == d.name) {
                actions::ReloadAction::Changed(Box::new(a))
            } else {
                actions::ReloadAction::New(Box::new(a))
            }
        })
        .collect();
    if let Some(src) = source.as_mut() {
        // The old source task ends, its positions are saved, the new source starts there.
        let (stop, task) = {
            let mut st = state.borrow_mut();
            let now = st.clock.now();
            let Some(idx) = st.jails.iter().position(|j| j.jail.name() == name) else {
                return Err(format!("Sorry but the jail '{name}' does not exist"));
            };
            st.save_positions(idx, now);
            let rt = &mut st.jails[idx];
            (rt.stop.clone(), rt.task.take())
        };
        stop.notify_one();
        if let Some(t) = task {
            let _ = t.await;
        }
        let st = state.borrow();
        let now = st.clock.now();
        restore_positions(&st, &def, src, now);
    }
    let done_rx = {
        let mut st = state.borrow_mut();
        let Some(rt) = st.jail_mut(&name) else {
            return Err(format!("Sorry but the jail '{name}' does not exist"));
        };
        rt.jail.reconfigure(jail);
        rt.action_names = action_names;
        rt.history_matches = history_matches;
        let (done, done_rx) = oneshot::channel();
        let mut tickets = rt.jail.tickets_in_force();
        tickets.extend(super::fleet::remote_tickets(&rt.jail));
        let job = Job::Reload {
            actions: wanted,
            tickets,
            bantime: rt.jail.bantime(),
            done,
        };
        rt.jobs.send(job).is_ok().then_some(done_rx)
    };
    {
        // The configured bantime/findtime/maxretry gauges follow the new configuration.
        let st = state.borrow();
        if let Some(rt) = st.jail(&name) {
            let j = &rt.jail;
            st.metrics
                .jail(&name, j.bantime(), j.findtime(), j.maxretry());
        }
    }
    if let Some(src) = source {
        let stop = Rc::new(Notify::new());
        {
            let mut st = state.borrow_mut();
            if let Some(rt) = st.jail_mut(&name) {
                rt.source = src;
                rt.positions_saved = Vec::new();
                rt.stop = stop.clone();
                rt.jail.set_in_operation(false);
            }
        }
        let task = tokio::task::spawn_local(source_task(state.clone(), name.clone(), stop));
        if let Some(rt) = state.borrow_mut().jail_mut(&name) {
            rt.task = Some(task);
        }
    }
    if let Some(rx) = done_rx {
        let _ = rx.await;
    }
    state.borrow().timer.notify_one();
    flog!(Info, "jail", "Jail '{name}' reloaded");
    Ok(())
}

/// Unbans every ban of jail `name` (`reload --unban`): actionunban for each, removed from the
/// store. Returns how many.
pub fn unban_jail(state: &Shared, name: &str) -> usize {
    let Some(idx) = state
        .borrow()
        .jails
        .iter()
        .position(|j| j.jail.name() == name)
    else {
        return 0;
    };
    let ids: Vec<HostId> = state.borrow().jails[idx]
        .jail
        .banned()
        .into_iter()
        .map(|(id, _)| id.clone())
        .collect();
    let mut n = 0;
    for id in ids {
        if state.borrow_mut().unban_in(idx, &id) {
            n += 1;
        }
    }
    n
}

/// Creates jail `def`, restores its positions and bans from the store and starts its tasks.
pub fn start_jail(state: &Shared, def: JailDef) -> Result<(), String> {
    let source = source_of(&def)?;
    start_jail_with(state, def, source)
}

/// `add <JAIL> [<BACKEND>]`: creates and starts an empty jail named `name` (no filter, no log
/// path, no action; fail2ban's defaults) that follows its logs with `backend`.
pub fn add_jail(state: &Shared, name: &str, backend: &str) -> Result<(), String> {
    let def = JailDef {
        name: name.to_string(),
        enabled: true,
        backend: backend.to_string(),
        filter: None,
        // An empty filter: regexes come with `addfailregex`.
        filter_def: Some(ferroban_config::FilterDef {
            name: name.to_string(),
            ..Default::default()
        }),
        logpath: Vec::new(),
        maxretry: None,
        maxmatches: None,
        findtime: None,
        bantime: None,
        bantime_increment: Default::default(),
        ignoreip: Vec::new(),
        ignoreself: None,
        ignorecommand: None,
        ignorecache: None,
        usedns: None,
        logencoding: None,
        logtimezone: None,
        journalmatch: Vec::new(),
        port: None,
        protocol: None,
        chain: None,
        actions: Vec::new(),
        action_raw: String::new(),
        values: Vec::new(),
    };
    let source = source_any(&def)?;
    start_jail_with(state, def, source)
}

fn start_jail_with(state: &Shared, def: JailDef, mut source: JailSource) -> Result<(), String> {
    let name = def.name.clone();
    flog!(Info, "jail", "Creating new jail '{name}'");
    let mut jail = Jail::new(def.clone()).map_err(|e| e.to_string())?;
    let built = actions::build(&def)?;
    let action_names: Vec<String> = built.iter().map(|a| a.name().to_string()).collect();
    let history_matches =
        actions::uses_tag(&built, "ipmatches") || actions::uses_tag(&built, "ipjailmatches");
    let backend = source.backend_name();
    flog!(Info, "jail", "Jail '{name}' uses {backend} {{}}");
    let (tx, rx) = mpsc::unbounded_channel();
    let now = state.borrow().clock.now();
    restore_positions(&state.borrow(), &def, &mut source, now);
    // One reader for the jails that follow the same files from the same positions.
    let source = super::shared::share(&state.borrow(), &def, source);
    let _ = tx.send(Job::Start);
    // Restore the bans still in force.
    let mut restored = Vec::new();
    {
        let _lines = super::log::Batch::begin();
        let mut st = state.borrow_mut();
        if let Some(store) = st.store.as_mut() {
            let _ = store.add_jail(&name);
            match store.current_bans_for(&name, now, jail.max_bantime()) {
                Ok(bans) => {
                    for b in bans {
                        let t = Ticket {
                            id: HostId::parse(&b.id),
                            time: b.banned_at,
                            bantime: b.bantime,
                            ban_count: b.ban_count,
                            failures: u32::try_from(b.data.failures).unwrap_or(u32::MAX),
                            matches: b.data.matches,
                            fields: Vec::new(),
                            restored: true,
                        };
                        if let Some(Event::Ban(t)) = jail.restore(t, now) {
                            restored.push(t);
                        }
                    }
                }
                Err(e) => flog!(Error, "database", "[{name}] {e}"),
            }
        }
    }
    let metrics = state.borrow().metrics.clone();
    let jail_metrics = metrics.jail(&name, jail.bantime(), jail.findtime(), jail.maxretry());
    jail_metrics.restored(&metrics, &restored, now);
    // The fleet's stored remote bans join the same restore batch (one reconciliation).
    let remote = super::fleet::restored_for(&mut jail, now, &restored);
    let remote_tickets: Vec<Ticket> = remote.iter().map(|b| b.ticket.clone()).collect();
    jail_metrics.restored(&metrics, &remote_tickets, now);
    super::lean::jail_starting();
    let _ = tx.send(Job::Restore(
        restored
            .into_iter()
            .map(|t| actions::BanJob {
                ticket: t,
                ipmatches: None,
                ipjailmatches: None,
                fleet: None,
            })
            .chain(remote)
            .collect(),
    ));
    let stop = Rc::new(Notify::new());
    let clock = state.borrow().clock.clone();
    let hook = crate::metrics::JailHook {
        m: metrics.clone(),
        j: jail_metrics.clone(),
    };
    let action_task =
        tokio::task::spawn_local(actions::worker(name.clone(), built, rx, clock, hook));
    {
        let mut st = state.borrow_mut();
        let c = jail.counts();
        jail_metrics.set_current(c.currently_failed, c.currently_banned);
        st.jails.push(JailRt {
            jail,
            source,
            jobs: tx,
            action_names,
            metrics: jail_metrics,
            history_matches,
            idle: false,
            positions_saved: Vec::new(),
            next_position_save: 0.0,
            stop: stop.clone(),
            task: None,
            action_task: Some(action_task),
        });
        st.timer.notify_one();
    }
    let task = tokio::task::spawn_local(source_task(state.clone(), name.clone(), stop));
    if let Some(rt) = state.borrow_mut().jail_mut(&name) {
        rt.task = Some(task);
    }
    // "Jail '<name>' started" is logged by the action task once the actions started and the
    // restored bans are in place: from then on the jail's firewall state is complete.
    Ok(())
}

/// Stops jail `name`: its source task ends, its actions flush and stop; bans stay in the store.
pub async fn stop_jail(state: &Shared, name: &str) -> bool {
    let (idx, stop) = {
        let st = state.borrow();
        match st.jails.iter().position(|j| j.jail.name() == name) {
            Some(i) => (i, st.jails[i].stop.clone()),
            None => return false,
        }
    };
    stop.notify_one();
    let (task, action_task, jobs, tickets) = {
        let mut st = state.borrow_mut();
        let now = st.clock.now();
        st.save_positions(idx, now);
        let mut rt = st.jails.remove(idx);
        let mut tickets = rt.jail.take_all();
        // Remote bans leave the firewall with the jail's own (kept to restore at its next start).
        let remote = super::fleet::stop_remote(name, &tickets);
        tickets.extend(remote);
        let reason = if st.reloading {
            crate::metrics::UnbanReason::Reload
        } else {
            crate::metrics::UnbanReason::Stop
        };
        rt.metrics.tickets_ended(&st.metrics, &tickets, reason, now);
        st.metrics.jail_stopped(name);
        (rt.task.take(), rt.action_task.take(), rt.jobs, tickets)
    };
    if let Some(t) = task {
        let _ = t.await;
    }
    let (done_tx, done_rx) = oneshot::channel();
    let _ = jobs.send(Job::Stop {
        tickets,
        done: done_tx,
    });
    let _ = done_rx.await;
    if let Some(t) = action_task {
        let _ = t.await;
    }
    flog!(Info, "jail", "Jail '{name}' stopped");
    true
}

/// Follows one jail's logs until told to stop.
async fn source_task(state: Shared, name: String, stop: Rc<Notify>) {
    // A duplicate of the inotify descriptor, registered with the reactor: readable when the
    // source has events (the source itself drains them when polled).
    let wake: Option<AsyncFd<OwnedFd>> = {
        let st = state.borrow();
        st.jail(&name)
            .and_then(|j| j.source.wake_fd())
            // SAFETY: the OwnedFd is a fresh duplicate owned by the AsyncFd for its whole life;
            // it stays open and names the same inotify instance until dropped.
            .and_then(|fd| {
                unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }.ok()
            })
    };
    // `ignoreip = file:PATH`: looked at (one stat per file) at most once a second.
    let mut next_ignore_reload = tokio::time::Instant::now() + POLL_INTERVAL;
    loop {
        if tokio::time::Instant::now() >= next_ignore_reload {
            next_ignore_reload = tokio::time::Instant::now() + POLL_INTERVAL;
            let mut st = state.borrow_mut();
            if let Some(j) = st.jails.iter_mut().find(|j| j.jail.name() == name) {
                j.jail.ignore.reload_files();
            }
        }
        // Read everything pending, yielding between budget-sized chunks.
        loop {
            let (more, lookups) = {
                let mut st = state.borrow_mut();
                let Some(idx) = st.jails.iter().position(|j| j.jail.name() == name) else {
                    return;
                };
                let more = !st.jails[idx].idle && st.poll_jail(idx);
                // The ignore look-ups of every jail this read gave lines to.
                let lookups: Vec<(String, Vec<_>)> = super::shared::readers_with(&st, idx)
                    .into_iter()
                    .map(|i| {
                        let j = &mut st.jails[i].jail;
                        (j.name().to_string(), j.take_lookups())
                    })
                    .collect();
                (more, lookups)
            };
            for (jail, lookups) in lookups {
                spawn_lookups(&state, &jail, lookups);
            }
            if !more {
                break;
            }
            tokio::task::yield_now().await;
        }
        match &wake {
            Some(fd) => {
                tokio::select! {
                    r = fd.readable() => {
                        if let Ok(mut g) = r {
                            g.clear_ready();
                        }
                    }
                    _ = tokio::time::sleep(POLL_INTERVAL) => {}
                    _ = stop.notified() => return,
                }
            }
            None => {
                tokio::select! {
                    _ = tokio::time::sleep(POLL_INTERVAL) => {}
                    _ = stop.notified() => return,
                }
            }
        }
    }
}

/// While the store cannot write, tries every 2 s to write what it queued; logs the recovery.
pub async fn store_retry_task(state: Shared) {
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut st = state.borrow_mut();
        let Some(store) = st.store.as_mut() else {
            continue;
        };
        if let Ok(Some(n)) = store.retry() {
            flog!(
                Notice,
                "database",
                "The database {} can be written again: {n} queued change(s) written",
                store.path().display()
            );
        }
    }
}

/// How long an `ignorecommand` may run; after that it is killed and the id is not ignored.
pub const IGNORE_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a host name of `ignoreip` may take to resolve; after that it counts as no address
/// (until the next attempt). Host names of log lines (`usedns = yes|warn`) have as long; after
/// that they count as a name without address, cached as such for fail2ban's five minutes.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Ignore look-ups running at once (over every jail); the others wait for a slot.
static LOOKUP_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(32);

/// Runs the look-ups of jail `name` off the engine (a resolver thread, a child process), each
/// with its timeout: the ignore rules' (`ignoreip` names, `ignorecommand`) and the host names
/// of log lines (`usedns`). Each answer goes back to the jail, whose waiting failures (of that
/// id or name only) then go on.
pub fn spawn_lookups(state: &Shared, name: &str, lookups: Vec<ferroban_engine::ignore::Lookup>) {
    use ferroban_engine::ignore::Lookup;
    for lookup in lookups {
        let state = state.clone();
        let name = name.to_string();
        tokio::task::spawn_local(async move {
            let _slot = LOOKUP_SLOTS.acquire().await;
            let answer = match &lookup {
                Lookup::Resolve(host) => {
                    let h = host.clone();
                    let r = tokio::time::timeout(
                        RESOLVE_TIMEOUT,
                        tokio::task::spawn_blocking(move || {
                            use std::net::ToSocketAddrs;
                            (h.as_str(), 0)
                                .to_socket_addrs()
                                .map(|it| it.map(|a| a.ip()).collect::<Vec<_>>())
                                .unwrap_or_default()
                        }),
                    )
                    .await;
                    let addrs = match r {
                        Ok(Ok(a)) => a,
                        _ => {
                            flog!(
                                Warning,
                                "filter",
                                "[{name}] ignoreip: {host} did not resolve within {} s",
                                RESOLVE_TIMEOUT.as_secs()
                            );
                            Vec::new()
                        }
                    };
                    Answer::Resolve(addrs)
                }
                Lookup::Command(cmd) => Answer::Command(run_ignore_command(&name, cmd).await),
                Lookup::HostName(host) => Answer::HostName(resolve_log_host(host).await),
            };
            let lookups = {
                let mut st = state.borrow_mut();
                let now = st.clock.now();
                let Some(idx) = st.jails.iter().position(|j| j.jail.name() == name) else {
                    return;
                };
                let State { jails, store, .. } = &mut *st;
                let jail = &mut jails[idx].jail;
                if let Some(s) = store.as_mut() {
                    // The bans of the failures that waited: one transaction, with the fleet's
                    // publication of them.
                    s.begin_batch();
                }
                let events = match (&lookup, answer) {
                    (Lookup::Resolve(host), Answer::Resolve(addrs)) => {
                        jail.answer_resolve(host, addrs, now, store.as_mut())
                    }
                    (Lookup::Command(cmd), Answer::Command(ok)) => {
                        jail.answer_command(cmd, ok, now, store.as_mut())
                    }
                    (Lookup::HostName(host), Answer::HostName(addrs)) => {
                        jail.answer_dns(host, addrs, now, store.as_mut())
                    }
                    _ => Vec::new(),
                };
                super::fleet::publish_bans(store.as_mut(), jail.name(), &events);
                let more = jail.take_lookups();
                st.end_store_batch();
                st.metric_events(idx, &events, crate::metrics::BanOrigin::Log, None);
                st.dispatch(idx, events);
                more
            };
            spawn_lookups(&state, &name, lookups);
        });
    }
}

enum Answer {
    Resolve(Vec<std::net::IpAddr>),
    Command(bool),
    HostName(Result<Vec<std::net::IpAddr>, String>),
}

/// Resolves a host name a failregex found (`usedns = yes|warn`) on a blocking thread, waiting
/// at most [`RESOLVE_TIMEOUT`]: its addresses, or why there are none (the resolver's error, or
/// the timeout; the thread of a look-up that timed out runs on until the resolver gives up).
async fn resolve_log_host(host: &str) -> Result<Vec<std::net::IpAddr>, String> {
    let h = host.to_string();
    let lookup = tokio::task::spawn_blocking(move || {
        use std::net::ToSocketAddrs;
        (h.as_str(), 0)
            .to_socket_addrs()
            .map(|it| it.map(|a| a.ip()).collect::<Vec<_>>())
            .map_err(|e| e.to_string())
    });
    match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => Err(format!("resolver thread failed: {e}")),
        Err(_) => Err(format!("no answer within {} s", RESOLVE_TIMEOUT.as_secs())),
    }
}

/// Runs one rendered `ignorecommand` through `/bin/sh -c` with [`IGNORE_COMMAND_TIMEOUT`];
/// `true` when it exited with 0.
async fn run_ignore_command(jail: &str, cmd: &str) -> bool {
    let child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            flog!(Error, "filter", "[{jail}] ignorecommand {cmd:?}: {e}");
            return false;
        }
    };
    match tokio::time::timeout(IGNORE_COMMAND_TIMEOUT, child.wait()).await {
        Ok(Ok(st)) => st.success(),
        Ok(Err(e)) => {
            flog!(Error, "filter", "[{jail}] ignorecommand {cmd:?}: {e}");
            false
        }
        Err(_) => {
            flog!(
                Warning,
                "filter",
                "[{jail}] ignorecommand {cmd:?} still running after {} s: killed, not ignored",
                IGNORE_COMMAND_TIMEOUT.as_secs()
            );
            let _ = child.kill().await;
            false
        }
    }
}

/// Unbans when bans end.
pub async fn timer_task(state: Shared) {
    loop {
        let (next, timer, now) = {
            let mut st = state.borrow_mut();
            let next = st.expire();
            (next, st.timer.clone(), st.clock.now())
        };
        let wait = next.map_or(Duration::from_secs(3600), |t| {
            Duration::from_secs_f64((t - now).clamp(0.0, 3600.0))
        });
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = timer.notified() => {}
        }
    }
}

/// Serves control requests.
pub async fn control_task(state: Shared, mut rx: mpsc::Receiver<ControlRequest>) {
    while let Some(req) = rx.recv().await {
        let res = super::dispatch::handle(&state, &req.argv).await;
        let _ = req.reply.send(res);
    }
}
