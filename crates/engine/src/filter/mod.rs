//! The filter: date detection, `prefregex`, `failregex`, `ignoreregex`, multi-line buffers and
//! multi-line failure ids (`<F-MLFID>`), with fail2ban's semantics.
//!
//! One [`Filter`] belongs to one jail (or one `ferroban regex` run) and is fed lines in order.
//! For each line it returns the failures found, exactly as fail2ban's `processLine` does,
//! including its quirks (the date text is cut out of the line before matching; a failure of a
//! multi-line connection is merged with what was seen earlier for the same `mlfid`; `nofail`
//! lines hold matches back until a failure of the same connection is seen).
//!
//! Speed: for a single-line filter a line first goes through a cheap check (the prefregex,
//! or the literal prefilter plus each failregex's linear-time gate); only candidate lines pay
//! for captures and the bookkeeping below.

mod mlfid;

use std::sync::Arc;

use ferroban_config::FilterDef;
use ferroban_date::DateDetector;
use ferroban_matcher::{
    Captures, GateSet, GateSetScratch, GroupValue, Name, Prefilter, Regex, RegexOptions, Text,
    UseDns,
};

use crate::ip::{Family, HostId};
use mlfid::MlfidCache;

/// Errors building a filter.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// A regex did not compile.
    #[error("{kind} #{index}: {source}")]
    Regex {
        /// `failregex`, `ignoreregex` or `prefregex`.
        kind: &'static str,
        /// Index of the regex in its list.
        index: usize,
        /// The engine's error.
        #[source]
        source: ferroban_matcher::RegexError,
    },
    /// A failregex has no group that identifies the failure.
    #[error(
        "no failure-id group (<HOST>, <ADDR>, <F-ID>, <F-MLFID>...) in failregex #{index}: {pattern}"
    )]
    NoFailureId {
        /// Index of the regex.
        index: usize,
        /// The regex as written.
        pattern: String,
    },
    /// The date pattern is invalid.
    #[error("datepattern: {0}")]
    Date(#[from] ferroban_date::DateError),
    /// `maxlines` is not a positive integer.
    #[error("maxlines must be an integer greater than zero, got {0}")]
    MaxLines(usize),
}

/// A log line as the filter keeps it: the whole text and the span of its date. A copy
/// shares the text (a line can be held by the buffer, a cached multi-line failure and a
/// result); keeping one costs one allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TupleLine {
    /// The line as read (without the newline).
    pub text: Arc<str>,
    /// Byte span of the date text within `text` (empty when none).
    pub date: (usize, usize),
}

impl TupleLine {
    /// The line with its date text removed (what the regexes see).
    pub fn stripped(&self) -> String {
        let mut s = String::with_capacity(self.text.len());
        self.push_stripped(&mut s);
        s
    }

    fn push_stripped(&self, out: &mut String) {
        out.push_str(&self.text[..self.date.0]);
        out.push_str(&self.text[self.date.1..]);
    }
}

/// A line kept by the filter (a copy shares the text).
pub type Line = TupleLine;

/// Values captured for one failure (fail2ban's `fail` dict).
#[derive(Debug, Clone, Default)]
pub struct FailData {
    /// Named groups (including non-participating ones as [`GroupValue::None`]), in order.
    pub fields: Vec<(Name, GroupValue)>,
    /// The lines that make up the failure (`matches`); `None` when the key is absent.
    pub matches: Option<Vec<Line>>,
    /// Lines of `nofail` matches held back until a failure of the same connection.
    pub nofail_matches: Option<Vec<Line>>,
    /// Every user seen on a multi-line connection, sorted, each once (a connection has one
    /// or two: a list costs one allocation where a set cost one per user).
    pub users: Option<Vec<Text>>,
    /// The address when the failure id is not the address itself (`F-ID` differs from `<HOST>`).
    pub ip: Option<HostId>,
    /// The failure waits for its id (multi-line).
    pub mlfpending: bool,
}

/// Key equality with the cheap checks first (most keys differ in length or first byte).
#[inline]
fn key_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.as_bytes().first() == b.as_bytes().first() && a == b
}

fn truthy(v: Option<&GroupValue>) -> bool {
    match v {
        None | Some(GroupValue::None) => false,
        Some(GroupValue::Str(s)) => !s.is_empty(),
        Some(GroupValue::Tuple(t)) => !t.is_empty(),
    }
}

impl FailData {
    /// A field's value, `None` when absent or not participating.
    pub fn get(&self, key: &str) -> Option<&GroupValue> {
        self.fields
            .iter()
            .find(|(k, _)| key_eq(k, key))
            .map(|(_, v)| v)
    }

    /// A field's text, `None` when absent, not participating or a tuple.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get_text(key).map(|s| &**s)
    }

    /// [`FailData::get_str`], shared (a copy costs no allocation).
    pub fn get_text(&self, key: &str) -> Option<&Text> {
        match self.get(key) {
            Some(GroupValue::Str(s)) => Some(s),
            _ => None,
        }
    }

    fn truthy(&self, key: &str) -> bool {
        truthy(self.get(key))
    }

    fn set(&mut self, key: &str, value: GroupValue) {
        self.put(key, value, || ferroban_matcher::name(key));
    }

    /// `set`, the name of a new field made by `name` (only when the key is absent).
    fn put(&mut self, key: &str, value: GroupValue, name: impl FnOnce() -> Name) {
        match self.fields.iter_mut().find(|(k, _)| key_eq(k, key)) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((name(), value)),
        }
    }

    fn pop(&mut self, key: &str) -> Option<GroupValue> {
        let pos = self.fields.iter().position(|(k, _)| key_eq(k, key))?;
        Some(self.fields.remove(pos).1)
    }

    /// `set`, trying position `hint` first (the fields of two failures of one regex are in
    /// the same order).
    fn set_hinted(&mut self, hint: usize, key: Name, value: GroupValue) {
        match self.fields.get_mut(hint) {
            Some(slot) if key_eq(slot.0, key) => slot.1 = value,
            // the name is shared, not copied
            _ => self.put(key, value, || key),
        }
    }

    /// The prefregex's groups (`self`) updated by a failregex's (`other`), fail2ban 1.1's
    /// rule: a failregex group that did not take part leaves the prefregex's value (1.0.2's
    /// plain `dict.update` let it erase the value, so a host captured only by the prefregex
    /// of 1.1.1's dovecot filter was lost and the line was no failure). A key `self` lacks
    /// is added even when it did not take part. The keys of `other` are distinct, so only
    /// the keys `self` had before can be overwritten. `other` is left empty.
    fn update_from_failregex(&mut self, other: &mut Vec<(Name, GroupValue)>) {
        let before = self.fields.len();
        self.fields.reserve(other.len());
        for (k, v) in other.drain(..) {
            match self.fields[..before]
                .iter_mut()
                .find(|(sk, _)| key_eq(sk, k))
            {
                Some(slot) => {
                    if !matches!(v, GroupValue::None) {
                        slot.1 = v
                    }
                }
                None => self.fields.push((k, v)),
            }
        }
    }

    /// `update((k, v) for k, v in other.items() if v is not None)`.
    fn update_non_none(&mut self, other: FailData) {
        for (i, (k, v)) in other.fields.into_iter().enumerate() {
            if !matches!(v, GroupValue::None) {
                self.set_hinted(i, k, v);
            }
        }
        if other.matches.is_some() {
            self.matches = other.matches;
        }
        if other.nofail_matches.is_some() {
            self.nofail_matches = other.nofail_matches;
        }
        if other.users.is_some() {
            self.users = other.users;
        }
        if other.ip.is_some() {
            self.ip = other.ip;
        }
        if other.mlfpending {
            self.mlfpending = true;
        }
    }

    /// Adds the current `user` to `users`; returns the number of users known (0 when the set is absent).
    fn update_users(&mut self) -> usize {
        if let Some(user) = self.get_text("user").filter(|u| !u.is_empty()).cloned() {
            add_user(&mut self.users, &user);
        }
        self.users.as_ref().map_or(0, Vec::len)
    }

    /// Number of lines that make up the failure.
    pub fn attempts(&self) -> usize {
        self.matches.as_ref().map_or(0, Vec::len)
    }
}

