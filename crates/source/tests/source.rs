//! LogSource: literal paths, globs, head/tail, adoption of renamed files, options parsing.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::*;
use ferroban_source::{
    Backend, LogPathSpec, LogSource, Notice, PollReport, SourceOptions, StartAt,
};

fn polling() -> SourceOptions {
    SourceOptions {
        backend: Backend::Polling,
        ..SourceOptions::default()
    }
}

fn poll_src(src: &mut LogSource, now: Instant) -> (Vec<Got>, PollReport) {
    let mut s = Sink::default();
    let r = src.poll_at(now, &mut |l| s.push(l)).unwrap();
    (s.lines, r)
}

fn texts(v: &[Got]) -> Vec<String> {
    v.iter().map(|g| g.text.clone()).collect()
}

#[test]
fn glob_picks_up_files_created_later_and_reads_them_from_start() {
    let d = tempdir();
    append(&d.path().join("a.log"), b"a-old\n");
    append(&d.path().join("ignored.txt"), b"nope\n");
    let pat = format!("{}/*.log tail", d.path().display());
    let mut src = LogSource::new(vec![LogPathSpec::parse(&pat)], polling()).unwrap();
    let t = Instant::now();
    let (got, _) = poll_src(&mut src, t);
    assert!(got.is_empty(), "tail: existing content skipped");
    append(&d.path().join("a.log"), b"a-new\n");
    append(&d.path().join("b.log"), b"b-1\nb-2\n");
    let (got, _) = poll_src(&mut src, t);
    assert_eq!(texts(&got), lines(&["a-new", "b-1", "b-2"]));
    assert_eq!(got[1].path, d.path().join("b.log"));
    assert_eq!(src.paths().count(), 2);
    assert_eq!(src.positions().len(), 2);
}

#[test]
fn several_paths_and_a_missing_literal_path() {
    let d = tempdir();
    let a = d.path().join("a.log");
    let m = d.path().join("missing.log");
    append(&a, b"x\n");
    let specs = vec![
        LogPathSpec::parse(&a.display().to_string()),
        LogPathSpec::parse(&format!("{}  head", m.display())),
    ];
    let mut src = LogSource::new(specs, polling()).unwrap();
    let t = Instant::now();
    let (got, r) = poll_src(&mut src, t);
    assert_eq!(texts(&got), lines(&["x"]));
    let missing: Vec<_> = r
        .notices
        .iter()
        .filter(|n| matches!(n, Notice::Missing { .. }))
        .collect();
    assert_eq!(missing.len(), 1);
    // Waited for, long past forget_missing_after: literal paths are never forgotten.
    let (_, r) = poll_src(&mut src, t + Duration::from_secs(3600));
    assert!(r.notices.is_empty());
    append(&m, b"late\n");
    let (got, _) = poll_src(&mut src, t + Duration::from_secs(3601));
    assert_eq!(texts(&got), lines(&["late"]));
}

#[test]
fn glob_matching_rotated_names_does_not_read_twice() {
    // logpath = app.log* : the rotated app.log.1 is the file already read, not a new one.
    let d = tempdir();
    let p = d.path().join("app.log");
    append(&p, b"1\n2\n");
    let pat = format!("{}/app.log*", d.path().display());
    let mut src = LogSource::new(vec![LogPathSpec::parse(&pat)], polling()).unwrap();
    let t = Instant::now();
    assert_eq!(texts(&poll_src(&mut src, t).0), lines(&["1", "2"]));
    append(&p, b"3-unread\n");
    fs::rename(&p, d.path().join("app.log.1")).unwrap();
    append(&p, b"4-new\n");
    let mut all = texts(&poll_src(&mut src, t).0);
    append(&d.path().join("app.log.1"), b"5-late-old\n");
    all.extend(texts(&poll_src(&mut src, t).0));
    all.extend(texts(&poll_src(&mut src, t).0));
    all.sort();
    assert_eq!(all, lines(&["3-unread", "4-new", "5-late-old"]));
    assert!(src.open_files() <= 3);
}

