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
    let root = PathBuf::from(
        std::env::var("FERROBAN_F2B_ROOT").unwrap_or_else(|_| "/tmp/f2b/root".into()),
    );
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
            let bytes =
                std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let lines = text
                .lines()
                .map(|l| l.trim_end_matches('\r').to_owned())
                .filter(|l| !l.starts_with('#'))
                .collect();
            (
                p.strip_prefix(&dir).unwrap_or(&p).display().to_string(),
                lines,
            )
        })
        .collect()
}

/// Literal datepatterns of fail2ban's filters (`%%` unescaped; values using
/// interpolation skipped) plus extra ones covering the dialect.
fn patterns(root: &Path) -> Vec<Option<String>> {
    let mut out: Vec<Option<String>> = vec![None];
    let mut files = Vec::new();
    walk(&root.join("etc/fail2ban/filter.d"), &mut files);
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "conf"))
    {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for line in text.lines() {
            let Some(v) = line.strip_prefix("datepattern") else {
                continue;
            };
            let Some(v) = v.trim_start().strip_prefix('=') else {
                continue;
            };
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

/// fail2ban's results, cached in `$FERROBAN_F2B_CACHE_DIR` (keyed on the jobs and the
/// script) when that variable is set: the Python side takes minutes.
fn python_results(root: &Path, jobs: &Value) -> Vec<Value> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let Ok(dir) = std::env::var("FERROBAN_F2B_CACHE_DIR") else {
        return run_python(root, jobs);
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/f2b_dates.py");
    let mut h = DefaultHasher::new();
    jobs.to_string().hash(&mut h);
    std::fs::read(&script).unwrap_or_default().hash(&mut h);
    root.hash(&mut h);
    let file = Path::new(&dir).join(format!("f2b-dates-{:016x}.json", h.finish()));
    if let Ok(bytes) = std::fs::read(&file)
        && let Ok(Value::Array(v)) = serde_json::from_slice(&bytes)
    {
        return v;
    }
    let v = run_python(root, jobs);
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(&file, Value::Array(v.clone()).to_string());
    v
}

fn run_python(root: &Path, jobs: &Value) -> Vec<Value> {
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
        stdin
            .write_all(jobs.to_string().as_bytes())
            .expect("write jobs");
    }
    let out = child.wait_with_output().expect("python output");
    assert!(out.status.success(), "f2b_dates.py failed");
    let v: Value = serde_json::from_slice(&out.stdout).expect("python JSON");
    v.as_array().expect("array").clone()
}

fn chars(line: &str, byte: usize) -> i64 {
    line[..byte].chars().count() as i64
}

/// Synthetic lines: edge cases of every default format (year boundaries,
/// leap days, invalid values, zones, fractions, prefixes, non-ASCII).
fn synthetic_lines() -> Vec<String> {
    let mut out = Vec::new();
    let dates = [
        "Dec 31 23:59:59",
        "Jan  1 00:00:01",
        "Jan 1 00:00:01",
        "Aug 14 11:59:59",
        "Aug 15 10:00:00",
        "Aug 16 10:00:00",
        "Feb 29 12:00:00",
        "Feb 30 12:00:00",
        "Aug 14 24:00:00",
        "Aug 14 10:00:60",
        "aug 14 10:00:00",
        "Sun Aug 14 10:00:00 2005",
        "Sun Aug 14 10:00:00.123456 2005",
        "Sun Aug 14 10:00:00.1234567 2005",
        "Aug 14 2005 10:00:00",
        "Mar 27 02:30:00",
        "Oct 30 02:30:00",
        "2005-08-14 10:00:00",
        "2005-08-14T10:00:00.123Z",
        "2005-08-14 10:00:00,123 +0200",
        "2005-08-14 10:00:00 -05:30",
        "2005-08-14 10:00:00+02",
        "2005-08-14 10:00:00 UTC",
        "2005-08-14 10:00:00 GMTx",
        "2005/08/14 10:00:00",
        "2005.08.14 10:00:00",
        "2005-8-4 1:2:3",
        "2005-08-14  8:00:00",
        "2005-08-32 10:00:00",
        "2035-08-14 10:00:00",
        "14/Aug/2005:10:00:00 +0200",
        "14/aug/2005:10:00:00 utc",
        "14-Aug-2005 10:00:00.252",
        "[14/Aug/2005:10:00:00 -0000]",
        "08/14/2005:10:00:00",
        "08-14-2005 10:00:00.5",
        "14/08/2005 10:00:00",
        "14-08-05 10:00:00",
        "<08/14/05@10:00:00>",
        "050814 10:00:00",
        "050814  9:00:00",
        "Aug 14, 2005 10:00:00 PM",
        "Aug 14, 2005 12:00:00 am",
        "Aug-14-05 10:00:00",
        "20050814T100000",
        "20050814 100000.5+0100",
        "CEST Aug 14 10:00:00",
        "PDT Aug 14 10:00:00",
        "XYZW Aug 14 10:00:00",
        "+0100 Aug 14 10:00:00",
        "1124013600",
        "1124013600.123",
        "[1124013600]",
        "1124013600123",
        "@4000000042ff0e9c00000000",
        "10:00:00",
        "23:59:59",
    ];
    let prefixes = ["", "x ", "host: ", "é ", "[", "--", "abc"];
    let suffixes = [
        "",
        " msg",
        "x",
        ".",
        "é",
        "0",
        ": audit(1124013600.123:42) end",
    ];
    for d in dates {
        for p in prefixes {
            for s in suffixes {
                out.push(format!("{p}{d}{s}"));
            }
        }
    }
    out.push("type=AVC msg=audit(1124013600.456:1): denied".into());
    out.push(String::new());
    out.push("no date here at all".into());
    out
}

struct Job {
    pattern: Option<String>,
    now: f64,
    name: String,
    lines: Vec<String>,
}

#[test]
fn same_dates_as_fail2ban() {
    let root = root();
    let logs = sample_logs(&root);
    let pats = patterns(&root);
    let mut jobs = Vec::new();
    for p in &pats {
        for (name, lines) in &logs {
            jobs.push(Job {
                pattern: p.clone(),
                now: NOW,
                name: name.clone(),
                lines: lines.clone(),
            });
        }
    }
    // one long stream of all logs: exercises template reordering and switches
    let stream: Vec<String> = logs.iter().flat_map(|(_, l)| l.iter().cloned()).collect();
    for p in [None, Some("{^LN-BEG}".to_owned())] {
        jobs.push(Job {
            pattern: p,
            now: NOW,
            name: "<all logs>".into(),
            lines: stream.clone(),
        });
    }
    // synthetic edge cases with clocks around year ends, leap days and DST
    let nows = [
        NOW,
        1_136_069_400.0, // 2005-12-31 23:50 CET
        1_136_073_000.0, // 2006-01-01 00:50 CET
        1_104_534_000.5, // 2005-01-01 00:00:00.5 CET
        1_078_052_400.0, // 2004-02-29 12:00 CET
        1_111_885_200.0, // 2005-03-27 01:00 CET
        1_130_634_000.0, // 2005-10-30 02:00 CET
    ];
    let synth = synthetic_lines();
    for now in nows {
        for p in [
            None,
            Some("{^LN-BEG}"),
            Some("%b %d %H:%M:%S"),
            Some("%H:%M:%S"),
            Some("EPOCH"),
        ] {
            jobs.push(Job {
                pattern: p.map(str::to_owned),
                now,
                name: format!("<synthetic @{now}>"),
                lines: synth.clone(),
            });
            // each line alone too (fresh detector: no adaptive history)
        }
        for line in &synth {
            jobs.push(Job {
                pattern: None,
                now,
                name: format!("<single @{now}>"),
                lines: vec![line.clone()],
            });
        }
    }
    let payload = Value::Array(
        jobs.iter()
            .map(|j| json!({"pattern": j.pattern, "now": j.now, "lines": j.lines}))
            .collect(),
    );
    let expected = python_results(&root, &payload);
    let tz = TimeZone::posix("CET-01CEST-02,M3.5.0,M10.5.0").unwrap();
    let (mut total, mut agree, mut dated, mut raised) = (0usize, 0usize, 0usize, 0usize);
    let mut failures = Vec::new();
    let mut per_pattern: Vec<(String, usize, usize)> = Vec::new();
    for (job, exp) in jobs.iter().zip(&expected) {
        let label = format!("{:?}", job.pattern);
        let mut det = match &job.pattern {
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
            failures.push(format!(
                "pattern {label}: fail2ban fails ({err}), we accept it"
            ));
            continue;
        }
        det.set_default_timezone(tz.clone());
        let hits = exp["hits"].as_array().expect("hits");
        let (mut pt, mut pa) = (0, 0);
        for (line, want) in job.lines.iter().zip(hits) {
            if want.as_str() == Some("raised") {
                // fail2ban raised IndexError on this line: keep our state in step
                det.match_time(line, job.now);
                raised += 1;
                continue;
            }
            let got = det.match_time(line, job.now).map(|h| {
                let (s, e) = (chars(line, h.start), chars(line, h.end));
                (s, e, h.time)
            });
            let want = want.as_array().map(|w| {
                (
                    w[0].as_i64().unwrap_or(-9),
                    w[1].as_i64().unwrap_or(-9),
                    w[2].as_f64(),
                )
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
            dated += usize::from(want.is_some_and(|w| w.2.is_some()));
            if same {
                agree += 1;
                pa += 1;
            } else if failures.len() < 40 {
                failures.push(format!(
                    "pattern {label} now {} {}: {line:?}\n    ours {got:?}\n    f2b  {want:?}",
                    job.now, job.name
                ));
            }
        }
        match per_pattern.iter_mut().find(|(l, _, _)| *l == label) {
            Some(e) => {
                e.1 += pa;
                e.2 += pt;
            }
            None => per_pattern.push((label, pa, pt)),
        }
    }
    for (label, pa, pt) in &per_pattern {
        println!("pattern {label:<60} {pa:>6}/{pt:<6} lines agree");
    }
    println!(
        "TOTAL: {agree}/{total} lines agree ({dated} with a time from fail2ban, {raised} lines where fail2ban raised skipped), {} jobs",
        jobs.len()
    );
    assert!(
        failures.is_empty(),
        "{} disagreements, first ones:\n{}",
        total - agree,
        failures.join("\n")
    );
}

/// Property test through the same harness: timestamps generated by proptest (deterministic
/// seed; instants from 2000 to 2037, in the harness's CET/CEST zone or with an explicit
/// offset, in the formats of fail2ban's default templates, with prefixes and suffixes) go
/// through fail2ban's detector and ours, as one batch per clock; spans and times must agree.
/// (A batch, not one Python run per case: proptest cannot shrink here, the failures list the
/// lines.)
#[test]
fn generated_timestamps_agree_with_fail2ban() {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    const FORMATS: &[&str] = &[
        "%b %d %H:%M:%S",
        "%b %e %H:%M:%S",
        "%a %b %d %H:%M:%S %Y",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%z",
        "%Y-%m-%d %H:%M:%S %:z",
        "%d/%b/%Y:%H:%M:%S %z",
        "%Y/%m/%d %H:%M:%S",
        "%d-%b-%Y %H:%M:%S",
        "%m/%d/%Y:%H:%M:%S",
        "%d/%m/%Y %H:%M:%S",
        "%y%m%d %H:%M:%S",
        "%b %d, %Y %I:%M:%S %p",
        "%b-%d-%y %H:%M:%S",
        "%Y%m%dT%H%M%S",
        "%s",
        "[%s]",
        "%H:%M:%S",
    ];
    let root = root();
    let cet = TimeZone::posix("CET-01CEST-02,M3.5.0,M10.5.0").unwrap();
    let zones = [
        cet.clone(),
        TimeZone::UTC,
        TimeZone::fixed(jiff::tz::offset(-5)),
        TimeZone::fixed(jiff::tz::Offset::from_seconds(19_800).unwrap()),
    ];
    let strategy = (
        946_684_800i64..2_145_916_800,
        0..FORMATS.len(),
        0..zones.len(),
        proptest::sample::select(vec!["", "host sshd[42]: ", "[", "x ", "é ", "--"]),
        proptest::sample::select(vec!["", " msg", "]: Failed password", "x", " 0"]),
    );
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let mut lines = Vec::new();
    for _ in 0..3000 {
        let (t, f, z, pre, suf) = strategy.new_tree(&mut runner).unwrap().current();
        let zoned = jiff::Timestamp::from_second(t)
            .unwrap()
            .to_zoned_datetime(zones[z].clone());
        let text = jiff::fmt::strtime::format(FORMATS[f], &zoned).unwrap();
        lines.push(format!("{pre}{text}{suf}"));
    }
    let nows = [NOW, 1_796_558_400.0, 1_136_073_000.0];
    let payload = Value::Array(
        nows.iter()
            .map(|now| json!({"pattern": null, "now": now, "lines": lines}))
            .collect(),
    );
    let expected = python_results(&root, &payload);
    let mut failures = Vec::new();
    let (mut total, mut dated) = (0usize, 0usize);
    for (now, exp) in nows.iter().zip(&expected) {
        let mut det = DateDetector::with_default_templates();
        det.set_default_timezone(cet.clone());
        let hits = exp["hits"].as_array().expect("hits");
        for (line, want) in lines.iter().zip(hits) {
            if want.as_str() == Some("raised") {
                det.match_time(line, *now);
                continue;
            }
            let got = det
                .match_time(line, *now)
                .map(|h| (chars(line, h.start), chars(line, h.end), h.time));
            let want = want.as_array().map(|w| {
                (
                    w[0].as_i64().unwrap_or(-9),
                    w[1].as_i64().unwrap_or(-9),
                    w[2].as_f64(),
                )
            });
            let same = match (&got, &want) {
                (None, None) => true,
                (Some((s, e, t)), Some((ws, we, wt))) => {
                    ((s == ws && e == we) || (*ws < 0 && s == e))
                        && match (t, wt) {
                            (None, None) => true,
                            (Some(a), Some(b)) => (a - b).abs() < 1e-6,
                            _ => false,
                        }
                }
                _ => false,
            };
            total += 1;
            dated += usize::from(want.is_some_and(|w| w.2.is_some()));
            if !same && failures.len() < 40 {
                failures.push(format!(
                    "now {now}: {line:?}\n    ours {got:?}\n    f2b  {want:?}"
                ));
            }
        }
    }
    eprintln!(
        "generated timestamps: {total} lines, {dated} dated by fail2ban, {} disagreements",
        failures.len()
    );
    assert!(
        dated > total / 2,
        "the generator should produce mostly dated lines"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
