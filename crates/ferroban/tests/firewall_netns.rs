//! The native firewall backends (`ferroban::firewall`) against the real kernel, each inside the
//! lab's "srv" network namespace (every command runs under `ip netns exec`; see tests/netns/):
//! bans block traffic from the "cli" namespace over IPv4 and IPv6, for an address, a /24 and a
//! /64, and unbans let it through again; 100,000 bans are restored with one `nft -f` (and one
//! `ipset restore`) and are all there afterwards; an element with a 2 s timeout leaves the kernel
//! by itself; a second start adds no rule; stop removes only what the jail made; reconcile after a
//! simulated crash ends exactly at the desired set. ufw runs in the namespace with its own
//! configuration directories (`/etc/netns/<ns>/ufw` and `/etc/netns/<ns>/default`, which
//! `ip netns exec` mounts over `/etc/ufw` and `/etc/default`); the host's ufw state is not touched.
//!
//! Needs root, iproute2, nftables, ipset, iptables, ufw, nginx and curl (see .ci/run).

mod netns;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferroban::firewall::{
    Ban, IpsetBackend, IpsetOptions, JailRule, NftBackend, NftOptions, Runner, UfwBackend,
};
use ferroban::ip::HostId;
use netns::{CLI_V4, CLI_V6, Http, Lab, PAGE, SRV_V4, SRV_V6, require_root, wait_for};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn runner(lab: &Lab) -> Runner {
    Runner::with_prefix(["ip", "netns", "exec", lab.srv.as_str()])
}

fn nft(lab: &Lab, jail: &str, kind: &str, port: &str) -> NftBackend {
    NftBackend::new(
        JailRule::new(jail, kind, port, "tcp", "reject").expect("rule"),
        NftOptions::default(),
        runner(lab),
    )
}

fn id(s: &str) -> HostId {
    let id = HostId::parse(s);
    assert!(id.is_ip(), "{s} must parse");
    id
}

fn page_v4() -> String {
    format!("http://{SRV_V4}{PAGE}")
}

fn page_v6() -> String {
    format!("http://[{SRV_V6}]{PAGE}")
}

fn page_v4_8080() -> String {
    format!("http://{SRV_V4}:8080{PAGE}")
}

/// Asserts what the client gets from the server over both families (true: the page).
fn assert_reach(lab: &Lab, v4: bool, v6: bool, context: &str) {
    for (url, expect) in [(page_v4(), v4), (page_v6(), v6)] {
        let got = lab.http(&url);
        if expect {
            assert_eq!(got, Http::Status(200), "{context}: {url} must be served");
        } else {
            assert!(
                matches!(got, Http::NoResponse(_)),
                "{context}: {url} must be blocked, got {got:?}\n{}",
                lab.nft_text()
            );
        }
    }
}

/// Only the `nft -f -` invocations (the writes) of a history.
fn nft_writes(r: &Runner) -> usize {
    r.history()
        .iter()
        .filter(|a| a.as_slice() == ["nft", "-f", "-"])
        .count()
}

/// `count` distinct bans: IPv4 addresses, IPv6 addresses, IPv4 /24s and IPv6 /64s, none of them
/// the lab's own addresses, with varied remaining times (every 10th permanent).
fn many_bans(count: usize, with_prefixes: bool) -> Vec<Ban> {
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let n = i as u32;
        let remaining = if i % 10 == 0 {
            None
        } else {
            Some(3600.0 + (i % 1000) as f64)
        };
        let idv = match (with_prefixes, i % 20) {
            (true, 0) => HostId::Net(IpAddr::V4(Ipv4Addr::from(0x6400_0000 | (n << 8))), 24),
            (true, 1) => HostId::Net(
                IpAddr::V6(Ipv6Addr::from(
                    0x2001_0db8_7000_0000_0000_0000_0000_0000u128 | (u128::from(n) << 64),
                )),
                64,
            ),
            (_, k) if k % 4 == 3 => HostId::Addr(IpAddr::V6(Ipv6Addr::from(
                0x2001_0db8_9000_0000_0000_0000_0000_0000u128 | u128::from(n),
            ))),
            _ => HostId::Addr(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | n))),
        };
        out.push((idv, remaining));
    }
    out
}

