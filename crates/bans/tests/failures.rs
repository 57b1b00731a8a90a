//! Failure counting against fail2ban 1.0.2's FailManager (expected values obtained by running it).

use ferroban_bans::{BanOrder, FailureTracker, KnownOffender, Outcome, TrackerConfig, Window};

fn tracker(maxretry: u32, maxmatches: usize, window: Window) -> FailureTracker<String> {
    FailureTracker::new(TrackerConfig {
        findtime: 600.0,
        maxretry,
        maxmatches,
        window,
        max_entries: 0,
    })
}

/// Feeds failures of one id at `times` (each with one match `l<time>`); returns the outcomes as fail2ban's
/// `addFailure` return values, or the ban order.
fn run(t: &mut FailureTracker<String>, times: &[f64]) -> Vec<Result<u32, BanOrder<String>>> {
    times
        .iter()
        .map(
            |&time| match t.record("1.2.3.4".into(), time, vec![format!("l{time}")]) {
                Outcome::Counted { retry } => Ok(retry),
                Outcome::Ban(order) => Err(order),
                Outcome::Ignored => panic!("record never ignores"),
            },
        )
        .collect()
}

fn counts(v: &[Result<u32, BanOrder<String>>]) -> Vec<u32> {
    v.iter()
        .map(|r| r.as_ref().map_or_else(|b| b.retry, |c| *c))
        .collect()
}

#[test]
fn maxretry_within_findtime_bans_with_counts_and_matches() {
    let mut t = tracker(3, 5, Window::Fail2ban);
    let out = run(&mut t, &[0.0, 300.0, 599.0]);
    assert_eq!(out[..2], [Ok(1), Ok(2)]);
    let Err(order) = &out[2] else {
        panic!("expected a ban: {out:?}")
    };
    assert_eq!(order.id, "1.2.3.4");
    assert_eq!(order.retry, 3);
    assert_eq!(order.failures, 3);
    assert_eq!(order.time, 599.0);
    assert_eq!(order.first_time, 0.0);
    assert_eq!(order.matches, ["l0", "l300", "l599"]);
    // The id is forgotten once banned.
    assert!(t.is_empty());
    assert_eq!(t.total(), 3);
}

#[test]
fn fail2ban_edge_rescaling_bans_where_a_sliding_window_would_not() {
    // fail2ban: [1, 2, BAN 3] — at 601 the count 2 over 601 s is rescaled to round(1.997) = 2, plus one.
    let mut t = tracker(3, 5, Window::Fail2ban);
    let out = run(&mut t, &[0.0, 300.0, 601.0]);
    assert!(
        matches!(&out[2], Err(o) if o.retry == 3 && o.first_time == 1.0),
        "{out:?}"
    );
    // A strict sliding window has dropped the failure at 0.
    let mut t = tracker(3, 5, Window::Sliding);
    assert_eq!(counts(&run(&mut t, &[0.0, 300.0, 601.0])), [1, 2, 2]);
}

#[test]
fn fail2ban_edge_a_burst_is_remembered_as_a_rate() {
    // fail2ban: [1, 2, 3, 4, 5, 6]: five failures in 40 s, one at 650 s: round(5/650*600) + 1 = 6.
    let mut t = tracker(10, 5, Window::Fail2ban);
    assert_eq!(
        counts(&run(&mut t, &[0.0, 10.0, 20.0, 30.0, 40.0, 650.0])),
        [1, 2, 3, 4, 5, 6]
    );
    let mut t = tracker(10, 5, Window::Sliding);
    assert_eq!(
        counts(&run(&mut t, &[0.0, 10.0, 20.0, 30.0, 40.0, 650.0])),
        [1, 2, 3, 4, 5, 1]
    );
    // With maxretry 6 fail2ban bans, keeping the last five matches.
    let mut t = tracker(6, 5, Window::Fail2ban);
    let out = run(&mut t, &[0.0, 10.0, 20.0, 30.0, 40.0, 650.0]);
    let Err(order) = &out[5] else {
        panic!("{out:?}")
    };
    assert_eq!((order.retry, order.failures), (6, 6));
    assert_eq!(order.matches, ["l10", "l20", "l30", "l40", "l650"]);
}

#[test]
fn fail2ban_edge_stale_entry_is_rescaled_not_restarted() {
    // fail2ban: [1, 2, 2] then BAN at 1001 with 4 failures.
    let mut t = tracker(3, 5, Window::Fail2ban);
    let out = run(&mut t, &[0.0, 1.0, 1000.0, 1001.0]);
    assert_eq!(counts(&out[..3]), [1, 2, 2]);
    let Err(order) = &out[3] else {
        panic!("{out:?}")
    };
    assert_eq!((order.retry, order.failures, order.time), (3, 4, 1001.0));
    assert_eq!(order.matches, ["l0", "l1", "l1000", "l1001"]);
    // fail2ban: [1, 1] — one failure over 1200 s rescales to round(0.5) = 0 (half to even), plus one.
    let mut t = tracker(3, 5, Window::Fail2ban);
    assert_eq!(counts(&run(&mut t, &[0.0, 1200.0])), [1, 1]);
    // fail2ban: [1, 2, 3, 3] — 3 over 1200 s is round(1.5) = 2, plus one.
    let mut t = tracker(10, 5, Window::Fail2ban);
    assert_eq!(counts(&run(&mut t, &[0.0, 1.0, 2.0, 1200.0])), [1, 2, 3, 3]);
}

