//! The NATS side: a thread with its own current-thread runtime, so the daemon never waits on
//! the engine. It keeps the outbox flowing, follows the stream from the persisted cursor, and
//! re-connects (and re-asserts into a recreated stream) on its own.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::push, stream};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::mpsc;

use crate::config::{FleetConfig, Trust};
use crate::db::{FleetDb, OwnRow, RemoteRow};
use crate::event::{self, ClockKind, Event, Kind, SigningKey};
use crate::failures::{self, Counter, Limits, Outgoing};
use crate::gate::Gate;
use crate::merge::{self, Entry, Merge, Outcome, Reject};
use crate::{Apply, ApplyKind, FleetError, Now, PeerStatus, Status};

/// Log levels of the fleet's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Informational.
    Info,
    /// Something to look at.
    Warning,
    /// An error (the fleet keeps trying).
    Error,
}

/// Where the fleet's log lines go.
pub type Log = Arc<dyn Fn(Level, String) + Send + Sync>;

/// Largest batch handed to the daemon at once (one firewall transaction per jail).
const BATCH: usize = 500;
/// Re-measure the clock skew this often.
const SKEW_EVERY: Duration = Duration::from_secs(600);
/// Look at the stream (lag, recreated?) this often.
const CHECK_EVERY: Duration = Duration::from_secs(2);
/// PING the server this often: the client gives a connection up after two unanswered PINGs
/// (async-nats' limit), so a server that died without closing the connection (a partition, a
/// hung host) is noticed within 2-3 intervals and the client fails over to another one.
const PING_EVERY: Duration = Duration::from_millis(750);
/// Look this often whether the stream has decisions the consumer does not deliver.
const WATCH_EVERY: Duration = Duration::from_millis(250);
/// A decision in the stream past the cursor, with the cursor still for this long, means the
/// consumer is dead (see [`Stall`]): the stream is then read with direct gets (which any
/// replica answers) until the consumer delivers again. Ending the session instead waits for a
/// new consumer, which a cluster creates only once it has a JetStream meta leader again (~6 s
/// when the dead server was the meta leader).
const STALL_AFTER: Duration = Duration::from_secs(1);

enum Cmd {
    Ban {
        jail: String,
        ip: String,
        ends_at: Option<f64>,
    },
    Unban {
        jail: String,
        ip: String,
    },
    /// A remote ban was lifted here by hand: not restored at the next start.
    Lift {
        jail: String,
        ip: String,
    },
    /// The daemon wrote decisions into `fleet_intent` (committed with their bans): take them
    /// into the outbox (a ban once its local actions ran).
    Intents,
    /// The local actions of the bans `(address, intent tag)` in `jail` ran (successfully or
    /// not).
    Enforced {
        jail: String,
        bans: Vec<(String, i64)>,
    },
    /// The start-up restore of `jail` ran (its intents of an earlier run may go).
    Restored {
        jail: String,
    },
    /// The daemon started these jails (the intents of an earlier run of others may go).
    Started {
        jails: Vec<String>,
    },
    /// A jail that counts failures fleet-wide, with its limits.
    FailJail {
        jail: String,
        limits: Limits,
    },
    /// A local failure (`at`: daemon clock) of an address not banned.
    Fail {
        jail: String,
        ip: String,
        at: f64,
        n: u32,
    },
    Stop,
}

/// The daemon's side of the fleet.
#[derive(Clone)]
pub struct FleetHandle {
    tx: mpsc::UnboundedSender<Cmd>,
    status: Arc<Mutex<Status>>,
    cfg: Arc<FleetConfig>,
}

/// What [`start`] gives the daemon.
pub struct Started {
    /// Publish local decisions, read the status.
    pub handle: FleetHandle,
    /// Remote decisions, in batches.
    pub applies: mpsc::UnboundedReceiver<Vec<Apply>>,
    /// The live remote bans stored at the last run (to restore with the local ones, before the
    /// engine is reachable).
    pub restored: Vec<Apply>,
}

impl FleetHandle {
    /// The configuration.
    pub fn config(&self) -> &FleetConfig {
        &self.cfg
    }

    /// Whether jail `jail` shares its bans.
    pub fn shares(&self, jail: &str) -> bool {
        self.cfg.shares(jail)
    }

    /// A local ban was enforced: publish it (through the outbox; never blocks). `ends_at` on
    /// the daemon's clock, `None` permanent. Nothing is sent for non-shared jails or when the
    /// role does not publish.
    pub fn local_ban(&self, jail: &str, ip: &str, ends_at: Option<f64>) {
        if self.cfg.role.publishes() && self.cfg.shares(jail) {
            let _ = self.tx.send(Cmd::Ban {
                jail: jail.to_string(),
                ip: ip.to_string(),
                ends_at,
            });
        }
    }

    /// The outbox row of a local decision (`ban`, else an unban; `ends_at` on the daemon's
    /// clock), for the daemon's ban store to write in the transaction of the ban itself:
    /// the decision is then persisted before anything else sees the ban, and a crash cannot
    /// lose its publication. `tag`: the daemon's id of the decision, unique in this run, which
    /// [`FleetHandle::enforced`] names when the ban's actions ran. `None` when nothing is to
    /// be published (jail not shared, role that does not publish). Call
    /// [`FleetHandle::intents_written`] after the commit.
    pub fn intent(
        &self,
        jail: &str,
        ip: &str,
        ban: bool,
        ends_at: Option<f64>,
        tag: i64,
    ) -> Option<(&'static str, Vec<rusqlite::types::Value>)> {
        self.publishes(jail)
            .then(|| crate::db::intent(jail, ip, ban, ends_at, tag))
    }

    /// Decisions were written with [`FleetHandle::intent`]: the publisher reads them (it also
    /// looks for them every few seconds, and at its start: those of a crash), and signs each
    /// into the outbox once it may go: a ban when [`FleetHandle::enforced`] reports that its
    /// local actions ran, one of an earlier run when [`FleetHandle::restored`] reports its
    /// jail's restore (see [`crate::gate`]).
    pub fn intents_written(&self) {
        let _ = self.tx.send(Cmd::Intents);
    }

    /// Whether local decisions of jail `jail` are published (the jail shares its bans, the
    /// role publishes).
    pub fn publishes(&self, jail: &str) -> bool {
        self.cfg.role.publishes() && self.cfg.shares(jail)
    }

