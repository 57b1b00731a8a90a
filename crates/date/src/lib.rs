//! fail2ban-compatible date detection for log lines.
//!
//! A [`DateDetector`] holds an ordered list of date templates and finds the
//! date of a line the way fail2ban 1.0 does, so that the same lines yield the
//! same date spans and unix times:
//!
//! * the default list ([`DateDetector::with_default_templates`]) contains
//!   fail2ban's default templates, each non-anchored one preceded by a
//!   line-begin twin that is preferred; the list is reordered adaptively by
//!   hits, and the template that hit last is tried first, restricted to the
//!   same position in the line when its surroundings look alike;
//! * a filter's `datepattern` ([`DateDetector::from_pattern`]) uses the
//!   strptime-like `%`-codes (`%Y %y %m %d %e %H %I %M %S %f %p %a %A %b %B
//!   %j %z %Z %s`, exact `%Ex..` variants, `%%`), the markers `{^LN-BEG}`,
//!   `{DATE}`, `{DEFAULT}`, `{NONE}`, `{UNB}` and the keywords `Epoch`,
//!   `LEPOCH`, `TAI64N`, or a plain regular expression with named groups;
//! * year-less dates take their year from `now` (a date more than a day in the
//!   future belongs to the previous year), zone-less dates are in the
//!   `logtimezone` or else in the default (local) zone.
//!
//! Matching never backtracks: the common default formats are recognised by
//! hand-written constant-time matchers, everything else by the `regex` crate.
//! The current time is always passed in, never read from the system clock.

mod civil;
mod memo;
mod native;
mod others;
mod pattern;
mod strptime;
mod template;
mod zone;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use jiff::tz::TimeZone;
use memo::Memo;
use others::Others;

use pattern::defaults::{self, Spec};
use pattern::{LINE_BEGIN, LINE_END};
use strptime::{Context, LocalZone};
use template::{Hit, Template};

/// Errors of template construction and time-zone options.
#[derive(Debug, thiserror::Error)]
pub enum DateError {
    /// The datepattern is not valid (unknown `%` code, unsupported construct...).
    #[error("invalid datepattern `{pattern}`: {reason}")]
    Pattern {
        /// The offending pattern.
        pattern: String,
        /// What is wrong.
        reason: String,
    },
    /// The regular expression built from a datepattern does not compile.
    #[error("invalid datepattern `{pattern}`: {source}")]
    Regex {
        /// The offending pattern.
        pattern: String,
        /// The regex error.
        source: Box<regex::Error>,
    },
    /// Two templates of a detector have the same name.
    #[error("there is already a date template named `{0}`")]
    DuplicateTemplate(String),
    /// The `logtimezone` value is not understood.
    #[error("unknown or unsupported time zone `{0}`")]
    TimeZone(String),
}

/// A date found in a line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DateHit {
    /// Byte offset of the start of the date text (fail2ban's `group(1)`).
    pub start: usize,
    /// Byte offset of the end of the date text; `start == end` for an empty
    /// match (`{NONE}` or an optional date), whose time is `None`.
    pub end: usize,
    /// Unix seconds (fractional for epochs), `None` when the text matched but
    /// could not be converted (invalid date, unknown zone...).
    pub time: Option<f64>,
}

/// A template in a detector, with its usage statistics.
#[derive(Debug)]
struct Slot {
    template: Arc<Template>,
    locations: template::Locations,
    /// Fields of the last native match.
    fields: strptime::Fields,
    /// Lines this template won.
    hits: u64,
    /// Successful searches of this template (wins or not).
    matched: u64,
    /// `now` of its last win.
    last_used: f64,
    /// Character offset of its last win.
    distance: usize,
    /// Index of its regex in the detector's screening set (regex templates only).
    set_index: Option<usize>,
}

impl Slot {
    fn new(template: Arc<Template>) -> Slot {
        Slot {
            locations: template::Locations::default(),
            fields: strptime::Fields::default(),
            template,
            hits: 0,
            matched: 0,
            last_used: 0.0,
            distance: 0x7fff_ffff,
            set_index: None,
        }
    }

    fn weight(&self) -> f64 {
        self.hits as f64 * self.template.weight / self.distance.max(1) as f64
    }
}

/// The cached default templates.
struct Defaults {
    /// Line-begin twins first, then the defaults themselves.
    all: Vec<Arc<Template>>,
    /// The defaults without twins, in order.
    plain: Vec<Arc<Template>>,
}

fn build_defaults() -> Result<Defaults, DateError> {
    let mut twins = Vec::new();
    let mut plain = Vec::new();
    for spec in defaults::LIST {
        let (t, twin) = match spec {
            Spec::Pattern(p) => {
                let t = Template::default_pattern(p)?;
                let twin = if p.starts_with('^') || p.starts_with("{^LN-BEG}") {
                    None
                } else {
                    Some(Template::default_pattern(&format!("{{^LN-BEG}}{p}"))?)
                };
                (t, twin)
            }
            Spec::Epoch => (
                Template::epoch(false, false),
                Some(Template::epoch(true, false)),
            ),
            Spec::Tai64n => (Template::tai64n(false), Some(Template::tai64n(true))),
        };
        if let Some(mut twin) = twin
            && twin.name != t.name
        {
            twin.weight = 100.0;
            twins.push(Arc::new(twin));
        }
        plain.push(Arc::new(t));
    }
    let mut all = twins;
    all.extend(plain.iter().cloned());
    Ok(Defaults { all, plain })
}

fn default_templates() -> &'static Defaults {
    static CELL: OnceLock<Defaults> = OnceLock::new();
    CELL.get_or_init(|| match build_defaults() {
        Ok(d) => d,
        // The defaults are constants covered by the tests; never reached.
        Err(_) => Defaults {
            all: Vec::new(),
            plain: Vec::new(),
        },
    })
}

/// A line and whether it is all ASCII (character and byte offsets are then equal).
#[derive(Clone, Copy)]
struct Text<'a> {
    line: &'a str,
    ascii: bool,
}

/// Whether `b` is all ASCII: eight bytes at a time, the last word overlapping (the standard
/// library's check walks the tail of a line byte by byte).
fn is_ascii(b: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let word = |c: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        u64::from_le_bytes(w)
    };
    if b.len() < 8 {
        return b.is_ascii();
    }
    let mut acc = word(&b[b.len() - 8..]);
    for c in b.chunks_exact(8) {
        acc |= word(c);
    }
    acc & HIGH == 0
}

/// Byte offset of character `n` (clamped to the end).
fn char_to_byte(t: Text<'_>, n: usize) -> usize {
    let line = t.line;
    let b = line.as_bytes();
    if t.ascii {
        return n.min(b.len());
    }
    if n <= b.len() && b[..n].is_ascii() {
        return n;
    }
    line.char_indices().nth(n).map_or(line.len(), |(i, _)| i)
}

