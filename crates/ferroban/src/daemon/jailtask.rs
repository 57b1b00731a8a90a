//! One task per jail: it owns the jail's mutable state ([`JailRt`]: the engine's [`Jail`], its
//! log source and read positions, its idle flag) and is the only code that touches it.
//!
//! Everything else reaches a jail through its [`JailSender`]: a [`JailMsg`] runs on the jail's
//! task, in the order sent, between two read slices of the jail ([`JailSender::call`] awaits the
//! answer, [`JailSender::post`] does not). The task reads its source one slice
//! ([`INGEST_SLICE_BYTES`](super::server::INGEST_SLICE_BYTES)) at a time and yields in between,
//! so a `status`, the unban timer and every other jail wait at most one slice of a busy jail.
//!
//! The shared [`State`] keeps only the jails' handles ([`JailHandle`]: name, sender, task
//! handles); the store, the metrics registry and the notifies stay there and are borrowed by a
//! jail's task only inside one message or one slice (never across an await). The bans of a
//! message or slice go to the store thread ([`super::storethread`]); the task awaits their
//! commit (serving nothing else of the jail meanwhile) before it logs `Ban` and hands them to
//! the actions, and only then answers a [`JailSender::call`].

use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::Arc;

use ferroban_bans::{BanRecord, HistoryChange, LogPosition};
use ferroban_source::Position;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot};

use super::actions::{self, Job};
use super::jail::{Event, Jail, StoreWrite, Ticket};
use super::journal::JailSource;
use super::server::{POLL_INTERVAL, Shared, State};
use crate::flog;
use crate::ip::HostId;

/// How often read positions are written to the store when they changed.
const POSITION_SAVE_INTERVAL: f64 = 5.0;

/// A jail's mutable state, owned by its task.
pub struct JailRt {
    /// The jail (engine).
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
    /// With a shared reader: the positions after the last lines it was given.
    pub(super) shared_at: Vec<Position>,
    /// Counts source replacements: the task then watches the new source's descriptor.
    source_gen: u64,
    /// What waits for the store thread before the jail's next message or read: bans to hand to
    /// the actions once committed, answers to send after them ([`settle`]).
    after: Vec<After>,
    /// The fleet's remote bans enforced in the jail (see [`super::fleet`]).
    pub(super) remote: Option<super::fleet::RemoteJail>,
    /// Whether the other jails' history changes can matter to it (see [`keeps_all`]): written
    /// by its task only, read by the others through its [`JailHandle`].
    all_history: Rc<std::cell::Cell<bool>>,
}

/// Whether `jail` keeps every jail's ban history or wants it (`bantime.overalljails`): only
/// then do the other jails' history changes reach it ([`Jail::history_changed`] keeps them only
/// in a history of every jail, and a jail that comes to want one reads it from the store after
/// the writes sent before).
fn keeps_all(jail: &Jail) -> bool {
    jail.keeps_all_history() || jail.history_wanted() == Some(true)
}

/// Work the jail's task does once the store thread committed what was sent before it.
enum After {
    /// Bans (and what came with them) to dispatch once their transaction is committed.
    Commit(Commit),
    /// An answer to send after them.
    Then(Box<dyn FnOnce()>),
    /// A store read to await, then what the jail does with its answer.
    Read(std::pin::Pin<Box<dyn std::future::Future<Output = JailWork>>>),
}

/// What happened to the ban history while a jail waited for its start-up reads, kept for it
/// in order (`State::starting`).
pub type HistoryWait = Rc<std::cell::RefCell<Vec<Waited>>>;

/// One thing a starting jail's history missed (see [`HistoryWait`]).
pub enum Waited {
    /// Changes another jail (named) made.
    Changes(Rc<str>, Rc<[HistoryChange]>),
    /// The store purged its history (`limit`, `outdated_factor`; see [`Jail::purge_history`]).
    /// Applying it again to rows read after the purge changes nothing.
    Purge(f64, f64),
}

impl Waited {
    /// Applies it to `jail`'s history.
    pub fn apply(self, jail: &mut Jail) {
        match self {
            Waited::Changes(from, changes) => jail.history_changed(&from, &changes),
            Waited::Purge(limit, factor) => jail.purge_history(limit, factor),
        }
    }
}

