//! `ferroban test-filters`: runs annotated sample logs against filters.
//!
//! A sample log is named after its filter and holds log lines, each optionally preceded by a
//! `# failJSON: {...}` annotation that says what the filter must find on it (`match`, `host`,
//! `time`, `user`, `users`, `attempts`, `dns`, `ip4`, `ip6`, `constraint`). Unannotated,
//! non-comment lines must not match. `# filterOptions:` switches the filter variants (e.g. modes)
//! that the following lines are run under; `# fileOptions:` sets options common to all variants
//! of a file; `# addFILE:` runs another sample file with the same filters. The clock is fixed at
//! 2005-08-14 10:00:00 UTC in the zone `CET-01CEST-02,M3.5.0,M10.5.0`, which decides the year of
//! year-less dates and the expected times.
//!
//! One case is one checked line under one filter variant. A filter variant whose failregex
//! never matched any sample is a failed case too ("regex has no samples").

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ferroban_matcher::{GroupValue, UseDns};
use serde_json::{Map, Value};

use crate::filter::{Failure, Filter, FilterOptions};
use crate::ip::HostId;

/// The fixed test clock: 2005-08-14 10:00:00 UTC.
pub const TEST_NOW: f64 = 1_124_013_600.0;
/// The test clock's time zone.
pub const TEST_TZ: &str = "CET-01CEST-02,M3.5.0,M10.5.0";
/// `TEST_NOW` as the journal backend's time text.
const TEST_NOW_STR: &str = "2005-08-14T10:00:00";

/// What to run.
#[derive(Debug, Clone)]
pub struct TestFiltersOptions {
    /// Configuration directory with `filter.d/`.
    pub config_dir: PathBuf,
    /// Directory with sample logs named after the filters.
    pub samples_dir: PathBuf,
    /// Filters to run; empty means every `filter.d/*.conf` except `*common.conf`.
    pub filters: Vec<String>,
}

/// One failed case.
#[derive(Debug, Clone)]
pub struct CaseFailure {
    /// `file:line` of the checked log line (or the filter for "no samples").
    pub location: String,
    /// Filter variant name (filter name plus options).
    pub variant: String,
    /// What was expected.
    pub expected: String,
    /// What was found.
    pub got: String,
}

/// Totals and failures of a run.
#[derive(Debug, Default)]
pub struct Report {
    /// Cases that passed.
    pub passed: usize,
    /// Failed cases.
    pub failures: Vec<CaseFailure>,
    /// Cases per filter: (passed, failed).
    pub per_filter: BTreeMap<String, (usize, usize)>,
}

impl Report {
    /// Human-readable report ending with `N passed, M failed`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.failures {
            let _ = writeln!(
                out,
                "FAIL {} [{}]\n  expected: {}\n  got:      {}",
                f.location, f.variant, f.expected, f.got
            );
        }
        let _ = writeln!(
            out,
            "{} passed, {} failed",
            self.passed,
            self.failures.len()
        );
        out
    }

    fn pass(&mut self, filter: &str) {
        self.passed += 1;
        self.per_filter.entry(filter.to_string()).or_default().0 += 1;
    }

    fn fail(&mut self, filter: &str, f: CaseFailure) {
        self.per_filter.entry(filter.to_string()).or_default().1 += 1;
        self.failures.push(f);
    }
}

/// Errors that stop a run before any case.
#[derive(Debug, thiserror::Error)]
pub enum TestFiltersError {
    /// A directory could not be listed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Runs the samples of every selected filter.
pub fn run(opts: &TestFiltersOptions) -> Result<Report, TestFiltersError> {
    let mut names = opts.filters.clone();
    if names.is_empty() {
        let dir = opts.config_dir.join("filter.d");
        let rd = std::fs::read_dir(&dir).map_err(|source| TestFiltersError::Io {
            path: dir.clone(),
            source,
        })?;
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if let Some(stem) = n.strip_suffix(".conf")
                && !n.ends_with("common.conf")
                && !stem.starts_with('.')
            {
                names.push(stem.to_string());
            }
        }
        names.sort();
    }
    let mut report = Report::default();
    for name in &names {
        FilterRun::new(name, opts).run(&mut report);
    }
    Ok(report)
}

struct Variant {
    name: String,
    filter: Result<Filter, String>,
    used: BTreeSet<usize>,
}

struct FilterRun<'a> {
    name: &'a str,
    opts: &'a TestFiltersOptions,
    variants: Vec<Variant>,
    used_regexes: BTreeSet<String>,
    tz: jiff::tz::TimeZone,
}

