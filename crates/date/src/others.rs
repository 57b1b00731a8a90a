//! "Can any of these templates match this line at all?", asked cheaply.
//!
//! When the date moved, fail2ban searches every template of the list. Nearly always none of
//! the others matches, and proving that is most of the cost of a line. [`Others`] answers the
//! question conservatively: `false` means that no pattern of the group matches anywhere in
//! the line, `true` only that one might (the caller then lists the exact matches). A loose
//! answer costs time, never a different result.
//!
//! The patterns are sorted into three groups:
//!
//! * **start**: anchored at the line start; their exact forms run as one anchored lazy
//!   DFA, which stops after a few bytes on a line that does not begin with a date;
//! * **colon**: every match contains a `:` between two ASCII digits (`HH:MM`). Each is
//!   replaced by a contiguous run of its top-level sequence around that colon (every match
//!   of the pattern contains a match of the run, so the run is a sound stand-in), whose
//!   match lies within `before` bytes before and `after` bytes after the colon. The run
//!   set is searched only in windows `[c - before, c + 1 + after]` around the line's
//!   digit-colon-digit positions `c` (look-around still sees the whole line: regex-automata's
//!   `Input::range`);
//! * **rest**: the others, cut to a length-bounded run the same way and grouped by the
//!   literal prefix every match starts with: memmem finds the candidates in the whole line and
//!   an anchored lazy DFA checks each.
//!
//! A pattern whose top level is an alternation is split into its branches first.

use std::sync::Arc;

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::{Anchored, Input, MatchKind, meta};
use regex_syntax::hir::{Hir, HirKind, Look};

use crate::memo::Memo;

/// One compiled group of patterns. A clone shares the compiled parts and starts with a fresh
/// search cache.
#[derive(Debug)]
enum Engine {
    /// A lazy DFA with its own cache: no pool, no strategy dispatch (the windows are short).
    Lazy(Arc<DFA>, Box<Cache>),
    /// Every match starts with the `finder`'s needle: memmem finds the candidates, the bytes
    /// after the needle are checked against `lead` and an anchored lazy DFA checks each
    /// candidate that passes.
    Led {
        finder: Arc<memchr::memmem::Finder<'static>>,
        /// The bytes every match can have at each offset from `skip` on (the needle's
        /// length) from its start, for as many leading bytes as every match has so known
        /// (see [`lead_classes`]).
        lead: Arc<[ByteSet]>,
        skip: usize,
        dfa: Arc<DFA>,
        cache: Box<Cache>,
    },
    /// regex-automata's meta regex, which picks a literal prefilter for whole-line scans.
    Meta(meta::Regex),
}

impl Clone for Engine {
    fn clone(&self) -> Engine {
        match self {
            Engine::Lazy(dfa, _) => Engine::Lazy(Arc::clone(dfa), Box::new(dfa.create_cache())),
            Engine::Led {
                finder,
                lead,
                skip,
                dfa,
                ..
            } => Engine::Led {
                finder: Arc::clone(finder),
                lead: Arc::clone(lead),
                skip: *skip,
                dfa: Arc::clone(dfa),
                cache: Box::new(dfa.create_cache()),
            },
            Engine::Meta(re) => Engine::Meta(re.clone()),
        }
    }
}

impl Engine {
    /// A lazy DFA for `hirs` (the meta regex when the DFA cannot be built).
    fn lazy(hirs: &[Hir]) -> Option<Engine> {
        match lazy_dfa(hirs) {
            Some(dfa) => {
                let cache = dfa.create_cache();
                Some(Engine::Lazy(Arc::new(dfa), Box::new(cache)))
            }
            None => Engine::meta(hirs),
        }
    }

    /// A literal-led engine for `hirs`, whose matches all start with `prefix`.
    fn led(hirs: &[Hir], prefix: &[u8]) -> Option<Engine> {
        let dfa = lazy_dfa(hirs)?;
        let cache = dfa.create_cache();
        // per offset, the bytes any of the patterns can have there, as far as all have them
        let leads: Vec<Vec<ByteSet>> = hirs.iter().map(|h| lead_classes(h).0).collect();
        let n = leads.iter().map(Vec::len).min().unwrap_or(0);
        let lead: Vec<ByteSet> = (prefix.len().min(n)..n)
            .map(|k| {
                let mut set = ByteSet::EMPTY;
                leads.iter().for_each(|l| set.add_all(&l[k]));
                set
            })
            .collect();
        Some(Engine::Led {
            skip: prefix.len().min(n),
            lead: lead.into(),
            finder: Arc::new(memchr::memmem::Finder::new(prefix).into_owned()),
            dfa: Arc::new(dfa),
            cache: Box::new(cache),
        })
    }

