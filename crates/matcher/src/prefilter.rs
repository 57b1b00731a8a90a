//! Literal prefilter across the regexes of a filter.
//!
//! For each regex a set of *required literals* is extracted from the parsed
//! pattern: every match of the regex contains at least one of them. One
//! Aho-Corasick scan of a line then tells which regexes can possibly match;
//! the others are skipped. Like ripgrep's literal optimisations this may report
//! false candidates but never misses one: the extraction only follows
//! constructs whose matched text is known (literals, concatenation,
//! alternation, groups, mandatory repetition) and gives up otherwise.
//!
//! Case-insensitive literals are searched ASCII-case-insensitively, which is
//! only a superset of Python's folding when the letters have no non-ASCII case
//! partners: under `re.IGNORECASE` Python also matches `i` with U+0130/U+0131,
//! `k` with U+212A and `s` with U+017F, so those letters end a literal.

use std::sync::atomic::{AtomicUsize, Ordering};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::Regex;
use crate::parse::Node;

/// A literal: its text and whether it must be matched ASCII-case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Lit {
    pub text: String,
    pub icase: bool,
}

/// Bound on the size of literal sets built by cross products and unions.
const MAX_SET: usize = 64;

#[derive(Debug, Clone, Default)]
struct Info {
    /// Every string the node can match, if that is a small finite set.
    exact: Option<Vec<Lit>>,
    /// A set of literals one of which occurs in every match.
    req: Option<Vec<Lit>>,
}

fn min_len(set: &[Lit]) -> usize {
    set.iter().map(|l| l.text.len()).min().unwrap_or(0)
}

/// A usable requirement: non-empty set of non-empty literals.
fn usable(set: &[Lit]) -> bool {
    !set.is_empty() && min_len(set) > 0
}

/// Prefers the set whose shortest literal is longest (fewer false candidates).
fn better(a: Option<Vec<Lit>>, b: Option<Vec<Lit>>) -> Option<Vec<Lit>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if min_len(&b) > min_len(&a) { b } else { a }),
        (a, None) => a,
        (None, b) => b,
    }
}

fn as_req(info: &Info) -> Option<Vec<Lit>> {
    let from_exact = info.exact.clone().filter(|s| usable(s));
    better(info.req.clone(), from_exact)
}

fn cross(a: &[Lit], b: &[Lit]) -> Option<Vec<Lit>> {
    if a.len() * b.len() > MAX_SET {
        return None;
    }
    let mut out = Vec::with_capacity(a.len() * b.len());
    for x in a {
        for y in b {
            out.push(Lit {
                text: format!("{}{}", x.text, y.text),
                icase: x.icase || y.icase,
            });
        }
    }
    out.sort();
    out.dedup();
    Some(out)
}

fn info(node: &Node) -> Info {
    match node {
        Node::Empty | Node::Assert(_) | Node::Look { .. } => Info {
            exact: Some(vec![Lit {
                text: String::new(),
                icase: false,
            }]),
            req: None,
        },
        Node::Literal { c, icase } => {
            let exact = if !*icase || !c.is_alphabetic() {
                Some(Lit {
                    text: c.to_string(),
                    icase: false,
                })
            } else if c.is_ascii_alphabetic() && !"iIkKsS".contains(*c) {
                Some(Lit {
                    text: c.to_string(),
                    icase: true,
                })
            } else {
                None
            };
            Info {
                exact: exact.map(|l| vec![l]),
                req: None,
            }
        }
        Node::Class { .. } | Node::Perl(_) | Node::Any { .. } | Node::Backref { .. } => {
            Info::default()
        }
        Node::Group { node, .. } | Node::NonCapture(node) | Node::Atomic(node) => info(node),
        Node::Concat(items) => {
            let mut best: Option<Vec<Lit>> = None;
            let mut cur: Option<Vec<Lit>> = Some(vec![Lit {
                text: String::new(),
                icase: false,
            }]);
            let mut all_exact = true;
            for item in items {
                let i = info(item);
                match (&cur, &i.exact) {
                    (Some(c), Some(e)) => match cross(c, e) {
                        Some(next) => cur = Some(next),
                        None => {
                            best = better(best, cur.take().filter(|s| usable(s)));
                            all_exact = false;
                            cur = Some(e.clone());
                        }
                    },
                    (None, Some(e)) => cur = Some(e.clone()),
                    (_, None) => {
                        all_exact = false;
                        best = better(best, cur.take().filter(|s| usable(s)));
                        best = better(best, i.req.clone());
                    }
                }
            }
            if all_exact {
                Info {
                    exact: cur,
                    req: best,
                }
            } else {
                best = better(best, cur.filter(|s| usable(s)));
                Info {
                    exact: None,
                    req: best,
                }
            }
        }
        Node::Alt(alts) => alternation(alts.iter().map(info).collect()),
        Node::Cond { yes, no, .. } => alternation(vec![info(yes), info(no)]),
        Node::Repeat { node, min, max, .. } => {
            let i = info(node);
            if *min == 1 && *max == Some(1) {
                return i;
            }
            if *min >= 1 {
                Info {
                    exact: None,
                    req: as_req(&i),
                }
            } else {
                Info::default()
            }
        }
    }
}