/// The variants the lines that follow run under: (index into `variants`, options).
type Active = Vec<(usize, Map<String, Value>)>;

impl<'a> FilterRun<'a> {
    fn new(name: &'a str, opts: &'a TestFiltersOptions) -> Self {
        FilterRun {
            name,
            opts,
            variants: Vec::new(),
            used_regexes: BTreeSet::new(),
            tz: jiff::tz::TimeZone::posix(TEST_TZ).unwrap_or(jiff::tz::TimeZone::UTC),
        }
    }

    fn variant(&mut self, opts: &Map<String, Value>) -> usize {
        let filter_opts: Vec<(String, String)> = opts
            .iter()
            .filter(|(k, _)| !k.starts_with("test."))
            .map(|(k, v)| (k.clone(), json_text(v)))
            .collect();
        let vname = match opts.get("test.filter-name").and_then(Value::as_str) {
            Some(n) => format!("{}{n}", self.name),
            None if filter_opts.is_empty() => self.name.to_string(),
            None => {
                let inner: Vec<String> = filter_opts
                    .iter()
                    .map(|(k, v)| format!("'{k}': '{v}'"))
                    .collect();
                format!("{}{{{}}}", self.name, inner.join(", "))
            }
        };
        if let Some(i) = self.variants.iter().position(|v| v.name == vname) {
            return i;
        }
        let filter = ferroban_config::read_filter(&self.opts.config_dir, self.name, &filter_opts)
            .map_err(|e| e.to_string())
            .and_then(|def| {
                let fo = FilterOptions {
                    use_dns: UseDns::Raw,
                    check_all_regex: true,
                    return_raw_host: true,
                    ignore_pending: true,
                    check_find_time: false,
                    default_timezone: Some(self.tz.clone()),
                    ..FilterOptions::default()
                };
                Filter::new(&def, fo).map_err(|e| e.to_string())
            });
        self.variants.push(Variant {
            name: vname,
            filter,
            used: BTreeSet::new(),
        });
        self.variants.len() - 1
    }

