//! The daemon's side of fleet mode (crates/fleet; docs/fleet.md): a few narrow hooks.
//!
//! - [`init`] (at start): reads `[Fleet]` of fail2ban.local, starts the fleet thread.
//! - [`publish_bans`] / [`local_ban`] / [`local_unban`] (from the jail's ban path, before its
//!   actions get the ban): the decision is written into the fleet's outbox (`fleet_intent`)
//!   through the ban store, in the transaction that records the ban (a read's bans, a bulk
//!   `banip`) or right after it, then [`wake`] hands it to the publisher once committed; never
//!   waits on the engine. Restored bans and natural expiry publish nothing; remote bans never
//!   reach these hooks, so they are never republished.
//! - [`restored_for`] (jail start): the stored remote bans join the jail's restore batch, so the
//!   reconciliation of its firewall set keeps them and one transaction restores everything.
//! - [`apply_task`]: remote decisions, in batches, through the same jail's actions (one
//!   firewall transaction per batch and jail), after the receiver's own `ignoreip`.
//! - [`held_remotely`] (before an unban job): a local ban that ends while a remote one on the
//!   same address still holds leaves the firewall element in place.
//! - [`expire_remote`] (the unban timer, [`super::jailtask::expire`] on each jail's task):
//!   remote bans end exactly like local ones, through the same dispatch to `actionunban` at their
//!   end time, whatever the action (a shell action has no kernel timeout to end them). Natural
//!   expiry publishes nothing.
//!
//! The fleet handle lives here (the daemon is single-threaded; the handle is shared with the
//! control commands), so the jail state machine knows nothing of the fleet. The remote bans of
//! each jail are a [`RemoteJail`] owned by the jail's task (`JailRt::remote`, the only one that
//! touches them: remote decisions reach them as messages to the task): a [`BanManager`], the
//! jail's own ban bookkeeping, with a lookup per address and the same unban schedule
//! (`next_deadline`, `expire`).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use ferroban_bans::{Ban, BanManager};
use ferroban_fleet::{Apply, ApplyKind, FleetConfig, FleetHandle, RawOption, Reject, node};

use super::actions::{BanJob, Job};
use super::jail::{Event, Jail, Ticket};
use super::server::{Settings, Shared};
use super::storethread::StoreHandle;
use crate::clock::Clock;
use crate::flog;
use crate::ip::HostId;

static HANDLE: OnceLock<FleetHandle> = OnceLock::new();

/// The remote bans enforced in one jail: the jail's own ban bookkeeping (an index by address,
/// the unban schedule by end), with the origin of each. Owned by the jail's task, from its
/// first remote ban until the jail stops (`None` before: no `/metrics` series).
#[derive(Debug, Default)]
pub struct RemoteJail {
    bans: BanManager<HostId>,
    origins: HashMap<HostId, String>,
}

impl RemoteJail {
    /// Bans `id` until `ends_at` (daemon clock, `None`: permanent) for `origin`, replacing an
    /// earlier remote ban of it (the merged end may also move earlier: an origin's ban ended).
    fn ban(&mut self, id: HostId, ends_at: Option<f64>, origin: &str, now: f64) {
        self.bans.remove(&id);
        let ban = Ban {
            banned_at: now,
            bantime: ends_at.map_or(-1.0, |e| e - now),
            ban_count: 1,
        };
        self.bans.add(id.clone(), ban, now);
        self.origins.insert(id, origin.to_string());
    }

    fn remove(&mut self, id: &HostId) -> Option<(Ban, String)> {
        let b = self.bans.remove(id)?;
        Some((b, self.origins.remove(id).unwrap_or_default()))
    }

    /// Takes every ban (jail stop).
    fn take_all(&mut self) -> Vec<(HostId, Ban, String)> {
        let bans = self.bans.flush();
        bans.into_iter()
            .map(|(id, b)| {
                let o = self.origins.remove(&id).unwrap_or_default();
                (id, b, o)
            })
            .collect()
    }
}

thread_local! {
    static RESTORED: RefCell<Vec<Apply>> = const { RefCell::new(Vec::new()) };
    static APPLIES: RefCell<Option<tokio::sync::mpsc::UnboundedReceiver<Vec<Apply>>>> =
        const { RefCell::new(None) };
}

/// The fleet, when on.
pub fn handle() -> Option<&'static FleetHandle> {
    #[cfg(test)]
    if let Some(h) = TEST_HANDLE.with(std::cell::Cell::get) {
        return Some(h);
    }
    HANDLE.get()
}

#[cfg(test)]
thread_local! {
    /// This thread's fleet in tests (the daemon's is process-wide).
    static TEST_HANDLE: std::cell::Cell<Option<&'static FleetHandle>> =
        const { std::cell::Cell::new(None) };
}

/// Makes `h` this thread's fleet (tests).
#[cfg(test)]
fn set_test_handle(h: FleetHandle) -> &'static FleetHandle {
    let h: &'static FleetHandle = Box::leak(Box::new(h));
    TEST_HANDLE.with(|t| t.set(Some(h)));
    h
}

