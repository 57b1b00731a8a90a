use std::path::Path;

use super::*;

fn sample(value: &str, text: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(value) && l[value.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn series_of_a_jail_follow_its_hooks() {
    let m = Metrics::new(MetricsOptions::default());
    let j = m.jail("sshd", 600.0, 300.0, 3);
    j.lines(
        &m,
        Path::new("/var/log/auth.log"),
        LineCounts {
            read: 10,
            matched: 4,
            ignored_regex: 1,
            too_old: 0,
            ignored_ip: 2,
            dateless: 1,
        },
    );
    j.failures(3, 1000.0);
    j.banned(
        &m,
        BanOrigin::Log,
        "192.0.2.1",
        Some(1600.0),
        1000.0,
        Some(Instant::now()),
    );
    j.ban_confirmed("192.0.2.1");
    j.banned(&m, BanOrigin::Manual, "192.0.2.2", None, 1001.0, None);
    j.unbanned(&m, UnbanReason::Manual, "192.0.2.2", 1002.0);
    j.set_current(1, 1);
    m.action("sshd", "nft", "ban", Duration::from_millis(3), true);
    m.action("sshd", "nft", "unban", Duration::from_millis(3), false);
    let t = m.render();
    assert_eq!(
        sample("ferroban_jail_bans_total{jail=\"sshd\",origin=\"log\"}", &t),
        Some(1.0),
        "{t}"
    );
    assert_eq!(
        sample(
            "ferroban_jail_bans_total{jail=\"sshd\",origin=\"manual\"}",
            &t
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            "ferroban_jail_bans_total{jail=\"sshd\",origin=\"fleet\"}",
            &t
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            "ferroban_jail_unbans_total{jail=\"sshd\",reason=\"manual\"}",
            &t
        ),
        Some(1.0)
    );
    assert_eq!(
        sample("ferroban_jail_failures_total{jail=\"sshd\"}", &t),
        Some(3.0)
    );
    assert_eq!(
        sample("ferroban_jail_banned_current{jail=\"sshd\"}", &t),
        Some(1.0)
    );
    assert_eq!(
        sample("ferroban_jail_config_bantime_seconds{jail=\"sshd\"}", &t),
        Some(600.0)
    );
    assert_eq!(
        sample("ferroban_jail_config_maxretry{jail=\"sshd\"}", &t),
        Some(3.0)
    );
    assert_eq!(
        sample(
            "ferroban_source_lines_ignored_total{jail=\"sshd\",reason=\"ignoreip\",source=\"/var/log/auth.log\"}",
            &t
        ),
        Some(2.0),
        "{t}"
    );
    assert_eq!(
        sample("ferroban_ban_latency_seconds_count{jail=\"sshd\"}", &t),
        Some(1.0)
    );
    assert_eq!(
        sample(
            "ferroban_action_errors_total{action=\"nft\",jail=\"sshd\",operation=\"unban\"}",
            &t
        ),
        Some(1.0)
    );
    assert!(t.contains("ferroban_build_info{"), "{t}");
    assert!(t.contains("\nprocess_resident_memory_bytes "), "{t}");
    assert!(!t.contains("f2b_"), "compatibility names are opt-in");
    // No series per address.
    assert!(!t.contains("192.0.2."), "{t}");
}

#[test]
fn compatibility_names_mirror_the_ferroban_series() {
    let m = Metrics::new(MetricsOptions { compat: true });
    let j = m.jail("nginx", 3600.0, 600.0, 5);
    j.failures(7, 0.0);
    j.banned(&m, BanOrigin::Log, "198.51.100.7", Some(3600.0), 0.0, None);
    j.set_current(2, 1);
    let t = m.render();
    assert_eq!(sample("f2b_up", &t), Some(1.0));
    assert_eq!(sample("f2b_jail_count", &t), Some(1.0));
    assert_eq!(
        sample("f2b_jail_banned_current{jail=\"nginx\"}", &t),
        Some(1.0)
    );
    assert_eq!(
        sample("f2b_jail_banned_total{jail=\"nginx\"}", &t),
        Some(1.0)
    );
    assert_eq!(
        sample("f2b_jail_failed_current{jail=\"nginx\"}", &t),
        Some(2.0)
    );
    assert_eq!(
        sample("f2b_jail_failed_total{jail=\"nginx\"}", &t),
        Some(7.0)
    );
    assert_eq!(
        sample("f2b_config_jail_ban_time{jail=\"nginx\"}", &t),
        Some(3600.0)
    );
    assert_eq!(
        sample("f2b_config_jail_find_time{jail=\"nginx\"}", &t),
        Some(600.0)
    );
    assert_eq!(
        sample("f2b_config_jail_max_retries{jail=\"nginx\"}", &t),
        Some(5.0)
    );
}

#[test]
fn totals_continue_from_the_stored_ones() {
    let mut db = ferroban_bans::StatsStore::open_in_memory().unwrap();
    {
        let m = Metrics::new(MetricsOptions::default());
        let j = m.jail("sshd", 600.0, 300.0, 3);
        j.failures(5, 0.0);
        j.banned(&m, BanOrigin::Log, "192.0.2.1", None, 0.0, None);
        j.unbanned(&m, UnbanReason::Stop, "192.0.2.1", 1.0);
        j.lines(
            &m,
            Path::new("/l,og"),
            LineCounts {
                read: 9,
                ..LineCounts::default()
            },
        );
        db.save(&m.totals(), 1.0).unwrap();
    }
    let m = Metrics::new(MetricsOptions::default());
    m.restore_totals(db.load().unwrap());
    let j = m.jail("sshd", 600.0, 300.0, 3);
    // The stored source's series exist before it reads a line.
    assert_eq!(
        sample(
            "ferroban_source_lines_read_total{jail=\"sshd\",source=\"/l,og\"}",
            &m.render()
        ),
        Some(9.0)
    );
    j.failures(1, 2.0);
    j.banned(&m, BanOrigin::Restored, "192.0.2.1", None, 2.0, None);
    j.lines(
        &m,
        Path::new("/l,og"),
        LineCounts {
            read: 1,
            ..LineCounts::default()
        },
    );
    let t = m.render();
    assert_eq!(
        sample("ferroban_jail_failures_total{jail=\"sshd\"}", &t),
        Some(6.0),
        "{t}"
    );
    assert_eq!(
        sample("ferroban_jail_bans_total{jail=\"sshd\",origin=\"log\"}", &t),
        Some(1.0)
    );
    assert_eq!(
        sample(
            "ferroban_jail_bans_total{jail=\"sshd\",origin=\"restored\"}",
            &t
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            "ferroban_jail_unbans_total{jail=\"sshd\",reason=\"stop\"}",
            &t
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            "ferroban_source_lines_read_total{jail=\"sshd\",source=\"/l,og\"}",
            &t
        ),
        Some(10.0)
    );
}

#[test]
fn snapshot_feed_is_incremental_and_bounded() {
    let m = Metrics::new(MetricsOptions::default());
    let j = m.jail("sshd", 600.0, 300.0, 3);
    for i in 0..(feed::FEED_CAPACITY + 50) {
        let ip = format!("10.0.{}.{}", i / 250, i % 250);
        j.banned(
            &m,
            BanOrigin::Log,
            &ip,
            Some(600.0 + i as f64),
            i as f64,
            None,
        );
    }
    j.banned(&m, BanOrigin::Log, "10.0.0.1", Some(700.0), 100.0, None);
    let s = m.snapshot(0, 600.0);
    assert_eq!(s.events.len(), feed::FEED_BATCH);
    assert_eq!(s.events.last().unwrap().seq, s.seq);
    assert_eq!(s.offenders[0].id, "10.0.0.1");
    assert_eq!(s.offenders[0].bans, 2);
    let later = m.snapshot(s.seq, 121.0);
    assert!(later.events.is_empty());
    j.unbanned(&m, UnbanReason::Expired, "10.0.0.1", 122.0);
    let later = m.snapshot(s.seq, 122.0);
    assert_eq!(later.events.len(), 1);
    assert_eq!(later.events[0].kind, "unban");
    assert_eq!(later.events[0].why, "expired");
    // Per-minute: the bans at t = 0..562 s fall in minutes 0..9, the one at 100 s in minute 1.
    let row = &s.jails[0];
    assert_eq!(row.bans_per_minute.len(), feed::MINUTES);
    assert_eq!(
        row.bans_per_minute.iter().sum::<u64>(),
        (feed::FEED_CAPACITY + 51) as u64
    );
}

#[test]
fn addresses_parse() {
    assert_eq!(
        "127.0.0.1:9191".parse::<http::MetricsAddr>().unwrap(),
        http::MetricsAddr::Tcp("127.0.0.1:9191".parse().unwrap())
    );
    assert_eq!(
        "/run/ferroban/metrics.sock"
            .parse::<http::MetricsAddr>()
            .unwrap(),
        http::MetricsAddr::Unix("/run/ferroban/metrics.sock".into())
    );
    let e = "localhost".parse::<http::MetricsAddr>().unwrap_err();
    assert!(e.contains("localhost"), "{e}");
}
