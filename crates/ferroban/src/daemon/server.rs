//! The running daemon: jails, their log sources, the unban timer, the control socket and signals,
//! on one current-thread tokio runtime.
//!
//! One owner per piece of mutable state: each jail's state (the engine's jail, its log source
//! and positions) is owned by the jail's task ([`super::jailtask`]) and reached only through
//! messages to it; the shared [`State`] behind `Rc<RefCell<…>>` holds the jails' handles and the
//! daemon-wide parts (settings, the ban store, metrics, notifies), borrowed only between awaits.
//! Each jail's actions run in their own task (in order, one command at a time, as fail2ban's
//! per-jail action thread does), so a slow action never delays matching or the other jails.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use ferroban_bans::{LogPosition, Store, StoreError, StoreOptions};
use ferroban_config::{JailDef, JailsOptions};
use ferroban_source::{
    Backend, FirstLineHash, LogEncoding, LogPathSpec, LogSource, Notice, Position, SourceOptions,
    StartAt,
};
use tokio::sync::{Notify, mpsc, oneshot};

use super::actions::{self, Job};
use super::jail::{Event, Jail, Ticket};
use super::jailtask::{self, JailHandle, JailRt, JailSender};
use super::journal::{self, JailSource};
use super::storethread::StoreHandle;
use crate::clock::Clock;
use crate::control::server::ControlRequest;
use crate::flog;
use crate::ip::HostId;

/// How often every source is polled even without inotify events (and the polling backend's
/// interval, fail2ban's `sleeptime`).
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Bytes a jail reads and matches before it yields to the other tasks (about 400 nginx lines,
/// well under a millisecond): while jails catch up with a large append, the control socket, the
/// unban timer and the other jails get the thread between slices. A control request needs a few
/// scheduler rounds (accept, read, dispatch, reply), each one slice of every busy jail.
pub const INGEST_SLICE_BYTES: u64 = 64 * 1024;

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

/// What the tasks share: the jails' handles and the daemon-wide state (no jail's own state:
/// that is its task's).
pub struct State {
    /// Settings.
    pub settings: Settings,
    /// The running jails' handles, in configuration order.
    pub jails: Vec<JailHandle>,
    /// The ban database.
    pub store: Option<StoreHandle>,
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
    /// Shared readers that have not read yet (a jail starting may join one).
    pub(super) readers: Vec<super::shared::SharedSource>,
    /// Jails starting while the daemon serves (see [`Starts`]).
    pub(super) starting: Starts,
}

/// The jails starting while the daemon serves, from the start's beginning until the jail's
/// tasks run (or the start failed): a `stop` of one, or the shutdown, waits for its start to
/// end, then stops it.
#[derive(Default)]
pub struct Starts {
    /// Each starting jail's name, with the history changes other jails make while it waits for
    /// its start-up reads, kept for it.
    pub(super) jails: Vec<(String, jailtask::HistoryWait)>,
    /// Wakes those waiting for a start to end.
    ended: Rc<Notify>,
    /// The daemon is shutting down: no jail starts any more.
    closed: bool,
}

impl Starts {
    /// Whether jail `name` is starting.
    pub fn has(&self, name: &str) -> bool {
        self.jails.iter().any(|(n, _)| n == name)
    }

    /// The names of the jails starting.
    pub fn names(&self) -> Vec<String> {
        self.jails.iter().map(|(n, _)| n.clone()).collect()
    }
}

/// A start under way (see [`Starts`]): it ends when dropped, whichever way the start went.
struct StartGuard {
    state: Shared,
    wait: jailtask::HistoryWait,
}

impl StartGuard {
    /// Begins the start of jail `name`, which reserves the name: an error when a jail of that
    /// name runs or is starting (fail2ban's error for an existing jail), or once the daemon is
    /// shutting down.
    fn begin(state: &Shared, name: &str) -> Result<StartGuard, String> {
        let mut st = state.borrow_mut();
        if st.starting.closed {
            return Err("the server is shutting down".to_string());
        }
        if st.jail(name).is_some() || st.starting.has(name) {
            return Err(crate::control::proto::duplicate_jail(name));
        }
        let wait = jailtask::HistoryWait::default();
        st.starting.jails.push((name.to_string(), wait.clone()));
        Ok(StartGuard {
            state: state.clone(),
            wait,
        })
    }
}

impl Drop for StartGuard {
    fn drop(&mut self) {
        // Never borrowed here but while a panic unwinds; the entry then stays.
        if let Ok(mut st) = self.state.try_borrow_mut() {
            let wait = &self.wait;
            st.starting.jails.retain(|(_, w)| !Rc::ptr_eq(w, wait));
            st.starting.ended.notify_waiters();
        }
    }
}

/// Waits until no start of jail `name` is under way.
pub(super) async fn start_ended(state: &Shared, name: &str) {
    loop {
        let ended = state.borrow().starting.ended.clone();
        // Registered before the check: a start that ends after it wakes this wait.
        let woken = ended.notified();
        if !state.borrow().starting.has(name) {
            return;
        }
        woken.await;
    }
}

/// The shared state.
pub type Shared = Rc<RefCell<State>>;

impl State {
    /// The handle of the jail named `name`.
    pub fn jail(&self, name: &str) -> Option<&JailHandle> {
        self.jails.iter().find(|j| j.name() == name)
    }

    /// The sender of the jail named `name`'s task.
    pub fn sender(&self, name: &str) -> Option<JailSender> {
        self.jail(name).map(JailHandle::sender)
    }

    /// The names of the running jails, in configuration order.
    pub fn jail_names(&self) -> Vec<String> {
        self.jails.iter().map(|j| j.name().to_string()).collect()
    }

    /// Ends the store's batch: the outermost end sends it to the store thread, which commits it
    /// (a failure is logged once; the store then keeps its writes in memory). Nothing waits for
    /// it: the writes sent later are written after it.
    pub fn end_store_batch(&mut self) {
        if let Some(s) = self.store.as_mut() {
            s.end_batch();
        }
        // The fleet's publications written in the batch go to the publisher once committed.
        super::fleet::wake(self.store.as_ref());
    }

    /// [`end_store_batch`](Self::end_store_batch), then `after` on the store: its answer comes
    /// once the outermost batch is committed (`None`: no store).
    pub fn end_store_batch_then<R: Send + 'static>(
        &mut self,
        after: impl FnOnce(&mut Store) -> R + Send + 'static,
    ) -> Option<oneshot::Receiver<R>> {
        let done = self.store.as_mut().map(|s| s.end_batch_then(after));
        // The fleet's publications written in the batch go to the publisher once committed.
        super::fleet::wake(self.store.as_ref());
        done
    }
}