fn ids_of(bans: &[Ban]) -> BTreeSet<HostId> {
    bans.iter().map(|(i, _)| i.clone()).collect()
}

#[test]
fn nft_bans_block_ipv4_ipv6_addresses_and_prefixes_and_unbans_restore() {
    require_root(&["ip", "nft", "nginx", "curl"]);
    let mut lab = Lab::new("fw-nft");
    lab.start_nginx();
    let rt = rt();
    let fw = nft(&lab, "web", "multiport", "http,https");
    rt.block_on(fw.start()).expect("start");
    assert_reach(&lab, true, true, "after start, nothing banned");

    for (what, ids, v4, v6) in [
        ("IPv4 address", vec![CLI_V4], false, true),
        ("IPv4 /24", vec!["198.51.100.0/24"], false, true),
        ("IPv6 address", vec![CLI_V6], true, false),
        ("IPv6 /64", vec!["2001:db8::/64"], true, false),
        ("both addresses", vec![CLI_V4, CLI_V6], false, false),
    ] {
        let ids: Vec<HostId> = ids.into_iter().map(id).collect();
        let bans: Vec<Ban> = ids.iter().map(|i| (i.clone(), Some(600.0))).collect();
        fw.runner().clear_history();
        let report = rt.block_on(fw.ban(&bans)).expect("ban");
        assert_eq!(report.written, ids.len(), "{what}: {report:?}");
        assert_eq!(
            nft_writes(fw.runner()),
            1,
            "{what}: one transaction: {:?}",
            fw.runner().history()
        );
        assert_reach(&lab, v4, v6, &format!("{what} banned"));
        // Port 8080 is not in the jail's ports: still served.
        if !v4 {
            assert_eq!(lab.http(&page_v4_8080()), Http::Status(200), "{what}: 8080");
        }
        let listed = rt.block_on(fw.elements()).expect("elements");
        assert_eq!(ids_of(&listed), ids.iter().cloned().collect(), "{what}");
        for (i, r) in &listed {
            let r = r.unwrap_or_else(|| panic!("{what}: {i} has no timeout"));
            assert!((590.0..=600.0).contains(&r), "{what}: {i} expires in {r} s");
        }
        rt.block_on(fw.unban(&ids)).expect("unban");
        assert!(rt.block_on(fw.elements()).expect("elements").is_empty());
        assert_reach(&lab, true, true, &format!("{what} unbanned"));
    }
    // A re-ban sets the new time (longer, shorter, permanent, and back), on the probed path and
    // on the add+delete+add path.
    assert_eq!(
        fw.readd_sets_timeout(),
        Some(true),
        "kernel 6.18 updates in place"
    );
    let forced = NftBackend::new(
        JailRule::new("web", "multiport", "http,https", "tcp", "reject").expect("rule"),
        NftOptions {
            probe_readd: false,
            ..NftOptions::default()
        },
        runner(&lab),
    );
    rt.block_on(forced.start()).expect("start without probe");
    assert_eq!(forced.readd_sets_timeout(), None);
    for b in [&fw, &forced] {
        for (remaining, lo, hi) in [
            (Some(600.0), 590.0, 600.0),
            (Some(60.0), 50.0, 60.0),
            (None, 0.0, 0.0),
            (Some(3000.0), 2990.0, 3000.0),
        ] {
            let bans = [(id(CLI_V4), remaining), (id(CLI_V6), remaining)];
            rt.block_on(b.ban(&bans)).expect("re-ban");
            for (i, r) in rt.block_on(b.elements()).expect("elements") {
                match (remaining, r) {
                    (None, None) => {}
                    (Some(_), Some(r)) if (lo..=hi).contains(&r) => {}
                    _ => panic!("re-ban of {i} with {remaining:?}: kernel has {r:?}"),
                }
            }
        }
        rt.block_on(b.unban(&[id(CLI_V4), id(CLI_V6)]))
            .expect("unban");
    }
    // Unbanning what is not banned is not an error.
    rt.block_on(fw.unban(&[id(CLI_V4), id("2001:db8::/64")]))
        .expect("unban of absent ids");
}