impl JailRt {
    /// A jail's state before its task starts.
    pub fn new(
        jail: Jail,
        source: JailSource,
        jobs: mpsc::UnboundedSender<Job>,
        action_names: Vec<String>,
        metrics: Arc<crate::metrics::JailMetrics>,
        history_matches: bool,
    ) -> JailRt {
        let shared_at = match &source {
            JailSource::Shared(s) => s.borrow().source.positions(),
            _ => Vec::new(),
        };
        JailRt {
            jail,
            source,
            jobs,
            action_names,
            metrics,
            history_matches,
            idle: false,
            positions_saved: Vec::new(),
            next_position_save: 0.0,
            shared_at,
            source_gen: 0,
            after: Vec::new(),
            remote: None,
            all_history: Rc::new(std::cell::Cell::new(false)),
        }
    }

    /// The jail's name.
    pub fn name(&self) -> &str {
        self.jail.name()
    }

    /// Replaces the jail's log source (its shared reader, if any, is left); the positions of the
    /// new one are saved anew and the jail reads it from the task's next round.
    pub fn set_source(&mut self, source: JailSource) {
        super::shared::leave(self.jail.name(), &self.source);
        if let JailSource::Shared(s) = &source {
            self.shared_at = s.borrow().source.positions();
        }
        self.source = source;
        self.positions_saved = Vec::new();
        self.source_gen += 1;
    }

    /// Runs `f` once the commits the jail waits for are done and their bans dispatched (at
    /// once when it waits for none).
    fn then(&mut self, f: impl FnOnce() + 'static) {
        if self.after.is_empty() {
            f();
        } else {
            self.after.push(After::Then(Box::new(f)));
        }
    }

    /// Dispatches the events of `c` once its transaction is committed, before the jail's next
    /// message or read.
    pub(super) fn after_commit(&mut self, c: Commit) {
        self.after.push(After::Commit(c));
    }

    /// Runs `f` with the store's answer `read` once it came (after the commits the jail waits
    /// for; the jail serves nothing else meanwhile, the runtime serves the others); a read
    /// without answer counts as its default.
    pub(super) fn then_read<A: Default + 'static>(
        &mut self,
        read: oneshot::Receiver<A>,
        f: impl FnOnce(A, &mut JailRt, &mut State) + 'static,
    ) {
        self.after.push(After::Read(Box::pin(async move {
            let a = read.await.unwrap_or_default();
            Box::new(move |rt: &mut JailRt, st: &mut State| f(a, rt, st)) as JailWork
        })));
    }
}

/// Waits for the commits jail `rt` sent (no borrow of the shared state held: the other jails
/// and the control socket are served meanwhile), then dispatches their bans and sends the
/// answers that wait for them.
async fn settle(state: &Shared, rt: &mut JailRt) {
    while !rt.after.is_empty() {
        match rt.after.remove(0) {
            After::Commit(c) => c.finish(state, rt).await,
            After::Then(f) => f(),
            After::Read(read) => {
                let f = read.await;
                f(rt, &mut state.borrow_mut());
                rt.all_history.set(keeps_all(&rt.jail));
            }
        }
    }
}

/// Work for a jail's task: runs on the jail's state with the shared state borrowed.
pub type JailWork = Box<dyn FnOnce(&mut JailRt, &mut State)>;

/// A message to a jail's task.
pub enum JailMsg {
    /// Runs on the jail's state (a query or a change: control requests, the unban timer, the
    /// fleet, reloads).
    With(JailWork),
    /// One read of the shared reader the jail reads with (see [`super::shared`]).
    Lines(Rc<super::shared::SharedRead>),
    /// Ends the task: the state goes back through the channel (to be stopped).
    Stop(oneshot::Sender<JailRt>),
}

/// Sends messages to one jail's task.
#[derive(Clone)]
pub struct JailSender(mpsc::UnboundedSender<JailMsg>);

impl JailSender {
    /// Runs `f` on the jail's task and returns its answer; `None` when the jail has stopped.
    /// The answer comes once the bans `f` led to are committed and handed to the actions.
    pub async fn call<R: 'static>(
        &self,
        f: impl FnOnce(&mut JailRt, &mut State) -> R + 'static,
    ) -> Option<R> {
        let (tx, rx) = oneshot::channel();
        self.post(move |rt, st| {
            let r = f(rt, st);
            rt.then(move || {
                let _ = tx.send(r);
            });
        })
        .then_some(())?;
        rx.await.ok()
    }

    /// Queues `f` for the jail's task without waiting; `false` when the jail has stopped.
    pub fn post(&self, f: impl FnOnce(&mut JailRt, &mut State) + 'static) -> bool {
        self.0.send(JailMsg::With(Box::new(f))).is_ok()
    }

    /// Hands a shared read to the jail.
    pub fn lines(&self, read: Rc<super::shared::SharedRead>) {
        let _ = self.0.send(JailMsg::Lines(read));
    }
}

