//! Runs the default date detector over a log file (profiling aid):
//! `cargo run --release -p ferroban-date --example datescan -- FILE [N]`; `DATEPATTERN` set
//! in the environment builds the detector of that `datepattern` instead of the default list.

use std::io::{BufRead, BufReader};
use std::time::Instant;

use ferroban_date::DateDetector;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: datescan FILE [LINES]");
    let limit: usize = args
        .next()
        .map_or(usize::MAX, |n| n.parse().expect("LINES"));
    let file = std::fs::File::open(&path).expect("open");
    let lines: Vec<String> = BufReader::new(file)
        .lines()
        .take(limit)
        .map(|l| l.expect("read"))
        .collect();
    let mut det = match std::env::var("DATEPATTERN") {
        Ok(p) => DateDetector::from_pattern(&p).expect("DATEPATTERN"),
        Err(_) => DateDetector::with_default_templates(),
    };
    let now = 1_800_000_000.0;
    let t0 = Instant::now();
    for l in lines.iter().take(2000) {
        det.match_time(l, now);
    }
    println!(
        "warm-up (2000 lines, builds the screens): {:.1} ms",
        t0.elapsed().as_secs_f64() * 1e3
    );
    let rounds: usize = std::env::var("ROUNDS").map_or(1, |r| r.parse().expect("ROUNDS"));
    let mut best = f64::MAX;
    let (mut n, mut sum, mut spans) = (0, 0.0, 0);
    for _ in 0..rounds {
        let t0 = Instant::now();
        (n, sum, spans) = scan(&mut det, &lines, now);
        best = best.min(t0.elapsed().as_secs_f64());
    }
    println!(
        "{} lines, {n} dated, checksum {sum} {spans}, {:.1} ns/line (best of {rounds})",
        lines.len(),
        best * 1e9 / lines.len() as f64
    );
    for (name, hits) in det.template_hits().into_iter().filter(|t| t.1 > 0) {
        println!("{hits:>9} {name}");
    }
}

/// The measured loop (callgrind: `--toggle-collect=datescan::scan`).
#[inline(never)]
fn scan(det: &mut DateDetector, lines: &[String], now: f64) -> (u64, f64, usize) {
    let (mut n, mut sum, mut spans) = (0u64, 0.0f64, 0usize);
    for l in lines {
        if let Some(h) = det.match_time(l, now) {
            n += 1;
            sum += h.time.unwrap_or(0.0);
            spans = spans.wrapping_add(h.start * 31 + h.end);
        }
    }
    (n, sum, spans)
}