/// Reads `[Fleet]` from the configuration. `Ok(None)`: fleet mode is off.
pub fn read_config(settings: &Settings) -> Result<Option<FleetConfig>, String> {
    let loader = settings.conf.loader();
    let Some(set) = loader.read_named("fail2ban").map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    if !set.has_section("Fleet") {
        return Ok(None);
    }
    let mut opts = Vec::new();
    for k in set.options("Fleet", false) {
        let value = set
            .get("Fleet", &k, None)
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        let origin = set
            .origin("Fleet", &k)
            .map_or_else(|| "fail2ban.local".to_string(), |o| o.to_string());
        opts.push(RawOption {
            key: k.to_lowercase(),
            value,
            origin,
        });
    }
    let base = settings
        .conf
        .dir
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from("/etc/ferroban"));
    FleetConfig::parse(&opts, &base).map_err(|e| e.to_string())
}

/// Starts the fleet when `[Fleet]` enables it. A broken fleet configuration is logged and the
/// daemon runs without the fleet: local enforcement never depends on it.
pub fn init(settings: &Settings, clock: Arc<dyn Clock>) {
    let cfg = match read_config(settings) {
        Ok(Some(c)) => c,
        Ok(None) => return,
        Err(e) => {
            flog!(Error, "fleet", "Fleet mode not started: {e}");
            return;
        }
    };
    let now: ferroban_fleet::Now = Arc::new(move || clock.now());
    let log: node::Log = Arc::new(|level, msg| match level {
        node::Level::Info => flog!(Info, "fleet", "{msg}"),
        node::Level::Warning => flog!(Warning, "fleet", "{msg}"),
        node::Level::Error => flog!(Error, "fleet", "{msg}"),
    });
    let (node, role) = (cfg.node.clone(), cfg.role.name());
    match ferroban_fleet::start(cfg, settings.dbfile.clone(), now, log) {
        Ok(started) => {
            flog!(
                Info,
                "fleet",
                "Fleet mode: node {node}, role {role}, {} stored remote bans to restore",
                started.restored.len()
            );
            set_restored(started.restored);
            APPLIES.with(|a| *a.borrow_mut() = Some(started.applies));
            let _ = HANDLE.set(started.handle);
        }
        Err(e) => flog!(Error, "fleet", "Fleet mode not started: {e}"),
    }
}

/// The stored remote bans to restore when their jails start (the fleet's [`node::Started`]).
pub fn set_restored(restored: Vec<Apply>) {
    RESTORED.with(|r| *r.borrow_mut() = restored);
}

fn ends_at(t: &Ticket) -> Option<f64> {
    (t.bantime >= 0.0).then_some(t.time + t.bantime)
}

/// The publication of a local ban, carried with its job to the jail's action task, which
/// reports it once the ban's actions ran ([`enforced`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Publication {
    /// Written into the fleet's `fleet_intent` with the ban, with this tag: the report names
    /// the tag, so it releases that row and no other of the same address.
    Intent(i64),
    /// No database file: handed to the fleet thread, with its end, when the actions ran
    /// (unless an `unbanip` lifted it meanwhile).
    Direct {
        /// The decision's id (an `unbanip` cancels the waiting ones of its address).
        tag: i64,
        /// The ban's end (`None`: permanent).
        ends_at: Option<f64>,
    },
}

