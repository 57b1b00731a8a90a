//! End to end, with a real firewall (issue 3's must-hold): nginx in a network namespace, the
//! daemon beside it with the guide's `nginx-404` jail and `nftables-multiport`, a client in a second
//! namespace asking for missing pages until it is banned; the ban survives `kill -9` and a restart
//! (database and nftables, no duplicates, no re-ban from old lines), `unbanip` lifts it, IPv6 is
//! banned too, and a short `bantime` on a second jail (`nftables[type=allports]`) expires by itself.
//!
//! `FERROBAN_E2E_SERVER=fail2ban` runs the same scenario against the reference fail2ban-server
//! 1.0.2, which validates the test; the default runs `ferroban server`. Needs root, iproute2,
//! nftables, nginx, curl and the reference tree (its `etc/fail2ban` is copied into a temp dir at
//! test time). See tests/netns/ for the lab.

mod netns;

use std::time::{Duration, Instant};

use netns::daemon::{Daemon, Flavour, lab_config};
use netns::{
    CLI_V4, CLI_V6, Http, Lab, PAGE, SRV_V4, SRV_V6, check_duration, require_root, wait_for,
};

const MAXRETRY: usize = 3;
const SHORT_BANTIME: f64 = 3.0;
const JAIL: &str = "nginx-404";
const SHORT_JAIL: &str = "nginx-404-short";

/// The guide's filter, written by the user.
const FILTER: &str = "[Definition]\n\
failregex = ^<HOST> -.* \"(GET|POST).* HTTP/.*\" (404|403)\n\
ignoreregex =\n";

/// Writes the user's files over the copied reference tree; returns the config dir.
fn write_config(lab: &Lab) -> std::path::PathBuf {
    let cfg = lab_config(lab);
    let d = lab.dir.display();
    std::fs::write(cfg.join("filter.d/nginx-404.conf"), FILTER).expect("filter");
    // [sshd]: Debian's jail.d/defaults-debian.conf enables it; this machine has no sshd log, and a
    // jail without a log stops the server from starting, so the user switches it off.
    let jail_local = format!(
        "[DEFAULT]\n\
         banaction = nftables-multiport\n\
         \n\
         [sshd]\n\
         enabled = false\n\
         \n\
         [{JAIL}]\n\
         enabled = true\n\
         port = http,https\n\
         logpath = {d}/access.log\n\
         maxretry = {MAXRETRY}\n\
         findtime = 10m\n\
         bantime = 1h\n\
         \n\
         [{SHORT_JAIL}]\n\
         enabled = true\n\
         filter = nginx-404\n\
         banaction = nftables[type=allports]\n\
         port = 8080\n\
         logpath = {d}/access-8080.log\n\
         maxretry = {MAXRETRY}\n\
         findtime = 10m\n\
         bantime = {SHORT_BANTIME}\n"
    );
    std::fs::write(cfg.join("jail.local"), jail_local).expect("jail.local");
    cfg
}

