//! fail2ban's regex dialect, matched exactly and in bounded time.
//!
//! A filter regex goes through these steps in [`Regex::new`]:
//!
//! ```text
//! pattern as written ──tags──▶ expanded (Python `re` dialect, = fail2ban's getRegex())
//!        │                         │ parse (Python 3.11 `re` grammar, flags resolved)
//!        │                         ▼
//!        │          ┌──────── AST ─────────┬──────────────────────┐
//!        │          ▼                      ▼                      ▼
//!        │   PCRE2 (exact, JIT)     regex crate: gate      required literals
//!        │   collects captures      (superset, linear)     (Prefilter, Aho-Corasick)
//! ```
//!
//! [`Regex::search`] has Python `re.search` semantics: leftmost match, every
//! named group (non-participating ones are `None`). The steps are:
//!
//! 1. the **gate** (`regex` crate, linear time) rejects haystacks the pattern
//!    cannot match, which is nearly every line and every line built to make a
//!    backtracker explode that does not actually match;
//! 2. on haystacks up to [`LONG_HAYSTACK`] bytes PCRE2 (JIT) finds the match
//!    and its groups, under a backtracking budget ([`MATCH_LIMIT`]);
//! 3. on longer haystacks, or when PCRE2 exhausts its budget, the exact
//!    `regex`-crate translation collects the captures in linear time whenever
//!    it is exact for this pattern and haystack (see `gate`).
//!    Otherwise (patterns with look-arounds, back-references or
//!    conditionals) PCRE2's result stands, and a search that exhausts the
//!    budget reports no match. That "fail closed" case needs a line that
//!    passes the gate *and* exhausts a million backtracking steps; the caller
//!    caps lines at 64 KiB, which bounds every search.
//!
//! Length cap: the caller caps lines at 64 KiB (a multi-line buffer is at most
//! `maxlines` of them). The gate and the linear path are linear in that length
//! (the `regex` crate's lazy DFA, or its PikeVM when the DFA cache thrashes:
//! O(pattern × haystack)); PCRE2 only sees haystacks up to [`LONG_HAYSTACK`]
//! bytes unless the pattern has no exact linear translation, and then at most
//! [`MATCH_LIMIT`] backtracking steps per start position. `tests/hostile.rs`
//! runs every stock regex on 3.6–60 KB crafted lines (about 1 s in a debug build
//! for ~10k searches, slowest single search ~13 ms).
//!
//! Layout: `tags` (fail2ban tags, flag mapping), `parse` (Python `re`
//! grammar), `translate` (PCRE2 and `regex`-crate emitters), `gate`
//! (linear-time side), `prefilter` (literal prefilter), `error`.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod gate;
mod jit;
mod parse;
mod prefilter;
mod set;
mod tags;
mod translate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

pub use error::RegexError;
pub use prefilter::Prefilter;
pub use set::{GateSet, GateSetScratch};
pub use tags::UseDns;

use parse::{Flags, Parsed};
use prefilter::Lit;
use translate::Target;

/// Backtracking budget of one PCRE2 search (PCRE2's `match_limit`).
pub const MATCH_LIMIT: u32 = 1_000_000;

/// Backtracking budget of the first, gate-less attempt of [`Regex::search_spans`]: a search
/// that completes within it is exact; one that runs out of it is done again behind the gate.
pub const QUICK_MATCH_LIMIT: u32 = 10_000;

/// Haystacks longer than this (bytes) are searched by the linear-time exact
/// translation when one exists, never by the backtracker.
pub const LONG_HAYSTACK: usize = 4096;

/// What one search of a regex's gate did ([`Regex::gate_scan`]), as its lazy DFA counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateScan {
    /// The gate's answer: `Some(false)` only when the pattern cannot match; `None` when the
    /// lazy DFA gave up (then the backtracker decides, under its budget).
    pub matched: Option<bool>,
    /// Bytes the lazy DFA stepped through since its cache was last cleared
    /// (`regex_automata::hybrid::dfa::Cache::search_total_len`).
    pub bytes_scanned: usize,
    /// Times its cache filled up and was cleared during the search.
    pub cache_clears: usize,
}

/// How a regex is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RegexOptions {
    /// Python's `re.MULTILINE` (fail2ban sets it for failregex when `maxlines > 1`).
    pub multiline: bool,
    /// fail2ban's `usedns`: whether `<HOST>` includes host names.
    pub use_dns: UseDns,
}

/// The value of a group as fail2ban's `getGroups()` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupValue {
    /// The group did not participate in the match.
    None,
    /// The matched text (see [`Text`]: short texts are copied into the multi-line cache and
    /// into merged failures without an allocation).
    Str(Text),
    /// A `tuple_*` combination.
    Tuple(Vec<Option<String>>),
}