#[test]
fn glob_rename_while_path_missing_is_adopted_not_reread() {
    let d = tempdir();
    let p = d.path().join("app.log");
    append(&p, b"1\n");
    let pat = format!("{}/app.log*", d.path().display());
    let mut src = LogSource::new(vec![LogPathSpec::parse(&pat)], polling()).unwrap();
    let t = Instant::now();
    assert_eq!(texts(&poll_src(&mut src, t).0), lines(&["1"]));
    append(&p, b"2\n");
    fs::rename(&p, d.path().join("app.log.1")).unwrap();
    let (got, _) = poll_src(&mut src, t);
    assert_eq!(texts(&got), lines(&["2"]));
    append(&d.path().join("app.log.1"), b"3\n");
    let (got, _) = poll_src(&mut src, t);
    assert_eq!(texts(&got), lines(&["3"]));
    assert_eq!(got[0].path, d.path().join("app.log.1"));
}

#[test]
fn glob_matching_a_symlink_and_its_target_reads_lines_once() {
    let d = tempdir();
    let target = d.path().join("app-2026.log");
    append(&target, b"1\n");
    std::os::unix::fs::symlink(&target, d.path().join("current.log")).unwrap();
    let pat = format!("{}/*.log", d.path().display());
    let mut src = LogSource::new(vec![LogPathSpec::parse(&pat)], polling()).unwrap();
    let t = Instant::now();
    assert_eq!(texts(&poll_src(&mut src, t).0), lines(&["1"]));
    append(&target, b"2\n");
    assert_eq!(texts(&poll_src(&mut src, t).0), lines(&["2"]));
    assert_eq!(src.paths().count(), 1);
}

#[test]
fn missing_glob_match_is_forgotten_after_the_delay() {
    let d = tempdir();
    let p = d.path().join("x.log");
    append(&p, b"1\n");
    let pat = format!("{}/*.log", d.path().display());
    let opts = SourceOptions {
        forget_missing_after: Duration::from_secs(60),
        ..polling()
    };
    let mut src = LogSource::new(vec![LogPathSpec::parse(&pat)], opts).unwrap();
    let t = Instant::now();
    poll_src(&mut src, t);
    fs::remove_file(&p).unwrap();
    poll_src(&mut src, t);
    assert_eq!(src.open_files(), 1, "held while it may come back");
    poll_src(&mut src, t + Duration::from_secs(59));
    assert_eq!(src.paths().count(), 1);
    let (_, r) = poll_src(&mut src, t + Duration::from_secs(61));
    assert!(
        r.notices
            .iter()
            .any(|n| matches!(n, Notice::Forgotten { .. }))
    );
    assert_eq!(src.paths().count(), 0);
    assert_eq!(src.open_files(), 0);
}

#[test]
fn restore_positions_through_the_source() {
    let d = tempdir();
    let p = d.path().join("a.log");
    append(&p, b"1\n2\n");
    let spec = vec![LogPathSpec::parse(&p.display().to_string())];
    let mut src = LogSource::new(spec.clone(), polling()).unwrap();
    let t = Instant::now();
    poll_src(&mut src, t);
    let saved = src.positions();
    drop(src);
    append(&p, b"3\n");
    let mut src = LogSource::new(spec, polling()).unwrap();
    src.restore(saved);
    assert_eq!(texts(&poll_src(&mut src, t).0), lines(&["3"]));
}

#[test]
fn option_parsing() {
    assert_eq!("auto".parse::<Backend>().unwrap(), Backend::Auto);
    assert_eq!("pyinotify".parse::<Backend>().unwrap(), Backend::Inotify);
    assert_eq!("polling[x=1]".parse::<Backend>().unwrap(), Backend::Polling);
    let e = "systemd".parse::<Backend>().unwrap_err();
    assert!(e.to_string().contains("systemd"));
    let s = LogPathSpec::parse("/var/log/a b.log tail");
    assert_eq!(s.pattern, "/var/log/a b.log");
    assert_eq!(s.start, StartAt::Tail);
    assert_eq!(LogPathSpec::parse("/x").start, StartAt::Head);
    let e = LogSource::new(vec![LogPathSpec::parse("/tmp/[unclosed")], polling()).unwrap_err();
    assert!(e.to_string().contains("[unclosed"), "{e}");
}
