//! FileFollower: reading, rotations, positions, line cap, encodings.

mod common;

use std::fs;

use common::*;
use ferroban_source::{
    FileFollower, FirstLineHash, FollowOptions, LogEncoding, MAX_LINE, Notice, Position,
    RotationKind, StartAt,
};

fn follower(path: &std::path::Path) -> FileFollower {
    FileFollower::new(path, FollowOptions::default())
}

fn tail_follower(path: &std::path::Path) -> FileFollower {
    FileFollower::new(
        path,
        FollowOptions {
            start: StartAt::Tail,
            ..FollowOptions::default()
        },
    )
}

fn rotation_kind(r: &ferroban_source::PollReport) -> Option<RotationKind> {
    r.notices.iter().find_map(|n| match n {
        Notice::Rotated { kind, .. } => Some(*kind),
        _ => None,
    })
}

#[test]
fn head_reads_existing_then_appended_lines() {
    let d = tempdir();
    let p = d.path().join("a.log");
    append(&p, b"one\ntwo\n");
    let mut f = follower(&p);
    assert_eq!(poll(&mut f).0, lines(&["one", "two"]));
    assert_eq!(poll(&mut f).0, Vec::<String>::new());
    append(&p, b"three\n");
    assert_eq!(poll(&mut f).0, lines(&["three"]));
    assert_eq!(f.position().unwrap().offset, 14);
}

#[test]
fn incomplete_last_line_is_held_until_completed() {
    let d = tempdir();
    let p = d.path().join("a.log");
    append(&p, b"one\ntw");
    let mut f = follower(&p);
    assert_eq!(poll(&mut f).0, lines(&["one"]));
    // The position never counts the incomplete line as read.
    assert_eq!(f.position().unwrap().offset, 4);
    append(&p, b"o");
    assert!(poll(&mut f).0.is_empty());
    append(&p, b"\nthr");
    assert_eq!(poll(&mut f).0, lines(&["two"]));
    append(&p, b"ee\r\n");
    assert_eq!(
        poll(&mut f).0,
        lines(&["three"]),
        "CR before LF is stripped"
    );
    assert_eq!(f.position().unwrap().offset, 15);
}

#[test]
fn tail_skips_existing_content_but_not_a_line_being_written() {
    let d = tempdir();
    let p = d.path().join("a.log");
    append(&p, b"old1\nold2\npart");
    let mut f = tail_follower(&p);
    assert!(poll(&mut f).0.is_empty());
    append(&p, b"ial\nnew\n");
    assert_eq!(poll(&mut f).0, lines(&["partial", "new"]));
}

#[test]
fn rename_and_create_with_unread_lines_in_old_file() {
    let d = tempdir();
    let p = d.path().join("a.log");
    let p1 = d.path().join("a.log.1");
    append(&p, b"a\nb\n");
    let mut f = follower(&p);
    assert_eq!(poll(&mut f).0, lines(&["a", "b"]));
    append(&p, b"c-unread\n");
    rename(&p, &p1);
    append(&p, b"d-new\n");
    let (got, r) = poll(&mut f);
    assert_eq!(got, lines(&["c-unread", "d-new"]));
    assert_eq!(rotation_kind(&r), Some(RotationKind::Replaced));
    // The writer still appends to the renamed file until it reopens: not lost.
    append(&p1, b"e-late\n");
    assert_eq!(poll(&mut f).0, lines(&["e-late"]));
    assert_eq!(f.open_files(), 2);
    // Old file quiet while the new one has data: it is closed.
    assert!(poll(&mut f).0.is_empty());
    assert_eq!(f.open_files(), 1);
    append(&p1, b"too-late\n");
    append(&p, b"f\n");
    assert_eq!(poll(&mut f).0, lines(&["f"]));
    assert_eq!(f.stats().rotations, 1);
}

#[test]
fn rotated_file_incomplete_last_line_is_delivered_when_closed() {
    let d = tempdir();
    let p = d.path().join("a.log");
    append(&p, b"a\nhalf");
    let mut f = follower(&p);
    assert_eq!(poll(&mut f).0, lines(&["a"]));
    rename(&p, &d.path().join("a.log.1"));
    append(&p, b"new\n");
    assert_eq!(poll(&mut f).0, lines(&["new"]));
    let mut s = Sink::default();
    let mut unterminated = false;
    f.poll(&mut |l| {
        unterminated |= l.unterminated && l.rotated;
        s.push(l)
    })
    .unwrap();
    assert_eq!(s.take(), lines(&["half"]));
    assert!(unterminated);
}