    fn run(mut self, report: &mut Report) {
        let mut files = vec![self.name.to_string()];
        let mut active: Option<Active> = None;
        let mut common: Map<String, Value> = Map::new();
        let mut i = 0;
        while i < files.len() {
            let file = files[i].clone();
            i += 1;
            let path = self.opts.samples_dir.join(&file);
            let text = match std::fs::read(&path) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => {
                    report.fail(
                        self.name,
                        CaseFailure {
                            location: path.display().to_string(),
                            variant: self.name.to_string(),
                            expected: "a sample log for the filter".into(),
                            got: format!("cannot read it: {e}"),
                        },
                    );
                    continue;
                }
            };
            self.run_file(&path, &text, &mut files, &mut active, &mut common, report);
        }
        // Every failregex of every variant must have matched at least one sample.
        for v in &self.variants {
            let Ok(f) = &v.filter else { continue };
            for (idx, r) in f.failregex().iter().enumerate() {
                if !v.used.contains(&idx) && !self.used_regexes.contains(r.expanded()) {
                    report.fail(
                        self.name,
                        CaseFailure {
                            location: format!("filter {}", self.name),
                            variant: v.name.clone(),
                            expected: format!("samples for failregex #{idx}"),
                            got: format!("regex has no samples: {}", r.source()),
                        },
                    );
                }
            }
        }
    }

    fn run_file(
        &mut self,
        path: &Path,
        text: &str,
        files: &mut Vec<String>,
        active: &mut Option<Active>,
        common: &mut Map<String, Value>,
        report: &mut Report,
    ) {
        let lines: Vec<&str> = split_lines(text);
        let mut ignore_block = false;
        let mut n = 0;
        while n < lines.len() {
            let mut line = lines[n];
            n += 1;
            let mut lnnum = n;
            let mut faildata: Map<String, Value> = Map::new();
            if let Some((kind, json)) = annotation(line) {
                let parsed: Value = match serde_json::from_str(json) {
                    Ok(v) => v,
                    Err(e) => {
                        report.fail(
                            self.name,
                            CaseFailure {
                                location: format!("{}:{lnnum}", path.display()),
                                variant: self.name.to_string(),
                                expected: format!("valid JSON after {kind}:"),
                                got: e.to_string(),
                            },
                        );
                        continue;
                    }
                };
                match kind {
                    "fileOptions" => {
                        *common = parsed.as_object().cloned().unwrap_or_default();
                        continue;
                    }
                    "filterOptions" => {
                        let mut list = Active::new();
                        ignore_block = false;
                        let items = match parsed {
                            Value::Array(a) => a,
                            other => vec![other],
                        };
                        for item in items {
                            let mut opts = common.clone();
                            if let Value::Object(o) = item {
                                opts.extend(o);
                            }
                            if let Some(cond) = opts.get("test.condition").and_then(Value::as_str) {
                                ignore_block =
                                    !eval_constraint(cond, self.name, &opts).unwrap_or(false);
                            }
                            if !ignore_block {
                                let v = self.variant(&opts);
                                list.push((v, opts));
                            }
                        }
                        *active = Some(list);
                        continue;
                    }
                    "addFILE" => {
                        if let Some(f) = parsed.as_str() {
                            files.push(f.to_string());
                        }
                        continue;
                    }
                    _ => {
                        faildata = parsed.as_object().cloned().unwrap_or_default();
                        if n >= lines.len() {
                            break;
                        }
                        line = lines[n];
                        n += 1;
                        lnnum = n;
                    }
                }
            } else if ignore_block || line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if ignore_block {
                continue;
            }
            if active.as_ref().is_none_or(Vec::is_empty) {
                let v = self.variant(&Map::new());
                *active = Some(vec![(v, Map::new())]);
            }
            let line = line.trim_end_matches(['\r', '\n']);
            let list = active.clone().unwrap_or_default();
            for (vi, opts) in list {
                if let Some(c) = faildata.get("constraint").and_then(Value::as_str) {
                    match eval_constraint(c, self.name, &opts) {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(e) => {
                            report.fail(
                                self.name,
                                CaseFailure {
                                    location: format!("{}:{lnnum}", path.display()),
                                    variant: self.variants[vi].name.clone(),
                                    expected: "a supported constraint".into(),
                                    got: e,
                                },
                            );
                            continue;
                        }
                    }
                }
                let location = format!("{}:{lnnum}", path.display());
                let outcome = self.check_line(vi, &opts, line, &faildata);
                match outcome {
                    Ok(()) => report.pass(self.name),
                    Err((expected, got)) => report.fail(
                        self.name,
                        CaseFailure {
                            location,
                            variant: self.variants[vi].name.clone(),
                            expected,
                            got: format!("{got}\n  line:     {line}"),
                        },
                    ),
                }
            }
        }
    }

    fn check_line(
        &mut self,
        vi: usize,
        opts: &Map<String, Value>,
        line: &str,
        faildata: &Map<String, Value>,
    ) -> Result<(), (String, String)> {
        let variant = &mut self.variants[vi];
        let filter = match &mut variant.filter {
            Ok(f) => f,
            Err(e) => return Err(("a filter that loads".into(), e.clone())),
        };
        let journal = opts.get("logtype").and_then(Value::as_str) == Some("journal");
        let result = if journal {
            let prefix = opts
                .get("test.prefix-line")
                .and_then(Value::as_str)
                .unwrap_or("");
            let msg = format!("{prefix}{line}");
            filter.process_dated(TEST_NOW_STR, &msg, TEST_NOW, TEST_NOW)
        } else {
            filter.process_line(line, TEST_NOW)
        };
        let mut found: Vec<Failure> = Vec::new();
        for f in result.failures {
            let expanded = filter.failregex()[f.regex_index].expanded().to_string();
            if f.id.is_none() || f.is_nofail() {
                variant.used.insert(f.regex_index);
                self.used_regexes.insert(expanded);
                continue;
            }
            found.push(f);
        }
        let expect_match = faildata
            .get("match")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let expected_text = Value::Object(faildata.clone()).to_string();
        if found.is_empty() {
            if expect_match {
                return Err((expected_text, "no match".into()));
            }
            return Ok(());
        }
        let describe = |fs: &[Failure]| -> String {
            fs.iter()
                .map(|f| {
                    format!(
                        "regex #{} id={} time={}",
                        f.regex_index,
                        f.id.as_ref().map(ToString::to_string).unwrap_or_default(),
                        f.time.map_or("none".to_string(), |t| format!("{t}"))
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        if !expect_match {
            return Err((expected_text, format!("matched: {}", describe(&found))));
        }
        if found.len() != 1 {
            return Err((
                expected_text,
                format!("multiple regexes matched: {}", describe(&found)),
            ));
        }
        let f = &found[0];
        for (k, v) in faildata {
            if matches!(k.as_str(), "time" | "match" | "desc" | "constraint") {
                continue;
            }
            if let Err(got) = compare_field(f, k, v) {
                return Err((expected_text, format!("{k}: {got} ({})", describe(&found))));
            }
        }
        if let Some(t) = faildata.get("time").and_then(Value::as_str) {
            let want = local_time(t, &self.tz)
                .ok_or_else(|| (expected_text.clone(), format!("bad time {t}")))?;
            match f.time {
                Some(got) if (got - want).abs() < 1e-6 => {}
                got => {
                    return Err((
                        expected_text,
                        format!(
                            "time {} != {want} ({})",
                            got.map_or("none".into(), |g| g.to_string()),
                            describe(&found)
                        ),
                    ));
                }
            }
        }
        let expanded = filter.failregex()[f.regex_index].expanded().to_string();
        variant.used.insert(f.regex_index);
        self.used_regexes.insert(expanded);
        Ok(())
    }
}

/// Compares one expected field with the failure.
fn compare_field(f: &Failure, key: &str, want: &Value) -> Result<(), String> {
    let got = f.data.get(key);
    let got = match got {
        Some(GroupValue::None) | None => None,
        Some(v) => Some(v),
    };
    if key == "users" {
        let have: Vec<String> = f
            .data
            .users
            .iter()
            .flatten()
            .map(|u| u.to_string())
            .collect();
        let mut want_v: Vec<String> = want
            .as_array()
            .map(|a| a.iter().map(json_text).collect())
            .unwrap_or_default();
        want_v.sort();
        return if have == want_v {
            Ok(())
        } else {
            Err(format!("{have:?}"))
        };
    }
    match got {
        Some(GroupValue::Str(s)) => {
            if key == "host" {
                return host_equal(&HostId::parse(s), want);
            }
            if want.as_str() == Some(&**s) {
                Ok(())
            } else {
                Err(format!("{s:?}"))
            }
        }
        Some(GroupValue::Tuple(t)) => {
            let have: Vec<Value> = t
                .iter()
                .map(|x| x.clone().map_or(Value::Null, Value::String))
                .collect();
            if Value::Array(have.clone()) == *want {
                Ok(())
            } else {
                Err(format!("{have:?}"))
            }
        }
        Some(GroupValue::None) | None => match key {
            "host" => match &f.id {
                Some(id) => host_equal(id, want),
                None => Err("no id".into()),
            },
            "attempts" => {
                let n = f.data.attempts();
                if want.as_u64() == Some(n as u64) {
                    Ok(())
                } else {
                    Err(n.to_string())
                }
            }
            _ => {
                if want.is_null() {
                    Ok(())
                } else {
                    Err("None".into())
                }
            }
        },
    }
}

/// fail2ban compares an address with the expected text as addresses, anything else as text.
fn host_equal(id: &HostId, want: &Value) -> Result<(), String> {
    let Some(w) = want.as_str() else {
        return Err(format!("{id}"));
    };
    let ok = match id {
        HostId::Raw(r) => r == w,
        _ => HostId::parse(w) == *id,
    };
    if ok { Ok(()) } else { Err(id.to_string()) }
}

/// Expected local time `YYYY-MM-DDTHH:MM:SS[.ffffff]` in the test zone → unix seconds.
/// Like Python's `strptime`, fields may have fewer digits (`2005-03-7T02:09:33`).
fn local_time(text: &str, tz: &jiff::tz::TimeZone) -> Option<f64> {
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i16>().ok());
    let (y, mo, da) = (
        d.next()??,
        i8::try_from(d.next()??).ok()?,
        i8::try_from(d.next()??).ok()?,
    );
    let (hms, frac) = match time.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (time, None),
    };
    let mut t = hms.split(':').map(|p| p.parse::<i8>().ok());
    let (h, mi, se) = (t.next()??, t.next()??, t.next()??);
    if d.next().is_some() || t.next().is_some() {
        return None;
    }
    let nanos = match frac {
        Some(f) if !f.is_empty() && f.len() <= 6 && f.bytes().all(|b| b.is_ascii_digit()) => {
            f.parse::<i32>().ok()? * 10i32.pow(9 - f.len() as u32)
        }
        Some(_) => return None,
        None => 0,
    };
    let dt = jiff::civil::DateTime::new(y, mo, da, h, mi, se, nanos).ok()?;
    let ts = tz
        .to_ambiguous_zoned_datetime(dt)
        .compatible()
        .ok()?
        .timestamp();
    Some(ts.as_second() as f64 + f64::from(ts.subsec_nanosecond()) / 1e9)
}

fn json_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `# failJSON: {...}`, `# filterOptions: ...`, `# fileOptions: ...`, `# addFILE: "..."`.
fn annotation(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim_start_matches('#');
    if rest.len() == line.len() {
        return None;
    }
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    for kind in ["failJSON", "fileOptions", "filterOptions", "addFILE"] {
        if let Some(json) = rest.strip_prefix(kind).and_then(|r| r.strip_prefix(':'))
            && !json.is_empty()
        {
            return Some((kind, json));
        }
    }
    None
}

/// Lines without their terminators (a final line without newline counts).
fn split_lines(text: &str) -> Vec<&str> {
    let mut v: Vec<&str> = text.split('\n').collect();
    if v.last() == Some(&"") {
        v.pop();
    }
    v
}

/// Evaluates the constraint forms the samples use: `name == '…'`, `name != '…'`,
/// `opts.get('key') == '…'`, `opts.get('key') != '…'`, joined by `and` / `or`.
pub fn eval_constraint(expr: &str, name: &str, opts: &Map<String, Value>) -> Result<bool, String> {
    if let Some((a, b)) = expr.split_once(" or ") {
        return Ok(eval_constraint(a, name, opts)? || eval_constraint(b, name, opts)?);
    }
    if let Some((a, b)) = expr.split_once(" and ") {
        return Ok(eval_constraint(a, name, opts)? && eval_constraint(b, name, opts)?);
    }
    let (lhs, neg, rhs) = if let Some((l, r)) = expr.split_once("==") {
        (l, false, r)
    } else if let Some((l, r)) = expr.split_once("!=") {
        (l, true, r)
    } else {
        return Err(format!("unsupported constraint: {expr}"));
    };
    let literal = |s: &str| -> Result<Option<String>, String> {
        let s = s.trim();
        if s == "None" {
            return Ok(None);
        }
        if s.len() >= 2
            && (s.starts_with('\'') && s.ends_with('\'') || s.starts_with('"') && s.ends_with('"'))
        {
            return Ok(Some(s[1..s.len() - 1].to_string()));
        }
        if s == "name" {
            return Ok(Some(name.to_string()));
        }
        if let Some(key) = s
            .strip_prefix("opts.get(")
            .and_then(|r| r.strip_suffix(')'))
        {
            let key = key.trim().trim_matches(['\'', '"']);
            return Ok(opts.get(key).map(json_text));
        }
        Err(format!("unsupported operand in constraint: {s}"))
    };
    let eq = literal(lhs)? == literal(rhs)?;
    Ok(eq != neg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraints() {
        let mut o = Map::new();
        o.insert("mode".into(), Value::String("aggressive".into()));
        assert!(eval_constraint("name == 'sshd'", "sshd", &o).unwrap());
        assert!(eval_constraint("name=='sshd'", "sshd", &o).unwrap());
        assert!(!eval_constraint("name == 'sshd'", "dropbear", &o).unwrap());
        assert!(eval_constraint("opts.get('mode') == 'aggressive'", "x", &o).unwrap());
        assert!(!eval_constraint("opts.get('mode') != 'aggressive'", "x", &o).unwrap());
        assert!(eval_constraint("opts.get('other') != 'aggressive'", "x", &o).unwrap());
        assert!(eval_constraint("foo(1)", "x", &o).is_err());
    }

    #[test]
    fn annotations() {
        assert_eq!(
            annotation("# failJSON: {\"a\":1}"),
            Some(("failJSON", " {\"a\":1}"))
        );
        assert_eq!(
            annotation("## filterOptions: []"),
            Some(("filterOptions", " []"))
        );
        assert_eq!(annotation("#addFILE: \"x\""), Some(("addFILE", " \"x\"")));
        assert_eq!(annotation("# just a comment"), None);
        assert_eq!(annotation("failJSON: {}"), None);
    }

    #[test]
    fn expected_times_are_local_to_the_test_zone() {
        let tz = jiff::tz::TimeZone::posix(TEST_TZ).unwrap();
        assert_eq!(local_time("2005-08-14T12:00:00", &tz), Some(TEST_NOW));
        assert_eq!(
            local_time("2005-01-14T11:00:00.5", &tz),
            Some(1_105_696_800.5)
        );
        assert_eq!(
            local_time("2005-3-7T02:09:33", &tz),
            local_time("2005-03-07T02:09:33", &tz)
        );
        assert_eq!(local_time("2005-03-07 02:09:33", &tz), None);
    }
}