/// Adds `user` to `users` (created when absent) in its sorted place, copying the text only
/// when it is new.
fn add_user(users: &mut Option<Vec<Text>>, user: &str) {
    let set = users.get_or_insert_with(Vec::new);
    if let Err(at) = set.binary_search_by(|u| u.as_str().cmp(user)) {
        set.insert(at, Text::from(user));
    }
}

/// A failure's data as a result holds it: its own, or shared with the multi-line cache
/// (fail2ban's cache and result hold one dict; here the cache copies it only when it
/// changes the entry while a result still holds it).
#[derive(Debug, Clone)]
pub enum FailRef {
    /// Data no one else holds.
    Own(FailData),
    /// Data the multi-line cache also holds.
    Shared(Arc<FailData>),
}

impl Default for FailRef {
    fn default() -> Self {
        FailRef::Own(FailData::default())
    }
}

impl std::ops::Deref for FailRef {
    type Target = FailData;

    fn deref(&self) -> &FailData {
        match self {
            FailRef::Own(d) => d,
            FailRef::Shared(d) => d,
        }
    }
}

impl FailRef {
    /// The data to change (copied first only when shared with a live holder).
    fn to_mut(&mut self) -> &mut FailData {
        match self {
            FailRef::Own(d) => d,
            FailRef::Shared(d) => Arc::make_mut(d),
        }
    }

    /// A shared handle on the data (the data moves behind one when it is its own).
    fn share(&mut self) -> Arc<FailData> {
        if let FailRef::Own(d) = self {
            *self = FailRef::Shared(Arc::new(std::mem::take(d)));
        }
        match self {
            FailRef::Shared(d) => Arc::clone(d),
            FailRef::Own(_) => unreachable!("made shared above"),
        }
    }

    fn into_shared(self) -> Arc<FailData> {
        match self {
            FailRef::Own(d) => Arc::new(d),
            FailRef::Shared(d) => d,
        }
    }
}

/// One failure found on a line.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Index of the failregex that matched.
    pub regex_index: usize,
    /// The failure id; `None` for a multi-line failure still waiting for its id (pending), and
    /// for a failure whose host name is left to the caller to resolve ([`Failure::host_name`]).
    pub id: Option<HostId>,
    /// With [`FilterOptions::defer_dns`]: the host name (not an address) the failregex found,
    /// which the caller resolves; the failure counts once for each of its addresses.
    pub host_name: Option<String>,
    /// Time of the failure (unix seconds); `None` when the line had no usable date.
    pub time: Option<f64>,
    /// Captured values.
    pub data: FailRef,
}

impl Failure {
    /// True for a `nofail` match (a line that belongs to a connection but is no failure).
    pub fn is_nofail(&self) -> bool {
        self.data.truthy("nofail")
    }
}

/// What one line produced.
#[derive(Debug, Default)]
pub struct LineResult {
    /// Failures (and, with `check_all_regex`, pending/nofail matches).
    pub failures: Vec<Failure>,
    /// Indexes of the ignoreregexes that matched.
    pub ignored: Vec<usize>,
    /// The line was dropped because it is older than `findtime` (start-up catch-up).
    pub too_old: bool,
    /// A failregex matched but no date could be found for the line.
    pub no_date: bool,
    /// The filter has a prefregex and it matched the line (buffer).
    pub prefregex_matched: bool,
}

/// Behaviour switches (fail2ban's filter attributes).
#[derive(Debug, Clone)]
pub struct FilterOptions {
    /// `usedns`.
    pub use_dns: UseDns,
    /// With `usedns = yes|warn`, leave host names to the caller ([`Failure::host_name`])
    /// instead of resolving them here, inline (the daemon resolves them off the engine; `ferroban
    /// regex` resolves inline).
    pub defer_dns: bool,
    /// Report every matching failregex, not only the first (samples, `ferroban regex`).
    pub check_all_regex: bool,
    /// Never resolve or parse host names: ids stay raw text when not an address.
    pub return_raw_host: bool,
    /// Drop pending multi-line failures (no id yet) instead of reporting them.
    pub ignore_pending: bool,
    /// Apply `findtime` to line times (daemon); off for tests and `ferroban regex`.
    pub check_find_time: bool,
    /// `findtime` in seconds.
    pub find_time: f64,
    /// `logtimezone`.
    pub log_timezone: Option<String>,
    /// Zone for dates without one (default: the process' local zone).
    pub default_timezone: Option<jiff::tz::TimeZone>,
}

impl Default for FilterOptions {
    fn default() -> Self {
        FilterOptions {
            use_dns: UseDns::Warn,
            defer_dns: false,
            check_all_regex: false,
            return_raw_host: false,
            ignore_pending: true,
            check_find_time: true,
            find_time: 600.0,
            log_timezone: None,
            default_timezone: None,
        }
    }
}