#[test]
fn copytruncate() {
    let d = tempdir();
    let p = d.path().join("a.log");
    append(&p, b"first line\nsecond line\n");
    let mut f = follower(&p);
    assert_eq!(poll(&mut f).0.len(), 2);
    fs::copy(&p, d.path().join("a.log.1")).unwrap();
    overwrite(&p, b"");
    append(&p, b"after\n");
    let (got, r) = poll(&mut f);
    assert_eq!(got, lines(&["after"]));
    assert_eq!(rotation_kind(&r), Some(RotationKind::Truncated));
    append(&p, b"more\n");
    assert_eq!(poll(&mut f).0, lines(&["more"]));
}

#[test]
fn truncate_to_shorter_content() {
    let d = tempdir();
    let p = d.path().join("a.log");
    append(&p, b"a long first line\nanother long line\n");
    let mut f = follower(&p);
    assert_eq!(poll(&mut f).0.len(), 2);
    overwrite(&p, b"x\n");
    let (got, r) = poll(&mut f);
    assert_eq!(got, lines(&["x"]));
    assert_eq!(rotation_kind(&r), Some(RotationKind::Truncated));
    // Truncated to nothing, then nothing new: no line, no error.
    overwrite(&p, b"");
    assert!(poll(&mut f).0.is_empty());
    append(&p, b"y\n");
    assert_eq!(poll(&mut f).0, lines(&["y"]));
}

#[test]
fn truncated_and_refilled_past_the_offset_between_polls() {
    let d = tempdir();
    let p = d.path().join("a.log");
    append(&p, b"a\n");
    let mut f = follower(&p);
    assert_eq!(poll(&mut f).0, lines(&["a"]));
    overwrite(&p, b"bbbbbbbb\ncccc\n");
    let (got, r) = poll(&mut f);
    assert_eq!(got, lines(&["bbbbbbbb", "cccc"]));
    assert_eq!(rotation_kind(&r), Some(RotationKind::Rewritten));
}

#[test]
fn rewritten_to_the_same_size_is_seen() {
    let d = tempdir();
    let p = d.path().join("a.log");
    append(&p, b"a1\n");
    let mut f = follower(&p);
    assert_eq!(poll(&mut f).0, lines(&["a1"]));
    overwrite(&p, b"b2\n");
    let (got, r) = poll(&mut f);
    assert_eq!(got, lines(&["b2"]));
    assert_eq!(rotation_kind(&r), Some(RotationKind::Rewritten));
}

#[test]
fn delete_and_recreate_with_unread_lines() {
    let d = tempdir();
    let p = d.path().join("a.log");
    append(&p, b"a\n");
    let mut f = follower(&p);
    assert_eq!(poll(&mut f).0, lines(&["a"]));
    append(&p, b"b-unread\n");
    fs::remove_file(&p).unwrap();
    let (got, r) = poll(&mut f);
    assert_eq!(
        got,
        lines(&["b-unread"]),
        "deleted file drained through the open descriptor"
    );
    assert!(
        r.notices
            .iter()
            .any(|n| matches!(n, Notice::Missing { .. }))
    );
    let (got, r) = poll(&mut f);
    assert!(got.is_empty());
    assert!(r.notices.is_empty(), "missing is reported once");
    append(&p, b"c\n");
    let (got, r) = poll(&mut f);
    assert_eq!(got, lines(&["c"]));
    assert!(
        r.notices
            .iter()
            .any(|n| matches!(n, Notice::Appeared { .. }))
    );
    assert_eq!(rotation_kind(&r), Some(RotationKind::Replaced));
}

#[test]
fn delete_and_recreate_between_polls() {
    let d = tempdir();
    let p = d.path().join("a.log");
    append(&p, b"a\n");
    let mut f = follower(&p);
    assert_eq!(poll(&mut f).0, lines(&["a"]));
    append(&p, b"b\n");
    fs::remove_file(&p).unwrap();
    append(&p, b"c\n");
    assert_eq!(poll(&mut f).0, lines(&["b", "c"]));
}

#[test]
fn file_that_appears_later_is_read_from_start_even_with_tail() {
    let d = tempdir();
    let p = d.path().join("later.log");
    let mut f = tail_follower(&p);
    let (got, r) = poll(&mut f);
    assert!(got.is_empty());
    assert_eq!(r.notices.len(), 1);
    assert!(matches!(r.notices[0], Notice::Missing { .. }));
    assert!(poll(&mut f).1.notices.is_empty());
    append(&p, b"hello\n");
    assert_eq!(poll(&mut f).0, lines(&["hello"]));
}

