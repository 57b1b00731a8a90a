//! The daemon end to end, without a firewall: `ferroban server -f` in a scratch configuration
//! tree whose action appends what it is asked to do to a file; log lines appended by the test;
//! `ferroban client` asked about it. (Firewall bans are tested in network namespaces, in
//! e2e_nginx.rs.)

#[path = "../../source/tests/journal_common/mod.rs"]
mod journal_common;

use std::process::Command;
use std::time::{Duration, Instant};

use ferroban_testkit::{Tree, access_line, f2b_root};

const BIN: &str = env!("CARGO_BIN_EXE_ferroban");

const FILTER: &str = r#"[Definition]
failregex = ^<HOST> -.* "(GET|POST).* HTTP/.*" (404|403)
            ^\s*auth failure for user <F-USER>.+</F-USER> from <HOST>$
ignoreregex =
"#;

const ACTION: &str = r#"[Definition]
actionstart = echo "start <name>" >> %(out)s
actionstop = echo "stop <name>" >> %(out)s
actionban = echo "ban <ip> user=<F-USER> failures=<failures> restored=<restored>" >> %(out)s
actionunban = echo "unban <ip>" >> %(out)s
[Init]
out = /dev/null
"#;

struct Daemon(Tree);

impl std::ops::Deref for Daemon {
    type Target = Tree;
    fn deref(&self) -> &Tree {
        &self.0
    }
}

impl Daemon {
    /// A tree with jail `web` reading `access.log`; `extra` goes into the jail's section.
    fn new(tag: &str, extra: &str) -> Daemon {
        Daemon::with_files(tag, extra, &[])
    }

    /// [`Daemon::new`] with these files (name, text) written into the tree before the start.
    fn with_files(tag: &str, extra: &str, files: &[(&str, &str)]) -> Daemon {
        let t = Tree::new(BIN, "daemon", tag, "INFO");
        for (name, text) in files {
            t.write(name, text);
        }
        let d = t.dir.display().to_string();
        t.write("filter.d/web.conf", FILTER);
        t.write("action.d/record.conf", ACTION);
        t.write(
            "jail.conf",
            &format!(
                "[DEFAULT]\nbantime = 1h\nfindtime = 10m\nmaxretry = 3\nignoreself = false\n\n[web]\nenabled = true\nfilter = web\nlogpath = {d}/access.log\naction = record[out=\"{d}/actions.out\"]\n{extra}\n"
            ),
        );
        t.write("access.log", "");
        let mut me = Daemon(t);
        me.start();
        me
    }

    fn start(&mut self) {
        self.0.spawn();
    }

    fn kill9(&mut self) {
        self.0.kill9();
    }

    fn stop(&mut self) {
        self.0.stop();
    }

    fn client(&self, args: &[&str]) -> (i32, String, String) {
        let o = self.0.client(args);
        (o.code, o.stdout, o.stderr)
    }