/// A group's text as [`GroupValue::Str`] holds it: kept inline up to 24 bytes (addresses,
/// ports, user names, connection ids), so a match's groups and their copies in the multi-line
/// cache and in failures cost no allocation; longer texts are on the heap.
pub type Text = compact_str::CompactString;

/// A group name as [`Captures::groups`] reports it: interned by [`name`], so a match's
/// groups, their copies into the multi-line cache and into failures cost neither a copy of
/// the names nor a reference count (two atomic operations per field per copy).
pub type Name = &'static str;

/// The interned [`Name`] of `s`. Each distinct group name is kept once for the life of the
/// process. Names come from filter definitions (`failregex`, `prefregex`, `ignoreregex`,
/// including those added through the root-only control socket), so the set is small;
/// a regex dropped later leaves its names behind.
pub fn name(s: &str) -> Name {
    static NAMES: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<Name>>> =
        std::sync::OnceLock::new();
    let mut set = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(n) = set.get(s) {
        return n;
    }
    let n: Name = Box::leak(Box::<str>::from(s));
    set.insert(n);
    n
}

/// What a [`Regex`] shares with its [`Captures`].
#[derive(Debug)]
struct Shared {
    /// Name of group `i + 1`.
    names: Vec<Option<String>>,
    /// The same names shared with every [`Captures::groups`] result (no copy per match).
    keys: Vec<Option<Name>>,
    /// `(group name, target)` of `alt_*` groups, sorted.
    alt: Vec<(String, Name)>,
    /// `(group name, target)` of `tuple_*` groups, sorted.
    tuple: Vec<(String, Name)>,
    by_name: HashMap<String, usize>,
}

/// A fail2ban regex: tags expanded, Python semantics, bounded search time.
///
/// Cheap to clone: clones share one compiled regex. [`Regex::new`] also shares: the same
/// pattern with the same options, built anywhere in the process while another copy is alive,
/// yields the same compiled regex (jails that use the same filter compile it once).
/// Compilation is lazy: construction parses and checks the pattern (errors show at once), the
/// PCRE2 program (JIT) and the linear-time gate are built on first use.
#[derive(Debug, Clone)]
pub struct Regex {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    source: String,
    expanded: String,
    /// The PCRE2 pattern with the limit settings.
    pcre_src: String,
    /// Compiled on first use (the pattern was checked at construction).
    pcre: OnceLock<Pcre>,
    /// The parsed pattern, until [`Inner::derived`] is built from it.
    node: Mutex<Option<parse::Node>>,
    /// Gate and literal screens, derived from the parsed pattern on first use.
    derived: OnceLock<Derived>,
    shared: Arc<Shared>,
    /// The PCRE2 program with the budget [`QUICK_MATCH_LIMIT`] and its match data (built on
    /// first use by [`Regex::search_spans`]).
    quick: OnceLock<Pcre>,
    /// A pattern ending in a group of `.+` then `$` (fail2ban's `<F-CONTENT>.+</F-CONTENT>$`
    /// prefregexes): the PCRE2 source with that group emptied, and the group's index. See
    /// [`Regex::search_spans`].
    rest_of_line: Option<(String, usize)>,
    /// Process-unique id, the key of [`LAST_MATCH`].
    id: u64,
}

/// Reusable PCRE2 match data of one program, made on a thread's first search: creating one
/// allocates its JIT stack, far more than the search itself costs. (The owning thread's is
/// taken without a lock.)
type MatchDataPool =
    regex_automata::util::pool::Pool<Option<jit::MatchData>, fn() -> Option<jit::MatchData>>;

/// A PCRE2 program (JIT) and its pooled match data.
struct Pcre {
    program: jit::Program,
    data: MatchDataPool,
}

impl Pcre {
    /// Runs `f` with the program and match data of its own for this search.
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&jit::Program, &mut jit::MatchData) -> R) -> R {
        let mut data = self.data.get();
        let md = data.get_or_insert_with(|| self.program.match_data());
        f(&self.program, md)
    }

    /// Searches `haystack`: `Ok(true)` with the span of every group appended to `spans`,
    /// `Ok(false)` for no match, `Err` when the budget ran out (or the JIT stack).
    #[inline]
    fn spans_into(
        &self,
        haystack: &str,
        spans: &mut Vec<Option<(usize, usize)>>,
    ) -> Result<bool, i32> {
        self.with(|p, md| {
            let found = p.search(md, haystack.as_bytes());
            if found == Ok(true) {
                md.spans_into(spans);
            }
            found
        })
    }
}