/// Runs `f` on the task of jail `name` and returns its answer; `None` when there is no such
/// jail (or it stopped meanwhile).
pub async fn call<R: 'static>(
    state: &Shared,
    name: &str,
    f: impl FnOnce(&mut JailRt, &mut State) -> R + 'static,
) -> Option<R> {
    let sender = state.borrow().sender(name)?;
    sender.call(f).await
}

/// Runs `f` on the task of every jail in turn (configuration order); the answers of those that
/// answered, with their names.
pub async fn call_each<R: 'static>(
    state: &Shared,
    f: impl Fn(&mut JailRt, &mut State) -> R + Clone + 'static,
) -> Vec<(String, R)> {
    let senders: Vec<(String, JailSender)> = state
        .borrow()
        .jails
        .iter()
        .map(|j| (j.name().to_string(), j.sender()))
        .collect();
    let mut out = Vec::with_capacity(senders.len());
    for (name, s) in senders {
        if let Some(r) = s.call(f.clone()).await {
            out.push((name, r));
        }
    }
    out
}

/// Ends bans whose time is up in every jail, the jails' own and the fleet's remote bans alike;
/// returns when the next one ends.
pub async fn expire_all(state: &Shared) -> Option<f64> {
    let next = call_each(state, |rt, st| jailtask::expire(st, rt)).await;
    next.into_iter()
        .filter_map(|(_, d)| d)
        .min_by(f64::total_cmp)
}

