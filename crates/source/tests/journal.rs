//! The journal source on real journal files written by systemd-journal-remote: entries appended
//! while following, formatting, restarts from a cursor, rotation and vacuum while following.

mod journal_common;

use ferroban_source::journal::{
    JournalLine, JournalMatch, JournalSelection, JournalSource, Start, read_all,
};
use journal_common::*;

fn dir_selection(dir: &std::path::Path, rotated: bool) -> JournalSelection {
    JournalSelection {
        path: Some(dir.to_path_buf()),
        rotated,
        ..JournalSelection::default()
    }
}

fn sshd() -> JournalMatch {
    JournalMatch::parse(&["_SYSTEMD_UNIT=sshd.service + _COMM=sshd"]).unwrap()
}

fn fail(i: u32) -> (&'static str, u32, String) {
    (
        "sshd",
        100 + i,
        format!("Failed password for root from 192.0.2.{i} port 22 ssh2"),
    )
}

fn ten_minutes_ago() -> Start {
    Start::Since(now_usec() - 600_000_000)
}

#[test]
fn follows_appended_entries_formatted_like_fail2ban() {
    let d = tempfile::tempdir().unwrap();
    let mut w = Writer::start(d.path());
    w.send(&[fail(1), ("cron", 7, "not for sshd".into()), fail(2)]);
    let mut src =
        JournalSource::new(dir_selection(d.path(), true), sshd(), ten_minutes_ago()).unwrap();
    let mut times = Vec::new();
    let mut got = Vec::new();
    let t = std::time::Instant::now();
    let mut caught_up = false;
    while got.len() < 2 || !caught_up {
        let r = src.poll(&mut |l: JournalLine<'_>| {
            got.push(l.text.to_string());
            times.push(l.time_usec);
        });
        caught_up = r.caught_up;
        assert!(t.elapsed().as_secs() < 20, "{got:?} {:?}", r.notices);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        got,
        vec![
            "srv sshd[101]: Failed password for root from 192.0.2.1 port 22 ssh2",
            "srv sshd[102]: Failed password for root from 192.0.2.2 port 22 ssh2",
        ]
    );
    // The entry's own time (µs), not the time it was read.
    assert_eq!(times[1] - times[0], 2, "{times:?}");
    // Appended while following, by the same writer.
    w.send(&[fail(3), ("cron", 8, "x".into())]);
    let more = read_until(&mut src, 20, |g, _| !g.is_empty());
    assert_eq!(
        more,
        vec!["srv sshd[103]: Failed password for root from 192.0.2.3 port 22 ssh2"]
    );
    let c = src.cursor().expect("a cursor").to_string();
    assert!(c.starts_with("s="), "{c}");
    w.finish();
}

#[test]
fn restart_resumes_after_the_cursor_without_gap_or_repeat() {
    let d = tempfile::tempdir().unwrap();
    let mut w = Writer::start(d.path());
    w.send(&(0..5).map(fail).collect::<Vec<_>>());
    let sel = dir_selection(d.path(), true);
    let mut a = JournalSource::new(sel.clone(), sshd(), ten_minutes_ago()).unwrap();
    let first = read_until(&mut a, 20, |g, r| g.len() == 5 && r.caught_up);
    assert_eq!(first.len(), 5);
    let cursor = a.cursor().unwrap().to_string();
    let pid = a.reader_pid().expect("a running reader");
    drop(a);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the reader ends with its last jail"
    );
    // Written while "the daemon" is down.
    w.send(&(5..8).map(fail).collect::<Vec<_>>());
    let mut b = JournalSource::new(sel.clone(), sshd(), ten_minutes_ago()).unwrap();
    b.set_start(Start::AfterCursor(cursor.clone()));
    let second = read_until(&mut b, 20, |g, r| g.len() >= 3 && r.caught_up);
    let ips: Vec<&str> = second
        .iter()
        .map(|l| l.split(" from ").nth(1).unwrap().split(' ').next().unwrap())
        .collect();
    assert_eq!(ips, vec!["192.0.2.5", "192.0.2.6", "192.0.2.7"]);
    // Nothing more comes, and a restart at the very end is caught up at once.
    let c2 = b.cursor().unwrap().to_string();
    drop(b);
    let mut c = JournalSource::new(sel.clone(), sshd(), Start::AfterCursor(c2)).unwrap();
    let none = read_until(&mut c, 20, |_, r| r.caught_up);
    assert!(none.is_empty(), "{none:?}");
    // A first start (no cursor) reads back the time given.
    let mut fresh = JournalSource::new(sel, sshd(), ten_minutes_ago()).unwrap();
    let all = read_until(&mut fresh, 20, |g, r| g.len() >= 8 && r.caught_up);
    assert_eq!(all.len(), 8);
    w.finish();
}