/// A PCRE2 program (JIT) of a pattern checked at construction.
fn jit_program(src: &str) -> Pcre {
    Pcre {
        program: jit::Program::new(src, 1 << 20).expect("checked at construction"),
        data: MatchDataPool::new(|| None),
    }
}

impl std::fmt::Debug for Pcre {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.program.fmt(f)
    }
}

/// What the linear-time side and the literal screens need, built from the parsed pattern.
#[derive(Debug)]
struct Derived {
    gate: gate::Gate,
    literals: Option<Vec<Lit>>,
    /// Literal sets every match contains one of (checked before the gate).
    required: prefilter::Required,
}

impl Inner {
    /// The gate and literal screens (derived on first use; the syntax tree is then dropped).
    fn derived(&self) -> &Derived {
        self.derived.get_or_init(|| {
            // OnceLock runs this once; the tree is only ever taken here.
            let node = self
                .node
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
                .expect("the parsed pattern is taken once");
            let (gate_src, info) = translate::emit(&node, Target::Gate);
            let (exact_src, _) = translate::emit(&node, Target::ExactAscii);
            Derived {
                gate: gate::Gate::new(&gate_src, &exact_src, info),
                literals: prefilter::required_literals(&node),
                required: prefilter::Required::new(&node),
            }
        })
    }
}

/// Key of the process-wide table of live regexes.
type CacheKey = (String, bool, UseDns);

/// Live compiled regexes by pattern and options (weak: a regex no filter uses is freed).
static CACHE: Mutex<Option<HashMap<CacheKey, Weak<Inner>>>> = Mutex::new(None);

fn pcre_builder() -> pcre2::bytes::RegexBuilder {
    let mut b = pcre2::bytes::RegexBuilder::new();
    b.utf(true).ucp(true);
    b
}

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

thread_local! {
    /// `(regex id, haystack)` of this thread's last successful [`Regex::is_match`].
    /// A caller that asks `is_match` and then `search` on the same text (the
    /// filter does, for every matching line) skips the second gate run. The gate
    /// never changes a result (it only rejects haystacks the pattern cannot
    /// match), so this only saves time.
    static LAST_MATCH: std::cell::RefCell<(u64, String)> =
        const { std::cell::RefCell::new((u64::MAX, String::new())) };
}

/// A successful search: the match span and the groups.
#[derive(Debug, Clone)]
pub struct Captures<'h> {
    haystack: &'h str,
    /// Span of group `i` (0 = whole match): the caller's when it searched with
    /// [`Regex::search_spans`] (no copy), else the search's.
    spans: std::borrow::Cow<'h, [Option<(usize, usize)>]>,
    shared: Arc<Shared>,
}

impl Regex {
    /// `pattern` as written in a filter (tags unexpanded). Expands `<HOST> <ADDR> <IP4> <IP6> <DNS> <CIDR>
    /// <SUBNET> <F-ID> <F-PORT> <F-*>…</F-*> <SKIPLINES>` like fail2ban, maps global flags to local ones,
    /// translates the Python `re` dialect to PCRE2 and builds a linear-time gate.
    pub fn new(pattern: &str, opts: &RegexOptions) -> Result<Regex, RegexError> {
        let key: CacheKey = (pattern.to_string(), opts.multiline, opts.use_dns);
        if let Ok(cache) = CACHE.lock()
            && let Some(inner) = cache
                .as_ref()
                .and_then(|c| c.get(&key))
                .and_then(Weak::upgrade)
        {
            return Ok(Regex { inner });
        }
        let inner = Arc::new(Regex::build(pattern, opts)?);
        if let Ok(mut cache) = CACHE.lock() {
            let map = cache.get_or_insert_with(HashMap::new);
            if map.len() >= 64 && map.len().is_power_of_two() {
                map.retain(|_, w| w.strong_count() > 0);
            }
            map.insert(key, Arc::downgrade(&inner));
        }
        Ok(Regex { inner })
    }

