//! 200 rotations of every kind: no descriptor growth, no line lost or repeated.
//! (Alone in its binary: /proc/self/fd counts the whole process.)

mod common;

use std::fs;
use std::time::Instant;

use common::*;
use ferroban_source::{Backend, LogPathSpec, LogSource, SourceOptions};

fn fd_count() -> usize {
    fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn two_hundred_rotations_without_fd_growth() {
    for backend in [Backend::Polling, Backend::Inotify] {
        let d = tempdir();
        let p = d.path().join("rot.log");
        append(&p, b"start\n");
        let opts = SourceOptions {
            backend,
            ..SourceOptions::default()
        };
        let spec = vec![LogPathSpec::parse(&p.display().to_string())];
        let mut src = LogSource::new(spec, opts).unwrap();
        let t = Instant::now();
        let mut got = Vec::new();
        src.poll_at(t, &mut |l| got.push(l.text.to_string()))
            .unwrap();
        let base = fd_count();
        let mut want = vec!["start".to_string()];
        let mut max_fds = 0;
        for i in 0..200 {
            let unread = format!("r{i}-unread");
            append(&p, format!("{unread}\n").as_bytes());
            want.push(unread);
            match i % 3 {
                0 => fs::rename(&p, d.path().join("rot.log.1")).unwrap(),
                1 => fs::remove_file(&p).unwrap(),
                _ => {
                    // copytruncate: the unread line goes to the copy; read it first, as a
                    // follower would have if it had been woken before logrotate ran.
                    src.poll_at(t, &mut |l| got.push(l.text.to_string()))
                        .unwrap();
                    fs::copy(&p, d.path().join("rot.log.1")).unwrap();
                    overwrite(&p, b"");
                }
            }
            let fresh = format!("r{i}-new first line");
            append(&p, format!("{fresh}\n").as_bytes());
            want.push(fresh);
            src.poll_at(t, &mut |l| got.push(l.text.to_string()))
                .unwrap();
            max_fds = max_fds.max(fd_count());
            assert!(
                src.open_files() <= 2,
                "rotation {i}: {} open",
                src.open_files()
            );
        }
        src.poll_at(t, &mut |l| got.push(l.text.to_string()))
            .unwrap();
        assert_eq!(got, want, "{backend:?}");
        assert!(
            max_fds <= base + 1,
            "{backend:?}: descriptors grew from {base} to {max_fds}"
        );
        assert!(fd_count() <= base, "{backend:?}: {} > {base}", fd_count());
        drop(src);
    }
}
