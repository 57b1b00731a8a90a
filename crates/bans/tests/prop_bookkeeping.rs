//! Ban bookkeeping invariants, property-tested against a model (proptest): any sequence of bans
//! (new, prolonged, already banned, expired on arrival, permanent), unbans by hand, time passing
//! and restarts keeps
//! - the ban manager equal to a plain model of "who is banned until when";
//! - the store's bans in force equal to the manager's (a ban is in the store iff it is enforced:
//!   the manager is what the firewall mirrors), so a restart that restores from the store
//!   enforces exactly the same bans, ends included;
//! - the next deadline equal to the earliest end, and expiry returning exactly the ended bans.

use std::collections::BTreeMap;

use ferroban_bans::{AddOutcome, Ban, BanManager, BanRecord, Store, StoreOptions};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Ban id `id` at `now - ago` for `bantime` (negative: permanent).
    Ban { id: u8, ago: u16, bantime: i32 },
    /// Unban by hand.
    Unban { id: u8 },
    /// Time passes.
    Advance { secs: u16 },
    /// The daemon restarts: bans are restored from the store.
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..6, 0u16..400, prop_oneof![Just(-1i32), 1i32..=600]).prop_map(|(id, ago, bantime)| Op::Ban { id, ago, bantime }),
        1 => (0u8..6).prop_map(|id| Op::Unban { id }),
        2 => (0u16..300).prop_map(|secs| Op::Advance { secs }),
        1 => Just(Op::Restart),
    ]
}

const JAIL: &str = "sshd";

fn id(n: u8) -> String {
    format!("192.0.2.{n}")
}

/// End of a ban (`f64::INFINITY` when permanent).
fn end(b: &Ban) -> f64 {
    b.end().unwrap_or(f64::INFINITY)
}

fn restore(store: &Store, now: f64) -> BanManager<String> {
    let mut m = BanManager::new();
    for b in store.current_bans_for(JAIL, now, None).unwrap() {
        let ban = Ban {
            banned_at: b.banned_at,
            bantime: b.bantime,
            ban_count: b.ban_count,
        };
        assert_eq!(m.add(b.id.clone(), ban, now), AddOutcome::Added, "{b:?}");
    }
    m
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn store_manager_and_model_agree(ops in proptest::collection::vec(op(), 1..60)) {
        let mut store = Store::open_in_memory(StoreOptions::default()).unwrap();
        store.add_jail(JAIL).unwrap();
        let mut mgr: BanManager<String> = BanManager::new();
        let mut model: BTreeMap<String, f64> = BTreeMap::new();
        let mut now = 1_796_558_400.0f64;
        for op in &ops {
            match *op {
                Op::Ban { id: n, ago, bantime } => {
                    let ban = Ban { banned_at: now - f64::from(ago), bantime: f64::from(bantime), ban_count: 1 };
                    let new_end = end(&ban);
                    let out = mgr.add(id(n), ban, now);
                    let expect = if new_end < now {
                        "expired"
                    } else {
                        match model.get(&id(n)) {
                            Some(old) if new_end <= *old => "already",
                            Some(_) => "prolonged",
                            None => "added",
                        }
                    };
                    let got = match out {
                        AddOutcome::Expired => "expired",
                        AddOutcome::AlreadyBanned => "already",
                        AddOutcome::Prolonged { .. } => "prolonged",
                        AddOutcome::Added => "added",
                    };
                    prop_assert_eq!(got, expect, "{:?}", op);
                    if let AddOutcome::Added | AddOutcome::Prolonged { .. } = out {
                        model.insert(id(n), new_end);
                        // As the daemon: the ban as it now stands is written before actions run.
                        let b = *mgr.get(&id(n)).unwrap();
                        prop_assert_eq!(end(&b), new_end);
                        store.record_ban(&BanRecord {
                            jail: JAIL, id: &id(n), banned_at: b.banned_at, bantime: b.bantime,
                            ban_count: b.ban_count, matches: &[], failures: 1,
                        }).unwrap();
                    }
                }
                Op::Unban { id: n } => {
                    let had = mgr.remove(&id(n)).is_some();
                    prop_assert_eq!(had, model.remove(&id(n)).is_some());
                    store.remove_ban(JAIL, &id(n)).unwrap();
                }
                Op::Advance { secs } => {
                    now += f64::from(secs);
                }
                Op::Restart => {
                    mgr = restore(&store, now);
                }
            }
            // The unban timer fires: exactly the bans that ended, earliest first.
            let expired = mgr.expire(now);
            let ends: Vec<f64> = expired.iter().map(|(_, b)| end(b)).collect();
            prop_assert!(ends.windows(2).all(|w| w[0] <= w[1]), "{:?}", ends);
            let mut want: Vec<String> = model.iter().filter(|(_, e)| **e <= now).map(|(k, _)| k.clone()).collect();
            let mut got: Vec<String> = expired.into_iter().map(|(k, _)| k).collect();
            want.sort();
            got.sort();
            prop_assert_eq!(got, want);
            model.retain(|_, e| *e > now);

            // Manager == model.
            let mgr_view: BTreeMap<String, f64> = mgr.by_start().map(|(k, b)| (k.clone(), end(b))).collect();
            prop_assert_eq!(&mgr_view, &model);
            prop_assert_eq!(mgr.len(), model.len());
            let next = model.values().copied().filter(|e| e.is_finite()).fold(f64::INFINITY, f64::min);
            prop_assert_eq!(mgr.next_deadline().unwrap_or(f64::INFINITY), next);
            // Store's bans in force == manager's (what the firewall holds).
            let stored: BTreeMap<String, f64> = store
                .current_bans_for(JAIL, now, None)
                .unwrap()
                .into_iter()
                .map(|b| (b.id, if b.bantime < 0.0 { f64::INFINITY } else { b.banned_at + b.bantime }))
                .collect();
            prop_assert_eq!(&stored, &model, "store and enforced bans differ after {:?}", op);
        }
    }
}

/// Found by `store_manager_and_model_agree`: a ban prolonged by a later-ending ban that started
/// earlier (an older log line read late) ended later than either; it ends when the new one does,
/// as in fail2ban (`eob - banned.getTime()`).
#[test]
fn regression_prop_prolonged_by_an_earlier_started_ban_ends_when_it_does() {
    let now = 1_796_558_400.0;
    let mut m: BanManager<String> = BanManager::new();
    let first = Ban {
        banned_at: now,
        bantime: 1.0,
        ban_count: 1,
    };
    assert_eq!(m.add(id(5), first, now), AddOutcome::Added);
    let second = Ban {
        banned_at: now - 1.0,
        bantime: 3.0,
        ban_count: 1,
    };
    match m.add(id(5), second, now) {
        AddOutcome::Prolonged { previous_end, ban } => {
            assert_eq!(previous_end, Some(now + 1.0));
            assert_eq!(ban.end(), Some(now + 2.0));
        }
        other => panic!("{other:?}"),
    }
}