    fn build(pattern: &str, opts: &RegexOptions) -> Result<Inner, RegexError> {
        let expanded = tags::expand_tags(pattern, opts.use_dns);
        if expanded.trim_start().is_empty() {
            return Err(RegexError::Empty {
                pattern: pattern.to_string(),
            });
        }
        let expanded = tags::map_global_flags(&expanded);
        let base = Flags {
            multiline: opts.multiline,
            ..Flags::default()
        };
        let Parsed { node, names } = parse::parse(&expanded, base).map_err(|e| {
            if e.unsupported {
                RegexError::Unsupported {
                    pattern: expanded.clone(),
                    offset: e.offset,
                    message: e.message,
                }
            } else {
                RegexError::Syntax {
                    pattern: expanded.clone(),
                    offset: e.offset,
                    message: e.message,
                }
            }
        })?;
        let (pcre_src, _) = translate::emit(&node, Target::Pcre2);
        let rest_of_line = rest_of_line(&node)
            .map(|(short, index)| (translate::emit(&short, Target::Pcre2).0, index));
        let limited = format!("(*LIMIT_MATCH={MATCH_LIMIT})(*LIMIT_DEPTH={MATCH_LIMIT}){pcre_src}");
        // Checked now (without JIT: a fraction of the cost), compiled with JIT on first use.
        pcre_builder()
            .build(&limited)
            .map_err(|e| RegexError::Engine {
                pattern: expanded.clone(),
                translated: pcre_src.clone(),
                message: e.to_string(),
            })?;

        let mut by_name = HashMap::new();
        let mut alt = Vec::new();
        let mut tuple = Vec::new();
        for (i, n) in names.iter().enumerate() {
            if let Some(n) = n {
                by_name.insert(n.clone(), i + 1);
                if let Some((is_alt, target)) = tags::complex_name(n) {
                    if is_alt {
                        alt.push((n.clone(), target));
                    } else {
                        tuple.push((n.clone(), target));
                    }
                }
            }
        }
        alt.sort();
        tuple.sort();
        let alt = alt.into_iter().map(|(n, t)| (n, name(&t))).collect();
        let tuple = tuple.into_iter().map(|(n, t)| (n, name(&t))).collect();
        let keys = names.iter().map(|n| n.as_deref().map(name)).collect();
        Ok(Inner {
            source: pattern.to_string(),
            expanded,
            pcre_src: limited,
            pcre: OnceLock::new(),
            node: Mutex::new(Some(node)),
            derived: OnceLock::new(),
            quick: OnceLock::new(),
            rest_of_line,
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            shared: Arc::new(Shared {
                names,
                keys,
                alt,
                tuple,
                by_name,
            }),
        })
    }

    /// The PCRE2 program (compiled with JIT on first use).
    fn pcre(&self) -> &Pcre {
        self.inner
            .pcre
            .get_or_init(|| jit_program(&self.inner.pcre_src))
    }

    /// The pattern as given.
    pub fn source(&self) -> &str {
        &self.inner.source
    }

    /// The pattern after tag expansion and flag mapping, in Python's dialect
    /// (the counterpart of fail2ban's `getRegex()`).
    pub fn expanded(&self) -> &str {
        &self.inner.expanded
    }

    /// The PCRE2 pattern the search runs (without the limit settings).
    pub fn translated(&self) -> String {
        let s = self.inner.pcre_src.as_str();
        let prefix = format!("(*LIMIT_MATCH={MATCH_LIMIT})(*LIMIT_DEPTH={MATCH_LIMIT})");
        s.strip_prefix(&prefix).unwrap_or(s).to_string()
    }

    /// Whether the pattern has a named group `name`.
    pub fn has_group(&self, name: &str) -> bool {
        self.inner.shared.by_name.contains_key(name)
    }

    /// The regex has `alt_*` or `tuple_*` groups (their values are merged into other names).
    pub fn has_combined_groups(&self) -> bool {
        !self.inner.shared.alt.is_empty() || !self.inner.shared.tuple.is_empty()
    }

    /// Names of the named groups, in group order.
    pub fn group_names(&self) -> impl Iterator<Item = &str> {
        self.inner.shared.names.iter().filter_map(|n| n.as_deref())
    }

    /// Whether a linear-time gate guards this regex.
    pub fn has_gate(&self) -> bool {
        self.inner.derived().gate.has_gate()
    }

    /// Runs this regex's gate alone on `haystack` and reports what its lazy DFA did (counted
    /// by `regex-automata` itself, on a cache of its own): a diagnostic of the gate's linear
    /// time. `None` when no gate could be built.
    pub fn gate_scan(&self, haystack: &str) -> Option<GateScan> {
        self.inner.derived().gate.scan(haystack)
    }

    pub(crate) fn required_literals(&self) -> Option<&[Lit]> {
        self.inner.derived().literals.as_deref()
    }

