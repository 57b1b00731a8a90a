//! Emitters: the parsed Python pattern as PCRE2 syntax (exact) and as
//! `regex`-crate syntax (exact where the crate can express it, otherwise a
//! provable superset).
//!
//! Every Python construct whose meaning differs between engines is spelled
//! out explicitly instead of relying on engine defaults:
//!
//! | Python                     | emitted                                                  |
//! |----------------------------|----------------------------------------------------------|
//! | `\w` (Unicode)             | `[A-Za-z0-9_\p{L}\p{N}]` (Python: `str.isalnum()` or `_`) |
//! | `\d` (Unicode)             | `[0-9\p{Nd}]`                                             |
//! | `\s` (Unicode)             | the 29 code points for which `str.isspace()` holds        |
//! | `.`                        | `[^\n]` (`(?s:.)` under DOTALL)                            |
//! | `^` / `$` (no MULTILINE)   | `\A` / end or before a final `\n`                          |
//! | `^` / `$` (MULTILINE)      | after `\n` or at start (also after a final `\n`) / before `\n` or at end |
//! | `\Z`                       | `\z`                                                      |
//! | `\b` `\B`                  | boundaries over Python's word class                        |
//! | `{,n}`                     | `{0,n}`; a `{` that is no quantifier becomes `\{`          |
//! | `\<`, `[`, `&&` in classes | escaped literals                                          |
//! | `(?i)` on `i`/`I`          | `[iI\x{130}\x{131}]` (Python also folds dotted/dotless i)  |
//!
//! For the `regex` crate, constructs it lacks are replaced by something that
//! matches at least as much (look-arounds and `\b` by nothing, back-references
//! by `(?s:.*)`, conditionals by the alternation of both branches, atomic and
//! possessive by their plain forms, non-multiline `$` by multi-line `$`).
//! [`GateInfo`] records which of these happened so callers know when the gate
//! is exact.

use std::fmt::Write;

use crate::parse::{Assertion, ClassItem, Greed, Node, Perl, PerlKind};

// The ASCII members first, though `\p{L}`/`\p{N}` hold them: PCRE2's JIT then decides an
// ASCII character from its bitmap instead of a property lookup (the same set).
const WORD_U: &str = r"A-Za-z0-9_\p{L}\p{N}";
const WORD_A: &str = "A-Za-z0-9_";
const DIGIT_U: &str = r"0-9\p{Nd}";
const DIGIT_A: &str = "0-9";
const SPACE_U: &str = r"\t\n\x{b}\x{c}\r\x{1c}-\x{20}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}";
const SPACE_A: &str = r"\t\n\x{b}\x{c}\r\x{20}";

/// The class body (without brackets) of a positive Python class escape.
fn perl_body(p: Perl) -> &'static str {
    match (p.kind, p.ascii) {
        (PerlKind::Word, false) => WORD_U,
        (PerlKind::Word, true) => WORD_A,
        (PerlKind::Digit, false) => DIGIT_U,
        (PerlKind::Digit, true) => DIGIT_A,
        (PerlKind::Space, false) => SPACE_U,
        (PerlKind::Space, true) => SPACE_A,
    }
}

/// A literal outside a class, safe for both engines.
fn push_lit(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() || c == '_' {
        out.push(c);
    } else if "\\.+*?()|[]{}^$#&-~".contains(c) {
        out.push('\\');
        out.push(c);
    } else if c.is_ascii_graphic() || c == ' ' {
        // Not special in either engine outside a class (`<`, `>` are never escaped:
        // `\<` means a word boundary to the `regex` crate).
        out.push(c);
    } else {
        let _ = write!(out, "\\x{{{:x}}}", c as u32);
    }
}

/// A literal inside a class, safe for both engines.
fn push_class_lit(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() || c == '_' {
        out.push(c);
    } else if c.is_ascii_graphic() {
        out.push('\\');
        out.push(c);
    } else {
        let _ = write!(out, "\\x{{{:x}}}", c as u32);
    }
}

/// Whether Python's case-insensitive matching of `c` needs the dotted/dotless
/// `i` spelled out (no engine folds U+0130/U+0131 to `i` like Python does).
fn is_i(c: char) -> bool {
    c == 'i' || c == 'I'
}

const PY_ICASE_I: &str = r"[iI\x{130}\x{131}]";

/// Which engine the output is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// PCRE2, exact.
    Pcre2,
    /// `regex` crate, a superset valid for every haystack.
    Gate,
    /// `regex` crate, exact for ASCII haystacks (see [`GateInfo`]).
    ExactAscii,
}

