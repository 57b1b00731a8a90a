//! Issue 14 end to end: `/metrics` scraped by a real Prometheus (Debian's `prometheus`, scrape
//! interval 1 s), checked by `promtool check metrics`, totals that continue after a restart, and
//! `ferroban top` driven in tmux (the guide's 12 jails, a ban showing within a second, a ban and
//! an unban made with its keys).
//!
//! The daemon runs with the classic fail2ban guide's configuration (the same files as
//! tests/guide.rs, started by ferroban_testkit's `GuideDaemon`) in a private mount and network
//! namespace (`unshare --mount --net`): empty tmpfs `/var/log`, `/var/lib` and `/etc/ufw`, its
//! own loopback, and a `ufw` stand-in that records its arguments — nothing on the host is read,
//! written or firewalled. `/metrics` listens on 127.0.0.1 inside that namespace; Prometheus and
//! curl are started in it with `nsenter --net`. Needs root, util-linux, iproute2, curl,
//! prometheus (with promtool) and tmux.
//!
//! Set FERROBAN_TOP_CAPTURE=PATH to write the 80×24 capture of `top` there (docs/top.txt).

use ferroban_testkit::guide::GUIDE_JAILS;
use ferroban_testkit::guide_daemon::GuideDaemon;
use ferroban_testkit::nginx_now;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_ferroban");
const METRICS_PORT: u16 = 9191;
const PROM_PORT: u16 = 9090;