/// Character offset of byte `i`.
fn byte_to_char(t: Text<'_>, i: usize) -> usize {
    let line = t.line;
    if t.ascii {
        return i;
    }
    let b = &line.as_bytes()[..i];
    if b.is_ascii() {
        i
    } else {
        line[..i].chars().count()
    }
}

/// Character `n` of the line (Python `line[n:n+1]`, `None` when empty).
#[inline]
fn char_at(t: Text<'_>, n: usize) -> Option<char> {
    if t.ascii {
        return t.line.as_bytes().get(n).map(|&b| char::from(b));
    }
    t.line[char_to_byte(t, n)..].chars().next()
}

/// Python `line[n-1:n]`.
#[inline]
fn char_before(text: Text<'_>, n: usize) -> Option<char> {
    if n == 0 { None } else { char_at(text, n - 1) }
}

/// Python `line[n-1]` (negative index wraps to the last character).
#[inline]
fn char_index_before(text: Text<'_>, n: usize) -> Option<char> {
    if n == 0 {
        text.line.chars().next_back()
    } else {
        char_at(text, n - 1)
    }
}

/// The template of one datepattern line (keywords, `{EPOCH}` patterns,
/// `%`-code patterns).
fn template_for(p: &str) -> Result<Template, DateError> {
    let key = if p.contains('%') {
        p.to_owned()
    } else {
        p.to_uppercase()
    };
    Ok(match key.as_str() {
        _ if key.contains("{EPOCH}") || key.contains("{LEPOCH}") => {
            Template::epoch_pattern(p, key.contains("LEPOCH"))?
        }
        "EPOCH" | "{^LN-BEG}EPOCH" | "^EPOCH" => Template::epoch(key != "EPOCH", false),
        "LEPOCH" | "{^LN-BEG}LEPOCH" | "^LEPOCH" => Template::epoch(key != "LEPOCH", true),
        "TAI64N" | "{^LN-BEG}TAI64N" | "^TAI64N" => Template::tai64n(key != "TAI64N"),
        "ISO8601" => Template::pattern(defaults::ISO)?,
        "{^LN-BEG}ISO8601" => Template::pattern(&format!("{{^LN-BEG}}{}", defaults::ISO))?,
        _ => Template::pattern(p)?,
    })
}

/// Which templates of the default list to add.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Select {
    All,
    LineBegin,
}

/// Finds dates in log lines like fail2ban's date detector. See the crate docs.
#[derive(Debug)]
pub struct DateDetector {
    slots: Vec<Slot>,
    /// The default templates this detector lists once it first dates a line: a detector of
    /// fail2ban's default list (no `datepattern`, `{DEFAULT}`, `{^LN-BEG}`) takes them only
    /// then, so that the process-wide defaults are built when a line first needs them, not
    /// when the jail is created (they are constants: nothing is left to check).
    deferred: Option<Select>,
    names: HashSet<String>,
    last_index: usize,
    last_pos: (usize, Option<char>, Option<char>),
    last_end: (usize, Option<char>, Option<char>),
    first_unused: usize,
    log_tz: Option<i32>,
    local: LocalZone,
    screen: Screen,
    time_cache: Option<TimeCache>,
    /// The shortcuts of the common line (an anchored last template's recalled or read date,
    /// a new second converted from the cached time); off only in tests, which compare the
    /// answers with the general path's.
    shortcuts: bool,
}

/// The last natively read date: its template, text, the `now` it was converted at, and the time.
#[derive(Debug)]
struct TimeCache {
    template: Arc<Template>,
    text: String,
    now: f64,
    time: Option<f64>,
    /// The fields the time was converted from.
    fields: strptime::Fields,
}

/// One pass over a line that tells which regex templates can match it at all.
///
/// fail2ban's detector searches every template whenever the date moved (in access logs it
/// moves with the client address length), which costs one regex search per template. A
/// `RegexSet` of the very same patterns answers "which of them match anywhere" in one pass;
/// a template whose regex matches nowhere in the line cannot match from offset 0 either, so
/// skipping its search changes nothing.
#[derive(Debug, Default)]
struct Screen {
    /// The screen pattern of every template (its regex, or a looser one), in slot order;
    /// empty while the screen is off.
    sources: Vec<String>,
    /// Their set, compiled on first use (`Some(None)`: it does not compile).
    set: Option<Option<regex::RegexSet>>,
    /// The same patterns with ASCII classes, for ASCII lines: on an ASCII haystack Unicode
    /// `\d`, `\w`, `\b` and case-insensitive letters match exactly what the ASCII classes
    /// match, and the much smaller automaton is several times faster.
    ascii: Option<Option<regex::bytes::RegexSet>>,
    /// Slots were added since the set was built (the set is then not used).
    stale: bool,
    /// The current line was screened: `none` when no pattern but the skipped one can
    /// match, else `hits[k]` tells whether pattern `k` matches.
    done: bool,
    none: bool,
    hits: Vec<bool>,
    /// The ASCII patterns the `ascii` set is built from (empty when there are none).
    ascii_sources: Vec<String>,
    /// Indexes of the slots without a set pattern (epoch, TAI64N), in order (kept up to date
    /// while the set is not stale).
    unscreened: Vec<usize>,
    /// Set index of the template the current full search skips (already searched).
    skip: Option<usize>,
    /// Per skipped template: a set of all the other ASCII patterns, asked only "does any of
    /// them match?" (see [`Others`]). That question stops at the first match and runs the plain (not the
    /// overlapping) automaton, so the common answer "none" is cheaper than listing matches.
    others: Vec<(Option<usize>, Option<Others>)>,
    /// The current line is searched template by template, without the screen: the first
    /// full search of a detector is (compiling the screen costs more than the templates
    /// up to the usual winner, and a detector whose later lines take the shortcuts of
    /// [`DateDetector::match_time`] never needs it).
    off: bool,
    /// Full searches so far (up to 2).
    searches: u8,
}

impl Default for DateDetector {
    fn default() -> Self {
        DateDetector::with_default_templates()
    }
}

/// How long (seconds) a template may stay unused before it can be displaced.
const UNUSED_TIME: f64 = 300.0;

impl DateDetector {
    fn empty() -> DateDetector {
        DateDetector {
            slots: Vec::new(),
            deferred: None,
            names: HashSet::new(),
            last_index: usize::MAX,
            last_pos: (1, None, None),
            last_end: (0x7fff_ffff, None, None),
            first_unused: 0,
            log_tz: None,
            local: LocalZone::new(TimeZone::system()),
            screen: Screen::default(),
            time_cache: None,
            shortcuts: true,
        }
    }

    /// fail2ban's default template list (adaptive: templates are reordered by
    /// hits and the last hit is tried first). The default zone is the process'
    /// local zone (`TZ` honoured); see [`DateDetector::set_default_timezone`].
    pub fn with_default_templates() -> DateDetector {
        DateDetector::deferred(Select::All)
    }

