//! One pass over a haystack for all the regexes of a filter: which of them can match.
//!
//! A [`GateSet`] is one multi-pattern automaton (a forward lazy DFA without captures, every
//! pattern reported) over the linear-time gates of a list of [`Regex`]es. Each gate is a
//! superset of its regex, so a regex whose gate the set does not report cannot match; a
//! reported regex whose gate is its exact translation for that haystack does match; the
//! others are decided by PCRE2, which then also collects their groups. This replaces a
//! literal prefilter plus one gate search per regex by a single automaton search.
//!
//! A gate whose leading text is followed by a costly part (an address alternation such as
//! `<HOST>`'s) enters the set cut after that text: the states of a set of many regexes multiply
//! with such parts (fail2ban's sshd filter: a 1.2 MB lazy-DFA cache, read at random on every
//! line, against 0.4 MB cut), and a line the cut gate lets through is decided by PCRE2 (within
//! its step budget; a hostile line goes behind the whole linear-time gate as before).

use regex_automata::hybrid::LazyStateID;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson;
use regex_automata::{Anchored, Input, MatchKind};
use regex_syntax::hir::{Hir, HirKind};

use crate::{Regex, gate};

/// The gates of several regexes in one automaton (see the module documentation).
#[derive(Debug)]
pub struct GateSet {
    regexes: Vec<Regex>,
    set: DFA,
    /// Regex index of each pattern of `set`.
    of_pattern: Vec<usize>,
    /// `ungated[i]`: regex `i` is not in `set` (it has no usable gate, so it is always a
    /// candidate): the answer of [`GateSet::candidates`] before the search (copied on every
    /// line).
    ungated: Vec<bool>,
    /// `cut[i]`: the set holds only the leading part of regex `i`'s gate.
    cut: Vec<bool>,
    /// Every gate in `set` only matches at the start: the search is anchored (it stops as
    /// soon as no pattern can still match).
    anchored: bool,
    /// For an anchored set: the same gates searched leftmost-first, whose match names the
    /// lowest-numbered gate that matches (see [`GateSet::first_candidate`]).
    first: Option<DFA>,
    /// The lowest-numbered regex without a gate in `set` (always a candidate).
    first_ungated: Option<usize>,
}

/// Reusable per-caller state of [`GateSet::candidates`] (no allocation per search).
#[derive(Debug, Clone)]
pub struct GateSetScratch {
    cache: Cache,
    plain: PlainPass,
    /// The cache of [`GateSet`]'s leftmost-first automaton (made on first use).
    first: Option<Cache>,
}

/// Whether [`GateSet::candidates`] first runs a plain search (see there), learnt from the
/// lines: the pass pays where most lines match no gate (nginx lines under a filter for rare
/// requests) and costs a second search where many match one (sshd's lines under its dozens
/// of regexes). Over each window of lines, if more than a quarter matched, the pass is left
/// out for the next 64 windows, then tried again. Only speed depends on it.
#[derive(Debug, Clone, Default)]
struct PlainPass {
    /// Lines searched with the pass in this window, and how many of them matched a gate.
    seen: u32,
    matched: u32,
    /// Lines still to be searched without the pass.
    off: u32,
}

impl PlainPass {
    const WINDOW: u32 = 256;

    /// Whether the next line gets the pass.
    fn on(&mut self) -> bool {
        if self.off == 0 {
            return true;
        }
        self.off -= 1;
        false
    }

    fn note(&mut self, matched: bool) {
        self.seen += 1;
        self.matched += u32::from(matched);
        if self.seen == Self::WINDOW {
            if self.matched * 4 > Self::WINDOW {
                self.off = 64 * Self::WINDOW;
            }
            self.seen = 0;
            self.matched = 0;
        }
    }
}

/// The configuration of a set's lazy DFA with match semantics `kind`.
fn dfa_config(kind: MatchKind) -> regex_automata::hybrid::dfa::Config {
    DFA::config()
        .match_kind(kind)
        .unicode_word_boundary(true)
        .cache_capacity(8 << 20)
}

