//! Jail state-machine tests: configuration read from a scratch tree, time given by a manual
//! clock (nothing sleeps), bans checked in an in-memory store.

use std::path::PathBuf;

use ferroban_bans::{Store, StoreOptions};

use super::jail::{Event, Jail, Ticket};
use crate::clock::{Clock, ManualClock};
use crate::ip::HostId;

struct Tree(PathBuf);

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A configuration tree with one filter (`test`) matching `FAIL from <HOST>` and a jail.
fn tree(tag: &str, jail_opts: &str) -> Tree {
    let dir = std::env::temp_dir().join(format!("ferroban-jail-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("filter.d")).unwrap();
    std::fs::write(
        dir.join("filter.d/test.conf"),
        "[Definition]\nfailregex = ^\\s*FAIL from <HOST>(?: user <F-USER>\\S+</F-USER>)?$\nignoreregex =\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("jail.conf"),
        format!(
            "[DEFAULT]\nbantime = 10m\nfindtime = 10m\nmaxretry = 3\n\n[test]\nenabled = true\nfilter = test\nlogpath = /nonexistent/test.log\naction =\n{jail_opts}\n"
        ),
    )
    .unwrap();
    Tree(dir)
}

fn jail(t: &Tree) -> Jail {
    let cfg = super::server::load_jails(&crate::defaults::locate(Some(&t.0))).unwrap();
    assert!(cfg.errors.is_empty(), "{:?}", cfg.errors);
    let def = cfg.jails.into_iter().next().expect("one jail");
    let mut j = Jail::new(def).unwrap();
    j.ignore.set_self_addresses(Vec::new());
    j
}

/// A log line at unix time `t` (ISO date, so the filter reads the time back exactly).
fn line(t: f64, host: &str) -> String {
    let ts = jiff::Timestamp::from_second(t as i64)
        .unwrap()
        .to_zoned_datetime(jiff::tz::TimeZone::system())
        .strftime("%Y-%m-%dT%H:%M:%S")
        .to_string();
    format!("{ts} FAIL from {host}")
}

/// Writes what the jail asked of the store, as the daemon does before it dispatches.
fn store_writes(j: &mut Jail, store: &mut Store) {
    let w = j.take_writes();
    super::jailtask::write_to(store, j.name(), &w);
}

fn bans(ev: &[Event]) -> Vec<&Ticket> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Ban(t) => Some(t),
            _ => None,
        })
        .collect()
}

const T0: f64 = 1_780_000_000.0;

#[test]
fn maxretry_failures_within_findtime_ban_then_unban_when_time_is_up() {
    let t = tree("basic", "");
    let mut j = jail(&t);
    let clock = ManualClock::new(T0);
    let mut store = Store::open_in_memory(StoreOptions::default()).unwrap();
    for i in 0..2 {
        clock.advance(10.0);
        let ev = j.process_line(&line(clock.now(), "198.51.100.7"), clock.now());
        store_writes(&mut j, &mut store);
        assert!(ev.is_empty(), "failure {i} must not ban yet");
    }
    clock.advance(10.0);
    let ev = j.process_line(&line(clock.now(), "198.51.100.7"), clock.now());
    store_writes(&mut j, &mut store);
    let b = bans(&ev);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].id, HostId::parse("198.51.100.7"));
    assert_eq!(b[0].failures, 3);
    assert_eq!(b[0].bantime, 600.0);
    assert_eq!(j.counts().currently_banned, 1);
    assert_eq!(j.counts().total_failed, 3);
    // The ban is in the store before the actions see it.
    let stored = store.current_bans(clock.now()).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id, "198.51.100.7");
    // Not yet expired 599 s later; expired at 600 s.
    let banned_at = b[0].time;
    clock.set(banned_at + 599.0);
    assert!(j.expire(clock.now()).is_empty());
    clock.set(banned_at + 600.0);
    let ev = j.expire(clock.now());
    assert!(matches!(&ev[..], [Event::Unban(t)] if t.id == HostId::parse("198.51.100.7")));
    assert_eq!(j.counts().currently_banned, 0);
    assert_eq!(j.counts().total_banned, 1);
}

#[test]
fn failures_spread_beyond_findtime_do_not_ban() {
    let t = tree("spread", "");
    let mut j = jail(&t);
    let clock = ManualClock::new(T0);
    for _ in 0..5 {
        clock.advance(700.0);
        let ev = j.process_line(&line(clock.now(), "198.51.100.8"), clock.now());
        assert!(ev.is_empty());
    }
}

#[test]
fn ignoreip_wins_and_old_lines_are_skipped() {
    let t = tree("ignore", "ignoreip = 127.0.0.1/8 198.51.100.0/24");
    let mut j = jail(&t);
    let clock = ManualClock::new(T0);
    for _ in 0..5 {
        clock.advance(1.0);
        assert!(
            j.process_line(&line(clock.now(), "198.51.100.9"), clock.now())
                .is_empty()
        );
    }
    assert_eq!(j.counts().total_failed, 0);
    // Lines older than findtime (a log read at start) are not counted.
    for k in 0..5 {
        let old = clock.now() - 3600.0 + f64::from(k);
        let ev = j.process_line(&line(old, "203.0.113.5"), clock.now());
        assert!(ev.is_empty(), "{} {:?}", line(old, "203.0.113.5"), ev);
    }
    assert_eq!(j.counts().total_failed, 0);
}