    /// A detector of the default templates (`select`), listed when it first dates a line.
    fn deferred(select: Select) -> DateDetector {
        let mut d = DateDetector::empty();
        d.deferred = Some(select);
        d
    }

    /// Lists the deferred default templates (see [`DateDetector::deferred`]), as
    /// [`DateDetector::from_pattern`] would have listed them at construction.
    fn list_deferred(&mut self) {
        if let Some(select) = self.deferred.take() {
            self.add_defaults(select, None, true);
            if self.slots.is_empty() {
                self.add_defaults(Select::All, None, true);
            }
        }
    }

    /// The templates a deferred detector will list, in order.
    fn deferred_templates(select: Select) -> impl Iterator<Item = &'static Arc<Template>> {
        default_templates()
            .all
            .iter()
            .filter(move |t| select == Select::All || t.flags & LINE_BEGIN != 0)
    }

    /// The default list a `datepattern` names alone (`{DEFAULT}`, `{^LN-BEG}`, or blank
    /// lines only), whose detector can be deferred: it holds nothing that could be refused.
    fn default_marker(datepattern: &str) -> Option<Select> {
        let mut lines = datepattern
            .split('\n')
            .map(str::trim)
            .filter(|p| !p.is_empty());
        let select = match lines.next() {
            None => Select::All,
            Some(p) => match p.to_uppercase().as_str() {
                "{DEFAULT}" => Select::All,
                "{^LN-BEG}" => Select::LineBegin,
                _ => return None,
            },
        };
        lines.next().is_none().then_some(select)
    }

    /// The `datepattern` that decides a detector: the setting trimmed, `None` when it is
    /// absent or blank (then fail2ban's default templates apply). Two settings with the same
    /// answer date every line alike.
    pub fn pattern_in_effect(datepattern: Option<&str>) -> Option<&str> {
        datepattern.map(str::trim).filter(|p| !p.is_empty())
    }

    /// The detector of a `datepattern` setting: [`DateDetector::from_pattern`], or the default
    /// templates when the setting is absent or blank ([`DateDetector::pattern_in_effect`]).
    pub fn for_setting(datepattern: Option<&str>) -> Result<DateDetector, DateError> {
        match Self::pattern_in_effect(datepattern) {
            Some(p) => Self::from_pattern(p),
            None => Ok(Self::with_default_templates()),
        }
    }

    /// A detector for a filter's `datepattern` value: one or more patterns
    /// separated by newlines, each a `%`-code pattern, a marker (`{^LN-BEG}`,
    /// `{DEFAULT}`, `{NONE}`, a regex containing `{DATE}`), a keyword (`Epoch`,
    /// `LEPOCH`, `TAI64N`, `ISO8601`, optionally prefixed by `{^LN-BEG}` or `^`),
    /// or a regex using `{EPOCH}`/`{LEPOCH}` or named groups (`(?P<Y>...)`).
    ///
    /// An empty value gives the default templates.
    ///
    /// Detectors built from the same `datepattern` share their templates (and so every
    /// compiled regex of them): the first one builds and checks the list, the others take it.
    pub fn from_pattern(datepattern: &str) -> Result<DateDetector, DateError> {
        if let Some(select) = Self::default_marker(datepattern) {
            return Ok(DateDetector::deferred(select));
        }
        type Lists = HashMap<String, Vec<Arc<Template>>>;
        static BUILT: Mutex<Option<Lists>> = Mutex::new(None);
        if let Ok(built) = BUILT.lock()
            && let Some(list) = built.as_ref().and_then(|b| b.get(datepattern))
        {
            let mut d = DateDetector::empty();
            for t in list {
                // the list was accepted once: same names, same order
                d.append(Arc::clone(t), true)?;
            }
            return Ok(d);
        }
        let d = DateDetector::build_from_pattern(datepattern)?;
        if let Ok(mut built) = BUILT.lock() {
            let b = built.get_or_insert_with(HashMap::new);
            if b.len() < 256 {
                let list = d.slots.iter().map(|s| Arc::clone(&s.template)).collect();
                b.insert(datepattern.to_owned(), list);
            }
        }
        Ok(d)
    }

    fn build_from_pattern(datepattern: &str) -> Result<DateDetector, DateError> {
        let mut d = DateDetector::empty();
        for p in datepattern
            .split('\n')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            d.append_pattern(p)?;
        }
        if d.slots.is_empty() {
            d.add_defaults(Select::All, None, true);
        }
        Ok(d)
    }

    /// Time zone of dates that carry none when no `logtimezone` is set
    /// (fail2ban: the process' local zone). Also the zone of `now` for year
    /// inference.
    pub fn set_default_timezone(&mut self, tz: TimeZone) {
        self.time_cache = None;
        self.local = LocalZone::new(tz);
    }

    /// The `logtimezone` option: `UTC`, `GMT`, `Z`, a zone abbreviation
    /// (`CET`, `EST`...), an offset (`+0200`, `-05:00`, `-05`), or both
    /// (`UTC+0200`, `UTC-5`); offsets are fixed (no DST).
    pub fn set_log_timezone(&mut self, spec: &str) -> Result<(), DateError> {
        let minutes = zone::zone_offset_minutes(spec.trim(), true)
            .ok_or_else(|| DateError::TimeZone(spec.to_owned()))?;
        self.log_tz = Some(minutes);
        self.time_cache = None;
        Ok(())
    }

    /// Regex sources of the templates, in their current order (diagnostics).
    #[doc(hidden)]
    pub fn template_sources(&self) -> Vec<Option<&str>> {
        if let Some(select) = self.deferred {
            return Self::deferred_templates(select)
                .map(|t| t.regex_source())
                .collect();
        }
        self.slots
            .iter()
            .map(|s| s.template.regex_source())
            .collect()
    }

    /// Each template's display name and the number of lines it won, in the current order
    /// (what `fail2ban-regex` reports as "Date template hits"). `%`-codes in the names are
    /// spelled out (`%Y` → `Year`, `%b` → `MON`, `%ExY` → `ExYear`...).
    pub fn template_hits(&self) -> Vec<(String, u64)> {
        if let Some(select) = self.deferred {
            return Self::deferred_templates(select)
                .map(|t| (display_name(&t.name), 0))
                .collect();
        }
        self.slots
            .iter()
            .map(|s| (display_name(&s.template.name), s.hits))
            .collect()
    }

    /// Names of the templates, in their current order (for diagnostics).
    pub fn template_names(&self) -> Vec<&str> {
        if let Some(select) = self.deferred {
            return Self::deferred_templates(select)
                .map(|t| t.name.as_str())
                .collect();
        }
        self.slots
            .iter()
            .map(|s| s.template.name.as_str())
            .collect()
    }

    fn build_screen(&mut self) {
        self.screen.stale = false;
        let sources: Vec<String> = self
            .slots
            .iter()
            .map(|slot| slot.template.screen_source().to_owned())
            .collect();
        // Only worth it with several templates.
        let active = sources.len() > 1;
        for (k, slot) in self.slots.iter_mut().enumerate() {
            slot.set_index = active.then_some(k);
        }
        // The sets are compiled when first needed (see `screen_line`).
        self.screen.set = None;
        self.screen.ascii = None;
        let ascii: Vec<String> = sources
            .iter()
            .map(|s| {
                s.strip_prefix("(?iu)")
                    .map_or_else(|| s.clone(), |r| format!("(?i){r}"))
            })
            .collect();
        // ASCII forms only when no other Unicode switch is left in the patterns.
        let unicode_left = ascii
            .iter()
            .any(|s| s.contains("(?u") || s.contains("\\p") || s.contains("\\P"));
        self.screen.ascii_sources = if unicode_left || !active {
            Vec::new()
        } else {
            ascii
        };
        self.screen.sources = if active { sources } else { Vec::new() };
        self.screen.others.clear();
        self.list_unscreened();
    }

    fn list_unscreened(&mut self) {
        self.screen.unscreened.clear();
        let slots = self.slots.iter().enumerate();
        let unset = slots.filter(|(_, s)| s.set_index.is_none()).map(|(i, _)| i);
        self.screen.unscreened.extend(unset);
    }

    fn append(&mut self, t: Arc<Template>, ignore_dup: bool) -> Result<(), DateError> {
        if !self.names.insert(t.name.clone()) {
            if ignore_dup {
                return Ok(());
            }
            return Err(DateError::DuplicateTemplate(t.name.clone()));
        }
        self.slots.push(Slot::new(t));
        self.screen.stale = true;
        Ok(())
    }

    fn add_defaults(&mut self, select: Select, date_wrap: Option<&str>, all: bool) {
        let _ = self.try_add_defaults(select, date_wrap, all);
    }

    fn try_add_defaults(
        &mut self,
        select: Select,
        date_wrap: Option<&str>,
        all: bool,
    ) -> Result<(), DateError> {
        let ignore_dup = !self.slots.is_empty();
        let set = default_templates();
        let list = if all { &set.all } else { &set.plain };
        let mut first_wrap = true;
        for t in list {
            if select == Select::LineBegin && t.flags & LINE_BEGIN == 0 {
                continue;
            }
            let t = match date_wrap {
                // a pattern default is embedded by its pattern, an epoch or TAI64N
                // one by its name, which is then read like a datepattern keyword
                Some(wrap) => Arc::new(match &t.embed {
                    Some(body) => {
                        let t = Template::wrapped(wrap, body, first_wrap)?;
                        first_wrap = false;
                        t
                    }
                    None => template_for(&template::replace_marker(wrap, &["{DATE}"], &t.name))?,
                }),
                None => Arc::clone(t),
            };
            self.append(t, ignore_dup)?;
        }
        Ok(())
    }

    fn append_pattern(&mut self, p: &str) -> Result<(), DateError> {
        let key = if p.contains('%') {
            p.to_owned()
        } else {
            p.to_uppercase()
        };
        match key.as_str() {
            "{^LN-BEG}" => return self.try_add_defaults(Select::LineBegin, None, true),
            "{DEFAULT}" => return self.try_add_defaults(Select::All, None, true),
            _ => {}
        }
        if key.contains("{DATE}") {
            return self.try_add_defaults(Select::All, Some(p), false);
        }
        let t = if key == "{NONE}" {
            let mut t = Template::pattern("{UNB}^")?;
            t.name = "{NONE}".into();
            t
        } else {
            template_for(p)?
        };
        self.append(Arc::new(t), false)
    }

    /// Whether template `i` may match the line: `false` only when the screen proves that its
    /// regex matches nowhere in it (the line is screened on the first question).
    #[inline]
    fn may_match(&mut self, i: usize, text: Text<'_>) -> bool {
        if self.screen.stale || self.screen.off {
            return true;
        }
        let Some(k) = self.slots[i].set_index else {
            return true;
        };
        if !self.screen.done {
            self.screen_line(text);
        }
        !self.screen.none && self.screen.hits.get(k).copied().unwrap_or(false)
    }

    /// Screens the current line: which templates can match anywhere in it.
    fn screen_line(&mut self, text: Text<'_>) {
        let line = text.line;
        let screen = &mut self.screen;
        screen.done = true;
        screen.none = false;
        screen.hits.clear();
        screen.hits.resize(screen.sources.len(), false);
        if text.ascii && !screen.ascii_sources.is_empty() {
            let skip = screen.skip;
            let pos = match screen.others.iter().position(|(k, _)| *k == skip) {
                Some(p) => p,
                None => {
                    let rest: Vec<&String> = screen
                        .ascii_sources
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| Some(*j) != skip)
                        .map(|(_, s)| s)
                        .collect();
                    let others = Others::build(&rest);
                    screen.others.push((skip, others));
                    screen.others.len() - 1
                }
            };
            if screen.others[pos]
                .1
                .as_mut()
                .is_some_and(|o| !o.is_match(line.as_bytes()))
            {
                screen.none = true;
                return;
            }
            let sources = &screen.ascii_sources;
            let ascii = screen.ascii.get_or_insert_with(|| {
                static MEMO: Memo<Option<regex::bytes::RegexSet>> = Memo::new();
                MEMO.get(sources, || {
                    regex::bytes::RegexSetBuilder::new(sources)
                        .unicode(false)
                        .build()
                        .ok()
                })
            });
            if let Some(ascii) = ascii {
                for k in ascii.matches(line.as_bytes()).iter() {
                    screen.hits[k] = true;
                }
                return;
            }
        }
        let sources = &screen.sources;
        let set = screen.set.get_or_insert_with(|| {
            static MEMO: Memo<Option<regex::RegexSet>> = Memo::new();
            MEMO.get(sources, || regex::RegexSet::new(sources).ok())
        });
        match set {
            Some(set) => {
                for k in set.matches(line).iter() {
                    screen.hits[k] = true;
                }
            }
            // A set that fails to build (size limits): every template is searched.
            None => screen.hits.fill(true),
        }
    }

    /// Runs template `i` on the line; counts successful searches.
    fn search(
        &mut self,
        i: usize,
        text: Text<'_>,
        window: Option<(usize, usize)>,
    ) -> Option<(Hit, usize, usize)> {
        let line = text.line;
        let slot = &mut self.slots[i];
        let (pos, end) = match window {
            Some((d, e)) => (char_to_byte(text, d), char_to_byte(text, e)),
            None => (0, line.len()),
        };
        if end < pos {
            return None;
        }
        let hit = slot.template.find(
            line,
            pos,
            end,
            window.is_some(),
            text.ascii,
            &mut slot.locations,
            &mut slot.fields,
        )?;
        slot.matched += 1;
        Some((
            hit,
            byte_to_char(text, hit.start),
            byte_to_char(text, hit.end),
        ))
    }

    /// Finds the date in `line`. `now` (unix seconds, from the injectable
    /// clock) drives year inference for year-less dates and the template
    /// usage bookkeeping.
    pub fn match_time(&mut self, line: &str, now: f64) -> Option<DateHit> {
        self.list_deferred();
        if self.shortcuts
            && let Some(hit) = self.recalled_win(line, now)
        {
            return Some(hit);
        }
        if self.slots.is_empty() {
            self.add_defaults(Select::All, None, true);
        }
        self.screen.done = false;
        let text = Text {
            line,
            ascii: is_ascii(line.as_bytes()),
        };
        let n = self.slots.len();
        let anchored = |s: &Slot| s.template.flags & (LINE_BEGIN | LINE_END) != 0;
        let mut found: Option<(Hit, usize, usize, usize)> = None;
        let mut winner = None;
        let mut skip = usize::MAX;
        let last = self.last_index;
        if last < n {
            let m = if anchored(&self.slots[last]) {
                skip = last;
                self.search(last, text, None)
            } else {
                let (d, before, at) = self.last_pos;
                let (e, end_before, end_at) = self.last_end;
                let not_alnum = |c: Option<char>| !c.is_some_and(char::is_alphanumeric);
                let left =
                    char_before(text, d) == before || (char_at(text, d) == at && not_alnum(at));
                let right = char_at(text, e) == end_at
                    || (char_before(text, e) == end_before && not_alnum(end_before));
                if left && right {
                    self.search(last, text, Some((d, e)))
                } else {
                    skip = last;
                    self.search(last, text, None)
                }
            };
            if let Some((hit, d, e)) = m {
                if n == 1
                    || anchored(&self.slots[last])
                    || (d == self.last_pos.0 && e == self.last_end.0)
                {
                    winner = Some((hit, d, e, last));
                } else {
                    found = Some((hit, d, e, last));
                }
            }
        }
        if winner.is_none() {
            // Setting up the screen compiles nothing (that happens on first use).
            if self.screen.stale {
                self.build_screen();
            }
            self.screen.skip = if skip < n {
                self.slots[skip].set_index
            } else {
                None
            };
            self.screen.off = self.screen.searches == 0;
            self.screen.searches = self.screen.searches.saturating_add(1).min(2);
            // When the screen proves that no regex template but the skipped one matches,
            // only the others (epoch, TAI64N) are visited, in the same order.
            let only_unscreened =
                !self.screen.off && !self.screen.stale && !self.screen.sources.is_empty() && {
                    self.screen_line(text);
                    self.screen.none
                };
            let count = if only_unscreened {
                self.screen.unscreened.len()
            } else {
                n
            };
            for t in 0..count {
                let i = if only_unscreened {
                    self.screen.unscreened[t]
                } else {
                    t
                };
                if i == skip || !self.may_match(i, text) {
                    continue;
                }
                let Some((hit, d, e)) = self.search(i, text, None) else {
                    continue;
                };
                let slot = &self.slots[i];
                if i + 1 >= n
                    || anchored(slot)
                    || (d == 0 && slot.hits > 0 && self.slots[i + 1].matched == 0)
                {
                    winner = Some((hit, d, e, i));
                    break;
                }
                if d > slot.distance || d > self.last_pos.0 {
                    if found.as_ref().is_none_or(|f| d < f.1) {
                        found = Some((hit, d, e, i));
                    }
                    continue;
                }
                winner = Some((hit, d, e, i));
                break;
            }
            if winner.is_none() {
                winner = found;
            }
        }
        self.win(winner?, text, now, false)
    }

    /// The common line answered without the general search: the template that won the last
    /// line is anchored and its native matcher finds the date ([`Template::find_anchored`]),
    /// so its search would return that hit and it wins as in [`DateDetector::match_time`].
    /// `None`: the general path decides (with the same answers from the template).
    #[inline]
    fn recalled_win(&mut self, line: &str, now: f64) -> Option<DateHit> {
        let i = self.last_index;
        let slot = self.slots.get_mut(i)?;
        if slot.template.flags & (LINE_BEGIN | LINE_END) == 0 {
            return None;
        }
        let b = line.as_bytes();
        let hit = slot
            .template
            .find_anchored(line, &mut slot.locations, &mut slot.fields)?;
        // The win records the characters around the match's ends (start 0, `hit.end`): on an
        // ASCII prefix up to the end's character, character and byte offsets agree and the
        // rest of the line is not looked at.
        if !is_ascii(&b[..(hit.end + 1).min(b.len())]) {
            return None;
        }
        slot.matched += 1;
        let text = Text { line, ascii: true };
        self.win((hit, 0, hit.end, i), text, now, true)
    }

    /// Records the win of template `i` with `hit` (at characters `d..e`) and converts its
    /// date. `recalled`: the hit came from [`Template::find_anchored`], whose fields are
    /// read from the template's remembered match when a conversion needs them.
    #[inline(always)]
    fn win(
        &mut self,
        (hit, d, e, mut i): (Hit, usize, usize, usize),
        text: Text<'_>,
        now: f64,
        recalled: bool,
    ) -> Option<DateHit> {
        let line = text.line;
        {
            let slot = &mut self.slots[i];
            slot.hits += 1;
            slot.last_used = now;
            slot.distance = d;
        }
        if self.first_unused == i {
            self.first_unused += 1;
        }
        self.last_pos = (d, char_before(text, d), char_at(text, d));
        self.last_end = (e, char_index_before(text, e), char_at(text, e));
        if i != 0 && i != self.last_index {
            i = self.reorder(i);
        }
        self.last_index = i;
        let Some((start, end)) = hit.date else {
            return Some(DateHit {
                start: hit.start,
                end: hit.start,
                time: None,
            });
        };
        if start == end {
            return Some(DateHit {
                start,
                end,
                time: None,
            });
        }
        // Consecutive lines usually carry the same timestamp: a native hit reads its fields
        // from the date text alone, so the same text, template and `now` give the same time.
        let cacheable = hit.native;
        if cacheable
            && let Some(c) = &self.time_cache
            && c.now.to_bits() == now.to_bits()
            && Arc::ptr_eq(&c.template, &self.slots[i].template)
            && line
                .as_bytes()
                .get(start..end)
                .is_some_and(|t| native::same_bytes(t, c.text.as_bytes()))
        {
            return Some(DateHit {
                start,
                end,
                time: c.time,
            });
        }
        if !cacheable {
            // Another conversion may change the zone's fold state the cached one relied on.
            self.time_cache = None;
        }
        if recalled {
            let slot = &mut self.slots[i];
            slot.fields = *slot.locations.recalled_fields();
        }
        // A new second of the cached date (the common change from line to line) converts to
        // the cached time shifted by the seconds' difference when the conversion needs neither
        // `now` nor the local zone (see `strptime::second_shift`).
        let slot = &self.slots[i];
        let shifted = if cacheable
            && self.shortcuts
            && let Some(c) = &self.time_cache
            && c.now.to_bits() == now.to_bits()
            && Arc::ptr_eq(&c.template, &slot.template)
            && let Some(t) = c.time
            && let Some(k) = strptime::second_shift(&c.fields, &slot.fields, self.log_tz)
        {
            Some(t + k as f64)
        } else {
            None
        };
        let time = match shifted {
            Some(t) => Some(t),
            None => {
                let whole = now.floor();
                let offset = self.local.offset_at(whole as i64);
                let mut ctx = Context {
                    now_civil: whole + offset as f64 + (now - whole),
                    log_tz: self.log_tz,
                    local: &mut self.local,
                };
                let slot = &self.slots[i];
                slot.template
                    .time(line, &hit, &slot.locations, &slot.fields, &mut ctx)
            }
        };
        if cacheable {
            let slot = &self.slots[i];
            let c = self.time_cache.get_or_insert_with(|| TimeCache {
                template: Arc::clone(&slot.template),
                text: String::new(),
                now,
                time,
                fields: slot.fields,
            });
            if !Arc::ptr_eq(&c.template, &slot.template) {
                c.template = Arc::clone(&slot.template);
            }
            c.text.clear();
            c.text.push_str(&line[start..end]);
            c.now = now;
            c.time = time;
            c.fields = slot.fields;
        }
        Some(DateHit { start, end, time })
    }

    /// Moves a winning template towards the front when it weighs more than
    /// the one it would displace (or that one is long unused).
    fn reorder(&mut self, num: usize) -> usize {
        let untime = self.slots[num].last_used - UNUSED_TIME;
        let weight = self.slots[num].weight();
        let mut pos = if self.first_unused < num {
            self.first_unused
        } else {
            num / 2
        };
        let movable =
            |s: &[Slot], pos: usize| weight > s[pos].weight() || untime > s[pos].last_used;
        if !movable(&self.slots, pos) {
            if pos == num - 1 {
                return num;
            }
            pos = num - 1;
            if !movable(&self.slots, pos) {
                return num;
            }
        }
        let slot = self.slots.remove(num);
        self.slots.insert(pos, slot);
        self.list_unscreened();
        while self.first_unused < self.slots.len() && self.slots[self.first_unused].hits > 0 {
            self.first_unused += 1;
        }
        pos
    }
}