/// The next id of a local decision (unique in this process: the intents of an earlier run are
/// told apart by their row, see `ferroban_fleet::gate`).
fn next_tag() -> i64 {
    static NEXT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

thread_local! {
    /// Bans whose publication [`publish_bans`] wrote in their own store transaction, with the
    /// tags written, so that [`local_ban`] (at their dispatch, right after) carries that tag
    /// instead of writing another.
    static WRITTEN: RefCell<HashMap<(String, HostId), std::collections::VecDeque<i64>>> =
        RefCell::new(HashMap::new());
    /// Decisions written into the store since the publisher was last woken.
    static UNSENT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Without a database file: the tags of local bans handed to their actions and not yet
    /// reported, per (jail, address) (an `unbanip` drops them: not published after it).
    static DIRECT: RefCell<HashMap<(String, HostId), Vec<i64>>> = RefCell::new(HashMap::new());
}

/// Writes the publication of a local decision into the fleet's intent table through the ban
/// store (in its open batch, else committed at once). `false`: nothing is published for it
/// (jail not shared, role that does not publish).
fn publish(
    h: &FleetHandle,
    store: &mut StoreHandle,
    jail: &str,
    ip: &str,
    ban: Option<f64>,
) -> Option<i64> {
    let end = ban.filter(|e| e.is_finite());
    let tag = next_tag();
    let (sql, params) = h.intent(jail, ip, ban.is_some(), end, tag)?;
    let (jail, ip) = (jail.to_string(), ip.to_string());
    store.write(move |s| {
        if let Err(e) = s.write_foreign(sql, params) {
            // The store keeps the write queued and writes it when it can; the publisher finds
            // it then (it looks every few seconds).
            flog!(
                Error,
                "database",
                "[{jail}] {e}; the fleet publishes {ip} once the database can be written again"
            );
        }
    });
    UNSENT.with(|u| u.set(true));
    Some(tag)
}

/// A ban's end for [`publish`]: `INFINITY` for a permanent ban.
fn end_of(t: &Ticket) -> f64 {
    ends_at(t).unwrap_or(f64::INFINITY)
}

/// The local bans among `events` of jail `jail`: their publication is written in the store's
/// open batch, the one that recorded them, so a ban and its publication are committed together
/// (or not at all). Call it before the batch ends; [`local_ban`] then skips them.
pub fn publish_bans(store: Option<&mut StoreHandle>, jail: &str, events: &[Event]) {
    let (Some(h), Some(store)) = (handle(), store) else {
        return;
    };
    if !store.in_batch() {
        return;
    }
    for e in events {
        // A lengthened ban is published like a new one: its later end reaches the fleet.
        if let Event::Ban(t) | Event::Prolong(t) = e
            && !t.restored
            && t.id.is_ip()
            && let Some(tag) = publish(h, store, jail, &t.id.to_string(), Some(end_of(t)))
        {
            WRITTEN.with(|w| {
                w.borrow_mut()
                    .entry((jail.to_string(), t.id.clone()))
                    .or_default()
                    .push_back(tag)
            });
        }
    }
}

/// A local ban of jail `jail` is handed to its actions: its publication is written now, before
/// the actions run (unless [`publish_bans`] wrote it with the ban), and goes once they ran
/// ([`enforced`]). Without a database file it is handed to the fleet thread then. Returns
/// what the ban's job carries to the action task (`None`: nothing is published).
pub fn local_ban(store: Option<&mut StoreHandle>, jail: &str, t: &Ticket) -> Option<Publication> {
    if t.restored || !t.id.is_ip() {
        return None;
    }
    let key = (jail.to_string(), t.id.clone());
    let written = WRITTEN.with(|w| {
        let mut w = w.borrow_mut();
        let q = w.get_mut(&key)?;
        let tag = q.pop_front();
        if q.is_empty() {
            w.remove(&key);
        }
        tag
    });
    let h = handle()?;
    match (written, store) {
        (Some(tag), _) => Some(Publication::Intent(tag)),
        (None, Some(store)) => {
            publish(h, store, jail, &t.id.to_string(), Some(end_of(t))).map(Publication::Intent)
        }
        (None, None) if h.publishes(jail) => {
            let tag = next_tag();
            DIRECT.with(|d| d.borrow_mut().entry(key).or_default().push(tag));
            Some(Publication::Direct {
                tag,
                ends_at: ends_at(t),
            })
        }
        (None, None) => None,
    }
}

/// The action task of `jail` ran its actions for `bans` (successfully or not: a local
/// firewall that failed does not keep the other nodes from banning, as fail2ban keeps a ban
/// whose action failed): the publication each job carries goes (restored and remote bans
/// carry none). The report names each intent's tag, so it releases that row only.
pub fn enforced(jail: &str, bans: &[BanJob]) {
    if bans.iter().all(|b| b.fleet.is_none()) {
        return;
    }
    let Some(h) = handle() else { return };
    let mut tags = Vec::new();
    for b in bans {
        match b.fleet {
            Some(Publication::Intent(tag)) => tags.push((b.ticket.id.to_string(), tag)),
            Some(Publication::Direct { tag, ends_at }) => {
                let key = (jail.to_string(), b.ticket.id.clone());
                let waiting = DIRECT.with(|d| {
                    let mut d = d.borrow_mut();
                    let Some(v) = d.get_mut(&key) else {
                        return false;
                    };
                    let found = v.iter().position(|t| *t == tag).map(|i| v.remove(i));
                    if v.is_empty() {
                        d.remove(&key);
                    }
                    found.is_some()
                });
                if waiting {
                    h.local_ban(jail, &b.ticket.id.to_string(), ends_at);
                }
            }
            None => {}
        }
    }
    h.enforced(jail, tags);
}

/// The restore of `jail` at its start ran (the action task): the publications written before
/// a crash, whose enforcement was unknown, go now that the stored bans are enforced again.
pub fn restored(jail: &str) {
    if let Some(h) = handle() {
        h.restored(jail);
    }
}

/// The daemon started its jails: the publications written before a crash by jails not
/// running now go at once (the others wait for their jail's restore, [`restored`]), and the
/// stored remote bans of jails not in the configuration are not kept in memory (they stay
/// stored, for a later start with that jail; those of a jail whose configuration is broken
/// are kept for the reload that fixes it).
pub fn started(state: &Shared) {
    let st = state.borrow();
    let names: std::collections::HashSet<String> = st.jail_names().into_iter().collect();
    RESTORED.with(|r| {
        r.borrow_mut()
            .retain(|a| names.contains(&a.jail) || st.broken.contains_key(&a.jail))
    });
    drop(st);
    if let Some(h) = handle() {
        h.started(names.into_iter().collect());
    }
}

/// Jail `jail` is gone from the configuration (a reload stopped it): its remote bans, kept
/// since its stop to come back at its next start, are dropped from memory.
pub fn forget_jail(jail: &str) {
    RESTORED.with(|r| r.borrow_mut().retain(|a| a.jail != jail));
    sync_count(jail, None);
}

/// Remote bans in force per jail, for `/metrics` (`ferroban_jail_remote_banned_current`; the
/// metrics thread reads it, the remote tables are the jails' tasks').
static REMOTE_COUNTS: std::sync::Mutex<BTreeMap<String, usize>> =
    std::sync::Mutex::new(BTreeMap::new());

/// Copies the size of `jail`'s remote table `remote` into [`REMOTE_COUNTS`] (none: no series).
fn sync_count(jail: &str, remote: Option<&RemoteJail>) {
    let n = remote.map(|rj| rj.bans.len());
    let mut c = REMOTE_COUNTS.lock().unwrap_or_else(|e| e.into_inner());
    match (n, c.get_mut(jail)) {
        (Some(n), Some(v)) => *v = n,
        (Some(n), None) => {
            c.insert(jail.to_string(), n);
        }
        (None, _) => {
            c.remove(jail);
        }
    }
}

/// Hands the decisions written to the publisher once they are committed (the store's batch is
/// over: the store thread wakes it after the writes sent before); call it after the store's
/// batch ends and after a dispatch.
pub fn wake(store: Option<&StoreHandle>) {
    if store.is_some_and(StoreHandle::in_batch) || !UNSENT.with(|u| u.replace(false)) {
        return;
    }
    if let Some(h) = handle() {
        match store {
            Some(store) => store.run(move |_| h.intents_written()),
            None => h.intents_written(),
        }
    }
}

/// `unbanip`: publish the unban of this node's own ban, and drop the remote ban of the same
/// address here from `remote`, the jail's remote bans (the operator asked for it gone on this
/// node).
pub fn local_unban(
    store: Option<&mut StoreHandle>,
    jail: &str,
    remote: &mut Option<RemoteJail>,
    id: &HostId,
) {
    if let Some(h) = handle()
        && id.is_ip()
    {
        match store {
            Some(store) => {
                // Taken after the ban's own publication (the fleet thread keeps their order).
                publish(h, store, jail, &id.to_string(), None);
            }
            None => {
                // A ban still waiting for its actions is not published after its own unban.
                DIRECT.with(|d| d.borrow_mut().remove(&(jail.to_string(), id.clone())));
                h.local_unban(jail, &id.to_string());
            }
        }
    }
    remove_remote(jail, remote, id);
}

/// Drops the remote ban of `id` from `remote`, the remote bans of `jail`; returns it with its
/// origin.
fn remove_remote(
    jail: &str,
    remote: &mut Option<RemoteJail>,
    id: &HostId,
) -> Option<(Ban, String)> {
    let b = remote.as_mut().and_then(|rj| rj.remove(id));
    if b.is_some() {
        sync_count(jail, remote.as_ref());
    }
    b
}

/// Records the remote ban of `id` in `remote`, the remote bans of `jail` (on the unban
/// schedule).
fn add_remote(
    jail: &str,
    remote: &mut Option<RemoteJail>,
    id: HostId,
    ends_at: Option<f64>,
    origin: &str,
    now: f64,
) {
    remote.get_or_insert_default().ban(id, ends_at, origin, now);
    sync_count(jail, remote.as_ref());
}

/// Whether a remote ban of `id` among a jail's remote bans `remote` still holds after `now`
/// (then a local unban leaves the firewall element alone; the remote ban's own end removes
/// it). Empty when the fleet is off.
pub fn held_remotely(remote: Option<&RemoteJail>, id: &HostId, now: f64) -> bool {
    remote
        .and_then(|rj| rj.bans.get(id))
        .is_some_and(|b| b.end().is_none_or(|e| e > now))
}

/// Live remote bans among a jail's remote bans `remote` (for `status`).
pub fn remote_count(remote: Option<&RemoteJail>, now: f64) -> usize {
    remote.map_or(0, |rj| {
        rj.bans
            .by_start()
            .filter(|(_, b)| b.end().is_none_or(|e| e > now))
            .count()
    })
}

/// When the next of a jail's remote bans `remote` ends: the unban timer wakes for it.
pub fn next_remote_deadline(remote: Option<&RemoteJail>) -> Option<f64> {
    remote.and_then(|rj| rj.bans.next_deadline())
}

/// The unban timer: the remote bans of `jail` that ended at `now` leave the remote table and,
/// unless a local ban of the same address still holds (its own end unbans it then), become
/// [`Event::Unban`]s for the jail's actions, as its own expired bans do. Nothing is published:
/// natural expiry makes no fleet traffic. Call it before the jail's own expiry, so that an
/// address whose local and remote bans end together is unbanned once. `remote`: the jail's
/// remote bans.
pub fn expire_remote(jail: &Jail, remote: &mut Option<RemoteJail>, now: f64) -> Vec<Event> {
    let name = jail.name();
    let ended: Vec<(HostId, Ban, String)> = match remote.as_mut() {
        None => Vec::new(),
        Some(rj) => rj
            .bans
            .expire(now)
            .into_iter()
            .map(|(id, b)| {
                let o = rj.origins.remove(&id).unwrap_or_default();
                (id, b, o)
            })
            .collect(),
    };
    if !ended.is_empty() {
        sync_count(name, remote.as_ref());
    }
    let mut out = Vec::new();
    for (id, b, origin) in ended {
        if jail.is_banned(&id) {
            continue;
        }
        flog!(
            Notice,
            "fleet",
            "[{name}] Unban {id} (remote ban from {origin} ended)"
        );
        out.push(Event::Unban(ban_ticket(id, &b)));
    }
    out
}

/// Takes `remote`, the remote bans of `jail`, at its stop, as tickets for the stop job (each
/// action takes them out of the firewall with the jail's own bans, `local`: an address among
/// them is not unbanned twice). They are kept to be restored, if still live, when the jail
/// starts again (`reload --restart`, `start <jail>`).
pub fn stop_remote(jail: &str, remote: Option<RemoteJail>, local: &[Ticket]) -> Vec<Ticket> {
    let taken = remote.map(|mut rj| rj.take_all()).unwrap_or_default();
    sync_count(jail, None);
    let local: std::collections::HashSet<&HostId> = local.iter().map(|t| &t.id).collect();
    let mut out = Vec::with_capacity(taken.len());
    RESTORED.with(|rest| {
        let mut rest = rest.borrow_mut();
        for (id, b, origin) in taken {
            rest.push(Apply {
                jail: jail.to_string(),
                ip: id.to_string(),
                origin,
                kind: ApplyKind::Ban { ends_at: b.end() },
            });
            if !local.contains(&id) {
                out.push(ban_ticket(id, &b));
            }
        }
    });
    out
}

/// The remote bans in force in `jail` (`remote`) of addresses it does not ban itself, as
/// tickets (a reload's new actions get them with the jail's own).
pub fn remote_tickets(jail: &Jail, remote: Option<&RemoteJail>) -> Vec<Ticket> {
    remote.map_or_else(Vec::new, |rj| {
        rj.bans
            .by_start()
            .filter(|(id, _)| !jail.is_banned(id))
            .map(|(id, b)| ban_ticket(id.clone(), b))
            .collect()
    })
}

fn ban_ticket(id: HostId, b: &Ban) -> Ticket {
    Ticket {
        bantime: b.bantime,
        ..ticket(id, b.banned_at, b.end())
    }
}

fn ticket(id: HostId, now: f64, ends_at: Option<f64>) -> Ticket {
    Ticket {
        id,
        time: now,
        bantime: ends_at.map_or(-1.0, |e| e - now),
        ban_count: 1,
        failures: 0,
        matches: Vec::new(),
        fields: Vec::new(),
        // Like a ban restored from the store: actions with `norestored` (mail, notify) skip
        // it, so only the origin sends its e-mail.
        restored: true,
    }
}

/// The stored remote bans of `jail`, to restore with its local ones (`local`: a local ban of
/// the same address that ends later wins). Bans of addresses in its `ignoreip` are refused.
/// Those stopped with the jail earlier in this run ([`stop_remote`]) come back the same way.
/// They go into `remote`, the jail's remote bans (its task's from then on).
pub fn restored_for(
    jail: &mut Jail,
    remote: &mut Option<RemoteJail>,
    now: f64,
    local: &[Ticket],
) -> Vec<BanJob> {
    let h = handle();
    let name = jail.name().to_string();
    if let Some(h) = h {
        // Shared failure counting: the jail's counted failures are kept for `local_failures`.
        jail.tap_failures(h.shares_failures(&name));
        h.failure_limits(&name, jail.maxretry(), jail.findtime());
    }
    let mine: Vec<Apply> = RESTORED.with(|r| {
        let mut all = r.borrow_mut();
        let (mine, rest) = all.drain(..).partition(|a| a.jail == name);
        *all = rest;
        mine
    });
    if mine.is_empty() {
        return Vec::new();
    }
    let local_ends: HashMap<&HostId, Option<f64>> =
        local.iter().map(|t| (&t.id, ends_at(t))).collect();
    let mut out = Vec::new();
    for a in mine {
        let ApplyKind::Ban { ends_at } = a.kind else {
            continue;
        };
        if ends_at.is_some_and(|e| e <= now) {
            continue;
        }
        let id = HostId::parse(&a.ip);
        if jail.ignore.check(&id, now).is_some() {
            if let Some(h) = h {
                h.count_reject(Reject::Ignored);
            }
            continue;
        }
        add_remote(&name, remote, id.clone(), ends_at, &a.origin, now);
        let local_end = local_ends.get(&id).copied();
        if local_end.is_some_and(|l| later_or_same(l, ends_at)) {
            continue;
        }
        out.push(BanJob {
            ticket: ticket(id, now, ends_at),
            ipmatches: None,
            ipjailmatches: None,
            fleet: None,
        });
    }
    out
}

/// Whether end `a` is at or after end `b` (`None`: never ends).
fn later_or_same(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => a >= b,
    }
}