/// What the shared state holds of a running jail.
pub struct JailHandle {
    name: String,
    sender: JailSender,
    /// The jail's [`keeps_all`] as its task last saw it.
    all_history: Rc<std::cell::Cell<bool>>,
    /// The jail's task.
    pub task: Option<tokio::task::JoinHandle<()>>,
    /// Its action task.
    pub action_task: Option<tokio::task::JoinHandle<()>>,
}

impl JailHandle {
    /// The jail's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its task's sender.
    pub fn sender(&self) -> JailSender {
        self.sender.clone()
    }

    /// Whether the other jails' ban history changes go to it (`bantime.overalljails`).
    pub fn takes_all_history(&self) -> bool {
        self.all_history.get()
    }
}

/// Starts the task owning `rt`; returns its handle.
pub fn spawn(state: &Shared, rt: JailRt, action_task: tokio::task::JoinHandle<()>) -> JailHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let name = rt.name().to_string();
    rt.all_history.set(keeps_all(&rt.jail));
    let all_history = rt.all_history.clone();
    let task = tokio::task::spawn_local(jail_task(state.clone(), rt, rx));
    JailHandle {
        name,
        sender: JailSender(tx),
        all_history,
        task: Some(task),
        action_task: Some(action_task),
    }
}

/// Stops the task of `h`: the messages queued before run first; returns the jail's state.
pub async fn stop(h: &mut JailHandle) -> Option<JailRt> {
    let (tx, rx) = oneshot::channel();
    let _ = h.sender.0.send(JailMsg::Stop(tx));
    let rt = rx.await.ok();
    if let Some(t) = h.task.take() {
        let _ = t.await;
    }
    rt
}

/// A duplicate of the source's descriptor, registered with the reactor: readable when the source
/// has events (the source itself drains them when polled).
fn wake_of(source: &JailSource) -> Option<AsyncFd<OwnedFd>> {
    source.wake_fd().and_then(|fd| {
        // SAFETY: the OwnedFd is a fresh duplicate owned by the AsyncFd for its whole life; it
        // stays open and names the same inotify instance until dropped.
        unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }.ok()
    })
}

/// Runs one message; the state back when it was [`JailMsg::Stop`].
async fn handle(state: &Shared, rt: &mut JailRt, msg: JailMsg) -> Option<oneshot::Sender<JailRt>> {
    match msg {
        JailMsg::With(f) => {
            let mut st = state.borrow_mut();
            f(rt, &mut st);
            // Before anything else runs: a history it now reads from the store holds the writes
            // sent before, those sent after reach it as messages.
            rt.all_history.set(keeps_all(&rt.jail));
        }
        JailMsg::Lines(read) => {
            super::shared::take_lines(&mut state.borrow_mut(), rt, &read);
        }
        JailMsg::Stop(done) => return Some(done),
    }
    settle(state, rt).await;
    lookups(state, rt);
    None
}

/// Starts the look-ups the jail asked for (off the engine, see [`super::server::spawn_lookups`]).
fn lookups(state: &Shared, rt: &mut JailRt) {
    let l = rt.jail.take_lookups();
    if !l.is_empty() {
        super::server::spawn_lookups(state, rt.jail.name(), l);
    }
}