/// Resolves host names to addresses (injectable so tests never touch DNS).
pub type Resolver = Arc<dyn Fn(&str) -> Vec<std::net::IpAddr> + Send + Sync>;

fn system_resolver() -> Resolver {
    Arc::new(|name: &str| {
        use std::net::ToSocketAddrs;
        let mut out: Vec<std::net::IpAddr> = (name, 0)
            .to_socket_addrs()
            .map(|it| it.map(|sa| sa.ip()).collect())
            .unwrap_or_default();
        out.sort();
        out.dedup();
        out
    })
}

/// A compiled filter with its state (line buffer, last date, multi-line cache).
pub struct Filter {
    prefregex: Option<Regex>,
    failregex: Vec<Regex>,
    ignoreregex: Vec<Regex>,
    /// Literal prefilter over the failregexes (more than one), built on first use.
    prefilter: std::sync::OnceLock<Option<Prefilter>>,
    /// One automaton over the failregexes' gates (built on first use); when it exists it
    /// replaces the literal prefilter and the per-regex gates.
    gateset: std::sync::OnceLock<Option<GateSet>>,
    gateset_scratch: Option<GateSetScratch>,
    candidates: Vec<bool>,
    /// `candidates` is the gate set's answer.
    candidates_by_set: bool,
    /// The gate set found the screen's first matching failregex (its gate need not be
    /// searched again); `candidates` after it are not the set's answer.
    first_by_set: bool,
    /// Group spans of the failregex the single-line screen found matching (see `Screened`).
    fail_spans: Vec<Option<(usize, usize)>>,
    /// Group index of the prefregex's `content` group.
    content_group: Option<usize>,
    /// Reused group spans of the prefregex (no allocation per line).
    spans: Vec<Option<(usize, usize)>>,
    /// Reused haystack of the failregexes: the prefregex's content and `\n`.
    content_scratch: String,
    /// Set by the single-line screen for the line it passed: the first failregex that
    /// matches it, and whether `spans` hold the prefregex's groups on that line (and
    /// `candidates` the prefilter's answer on its content).
    screened: Option<Screened>,
    dates: DateDetector,
    max_lines: usize,
    opts: FilterOptions,
    buffer: Vec<Line>,
    last_time_text: String,
    last_date: Option<f64>,
    mlfid: MlfidCache,
    scratch: String,
    /// Reused text of the current line's connection id (`<F-MLFID>`).
    mlfid_key: String,
    /// Reused list of a failregex's groups (merged into the prefregex's).
    group_scratch: Vec<(Name, GroupValue)>,
    /// Reused list of the prefregex's groups (copied into each failure).
    pre_scratch: Vec<(Name, GroupValue)>,
    resolver: Resolver,
    /// The filter is following new lines (not catching up at start): odd dates are taken as "now".
    pub in_operation: bool,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("failregex", &self.failregex.len())
            .field("ignoreregex", &self.ignoreregex.len())
            .field("max_lines", &self.max_lines)
            .finish_non_exhaustive()
    }
}

const FAILURE_ID_GROUPS: [&str; 5] = ["fid", "ip4", "ip6", "dns", "mlfid"];

impl Filter {
    /// Builds a filter from its definition.
    pub fn new(def: &FilterDef, opts: FilterOptions) -> Result<Filter, FilterError> {
        Filter::from_parts(
            def.prefregex.as_deref(),
            &def.failregex,
            &def.ignoreregex,
            def.maxlines.unwrap_or(1),
            def.datepattern.as_deref(),
            opts,
        )
    }

    /// The date detector of a filter with date setting `datepattern` and the time zones of
    /// `opts`: it finds the dates [`detect_date`](Self::detect_date) of such a filter finds.
    pub fn date_detector_for(
        datepattern: Option<&str>,
        opts: &FilterOptions,
    ) -> Result<DateDetector, FilterError> {
        let mut dates = DateDetector::for_setting(datepattern)?;
        if let Some(tz) = &opts.default_timezone {
            dates.set_default_timezone(tz.clone());
        }
        if let Some(tz) = &opts.log_timezone {
            dates.set_log_timezone(tz)?;
        }
        Ok(dates)
    }

    /// Builds a filter from its parts (what `ferroban regex` gets on its command line).
    pub fn from_parts(
        prefregex: Option<&str>,
        failregex: &[String],
        ignoreregex: &[String],
        max_lines: usize,
        datepattern: Option<&str>,
        opts: FilterOptions,
    ) -> Result<Filter, FilterError> {
        if max_lines == 0 {
            return Err(FilterError::MaxLines(max_lines));
        }
        let single = RegexOptions {
            multiline: false,
            use_dns: opts.use_dns,
        };
        let multi = RegexOptions {
            multiline: max_lines > 1,
            use_dns: opts.use_dns,
        };
        let prefregex = match prefregex.filter(|p| !p.trim().is_empty()) {
            Some(p) => Some(Regex::new(p, &single).map_err(|source| FilterError::Regex {
                kind: "prefregex",
                index: 0,
                source,
            })?),
            None => None,
        };
        let mut fail = Vec::with_capacity(failregex.len());
        for (index, p) in failregex.iter().enumerate() {
            let r = Regex::new(p, &multi).map_err(|source| FilterError::Regex {
                kind: "failregex",
                index,
                source,
            })?;
            let has_id = |r: &Regex| FAILURE_ID_GROUPS.iter().any(|g| r.has_group(g));
            if !has_id(&r) && !prefregex.as_ref().is_some_and(has_id) {
                return Err(FilterError::NoFailureId {
                    index,
                    pattern: p.clone(),
                });
            }
            fail.push(r);
        }
        let mut ignore = Vec::with_capacity(ignoreregex.len());
        for (index, p) in ignoreregex.iter().enumerate() {
            ignore.push(Regex::new(p, &single).map_err(|source| FilterError::Regex {
                kind: "ignoreregex",
                index,
                source,
            })?);
        }
        let dates = Filter::date_detector_for(datepattern, &opts)?;
        Ok(Filter {
            content_group: prefregex.as_ref().and_then(|p| p.group_index("content")),
            spans: Vec::new(),
            content_scratch: String::new(),
            screened: None,
            prefregex,
            candidates: vec![true; fail.len()],
            failregex: fail,
            ignoreregex: ignore,
            prefilter: std::sync::OnceLock::new(),
            gateset: std::sync::OnceLock::new(),
            gateset_scratch: None,
            candidates_by_set: false,
            first_by_set: false,
            fail_spans: Vec::new(),
            dates,
            max_lines,
            opts,
            buffer: Vec::new(),
            last_time_text: String::new(),
            last_date: None,
            mlfid: MlfidCache::new(100, 300.0),
            scratch: String::new(),
            mlfid_key: String::new(),
            group_scratch: Vec::new(),
            pre_scratch: Vec::new(),
            resolver: system_resolver(),
            in_operation: true,
        })
    }

