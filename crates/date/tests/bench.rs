//! Throughput of date detection, in ns per line (ignored by default):
//!
//! ```text
//! cargo test -p ferroban-date --release --test bench -- --ignored --nocapture
//! ```

use std::hint::black_box;
use std::time::Instant;

use ferroban_date::DateDetector;
use jiff::tz::TimeZone;

const NOW: f64 = 1_124_013_600.0;

fn lines(make: impl Fn(u32) -> String) -> Vec<String> {
    (0..20_000).map(make).collect()
}

fn run(name: &str, pattern: Option<&str>, lines: &[String]) {
    if let Ok(only) = std::env::var("BENCH_ONLY")
        && !name.contains(&only)
    {
        return;
    }
    let mut det = match pattern {
        None => DateDetector::with_default_templates(),
        Some(p) => DateDetector::from_pattern(p).expect("pattern"),
    };
    det.set_default_timezone(TimeZone::posix("CET-01CEST-02,M3.5.0,M10.5.0").expect("tz"));
    for l in lines.iter().take(100) {
        det.match_time(l, NOW);
    }
    let rounds = 25;
    let start = Instant::now();
    let mut sum = 0.0;
    for _ in 0..rounds {
        for l in lines {
            if let Some(h) = det.match_time(black_box(l), NOW) {
                sum += h.time.unwrap_or(0.0);
            }
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / (rounds * lines.len()) as f64;
    black_box(sum);
    println!("{name:<44} {ns:>7.1} ns/line");
}

#[test]
#[ignore = "benchmark: run with --release --ignored --nocapture"]
fn bench_match_time() {
    let hms = |i: u32| format!("{:02}:{:02}:{:02}", (i / 3600) % 24, (i / 60) % 60, i % 60);
    let syslog = lines(|i| {
        format!(
            "Aug 14 {} host sshd[123]: Failed password for root from 192.0.2.{} port 22 ssh2",
            hms(i),
            i % 250
        )
    });
    let iso = lines(|i| {
        format!(
            "2005-08-14 {} fail2ban.filter [1]: INFO [sshd] Found 192.0.2.{}",
            hms(i),
            i % 250
        )
    });
    let iso_ms = lines(|i| {
        format!(
            "2005-08-14 {},{:03} fail2ban.filter [1]: INFO Found 192.0.2.{}",
            hms(i),
            i % 1000,
            i % 250
        )
    });
    let nginx = lines(|i| {
        format!(
            "192.0.2.{} - - [14/Aug/2005:{} +0200] \"GET /x HTTP/1.1\" 404 153 \"-\" \"curl\"",
            i % 250,
            hms(i)
        )
    });
    let nginx_err = lines(|i| {
        format!(
            "2005/08/14 {} [error] 1234#0: *1 user \"x\" was not found, client: 192.0.2.{}",
            hms(i),
            i % 250
        )
    });
    let epoch = lines(|i| {
        format!(
            "{}.{:03} 1 192.0.2.{} TCP_DENIED/403 GET http://x/",
            1_124_000_000 + i,
            i % 1000,
            i % 250
        )
    });
    let nodate =
        lines(|i| format!("no date in this line at all, just some text {i} and more words here"));
    run("syslog `Mmm dd HH:MM:SS` (defaults)", None, &syslog);
    run("ISO `YYYY-MM-DD HH:MM:SS` (defaults)", None, &iso);
    run("ISO `YYYY-MM-DD HH:MM:SS,fff` (defaults)", None, &iso_ms);
    run("nginx access `[dd/Mmm/YYYY:HH:MM:SS +zzzz]`", None, &nginx);
    run("nginx error `YYYY/MM/DD HH:MM:SS`", None, &nginx_err);
    run("Epoch (defaults)", None, &epoch);
    run("syslog, datepattern {^LN-BEG}", Some("{^LN-BEG}"), &syslog);
    run(
        "nginx access, datepattern ^[^\\[]*\\[({DATE})",
        Some(r"^[^\[]*\[({DATE})"),
        &nginx,
    );
    run(
        "Epoch, datepattern {^LN-BEG}Epoch",
        Some("{^LN-BEG}Epoch"),
        &epoch,
    );
    run(
        "ISO, datepattern ^%Y-%m-%d %H:%M:%S (regex)",
        Some("^%Y-%m-%d %H:%M:%S"),
        &iso,
    );
    run("no date at all (defaults, full search)", None, &nodate);
}