/// The forward lazy DFA over `srcs`, reporting every pattern that matches.
fn build(srcs: &[&str]) -> Option<DFA> {
    DFA::builder()
        .configure(dfa_config(MatchKind::All))
        .thompson(
            thompson::Config::new()
                .nfa_size_limit(Some(gate::SIZE_LIMIT))
                .which_captures(thompson::WhichCaptures::None),
        )
        .build_many(srcs)
        .ok()
}

/// Whether `h` is cheap for a DFA to follow: text, classes, anchors, repeated classes, small
/// alternations of such (not an address alternation such as `<HOST>`'s, nor repeated groups).
fn simple(h: &Hir) -> bool {
    match h.kind() {
        HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) | HirKind::Look(_) => true,
        HirKind::Repetition(r) => matches!(r.sub.kind(), HirKind::Class(_) | HirKind::Literal(_)),
        HirKind::Capture(c) => simple(&c.sub),
        HirKind::Concat(v) => v.iter().all(simple),
        HirKind::Alternation(v) => v.len() <= 4 && v.iter().all(simple),
    }
}

fn has_text(h: &Hir, min: usize) -> bool {
    match h.kind() {
        HirKind::Literal(l) => l.0.len() >= min,
        HirKind::Capture(c) => has_text(&c.sub, min),
        HirKind::Concat(v) => v.iter().any(|x| has_text(x, min)),
        _ => false,
    }
}

/// `gate` cut after its leading simple part (see [`simple`]), when that part has a text of at
/// least three bytes to look for and something was cut: a superset of the gate whose DFA stays
/// small (the cut part, typically an address alternation, multiplies the states of a set of
/// many regexes). `None`: keep the whole gate.
fn cut(gate: &str) -> Option<String> {
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(gate)
        .ok()?;
    let HirKind::Concat(items) = hir.kind() else {
        return None;
    };
    let k = items.iter().take_while(|h| simple(h)).count();
    (k < items.len() && items[..k].iter().any(|h| has_text(h, 3)))
        .then(|| Hir::concat(items[..k].to_vec()).to_string())
}

impl GateSet {
    /// Builds the set over `regexes` (index `i` of the answers is `regexes[i]`); `None` when
    /// the combined automaton cannot be built (callers then screen regex by regex).
    ///
    /// A gate is put in the set whole, or cut after its leading text when the rest is costly
    /// (see `cut` in this module): a regex reported through a cut gate is decided by PCRE2,
    /// which also collects its groups (a matching line pays one PCRE2 search either way).
    pub fn new(regexes: &[Regex]) -> Option<GateSet> {
        let gates: Vec<&gate::Gate> = regexes.iter().map(|r| &r.inner.derived().gate).collect();
        let cuts: Vec<Option<String>> = gates
            .iter()
            .map(|g| g.has_gate().then(|| cut(g.source())).flatten())
            .collect();
        let src = |i: usize| cuts[i].as_deref().unwrap_or(gates[i].source());
        let mut of_pattern: Vec<usize> = (0..regexes.len()).collect();
        let mut set = build(&of_pattern.iter().map(|&i| src(i)).collect::<Vec<_>>());
        if set.is_none() {
            // Some gate does not compile on its own: the set is built over the others.
            of_pattern.retain(|&i| gates[i].has_gate());
            let srcs: Vec<&str> = of_pattern.iter().map(|&i| src(i)).collect();
            set = (!srcs.is_empty()).then(|| build(&srcs)).flatten();
        }
        let set = set?;
        let cut = cuts.iter().map(Option::is_some).collect();
        let mut ungated = vec![true; regexes.len()];
        for &i in &of_pattern {
            ungated[i] = false;
        }
        let anchored = set.get_nfa().is_always_start_anchored();
        // Anchored, every match starts at 0, so leftmost-first reports the gate of highest
        // priority (lowest number) that matches. The automaton shares the set's NFA.
        let first = anchored.then(|| {
            DFA::builder()
                .configure(dfa_config(MatchKind::LeftmostFirst))
                .build_from_nfa(set.get_nfa().clone())
                .ok()
        });
        Some(GateSet {
            first_ungated: ungated.iter().position(|&u| u),
            cut,
            regexes: regexes.to_vec(),
            anchored,
            first: first.flatten(),
            set,
            of_pattern,
            ungated,
        })
    }

