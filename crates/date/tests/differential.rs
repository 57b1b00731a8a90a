//! Differential test against fail2ban's own date detector.
//!
//! Every line of every sample log shipped with fail2ban (comment lines
//! skipped) goes through fail2ban's `DateDetector` (run by `f2b_dates.py`
//! with fail2ban's test clock) and through ours, with the default templates
//! and with every literal `datepattern` of fail2ban's filters plus a set of
//! extra patterns. Spans and times must be identical.
//!
//! fail2ban is taken from `$FERROBAN_F2B_ROOT` (default `/tmp/f2b/root`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ferroban_date::DateDetector;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

const NOW: f64 = 1_124_013_600.0;

fn root() -> PathBuf {
    let root = PathBuf::from(std::env::var("FERROBAN_F2B_ROOT").unwrap_or_else(|_| "/tmp/f2b/root".into()));
    let pkg = root.join("usr/lib/python3/dist-packages/fail2ban");
    assert!(
        pkg.is_dir(),
        "fail2ban reference not found at {} (set FERROBAN_F2B_ROOT to an extracted fail2ban 1.0.2 package root)",
        pkg.display()
    );
    root
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Sample logs: `(name, lines)`.
fn sample_logs(root: &Path) -> Vec<(String, Vec<String>)> {
    let dir = root.join("usr/lib/python3/dist-packages/fail2ban/tests/files/logs");
    let mut files = Vec::new();
    walk(&dir, &mut files);
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let lines = text
                .lines()
                .map(|l| l.trim_end_matches('\r').to_owned())
                .filter(|l| !l.starts_with('#'))
                .collect();
            (p.strip_prefix(&dir).unwrap_or(&p).display().to_string(), lines)
        })
        .collect()
}

/// Literal datepatterns of fail2ban's filters (`%%` unescaped; values using
/// interpolation skipped) plus extra ones covering the dialect.
fn patterns(root: &Path) -> Vec<Option<String>> {
    let mut out: Vec<Option<String>> = vec![None];
    let mut files = Vec::new();
    walk(&root.join("etc/fail2ban/filter.d"), &mut files);
    for f in files.iter().filter(|f| f.extension().is_some_and(|e| e == "conf")) {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for line in text.lines() {
            let Some(v) = line.strip_prefix("datepattern") else { continue };
            let Some(v) = v.trim_start().strip_prefix('=') else { continue };
            let v = v.trim();
            if v.is_empty() || v.contains("%(") || v.contains('<') && !v.contains("^<") {
                continue;
            }
            if v.contains("<W>") || v.contains("<L_") || v.contains("<lt_") {
                continue;
            }
            let v = v.replace("%%", "%");
            if !out.contains(&Some(v.clone())) {
                out.push(Some(v));
            }
        }
    }
    for extra in [
        "{^LN-BEG}",
        "{DEFAULT}",
        "{NONE}",
        "Epoch",
        "LEPOCH",
        "^LEPOCH",
        "TAI64N",
        "^%b %d %H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%d/%b/%Y:%H:%M:%S %z",
        "{^LN-BEG}%ExY-%Exm-%Exd %ExH:%ExM:%ExS",
        "%a %b %d %H:%M:%S %Y",
        "%H:%M:%S",
        "%y%m%d %k:%M:%S",
        "%I:%M:%S %p",
        "%Z %H:%M:%S",
        "%b %d %H:%M:%S %Z",
        "%B %d",
        "%j %H:%M",
        "%m/%d %H:%M",
        "{DATE}",
        "^<\\d+>\\d+\\s+{DATE}",
        "(?P<Y>\\d{4})(?P<m>\\d\\d)(?P<d>\\d\\d)",
        "^\\S+ \\S+ {EPOCH}",
        "%Y-%m-%d %H:%M:%S\n%b %d %H:%M:%S",
        "{^LN-BEG}\n^\\[%d/%b/%Y %H:%M:%S\\]",
    ] {
        out.push(Some(extra.to_owned()));
    }
    out
}