fn alternation(infos: Vec<Info>) -> Info {
    let exact = infos
        .iter()
        .map(|i| i.exact.clone())
        .collect::<Option<Vec<_>>>()
        .map(|sets| {
            let mut all: Vec<Lit> = sets.into_iter().flatten().collect();
            all.sort();
            all.dedup();
            all
        })
        .filter(|s| s.len() <= MAX_SET);
    let req = infos
        .iter()
        .map(as_req)
        .collect::<Option<Vec<_>>>()
        .map(|sets| {
            let mut all: Vec<Lit> = sets.into_iter().flatten().collect();
            all.sort();
            all.dedup();
            all
        })
        .filter(|s| s.len() <= MAX_SET * 4);
    Info { exact, req }
}

/// The required literals of a parsed pattern (`None`: no requirement found).
pub(crate) fn required_literals(node: &Node) -> Option<Vec<Lit>> {
    as_req(&info(node)).filter(|s| usable(s))
}

/// Literal prefilter for a list of regexes: may report false candidates, never misses one.
#[derive(Debug, Clone)]
pub struct Prefilter {
    len: usize,
    /// Regexes without a literal requirement: always candidates.
    always: Vec<usize>,
    exact_case: Option<(AhoCorasick, Vec<Vec<usize>>)>,
    any_case: Option<(AhoCorasick, Vec<Vec<usize>>)>,
    /// The same literals in leftmost-first automata, which use the packed
    /// (SIMD) searcher: one cheap "is any literal present" scan settles lines
    /// that contain none (nearly every line), before the overlapping pass.
    screen: Vec<Screen>,
    /// After a screen hit, with few regexes: each regex's own conjunction of
    /// required literal sets decides (a few SIMD scans, far cheaper than the
    /// overlapping pass, and sharper: every set must be present).
    per_regex: Option<Vec<(usize, Required)>>,
}

/// Literal sets that are *all* required: every match of the pattern contains
/// a literal of each set (the items of a top-level concatenation each bring
/// their own requirement; [`required_literals`] keeps only the best one).
pub(crate) fn required_sets(node: &Node) -> Vec<Vec<Lit>> {
    let mut out = Vec::new();
    collect_sets(node, &mut out);
    out.retain(|s| usable(s));
    out.sort();
    out.dedup();
    // Most selective first: a single literal before a disjunction (one long literal is
    // rarely present, one of many often is), then the longest shortest literal.
    out.sort_by_key(|s| (s.len(), std::cmp::Reverse(min_len(s))));
    out
}

fn collect_sets(node: &Node, out: &mut Vec<Vec<Lit>>) {
    match node {
        Node::Group { node, .. } | Node::NonCapture(node) | Node::Atomic(node) => {
            collect_sets(node, out)
        }
        Node::Repeat { node, min, .. } if *min >= 1 => collect_sets(node, out),
        Node::Concat(items) => {
            let mut cur: Option<Vec<Lit>> = Some(vec![Lit {
                text: String::new(),
                icase: false,
            }]);
            for item in items {
                let i = info(item);
                match (&cur, &i.exact) {
                    (Some(c), Some(e)) => match cross(c, e) {
                        Some(next) => cur = Some(next),
                        None => {
                            out.extend(cur.take());
                            cur = Some(e.clone());
                        }
                    },
                    (None, Some(e)) => cur = Some(e.clone()),
                    (_, None) => {
                        out.extend(cur.take());
                        collect_sets(item, out);
                    }
                }
            }
            out.extend(cur);
        }
        _ => out.extend(as_req(&info(node))),
    }
}

/// A conjunction of literal screens: `false` only if the pattern cannot match.
///
/// The screen that rejected the last haystack is asked first (the order of a conjunction
/// does not change its answer): on a log where one literal is rare, that one soon leads and
/// most lines cost a single scan.
#[derive(Debug, Default)]
pub(crate) struct Required {
    screens: Vec<Screen>,
    first: AtomicUsize,
}