fn require(programs: &[&str]) {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "tests/metrics_top.rs needs root (private mount and network namespaces); CI runs as root"
    );
    for p in programs {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {p}")])
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            found,
            "this test needs `{p}` (Debian package list in .ci/run)"
        );
    }
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The guide's daemon in its namespaces, plus what the test started (killed by PID on drop,
/// before the daemon).
struct Lab {
    daemon: GuideDaemon,
    others: Vec<Child>,
    tmux: Option<PathBuf>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(sock) = self.tmux.take() {
            let _ = Command::new("tmux")
                .arg("-S")
                .arg(&sock)
                .arg("kill-server")
                .status();
        }
        for mut c in self.others.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let daemon = GuideDaemon::new(BIN, "m14", tag, None);
        // The metrics endpoint (loopback of the daemon's own network namespace) and a database
        // outside the namespace's tmpfs, so that it survives a restart.
        std::fs::write(
            daemon.etc().join("fail2ban.local"),
            format!(
                "[Definition]\nmetrics = 127.0.0.1:{METRICS_PORT}\ndbfile = {}/db.sqlite3\n",
                daemon.dir.display()
            ),
        )
        .unwrap();
        let mut lab = Lab {
            daemon,
            others: Vec::new(),
            tmux: None,
        };
        lab.start();
        lab
    }

    /// Starts the daemon and waits for its metrics endpoint.
    fn start(&mut self) {
        self.daemon.start();
        wait_for("the metrics endpoint", Duration::from_secs(10), || {
            self.scrape().contains("ferroban_jails 12").then_some(())
        });
    }

    fn scrape(&self) -> String {
        let url = format!("http://127.0.0.1:{METRICS_PORT}/metrics");
        self.daemon
            .in_net(&["curl", "-sf", "--max-time", "5", &url])
            .1
    }

    /// Five 404s from `ip` in the guide's access log: nginx-4xx bans it.
    fn five_404s(&self, ip: &str) {
        for i in 0..5 {
            self.daemon.append(
                "/var/log/nginx/access.log",
                &format!(
                    r#"{ip} - - [{}] "GET /missing-{i}.html HTTP/1.1" 404 153 "-" "Mozilla/5.0""#,
                    nginx_now()
                ),
            );
        }
    }

    /// Starts Prometheus in the daemon's network namespace, scraping it every second.
    fn start_prometheus(&mut self) {
        let pdir = self.daemon.dir.join("prometheus");
        std::fs::create_dir_all(&pdir).unwrap();
        std::fs::write(
            pdir.join("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: ferroban\n    static_configs:\n      - targets: ['127.0.0.1:{METRICS_PORT}']\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(pdir.join("prometheus.log")).unwrap();
        let child = Command::new("nsenter")
            .args([
                "-t",
                &self.daemon.pid().to_string(),
                "-n",
                "--",
                "prometheus",
            ])
            .arg(format!("--config.file={}/prometheus.yml", pdir.display()))
            .arg(format!("--storage.tsdb.path={}/data", pdir.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{PROM_PORT}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus");
        self.others.push(child);
    }

    /// A Prometheus API query (`/api/v1/query?query=...`): the `data.result` array.
    fn prom(&self, query: &str) -> Vec<serde_json::Value> {
        let url = format!("http://127.0.0.1:{PROM_PORT}/api/v1/query");
        let (ok, out) = self.daemon.in_net(&[
            "curl",
            "-sf",
            "--max-time",
            "5",
            "--data-urlencode",
            &format!("query={query}"),
            &url,
        ]);
        if !ok {
            return Vec::new();
        }
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }
}

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn prometheus_scrapes_the_daemon_and_totals_survive_a_restart() {
    require(&["unshare", "nsenter", "ip", "curl", "prometheus", "promtool"]);
    let mut lab = Lab::new("prom");

    // promtool's linter finds nothing to say about the exposition.
    let text = lab.scrape();
    let mut lint = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    lint.stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = lint.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics:\n{said}\n---\n{text}"
    );

    lab.start_prometheus();
    // Prometheus has the per-jail series of all 12 jails.
    let jails = wait_for(
        "Prometheus to scrape the 12 jails",
        Duration::from_secs(30),
        || {
            let r = lab.prom("ferroban_jail_bans_total{origin=\"log\"}");
            (r.len() == 12).then_some(r)
        },
    );
    let mut names: Vec<String> = jails
        .iter()
        .map(|s| s["metric"]["jail"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, GUIDE_JAILS);
    for series in [
        "ferroban_jail_failures_current",
        "ferroban_jail_banned_current",
        "ferroban_jail_config_bantime_seconds",
        "ferroban_jail_config_findtime_seconds",
        "ferroban_jail_config_maxretry",
    ] {
        assert_eq!(lab.prom(series).len(), 12, "{series}");
    }
    assert_eq!(
        lab.prom("ferroban_jail_unbans_total").len(),
        48,
        "12 jails x 4 reasons"
    );
    assert!(!lab.prom("ferroban_build_info").is_empty());
    assert!(!lab.prom("process_resident_memory_bytes").is_empty());

    // A ban shows in ferroban_jail_bans_total within two scrapes.
    let t0 = unix_now();
    lab.five_404s("198.51.100.7");
    wait_for("the ufw call for the ban", Duration::from_secs(10), || {
        lab.daemon
            .ufw_calls()
            .contains("198.51.100.7")
            .then_some(())
    });
    let q = "ferroban_jail_bans_total{jail=\"nginx-4xx\",origin=\"log\"}";
    wait_for("the ban in Prometheus", Duration::from_secs(10), || {
        let r = lab.prom(q);
        (r.first()?["value"][1].as_str()? == "1").then_some(())
    });
    // The first stored sample with the ban, by its scrape time stamp.
    let r = lab.prom(&format!("{q}[1m]"));
    let values = r[0]["values"].as_array().unwrap();
    let first = values
        .iter()
        .find(|v| v[1].as_str() == Some("1"))
        .map(|v| v[0].as_f64().unwrap())
        .unwrap();
    let after = first - t0;
    eprintln!("the ban was in a scrape {after:.3} s after its last failure line was written");
    assert!(
        after <= 2.0,
        "the ban reached Prometheus {after:.3} s after the line (two scrapes: 2 s)"
    );
    // Per source: the access log's lines, read by each of its jails.
    let read = lab.prom("ferroban_source_lines_read_total{source=\"/var/log/nginx/access.log\"}");
    assert!(read.len() >= 5, "{read:?}");
    let latency = lab.prom("ferroban_ban_latency_seconds_count{jail=\"nginx-4xx\"}");
    assert_eq!(latency[0]["value"][1].as_str(), Some("1"));

    // Totals continue after a restart.
    let before = lab.scrape();
    let fail_key = "ferroban_jail_failures_total{jail=\"nginx-4xx\"}";
    let ban_key = "ferroban_jail_bans_total{jail=\"nginx-4xx\",origin=\"log\"}";
    let read_key =
        "ferroban_source_lines_read_total{jail=\"nginx-4xx\",source=\"/var/log/nginx/access.log\"}";
    assert_eq!(sample(&before, ban_key), Some(1.0), "{before}");
    let failures = sample(&before, fail_key).unwrap();
    assert!(failures >= 5.0, "{before}");
    let read = sample(&before, read_key).unwrap();
    assert_eq!(read, 5.0, "{before}");
    for mut c in lab.others.drain(..) {
        let _ = c.kill();
        let _ = c.wait();
    }
    lab.daemon.stop();
    lab.start();
    let after = lab.scrape();
    assert_eq!(sample(&after, ban_key), Some(1.0), "{after}");
    assert_eq!(sample(&after, fail_key), Some(failures), "{after}");
    assert_eq!(sample(&after, read_key), Some(read), "{after}");
    assert_eq!(
        sample(
            &after,
            "ferroban_jail_unbans_total{jail=\"nginx-4xx\",reason=\"stop\"}"
        ),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            "ferroban_jail_bans_total{jail=\"nginx-4xx\",origin=\"restored\"}"
        ),
        Some(1.0),
        "{after}"
    );
    // And keep counting.
    lab.five_404s("198.51.100.8");
    wait_for("the second ban", Duration::from_secs(10), || {
        (sample(&lab.scrape(), ban_key) == Some(2.0)).then_some(())
    });
}

/// The pane's text.
fn capture(sock: &PathBuf) -> String {
    let out = Command::new("tmux")
        .arg("-S")
        .arg(sock)
        .args(["capture-pane", "-p", "-t", "top"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn keys(sock: &PathBuf, keys: &[&str]) {
    let ok = Command::new("tmux")
        .arg("-S")
        .arg(sock)
        .args(["send-keys", "-t", "top"])
        .args(keys)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[test]
fn top_in_tmux_shows_the_jails_a_ban_within_a_second_and_unbans_with_its_keys() {
    require(&["unshare", "nsenter", "ip", "curl", "tmux"]);
    let mut lab = Lab::new("top");
    let tsock = lab.daemon.dir.join("tmux.sock");
    lab.tmux = Some(tsock.clone());
    // If top ends, the pane keeps its last words (shown when a wait below times out).
    let cmd = format!(
        "{BIN} top -s {} 2>&1; echo \"top exited: $?\"; sleep 600",
        lab.daemon.sock().display()
    );
    let ok = Command::new("tmux")
        .arg("-S")
        .arg(&tsock)
        .args([
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            "80",
            "-y",
            "24",
            &cmd,
        ])
        .env("TERM", "xterm-256color")
        .status()
        .unwrap()
        .success();
    assert!(ok, "tmux new-session");
    // 80x24: every jail of the guide is on screen.
    let deadline = Instant::now() + Duration::from_secs(10);
    let screen = loop {
        let s = capture(&tsock);
        if GUIDE_JAILS.iter().all(|j| s.contains(j)) {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "top did not show the 12 jails:\n{s}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(screen.lines().count() <= 24, "{screen}");
    assert!(screen.lines().all(|l| l.chars().count() <= 80), "{screen}");

    // A ban appears within a second of the firewall call.
    lab.five_404s("198.51.100.7");
    wait_for("the ufw call for the ban", Duration::from_secs(10), || {
        lab.daemon
            .ufw_calls()
            .contains("198.51.100.7")
            .then_some(())
    });
    let t = Instant::now();
    let screen = wait_for("the ban in top", Duration::from_secs(5), || {
        let s = capture(&tsock);
        s.lines()
            .any(|l| l.contains("BAN") && l.contains("198.51.100.7") && l.contains("nginx-4xx"))
            .then_some(s)
    });
    let took = t.elapsed();
    eprintln!(
        "the ban was on screen {:.3} s after the firewall call",
        took.as_secs_f64()
    );
    assert!(took <= Duration::from_secs(1), "took {took:?}\n{screen}");
    if let Some(path) = std::env::var_os("FERROBAN_TOP_CAPTURE") {
        std::fs::write(path, &screen).unwrap();
    }

    // Select nginx-4xx (third row, by name), unban through the keys with confirmation.
    keys(&tsock, &["Down", "Down"]);
    keys(&tsock, &["u"]);
    wait_for("the unban prompt", Duration::from_secs(5), || {
        capture(&tsock)
            .contains("Unban address in nginx-4xx: 198.51.100.7")
            .then_some(())
    });
    keys(&tsock, &["Enter"]);
    wait_for("the confirmation", Duration::from_secs(5), || {
        capture(&tsock)
            .contains("Unban 198.51.100.7 in jail nginx-4xx? (y/n)")
            .then_some(())
    });
    keys(&tsock, &["y"]);
    wait_for("the unban in top", Duration::from_secs(5), || {
        let s = capture(&tsock);
        s.lines()
            .any(|l| l.contains("UNBAN") && l.contains("198.51.100.7") && l.contains("manual"))
            .then_some(())
    });
    let (_, status) = lab.daemon.client(&["status", "nginx-4xx"]);
    assert!(!status.contains("198.51.100.7"), "{status}");
    assert!(
        lab.daemon.ufw_calls().contains("delete"),
        "{}",
        lab.daemon.ufw_calls()
    );

    // Ban by hand with the keys: `b`, the address, Enter, `y`.
    keys(&tsock, &["b"]);
    keys(&tsock, &["-l", "203.0.113.9"]);
    keys(&tsock, &["Enter"]);
    wait_for("the ban confirmation", Duration::from_secs(5), || {
        capture(&tsock)
            .contains("Ban 203.0.113.9 in jail nginx-4xx? (y/n)")
            .then_some(())
    });
    keys(&tsock, &["y"]);
    wait_for(
        "the manual ban in the daemon",
        Duration::from_secs(5),
        || {
            lab.daemon
                .client(&["status", "nginx-4xx"])
                .1
                .contains("203.0.113.9")
                .then_some(())
        },
    );

    // 200 columns: the wide layout.
    Command::new("tmux")
        .arg("-S")
        .arg(&tsock)
        .args(["resize-window", "-t", "top", "-x", "200", "-y", "50"])
        .status()
        .unwrap();
    wait_for("the wide layout", Duration::from_secs(5), || {
        capture(&tsock).contains("Fail/min 30m").then_some(())
    });

    // --once and --json for scripts.
    let once = Command::new(BIN)
        .args(["top", "--once", "--size", "80x24", "-s"])
        .arg(lab.daemon.sock())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&once.stdout);
    assert!(once.status.success());
    assert!(GUIDE_JAILS.iter().all(|j| text.contains(j)), "{text}");
    assert_eq!(text.lines().count(), 24);
    let json = Command::new(BIN)
        .args(["top", "--json", "-s"])
        .arg(lab.daemon.sock())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["jails"].as_array().unwrap().len(), 12);
    assert!(
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == "203.0.113.9" && e["why"] == "manual")
    );
}
