//! Remote bans end like local ones: the daemon's state on a manual clock (nothing waits for a
//! ban to end: the clock is moved and the unban timer's step, `server::expire_all`, is run), one
//! jail whose shell action records each `actionban` / `actionunban` in a file (no kernel
//! timeout can end anything), and remote decisions handed in as the fleet thread hands them.
//! The fleet runs without a reachable NATS server, so whatever the daemon publishes stays in
//! its outbox: only local bans are there (remote bans and natural expiry publish nothing).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroban_fleet::db::{FleetDb, RemoteRow};
use ferroban_fleet::event::{load_or_create_key, public_key_text};
use ferroban_fleet::merge::Entry;
use ferroban_fleet::{Apply, ApplyKind, FleetConfig, FleetHandle, RawOption};
use tokio::sync::Notify;

use super::{apply_batch, remote_count, set_restored, set_test_handle};
use crate::clock::{Clock, ManualClock};
use crate::daemon::jailtask;
use crate::daemon::server::{self, Settings, Shared, State};
use crate::ip::HostId;

const T0: f64 = 1_780_000_000.0;
const JAIL: &str = "web";

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A configuration tree: jail `web` (bantime 10 minutes) with the shell action `record`.
fn tree(tag: &str) -> Dir {
    tree_with(tag, "")
}

