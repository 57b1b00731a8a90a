//! The scan: build the filter, feed it every line, count, print.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, bail};
use ferroban_date::DateDetector;
use ferroban_matcher::UseDns;

use super::RegexArgs;
use super::input::{LineReader, decode, rstrip_newlines};
use super::load::{self, DATEPATTERN_NAME, Spec, shortstr};
use super::out;
use super::report::{self, Hit, Kind, LineStats, PrintOpts, RegexStat, Results};
use crate::clock::{Clock, SystemClock};
use crate::daemon::journal::time_text;
use crate::filter::{Failure, Filter, FilterError, FilterOptions, LineResult};
use ferroban_source::journal::{JournalMatch, JournalSelection, read_all};

/// Files at least this big get a progress bar (when stderr is a terminal).
const PROGRESS_MIN_BYTES: u64 = 32 << 20;

/// How the run reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Report,
    Json,
    Token,
}

/// Where the lines come from.
enum Source {
    File(std::path::PathBuf),
    Literal(Vec<String>),
    /// `systemd-journal[...]`: the journal selection (and a `journalmatch` given there).
    Journal(JournalSelection),
}

/// `systemd-journal[journalpath=…, journalfiles=…, journalflags=…, namespace=…, rotated=…]`
/// (fail2ban-regex's backend options), plus `journalmatch=…` (as `-m`, which wins).
fn journal_log(log: &str) -> anyhow::Result<(JournalSelection, Option<String>)> {
    let (name, opts) = ferroban_config::parse_reference(log)
        .with_context(|| format!("LOG {log:?}: wrong journal options"))?;
    if name != "systemd-journal" {
        bail!("LOG {log:?}: expected systemd-journal[option=value, ...]");
    }
    let (m, rest): (Vec<_>, Vec<_>) = opts.into_iter().partition(|(k, _)| k == "journalmatch");
    let sel = JournalSelection::from_options(&rest).with_context(|| format!("LOG {log:?}"))?;
    Ok((sel, m.into_iter().next().map(|(_, v)| v)))
}

fn parse_usedns(v: &str) -> anyhow::Result<UseDns> {
    Ok(match v.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => UseDns::Yes,
        "warn" => UseDns::Warn,
        "no" | "false" | "off" | "0" => UseDns::No,
        "raw" => UseDns::Raw,
        other => bail!("invalid --usedns value {other:?} (expected yes, warn, no or raw)"),
    })
}

/// `true` for Latin-1, `false` for UTF-8; other encodings are refused.
fn parse_encoding(enc: Option<&str>) -> anyhow::Result<bool> {
    let Some(e) = enc else { return Ok(false) };
    let norm = e.trim().to_ascii_lowercase().replace(['-', '_'], "");
    match norm.as_str() {
        "utf8" | "ascii" | "usascii" => Ok(false),
        "latin1" | "iso88591" | "l1" | "cp819" => Ok(true),
        _ => bail!("unsupported encoding {e:?} (supported: UTF-8, ASCII, Latin-1)"),
    }
}

/// A LOG argument that has no whitespace and contains a `/` is taken for a path.
fn looks_like_path(log: &str) -> bool {
    log.contains('/') && !log.chars().any(char::is_whitespace)
}

fn date_name(filter: &Filter) -> String {
    let names = filter.date_detector().template_names();
    if names.is_empty() || names.len() > 2 {
        "Default Detectors".to_string()
    } else {
        display_date_name(names[0])
    }
}

