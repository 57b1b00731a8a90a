//! Host names in log lines (`usedns = yes|warn`) are resolved off the engine: a failure whose
//! `<HOST>` is a name waits for [`Lookup::HostName`] while every other id goes on; the answer
//! counts it once per address, cached as fail2ban's `DNSUtils.CACHE_nameToIp` caches it (five
//! minutes, a name without address too), with fail2ban's warnings in fail2ban's words (checked
//! against its `ipdns.py` when the reference is there).

mod common;

use std::net::IpAddr;
use std::sync::Mutex;

use ferroban_engine::ignore::Lookup;
use ferroban_engine::jail::{DNS_CACHE_TIME, Event, Jail};
use ferroban_engine::log::{Hook, Level, set_hook};

static LOGGED: Mutex<Vec<(Level, String)>> = Mutex::new(Vec::new());

fn capture() {
    set_hook(Hook {
        enabled: |_| true,
        log: |level, _module, msg| LOGGED.lock().unwrap().push((level, msg.to_string())),
    });
}

/// The DNS warnings logged so far that mention `needle` (tests run in parallel: each uses its
/// own names); the jail's own warnings (`[test] ...`, e.g. about undated lines) are left out.
fn warnings_about(needle: &str) -> Vec<String> {
    LOGGED
        .lock()
        .unwrap()
        .iter()
        .filter(|(lv, m)| *lv == Level::Warning && m.contains(needle) && !m.starts_with('['))
        .map(|(_, m)| m.clone())
        .collect()
}

/// Jail `test`: `FAIL from <HOST>`, maxretry 2, with `usedns`.
fn jail(tag: &str, usedns: &str) -> Jail {
    let mut j = common::test_jail(
        &format!("usedns-{tag}"),
        &format!(
            "maxretry = 2\nfindtime = 10m\nbantime = 10m\nignoreself = false\nusedns = {usedns}"
        ),
    );
    j.set_in_operation(true);
    j
}

const T0: f64 = 1_796_558_400.0;

fn banned(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Ban(t) => Some(t.id.to_string()),
            Event::Prolong(_) | Event::Unban(_) => None,
        })
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn a_host_name_waits_for_its_answer_and_counts_once_per_address() {
    capture();
    let mut j = jail("wait", "warn");
    let name = "slow.wait.example";
    // The name's failure waits; one look-up is asked.
    assert!(j.process_line(&format!("FAIL from {name}"), T0).is_empty());
    assert_eq!(j.take_lookups(), [Lookup::HostName(name.into())]);
    assert_eq!((j.waiting_for_dns(), j.waiting_failures()), (1, 1));
    // Another id is not held up by it: banned at its second failure.
    assert!(j.process_line("FAIL from 192.0.2.7", T0).is_empty());
    let ev = j.process_line("FAIL from 192.0.2.7", T0 + 1.0);
    assert_eq!(banned(&ev), ["192.0.2.7"]);
    // A second failure of the name waits too, without a second look-up.
    assert!(
        j.process_line(&format!("FAIL from {name}"), T0 + 2.0)
            .is_empty()
    );
    assert!(j.take_lookups().is_empty());
    assert_eq!(j.waiting_for_dns(), 2);
    assert_eq!(
        j.counts().total_failed,
        2,
        "only 192.0.2.7's failures counted so far"
    );
    // The answer (two addresses) counts both failures for each address: both reach maxretry.
    let ev = j.answer_dns(
        name,
        Ok(vec![ip("2001:db8::99"), ip("192.0.2.99")]),
        T0 + 3.0,
    );
    let mut b = banned(&ev);
    b.sort();
    assert_eq!(b, ["192.0.2.99", "2001:db8::99"]);
    assert_eq!((j.waiting_for_dns(), j.waiting_failures()), (0, 0));
    // usedns = warn: fail2ban's warning, once per failure counted.
    let determined =
        format!("Determined IP using DNS Lookup: {name} = {{'192.0.2.99', '2001:db8::99'}}");
    assert_eq!(warnings_about(name), [determined.clone(), determined]);
    // Within five minutes the name is answered from the cache: counted at once, no look-up.
    let before = j.counts().total_failed;
    assert!(
        j.process_line(&format!("FAIL from {name}"), T0 + 10.0)
            .is_empty()
    );
    assert!(j.take_lookups().is_empty());
    assert_eq!(j.counts().total_failed, before + 2, "once per address");
    // After it, the name is asked again.
    j.process_line(&format!("FAIL from {name}"), T0 + 3.0 + DNS_CACHE_TIME);
    assert_eq!(j.take_lookups(), [Lookup::HostName(name.into())]);
}

#[test]
fn a_name_without_address_is_warned_about_once_and_cached() {
    capture();
    let mut j = jail("none", "yes");
    let name = "bad.none.example";
    j.process_line(&format!("FAIL from {name}"), T0);
    assert_eq!(j.take_lookups(), [Lookup::HostName(name.into())]);
    let ev = j.answer_dns(name, Err("Name or service not known".into()), T0 + 1.0);
    assert!(ev.is_empty());
    assert_eq!(j.waiting_failures(), 0);
    assert_eq!(j.counts().total_failed, 0);
    assert_eq!(
        warnings_about(name),
        [format!(
            "Unable to find a corresponding IP address for {name}: Name or service not known"
        )]
    );
    // Cached without address: no new look-up, no new warning, nothing counted.
    j.process_line(&format!("FAIL from {name}"), T0 + 2.0);
    assert!(j.take_lookups().is_empty());
    assert_eq!(j.counts().total_failed, 0);
    assert_eq!(warnings_about(name).len(), 1);
    // usedns = yes: an address found is used without the warning of `warn`.
    let good = "good.none.example";
    j.process_line(&format!("FAIL from {good}"), T0 + 3.0);
    assert_eq!(j.take_lookups(), [Lookup::HostName(good.into())]);
    j.answer_dns(good, Ok(vec![ip("198.51.100.4")]), T0 + 4.0);
    assert_eq!(j.counts().total_failed, 1);
    assert!(warnings_about(good).is_empty());
}

#[test]
fn usedns_no_and_raw_never_ask() {
    let mut j = jail("no", "no");
    j.process_line("FAIL from host.no.example", T0);
    assert!(j.take_lookups().is_empty());
    assert_eq!((j.waiting_failures(), j.counts().total_failed), (0, 0));
    let mut j = jail("raw", "raw");
    j.process_line("FAIL from host.raw.example", T0);
    assert!(j.take_lookups().is_empty());
    // raw: the name itself is the id.
    assert_eq!(j.counts().total_failed, 1);
}

#[test]
fn the_warnings_are_fail2bans_words() {
    let root = std::env::var("FERROBAN_F2B_ROOT").unwrap_or_else(|_| "/tmp/f2b/root".into());
    let py =
        std::path::Path::new(&root).join("usr/lib/python3/dist-packages/fail2ban/server/ipdns.py");
    let src = std::fs::read_to_string(&py).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the fail2ban 1.0.2 reference: scripts/f2b-env.sh)",
            py.display()
        )
    });
    for s in [
        "\"Unable to find a corresponding IP address for %s: %s\"",
        "\"Determined IP using DNS Lookup: %s = %s\"",
    ] {
        assert!(src.contains(s), "{s} not in {}", py.display());
    }
}
