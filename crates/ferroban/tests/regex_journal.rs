//! `ferroban regex systemd-journal[...]` against the real `fail2ban-regex systemd-journal[...]`
//! on the same journal: the messages of fail2ban's sshd sample log written as journal entries
//! with sshd's fields by systemd-journal-remote.
//!
//! Needs fail2ban 1.0.2 unpacked at `$FERROBAN_F2B_ROOT` (default `/tmp/f2b/root`), run by
//! `$FERROBAN_F2B_PYTHON` (default `/usr/bin/python3`) with Debian's python3-systemd (its journal
//! reader), and systemd-journal-remote; .ci/run installs both packages.

#[path = "../../source/tests/journal_common/mod.rs"]
mod journal_common;

use std::path::Path;
use std::process::Command;

use ferroban_testkit::{f2b_command, f2b_root};
use journal_common::Writer;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

fn fail2ban(args: &[&str]) -> String {
    run(f2b_command("fail2ban-regex").args(args))
}

fn ferroban(args: &[&str]) -> String {
    run(Command::new(env!("CARGO_BIN_EXE_ferroban"))
        .arg("regex")
        .args(args))
}

/// The report's counting lines: `Lines:`, the totals and the per-regex hits.
fn counts(report: &str) -> Vec<String> {
    report
        .lines()
        .filter(|l| {
            l.starts_with("Lines: ")
                || l.starts_with("Failregex: ")
                || l.starts_with("Ignoreregex: ")
                || l.starts_with("Prefregex: ")
                || (l.starts_with("|  ") && l.contains(") ["))
        })
        .map(|l| {
            // The per-regex rows: number and hits only (the regex text is the filter's).
            match l.split_once("] ") {
                Some((head, _)) if l.starts_with("|  ") => head.to_string(),
                _ => l.to_string(),
            }
        })
        .collect()
}

/// The sample's sshd lines as (pid, message).
fn sshd_messages(sample: &Path) -> Vec<(u32, String)> {
    let text = std::fs::read_to_string(sample).expect("sshd sample log");
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(i) = line.find(" sshd[") else {
            continue;
        };
        let rest = &line[i + " sshd[".len()..];
        let Some((pid, msg)) = rest.split_once("]: ") else {
            continue;
        };
        let Ok(pid) = pid.parse() else { continue };
        if msg.contains('\n') || msg.is_empty() {
            continue;
        }
        out.push((pid, msg.to_string()));
    }
    out
}

#[test]
fn journal_reports_match_fail2ban_regex() {
    let r = f2b_root();
    let sample = r.join("usr/lib/python3/dist-packages/fail2ban/tests/files/logs/sshd");
    let messages = sshd_messages(&sample);
    assert!(messages.len() > 100, "{} sshd lines", messages.len());
    let dir = std::env::temp_dir().join(format!("ferroban-regex-journal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut w = Writer::start(&dir);
    let entries: Vec<(&str, u32, String)> = messages
        .iter()
        .map(|(pid, m)| ("sshd", *pid, m.clone()))
        .collect();
    w.send(&entries);
    w.send(&[("cron", 1, "not sshd".into())]);
    w.finish();
    let config = r.join("etc/fail2ban").display().to_string();
    let log = format!("systemd-journal[journalpath={}]", dir.display());
    for filter in ["sshd", "sshd[mode=aggressive]"] {
        let args = ["-c", config.as_str(), log.as_str(), filter];
        let theirs = fail2ban(&args);
        let ours = ferroban(&args);
        assert!(ours.contains("Use         systemd journal"), "{ours}");
        assert!(
            ours.contains("Use    journal match : _SYSTEMD_UNIT=sshd.service + _COMM=sshd"),
            "{ours}"
        );
        let (a, b) = (counts(&ours), counts(&theirs));
        assert!(
            a.iter().any(|l| l.starts_with("Lines: ")),
            "no summary:\n{ours}"
        );
        assert_eq!(a, b, "{filter}: ferroban\n{ours}\nfail2ban\n{theirs}");
        eprintln!("{filter}: {a:?}");
    }
    // journalmatch in LOG, -m winning over it, every entry without one.
    let only_cron = format!(
        "systemd-journal[journalpath={}, journalmatch=SYSLOG_IDENTIFIER=cron]",
        dir.display()
    );
    let out = ferroban(&["-c", &config, &only_cron, "sshd"]);
    assert!(
        out.contains("Lines: 1 lines, 0 ignored, 0 matched, 1 missed"),
        "{out}"
    );
    let out = ferroban(&["-c", &config, "-m", "_COMM=nothing", &only_cron, "sshd"]);
    assert!(out.contains("Lines: 0 lines"), "{out}");
    let out = ferroban(&["-c", &config, "-m", "", &log, "^.*not <F-ID>sshd</F-ID>$"]);
    let total = messages.len() + 1;
    assert!(
        out.contains(&format!("Lines: {total} lines, 0 ignored, 1 matched")),
        "{out}"
    );
    let bad = Command::new(env!("CARGO_BIN_EXE_ferroban"))
        .args(["regex", "systemd-journal[journalpath=/x, bogus=1]", "sshd"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("bogus"));
    let _ = std::fs::remove_dir_all(&dir);
}