#[test]
fn nft_allports_drop_blocks_every_port() {
    require_root(&["ip", "nft", "nginx", "curl"]);
    let mut lab = Lab::new("fw-nft-all");
    lab.start_nginx();
    let rt = rt();
    let fw = NftBackend::new(
        JailRule::new("all", "allports", "", "tcp", "drop").expect("rule"),
        NftOptions::default(),
        runner(&lab),
    );
    rt.block_on(fw.start()).expect("start");
    rt.block_on(fw.ban(&[(id("198.51.100.0/24"), None)]))
        .expect("ban");
    assert!(matches!(lab.http(&page_v4()), Http::NoResponse(_)));
    assert!(matches!(lab.http(&page_v4_8080()), Http::NoResponse(_)));
    assert_eq!(lab.http(&page_v6()), Http::Status(200));
    let listed = rt.block_on(fw.elements()).expect("elements");
    assert_eq!(
        listed,
        vec![(id("198.51.100.0/24"), None)],
        "permanent: no timeout"
    );
}

#[test]
fn nft_restores_100k_bans_in_one_transaction() {
    require_root(&["ip", "nft"]);
    let lab = Lab::new("fw-nft-100k");
    let rt = rt();

    // At start-up after a reboot: reconcile with an empty kernel, addresses and prefixes.
    let fw = nft(&lab, "big", "multiport", "ssh");
    rt.block_on(fw.start()).expect("start");
    let desired = many_bans(100_000, true);
    fw.runner().clear_history();
    let t = Instant::now();
    let report = rt.block_on(fw.reconcile(&desired)).expect("reconcile");
    let took = t.elapsed();
    // The kernel's timers start when `nft -f` commits, at the end of the reconcile: counting the
    // time passed from its start would make a slow (loaded) reconcile look like drift.
    let restored = Instant::now();
    let history = fw.runner().history();
    assert_eq!(nft_writes(fw.runner()), 1, "one nft -f: {history:?}");
    assert!(
        history
            .iter()
            .all(|a| a.as_slice() == ["nft", "-f", "-"] || a[..3] == ["nft", "-j", "list"]),
        "only reads and the one write: {history:?}"
    );
    assert_eq!(report.added, 100_000, "{report:?}");
    assert_eq!((report.removed, report.updated), (0, 0));
    eprintln!(
        "reconcile of 100,000 bans (incl. 10,000 prefixes): {:.2} s, {} invocations",
        took.as_secs_f64(),
        history.len()
    );
    let listed = rt.block_on(fw.elements()).expect("elements");
    assert_eq!(listed.len(), 100_000);
    assert_eq!(ids_of(&listed), ids_of(&desired));
    let permanent = listed.iter().filter(|(_, r)| r.is_none()).count();
    assert_eq!(permanent, 10_000, "every 10th ban is permanent");

    // The same through ban(): exactly one nft invocation in all.
    let fw2 = nft(&lab, "big2", "multiport", "ssh");
    rt.block_on(fw2.start()).expect("start");
    let addrs = many_bans(100_000, false);
    fw2.runner().clear_history();
    let t = Instant::now();
    let report = rt.block_on(fw2.ban(&addrs)).expect("ban");
    let took = t.elapsed();
    assert_eq!(
        fw2.runner().history(),
        vec![vec!["nft".to_string(), "-f".into(), "-".into()]],
        "one nft invocation"
    );
    assert_eq!(report.written, 100_000);
    eprintln!(
        "ban() of 100,000 addresses: {:.2} s, 1 invocation",
        took.as_secs_f64()
    );
    let listed = rt.block_on(fw2.elements()).expect("elements");
    assert_eq!(ids_of(&listed), ids_of(&addrs));

    // A restart on a kernel that has them all writes nothing (the daemon's remaining times have
    // gone down by the time passed, like the kernel's).
    let passed = restored.elapsed().as_secs_f64();
    let desired: Vec<Ban> = desired
        .into_iter()
        .map(|(i, r)| (i, r.map(|r| r - passed)))
        .collect();
    fw.runner().clear_history();
    let report = rt
        .block_on(fw.reconcile(&desired))
        .expect("reconcile again");
    assert_eq!((report.added, report.removed), (0, 0), "{report:?}");
    assert_eq!(report.unchanged, 100_000);
    assert_eq!(nft_writes(fw.runner()), 0);
}

