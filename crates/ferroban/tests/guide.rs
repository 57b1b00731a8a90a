//! The classic fail2ban guide's configuration, copied verbatim, runs (issue 5): its `jail.local`
//! and `jail.d/custom.conf` load on a machine without fail2ban (ferroban's embedded filters and
//! actions) and on a machine with fail2ban's tree (its files, ours for the filters it lacks:
//! nginx-4xx, nginx-badbots, nginx-noscript, nginx-404, nginx-forbidden, nginx-sslerror, ufw,
//! fastapi-auth); the guide's loop over `fail2ban-client status` prints every jail; failures in
//! the guide's logs ban, and the log shows Ban and Unban.
//!
//! The guide's paths (`/var/log/nginx/access.log`, `/var/log/ufw.log`, ...) are used as written:
//! the daemon runs in a private mount namespace whose `/var/log` and `/var/lib` are empty tmpfs
//! mounts (`unshare --mount --net`, with `/etc/ufw` an empty tmpfs and a network namespace of
//! its own), so nothing on the host is read or written. `banaction = ufw`:
//! the `ufw` the daemon finds first on its PATH is a stand-in that records its arguments (the
//! real ufw backend is tested in network namespaces, tests/firewall_netns.rs). Needs root and
//! util-linux's unshare/nsenter.

use ferroban_testkit::f2b_root;
use ferroban_testkit::guide::{CUSTOM_CONF, GUIDE_JAILS, JAIL_LOCAL};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ferroban");

