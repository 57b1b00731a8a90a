//! The control socket stays responsive while a jail ingests a large append: `status` keeps
//! answering between the jail's read slices, showing the count grow (`ferroban server -f` in a
//! scratch tree, no firewall). Asserted on progress and order (several answers, each with a
//! different count, before the last line is counted), not on wall time: the latency itself is
//! measured by bench/ingest.py (BENCHMARKS.md).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ferroban");
const LINES: usize = 300_000;

struct Daemon {
    dir: PathBuf,
    child: Option<Child>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn client(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .arg("client")
        .arg("-c")
        .arg(dir)
        .args(args)
        .output()
        .expect("run ferroban client");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn total_failed(status: &str) -> Option<usize> {
    status
        .lines()
        .find(|l| l.contains("Total failed"))
        .and_then(|l| l.rsplit(':').next())
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn status_answers_between_slices_of_a_large_append() {
    let dir = std::env::temp_dir().join(format!("ferroban-responsive-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("filter.d")).unwrap();
    std::fs::create_dir_all(dir.join("action.d")).unwrap();
    std::fs::write(
        dir.join("filter.d/web.conf"),
        "[Definition]\nfailregex = ^<HOST> -.* \"GET .* HTTP/.*\" 404\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("action.d/none.conf"),
        "[Definition]\nactionstart =\nactionstop =\nactionban =\nactionunban =\n",
    )
    .unwrap();
    let d = dir.display();
    std::fs::write(
        dir.join("fail2ban.conf"),
        format!(
            "[Definition]\nloglevel = WARNING\nlogtarget = {d}/ferroban.log\nsocket = {d}/ferroban.sock\npidfile = {d}/ferroban.pid\ndbfile = {d}/ferroban.sqlite3\n"
        ),
    )
    .unwrap();
    // maxretry is never reached: every line is one more failure, none bans.
    std::fs::write(
        dir.join("jail.conf"),
        format!(
            "[DEFAULT]\nignoreself = false\n\n[web]\nenabled = true\nfilter = web\nlogpath = {d}/access.log\naction = none\nmaxretry = 1000000000\nfindtime = 1d\nmaxfailed = 0\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("access.log"), "").unwrap();
    let mut daemon = Daemon {
        dir: dir.clone(),
        child: None,
    };
    daemon.child = Some(
        Command::new(BIN)
            .args(["server", "-f", "-x", "-c"])
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start ferroban server"),
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while client(&dir, &["status", "web"]).0 != 0 {
        assert!(Instant::now() < deadline, "server did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }

    let now = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::system())
        .strftime("%d/%b/%Y:%H:%M:%S %z")
        .to_string();
    let mut body = String::with_capacity(LINES * 90);
    for i in 0..LINES {
        let ip = format!("2001:db8:{:x}::{:x}", i >> 16, i & 0xffff);
        body.push_str(&format!(
            "{ip} - - [{now}] \"GET /missing/{i} HTTP/1.1\" 404 12 \"-\" \"t\"\n"
        ));
    }
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("access.log"))
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();

    // Ask until everything is counted; keep the counts seen on the way.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let (code, out) = client(&dir, &["status", "web"]);
        assert_eq!(code, 0, "{out}");
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