#[test]
fn restart_at_a_vacuumed_cursor_loses_nothing() {
    let d = tempfile::tempdir().unwrap();
    let mut w = Writer::start(d.path());
    let seq = |i: u32| ("seq", 1, format!("n{i}"));
    w.send(&(0..10).map(seq).collect::<Vec<_>>());
    let sel = dir_selection(d.path(), true);
    let m = JournalMatch::parse(&["SYSLOG_IDENTIFIER=seq"]).unwrap();
    let mut a = JournalSource::new(sel.clone(), m, ten_minutes_ago()).unwrap();
    read_until(&mut a, 20, |g, r| g.len() == 10 && r.caught_up);
    let cursor = a.cursor().unwrap().to_string();
    drop(a);
    // The file holding the cursor's entry is rotated and then vacuumed while we are down.
    w.rotate();
    w.send(&(10..15).map(seq).collect::<Vec<_>>());
    vacuum(d.path());
    // Every entry left is after the cursor; the first of them must not be lost (journalctl's
    // --after-cursor would skip it).
    let mut left = Vec::new();
    read_all(&sel, &JournalMatch::all(), &mut |f| {
        left.push(f.line.clone())
    })
    .unwrap();
    assert!(
        left.len() > 5 && left[0].starts_with("srv filler: "),
        "{:?}",
        left.first()
    );
    let mut b = JournalSource::new(sel, JournalMatch::all(), Start::AfterCursor(cursor)).unwrap();
    let got = read_until(&mut b, 30, |g, r| g.len() >= left.len() && r.caught_up);
    assert_eq!(got.len(), left.len());
    assert_eq!(got.first(), left.first());
    assert_eq!(got, left);
    assert!(
        got.ends_with(
            &(10..15)
                .map(|i| format!("srv seq[1]: n{i}"))
                .collect::<Vec<_>>()
        )
    );
    w.finish();
}

#[test]
fn jails_with_different_matches_share_one_reader() {
    let d = tempfile::tempdir().unwrap();
    let mut w = Writer::start(d.path());
    w.send(&[fail(1), ("nginx", 5, "GET /x".into()), fail(2)]);
    let sel = dir_selection(d.path(), true);
    let nginx = JournalMatch::parse(&["SYSLOG_IDENTIFIER=nginx"]).unwrap();
    let mut a = JournalSource::new(sel.clone(), sshd(), ten_minutes_ago()).unwrap();
    let mut b = JournalSource::new(sel.clone(), nginx, ten_minutes_ago()).unwrap();
    let ga = read_until(&mut a, 20, |g, r| g.len() == 2 && r.caught_up);
    let gb = read_until(&mut b, 20, |g, r| g.len() == 1 && r.caught_up);
    assert_eq!(a.reader_pid(), b.reader_pid());
    assert!(ga.iter().all(|l| l.contains("sshd[")));
    assert_eq!(gb, vec!["srv nginx[5]: GET /x"]);
    // A third jail joining later gets its own backlog; the others see nothing twice.
    let mut c = JournalSource::new(sel, JournalMatch::all(), ten_minutes_ago()).unwrap();
    let gc = read_until(&mut c, 20, |g, r| g.len() == 3 && r.caught_up);
    assert_eq!(gc.len(), 3);
    w.send(&[fail(3)]);
    let ga2 = read_until(&mut a, 20, |g, _| !g.is_empty());
    assert_eq!(ga2.len(), 1, "{ga2:?}");
    assert!(ga2[0].contains("192.0.2.3"));
    let gb2 = read_until(&mut b, 3, |_, r| !r.more);
    assert!(gb2.is_empty());
    w.finish();
}

