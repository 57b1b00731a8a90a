//! Statistics of a run and the printed report (fail2ban-regex's layout).

use std::io::{self, Write};

/// One matched failure as the verbose report lists it under its regex.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The failure id as printed (`None` for a pending multi-line failure).
    pub id: String,
    /// Unix time of the failure.
    pub time: Option<f64>,
    /// More than one regex had matched the line before this one.
    pub multiple: bool,
}

/// Hits of one regex.
#[derive(Debug, Clone)]
pub struct RegexStat {
    /// The regex as written.
    pub pattern: String,
    /// Number of hits.
    pub hits: u64,
    /// Failures found (kept with `-v` only).
    pub list: Vec<Hit>,
}

impl RegexStat {
    pub fn new(pattern: &str) -> Self {
        RegexStat {
            pattern: pattern.to_string(),
            hits: 0,
            list: Vec::new(),
        }
    }
}

/// Which lines to keep for printing.
#[derive(Debug, Clone, Copy)]
pub struct PrintOpts {
    /// Print limit: `-L` when given, otherwise 20.
    pub limit: u64,
    pub no_missed: bool,
    pub no_ignored: bool,
    pub all_matched: bool,
    pub all_missed: bool,
    pub all_ignored: bool,
}

/// Line counters and the lines kept for the report (never more than the report can print).
#[derive(Debug, Default)]
pub struct LineStats {
    pub tested: u64,
    pub matched: i64,
    pub missed: i64,
    pub ignored: i64,
    pub matched_lines: Vec<String>,
    pub missed_lines: Vec<String>,
    pub ignored_lines: Vec<String>,
}

/// What a line turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Matched,
    Missed,
    Ignored,
}

impl LineStats {
    /// Counts a line (keeping its text when the report may print it).
    pub fn add(&mut self, kind: Kind, line: &str, p: &PrintOpts) {
        match kind {
            Kind::Ignored => {
                self.ignored += 1;
                if !p.no_ignored && (p.all_ignored || self.ignored as u64 <= p.limit + 1) {
                    self.ignored_lines.push(line.to_string());
                }
            }
            Kind::Matched => {
                self.matched += 1;
                if p.all_matched {
                    self.matched_lines.push(line.to_string());
                }
            }
            Kind::Missed => {
                self.missed += 1;
                if !p.no_missed && (p.all_missed || self.missed as u64 <= p.limit + 1) {
                    self.missed_lines.push(line.to_string());
                }
            }
        }
        self.tested += 1;
    }

    /// A line counted as missed earlier turned out to belong to a multi-line match.
    pub fn missed_to_matched(&mut self, line: &str, p: &PrintOpts) {
        if let Some(i) = self.missed_lines.iter().position(|l| l == line) {
            self.missed_lines.remove(i);
        }
        if p.all_matched {
            self.matched_lines.push(line.to_string());
        }
        self.matched += 1;
        self.missed -= 1;
    }
}

/// `|- header` / `|  item` ... `` `- `` (nothing when `items` is empty).
pub fn pprint_list(w: &mut dyn Write, items: &[String], header: Option<&str>) -> io::Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    if let Some(h) = header {
        writeln!(w, "|- {h}")?;
    }
    for i in items {
        writeln!(w, "|  {i}")?;
    }
    writeln!(w, "`-")
}

/// fail2ban-regex's `time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(t))`.
pub fn local_time(t: Option<f64>) -> String {
    let Some(t) = t else {
        return "None".to_string();
    };
    match jiff::Timestamp::from_second(t.floor() as i64) {
        Ok(ts) => ts
            .to_zoned_datetime(jiff::tz::TimeZone::system())
            .strftime("%a %b %d %H:%M:%S %Y")
            .to_string(),
        Err(_) => format!("{t}"),
    }
}

/// Everything the "Results" part needs.
pub struct Results<'a> {
    pub prefregex: Option<(&'a str, u64, &'a [String])>,
    pub failregex: &'a [RegexStat],
    pub ignoreregex: &'a [RegexStat],
    /// Date templates (name, hits) in the detector's order; `None` when unknown.
    pub date_templates: Option<Vec<(String, u64)>>,
    pub lines: &'a LineStats,
    pub elapsed: f64,
    pub verbose: u8,
    pub print: PrintOpts,
}