/// What the `regex`-crate emission had to approximate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct GateInfo {
    /// Look-arounds, back-references, conditionals, atomic groups or
    /// possessive repeats were relaxed: never exact.
    pub relaxed: bool,
    /// A Unicode `\b`/`\B` occurs: exact only on ASCII haystacks (with [`Target::ExactAscii`]).
    pub unicode_boundary: bool,
    /// A non-multi-line `$` occurs: exact only when `\n` occurs at most as the last byte.
    pub nonml_dollar: bool,
}

struct Emitter {
    target: Target,
    info: GateInfo,
}

/// Emits `node` for `target`.
pub(crate) fn emit(node: &Node, target: Target) -> (String, GateInfo) {
    let mut e = Emitter {
        target,
        info: GateInfo::default(),
    };
    let mut out = String::new();
    e.node(node, &mut out);
    (out, e.info)
}

impl Emitter {
    fn pcre(&self) -> bool {
        self.target == Target::Pcre2
    }

    fn node(&mut self, node: &Node, out: &mut String) {
        match node {
            Node::Empty => {}
            Node::Literal { c, icase } => self.literal(*c, *icase, out),
            Node::Class {
                negated,
                items,
                icase,
            } => self.class(*negated, items, *icase, out),
            Node::Perl(p) => {
                out.push('[');
                if p.negated {
                    out.push('^');
                }
                out.push_str(perl_body(*p));
                out.push(']');
            }
            Node::Any { dotall } => out.push_str(if *dotall { "(?s:.)" } else { r"[^\n]" }),
            Node::Assert(a) => self.assertion(*a, out),
            Node::Concat(items) => {
                let mut i = 0;
                while i < items.len() {
                    // Merge runs of case-insensitive literals into one `(?i:...)`.
                    if let Node::Literal { c, icase: true } = items[i]
                        && !is_i(c)
                    {
                        let mut run = String::new();
                        while let Some(Node::Literal { c, icase: true }) = items.get(i) {
                            if is_i(*c) {
                                break;
                            }
                            push_lit(&mut run, *c);
                            i += 1;
                        }
                        let _ = write!(out, "(?i:{run})");
                        continue;
                    }
                    self.node(&items[i], out);
                    i += 1;
                }
            }
            Node::Alt(alts) => {
                out.push_str("(?:");
                for (k, a) in alts.iter().enumerate() {
                    if k > 0 {
                        out.push('|');
                    }
                    self.node(a, out);
                }
                out.push(')');
            }
            Node::Group { name, node, .. } => {
                match name {
                    Some(n) => {
                        let _ = write!(out, "(?P<{n}>");
                    }
                    None => out.push('('),
                }
                self.node(node, out);
                out.push(')');
            }
            Node::NonCapture(node) => {
                out.push_str("(?:");
                self.node(node, out);
                out.push(')');
            }
            Node::Atomic(node) => {
                if self.pcre() {
                    out.push_str("(?>");
                } else {
                    self.info.relaxed = true;
                    out.push_str("(?:");
                }
                self.node(node, out);
                out.push(')');
            }
            Node::Look {
                behind,
                negated,
                node,
            } => {
                if self.pcre() {
                    out.push_str(match (behind, negated) {
                        (false, false) => "(?=",
                        (false, true) => "(?!",
                        (true, false) => "(?<=",
                        (true, true) => "(?<!",
                    });
                    self.node(node, out);
                    out.push(')');
                } else {
                    // A zero-width test dropped: matches wherever the original did.
                    self.info.relaxed = true;
                }
            }
            Node::Repeat {
                node,
                min,
                max,
                greed,
            } => {
                // PCRE2 repeats a single item (a class, a literal, a group) without a group
                // around it far faster: it runs `[^\n]+` as one loop, `(?:[^\n])+` as one
                // group entry per character. The same language and backtracking order.
                let atom = self.pcre()
                    && matches!(
                        **node,
                        Node::Literal { .. }
                            | Node::Class { .. }
                            | Node::Perl(_)
                            | Node::Any { .. }
                            | Node::Group { .. }
                            | Node::NonCapture(_)
                            | Node::Alt(_)
                    );
                if atom {
                    self.node(node, out);
                } else {
                    out.push_str("(?:");
                    self.node(node, out);
                    out.push(')');
                }
                match (min, max) {
                    (0, None) => out.push('*'),
                    (1, None) => out.push('+'),
                    (0, Some(1)) => out.push('?'),
                    (m, None) => {
                        let _ = write!(out, "{{{m},}}");
                    }
                    (m, Some(n)) if m == n => {
                        let _ = write!(out, "{{{m}}}");
                    }
                    (m, Some(n)) => {
                        let _ = write!(out, "{{{m},{n}}}");
                    }
                }
                match greed {
                    Greed::Greedy => {}
                    Greed::Lazy => out.push('?'),
                    Greed::Possessive => {
                        if self.pcre() {
                            out.push('+');
                        } else {
                            self.info.relaxed = true;
                        }
                    }
                }
            }
            Node::Backref { index, icase } => {
                if self.pcre() {
                    if *icase {
                        let _ = write!(out, r"(?i:\g{{{index}}})");
                    } else {
                        let _ = write!(out, r"\g{{{index}}}");
                    }
                } else {
                    self.info.relaxed = true;
                    out.push_str("(?s:.*)");
                }
            }
            Node::Cond { index, yes, no } => {
                if self.pcre() {
                    let _ = write!(out, "(?({index})");
                    self.node(yes, out);
                    out.push('|');
                    self.node(no, out);
                    out.push(')');
                } else {
                    self.info.relaxed = true;
                    out.push_str("(?:");
                    self.node(yes, out);
                    out.push('|');
                    self.node(no, out);
                    out.push(')');
                }
            }
        }
    }