    /// Replaces the host-name resolver (tests).
    pub fn set_resolver(&mut self, resolver: Resolver) {
        self.resolver = resolver;
    }

    /// The failregexes.
    pub fn failregex(&self) -> &[Regex] {
        &self.failregex
    }

    /// The ignoreregexes.
    pub fn ignoreregex(&self) -> &[Regex] {
        &self.ignoreregex
    }

    /// The prefregex.
    pub fn prefregex(&self) -> Option<&Regex> {
        self.prefregex.as_ref()
    }

    /// The text of the last date found (fail2ban's `__lastTimeText`): what an undated line
    /// within a minute of it is dated with.
    pub fn last_time_text(&self) -> &str {
        &self.last_time_text
    }

    /// The date detector (for reports of which templates hit).
    pub fn date_detector(&self) -> &DateDetector {
        &self.dates
    }

    /// The options the filter runs with.
    pub fn options(&self) -> &FilterOptions {
        &self.opts
    }

    /// `maxlines`.
    pub fn max_lines(&self) -> usize {
        self.max_lines
    }

    /// `findtime` (seconds).
    pub fn set_find_time(&mut self, secs: f64) {
        self.opts.find_time = secs;
    }

    /// Processes one line read from a log file at time `now`.
    pub fn process_line(&mut self, line: &str, now: f64) -> LineResult {
        let hit = self.dates.match_time(line, now);
        self.process_line_dated(line, hit, now)
    }

    /// The date this filter's detector finds in `line` at `now` (what [`process_line`]
    /// would date it with), for [`process_line_dated`] of filters with the same date settings.
    ///
    /// [`process_line`]: Self::process_line
    /// [`process_line_dated`]: Self::process_line_dated
    pub fn detect_date(&mut self, line: &str, now: f64) -> Option<ferroban_date::DateHit> {
        self.dates.match_time(line, now)
    }

    /// [`process_line`](Self::process_line) with the line's date already detected: `hit` is
    /// what [`detect_date`](Self::detect_date) of a filter with the same `datepattern` and
    /// time zones returned for this line at `now` (jails reading one file detect each line's
    /// date once per distinct date setting).
    pub fn process_line_dated(
        &mut self,
        line: &str,
        hit: Option<ferroban_date::DateHit>,
        now: f64,
    ) -> LineResult {
        let mut no_date = false;
        let mut date: Option<f64> = None;
        let span;
        match hit {
            Some(hit) => {
                span = (hit.start, hit.end);
                if hit.end > hit.start {
                    if let Some(t) = hit.time {
                        date = Some(t);
                        self.last_time_text.clear();
                        self.last_time_text.push_str(&line[hit.start..hit.end]);
                        self.last_date = Some(t);
                    }
                } else if self.last_date.is_some_and(|d| d > now - 60.0) {
                    date = self.last_date;
                } else {
                    date = Some(now);
                }
            }
            None => span = (0, 0),
        }
        let mut use_last_text = false;
        if date.is_none() {
            no_date = true;
            if self.last_date.is_some_and(|d| d > now - 60.0) {
                use_last_text = true;
                date = self.last_date;
            } else if self.opts.check_find_time && self.in_operation {
                date = Some(now);
            }
        }
        if let Some(r) = self.check_time(&mut date, now) {
            return r;
        }
        if use_last_text {
            // fail2ban rebuilds the line as ("", last time text, line): the regexes see the whole line.
            let text = format!("{}{}", self.last_time_text, line);
            let n = self.last_time_text.len();
            return self.find_failure(Tuple::Owned(text, (0, n)), date, no_date, now);
        }
        self.find_failure(Tuple::Borrowed(line, span), date, no_date, now)
    }

    /// Processes a line whose time is known (journal entries): `prefix` + `time_text` + `message`,
    /// where `time_text` is not seen by the regexes.
    pub fn process_dated(
        &mut self,
        time_text: &str,
        message: &str,
        date: f64,
        now: f64,
    ) -> LineResult {
        self.last_time_text.clear();
        self.last_time_text.push_str(time_text);
        self.last_date = Some(date);
        let mut d = Some(date);
        if let Some(r) = self.check_time(&mut d, now) {
            return r;
        }
        let text = format!("{time_text}{message}");
        self.find_failure(Tuple::Owned(text, (0, time_text.len())), d, false, now)
    }

    fn check_time(&mut self, date: &mut Option<f64>, now: f64) -> Option<LineResult> {
        if !self.opts.check_find_time {
            return None;
        }
        let d = (*date)?;
        if self.in_operation {
            if (d - now).trunc().abs() > 60.0 {
                *date = Some(now);
                self.last_date = Some(now);
            }
        } else if d < now - self.opts.find_time {
            return Some(LineResult {
                too_old: true,
                ..LineResult::default()
            });
        }
        None
    }

    fn ignore_line(&mut self, buf: &str, result: &mut LineResult) -> bool {
        let mut found = false;
        for (i, r) in self.ignoreregex.iter().enumerate() {
            if r.is_match(buf) {
                found = true;
                result.ignored.push(i);
                if !self.opts.check_all_regex {
                    break;
                }
            }
        }
        found
    }

    fn find_failure(
        &mut self,
        tuple: Tuple<'_>,
        date: Option<f64>,
        no_date: bool,
        now: f64,
    ) -> LineResult {
        let mut result = LineResult::default();
        let multi = self.max_lines > 1;

        // Fast path: a single-line filter decides on the stripped line alone; nothing is kept.
        if !multi {
            let mut buf = std::mem::take(&mut self.scratch);
            buf.clear();
            tuple.push_stripped(&mut buf);
            buf.push('\n');
            let candidate = self.is_candidate(&buf, &mut result);
            self.scratch = buf;
            if !candidate {
                return result;
            }
            result.ignored.clear();
        }

        // The haystack; for a single-line filter it is one of the screen's reused strings,
        // handed back when the line is done (`home` says which).
        let mut buf: Option<String> = None;
        let mut home = Home::None;
        let result = self.find_failure_full(tuple, date, no_date, now, result, &mut buf, &mut home);
        match (home, buf) {
            (Home::Scratch, Some(b)) => self.scratch = b,
            (Home::Content, Some(b)) => self.content_scratch = b,
            _ => {}
        }
        result
    }