/// Shared failure counting: hands the failures `jail` counted since the last call, of
/// addresses neither it nor a remote ban of it (`remote`) holds at `now`, to the fleet (counted
/// here and sent to the other nodes).
pub fn local_failures(jail: &mut super::jail::Jail, remote: Option<&RemoteJail>, now: f64) {
    let counted = jail.take_counted();
    if counted.is_empty() {
        return;
    }
    let Some(h) = handle() else { return };
    let name = jail.name();
    // Its limits may have changed (`set <jail> maxretry`).
    h.failure_limits(name, jail.maxretry(), jail.findtime());
    for (id, at, n) in counted {
        if !jail.is_banned(&id) && !held_remotely(remote, &id, now) {
            h.local_failure(name, &id.to_string(), at, n);
        }
    }
}

/// Shared failure counting: `a.ip` reached the jail's fleet-wide threshold (`count`): ban it
/// here as this node's own ban (published as usual), unless it is banned already or ignored.
fn failures_reached(
    st: &mut super::server::State,
    rt: &mut super::jailtask::JailRt,
    h: &FleetHandle,
    a: &Apply,
    count: u32,
) {
    let now = st.clock.now();
    let id = HostId::parse(&a.ip);
    let jail = &mut rt.jail;
    if jail.is_banned(&id) || held_remotely(rt.remote.as_ref(), &id, now) {
        return;
    }
    if jail.ignore.check(&id, now).is_some() {
        h.count_reject(Reject::Ignored);
        flog!(
            Notice,
            "fleet",
            "[{}] {} reached {count} failures over the fleet: not banned, it is in this node's ignoreip",
            a.jail,
            a.ip
        );
        return;
    }
    flog!(
        Notice,
        "fleet",
        "[{}] {} reached {count} failures over the fleet (shared failure counting): banning",
        a.jail,
        a.ip
    );
    super::jailtask::ban_in(st, rt, id);
}

