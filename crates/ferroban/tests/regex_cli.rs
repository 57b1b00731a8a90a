//! `ferroban regex` against the real fail2ban-regex, run at test time.
//!
//! Needs fail2ban 1.0.2 unpacked at `$FERROBAN_F2B_ROOT` (default `/tmp/f2b/root`), run by
//! `$FERROBAN_F2B_PYTHON` (default `/usr/bin/python3`): ferroban_testkit's `f2b_root` and
//! `f2b_command`, which fail the test when the reference is missing.

use std::collections::BTreeMap;
use std::process::Command;

use ferroban_testkit::{f2b_command, f2b_root};

fn config() -> String {
    f2b_root().join("etc/fail2ban").display().to_string()
}

fn sample(name: &str) -> String {
    f2b_root()
        .join("usr/lib/python3/dist-packages/fail2ban/tests/files/logs")
        .join(name)
        .display()
        .to_string()
}

struct Run {
    stdout: String,
    stderr: String,
    code: i32,
}

fn ferroban(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_ferroban"))
        .arg("regex")
        .args(args)
        .output()
        .expect("run ferroban");
    Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

fn fail2ban(args: &[&str]) -> Run {
    let out = f2b_command("fail2ban-regex")
        .args(args)
        .output()
        .expect("run fail2ban-regex");
    Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

/// The `Lines:` summary.
fn summary(out: &str) -> String {
    out.lines()
        .find(|l| l.starts_with("Lines: "))
        .unwrap_or_else(|| panic!("no Lines: summary in\n{out}"))
        .to_string()
}

/// Per-regex hits of the `Failregex` (or `Ignoreregex`) table: number → hits.
fn hits(out: &str, title: &str) -> BTreeMap<u32, u64> {
    let mut map = BTreeMap::new();
    let mut inside = false;
    for l in out.lines() {
        if l.starts_with(&format!("{title}: ")) {
            inside = true;
            continue;
        }
        if inside && l.starts_with("`-") {
            break;
        }
        if inside && l.is_empty() {
            break;
        }
        if inside && let Some(rest) = l.strip_prefix("|  ") {
            let rest = rest.trim_start();
            if let Some((n, tail)) = rest.split_once(") [")
                && let Ok(n) = n.parse::<u32>()
                && let Some((h, _)) = tail.split_once(']')
            {
                map.insert(n, h.parse().expect("hit count"));
            }
        }
    }
    map
}

fn total(out: &str, title: &str) -> String {
    out.lines()
        .find(|l| l.starts_with(&format!("{title}: ")))
        .unwrap_or_else(|| panic!("no {title} line in\n{out}"))
        .to_string()
}

fn compare(args: &[&str]) -> Run {
    let f = fail2ban(args);
    let r = ferroban(args);
    assert_eq!(f.code, 0, "fail2ban-regex failed: {}{}", f.stdout, f.stderr);
    assert_eq!(r.code, 0, "ferroban regex failed: {}{}", r.stdout, r.stderr);
    assert_eq!(
        summary(&r.stdout),
        summary(&f.stdout),
        "Lines: summary for {args:?}"
    );
    for title in ["Failregex", "Ignoreregex"] {
        assert_eq!(
            total(&r.stdout, title),
            total(&f.stdout, title),
            "{title} total for {args:?}"
        );
        assert_eq!(
            hits(&r.stdout, title),
            hits(&f.stdout, title),
            "{title} hits for {args:?}"
        );
    }
    r
}

#[test]
fn filters_match_fail2ban_regex() {
    let c = config();
    for name in [
        "sshd",
        "nginx-botsearch",
        "nginx-http-auth",
        "apache-auth",
        "postfix",
        "dovecot",
    ] {
        compare(&["-c", &c, &sample(name), name]);
    }
}

#[test]
fn filter_options_and_print_all() {
    let c = config();
    let r = compare(&[
        "-c",
        &c,
        "--print-all-missed",
        &sample("sshd"),
        "sshd[mode=aggressive]",
    ]);
    assert!(
        r.stdout
            .contains("Use   filter options : {'mode': 'aggressive'}")
    );
    assert!(r.stdout.contains("|- Missed line(s):"), "{}", r.stdout);
}

#[test]
fn filter_file_path() {
    let c = config();
    let path = format!("{c}/filter.d/nginx-http-auth.conf");
    compare(&["-c", &c, &sample("nginx-http-auth"), &path]);
}

#[test]
fn literal_regex_on_a_file() {
    let r = compare(&[
        &sample("nginx-botsearch"),
        r#"^<HOST> -.* "(GET|POST).* HTTP/.*" (404|403)"#,
    ]);
    assert!(r.stdout.contains("Use   failregex line : "));
}

#[test]
fn literal_regex_with_ignoreregex() {
    compare(&[
        &sample("sshd"),
        r"Failed \S+ for .* from <HOST>",
        r"for root from",
    ]);
}

#[test]
fn literal_log_line() {
    let line = "Jan 14 16:18:16 host sshd[1]: Failed password for root from 192.0.2.7 port 22 ssh2";
    let args = [line, r"Failed \S+ for \S+ from <HOST>"];
    let r = compare(&args);
    let f = fail2ban(&args);
    let use_line = |out: &str| {
        out.lines()
            .find(|l| l.starts_with("Use      single line : "))
            .map(str::to_string)
    };
    assert!(
        use_line(&r.stdout).is_some_and(|l| l.ends_with("...")),
        "{}",
        r.stdout
    );
    assert_eq!(use_line(&r.stdout), use_line(&f.stdout));
    assert!(
        r.stdout
            .contains("Lines: 1 lines, 0 ignored, 1 matched, 0 missed")
    );
}

#[test]
fn report_layout() {
    let c = config();
    let r = ferroban(&["-c", &c, &sample("nginx-http-auth"), "nginx-http-auth"]);
    let out = &r.stdout;
    for needle in [
        "\nRunning tests\n=============\n\n",
        "Use   failregex filter file : nginx-http-auth, basedir: ",
        "Use         log file : ",
        "Use         encoding : UTF-8",
        "\nResults\n=======\n",
        "\nFailregex: 7 total\n|-  #) [# of hits] regular expression\n|   1) [7] ",
        "\nIgnoreregex: 0 total\n",
        "[processed in ",
        "|- Missed line(s):\n|  ",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in\n{out}");
    }
}

#[test]
fn json_output() {
    let c = config();
    let r = ferroban(&["-c", &c, "--json", &sample("sshd"), "sshd"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let objs: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .collect();
    let report = ferroban(&["-c", &c, &sample("sshd"), "sshd"]);
    let matched: usize = summary(&report.stdout)
        .split(", ")
        .find_map(|p| p.strip_suffix(" matched"))
        .and_then(|n| n.parse().ok())
        .expect("matched count");
    assert_eq!(objs.len(), matched);
    let mut users = 0;
    for o in &objs {
        assert!(o["line"].as_u64().is_some_and(|n| n > 0), "{o}");
        assert!(o["regex"].as_u64().is_some(), "{o}");
        assert!(o["text"].is_string());
        assert!(o["captures"].is_object());
        assert!(o.get("id").is_some() && o.get("time").is_some() && o.get("time_iso").is_some());
        if o["time"].is_number() {
            assert!(
                o["time_iso"].as_str().is_some_and(|s| s.ends_with('Z')),
                "{o}"
            );
        }
        if o["captures"]["user"].is_string() {
            users += 1;
        }
    }
    assert!(users > 0, "sshd captures users");
    let first = &objs[0];
    assert!(first["id"].is_string());
}

#[test]
fn out_token() {
    let c = config();
    let args = [
        "-c",
        c.as_str(),
        "-o",
        "id",
        &sample("nginx-http-auth"),
        "nginx-http-auth",
    ];
    let f = fail2ban(&args);
    let r = ferroban(&args);
    assert_eq!(r.stdout, f.stdout);
}

#[test]
fn errors_name_what_is_wrong() {
    let c = config();
    let r = ferroban(&["-c", &c, "/nonexistent/dir/auth.log", "sshd"]);
    assert_eq!(r.code, 255);
    assert!(
        r.stderr.contains("/nonexistent/dir/auth.log"),
        "{}",
        r.stderr
    );

    let r = ferroban(&["-c", &c, &sample("sshd"), "no-such-filter"]);
    assert_eq!(r.code, 255);
    assert!(r.stderr.contains("unknown filter"), "{}", r.stderr);
    assert!(
        r.stderr.contains("filter.d/no-such-filter.conf"),
        "{}",
        r.stderr
    );

    let r = ferroban(&[&sample("sshd"), "Failed (unclosed <HOST>"]);
    assert_eq!(r.code, 255);
    assert!(r.stderr.contains("invalid failregex #1"), "{}", r.stderr);
    assert!(r.stderr.contains("Failed (unclosed <HOST>"), "{}", r.stderr);

    // The journal is read (tests/regex_journal.rs); journalctl cannot do runtime-only.
    let r = ferroban(&["systemd-journal[journalflags=2]", "sshd"]);
    assert_eq!(r.code, 255);
    assert!(r.stderr.contains("journalflags=2"), "{}", r.stderr);
}

/// The "Date template hits" section counts what fail2ban-regex counts, per template.
#[test]
fn date_template_hits_match_fail2ban_regex() {
    fn section(out: &str) -> Vec<u64> {
        let mut counts: Vec<u64> = out
            .split("Date template hits:")
            .nth(1)
            .unwrap_or_else(|| panic!("no date template section in:\n{out}"))
            .lines()
            .take_while(|l| !l.starts_with('`'))
            .filter_map(|l| l.strip_prefix("|  ["))
            .filter_map(|l| l.split(']').next()?.parse().ok())
            .collect();
        counts.sort_unstable();
        counts
    }
    let cfg = config();
    for name in ["sshd", "nginx-botsearch", "apache-auth"] {
        let log = sample(name);
        let args = ["-c", cfg.as_str(), log.as_str(), name];
        let ours = ferroban(&args);
        let theirs = fail2ban(&args);
        assert_eq!(section(&ours.stdout), section(&theirs.stdout), "{name}");
    }
}

/// An over-long line (issue 15): padded so that a 64 KiB cut would fall between a decoy address
/// and the real source at its end. fail2ban blames the real source; ferroban skips the line
/// whole (with a warning) instead of matching the cut, so it never blames the decoy.
#[test]
fn over_long_line_is_never_matched_on_a_cut() {
    let dir = std::env::temp_dir().join(format!("ferroban-regex-long-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("auth.log");
    let head = "Jan 14 16:18:16 host sshd[1]: Failed password for root from 203.0.113.77";
    let pad = " x".repeat((65536 - head.len()) / 2);
    let long = format!("{head}{pad} from 2001:db8:bad::1 port 22 ssh2");
    let short =
        "Jan 14 16:18:17 host sshd[1]: Failed password for root from 192.0.2.9 port 22 ssh2";
    std::fs::write(&log, format!("{long}\n{short}\n")).unwrap();
    let path = log.display().to_string();
    let regex = r"Failed \S+ for \S+ from <HOST>";
    let r = ferroban(&["--print-all-matched", &path, regex]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains("203.0.113.77"), "{}", r.stdout);
    assert!(r.stdout.contains("192.0.2.9"), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("1 line(s) longer than 65536 bytes were skipped"),
        "{}",
        r.stderr
    );
}