/// The stored matches of `id`: over every jail (`<ipmatches>`) and in `jail` (`<ipjailmatches>`),
/// from one read of the store.
pub(super) fn store_matches(
    store: &Store,
    id: &str,
    jail: &str,
) -> Option<(Vec<String>, Vec<String>)> {
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

/// Gives `jail` the ban history its `bantime.increment` reads, when it needs one
/// ([`Jail::needs_history`]): `rows`, its rows of the store's history, or every jail's with
/// `bantime.overalljails` (`all`). Read once, at the jail's start (or when a reload changes what
/// it reads) with its other start-up reads ([`StartRead`]), before its task serves; the jail
/// keeps it current from then on (its own bans, the other jails' through
/// [`jailtask::write_store`], the purges). Without a database there is no history (as before:
/// the increment needs the database).
pub(super) fn take_history(
    jail: &mut Jail,
    all: bool,
    rows: Result<Vec<ferroban_bans::HistoryRow>, ferroban_bans::StoreError>,
) {
    match rows {
        Ok(rows) => jail.set_history(Some(ferroban_bans::History::from_rows(all, rows))),
        Err(e) => flog!(Error, "database", "[{}] {e}", jail.name()),
    }
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

/// What the start of a jail reads from the store, as one message to the store thread (awaited
/// while the daemon serves: the runtime never waits for the store thread): its read positions
/// or journal cursor, its ban history (`bantime.increment`), its bans in force.
pub(super) struct StartRead {
    jail: String,
    /// Its journal cursor (a journal source).
    cursor: bool,
    /// Its read positions (a source of files).
    positions: bool,
    /// Its ban history, `Some(all)` ([`Jail::needs_history`]).
    history: Option<bool>,
    /// Its bans in force at `.0`, at most `.1` long; the jail is added to the store first.
    bans: Option<(f64, Option<f64>)>,
}

/// The store's answer to a [`StartRead`] (`None`: not read, or no store).
#[derive(Default)]
pub(super) struct StartAnswer {
    cursor: Option<Result<Option<String>, StoreError>>,
    positions: Option<Result<Vec<LogPosition>, StoreError>>,
    history: Option<Result<Vec<ferroban_bans::HistoryRow>, StoreError>>,
    bans: Option<Result<Vec<ferroban_bans::ActiveBan>, StoreError>>,
}

impl StartRead {
    /// Nothing to read.
    fn is_empty(&self) -> bool {
        !self.cursor && !self.positions && self.history.is_none() && self.bans.is_none()
    }

    /// Reads it (on the store thread).
    fn run(self, s: &mut Store) -> StartAnswer {
        let name = self.jail.as_str();
        StartAnswer {
            cursor: self.cursor.then(|| journal::stored_cursor(s, name)),
            positions: self.positions.then(|| s.positions(name)),
            history: self
                .history
                .map(|all| s.history_rows((!all).then_some(name))),
            bans: self.bans.map(|(now, max)| {
                let _ = s.add_jail(name);
                s.current_bans_for(name, now, max)
            }),
        }
    }

    /// Sends it to the store thread; the answer comes on the receiver (`None`: no store).
    fn ask(self, st: &State) -> Option<oneshot::Receiver<StartAnswer>> {
        st.store.as_ref().map(|s| s.ask(move |s| self.run(s)))
    }
}

/// Sets `source` of jail `def` to the read positions (or journal cursor) stored for the jail,
/// `answer`'s.
fn restore_positions(def: &JailDef, source: &mut JailSource, answer: &mut StartAnswer, now: f64) {
    let name = &def.name;
    if let JailSource::Journal(j) = source {
        let findtime = def.findtime.unwrap_or(super::jail::DEFAULT_FINDTIME);
        j.restore(name, answer.cursor.take(), now, findtime);
    }
    if let (Some(read), JailSource::Files(source)) = (answer.positions.take(), source) {
        match read {
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
    let missing = || format!("Sorry but the jail '{name}' does not exist");
    let old = call(state, &name, |rt, _| rt.jail.def().clone())
        .await
        .ok_or_else(missing)?;
    if old == def {
        flog!(Info, "jail", "Jail '{name}' reloaded (unchanged)");
        return Ok(());
    }
    flog!(Info, "jail", "Reload jail '{name}'");
    let jail = Jail::new(def.clone()).map_err(|e| e.to_string())?;
    let source = if source_settings(&old) != source_settings(&def) {
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
    // On the jail's task, between two of its reads: the old source's positions are saved, the
    // new source starts there; the jail takes its new settings; the actions get the reload. What
    // that reads from the store (the new source's positions, a history) is one message to the
    // store thread, which the jail's task awaits (serving nothing else of the jail meanwhile;
    // the runtime serves the others).
    let jail_name = name.clone();
    let done_rx = call(state, &name, move |rt, st| {
        let now = st.clock.now();
        if source.is_some() {
            jailtask::save_positions(st, rt, now);
        }
        rt.jail.reconfigure(jail);
        let (tx, rx) = oneshot::channel();
        // A reload that changed what bantime.increment reads loads that history.
        let history = rt.jail.needs_history();
        let what = StartRead {
            jail: jail_name,
            cursor: matches!(source, Some(JailSource::Journal(_))),
            positions: matches!(source, Some(JailSource::Files(_))),
            history,
            bans: None,
        };
        let finish = move |mut answer: StartAnswer, rt: &mut JailRt, st: &mut State| {
            if let Some(mut src) = source {
                restore_positions(&def, &mut src, &mut answer, now);
                rt.set_source(src);
                rt.jail.set_in_operation(false);
            }
            if let (Some(all), Some(rows)) = (history, answer.history) {
                take_history(&mut rt.jail, all, rows);
            }
            rt.action_names = action_names;
            rt.history_matches = history_matches;
            let (done, done_rx) = oneshot::channel();
            let mut tickets = rt.jail.tickets_in_force();
            tickets.extend(super::fleet::remote_tickets(&rt.jail, rt.remote.as_ref()));
            let job = Job::Reload {
                actions: wanted,
                tickets,
                bantime: rt.jail.bantime(),
                done,
            };
            // The configured bantime/findtime/maxretry gauges follow the new configuration.
            let j = &rt.jail;
            st.metrics
                .jail(j.name(), j.bantime(), j.findtime(), j.maxretry());
            let _ = tx.send(rt.jobs.send(job).is_ok().then_some(done_rx));
        };
        match (!what.is_empty()).then(|| what.ask(st)).flatten() {
            Some(answer) => rt.then_read(answer, finish),
            None => finish(StartAnswer::default(), rt, st),
        }
        rx
    })
    .await
    .ok_or_else(missing)?;
    if let Ok(Some(rx)) = done_rx.await {
        let _ = rx.await;
    }
    state.borrow().timer.notify_one();
    flog!(Info, "jail", "Jail '{name}' reloaded");
    Ok(())
}

/// Unbans every ban of jail `name` (`reload --unban`): actionunban for each, removed from the
/// store. Returns how many.
pub async fn unban_jail(state: &Shared, name: &str) -> usize {
    call(state, name, |rt, st| jailtask::unban_all_in(st, rt))
        .await
        .unwrap_or(0)
}

/// Creates jail `def`, restores its positions and bans from the store and starts its tasks, at
/// daemon start (before the control socket serves): waits for the store thread's answer. While
/// the daemon serves, see [`start_jail_async`].
pub fn start_jail(state: &Shared, def: JailDef) -> Result<(), String> {
    let source = source_of(&def)?;
    let starting = Starting::new(state, def, source)?;
    let what = starting.reads();
    let answer = {
        let st = state.borrow();
        st.store.as_ref().map(|s| s.read(move |s| what.run(s)))
    };
    starting.finish(state, answer.unwrap_or_default(), None);
    Ok(())
}

/// [`start_jail`] while the daemon serves (`reload`, `start <JAIL>`): the reads that start the
/// jail are one message to the store thread, awaited (the control socket and the other jails
/// are served meanwhile).
pub async fn start_jail_async(state: &Shared, def: JailDef) -> Result<(), String> {
    let source = source_of(&def)?;
    start_jail_with(state, def, source).await
}

/// `add <JAIL> [<BACKEND>]`: creates and starts an empty jail named `name` (no filter, no log
/// path, no action; fail2ban's defaults) that follows its logs with `backend`.
pub async fn add_jail(state: &Shared, name: &str, backend: &str) -> Result<(), String> {
    if state.borrow().starting.has(name) {
        return Err(crate::control::proto::duplicate_jail(name));
    }
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
    start_jail_with(state, def, source).await
}

/// Starts jail `def` reading `source` while the daemon serves: its start-up reads are one
/// awaited message to the store thread. Meanwhile the changes other jails make to the ban
/// history are kept for it (it is not among the jails yet), and applied to the history it read.
async fn start_jail_with(state: &Shared, def: JailDef, source: JailSource) -> Result<(), String> {
    // From here until the jail's tasks run, its name is among the jails starting: a `stop` of
    // it or the shutdown waits for this start to end, then stops the jail.
    let guard = StartGuard::begin(state, &def.name)?;
    let starting = Starting::new(state, def, source)?;
    let what = starting.reads();
    let asked = what.ask(&state.borrow());
    let answer = match asked {
        Some(rx) => rx.await.unwrap_or_default(),
        None => StartAnswer::default(),
    };
    starting.finish(state, answer, Some(&guard.wait));
    drop(guard);
    Ok(())
}

/// A jail being started: what its start built before it reads the store.
struct Starting {
    def: JailDef,
    jail: Jail,
    source: JailSource,
    built: Vec<actions::JailAction>,
    history_matches: bool,
    now: f64,
}

impl Starting {
    /// Creates jail `def` reading `source` and its actions (logged as before).
    fn new(state: &Shared, def: JailDef, source: JailSource) -> Result<Starting, String> {
        let name = def.name.clone();
        flog!(Info, "jail", "Creating new jail '{name}'");
        let jail = Jail::new(def.clone()).map_err(|e| e.to_string())?;
        let built = actions::build(&def)?;
        let history_matches =
            actions::uses_tag(&built, "ipmatches") || actions::uses_tag(&built, "ipjailmatches");
        let backend = source.backend_name();
        flog!(Info, "jail", "Jail '{name}' uses {backend} {{}}");
        let now = state.borrow().clock.now();
        Ok(Starting {
            def,
            jail,
            source,
            built,
            history_matches,
            now,
        })
    }

    /// What it reads from the store: its positions (or cursor), history and bans.
    fn reads(&self) -> StartRead {
        StartRead {
            jail: self.def.name.clone(),
            cursor: matches!(self.source, JailSource::Journal(_)),
            positions: matches!(self.source, JailSource::Files(_)),
            history: self.jail.needs_history(),
            bans: Some((self.now, self.jail.max_bantime())),
        }
    }

    /// Starts the jail with the store's `answer` (its positions, history and bans); `wait`: the
    /// history changes of the other jails made since it was read.
    fn finish(self, state: &Shared, mut answer: StartAnswer, wait: Option<&jailtask::HistoryWait>) {
        let Starting {
            def,
            mut jail,
            mut source,
            built,
            history_matches,
            now,
        } = self;
        let name = def.name.clone();
        let action_names: Vec<String> = built.iter().map(|a| a.name().to_string()).collect();
        let (tx, rx) = mpsc::unbounded_channel();
        // The stored positions it starts at (none when they could not be read).
        let started_at = match &answer.positions {
            Some(Ok(ps)) => ps.clone(),
            _ => Vec::new(),
        };
        restore_positions(&def, &mut source, &mut answer, now);
        // One reader for the jails that follow the same files from the same positions.
        let source = super::shared::share(&mut state.borrow_mut(), &def, &jail, source, started_at);
        let _ = tx.send(Job::Start);
        // Restore the bans still in force.
        let mut restored = Vec::new();
        {
            let _lines = super::log::Batch::begin();
            // Its ban history (bantime.increment), kept in memory by the jail from now on.
            if let (Some(all), Some(rows)) = (jail.needs_history(), answer.history.take()) {
                take_history(&mut jail, all, rows);
                for w in wait.map(|w| w.take()).unwrap_or_default() {
                    w.apply(&mut jail);
                }
            }
            match answer.bans.take() {
                Some(Ok(bans)) => {
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
                Some(Err(e)) => flog!(Error, "database", "[{name}] {e}"),
                None => {}
            }
        }
        let metrics = state.borrow().metrics.clone();
        let jail_metrics = metrics.jail(&name, jail.bantime(), jail.findtime(), jail.maxretry());
        jail_metrics.restored(&metrics, &restored, now);
        // The fleet's stored remote bans join the same restore batch (one reconciliation).
        let mut remote_bans = None;
        let remote = super::fleet::restored_for(&mut jail, &mut remote_bans, now, &restored);
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
        let clock = state.borrow().clock.clone();
        let hook = crate::metrics::JailHook {
            m: metrics.clone(),
            j: jail_metrics.clone(),
        };
        let action_task =
            tokio::task::spawn_local(actions::worker(name.clone(), built, rx, clock, hook));
        let c = jail.counts();
        jail_metrics.set_current(c.currently_failed, c.currently_banned);
        let mut rt = JailRt::new(
            jail,
            source,
            tx,
            action_names,
            jail_metrics,
            history_matches,
        );
        rt.remote = remote_bans;
        let handle = jailtask::spawn(state, rt, action_task);
        let mut st = state.borrow_mut();
        st.jails.push(handle);
        st.timer.notify_one();
        // "Jail '<name>' started" is logged by the action task once the actions started and the
        // restored bans are in place: from then on the jail's firewall state is complete.
    }
}

/// Stops jail `name`: its task ends (after the messages queued before), its actions flush and
/// stop; bans stay in the store.
pub async fn stop_jail(state: &Shared, name: &str) -> bool {
    // A jail still starting is stopped once started.
    start_ended(state, name).await;
    let mut handle = {
        let mut st = state.borrow_mut();
        match st.jails.iter().position(|j| j.name() == name) {
            Some(i) => st.jails.remove(i),
            None => return false,
        }
    };
    let Some(mut rt) = jailtask::stop(&mut handle).await else {
        return false;
    };
    let tickets = {
        let mut st = state.borrow_mut();
        let now = st.clock.now();
        jailtask::save_positions(&mut st, &mut rt, now);
        super::shared::leave(name, &rt.source);
        let mut tickets = rt.jail.take_all();
        // Remote bans leave the firewall with the jail's own (kept to restore at its next start).
        let remote = super::fleet::stop_remote(name, rt.remote.take(), &tickets);
        tickets.extend(remote);
        let reason = if st.reloading {
            crate::metrics::UnbanReason::Reload
        } else {
            crate::metrics::UnbanReason::Stop
        };
        rt.metrics.tickets_ended(&st.metrics, &tickets, reason, now);
        st.metrics.jail_stopped(name);
        tickets
    };
    let (done_tx, done_rx) = oneshot::channel();
    let _ = rt.jobs.send(Job::Stop {
        tickets,
        done: done_tx,
    });
    let _ = done_rx.await;
    if let Some(t) = handle.action_task.take() {
        let _ = t.await;
    }
    flog!(Info, "jail", "Jail '{name}' stopped");
    true
}

/// Stops every jail, also those still starting (each once started); `stop --all`.
pub async fn stop_all_jails(state: &Shared) {
    let names: Vec<String> = {
        let st = state.borrow();
        let mut names = st.jail_names();
        names.extend(st.starting.names());
        names
    };
    for n in names {
        stop_jail(state, &n).await;
    }
}

/// The shutdown: no jail starts any more, every jail stops (those still starting once
/// started), then the store thread writes what was sent, closes the database (its WAL folded
/// back) and ends.
pub async fn shut_down(state: &Shared) {
    state.borrow_mut().starting.closed = true;
    loop {
        let idle = {
            let st = state.borrow();
            st.jails.is_empty() && st.starting.jails.is_empty()
        };
        if idle {
            break;
        }
        stop_all_jails(state).await;
    }
    let store = state.borrow_mut().store.take();
    if let Some(s) = store {
        s.close();
    }
}

/// While the store cannot write, tries every 2 s to write what it queued; logs the recovery.
pub async fn store_retry_task(state: Shared) {
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let st = state.borrow();
        // Only while it cannot write (the thread notes its fault).
        let Some(store) = st.store.as_ref().filter(|s| s.fault().is_some()) else {
            continue;
        };
        store.run(|s| {
            if let Ok(Some(n)) = s.retry() {
                flog!(
                    Notice,
                    "database",
                    "The database {} can be written again: {n} queued change(s) written",
                    s.path().display()
                );
            }
        });
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
            // The answer goes to the jail's task, which takes the look-ups it leads to.
            let Some(sender) = state.borrow().sender(&name) else {
                return;
            };
            sender.post(move |rt, st| {
                let now = st.clock.now();
                if let Some(s) = st.store.as_mut() {
                    // The bans of the failures that waited: one transaction, with the fleet's
                    // publication of them.
                    s.begin_batch();
                }
                let jail = &mut rt.jail;
                let events = match (&lookup, answer) {
                    (Lookup::Resolve(host), Answer::Resolve(addrs)) => {
                        jail.answer_resolve(host, addrs, now)
                    }
                    (Lookup::Command(cmd), Answer::Command(ok)) => {
                        jail.answer_command(cmd, ok, now)
                    }
                    (Lookup::HostName(host), Answer::HostName(addrs)) => {
                        jail.answer_dns(host, addrs, now)
                    }
                    _ => Vec::new(),
                };
                jailtask::write_store(st, rt);
                super::fleet::publish_bans(st.store.as_mut(), rt.jail.name(), &events);
                jailtask::metric_events(st, rt, &events, crate::metrics::BanOrigin::Log, None);
                // Their actions run once the store thread committed them.
                let c = jailtask::commit(st, rt, events, None);
                rt.after_commit(c);
            });
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

/// Unbans when bans end: asks each jail's task to end its bans that are due.
pub async fn timer_task(state: Shared) {
    loop {
        let next = expire_all(&state).await;
        let (timer, now) = {
            let st = state.borrow();
            (st.timer.clone(), st.clock.now())
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