    /// Python `re.search(haystack)` semantics (haystack is lines joined with '\n' plus a trailing '\n').
    pub fn search<'h>(&self, haystack: &'h str) -> Option<Captures<'h>> {
        let gated = self.just_matched(haystack)
            || (self.inner.derived().required.may_match(haystack)
                && self.inner.derived().gate.may_match(haystack));
        if !gated {
            return None;
        }
        let spans = self.spans(haystack)?;
        Some(Captures {
            haystack,
            spans: spans.into(),
            shared: Arc::clone(&self.inner.shared),
        })
    }

    /// Whether [`Regex::search`] would find a match.
    pub fn is_match(&self, haystack: &str) -> bool {
        let m = self.is_match_inner(haystack);
        if m {
            let _ = LAST_MATCH.try_with(|l| {
                if let Ok(mut l) = l.try_borrow_mut() {
                    l.0 = self.inner.id;
                    l.1.clear();
                    l.1.push_str(haystack);
                }
            });
        }
        m
    }

    /// Whether the last successful `is_match` on this thread was this regex on `haystack`.
    fn just_matched(&self, haystack: &str) -> bool {
        LAST_MATCH
            .try_with(|l| {
                l.try_borrow()
                    .is_ok_and(|l| l.0 == self.inner.id && l.1 == haystack)
            })
            .unwrap_or(false)
    }

    fn is_match_inner(&self, haystack: &str) -> bool {
        let d = self.inner.derived();
        if !d.required.may_match(haystack) {
            return false;
        }
        let gate = d.gate.check(haystack);
        if gate == Some(false) {
            return false;
        }
        if gate == Some(true) && d.gate.gate_is_exact_for(haystack) {
            // The gate that just matched is the exact translation (Python semantics,
            // linear time): no need to ask the backtracker.
            return true;
        }
        if haystack.len() > LONG_HAYSTACK
            && let Some(exact) = self.inner.derived().gate.exact_for(haystack)
        {
            return exact.is_match(haystack);
        }
        match self.pcre().with(|p, md| p.search(md, haystack.as_bytes())) {
            Ok(m) => m,
            Err(_) => self
                .inner
                .derived()
                .gate
                .exact_for(haystack)
                .is_some_and(|r| r.is_match(haystack)),
        }
    }

    /// Runs only the linear-time exact translation (the path taken for long
    /// haystacks and after an exhausted backtracking budget). `None` when that
    /// translation is not exact for this pattern and haystack. For tests that
    /// prove every internal path agrees.
    #[doc(hidden)]
    pub fn search_linear<'h>(&self, haystack: &'h str) -> Option<Option<Captures<'h>>> {
        let exact = self.inner.derived().gate.exact_for(haystack)?;
        Some(linear_spans(exact, haystack).map(|spans| Captures {
            haystack,
            spans: spans.into(),
            shared: Arc::clone(&self.inner.shared),
        }))
    }

    /// Index of named group `name` (for [`Regex::search_spans`]).
    pub fn group_index(&self, name: &str) -> Option<usize> {
        self.inner.shared.by_name.get(name).copied()
    }

    /// [`Regex::search`] into a reused buffer: on a match `spans[i]` is the span of group `i`
    /// (0 = whole match) and the result is `true`. Allocates nothing once `spans` has grown.
    ///
    /// A short haystack is first searched by PCRE2 alone with a small backtracking budget
    /// ([`QUICK_MATCH_LIMIT`]): a search that completes is the exact answer (the same
    /// backtracking order as the full budget's), and the gate, a superset, could only have
    /// rejected a haystack that search rejects too. One that runs out of budget (a hostile
    /// line) is searched again behind the gate, as before: the gate's linear-time protection
    /// costs at most that small budget more.
    pub fn search_spans(&self, haystack: &str, spans: &mut Vec<Option<(usize, usize)>>) -> bool {
        spans.clear();
        if haystack.len() <= LONG_HAYSTACK {
            let quick = self.inner.quick.get_or_init(|| {
                let pattern = match &self.inner.rest_of_line {
                    Some((short, _)) => short.clone(),
                    None => self.translated(),
                };
                let src = format!(
                    "(*LIMIT_MATCH={QUICK_MATCH_LIMIT})(*LIMIT_DEPTH={QUICK_MATCH_LIMIT}){pattern}"
                );
                jit_program(&src)
            });
            match quick.spans_into(haystack, spans) {
                Ok(true) => {
                    let Some((_, index)) = &self.inner.rest_of_line else {
                        return true;
                    };
                    // The emptied group sits where the `.+` would start: the whole pattern
                    // matches there, with the same groups, iff the rest of the line is one
                    // non-empty run without `\n` up to the end or a final `\n`.
                    let at = spans[*index].map_or(haystack.len(), |(s, _)| s);
                    let end = match memchr::memchr(b'\n', &haystack.as_bytes()[at..]) {
                        None => Some(haystack.len()),
                        Some(k) if at + k + 1 == haystack.len() => Some(at + k),
                        Some(_) => None,
                    };
                    if let Some(end) = end.filter(|&end| end > at) {
                        spans[*index] = Some((at, end));
                        if let Some((s, _)) = spans[0] {
                            spans[0] = Some((s, end));
                        }
                        return true;
                    }
                    // Another way through the pattern may still match: the full search.
                    spans.clear();
                }
                // No way through the emptied pattern: none through the whole one either.
                Ok(false) => return false,
                Err(_) => {}
            }
        }
        let gated = self.just_matched(haystack)
            || (self.inner.derived().required.may_match(haystack)
                && self.inner.derived().gate.may_match(haystack));
        if !gated {
            return false;
        }
        self.spans_into(haystack, spans)
    }

    /// The search of [`Regex::search_spans`] after its gate (the caller knows the gate
    /// matches `haystack`): `spans` is empty on entry.
    fn spans_into(&self, haystack: &str, spans: &mut Vec<Option<(usize, usize)>>) -> bool {
        // (an exhausted budget appends nothing)
        if haystack.len() <= LONG_HAYSTACK
            && let Ok(found) = self.pcre().spans_into(haystack, spans)
        {
            return found;
        }
        match self.spans(haystack) {
            Some(v) => {
                spans.extend(v);
                true
            }
            None => false,
        }
    }

    /// The [`Captures`] of a match found by [`Regex::search_spans`] on the same `haystack`
    /// (they borrow `spans`, no copy).
    pub fn captures_from_spans<'h>(
        &self,
        haystack: &'h str,
        spans: &'h [Option<(usize, usize)>],
    ) -> Captures<'h> {
        Captures {
            haystack,
            spans: std::borrow::Cow::Borrowed(spans),
            shared: Arc::clone(&self.inner.shared),
        }
    }

    fn captures_owned<'h>(
        &self,
        haystack: &'h str,
        spans: Vec<Option<(usize, usize)>>,
    ) -> Captures<'h> {
        Captures {
            haystack,
            spans: spans.into(),
            shared: Arc::clone(&self.inner.shared),
        }
    }

    fn spans(&self, haystack: &str) -> Option<Vec<Option<(usize, usize)>>> {
        if haystack.len() > LONG_HAYSTACK
            && let Some(exact) = self.inner.derived().gate.exact_for(haystack)
        {
            return linear_spans(exact, haystack);
        }
        let mut spans = Vec::new();
        match self.pcre().spans_into(haystack, &mut spans) {
            Ok(true) => Some(spans),
            Ok(false) => None,
            // Budget exhausted (match limit, JIT stack): linear time if exact, else no match.
            Err(_) => linear_spans(self.inner.derived().gate.exact_for(haystack)?, haystack),
        }
    }
}