    fn meta(hirs: &[Hir]) -> Option<Engine> {
        meta::Regex::builder()
            .configure(meta::Config::new().which_captures(WhichCaptures::None))
            .build_many_from_hir(hirs)
            .ok()
            .map(Engine::Meta)
    }

    fn is_match(&mut self, input: Input<'_>) -> bool {
        match self {
            // A search the cache gave up on answers "maybe".
            Engine::Lazy(dfa, cache) => dfa
                .try_search_fwd(cache, &input.earliest(true))
                .map_or(true, |m| m.is_some()),
            Engine::Led {
                finder,
                lead,
                skip,
                dfa,
                cache,
            } => {
                let hay = input.haystack();
                let (start, end) = (input.start(), input.end());
                // every occurrence of the needle (`find` from the next byte: no iterator,
                // which copies the searcher)
                let mut from = start;
                while let Some(off) = hay.get(from..end).and_then(|h| finder.find(h)) {
                    let p = from + off;
                    from = p + 1;
                    // a match at `p` has these bytes before `end`
                    let fits = lead.iter().enumerate().all(|(k, set)| {
                        let q = p + *skip + k;
                        q < end && set.has(hay[q])
                    });
                    if !fits {
                        continue;
                    }
                    let anchored = input.clone().range(p..end).anchored(Anchored::Yes);
                    if dfa
                        .try_search_fwd(cache, &anchored.earliest(true))
                        .map_or(true, |m| m.is_some())
                    {
                        return true;
                    }
                }
                false
            }
            Engine::Meta(re) => re.is_match(input),
        }
    }
}

/// The bytes every match of `hir` starts with (empty when there are none or they are unknown).
fn prefix(hir: &Hir) -> Vec<u8> {
    let seq = regex_syntax::hir::literal::Extractor::new().extract(hir);
    let Some(lits) = seq.literals() else {
        return Vec::new();
    };
    let Some(first) = lits.first().map(|l| l.as_bytes()) else {
        return Vec::new();
    };
    let n = (0..first.len())
        .take_while(|&k| lits.iter().all(|l| l.as_bytes().get(k) == first.get(k)))
        .count();
    first[..n].to_vec()
}

/// A set of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteSet([u64; 4]);

impl ByteSet {
    const EMPTY: ByteSet = ByteSet([0; 4]);

    fn one(b: u8) -> ByteSet {
        let mut s = ByteSet::EMPTY;
        s.add(b);
        s
    }

    fn add(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1 << (b & 63);
    }

    fn add_all(&mut self, other: &ByteSet) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
    }

    #[inline]
    fn has(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }
}

/// Per offset from the start of a match of `hir`, the bytes it can have there, for the
/// leading bytes every match has so known; and whether that is all of every match (then
/// every match is exactly that long). Without Unicode: a class is one byte.
pub(crate) fn lead_classes(hir: &Hir) -> (Vec<ByteSet>, bool) {
    use regex_syntax::hir::Class;
    const MAX: usize = 64;
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => (Vec::new(), true),
        HirKind::Literal(lit) => (lit.0.iter().map(|&b| ByteSet::one(b)).collect(), true),
        HirKind::Class(Class::Bytes(c)) => {
            let mut set = ByteSet::EMPTY;
            for r in c.ranges() {
                (r.start()..=r.end()).for_each(|b| set.add(b));
            }
            (vec![set], true)
        }
        HirKind::Class(Class::Unicode(c)) => {
            let mut set = ByteSet::EMPTY;
            for r in c.ranges() {
                let (Ok(a), Ok(b)) = (u8::try_from(r.start()), u8::try_from(r.end())) else {
                    return (Vec::new(), false);
                };
                if !b.is_ascii() {
                    return (Vec::new(), false);
                }
                (a..=b).for_each(|x| set.add(x));
            }
            (vec![set], true)
        }
        HirKind::Capture(c) => lead_classes(&c.sub),
        HirKind::Repetition(r) => {
            let (sub, whole) = lead_classes(&r.sub);
            let min = usize::try_from(r.min).unwrap_or(usize::MAX);
            if whole && sub.len().saturating_mul(min) <= MAX {
                let all = sub.iter().copied().cycle().take(sub.len() * min).collect();
                (all, r.max == Some(r.min))
            } else if min >= 1 {
                (sub, false)
            } else {
                (Vec::new(), false)
            }
        }
        HirKind::Concat(hs) => {
            let mut out = Vec::new();
            for h in hs {
                let (c, whole) = lead_classes(h);
                out.extend(c);
                if !whole || out.len() > MAX {
                    return (out, false);
                }
            }
            (out, true)
        }
        HirKind::Alternation(hs) => {
            let parts: Vec<(Vec<ByteSet>, bool)> = hs.iter().map(lead_classes).collect();
            let n = parts.iter().map(|(c, _)| c.len()).min().unwrap_or(0);
            let mut out = vec![ByteSet::EMPTY; n];
            for (c, _) in &parts {
                for (o, set) in out.iter_mut().zip(c) {
                    o.add_all(set);
                }
            }
            let whole = !parts.is_empty() && parts.iter().all(|(c, w)| *w && c.len() == n);
            (out, whole)
        }
    }
}

