//! Bounded time on hostile input: every stock fail2ban regex against lines
//! built to make a backtracking engine explode (long runs of the characters
//! the greedy parts of the patterns accept, alone and spliced into real sample
//! lines the regex matches).
//!
//! Python needs seconds to minutes for some of these (e.g. 3.6 KB of crafted
//! text costs it 2.77 s on one sshd regex); here the gate rejects most in
//! linear time, long haystacks that pass it go to the linear exact
//! translation, and PCRE2's backtracking budget caps the rest.
//!
//! The regexes and sample lines come from `tests/f2b_oracle.py` (see
//! `differential.rs`), which needs `$FERROBAN_F2B_ROOT`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ferroban_matcher::{Regex, RegexOptions, UseDns};
use serde_json::Value;

fn oracle() -> Value {
    let root = std::env::var("FERROBAN_F2B_ROOT").unwrap_or_else(|_| "/tmp/f2b/root".to_string());
    assert!(
        Path::new(&root)
            .join("usr/lib/python3/dist-packages/fail2ban")
            .is_dir(),
        "fail2ban reference not found under {root}: set FERROBAN_F2B_ROOT to an extracted fail2ban 1.0.2 tree"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/f2b_oracle.py");
    let out = Command::new("python3")
        .arg(&script)
        .env("FERROBAN_F2B_ROOT", &root)
        .output()
        .expect("python3 must be installed");
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("oracle output is JSON")
}

/// Runs of characters that greedy parts of fail2ban regexes accept.
fn runs(n: usize) -> Vec<String> {
    vec![
        " ".repeat(n),
        "a".repeat(n),
        ".".repeat(n),
        "1".repeat(n),
        "1.".repeat(n / 2),
        "a:".repeat(n / 2),
        "a ".repeat(n / 2),
        "-".repeat(n),
        "\t".repeat(n),
        "é".repeat(n / 2),
        "x=".repeat(n / 2),
        "[a] ".repeat(n / 4),
    ]
}

#[test]
fn every_stock_regex_stays_fast_on_crafted_lines() {
    let data = oracle();
    let specs = data["regexes"].as_array().expect("regexes");
    // One sample haystack each regex matches (to splice runs into).
    let mut sample: Vec<Option<String>> = vec![None; specs.len()];
    for s in data["searches"].as_array().expect("searches") {
        let rid = s["r"].as_u64().unwrap_or(0) as usize;
        if !s["m"].is_null() && sample[rid].is_none() {
            sample[rid] = s["h"].as_str().map(str::to_string);
        }
    }
    // 20 KB runs, and 3.6 KB runs: below `LONG_HAYSTACK`, so PCRE2 runs when the gate passes.
    let mut runs = runs(20_000);
    runs.extend(self::runs(3_600));
    let t0 = Instant::now();
    let mut searches = 0usize;
    let mut worst = (Duration::ZERO, String::new(), 0usize);
    for (rid, spec) in specs.iter().enumerate() {
        // usedns=no variants exercise the same shapes; keep the test short.
        if spec["usedns"] == "no" {
            continue;
        }
        let opts = RegexOptions {
            multiline: spec["multiline"].as_bool().unwrap_or(false),
            use_dns: UseDns::Warn,
        };
        let Ok(re) = Regex::new(spec["pattern"].as_str().unwrap_or_default(), &opts) else {
            continue;
        };
        let mut hays: Vec<String> = runs.iter().map(|r| format!("{r}\n")).collect();
        hays.push(format!("{}\n", " ".repeat(60_000)));
        if let Some(s) = &sample[rid] {
            let body = s.trim_end_matches('\n');
            // Splice each run after the first, middle and last space of a matching line.
            let spaces: Vec<usize> = body.match_indices(' ').map(|(i, _)| i).collect();
            let cuts = [spaces.first(), spaces.get(spaces.len() / 2), spaces.last()];
            for cut in cuts.into_iter().flatten() {
                for r in &runs {
                    hays.push(format!("{}{}{}\n", &body[..*cut], r, &body[*cut..]));
                }
            }
        }
        for h in &hays {
            let t = Instant::now();
            let _ = re.search(h);
            let dt = t.elapsed();
            searches += 1;
            if dt > worst.0 {
                worst = (dt, re.source().to_string(), h.len());
            }
        }
    }
    let total = t0.elapsed();
    eprintln!(
        "hostile: {searches} searches of 3.6-60 KB crafted lines in {total:.2?}; slowest {:.2?} ({} bytes) for {:?}",
        worst.0, worst.2, worst.1
    );
    assert!(
        worst.0 < Duration::from_secs(2),
        "one search took {:.2?}: {:?}",
        worst.0,
        worst.1
    );
    assert!(
        total < Duration::from_secs(120),
        "hostile searches took {total:.2?}"
    );
}

/// A pattern of thousands of nested parentheses (a filter file, or `set <jail> addfailregex`
/// through the socket) is refused with an error instead of exhausting the stack (the parser and
/// every pass over the tree recurse once per level): the daemon would have aborted.
#[test]
fn deeply_nested_parentheses_are_an_error_not_a_crash() {
    use ferroban_matcher::{Regex, RegexError, RegexOptions};
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(|| {
            for open in ["(", "(?:", "(?>", "(?=", "(?<!x"] {
                let deep = format!("{}a{}", open.repeat(100_000), ")".repeat(100_000));
                match Regex::new(&deep, &RegexOptions::default()) {
                    Err(RegexError::Syntax { message, .. }) => {
                        assert!(message.contains("nested deeper than 100"), "{message}")
                    }
                    other => panic!("{open}: {other:?}"),
                }
            }
            // 100 levels are still a pattern.
            let ok = format!("{}a{}", "(?:".repeat(100), ")".repeat(100));
            assert!(
                Regex::new(&ok, &RegexOptions::default())
                    .unwrap()
                    .is_match("a\n")
            );
        })
        .unwrap()
        .join()
        .unwrap();
}
