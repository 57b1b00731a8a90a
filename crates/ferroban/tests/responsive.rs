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

/// Appends `lines` 404s, each of another address, to access.log at once.
fn append_404s(t: &Tree, lines: usize) {
    let now = nginx_now();
    let mut body = String::with_capacity(lines * 90);
    for i in 0..lines {
        let ip = format!("2001:db8:{:x}::{:x}", i >> 16, i & 0xffff);
        body.push_str(&format!(
            "{ip} - - [{now}] \"GET /missing/{i} HTTP/1.1\" 404 12 \"-\" \"t\"\n"
        ));
    }
    t.append("access.log", &body);
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

    append_404s(&t, LINES);

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

/// The server's answer to `argv` over the control socket (the client program's start-up is
/// not part of the time measured).
fn ask(sock: &std::path::Path, argv: &[&str]) -> Result<serde_json::Value, String> {
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::os::unix::net::UnixStream::connect(sock).expect("connect to the server");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let argv: Vec<String> = argv.iter().map(|w| w.to_string()).collect();
    s.write_all(
        ferroban::control::proto::Request::new(argv)
            .to_line()
            .as_bytes(),
    )
    .unwrap();
    let mut line = Vec::new();
    BufReader::new(s).read_until(b'\n', &mut line).unwrap();
    ferroban::control::proto::Response::parse(&line).expect("a protocol response")
}

/// `Total failed` of a `status <jail>` answer (`[["Filter", [..., ["Total failed", n], ...]], ...]`).
fn total_failed_of(v: &serde_json::Value) -> Option<u64> {
    v.get(0)?.get(1)?.as_array()?.iter().find_map(|e| {
        (e.get(0)?.as_str()? == "Total failed")
            .then(|| e.get(1)?.as_u64())
            .flatten()
    })
}

/// Issue 10: while one jail ingests a large append, the control socket answers `status`, the
/// `status` of another jail (its own task, idle) and of the busy jail itself (its task answers
/// between two of its read slices). Each request goes over the socket directly and is timed
/// from connect to the answer. The issue's goal (50 ms) is asserted on the median of each kind
/// in the release build (a debug build matches several times slower, with longer slices:
/// 250 ms). The worst case is at the mercy of the scheduler on a loaded machine (the suite runs
/// tests side by side on two cores): within 1 s (debug 3 s), where answers took seconds when
/// the whole append was read between two yields.
#[test]
fn other_jails_and_the_server_answer_within_the_bound_during_a_large_append() {
    let lines: usize = 1_000_000;
    let (median_bound, worst_bound) = if cfg!(debug_assertions) {
        (Duration::from_millis(250), Duration::from_secs(3))
    } else {
        (Duration::from_millis(50), Duration::from_secs(1))
    };
    let mut t = Tree::new(BIN, "responsive", "bound", "WARNING");
    t.write_web_jail(
        r#"^<HOST> -.* "GET .* HTTP/.*" 404"#,
        "maxretry = 1000000000\nfindtime = 1d\nmaxfailed = 0\n",
    );
    // A second jail on another file: it has nothing to read.
    let mut conf = t.read("jail.conf");
    conf.push_str(&format!(
        "\n[quiet]\nenabled = true\nfilter = web\nlogpath = {}\naction = none\n",
        t.path("quiet.log").display()
    ));
    t.write("jail.conf", &conf);
    t.write("quiet.log", "");
    t.spawn();
    let sock = t.path("ferroban.sock");
    ferroban_testkit::wait_for("both jails answer status", Duration::from_secs(15), || {
        ask(&sock, &["status", "web"]).is_ok() && ask(&sock, &["status", "quiet"]).is_ok()
    });

    append_404s(&t, lines);

    // Rounds of the three requests; a round counts while the last one (`status web`) shows the
    // append not read to its end.
    let kinds: [&[&str]; 3] = [&["status", "quiet"], &["status"], &["status", "web"]];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); 3];
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let mut round = [Duration::ZERO; 3];
        let mut answers = Vec::new();
        for (k, argv) in kinds.iter().enumerate() {
            let t0 = Instant::now();
            let v = ask(&sock, argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            round[k] = t0.elapsed();
            answers.push(v);
        }
        assert_eq!(
            total_failed_of(&answers[0]),
            Some(0),
            "quiet has read nothing: {}",
            answers[0]
        );
        let counted = total_failed_of(&answers[2]).expect("Total failed of web") as usize;
        if counted >= lines {
            assert_eq!(counted, lines);
            break;
        }
        for k in 0..3 {
            times[k].push(round[k]);
        }
        assert!(Instant::now() < deadline, "not all counted: {counted}");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut failures = Vec::new();
    for (k, argv) in kinds.iter().enumerate() {
        let mut v = times[k].clone();
        v.sort();
        let median = v.get(v.len() / 2).copied().unwrap_or_default();
        let worst = v.last().copied().unwrap_or_default();
        eprintln!(
            "{argv:?}: {} answers during the append, median {median:?}, worst {worst:?}",
            v.len()
        );
        if v.len() < 10 {
            failures.push(format!(
                "{argv:?} answered only {} time(s) during the append",
                v.len()
            ));
        }
        if median > median_bound || worst > worst_bound {
            failures.push(format!(
                "{argv:?}: median {median:?}, worst {worst:?} (bounds {median_bound:?}, {worst_bound:?})"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}