/// [`super::server::load_history`] from `store` on this thread.
fn load_history(store: &Store, j: &mut Jail) {
    if let Some(all) = j.needs_history() {
        let rows = store.history_rows((!all).then_some(j.name()));
        super::server::take_history(j, all, rows);
    }
}

/// One failure bans; each ban doubles (`bantime.increment`).
const INCREMENT: &str = "maxretry = 1\nbantime = 100\nbantime.increment = true\nbantime.factor = 1\nbantime.multipliers = 1 2 4 8";

#[test]
fn bantime_increment_grows_with_each_ban_from_the_store() {
    let t = tree("incr", INCREMENT);
    let mut j = jail(&t);
    let clock = ManualClock::new(T0);
    let mut store = Store::open_in_memory(StoreOptions::default()).unwrap();
    load_history(&store, &mut j);
    let mut seen = Vec::new();
    for i in 0..4 {
        clock.advance(1000.0);
        if i == 2 {
            // A restart: the new jail reads the history back from the store.
            j = jail(&t);
            load_history(&store, &mut j);
        }
        let ev = j.process_line(&line(clock.now(), "192.0.2.1"), clock.now());
        store_writes(&mut j, &mut store);
        let b = bans(&ev);
        assert_eq!(
            b.len(),
            1,
            "every failure after the previous ban ended bans again"
        );
        seen.push(b[0].bantime);
        clock.advance(b[0].bantime);
        j.expire(clock.now());
    }
    assert_eq!(seen, vec![100.0, 200.0, 400.0, 800.0]);
    let h = store
        .ban_count("192.0.2.1", ferroban_bans::Scope::Jail("test"), None)
        .unwrap()
        .unwrap();
    assert_eq!((h.count, h.bantime), (4, 800.0));
}

/// `bantime.overalljails`: the bans of another jail count (they reach it as the daemon hands
/// them over, [`super::jailtask::write_store`]); without it they do not.
#[test]
fn overalljails_counts_the_bans_of_the_other_jails() {
    let t = tree(
        "incr-all",
        &format!("{INCREMENT}\nbantime.overalljails = true"),
    );
    let own = tree("incr-own", INCREMENT);
    let mut store = Store::open_in_memory(StoreOptions::default()).unwrap();
    let clock = ManualClock::new(T0);
    // A ban of the address in jail "other", before the jails start (read from the store) ...
    store
        .record_ban(&ferroban_bans::BanRecord {
            jail: "other",
            id: "192.0.2.1",
            banned_at: T0 - 5000.0,
            bantime: 100.0,
            ban_count: 1,
            matches: &[],
            failures: 1,
        })
        .unwrap();
    let mut all = jail(&t);
    load_history(&store, &mut all);
    let mut mine = jail(&own);
    load_history(&store, &mut mine);
    // ... and one of jail "third" while they run.
    let change = ferroban_bans::HistoryChange::Ban {
        id: "192.0.2.1".into(),
        banned_at: T0 - 3000.0,
        bantime: 200.0,
        ban_count: 2,
    };
    all.history_changed("third", std::slice::from_ref(&change));
    mine.history_changed("third", std::slice::from_ref(&change));
    clock.advance(10.0);
    let ev = all.process_line(&line(clock.now(), "192.0.2.1"), clock.now());
    // Three bans so far over every jail (1 + 2): the fourth multiplier.
    assert_eq!(bans(&ev)[0].bantime, 800.0);
    let ev = mine.process_line(&line(clock.now(), "192.0.2.1"), clock.now());
    assert_eq!(bans(&ev)[0].bantime, 100.0);
}

#[test]
fn a_second_banip_restarts_the_ban_without_counting_it() {
    let t = tree("reban", "");
    let mut j = jail(&t);
    let clock = ManualClock::new(T0);
    let id = HostId::parse("192.0.2.7");
    assert!(j.ban_by_hand(id.clone(), clock.now()).is_some());
    clock.advance(100.0);
    // Not counted, but it now ends a full bantime from the second ban, from the same start; the
    // actions are told (the kernel's timeout of a native action must follow).
    match j.ban_by_hand(id.clone(), clock.now()) {
        Some(Event::Prolong(t)) => {
            assert_eq!((t.id.clone(), t.time, t.bantime), (id.clone(), T0, 700.0));
        }
        other => panic!("a prolonged ban, not {other:?}"),
    }
    let b = j.ban_of(&id).unwrap();
    assert_eq!(b.banned_at, T0);
    assert_eq!(b.end(), Some(clock.now() + 600.0));
    assert_eq!(j.counts().total_banned, 1);
    // A longer ban in force stays as it is.
    j.set_bantime(10.0);
    assert!(j.ban_by_hand(id.clone(), clock.now()).is_none());
    assert_eq!(j.ban_of(&id).unwrap().end(), Some(clock.now() + 600.0));
}

