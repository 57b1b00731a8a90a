//! Unban scheduling and the ban manager, with a manual clock.

use ferroban_bans::{AddOutcome, Ban, BanManager, Expired, UnbanScheduler};

fn ban(at: f64, bantime: f64) -> Ban {
    Ban {
        banned_at: at,
        bantime,
        ban_count: 1,
    }
}

#[test]
fn scheduler_orders_by_deadline_then_id() {
    let mut s = UnbanScheduler::new();
    s.schedule("c", Some(30.0));
    s.schedule("a", Some(10.0));
    s.schedule("b", Some(10.0));
    s.schedule("p", None);
    assert_eq!(s.len(), 4);
    assert_eq!(s.next_deadline(), Some(10.0));
    assert_eq!(s.expire(9.999), vec![]);
    assert_eq!(
        s.expire(10.0),
        vec![
            Expired {
                id: "a",
                unban_at: 10.0
            },
            Expired {
                id: "b",
                unban_at: 10.0
            }
        ]
    );
    assert_eq!(s.next_deadline(), Some(30.0));
    assert_eq!(
        s.expire(1e12),
        vec![Expired {
            id: "c",
            unban_at: 30.0
        }]
    );
    // The permanent one stays forever.
    assert_eq!(s.next_deadline(), None);
    assert!(s.contains(&"p"));
    assert_eq!(s.unban_at(&"p"), Some(None));
    assert_eq!(s.expire(f64::INFINITY), vec![]);
    assert_eq!(s.len(), 1);
}

#[test]
fn rescheduling_and_cancelling() {
    let mut s = UnbanScheduler::new();
    s.schedule(1u32, Some(10.0));
    s.schedule(2, Some(20.0));
    s.schedule(1, Some(30.0)); // replaces 10
    assert_eq!(s.next_deadline(), Some(20.0));
    assert!(s.cancel(&2));
    assert!(!s.cancel(&2));
    assert_eq!(s.next_deadline(), Some(30.0));
    s.schedule(1, None); // made permanent
    assert_eq!(s.next_deadline(), None);
    assert_eq!(s.clear(), vec![1]);
    assert!(s.is_empty());
}

#[test]
fn manager_expires_in_order_and_keeps_permanent_bans() {
    let mut m = BanManager::new();
    let mut now = 1000.0;
    assert_eq!(
        m.add("a".to_string(), ban(now, 600.0), now),
        AddOutcome::Added
    );
    assert_eq!(
        m.add("b".to_string(), ban(now, 60.0), now),
        AddOutcome::Added
    );
    assert_eq!(
        m.add("p".to_string(), ban(now, -1.0), now),
        AddOutcome::Added
    );
    assert_eq!(m.len(), 3);
    assert_eq!(m.next_deadline(), Some(1060.0));
    assert_eq!(
        m.get(&"a".to_string()).and_then(|b| b.remaining(now)),
        Some(600.0)
    );
    assert_eq!(m.get(&"p".to_string()).and_then(|b| b.remaining(now)), None);

    now += 59.0;
    assert!(m.expire(now).is_empty());
    now += 1.0;
    let gone: Vec<_> = m.expire(now).into_iter().map(|(id, _)| id).collect();
    assert_eq!(gone, ["b"]);
    now = m.next_deadline().unwrap();
    assert_eq!(now, 1600.0);
    let gone: Vec<_> = m.expire(now).into_iter().map(|(id, _)| id).collect();
    assert_eq!(gone, ["a"]);
    // Ten years later the permanent ban is still there.
    assert!(m.expire(now + 10.0 * 365.0 * 86400.0).is_empty());
    assert!(m.is_banned(&"p".to_string()));
    assert_eq!(m.next_deadline(), None);
    assert_eq!(m.total(), 3);
}

#[test]
fn manager_follows_fail2ban_for_repeated_bans() {
    let mut m = BanManager::new();
    let id = "1.2.3.4".to_string();
    // An old ban that already ended is not added.
    assert_eq!(
        m.add(id.clone(), ban(0.0, 600.0), 1000.0),
        AddOutcome::Expired
    );
    assert_eq!(
        m.add(id.clone(), ban(1000.0, 600.0), 1000.0),
        AddOutcome::Added
    );
    // Ends earlier or at the same time: already banned.
    assert_eq!(
        m.add(id.clone(), ban(1000.0, 300.0), 1100.0),
        AddOutcome::AlreadyBanned
    );
    // Ends later: prolonged so that it ends when the new one would (1200 + 600).
    let out = m.add(
        id.clone(),
        Ban {
            banned_at: 1200.0,
            bantime: 600.0,
            ban_count: 2,
        },
        1200.0,
    );
    assert_eq!(
        out,
        AddOutcome::Prolonged {
            previous_end: Some(1600.0),
            ban: Ban {
                banned_at: 1000.0,
                bantime: 800.0,
                ban_count: 2
            }
        }
    );
    assert_eq!(m.next_deadline(), Some(1800.0));
    // A permanent ban replaces a temporary one, and nothing prolongs a permanent one.
    assert!(matches!(
        m.add(id.clone(), ban(1300.0, -1.0), 1300.0),
        AddOutcome::Prolonged { .. }
    ));
    assert_eq!(m.next_deadline(), None);
    assert_eq!(
        m.add(id.clone(), ban(1400.0, 1e9), 1400.0),
        AddOutcome::AlreadyBanned
    );
    assert_eq!(m.remove(&id).map(|b| b.bantime), Some(-1.0));
    assert!(m.is_empty());
    assert_eq!(m.total(), 1);
}

#[test]
fn listing_by_end_and_flush() {
    let mut m = BanManager::new();
    m.add(3, ban(0.0, -1.0), 0.0);
    m.add(1, ban(0.0, 50.0), 0.0);
    m.add(2, ban(0.0, 10.0), 0.0);
    let order: Vec<_> = m.by_end().into_iter().map(|(id, _)| *id).collect();
    assert_eq!(order, [2, 1, 3]);
    assert_eq!(m.flush().len(), 3);
    assert!(m.is_empty());
    assert_eq!(m.next_deadline(), None);
}

#[test]
fn listing_by_start_follows_adds_prolongs_and_removals() {
    let mut m = BanManager::new();
    m.add("c", ban(30.0, 100.0), 0.0);
    m.add("a", ban(10.0, -1.0), 0.0);
    m.add("b", ban(10.0, 5.0), 0.0);
    m.add("d", ban(20.0, 1.0), 0.0);
    let order = |m: &BanManager<&'static str>| m.by_start().map(|(id, _)| *id).collect::<Vec<_>>();
    assert_eq!(order(&m), vec!["a", "b", "d", "c"]);
    // Prolonging keeps the start.
    assert!(matches!(
        m.add("b", ban(25.0, 100.0), 0.0),
        AddOutcome::Prolonged { .. }
    ));
    assert_eq!(order(&m), vec!["a", "b", "d", "c"]);
    let by_end: Vec<_> = m.by_end().into_iter().map(|(id, _)| *id).collect();
    assert_eq!(by_end, vec!["d", "b", "c", "a"]);
    m.remove(&"d");
    assert_eq!(order(&m), vec!["a", "b", "c"]);
    let gone: Vec<_> = m.expire(200.0).into_iter().map(|(id, _)| id).collect();
    assert_eq!(gone, vec!["b", "c"]);
    assert_eq!(order(&m), vec!["a"]);
    m.flush();
    assert_eq!(order(&m), Vec::<&str>::new());
}