/// Requests missing pages at `base` until they stop getting through: the first `MAXRETRY` must be
/// answered 404, then the ban must come within 15 s. Returns how many more 404s got through
/// before it did (the daemon's reaction time).
fn provoke_ban(lab: &Lab, base: &str, tag: &str) -> usize {
    for i in 1..=MAXRETRY {
        let url = format!("{base}/missing-{tag}-{i}");
        assert_eq!(
            lab.http(&url),
            Http::Status(404),
            "request {i} of {MAXRETRY} ({url}) must get through (a 404) before the ban"
        );
    }
    let start = Instant::now();
    let mut extra = 0;
    loop {
        let url = format!("{base}/missing-{tag}-extra-{extra}");
        match lab.http(&url) {
            Http::Status(404) => extra += 1,
            Http::NoResponse(_) => return extra,
            other => panic!("{url}: unexpected {other:?}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{base}: still answered after {MAXRETRY} + {extra} 404s and 15 s: no ban"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Checks that `ip` is banned by `jail`: `client status` lists it (alone), nftables set `set` holds
/// it (alone) and exactly one rule uses the set. Returns that rule (nft JSON).
fn assert_banned(lab: &Lab, daemon: &Daemon, jail: &str, set: &str, ip: &str) -> String {
    assert_eq!(
        daemon.banned(lab, jail),
        vec![ip],
        "`client status {jail}` after the ban of {ip}"
    );
    let nft = lab.nft_ruleset();
    assert_eq!(
        nft.set_elements(set),
        Some(vec![ip.to_string()]),
        "nftables set {set} after the ban of {ip}:\n{}",
        lab.nft_text()
    );
    let mut rules = nft.rules_using_set(set);
    assert_eq!(rules.len(), 1, "one rule uses @{set}:\n{}", lab.nft_text());
    rules.remove(0)
}

/// Waits until `url` is answered `200` again (the ban is lifted).
fn wait_reachable(lab: &Lab, url: &str, timeout: Duration, why: &str) {
    wait_for(
        &format!("{url} to answer 200 again ({why})"),
        timeout,
        || (lab.http(url) == Http::Status(200)).then_some(()),
    );
}

/// The time of the first log line containing `needle` (fail2ban's `YYYY-MM-DD HH:MM:SS,mmm`).
fn log_time(log: &str, needle: &str) -> jiff::civil::DateTime {
    let line = log
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no log line contains {needle:?}"));
    let stamp = line
        .get(..23)
        .unwrap_or("")
        .replacen(' ', "T", 1)
        .replace(',', ".");
    stamp
        .parse()
        .unwrap_or_else(|e| panic!("log line without a timestamp ({e}): {line}"))
}

#[test]
fn nginx_404_bans_survive_restart_unban_ipv6_and_expiry() {
    let t0 = Instant::now();
    require_root(&["ip", "nft", "nginx", "curl"]);
    let flavour = Flavour::from_env(env!("CARGO_BIN_EXE_ferroban"));
    eprintln!("e2e: server under test: {}", flavour.name());
    let reference = flavour.is_reference();

    let mut lab = Lab::new("e2e");
    lab.start_nginx();
    let cfg = write_config(&lab);
    let log = lab.path("fail2ban.log");
    let mut daemon = Daemon::new(&mut lab, flavour, cfg, log);
    daemon.start(&mut lab, &[JAIL, SHORT_JAIL]);
    eprintln!(
        "e2e: {} ready after {:.1} s",
        daemon.flavour.name(),
        t0.elapsed().as_secs_f64()
    );

    let v4 = format!("http://{SRV_V4}");
    let v6 = format!("http://[{SRV_V6}]");
    let page_v4 = format!("{v4}{PAGE}");
    let page_v6 = format!("{v6}{PAGE}");
    let set4 = format!("addr-set-{JAIL}");
    let set6 = format!("addr6-set-{JAIL}");

    // 1. maxretry 404s, then the connection fails: banned in status, database and nftables.
    let extra = provoke_ban(&lab, &v4, "v4");
    eprintln!("e2e: {CLI_V4} banned after {MAXRETRY} + {extra} 404s");
    assert!(
        matches!(lab.http(&page_v4), Http::NoResponse(_)),
        "the ban must close port 80 for {CLI_V4}, also for the existing page"
    );
    let rule = assert_banned(&lab, &daemon, JAIL, &set4, CLI_V4);
    assert!(
        rule.contains("dport"),
        "nftables-multiport: the rule matches ports: {rule}"
    );
    let db = lab.path("fail2ban.sqlite3");
    wait_for(
        &format!(
            "the database {} to record the ban of {CLI_V4}",
            db.display()
        ),
        Duration::from_secs(5),
        || {
            db_bans(&lab, &db)
                .iter()
                .any(|row| row.contains(CLI_V4))
                .then_some(())
        },
    );

    // 2. kill -9 and restart: the ban is restored from the database, once, without duplicates.
    daemon.kill9(&mut lab);
    assert_eq!(
        lab.nft_ruleset().set_elements(&set4),
        Some(vec![CLI_V4.to_string()]),
        "the kernel keeps the element while the daemon is down"
    );
    let restart = daemon.start(&mut lab, &[JAIL, SHORT_JAIL]);
    let restore_line = format!("[{JAIL}] Restore Ban {CLI_V4}");
    let ban_line = format!("[{JAIL}] Ban {CLI_V4}");
    wait_for(
        &format!("{restore_line:?} in the log after the restart"),
        Duration::from_secs(15),
        || {
            let log = daemon.log_since(restart);
            // The reference may ban again from the re-read old lines instead (see below).
            (log.contains(&restore_line) || (reference && log.contains(&ban_line))).then_some(())
        },
    );
    assert_eq!(
        daemon.banned(&lab, JAIL),
        vec![CLI_V4],
        "`client status {JAIL}` after the restart"
    );
    // The restored ban's actions run right after the log line: a shell action that was not
    // stopped cleanly is stopped and started again first (no duplicate rule), so give the
    // actions a moment to re-add the element before probing traffic.
    wait_for(
        &format!("{CLI_V4} back in {set4} after the restart"),
        Duration::from_secs(10),
        || (lab.nft_ruleset().set_elements(&set4) == Some(vec![CLI_V4.to_string()])).then_some(()),
    );
    assert!(
        matches!(lab.http(&page_v4), Http::NoResponse(_)),
        "{CLI_V4} is still banned after the restart"
    );
    let nft = lab.nft_ruleset();
    assert_eq!(
        nft.set_elements(&set4),
        Some(vec![CLI_V4.to_string()]),
        "after the restart {set4} holds the address once:\n{}",
        lab.nft_text()
    );
    let rules_after = nft.rules_using_set(&set4);
    if rules_after.len() != 1 && reference {
        // fail2ban 1.0.2 starts nftables actions on demand and its actionstart adds the rule again
        // after an unclean stop: a known defect of the reference, not accepted from ferroban.
        eprintln!(
            "e2e: KNOWN REFERENCE DEFECT: after kill -9 and restart fail2ban 1.0.2 has {} rules using @{set4} \
             (ferroban must have 1):\n{}",
            rules_after.len(),
            lab.nft_text()
        );
    } else {
        assert_eq!(
            rules_after.len(),
            1,
            "after kill -9 and restart exactly one rule uses @{set4} (no duplicate):\n{}",
            lab.nft_text()
        );
    }
    // Give the re-read old lines time to (wrongly) ban again, then check they did not.
    std::thread::sleep(Duration::from_millis(1500));
    let after_restart = daemon.log_since(restart);
    let restores = after_restart.matches(&restore_line).count();
    let bans = after_restart.matches(&ban_line).count();
    if reference && (restores, bans) == (0, 1) {
        // fail2ban 1.0.2 saves log positions lazily, so after kill -9 it re-reads the old lines;
        // their failures and the restored ticket race, and the former can win: a plain Ban.
        eprintln!(
            "e2e: KNOWN REFERENCE DEFECT: after kill -9 and restart fail2ban 1.0.2 logged {ban_line:?} from \
             re-read old lines instead of {restore_line:?} (ferroban must log the Restore Ban only)"
        );
    } else {
        assert_eq!(
            (restores, bans),
            (1, 0),
            "after the restart the log must show one {restore_line:?} and no {ban_line:?} (no re-ban from \
             old lines):\n{after_restart}"
        );
    }

    // 3. unbanip restores traffic.
    let out = daemon
        .client(&lab, &["set", JAIL, "unbanip", CLI_V4])
        .expect_ok("`client set nginx-404 unbanip`");
    assert_eq!(
        out.stdout.trim(),
        "1",
        "`set {JAIL} unbanip {CLI_V4}` prints the number unbanned: {out}"
    );
    wait_reachable(&lab, &page_v4, Duration::from_secs(5), "after unbanip");
    assert!(
        daemon.banned(&lab, JAIL).is_empty(),
        "`client status {JAIL}` after unbanip"
    );
    assert_eq!(
        lab.nft_ruleset().set_elements(&set4),
        Some(vec![]),
        "{set4} after unbanip:\n{}",
        lab.nft_text()
    );
    assert!(
        daemon
            .log_since(restart)
            .contains(&format!("[{JAIL}] Unban {CLI_V4}")),
        "the log shows the unban"
    );

    // 4. IPv6: the client's 2001:db8::7 is banned too, and only it.
    let extra6 = provoke_ban(&lab, &v6, "v6");
    eprintln!("e2e: {CLI_V6} banned after {MAXRETRY} + {extra6} 404s");
    assert_banned(&lab, &daemon, JAIL, &set6, CLI_V6);
    assert_eq!(
        lab.http(&page_v4),
        Http::Status(200),
        "IPv4 from the same client is not banned"
    );
    daemon
        .client(&lab, &["set", JAIL, "unbanip", CLI_V6])
        .expect_ok("unbanip IPv6");
    wait_reachable(
        &lab,
        &page_v6,
        Duration::from_secs(5),
        "after unbanip of the IPv6 address",
    );

    // 5. A short bantime on the allports jail: banned on every port, then released by itself.
    let short_set = format!("addr-set-{SHORT_JAIL}");
    let first_failure = Instant::now();
    let extra_s = provoke_ban(&lab, &format!("http://{SRV_V4}:8080"), "short");
    let banned_at = Instant::now();
    eprintln!("e2e: {SHORT_JAIL}: {CLI_V4} banned after {MAXRETRY} + {extra_s} 404s");
    assert!(
        matches!(lab.http(&page_v4), Http::NoResponse(_)),
        "allports: port 80 is closed too"
    );
    let rule = assert_banned(&lab, &daemon, SHORT_JAIL, &short_set, CLI_V4);
    assert!(
        !rule.contains("dport"),
        "type=allports: the rule matches no port: {rule}"
    );
    wait_reachable(
        &lab,
        &format!("http://{SRV_V4}:8080{PAGE}"),
        Duration::from_secs(15),
        &format!("the {SHORT_BANTIME} s ban expires by itself"),
    );
    let back = first_failure.elapsed().as_secs_f64();
    eprintln!(
        "e2e: {SHORT_JAIL}: traffic back {:.1} s after the ban was seen, {back:.1} s after the first failing \
         request",
        banned_at.elapsed().as_secs_f64()
    );
    // A ban runs from the time of the failure that triggered it as its log line gives it (to the
    // second, for nginx): it cannot end sooner than bantime - 1 s after the first failing request.
    assert!(
        back >= SHORT_BANTIME - 1.0,
        "the {SHORT_BANTIME} s ban ended {back:.1} s after the first failing request: too early"
    );
    let log = daemon.log_since(restart);
    let (ban, unban) = (
        format!("[{SHORT_JAIL}] Ban {CLI_V4}"),
        format!("[{SHORT_JAIL}] Unban {CLI_V4}"),
    );
    let held = log_time(&log, &unban)
        .duration_since(log_time(&log, &ban))
        .as_secs_f64();
    assert!(
        (0.0..SHORT_BANTIME + 5.0).contains(&held),
        "the log's Ban and Unban of {SHORT_JAIL} are {held:.3} s apart; bantime is {SHORT_BANTIME} s"
    );
    assert_eq!(
        lab.nft_ruleset().set_elements(&short_set),
        Some(vec![]),
        "{short_set} after expiry"
    );
    assert!(
        daemon.banned(&lab, SHORT_JAIL).is_empty(),
        "`client status {SHORT_JAIL}` after expiry"
    );

    // 6. client stop: a clean shutdown that takes the firewall table down with it.
    daemon.stop(&mut lab);
    check_duration("e2e", daemon.flavour.name(), t0, Duration::from_secs(110));
}

/// The rows of table `bans` in the SQLite database, each as text (schema-agnostic: fail2ban's and
/// ferroban's both keep a `bans` table with the address in it). Read with Python's sqlite3.
fn db_bans(lab: &Lab, db: &std::path::Path) -> Vec<String> {
    let script = "import sqlite3,sys\n\
                  c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro',uri=True,timeout=2)\n\
                  [print(repr(r)) for r in c.execute('SELECT * FROM bans')]";
    let db = db.display().to_string();
    let out = lab.exec(
        &lab.srv,
        &["python3", "-c", script, &db],
        Duration::from_secs(10),
    );
    if !out.success() {
        eprintln!("e2e: reading {db}: {out}");
        return Vec::new();
    }
    out.stdout.lines().map(str::to_string).collect()
}
