//! The gate's work on ReDoS-shaped failregexes, counted (not timed): the lazy DFA's own count of
//! the bytes it stepped through ([`Regex::gate_scan`], `regex-automata`'s
//! `Cache::search_total_len`) never exceeds the haystack, and its cache is never cleared (a
//! cleared cache could make it give up and leave the line to the backtracker), from 1 KiB to
//! 64 KiB. `bench/redos.py` times the same shapes against fail2ban-regex.
//!
//! A pattern the gate cannot decide (a look-behind after a nested quantifier) is recorded too:
//! its gate passes the hostile line, so the backtracker runs on it under its budget (the cost
//! per line BENCHMARKS.md reports).

use ferroban_matcher::{Regex, RegexOptions};

const HOST: &str = "192.0.2.1";
const LENGTHS: [usize; 7] = [
    1 << 10,
    2 << 10,
    4 << 10,
    8 << 10,
    16 << 10,
    32 << 10,
    64 << 10,
];

/// `<HOST> ` then `fill` up to `len` bytes, then `last`; with the trailing `\n` of a haystack.
fn haystack(len: usize, fill: char, last: char) -> String {
    let mut s = format!("{HOST} ");
    while s.len() < len - 1 {
        s.push(fill);
    }
    s.push(last);
    s.push('\n');
    s
}

fn regex(p: &str) -> Regex {
    Regex::new(p, &RegexOptions::default()).expect("compiles")
}

#[test]
fn the_gate_rejects_catastrophic_shapes_in_one_pass() {
    for pattern in [
        r"^<HOST> (a+)+$",
        r"^<HOST> (.*a){12}$",
        r"^<HOST> (?:a|aa)+$",
        r"<HOST> (a+)+b",
        r"(?:(?:a|a)+)+x from <HOST>",
    ] {
        let re = regex(pattern);
        assert!(re.has_gate(), "{pattern}: no gate");
        for len in LENGTHS {
            let h = haystack(len, 'a', '!');
            let scan = re.gate_scan(&h).expect("gate");
            assert_eq!(scan.matched, Some(false), "{pattern} at {len}: {scan:?}");
            assert_eq!(scan.cache_clears, 0, "{pattern} at {len}: {scan:?}");
            // One pass: every byte up to the one no match can take (the `!` at the end, or
            // the end), none twice.
            assert!(
                (h.len() - 2..=h.len()).contains(&scan.bytes_scanned),
                "{pattern} at {len}: {} bytes stepped for a {}-byte haystack",
                scan.bytes_scanned,
                h.len()
            );
            assert!(!re.is_match(&h), "{pattern} at {len}");
        }
    }
}

#[test]
fn a_matching_line_passes_the_gate_in_one_pass() {
    let re = regex(r"^(?:.*\s)+from <HOST>$");
    for len in LENGTHS {
        let mut h = "x ".repeat((len - HOST.len() - 5) / 2);
        h.push_str("from ");
        h.push_str(HOST);
        h.push('\n');
        let scan = re.gate_scan(&h).expect("gate");
        assert_eq!(scan.matched, Some(true), "{len}: {scan:?}");
        assert_eq!(scan.cache_clears, 0, "{len}: {scan:?}");
        assert!(scan.bytes_scanned <= h.len(), "{len}: {scan:?}");
        let m = re.search(&h).expect("matches");
        assert_eq!(m.name("ip4"), Some(HOST));
    }
}

#[test]
fn a_look_behind_leaves_the_hostile_line_to_the_backtracker() {
    // The gate drops the look-behind: `(a+)+b$` passes; PCRE2 decides (no match), under its
    // budget. This is the shape whose cost is per line, not per byte (BENCHMARKS.md).
    let re = regex(r"^<HOST> (a+)+(?<!a)b$");
    let h = haystack(1 << 10, 'a', 'b');
    let scan = re.gate_scan(&h).expect("gate");
    assert_eq!(scan.matched, Some(true), "{scan:?}");
    assert!(!re.is_match(&h));
}
