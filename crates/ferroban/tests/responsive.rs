//! The control socket stays responsive while a jail ingests a large append: `status` keeps
//! answering between the jail's read slices, showing the count grow (`ferroban server -f` in a
//! scratch tree, no firewall). Asserted on progress and order (several answers, each with a
//! different count, before the last line is counted), not on wall time: the latency itself is
//! measured by bench/ingest.py (BENCHMARKS.md).

use std::time::{Duration, Instant};

use ferroban_testkit::{Tree, nginx_now};

const BIN: &str = env!("CARGO_BIN_EXE_ferroban");
const LINES: usize = 300_000;

fn total_failed(status: &str) -> Option<usize> {
    status
        .lines()
        .find(|l| l.contains("Total failed"))
        .and_then(|l| l.rsplit(':').next())
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn status_answers_between_slices_of_a_large_append() {
    let mut t = Tree::new(BIN, "responsive", "append", "WARNING");
    // maxretry is never reached: every line is one more failure, none bans.
    t.write_web_jail(
        r#"^<HOST> -.* "GET .* HTTP/.*" 404"#,
        "maxretry = 1000000000\nfindtime = 1d\nmaxfailed = 0\n",
    );
    t.spawn();
    ferroban_testkit::wait_for("jail web answers status", Duration::from_secs(15), || {
        t.client(&["status", "web"]).code == 0
    });

    let now = nginx_now();
    let mut body = String::with_capacity(LINES * 90);
    for i in 0..LINES {
        let ip = format!("2001:db8:{:x}::{:x}", i >> 16, i & 0xffff);
        body.push_str(&format!(
            "{ip} - - [{now}] \"GET /missing/{i} HTTP/1.1\" 404 12 \"-\" \"t\"\n"
        ));
    }
    t.append("access.log", &body);

    // Ask until everything is counted; keep the counts seen on the way.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let out = t.ok(&["status", "web"]);
        let n = total_failed(&out).unwrap_or_else(|| panic!("no Total failed in {out}"));
        seen.push(n);
        if n >= LINES {
            break;
        }
        assert!(Instant::now() < deadline, "not all counted: {seen:?}");
    }
    assert_eq!(*seen.last().unwrap(), LINES);
    let mut during: Vec<usize> = seen
        .iter()
        .copied()
        .filter(|&n| 0 < n && n < LINES)
        .collect();
    during.dedup();
    assert!(
        during.len() >= 3,
        "status answered only {} time(s) with a different count while the append was read: {seen:?}",
        during.len()
    );
}