    fn literal(&mut self, c: char, icase: bool, out: &mut String) {
        if icase && is_i(c) {
            out.push_str(PY_ICASE_I);
        } else if icase && c.is_lowercase() != c.is_uppercase() {
            out.push_str("(?i:");
            push_lit(out, c);
            out.push(')');
        } else {
            push_lit(out, c);
        }
    }

    fn class(&mut self, negated: bool, items: &[ClassItem], icase: bool, out: &mut String) {
        let mut rest = String::new();
        let mut negs: Vec<&'static str> = Vec::new();
        for item in items {
            match item {
                ClassItem::Range(lo, hi) => {
                    push_class_lit(&mut rest, *lo);
                    if hi != lo {
                        rest.push('-');
                        push_class_lit(&mut rest, *hi);
                    }
                    if icase
                        && (is_i(*lo)
                            || is_i(*hi)
                            || (*lo <= 'I' && *hi >= 'I')
                            || (*lo <= 'i' && *hi >= 'i'))
                    {
                        rest.push_str(r"\x{130}\x{131}");
                    }
                }
                ClassItem::Perl(p) if !p.negated => rest.push_str(perl_body(*p)),
                ClassItem::Perl(p) => negs.push(perl_body(*p)),
            }
        }
        if icase {
            out.push_str("(?i:");
        }
        if negs.is_empty() {
            let _ = write!(out, "[{}{rest}]", if negated { "^" } else { "" });
        } else if !self.pcre() {
            // The `regex` crate has nested classes.
            let _ = write!(out, "[{}{rest}", if negated { "^" } else { "" });
            for n in negs {
                let _ = write!(out, "[^{n}]");
            }
            out.push(']');
        } else if !negated {
            // Union: any of the parts.
            out.push_str("(?:");
            let mut first = true;
            if !rest.is_empty() {
                let _ = write!(out, "[{rest}]");
                first = false;
            }
            for n in negs {
                if !first {
                    out.push('|');
                }
                first = false;
                let _ = write!(out, "[^{n}]");
            }
            out.push(')');
        } else {
            // Complement of the union: in every complemented part, not in the rest.
            out.push_str("(?:");
            if !rest.is_empty() {
                let _ = write!(out, "(?![{rest}])");
            }
            let last = negs.len() - 1;
            for (k, n) in negs.iter().enumerate() {
                if k == last {
                    let _ = write!(out, "[{n}]");
                } else {
                    let _ = write!(out, "(?=[{n}])");
                }
            }
            out.push(')');
        }
        if icase {
            out.push(')');
        }
    }