impl Clone for Required {
    fn clone(&self) -> Required {
        Required {
            screens: self.screens.clone(),
            first: AtomicUsize::new(self.first.load(Ordering::Relaxed)),
        }
    }
}

impl Required {
    pub(crate) fn new(node: &Node) -> Required {
        let mut screens = Vec::new();
        for set in required_sets(node).into_iter().take(4) {
            let icase = set.iter().any(|l| l.icase);
            let lits: Vec<String> = set.into_iter().map(|l| l.text).collect();
            screens.extend(screen(&lits, icase));
        }
        Required {
            screens,
            first: AtomicUsize::new(0),
        }
    }

    pub(crate) fn may_match(&self, haystack: &str) -> bool {
        let first = self.first.load(Ordering::Relaxed);
        if let Some(s) = self.screens.get(first)
            && !s.is_match(haystack)
        {
            return false;
        }
        for (i, s) in self.screens.iter().enumerate() {
            if i != first && !s.is_match(haystack) {
                self.first.store(i, Ordering::Relaxed);
                return false;
            }
        }
        true
    }
}

/// Up to this many regexes with literals, a screen hit is refined per regex.
const MAX_PER_REGEX: usize = 8;

/// An "is any of these literals present" searcher.
#[derive(Debug, Clone)]
enum Screen {
    /// One literal: SIMD substring search.
    Single(memchr::memmem::Finder<'static>),
    /// Teddy (SIMD), when the platform and the literal set allow it.
    Packed(aho_corasick::packed::Searcher),
    Automaton(AhoCorasick),
}

impl Screen {
    fn is_match(&self, haystack: &str) -> bool {
        match self {
            Screen::Single(f) => f.find(haystack.as_bytes()).is_some(),
            Screen::Packed(s) => s.find(haystack).is_some(),
            Screen::Automaton(ac) => ac.is_match(haystack),
        }
    }
}

fn screen(lits: &[String], icase: bool) -> Option<Screen> {
    if !icase && let [one] = lits {
        return Some(Screen::Single(
            memchr::memmem::Finder::new(one.as_bytes()).into_owned(),
        ));
    }
    if !icase
        && let Some(s) = aho_corasick::packed::Config::new()
            .match_kind(aho_corasick::packed::MatchKind::LeftmostFirst)
            .builder()
            .extend(lits)
            .build()
    {
        return Some(Screen::Packed(s));
    }
    AhoCorasickBuilder::new()
        .match_kind(MatchKind::LeftmostFirst)
        .ascii_case_insensitive(icase)
        .build(lits)
        .ok()
        .map(Screen::Automaton)
}

fn automaton(
    lits: Vec<(String, Vec<usize>)>,
    icase: bool,
) -> Option<(AhoCorasick, Vec<Vec<usize>>)> {
    if lits.is_empty() {
        return None;
    }
    let (pats, owners): (Vec<String>, Vec<Vec<usize>>) = lits.into_iter().unzip();
    AhoCorasickBuilder::new()
        .match_kind(MatchKind::Standard)
        .ascii_case_insensitive(icase)
        .build(&pats)
        .ok()
        .map(|ac| (ac, owners))
}

impl Prefilter {
    /// Builds the prefilter for `regexes` (index `i` of [`Prefilter::candidates`] is `regexes[i]`).
    pub fn new(regexes: &[&Regex]) -> Prefilter {
        use std::collections::BTreeMap;
        let mut always = Vec::new();
        let mut exact: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut icase: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, r) in regexes.iter().enumerate() {
            match r.required_literals() {
                Some(lits) => {
                    for l in lits {
                        let map = if l.icase { &mut icase } else { &mut exact };
                        let owners = map.entry(l.text.clone()).or_default();
                        if owners.last() != Some(&i) {
                            owners.push(i);
                        }
                    }
                }
                None => always.push(i),
            }
        }
        let owners: std::collections::BTreeSet<usize> = exact
            .values()
            .chain(icase.values())
            .flatten()
            .copied()
            .collect();
        let per_regex = (owners.len() <= MAX_PER_REGEX).then(|| {
            owners
                .iter()
                .map(|&i| (i, regexes[i].inner.derived().required.clone()))
                .collect()
        });
        let exact_lits: Vec<String> = exact.keys().cloned().collect();
        let icase_lits: Vec<String> = icase.keys().cloned().collect();
        let mut p = Prefilter {
            len: regexes.len(),
            always,
            exact_case: automaton(exact.into_iter().collect(), false),
            any_case: automaton(icase.into_iter().collect(), true),
            screen: Vec::new(),
            per_regex,
        };
        // The screen is only used when it covers every literal exactly.
        let screens = [
            (!exact_lits.is_empty()).then(|| screen(&exact_lits, false)),
            (!icase_lits.is_empty()).then(|| screen(&icase_lits, true)),
        ];
        if screens.iter().all(|s| !matches!(s, Some(None))) {
            p.screen = screens.into_iter().flatten().flatten().collect();
        } else {
            p.per_regex = None;
        }
        // If an automaton failed to build, fall back to "always a candidate".
        for (i, r) in regexes.iter().enumerate() {
            if let Some(lits) = r.required_literals() {
                let lost = lits.iter().any(|l| {
                    if l.icase {
                        p.any_case.is_none()
                    } else {
                        p.exact_case.is_none()
                    }
                });
                if lost && !p.always.contains(&i) {
                    p.always.push(i);
                }
            }
        }
        p
    }