/// For a pattern that ends, at its top level, in a group of a greedy `.+` (without DOTALL)
/// then a `$` without MULTILINE: the pattern with that group emptied (`(?P<content>)` in place
/// of `(?P<content>.+)$`), and the group's index.
///
/// The emptied pattern's first match ends its way through the rest of the pattern where the
/// `.+` would start; the whole pattern's search follows the same backtracking order, so when
/// the `.+` and `$` succeed there (the rest of the line is one non-empty run without a
/// newline up to the end or a final newline) its first match is that one, with the same
/// groups, and the `.+` took the whole run. When they fail there, the whole pattern is
/// searched. The `.+` is then never run by the backtracker (it was most of the cost of a
/// typical prefregex: one step per character of the line).
fn rest_of_line(node: &parse::Node) -> Option<(parse::Node, usize)> {
    use parse::{Assertion, Greed, Node};
    let Node::Concat(items) = node else {
        return None;
    };
    let [.., group, Node::Assert(Assertion::EndTextOrFinalNewline)] = items.as_slice() else {
        return None;
    };
    let Node::Group {
        index,
        name,
        node: inner,
    } = group
    else {
        return None;
    };
    let Node::Repeat {
        node: any,
        min: 1,
        max: None,
        greed: Greed::Greedy,
    } = inner.as_ref()
    else {
        return None;
    };
    if !matches!(any.as_ref(), Node::Any { dotall: false }) {
        return None;
    }
    let mut short = items[..items.len() - 2].to_vec();
    short.push(Node::Group {
        index: *index,
        name: name.clone(),
        node: Box::new(Node::Empty),
    });
    Some((Node::Concat(short), usize::try_from(*index).ok()?))
}

fn linear_spans(re: &regex::Regex, haystack: &str) -> Option<Vec<Option<(usize, usize)>>> {
    let caps = re.captures(haystack)?;
    Some(
        (0..caps.len())
            .map(|i| caps.get(i).map(|m| (m.start(), m.end())))
            .collect(),
    )
}

impl<'h> Captures<'h> {
    /// Start of the match (byte offset).
    pub fn start(&self) -> usize {
        self.spans.first().copied().flatten().map_or(0, |s| s.0)
    }