/// fail2ban's display name of a date template: `%`-codes become words (`%Y` → `Year`,
/// `%ExY` → `ExYear`, `%%` → `%`); other codes stay.
fn display_date_name(name: &str) -> String {
    fn word(c: char) -> Option<&'static str> {
        Some(match c {
            'a' => "DAY",
            'A' => "DAYNAME",
            'b' => "MON",
            'B' => "MONTH",
            'd' => "Day",
            'H' => "24hour",
            'I' => "12hour",
            'j' => "Yearday",
            'm' => "Month",
            'M' => "Minute",
            'p' => "AMPM",
            'S' => "Second",
            'U' | 'W' => "Yearweek",
            'w' => "Weekday",
            'y' => "Year2",
            'Y' => "Year",
            'z' => "Zone offset",
            'f' => "Microseconds",
            'Z' => "Zone name",
            _ => return None,
        })
    }
    let mut out = String::with_capacity(name.len() + 16);
    let mut rest = name;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let mut chars = after.chars();
        match chars.next() {
            Some('%') => {
                out.push('%');
                rest = &after[1..];
            }
            Some('E')
                if after.starts_with("Ex")
                    && after[2..].chars().next().and_then(word).is_some() =>
            {
                let c = after[2..].chars().next().unwrap_or('x');
                out.push_str("Ex");
                out.push_str(word(c).unwrap_or_default());
                rest = &after[2 + c.len_utf8()..];
            }
            Some(c) if word(c).is_some() => {
                out.push_str(word(c).unwrap_or_default());
                rest = &after[c.len_utf8()..];
            }
            _ => {
                out.push('%');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The "Date template hits" section: every template with its hits, in the detector's order.
fn date_templates(d: &DateDetector) -> Option<Vec<(String, u64)>> {
    Some(d.template_hits())
}

fn build_filter(spec: &Spec, maxlines: usize, opts: FilterOptions) -> anyhow::Result<Filter> {
    Filter::from_parts(
        spec.prefregex.as_deref(),
        &spec.failregex,
        &spec.ignoreregex,
        maxlines,
        spec.datepattern.as_deref(),
        opts,
    )
    .map_err(|e| {
        let origin = match &spec.filter_name {
            Some(n) => format!(" in filter {n}"),
            None => String::new(),
        };
        match (&e, &spec.not_found) {
            (FilterError::NoFailureId { .. }, Some((value, tried))) => {
                let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
                anyhow::anyhow!(
                    "unknown filter {value:?} (looked for {}), and as a regex it has no failure-id group (<HOST>, <ADDR>, <F-ID>...)",
                    list.join(", ")
                )
            }
            (FilterError::Regex { kind, index, source }, _) => {
                let pattern = match *kind {
                    "failregex" => spec.failregex.get(*index).cloned(),
                    "ignoreregex" => spec.ignoreregex.get(*index).cloned(),
                    _ => spec.prefregex.clone(),
                }
                .unwrap_or_default();
                anyhow::anyhow!("invalid {kind} #{}{origin}: {pattern}\n  {source}", index + 1)
            }
            _ => anyhow::anyhow!("{e}{origin}"),
        }
    })
}

/// The multi-line bookkeeping of fail2ban-regex: lines of the filter's buffer that a later
/// match consumes were counted as missed and become matched. The filter does not expose its
/// buffer, so this keeps a shadow of it (by text, as fail2ban compares them) and takes as
/// consumed the buffered lines that appear in a failure's lines.
struct Shadow {
    lines: VecDeque<String>,
    max: usize,
}

impl Shadow {
    fn update(&mut self, line: &str, res: &LineResult, stats: &mut LineStats, p: &PrintOpts) {
        let full = self.lines.len() >= self.max;
        let consumed = |text: &str| {
            res.failures.iter().any(|f| {
                f.data
                    .matches
                    .iter()
                    .chain(f.data.nofail_matches.iter())
                    .any(|m| m.iter().any(|l| *l.text == *text))
            })
        };
        for bl in self.lines.iter().skip(usize::from(full)) {
            if consumed(bl) {
                stats.missed_to_matched(bl, p);
            }
        }
        self.lines.push_back(line.to_string());
        if !res.failures.is_empty() {
            self.lines.retain(|l| !consumed(l));
        }
        while self.lines.len() > self.max {
            self.lines.pop_front();
        }
    }
}

struct Scan<'a> {
    mode: Mode,
    token: Option<&'a str>,
    verbose: u8,
    print: PrintOpts,
    failregex: Vec<RegexStat>,
    ignoreregex: Vec<RegexStat>,
    pref_matched: u64,
    /// Groups of the prefregex matches (`-v`), as Python dicts.
    pref_groups: Vec<String>,
    /// Second date detector used only to count prefregex matches on lines without results.
    pref_dates: Option<DateDetector>,
    stripped: String,
    stats: LineStats,
    shadow: Option<Shadow>,
}

impl Scan<'_> {
    /// Runs one line; `dated` is a journal entry's (time text, time): `line` is then its
    /// message, and the report shows the time text in front of it.
    fn line(
        &mut self,
        w: &mut dyn Write,
        filter: &mut Filter,
        line: &str,
        dated: Option<(&str, f64)>,
        line_no: u64,
        now: f64,
    ) -> io::Result<()> {
        let (res, full) = match dated {
            Some((tt, date)) => (
                filter.process_dated(tt, line, date, now),
                std::borrow::Cow::Owned(format!("{tt}{line}")),
            ),
            None => (
                filter.process_line(line, now),
                std::borrow::Cow::Borrowed(line),
            ),
        };
        let message = line;
        let line: &str = &full;
        if self.mode == Mode::Token {
            let ret: Vec<&Failure> = res.failures.iter().filter(|f| !f.is_nofail()).collect();
            if !ret.is_empty() {
                out::print_token(w, self.token.unwrap_or("id"), &ret)?;
            }
            return Ok(());
        }
        let mut n_ret = 0usize;
        let mut ignored = !res.ignored.is_empty();
        for f in &res.failures {
            if let Some(stat) = self.failregex.get_mut(f.regex_index) {
                stat.hits += 1;
                if self.verbose > 0 && self.mode == Mode::Report {
                    stat.list.push(Hit {
                        id: f
                            .id
                            .as_ref()
                            .map_or_else(|| "None".into(), ToString::to_string),
                        time: f.time,
                        multiple: n_ret > 1,
                    });
                }
            }
            if f.is_nofail() {
                ignored = true;
            } else {
                n_ret += 1;
            }
        }
        for &i in &res.ignored {
            if let Some(stat) = self.ignoreregex.get_mut(i) {
                stat.hits += 1;
            }
        }
        if let Some(pref) = filter.prefregex() {
            let has_result =
                res.prefregex_matched || !res.failures.is_empty() || !res.ignored.is_empty();
            let want_groups = self.verbose > 0 && self.pref_groups.len() as u64 <= self.print.limit;
            let mut hit = has_result;
            // The filter says whether its prefregex matched; only -v needs its groups again.
            if want_groups && let Some(d) = &mut self.pref_dates {
                self.stripped.clear();
                // A journal entry's message has no date to cut.
                match dated.map_or_else(|| d.match_time(line, now), |_| None) {
                    None if dated.is_some() => self.stripped.push_str(message),
                    Some(h) => {
                        self.stripped.push_str(&line[..h.start]);
                        self.stripped.push_str(&line[h.end..]);
                    }
                    None => self.stripped.push_str(line),
                }
                self.stripped.push('\n');
                if want_groups {
                    if let Some(caps) = pref.search(&self.stripped) {
                        hit = true;
                        if (self.pref_groups.len() as u64) < self.print.limit {
                            self.pref_groups.push(out::py_dict(&caps.groups()));
                        } else {
                            self.pref_groups.push("...".into());
                        }
                    }
                } else {
                    hit = pref.is_match(&self.stripped);
                }
            }
            if hit {
                self.pref_matched += 1;
            }
        }
        if let Some(shadow) = &mut self.shadow {
            shadow.update(line, &res, &mut self.stats, &self.print);
        }
        let kind = if ignored {
            Kind::Ignored
        } else if n_ret > 0 {
            Kind::Matched
        } else {
            Kind::Missed
        };
        if self.mode == Mode::Json && kind == Kind::Matched {
            let ret: Vec<&Failure> = res.failures.iter().filter(|f| !f.is_nofail()).collect();
            out::print_json(w, line_no, line, &ret)?;
        }
        self.stats.add(kind, line, &self.print);
        Ok(())
    }
}

