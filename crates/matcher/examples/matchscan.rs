//! Times one failregex over a log file (profiling aid):
//! `cargo run --release -p ferroban-matcher --example matchscan -- FILE REGEX [LINES]`.
//! Prints ns/line for `is_match` on every line, and for `search` and the linear-time
//! exact path (`search_linear`) on the matching lines.

use std::io::{BufRead, BufReader};
use std::time::Instant;

use ferroban_matcher::{Regex, RegexOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: matchscan FILE REGEX [LINES]");
    let pattern = args.next().expect("usage: matchscan FILE REGEX [LINES]");
    let limit: usize = args
        .next()
        .map_or(usize::MAX, |n| n.parse().expect("LINES"));
    let file = std::fs::File::open(&path).expect("open");
    let lines: Vec<String> = BufReader::new(file)
        .lines()
        .take(limit)
        .map(|l| l.expect("read") + "\n")
        .collect();
    let re = Regex::new(&pattern, &RegexOptions::default()).expect("regex");
    let rounds: usize = std::env::var("ROUNDS").map_or(3, |r| r.parse().expect("ROUNDS"));
    let best = |f: &mut dyn FnMut() -> usize| {
        let mut best = f64::MAX;
        let mut n = 0;
        for _ in 0..rounds {
            let t0 = Instant::now();
            n = f();
            best = best.min(t0.elapsed().as_secs_f64());
        }
        (best, n)
    };
    let (t, n) = best(&mut || lines.iter().filter(|l| re.is_match(l)).count());
    println!(
        "is_match: {n} of {} lines, {:.1} ns/line",
        lines.len(),
        t * 1e9 / lines.len() as f64
    );
    let matching: Vec<&String> = lines.iter().filter(|l| re.is_match(l)).collect();
    let (t, n) = best(&mut || matching.iter().filter(|l| re.search(l).is_some()).count());
    println!(
        "search: {n} lines, {:.1} ns/matching line",
        t * 1e9 / matching.len().max(1) as f64
    );
    let (t, n) = best(&mut || {
        matching
            .iter()
            .filter(|l| re.search_linear(l).is_some_and(|c| c.is_some()))
            .count()
    });
    println!(
        "search_linear: {n} lines, {:.1} ns/matching line",
        t * 1e9 / matching.len().max(1) as f64
    );
}