    /// The full path of [`Filter::find_failure`] for a line that passed the screen (or every
    /// line of a multi-line filter).
    #[allow(clippy::too_many_arguments)]
    fn find_failure_full(
        &mut self,
        tuple: Tuple<'_>,
        date: Option<f64>,
        no_date: bool,
        now: f64,
        mut result: LineResult,
        buf: &mut Option<String>,
        home: &mut Home,
    ) -> LineResult {
        let multi = self.max_lines > 1;
        let line: Line = tuple.into_owned();
        let single: [Line; 1];
        let org_multi: Vec<Line>;
        let org: &[Line] = if multi {
            self.buffer.push(line);
            let excess = self.buffer.len().saturating_sub(self.max_lines);
            self.buffer.drain(..excess);
            org_multi = self.buffer.clone();
            *buf = Some(lines_buf(&org_multi));
            &org_multi
        } else {
            // One line per buffer: the next line replaces it, so no buffer is kept, and the
            // haystack is the screen's stripped line (the same text as `lines_buf`).
            self.buffer.clear();
            single = [line];
            *buf = Some(std::mem::take(&mut self.scratch));
            *home = Home::Scratch;
            &single
        };

        if !self.ignoreregex.is_empty()
            && self.ignoreregex.len() + 2 < self.failregex.len()
            && self.ignore_line(buf.as_deref().unwrap_or_default(), &mut result)
        {
            return result;
        }

        let screened = if multi { None } else { self.screened.take() };
        let mut pre_groups: Option<FailData> = None;
        if let Some(pref) = &self.prefregex {
            let haystack = buf.as_deref().unwrap_or_default();
            let caps = match &screened {
                // the screen found the prefregex's groups on this very line
                Some(s) if s.pref_spans => pref.captures_from_spans(haystack, &self.spans),
                _ => match pref.search(haystack) {
                    Some(caps) => caps,
                    None => return result,
                },
            };
            result.prefregex_matched = true;
            // The content group is read in place, not copied into the fields (it is removed
            // from them anyway); a regex whose alt_/tuple_ groups may write `content` pays
            // for the general way.
            let in_place = self.content_group.filter(|_| !pref.has_combined_groups());
            // the groups go into a reused list (given back when the line is done)
            let mut fields = std::mem::take(&mut self.pre_scratch);
            caps.groups_except_into(in_place, &mut fields);
            let mut groups = FailData {
                fields,
                ..FailData::default()
            };
            let content: Option<std::borrow::Cow<'_, str>> = match in_place {
                Some(ci) => caps.get(ci).map(std::borrow::Cow::Borrowed),
                None => match groups.pop("content") {
                    Some(GroupValue::Str(c)) => Some(std::borrow::Cow::Owned(c.to_string())),
                    _ => None,
                },
            };
            if let Some(content) = content
                && !content.is_empty()
            {
                if multi {
                    self.buffer = vec![TupleLine {
                        text: Arc::from(&*content),
                        date: (0, 0),
                    }];
                    *buf = None;
                } else {
                    // The failregexes search the content: the screen left it (and `\n`) in
                    // `content_scratch` when it searched it.
                    let mut c = std::mem::take(&mut self.content_scratch);
                    if !screened.is_some_and(|s| s.candidates) {
                        c.clear();
                        c.push_str(&content);
                        c.push('\n');
                    }
                    drop(content);
                    if let Some(line) = buf.replace(c) {
                        self.scratch = line;
                    }
                    *home = Home::Content;
                }
            }
            pre_groups = Some(groups);
        }