#[test]
fn restart_resumes_at_position_without_rereading() {
    let d = tempdir();
    let p = d.path().join("a.log");
    append(&p, b"one\ntwo\npart");
    let mut f = follower(&p);
    assert_eq!(poll(&mut f).0, lines(&["one", "two"]));
    let pos = f.position().unwrap();
    assert_eq!(pos.offset, 8);
    assert_eq!(pos.first_line_hash, Some(FirstLineHash::of(b"one\n")));
    drop(f);
    // Written while stopped.
    append(&p, b"ial\nthree\n");
    let mut f = tail_follower(&p); // a restored position wins over tail
    f.restore(pos);
    let (got, r) = poll(&mut f);
    assert_eq!(got, lines(&["partial", "three"]));
    assert!(
        r.notices
            .iter()
            .any(|n| matches!(n, Notice::Resumed { offset: 8, .. }))
    );
}

#[test]
fn restart_with_rotated_file_reads_from_start() {
    let d = tempdir();
    let p = d.path().join("a.log");
    append(&p, b"one\ntwo\nthree\n");
    let mut f = follower(&p);
    poll(&mut f);
    let pos = f.position().unwrap();
    drop(f);
    fs::rename(&p, d.path().join("a.log.1")).unwrap();
    append(&p, b"new first\nnew second\nnew third\n");
    let mut f = follower(&p);
    f.restore(pos);
    let (got, r) = poll(&mut f);
    assert_eq!(got, lines(&["new first", "new second", "new third"]));
    assert_eq!(rotation_kind(&r), Some(RotationKind::ChangedWhileStopped));
}

#[test]
fn restart_with_same_first_line_but_other_inode_reads_from_start() {
    let d = tempdir();
    let p = d.path().join("a.log");
    append(&p, b"header\nx\n");
    let mut f = follower(&p);
    poll(&mut f);
    let pos = f.position().unwrap();
    drop(f);
    let keep = d.path().join("a.log.1");
    fs::rename(&p, &keep).unwrap(); // keep the old inode alive so the number is not reused
    append(&p, b"header\ny\nz\n");
    let mut f = follower(&p);
    f.restore(pos.clone());
    assert_eq!(poll(&mut f).0, lines(&["header", "y", "z"]));
    // Without the inode (a fail2ban database), the hash alone decides: same first line, resume.
    let mut f = follower(&p);
    f.restore(Position { inode: None, ..pos });
    assert_eq!(poll(&mut f).0, lines(&["z"]));
}

#[test]
fn restart_with_shorter_file_reads_from_start() {
    let d = tempdir();
    let p = d.path().join("a.log");
    append(&p, b"one\ntwo\nthree\n");
    let mut f = follower(&p);
    poll(&mut f);
    let pos = f.position().unwrap();
    overwrite(&p, b"one\n");
    let mut f = follower(&p);
    f.restore(pos);
    assert_eq!(poll(&mut f).0, lines(&["one"]));
}

#[test]
fn overlong_line_is_dropped_and_counted() {
    let d = tempdir();
    let p = d.path().join("a.log");
    let mut big = vec![b'x'; 200 * 1024];
    big.push(b'\n');
    append(&p, b"before\n");
    append(&p, &big);
    append(&p, b"after\n");
    let mut f = follower(&p);
    let mut s = Sink::default();
    f.poll(&mut |l| s.push(l)).unwrap();
    assert_eq!(s.lines.len(), 2);
    assert_eq!(s.lines[0].text, "before");
    assert_eq!(s.lines[1].text, "after");
    let st = f.stats();
    assert_eq!(st.cut_lines, 1);
    assert_eq!(st.lines, 2);
    assert_eq!(st.skipped_bytes, (200 * 1024) as u64);
}

/// An attacker pads a line so that a cut at [`MAX_LINE`] falls between two addresses: the cut
/// text would blame 203.0.113.77, the whole line (as fail2ban reads it) blames 2001:db8:bad::1.
/// No part of it is delivered.
#[test]
fn overlong_line_with_two_addresses_is_never_delivered_cut() {
    let d = tempdir();
    let p = d.path().join("auth.log");
    let head = b"Dec  6 12:00:00 host sshd[1]: Invalid user ";
    let first = b" from 203.0.113.77";
    let mut line = head.to_vec();
    line.resize(MAX_LINE - first.len(), b'a');
    line.extend_from_slice(first);
    assert_eq!(line.len(), MAX_LINE);
    line.extend_from_slice(b" from 2001:db8:bad::1 port 22\n");
    append(&p, b"Dec  6 12:00:00 host sshd[1]: ok\n");
    // Written in pieces too: the cut must not depend on where reads end.
    let mut f = follower(&p);
    let mut s = Sink::default();
    f.poll(&mut |l| s.push(l)).unwrap();
    for piece in line.chunks(7000) {
        append(&p, piece);
        f.poll(&mut |l| s.push(l)).unwrap();
    }
    append(&p, b"Dec  6 12:00:01 host sshd[1]: next\n");
    f.poll(&mut |l| s.push(l)).unwrap();
    let texts: Vec<&str> = s.lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "Dec  6 12:00:00 host sshd[1]: ok",
            "Dec  6 12:00:01 host sshd[1]: next"
        ]
    );
    assert!(!texts.iter().any(|t| t.contains("203.0.113.77")));
    assert_eq!(f.stats().cut_lines, 1);
    assert_eq!(f.stats().skipped_bytes, line.len() as u64 - 1);
}