fn python_results(root: &Path, jobs: &Value) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/f2b_dates.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .env("FERROBAN_F2B_ROOT", root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the differential test");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(jobs.to_string().as_bytes()).expect("write jobs");
    }
    let out = child.wait_with_output().expect("python output");
    assert!(out.status.success(), "f2b_dates.py failed");
    let v: Value = serde_json::from_slice(&out.stdout).expect("python JSON");
    v.as_array().expect("array").clone()
}

fn chars(line: &str, byte: usize) -> i64 {
    line[..byte].chars().count() as i64
}

#[test]
fn same_dates_as_fail2ban() {
    let root = root();
    let logs = sample_logs(&root);
    let pats = patterns(&root);
    let mut jobs = Vec::new();
    for p in &pats {
        for (_, lines) in &logs {
            jobs.push(json!({"pattern": p, "lines": lines}));
        }
    }
    let expected = python_results(&root, &Value::Array(jobs));
    let tz = TimeZone::posix("CET-01CEST-02,M3.5.0,M10.5.0").unwrap();
    let (mut total, mut agree, mut dated, mut raised) = (0usize, 0usize, 0usize, 0usize);
    let mut failures = Vec::new();
    let mut k = 0;
    for p in &pats {
        let (mut pt, mut pa) = (0, 0);
        for (name, lines) in &logs {
            let exp = &expected[k];
            k += 1;
            let mut det = match p {
                None => DateDetector::with_default_templates(),
                Some(p) => match DateDetector::from_pattern(p) {
                    Ok(d) => d,
                    Err(e) => {
                        if exp.get("error").is_none() {
                            failures.push(format!("pattern {p:?}: we fail ({e}), fail2ban accepts it"));
                        }
                        continue;
                    }
                },
            };
            if let Some(err) = exp.get("error") {
                failures.push(format!("pattern {p:?}: fail2ban fails ({err}), we accept it"));
                continue;
            }
            det.set_default_timezone(tz.clone());
            let hits = exp["hits"].as_array().expect("hits");
            for (line, want) in lines.iter().zip(hits) {
                if want.as_str() == Some("raised") {
                    // fail2ban raised IndexError on this line: keep our state in step
                    det.match_time(line, NOW);
                    raised += 1;
                    continue;
                }
                let got = det.match_time(line, NOW).map(|h| {
                    let (s, e) = (chars(line, h.start), chars(line, h.end));
                    (s, e, h.time)
                });
                let want = want.as_array().map(|w| {
                    (w[0].as_i64().unwrap_or(-9), w[1].as_i64().unwrap_or(-9), w[2].as_f64())
                });
                let same = match (&got, &want) {
                    (None, None) => true,
                    (Some((s, e, t)), Some((ws, we, wt))) => {
                        let span = (s == ws && e == we) || (*ws < 0 && s == e);
                        span && match (t, wt) {
                            (None, None) => true,
                            (Some(a), Some(b)) => (a - b).abs() < 1e-6,
                            _ => false,
                        }
                    }
                    _ => false,
                };
                total += 1;
                pt += 1;
                dated += usize::from(want.is_some());
                if same {
                    agree += 1;
                    pa += 1;
                } else if failures.len() < 40 {
                    failures.push(format!("pattern {p:?} {name}: {line:?}\n    ours {got:?}\n    f2b  {want:?}"));
                }
            }
        }
        println!("pattern {:<60} {pa:>6}/{pt:<6} lines agree", format!("{p:?}"));
    }
    println!(
        "TOTAL: {agree}/{total} lines agree ({dated} dated by fail2ban, {raised} lines where fail2ban raised skipped), {} patterns x {} logs",
        pats.len(),
        logs.len()
    );
    assert!(failures.is_empty(), "{} disagreements, first ones:\n{}", total - agree, failures.join("\n"));
}
