//! `bantime.increment` in the engine alone, without any store: the jail reads the ban history it
//! was given (in memory) and keeps it current with its own bans; what the store must write comes
//! out of [`Jail::take_writes`]. The ban times are those the store-based history gave (the
//! daemon's test `bantime_increment_grows_with_each_ban_from_the_store`: 100, 200, 400, 800).

mod common;

use ferroban_bans::History;
use ferroban_engine::ip::HostId;
use ferroban_engine::jail::{Event, Jail, StoreWrite};

fn jail(tag: &str, opts: &str) -> Jail {
    let mut j = common::test_jail(
        &format!("incr-{tag}"),
        &format!("maxretry = 1\nfindtime = 10m\nbantime = 100\n{opts}"),
    );
    j.ignore.set_self_addresses(Vec::new());
    j.set_in_operation(true);
    j
}

const INCREMENT: &str =
    "bantime.increment = true\nbantime.factor = 1\nbantime.multipliers = 1 2 4 8";
const T0: f64 = 1_796_558_400.0;

fn ban_times(ev: &[Event]) -> Vec<f64> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Ban(t) => Some(t.bantime),
            _ => None,
        })
        .collect()
}

/// Bans 192.0.2.1 once (one failure at `now`), lets the ban end; its ban time.
fn ban_once(j: &mut Jail, now: f64) -> f64 {
    let ev = j.process_line("FAIL from 192.0.2.1", now);
    let b = ban_times(&ev);
    assert_eq!(b.len(), 1, "{ev:?}");
    j.expire(now + b[0]);
    b[0]
}

#[test]
fn bans_grow_from_the_history_in_memory_and_the_writes_say_what_to_store() {
    let mut j = jail("grow", INCREMENT);
    assert_eq!(j.needs_history(), Some(false));
    j.set_history(Some(History::new(false)));
    assert_eq!(j.needs_history(), None);
    let mut now = T0;
    let mut seen = Vec::new();
    for n in 1..=4u64 {
        seen.push(ban_once(&mut j, now));
        let w = j.take_writes();
        assert_eq!(w.len(), 1);
        let want = StoreWrite::Ban {
            id: "192.0.2.1".into(),
            banned_at: now,
            bantime: seen[n as usize - 1],
            ban_count: n,
            matches: vec!["FAIL from 192.0.2.1".into()],
            failures: 1,
        };
        assert_eq!(w[0], want);
        now += 1000.0;
    }
    assert_eq!(seen, [100.0, 200.0, 400.0, 800.0]);
    assert!(j.take_writes().is_empty(), "taken once");
}

#[test]
fn an_unban_by_hand_forgets_the_history_and_a_purge_drops_old_rows() {
    let mut j = jail("unban", INCREMENT);
    j.set_history(Some(History::new(false)));
    assert_eq!(ban_once(&mut j, T0), 100.0);
    assert_eq!(ban_once(&mut j, T0 + 1000.0), 200.0);
    // Banned again, then unbanned by hand: its history goes (fail2ban's `delBan`).
    let ev = j.process_line("FAIL from 192.0.2.1", T0 + 2000.0);
    assert_eq!(ban_times(&ev), [400.0]);
    let id = HostId::parse("192.0.2.1");
    assert!(matches!(j.unban(&id), Some(Event::Unban(_))));
    let w = j.take_writes();
    assert_eq!(
        w.last(),
        Some(&StoreWrite::Unban {
            id: "192.0.2.1".into()
        })
    );
    assert_eq!(ban_once(&mut j, T0 + 3000.0), 100.0);
    assert_eq!(ban_once(&mut j, T0 + 4000.0), 200.0);
    // The store's purge at a limit after the ban (and three times its length) drops it here too.
    j.purge_history(T0 + 4000.0 + 601.0, 3.0);
    assert_eq!(ban_once(&mut j, T0 + 10_000.0), 100.0);
}

#[test]
fn without_a_history_the_ban_time_does_not_grow() {
    let mut j = jail("nohist", INCREMENT);
    for i in 0..3 {
        assert_eq!(ban_once(&mut j, T0 + 1000.0 * f64::from(i)), 100.0);
    }
    // Still written for the store (the daemon drops them without a database).
    assert_eq!(j.take_writes().len(), 3);
}

#[test]
fn overalljails_reads_the_other_jails_changes_and_a_jails_own_scope_does_not() {
    let mut all = jail("all", &format!("{INCREMENT}\nbantime.overalljails = true"));
    assert_eq!(all.needs_history(), Some(true));
    all.set_history(Some(History::new(true)));
    let mut own = jail("own", INCREMENT);
    own.set_history(Some(History::new(false)));
    let change = ferroban_bans::HistoryChange::Ban {
        id: "192.0.2.1".into(),
        banned_at: T0 - 500.0,
        bantime: 100.0,
        ban_count: 2,
    };
    for j in [&mut all, &mut own] {
        j.history_changed("other", std::slice::from_ref(&change));
    }
    assert_eq!(ban_once(&mut all, T0), 400.0);
    assert_eq!(ban_once(&mut own, T0), 100.0);
}
