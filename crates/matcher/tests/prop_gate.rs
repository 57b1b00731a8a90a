//! Property test (proptest): on generated log lines, `Regex::search` — literal prefilter, the
//! linear-time gate, then PCRE2 or the linear exact translation — finds exactly what PCRE2
//! alone finds on the translation (same span, or both nothing). The gate may only reject lines
//! PCRE2 rejects; `is_match` agrees with `search`; the linear exact translation, where one
//! exists, agrees too. Lines are lines the patterns match, edited at random (words, addresses,
//! host names, random text and Unicode inserted, parts deleted or repeated), or random words,
//! padded at times past the long-haystack threshold (4 KiB), where the linear path takes over.

use ferroban_matcher::{LONG_HAYSTACK, MATCH_LIMIT, Regex, RegexOptions, UseDns};
use proptest::prelude::*;

/// fail2ban-style regexes (written for this test) covering tags, alternations, optional parts,
/// lazy and greedy wildcards, anchors, case folding, look-arounds, back-references,
/// conditionals and named `F-` groups.
const PATTERNS: &[&str] = &[
    r"^Failed (?:password|publickey) for (?:invalid user )?\S+ from <HOST>(?: port \d+)?(?: ssh\d*)?\s*$",
    r"^Invalid user <F-USER>\S*</F-USER> from <HOST>",
    r"^(?:\S+ )?sshd\[\d+\]: (?:error: )?Received disconnect from <HOST>(?: port \d+)?:\s*(?:11|3): .*$",
    r#"^<HOST> - \S+ \[[^\]]*\] "(?:GET|POST|HEAD) /\S* HTTP/1\.[01]" 40[134] \d+"#,
    r"(?i)auth(?:entication)? fail(?:ure|ed);.*rhost=<HOST>(?:\s+user=\S*)?\s*$",
    r"^.*?from <HOST>$",
    r"^.*from <HOST>\s*$",
    r"user (?P<u>\w+) .* again (?P=u) from <ADDR>",
    r"(?<=client )<IP4>(?! allowed)",
    r"(?<!not )refused connect from \S+ \(<IP6>\)",
    r"^(?P<x>\[)?<HOST>(?(x)\]|)\s+denied",
    r"^\s*(?:\w+\s+){0,3}login attempt from <HOST> \(<F-ID>\w+</F-ID>\)",
    r"<SUBNET> blocked",
    r"^net <IP4>/<CIDR> listed",
    r"(?s)start.*?end <HOST>",
    r"^(?:[^:]*: ){1,4}bad (?:request|header) from <DNS>\.?$",
];

fn address() -> impl Strategy<Value = String> {
    prop_oneof![
        (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        any::<u128>().prop_map(|x| std::net::Ipv6Addr::from(x).to_string()),
        Just("2001:db8::1".to_string()),
        Just("::ffff:192.0.2.7".to_string()),
        Just("192.0.2.0/24".to_string()),
        Just("2001:db8::/32".to_string()),
        "[a-z]{1,8}(\\.[a-z]{1,6}){0,3}",
        "[0-9.:a-f]{1,20}",
    ]
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec![
            "Failed", "password", "publickey", "for", "invalid", "user", "from", "port", "22",
            "ssh2", "sshd[123]:", "error:", "Received", "disconnect", "11:", "3:", "-", "[06/Dec/2026:12:00:00 +0000]",
            "\"GET", "/x", "HTTP/1.1\"", "404", "0", "auth", "AUTHENTICATION", "failure;", "rhost=", "user=root",
            "again", "client", "allowed", "not", "refused", "connect", "(", ")", "[", "]", "denied",
            "login", "attempt", "blocked", "listed", "start", "end", "bad", "request", "header",
            "x:", ":", "\n", "\t", " ", "é", "İ", "ǅ", "٣", "\u{2028}", "\u{0}",
        ]).prop_map(str::to_string),
        3 => address(),
        1 => "\\PC{0,6}",
        1 => "[ -~]{0,12}",
    ]
}

/// A line each pattern matches (`{A}`: an address), the starting point of most generated
/// lines.
const TEMPLATES: &[&str] = &[
    "Failed password for invalid user root from {A} port 22 ssh2",
    "Invalid user admin from {A}",
    "host sshd[123]: Received disconnect from {A} port 22:11: Bye",
    "{A} - - [06/Dec/2026:12:00:00 +0000] \"GET /x HTTP/1.1\" 404 0",
    "pam_unix: authentication failure; logname= uid=0 rhost={A}  user=root",
    "x from {A}",
    "a from b from {A} ",
    "user bob tried again bob from {A}",
    "client {A} denied",
    "refused connect from host ({A})",
    "[{A}] denied",
    "sshd login attempt from {A} (abc)",
    "{A} blocked",
    "net {A}/24 listed",
    "start\nmore end {A}",
    "a: b: bad request from {A}",
];

