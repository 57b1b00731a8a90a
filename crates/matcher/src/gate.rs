//! The linear-time `regex`-crate side of a [`crate::Regex`].
//!
//! * The **gate** is a superset of the Python pattern, valid for every
//!   haystack: when it does not match, the pattern cannot match either, so the
//!   backtracking engine never runs on such a line (hostile lines included).
//! * The **exact** regex is the same translation with `\b` spelled as an ASCII
//!   boundary. When [`GateInfo::relaxed`] is false it agrees with Python on
//!   every haystack that [`Gate::exact_for`] accepts, captures included
//!   (leftmost-first semantics, like a backtracker), in time linear in the
//!   haystack. It replaces PCRE2 on long haystacks and when PCRE2 reports that
//!   a search hit its backtracking limit.

use std::sync::{Arc, OnceLock};

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson;
use regex_automata::util::pool::Pool;
use regex_automata::{Anchored, Input};

use crate::translate::GateInfo;

/// Creates a search cache of one lazy DFA.
type NewCache =
    Box<dyn Fn() -> Cache + Send + Sync + std::panic::UnwindSafe + std::panic::RefUnwindSafe>;

/// The gate itself: a forward lazy DFA without captures (a yes/no answer needs neither the
/// start of a match nor its groups, so neither a reverse automaton nor capture states are
/// built: a fraction of a full `regex::Regex` in build time and memory).
struct Dfa {
    dfa: Arc<DFA>,
    /// Every match starts at the beginning of the haystack: an anchored search stops at
    /// the first byte no prefix of a match can take.
    anchored: bool,
    /// Search caches (the owning thread's is taken without a lock or a copy).
    caches: Pool<Cache, NewCache>,
}

impl std::fmt::Debug for Dfa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dfa")
            .field("anchored", &self.anchored)
            .finish_non_exhaustive()
    }
}

impl Dfa {
    fn new(pattern: &str) -> Option<Dfa> {
        let dfa = DFA::builder()
            .configure(
                DFA::config()
                    .unicode_word_boundary(true)
                    .cache_capacity(4 << 20),
            )
            .thompson(
                thompson::Config::new()
                    .nfa_size_limit(Some(SIZE_LIMIT))
                    .which_captures(thompson::WhichCaptures::None),
            )
            .build(pattern)
            .ok()?;
        let anchored = dfa.get_nfa().is_always_start_anchored();
        let dfa = Arc::new(dfa);
        let for_pool = Arc::clone(&dfa);
        Some(Dfa {
            dfa,
            anchored,
            caches: Pool::new(Box::new(move || for_pool.create_cache())),
        })
    }

    /// Whether the gate pattern matches somewhere in `haystack`; `None` when the lazy DFA
    /// cannot finish the search (a non-ASCII byte next to a Unicode `\b`, a thrashing cache).
    fn check(&self, haystack: &str) -> Option<bool> {
        let mut cache = self.caches.get();
        let found = self.dfa.try_search_fwd(&mut cache, &self.input(haystack));
        found.ok().map(|m| m.is_some())
    }

    /// The search of [`Dfa::check`]: the earliest match, anchored when every match starts at 0.
    fn input<'h>(&self, haystack: &'h str) -> Input<'h> {
        let input = Input::new(haystack).earliest(true);
        if self.anchored {
            input.anchored(Anchored::Yes)
        } else {
            input
        }
    }

    /// [`Dfa::check`] on a cache of its own, with the work the lazy DFA reports for it.
    fn scan(&self, haystack: &str) -> crate::GateScan {
        let mut cache = self.dfa.create_cache();
        let found = self.dfa.try_search_fwd(&mut cache, &self.input(haystack));
        crate::GateScan {
            matched: found.ok().map(|m| m.is_some()),
            bytes_scanned: cache.search_total_len(),
            cache_clears: cache.clear_count(),
        }
    }
}

/// Compile-size ceiling for the `regex` crate (the Unicode classes are large).
pub(crate) const SIZE_LIMIT: usize = 64 << 20;