#[test]
fn invalid_utf8_is_replaced_not_fatal() {
    let d = tempdir();
    let p = d.path().join("a.log");
    append(&p, b"ok \xff\xfe end\nfine\n\xe2\x82\n");
    let mut f = follower(&p);
    let mut s = Sink::default();
    f.poll(&mut |l| s.push(l)).unwrap();
    assert_eq!(s.lines[0].text, "ok \u{fffd}\u{fffd} end");
    assert!(s.lines[0].bad);
    assert_eq!(s.lines[1].text, "fine");
    assert!(!s.lines[1].bad);
    assert_eq!(s.lines[2].text, "\u{fffd}");
    assert_eq!(f.stats().decode_errors, 2);
}

#[test]
fn latin1_and_other_encodings() {
    let d = tempdir();
    let p = d.path().join("a.log");
    append(&p, b"caf\xe9 \x80\n");
    let mut f = FileFollower::new(
        &p,
        FollowOptions {
            encoding: LogEncoding::parse("latin-1").unwrap(),
            ..FollowOptions::default()
        },
    );
    assert_eq!(poll(&mut f).0, lines(&["caf\u{e9} \u{80}"]));
    let p2 = d.path().join("b.log");
    append(&p2, b"\xcf\xf0\xe8\xe2\xe5\xf2\n"); // "Привет" in cp1251
    let mut f = FileFollower::new(
        &p2,
        FollowOptions {
            encoding: LogEncoding::parse("cp1251").unwrap(),
            ..FollowOptions::default()
        },
    );
    assert_eq!(poll(&mut f).0, lines(&["Привет"]));
    assert!(LogEncoding::parse("utf-16").is_err());
    assert!(LogEncoding::parse("no-such-encoding").is_err());
    assert_eq!(LogEncoding::parse("auto").unwrap(), LogEncoding::Utf8);
}

#[test]
fn first_line_hash_is_fail2bans_md5() {
    // md5("hello\n"), as fail2ban stores it in `logs.firstlinemd5`.
    let h = FirstLineHash::of(b"hello\n");
    assert_eq!(h.to_hex(), "b1946ac92492d2347c6235b4d2611184");
    assert_eq!(FirstLineHash::from_hex(&h.to_hex()), Some(h));
    let pos = Position::from_fail2ban("/var/log/x", Some(&h.to_hex()), 42).unwrap();
    assert_eq!(pos.offset, 42);
    assert_eq!(pos.first_line_hash, Some(h));
    assert!(Position::from_fail2ban("/x", Some("zz"), 1).is_err());
    assert!(Position::from_fail2ban("/x", None, -1).is_err());
    assert_eq!(
        Position::from_fail2ban("/x", Some(""), 0)
            .unwrap()
            .first_line_hash,
        None
    );
}

#[test]
fn a_directory_is_an_error_naming_the_path() {
    let d = tempdir();
    let mut f = follower(d.path());
    let e = f.poll(&mut |_| {}).unwrap_err();
    assert!(
        e.to_string().contains(&d.path().display().to_string()),
        "{e}"
    );
}

#[test]
fn read_budget_splits_a_backlog_without_losing_lines() {
    let d = tempdir();
    let p = d.path().join("a.log");
    let mut want = Vec::new();
    for i in 0..20_000 {
        let l = format!("line number {i}");
        append(&p, format!("{l}\n").as_bytes());
        want.push(l);
    }
    let mut f = FileFollower::new(
        &p,
        FollowOptions {
            read_budget: 10_000,
            ..FollowOptions::default()
        },
    );
    let (first, r) = poll(&mut f);
    assert!(r.more && first.len() < want.len());
    let mut got = first;
    got.extend(poll_all(&mut f));
    assert_eq!(got, want);
}