/// The jail's task: serves its messages and follows its logs until stopped.
async fn jail_task(state: Shared, mut rt: JailRt, mut rx: mpsc::UnboundedReceiver<JailMsg>) {
    let mut watched = u64::MAX;
    let mut wake: Option<AsyncFd<OwnedFd>> = None;
    // The source is polled at least every POLL_INTERVAL (the polling backend's `sleeptime`,
    // and files that inotify cannot report); one timer for the task's life.
    let poll_timer = tokio::time::sleep(POLL_INTERVAL);
    tokio::pin!(poll_timer);
    // `ignoreip = file:PATH`: looked at (one stat per file) at most once a second.
    let mut next_ignore_reload = tokio::time::Instant::now() + POLL_INTERVAL;
    loop {
        // The messages that came while it read, in order; a shared read is a slice of work:
        // one per turn.
        let mut matched = false;
        loop {
            match rx.try_recv() {
                Ok(msg) => {
                    matched = matches!(msg, JailMsg::Lines(_));
                    if let Some(done) = handle(&state, &mut rt, msg).await {
                        let _ = done.send(rt);
                        return;
                    }
                    if matched {
                        break;
                    }
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return,
            }
        }
        if rt.source_gen != watched {
            watched = rt.source_gen;
            wake = wake_of(&rt.source);
        }
        let now = tokio::time::Instant::now();
        if now >= next_ignore_reload {
            next_ignore_reload = now + POLL_INTERVAL;
            rt.jail.ignore.reload_files();
        }
        // One slice of what is pending.
        let more = !rt.idle && poll_jail(&mut state.borrow_mut(), &mut rt);
        // The store thread writes the slice; the other jails and the control socket are
        // served meanwhile.
        settle(&state, &mut rt).await;
        lookups(&state, &mut rt);
        if more || (matched && !rx.is_empty()) {
            tokio::task::yield_now().await;
            continue;
        }
        let fd_ready = async {
            match &wake {
                Some(fd) => {
                    if let Ok(mut g) = fd.readable().await {
                        g.clear_ready();
                    }
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            m = rx.recv() => match m {
                None => return,
                Some(msg) => {
                    let matched = matches!(msg, JailMsg::Lines(_));
                    if let Some(done) = handle(&state, &mut rt, msg).await {
                        let _ = done.send(rt);
                        return;
                    }
                    if matched && !rx.is_empty() {
                        tokio::task::yield_now().await;
                    }
                }
            },
            () = fd_ready => {}
            () = &mut poll_timer => {
                poll_timer.as_mut().reset(tokio::time::Instant::now() + POLL_INTERVAL);
            }
        }
    }
}

/// Sends `events` of the jail to its actions.
pub fn dispatch(st: &mut State, rt: &mut JailRt, events: Vec<Event>) {
    dispatch_with(st, rt, events, Matches::new());
}

/// The stored matches of banned ids (`<ipmatches>`, `<ipjailmatches>`), read by the store
/// thread right after it committed their bans.
type Matches = Vec<(String, Option<(Vec<String>, Vec<String>)>)>;

/// [`dispatch`], with the stored matches of its bans (`matches`).
fn dispatch_with(st: &mut State, rt: &mut JailRt, events: Vec<Event>, mut matches: Matches) {
    if events.is_empty() {
        return;
    }
    let ban_added = events.iter().any(|e| matches!(e, Event::Ban(_)));
    let _lines = super::log::Batch::begin();
    let now = st.clock.now();
    for ev in events {
        let job = match ev {
            Event::Ban(t) => {
                // After the store's commit (every caller ends its batch first).
                if !t.restored {
                    flog!(Notice, "actions", "[{}] Ban {}", rt.jail.name(), t.id);
                }
                // Its publication is in the store before the actions get it; the job carries
                // its tag to the action task, which reports it.
                let fleet = super::fleet::local_ban(st.store.as_mut(), rt.jail.name(), &t);
                Job::Ban(Box::new(actions::BanJob {
                    fleet,
                    ..ban_job_data(rt, t, &mut matches)
                }))
            }
            // A remote ban of the same address that still holds keeps the element.
            Event::Unban(t) if super::fleet::held_remotely(rt.remote.as_ref(), &t.id, now) => {
                continue;
            }
            Event::Prolong(t) => {
                // Published like a ban (its later end), once the actions ran.
                let fleet = super::fleet::local_ban(st.store.as_mut(), rt.jail.name(), &t);
                Job::Prolong(Box::new(actions::BanJob {
                    ticket: t,
                    ipmatches: None,
                    ipjailmatches: None,
                    fleet,
                }))
            }
            Event::Unban(t) => Job::Unban(Box::new(t)),
        };
        let _ = rt.jobs.send(job);
    }
    super::fleet::wake(st.store.as_ref());
    if ban_added {
        st.timer.notify_one();
    }
}

fn ban_job_data(rt: &JailRt, t: Ticket, matches: &mut Matches) -> actions::BanJob {
    let (ipmatches, ipjailmatches) = if rt.history_matches {
        let id = t.id.to_string();
        matches
            .iter_mut()
            .find(|(i, _)| *i == id)
            .and_then(|(_, m)| m.take())
            .unzip()
    } else {
        (None, None)
    };
    actions::BanJob {
        ticket: t,
        ipmatches,
        ipjailmatches,
        fleet: None,
    }
}

/// Writes what the jail's last calls asked of the ban store ([`Jail::take_writes`]), in the
/// store's open batch: the caller ends the batch (commits) before it dispatches the events of
/// those calls, so a ban logged as `Ban` is in the database. A write that fails is logged (the
/// store returns its error once, keeps the write and what follows in memory and writes them
/// when it can). The changes go to the other jails that read every jail's history
/// (`bantime.overalljails`) too, and to the jails starting.
pub fn write_store(st: &mut State, rt: &mut JailRt) {
    let writes = take_writes(st, rt);
    if let Some(store) = st.store.as_mut()
        && !writes.is_empty()
    {
        let jail = rt.jail.name().to_string();
        store.write(move |s| write_to(s, &jail, &writes));
    }
}

/// Takes the jail's store writes ([`Jail::take_writes`]; none without a store) and hands their
/// changes to the other jails that keep them (see [`write_store`]).
fn take_writes(st: &State, rt: &mut JailRt) -> Vec<StoreWrite> {
    if !rt.jail.has_writes() {
        return Vec::new();
    }
    let writes = rt.jail.take_writes();
    if st.store.is_none() {
        return Vec::new();
    }
    let jail = rt.jail.name();
    // Only the jails that keep every jail's history (or come to want one) take them.
    let others: Vec<JailSender> = st
        .jails
        .iter()
        .filter(|j| j.name() != jail && j.takes_all_history())
        .map(JailHandle::sender)
        .collect();
    if !others.is_empty() || !st.starting.jails.is_empty() {
        let changes: Rc<[HistoryChange]> = writes.iter().map(StoreWrite::history_change).collect();
        let from: Rc<str> = jail.into();
        for s in others {
            let (changes, from) = (changes.clone(), from.clone());
            s.post(move |rt, _| rt.jail.history_changed(&from, &changes));
        }
        // The jails starting get them once they read their history.
        for (_, wait) in st.starting.jails.iter().filter(|(n, _)| n != jail) {
            wait.borrow_mut()
                .push(Waited::Changes(from.clone(), changes.clone()));
        }
    }
    writes
}

/// Writes `writes` of jail `jail` to `store` (in its open batch, if any); a write that fails is
/// logged.
pub fn write_to(store: &mut ferroban_bans::Store, jail: &str, writes: &[StoreWrite]) {
    for w in writes {
        match w {
            StoreWrite::Ban {
                id,
                banned_at,
                bantime,
                ban_count,
                matches,
                failures,
            } => {
                let r = store.record_ban(&BanRecord {
                    jail,
                    id,
                    banned_at: *banned_at,
                    bantime: *bantime,
                    ban_count: *ban_count,
                    matches,
                    failures: *failures,
                });
                if let Err(e) = r {
                    flog!(
                        Error,
                        "database",
                        "[{jail}] cannot record ban of {id}: {e}; bans stay enforced and are kept in memory until the database can be written again"
                    );
                }
            }
            StoreWrite::Unban { id } => {
                if let Err(e) = store.remove_ban(jail, id) {
                    flog!(Error, "database", "[{jail}] cannot remove ban of {id}: {e}");
                }
            }
        }
    }
}

/// Unbans `id` by hand.
pub fn unban_in(st: &mut State, rt: &mut JailRt, id: &HostId) -> bool {
    if let Some(s) = st.store.as_mut() {
        // The unban and the fleet's publication of it: one transaction.
        s.begin_batch();
    }
    let ev = rt.jail.unban(id);
    write_store(st, rt);
    if ev.is_some() {
        super::fleet::local_unban(st.store.as_mut(), rt.jail.name(), &mut rt.remote, id);
    }
    match ev {
        Some(ev) => {
            let one = std::slice::from_ref(&ev);
            metric_events(st, rt, one, crate::metrics::BanOrigin::Manual, None);
            // Its action runs once the store thread committed it.
            let c = commit(st, rt, vec![ev], None);
            rt.after_commit(c);
            true
        }
        None => {
            st.end_store_batch();
            false
        }
    }
}

/// Unbans every ban of the jail by hand; returns how many.
pub fn unban_all_in(st: &mut State, rt: &mut JailRt) -> usize {
    let ids: Vec<HostId> = rt
        .jail
        .banned()
        .into_iter()
        .map(|(id, _)| id.clone())
        .collect();
    ids.iter().filter(|id| unban_in(st, rt, id)).count()
}

/// `set <jail> attempt <id> [<match>...]`: counts a failure of `id` now, of the weight of its
/// matches (one without), as if read in its log; the bans it leads to go to the actions.
pub fn attempt_in(st: &mut State, rt: &mut JailRt, id: HostId, matches: Vec<String>) {
    let now = st.clock.now();
    let weight = u32::try_from(matches.len().max(1)).unwrap_or(u32::MAX);
    let failed_before = rt.jail.counts().total_failed;
    if let Some(s) = st.store.as_mut() {
        s.begin_batch();
    }
    let events = rt
        .jail
        .add_failure(id, now, matches, Vec::new(), weight, now);
    write_store(st, rt);
    // The fleet's publication of its ban commits with it.
    super::fleet::publish_bans(st.store.as_mut(), rt.jail.name(), &events);
    failure_metrics(st, rt, &events, failed_before, now, None);
    let c = commit(st, rt, events, None);
    rt.after_commit(c);
}

/// Counts the bans `events` that failures led to, and the jail's failure counts
/// (`failed_before`: its total before them).
fn failure_metrics(
    st: &State,
    rt: &JailRt,
    events: &[Event],
    failed_before: u64,
    now: f64,
    read_at: Option<std::time::Instant>,
) {
    rt.metrics.events(
        &st.metrics,
        events,
        crate::metrics::BanOrigin::Log,
        crate::metrics::UnbanReason::Expired,
        now,
        read_at,
    );
    rt.metrics.counts(failed_before, rt.jail.counts(), now);
}

/// Bans `id` by hand.
pub fn ban_in(st: &mut State, rt: &mut JailRt, id: HostId) -> bool {
    ban_many_in(st, rt, std::iter::once(id)) == 1
}

/// Bans `ids` by hand (`set <jail> banip ...`): the store writes them in one transaction before
/// the actions get them, as one batch. Returns how many were new.
pub fn ban_many_in(
    st: &mut State,
    rt: &mut JailRt,
    ids: impl IntoIterator<Item = HostId>,
) -> usize {
    let now = st.clock.now();
    let mut events = Vec::new();
    if let Some(s) = st.store.as_mut() {
        s.begin_batch();
    }
    for id in ids {
        events.extend(rt.jail.ban_by_hand(id, now));
    }
    write_store(st, rt);
    // Their publication commits with them.
    super::fleet::publish_bans(st.store.as_mut(), rt.jail.name(), &events);
    // New bans (a re-ban of a banned address lengthens it: not counted, as in fail2ban).
    let n = events.iter().filter(|e| matches!(e, Event::Ban(_))).count();
    metric_events(st, rt, &events, crate::metrics::BanOrigin::Manual, None);
    let c = commit(st, rt, events, None);
    rt.after_commit(c);
    n
}

/// Ends the store batch that holds the writes of jail `rt`'s `events` (its bans): the store
/// thread commits it, then reads the stored matches of its bans when the actions use them.
/// The [`Commit`] returned hands `events` to the actions once that is done (`failures_at`: the
/// time of a read whose failures also count over the fleet).
pub(super) fn commit(
    st: &mut State,
    rt: &JailRt,
    events: Vec<Event>,
    failures_at: Option<f64>,
) -> Commit {
    let ids: Vec<String> = if rt.history_matches {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Ban(t) => Some(t.id.to_string()),
                _ => None,
            })
            .collect()
    } else {
        Vec::new()
    };
    let jail = rt.jail.name().to_string();
    let done = st.end_store_batch_then(move |s| {
        ids.into_iter()
            .map(|id| {
                let m = super::server::store_matches(s, &id, &jail);
                (id, m)
            })
            .collect()
    });
    Commit {
        events,
        failures_at,
        done,
    }
}

/// Counts `events` (bans from `origin`; unbans by hand when the origin is manual, else expired;
/// `reload` while reloading) and takes the jail's current counts.
pub fn metric_events(
    st: &State,
    rt: &JailRt,
    events: &[Event],
    origin: crate::metrics::BanOrigin,
    read_at: Option<std::time::Instant>,
) {
    use crate::metrics::{BanOrigin, UnbanReason};
    let reason = if st.reloading {
        UnbanReason::Reload
    } else if origin == BanOrigin::Manual {
        UnbanReason::Manual
    } else {
        UnbanReason::Expired
    };
    let now = st.clock.now();
    rt.metrics
        .events(&st.metrics, events, origin, reason, now, read_at);
    let c = rt.jail.counts();
    rt.metrics.counts(c.total_failed, c, now);
}

/// The bookkeeping of one read slice of a jail, begun inside one store transaction (its bans
/// and positions) and one log batch (its Found/Ban lines: one write at its end).
pub(super) struct SliceRead {
    _lines: super::log::Batch,
    /// The time of the read.
    pub now: f64,
    read_at: std::time::Instant,
    failed_before: u64,
    /// Lines per file and outcome (metrics).
    pub counts: crate::metrics::hooks::ReadCounts,
    /// What the lines led to.
    pub events: Vec<Event>,
}

impl SliceRead {
    /// Begins a read of jail `rt`.
    pub fn begin(st: &mut State, rt: &JailRt) -> SliceRead {
        SliceRead {
            _lines: super::log::Batch::begin(),
            now: st.clock.now(),
            read_at: std::time::Instant::now(),
            failed_before: rt.jail.counts().total_failed,
            counts: Default::default(),
            events: Vec::new(),
        }
    }

    /// Ends the read (`more`: more is pending): metrics, then its bans, positions (or journal
    /// cursor) and the fleet's publication of its bans go to the store thread as one
    /// transaction; the bans go to the actions once it is committed (the jail's task waits for
    /// it before its next message or read, see [`JailRt::after_commit`]).
    pub(super) fn end(self, st: &mut State, rt: &mut JailRt, more: bool) {
        let SliceRead {
            _lines,
            now,
            read_at,
            failed_before,
            counts,
            events,
        } = self;
        if !more && matches!(rt.source, JailSource::Files(_) | JailSource::Shared(_)) {
            rt.jail.set_in_operation(true);
        }
        // The bans of the read, first in the read's transaction.
        let writes = take_writes(st, rt);
        counts.flush(&st.metrics, &rt.metrics);
        failure_metrics(st, rt, &events, failed_before, now, Some(read_at));
        // Positions go to the store with the ban, before the actions run: a crash after the
        // commit neither loses the ban nor re-reads its lines.
        let save = !events.is_empty() || now >= rt.next_position_save;
        let positions = if save {
            positions_to_save(st, rt, now)
        } else {
            Vec::new()
        };
        let Some(store) = st.store.as_mut() else {
            dispatch_read(st, rt, events, now);
            return;
        };
        store.begin_batch();
        let jail = rt.jail.name().to_string();
        if !writes.is_empty() || !positions.is_empty() {
            store.write(move |s| {
                write_to(s, &jail, &writes);
                set_positions(s, &jail, &positions);
            });
        }
        if let (true, JailSource::Journal(j)) = (save, &mut rt.source) {
            j.save(rt.jail.name(), store);
        }
        // The fleet's publication of these bans commits with them.
        super::fleet::publish_bans(Some(store), rt.jail.name(), &events);
        if events.is_empty() {
            // No ban waits for the commit (a batch with nothing to write sends nothing).
            st.end_store_batch();
            dispatch_read(st, rt, events, now);
            return;
        }
        let c = commit(st, rt, events, Some(now));
        rt.after_commit(c);
    }
}

/// Hands the events of a read at `now` to the actions (after its commit): the shared failure
/// counting (fleet) takes its failures of addresses not banned first.
fn dispatch_read(st: &mut State, rt: &mut JailRt, events: Vec<Event>, now: f64) {
    super::fleet::local_failures(&mut rt.jail, rt.remote.as_ref(), now);
    dispatch(st, rt, events);
}

/// Bans whose transaction went to the store thread: they go to the actions once it is
/// committed.
pub(super) struct Commit {
    events: Vec<Event>,
    /// The time of the read they come from (its failures also count over the fleet).
    failures_at: Option<f64>,
    /// The commit's answer: the stored matches of the bans (`None`: no store).
    done: Option<oneshot::Receiver<Matches>>,
}

impl Commit {
    /// Waits for the commit (no borrow of the shared state held), then dispatches.
    async fn finish(self, state: &Shared, rt: &mut JailRt) {
        let matches = match self.done {
            Some(done) => done.await.unwrap_or_default(),
            None => Matches::new(),
        };
        let st = &mut state.borrow_mut();
        if let Some(now) = self.failures_at {
            super::fleet::local_failures(&mut rt.jail, rt.remote.as_ref(), now);
        }
        dispatch_with(st, rt, self.events, matches);
    }
}

/// Reads new lines of the jail (one slice); returns whether more is pending (read budget
/// exhausted). A jail that shares its reader reads for all its jails (or leaves it to the one
/// that does). The slice's bans go to the actions once the store thread committed them.
pub fn poll_jail(st: &mut State, rt: &mut JailRt) -> bool {
    if let JailSource::Shared(shared) = &rt.source {
        let shared = shared.clone();
        return super::shared::poll(st, rt, &shared);
    }
    let mut read = SliceRead::begin(st, rt);
    let report = {
        let SliceRead {
            now,
            counts,
            events,
            ..
        } = &mut read;
        let now = *now;
        let jail = &mut rt.jail;
        match &mut rt.source {
            JailSource::Files(source) => source.poll(&mut |line| {
                let before = jail.line_stats();
                events.extend(jail.process_line(line.text, now));
                counts.line(line.path, before, jail.line_stats());
            }),
            JailSource::Shared(_) => unreachable!("read by shared::poll"),
            // The journal switches the jail to live operation itself, once caught up.
            JailSource::Journal(j) => Ok(ferroban_source::PollReport {
                more: j.poll(jail, now, events),
                ..Default::default()
            }),
        }
    };
    let more = match report {
        Ok(r) => {
            for n in &r.notices {
                super::server::log_notice(rt.jail.name(), n);
            }
            r.more
        }
        Err(e) => {
            flog!(Error, "filter", "[{}] {e}", rt.jail.name());
            false
        }
    };
    read.end(st, rt, more);
    more
}

/// Writes the jail's read positions (or journal cursor) to the store when they changed.
pub fn save_positions(st: &mut State, rt: &mut JailRt, now: f64) {
    let positions = positions_to_save(st, rt, now);
    let Some(store) = st.store.as_mut() else {
        return;
    };
    if let JailSource::Journal(j) = &mut rt.source {
        return j.save(rt.jail.name(), store);
    }
    if !positions.is_empty() {
        let jail = rt.jail.name().to_string();
        store.write(move |s| set_positions(s, &jail, &positions));
    }
}

/// The jail's read positions that changed since they were last saved (then taken as saved);
/// its backlog metrics.
fn positions_to_save(st: &State, rt: &mut JailRt, now: f64) -> Vec<LogPosition> {
    rt.next_position_save = now + POSITION_SAVE_INTERVAL;
    let current = match &rt.source {
        JailSource::Files(source) => source.positions(),
        // The positions of the lines it was given.
        JailSource::Shared(_) => rt.shared_at.clone(),
        JailSource::Journal(_) => Vec::new(),
    };
    for p in &current {
        rt.metrics.backlog(&st.metrics, &p.path, p.offset, now);
    }
    if st.store.is_none() || current == rt.positions_saved {
        return Vec::new();
    }
    let changed = current
        .iter()
        .filter(|p| !rt.positions_saved.contains(p))
        .map(|p| LogPosition {
            path: p.path.display().to_string(),
            first_line_hash: p.first_line_hash.map(|h| h.to_hex()),
            offset: p.offset,
        })
        .collect();
    rt.positions_saved = current;
    changed
}

/// Writes `positions` of jail `jail` (in the open batch, if any); a failure is logged.
fn set_positions(store: &mut ferroban_bans::Store, jail: &str, positions: &[LogPosition]) {
    for lp in positions {
        if let Err(e) = store.set_position(jail, lp) {
            flog!(Error, "database", "[{jail}] {e}");
        }
    }
}

/// Ends the jail's bans whose time is up, its own and the fleet's remote bans alike (the same
/// dispatch to `actionunban`); returns when its next one ends.
pub fn expire(st: &mut State, rt: &mut JailRt) -> Option<f64> {
    let now = st.clock.now();
    // Remote bans first: one whose address a local ban still holds is left to it.
    let mut events = super::fleet::expire_remote(&rt.jail, &mut rt.remote, now);
    events.extend(rt.jail.expire(now));
    if !events.is_empty() {
        metric_events(st, rt, &events, crate::metrics::BanOrigin::Log, None);
    }
    dispatch(st, rt, events);
    rt.jail
        .next_deadline()
        .into_iter()
        .chain(super::fleet::next_remote_deadline(rt.remote.as_ref()))
        .min_by(f64::total_cmp)
}