/// The branches of a top-level alternation (capture groups around it unwrapped), or `hir`.
fn branches(hir: &Hir) -> Vec<Hir> {
    match hir.kind() {
        HirKind::Capture(c) => branches(&c.sub),
        HirKind::Alternation(hs) => hs.clone(),
        _ => vec![hir.clone()],
    }
}

/// A lazy DFA for `hirs` (all patterns; no captures).
fn lazy_dfa(hirs: &[Hir]) -> Option<DFA> {
    let nfa = thompson::Compiler::new()
        .configure(
            thompson::Config::new()
                .which_captures(WhichCaptures::None)
                .utf8(false),
        )
        .build_many_from_hir(hirs)
        .ok()?;
    DFA::builder()
        .configure(DFA::config().match_kind(MatchKind::All))
        .build_from_nfa(nfa)
        .ok()
}

/// "Can any of these ASCII patterns match?" See the module docs.
#[derive(Debug, Clone)]
pub(crate) struct Others {
    start: Option<Engine>,
    /// The runs around a colon, and the largest `before` / `after` of the group.
    colon: Option<(Engine, usize, usize)>,
    /// One engine per common literal prefix, and one for the patterns without a prefix.
    rest: Vec<Engine>,
    /// The colon group's last answers, by window.
    seen: Seen,
}

/// The last answers of a group for windows of lines (see [`Seen::answer`]).
#[derive(Debug, Clone, Default)]
struct Seen {
    windows: Vec<Window>,
    /// The entry replaced next once the list is full.
    next: usize,
    /// The entry that answered or was written last (asked first).
    last: usize,
}

#[derive(Debug, Clone)]
struct Window {
    /// The window's bytes with the byte before and the byte after it (when there are).
    bytes: Vec<u8>,
    /// The window starts at the haystack's start / ends at its end.
    edges: (bool, bool),
    answer: bool,
}

impl Seen {
    /// Remembered windows.
    const SIZE: usize = 4;

    /// `engine`'s answer for `hay[s..t]`, from the remembered windows when one held the same
    /// bytes. A search in a range of the haystack reads the range, the byte before it (or
    /// finds the haystack's start) and the byte after it (or finds the end), nothing else:
    /// the same bytes there give the same answer. Log lines repeat the text around their
    /// date from line to line.
    fn answer(&mut self, engine: &mut Engine, hay: &[u8], s: usize, t: usize) -> bool {
        let bytes = &hay[s.saturating_sub(1)..(t + 1).min(hay.len())];
        let edges = (s == 0, t == hay.len());
        let same = |w: &Window| w.edges == edges && w.bytes == bytes;
        if let Some(w) = self.windows.get(self.last).filter(|w| same(w)) {
            return w.answer;
        }
        if let Some(k) = self.windows.iter().position(same) {
            self.last = k;
            return self.windows[k].answer;
        }
        let answer = engine.is_match(Input::new(hay).range(s..t));
        if self.windows.len() < Self::SIZE {
            self.last = self.windows.len();
            self.windows.push(Window {
                bytes: bytes.to_vec(),
                edges,
                answer,
            });
        } else {
            self.last = self.next;
            let w = &mut self.windows[self.next];
            w.bytes.clear();
            w.bytes.extend_from_slice(bytes);
            (w.edges, w.answer) = (edges, answer);
            self.next = (self.next + 1) % Self::SIZE;
        }
        answer
    }
}

impl Others {
    /// The groups of `sources` (regex sources without Unicode classes), compiled once per
    /// process. `None` when a source does not parse or a group does not compile.
    pub(crate) fn build(sources: &[&String]) -> Option<Others> {
        static MEMO: Memo<Option<Others>> = Memo::new();
        let key: Vec<String> = sources.iter().map(|s| (*s).clone()).collect();
        MEMO.get(&key, || Others::compile(sources))
    }