    /// End of the match (byte offset).
    pub fn end(&self) -> usize {
        self.spans.first().copied().flatten().map_or(0, |s| s.1)
    }

    /// The matched text.
    pub fn as_str(&self) -> &'h str {
        &self.haystack[self.start()..self.end()]
    }

    /// The haystack searched.
    pub fn haystack(&self) -> &'h str {
        self.haystack
    }

    /// Text of group number `index` (0 = whole match).
    pub fn get(&self, index: usize) -> Option<&'h str> {
        let (s, e) = self.spans.get(index).copied().flatten()?;
        self.haystack.get(s..e)
    }

    /// Span of named group `name`.
    pub fn span(&self, name: &str) -> Option<(usize, usize)> {
        let &i = self.shared.by_name.get(name)?;
        self.spans.get(i).copied().flatten()
    }

    /// None if absent or not participating.
    pub fn name(&self, name: &str) -> Option<&'h str> {
        let &i = self.shared.by_name.get(name)?;
        self.get(i)
    }

    /// Python's `groupdict()`: every named group in group order.
    pub fn groupdict(&self) -> Vec<(String, Option<&'h str>)> {
        self.shared
            .names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_ref().map(|n| (n.clone(), self.get(i + 1))))
            .collect()
    }

    /// fail2ban's getGroups(): every named group (None when not participating), with `alt_*` merged
    /// and `tuple_*` combined. Keys are group names (e.g. "ip4", "fid", "user", "skiplines0").
    pub fn groups(&self) -> Vec<(Name, GroupValue)> {
        let mut out: Vec<(Name, GroupValue)> = Vec::with_capacity(
            self.shared.keys.len() + self.shared.alt.len() + self.shared.tuple.len(),
        );
        self.fill_groups(None, &mut out);
        out
    }

    /// [`Captures::groups`] into `out` (cleared first): a reused vector costs no allocation
    /// for the list itself.
    pub fn groups_into(&self, out: &mut Vec<(Name, GroupValue)>) {
        self.groups_except_into(None, out);
    }

    /// [`Captures::groups`] into `out` (cleared first, like [`Captures::groups_into`]) without
    /// plain group number `skip` (the caller reads its text with [`Captures::get`] instead of
    /// paying for a copy). Only for a regex without `alt_*` or `tuple_*` groups
    /// ([`Regex::has_combined_groups`]), which could also write that name.
    pub fn groups_except_into(&self, skip: Option<usize>, out: &mut Vec<(Name, GroupValue)>) {
        out.clear();
        self.fill_groups(skip, out);
    }

    /// The body of [`Captures::groups_except_into`], into an empty `out`.
    fn fill_groups(&self, skip: Option<usize>, out: &mut Vec<(Name, GroupValue)>) {
        for (i, n) in self.shared.keys.iter().enumerate() {
            if skip == Some(i + 1) {
                continue;
            }
            if let Some(n) = n {
                let v = self
                    .get(i + 1)
                    .map_or(GroupValue::None, |s| GroupValue::Str(Text::from(s)));
                out.push((*n, v));
            }
        }
        fn slot(out: &[(Name, GroupValue)], name: &str) -> Option<usize> {
            out.iter().position(|(n, _)| *n == name)
        }
        let truthy = |v: &GroupValue| match v {
            GroupValue::None => false,
            GroupValue::Str(s) => !s.is_empty(),
            GroupValue::Tuple(t) => !t.is_empty(),
        };
        for (k, n) in &self.shared.alt {
            let v = self.name(k).unwrap_or("");
            if v.is_empty() {
                continue;
            }
            match slot(out, n) {
                Some(i) if truthy(&out[i].1) => {}
                Some(i) => out[i].1 = GroupValue::Str(Text::from(v)),
                None => out.push((*n, GroupValue::Str(Text::from(v)))),
            }
        }
        for (k, n) in &self.shared.tuple {
            let v = self.name(k).map(str::to_string);
            match slot(out, n) {
                Some(i) => {
                    let new = match std::mem::replace(&mut out[i].1, GroupValue::None) {
                        GroupValue::Tuple(mut t) => {
                            t.push(v);
                            t
                        }
                        GroupValue::None => vec![None, v],
                        GroupValue::Str(s) => vec![Some(s.to_string()), v],
                    };
                    out[i].1 = GroupValue::Tuple(new);
                }
                None => out.push((*n, GroupValue::Tuple(vec![None, v]))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(p: &str) -> Regex {
        Regex::new(p, &RegexOptions::default()).unwrap()
    }

    #[test]
    fn regex_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Regex>();
        assert_send_sync::<Prefilter>();
    }

    #[test]
    fn host_search_and_groups() {
        let r = re("^Failed password for <F-USER>\\S+</F-USER> from <HOST> port \\d+$");
        let h = "Failed password for root from 192.168.1.2 port 22\n";
        let c = r.search(h).unwrap();
        assert_eq!(c.name("ip4"), Some("192.168.1.2"));
        assert_eq!(c.name("user"), Some("root"));
        assert_eq!(c.name("ip6"), None);
        assert_eq!((c.start(), c.end()), (0, h.len() - 1));
        assert!(r.has_group("dns"));
    }

    #[test]
    fn dollar_matches_before_final_newline_and_at_end() {
        let r = re(r"x\s*$");
        let c = r.search("ax \n").unwrap();
        assert_eq!((c.start(), c.end()), (1, 4));
    }

    #[test]
    fn multiline_caret_matches_after_final_newline() {
        let r = Regex::new(
            "(?P<e>^)$",
            &RegexOptions {
                multiline: true,
                ..Default::default()
            },
        )
        .unwrap();
        let c = r.search("a\n").unwrap();
        assert_eq!(c.start(), 2);
    }

    #[test]
    fn alt_and_tuple_groups() {
        let r = re(
            "(?:u=(?P<alt_user_1>\\w+)|n=(?P<alt_user_2>\\w+)) <F-ID>\\w+</F-ID> (?P<tuple_id_1>\\w+)",
        );
        let g = r.search("n=bob id1 t1\n").unwrap().groups();
        assert!(g.contains(&("user", GroupValue::Str("bob".into()))));
        assert!(g.contains(&(
            "fid",
            GroupValue::Tuple(vec![Some("id1".into()), Some("t1".into())])
        )));
        assert!(g.contains(&("alt_user_1", GroupValue::None)));
    }

    #[test]
    fn errors_name_the_pattern() {
        let e = Regex::new("a(b", &RegexOptions::default()).unwrap_err();
        assert!(e.to_string().contains("a(b"), "{e}");
        assert!(matches!(
            Regex::new("  ", &RegexOptions::default()),
            Err(RegexError::Empty { .. })
        ));
    }

    #[test]
    fn python_unicode_classes() {
        assert!(re(r"^\w$").is_match("é\n"));
        assert!(!re(r"^\w$").is_match("\u{301}\n")); // combining mark: not a word char in Python
        assert!(re(r"^\s$").is_match("\u{1c}\n"));
        assert!(re(r"(?i)^I$").is_match("\u{130}\n"));
        assert!(re(r"^x\b").is_match("x\u{301}\n"));
    }

    #[test]
    fn exhausted_backtracking_budget_falls_back_to_the_linear_engine() {
        // The first branch is exponential for a backtracker; the second matches.
        let r = re(r"^(?:a|aa)*c|^.*b");
        let h = format!("{}b\n", "a".repeat(60));
        let t = std::time::Instant::now();
        let c = r.search(&h).unwrap();
        assert_eq!((c.start(), c.end()), (0, 61));
        assert!(r.is_match(&h));
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn search_spans_agrees_with_search_past_the_quick_budget() {
        // The first branch exhausts the quick budget on runs of `a`: the gate decides then.
        let r = re(r"^(?:a|aa)*c|^.*b");
        let mut spans = Vec::new();
        for h in [
            format!("{}b\n", "a".repeat(60)),
            format!("{}\n", "a".repeat(60)),
            format!("{}c\n", "a".repeat(60)),
            "xb\n".to_string(),
            "x\n".to_string(),
        ] {
            let found = r.search_spans(&h, &mut spans);
            let expected = r.search(&h);
            assert_eq!(found, expected.is_some(), "{h}");
            if let Some(c) = expected {
                assert_eq!(spans[0], Some((c.start(), c.end())), "{h}");
            }
        }
    }

    #[test]
    fn exhausted_budget_without_exact_translation_fails_closed() {
        // A look-ahead leaves no exact linear translation: documented as "no match".
        let r = re(r"^(?:a|aa)*c|^(?=a).*b");
        let h = format!("{}b\n", "a".repeat(60));
        assert!(r.search(&h).is_none());
        assert!(r.search("aab\n").is_some());
    }

    #[test]
    fn long_haystacks_use_the_linear_engine_with_same_result() {
        let r = re(r"^(?:\s*\S+)*\s*<F-ID>end</F-ID>$");
        let mut h = " a".repeat(5000);
        h.push_str(" end\n");
        let c = r.search(&h).unwrap();
        assert_eq!(c.name("fid"), Some("end"));
        let mut h = " a".repeat(5000);
        h.push_str(" nope\n");
        assert!(r.search(&h).is_none());
    }
}