#[test]
fn nft_timeout_expires_in_the_kernel() {
    require_root(&["ip", "nft"]);
    let lab = Lab::new("fw-nft-exp");
    let rt = rt();
    let fw = nft(&lab, "short", "multiport", "http");
    rt.block_on(fw.start()).expect("start");
    rt.block_on(fw.ban(&[
        (id("192.0.2.1"), Some(2.0)),
        (id("2001:db8:5::/64"), Some(2.0)),
        (id("192.0.2.2"), None),
    ]))
    .expect("ban");
    let t = Instant::now();
    // Read the kernel directly (not through the backend).
    let count = |lab: &Lab| {
        let nft = lab.nft_ruleset();
        ["addr4-short", "net6-short"]
            .iter()
            .map(|s| nft.set_elements(s).expect("set").len())
            .sum::<usize>()
    };
    assert_eq!(count(&lab), 3);
    wait_for("the 2 s elements to expire", Duration::from_secs(8), || {
        (count(&lab) == 1).then_some(())
    });
    let waited = t.elapsed().as_secs_f64();
    assert!(
        waited >= 1.5,
        "expired after {waited:.2} s, before its 2 s timeout"
    );
    assert_eq!(
        rt.block_on(fw.elements()).expect("elements"),
        vec![(id("192.0.2.2"), None)]
    );
    // Expired bans are not written at all.
    let report = rt
        .block_on(fw.ban(&[(id("192.0.2.3"), Some(0.0)), (id("192.0.2.4"), Some(-5.0))]))
        .expect("ban of expired");
    assert_eq!((report.written, report.expired.len()), (0, 2));
}

#[test]
fn nft_start_is_idempotent_and_stop_removes_only_its_own() {
    require_root(&["ip", "nft"]);
    let lab = Lab::new("fw-nft-idem");
    let rt = rt();
    // Someone else's table, and an unrelated table of the same family.
    lab.exec(
        &lab.srv,
        &[
            "nft",
            "add table inet foreign; add set inet foreign keep { type ipv4_addr; }; \
             add chain inet foreign c { type filter hook input priority 0; }; \
             add rule inet foreign c ip saddr @keep drop",
        ],
        Duration::from_secs(5),
    )
    .expect_ok("foreign table");
    let a = NftBackend::new(
        JailRule::new("a", "multiport", "80,443", "tcp,udp", "reject").expect("rule"),
        NftOptions::default(),
        runner(&lab),
    );
    let b = nft(&lab, "b", "multiport", "22");
    rt.block_on(a.start()).expect("start a");
    rt.block_on(a.ban(&[(id("192.0.2.9"), Some(900.0))]))
        .expect("ban");
    rt.block_on(a.start()).expect("start a again");
    rt.block_on(b.start()).expect("start b");
    rt.block_on(a.start()).expect("start a a third time");
    let rules = |set: &str| lab.nft_ruleset().rules_using_set(set).len();
    for set in a.set_names() {
        assert_eq!(
            rules(&set),
            2,
            "{set}: one rule per protocol\n{}",
            lab.nft_text()
        );
    }
    for set in b.set_names() {
        assert_eq!(rules(&set), 1, "{set}\n{}", lab.nft_text());
    }
    assert_eq!(
        rt.block_on(a.elements()).expect("elements").len(),
        1,
        "a restart keeps the elements"
    );

    rt.block_on(a.stop()).expect("stop a");
    let nft = lab.nft_ruleset();
    for set in a.set_names() {
        assert!(nft.set_elements(&set).is_none(), "{set} removed");
    }
    for set in b.set_names() {
        assert!(nft.set_elements(&set).is_some(), "{set} of jail b kept");
        assert_eq!(rules(&set), 1);
    }
    let tables = nft.tables();
    assert!(tables.contains(&"inet ferroban".to_string()), "{tables:?}");
    assert!(tables.contains(&"inet foreign".to_string()), "{tables:?}");
    rt.block_on(a.stop()).expect("a second stop is harmless");

    rt.block_on(b.stop()).expect("stop b");
    let tables = lab.nft_ruleset().tables();
    assert_eq!(
        tables,
        vec!["inet foreign".to_string()],
        "the last stop removes our table, the foreign one stays"
    );
    assert_eq!(
        lab.nft_ruleset().rules_using_set("keep").len(),
        1,
        "foreign rule intact"
    );
}