    /// Scratch space for [`GateSet::candidates`].
    pub fn scratch(&self) -> GateSetScratch {
        GateSetScratch {
            cache: self.set.create_cache(),
            plain: PlainPass::default(),
            first: None,
        }
    }

    /// Number of regexes.
    pub fn len(&self) -> usize {
        self.regexes.len()
    }

    /// Whether the set has no regexes.
    pub fn is_empty(&self) -> bool {
        self.regexes.is_empty()
    }

    /// Sets `out[i]` to false only when regex `i` cannot match `haystack` (its gate does not
    /// match); `true` means "its gate matches, or it has none". Returns `false`, with `out`
    /// unspecified, when the automaton cannot answer for this haystack (a non-ASCII byte next
    /// to a Unicode `\b`): the caller then screens regex by regex, and must not use
    /// [`GateSet::decide`] or [`GateSet::search`] on it.
    pub fn candidates(
        &self,
        haystack: &str,
        scratch: &mut GateSetScratch,
        out: &mut Vec<bool>,
    ) -> bool {
        out.clear();
        out.extend_from_slice(&self.ungated);
        let mut input = Input::new(haystack);
        if self.anchored {
            input = input.anchored(Anchored::Yes);
        }
        // Where most lines match no gate, one plain search (the DFA's unrolled loop, stopping
        // at the first match state) says so at a fraction of the overlapping search's cost
        // per byte. A single gate needs nothing more; with several, a line that matches one
        // is searched again for every gate that matches.
        if scratch.plain.on() {
            let plain = self
                .set
                .try_search_fwd(&mut scratch.cache, &input.clone().earliest(true));
            scratch.plain.note(matches!(plain, Ok(Some(_))));
            match plain {
                Err(_) => return false,
                Ok(None) => return true,
                Ok(Some(m)) if self.of_pattern.len() == 1 => {
                    out[self.of_pattern[m.pattern().as_usize()]] = true;
                    return true;
                }
                Ok(Some(_)) => {}
            }
        }
        self.every_match(&mut scratch.cache, &input, out).is_some()
    }

    /// Marks in `out` the regex of every pattern of the set that matches `input` (its whole
    /// haystack): the answer of the lazy DFA's overlapping search (`MatchKind::All`: each
    /// match state names every pattern that matches there, one byte late), walked state by
    /// state, which stops where no pattern can match any more (the dead state). `None` when
    /// the automaton cannot answer (a quit byte: non-ASCII next to a Unicode `\b`; a cache
    /// that gave up).
    ///
    /// The library's overlapping search returns to its caller at each match state and
    /// resumes from a saved position, with its bookkeeping on every byte; this walk is the
    /// plain loop of its documentation's example (`hybrid::dfa::DFA::next_state`).
    fn every_match(&self, cache: &mut Cache, input: &Input<'_>, out: &mut [bool]) -> Option<()> {
        let dfa = &self.set;
        let note = |cache: &Cache, sid: LazyStateID, out: &mut [bool]| {
            for k in 0..dfa.match_len(cache, sid) {
                out[self.of_pattern[dfa.match_pattern(cache, sid, k).as_usize()]] = true;
            }
        };
        let mut sid = dfa.start_state_forward(cache, input).ok()?;
        if sid.is_tagged() {
            if sid.is_dead() {
                return Some(());
            }
            if sid.is_quit() {
                return None;
            }
        }
        for &b in input.haystack() {
            sid = dfa.next_state(cache, sid, b).ok()?;
            if sid.is_tagged() {
                if sid.is_match() {
                    note(cache, sid, out);
                } else if sid.is_dead() {
                    return Some(());
                } else if sid.is_quit() {
                    return None;
                }
            }
        }
        sid = dfa.next_eoi_state(cache, sid).ok()?;
        if sid.is_match() {
            note(cache, sid, out);
        }
        Some(())
    }