/// A template with its address filled in, then up to four edits (insert a word, delete a
/// range, duplicate a range), or a line made of random words; padded at times past
/// [`LONG_HAYSTACK`].
fn line() -> impl Strategy<Value = String> {
    let edits = proptest::collection::vec(
        (0u8..3, any::<prop::sample::Index>(), 0usize..12, word()),
        0..5,
    );
    let templated =
        (prop::sample::select(TEMPLATES), address(), edits).prop_map(|(t, a, edits)| {
            let mut s = t.replace("{A}", &a);
            for (kind, at, len, w) in edits {
                let mut pos = at.index(s.len() + 1);
                while !s.is_char_boundary(pos) {
                    pos -= 1;
                }
                let mut end = (pos + len).min(s.len());
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                match kind {
                    0 => s.insert_str(pos, &w),
                    1 => s.replace_range(pos..end, ""),
                    _ => {
                        let dup = s[pos..end].to_string();
                        s.insert_str(pos, &dup);
                    }
                }
            }
            s
        });
    let random = (
        proptest::collection::vec(word(), 0..14),
        proptest::collection::vec(prop::sample::select(vec![" ", "", "  ", ": "]), 14),
    )
        .prop_map(|(words, seps)| {
            let mut s = String::new();
            for (w, sep) in words.iter().zip(seps.iter().cycle()) {
                s.push_str(w);
                s.push_str(sep);
            }
            s
        });
    (
        prop_oneof![3 => templated, 1 => random],
        prop_oneof![8 => Just(0usize), 1 => Just(LONG_HAYSTACK + 1), 1 => 1usize..(2 * LONG_HAYSTACK)],
        any::<bool>(),
    )
        .prop_map(|(s, pad, pad_front)| {
            if pad == 0 {
                return s;
            }
            let fill = "x".repeat(pad);
            if pad_front {
                format!("{fill} {s}")
            } else {
                format!("{s} {fill}")
            }
        })
}

struct Case {
    re: Regex,
    oracle: pcre2::bytes::Regex,
    pattern: &'static str,
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for pattern in PATTERNS {
        for (multiline, use_dns) in [(false, UseDns::Warn), (true, UseDns::No)] {
            let re = Regex::new(pattern, &RegexOptions { multiline, use_dns })
                .unwrap_or_else(|e| panic!("{pattern}: {e}"));
            let oracle = pcre2::bytes::RegexBuilder::new()
                .utf(true)
                .ucp(true)
                .build(&format!(
                    "(*LIMIT_MATCH={MATCH_LIMIT})(*LIMIT_DEPTH={MATCH_LIMIT}){}",
                    re.translated()
                ))
                .unwrap();
            out.push(Case {
                re,
                oracle,
                pattern,
            });
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn gate_and_search_agree_with_pcre2(text in line()) {
        thread_local!(static CASES: Vec<Case> = cases());
        // As fail2ban searches: the line with its newline.
        let hay = format!("{text}\n");
        CASES.with(|cases| -> Result<(), TestCaseError> {
            for c in cases {
                let got = c.re.search(&hay).map(|m| (m.start(), m.end()));
                prop_assert_eq!(c.re.is_match(&hay), got.is_some(), "{} on {:?}", c.pattern, hay);
                let Ok(want) = c.oracle.find(hay.as_bytes()) else {
                    continue; // PCRE2's budget ran out: no oracle
                };
                let want = want.map(|m| (m.start(), m.end()));
                prop_assert_eq!(got, want, "{} (PCRE2 {}) on {:?}", c.pattern, c.re.translated(), hay);
                if let Some(linear) = c.re.search_linear(&hay) {
                    prop_assert_eq!(linear.map(|m| (m.start(), m.end())), want, "linear: {} on {:?}", c.pattern, hay);
                }
            }
            Ok(())
        })?;
    }
}

/// The generator is worth something only if its lines do match: most patterns must match some
/// of 3000 generated lines (deterministic seed).
#[test]
fn generated_lines_match_most_patterns() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let cases = cases();
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = line();
    let mut hit = vec![0usize; cases.len()];
    for _ in 0..3000 {
        let hay = format!("{}\n", strategy.new_tree(&mut runner).unwrap().current());
        for (i, c) in cases.iter().enumerate() {
            hit[i] += usize::from(c.re.is_match(&hay));
        }
    }
    let matched = hit.iter().filter(|n| **n > 0).count();
    eprintln!(
        "patterns matched by generated lines: {matched} of {}: {hit:?}",
        cases.len()
    );
    assert!(matched * 2 > cases.len(), "{hit:?}");
}