#[test]
fn nft_reconcile_after_crash_ends_at_the_desired_set() {
    require_root(&["ip", "nft"]);
    let lab = Lab::new("fw-nft-rec");
    let rt = rt();
    let fw = nft(&lab, "rec", "multiport", "http");
    rt.block_on(fw.start()).expect("start");
    // Before the "crash": what the kernel was left with.
    rt.block_on(fw.ban(&[
        (id("192.0.2.1"), Some(1000.0)),     // stays, same time
        (id("192.0.2.2"), Some(1000.0)),     // stale: unbanned while the daemon was down
        (id("192.0.2.3"), Some(50.0)),       // ban was prolonged: time differs
        (id("2001:db8:1::5"), None),         // stale IPv6
        (id("198.51.100.0/24"), None),       // stays
        (id("2001:db8:2::/64"), Some(80.0)), // stale prefix
    ]))
    .expect("ban");
    // Something wrote into our set by hand as well.
    lab.exec(
        &lab.srv,
        &[
            "nft",
            "add element inet ferroban addr4-rec { 203.0.113.50 }",
        ],
        Duration::from_secs(5),
    )
    .expect_ok("stale element");
    // After the restart: the database's view.
    let desired: Vec<Ban> = vec![
        (id("192.0.2.1"), Some(999.0)),
        (id("192.0.2.3"), Some(5000.0)),
        (id("192.0.2.4"), Some(300.0)), // missing
        (id("198.51.100.0/24"), None),
        (id("2001:db8:3::/64"), Some(700.0)), // missing
        (id("2001:db8::9"), None),            // missing
        (id("192.0.2.5"), Some(0.0)),         // expired while down: not restored
    ];
    fw.runner().clear_history();
    let report = rt.block_on(fw.reconcile(&desired)).expect("reconcile");
    assert_eq!(nft_writes(fw.runner()), 1);
    assert_eq!(
        (
            report.added,
            report.removed,
            report.updated,
            report.unchanged
        ),
        (3, 4, 1, 2),
        "{report:?}"
    );
    assert_eq!(report.expired, vec![id("192.0.2.5")]);
    let listed: BTreeMap<HostId, Option<f64>> = rt
        .block_on(fw.elements())
        .expect("elements")
        .into_iter()
        .collect();
    let want: BTreeSet<HostId> = desired[..6].iter().map(|(i, _)| i.clone()).collect();
    assert_eq!(listed.keys().cloned().collect::<BTreeSet<_>>(), want);
    let r3 = listed[&id("192.0.2.3")].expect("timeout");
    assert!((4990.0..=5000.0).contains(&r3), "prolonged ban: {r3}");
    assert_eq!(listed[&id("2001:db8::9")], None);
    // A second reconcile finds nothing to do.
    let again = rt.block_on(fw.reconcile(&desired)).expect("reconcile");
    assert_eq!((again.added, again.removed, again.updated), (0, 0, 0));

    // Nested prefixes cannot both be in an interval set: the wider one stays, with the longer time.
    let report = rt
        .block_on(fw.ban(&[(id("198.51.0.0/16"), Some(60.0))]))
        .expect("ban of a covering prefix");
    assert_eq!(
        report.merged,
        vec![(id("198.51.100.0/24"), id("198.51.0.0/16"))]
    );
    let listed: BTreeMap<HostId, Option<f64>> = rt
        .block_on(fw.elements())
        .expect("elements")
        .into_iter()
        .collect();
    assert_eq!(listed.get(&id("198.51.0.0/16")), Some(&None), "{listed:?}");
    assert!(!listed.contains_key(&id("198.51.100.0/24")));
}

