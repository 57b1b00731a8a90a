//! ferroban's native nftables action end to end (issue 4): the guide's nginx-404 jail with
//! `banaction = ferroban-nftables` (from ferroban's embedded configuration: the test's directory
//! has no action file for it), nginx and the daemon in a network namespace, a client in another.
//! Bans land in the kernel with their remaining time as the element's timeout; after `kill -9`
//! the element stays and expires by itself; a restart reconciles the kernel with the database in
//! one transaction (no duplicates, no stale elements); `set <jail> banip` with an IPv6 /64 bans
//! the prefix, and banning it again with a longer bantime lengthens the element's timeout in
//! the kernel; stop removes the table. Needs root, iproute2, nftables, nginx, curl.

mod netns;

use std::time::Duration;

use netns::daemon::{Daemon, Flavour};
use netns::{CLI_V4, CLI_V6, Http, Lab, PAGE, SRV_V4, SRV_V6, require_root, wait_for};

const JAIL: &str = "nginx-404";
const MAXRETRY: usize = 3;

fn write_config(lab: &Lab, bantime: &str) -> std::path::PathBuf {
    let cfg = lab.path("etc-ferroban");
    std::fs::create_dir_all(cfg.join("filter.d")).unwrap();
    let d = lab.dir.display();
    std::fs::write(
        cfg.join("fail2ban.local"),
        format!(
            "[Definition]\ndbfile = {d}/ferroban.sqlite3\nlogtarget = {d}/ferroban.log\nsocket = {d}/ferroban.sock\npidfile = {d}/ferroban.pid\n"
        ),
    )
    .unwrap();
    std::fs::write(
        cfg.join("filter.d/guide-404.conf"),
        "[Definition]\nfailregex = ^<HOST> -.* \"(GET|POST).* HTTP/.*\" (404|403)\nignoreregex =\n",
    )
    .unwrap();
    std::fs::write(
        cfg.join("jail.local"),
        format!(
            "[DEFAULT]\nbanaction = ferroban-nftables\nignoreself = false\n\n[{JAIL}]\nenabled = true\nfilter = guide-404\nport = http,https\nlogpath = {d}/access.log\nmaxretry = {MAXRETRY}\nfindtime = 10m\nbantime = {bantime}\n"
        ),
    )
    .unwrap();
    cfg
}

fn url(host: &str, path: &str) -> String {
    if host.contains(':') {
        format!("http://[{host}]{path}")
    } else {
        format!("http://{host}{path}")
    }
}