/// The `regex`-crate gate and its exact sibling.
#[derive(Debug)]
pub(crate) struct Gate {
    /// The superset gate's pattern text.
    gate_src: String,
    /// Superset gate (compiled on first use); `None` if it could not be compiled.
    gate: OnceLock<Option<Dfa>>,
    info: GateInfo,
    /// The exact pattern text (compiled on first use); `None` when not exact.
    exact_src: Option<String>,
    /// The exact pattern is the gate's own text (one compiled regex serves both).
    exact_is_gate: bool,
    exact: OnceLock<Option<regex::Regex>>,
}

fn build(pattern: &str) -> Option<regex::Regex> {
    regex::RegexBuilder::new(pattern)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(4 << 20)
        .build()
        .ok()
}

impl Gate {
    /// Builds the gate from the two emissions (`gate_src` valid for every
    /// haystack, `exact_src` exact under [`Gate::exact_for`]).
    ///
    /// Nothing is compiled here: the gate and the exact regex are built on first use (the
    /// Unicode classes make them the largest part of a compiled filter).
    pub(crate) fn new(gate_src: &str, exact_src: &str, info: GateInfo) -> Gate {
        let same = exact_src == gate_src;
        let exact_src = if info.relaxed {
            None
        } else {
            Some(exact_src.to_string())
        };
        Gate {
            gate_src: gate_src.to_string(),
            gate: OnceLock::new(),
            info,
            exact_is_gate: same && exact_src.is_some(),
            exact_src,
            exact: OnceLock::new(),
        }
    }

    fn gate(&self) -> Option<&Dfa> {
        self.gate.get_or_init(|| Dfa::new(&self.gate_src)).as_ref()
    }

    /// `false` only if the pattern cannot match `haystack`.
    pub(crate) fn may_match(&self, haystack: &str) -> bool {
        self.check(haystack) != Some(false)
    }

    /// Whether the gate matches `haystack`: `Some(false)` only if the pattern cannot match
    /// it; `None` when no gate could be built or its search could not finish.
    pub(crate) fn check(&self, haystack: &str) -> Option<bool> {
        self.gate()?.check(haystack)
    }

    /// [`Gate::check`] with the lazy DFA's own account of its work; `None` when no gate could
    /// be built.
    pub(crate) fn scan(&self, haystack: &str) -> Option<crate::GateScan> {
        Some(self.gate()?.scan(haystack))
    }

    /// The gate's pattern (`regex`-crate syntax).
    pub(crate) fn source(&self) -> &str {
        &self.gate_src
    }

    /// Whether a gate could be built at all.
    pub(crate) fn has_gate(&self) -> bool {
        self.gate().is_some()
    }

    /// Whether the gate itself is the exact regex for `haystack`: a gate match
    /// is then the answer of [`crate::Regex::is_match`].
    pub(crate) fn gate_is_exact_for(&self, haystack: &str) -> bool {
        self.exact_is_gate && self.exact_applies(haystack)
    }

    /// The exact linear-time regex, if it is exact for `haystack`.
    pub(crate) fn exact_for(&self, haystack: &str) -> Option<&regex::Regex> {
        if !self.exact_applies(haystack) {
            return None;
        }
        self.exact
            .get_or_init(|| self.exact_src.as_deref().and_then(build))
            .as_ref()
    }

    /// Whether the exact translation agrees with Python on `haystack`.
    fn exact_applies(&self, haystack: &str) -> bool {
        // Python's `\B` never matches an empty string; the `regex` crate's does.
        if self.info.relaxed || haystack.is_empty() {
            return false;
        }
        if self.info.unicode_boundary && !haystack.is_ascii() {
            return false;
        }
        if self.info.nonml_dollar {
            // `$` without MULTILINE is "end, or before a final newline"; the
            // multi-line `$` used here is the same only if no other `\n` exists.
            let body = haystack.strip_suffix('\n').unwrap_or(haystack);
            if body.contains('\n') {
                return false;
            }
        }
        self.exact_src.is_some()
    }
}