    fn compile(sources: &[&String]) -> Option<Others> {
        let syntax = regex_automata::util::syntax::Config::new()
            .unicode(false)
            .utf8(false);
        let mut start = Vec::new();
        let mut colon = Vec::new();
        let mut rest = Vec::new();
        let (mut before, mut after) = (0, 0);
        // a match of a pattern is a match of one of its top-level branches
        let mut hirs = Vec::new();
        for s in sources {
            hirs.extend(branches(
                &regex_automata::util::syntax::parse_with(s, &syntax).ok()?,
            ));
        }
        for hir in hirs {
            if hir.properties().look_set_prefix().contains(Look::Start) {
                start.push(hir);
            } else if let Some(r) = relax_colon(&hir) {
                before = before.max(r.before);
                after = after.max(r.after);
                colon.push(r.hir);
            } else {
                rest.push(relax_bounded(&hir));
            }
        }
        let group = |hirs: &[Hir]| -> Option<Option<Engine>> {
            if hirs.is_empty() {
                return Some(None);
            }
            Engine::lazy(hirs).map(Some)
        };
        // the rest by literal prefix (patterns without one share a meta regex)
        let mut by_prefix: Vec<(Vec<u8>, Vec<Hir>)> = Vec::new();
        for hir in rest {
            let p = prefix(&hir);
            match by_prefix.iter_mut().find(|(q, _)| *q == p) {
                Some((_, hs)) => hs.push(hir),
                None => by_prefix.push((p, vec![hir])),
            }
        }
        let mut engines = Vec::new();
        for (p, hs) in &by_prefix {
            engines.push(if p.is_empty() {
                Engine::meta(hs)?
            } else {
                Engine::led(hs, p).or_else(|| Engine::meta(hs))?
            });
        }
        Some(Others {
            start: group(&start)?,
            colon: group(&colon)?.map(|e| (e, before, after)),
            rest: engines,
            seen: Seen::default(),
        })
    }

    /// `false` only if no pattern of the groups matches anywhere in `hay`.
    pub(crate) fn is_match(&mut self, hay: &[u8]) -> bool {
        if let Some(e) = &mut self.start
            && e.is_match(Input::new(hay).anchored(Anchored::Yes))
        {
            return true;
        }
        if let Some((e, before, after)) = &mut self.colon {
            let (before, after) = (*before, *after);
            let digit = |i: usize| hay.get(i).is_some_and(u8::is_ascii_digit);
            let mut window: Option<(usize, usize)> = None;
            for c in memchr::memchr_iter(b':', hay) {
                if !(c > 0 && digit(c - 1) && digit(c + 1)) {
                    continue;
                }
                let (a, b) = (c.saturating_sub(before), (c + 1 + after).min(hay.len()));
                match &mut window {
                    Some((_, end)) if a <= *end => *end = b,
                    _ => {
                        if let Some((s, t)) = window
                            && self.seen.answer(e, hay, s, t)
                        {
                            return true;
                        }
                        window = Some((a, b));
                    }
                }
            }
            if let Some((s, t)) = window
                && self.seen.answer(e, hay, s, t)
            {
                return true;
            }
        }
        self.rest.iter_mut().any(|e| e.is_match(Input::new(hay)))
    }
}

/// The elements of `hir`'s top-level sequence: nested concatenations and capture groups are
/// flattened (neither changes what matches).
fn sequence<'a>(hir: &'a Hir, out: &mut Vec<&'a Hir>) {
    match hir.kind() {
        HirKind::Capture(c) => sequence(&c.sub, out),
        HirKind::Concat(hs) => hs.iter().for_each(|h| sequence(h, out)),
        _ => out.push(hir),
    }
}

fn max_len(h: &Hir) -> Option<usize> {
    h.properties().maximum_len()
}

fn min_len(h: &Hir) -> usize {
    h.properties().minimum_len().unwrap_or(0)
}

/// A run of a pattern's sequence that every match of the pattern contains a match of.
#[derive(Debug)]
pub(crate) struct Relaxed {
    pub hir: Hir,
    /// Longest distance from the start of a match of the run to its anchor colon.
    pub before: usize,
    /// Longest distance from just after the anchor colon to the end of a match of the run.
    pub after: usize,
}

