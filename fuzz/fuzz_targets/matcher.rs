//! The Python→PCRE2 translation and the linear-time gate: a fail2ban regex (tags, Python `re`
//! syntax) compiled, then matched against lines. Oracle: PCRE2 itself, run on the translation
//! without the gate. Whenever PCRE2 finishes within its budget, `Regex::search` must agree with
//! it (same match span: the gate may only reject lines PCRE2 rejects), `is_match` must agree
//! with `search`, and the linear-time exact translation, where there is one, must agree too.
//!
//! Input: flags byte (bit 0: multiline, bit 1: usedns=no), the pattern, NUL, lines (`\n`).

#![no_main]

mod common;

use ferroban_matcher::{MATCH_LIMIT, Regex, RegexOptions, UseDns};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some(split) = rest.iter().position(|b| *b == 0) else {
        return;
    };
    let pattern = String::from_utf8_lossy(&rest[..split]);
    let text = String::from_utf8_lossy(&rest[split + 1..]);
    let opts = RegexOptions {
        multiline: flags & 1 != 0,
        use_dns: if flags & 2 != 0 { UseDns::No } else { UseDns::Warn },
    };
    let Ok(re) = Regex::new(&pattern, &opts) else {
        return;
    };
    let translated = re.translated();
    let oracle = pcre2::bytes::RegexBuilder::new()
        .utf(true)
        .ucp(true)
        .build(&format!(
            "(*LIMIT_MATCH={MATCH_LIMIT})(*LIMIT_DEPTH={MATCH_LIMIT}){translated}"
        ))
        .unwrap_or_else(|e| panic!("the translation {translated:?} of {pattern:?} compiled once but not twice: {e}"));
    for line in common::lines(&text) {
        // As fail2ban searches: the line with its newline.
        let haystack = format!("{line}\n");
        let found = re.search(&haystack);
        let span = found.as_ref().map(|c| (c.start(), c.end()));
        assert_eq!(
            re.is_match(&haystack),
            span.is_some(),
            "is_match and search disagree: {pattern:?} on {haystack:?}"
        );
        if let Ok(expected) = oracle.find(haystack.as_bytes()) {
            let expected = expected.map(|m| (m.start(), m.end()));
            assert_eq!(
                span, expected,
                "search and PCRE2 disagree: {pattern:?} (PCRE2 {translated:?}) on {haystack:?}"
            );
        }
        if let Some(linear) = re.search_linear(&haystack) {
            let linear = linear.map(|c| (c.start(), c.end()));
            if span.is_some() || linear.is_some() {
                if let Ok(expected) = oracle.find(haystack.as_bytes()) {
                    assert_eq!(
                        linear,
                        expected.map(|m| (m.start(), m.end())),
                        "the linear exact translation and PCRE2 disagree: {pattern:?} on {haystack:?}"
                    );
                }
            }
        }
        if let Some(c) = found {
            let _ = c.groups();
        }
    }
});
