//! A journalctl that misses a wake-up (it prints what exists, then never notices appended
//! entries) is restarted at the last entry read once it stays silent while the journal changes,
//! and less and less often while the journal changes with nothing for the jail.
//! Its own test binary: it puts a wrapper named `journalctl` first in `PATH`.

mod journal_common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use ferroban_source::journal::{
    JournalLine, JournalMatch, JournalNotice, JournalSelection, JournalSource, Start, journalctl,
};
use journal_common::*;

#[test]
fn a_deaf_journalctl_is_restarted_when_the_journal_changed_under_it() {
    let real = journalctl().expect("journalctl installed");
    let bin = tempfile::tempdir().unwrap();
    let wrapper = bin.path().join("journalctl");
    // Created once the wrapper's journalctl has printed what exists and ended: from then on
    // the child is deaf (entries written before that could still be printed by it).
    let deaf_mark = bin.path().join("deaf");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/bash\n# Prints what exists; with --follow it then waits without reading on.\n\
             a=(); f=0\nfor x in \"$@\"; do if [[ $x == --follow ]]; then f=1; else a+=(\"$x\"); fi; done\n\
             {} \"${{a[@]}}\"\nif [[ $f == 1 ]]; then : > {}; exec sleep 600; fi\n",
            real.display(),
            deaf_mark.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin.path().to_path_buf()];
    dirs.extend(std::env::split_paths(&path));
    // SAFETY: set before any other thread of this test binary exists (one test).
    unsafe { std::env::set_var("PATH", std::env::join_paths(dirs).unwrap()) };
    assert_eq!(journalctl().unwrap(), wrapper);

    let d = tempfile::tempdir().unwrap();
    let mut w = Writer::start(d.path());
    let seq = |i: u32| ("seq", 1, format!("n{i}"));
    w.send(&[seq(0)]);
    // The source lists the journal files when it starts: the writer's file must exist by then
    // (under load it may appear later, which the source rightly takes for a change of files
    // and answers with a restart of its own, not the one this test is about).
    let t = Instant::now();
    while !w.path.exists() {
        assert!(t.elapsed() < Duration::from_secs(20), "no journal file");
        std::thread::sleep(Duration::from_millis(20));
    }
    let sel = JournalSelection {
        path: Some(d.path().to_path_buf()),
        rotated: true,
        ..JournalSelection::default()
    };
    let m = JournalMatch::parse(&["SYSLOG_IDENTIFIER=seq"]).unwrap();
    let mut src = JournalSource::new(sel, m, Start::Since(now_usec() - 600_000_000)).unwrap();
    let first = read_until(&mut src, 20, |g, r| g.len() == 1 && r.caught_up);
    assert_eq!(first, vec!["srv seq[1]: n0"]);
    let deaf = src.reader_pid().unwrap();
    // The child must have gone deaf before the next writes (under load its journalctl may
    // still be reading the file, and would print them).
    let t = Instant::now();
    while !deaf_mark.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the wrapper never went deaf"
        );
        src.poll(&mut |l: JournalLine<'_>| panic!("unexpected entry {}", l.text));
        std::thread::sleep(Duration::from_millis(20));
    }

    // Written after the child went deaf: only a restart delivers them.
    w.send(&[seq(1), seq(2), seq(3)]);
    let mut quiet = false;
    let mut seen = Vec::new();
    let t = Instant::now();
    let got = read_until(&mut src, 30, |g, r| {
        quiet |= r
            .notices
            .iter()
            .any(|n| matches!(n, JournalNotice::Quiet { .. }));
        seen.extend(r.notices.iter().map(ToString::to_string));
        g.len() >= 3
    });
    assert_eq!(
        got,
        vec!["srv seq[1]: n1", "srv seq[1]: n2", "srv seq[1]: n3"]
    );
    assert!(quiet, "the restart was announced; notices: {seen:?}");
    assert_ne!(src.reader_pid(), Some(deaf), "restarted");
    eprintln!("delivered {:?} after the write", t.elapsed());

    // Nothing changes now: the new child is left alone.
    let calm = src.reader_pid();
    let t = Instant::now();
    let mut more = Vec::new();
    while t.elapsed() < Duration::from_secs(8) {
        src.poll(&mut |l: JournalLine<'_>| more.push(l.text.to_string()));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(more.is_empty(), "nothing read twice: {more:?}");
    assert_eq!(
        src.reader_pid(),
        calm,
        "no restart while the journal is unchanged"
    );

    // A busy journal with nothing for this jail: restarts back off (5 s, then 10 s of silence,
    // ...), they do not come every 5 s. A restarted child repeats the entry at its cursor first;
    // that is no new entry and does not reset the back-off.
    let t = Instant::now();
    let mut quiets = 0;
    while t.elapsed() < Duration::from_secs(22) {
        w.send_filler(5);
        let r = src.poll(&mut |l: JournalLine<'_>| more.push(l.text.to_string()));
        quiets += r
            .notices
            .iter()
            .filter(|n| matches!(n, JournalNotice::Quiet { .. }))
            .count();
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(more.is_empty(), "nothing read twice: {more:?}");
    assert!(
        (1..=2).contains(&quiets),
        "{quiets} restarts in 22 s of writes this jail does not select (5 s, then 10 s: 2)"
    );
    drop(src);
    w.finish();
}