/// A template name with its `%`-codes replaced by words, as date-format reports show them.
fn display_name(pattern: &str) -> String {
    fn word(code: &str) -> Option<&'static str> {
        Some(match code {
            "a" => "DAY",
            "A" => "DAYNAME",
            "b" => "MON",
            "B" => "MONTH",
            "d" => "Day",
            "H" => "24hour",
            "I" => "12hour",
            "j" => "Yearday",
            "m" => "Month",
            "M" => "Minute",
            "p" => "AMPM",
            "S" => "Second",
            "U" | "W" => "Yearweek",
            "w" => "Weekday",
            "y" => "Year2",
            "Y" => "Year",
            "z" => "Zone offset",
            "Z" => "Zone name",
            "f" => "Microseconds",
            "%" => "%",
            _ => return None,
        })
    }
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut rest = pattern;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (code, len) = if let Some(ex) = after.strip_prefix("Ex") {
            match ex.chars().next() {
                Some(c) => (format!("Ex{c}"), 2 + c.len_utf8()),
                None => (String::new(), 0),
            }
        } else {
            match after.chars().next() {
                Some(c) => (c.to_string(), c.len_utf8()),
                None => (String::new(), 0),
            }
        };
        let spelled = match code.strip_prefix("Ex") {
            Some(c) => word(c).map(|w| format!("Ex{w}")),
            None => word(&code).map(str::to_string),
        };
        match spelled {
            Some(w) if len > 0 => out.push_str(&w),
            _ => {
                out.push('%');
                out.push_str(&code);
            }
        }
        rest = &after[len.min(after.len())..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod ascii_tests {
    #[test]
    fn ascii_check() {
        for n in 0..40 {
            let mut v = vec![b'a'; n];
            assert!(super::is_ascii(&v));
            for k in 0..n {
                v[k] = 0x80;
                assert!(!super::is_ascii(&v), "{n} {k}");
                v[k] = b'a';
            }
        }
    }
}

#[cfg(test)]
mod display_tests {
    use super::display_name;

    #[test]
    fn codes_are_spelled_out() {
        assert_eq!(
            display_name("{^LN-BEG}(?:%a )?%b %d %k:%M:%S(?:\\.%f)?(?: %ExY)?"),
            "{^LN-BEG}(?:DAY )?MON Day %k:Minute:Second(?:\\.Microseconds)?(?: ExYear)?"
        );
        assert_eq!(display_name("Epoch"), "Epoch");
        assert_eq!(display_name("100%% %"), "100% %");
    }
}

#[cfg(test)]
mod deferred_tests {
    use super::*;

    /// The detector as it was built before the default list was deferred: listed at once.
    fn listed(datepattern: Option<&str>) -> DateDetector {
        let mut d = DateDetector::for_setting(datepattern).unwrap();
        d.list_deferred();
        d
    }

    #[test]
    fn a_default_detector_lists_its_templates_at_its_first_line() {
        for (pattern, select) in [
            (None, Some(Select::All)),
            (Some("{DEFAULT}"), Some(Select::All)),
            (Some(" {^LN-BEG} \n"), Some(Select::LineBegin)),
            (Some("{^ln-beg}"), Some(Select::LineBegin)),
            (Some("\n \n"), Some(Select::All)),
            (Some("{^LN-BEG}\n%Y-%m-%d"), None),
            (Some("%Y-%m-%d %H:%M:%S"), None),
        ] {
            let d = DateDetector::for_setting(pattern).unwrap();
            assert_eq!(d.deferred, select, "{pattern:?}");
            // What a deferred detector tells before its first line is what it lists then.
            let full = listed(pattern);
            assert!(full.deferred.is_none() && !full.slots.is_empty());
            assert_eq!(d.template_names(), full.template_names(), "{pattern:?}");
            assert_eq!(d.template_sources(), full.template_sources(), "{pattern:?}");
            assert_eq!(d.template_hits(), full.template_hits(), "{pattern:?}");
        }
        // {^LN-BEG} lists only the templates anchored at the line's start.
        let ln = listed(Some("{^LN-BEG}"));
        let all = listed(None);
        assert!(ln.slots.len() < all.slots.len());
        assert!(ln.slots.iter().all(|s| s.template.flags & LINE_BEGIN != 0));
    }

    #[test]
    fn a_deferred_detector_dates_lines_as_a_listed_one() {
        let lines = [
            "2026-12-07 06:20:41,524 fail2ban.server [1]: INFO x",
            "Dec  7 06:20:41 host sshd[1]: Failed password for root from 192.0.2.1",
            "192.0.2.1 - - [07/Dec/2026:06:20:41 +0000] \"GET / HTTP/1.1\" 404 1",
            "2026/12/07 06:20:41 [error] 1#1: *1 limiting requests, client: 192.0.2.1",
            "no date here",
        ];
        for pattern in [None, Some("{^LN-BEG}"), Some("{DEFAULT}")] {
            let mut lazy = DateDetector::for_setting(pattern).unwrap();
            let mut eager = listed(pattern);
            for l in lines {
                let a = lazy
                    .match_time(l, 1_796_624_441.0)
                    .map(|h| format!("{h:?}"));
                let b = eager
                    .match_time(l, 1_796_624_441.0)
                    .map(|h| format!("{h:?}"));
                assert_eq!(a, b, "{pattern:?} {l}");
            }
            assert!(lazy.deferred.is_none());
            assert_eq!(lazy.template_hits(), eager.template_hits());
        }
    }
}

#[cfg(test)]
mod shortcut_tests {
    //! The shortcuts of [`DateDetector::match_time`] (an anchored last template's date found
    //! without the general search, a new second shifted from the cached time) answer every
    //! line exactly as the general path does, and leave the same state behind.
    use super::*;
    use proptest::prelude::*;

    const BOTSEARCH: &str = "{^LN-BEG}%ExY(?P<_sep>[-/.])%m(?P=_sep)%d[T ]%H:%M:%S(?:[.,]%f)?(?:\\s*%z)?\n^[^\\[]*\\[({DATE})";
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];

    /// One generated line: its shape and date fields.
    #[derive(Debug, Clone)]
    struct Spec {
        shape: u8,
        addr: usize,
        year: i64,
        month: usize,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
        zone: i32,
        upper: bool,
        tail: u8,
    }

    fn line(s: &Spec) -> String {
        let mon = if s.upper {
            MONTHS[s.month].to_uppercase()
        } else {
            MONTHS[s.month].to_owned()
        };
        let addr = ["1.2.3.4", "198.51.100.200", "2001:db8::1", "é.1", "x"][s.addr % 5];
        let tail = ["", " \"GET / HTTP/1.1\" 404 1", " é", "]", "1"][usize::from(s.tail % 5)];
        let (sign, z) = if s.zone < 0 {
            ('-', -s.zone)
        } else {
            ('+', s.zone)
        };
        let (h, mi, sec) = (s.hour, s.minute, s.second);
        match s.shape % 5 {
            // nginx access log: the date moves with the address
            0 | 1 => format!(
                "{addr} - - [{:02}/{mon}/{}:{h:02}:{mi:02}:{sec:02} {sign}{:02}{:02}]{tail}",
                s.day,
                s.year,
                z / 60,
                z % 60
            ),
            // syslog: a single-digit day is padded with a space
            2 | 3 => format!(
                "{mon} {:>2} {h:02}:{mi:02}:{sec:02} host sshd[1]:{tail}",
                s.day
            ),
            // ISO at the line's start
            _ => format!(
                "{}-{:02}-{:02} {h:02}:{mi:02}:{sec:02}{tail}",
                s.year,
                s.month + 1,
                s.day
            ),
        }
    }

    fn spec() -> impl Strategy<Value = Spec> {
        (
            (0u8..5, 0usize..5, 2019i64..2026, 0usize..12, 1u32..32),
            (
                0u32..24,
                0u32..60,
                0u32..62,
                -720i32..841,
                any::<bool>(),
                0u8..5,
            ),
        )
            .prop_map(
                |((shape, addr, year, month, day), (hour, minute, second, zone, upper, tail))| {
                    Spec {
                        shape,
                        addr,
                        year,
                        month,
                        day,
                        hour,
                        minute,
                        second,
                        zone: zone / 15 * 15,
                        upper,
                        tail,
                    }
                },
            )
    }

    /// A run of lines: each step repeats the previous line's date, moves its second (or its
    /// minute, across the hour), or starts a new one; the shape stays for a while.
    fn lines() -> impl Strategy<Value = Vec<String>> {
        (spec(), proptest::collection::vec((0u8..8, spec()), 1..60)).prop_map(|(first, steps)| {
            let mut cur = first;
            let mut out = vec![line(&cur)];
            for (how, next) in steps {
                match how {
                    0..=2 => {}
                    3 | 4 => cur.second = (cur.second + 1) % 60,
                    5 => {
                        cur.second = next.second % 60;
                        cur.addr = next.addr;
                    }
                    6 => {
                        cur.minute = (cur.minute + 1) % 60;
                        cur.second = next.second;
                    }
                    _ => cur = next.clone(),
                }
                cur.tail = next.tail;
                out.push(line(&cur));
            }
            out
        })
    }

    /// A detector of `pattern` with the shortcuts on or off.
    fn detector(pattern: Option<&str>, zone: u8, shortcuts: bool) -> DateDetector {
        let mut d = DateDetector::for_setting(pattern).unwrap();
        d.shortcuts = shortcuts;
        match zone % 3 {
            0 => d.set_default_timezone(TimeZone::UTC),
            1 => d.set_default_timezone(TimeZone::posix("CET-01CEST-02,M3.5.0,M10.5.0").unwrap()),
            _ => d.set_log_timezone("-0330").unwrap(),
        }
        d
    }

    /// Both detectors date every line alike (span and time, bit for bit) and report the same
    /// template hits and order.
    fn same_answers(pattern: Option<&str>, zone: u8, lines: &[String], nows: &[f64]) {
        let mut fast = detector(pattern, zone, true);
        let mut slow = detector(pattern, zone, false);
        for (k, l) in lines.iter().enumerate() {
            let now = nows[k % nows.len()];
            let a = fast.match_time(l, now);
            let b = slow.match_time(l, now);
            let bits = |h: Option<DateHit>| h.map(|h| (h.start, h.end, h.time.map(f64::to_bits)));
            assert_eq!(
                bits(a),
                bits(b),
                "{pattern:?} zone {zone} line {k}: {l:?} at {now}"
            );
        }
        assert_eq!(fast.template_hits(), slow.template_hits(), "{pattern:?}");
        assert_eq!(fast.last_index, slow.last_index);
        assert_eq!(fast.last_pos, slow.last_pos);
        assert_eq!(fast.last_end, slow.last_end);
    }

    /// `now` around New Year (a year-less December date is last year's in January, a date more
    /// than a day ahead is last year's), in a leap year and not, and a fixed summer time.
    const NOWS: [f64; 5] = [
        1_735_689_630.0, // 2025-01-01 00:00:30 UTC
        1_704_067_199.5, // 2023-12-31 23:59:59.5 UTC
        1_709_208_000.0, // 2024-02-29 12:00 UTC
        1_124_013_600.0, // 2005-08-14 12:00 CEST
        1_735_776_000.0, // 2025-01-02 00:00 UTC
    ];

    /// The first full search goes template by template without compiling the screen; the
    /// next one compiles it.
    #[test]
    fn the_first_full_search_compiles_no_screen() {
        for pattern in [None, Some(BOTSEARCH)] {
            let mut d = detector(pattern, 0, true);
            let l = "198.51.100.200 - - [06/Dec/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 404 1";
            assert!(d.match_time(l, NOWS[0]).is_some(), "{pattern:?}");
            let s = &d.screen;
            assert!(s.set.is_none() && s.ascii.is_none() && s.others.is_empty());
            // a line the shortcuts cannot answer
            d.match_time("x 2026-12-06 10:00:00 y", NOWS[0]);
            let s = &d.screen;
            assert!(s.set.is_some() || s.ascii.is_some() || !s.others.is_empty());
        }
    }

    /// A detector whose first full search is not screened answers every line as one screened
    /// from the first line on, and leaves the same hits and order.
    fn same_as_screened(pattern: Option<&str>, zone: u8, shortcuts: bool, lines: &[String]) {
        let mut first = detector(pattern, zone, shortcuts);
        let mut screened = detector(pattern, zone, shortcuts);
        screened.screen.searches = 1;
        for (k, l) in lines.iter().enumerate() {
            let now = NOWS[k % NOWS.len()];
            let bits = |h: Option<DateHit>| h.map(|h| (h.start, h.end, h.time.map(f64::to_bits)));
            assert_eq!(
                bits(first.match_time(l, now)),
                bits(screened.match_time(l, now)),
                "{pattern:?} line {k}: {l:?}"
            );
        }
        assert_eq!(first.template_hits(), screened.template_hits());
        assert_eq!(first.last_index, screened.last_index);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn an_unscreened_first_search_answers_as_a_screened_one(
            lines in lines(),
            zone in 0u8..3,
            shortcuts in any::<bool>(),
        ) {
            same_as_screened(None, zone, shortcuts, &lines);
            same_as_screened(Some(BOTSEARCH), zone, shortcuts, &lines);
        }

        #[test]
        fn shortcuts_answer_as_the_general_path(
            lines in lines(),
            zone in 0u8..3,
            pattern in 0usize..5,
            now in 0usize..5,
        ) {
            let pattern = [None, Some("{^LN-BEG}"), Some(BOTSEARCH), Some("^[^\\[]*\\[({DATE})"), Some("{^LN-BEG}%b %d %H:%M:%S")][pattern];
            // one `now` for the run, or a `now` that changes from line to line
            let nows = [NOWS[now]];
            same_answers(pattern, zone, &lines, &nows);
            same_answers(pattern, zone, &lines, &NOWS);
        }
    }

    /// The edge cases named: leap days, the last second of a year (syslog, no year, at New
    /// Year), single-digit days, offsets, 60th seconds, a non-ASCII byte before the date.
    #[test]
    fn edge_cases() {
        let lines: Vec<String> = [
            "Dec 31 23:59:58 host sshd[1]: a",
            "Dec 31 23:59:59 host sshd[1]: a",
            "Jan  1 00:00:00 host sshd[1]: a",
            "Jan  1 00:00:01 host sshd[1]: a",
            "Jan  3 00:00:01 host sshd[1]: a",
            "Feb 29 12:00:00 host sshd[1]: a",
            "Feb 29 12:00:01 host sshd[1]: a",
            "1.2.3.4 - - [29/Feb/2024:23:59:59 +0000] \"GET\"",
            "1.2.3.4 - - [29/Feb/2023:23:59:59 +0000] \"GET\"",
            "1.2.3.4 - - [29/Feb/2023:23:59:58 +0000] \"GET\"",
            "1.2.3.40 - - [31/Dec/2024:23:59:59 -1200] \"GET\"",
            "1.2.3.4 - - [31/Dec/2024:23:59:60 -1200] \"GET\"",
            "1.2.3.4 - - [31/Dec/2024:23:59:58 +1400] \"GET\"",
            "1.2.3.4 - - [31/Dec/2024:23:59:59 +1400] \"GET\"",
            "é - - [31/Dec/2024:23:59:59 +1400] \"GET\"",
            "é - - [31/Dec/2024:23:59:58 +1400] \"GET\"",
            "1.2.3.4 - - [1/Jan/2025:00:00:00 +0000] \"GET\"",
            "1.2.3.4 - - [01/jan/2025:00:00:01 +0000] \"GET\"",
            "1.2.3.4 - - [01/JAN/2025:00:00:01 +0000]é",
        ]
        .map(str::to_owned)
        .to_vec();
        for pattern in [None, Some("{^LN-BEG}"), Some(BOTSEARCH)] {
            for zone in 0..3 {
                for now in NOWS {
                    same_answers(pattern, zone, &lines, &[now]);
                }
                same_answers(pattern, zone, &lines, &NOWS);
            }
        }
    }

    #[test]
    fn a_new_second_is_shifted_only_when_the_conversion_is_fixed() {
        use strptime::{Fields, LineZone, second_shift};
        let old = Fields {
            year: Some(2024),
            month: Some(2),
            day: Some(29),
            hour: 23,
            minute: 59,
            second: 58,
            zone: LineZone::Offset(60),
            ..Fields::default()
        };
        let new = Fields { second: 59, ..old };
        assert_eq!(second_shift(&old, &new, None), Some(1));
        assert_eq!(second_shift(&new, &old, None), Some(-1));
        // a 60th second is invalid: no shift
        assert_eq!(
            second_shift(&old, &Fields { second: 60, ..old }, None),
            None
        );
        // another minute, no year (inferred from `now`), the local zone: no shift
        assert_eq!(
            second_shift(&old, &Fields { minute: 58, ..new }, None),
            None
        );
        let yearless = Fields { year: None, ..old };
        assert_eq!(
            second_shift(
                &yearless,
                &Fields {
                    second: 59,
                    ..yearless
                },
                None
            ),
            None
        );
        let local = Fields {
            zone: LineZone::Absent,
            ..old
        };
        // the local zone: no shift; a `logtimezone` offset: shifted
        let next = Fields {
            second: 59,
            ..local
        };
        let shifts = [None, Some(-210)].map(|tz| second_shift(&local, &next, tz));
        assert_eq!(shifts, [None, Some(1)]);
    }
}