    fn assertion(&mut self, a: Assertion, out: &mut String) {
        let pcre = self.pcre();
        match a {
            Assertion::StartText => out.push_str(r"\A"),
            Assertion::StartLine => {
                out.push_str(if pcre { r"(?<![^\n])" } else { "(?m:^)" });
            }
            Assertion::EndTextOrFinalNewline => {
                if pcre {
                    out.push_str(r"(?=\n?\z)");
                } else {
                    self.info.nonml_dollar = true;
                    out.push_str("(?m:$)");
                }
            }
            Assertion::EndLine => out.push_str(if pcre { r"(?=\n|\z)" } else { "(?m:$)" }),
            Assertion::EndText => out.push_str(r"\z"),
            Assertion::WordBoundary { negated, ascii } => {
                if pcre {
                    let w = if ascii { WORD_A } else { WORD_U };
                    if negated {
                        let _ = write!(out, r"(?:(?<=[{w}])(?=[{w}])|(?<![{w}])(?![{w}])(?!\A\z))");
                    } else {
                        let _ = write!(out, r"(?:(?<=[{w}])(?![{w}])|(?<![{w}])(?=[{w}]))");
                    }
                } else if ascii || self.target == Target::ExactAscii {
                    if !ascii {
                        self.info.unicode_boundary = true;
                    }
                    out.push_str(if negated { r"(?-u:\B)" } else { r"(?-u:\b)" });
                } else {
                    // Dropped: matches at least wherever the boundary held.
                    self.info.unicode_boundary = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{Flags, parse};

    fn pcre(s: &str) -> String {
        emit(&parse(s, Flags::default()).unwrap().node, Target::Pcre2).0
    }

    fn gate(s: &str) -> (String, GateInfo) {
        emit(&parse(s, Flags::default()).unwrap().node, Target::Gate)
    }

    #[test]
    fn open_ended_counted_repeat_gets_explicit_zero() {
        assert_eq!(pcre("a{,3}"), "a{0,3}");
        assert_eq!(pcre("a{2,}"), "a{2,}");
        assert_eq!(pcre("a{,}"), "a*");
        // a repeated repeat keeps its group (`a*+` would be possessive)
        assert_eq!(pcre("(?:a*)+"), "(?:a*)+");
    }

    #[test]
    fn stray_braces_and_brackets_are_escaped() {
        assert_eq!(pcre("a{b}"), r"a\{b\}");
        assert_eq!(pcre("[[]"), r"[\[]");
        assert_eq!(pcre("[a&&b~~]"), r"[a\&\&b\~\~]");
    }

    #[test]
    fn angle_escapes_are_plain_literals() {
        assert_eq!(pcre(r"\<x\>"), "<x>");
        assert_eq!(gate(r"\<x\>").0, "<x>");
    }

    #[test]
    fn unicode_flag_is_dropped_and_case_is_local() {
        assert_eq!(pcre("(?iu)ab"), "(?i:ab)");
        assert_eq!(pcre("(?i)x(?-i:y)"), "(?i:x)(?:y)");
        assert_eq!(pcre("(?i)i"), PY_ICASE_I);
    }

    #[test]
    fn conditionals_use_pcre2_syntax() {
        assert_eq!(pcre("(?P<a>x)?(?(a)y|z)"), "(?P<a>x)?(?(1)y|z)");
        let (g, info) = gate("(?P<a>x)?(?(a)y|z)");
        assert_eq!(g, "(?:(?P<a>x))?(?:y|z)");
        assert!(info.relaxed);
    }

    #[test]
    fn anchors_follow_python() {
        assert_eq!(pcre("^a$"), r"\Aa(?=\n?\z)");
        let ml = parse(
            "^a$",
            Flags {
                multiline: true,
                ..Flags::default()
            },
        )
        .unwrap()
        .node;
        assert_eq!(emit(&ml, Target::Pcre2).0, r"(?<![^\n])a(?=\n|\z)");
        let (g, info) = gate("^a$");
        assert_eq!(g, r"\Aa(?m:$)");
        assert!(info.nonml_dollar && !info.relaxed);
        assert_eq!(pcre(r"a\Z"), r"a\z");
    }

    #[test]
    fn classes_are_python_unicode_classes() {
        assert_eq!(pcre(r"\w"), r"[A-Za-z0-9_\p{L}\p{N}]");
        assert_eq!(pcre(r"\D"), r"[^0-9\p{Nd}]");
        assert_eq!(pcre(r"(?a)\w"), "[A-Za-z0-9_]");
        assert_eq!(pcre(r"[\W.]"), r"(?:[\.]|[^A-Za-z0-9_\p{L}\p{N}])");
        assert_eq!(pcre(r"[^\W.]"), r"(?:(?![\.])[A-Za-z0-9_\p{L}\p{N}])");
        assert_eq!(gate(r"[^\W.]").0, r"[^\.[^A-Za-z0-9_\p{L}\p{N}]]");
        assert_eq!(pcre("."), r"[^\n]");
    }

    #[test]
    fn lookarounds_and_backrefs_are_relaxed_in_the_gate() {
        let (g, info) = gate(r"(?<=a)b(?!c)(x)\1");
        assert_eq!(g, "b(x)(?s:.*)");
        assert!(info.relaxed);
        let (g, info) = gate(r"\bx");
        assert_eq!(g, "x");
        assert!(info.unicode_boundary && !info.relaxed);
    }
}