/// Runs remote decisions through the jails' actions until the fleet stops.
pub async fn apply_task(state: Shared) {
    let Some(mut rx) = APPLIES.with(|a| a.borrow_mut().take()) else {
        return;
    };
    let Some(h) = handle() else { return };
    while let Some(batch) = rx.recv().await {
        apply_batch(&state, h, batch).await;
    }
}

/// One batch: each ban or unban handed to its jail's action queue (the action task takes the
/// queued bans as one firewall transaction), on the jail's task (the decisions of one jail in
/// the order received). A remote ban goes on the unban schedule, which ends it with
/// `actionunban` (see [`expire_remote`]). Per ban: one hash lookup of the remote table and one
/// of the jail's own bans, so a storm of `n` bans costs `O(n log n)`.
pub async fn apply_batch(state: &Shared, h: &'static FleetHandle, batch: Vec<Apply>) {
    // The decisions per jail, in the order received.
    let mut per_jail: Vec<(String, Vec<Apply>)> = Vec::new();
    for a in batch {
        match per_jail.iter_mut().find(|(j, _)| *j == a.jail) {
            Some((_, v)) => v.push(a),
            None => per_jail.push((a.jail.clone(), vec![a])),
        }
    }
    for (jail, applies) in per_jail {
        super::server::call(state, &jail, move |rt, st| apply_in(st, rt, h, applies)).await;
    }
}