        let raw_default = self.opts.use_dns == UseDns::Raw || self.opts.return_raw_host;
        // Which failregexes can match the haystack (literal prefilter), computed again
        // whenever the haystack is rebuilt.
        // With the screen's result, the regexes before the first that matched are skipped
        // (they cannot match this haystack) and its prefilter answer is reused.
        // The content's haystack, the text the screen searched.
        if buf.is_none() {
            *buf = Some(lines_buf(&self.buffer));
        }
        let first = screened.as_ref().map_or(0, |s| s.first);
        let mut first_spans = screened.is_some_and(|s| s.first_spans);
        let mut screened = screened.is_some_and(|s| s.candidates);
        // the gate set checked the first regex's gate (the later ones are not)
        let mut first_by_set = screened && self.first_by_set;
        // `candidates` is the gate set's answer (its regexes' gates need no second search).
        let mut by_gateset = screened && self.candidates_by_set;
        let mut key = std::mem::take(&mut self.mlfid_key);
        for index in first..self.failregex.len() {
            // The buffer text is rebuilt only after a match changed the line buffer.
            if buf.is_none() {
                screened = false;
                first_spans = false;
                first_by_set = false;
            }
            let haystack: &str = buf.get_or_insert_with(|| lines_buf(&self.buffer));
            if !screened {
                screened = true;
                by_gateset = self.fill_candidates(haystack);
            }
            if !self.candidates[index] {
                continue;
            }
            let regex = &self.failregex[index];
            let caps = if index == first && first_spans {
                // the screen ran this regex on this very haystack
                Some(regex.captures_from_spans(haystack, &self.fail_spans))
            } else if by_gateset || (index == first && first_by_set) {
                gateset_of(&self.gateset, &self.failregex).and_then(|gs| gs.search(index, haystack))
            } else {
                regex.search(haystack)
            };
            let Some(caps) = caps else {
                continue;
            };
            // One line per buffer: the match covers it (no copies of the line list).
            let (matched_multi, unmatched) = if multi {
                split_matched(&caps, haystack, org)
            } else {
                (Vec::new(), Vec::new())
            };
            let matched: &[Line] = if multi { &matched_multi } else { org };
            // The groups go into a reused list (moved out below only without a prefregex).
            let mut fields = std::mem::take(&mut self.group_scratch);
            caps.groups_into(&mut fields);
            let mut fail = FailData {
                fields,
                ..FailData::default()
            };
            drop(caps);

            if !self.ignoreregex.is_empty() {
                let matched_text;
                let ignore_buf = if multi {
                    matched_text = lines_buf(matched);
                    matched_text.as_str()
                } else {
                    haystack
                };
                if self.ignore_line(ignore_buf, &mut result) {
                    if multi {
                        // the line buffer changed: the haystack is rebuilt (a single-line
                        // filter keeps no buffer; its haystack stays)
                        self.buffer = unmatched.clone();
                        *buf = None;
                    }
                    if !self.opts.check_all_regex {
                        break;
                    }
                    continue;
                }
            }
            if no_date {
                result.no_date = true;
                if date.is_none() && self.opts.check_find_time {
                    continue;
                }
            }
            if multi {
                self.buffer = unmatched;
                *buf = None;
            } else if !self.opts.check_all_regex {
                // fail2ban replaces the buffer by the lines the match did not cover (none here):
                // a later failregex (searched only when this match yields no id) sees an empty
                // haystack, as the rebuilt buffer of a multi-line filter would be
                if let Some(b) = buf.as_mut() {
                    b.clear();
                    b.push('\n');
                }
                screened = false;
                first_spans = false;
                first_by_set = false;
            }
            // The prefregex's groups (shared texts: a copy allocates only the list) updated by
            // the failregex's; the failregex's list goes back to be reused.
            if let Some(pre) = &pre_groups {
                let mut merged = FailData {
                    fields: Vec::with_capacity(pre.fields.len() + fail.fields.len()),
                    ..FailData::default()
                };
                merged.fields.extend(pre.fields.iter().cloned());
                let mut groups = std::mem::take(&mut fail.fields);
                merged.update_from_failregex(&mut groups);
                self.group_scratch = groups;
                fail = merged;
            }
            // the connection id, in a reused string (the failure moves into the merge)
            key.clear();
            let has_mlfid = fail.get_str("mlfid").map(|k| key.push_str(k)).is_some();
            let mut write_back = false;
            let mut fail = if has_mlfid {
                let (merged, keep) = self.merge_failure(&key, fail, matched, now);
                write_back = keep;
                if merged.truthy("nofail") && !self.opts.check_all_regex {
                    if write_back {
                        self.mlfid.update(&key, merged.into_shared());
                    }
                    break;
                }
                merged
            } else {
                let mut m = fail.matches.take().unwrap_or_default();
                m.extend(matched.iter().cloned());
                fail.matches = Some(m);
                FailRef::Own(fail)
            };

            let mut fid = fail.get_text("fid").cloned();
            let mut raw = raw_default;
            let mut family = Family::Any;
            let mut prefix: Option<u8> = None;
            let cidr = fail
                .get_str("cidr")
                .filter(|c| !c.is_empty())
                .and_then(|c| c.parse::<u8>().ok());
            let host: Option<Text>;
            if let Some(ip) = fail.get_text("ip4") {
                host = Some(ip.clone());
                family = Family::V4;
                prefix = cidr;
                raw = true;
            } else if let Some(ip) = fail.get_text("ip6") {
                host = Some(ip.clone());
                family = Family::V6;
                prefix = cidr;
                raw = true;
            } else if let Some(dns) = fail.get_text("dns") {
                host = Some(dns.clone());
            } else {
                if fid.is_none() && !has_mlfid {
                    // No id at all: only possible with an unusual regex; fail2ban reports an error.
                    continue;
                }
                host = fid.clone();
                raw = true;
            }
            let mut host_name = None;
            let ids = match host {
                None => {
                    fail.to_mut().mlfpending = true;
                    if !self.opts.check_all_regex && self.opts.ignore_pending {
                        if write_back {
                            self.mlfid.update(&key, fail.into_shared());
                        }
                        break;
                    }
                    Ids::One(Some(None))
                }
                Some(h) if raw => {
                    let id = match fid.take() {
                        Some(f) if f != h => {
                            fail.to_mut().ip = Some(HostId::with_prefix(&h, family, prefix));
                            if raw_default {
                                HostId::raw(&f)
                            } else {
                                HostId::parse(&f)
                            }
                        }
                        _ => HostId::with_prefix(&h, family, prefix),
                    };
                    Ids::One(Some(Some(id)))
                }
                Some(h)
                    if self.opts.defer_dns
                        && matches!(self.opts.use_dns, UseDns::Yes | UseDns::Warn)
                        && !HostId::parse(&h).is_ip() =>
                {
                    host_name = Some(h.to_string());
                    Ids::One(Some(None))
                }
                Some(h) => Ids::Many(self.text_to_ip(&h).into_iter()),
            };
            if write_back {
                // the cache and the result share the data
                self.mlfid.update(&key, fail.share());
            }
            let mut ids = ids.peekable();
            while let Some(id) = ids.next() {
                // the last failure takes the data, the others a copy
                let data = if ids.peek().is_none() {
                    std::mem::take(&mut fail)
                } else {
                    fail.clone()
                };
                result.failures.push(Failure {
                    regex_index: index,
                    id,
                    host_name: host_name.take(),
                    time: date,
                    data,
                });
            }
            if !self.opts.check_all_regex {
                break;
            }
        }
        self.mlfid_key = key;
        if let Some(pre) = pre_groups {
            self.pre_scratch = pre.fields;
        }
        result
    }

    /// Cheap decision whether a single-line haystack can produce anything.
    fn is_candidate(&mut self, buf: &str, result: &mut LineResult) -> bool {
        if !self.ignoreregex.is_empty()
            && self.ignoreregex.len() + 2 < self.failregex.len()
            && self.ignore_line(buf, result)
        {
            return false;
        }
        self.screened = None;
        if let Some(pref) = &self.prefregex {
            // The failregexes will search the prefregex's content (when it has some): a line
            // none of them can match there changes nothing (with one line per buffer the
            // buffer is replaced by the next line anyway) and stops here, without copies.
            let Some(ci) = self.content_group.filter(|_| self.max_lines == 1) else {
                result.prefregex_matched = pref.is_match(buf);
                return result.prefregex_matched;
            };
            // One search gives both the answer and the groups the full path needs.
            result.prefregex_matched = pref.search_spans(buf, &mut self.spans);
            if !result.prefregex_matched {
                return false;
            }
            let Some((s, e)) = self.spans.get(ci).copied().flatten().filter(|(s, e)| e > s) else {
                self.screened = Some(Screened {
                    first: 0,
                    pref_spans: true,
                    candidates: false,
                    first_spans: false,
                });
                return true;
            };
            let mut content = std::mem::take(&mut self.content_scratch);
            content.clear();
            content.push_str(&buf[s..e]);
            content.push('\n');
            let first = self.first_failregex_match(&content);
            self.content_scratch = content;
            self.screened = first.map(|(first, first_spans)| Screened {
                first,
                pref_spans: true,
                candidates: true,
                first_spans,
            });
            return first.is_some();
        }
        let first = self.first_failregex_match(buf);
        self.screened = first.map(|(first, first_spans)| Screened {
            first,
            pref_spans: false,
            candidates: true,
            first_spans,
        });
        first.is_some()
    }

    /// Sets `candidates[i]` to false only when failregex `i` cannot match `haystack` (the
    /// gate set's answer, or the literal prefilter's when there is no gate set); returns
    /// whether the answer is the gate set's (also left in `candidates_by_set`).
    fn fill_candidates(&mut self, haystack: &str) -> bool {
        self.candidates_by_set = false;
        if let Some(gs) = gateset_of(&self.gateset, &self.failregex) {
            let scratch = self.gateset_scratch.get_or_insert_with(|| gs.scratch());
            if gs.candidates(haystack, scratch, &mut self.candidates) {
                self.candidates_by_set = true;
                return true;
            }
            // The set cannot answer for this haystack: each regex screens itself.
            self.candidates.clear();
            self.candidates.resize(self.failregex.len(), true);
            return false;
        }
        match prefilter_of(&self.prefilter, &self.failregex) {
            Some(pf) => pf.candidates(haystack, &mut self.candidates),
            None => {
                self.candidates.clear();
                self.candidates.resize(self.failregex.len(), true);
            }
        }
        false
    }

    /// Index of the first failregex that matches `haystack` (exact), and whether its groups
    /// were left in `fail_spans`; leaves the candidates for `haystack` in `candidates` (the
    /// ones found not to match before the first are cleared).
    ///
    /// The gate set's first candidate comes from one search that stops once no earlier gate
    /// can match; when that regex matches (the common case), `candidates` says only that the
    /// regexes before it cannot match (the later ones are left to their own gates) and
    /// `first_by_set` that the set checked the first one's gate. Otherwise every gate's
    /// answer is asked for, as without that search.
    fn first_failregex_match(&mut self, haystack: &str) -> Option<(usize, bool)> {
        self.first_by_set = false;
        let mut from = 0;
        // (with check_all_regex every candidate is searched anyway: the set's whole answer)
        if !self.opts.check_all_regex
            && let Some(gs) = gateset_of(&self.gateset, &self.failregex)
        {
            let scratch = self.gateset_scratch.get_or_insert_with(|| gs.scratch());
            match gs.first_candidate(haystack, scratch) {
                Some(None) => return None,
                Some(Some(i)) => {
                    if let Some(spans) = gs.decide(i, haystack, &mut self.fail_spans) {
                        self.candidates.clear();
                        self.candidates.resize(self.failregex.len(), true);
                        self.candidates[..i].fill(false);
                        self.candidates_by_set = false;
                        self.first_by_set = true;
                        return Some((i, spans));
                    }
                    // its gate matched but not the regex: the next candidates are asked for
                    from = i + 1;
                }
                None => {}
            }
        }
        if self.fill_candidates(haystack) {
            let gs = gateset_of(&self.gateset, &self.failregex)?;
            self.candidates[..from].fill(false);
            for i in from..self.candidates.len() {
                if !self.candidates[i] {
                    continue;
                }
                match gs.decide(i, haystack, &mut self.fail_spans) {
                    Some(spans) => return Some((i, spans)),
                    None => self.candidates[i] = false,
                }
            }
            return None;
        }
        self.failregex
            .iter()
            .zip(&self.candidates)
            .position(|(r, &c)| c && r.is_match(haystack))
            .map(|i| (i, false))
    }

    fn text_to_ip(&self, text: &str) -> Vec<HostId> {
        let id = HostId::parse(text);
        if id.is_ip() {
            return vec![id];
        }
        if matches!(self.opts.use_dns, UseDns::Yes | UseDns::Warn) {
            return (self.resolver)(text)
                .into_iter()
                .map(HostId::Addr)
                .collect();
        }
        Vec::new()
    }

    /// fail2ban's multi-line failure merge for connection id `key`.
    /// Returns the merged failure and whether it is (still) cached under `key`.
    fn merge_failure(
        &mut self,
        key: &str,
        mut fail: FailData,
        matched: &[Line],
        now: f64,
    ) -> (FailRef, bool) {
        const NOFAIL: u8 = 1;
        const FORGET: u8 = 2;
        const OLD_NOFAIL: u8 = 4;
        const GAINED: u8 = 8;
        let mut flags = 0u8;
        if fail.truthy("mlfgained") {
            flags |= GAINED | NOFAIL;
            if !fail.truthy("nofail") {
                let v = fail.get("mlfgained").cloned().unwrap_or(GroupValue::None);
                fail.set("nofail", v);
            }
        } else if fail.truthy("nofail") {
            flags |= NOFAIL;
        }
        if truthy(fail.pop("mlfforget").as_ref()) {
            flags |= FORGET;
        }
        let users;
        // The cached data is taken out, not copied (it is copied only when a result still
        // holds it): every caller writes the merged failure back (`update`) unless the
        // entry is forgotten.
        let mut merged = match self.mlfid.take(key, now) {
            Some(mut shared) => {
                let cached = Arc::make_mut(&mut shared);
                if let Some(u) = fail.get_str("user").filter(|u| !u.is_empty()) {
                    add_user(&mut cached.users, u);
                }
                users = cached.users.as_ref().map_or(0, Vec::len);
                if truthy(cached.pop("nofail").as_ref()) {
                    flags |= OLD_NOFAIL;
                }
                if truthy(cached.pop("mlfgained").as_ref()) {
                    flags |= OLD_NOFAIL;
                }
                if flags & GAINED != 0 {
                    cached.mlfpending = false;
                }
                if flags & OLD_NOFAIL == 0 && !cached.mlfpending {
                    cached.matches = None;
                }
                cached.update_non_none(fail);
                if flags & FORGET != 0 {
                    self.mlfid.unset(key);
                }
                FailRef::Shared(shared)
            }
            None if flags & FORGET == 0 => {
                users = fail.update_users();
                // placeholder: the caller writes the merged failure back
                self.mlfid.insert(key, None, now);
                FailRef::Own(fail)
            }
            None => {
                users = fail.users.as_ref().map_or(0, Vec::len);
                FailRef::Own(fail)
            }
        };
        let fail = merged.to_mut();
        let pending = std::mem::take(&mut fail.mlfpending);
        if pending || users > 1 {
            fail.pop("nofail");
            fail.pop("mlfgained");
            flags &= !(GAINED | NOFAIL);
        }
        if flags & NOFAIL == 0 {
            // nofail matches first, then the earlier matches (the list reused when it exists)
            let mut m = match (fail.nofail_matches.take(), fail.matches.take()) {
                (Some(mut n), Some(old)) => {
                    n.extend(old);
                    n
                }
                (Some(n), None) => n,
                (None, Some(old)) => old,
                (None, None) => Vec::new(),
            };
            if flags & GAINED == 0 {
                m.extend(matched.iter().cloned());
            }
            fail.matches = Some(m);
        } else if flags & (NOFAIL | FORGET) == NOFAIL {
            let mut m = fail.nofail_matches.take().unwrap_or_default();
            m.extend(matched.iter().cloned());
            fail.nofail_matches = Some(m);
        }
        (merged, flags & FORGET == 0)
    }
}