struct Setup {
    dir: PathBuf,
    child: Option<Child>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn require_root() {
    assert!(
        unsafe_geteuid_is_root(),
        "tests/guide.rs needs root (a private mount namespace); CI runs as root"
    );
}

fn unsafe_geteuid_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

impl Setup {
    /// `with_fail2ban`: the configuration dir is a copy of fail2ban's tree plus the guide's files;
    /// otherwise it holds only the guide's two files (ferroban's embedded defaults do the rest).
    fn new(tag: &str, with_fail2ban: bool) -> Setup {
        let dir = std::env::temp_dir().join(format!("ferroban-guide-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let etc = dir.join("etc");
        std::fs::create_dir_all(etc.join("jail.d")).unwrap();
        if with_fail2ban {
            let src = f2b_root().join("etc/fail2ban");
            let ok = Command::new("cp")
                .args([
                    "-a",
                    &format!("{}/.", src.display()),
                    &etc.display().to_string(),
                ])
                .status()
                .unwrap()
                .success();
            assert!(ok);
        }
        std::fs::write(etc.join("jail.local"), JAIL_LOCAL).unwrap();
        std::fs::write(etc.join("jail.d/custom.conf"), CUSTOM_CONF).unwrap();
        // The test's environment, not the guide's: where the daemon keeps its socket and pid.
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(
            bin.join("ufw"),
            // Answers like an enabled ufw; records every call.
            format!(
                "#!/bin/sh\necho \"ufw $*\" >> {}/ufw.calls\ncase \"$1\" in status) echo 'Status: active';; esac\nexit 0\n",
                dir.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join("ufw"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(BIN, bin.join("fail2ban-client")).unwrap();
        let mut me = Setup { dir, child: None };
        me.start();
        me
    }

    fn start(&mut self) {
        let d = self.dir.display();
        // A private mount namespace: fresh /var/log and /var/lib for the daemon only.
        let script = format!(
            "mount -t tmpfs ferroban-guide-log /var/log && mount -t tmpfs ferroban-guide-lib /var/lib \
             && mount -t tmpfs ferroban-guide-ufw /etc/ufw \
             && mkdir -p /var/log/nginx /var/log/fastapi \
             && exec {BIN} server -f -x -c {d}/etc -s {d}/ferroban.sock -p {d}/ferroban.pid"
        );
        let child = Command::new("unshare")
            // A private network namespace too: whatever a firewall command does stays there, and
            // /etc/ufw is an empty tmpfs: the host's ufw rules files are never written.
            .args([
                "--mount",
                "--net",
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
            ])
            .env("PATH", format!("{d}/bin:/usr/sbin:/usr/bin:/sbin:/bin"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("unshare");
        self.child = Some(child);
        wait_for("the server", Duration::from_secs(20), || {
            self.client(&["ping"]).0 == 0
        });
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Runs `sh -c script` inside the daemon's mount namespace.
    fn in_ns(&self, script: &str) -> String {
        let out = Command::new("nsenter")
            .args(["-t", &self.pid().to_string(), "-m", "sh", "-c", script])
            .output()
            .expect("nsenter");
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn append(&self, path: &str, line: &str) {
        let mut child = Command::new("nsenter")
            .args([
                "-t",
                &self.pid().to_string(),
                "-m",
                "sh",
                "-c",
                &format!("cat >> {path}"),
            ])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.as_mut().unwrap(), "{line}").unwrap();
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success());
    }

    fn client(&self, args: &[&str]) -> (i32, String) {
        let out = Command::new(self.dir.join("bin/fail2ban-client"))
            .arg("-s")
            .arg(self.dir.join("ferroban.sock"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    fn ufw_calls(&self) -> String {
        std::fs::read_to_string(self.dir.join("ufw.calls")).unwrap_or_default()
    }
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn now_nginx() -> String {
    jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::system())
        .strftime("%d/%b/%Y:%H:%M:%S %z")
        .to_string()
}

fn run_guide(tag: &str, with_fail2ban: bool) {
    require_root();
    let s = Setup::new(tag, with_fail2ban);
    let (code, status) = s.client(&["status"]);
    assert_eq!(code, 0, "{status}");
    let expected = GUIDE_JAILS;
    assert!(
        status.contains(&format!("Number of jail:\t{}", expected.len())),
        "{status}\n(log: {})",
        s.in_ns("cat /var/log/ferroban.log /var/log/fail2ban.log 2>/dev/null | tail -40")
    );
    // The guide's loop.
    let lp = format!(
        "PATH={d}/bin:$PATH; for jail in $(fail2ban-client -s {d}/ferroban.sock status | grep 'Jail list:' | sed 's/.*://;s/,//g'); do fail2ban-client -s {d}/ferroban.sock status $jail; done",
        d = s.dir.display()
    );
    let out = Command::new("sh").args(["-c", &lp]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for j in &expected {
        assert!(
            text.contains(&format!("Status for the jail: {j}\n")),
            "the loop did not print {j}:\n{text}"
        );
    }
    assert_eq!(
        text.matches("Banned IP list:").count(),
        expected.len(),
        "{text}"
    );

    // 404s in the guide's access log ban through ufw. (jail.local is read after
    // jail.d/custom.conf, so its [DEFAULT] maxretry = 5 wins over custom.conf's 1, as in
    // fail2ban: nginx-4xx bans at the fifth.)
    for i in 0..5 {
        s.append(
            "/var/log/nginx/access.log",
            &format!(
                r#"198.51.100.7 - - [{}] "GET /missing-{i}.html HTTP/1.1" 404 153 "-" "Mozilla/5.0""#,
                now_nginx()
            ),
        );
    }
    wait_for(
        "a ufw call for 198.51.100.7",
        Duration::from_secs(10),
        || s.ufw_calls().contains("198.51.100.7"),
    );
    let log_path = if with_fail2ban {
        "/var/log/fail2ban.log"
    } else {
        "/var/log/ferroban.log"
    };
    let log = s.in_ns(&format!("cat {log_path}"));
    assert!(log.contains("] Ban 198.51.100.7"), "{log}");
    // ignoreip from custom.conf wins.
    s.append(
        "/var/log/nginx/access.log",
        &format!(
            r#"192.168.1.20 - - [{}] "GET /nope HTTP/1.1" 404 153 "-" "curl/8""#,
            now_nginx()
        ),
    );
    // Unban by hand: the log shows it.
    let (code, _) = s.client(&["unban", "198.51.100.7"]);
    assert_eq!(code, 0);
    wait_for("the Unban line", Duration::from_secs(10), || {
        s.in_ns(&format!("cat {log_path}"))
            .contains("] Unban 198.51.100.7")
    });
    let log = s.in_ns(&format!("cat {log_path}"));
    assert!(!log.contains("Ban 192.168.1.20"), "{log}");
    assert!(log.contains("Ignore 192.168.1.20"), "{log}");
}

#[test]
fn the_guides_files_run_without_fail2ban_installed() {
    run_guide("plain", false);
}

#[test]
fn the_guides_files_run_over_fail2bans_tree() {
    run_guide("f2b", true);
}