#[test]
fn nft_refuses_raw_ids_without_running_anything() {
    require_root(&["ip", "nft"]);
    let lab = Lab::new("fw-nft-raw");
    let rt = rt();
    let fw = nft(&lab, "raw", "multiport", "http");
    rt.block_on(fw.start()).expect("start");
    fw.runner().clear_history();
    for evil in [
        "1.2.3.4 } ; flush ruleset ; add element inet x y { 5.6.7.8",
        "host.example",
    ] {
        let err = rt
            .block_on(fw.ban(&[(id("192.0.2.1"), None), (HostId::raw(evil), None)]))
            .expect_err("raw id");
        assert!(err.to_string().contains("raw ids"), "{err}");
        assert!(rt.block_on(fw.unban(&[HostId::raw(evil)])).is_err());
        assert!(
            rt.block_on(fw.reconcile(&[(HostId::raw(evil), None)]))
                .is_err()
        );
    }
    assert_eq!(fw.runner().invocations(), 0, "{:?}", fw.runner().history());
}

fn ipset(lab: &Lab, jail: &str) -> IpsetBackend {
    IpsetBackend::new(
        JailRule::new(jail, "multiport", "http,https", "tcp", "reject").expect("rule"),
        IpsetOptions::default(),
        runner(lab),
    )
}

/// `iptables -S` / `ip6tables -S` inside "srv".
fn xtables_rules(lab: &Lab, program: &str) -> Vec<String> {
    lab.exec(
        &lab.srv,
        &[program, "-w", "-S", "INPUT"],
        Duration::from_secs(10),
    )
    .expect_ok("listing rules")
    .stdout
    .lines()
    .filter(|l| l.starts_with("-A "))
    .map(str::to_string)
    .collect()
}