    /// The local actions of the bans `bans` (address, and the tag its intent was written
    /// with by [`FleetHandle::intent`]) in `jail` ran, successfully or not: the publication of
    /// each (that intent row, no other) may go. Never blocks.
    pub fn enforced(&self, jail: &str, bans: Vec<(String, i64)>) {
        if !bans.is_empty() {
            let _ = self.tx.send(Cmd::Enforced {
                jail: jail.to_string(),
                bans,
            });
        }
    }

    /// The restore of `jail` at its start ran: the bans it enforced again include those whose
    /// publication was written before a crash, which may go now.
    pub fn restored(&self, jail: &str) {
        let _ = self.tx.send(Cmd::Restored {
            jail: jail.to_string(),
        });
    }

    /// The daemon started `jails` at its start: the publications written before a crash by
    /// other jails (removed, or not starting) go without waiting for a restore.
    pub fn started(&self, jails: Vec<String>) {
        let _ = self.tx.send(Cmd::Started { jails });
    }

    /// A local ban was lifted by hand: publish the unban (it lifts only this node's ban).
    pub fn local_unban(&self, jail: &str, ip: &str) {
        if self.cfg.role.publishes() && self.cfg.shares(jail) {
            let _ = self.tx.send(Cmd::Unban {
                jail: jail.to_string(),
                ip: ip.to_string(),
            });
        }
    }

    /// The remote ban of `ip` in `jail` was lifted on this node by hand (`unbanip`): it is
    /// not restored at the next start (a newer ban from its origin applies as usual).
    pub fn lift_remote(&self, jail: &str, ip: &str) {
        let _ = self.tx.send(Cmd::Lift {
            jail: jail.to_string(),
            ip: ip.to_string(),
        });
    }

    /// Whether jail `jail` counts its failures fleet-wide (`share_failures`).
    pub fn shares_failures(&self, jail: &str) -> bool {
        self.cfg.shares_failures(jail)
    }

    /// Jail `jail` counts failures fleet-wide with these limits (its `maxretry`, `findtime`):
    /// called when it starts and whenever they may have changed.
    pub fn failure_limits(&self, jail: &str, maxretry: u32, findtime: f64) {
        if self.cfg.shares_failures(jail) {
            let _ = self.tx.send(Cmd::FailJail {
                jail: jail.to_string(),
                limits: Limits::of(maxretry, findtime),
            });
        }
    }

    /// `n` failures of `ip` (not banned) counted by jail `jail` at `at` (daemon clock): counted
    /// here and sent to the other nodes in the next batch. Never blocks.
    pub fn local_failure(&self, jail: &str, ip: &str, at: f64, n: u32) {
        if self.cfg.shares_failures(jail) {
            let _ = self.tx.send(Cmd::Fail {
                jail: jail.to_string(),
                ip: ip.to_string(),
                at,
                n,
            });
        }
    }

    /// Counts a refused event (the daemon refuses bans of its `ignoreip`).
    pub fn count_reject(&self, r: Reject) {
        let mut st = self.status.lock().unwrap_or_else(|e| e.into_inner());
        *st.rejects.entry(r.name().to_string()).or_default() += 1;
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops the fleet thread (pending decisions stay in the outbox).
    pub fn stop(&self) {
        let _ = self.tx.send(Cmd::Stop);
    }
}

fn fleet_ms(local_s: f64, skew_ms: i64) -> i64 {
    (local_s * 1000.0).round() as i64 + skew_ms
}

fn local_s(fleet_ms: i64, skew_ms: i64) -> f64 {
    (fleet_ms - skew_ms) as f64 / 1000.0
}

/// Starts the fleet: reads the key and trust file, opens the tables (`db`: ferroban's database
/// file; `None` in memory), loads the stored remote bans, and starts the thread.
pub fn start(
    cfg: FleetConfig,
    db: Option<PathBuf>,
    now: Now,
    log: Log,
) -> Result<Started, FleetError> {
    let key = event::load_or_create_key(&cfg.signing_key)?;
    let trust = Trust::load(&cfg.trust)?;
    if let Some(me) = trust.peers.get(&cfg.node)
        && !me.keys.contains(&key.verifying_key())
    {
        return Err(FleetError::Config(format!(
            "trust file {}: node {} is listed with another public key than {}.pub",
            cfg.trust.display(),
            cfg.node,
            cfg.signing_key.display()
        )));
    }
    let db = FleetDb::open(db.as_deref())?;
    // Intents up to this row were written before this start.
    let mut gate = Gate::new(db.last_intent_seq()?);
    if std::env::var_os("FERROBAN_BENCH_FLEET_NO_ENFORCEMENT_WAIT").is_some_and(|v| v == "1") {
        // A benchmark's baseline: what waiting for local enforcement costs (see the gate).
        log(
            Level::Warning,
            "fleet: FERROBAN_BENCH_FLEET_NO_ENFORCEMENT_WAIT=1: bans are published before their local actions ran (benchmarks only)".into(),
        );
        gate = gate.without_enforcement_wait();
    }
    let skew = db.meta("skew_ms")?.and_then(|v| v.parse().ok());
    let now_ms = fleet_ms(now(), skew.unwrap_or(0));
    let mut merge = Merge::default();
    for r in db.remote(now_ms)? {
        merge.load(&r.jail, &r.ip, &r.origin, r.entry);
    }
    let lifted = db.lifted()?;
    let restored: Vec<Apply> = if cfg.role.enforces() {
        merge
            .live(now_ms)
            .into_iter()
            .filter(|(j, _, _, _)| cfg.shares(j))
            // Not a ban lifted here by hand (unless an origin has decided anew since).
            .filter(|(j, ip, _, _)| {
                !merge
                    .live_entries(j, ip, now_ms)
                    .iter()
                    .all(|(o, oseq)| lifted.contains(&(j.clone(), ip.clone(), o.clone(), *oseq)))
            })
            .map(|(jail, ip, origin, end)| Apply {
                jail,
                ip,
                origin,
                kind: ApplyKind::Ban {
                    ends_at: end.map(|e| local_s(e, skew.unwrap_or(0))),
                },
            })
            .collect()
    } else {
        Vec::new()
    };
    let status = Arc::new(Mutex::new(Status {
        node: cfg.node.clone(),
        role: cfg.role.name().to_string(),
        servers: cfg.servers.clone(),
        stream: cfg.stream.clone(),
        share_failures: cfg.share_failures.clone(),
        cursor: db.meta_i64("cursor")? as u64,
        outbox: db.pending_count()?,
        skew_ms: skew,
        remote_active: restored.len(),
        peers: trust
            .peers
            .keys()
            .filter(|p| **p != cfg.node)
            .map(|p| {
                (
                    p.clone(),
                    PeerStatus {
                        trusted: true,
                        ..PeerStatus::default()
                    },
                )
            })
            .collect(),
        rejects: Reject::ALL
            .iter()
            .map(|r| (r.name().to_string(), 0))
            .collect(),
        ..Status::default()
    }));
    let cfg = Arc::new(cfg);
    let (tx, rx) = mpsc::unbounded_channel();
    let (atx, arx) = mpsc::unbounded_channel();
    let node = Node {
        cfg: cfg.clone(),
        key,
        trust,
        db,
        merge,
        skew_ms: skew,
        now,
        log,
        rx,
        applies: atx,
        status: status.clone(),
        counter: Counter::default(),
        outgoing: Outgoing::default(),
        fail_limits: BTreeMap::new(),
        gate,
        intents_due: false,
    };
    std::thread::Builder::new()
        .name("ferroban-fleet".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime builds");
            rt.block_on(node.run());
        })
        .map_err(|e| FleetError::Nats(format!("starting the fleet thread: {e}")))?;
    Ok(Started {
        handle: FleetHandle { tx, status, cfg },
        applies: arx,
        restored,
    })
}