/// [`tree`] whose `actionban` runs `before` first (`<ip>` is substituted, `DIR` is the tree's
/// directory), then records.
fn tree_with(tag: &str, before: &str) -> Dir {
    let dir = std::env::temp_dir().join(format!(
        "ferroban-fleet-expiry-{tag}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("filter.d")).unwrap();
    std::fs::create_dir_all(dir.join("action.d")).unwrap();
    std::fs::write(
        dir.join("filter.d/test.conf"),
        "[Definition]\nfailregex = ^FAIL from <HOST>$\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("action.d/record.conf"),
        format!(
            "[Definition]\nactionstart =\nactionstop =\nactioncheck =\nactionban = {1}echo ban <ip> >> {0}\nactionunban = echo unban <ip> >> {0}\n",
            dir.join("actions.log").display(),
            before.replace("DIR", &dir.display().to_string())
        ),
    )
    .unwrap();
    std::fs::write(dir.join("test.log"), "").unwrap();
    std::fs::write(
        dir.join("jail.conf"),
        format!(
            "[DEFAULT]\nbantime = 10m\nfindtime = 10m\nmaxretry = 3\n\n[{JAIL}]\nenabled = true\nfilter = test\nbackend = polling\nlogpath = {}\naction = record\n",
            dir.join("test.log").display()
        ),
    )
    .unwrap();
    Dir(dir)
}

fn db(dir: &Path) -> PathBuf {
    dir.join("ferroban.sqlite3")
}

fn state(dir: &Path, clock: &ManualClock) -> Shared {
    state_on(dir, clock, Some(db(dir)))
}

/// [`state`] on database file `dbfile` (`None`: no database, as `dbfile = :memory:`).
fn state_on(dir: &Path, clock: &ManualClock, dbfile: Option<PathBuf>) -> Shared {
    let settings = Settings {
        conf: crate::defaults::locate(Some(dir)),
        socket: dir.join("ferroban.sock"),
        pidfile: dir.join("ferroban.pid"),
        dbfile: dbfile.clone(),
        dbpurgeage: 86_400.0,
        dbmaxmatches: None,
        metrics: None,
        metrics_compat: false,
    };
    let store = server::open_store(&settings, clock.now());
    assert_eq!(store.is_some(), dbfile.is_some());
    Rc::new(RefCell::new(State {
        settings,
        jails: Vec::new(),
        store: store.map(crate::daemon::storethread::StoreHandle::spawn),
        clock: Arc::new(clock.clone()),
        timer: Rc::new(Notify::new()),
        shutdown: Rc::new(Notify::new()),
        reload: Rc::new(Notify::new()),
        reload_only: Vec::new(),
        broken: BTreeMap::new(),
        metrics: crate::metrics::Metrics::new(crate::metrics::MetricsOptions { compat: false }),
        reloading: false,
        readers: Vec::new(),
        starting: Default::default(),
    }))
}

/// The jail's live remote bans, on its task (none when it does not run).
async fn remote_in(state: &Shared) -> usize {
    server::call(state, JAIL, |rt, st| {
        remote_count(rt.remote.as_ref(), st.clock.now())
    })
    .await
    .unwrap_or(0)
}

/// Bans `id` by hand in the jail, on its task.
async fn ban_in(state: &Shared, id: HostId) -> bool {
    server::call(state, JAIL, move |rt, st| jailtask::ban_in(st, rt, id))
        .await
        .expect("the jail runs")
}

/// Unbans `id` by hand in the jail, on its task.
async fn unban_in(state: &Shared, id: HostId) -> bool {
    server::call(state, JAIL, move |rt, st| jailtask::unban_in(st, rt, &id))
        .await
        .expect("the jail runs")
}

fn start_jail(state: &Shared) {
    let conf = state.borrow().settings.conf.clone();
    let cfg = server::load_jails(&conf).unwrap();
    assert!(cfg.errors.is_empty(), "{:?}", cfg.errors);
    let def = cfg.jails.into_iter().next().expect("one jail");
    server::start_jail(state, def).unwrap();
}

/// Node `n1` of a fleet whose server does not answer (its thread keeps retrying), trusting
/// `n2`; on the same database file as the ban store, clock `clock`. It is this thread's fleet,
/// and its stored remote bans are handed to the daemon's restore, as at the daemon's start.
fn fleet(dir: &Path, clock: &ManualClock) -> &'static FleetHandle {
    let peer = load_or_create_key(&dir.join("n2.key")).unwrap();
    std::fs::write(
        dir.join("trust"),
        format!("n2 {}\n", public_key_text(&peer.verifying_key())),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = |k: &str, v: String| RawOption {
        key: k.into(),
        value: v,
        origin: "test".into(),
    };
    let cfg = FleetConfig::parse(
        &[
            o("node", "n1".into()),
            o("servers", format!("nats://127.0.0.1:{port}")),
            o("signing_key", dir.join("n1.key").display().to_string()),
            o("trust", dir.join("trust").display().to_string()),
        ],
        dir,
    )
    .unwrap()
    .unwrap();
    let c = clock.clone();
    let started = ferroban_fleet::start(
        cfg,
        Some(db(dir)),
        Arc::new(move || c.now()),
        Arc::new(|_, _| {}),
    )
    .unwrap();
    set_restored(started.restored);
    set_test_handle(started.handle)
}

fn ban(ip: &str, ends_at: Option<f64>) -> Apply {
    Apply {
        jail: JAIL.into(),
        ip: ip.into(),
        origin: "n2".into(),
        kind: ApplyKind::Ban { ends_at },
    }
}

/// Waits (for the action task's shell commands, not for time to pass) until the recorded
/// actions are exactly `want`, in any order (a restore's order is not defined; each step
/// waits for its actions before the next, so the steps' order is checked).
async fn recorded(dir: &Path, want: &[&str]) {
    let t = Instant::now();
    let mut want = want.to_vec();
    want.sort_unstable();
    loop {
        let got = std::fs::read_to_string(dir.join("actions.log")).unwrap_or_default();
        let mut lines: Vec<&str> = got.lines().collect();
        lines.sort_unstable();
        if lines == want {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "actions recorded: {lines:?}, expected {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn run(f: impl std::future::Future<Output = ()>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, f);
}

fn metric(state: &Shared, series: &str) -> String {
    let text = state.borrow().metrics.render();
    text.lines()
        .find_map(|l| l.strip_prefix(series).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("{series} not in\n{text}"))
}

/// Own decisions not yet published, in the database: written by the daemon (`fleet_intent`)
/// or already signed into the outbox (`fleet_own`, pending). The publisher moves them from
/// one to the other in one transaction.
fn unpublished(dir: &Path) -> u64 {
    let db = FleetDb::open(Some(&db(dir))).unwrap();
    db.intents(10_000).unwrap().len() as u64 + db.pending_count().unwrap()
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(20), "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn remote_bans_end_with_actionunban_on_the_unban_timer() {
    let d = tree("timer");
    let dir = d.0.clone();
    let clock = ManualClock::new(T0);
    run(async move {
        let h = fleet(&dir, &clock);
        let state = state(&dir, &clock);
        start_jail(&state);
        apply_batch(
            &state,
            h,
            vec![
                ban("198.51.100.1", Some(T0 + 600.0)),
                ban("198.51.100.2", Some(T0 + 900.0)),
            ],
        )
        .await;
        recorded(&dir, &["ban 198.51.100.1", "ban 198.51.100.2"]).await;
        assert_eq!(remote_in(&state).await, 2);
        // The unban timer wakes for the first remote end.
        assert_eq!(server::expire_all(&state).await, Some(T0 + 600.0));
        // A local ban of .2 (by hand at T0+400, 10 minutes: ends T0+1000) outlasts its remote
        // ban (T0+900): the remote end leaves the element to the local ban.
        clock.set(T0 + 400.0);
        assert!(ban_in(&state, HostId::parse("198.51.100.2")).await);
        clock.set(T0 + 599.5);
        assert_eq!(server::expire_all(&state).await, Some(T0 + 600.0));
        clock.set(T0 + 600.0);
        assert_eq!(server::expire_all(&state).await, Some(T0 + 900.0));
        let mut want = vec![
            "ban 198.51.100.1",
            "ban 198.51.100.2",
            "ban 198.51.100.2",
            "unban 198.51.100.1",
        ];
        recorded(&dir, &want).await;
        assert_eq!(remote_in(&state).await, 1);
        clock.set(T0 + 900.0);
        assert_eq!(server::expire_all(&state).await, Some(T0 + 1000.0));
        assert_eq!(remote_in(&state).await, 0);
        clock.set(T0 + 1000.0);
        assert_eq!(server::expire_all(&state).await, None);
        want.push("unban 198.51.100.2");
        recorded(&dir, &want).await;
        // Counted: two bans from the fleet, one by hand; both addresses ended by expiry.
        let m = |s: &str| metric(&state, s);
        assert_eq!(
            m(r#"ferroban_jail_bans_total{jail="web",origin="fleet"}"#),
            "2"
        );
        assert_eq!(
            m(r#"ferroban_jail_bans_total{jail="web",origin="manual"}"#),
            "1"
        );
        assert_eq!(
            m(r#"ferroban_jail_unbans_total{jail="web",reason="expired"}"#),
            "2"
        );
        // A remote unban by its origin ends a remote ban at once (counted as by hand).
        apply_batch(&state, h, vec![ban("198.51.100.3", None)]).await;
        assert_eq!(server::expire_all(&state).await, None, "permanent");
        apply_batch(
            &state,
            h,
            vec![Apply {
                kind: ApplyKind::Unban,
                ..ban("198.51.100.3", None)
            }],
        )
        .await;
        want.extend(["ban 198.51.100.3", "unban 198.51.100.3"]);
        recorded(&dir, &want).await;
        assert_eq!(
            m(r#"ferroban_jail_unbans_total{jail="web",reason="manual"}"#),
            "1"
        );
        // Published: the local ban by hand, alone. Remote bans are never republished, and
        // expiry (local or remote) makes no traffic.
        assert_eq!(unpublished(&dir), 1);
        wait_for("the publisher took the ban", || h.status().outbox == 1).await;
        assert_eq!(unpublished(&dir), 1);
        h.stop();
    });
}

#[test]
fn stored_remote_bans_come_back_on_the_timer_after_a_restart_and_a_jail_restart() {
    let d = tree("restart");
    let dir = d.0.clone();
    let clock = ManualClock::new(T0);
    // What the fleet thread stored of n2's bans in the previous run (with their origin).
    let ms = |t: f64| Some((t * 1000.0) as i64);
    let row = |ip: &str, oseq: u64, expires_at: Option<i64>| RemoteRow {
        jail: JAIL.into(),
        ip: ip.into(),
        origin: "n2".into(),
        entry: Entry {
            oseq,
            expires_at,
            active: true,
        },
    };
    FleetDb::open(Some(&db(&dir)))
        .unwrap()
        .save_remote(
            &[
                row("198.51.100.7", 1, ms(T0 + 300.0)),
                row("198.51.100.8", 2, ms(T0 + 3600.0)),
                row("198.51.100.9", 3, ms(T0 - 1.0)),
            ],
            3,
        )
        .unwrap();
    run(async move {
        let h = fleet(&dir, &clock);
        let state = state(&dir, &clock);
        start_jail(&state);
        recorded(&dir, &["ban 198.51.100.7", "ban 198.51.100.8"]).await;
        assert_eq!(remote_in(&state).await, 2);
        assert_eq!(
            metric(
                &state,
                r#"ferroban_jail_bans_total{jail="web",origin="restored"}"#
            ),
            "2"
        );
        assert_eq!(server::expire_all(&state).await, Some(T0 + 300.0));
        clock.set(T0 + 300.0);
        assert_eq!(server::expire_all(&state).await, Some(T0 + 3600.0));
        let mut want = vec!["ban 198.51.100.7", "ban 198.51.100.8", "unban 198.51.100.7"];
        recorded(&dir, &want).await;
        // The jail stops: its remote bans leave the firewall with it (this action has no
        // actionflush: actionunban each) and come back when it starts again.
        assert!(server::stop_jail(&state, JAIL).await);
        want.push("unban 198.51.100.8");
        recorded(&dir, &want).await;
        assert_eq!(remote_in(&state).await, 0);
        clock.set(T0 + 600.0);
        start_jail(&state);
        want.push("ban 198.51.100.8");
        recorded(&dir, &want).await;
        assert_eq!(remote_in(&state).await, 1);
        assert_eq!(server::expire_all(&state).await, Some(T0 + 3600.0));
        clock.set(T0 + 3600.0);
        assert_eq!(server::expire_all(&state).await, None);
        want.push("unban 198.51.100.8");
        recorded(&dir, &want).await;
        assert_eq!(
            metric(
                &state,
                r#"ferroban_jail_unbans_total{jail="web",reason="expired"}"#
            ),
            "2"
        );
        assert_eq!(unpublished(&dir), 0);
        h.stop();
    });
}

#[test]
fn a_local_ban_and_its_publication_are_committed_together() {
    let d = tree("outbox");
    let dir = d.0.clone();
    let clock = ManualClock::new(T0);
    run(async move {
        let h = fleet(&dir, &clock);
        let state = state(&dir, &clock);
        start_jail(&state);
        // The publisher is gone, as after a crash right after the bans' commit.
        h.stop();
        let ids = ["198.51.100.20", "198.51.100.21"].map(HostId::parse);
        let banned = server::call(&state, JAIL, move |rt, st| {
            jailtask::ban_many_in(st, rt, ids)
        });
        assert_eq!(banned.await, Some(2));
        // Their publication was committed with them, before their actions ran.
        assert_eq!(unpublished(&dir), 2);
        let mut want = vec!["ban 198.51.100.20", "ban 198.51.100.21"];
        recorded(&dir, &want).await;
        // The next start of the fleet reads them; whether their actions ran is unknown to it,
        // so they wait for the jail's restore at the daemon's start.
        let h = fleet(&dir, &clock);
        wait_for("both read and held", || {
            h.status().awaiting_enforcement == 2
        })
        .await;
        assert_eq!(h.status().outbox, 0);
        let state = self::state(&dir, &clock);
        start_jail(&state);
        want.extend(["ban 198.51.100.20", "ban 198.51.100.21"]);
        recorded(&dir, &want).await;
        // Enforced again by the restore: in the outbox, nothing was lost.
        wait_for("both bans in the outbox", || h.status().outbox == 2).await;
        assert_eq!(h.status().awaiting_enforcement, 0);
        assert_eq!(unpublished(&dir), 2);
        h.stop();
    });
}

/// The actions log, as written so far.
fn actions_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("actions.log")).unwrap_or_default()
}

#[test]
fn a_local_ban_is_published_only_after_its_action_ran() {
    // The action waits for a gate file (a slow firewall command); its ban of .41 fails.
    let d = tree_with(
        "slow",
        "while [ ! -e DIR/gate ]; do sleep 0.02; done; [ <ip> != 198.51.100.41 ] || exit 1; ",
    );
    let dir = d.0.clone();
    let gate = dir.join("gate");
    let clock = ManualClock::new(T0);
    run(async move {
        let h = fleet(&dir, &clock);
        let state = state(&dir, &clock);
        start_jail(&state);
        assert!(ban_in(&state, HostId::parse("198.51.100.40")).await);
        // Committed with the ban, read by the publisher, and held: the action still runs.
        assert_eq!(unpublished(&dir), 1);
        wait_for("the publisher holds the ban", || {
            h.status().awaiting_enforcement == 1
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(h.status().outbox, 0, "published before its action ran");
        assert_eq!(actions_log(&dir), "");
        // The firewall command finishes: then, and only then, the ban is in the outbox.
        std::fs::write(&gate, "").unwrap();
        wait_for("the ban in the outbox", || h.status().outbox == 1).await;
        assert_eq!(actions_log(&dir), "ban 198.51.100.40\n");
        assert_eq!(h.status().awaiting_enforcement, 0);
        // A ban whose action fails is published all the same, once the action ran.
        assert!(ban_in(&state, HostId::parse("198.51.100.41")).await);
        wait_for("the failed ban in the outbox", || h.status().outbox == 2).await;
        // Its command failed before recording, and was counted as failed before that.
        assert_eq!(actions_log(&dir), "ban 198.51.100.40\n");
        assert_eq!(
            metric(
                &state,
                r#"ferroban_action_errors_total{action="record",jail="web",operation="ban"}"#
            ),
            "1"
        );
        // An unban right behind a ban whose action still runs waits behind it, so the last
        // decision stays the last one.
        std::fs::remove_file(&gate).unwrap();
        let id = HostId::parse("198.51.100.42");
        assert!(ban_in(&state, id.clone()).await);
        assert!(unban_in(&state, id.clone()).await);
        wait_for("both held", || h.status().awaiting_enforcement == 2).await;
        assert_eq!(h.status().outbox, 2);
        std::fs::write(&gate, "").unwrap();
        // The ban goes, then its unban replaces it in the outbox (one subject).
        wait_for("ban and unban taken", || {
            h.status().awaiting_enforcement == 0
        })
        .await;
        let db = FleetDb::open(Some(&db(&dir))).unwrap();
        assert_eq!(db.intents(10).unwrap().len(), 0);
        assert_eq!(db.pending_count().unwrap(), 3);
        h.stop();
    });
}

#[test]
fn a_remote_ban_lifted_here_by_hand_is_not_restored_at_the_next_start() {
    let d = tree("lifted");
    let dir = d.0.clone();
    let clock = ManualClock::new(T0);
    let row = |ip: &str, oseq: u64| RemoteRow {
        jail: JAIL.into(),
        ip: ip.into(),
        origin: "n2".into(),
        entry: Entry {
            oseq,
            expires_at: Some(((T0 + 3600.0) * 1000.0) as i64),
            active: true,
        },
    };
    FleetDb::open(Some(&db(&dir)))
        .unwrap()
        .save_remote(&[row("198.51.100.30", 1), row("198.51.100.31", 2)], 2)
        .unwrap();
    run(async move {
        let h = fleet(&dir, &clock);
        let state = state(&dir, &clock);
        start_jail(&state);
        let mut want = vec!["ban 198.51.100.30", "ban 198.51.100.31"];
        recorded(&dir, &want).await;
        // `set web unbanip 198.51.100.30`: only a remote ban holds it.
        let id = HostId::parse("198.51.100.30");
        let lifted = server::call(&state, JAIL, move |rt, st| {
            super::unban_remote_in(st, rt, &id)
        });
        assert!(lifted.await.unwrap());
        want.push("unban 198.51.100.30");
        recorded(&dir, &want).await;
        assert_eq!(remote_in(&state).await, 1);
        wait_for("the lift is stored", || {
            FleetDb::open(Some(&db(&dir)))
                .unwrap()
                .lifted()
                .unwrap()
                .len()
                == 1
        })
        .await;
        // The daemon restarts: only the other remote ban comes back.
        assert!(server::stop_jail(&state, JAIL).await);
        want.push("unban 198.51.100.31");
        recorded(&dir, &want).await;
        h.stop();
        let h = fleet(&dir, &clock);
        let state = self::state(&dir, &clock);
        start_jail(&state);
        want.push("ban 198.51.100.31");
        recorded(&dir, &want).await;
        assert_eq!(remote_in(&state).await, 1);
        h.stop();
    });
}

#[test]
fn a_ban_decided_when_an_ignore_command_answers_is_published_once_after_its_action() {
    let d = tree("lookup");
    let dir = d.0.clone();
    // The jail's failures wait for `ignorecommand` (answered later: not ignored).
    let mut conf = std::fs::read_to_string(dir.join("jail.conf")).unwrap();
    conf.push_str("datepattern = {NONE}\nignorecommand = sleep 0.2; false\n");
    std::fs::write(dir.join("jail.conf"), conf).unwrap();
    let clock = ManualClock::new(T0);
    run(async move {
        let h = fleet(&dir, &clock);
        let state = state(&dir, &clock);
        start_jail(&state);
        std::fs::write(dir.join("test.log"), "FAIL from 198.51.100.50\n".repeat(3)).unwrap();
        recorded(&dir, &["ban 198.51.100.50"]).await;
        // One intent, written with the ban when the look-up answered, published after the
        // action: not a second one at its dispatch.
        wait_for("the ban in the outbox", || h.status().outbox == 1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(unpublished(&dir), 1);
        let s = h.status();
        assert_eq!((s.outbox, s.awaiting_enforcement), (1, 0));
        h.stop();
    });
}

#[test]
fn without_a_database_file_a_ban_goes_to_the_publisher_once_its_action_ran() {
    let d = tree_with("memory", "while [ ! -e DIR/gate ]; do sleep 0.02; done; ");
    let dir = d.0.clone();
    let clock = ManualClock::new(T0);
    run(async move {
        // The daemon has no database (its decisions go over the channel); the fleet's tables
        // are in a file only so that the test can read its outbox.
        let h = fleet(&dir, &clock);
        let state = state_on(&dir, &clock, None);
        start_jail(&state);
        assert!(ban_in(&state, HostId::parse("198.51.100.60")).await);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(h.status().outbox, 0, "handed over before its action ran");
        std::fs::write(dir.join("gate"), "").unwrap();
        wait_for("the ban in the outbox", || h.status().outbox == 1).await;
        assert_eq!(actions_log(&dir), "ban 198.51.100.60\n");
        // An unban while a ban still waits for its action: the ban is not handed over after
        // its own unban (only the unban is).
        std::fs::remove_file(dir.join("gate")).unwrap();
        let id = HostId::parse("198.51.100.61");
        assert!(ban_in(&state, id.clone()).await);
        assert!(unban_in(&state, id.clone()).await);
        wait_for("the unban in the outbox", || h.status().outbox == 2).await;
        std::fs::write(dir.join("gate"), "").unwrap();
        recorded(
            &dir,
            &[
                "ban 198.51.100.60",
                "ban 198.51.100.61",
                "unban 198.51.100.61",
            ],
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(h.status().outbox, 2);
        let rows = FleetDb::open(Some(&db(&dir)))
            .unwrap()
            .pending(10, 0)
            .unwrap();
        let bodies: Vec<String> = rows
            .iter()
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .collect();
        let of = |ip: &str| bodies.iter().find(|b| b.contains(ip)).cloned().unwrap();
        assert!(
            of("198.51.100.60").contains(r#""kind":"ban""#),
            "{bodies:?}"
        );
        assert!(
            of("198.51.100.61").contains(r#""kind":"unban""#),
            "{bodies:?}"
        );
        h.stop();
    });
}

#[test]
fn a_lengthened_ban_is_published_and_a_remote_extension_is_no_second_ban() {
    let d = tree("prolong");
    let dir = d.0.clone();
    let clock = ManualClock::new(T0);
    run(async move {
        let h = fleet(&dir, &clock);
        let state = state(&dir, &clock);
        start_jail(&state);
        // A local ban, then the same address again with a longer bantime: not a new ban, but
        // its later end is published too (else the other nodes drop it at the first end).
        let x = HostId::parse("198.51.100.50");
        assert!(ban_in(&state, x.clone()).await);
        recorded(&dir, &["ban 198.51.100.50"]).await;
        wait_for("the ban in the outbox", || h.status().outbox == 1).await;
        let outbox = || {
            FleetDb::open(Some(&db(&dir)))
                .unwrap()
                .pending(10, 0)
                .unwrap()
        };
        let first = outbox();
        server::call(&state, JAIL, |rt, _| rt.jail.set_bantime(3600.0)).await;
        clock.set(T0 + 10.0);
        assert!(!ban_in(&state, x).await, "counted as a new ban");
        // Unsent, the newer decision on the same subject replaces the first (coalescing).
        wait_for("the lengthening in the outbox", || {
            let now = outbox();
            now.len() == 1 && now[0].oseq > first[0].oseq
        })
        .await;
        let body = String::from_utf8_lossy(&outbox()[0].body).to_string();
        let end_ms = ((T0 + 10.0 + 3600.0) * 1000.0) as i64;
        assert!(body.contains(&format!("\"expires_at\":{end_ms}")), "{body}");
        assert_eq!(h.status().awaiting_enforcement, 0);
        // A remote ban, then a later end for it from its origin: the actions lengthen it (no
        // actionprolong here: nothing runs) instead of running actionban a second time.
        apply_batch(&state, h, vec![ban("198.51.100.51", Some(T0 + 600.0))]).await;
        recorded(&dir, &["ban 198.51.100.50", "ban 198.51.100.51"]).await;
        apply_batch(&state, h, vec![ban("198.51.100.51", Some(T0 + 1200.0))]).await;
        // The same for an address banned here that a remote ban outlasts.
        apply_batch(&state, h, vec![ban("198.51.100.50", Some(T0 + 7200.0))]).await;
        // Behind them in the action queue: a new remote ban, so the two jobs above have run.
        apply_batch(&state, h, vec![ban("198.51.100.52", Some(T0 + 600.0))]).await;
        recorded(
            &dir,
            &[
                "ban 198.51.100.50",
                "ban 198.51.100.51",
                "ban 198.51.100.52",
            ],
        )
        .await;
        // The remote ends are in force: the unban timer waits for the latest of each.
        clock.set(T0 + 1199.0);
        server::expire_all(&state).await;
        clock.set(T0 + 3700.0);
        server::expire_all(&state).await;
        recorded(
            &dir,
            &[
                "ban 198.51.100.50",
                "ban 198.51.100.51",
                "ban 198.51.100.52",
                "unban 198.51.100.51",
                "unban 198.51.100.52",
            ],
        )
        .await;
        h.stop();
    });
}

/// How long [`hold_store`] holds the store thread at most: a runtime that waits for the store
/// gets it back then, and the test that measures it fails instead of hanging.
const HELD_AT_MOST: Duration = Duration::from_secs(5);

/// Holds the store thread (a disk that does not answer) until the sender returned is used or
/// dropped, or [`HELD_AT_MOST`] has passed; returns once it is held.
fn hold_store(state: &Shared) -> std::sync::mpsc::Sender<()> {
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    state
        .borrow()
        .store
        .as_ref()
        .expect("a database file")
        .run(move |_| {
            let _ = held_tx.send(());
            let _ = release_rx.recv_timeout(HELD_AT_MOST);
        });
    held_rx.recv().unwrap();
    release_tx
}

/// `status` answers, within `limit` of `since`.
async fn status_within(state: &Shared, since: Instant, limit: Duration) {
    let v = super::super::dispatch::handle(state, &["status".to_string()]).await;
    let v = serde_json::to_string(&v).unwrap();
    assert!(v.contains("Number of jail"), "{v}");
    assert!(
        since.elapsed() < limit,
        "status answered {:?} after the store thread was held (limit {limit:?}): the runtime waited for the store",
        since.elapsed()
    );
}

/// The daemon's state on the tree in `dir` with its jail started and its first read done (its
/// positions are written before the store thread is held).
async fn started(dir: &Path, clock: &ManualClock) -> Shared {
    let state = state(dir, clock);
    start_jail(&state);
    server::call(&state, JAIL, |_, _| ())
        .await
        .expect("the jail runs");
    state
}

/// Sends control request `argv` in a task of its own; its answer.
fn spawn_request(
    state: &Shared,
    argv: &[&str],
) -> tokio::task::JoinHandle<Result<serde_json::Value, String>> {
    let s = state.clone();
    let argv: Vec<String> = argv.iter().map(|w| w.to_string()).collect();
    tokio::task::spawn_local(async move { super::super::dispatch::handle(&s, &argv).await })
}

/// Until jail `name` is among the jails starting (it waits for its start-up reads).
fn starting(state: &Shared, name: &'static str) -> impl FnMut() -> bool {
    let s = state.clone();
    move || s.borrow().starting.has(name)
}

/// Sends control request `argv` (in a task of its own) while the store thread is held; over the
/// next 60 ms, `status` answers within `limit` of `held_at`. The request's task.
async fn request_while_held(
    state: &Shared,
    argv: &[&str],
    held_at: Instant,
    limit: Duration,
) -> tokio::task::JoinHandle<Result<serde_json::Value, String>> {
    let request = spawn_request(state, argv);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        status_within(state, held_at, limit).await;
    }
    request
}

/// The store thread writes the bans while the runtime serves: held (a slow disk), a read
/// slice's ban and a `set <jail> banip` wait for it (not logged, no action, not in the
/// database, `banip` not answered) while `status` answers at once; released, the bans are
/// committed, then their actions run and `banip` answers. No fleet. Were the runtime to wait
/// for the store, `status` would answer only once the hold ends ([`HELD_AT_MOST`]): too late.
#[test]
fn the_runtime_answers_while_the_store_thread_writes() {
    let d = tree("store-held");
    let dir = d.0.clone();
    let clock = ManualClock::new(T0);
    run(async move {
        let state = started(&dir, &clock).await;
        let release = hold_store(&state);
        let held_at = Instant::now();
        let limit = Duration::from_secs(2);
        let line = "FAIL from 198.51.100.30\n";
        std::fs::write(dir.join("test.log"), line.repeat(3)).unwrap();
        // The slice counted the failures and sent its batch: the ban waits for the store.
        let failures = r#"ferroban_jail_failures_total{jail="web"}"#;
        wait_for("the three failures counted", || {
            metric(&state, failures) == "3"
        })
        .await;
        status_within(&state, held_at, limit).await;
        let argv = ["set", JAIL, "banip", "198.51.100.31"];
        let banip = request_while_held(&state, &argv, held_at, limit).await;
        assert!(
            !banip.is_finished(),
            "banip answered before its ban was written"
        );
        assert_eq!(actions_log(&dir), "");
        let banned = |dir: &Path| {
            let s = ferroban_bans::Store::open(db(dir), Default::default()).unwrap();
            s.current_bans(0.0).unwrap().len()
        };
        assert_eq!(banned(&dir), 0);
        drop(release);
        assert_eq!(banip.await.unwrap(), Ok(serde_json::json!(1)));
        assert_eq!(banned(&dir), 2);
        recorded(&dir, &["ban 198.51.100.30", "ban 198.51.100.31"]).await;
    });
}

/// A jail started or reloaded while the daemon serves reads the store with one awaited message:
/// with the store thread held (a slow disk), `add <jail>`, then a `reload` that starts a new
/// jail and gives a running one another log file, wait for their start-up reads while `status`
/// answers at once; released, they finish. Were the runtime to wait for the store (a blocking
/// read), `status` would answer only once the hold ends ([`HELD_AT_MOST`]): too late.
#[test]
fn jails_start_and_reload_while_the_store_thread_writes() {
    let d = tree("store-held-start");
    let dir = d.0.clone();
    let clock = ManualClock::new(T0);
    run(async move {
        let state = started(&dir, &clock).await;
        let limit = Duration::from_secs(2);
        // `add`: the new jail waits for its reads, the runtime serves.
        let release = hold_store(&state);
        let held_at = Instant::now();
        let add = request_while_held(&state, &["add", "extra", "polling"], held_at, limit).await;
        assert!(
            !add.is_finished(),
            "add answered before its jail read the store"
        );
        drop(release);
        assert_eq!(add.await.unwrap(), Ok(serde_json::json!("extra")));
        assert_eq!(state.borrow().jail_names(), [JAIL, "extra"]);
        // `reload` that starts jail `other`, then one that gives jail `web` another file (its
        // positions are read).
        let conf = |web_log: &str| {
            format!(
                "[DEFAULT]\nbantime = 10m\nfindtime = 10m\nmaxretry = 3\n\n[{JAIL}]\nenabled = true\nfilter = test\nbackend = polling\nlogpath = {}\naction = record\n\n[other]\nenabled = true\nfilter = test\nbackend = polling\nlogpath = {}\nbantime.increment = true\naction = record\n",
                dir.join(web_log).display(),
                dir.join("test.log").display()
            )
        };
        std::fs::write(dir.join("test2.log"), "").unwrap();
        for web_log in ["test.log", "test2.log"] {
            std::fs::write(dir.join("jail.conf"), conf(web_log)).unwrap();
            let release = hold_store(&state);
            let held_at = Instant::now();
            let reload = request_while_held(&state, &["reload"], held_at, limit).await;
            assert!(
                !reload.is_finished(),
                "reload answered before its jails read the store"
            );
            drop(release);
            assert_eq!(reload.await.unwrap(), Ok(serde_json::json!("OK")));
        }
        assert_eq!(state.borrow().jail_names(), [JAIL, "other"]);
        let logpath = server::call(&state, JAIL, |rt, _| rt.jail.def().logpath[0].path.clone())
            .await
            .expect("web runs");
        assert_eq!(logpath, dir.join("test2.log").display().to_string());
    });
}

/// The daemon on the tree in `dir` with its jail started ([`started`]), the store thread held
/// ([`hold_store`]) and `add extra` waiting for its start-up reads: the state, the hold and
/// the request.
async fn adding_extra(
    dir: &Path,
    clock: &ManualClock,
) -> (
    Shared,
    std::sync::mpsc::Sender<()>,
    tokio::task::JoinHandle<Result<serde_json::Value, String>>,
) {
    let state = started(dir, clock).await;
    let release = hold_store(&state);
    let add = spawn_request(&state, &["add", "extra", "polling"]);
    wait_for("extra waits for its reads", starting(&state, "extra")).await;
    (state, release, add)
}

/// Configures the tree in `dir` with a second jail, `name`, like the first on the same file.
fn with_second_jail(dir: &Path, name: &str) {
    let log = dir.join("test.log");
    let jail = |n: &str| {
        format!(
            "[{n}]\nenabled = true\nfilter = test\nbackend = polling\nlogpath = {}\naction = record\n",
            log.display()
        )
    };
    let conf = format!(
        "[DEFAULT]\nbantime = 10m\nfindtime = 10m\nmaxretry = 3\n\n{}\n{}",
        jail(JAIL),
        jail(name)
    );
    std::fs::write(dir.join("jail.conf"), conf).unwrap();
}

/// A jail waiting for its start-up reads (the store thread held: a slow disk) is reached by
/// `stop <jail>` and by the shutdown: each waits for the start to end, then stops the jail, so
/// nothing of it runs on (its actions stopped, its state written before the store closes).
/// Were they to miss it, `stop extra` would answer that the jail does not exist and the
/// shutdown would leave jail `other` running once its reads came.
#[test]
fn a_jail_waiting_for_its_start_up_reads_is_stopped_by_stop_and_by_the_shutdown() {
    let d = tree("store-held-stop");
    let dir = d.0.clone();
    let clock = ManualClock::new(T0);
    run(async move {
        // `stop extra` while `add extra` waits for its reads.
        let (state, release, add) = adding_extra(&dir, &clock).await;
        let stop = spawn_request(&state, &["stop", "extra"]);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!stop.is_finished(), "stop answered before extra started");
        drop(release);
        assert_eq!(add.await.unwrap(), Ok(serde_json::json!("extra")));
        assert_eq!(stop.await.unwrap(), Ok(serde_json::Value::Null));
        assert_eq!(state.borrow().jail_names(), [JAIL]);
        // The shutdown while a `reload` starts jail `other`.
        with_second_jail(&dir, "other");
        let release = hold_store(&state);
        let reload = spawn_request(&state, &["reload"]);
        wait_for("other waits for its reads", starting(&state, "other")).await;
        let s = state.clone();
        let down = tokio::task::spawn_local(async move { server::shut_down(&s).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !down.is_finished(),
            "the shutdown ended before other started"
        );
        drop(release);
        down.await.unwrap();
        assert_eq!(reload.await.unwrap(), Ok(serde_json::json!("OK")));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let st = state.borrow();
        assert!(
            st.jail_names().is_empty(),
            "{:?} still run",
            st.jail_names()
        );
        assert!(st.starting.names().is_empty());
        assert!(st.store.is_none(), "the store is closed");
        drop(st);
        // Both jails' positions were written before the store closed.
        let s = ferroban_bans::Store::open(db(&dir), Default::default()).unwrap();
        for jail in [JAIL, "other"] {
            let positions = s.positions(jail).unwrap();
            assert_eq!(positions.len(), 1, "{jail}: {positions:?}");
        }
    });
}

/// A jail's name is taken from the moment its start begins: with the store thread held (a slow
/// disk), while `add extra` waits for its start-up reads, a second `add extra` is refused as
/// fail2ban refuses an existing jail, and a `reload` whose configuration has a jail `extra`
/// waits for that start, then reloads that jail (it takes the configuration's log file), and
/// `start extra` answers once it runs. Were the name free until the start ends, the reload
/// would start a second jail `extra`.
#[test]
fn a_jail_name_is_taken_while_its_jail_waits_for_its_start_up_reads() {
    let d = tree("store-held-name");
    let dir = d.0.clone();
    let clock = ManualClock::new(T0);
    run(async move {
        let (state, release, add) = adding_extra(&dir, &clock).await;
        let again = spawn_request(&state, &["add", "extra", "polling"]);
        assert_eq!(
            again.await.unwrap(),
            Err(crate::control::proto::duplicate_jail("extra"))
        );
        with_second_jail(&dir, "extra");
        let reload = spawn_request(&state, &["reload"]);
        // `start extra` finds the jail once started (fail2ban: it runs, nothing to do).
        let start = spawn_request(&state, &["start", "extra"]);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!reload.is_finished(), "reload ended before extra started");
        assert!(!start.is_finished(), "start answered before extra started");
        drop(release);
        assert_eq!(add.await.unwrap(), Ok(serde_json::json!("extra")));
        assert_eq!(reload.await.unwrap(), Ok(serde_json::json!("OK")));
        assert_eq!(start.await.unwrap(), Ok(serde_json::Value::Null));
        assert_eq!(state.borrow().jail_names(), [JAIL, "extra"]);
        let logpath = server::call(&state, "extra", |rt, _| {
            rt.jail
                .def()
                .logpath
                .iter()
                .map(|l| l.path.clone())
                .collect::<Vec<_>>()
        })
        .await
        .expect("extra runs");
        assert_eq!(logpath, [dir.join("test.log").display().to_string()]);
    });
}

/// Only the jails that keep every jail's ban history (`bantime.overalljails`) are sent the
/// other jails' history changes: `web` (overalljails) is, and counts `other`'s ban of an
/// address in the bantime of its own ban of it (the second multiplier); `other`
/// (`bantime.increment` alone, which reads its own bans only) is not, until
/// `set other bantime.overalljails true` makes it want them.
#[test]
fn only_jails_reading_every_jails_history_are_sent_its_changes() {
    let d = tree("overalljails");
    let dir = d.0.clone();
    let jail = |name: &str, extra: &str| {
        format!(
            "[{name}]\nenabled = true\nfilter = test\nbackend = polling\nlogpath = {}\naction = record\n{extra}\n",
            dir.join(format!("{name}.log")).display()
        )
    };
    std::fs::write(
        dir.join("jail.conf"),
        format!(
            "[DEFAULT]\nbantime = 100\nfindtime = 10m\nmaxretry = 3\nbantime.increment = true\nbantime.factor = 1\nbantime.multipliers = 1 2 4 8\n\n{}\n{}",
            jail(JAIL, "bantime.overalljails = true"),
            jail("other", "")
        ),
    )
    .unwrap();
    for name in [JAIL, "other"] {
        std::fs::write(dir.join(format!("{name}.log")), "").unwrap();
    }
    let clock = ManualClock::new(T0);
    run(async move {
        let state = state(&dir, &clock);
        let conf = state.borrow().settings.conf.clone();
        for def in server::load_jails(&conf).unwrap().jails {
            let name = def.name.clone();
            server::start_jail(&state, def).unwrap();
            // Its first read is done: the lines written next are new.
            server::call(&state, &name, |_, _| ()).await.unwrap();
        }
        let takes = |name: &str| state.borrow().jail(name).unwrap().takes_all_history();
        assert!(takes(JAIL));
        assert!(!takes("other"));
        let id = HostId::parse("192.0.2.1");
        let bantime_in = |name: &'static str| {
            let (state, id) = (state.clone(), id.clone());
            async move {
                let t = Instant::now();
                loop {
                    let id = id.clone();
                    let b = server::call(&state, name, move |rt, _| {
                        rt.jail.ban_of(&id).map(|b| b.bantime)
                    })
                    .await
                    .expect("the jail runs");
                    if let Some(b) = b {
                        return b;
                    }
                    assert!(
                        t.elapsed() < Duration::from_secs(20),
                        "{name} banned nothing"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        let fail = |name: &str| {
            std::fs::write(
                dir.join(format!("{name}.log")),
                "FAIL from 192.0.2.1\n".repeat(3),
            )
            .unwrap()
        };
        fail("other");
        assert_eq!(bantime_in("other").await, 100.0);
        // Failures after that ban (a known offender's earlier ones do not count).
        clock.advance(10.0);
        fail(JAIL);
        assert_eq!(bantime_in(JAIL).await, 200.0);
        let set = ["set", "other", "bantime.overalljails", "true"];
        assert_eq!(
            spawn_request(&state, &set).await.unwrap(),
            Ok(serde_json::json!(true))
        );
        assert!(takes("other"));
    });
}
