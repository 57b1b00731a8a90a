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
//! its own: ferroban_testkit's `GuideDaemon`), so nothing on the host is read or written.
//! `banaction = ufw`: the `ufw` the daemon finds first on its PATH is a stand-in that records its
//! arguments (the real ufw backend is tested in network namespaces, tests/firewall_netns.rs).
//! Needs root, util-linux's unshare/nsenter and iproute2's ip.

use ferroban_testkit::f2b_root;
use ferroban_testkit::guide::GUIDE_JAILS;
use ferroban_testkit::guide_daemon::GuideDaemon;
use ferroban_testkit::{nginx_now, wait_for};
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_ferroban");

fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "tests/guide.rs needs root (a private mount namespace); CI runs as root"
    );
}

/// `with_fail2ban`: the configuration dir is a copy of fail2ban's tree plus the guide's files;
/// otherwise it holds only the guide's two files (ferroban's embedded defaults do the rest).
fn setup(tag: &str, with_fail2ban: bool) -> GuideDaemon {
    let base = with_fail2ban.then(|| f2b_root().join("etc/fail2ban"));
    let mut s = GuideDaemon::new(BIN, "guide", tag, base.as_deref());
    s.start();
    s
}

fn run_guide(tag: &str, with_fail2ban: bool) {
    require_root();
    let s = setup(tag, with_fail2ban);
    let (code, status) = s.fail2ban_client(&["status"]);
    assert_eq!(code, 0, "{status}");
    let expected = GUIDE_JAILS;
    assert!(
        status.contains(&format!("Number of jail:\t{}", expected.len())),
        "{status}\n(log: {})",
        s.in_mount("cat /var/log/ferroban.log /var/log/fail2ban.log 2>/dev/null | tail -40")
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
                nginx_now()
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
    let log = s.in_mount(&format!("cat {log_path}"));
    assert!(log.contains("] Ban 198.51.100.7"), "{log}");
    // ignoreip from custom.conf wins.
    s.append(
        "/var/log/nginx/access.log",
        &format!(
            r#"192.168.1.20 - - [{}] "GET /nope HTTP/1.1" 404 153 "-" "curl/8""#,
            nginx_now()
        ),
    );
    // Unban by hand: the log shows it.
    let (code, _) = s.fail2ban_client(&["unban", "198.51.100.7"]);
    assert_eq!(code, 0);
    wait_for("the Unban line", Duration::from_secs(10), || {
        s.in_mount(&format!("cat {log_path}"))
            .contains("] Unban 198.51.100.7")
    });
    let log = s.in_mount(&format!("cat {log_path}"));
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