struct Node {
    cfg: Arc<FleetConfig>,
    key: SigningKey,
    trust: Trust,
    db: FleetDb,
    merge: Merge,
    skew_ms: Option<i64>,
    now: Now,
    log: Log,
    rx: mpsc::UnboundedReceiver<Cmd>,
    applies: mpsc::UnboundedSender<Vec<Apply>>,
    status: Arc<Mutex<Status>>,
    /// Shared failure counting: fleet-wide counts, this node's unsent failures, the limits of
    /// the jails that count.
    counter: Counter,
    outgoing: Outgoing,
    fail_limits: BTreeMap<String, Limits>,
    /// The daemon's intents read and not yet taken into the outbox.
    gate: Gate,
    /// Intents to read or release: [`Node::take_intents`] after the commands' transaction.
    intents_due: bool,
}

/// Why a session ended.
enum End {
    Stop,
    Error(String),
}

fn nats<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> End {
    move |e| End::Error(format!("{what}: {e}"))
}

impl Node {
    fn st(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_ms(&self) -> i64 {
        fleet_ms((self.now)(), self.skew_ms.unwrap_or(0))
    }

    fn log(&self, level: Level, msg: String) {
        (self.log)(level, msg);
    }

    async fn run(mut self) {
        // Decisions committed with their bans before a crash or stop, not yet in the outbox:
        // read now, published once their jails' restore ran (the daemon reports it).
        self.take_intents();
        let mut backoff = Duration::from_millis(250);
        let mut last_error = String::new();
        loop {
            match self.session().await {
                End::Stop => return,
                End::Error(e) => {
                    {
                        let mut st = self.st();
                        // A session that was following the stream is followed again at once
                        // (a server or consumer lost: fail over now); failing ones back off.
                        if st.connected {
                            backoff = Duration::from_millis(50);
                        }
                        st.connected = false;
                        st.last_error = Some(e.clone());
                    }
                    if e != last_error {
                        self.log(
                            Level::Warning,
                            format!("fleet: {e}; local enforcement goes on, retrying"),
                        );
                        last_error = e;
                    }
                }
            }
            // Keep taking local decisions into the outbox while disconnected.
            let wait = tokio::time::sleep(backoff);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    _ = &mut wait => break,
                    c = self.rx.recv() => match c {
                        None | Some(Cmd::Stop) => return,
                        Some(c) => {
                            self.command(c);
                            if self.intents_due {
                                self.take_intents();
                            }
                            self.st().outbox = self.db.pending_count().unwrap_or(0);
                        }
                    },
                }
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    async fn connect(&self) -> Result<async_nats::Client, End> {
        let c = &self.cfg;
        let mut o = async_nats::ConnectOptions::new()
            .name(format!("ferroban-{}", c.node))
            .connection_timeout(Duration::from_secs(2))
            .ping_interval(PING_EVERY)
            .require_tls(c.tls_required);
        if let Some((u, p)) = &c.user {
            o = o.user_and_password(u.clone(), p.clone());
        }
        if let Some(t) = &c.token {
            o = o.token(t.clone());
        }
        if let Some(f) = &c.creds {
            o = o
                .credentials_file(f)
                .await
                .map_err(nats("reading the credentials file"))?;
        }
        if let Some(ca) = &c.tls_ca {
            o = o.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &c.tls_client {
            o = o.add_client_certificate(cert.clone(), key.clone());
        }
        o.connect(c.servers.as_slice())
            .await
            .map_err(nats("connecting"))
    }

    fn stream_config(&self) -> stream::Config {
        let p = &self.cfg.prefix;
        stream::Config {
            name: self.cfg.stream.clone(),
            subjects: vec![format!("{p}.*.dec.>"), format!("{p}.*.clock")],
            max_messages_per_subject: 1,
            max_age: Duration::from_secs_f64(self.cfg.max_age),
            storage: stream::StorageType::File,
            num_replicas: self.cfg.replicas,
            duplicate_window: Duration::from_secs(120),
            deny_delete: true,
            deny_purge: true,
            allow_direct: true,
            description: Some(
                "ferroban fleet decisions (compacted: one per origin, jail, address)".into(),
            ),
            ..Default::default()
        }
    }

    async fn session(&mut self) -> End {
        let client = match self.connect().await {
            Ok(c) => c,
            Err(e) => return e,
        };
        let mut js = jetstream::new(client.clone());
        js.set_timeout(Duration::from_secs(3));
        let r = self.follow(&client, &js).await;
        // Nothing in flight is lost: the outbox keeps whatever was not acknowledged.
        drop(js);
        let _ = client.drain().await;
        r
    }

    async fn follow(&mut self, client: &async_nats::Client, js: &jetstream::Context) -> End {
        let stream = if self.cfg.manage_stream {
            js.get_or_create_stream(self.stream_config())
                .await
                .map_err(nats("creating the stream"))
        } else {
            js.get_stream(&self.cfg.stream)
                .await
                .map_err(nats("looking up the stream"))
        };
        let stream = match stream {
            Ok(s) => s,
            Err(e) => return e,
        };
        let info = match stream.get_info().await {
            Ok(i) => i,
            Err(e) => return nats("stream info")(e),
        };
        let created = info.created.unix_timestamp_nanos().to_string();
        let mut cursor = self.db.meta_i64("cursor").unwrap_or(0) as u64;
        let known = self.db.meta("stream_created").ok().flatten();
        if known.as_deref() != Some(created.as_str()) || cursor > info.state.last_sequence {
            // A new stream (first start, or recreated/wiped): read it whole, and put this node's
            // live bans back into it.
            let n = self.db.reassert_all(self.now_ms()).unwrap_or(0);
            if known.is_some() {
                self.log(
                    Level::Warning,
                    format!(
                        "fleet: stream {} is new since the last run (recreated or wiped): reading it from the start, re-asserting {n} own bans",
                        self.cfg.stream
                    ),
                );
            }
            cursor = 0;
            let _ = self.db.set_meta("cursor", "0");
            let _ = self.db.set_meta("stream_created", &created);
        }
        if let Err(e) = self.probe_skew(js, &stream).await {
            self.log(
                Level::Warning,
                format!("fleet: clock skew not measured: {e}"),
            );
        }
        let deliver_policy = if cursor == 0 {
            jetstream::consumer::DeliverPolicy::All
        } else {
            jetstream::consumer::DeliverPolicy::ByStartSequence {
                start_sequence: cursor + 1,
            }
        };
        let consumer = stream
            .create_consumer(push::OrderedConfig {
                deliver_subject: client.new_inbox(),
                filter_subject: format!("{}.*.dec.>", self.cfg.prefix),
                deliver_policy,
                ..Default::default()
            })
            .await;
        let consumer = match consumer {
            Ok(c) => c,
            Err(e) => return nats("creating the consumer")(e),
        };
        let mut msgs = match consumer.messages().await {
            Ok(m) => m,
            Err(e) => return nats("consuming")(e),
        };
        {
            let mut st = self.st();
            st.connected = true;
            st.last_error = None;
            // (Zero when the stream is new: the stall watch looks past this.)
            st.cursor = cursor;
            st.stream_last_seq = info.state.last_sequence;
            st.lag = info.state.last_sequence.saturating_sub(cursor);
        }
        self.log(
            Level::Info,
            format!(
                "fleet: node {} connected, stream {} at {} (cursor {cursor})",
                self.cfg.node, self.cfg.stream, info.state.last_sequence
            ),
        );
        if let Err(e) = self.flush(js).await {
            return e;
        }
        // Shared failure counting: core NATS (failures may be shed; they are never stored).
        let mut fails = if self.cfg.share_failures.is_empty() {
            None
        } else {
            match client
                .subscribe(failures::subject(&self.cfg.prefix, "*"))
                .await
            {
                Ok(s) => Some(s),
                Err(e) => return nats("subscribing to failures")(e),
            }
        };
        let mut fail_tick = tokio::time::interval(failures::BATCH_EVERY);
        fail_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut check = tokio::time::interval(CHECK_EVERY);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut watch = tokio::time::interval(WATCH_EVERY);
        watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stall = Stall::default();
        // The consumer stalled: the stream is read with direct gets until it delivers again.
        let mut direct = false;
        let filter = format!("{}.*.dec.>", self.cfg.prefix);
        let mut last_skew = tokio::time::Instant::now();
        let mut last_prune = tokio::time::Instant::now();
        loop {
            tokio::select! {
                m = msgs.next() => {
                    let mut batch = match m {
                        None => return End::Error("the consumer ended".into()),
                        // Read directly meanwhile; the ordered consumer recreates itself.
                        Some(Err(_)) if direct => continue,
                        Some(Err(e)) => return nats("consumer")(e),
                        Some(Ok(m)) => vec![consumed(m)],
                    };
                    if direct {
                        direct = false;
                        self.log(Level::Info, "fleet: the consumer delivers again".into());
                    }
                    let mut failed = None;
                    while batch.len() < BATCH {
                        match msgs.next().now_or_never() {
                            Some(Some(Ok(m))) => batch.push(consumed(m)),
                            Some(Some(Err(e))) => {
                                failed = Some(e.to_string());
                                break;
                            }
                            Some(None) | None => break,
                        }
                    }
                    self.receive(batch);
                    if let Some(e) = failed {
                        return End::Error(format!("consumer: {e}"));
                    }
                }
                m = async {
                    match fails.as_mut() {
                        Some(f) => f.next().await,
                        None => std::future::pending().await,
                    }
                } => {
                    match m {
                        Some(m) => self.receive_failures(&m),
                        None => return End::Error("the failure subscription ended".into()),
                    }
                }
                _ = fail_tick.tick(), if !self.outgoing.is_empty() => {
                    if let Err(e) = self.send_failures(client).await {
                        return e;
                    }
                }
                c = self.rx.recv() => {
                    let c = match c {
                        None | Some(Cmd::Stop) => return End::Stop,
                        Some(c) => c,
                    };
                    // Everything queued now goes into the outbox in one transaction.
                    let tx = self.db.begin().is_ok();
                    self.command(c);
                    let mut stop = false;
                    while let Ok(c) = self.rx.try_recv() {
                        if matches!(c, Cmd::Stop) {
                            stop = true;
                            break;
                        }
                        self.command(c);
                    }
                    if tx && let Err(e) = self.db.commit() {
                        self.db.rollback();
                        self.log(Level::Error, format!("fleet: {e}"));
                    }
                    if self.intents_due {
                        self.take_intents();
                    }
                    self.st().outbox = self.db.pending_count().unwrap_or(0);
                    if stop {
                        return End::Stop;
                    }
                    if self.outgoing.len() >= failures::BATCH_ENTRIES
                        && let Err(e) = self.send_failures(client).await
                    {
                        return e;
                    }
                    if let Err(e) = self.flush(js).await {
                        return e;
                    }
                }
                _ = watch.tick() => {
                    // The client lost its server: the status says so now. The session goes
                    // on: the client reconnects to another server of the list by itself, and
                    // until the consumer is back there the stall watch reads directly (a new
                    // session would wait for a new consumer, i.e. for a meta leader). With no
                    // server at all, the stream checks fail and end it.
                    let up = client.connection_state() == async_nats::connection::State::Connected;
                    {
                        let mut st = self.st();
                        if st.connected != up {
                            st.connected = up;
                            st.last_error = (!up).then(|| "disconnected from the NATS server".into());
                        }
                    }
                    if !up {
                        continue;
                    }
                    let cursor = self.st().cursor;
                    // The first decision after the cursor, if any (a direct get: any replica
                    // answers, the consumer's server need not be alive).
                    let next = match tokio::time::timeout(
                        WATCH_EVERY * 2,
                        stream.direct_get_next_for_subject(filter.as_str(), Some(cursor + 1)),
                    )
                    .await
                    {
                        // Unanswered in time: the connection's PINGs decide about the server.
                        Err(_) => continue,
                        Ok(Ok(m)) => Some(m),
                        Ok(Err(e)) if e.kind() == jetstream::stream::DirectGetErrorKind::NotFound => None,
                        Ok(Err(_)) => continue,
                    };
                    let at = next.as_ref().map(|m| m.sequence);
                    if let Some(waited) = stall.observe(cursor, at, tokio::time::Instant::now())
                        && waited >= STALL_AFTER
                        && !direct
                    {
                        direct = true;
                        self.log(
                            Level::Warning,
                            format!(
                                "fleet: consumer stalled: stream message {} not delivered for {:.1} s (its server died?): reading the stream directly from the cursor {cursor} until it delivers again",
                                at.unwrap_or_default(),
                                waited.as_secs_f64()
                            ),
                        );
                    }
                    if direct && let Some(m) = next {
                        // Up to a batch past the cursor, one direct get each (any replica).
                        let mut batch = vec![direct_message(m)];
                        while batch.len() < BATCH {
                            let after = batch[batch.len() - 1].0 + 1;
                            match tokio::time::timeout(
                                WATCH_EVERY * 2,
                                stream.direct_get_next_for_subject(filter.as_str(), Some(after)),
                            )
                            .await
                            {
                                Ok(Ok(m)) => batch.push(direct_message(m)),
                                _ => break,
                            }
                        }
                        self.receive(batch);
                    }
                }
                _ = check.tick() => {
                    // Intents whose wake-up was missed (written late by a store that could
                    // not write for a while).
                    self.take_intents();
                    self.refresh_live(self.now_ms());
                    if let Err(e) = self.flush(js).await {
                        return e;
                    }
                    let info = match stream.get_info().await {
                        Ok(i) => i,
                        Err(e) => return nats("stream info")(e),
                    };
                    if info.created.unix_timestamp_nanos().to_string() != created {
                        return End::Error("the stream was recreated".into());
                    }
                    {
                        let cursor = self.db.meta_i64("cursor").unwrap_or(0) as u64;
                        let mut st = self.st();
                        st.stream_last_seq = info.state.last_sequence;
                        st.lag = info.state.last_sequence.saturating_sub(cursor);
                    }
                    if last_skew.elapsed() >= SKEW_EVERY {
                        last_skew = tokio::time::Instant::now();
                        if let Err(e) = self.probe_skew(js, &stream).await {
                            self.log(Level::Warning, format!("fleet: clock skew not measured: {e}"));
                        }
                    }
                    if last_prune.elapsed() >= Duration::from_secs(3600) {
                        last_prune = tokio::time::Instant::now();
                        let now = self.now_ms();
                        self.merge.prune(now);
                        self.counter.prune(&self.fail_limits, now);
                    }
                }
            }
        }
    }

    /// Engine clock minus local clock: publish a probe on `<prefix>.<node>.clock`, read back the
    /// server's timestamp of it, compare with the midpoint of send and acknowledgement.
    async fn probe_skew(
        &mut self,
        js: &jetstream::Context,
        stream: &jetstream::stream::Stream,
    ) -> Result<(), String> {
        let subject = format!("{}.{}.clock", self.cfg.prefix, self.cfg.node);
        let t0 = (self.now)();
        let ack = js
            .publish(subject, Vec::new().into())
            .await
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        let t1 = (self.now)();
        let msg = stream
            .get_raw_message(ack.sequence)
            .await
            .map_err(|e| e.to_string())?;
        let server_ms = (msg.time.unix_timestamp_nanos() / 1_000_000) as i64;
        let skew = server_ms - ((t0 + t1) / 2.0 * 1000.0).round() as i64;
        if skew.abs() > 1000 {
            self.log(
                Level::Warning,
                format!(
                    "fleet: this node's clock is {:.1} s off the NATS server's; fleet times are corrected",
                    -skew as f64 / 1000.0
                ),
            );
        }
        self.skew_ms = Some(skew);
        self.st().skew_ms = Some(skew);
        let _ = self.db.set_meta("skew_ms", &skew.to_string());
        Ok(())
    }

    /// Counts failures of `ip` in `jail` from `origin`; when the fleet-wide sum reaches the
    /// jail's threshold, hands the address to the daemon to ban.
    fn count_failures(&mut self, jail: &str, ip: &str, origin: &str, n: u32, at: i64) {
        if !self.cfg.role.enforces() {
            return;
        }
        let Some(lim) = self.fail_limits.get(jail).copied() else {
            return;
        };
        let now = self.now_ms();
        let shed = self.counter.shed;
        let reached = self.counter.add(jail, ip, origin, n, at, &lim, now);
        if self.counter.shed > shed {
            self.st().failures_shed += 1;
        }
        if let Some(count) = reached {
            self.outgoing.forget(jail, ip);
            self.st().failure_thresholds += 1;
            let _ = self.applies.send(vec![Apply {
                jail: jail.to_string(),
                ip: ip.to_string(),
                origin: self.cfg.node.clone(),
                kind: ApplyKind::Failures { count },
            }]);
        }
    }

    /// Sends this node's pending failures, [`failures::BATCH_ENTRIES`] per signed message.
    async fn send_failures(&mut self, client: &async_nats::Client) -> Result<(), End> {
        let subject = failures::subject(&self.cfg.prefix, &self.cfg.node);
        let now = self.now_ms();
        while let Some(b) = self.outgoing.take(&self.cfg.node, now) {
            let (body, sig) = failures::sign_batch(&self.key, &b);
            let mut h = async_nats::HeaderMap::new();
            h.insert("Fb-Kid", self.cfg.node.as_str());
            h.insert("Fb-Sig", sig.as_str());
            client
                .publish_with_headers(subject.clone(), h, body.into())
                .await
                .map_err(nats("publishing failures"))?;
            self.st().failure_batches_sent += 1;
        }
        Ok(())
    }

    /// A failure batch of another node: verify, count (never republished).
    fn receive_failures(&mut self, m: &async_nats::Message) {
        let subject = m.subject.as_str();
        if failures::subject(&self.cfg.prefix, &self.cfg.node) == subject {
            return;
        }
        let (kid, sig) = signature_headers(m);
        let b = match failures::verify_batch(
            &self.trust,
            &self.cfg.prefix,
            subject,
            kid.as_deref(),
            sig.as_deref(),
            &m.payload,
        ) {
            Ok(b) => b,
            Err(r) => {
                self.log(
                    Level::Warning,
                    format!("fleet: refused a failure batch on {subject}: {}", r.name()),
                );
                *self.st().rejects.entry(r.name().to_string()).or_default() += 1;
                return;
            }
        };
        self.st().failures_received += b.entries.len() as u64;
        for e in b.entries {
            if !self.cfg.shares_failures(&e.jail) {
                continue;
            }
            self.count_failures(&e.jail, &e.ip, &b.origin, e.n, e.last);
        }
    }

    /// A local decision into the outbox (signed now, sent by [`Node::flush`]).
    fn command(&mut self, c: Cmd) {
        let (kind, jail, ip, ends_at) = match c {
            Cmd::Ban { jail, ip, ends_at } => (Kind::Ban, jail, ip, ends_at),
            Cmd::Unban { jail, ip } => (Kind::Unban, jail, ip, None),
            Cmd::FailJail { jail, limits } => {
                self.fail_limits.insert(jail, limits);
                return;
            }
            Cmd::Intents => {
                self.intents_due = true;
                return;
            }
            Cmd::Enforced { jail, bans } => {
                for (ip, tag) in bans {
                    self.gate.enforced(&jail, &ip, tag);
                }
                self.intents_due = true;
                return;
            }
            Cmd::Restored { jail } => {
                self.gate.restored(&jail);
                self.intents_due = true;
                return;
            }
            Cmd::Started { jails } => {
                self.gate.started(jails);
                self.intents_due = true;
                return;
            }
            Cmd::Lift { jail, ip } => {
                if let Some(net) = event::parse_target(&ip) {
                    let ip = event::target_text(&net);
                    let live = self.merge.live_entries(&jail, &ip, self.now_ms());
                    if let Err(e) = self.db.lift(&jail, &ip, &live) {
                        self.log(Level::Error, format!("fleet: {e}"));
                    }
                }
                return;
            }
            Cmd::Fail { jail, ip, at, n } => {
                let at = fleet_ms(at, self.skew_ms.unwrap_or(0));
                let me = self.cfg.node.clone();
                self.count_failures(&jail, &ip, &me, n, at);
                if self.cfg.role.publishes() {
                    let shed = self.outgoing.shed;
                    self.outgoing.push(&jail, &ip, n, at);
                    if self.outgoing.shed > shed {
                        self.st().failures_shed += 1;
                    }
                }
                return;
            }
            Cmd::Stop => return,
        };
        if kind == Kind::Ban {
            // Banned: its failures are no longer counted or sent.
            self.counter.clear(&jail, &ip);
            self.outgoing.forget(&jail, &ip);
        }
        let Some(net) = event::parse_target(&ip) else {
            self.log(
                Level::Warning,
                format!("fleet: [{jail}] {ip} is not an address or network: not shared"),
            );
            return;
        };
        let oseq = match self.db.next_oseq() {
            Ok(n) => n,
            Err(e) => {
                self.log(Level::Error, format!("fleet: {e}"));
                return;
            }
        };
        let skew = self.skew_ms.unwrap_or(0);
        let ev = Event {
            v: 1,
            kind,
            id: format!("{}.{oseq}", self.cfg.node),
            origin: self.cfg.node.clone(),
            oseq,
            jail: jail.clone(),
            ip: event::target_text(&net),
            issued_at: self.now_ms(),
            expires_at: ends_at.map(|e| fleet_ms(e, skew)),
            clock: if self.skew_ms.is_some() {
                ClockKind::Engine
            } else {
                ClockKind::Local
            },
        };
        let body = ev.body();
        let row = OwnRow {
            subject: event::subject(&self.cfg.prefix, &self.cfg.node, &jail, &net),
            id: ev.id.clone(),
            oseq,
            sig: event::sign(&self.key, &body),
            body,
        };
        let kind = if kind == Kind::Ban { "ban" } else { "unban" };
        if let Err(e) = self.db.put_own(&row, kind, ev.expires_at) {
            self.log(Level::Error, format!("fleet: {e}"));
        }
    }

    /// Reads the daemon's new intents and turns those that may go (a ban once its local
    /// actions ran: [`Gate`]) into signed outbox rows, deleting them, in one transaction. The
    /// others stay in the table (durable) and in the gate.
    fn take_intents(&mut self) {
        self.intents_due = false;
        let own_tx = !self.db.in_transaction() && self.db.begin().is_ok();
        let mut ok = true;
        loop {
            match self.db.intents_after(self.gate.read_to(), BATCH) {
                Ok(b) => {
                    let full = b.len() == BATCH;
                    for i in b {
                        self.gate.add(i);
                    }
                    if !full {
                        break;
                    }
                }
                Err(e) => {
                    self.log(Level::Error, format!("fleet: {e}"));
                    ok = false;
                    break;
                }
            }
        }
        let taken = self.gate.take();
        let mut seqs: Vec<i64> = taken.publish.iter().map(|i| i.seq).collect();
        seqs.extend(&taken.superseded);
        for i in taken.publish {
            self.command(if i.ban {
                Cmd::Ban {
                    jail: i.jail,
                    ip: i.ip,
                    ends_at: i.ends_at,
                }
            } else {
                Cmd::Unban {
                    jail: i.jail,
                    ip: i.ip,
                }
            });
        }
        if let Err(e) = self.db.drop_intent_rows(&seqs) {
            self.log(Level::Error, format!("fleet: {e}"));
            ok = false;
        }
        if own_tx
            && ok
            && let Err(e) = self.db.commit()
        {
            self.log(Level::Error, format!("fleet: {e}"));
            ok = false;
        }
        if ok {
            self.gate.committed();
        } else {
            // The intents stay for the next try (those taken are taken again at once).
            if own_tx {
                self.db.rollback();
            }
            self.gate.rolled_back();
        }
        let outbox = self.db.pending_count().unwrap_or(0);
        let mut st = self.st();
        st.outbox = outbox;
        st.awaiting_enforcement = self.gate.len() as u64;
    }

    /// Sends the outbox: every message first, then every acknowledgement (so a storm is a
    /// pipeline, not a round trip per ban). Unacknowledged decisions stay for the next try.
    async fn flush(&mut self, js: &jetstream::Context) -> Result<(), End> {
        for _ in 0..50 {
            let rows = self
                .db
                .pending(BATCH, self.now_ms())
                .map_err(|e| End::Error(e.to_string()))?;
            if rows.is_empty() {
                break;
            }
            let full = rows.len() == BATCH;
            let mut acks = Vec::with_capacity(rows.len());
            let mut send_error = None;
            for r in rows {
                let mut h = async_nats::HeaderMap::new();
                h.insert("Nats-Msg-Id", r.id.as_str());
                h.insert("Fb-Kid", self.cfg.node.as_str());
                h.insert("Fb-Sig", r.sig.as_str());
                match js
                    .publish_with_headers(r.subject.clone(), h, r.body.clone().into())
                    .await
                {
                    Ok(f) => acks.push((r.subject, r.oseq, f)),
                    Err(e) => {
                        send_error = Some(e.to_string());
                        break;
                    }
                }
            }
            let (done, ack_error) = settle(
                acks.into_iter()
                    .map(|(subject, oseq, f)| ((subject, oseq), f))
                    .collect(),
            )
            .await;
            let n = done.len() as u64;
            self.db
                .acked(&done)
                .map_err(|e| End::Error(e.to_string()))?;
            {
                let outbox = self.db.pending_count().unwrap_or(0);
                let mut st = self.st();
                st.published += n;
                st.outbox = outbox;
            }
            if let Some(e) = send_error.or(ack_error) {
                return Err(End::Error(format!("publishing: {e}")));
            }
            if !full {
                break;
            }
        }
        Ok(())
    }

    /// A batch of stream messages: verify, merge, store with the cursor, hand to the daemon.
    /// `batch`: (stream sequence, message), from the consumer or read directly; messages at
    /// or before the cursor (read directly, then delivered by a consumer that came back) are
    /// skipped.
    fn receive(&mut self, batch: Vec<(u64, async_nats::Message)>) {
        let floor = self.st().cursor;
        let now_ms = self.now_ms();
        let skew = self.skew_ms.unwrap_or(0);
        let mut cursor = 0;
        let mut rows = Vec::new();
        let mut applies = Vec::new();
        let mut rejects: BTreeMap<Reject, u64> = BTreeMap::new();
        let mut seen: BTreeMap<String, (u64, i64)> = BTreeMap::new();
        for (seq, m) in &batch {
            if *seq > 0 && *seq <= floor {
                continue;
            }
            cursor = cursor.max(*seq);
            let subject = m.subject.as_str();
            if event::subject_origin(&self.cfg.prefix, subject) == Some(self.cfg.node.as_str()) {
                continue;
            }
            let (kid, sig) = signature_headers(m);
            let ev = match merge::verify(
                &self.trust,
                &self.cfg.prefix,
                subject,
                kid.as_deref(),
                sig.as_deref(),
                &m.payload,
            ) {
                Ok(ev) => ev,
                Err(r) => {
                    *rejects.entry(r).or_default() += 1;
                    continue;
                }
            };
            let s = seen.entry(ev.origin.clone()).or_default();
            s.0 += 1;
            s.1 = s.1.max(ev.issued_at);
            if !self.cfg.shares(&ev.jail) {
                continue;
            }
            let Some(net) = ev.target() else { continue };
            let ip = event::target_text(&net);
            let outcome = self.merge.apply(&ev, &ip, now_ms);
            rows.push(RemoteRow {
                jail: ev.jail.clone(),
                ip: ip.clone(),
                origin: ev.origin.clone(),
                entry: Entry {
                    oseq: ev.oseq,
                    expires_at: ev.expires_at,
                    active: ev.kind == Kind::Ban,
                },
            });
            if matches!(outcome, Outcome::Ban(_)) {
                self.counter.clear(&ev.jail, &ip);
                self.outgoing.forget(&ev.jail, &ip);
            }
            let kind = match outcome {
                Outcome::Ban(end) => ApplyKind::Ban {
                    ends_at: end.map(|e| local_s(e, skew)),
                },
                Outcome::Unban => ApplyKind::Unban,
                Outcome::NotOwner => {
                    *rejects.entry(Reject::UnbanNotOwner).or_default() += 1;
                    continue;
                }
                Outcome::Unchanged => continue,
            };
            applies.push(Apply {
                jail: ev.jail,
                ip,
                origin: ev.origin,
                kind,
            });
        }
        if cursor > 0
            && let Err(e) = self.db.save_remote(&rows, cursor)
        {
            self.log(Level::Error, format!("fleet: {e}"));
        }
        let total_rejects: u64 = rejects.values().sum();
        if total_rejects > 0 {
            self.log(
                Level::Warning,
                format!(
                    "fleet: refused {total_rejects} event(s): {}",
                    rejects
                        .iter()
                        .map(|(r, n)| format!("{} {n}", r.name()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        let enforce = self.cfg.role.enforces();
        let n_apply = applies.len() as u64;
        if enforce && !applies.is_empty() {
            let _ = self.applies.send(applies);
        }
        self.refresh_live(now_ms);
        let mut st = self.st();
        if cursor > 0 {
            st.cursor = cursor;
            st.stream_last_seq = st.stream_last_seq.max(cursor);
            st.lag = st.stream_last_seq.saturating_sub(cursor);
        }
        for (r, n) in rejects {
            *st.rejects.entry(r.name().to_string()).or_default() += n;
        }
        for (o, (n, at)) in seen {
            let p = st.peers.entry(o).or_default();
            p.events += n;
            p.last_event_ms = Some(p.last_event_ms.unwrap_or(0).max(at));
            st.received += n;
        }
        if enforce {
            st.applied += n_apply;
        }
    }

    /// The live remote bans in the status (overall and per peer) at `now_ms`: after each
    /// batch, and every few seconds, as bans end by themselves without any event.
    fn refresh_live(&self, now_ms: i64) {
        let per_origin = self.merge.per_origin(now_ms);
        let live = self.merge.live(now_ms).len();
        let mut st = self.st();
        for p in st.peers.values_mut() {
            p.active = 0;
        }
        for (o, n) in per_origin {
            st.peers.entry(o).or_default().active = n;
        }
        st.remote_active = live;
    }
}

/// A consumer's message with its stream sequence (0: unknown).
fn consumed(m: jetstream::Message) -> (u64, async_nats::Message) {
    let seq = m.info().map(|i| i.stream_sequence).unwrap_or(0);
    (seq, m.message)
}

/// A message read directly from the stream, as a consumer would have delivered it.
fn direct_message(m: jetstream::message::StreamMessage) -> (u64, async_nats::Message) {
    (
        m.sequence,
        async_nats::Message {
            subject: m.subject,
            reply: None,
            length: m.payload.len(),
            payload: m.payload,
            headers: Some(m.headers),
            status: None,
            description: None,
        },
    )
}

/// Whether the consumer still delivers: a push consumer lives on one server (an ordered
/// consumer is an R1 ephemeral one, whatever the stream's replicas), and when that server dies
/// while the client stays connected to another one, nothing arrives any more and the client
/// library notices only after two missed idle heartbeats (async-nats' ordered consumer: a
/// fixed 5 s heartbeat, 10 s). Here: a decision exists in the stream past the cursor and the
/// cursor has not moved since it was first seen.
#[derive(Debug, Default)]
struct Stall {
    /// The cursor when a decision past it was first seen, and when.
    since: Option<(u64, tokio::time::Instant)>,
}

impl Stall {
    /// `next`: the first decision past `cursor` (`None`: none). Returns how long the cursor
    /// has stood still with a decision past it (`None`: it moved, or nothing waits).
    fn observe(
        &mut self,
        cursor: u64,
        next: Option<u64>,
        now: tokio::time::Instant,
    ) -> Option<Duration> {
        match (next, self.since) {
            (None, _) => {
                self.since = None;
                None
            }
            (Some(_), Some((c, t))) if c == cursor => Some(now - t),
            (Some(_), _) => {
                self.since = Some((cursor, now));
                Some(Duration::ZERO)
            }
        }
    }
}

/// Waits for the acknowledgements of a pipelined batch together; returns the keys of those
/// acknowledged (in order) and the last error. An acknowledgement's timeout starts when it is
/// first awaited, so awaiting them one after the other would wait one timeout per message
/// the server never answers (a cluster whose stream leader died: `n` × 3 s, during which the
/// node neither publishes nor receives); together, the batch takes one timeout at most.
async fn settle<K, F, T, E>(acks: Vec<(K, F)>) -> (Vec<K>, Option<String>)
where
    F: std::future::IntoFuture<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let (keys, acks): (Vec<K>, Vec<F>) = acks.into_iter().unzip();
    let results = futures_util::future::join_all(acks.into_iter().map(|f| f.into_future())).await;
    let mut done = Vec::with_capacity(keys.len());
    let mut error = None;
    for (k, r) in keys.into_iter().zip(results) {
        match r {
            Ok(_) => done.push(k),
            Err(e) => error = Some(e.to_string()),
        }
    }
    (done, error)
}

/// The signing key id and signature headers (`Fb-Kid`, `Fb-Sig`) of a fleet message.
fn signature_headers(m: &async_nats::Message) -> (Option<String>, Option<String>) {
    let header = |k: &str| {
        m.headers
            .as_ref()
            .and_then(|h| h.get(k))
            .map(|v| v.as_str().to_string())
    };
    (header("Fb-Kid"), header("Fb-Sig"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_that_stands_still_behind_a_decision_is_a_stall() {
        let t0 = tokio::time::Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut s = Stall::default();
        assert_eq!(s.observe(5, None, at(0)), None);
        assert_eq!(s.observe(5, Some(6), at(0)), Some(Duration::ZERO));
        assert_eq!(
            s.observe(5, Some(6), at(700)),
            Some(Duration::from_millis(700))
        );
        // The consumer delivers: the cursor moved, waiting starts again.
        assert_eq!(s.observe(6, Some(9), at(900)), Some(Duration::ZERO));
        assert_eq!(
            s.observe(6, Some(9), at(1900)),
            Some(Duration::from_millis(1000))
        );
        // Caught up: nothing waits.
        assert_eq!(s.observe(9, None, at(2000)), None);
        assert_eq!(s.observe(9, Some(10), at(2100)), Some(Duration::ZERO));
    }

    /// Regression (fleet_cluster_loses_nothing_when_a_server_dies): acknowledgements that never
    /// come (a stream leader that died with the batch in flight) are given up after one
    /// timeout for the whole batch, not one per message; those that came are kept, in order.
    #[test]
    fn unanswered_acknowledgements_cost_one_timeout_per_batch() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            const N: usize = 20;
            const TIMEOUT: Duration = Duration::from_millis(300);
            // Like a PublishAckFuture: the timeout starts at the first poll.
            let acks: Vec<(usize, _)> = (0..N)
                .map(|k| {
                    (k, async move {
                        if k % 4 == 0 {
                            return Ok(k);
                        }
                        tokio::time::timeout(TIMEOUT, std::future::pending::<()>())
                            .await
                            .map(|_| k)
                            .map_err(|_| format!("ack {k} timed out"))
                    })
                })
                .collect();
            let t = std::time::Instant::now();
            let (done, error) = settle(acks).await;
            let took = t.elapsed();
            assert_eq!(done, vec![0, 4, 8, 12, 16]);
            assert!(error.is_some_and(|e| e.contains("timed out")));
            // One after the other: 15 × 300 ms = 4.5 s.
            assert!(
                took < TIMEOUT * 5,
                "{took:?} for {N} acknowledgements of {TIMEOUT:?}"
            );
        });
    }
}