#[test]
fn ipset_iptables_ban_unban_ipv6_restore_and_stop() {
    require_root(&["ip", "ipset", "iptables", "ip6tables", "nginx", "curl"]);
    let mut lab = Lab::new("fw-ipset");
    lab.start_nginx();
    let rt = rt();
    let fw = ipset(&lab, "web");
    rt.block_on(fw.start()).expect("start");
    rt.block_on(fw.start()).expect("second start");
    for prog in ["iptables", "ip6tables"] {
        let rules = xtables_rules(&lab, prog);
        assert_eq!(
            rules.len(),
            1,
            "{prog}: one rule after two starts: {rules:?}"
        );
        assert!(rules[0].contains("ferroban-web"), "{rules:?}");
    }
    assert_reach(&lab, true, true, "after start");
    for (what, ids, v4, v6) in [
        ("IPv4 address", vec![CLI_V4], false, true),
        ("IPv4 /24", vec!["198.51.100.0/24"], false, true),
        ("IPv6 address", vec![CLI_V6], true, false),
        ("IPv6 /64", vec!["2001:db8::/64"], true, false),
    ] {
        let ids: Vec<HostId> = ids.into_iter().map(id).collect();
        let bans: Vec<Ban> = ids.iter().map(|i| (i.clone(), Some(600.0))).collect();
        fw.runner().clear_history();
        rt.block_on(fw.ban(&bans)).expect("ban");
        assert_eq!(fw.runner().invocations(), 1, "{:?}", fw.runner().history());
        assert_reach(&lab, v4, v6, &format!("ipset: {what} banned"));
        assert_eq!(lab.http(&page_v4_8080()), Http::Status(200), "{what}: 8080");
        rt.block_on(fw.unban(&ids)).expect("unban");
        assert_reach(&lab, true, true, &format!("ipset: {what} unbanned"));
    }

    // Kernel timeouts: a 2 s element goes by itself.
    rt.block_on(fw.ban(&[(id("192.0.2.77"), Some(2.0))]))
        .expect("ban");
    let has = |fw: &IpsetBackend| {
        rt.block_on(fw.elements())
            .expect("elements")
            .iter()
            .any(|(i, _)| *i == id("192.0.2.77"))
    };
    assert!(has(&fw));
    wait_for(
        "the ipset element to expire",
        Duration::from_secs(8),
        || (!has(&fw)).then_some(()),
    );

    // 100,000 bans restored with one `ipset restore`, all present.
    let desired = many_bans(100_000, true);
    fw.runner().clear_history();
    let t = Instant::now();
    let report = rt.block_on(fw.reconcile(&desired)).expect("reconcile");
    let writes = fw
        .runner()
        .history()
        .iter()
        .filter(|a| a[..2] == ["ipset", "restore"])
        .count();
    assert_eq!(writes, 1, "{:?}", fw.runner().history());
    assert_eq!(report.added, 100_000);
    eprintln!(
        "ipset reconcile of 100,000 bans: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let listed = rt.block_on(fw.elements()).expect("elements");
    assert_eq!(ids_of(&listed), ids_of(&desired));
    assert_eq!(listed.iter().filter(|(_, r)| r.is_none()).count(), 10_000);

    // A foreign set and rule survive stop.
    lab.exec(
        &lab.srv,
        &["ipset", "create", "foreign", "hash:ip"],
        Duration::from_secs(5),
    )
    .expect_ok("foreign set");
    lab.exec(
        &lab.srv,
        &[
            "iptables",
            "-w",
            "-A",
            "INPUT",
            "-m",
            "set",
            "--match-set",
            "foreign",
            "src",
            "-j",
            "DROP",
        ],
        Duration::from_secs(5),
    )
    .expect_ok("foreign rule");
    rt.block_on(fw.stop()).expect("stop");
    let rules = xtables_rules(&lab, "iptables");
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert!(rules[0].contains("foreign"));
    assert!(xtables_rules(&lab, "ip6tables").is_empty());
    let sets = lab
        .exec(&lab.srv, &["ipset", "list", "-n"], Duration::from_secs(5))
        .expect_ok("ipset list")
        .stdout;
    assert_eq!(sets.split_whitespace().collect::<Vec<_>>(), vec!["foreign"]);
    rt.block_on(fw.stop()).expect("a second stop is harmless");
}

/// ufw's configuration for one namespace: copies of /etc/ufw and /etc/default under
/// /etc/netns/<ns>/, which `ip netns exec` mounts over the originals for the commands it runs.
/// Removed on drop.
struct UfwConfig {
    dir: PathBuf,
}

impl UfwConfig {
    fn new(ns: &str) -> UfwConfig {
        let dir = PathBuf::from("/etc/netns").join(ns);
        assert!(!dir.exists(), "{} exists already", dir.display());
        std::fs::create_dir_all(&dir).expect("netns config dir");
        let cfg = UfwConfig { dir };
        for src in ["/etc/ufw", "/etc/default"] {
            let out = std::process::Command::new("cp")
                .args(["-a", src])
                .arg(&cfg.dir)
                .output()
                .expect("cp");
            assert!(out.status.success(), "cp -a {src}: {out:?}");
        }
        // Start from ufw's pristine rule lists, whatever the host's ufw has.
        for f in ["user.rules", "user6.rules"] {
            std::fs::copy(
                PathBuf::from("/usr/share/ufw/iptables").join(f),
                cfg.dir.join("ufw").join(f),
            )
            .unwrap_or_else(|e| panic!("ufw's pristine {f}: {e}"));
        }
        // Accept by default (only the bans block), and no sysctl changes.
        let default = cfg.dir.join("default/ufw");
        let text = std::fs::read_to_string(&default).expect("default/ufw");
        let text: String = text
            .lines()
            .map(|l| {
                if l.starts_with("DEFAULT_INPUT_POLICY=") {
                    "DEFAULT_INPUT_POLICY=\"ACCEPT\"".to_string()
                } else if l.starts_with("IPT_SYSCTL=") {
                    "IPT_SYSCTL=/etc/ufw/ferroban-test-sysctl.conf".to_string()
                } else {
                    l.to_string()
                }
            })
            .map(|l| l + "\n")
            .collect();
        std::fs::write(&default, text).expect("write default/ufw");
        std::fs::write(cfg.dir.join("ufw/ferroban-test-sysctl.conf"), "").expect("sysctl");
        cfg
    }
}

impl Drop for UfwConfig {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("cleanup: removing {}: {e}", self.dir.display());
        }
        // /etc/netns itself goes too unless something else is in it.
        let _ = std::fs::remove_dir("/etc/netns");
    }
}