/// The first element of `items` holding a `:` that every match has with an ASCII digit right
/// before and right after it: `(element, byte of the colon when the element is a literal)`.
fn anchor(items: &[&Hir]) -> Option<(usize, Option<usize>)> {
    for (j, h) in items.iter().enumerate() {
        if let HirKind::Literal(lit) = h.kind() {
            let b = &lit.0;
            for (k, &x) in b.iter().enumerate() {
                if x != b':' {
                    continue;
                }
                let left = if k > 0 {
                    b[k - 1].is_ascii_digit()
                } else {
                    side_is_digit(items[..j].iter().rev().copied(), Side::Last)
                };
                let right = if k + 1 < b.len() {
                    b[k + 1].is_ascii_digit()
                } else {
                    side_is_digit(items[j + 1..].iter().copied(), Side::First)
                };
                if left && right {
                    return Some((j, Some(k)));
                }
            }
        } else if max_len(h).is_some() && digit_colon_digit(h) {
            return Some((j, None));
        }
    }
    None
}

/// The run around the first required digit-colon-digit of `hir`: from the first element that
/// is not optional after the last unbounded one before the colon, to the first element that
/// is not optional after it (bounded elements only), with its distance bounds.
pub(crate) fn relax_colon(hir: &Hir) -> Option<Relaxed> {
    let mut items = Vec::new();
    sequence(hir, &mut items);
    let (j, at) = anchor(&items)?;
    let mut a = j;
    while a > 0 && max_len(items[a - 1]).is_some() {
        a -= 1;
    }
    while a < j && min_len(items[a]) == 0 {
        a += 1;
    }
    let mut b = j;
    while b + 1 < items.len() && max_len(items[b + 1]).is_some() {
        b += 1;
        if min_len(items[b]) > 0 {
            break;
        }
    }
    let m = max_len(items[j])?;
    let sum = |hs: &[&Hir]| hs.iter().map(|h| max_len(h)).sum::<Option<usize>>();
    let pre = sum(&items[a..j])?;
    let post = sum(&items[j + 1..=b])?;
    let (before, after) = match at {
        Some(k) => (pre + k, m - k - 1 + post),
        None => (pre + m.saturating_sub(1), m.saturating_sub(1) + post),
    };
    let hir = Hir::concat(items[a..=b].iter().map(|h| (*h).clone()).collect());
    Some(Relaxed { hir, before, after })
}

/// A length-bounded run of `hir`'s sequence (from its first non-optional element to the last
/// non-optional one before an unbounded element), or `hir` itself when there is none.
pub(crate) fn relax_bounded(hir: &Hir) -> Hir {
    let mut items = Vec::new();
    sequence(hir, &mut items);
    let Some(a) = items.iter().position(|h| min_len(h) > 0) else {
        return hir.clone();
    };
    if max_len(items[a]).is_none() {
        return hir.clone();
    }
    let mut b = a;
    while b + 1 < items.len() && max_len(items[b + 1]).is_some() {
        b += 1;
    }
    while b > a && min_len(items[b]) == 0 {
        b -= 1;
    }
    Hir::concat(items[a..=b].iter().map(|h| (*h).clone()).collect())
}

/// Whether every match of `hir` contains a `:` with an ASCII digit right before and right
/// after it, all three inside the match (conservative: `false` when unsure).
pub(crate) fn digit_colon_digit(hir: &regex_syntax::hir::Hir) -> bool {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Capture(c) => digit_colon_digit(&c.sub),
        HirKind::Repetition(r) => r.min >= 1 && digit_colon_digit(&r.sub),
        HirKind::Alternation(hs) => !hs.is_empty() && hs.iter().all(digit_colon_digit),
        HirKind::Concat(hs) => {
            if hs.iter().any(digit_colon_digit) {
                return true;
            }
            hs.iter().enumerate().any(|(j, h)| {
                let HirKind::Literal(lit) = h.kind() else {
                    return false;
                };
                let b = &lit.0;
                b.iter().enumerate().any(|(k, &x)| {
                    if x != b':' {
                        return false;
                    }
                    let left = if k > 0 {
                        b[k - 1].is_ascii_digit()
                    } else {
                        side_is_digit(hs[..j].iter().rev(), Side::Last)
                    };
                    let right = if k + 1 < b.len() {
                        b[k + 1].is_ascii_digit()
                    } else {
                        side_is_digit(hs[j + 1..].iter(), Side::First)
                    };
                    left && right
                })
            })
        }
        HirKind::Literal(lit) => lit
            .0
            .windows(3)
            .any(|w| w[1] == b':' && w[0].is_ascii_digit() && w[2].is_ascii_digit()),
        _ => false,
    }
}

#[derive(Clone, Copy)]
enum Side {
    First,
    Last,
}

/// Whether the byte next to a position is surely a digit, given the elements that follow it
/// (`Side::First`, in order) or precede it (`Side::Last`, nearest first).
fn side_is_digit<'a>(
    mut items: impl Iterator<Item = &'a regex_syntax::hir::Hir>,
    side: Side,
) -> bool {
    for h in items.by_ref() {
        let p = h.properties();
        if p.maximum_len() == Some(0) {
            continue; // zero-width (look-around, empty)
        }
        if !edge_is_digit(h, side) {
            return false;
        }
        if p.minimum_len().unwrap_or(0) > 0 {
            return true;
        }
    }
    false
}

