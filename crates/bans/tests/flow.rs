//! A jail's whole bookkeeping path with a manual clock: failures → ban (stored before the action) → unban →
//! a second, longer ban for a known offender → daemon restart → restore.

use ferroban_bans::{
    AddOutcome, Ban, BanManager, BanRecord, BanTimeIncrement, BanTimePolicy, FailureTracker,
    IncrementOptions, KnownOffender, Outcome, SplitMix64, Store, StoreOptions, TrackerConfig,
};

#[test]
fn ban_unban_reban_restart() {
    let dir = std::env::temp_dir().join(format!("ferroban-bans-flow-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("db.sqlite3");

    let jail = "sshd";
    let ip = "203.0.113.9".to_string();
    let policy = BanTimePolicy {
        bantime: 600.0,
        increment: Some(
            BanTimeIncrement::from_options(&IncrementOptions {
                maxtime: Some(86_400.0),
                ..Default::default()
            })
            .unwrap(),
        ),
    };
    let mut rng = SplitMix64::new(1);
    let mut tracker = FailureTracker::new(TrackerConfig {
        maxretry: 3,
        ..Default::default()
    });
    let mut manager = BanManager::new();
    let mut store = Store::open(&db, StoreOptions::default()).unwrap();
    let mut actions: Vec<String> = Vec::new();
    let mut now = 1_700_000_000.0;

    // One step of the jail task: a failure arrives at `now`.
    let mut fail = |now: f64,
                    tracker: &mut FailureTracker<String>,
                    manager: &mut BanManager<String>,
                    store: &mut Store,
                    actions: &mut Vec<String>| {
        let inc = policy.increment.as_ref().unwrap();
        let history = store.ban_count(&ip, inc.scope(jail), None).unwrap();
        let known = history.map(|h| KnownOffender {
            ban_count: h.count,
            last_banned_at: h.last_banned_at,
        });
        let Outcome::Ban(order) =
            tracker.record_known(ip.clone(), now, vec![format!("fail at {now}")], known)
        else {
            return;
        };
        let d = policy
            .decide(order.time, history.as_ref(), &mut rng)
            .unwrap();
        let ban = Ban {
            banned_at: order.time,
            bantime: d.bantime,
            ban_count: d.ban_count,
        };
        if let AddOutcome::Added = manager.add(order.id.clone(), ban, now) {
            if !d.already_recorded {
                store
                    .record_ban(&BanRecord {
                        jail,
                        id: &order.id,
                        banned_at: order.time,
                        bantime: d.bantime,
                        ban_count: d.ban_count,
                        matches: &order.matches,
                        failures: u64::from(order.failures),
                    })
                    .unwrap();
            }
            // The action runs only after the store has the ban.
            assert!(
                store
                    .current_bans(now)
                    .unwrap()
                    .iter()
                    .any(|b| b.id == order.id)
            );
            actions.push(format!("ban {} for {}", order.id, d.bantime));
        }
    };

    for _ in 0..3 {
        fail(now, &mut tracker, &mut manager, &mut store, &mut actions);
        now += 10.0;
    }
    assert_eq!(actions, ["ban 203.0.113.9 for 600"]);
    let deadline = manager.next_deadline().unwrap();
    assert_eq!(deadline, now - 10.0 + 600.0);
    now = deadline;
    for (id, _) in manager.expire(now) {
        actions.push(format!("unban {id}"));
    }
    assert!(manager.is_empty());

    // The known offender comes back: each failure counts 2 (one earlier ban), so two failures ban, for 1200 s.
    now += 60.0;
    fail(now, &mut tracker, &mut manager, &mut store, &mut actions);
    now += 1.0;
    fail(now, &mut tracker, &mut manager, &mut store, &mut actions);
    assert_eq!(actions.last().unwrap(), "ban 203.0.113.9 for 1200");
    assert_eq!(
        store
            .ban_count(&ip, ferroban_bans::Scope::Jail(jail), None)
            .unwrap()
            .unwrap()
            .count,
        2
    );

    // Restart 100 s later: the ban is restored with 1100 s left.
    drop(store);
    now += 100.0;
    let store = Store::open(&db, StoreOptions::default()).unwrap();
    let restored = store
        .current_bans_for(jail, now, policy.max_bantime())
        .unwrap();
    assert_eq!(restored.len(), 1);
    assert_eq!(restored[0].remaining, Some(1100.0));
    assert_eq!(restored[0].data.failures, 2);
    let mut manager = BanManager::new();
    let b = &restored[0];
    manager.add(
        b.id.clone(),
        Ban {
            banned_at: b.banned_at,
            bantime: b.bantime,
            ban_count: b.ban_count,
        },
        now,
    );
    assert_eq!(manager.next_deadline(), Some(now + 1100.0));
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