#[test]
fn ufw_ban_unban_reconcile_and_stop() {
    require_root(&["ip", "ufw", "iptables", "nginx", "curl"]);
    let mut lab = Lab::new("fw-ufw");
    let _cfg = UfwConfig::new(&lab.srv);
    lab.start_nginx();
    let rt = rt();
    let fw = UfwBackend::new(
        JailRule::new("web", "multiport", "http,https", "tcp", "reject").expect("rule"),
        runner(&lab),
    );
    let err = rt.block_on(fw.start()).expect_err("ufw is inactive");
    assert!(err.to_string().contains("not active"), "{err}");
    lab.exec(
        &lab.srv,
        &["ufw", "--force", "enable"],
        Duration::from_secs(30),
    )
    .expect_ok("ufw enable in the namespace");
    lab.exec(
        &lab.srv,
        &["ufw", "allow", "8080/tcp"],
        Duration::from_secs(30),
    )
    .expect_ok("a rule of the admin's own");
    rt.block_on(fw.start()).expect("start");
    assert_reach(&lab, true, true, "ufw enabled, nothing banned");
    for (what, ids, v4, v6) in [
        ("IPv4 address", vec![CLI_V4], false, true),
        (
            "IPv6 /64 and IPv4 /24",
            vec!["2001:db8::/64", "198.51.100.0/24"],
            false,
            false,
        ),
        ("IPv6 address", vec![CLI_V6], true, false),
    ] {
        let ids: Vec<HostId> = ids.into_iter().map(id).collect();
        let bans: Vec<Ban> = ids.iter().map(|i| (i.clone(), Some(600.0))).collect();
        rt.block_on(fw.ban(&bans)).expect("ban");
        assert_reach(&lab, v4, v6, &format!("ufw: {what} banned"));
        assert_eq!(
            lab.http(&page_v4_8080()),
            Http::Status(200),
            "{what}: port 8080 is not the jail's"
        );
        let listed = rt.block_on(fw.elements()).expect("elements");
        assert_eq!(ids_of(&listed), ids.iter().cloned().collect(), "{what}");
        rt.block_on(fw.unban(&ids)).expect("unban");
        assert_reach(&lab, true, true, &format!("ufw: {what} unbanned"));
        assert!(rt.block_on(fw.elements()).expect("elements").is_empty());
    }
    // Banning twice adds one rule.
    rt.block_on(fw.ban(&[(id("192.0.2.1"), None), (id("192.0.2.2"), None)]))
        .expect("ban");
    rt.block_on(fw.ban(&[(id("192.0.2.1"), None)]))
        .expect("ban again");
    let added = lab
        .exec(&lab.srv, &["ufw", "show", "added"], Duration::from_secs(30))
        .expect_ok("show added")
        .stdout;
    assert_eq!(added.matches("from 192.0.2.1 ").count(), 1, "{added}");
    // Reconcile: 192.0.2.2 is stale, 2001:db8::5 missing.
    let report = rt
        .block_on(fw.reconcile(&[(id("192.0.2.1"), Some(60.0)), (id("2001:db8::5"), None)]))
        .expect("reconcile");
    assert_eq!(
        (report.added, report.removed, report.unchanged),
        (1, 1, 1),
        "{report:?}"
    );
    assert_eq!(
        ids_of(&rt.block_on(fw.elements()).expect("elements")),
        [id("192.0.2.1"), id("2001:db8::5")].into_iter().collect()
    );
    // Stop removes the jail's rules only.
    rt.block_on(fw.stop()).expect("stop");
    let added = lab
        .exec(&lab.srv, &["ufw", "show", "added"], Duration::from_secs(30))
        .expect_ok("show added")
        .stdout;
    assert!(!added.contains("ferroban-web"), "{added}");
    assert!(added.contains("allow 8080/tcp"), "{added}");
    // ufw's comments are stored hex-encoded.
    let tag: String = "ferroban-web".bytes().map(|b| format!("{b:02x}")).collect();
    for f in ["/etc/ufw/user.rules", "/etc/ufw/user6.rules"] {
        let host = std::fs::read_to_string(f).unwrap_or_default();
        assert!(
            !host.contains(&tag),
            "{f} of the host has this test's rules"
        );
    }
}