/// The ids one failure counts for: one (no list), or the addresses of a host name.
enum Ids {
    One(Option<Option<HostId>>),
    Many(std::vec::IntoIter<HostId>),
}

impl Iterator for Ids {
    type Item = Option<HostId>;

    fn next(&mut self) -> Option<Option<HostId>> {
        match self {
            Ids::One(id) => id.take(),
            Ids::Many(addrs) => addrs.next().map(Some),
        }
    }
}

/// Where a single-line filter's haystack came from (it goes back there).
#[derive(Debug, Clone, Copy)]
enum Home {
    None,
    Scratch,
    Content,
}

/// What the single-line screen learnt about the line it passed.
#[derive(Debug, Clone, Copy)]
struct Screened {
    /// The first failregex that matches.
    first: usize,
    /// `Filter::spans` hold the prefregex's groups on the line.
    pref_spans: bool,
    /// `Filter::candidates` hold the prefilter's answer on the failregexes' haystack.
    candidates: bool,
    /// `Filter::fail_spans` hold the groups of failregex `first` on that haystack.
    first_spans: bool,
}

/// The gate set over `failregex` (built on first use), `None` for fewer than two failregexes
/// or when it cannot be built.
fn gateset_of<'a>(
    cell: &'a std::sync::OnceLock<Option<GateSet>>,
    failregex: &[Regex],
) -> Option<&'a GateSet> {
    cell.get_or_init(|| {
        (failregex.len() > 1)
            .then(|| GateSet::new(failregex))
            .flatten()
    })
    .as_ref()
}

