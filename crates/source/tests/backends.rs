//! inotify and polling deliver the same lines for the same history; inotify wakes the owner.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::*;
use ferroban_source::{Backend, LogPathSpec, LogSource, SourceOptions};

fn source(dir: &std::path::Path, backend: Backend) -> LogSource {
    let specs = vec![
        LogPathSpec::parse(&dir.join("main.log").display().to_string()),
        LogPathSpec::parse(&format!("{}/*.app", dir.display())),
    ];
    let opts = SourceOptions {
        backend,
        ..SourceOptions::default()
    };
    LogSource::new(specs, opts).unwrap()
}

type Step = fn(&std::path::Path);

fn steps() -> Vec<Step> {
    vec![
        |d| append(&d.join("main.log"), b"m1\nm2\n"),
        |d| append(&d.join("main.log"), b"m3 part"),
        |d| append(&d.join("main.log"), b"ial\n"),
        |d| append(&d.join("x.app"), b"x1\n"),
        |d| {
            append(&d.join("main.log"), b"m4\n");
            fs::rename(d.join("main.log"), d.join("main.log.1")).unwrap();
            append(&d.join("main.log"), b"n1\n");
        },
        |d| append(&d.join("main.log.1"), b"m5-late\n"),
        |d| {
            fs::copy(d.join("x.app"), d.join("x.app.bak")).unwrap();
            overwrite(&d.join("x.app"), b"x2 rewritten\n");
        },
        |d| {
            fs::remove_file(d.join("main.log")).unwrap();
            append(&d.join("main.log"), b"n2 \xff\n");
        },
        |d| append(&d.join("y.app"), b"y1\n"),
    ]
}

fn run(backend: Backend) -> (Vec<Got>, usize) {
    let d = tempdir();
    let mut src = source(d.path(), backend);
    assert_eq!(src.backend(), backend);
    let t = Instant::now();
    let mut sink = Sink::default();
    src.poll_at(t, &mut |l| sink.push(l)).unwrap();
    let mut woken = 0;
    for step in steps() {
        step(d.path());
        if backend == Backend::Inotify {
            // The only wall-clock wait: event delivery (returns as soon as it arrives).
            if src.wait(Duration::from_secs(5)).unwrap() {
                woken += 1;
            }
        }
        src.poll_at(t, &mut |l| sink.push(l)).unwrap();
    }
    src.poll_at(t, &mut |l| sink.push(l)).unwrap();
    let got = sink
        .lines
        .into_iter()
        .map(|g| Got {
            path: g.path.strip_prefix(d.path()).unwrap().to_path_buf(),
            ..g
        })
        .collect();
    (got, woken)
}

#[test]
fn inotify_and_polling_give_the_same_lines() {
    let (polled, _) = run(Backend::Polling);
    let (notified, woken) = run(Backend::Inotify);
    let texts: Vec<_> = polled.iter().map(|g| g.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "m1",
            "m2",
            "m3 partial",
            "x1",
            "m4",
            "n1",
            "m5-late",
            "x2 rewritten",
            "n2 \u{fffd}",
            "y1"
        ]
    );
    assert_eq!(polled, notified);
    assert_eq!(woken, steps().len(), "every change woke the inotify source");
}

#[test]
fn inotify_wait_times_out_when_nothing_happens() {
    let d = tempdir();
    let mut src = source(d.path(), Backend::Inotify);
    src.poll_at(Instant::now(), &mut |_| {}).unwrap();
    assert!(src.wake_fd().is_some());
    assert!(!src.wait(Duration::from_millis(20)).unwrap());
    append(&d.path().join("new.app"), b"z\n");
    assert!(src.wait(Duration::from_secs(5)).unwrap());
    let mut got = Vec::new();
    src.poll_at(Instant::now(), &mut |l| got.push(l.text.to_string()))
        .unwrap();
    assert_eq!(got, ["z"]);
    // The events were consumed by the poll.
    assert!(!src.wait(Duration::from_millis(20)).unwrap());
}
