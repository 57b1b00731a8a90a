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

use std::sync::OnceLock;

use crate::translate::GateInfo;

/// Compile-size ceiling for the `regex` crate (the Unicode classes are large).
const SIZE_LIMIT: usize = 64 << 20;

/// The `regex`-crate gate and its exact sibling.
#[derive(Debug)]
pub(crate) struct Gate {
    /// Superset gate; `None` if the `regex` crate could not compile it.
    gate: Option<regex::Regex>,
    info: GateInfo,
    /// The exact pattern text (compiled on first use).
    exact_src: Option<String>,
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
    pub(crate) fn new(gate_src: &str, exact_src: &str, info: GateInfo) -> Gate {
        let gate = build(gate_src);
        let exact = OnceLock::new();
        let exact_src = if info.relaxed {
            None
        } else if exact_src == gate_src {
            let _ = exact.set(gate.clone());
            None
        } else {
            Some(exact_src.to_string())
        };
        Gate {
            gate,
            info,
            exact_src,
            exact,
        }
    }

    /// `false` only if the pattern cannot match `haystack`.
    pub(crate) fn may_match(&self, haystack: &str) -> bool {
        self.gate.as_ref().is_none_or(|g| g.is_match(haystack))
    }

    /// Whether a gate could be built at all.
    pub(crate) fn has_gate(&self) -> bool {
        self.gate.is_some()
    }

    /// Whether the gate itself is the exact regex for `haystack`: a gate match
    /// is then the answer of [`crate::Regex::is_match`].
    pub(crate) fn gate_is_exact_for(&self, haystack: &str) -> bool {
        self.exact_src.is_none() && self.exact_for(haystack).is_some()
    }

    /// The exact linear-time regex, if it is exact for `haystack`.
    pub(crate) fn exact_for(&self, haystack: &str) -> Option<&regex::Regex> {
        // Python's `\B` never matches an empty string; the `regex` crate's does.
        if self.info.relaxed || haystack.is_empty() {
            return None;
        }
        if self.info.unicode_boundary && !haystack.is_ascii() {
            return None;
        }
        if self.info.nonml_dollar {
            // `$` without MULTILINE is "end, or before a final newline"; the
            // multi-line `$` used here is the same only if no other `\n` exists.
            let body = haystack.strip_suffix('\n').unwrap_or(haystack);
            if body.contains('\n') {
                return None;
            }
        }
        self.exact
            .get_or_init(|| self.exact_src.as_deref().and_then(build))
            .as_ref()
    }
}