/// The prefilter over `failregex` (built on first use), `None` for a single failregex.
fn prefilter_of<'a>(
    cell: &'a std::sync::OnceLock<Option<Prefilter>>,
    failregex: &[Regex],
) -> Option<&'a Prefilter> {
    cell.get_or_init(|| {
        (failregex.len() > 1).then(|| Prefilter::new(&failregex.iter().collect::<Vec<_>>()))
    })
    .as_ref()
}

/// A line on its way into the filter: borrowed from the reader, or rebuilt.
enum Tuple<'a> {
    Borrowed(&'a str, (usize, usize)),
    Owned(String, (usize, usize)),
}

impl Tuple<'_> {
    fn push_stripped(&self, out: &mut String) {
        let (text, (s, e)) = match self {
            Tuple::Borrowed(t, span) => (*t, *span),
            Tuple::Owned(t, span) => (t.as_str(), *span),
        };
        out.push_str(&text[..s]);
        out.push_str(&text[e..]);
    }

    fn into_owned(self) -> TupleLine {
        match self {
            Tuple::Borrowed(t, date) => TupleLine {
                text: Arc::from(t),
                date,
            },
            Tuple::Owned(text, date) => TupleLine {
                text: Arc::from(text),
                date,
            },
        }
    }
}

/// The regex haystack: lines without their dates, joined by `\n`, with a final `\n`.
fn lines_buf(lines: &[Line]) -> String {
    let mut s = String::with_capacity(lines.iter().map(|l| l.text.len() + 1).sum());
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        l.push_stripped(&mut s);
    }
    s.push('\n');
    s
}

/// Which of `org` the match covers (minus `<SKIPLINES>` lines) and which it does not.
fn split_matched(caps: &Captures<'_>, haystack: &str, org: &[Line]) -> (Vec<Line>, Vec<Line>) {
    if org.len() <= 1 {
        return (org.to_vec(), Vec::new());
    }
    let bytes = haystack.as_bytes();
    let start = caps.start();
    let end = caps.end();
    let line_start =
        memchr::memrchr(b'\n', &bytes[..(start + 1).min(bytes.len())]).map_or(0, |p| p + 1);
    let line_end = memchr::memchr(b'\n', &bytes[end.saturating_sub(1).min(bytes.len())..])
        .map_or(bytes.len(), |p| end.saturating_sub(1) + p + 1);
    let c1 = memchr::memchr_iter(b'\n', &bytes[..line_start])
        .count()
        .min(org.len());
    let c2 = memchr::memchr_iter(b'\n', &bytes[..line_end])
        .count()
        .min(org.len())
        .max(c1);
    let mut matched: Vec<Line> = org[c1..c2].to_vec();
    let mut unmatched: Vec<Line> = org[..c1].to_vec();
    let mut skipped = String::new();
    for (name, value) in caps.groups() {
        if let Some(rest) = name.strip_prefix("skiplines")
            && rest.chars().all(|c| c.is_ascii_digit())
            && let GroupValue::Str(s) = value
        {
            skipped.push_str(&s);
        }
    }
    let mut n = 0usize;
    for skipped_line in python_splitlines(&skipped) {
        if let Some(m) = matched[n.min(matched.len())..]
            .iter()
            .position(|l| l.stripped() == skipped_line)
        {
            unmatched.push(matched.remove(n + m));
            n += m;
        }
    }
    unmatched.extend(org[c2..].iter().cloned());
    (matched, unmatched)
}

/// `str.splitlines()` for the separators a log line can contain.
fn python_splitlines(s: &str) -> Vec<&str> {
    let mut out: Vec<&str> = s.split('\n').collect();
    if out.last() == Some(&"") {
        out.pop();
    }
    out.into_iter()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect()
}

#[cfg(test)]
mod tests;