/// Reads `n` entries of the sequence while filler makes the writer rotate, then vacuums.
fn rotation_and_vacuum(rotated: bool) {
    let d = tempfile::tempdir().unwrap();
    let mut w = Writer::start(d.path());
    let seq = |i: u32| ("seq", 1, format!("n{i}"));
    w.send(&[seq(0)]);
    let m = JournalMatch::parse(&["SYSLOG_IDENTIFIER=seq"]).unwrap();
    let mut src =
        JournalSource::new(dir_selection(d.path(), rotated), m, ten_minutes_ago()).unwrap();
    let mut got = read_until(&mut src, 20, |g, r| g.len() == 1 && r.caught_up);
    let mut next = 1;
    for _round in 0..2 {
        // Entries before, during and after a rotation by the writer.
        w.send(&(next..next + 50).map(seq).collect::<Vec<_>>());
        next += 50;
        w.rotate();
        w.send(&(next..next + 50).map(seq).collect::<Vec<_>>());
        next += 50;
        let want = next as usize;
        got.extend(read_until(&mut src, 60, |g, _| got.len() + g.len() >= want));
    }
    assert!(files(d.path()).iter().filter(|f| f.contains('@')).count() >= 2);
    let pid = src.reader_pid().unwrap().to_string();
    let child_fds = fd_count(&pid);
    // Vacuum: journalctl deletes the archived files while we follow.
    vacuum(d.path());
    assert_eq!(
        files(d.path()).iter().filter(|f| f.contains('@')).count(),
        0,
        "vacuumed: {:?}",
        files(d.path())
    );
    w.send(&(next..next + 50).map(seq).collect::<Vec<_>>());
    next += 50;
    let want = next as usize;
    got.extend(read_until(&mut src, 60, |g, _| got.len() + g.len() >= want));
    let expect: Vec<String> = (0..next).map(|i| format!("srv seq[1]: n{i}")).collect();
    assert_eq!(got, expect, "every entry once, in order");
    if rotated {
        // The vacuum changed the directory's files: the reader restarts after the last entry
        // read, and the deleted files are no longer held open.
        let extra = poll_until_restarted(&mut src, &pid, 20);
        assert!(extra.is_empty(), "nothing read twice: {extra:?}");
        let now = src.reader_pid().unwrap().to_string();
        let after = fd_count(&now);
        assert!(after < child_fds, "journalctl fds {child_fds} -> {after}");
    }
    w.finish();
}

#[test]
fn rotation_and_vacuum_while_following_a_directory() {
    rotation_and_vacuum(true);
}

#[test]
fn rotation_while_following_active_files_only() {
    rotation_and_vacuum(false);
}

#[test]
fn read_all_reads_every_selected_entry() {
    let d = tempfile::tempdir().unwrap();
    let mut w = Writer::start(d.path());
    w.send(&[fail(1), ("cron", 1, "x".into()), fail(2)]);
    w.finish();
    let mut lines = Vec::new();
    let n = read_all(&dir_selection(d.path(), true), &sshd(), &mut |f| {
        lines.push(f.line.clone())
    })
    .unwrap();
    assert_eq!(n, 2);
    assert_eq!(
        lines[1],
        "srv sshd[102]: Failed password for root from 192.0.2.2 port 22 ssh2"
    );
    let missing = JournalSelection {
        files: vec![format!("{}/nothing*.journal", d.path().display())],
        ..JournalSelection::default()
    };
    assert!(read_all(&missing, &sshd(), &mut |_| {}).is_err());
}