/// Requests missing pages from `client` until they stop getting through.
fn get_banned(lab: &Lab, srv: &str) {
    for i in 0..(MAXRETRY + 10) {
        match lab.http(&url(srv, &format!("/missing-{i}"))) {
            Http::NoResponse(_) => return,
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    panic!(
        "{srv}: requests still get through after {} 404s",
        MAXRETRY + 10
    );
}

#[test]
fn native_nftables_bans_survive_kill9_reconcile_and_expire_in_the_kernel() {
    require_root(&["ip", "nft", "nginx", "curl"]);
    let mut lab = Lab::new("native");
    lab.start_nginx();
    let cfg = write_config(&lab, "6");
    let log = lab.path("ferroban.log");
    let mut daemon = Daemon::new(
        &mut lab,
        Flavour::from_env(env!("CARGO_BIN_EXE_ferroban")),
        cfg.clone(),
        log,
    );
    if daemon_is_reference(&daemon) {
        eprintln!("e2e_native: ferroban's native action only; nothing to do for the reference");
        return;
    }
    daemon.start(&mut lab, &[JAIL]);
    let set4 = format!("addr4-{JAIL}");
    let set6net = format!("net6-{JAIL}");

    // IPv4: banned in the kernel within maxretry.
    let v4 = url(SRV_V4, PAGE);
    wait_for("the jail's sets", Duration::from_secs(5), || {
        lab.nft_ruleset().set_elements(&set4).map(|_| ())
    });
    assert!(matches!(lab.http(&v4), Http::Status(200)));
    get_banned(&lab, SRV_V4);
    assert_eq!(daemon.banned(&lab, JAIL), vec![CLI_V4]);
    assert_eq!(
        lab.nft_ruleset().set_elements(&set4),
        Some(vec![CLI_V4.to_string()])
    );
    assert!(lab.nft_text().contains("timeout"), "{}", lab.nft_text());

    // kill -9: the element stays in the kernel; it expires there by itself (bantime 6 s).
    daemon.kill9(&mut lab);
    assert_eq!(
        lab.nft_ruleset().set_elements(&set4),
        Some(vec![CLI_V4.to_string()])
    );
    wait_for(
        "the kernel to expire the element",
        Duration::from_secs(12),
        || (lab.nft_ruleset().set_elements(&set4) == Some(Vec::new())).then_some(()),
    );
    assert!(matches!(lab.http(&url(SRV_V4, PAGE)), Http::Status(200)));

    // Restart: database and kernel agree (the ban ended while down: nothing restored); one rule.
    daemon.start(&mut lab, &[JAIL]);
    wait_for(
        "the jail's sets after the restart",
        Duration::from_secs(5),
        || (lab.nft_ruleset().set_elements(&set4) == Some(Vec::new())).then_some(()),
    );
    let nft = lab.nft_ruleset();
    assert_eq!(nft.rules_using_set(&set4).len(), 1, "{}", lab.nft_text());

    // Ban again, kill -9 and restart while the ban is in force: restored, no duplicate.
    get_banned(&lab, SRV_V4);
    daemon.kill9(&mut lab);
    daemon.start(&mut lab, &[JAIL]);
    let nft = wait_for(
        "the restored ban in the kernel",
        Duration::from_secs(5),
        || {
            let nft = lab.nft_ruleset();
            (nft.set_elements(&set4) == Some(vec![CLI_V4.to_string()])).then_some(nft)
        },
    );
    assert_eq!(nft.rules_using_set(&set4).len(), 1, "{}", lab.nft_text());
    assert_eq!(daemon.banned(&lab, JAIL), vec![CLI_V4]);

    // An IPv6 prefix banned by hand blocks the IPv6 client.
    let out = daemon.client(&lab, &["set", JAIL, "bantime", "1h"]);
    assert!(out.success(), "{out:?}");
    let out = daemon.client(&lab, &["set", JAIL, "banip", "2001:db8::/64"]);
    assert!(out.success(), "{out:?}");
    // (The JSON of an interval element is an object: look at the set in the text listing.)
    let in_set6net = |lab: &Lab| {
        let text = lab.nft_text();
        let set = text
            .split(&format!("set {set6net} "))
            .nth(1)
            .unwrap_or("")
            .to_string();
        set.split('}')
            .next()
            .unwrap_or("")
            .contains("2001:db8::/64")
    };
    wait_for("the IPv6 prefix in its set", Duration::from_secs(5), || {
        in_set6net(&lab).then_some(())
    });
    assert!(
        matches!(lab.http(&url(SRV_V6, PAGE)), Http::NoResponse(_)),
        "{CLI_V6}"
    );
    let out = daemon.client(&lab, &["status", JAIL]);
    assert!(out.stdout.contains("2001:db8::/64"), "{out:?}");
    // Banned again with a longer bantime: not a new ban, but the kernel's timeout follows the
    // lengthened ban (else the kernel would drop the element at the first ban's end).
    let first = lab.nft_ruleset().set_expires(&set6net);
    assert!(
        first.len() == 1 && first[0] <= 3600,
        "{first:?}\n{}",
        lab.nft_text()
    );
    let out = daemon.client(&lab, &["set", JAIL, "bantime", "2h"]);
    assert!(out.success(), "{out:?}");
    let out = daemon.client(&lab, &["set", JAIL, "banip", "2001:db8::/64"]);
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout.trim(), "0", "not counted as a new ban: {out:?}");
    wait_for(
        "the prefix's kernel timeout to follow the longer ban",
        Duration::from_secs(5),
        || {
            let e = lab.nft_ruleset().set_expires(&set6net);
            (e.len() == 1 && e[0] > 7000).then_some(())
        },
    );
    // Unban by hand lifts it.
    let out = daemon.client(&lab, &["set", JAIL, "unbanip", "2001:db8::/64"]);
    assert!(out.success(), "{out:?}");
    wait_for(
        "the IPv6 prefix to leave the set",
        Duration::from_secs(5),
        || (lab.nft_ruleset().set_elements(&set6net) == Some(Vec::new())).then_some(()),
    );

    // Stop removes what ferroban created.
    let out = daemon.client(&lab, &["stop"]);
    assert!(out.success(), "{out:?}");
    daemon.wait_exit(&mut lab, Duration::from_secs(10));
    assert!(
        !lab.nft_ruleset()
            .tables()
            .iter()
            .any(|t| t.ends_with(" ferroban")),
        "{}",
        lab.nft_text()
    );
}

fn daemon_is_reference(d: &Daemon) -> bool {
    d.flavour.is_reference()
}