/// Whether every non-empty match of `hir` starts (`First`) or ends (`Last`) with an ASCII digit.
fn edge_is_digit(hir: &regex_syntax::hir::Hir, side: Side) -> bool {
    use regex_syntax::hir::{Class, HirKind};
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => true,
        HirKind::Literal(lit) => match side {
            Side::First => lit.0.first(),
            Side::Last => lit.0.last(),
        }
        .is_some_and(u8::is_ascii_digit),
        HirKind::Class(Class::Bytes(c)) => c
            .ranges()
            .iter()
            .all(|r| r.start().is_ascii_digit() && r.end().is_ascii_digit()),
        HirKind::Class(Class::Unicode(c)) => c
            .ranges()
            .iter()
            .all(|r| r.start().is_ascii_digit() && r.end().is_ascii_digit()),
        HirKind::Capture(c) => edge_is_digit(&c.sub, side),
        HirKind::Repetition(r) => edge_is_digit(&r.sub, side),
        HirKind::Alternation(hs) => hs.iter().all(|h| edge_is_digit(h, side)),
        HirKind::Concat(hs) => {
            // The first (last) byte comes from the first (last) element that is not empty
            // in this match: every element up to and including the first non-nullable one
            // must give a digit edge.
            let check = |it: &mut dyn Iterator<Item = &regex_syntax::hir::Hir>| {
                for h in it {
                    let p = h.properties();
                    if p.maximum_len() == Some(0) {
                        continue;
                    }
                    if !edge_is_digit(h, side) {
                        return false;
                    }
                    if p.minimum_len().unwrap_or(0) > 0 {
                        return true;
                    }
                }
                true
            };
            match side {
                Side::First => check(&mut hs.iter()),
                Side::Last => check(&mut hs.iter().rev()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{
        Engine, Others, branches, digit_colon_digit, lead_classes, relax_bounded, relax_colon,
    };
    use crate::DateDetector;

    fn hir(p: &str) -> regex_syntax::hir::Hir {
        let c = regex_automata::util::syntax::Config::new()
            .unicode(false)
            .utf8(false);
        regex_automata::util::syntax::parse_with(p, &c).unwrap()
    }

    /// The default templates' regex sources with ASCII classes.
    fn default_sources() -> Vec<String> {
        let mut det = DateDetector::with_default_templates();
        det.list_deferred();
        det.build_screen();
        det.screen.ascii_sources.clone()
    }

    #[test]
    fn digit_colon_digit_requirement() {
        for yes in [
            r"\d:\d",
            r"(?P<H>[01]?\d|2[0-3]):(?P<M>[0-5]?\d)",
            r"\b(?P<x>\d{2})(?::?\d{2})?x\d:\d",
            r"a\d?\d:\d",
            r"(?:1:2|3:4)",
        ] {
            assert!(digit_colon_digit(&hir(yes)), "{yes}");
        }
        for no in [
            r":\d",
            r"\d:",
            r"\d?:\d",
            r"[0-9a]:\d",
            r"\d:(?:\d|x)",
            r"(?:\d:\d)?",
            r"(?:\d:\d|x)",
            r"a?:1",
            r"https?://",
        ] {
            assert!(!digit_colon_digit(&hir(no)), "{no}");
        }
    }

    #[test]
    fn runs_and_bounds() {
        let r = relax_colon(&hir(
            r"(?:x )?(?:ab|c) (?P<H>\d\d?):(?P<M>\d\d)(?::\d\d)?\s*z",
        ))
        .unwrap();
        // `(?:x )?` dropped (optional, leading), up to the first digit of the minutes
        assert_eq!((r.before, r.after), (2 + 1 + 2, 1));
        let re = regex::Regex::new(&r.hir.to_string()).unwrap();
        assert!(re.is_match("c 1:23"));
        assert!(!re.is_match("x c 1-23"));
        let r = relax_colon(&hir(r"a.*b12:34c")).unwrap();
        // the unbounded `.*` ends the run; the colon sits at byte 3 of the literal `b12:34c`
        assert_eq!((r.before, r.after), (3, 3));
        let r = relax_colon(&hir(r"x(?:1:2|33:4)y")).unwrap();
        assert_eq!((r.before, r.after), (1 + 3, 3 + 1));
        assert!(relax_colon(&hir(r"\d+:\d+")).is_some());
        assert!(relax_colon(&hir(r"(?:a:|b)\d")).is_none());
        assert!(relax_colon(&hir(r"\d?:\d")).is_none());
        // every default template that needs a colon has one between two digits
        let n = default_sources()
            .iter()
            .filter(|s| relax_colon(&hir(s)).is_some())
            .count();
        assert!(n >= 20, "{n}");
    }

    fn test_lines() -> Vec<String> {
        let mut lines: Vec<String> = vec![
            "1.2.3.4 - - [25/Nov/2026:13:04:31 +0000] \"GET / HTTP/1.1\" 404 1 \"-\" \"x\"".into(),
            "2001:db8::1 - bob [25/Nov/2026:13:04:31 +0000] \"GET /a:1 HTTP/1.1\" 200 1 \"https://x:80/\" \"Mozilla/5.0 Gecko/20100101 Firefox/125.0\"".into(),
            "2005-08-14 12:00:01 x".into(),
            "2005-08-14 12:00:01    +0200 x".into(),
            "2005-08-14T12:00:01.123456\tUTC".into(),
            "20050814T120001 x".into(),
            "x 20050814 120001".into(),
            "Aug 14 12:00:01 host sshd[1]: x".into(),
            "Sun Aug 14 12:00:01 2005 x".into(),
            "CEST Sun Aug 14 12:00:01 2005 x".into(),
            "a:b:c:d http://x:80/ 12:00 1:2:3".into(),
            "[2005-08-14 12:00:01.123456 +02:00] x".into(),
            "14-Aug-2005 12:00:01 x :".into(),
            "Aug 14, 2005 1:00:01 PM x".into(),
            "050814  1:00:01 x".into(),
            ":".into(),
            String::new(),
        ];
        let root = std::path::Path::new(
            "/tmp/f2b/root/usr/lib/python3/dist-packages/fail2ban/tests/files/logs",
        );
        if let Ok(dir) = std::fs::read_dir(root) {
            for e in dir.flatten() {
                if let Ok(b) = std::fs::read(e.path()) {
                    let text = String::from_utf8_lossy(&b).into_owned();
                    lines.extend(text.lines().take(400).map(str::to_owned));
                }
            }
        }
        // shift dates towards and across both ends of the line
        let mut more = Vec::new();
        for l in &lines {
            for k in [1, 3, 7, 15, 30] {
                if let Some(s) = l.get(k..) {
                    more.push(s.to_owned());
                }
                if let Some(s) = l.get(..l.len().saturating_sub(k)) {
                    more.push(s.to_owned());
                }
            }
            more.push(format!("{} {l}", "y".repeat(50)));
        }
        lines.extend(more);
        lines.retain(|l| l.is_ascii());
        lines
    }

    /// The sources but the `skip`th, and their group.
    fn all_but(sources: &[String], skip: Option<usize>) -> (Vec<&String>, Others) {
        let rest: Vec<&String> = sources
            .iter()
            .enumerate()
            .filter(|(j, _)| Some(*j) != skip)
            .map(|(_, s)| s)
            .collect();
        let others = Others::build(&rest).expect("builds");
        (rest, others)
    }

    /// Soundness: whenever a pattern matches a line, its group says "maybe". Checked for each
    /// default pattern on its own (its run and window bounds), and for the group of all
    /// patterns but one, for every skipped one.
    #[test]
    fn never_misses_a_match() {
        let sources = default_sources();
        assert!(sources.len() > 5);
        let lines = test_lines();
        let mut matched = 0;
        for s in &sources {
            let mut others = Others::build(&[s]).expect("builds");
            let re = regex::bytes::RegexBuilder::new(s)
                .unicode(false)
                .build()
                .unwrap();
            for l in &lines {
                if re.is_match(l.as_bytes()) {
                    matched += 1;
                    assert!(others.is_match(l.as_bytes()), "{s}: {l:?}");
                }
            }
        }
        assert!(matched > 1000, "{matched}");
        for skip in std::iter::once(None).chain((0..sources.len()).map(Some)) {
            let (rest, mut others) = all_but(&sources, skip);
            assert!(others.colon.is_some());
            if skip.is_none() {
                // compact ISO ("20"), epoch after `audit(`, TAI64N ("@")
                assert_eq!(others.rest.len(), 3);
                assert!(others.rest.iter().all(|e| matches!(e, Engine::Led { .. })));
                assert!(matches!(others.start, Some(Engine::Lazy(..))));
            }
            let set = regex::bytes::RegexSetBuilder::new(&rest)
                .unicode(false)
                .build()
                .unwrap();
            for l in &lines {
                if set.is_match(l.as_bytes()) {
                    assert!(others.is_match(l.as_bytes()), "skip {skip:?}: {l:?}");
                }
            }
        }
    }

    /// The leading byte classes hold for every match of every default pattern's bounded run
    /// (the runs the literal-led engines check), and a run said to be whole is exactly as long.
    #[test]
    fn every_match_has_its_lead_classes() {
        let lines = test_lines();
        let (mut matched, mut runs) = (0, 0);
        for s in default_sources() {
            for b in branches(&hir(&s)) {
                let run = relax_bounded(&b);
                let (lead, whole) = lead_classes(&run);
                runs += usize::from(!lead.is_empty());
                let re = regex_automata::meta::Regex::builder()
                    .syntax(
                        regex_automata::util::syntax::Config::new()
                            .unicode(false)
                            .utf8(false),
                    )
                    .configure(
                        regex_automata::meta::Config::new()
                            .match_kind(regex_automata::MatchKind::All)
                            .utf8_empty(false),
                    )
                    .build_from_hir(&run)
                    .unwrap();
                for l in &lines {
                    let h = l.as_bytes();
                    for p in 0..=h.len() {
                        let input = regex_automata::Input::new(h)
                            .range(p..)
                            .anchored(regex_automata::Anchored::Yes);
                        let Some(m) = re.find(input) else { continue };
                        matched += 1;
                        for (k, set) in lead.iter().enumerate() {
                            assert!(
                                h.get(p + k).is_some_and(|&c| set.has(c)),
                                "{run} at {p} in {l:?}: offset {k}"
                            );
                        }
                        if whole {
                            assert_eq!(m.len(), lead.len(), "{run} at {p} in {l:?}");
                        }
                    }
                }
            }
        }
        assert!(matched > 1000 && runs > 10, "{matched} {runs}");
        // the compact ISO run: `20`, then eight digit positions
        let (lead, _) = lead_classes(&hir(r"20[0-2]\d(?:0[1-9]|1[0-2])(?:[12]\d|0[1-9]|3[01])T?"));
        assert_eq!(lead.len(), 8);
        assert!(lead[4].has(b'1') && !lead[4].has(b'2') && !lead[2].has(b'3'));
    }

    /// A group that remembers its windows' answers answers every line as one that does not.
    #[test]
    fn remembered_windows_answer_as_a_search_does() {
        let sources = default_sources();
        let lines = test_lines();
        let mut recalled = 0;
        for skip in [None, Some(3), Some(18)] {
            let (_, mut others) = all_but(&sources, skip);
            for l in &lines {
                let before = others.seen.windows.clone();
                let mut fresh = others.clone();
                fresh.seen = Default::default();
                assert_eq!(
                    others.is_match(l.as_bytes()),
                    fresh.is_match(l.as_bytes()),
                    "skip {skip:?}: {l:?}"
                );
                // the line's windows were all remembered already: nothing was added
                let after = &others.seen.windows;
                recalled += usize::from(
                    !after.is_empty()
                        && after.len() == before.len()
                        && after.iter().zip(&before).all(|(a, b)| a.bytes == b.bytes),
                );
            }
        }
        assert!(recalled > 100, "{recalled}");
    }

    /// Usefulness: on access-log lines, once the Apache-style template is skipped, the
    /// other defaults are proved absent (the whole point of the check).
    #[test]
    fn access_log_lines_have_no_other_date() {
        let sources = default_sources();
        let apache = |s: &&String| s.contains("(?P<b>jan|feb") && s.contains(r"[: ]?");
        let skipped: Vec<usize> = (0..sources.len())
            .filter(|&j| apache(&&sources[j]) && !sources[j].contains(")^"))
            .collect();
        assert_eq!(skipped.len(), 1);
        let rest: Vec<&String> = sources
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != skipped[0])
            .map(|(_, s)| s)
            .collect();
        let mut others = Others::build(&rest).expect("builds");
        for l in [
            "198.18.79.121 - alice [30/May/2024:00:00:00 +0000] \"GET /blog/ HTTP/1.1\" 301 178 \"https://www.example.com/\" \"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1\"",
            "2001:db8:dc0f:e332:a334:8e0e:5ae4:2200 - - [30/May/2024:00:00:01 +0000] \"GET /static/img/hero-1600.webp HTTP/1.1\" 200 202995 \"-\" \"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0\"",
            "10.0.0.1 - - [01/Jan/2025:23:59:59 +0100] \"POST /wp-login.php HTTP/1.1\" 404 153 \"-\" \"curl/8.5.0\"",
        ] {
            assert!(!others.is_match(l.as_bytes()), "{l}");
        }
    }
}