    /// The first candidate [`GateSet::candidates`] would report on `haystack` (the lowest
    /// index whose gate matches, or that has no gate), found by one search that stops
    /// as soon as no lower-numbered gate can still match, where `candidates` follows every
    /// gate to its end. `Some(None)`: no regex can match. `None` when this set cannot tell
    /// (it is not anchored, or the automaton cannot answer for this haystack: a non-ASCII
    /// byte next to a Unicode `\b`); the caller then asks [`GateSet::candidates`].
    pub fn first_candidate(
        &self,
        haystack: &str,
        scratch: &mut GateSetScratch,
    ) -> Option<Option<usize>> {
        let dfa = self.first.as_ref()?;
        let cache = scratch.first.get_or_insert_with(|| dfa.create_cache());
        let input = Input::new(haystack).anchored(Anchored::Yes);
        let gated = dfa
            .try_search_fwd(cache, &input)
            .ok()?
            .map(|m| self.of_pattern[m.pattern().as_usize()]);
        Some(match (gated, self.first_ungated) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// Whether regex `index`, a candidate of [`GateSet::candidates`] on `haystack`, matches
    /// it. When deciding needed PCRE2, its groups are left in `spans` (as
    /// [`Regex::search_spans`] leaves them) and the answer is `Some(true)`; `Some(false)`
    /// means it matches with `spans` left empty; `None` means no match.
    pub fn decide(
        &self,
        index: usize,
        haystack: &str,
        spans: &mut Vec<Option<(usize, usize)>>,
    ) -> Option<bool> {
        let r = &self.regexes[index];
        spans.clear();
        if self.ungated[index] {
            return r.is_match(haystack).then_some(false);
        }
        if !self.cut[index] && r.inner.derived().gate.gate_is_exact_for(haystack) {
            // The gate that matched is the exact translation for this haystack.
            return Some(false);
        }
        r.spans_into(haystack, spans).then_some(true)
    }

    /// [`Regex::search`] of regex `index` on a haystack on which [`GateSet::candidates`]
    /// reported it (its gate is not searched again).
    pub fn search<'h>(&self, index: usize, haystack: &'h str) -> Option<crate::Captures<'h>> {
        let r = &self.regexes[index];
        if self.ungated[index] {
            return r.search(haystack);
        }
        let spans = r.spans(haystack)?;
        Some(r.captures_owned(haystack, spans))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RegexOptions;

    #[test]
    fn set_answers_agree_with_each_regex() {
        let pats = [
            r"^Failed (?:<F-NOFAIL>publickey</F-NOFAIL>|\S+) for (?P<cond_inv>invalid user )?<F-USER>(?P<cond_user>\S+)|(?(cond_inv)(?:(?! from ).)*?|[^:]+)</F-USER> from <HOST>(?: port \d+)?(?(cond_user): |(?:(?:(?! from ).)*)$)",
            r"^[iI](?:llegal|nvalid) user <F-USER>.*?</F-USER> from <HOST>(?: port \d+)?\s*$",
            r"^<F-NOFAIL>Connection from</F-NOFAIL> <HOST>",
            r"^User <F-USER>\S+</F-USER> from <HOST> not allowed\b",
            r"(?i)refused connect from \S+ \(<HOST>\)",
        ];
        let lines = [
            "Failed password for root from 192.0.2.1 port 22 ssh2\n",
            "Failed password for invalid user admin from 192.0.2.2 port 22 ssh2\n",
            "Failed publickey for bob from 2001:db8::1 port 22 ssh2: RSA SHA256:x\n",
            "Invalid user test from 198.51.100.7 port 4242\n",
            "Connection from 203.0.113.9 port 5555 on 192.0.2.1 port 22\n",
            "User joe from 192.0.2.3 not allowed because not listed in AllowUsers\n",
            "User joé from 192.0.2.3 not allowedé\n",
            "sshd: REFUSED connect from host.example (192.0.2.4)\n",
            "Accepted password for root from 192.0.2.1 port 22 ssh2\n",
            "\n",
        ];
        // all five (one unanchored), the four anchored ones (an anchored set search), and one
        // (a single gate: the plain search alone answers)
        for n in [pats.len(), 4, 1] {
            let regexes: Vec<Regex> = pats[..n]
                .iter()
                .map(|p| Regex::new(p, &RegexOptions::default()).unwrap())
                .collect();
            let set = GateSet::new(&regexes).expect("set builds");
            assert_eq!(set.anchored, n < pats.len());
            check(&set, &regexes, &lines);
        }
    }

    #[test]
    fn the_plain_pass_steps_aside_while_many_lines_match() {
        let regexes: Vec<Regex> = [r"^Connection from <HOST>", r"^Invalid user \S+ from <HOST>"]
            .iter()
            .map(|p| Regex::new(p, &RegexOptions::default()).unwrap())
            .collect();
        let set = GateSet::new(&regexes).expect("set builds");
        let mut scratch = set.scratch();
        let mut cands = Vec::new();
        let matching = "Connection from 192.0.2.1 port 22\n";
        for _ in 0..PlainPass::WINDOW {
            assert!(set.candidates(matching, &mut scratch, &mut cands));
            assert_eq!(cands, [true, false]);
        }
        assert_eq!(
            scratch.plain.off,
            64 * PlainPass::WINDOW,
            "a window of matches"
        );
        for _ in 0..(64 * PlainPass::WINDOW) {
            assert!(set.candidates("noise\n", &mut scratch, &mut cands));
            assert_eq!(cands, [false, false]);
        }
        assert_eq!(
            (scratch.plain.off, scratch.plain.seen),
            (0, 0),
            "back after 64 windows"
        );
        for _ in 0..PlainPass::WINDOW {
            assert!(set.candidates("noise\n", &mut scratch, &mut cands));
        }
        assert_eq!(
            scratch.plain.off, 0,
            "lines that match nothing keep the pass"
        );
    }

    #[test]
    fn gates_are_cut_after_their_text_only_before_a_costly_part() {
        let pats = [
            // text, then an address: cut after the text
            r"^Invalid user <F-USER>\S+</F-USER> from <HOST>",
            // an address first: no text to keep, the gate stays whole
            r"^<HOST> - \S+ \[",
            // nothing costly: whole
            r"^Connection closed by \S+ port \d+",
        ];
        let regexes: Vec<Regex> = pats
            .iter()
            .map(|p| Regex::new(p, &RegexOptions::default()).unwrap())
            .collect();
        let set = GateSet::new(&regexes).expect("set builds");
        assert_eq!(set.cut, [true, false, false]);
        check(
            &set,
            &regexes,
            &[
                "Invalid user bob from 192.0.2.1\n",
                "Invalid user bob from nowhere!\n",
                "192.0.2.1 - - [x\n",
                "Connection closed by 192.0.2.1 port 22\n",
            ],
        );
    }

    fn check(set: &GateSet, regexes: &[Regex], lines: &[&str]) {
        let mut scratch = set.scratch();
        // the same set without the plain first pass (as after a window of matching lines)
        let mut overlapping_only = set.scratch();
        overlapping_only.plain.off = u32::MAX;
        let (mut cands, mut spans, mut cands_overlapping) = (Vec::new(), Vec::new(), Vec::new());
        for &line in lines {
            let answered = set.candidates(line, &mut scratch, &mut cands);
            assert_eq!(
                set.candidates(line, &mut overlapping_only, &mut cands_overlapping),
                answered,
                "{line:?}"
            );
            if !answered {
                // only a non-ASCII byte next to a Unicode `\b` stops the automaton
                assert!(!line.is_ascii(), "{line:?}");
                continue;
            }
            assert_eq!(
                cands, cands_overlapping,
                "with and without the plain pass: {line:?}"
            );
            // the leftmost-first search names the first candidate (anchored sets only)
            match set.first_candidate(line, &mut scratch) {
                Some(first) => assert_eq!(first, cands.iter().position(|&c| c), "{line:?}"),
                None => assert!(!set.anchored, "an anchored set answers: {line:?}"),
            }
            for (i, r) in regexes.iter().enumerate() {
                let expected = r.search(line);
                if !cands[i] {
                    assert!(expected.is_none(), "{i} ruled out but matches {line:?}");
                    continue;
                }
                let decided = set.decide(i, line, &mut spans);
                assert_eq!(decided.is_some(), expected.is_some(), "{i} on {line:?}");
                if decided == Some(true) {
                    let c = expected.as_ref().unwrap();
                    assert_eq!(spans[0], Some((c.start(), c.end())), "{i} on {line:?}");
                }
                let searched = set.search(i, line);
                assert_eq!(
                    searched.map(|c| c.groups()),
                    expected.map(|c| c.groups()),
                    "{i} on {line:?}"
                );
            }
        }
    }
}
