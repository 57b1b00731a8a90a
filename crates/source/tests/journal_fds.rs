//! 100 jails on one journal: one journalctl, two descriptors per jail, and no descriptor growth
//! (in this process or in journalctl) across rotations and vacuums by the writer.
//! (Alone in its binary: /proc/self/fd counts the whole process.)

mod journal_common;

use ferroban_source::journal::{JournalMatch, JournalSelection, JournalSource, Start};
use journal_common::*;

const JAILS: usize = 100;
const IDENTS: usize = 10;

#[test]
fn hundred_jails_one_reader_no_descriptor_growth() {
    let d = tempfile::tempdir().unwrap();
    let mut w = Writer::start(d.path());
    let batch = |round: u32| -> Vec<(&'static str, u32, String)> {
        (0..IDENTS)
            .map(|k| {
                let ident: &'static str = [
                    "app0", "app1", "app2", "app3", "app4", "app5", "app6", "app7", "app8", "app9",
                ][k];
                (ident, 1, format!("round {round}"))
            })
            .collect()
    };
    w.send(&batch(0));
    let sel = JournalSelection {
        path: Some(d.path().to_path_buf()),
        rotated: true,
        ..JournalSelection::default()
    };
    let base = fd_count("self");
    let since = Start::Since(now_usec() - 600_000_000);
    let mut jails: Vec<JournalSource> = (0..JAILS)
        .map(|j| {
            let m = JournalMatch::parse(&[format!("SYSLOG_IDENTIFIER=app{}", j % IDENTS)]).unwrap();
            JournalSource::new(sel.clone(), m, since.clone()).unwrap()
        })
        .collect();
    let read_round = |jails: &mut Vec<JournalSource>, round: u32| {
        for (j, src) in jails.iter_mut().enumerate() {
            let got = read_until(src, 60, |g, r| !g.is_empty() && r.caught_up);
            assert_eq!(
                got,
                vec![format!("srv app{}[1]: round {round}", j % IDENTS)]
            );
        }
    };
    read_round(&mut jails, 0);
    let pid = jails[0].reader_pid().expect("reader running");
    assert!(
        jails.iter().all(|j| j.reader_pid() == Some(pid)),
        "one journalctl for all"
    );
    let ours = fd_count("self");
    // An epoll and an eventfd per jail, the reader's stdout and stderr.
    assert!(
        ours - base <= 2 * JAILS + 2,
        "{} descriptors for {JAILS} jails",
        ours - base
    );
    let child = fd_count(&pid.to_string());
    let mut pids = vec![pid];
    eprintln!("descriptors: {base} before, {ours} with {JAILS} jails; journalctl holds {child}");
    for round in 1..=3u32 {
        w.rotate();
        w.send(&batch(round));
        read_round(&mut jails, round);
        vacuum(d.path());
        // Let journalctl see the deletions, then check both processes.
        w.send(&[]);
        for src in jails.iter_mut() {
            read_until(src, 10, |_, r| !r.more);
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        for src in jails.iter_mut() {
            read_until(src, 10, |_, r| !r.more);
        }
        assert_eq!(fd_count("self"), ours, "round {round}: our descriptors");
        // The rotation and the vacuum restarted the reader: still one for all, holding no
        // more descriptors than the first.
        let now_pid = jails[0].reader_pid().expect("reader running");
        assert!(
            jails.iter().all(|j| j.reader_pid() == Some(now_pid)),
            "round {round}: one journalctl for all"
        );
        let now = fd_count(&now_pid.to_string());
        assert!(
            now <= child,
            "round {round}: journalctl {child} -> {now} descriptors"
        );
        pids.push(now_pid);
    }
    pids.extend(jails[0].reader_pid());
    drop(jails);
    assert_eq!(
        fd_count("self"),
        base,
        "every descriptor closed with the jails"
    );
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "journalctl {pid} ended and reaped"
        );
    }
    w.finish();
}