    fn append(&self, lines: &[String]) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        self.0.append("access.log", &text);
    }

    fn actions(&self) -> String {
        self.read("actions.out")
    }
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn count(hay: &str, needle: &str) -> usize {
    hay.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn bans_after_maxretry_restores_after_kill9_and_unbans_by_hand() {
    let mut d = Daemon::new("main", "");
    wait_for("actionstart", Duration::from_secs(5), || {
        d.actions().contains("start web")
    });
    d.append(&[
        access_line("198.51.100.7", "/a"),
        access_line("198.51.100.7", "/b"),
    ]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !d.actions().contains("ban 198.51.100.7"),
        "banned too early"
    );
    let t0 = Instant::now();
    d.append(&[access_line("198.51.100.7", "/c")]);
    wait_for("the ban action", Duration::from_secs(5), || {
        d.actions().contains("ban 198.51.100.7 ")
    });
    eprintln!("line to ban action: {:?}", t0.elapsed());
    assert!(
        d.actions()
            .contains("ban 198.51.100.7 user= failures=3 restored=0"),
        "{}",
        d.actions()
    );
    let log = d.log();
    assert_eq!(count(&log, "[web] Found 198.51.100.7"), 3, "{log}");
    assert_eq!(count(&log, "NOTICE  [web] Ban 198.51.100.7"), 1, "{log}");

    let (code, out, _) = d.client(&["status", "web"]);
    assert_eq!(code, 0);
    assert!(out.contains("Status for the jail: web"), "{out}");
    assert!(out.contains("198.51.100.7"), "{out}");
    let (_, out, _) = d.client(&["status"]);
    assert!(out.contains("Jail list:\tweb"), "{out}");
    let (code, out, _) = d.client(&["--json", "status", "web"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("--json prints JSON");
    assert!(out.contains("198.51.100.7"), "{v}");
    let (_, out, _) = d.client(&["banned", "198.51.100.7"]);
    assert!(out.contains("web"), "{out}");

    // kill -9, restart: the ban is restored from the store, not re-made from old lines.
    d.kill9();
    d.start();
    wait_for("the restored ban", Duration::from_secs(5), || {
        d.actions().contains("restored=1")
    });
    std::thread::sleep(Duration::from_millis(300));
    let log = d.log();
    assert_eq!(
        count(&log, "NOTICE  [web] Restore Ban 198.51.100.7"),
        1,
        "{log}"
    );
    assert_eq!(
        count(&log, "NOTICE  [web] Ban 198.51.100.7"),
        1,
        "re-banned from old lines: {log}"
    );
    assert_eq!(
        count(&log, "[web] Found 198.51.100.7"),
        3,
        "old lines re-read: {log}"
    );
    let (_, out, _) = d.client(&["status", "web"]);
    assert!(out.contains("198.51.100.7"), "{out}");

    // Unban by hand.
    let (code, out, err) = d.client(&["set", "web", "unbanip", "198.51.100.7"]);
    assert_eq!(code, 0, "{out}{err}");
    wait_for("the unban action", Duration::from_secs(5), || {
        d.actions().contains("unban 198.51.100.7")
    });
    let (_, out, _) = d.client(&["get", "web", "banned"]);
    assert!(!out.contains("198.51.100.7"), "{out}");
    d.stop();
    assert!(d.actions().contains("stop web"));
    assert!(!d.path("ferroban.sock").exists(), "socket left behind");
}

#[test]
fn short_bantime_expires_by_itself() {
    let d = Daemon::new("expire", "bantime = 1\nmaxretry = 1");
    d.append(&[access_line("203.0.113.9", "/x")]);
    wait_for("ban", Duration::from_secs(5), || {
        d.actions().contains("ban 203.0.113.9")
    });
    wait_for("unban after 1 s", Duration::from_secs(5), || {
        d.actions().contains("unban 203.0.113.9")
    });
    assert!(d.log().contains("NOTICE  [web] Unban 203.0.113.9"));
}

#[test]
fn hostile_user_names_never_reach_a_shell() {
    let d = Daemon::new("hostile", "maxretry = 1");
    let marker = d.path("pwned");
    let m = marker.display();
    for evil in [
        format!("$(touch {m})"),
        format!("`touch {m}`"),
        format!("x; touch {m}"),
        format!("x' ; touch {m}; echo '"),
        format!("x\" && touch {m} && echo \""),
        format!("x | touch {m}"),
    ] {
        d.append(&[format!("auth failure for user {evil} from 192.0.2.77")]);
        wait_for("ban", Duration::from_secs(5), || {
            d.actions().contains("ban 192.0.2.77")
        });
        let (code, _, _) = d.client(&["set", "web", "unbanip", "192.0.2.77"]);
        assert_eq!(code, 0);
        wait_for("unban", Duration::from_secs(5), || {
            d.actions().contains("unban 192.0.2.77")
        });
        std::fs::write(d.path("actions.out"), "").unwrap();
    }
    assert!(!marker.exists(), "a crafted user name executed a command");
}

#[test]
fn rotation_by_rename_loses_nothing_and_counts_nothing_twice() {
    let d = Daemon::new("rotate", "maxretry = 4");
    d.append(&[
        access_line("198.51.100.20", "/1"),
        access_line("198.51.100.20", "/2"),
    ]);
    wait_for("two failures", Duration::from_secs(5), || {
        count(&d.log(), "Found 198.51.100.20") == 2
    });
    std::fs::rename(d.path("access.log"), d.path("access.log.1")).unwrap();
    std::fs::write(d.path("access.log"), "").unwrap();
    d.append(&[
        access_line("198.51.100.20", "/3"),
        access_line("198.51.100.20", "/4"),
    ]);
    wait_for("ban after rotation", Duration::from_secs(5), || {
        d.actions().contains("ban 198.51.100.20")
    });
    assert_eq!(count(&d.log(), "Found 198.51.100.20"), 4, "{}", d.log());
}

#[test]
fn a_broken_jail_does_not_stop_the_others_and_missing_logs_are_waited_for() {
    let mut d = Daemon::new(
        "broken",
        "\n[bad]\nenabled = true\nfilter = does-not-exist\nlogpath = /nonexistent\n\n[later]\nenabled = true\nfilter = web\nmaxretry = 1\nlogpath = %(here)s/later.log\naction = record[out=\"%(here)s/later.out\"]\nhere = PLACEHOLDER\n",
    );
    // Rewrite the placeholder with the real directory and reload.
    let conf = std::fs::read_to_string(d.path("jail.conf"))
        .unwrap()
        .replace("PLACEHOLDER", &d.dir.display().to_string());
    std::fs::write(d.path("jail.conf"), conf).unwrap();
    let (code, _, _) = d.client(&["reload"]);
    assert_eq!(code, 0);
    wait_for("both good jails", Duration::from_secs(5), || {
        d.client(&["status"]).1.contains("later, web")
    });
    assert!(d.log().contains("bad"), "the broken jail is reported");
    // `later.log` does not exist yet: created now, it is picked up.
    std::fs::write(
        d.path("later.log"),
        access_line("192.0.2.5", "/nope") + "\n",
    )
    .unwrap();
    let later_out = d.path("later.out");
    wait_for("ban in the late log", Duration::from_secs(5), || {
        std::fs::read_to_string(&later_out)
            .unwrap_or_default()
            .contains("ban 192.0.2.5")
    });
    d.stop();
}

/// The reference's filter.d (recidive.conf and the common.conf it includes), at test time
/// (ferroban_testkit's `f2b_root`, which fails the test when the reference is missing).
fn reference_filter(name: &str) -> String {
    let path = f2b_root().join("etc/fail2ban/filter.d").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn recidive_bans_repeat_offenders_from_our_own_log() {
    let recidive = reference_filter("recidive.conf");
    let common = reference_filter("common.conf");
    let mut d = Daemon::new("recidive", "maxretry = 1\nbantime = 1");
    std::fs::write(d.path("filter.d/recidive.conf"), recidive).unwrap();
    std::fs::write(d.path("filter.d/common.conf"), common).unwrap();
    let dir = d.dir.display().to_string();
    let mut conf = std::fs::read_to_string(d.path("jail.conf")).unwrap();
    conf.push_str(&format!(
        "\n[recidive]\nenabled = true\nfilter = recidive\nlogpath = {dir}/ferroban.log\nmaxretry = 2\nfindtime = 1d\nbantime = 1w\naction = record[out=\"{dir}/recidive.out\"]\n"
    ));
    std::fs::write(d.path("jail.conf"), conf).unwrap();
    d.stop();
    d.start();
    let recidive_out = d.path("recidive.out");
    for round in 1..=2 {
        d.append(&[access_line("192.0.2.99", &format!("/r{round}"))]);
        wait_for("the web jail's unban", Duration::from_secs(5), || {
            count(&d.actions(), "unban 192.0.2.99") == round
        });
    }
    wait_for("recidive's ban", Duration::from_secs(5), || {
        std::fs::read_to_string(&recidive_out)
            .unwrap_or_default()
            .contains("ban 192.0.2.99")
    });
    let log = d.log();
    assert!(log.contains("NOTICE  [recidive] Ban 192.0.2.99"), "{log}");
    // recidive does not count its own bans.
    assert_eq!(count(&log, "[recidive] Found 192.0.2.99"), 2, "{log}");
}

/// `kill -SIG` the server.
fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

#[test]
fn sighup_reloads_sigusr1_reopens_the_log_and_background_mode_detaches() {
    let mut d = Daemon::new("signals", "");
    let pid = d.pid().expect("the daemon runs");
    // SIGHUP: a jail added to the configuration starts.
    let dir = d.dir.display().to_string();
    let mut conf = std::fs::read_to_string(d.path("jail.conf")).unwrap();
    conf.push_str(&format!(
        "\n[second]\nenabled = true\nfilter = web\nlogpath = {dir}/second.log\naction =\n"
    ));
    std::fs::write(d.path("jail.conf"), conf).unwrap();
    signal(pid, "HUP");
    wait_for("the new jail after SIGHUP", Duration::from_secs(5), || {
        d.client(&["status"]).1.contains("second, web")
    });
    // SIGUSR1: logrotate moved the log away; the daemon writes a new one.
    std::fs::rename(d.path("ferroban.log"), d.path("ferroban.log.1")).unwrap();
    signal(pid, "USR1");
    wait_for("a new log file", Duration::from_secs(5), || {
        d.path("ferroban.log").exists()
    });
    d.append(&[access_line("198.51.100.50", "/after-rotate")]);
    wait_for(
        "the Found line in the new log",
        Duration::from_secs(5),
        || d.log().contains("Found 198.51.100.50"),
    );
    d.stop();

    // Without -f the server goes to the background and the command returns once it answers.
    let out = Command::new(BIN)
        .args(["server", "-x", "-c"])
        .arg(&d.dir)
        .output()
        .expect("ferroban server (background)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, _, _) = d.client(&["ping"]);
    assert_eq!(code, 0, "the background server answers");
    let (code, out, _) = d.client(&["stop"]);
    assert_eq!(code, 0, "{out}");
    wait_for(
        "the background server to exit",
        Duration::from_secs(10),
        || !d.path("ferroban.sock").exists(),
    );
}

/// A failed password of `ip`, logged to the journal by sshd process `pid` (one connection each).
fn sshd_failure(ip: &str, pid: u32) -> (&'static str, u32, String) {
    (
        "sshd",
        pid,
        format!(
            "Failed password for root from {ip} port {} ssh2",
            40000 + pid
        ),
    )
}

/// The sshd jail on the systemd journal: `backend = systemd[journalpath=DIR]`, ferroban's own
/// sshd filter, entries with sshd's fields (SYSLOG_IDENTIFIER, _PID, _COMM, _SYSTEMD_UNIT,
/// MESSAGE) written into DIR by systemd-journal-remote while the daemon follows it.
#[test]
fn sshd_jail_bans_from_the_journal_and_resumes_at_its_cursor() {
    let jdir = std::env::temp_dir().join(format!("ferroban-daemon-journal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&jdir);
    std::fs::create_dir_all(&jdir).unwrap();
    let mut w = journal_common::Writer::start(&jdir);
    // Logged before the daemon starts, within findtime: read back at the first start.
    w.send(&[
        sshd_failure("192.0.2.10", 1000),
        ("cron", 5, "(root) CMD (true)".into()),
    ]);
    let out = jdir.join("actions.out");
    let mut d = Daemon::new(
        "journal",
        &format!(
            "\n[sshd]\nenabled = true\nfilter = sshd\nbackend = systemd[journalpath={}]\naction = record[out=\"{}\"]\n",
            jdir.display(),
            out.display()
        ),
    );
    let live = "[sshd] Jail is in operation now (process new journal entries)";
    wait_for("the jail to catch up", Duration::from_secs(10), || {
        d.log().contains(live)
    });
    let log = d.log();
    assert!(log.contains("Jail 'sshd' uses systemd {}"), "{log}");
    assert!(
        log.contains("[sshd] Added journal match for: '_SYSTEMD_UNIT=sshd.service"),
        "{log}"
    );
    // The entry logged before the start is read back (if journalctl had to be restarted
    // because the journal was still being written, a moment after "in operation").
    wait_for(
        "the failure logged before the start",
        Duration::from_secs(10),
        || count(&d.log(), "[sshd] Found 192.0.2.10") == 1,
    );
    let (code, status, _) = d.client(&["status", "sshd"]);
    assert_eq!(code, 0);
    assert!(status.contains("Journal matches"), "{status}");
    let actions = || std::fs::read_to_string(&out).unwrap_or_default();
    // Two more failures: banned with three.
    let t0 = Instant::now();
    w.send(&[
        sshd_failure("192.0.2.10", 1001),
        sshd_failure("192.0.2.10", 1002),
    ]);
    wait_for("the ban", Duration::from_secs(10), || {
        actions().contains("ban 192.0.2.10 ")
    });
    eprintln!("journal entry to ban action: {:?}", t0.elapsed());
    assert_eq!(
        count(&actions(), "failures=3 restored=0"),
        1,
        "{}",
        actions()
    );
    // Another address: two failures, then the daemon stops (its cursor is stored).
    w.send(&[
        sshd_failure("198.51.100.20", 2000),
        sshd_failure("198.51.100.20", 2001),
    ]);
    wait_for("two failures", Duration::from_secs(10), || {
        count(&d.log(), "[sshd] Found 198.51.100.20") == 2
    });
    d.stop();
    // Logged while the daemon is down: read after the restart (no gap).
    w.send(&[sshd_failure("198.51.100.20", 2002)]);
    d.start();
    wait_for(
        "the catch-up after the restart",
        Duration::from_secs(10),
        || {
            let log = d.log();
            count(&log, live) == 2 && count(&log, "[sshd] Found 198.51.100.20") == 3
        },
    );
    std::thread::sleep(Duration::from_millis(300));
    let log = d.log();
    // Nothing read twice: one Found per entry, no second ban of the first address.
    assert_eq!(count(&log, "[sshd] Found 192.0.2.10"), 3, "{log}");
    assert_eq!(count(&log, "NOTICE  [sshd] Ban 192.0.2.10"), 1, "{log}");
    assert_eq!(
        count(&log, "NOTICE  [sshd] Restore Ban 192.0.2.10"),
        1,
        "{log}"
    );
    // Failures counted before the stop are not kept across it (nor by fail2ban): the entry
    // logged while down counts once, two more make the ban.
    assert!(!actions().contains("ban 198.51.100.20"), "{}", actions());
    w.send(&[
        sshd_failure("198.51.100.20", 2003),
        sshd_failure("198.51.100.20", 2004),
    ]);
    wait_for("the second ban", Duration::from_secs(10), || {
        actions()
            .lines()
            .any(|l| l.starts_with("ban 198.51.100.20 ") && l.ends_with("failures=3 restored=0"))
    });
    let (_, status, _) = d.client(&["status", "sshd"]);
    assert!(
        status.contains("192.0.2.10") && status.contains("198.51.100.20"),
        "{status}"
    );
    d.stop();
    w.finish();
    let _ = std::fs::remove_dir_all(&jdir);
}

/// The journal matches of a running systemd jail, changed at run time (`set <JAIL>
/// addjournalmatch|deljournalmatch`, `get <JAIL> journalmatch`), change which entries it reads,
/// as fail2ban's journal filter does: a match group's terms must all hold (different fields),
/// groups are alternatives (`+` separates them in one command), a group is deleted by its exact
/// words, and the reader goes on from where it was (entries before the change are not read
/// again, nor read for the first time).
#[test]
fn journal_matches_changed_at_run_time_change_what_a_systemd_jail_reads() {
    let jdir = std::env::temp_dir().join(format!(
        "ferroban-daemon-journalmatch-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&jdir);
    std::fs::create_dir_all(&jdir).unwrap();
    let mut w = journal_common::Writer::start(&jdir);
    let d = Daemon::with_files(
        "journalmatch",
        &format!(
            "\n[jm]\nenabled = true\nfilter = jm\nmaxretry = 100\nbackend = systemd[journalpath={}]\n",
            jdir.display()
        ),
        &[(
            "filter.d/jm.conf",
            "[Definition]\nfailregex = Failed password for \\S+ from <HOST>\njournalmatch = _SYSTEMD_UNIT=sshd.service\n",
        )],
    );
    let live = "[jm] Jail is in operation now (process new journal entries)";
    wait_for(
        "the jail to read the journal",
        Duration::from_secs(10),
        || d.log().contains(live),
    );
    // A failure of `ident` (process `pid`) from `ip`.
    let failure = |ident: &'static str, pid: u32, ip: &str| {
        (
            ident,
            pid,
            format!("Failed password for root from {ip} port 22 ssh2"),
        )
    };
    let found = |ip: &str| count(&d.log(), &format!("[jm] Found {ip} "));
    let matches = || {
        let (code, out, err) = d.client(&["--json", "get", "jm", "journalmatch"]);
        assert_eq!(code, 0, "{out}{err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("--json prints JSON");
        v["journalmatch"].clone()
    };
    let set = |words: &[&str]| {
        let mut argv = vec!["--json", "set", "jm"];
        argv.extend_from_slice(words);
        d.client(&argv)
    };
    // Sends `entries` and a last sshd failure of `marker`, and waits until that is read: the
    // entries before it have been read or skipped by then.
    let mut send_then = |mut entries: Vec<(&'static str, u32, String)>, marker: &str| {
        let before = found(marker);
        entries.push(failure("sshd", 1, marker));
        w.send(&entries);
        wait_for(
            &format!("the marker {marker}"),
            Duration::from_secs(10),
            || found(marker) == before + 1,
        );
    };

    // The filter's match: sshd.service only.
    assert_eq!(
        matches(),
        serde_json::json!([["_SYSTEMD_UNIT=sshd.service"]])
    );
    send_then(
        vec![
            failure("sshd", 2, "192.0.2.1"),
            failure("dropbear", 3, "192.0.2.2"),
        ],
        "198.51.100.1",
    );
    assert_eq!(found("192.0.2.1"), 1);
    assert_eq!(found("192.0.2.2"), 0, "{}", d.log());

    // A second group: dropbear.service's entries are read from now on, not those before.
    let (code, out, err) = set(&["addjournalmatch", "_SYSTEMD_UNIT=dropbear.service"]);
    assert_eq!(code, 0, "{out}{err}");
    let both = serde_json::json!([
        ["_SYSTEMD_UNIT=sshd.service"],
        ["_SYSTEMD_UNIT=dropbear.service"]
    ]);
    assert!(out.contains("dropbear.service"), "{out}");
    assert_eq!(matches(), both);
    send_then(vec![failure("dropbear", 4, "192.0.2.3")], "198.51.100.2");
    assert_eq!(found("192.0.2.3"), 1, "{}", d.log());
    // Nothing read twice or read late.
    assert_eq!(found("192.0.2.1"), 1, "{}", d.log());
    assert_eq!(found("192.0.2.2"), 0, "{}", d.log());
    assert_eq!(found("198.51.100.1"), 1, "{}", d.log());

    // Two groups in one command (`+`), the first with two terms on different fields: both
    // must hold.
    let (code, out, err) = set(&[
        "addjournalmatch",
        "_SYSTEMD_UNIT=telnetd.service",
        "_PID=7",
        "+",
        "SYSLOG_IDENTIFIER=rlogind",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        matches(),
        serde_json::json!([
            ["_SYSTEMD_UNIT=sshd.service"],
            ["_SYSTEMD_UNIT=dropbear.service"],
            ["_SYSTEMD_UNIT=telnetd.service", "_PID=7"],
            ["SYSLOG_IDENTIFIER=rlogind"]
        ])
    );
    send_then(
        vec![
            failure("telnetd", 7, "192.0.2.4"),
            failure("telnetd", 8, "192.0.2.5"),
            failure("rlogind", 9, "192.0.2.6"),
            failure("cron", 10, "192.0.2.7"),
        ],
        "198.51.100.3",
    );
    assert_eq!(found("192.0.2.4"), 1, "{}", d.log());
    assert_eq!(found("192.0.2.5"), 0, "{}", d.log());
    assert_eq!(found("192.0.2.6"), 1, "{}", d.log());
    assert_eq!(found("192.0.2.7"), 0, "{}", d.log());

    // A group is deleted by its exact words: a part of one is not found (fail2ban's error),
    // and nothing changes.
    let (code, out, err) = set(&["deljournalmatch", "_SYSTEMD_UNIT=telnetd.service"]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        format!("{out}{err}").contains("Match ['_SYSTEMD_UNIT=telnetd.service'] not found"),
        "{out}{err}"
    );
    let (code, out, err) = set(&["deljournalmatch", "_SYSTEMD_UNIT=dropbear.service"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        matches(),
        serde_json::json!([
            ["_SYSTEMD_UNIT=sshd.service"],
            ["_SYSTEMD_UNIT=telnetd.service", "_PID=7"],
            ["SYSLOG_IDENTIFIER=rlogind"]
        ])
    );
    send_then(
        vec![
            failure("dropbear", 11, "192.0.2.8"),
            failure("telnetd", 7, "192.0.2.9"),
        ],
        "198.51.100.4",
    );
    assert_eq!(found("192.0.2.8"), 0, "{}", d.log());
    assert_eq!(found("192.0.2.9"), 1, "{}", d.log());
    let (code, out, err) = d.client(&["status", "jm"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("_SYSTEMD_UNIT=telnetd.service _PID=7") && !out.contains("dropbear"),
        "{out}"
    );

    // Every group deleted (ferroban: `deljournalmatch` without words; fail2ban answers
    // "Match [] not found" there, see docs/compatibility.md): every entry is read.
    let (code, out, err) = set(&["deljournalmatch"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(matches(), serde_json::json!([]));
    send_then(
        vec![
            failure("cron", 12, "192.0.2.10"),
            failure("dropbear", 13, "192.0.2.11"),
        ],
        "198.51.100.5",
    );
    assert_eq!(found("192.0.2.10"), 1, "{}", d.log());
    assert_eq!(found("192.0.2.11"), 1, "{}", d.log());
    // Totals: each entry read at most once over the five reader changes.
    for m in [
        "198.51.100.1",
        "198.51.100.2",
        "198.51.100.3",
        "198.51.100.4",
    ] {
        assert_eq!(found(m), 1, "{m}: {}", d.log());
    }
    drop(d);
    w.finish();
    let _ = std::fs::remove_dir_all(&jdir);
}
