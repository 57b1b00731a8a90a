//! Durations (`bantime = 1d12h`, `-1`, `3600`, `1.5w`…) and addresses (failure ids, `ignoreip`
//! entries: `a.b.c.d`, `[v6]`, `addr/plen`, `addr/mask`, names), as configuration and log lines
//! give them.
//!
//! Invariants: a parsed duration is a number (never NaN); an address or network that parses
//! prints as text that parses back to the same id; a network contains its own address; an
//! `ignoreip` list built from the entries checks every id without resolving names (the resolver
//! answers nothing) and ignores an id that is one of its own address entries.
//!
//! Input: lines (`\n`).

#![no_main]

use ferroban_engine::ignore::{IgnoreEntry, IgnoreList};
use ferroban_engine::ip::HostId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let words: Vec<&str> = text.split('\n').collect();
    for w in &words {
        if let Ok(d) = ferroban_config::parse_duration(w) {
            assert!(!d.is_nan(), "{w:?} -> {d}");
        }
        let id = HostId::parse(w);
        if id.is_ip() {
            let shown = id.to_string();
            assert_eq!(HostId::parse(&shown), id, "{w:?} shown as {shown:?}");
            assert!(id.contains(&id), "{id:?} does not contain itself");
        }
        let _ = IgnoreEntry::parse(w).to_string();
    }
    let entries: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    let mut list = IgnoreList::new(&entries, false, None);
    list.set_resolver(|_| Vec::new());
    for w in &words {
        let id = HostId::parse(w);
        let verdict = list.check(&id, 1_796_558_400.0);
        if matches!(id, HostId::Addr(_)) {
            assert!(verdict.is_some(), "{w:?} is in ignoreip but not ignored");
        }
    }
});
