//! The in-memory ban history ([`History`]) answers exactly as the store's `ban_count` did, for
//! both scopes (one jail, `bantime.overalljails`), through any sequence of bans, unbans by hand,
//! removals of a jail's bans and purges; and a history read back from the store
//! (`history_rows`) answers the same as the one kept current (property test, proptest).

use ferroban_bans::{BanRecord, History, Scope, Store, StoreOptions};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Ban {
        jail: u8,
        id: u8,
        banned_at: u32,
        bantime: i32,
        count: u8,
    },
    Unban {
        jail: u8,
        id: u8,
    },
    UnbanJail {
        jail: u8,
    },
    Purge {
        now: u32,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..3, 0u8..4, 0u32..400_000, prop_oneof![Just(-1i32), 1i32..=200_000], 1u8..10)
            .prop_map(|(jail, id, banned_at, bantime, count)| Op::Ban { jail, id, banned_at, bantime, count }),
        2 => (0u8..3, 0u8..4).prop_map(|(jail, id)| Op::Unban { jail, id }),
        1 => (0u8..3).prop_map(|jail| Op::UnbanJail { jail }),
        1 => (0u32..1_000_000).prop_map(|now| Op::Purge { now }),
    ]
}

fn jail(n: u8) -> String {
    format!("jail{n}")
}

fn id(n: u8) -> String {
    format!("192.0.2.{n}")
}

/// Every answer of `h` equals the store's.
fn same(store: &Store, h: &History, own: Option<&str>) {
    for i in 0..4 {
        let id = id(i);
        let scopes: Vec<Scope> = match own {
            Some(j) => vec![Scope::Jail(j)],
            None => (0..3)
                .map(|j| Scope::Jail(Box::leak(jail(j).into_boxed_str())))
                .chain([Scope::All])
                .collect(),
        };
        for scope in scopes {
            let want = store.ban_count(&id, scope, None).unwrap();
            assert_eq!(h.get(&id, scope), want, "{id} in {scope:?}");
        }
    }
}

proptest! {
    #[test]
    fn history_answers_as_the_store(ops in proptest::collection::vec(op(), 1..60)) {
        let opts = StoreOptions::default();
        let (age, factor) = (opts.purge_age, opts.outdated_factor);
        let mut store = Store::open_in_memory(opts).unwrap();
        let mut all = History::new(true);
        // Jail 0's own history: it sees only its own changes.
        let mut own = History::new(false);
        for op in ops {
            match op {
                Op::Ban { jail: j, id: i, banned_at, bantime, count } => {
                    let (j, i) = (jail(j), id(i));
                    let (at, bt, n) = (f64::from(banned_at), f64::from(bantime), u64::from(count));
                    store.record_ban(&BanRecord {
                        jail: &j,
                        id: &i,
                        banned_at: at,
                        bantime: bt,
                        ban_count: n,
                        matches: &[],
                        failures: 1,
                    }).unwrap();
                    all.record(&j, &i, at, bt, n);
                    if j == "jail0" {
                        own.record(&j, &i, at, bt, n);
                    }
                }
                Op::Unban { jail: j, id: i } => {
                    let (j, i) = (jail(j), id(i));
                    store.remove_ban(&j, &i).unwrap();
                    all.remove(&j, &i);
                    own.remove(&j, &i);
                }
                Op::UnbanJail { jail: j } => {
                    let j = jail(j);
                    store.remove_jail_bans(&j).unwrap();
                    all.remove_jail(&j);
                    own.remove_jail(&j);
                }
                Op::Purge { now } => {
                    let now = f64::from(now);
                    store.purge(now).unwrap();
                    all.purge(now - age, factor);
                    own.purge(now - age, factor);
                }
            }
            same(&store, &all, None);
            same(&store, &own, Some("jail0"));
        }
        // Read back from the store (a jail's start).
        let loaded = History::from_rows(true, store.history_rows(None).unwrap());
        prop_assert_eq!(loaded.len(), all.len());
        same(&store, &loaded, None);
        let loaded = History::from_rows(false, store.history_rows(Some("jail0")).unwrap());
        prop_assert_eq!(loaded.len(), own.len());
        same(&store, &loaded, Some("jail0"));
    }
}