    /// Sets `out[i]` to false only when regex i cannot match `haystack`.
    pub fn candidates(&self, haystack: &str, out: &mut Vec<bool>) {
        out.clear();
        out.resize(self.len, false);
        for &i in &self.always {
            out[i] = true;
        }
        if !self.screen.is_empty() || self.exact_case.is_none() && self.any_case.is_none() {
            // Existence of a literal does not depend on the match kind.
            if !self.screen.iter().any(|ac| ac.is_match(haystack)) {
                return;
            }
            if let Some(per) = &self.per_regex {
                for (i, req) in per {
                    if !out[*i] && req.may_match(haystack) {
                        out[*i] = true;
                    }
                }
                return;
            }
        }
        for (ac, owners) in [&self.exact_case, &self.any_case].into_iter().flatten() {
            for m in ac.find_overlapping_iter(haystack) {
                for &i in &owners[m.pattern().as_usize()] {
                    out[i] = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{Flags, parse};

    fn req(p: &str) -> Option<Vec<String>> {
        required_literals(&parse(p, Flags::default()).unwrap().node)
            .map(|v| v.into_iter().map(|l| l.text).collect())
    }

    #[test]
    fn extracts_required_literals() {
        assert_eq!(
            req("^Failed password for .* from x"),
            Some(vec!["Failed password for ".into()])
        );
        assert_eq!(
            req("(?:foo|bar)baz"),
            Some(vec!["barbaz".into(), "foobaz".into()])
        );
        assert_eq!(req(r"\d+"), None);
        assert_eq!(req("a?"), None);
        assert_eq!(req("(?:ab)+c"), Some(vec!["ab".into()]));
        assert_eq!(req("x|\\d"), None);
    }

    #[test]
    fn few_regexes_are_refined_by_every_required_set() {
        let o = crate::RegexOptions::default();
        let a = Regex::new(r#"^<HOST> \S+ "GET /(?:wp|pma)\S* HTTP/1\.1" 404 "#, &o).unwrap();
        let b = Regex::new(r"(?i)failed login from <HOST>", &o).unwrap();
        let c = Regex::new(r"\d+", &o).unwrap();
        let p = Prefilter::new(&[&a, &b, &c]);
        let mut out = Vec::new();
        let check = |h: &str, out: &mut Vec<bool>| {
            p.candidates(h, out);
            for (i, r) in [&a, &b, &c].iter().enumerate() {
                assert!(out[i] || !r.is_match(h), "{i} ruled out on {h:?}");
            }
            out.clone()
        };
        let h = "1.2.3.4 - \"GET /wp-login HTTP/1.1\" 404 \n";
        assert_eq!(check(h, &mut out), vec![true, false, true]);
        let h = "1.2.3.4 - \"GET /wp-login HTTP/1.1\" 200 \n";
        assert_eq!(check(h, &mut out), vec![false, false, true]);
        let h = "FAILED LOGIN from 1.2.3.4\n";
        assert_eq!(check(h, &mut out), vec![false, true, true]);
        assert_eq!(check("nothing\n", &mut out), vec![false, false, true]);
    }

    #[test]
    fn icase_stops_at_letters_with_unicode_partners() {
        let r = required_literals(&parse("(?i)user", Flags::default()).unwrap().node).unwrap();
        assert_eq!(
            r,
            vec![Lit {
                text: "er".into(),
                icase: true
            }]
        );
    }
}
