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
use std::path::Path;
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

/// `fail2ban_tree`: the configuration dir is a copy of that fail2ban tree (the `etc/fail2ban`
/// of an unpacked package) plus the guide's files; without one it holds only the guide's two
/// files (ferroban's embedded defaults do the rest).
fn setup(tag: &str, fail2ban_tree: Option<&Path>) -> GuideDaemon {
    let base = fail2ban_tree.map(|root| root.join("etc/fail2ban"));
    let mut s = GuideDaemon::new(BIN, "guide", tag, base.as_deref());
    s.start();
    s
}

fn run_guide(tag: &str, fail2ban_tree: Option<&Path>) {
    require_root();
    let with_fail2ban = fail2ban_tree.is_some();
    let s = setup(tag, fail2ban_tree);
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

    // The ban action: the guide's `banaction = ufw`, unless the tree overrides it the way
    // fail2ban itself resolves it. Debian 13's fail2ban 1.1.x ships jail.d/defaults-debian.conf
    // with `[DEFAULT] banaction = nftables`, read after the guide's jail.d/custom.conf
    // (alphabetical order), so there the guide's jails ban with nftables; fail2ban's own
    // client (`-d`) on the same directory is the judge.
    let action = match fail2ban_tree {
        Some(root) => reference_action(root, &s.etc()),
        None => "ufw".to_string(),
    };
    eprintln!("{tag}: the guide's jails ban through {action}");
    // 404s in the guide's access log ban through that action. (jail.local is read after
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
    let log_path = if with_fail2ban {
        "/var/log/fail2ban.log"
    } else {
        "/var/log/ferroban.log"
    };
    let enforced = || match action.as_str() {
        "ufw" => s.ufw_calls(),
        // the daemon's network namespace: its nftables set
        "nftables" => s.in_net(&["nft", "list", "ruleset"]).1,
        other => panic!("the guide test knows no ban action {other:?}"),
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !enforced().contains("198.51.100.7") {
        assert!(
            std::time::Instant::now() < deadline,
            "198.51.100.7 not banned through {action} in 10 s; it holds:\n{}\nlog:\n{}",
            enforced(),
            s.in_mount(&format!(
                "grep -v -e ' Found ' -e ' Creating new' {log_path} | tail -60"
            ))
        );
        std::thread::sleep(Duration::from_millis(10));
    }
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

/// The ban action fail2ban's own client (the reference at `root`) gives the stock jail
/// `nginx-http-auth` of the configuration at `etc`: every guide jail takes its ban action from
/// `[DEFAULT]`, and this one's filter exists in every fail2ban tree (the reference skips the
/// jails whose filters only ferroban ships).
fn reference_action(root: &Path, etc: &Path) -> String {
    let (actions, stderr) = ferroban_testkit::f2b_dump_actions(root, etc);
    actions
        .into_iter()
        .find_map(|(jail, action)| (jail == "nginx-http-auth").then_some(action))
        .unwrap_or_else(|| {
            panic!(
                "{} -d gave no action for nginx-http-auth:\n{stderr}",
                root.display()
            )
        })
}

#[test]
fn the_guides_files_run_without_fail2ban_installed() {
    run_guide("plain", None);
}

#[test]
fn the_guides_files_run_over_fail2bans_tree() {
    run_guide("f2b", Some(&f2b_root()));
}

#[test]
fn the_guides_files_run_over_fail2ban_1_1_0s_tree() {
    run_guide("f2b110", Some(&ferroban_testkit::f2b_newer_root("1.1.0")));
}

#[test]
fn the_guides_files_run_over_fail2ban_1_1_1s_tree() {
    run_guide("f2b111", Some(&ferroban_testkit::f2b_newer_root("1.1.1")));
}