#[test]
fn manual_ban_unban_and_restore() {
    let t = tree("manual", "");
    let mut j = jail(&t);
    let clock = ManualClock::new(T0);
    let mut store = Store::open_in_memory(StoreOptions::default()).unwrap();
    let id = HostId::parse("2001:db8::7");
    assert!(j.ban_by_hand(id.clone(), clock.now()).is_some());
    assert!(j.ban_by_hand(id.clone(), clock.now()).is_none());
    store_writes(&mut j, &mut store);
    assert!(j.is_banned(&id));
    // A new jail (restart) restores it from the store with the remaining time.
    clock.advance(100.0);
    let mut j2 = jail(&t);
    let active = store
        .current_bans_for("test", clock.now(), Some(600.0))
        .unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].remaining, Some(500.0));
    let ev = j2.restore(
        Ticket {
            id: HostId::parse(&active[0].id),
            time: active[0].banned_at,
            bantime: active[0].bantime,
            ban_count: active[0].ban_count,
            failures: 3,
            matches: Vec::new(),
            fields: Vec::new(),
            restored: true,
        },
        clock.now(),
    );
    assert!(matches!(ev, Some(Event::Ban(ref t)) if t.restored));
    // Unban by hand removes it from the store too.
    assert!(matches!(j2.unban(&id), Some(Event::Unban(_))));
    store_writes(&mut j2, &mut store);
    assert!(store.current_bans(clock.now()).unwrap().is_empty());
    assert!(j2.unban(&id).is_none());
}

#[test]
fn captured_user_reaches_the_ticket() {
    let t = tree("fuser", "maxretry = 1");
    let mut j = jail(&t);
    let now = T0;
    let l = format!("{} user root;touch", line(now, "192.0.2.44"));
    let ev = j.process_line(&l, now);
    let b = bans(&ev);
    assert_eq!(b.len(), 1);
    assert!(
        b[0].fields
            .iter()
            .any(|(k, v)| k == "user" && v == "root;touch"),
        "{:?}",
        b[0].fields
    );
}

#[test]
fn banprefix_bans_the_covering_prefix_but_never_over_an_ignored_address() {
    let t = tree(
        "prefix",
        "maxretry = 1\nbanprefix.ipv4 = 24\nbanprefix.ipv6 = 64\nignoreip = 203.0.113.9",
    );
    let mut j = jail(&t);
    let now = T0;
    let ev = j.process_line(&line(now, "198.51.100.7"), now);
    assert_eq!(bans(&ev)[0].id, HostId::parse("198.51.100.0/24"));
    let ev = j.process_line(&line(now, "2001:db8:1:2:3::7"), now);
    assert_eq!(bans(&ev)[0].id, HostId::parse("2001:db8:1:2::/64"));
    // 203.0.113.0/24 covers the ignored 203.0.113.9: only the address is banned.
    let ev = j.process_line(&line(now, "203.0.113.50"), now);
    assert_eq!(bans(&ev)[0].id, HostId::parse("203.0.113.50"));
    // The ignored address itself is never banned.
    assert!(j.process_line(&line(now, "203.0.113.9"), now).is_empty());
}

#[test]
fn banprefix_escalates_after_n_addresses_of_one_prefix() {
    let t = tree(
        "escalate",
        "maxretry = 1\nbanprefix.escalate = 3\nbanprefix.escalate.ipv4 = 24\nignoreip = 192.0.2.200",
    );
    let mut j = jail(&t);
    let now = T0;
    for host in ["198.51.100.1", "198.51.100.2"] {
        let ev = j.process_line(&line(now, host), now);
        assert_eq!(bans(&ev).len(), 1);
    }
    let ev = j.process_line(&line(now, "198.51.100.3"), now);
    let ids: Vec<String> = bans(&ev).iter().map(|t| t.id.to_string()).collect();
    assert_eq!(ids, vec!["198.51.100.3", "198.51.100.0/24"]);
    // A prefix holding an ignored address is never escalated to.
    for host in ["192.0.2.1", "192.0.2.2", "192.0.2.3"] {
        let ev = j.process_line(&line(now, host), now);
        assert_eq!(bans(&ev).len(), 1, "{host}");
    }
    assert!(!j.is_banned(&HostId::parse("192.0.2.0/24")));
}

#[test]
fn banprefix_options_are_validated() {
    let t = tree("prefix-bad", "banprefix.ipv4 = 40");
    let cfg = super::server::load_jails(&crate::defaults::locate(Some(&t.0))).unwrap();
    let err = Jail::new(cfg.jails.into_iter().next().unwrap()).unwrap_err();
    assert!(err.to_string().contains("banprefix.ipv4"), "{err}");
}