/// The decisions `batch` of jail `rt`, on its task.
fn apply_in(
    st: &mut super::server::State,
    rt: &mut super::jailtask::JailRt,
    h: &FleetHandle,
    batch: Vec<Apply>,
) {
    let now = st.clock.now();
    let metrics = st.metrics.clone();
    let mut scheduled = false;
    for a in batch {
        if let ApplyKind::Failures { count } = a.kind {
            failures_reached(st, rt, h, &a, count);
            continue;
        }
        let id = HostId::parse(&a.ip);
        match a.kind {
            ApplyKind::Ban { ends_at } => {
                if ends_at.is_some_and(|e| e <= now) {
                    continue;
                }
                if rt.jail.ignore.check(&id, now).is_some() {
                    h.count_reject(Reject::Ignored);
                    flog!(
                        Notice,
                        "fleet",
                        "[{}] {} banned by {}: refused, it is in this node's ignoreip",
                        a.jail,
                        a.ip,
                        a.origin
                    );
                    continue;
                }
                let was_held = held_remotely(rt.remote.as_ref(), &id, now);
                add_remote(&a.jail, &mut rt.remote, id.clone(), ends_at, &a.origin, now);
                scheduled = true;
                let local_end = rt.jail.ban_of(&id).map(Ban::end);
                if local_end.is_some_and(|l| later_or_same(l, ends_at)) {
                    continue;
                }
                flog!(
                    Notice,
                    "fleet",
                    "[{}] Ban {} (remote, from {})",
                    a.jail,
                    a.ip,
                    a.origin
                );
                // An extension of a remote ban in force is not a new ban.
                if !was_held {
                    let origin = crate::metrics::BanOrigin::Fleet;
                    rt.metrics
                        .banned(&metrics, origin, &a.ip, ends_at, now, None);
                }
                let job = Box::new(BanJob {
                    ticket: ticket(id, now, ends_at),
                    ipmatches: None,
                    ipjailmatches: None,
                    fleet: None,
                });
                // Banned here already (remotely or locally, ending earlier): the actions
                // lengthen it (a native element's timeout; a shell action's actionprolong)
                // instead of banning it a second time.
                let _ = rt.jobs.send(if was_held || local_end.is_some() {
                    Job::Prolong(job)
                } else {
                    Job::Ban(job)
                });
            }
            ApplyKind::Failures { .. } => {}
            ApplyKind::Unban => {
                let had = remove_remote(&a.jail, &mut rt.remote, &id).is_some();
                if had && !rt.jail.is_banned(&id) {
                    flog!(
                        Notice,
                        "fleet",
                        "[{}] Unban {} (remote, by {})",
                        a.jail,
                        a.ip,
                        a.origin
                    );
                    // An origin publishes an unban only for an `unbanip` there: by hand.
                    let reason = crate::metrics::UnbanReason::Manual;
                    rt.metrics.unbanned(&metrics, reason, &a.ip, now);
                    let _ = rt
                        .jobs
                        .send(Job::Unban(Box::new(ticket(id, now, Some(now)))));
                }
            }
        }
    }
    if scheduled {
        // The unban timer looks again at the earliest end.
        st.timer.notify_one();
    }
}

/// `status <jail>`'s remote count (`remote`: the jail's remote bans), only in fleet mode (else
/// fail2ban's layout is unchanged).
pub fn remote_status(remote: Option<&RemoteJail>, now: f64) -> Option<usize> {
    handle().map(|_| remote_count(remote, now))
}