#[test]
fn cleanup_forgets_ids_idle_for_findtime() {
    let mut t = tracker(3, 5, Window::Fail2ban);
    run(&mut t, &[0.0, 1.0]);
    assert_eq!(
        t.cleanup(600.0),
        0,
        "last failure at 1 is still inside findtime at 600"
    );
    assert_eq!(
        t.cleanup(601.0),
        1,
        "fail2ban forgets when last <= now - findtime"
    );
    // After cleanup the count restarts.
    assert_eq!(counts(&run(&mut t, &[1000.0])), [1]);
}

#[test]
fn out_of_order_failures_are_added_without_rescaling() {
    // fail2ban: [1, 2, BAN 3], ban time = the latest failure (100).
    let mut t = tracker(3, 5, Window::Fail2ban);
    let out = run(&mut t, &[100.0, 50.0, 0.0]);
    let Err(order) = &out[2] else {
        panic!("{out:?}")
    };
    assert_eq!((order.retry, order.time), (3, 100.0));
    assert_eq!(order.matches, ["l100", "l50", "l0"]);
}

#[test]
fn maxmatches_trims_to_the_latest() {
    let mut t = tracker(4, 2, Window::Fail2ban);
    let out = run(&mut t, &[0.0, 1.0, 2.0, 3.0]);
    let Err(order) = &out[3] else {
        panic!("{out:?}")
    };
    assert_eq!(order.matches, ["l2", "l3"]);
    assert_eq!(order.failures, 4);
    // maxmatches 0 keeps none.
    let mut t = tracker(2, 0, Window::Fail2ban);
    let out = run(&mut t, &[0.0, 1.0]);
    assert!(matches!(&out[1], Err(o) if o.matches.is_empty()));
    // Multi-line failures contribute several lines; only the latest survive.
    let mut t = tracker(5, 3, Window::Fail2ban);
    t.record("x".to_string(), 0.0, vec!["a".into(), "b".into()]);
    t.record("x".to_string(), 1.0, vec!["c".into(), "d".into()]);
    for _ in 0..2 {
        t.record("x".to_string(), 2.0, vec![]);
    }
    let Outcome::Ban(o) = t.record("x".to_string(), 3.0, vec!["e".into()]) else {
        panic!()
    };
    assert_eq!(o.matches, ["c", "d", "e"]);
}

#[test]
fn weighted_failures_and_independent_ids() {
    let mut t = tracker(5, 5, Window::Fail2ban);
    assert_eq!(
        t.record_weighted("a".to_string(), 0.0, vec![], 3),
        Outcome::Counted { retry: 3 }
    );
    assert_eq!(
        t.record("b".to_string(), 0.0, vec![]),
        Outcome::Counted { retry: 1 }
    );
    assert!(
        matches!(t.record_weighted("a".to_string(), 1.0, vec![], 2), Outcome::Ban(o) if o.retry == 5 && o.failures == 2)
    );
    assert_eq!(t.retry(&"b".to_string()), Some(1));
    assert!(t.remove(&"b".to_string()));
    assert!(t.is_empty());
}

#[test]
fn known_offenders_count_more_and_old_lines_are_ignored() {
    let mut t = tracker(10, 5, Window::Fail2ban);
    let known = |n| {
        Some(KnownOffender {
            ban_count: n,
            last_banned_at: 100.0,
        })
    };
    // Not newer than the last ban: a re-read line.
    assert_eq!(
        t.record_known("a".to_string(), 100.0, vec![], known(1)),
        Outcome::Ignored
    );
    assert!(t.is_empty());
    // 1 earlier ban: 2 retries; 2 bans: 3; 3 bans: 5; 4 bans: 9 (fail2ban's 2, 3, 5, 9 …).
    for (n, w) in [(1, 2), (2, 3), (3, 5), (4, 9)] {
        let mut t = tracker(100, 5, Window::Fail2ban);
        assert_eq!(
            t.record_known("a".to_string(), 200.0, vec![], known(n)),
            Outcome::Counted { retry: w }
        );
    }
    // Capped at maxretry: one failure bans.
    let mut t = tracker(3, 5, Window::Fail2ban);
    assert!(
        matches!(t.record_known("a".to_string(), 200.0, vec![], known(30)), Outcome::Ban(o) if o.retry == 3)
    );
    // No history: an ordinary failure.
    assert_eq!(
        t.record_known("b".to_string(), 200.0, vec![], None),
        Outcome::Counted { retry: 1 }
    );
}

#[test]
fn sliding_window_counts_exactly_findtime() {
    let mut t = tracker(3, 5, Window::Sliding);
    assert_eq!(counts(&run(&mut t, &[0.0, 599.0])), [1, 2]);
    // At 600 the failure at 0 leaves the window (time - 0 >= findtime).
    assert_eq!(counts(&run(&mut t, &[600.0])), [2]);
    let out = run(&mut t, &[601.0]);
    assert!(
        matches!(&out[0], Err(o) if o.retry == 3 && o.first_time == 599.0),
        "{out:?}"
    );
}