fn print_regexes(
    w: &mut dyn Write,
    title: &str,
    list: &[RegexStat],
    verbose: u8,
) -> io::Result<()> {
    let total: u64 = list.iter().map(|r| r.hits).sum();
    let mut out = Vec::new();
    for (i, r) in list.iter().enumerate() {
        if r.hits > 0 || verbose > 0 {
            out.push(format!("{:2}) [{}] {}", i + 1, r.hits, r.pattern));
        }
        if verbose > 0 {
            for h in &r.list {
                out.push(format!(
                    "    {}  {}{}",
                    h.id,
                    local_time(h.time),
                    if h.multiple {
                        " (multiple regex matched)"
                    } else {
                        ""
                    }
                ));
            }
        }
    }
    writeln!(w, "\n{title}: {total} total")?;
    pprint_list(w, &out, Some(" #) [# of hits] regular expression"))
}

fn print_lines(
    w: &mut dyn Write,
    name: &str,
    count: i64,
    lines: &[String],
    all: bool,
    limit: u64,
) -> io::Result<()> {
    if count == 0 {
        return Ok(());
    }
    let mut title = name.to_string();
    title[..1].make_ascii_uppercase();
    let header = format!("{title} line(s):");
    if count < limit as i64 || all {
        let items: Vec<String> = lines.iter().map(|l| l.trim_end().to_string()).collect();
        pprint_list(w, &items, Some(&header))
    } else {
        writeln!(
            w,
            "{header} too many to print.  Use --print-all-{name} to print all {count} lines"
        )
    }
}

/// Prints the "Results" part and the line lists.
pub fn print_results(w: &mut dyn Write, r: &Results<'_>) -> io::Result<()> {
    writeln!(w)?;
    writeln!(w, "Results")?;
    writeln!(w, "=======")?;
    if let Some((pattern, count, groups)) = r.prefregex {
        writeln!(w, "\nPrefregex: {count} total")?;
        let mut items = vec![pattern.to_string()];
        if r.verbose > 0 {
            items.extend(groups.iter().map(|g| format!("    {g}")));
        }
        pprint_list(w, &items, None)?;
    }
    print_regexes(w, "Failregex", r.failregex, r.verbose)?;
    print_regexes(w, "Ignoreregex", r.ignoreregex, r.verbose)?;
    if let Some(templates) = &r.date_templates {
        writeln!(w, "\nDate template hits:")?;
        let out: Vec<String> = templates
            .iter()
            .filter(|(_, hits)| r.verbose > 0 || *hits > 0)
            .map(|(name, hits)| format!("[{hits}] {name}"))
            .collect();
        pprint_list(w, &out, Some("[# of hits] date format"))?;
    }
    let l = r.lines;
    writeln!(
        w,
        "\nLines: {} lines, {} ignored, {} matched, {} missed",
        l.tested, l.ignored, l.matched, l.missed
    )?;
    writeln!(w, "[processed in {:.2} sec]", r.elapsed)?;
    writeln!(w)?;
    let p = &r.print;
    if p.all_matched {
        print_lines(w, "matched", l.matched, &l.matched_lines, true, p.limit)?;
    }
    if !p.no_ignored {
        print_lines(
            w,
            "ignored",
            l.ignored,
            &l.ignored_lines,
            p.all_ignored,
            p.limit,
        )?;
    }
    if !p.no_missed {
        print_lines(
            w,
            "missed",
            l.missed,
            &l.missed_lines,
            p.all_missed,
            p.limit,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_printable_lines() {
        let p = PrintOpts {
            limit: 2,
            no_missed: false,
            no_ignored: false,
            all_matched: false,
            all_missed: false,
            all_ignored: false,
        };
        let mut s = LineStats::default();
        for i in 0..10 {
            s.add(Kind::Missed, &format!("l{i}"), &p);
        }
        s.add(Kind::Matched, "m", &p);
        assert_eq!(s.missed, 10);
        assert_eq!(s.missed_lines.len(), 3);
        assert!(s.matched_lines.is_empty());
        assert_eq!(s.tested, 11);
    }

    #[test]
    fn list_layout() {
        let mut out = Vec::new();
        pprint_list(&mut out, &["a".into(), "b".into()], Some("H")).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "|- H\n|  a\n|  b\n`-\n");
        let mut out = Vec::new();
        print_lines(&mut out, "missed", 30, &[], false, 20).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Missed line(s): too many to print.  Use --print-all-missed to print all 30 lines\n"
        );
    }
}