/// `fleet status`: the fleet's status with the remote bans per jail.
pub async fn status_json(state: &Shared) -> Result<serde_json::Value, String> {
    let h = handle().ok_or(
        "fleet mode is off (no [Fleet] in fail2ban.local, or it failed to start: see the log)",
    )?;
    let mut v = serde_json::to_value(h.status()).map_err(|e| e.to_string())?;
    let counts = super::server::call_each(state, |rt, st| {
        let remote = remote_count(rt.remote.as_ref(), st.clock.now());
        (rt.jail.banned().len(), remote)
    })
    .await;
    let jails: serde_json::Map<String, serde_json::Value> = counts
        .into_iter()
        .filter(|(name, _)| h.shares(name))
        .map(|(name, (local, remote))| {
            (
                name,
                serde_json::json!({
                    "local": local,
                    "remote": remote,
                }),
            )
        })
        .collect();
    v["jails"] = serde_json::Value::Object(jails);
    Ok(v)
}

/// `fleet status` for people.
pub fn status_text(v: &serde_json::Value) -> String {
    let s = |k: &str| match &v[k] {
        serde_json::Value::Null => "-".to_string(),
        serde_json::Value::String(x) => x.clone(),
        other => other.to_string(),
    };
    let mut out = format!(
        "Fleet status for node {} ({})\n|- Engine:      {} stream {} ({})\n|- Cursor:      {} (stream at {}, lag {})\n|- Outbox:      {} pending, {} awaiting local enforcement, {} published\n|- Clock skew:  {} ms\n|- Received:    {} events, {} applied, {} remote bans live\n",
        s("node"),
        s("role"),
        v["servers"]
            .as_array()
            .map(|a| a
                .iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default(),
        s("stream"),
        if v["connected"].as_bool() == Some(true) {
            "connected"
        } else {
            "DISCONNECTED"
        },
        s("cursor"),
        s("stream_last_seq"),
        s("lag"),
        s("outbox"),
        s("awaiting_enforcement"),
        s("published"),
        s("skew_ms"),
        s("received"),
        s("applied"),
        s("remote_active"),
    );
    if let Some(e) = v["last_error"].as_str() {
        out.push_str(&format!("|- Last error:  {e}\n"));
    }
    if let Some(j) = v["share_failures"].as_array().filter(|j| !j.is_empty()) {
        let names: Vec<&str> = j.iter().filter_map(|x| x.as_str()).collect();
        out.push_str(&format!(
            "|- Failures:    shared by {}: {} batches sent, {} received, {} reached the threshold, {} shed\n",
            names.join(", "),
            s("failure_batches_sent"),
            s("failures_received"),
            s("failure_thresholds"),
            s("failures_shed"),
        ));
    }
    if let Some(jails) = v["jails"].as_object() {
        out.push_str("|- Jails:\n");
        for (j, c) in jails {
            out.push_str(&format!(
                "|     {j}: {} local, {} remote\n",
                c["local"], c["remote"]
            ));
        }
    }
    if let Some(peers) = v["peers"].as_object() {
        out.push_str("|- Peers:\n");
        for (p, x) in peers {
            out.push_str(&format!(
                "|     {p}: {} live bans, {} events{}\n",
                x["active"],
                x["events"],
                if x["trusted"].as_bool() == Some(true) {
                    ""
                } else {
                    " (not in the trust file)"
                }
            ));
        }
    }
    let rejects: Vec<String> = v["rejects"]
        .as_object()
        .map(|r| {
            r.iter()
                .filter(|(_, n)| n.as_u64().unwrap_or(0) > 0)
                .map(|(k, n)| format!("{k} {n}"))
                .collect()
        })
        .unwrap_or_default();
    out.push_str(&format!(
        "`- Refused:     {}",
        if rejects.is_empty() {
            "none".to_string()
        } else {
            rejects.join(", ")
        }
    ));
    out
}

/// `unbanip` of an address that only a remote ban holds here (`set <jail> unbanip`, jail
/// `rt`): the operator's word wins on this node (the element goes), and the unban is published
/// from this node, which the others refuse and count (an origin lifts only its own bans).
pub fn unban_remote_in(
    st: &mut super::server::State,
    rt: &mut super::jailtask::JailRt,
    id: &HostId,
) -> bool {
    let now = st.clock.now();
    let super::server::State { store, metrics, .. } = st;
    let jail = rt.jail.name();
    if !rt.remote.as_ref().is_some_and(|rj| rj.bans.is_banned(id)) {
        return false;
    }
    local_unban(store.as_mut(), jail, &mut rt.remote, id);
    wake(store.as_ref());
    if let Some(h) = handle() {
        // Not restored at the next start either.
        h.lift_remote(jail, &id.to_string());
    }
    flog!(
        Notice,
        "fleet",
        "[{jail}] Unban {id} (a remote ban, lifted by hand on this node only)"
    );
    let reason = crate::metrics::UnbanReason::Manual;
    rt.metrics.unbanned(metrics, reason, &id.to_string(), now);
    let _ = rt
        .jobs
        .send(Job::Unban(Box::new(ticket(id.clone(), now, Some(now)))));
    true
}

/// The fleet's series for `/metrics` (empty when the fleet is off), from its status: built on
/// each scrape (a handful of series), called from the metrics thread.
pub fn metric_families() -> Vec<prometheus::proto::MetricFamily> {
    match handle() {
        Some(h) => {
            let per_jail = REMOTE_COUNTS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            families_of(&h.status(), &per_jail)
        }
        None => Vec::new(),
    }
}

/// The series of status `s`, with the remote bans in force per jail `per_jail`.
fn families_of(
    s: &ferroban_fleet::Status,
    per_jail: &BTreeMap<String, usize>,
) -> Vec<prometheus::proto::MetricFamily> {
    let r = prometheus::Registry::new();
    if let Ok(g) = prometheus::IntGaugeVec::new(
        prometheus::Opts::new(
            "ferroban_jail_remote_banned_current",
            "Remote bans in force (other nodes' bans applied here; ferroban_jail_banned_current counts the jail's own)",
        ),
        &["jail"],
    ) {
        for (jail, n) in per_jail {
            g.with_label_values(&[jail.as_str()]).set(*n as i64);
        }
        let _ = r.register(Box::new(g));
    }
    let gauge = |name: &str, help: &str, v: f64| {
        if let Ok(g) = prometheus::Gauge::new(name, help) {
            g.set(v);
            let _ = r.register(Box::new(g));
        }
    };
    gauge(
        "ferroban_fleet_connected",
        "1 while the node is connected to NATS JetStream and follows the stream",
        f64::from(u8::from(s.connected)),
    );
    gauge(
        "ferroban_fleet_outbox",
        "Own decisions not yet acknowledged by JetStream",
        s.outbox as f64,
    );
    gauge(
        "ferroban_fleet_awaiting_enforcement",
        "Own bans whose publication waits for their local actions to finish",
        s.awaiting_enforcement as f64,
    );
    gauge(
        "ferroban_fleet_lag",
        "Stream messages not yet applied (stream last sequence minus cursor)",
        s.lag as f64,
    );
    gauge(
        "ferroban_fleet_cursor",
        "Last stream sequence applied",
        s.cursor as f64,
    );
    gauge(
        "ferroban_fleet_remote_bans",
        "Live remote bans",
        s.remote_active as f64,
    );
    gauge(
        "ferroban_fleet_clock_skew_seconds",
        "NATS server clock minus this node's clock",
        s.skew_ms.unwrap_or(0) as f64 / 1000.0,
    );
    let counter = |name: &str, help: &str, v: u64| {
        if let Ok(c) = prometheus::IntCounter::new(name, help) {
            c.inc_by(v);
            let _ = r.register(Box::new(c));
        }
    };
    counter(
        "ferroban_fleet_published_total",
        "Own decisions acknowledged by JetStream since the start",
        s.published,
    );
    counter(
        "ferroban_fleet_failure_batches_sent_total",
        "Shared failure counting: signed failure batches sent",
        s.failure_batches_sent,
    );
    counter(
        "ferroban_fleet_failures_received_total",
        "Shared failure counting: other nodes' failure entries received",
        s.failures_received,
    );
    counter(
        "ferroban_fleet_failures_shed_total",
        "Shared failure counting: failure entries shed (queue or table full)",
        s.failures_shed,
    );
    counter(
        "ferroban_fleet_failure_thresholds_total",
        "Shared failure counting: addresses whose fleet-wide failures reached the threshold here",
        s.failure_thresholds,
    );
    counter(
        "ferroban_fleet_received_total",
        "Other nodes' events received since the start",
        s.received,
    );
    counter(
        "ferroban_fleet_applied_total",
        "Remote decisions handed to the jails since the start",
        s.applied,
    );
    if let Ok(c) = prometheus::IntCounterVec::new(
        prometheus::Opts::new(
            "ferroban_fleet_rejected_total",
            "Refused events per reason since the start",
        ),
        &["reason"],
    ) {
        for (reason, n) in &s.rejects {
            c.with_label_values(&[reason.as_str()]).inc_by(*n);
        }
        let _ = r.register(Box::new(c));
    }
    if let Ok(g) = prometheus::IntGaugeVec::new(
        prometheus::Opts::new("ferroban_fleet_peer_bans", "Live bans per origin"),
        &["peer"],
    ) {
        for (peer, p) in &s.peers {
            g.with_label_values(&[peer.as_str()]).set(p.active as i64);
        }
        let _ = r.register(Box::new(g));
    }
    r.gather()
}

#[cfg(test)]
#[path = "fleet_tests.rs"]
mod expiry_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_series_render_from_the_status() {
        let mut s = ferroban_fleet::Status {
            connected: true,
            outbox: 3,
            published: 334,
            skew_ms: Some(-30_000),
            ..Default::default()
        };
        s.rejects.insert("bad_signature".into(), 2);
        s.peers.insert(
            "n2".into(),
            ferroban_fleet::PeerStatus {
                active: 7,
                ..Default::default()
            },
        );
        let per_jail = BTreeMap::from([("sshd".to_string(), 5)]);
        let fams = families_of(&s, &per_jail);
        let mut out = Vec::new();
        use prometheus::Encoder;
        prometheus::TextEncoder::new()
            .encode(&fams, &mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        for want in [
            "ferroban_fleet_connected 1",
            "ferroban_fleet_outbox 3",
            "ferroban_fleet_awaiting_enforcement 0",
            "ferroban_jail_remote_banned_current{jail=\"sshd\"} 5",
            "ferroban_fleet_published_total 334",
            "ferroban_fleet_failures_received_total 0",
            "ferroban_fleet_clock_skew_seconds -30",
            "ferroban_fleet_rejected_total{reason=\"bad_signature\"} 2",
            "ferroban_fleet_peer_bans{peer=\"n2\"} 7",
        ] {
            assert!(text.contains(want), "{want} not in:\n{text}");
        }
    }
}
