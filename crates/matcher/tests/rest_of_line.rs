//! Property test (proptest): a pattern ending in a group of `.+` then `$` (fail2ban's
//! `<F-CONTENT>.+</F-CONTENT>$` prefregexes) is searched by `Regex::search_spans` without
//! running that `.+` (the group's span is computed from the rest of the line when the
//! pattern with the group emptied matches). Its spans must be exactly those of
//! `Regex::search`, which runs the whole pattern: on single lines, lines with a `\r`, an
//! empty or blank rest, several lines (a newline before the end), and text the prefix's
//! `\s+` could take.

use ferroban_matcher::{Regex, RegexOptions};
use proptest::prelude::*;

/// Written for this test: prefixes of the shape fail2ban's common.conf builds, optional parts
/// that backtrack, a conditional naming the group before it, and a pattern without an anchor.
const PATTERNS: &[&str] = &[
    r"^<F-MLFID>(?:\[\])?\s*(?:\S+\s+)?(?:(?:\[\d+\])?:\s+[\[\(]?sshd(?:\(\S+\))?[\]\)]?:?|[\[\(]?sshd(?:\(\S+\))?[\]\)]?:?(?:\[\d+\])?:?)?\s*</F-MLFID>(?:(?:error|fatal): (?:PAM: )?)?<F-CONTENT>.+</F-CONTENT>$",
    r"^\s*(?:\S+ )?(?:kernel: )?\S+:\s+<F-CONTENT>.+</F-CONTENT>$",
    r"^(?P<x>\[)?\S*(?(x)\]|)\s*(?P<content>.+)$",
    r"sshd\[\d+\]:\s*(?P<content>.+)$",
    r"^(?:a|ab)\s*(?P<c>.+)$",
    r"^(?P<c>.+)$",
];

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(vec![
            "web01", "sshd[1162]:", "sshd:", "[1162]:", "sshd(pam)[7]:", "kernel:", "error:",
            "fatal:", "PAM:", "Connection", "from", "192.0.2.1", "port", "22", "[", "]", "[]",
            "a", "ab", "b", " ", "  ", "\t", "\n", "\r", "\r\n", "é", "\u{2028}", "\u{85}",
        ])
        .prop_map(str::to_string),
        1 => "[ -~]{0,10}",
        1 => "\\PC{0,4}",
    ]
}

fn haystack() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(piece(), 0..12),
        prop::collection::vec(prop::bool::ANY, 12),
        prop::bool::ANY,
    )
        .prop_map(|(pieces, spaces, newline)| {
            let mut s = String::new();
            for (i, p) in pieces.iter().enumerate() {
                if i > 0 && spaces[i] {
                    s.push(' ');
                }
                s.push_str(p);
            }
            if newline {
                s.push('\n');
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn search_spans_agrees_with_the_whole_pattern(index in 0..PATTERNS.len(), hay in haystack()) {
        let re = Regex::new(PATTERNS[index], &RegexOptions::default()).unwrap();
        let whole = re.search(&hay).map(|c| {
            (0..=re.group_names().count()).map(|i| c.get(i).map(str::to_string)).collect::<Vec<_>>()
        });
        let mut spans = Vec::new();
        let found = re.search_spans(&hay, &mut spans);
        let quick = found.then(|| {
            let c = re.captures_from_spans(&hay, &spans);
            (0..=re.group_names().count()).map(|i| c.get(i).map(str::to_string)).collect::<Vec<_>>()
        });
        prop_assert_eq!(quick, whole, "pattern {} on {:?}", PATTERNS[index], hay);
    }
}

#[test]
fn the_rest_of_the_line_is_the_content() {
    let re = Regex::new(PATTERNS[0], &RegexOptions::default()).unwrap();
    let mut spans = Vec::new();
    for (hay, content) in [
        (
            " web01 sshd[1162]: Connection from 192.0.2.1\n",
            Some("Connection from 192.0.2.1"),
        ),
        (" web01 sshd[1162]: x\r\n", Some("x\r")),
        (" web01 sshd[1162]: \n", Some(" ")),
        ("web01 sshd[7]: a\nb\n", None),
        ("", None),
    ] {
        let found = re.search_spans(hay, &mut spans);
        let got = found
            .then(|| {
                re.captures_from_spans(hay, &spans)
                    .name("content")
                    .map(str::to_string)
            })
            .flatten();
        let whole = re
            .search(hay)
            .and_then(|c| c.name("content").map(str::to_string));
        assert_eq!(got, whole, "{hay:?}");
        assert_eq!(got.as_deref(), content, "{hay:?}");
    }
}