/// The journal match: `-m`, else `journalmatch=` of LOG, else the filter's (one per line).
fn journal_match(spec: &Spec) -> anyhow::Result<Option<JournalMatch>> {
    let Some(m) = &spec.journalmatch else {
        return Ok(None);
    };
    let lines: Vec<&str> = m.split('\n').collect();
    Ok(Some(JournalMatch::parse(&lines)?))
}

fn progress_bar(size: u64) -> Option<indicatif::ProgressBar> {
    if size < PROGRESS_MIN_BYTES || !io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::with_draw_target(
        Some(size),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    Some(pb)
}

/// Runs `ferroban regex`.
pub fn run(args: &RegexArgs) -> anyhow::Result<i32> {
    if args.print_no_missed && args.print_all_missed {
        bail!("--print-no-missed and --print-all-missed are mutually exclusive");
    }
    if args.print_no_ignored && args.print_all_ignored {
        bail!("--print-no-ignored and --print-all-ignored are mutually exclusive");
    }
    let journal = if args.log.starts_with("systemd-journal") {
        Some(journal_log(&args.log)?)
    } else {
        None
    };
    let mode = if args.json {
        Mode::Json
    } else if args.out.is_some() {
        Mode::Token
    } else {
        Mode::Report
    };
    let verbose = args.verbosity.unwrap_or(args.verbose);
    let latin1 = parse_encoding(args.encoding.as_deref())?;
    let use_dns = match &args.usedns {
        Some(v) => parse_usedns(v)?,
        None => UseDns::Warn,
    };

    // Arguments, in fail2ban-regex's order (command-line maxlines/datepattern first).
    let config = Path::new(&args.config);
    let mut spec = Spec::default();
    if args.maxlines > 0 {
        spec.set_maxlines(args.maxlines);
    }
    if let Some(d) = &args.datepattern {
        spec.set_datepattern(d);
    }
    if let Some(j) = &args.journalmatch {
        spec.journalmatch = Some(j.clone());
    }
    if let Some((_, m)) = &journal {
        // The filter is read for the journal (`logtype = journal`), as fail2ban-regex does.
        spec.backend = Some("systemd".into());
        if spec.journalmatch.is_none() {
            spec.journalmatch = m.clone();
        }
    }
    load::read_fail(&mut spec, &args.regex, config)?;
    if let Some(ign) = &args.ignoreregex {
        load::read_ignore(&mut spec, ign, config)?;
    }
    let maxlines = spec.maxlines.unwrap_or(1);
    let timezone = args.timezone.clone();
    let opts = FilterOptions {
        use_dns,
        check_all_regex: !args.no_check_all && mode != Mode::Token,
        return_raw_host: args.raw,
        ignore_pending: mode == Mode::Token,
        check_find_time: false,
        log_timezone: timezone,
        ..FilterOptions::default()
    };
    let mut filter = build_filter(&spec, maxlines, opts)?;

    // The lines.
    let source = if let Some((sel, _)) = journal {
        Source::Journal(sel)
    } else if Path::new(&args.log).is_file() {
        Source::File(args.log.clone().into())
    } else if Path::new(&args.log).exists() {
        bail!("log file {}: not a regular file", args.log);
    } else if looks_like_path(&args.log) {
        bail!(
            "log file {}: no such file (LOG is a file path or a literal log line)",
            args.log
        );
    } else {
        Source::Literal(args.log.split('\n').map(str::to_string).collect())
    };

    let stdout = io::stdout();
    let mut w = BufWriter::with_capacity(1 << 16, stdout.lock());
    let date_pattern_name = date_name(&filter);
    if mode == Mode::Report {
        writeln!(w, "\nRunning tests\n=============\n")?;
        for h in &spec.header {
            writeln!(w, "{}", h.replace(DATEPATTERN_NAME, &date_pattern_name))?;
        }
        match &source {
            Source::Journal(_) => {
                writeln!(w, "Use         systemd journal")?;
                writeln!(w, "Use         encoding : UTF-8")?;
                if let Some(m) = journal_match(&spec)?.filter(|m| !m.is_all()) {
                    writeln!(w, "Use    journal match : {}", m.display())?;
                }
            }
            Source::File(p) => {
                writeln!(w, "Use         log file : {}", p.display())?;
                writeln!(
                    w,
                    "Use         encoding : {}",
                    args.encoding.as_deref().unwrap_or("UTF-8")
                )?;
            }
            Source::Literal(lines) if maxlines <= 1 && lines.len() == 1 => {
                writeln!(w, "Use      single line : {}", shortstr(&args.log, 53))?;
            }
            Source::Literal(lines) => {
                writeln!(w, "Use      multi line : {} line(s)", lines.len())?;
                for (i, l) in lines.iter().enumerate() {
                    if i >= 5 {
                        writeln!(w, "| ...")?;
                        break;
                    }
                    let n = (i + 1).to_string();
                    let n: String = n.chars().take(2).collect();
                    writeln!(w, "| {n:>2}: {}", shortstr(l, 53))?;
                }
                writeln!(w, "`-")?;
            }
        }
        writeln!(w)?;
    }

    let print = PrintOpts {
        limit: if args.maxlines > 0 {
            args.maxlines as u64
        } else {
            20
        },
        no_missed: args.print_no_missed,
        no_ignored: args.print_no_ignored,
        all_matched: args.print_all_matched,
        all_missed: args.print_all_missed,
        all_ignored: args.print_all_ignored,
    };
    // Only `-v` prints the prefregex groups, which need the line's date cut out a second time.
    let pref_dates = if filter.prefregex().is_some() && mode == Mode::Report && verbose > 0 {
        Some(DateDetector::for_setting(spec.datepattern.as_deref())?)
    } else {
        None
    };
    let mut scan = Scan {
        mode,
        token: args.out.as_deref(),
        verbose,
        print,
        failregex: spec.failregex.iter().map(|p| RegexStat::new(p)).collect(),
        ignoreregex: spec.ignoreregex.iter().map(|p| RegexStat::new(p)).collect(),
        pref_matched: 0,
        pref_groups: Vec::new(),
        pref_dates,
        stripped: String::new(),
        stats: LineStats::default(),
        shadow: (maxlines > 1).then(|| Shadow {
            lines: VecDeque::new(),
            max: maxlines,
        }),
    };
    let now = SystemClock.now();
    let t0 = Instant::now();
    let mut dropped = 0;
    match &source {
        Source::File(path) => {
            let file = File::open(path).with_context(|| format!("log file {}", path.display()))?;
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            let pb = progress_bar(size);
            let mut reader = LineReader::new(file);
            if !latin1 {
                reader = reader.check_utf8();
            }
            let mut scratch = String::new();
            let mut line_no = 0u64;
            loop {
                if let Some(pb) = &pb
                    && line_no.is_multiple_of(65536)
                {
                    pb.set_position(reader.consumed);
                }
                let next = reader.next_raw_line().with_context(|| {
                    format!(
                        "log file {}: read error after line {line_no}",
                        path.display()
                    )
                })?;
                let Some(raw) = next else {
                    break;
                };
                line_no += 1;
                let bytes = rstrip_newlines(raw.bytes);
                if bytes.is_empty() || bytes[0] == b'#' {
                    continue;
                }
                let line = decode(bytes, raw.utf8, latin1, &mut scratch);
                scan.line(&mut w, &mut filter, line, None, line_no, now)?;
            }
            if let Some(pb) = pb {
                pb.finish_and_clear();
            }
            dropped = reader.dropped;
        }
        Source::Literal(lines) => {
            for (i, l) in lines.iter().enumerate() {
                let l = l.trim_end_matches(['\r', '\n']);
                if l.is_empty() || l.starts_with('#') {
                    continue;
                }
                scan.line(&mut w, &mut filter, l, None, i as u64 + 1, now)?;
            }
        }
        Source::Journal(sel) => {
            let m = journal_match(&spec)?.unwrap_or_default();
            let mut line_no = 0u64;
            let mut failed = Ok(());
            read_all(sel, &m, &mut |f| {
                line_no += 1;
                if failed.is_ok() {
                    let tt = time_text(f.time_usec);
                    let date = f.time_usec as f64 / 1e6;
                    failed = scan.line(
                        &mut w,
                        &mut filter,
                        &f.line,
                        Some((&tt, date)),
                        line_no,
                        now,
                    );
                }
            })?;
            failed?;
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    if dropped > 0 {
        eprintln!(
            "WARNING: {dropped} line(s) longer than {} bytes were skipped, not matched (a cut \
             line could blame the wrong address)",
            super::input::MAX_LINE
        );
    }
    if mode == Mode::Report {
        let pref_text = filter.prefregex().map(|p| p.expanded().to_string());
        let results = Results {
            prefregex: pref_text
                .as_deref()
                .map(|p| (p, scan.pref_matched, &scan.pref_groups[..])),
            failregex: &scan.failregex,
            ignoreregex: &scan.ignoreregex,
            date_templates: date_templates(filter.date_detector()),
            lines: &scan.stats,
            elapsed,
            verbose,
            print,
        };
        report::print_results(&mut w, &results)?;
    }
    w.flush()?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_names_like_fail2ban() {
        assert_eq!(
            display_date_name("^%Y-%m-%d %H:%M:%S"),
            "^Year-Month-Day 24hour:Minute:Second"
        );
        assert_eq!(
            display_date_name("%d/%b[^/]*/%ExY %k %%"),
            "Day/MON[^/]*/ExYear %k %"
        );
    }
}
