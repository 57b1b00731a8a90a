//! copytruncate rotation under a steady write load, followed with the polling backend (one poll
//! a second, as the daemon's `backend = polling` does): every line written reaches the follower
//! exactly once and in order. Lines written between the follower's last read and logrotate's
//! copy are only in the copy; the follower finds it (`app.log.1`) when it notices the
//! truncation by size and inode, and reads them from there first.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferroban_source::{Backend, LogPathSpec, LogSource, SourceOptions};

/// logrotate's copytruncate with `rotate 2`: shift the copies, copy, truncate in place (same inode).
fn copytruncate(log: &std::path::Path) {
    let one = log.with_extension("log.1");
    let two = log.with_extension("log.2");
    if one.exists() {
        fs::rename(&one, &two).unwrap();
    }
    fs::copy(log, &one).unwrap();
    OpenOptions::new()
        .write(true)
        .open(log)
        .unwrap()
        .set_len(0)
        .unwrap();
}

#[test]
fn polling_copytruncate_at_20k_lines_per_second_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    File::create(&log).unwrap();
    const RATE: u64 = 20_000;
    const TOTAL: u64 = 140_000; // seven seconds
    // Rotations every 1.5 to 2 s of wall-clock time (the report that found the loss rotated
    // every 1-2.5 s), so that no two fall between two polls: the lines of a copy made and
    // rotated away again between two polls are not looked for in older copies.
    let rotate_at = [1.0, 2.5, 4.0, 6.0f64].map(Duration::from_secs_f64);

    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let got = Arc::clone(&got);
        let stop = Arc::clone(&stop);
        let log = log.clone();
        std::thread::spawn(move || {
            let opts = SourceOptions {
                backend: Backend::Polling,
                ..SourceOptions::default()
            };
            let mut src =
                LogSource::new(vec![LogPathSpec::parse(log.to_str().unwrap())], opts).unwrap();
            let mut notices = 0;
            let mut tick = Instant::now();
            loop {
                let last = stop.load(Ordering::SeqCst);
                let mut g = got.lock().unwrap();
                let rep = src.poll(&mut |l| g.push(l.text.to_string())).unwrap();
                drop(g);
                notices += rep.notices.len();
                if last {
                    return (src.stats(), notices);
                }
                if !rep.more {
                    // Once a second from the previous tick, as the daemon's interval timer.
                    tick += Duration::from_secs(1);
                    if let Some(d) = tick.checked_duration_since(Instant::now()) {
                        std::thread::sleep(d);
                    }
                }
            }
        })
    };

    // The writer: lines in batches of 200 every 10 ms (20k lines/s), each line written whole;
    // the rotation runs between two writes, as logrotate's copy and truncate do between a
    // writer's appends (a line appended during the copy is lost by logrotate itself, for any
    // follower: not what this test measures).
    let start = Instant::now();
    let mut w = OpenOptions::new().append(true).open(&log).unwrap();
    let mut n = 0u64;
    let mut rotations = 0;
    while n < TOTAL {
        let mut batch = String::new();
        for _ in 0..RATE / 100 {
            batch.push_str(&format!(
                "line {n:07} padding to a realistic length: sshd[1234]: Failed password\n"
            ));
            n += 1;
        }
        w.write_all(batch.as_bytes()).unwrap();
        if rotations < rotate_at.len() && start.elapsed() >= rotate_at[rotations] {
            copytruncate(&log);
            rotations += 1;
        }
        let due = start + Duration::from_millis(n * 1000 / RATE);
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    let elapsed = start.elapsed();
    assert_eq!(
        rotations,
        rotate_at.len(),
        "the writer finished early: {elapsed:?}"
    );
    std::thread::sleep(Duration::from_millis(1200));
    stop.store(true, Ordering::SeqCst);
    let (stats, _notices) = reader.join().unwrap();

    let got = got.lock().unwrap();
    let want: Vec<String> = (0..TOTAL)
        .map(|n| format!("line {n:07} padding to a realistic length: sshd[1234]: Failed password"))
        .collect();
    let seen: std::collections::HashSet<&String> = got.iter().collect();
    let missing = want.iter().filter(|w| !seen.contains(w)).count();
    assert_eq!(
        got.len() as u64,
        TOTAL,
        "{} lines read of {TOTAL} written in {elapsed:?} ({} missing), stats {stats:?}",
        got.len(),
        missing
    );
    assert!(*got == want, "every line once, in order (stats {stats:?})");
    assert_eq!(stats.rotations, rotate_at.len() as u64, "{stats:?}");
    assert!(stats.copies_drained >= 1, "{stats:?}");
}
