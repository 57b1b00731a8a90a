//! The `datepattern` dialect: `%`-codes, boundary markers and the rules that
//! turn a pattern into the regular expression a template searches with.
//!
//! The pipeline mirrors fail2ban's semantics:
//! 1. `{UNB}` disables both word boundaries, `{^LN-BEG}` asks for a
//!    line-begin anchor (`^` plus at most two non-word characters);
//! 2. `%`-codes expand to named groups (`%%` is a literal `%`); an unknown code is
//!    an error; a pattern using a name code (`%a %A %b %B %p %c`) is matched
//!    case-insensitively as a whole;
//! 3. unless the pattern already starts with `^`/`**`, the match must begin at a
//!    word edge, and unless it ends with `$`/`\b`/`\s`/`**` it must end at one;
//! 4. a pattern without a plain capturing group is wrapped in one: group 1 is
//!    the date text that is cut out of the line.
//!
//! Patterns are written in Python `re` syntax; the parts the `regex` crate
//! lacks are rewritten: `(?P=name)` back-references to a group matching one
//! of a few literal characters are expanded into alternatives, `\Z` becomes
//! `\z`. Lookaround and conditionals are rejected by the `regex` crate.

use crate::DateError;

/// Template flag: anchored at the line begin.
pub(crate) const LINE_BEGIN: u8 = 8;
/// Template flag: anchored at the line end.
pub(crate) const LINE_END: u8 = 4;
/// Template flag: must start at a word edge.
pub(crate) const WORD_BEGIN: u8 = 2;
/// Template flag: must end at a word edge.
pub(crate) const WORD_END: u8 = 1;

/// Years accepted by `%ExY`: 2000 to 2029, the range fail2ban 1.0.2 derives
/// from its start-up clock in the 2020s.
pub(crate) const EX_YEAR: &str = r"20[0-2]\d";

/// The `regex`-crate spelling of "not in the middle of a word".
const EDGE: &str = r"(?:\b{start-half}|\b{end-half})";
/// Line-begin anchor: start of line and up to two non-word characters.
const LINE_START: &str = r"^(?:\W{0,2})?";

/// Regex of a `%`-code (also used by the date parser through its group names).
fn code_regex(code: &str) -> Option<String> {
    const DAY: &str = r"[12]\d|[0 ]?[1-9]|3[01]";
    const ZONE_ABBR: &str = r"[A-Z](?:[A-Z]{2,4})?";
    const OFFSET: &str = r"[+-][01]\d(?::?\d{2})?";
    Some(match code {
        "a" => r"(?P<a>mon|tue|wed|thu|fri|sat|sun)".into(),
        "A" => r"(?P<A>monday|tuesday|wednesday|thursday|friday|saturday|sunday)".into(),
        "b" => r"(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)".into(),
        "B" => concat!(
            r"(?P<B>january|february|march|april|may|june|july|august",
            r"|september|october|november|december)"
        )
        .into(),
        "c" => concat!(
            r"(?P<a>mon|tue|wed|thu|fri|sat|sun)\s+",
            r"(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)\s+",
            r"(?P<d>3[01]|[12]\d|0[1-9]|[1-9]| [1-9])\s+",
            r"(?P<H>2[0-3]|[01]\d|\d):(?P<M>[0-5]\d|\d):(?P<S>6[01]|[0-5]\d|\d)\s+(?P<Y>\d{4})"
        )
        .into(),
        "d" | "e" => format!("(?P<d>{DAY})"),
        "f" => r"(?P<f>[0-9]{1,6})".into(),
        "G" => r"(?P<G>\d{4})".into(),
        "H" => r"(?P<H>[01]?\d|2[0-3])".into(),
        "I" => r"(?P<I>1[0-2]|0[1-9]|[1-9])".into(),
        "j" => r"(?P<j>36[0-6]|3[0-5]\d|[12]\d\d|0[1-9]\d|00[1-9]|[1-9]\d|0[1-9]|[1-9])".into(),
        "k" => r" ?(?P<H>[0-2]?\d)".into(),
        "l" => r" ?(?P<I>1?\d)".into(),
        "m" => r"(?P<m>0?[1-9]|1[0-2])".into(),
        "M" => r"(?P<M>[0-5]?\d)".into(),
        "p" => r"(?P<p>am|pm)".into(),
        "S" => r"(?P<S>[0-5]?\d|6[01])".into(),
        "s" => r"(?P<s>\d{1,18})".into(),
        "u" => r"(?P<u>[1-7])".into(),
        "U" => r"(?P<U>5[0-3]|[0-4]\d|\d)".into(),
        "V" => r"(?P<V>5[0-3]|0[1-9]|[1-4]\d|\d)".into(),
        "w" => r"(?P<w>[0-6])".into(),
        "W" => r"(?P<W>5[0-3]|[0-4]\d|\d)".into(),
        "x" => concat!(
            r"(?P<m>1[0-2]|0[1-9]|[1-9])/(?P<d>3[01]|[12]\d|0[1-9]|[1-9]| [1-9])",
            r"/(?P<y>\d\d)"
        )
        .into(),
        "X" => r"(?P<H>2[0-3]|[01]\d|\d):(?P<M>[0-5]\d|\d):(?P<S>6[01]|[0-5]\d|\d)".into(),
        "y" | "Exy" => r"(?P<y>\d\d)".into(),
        "Y" => r"(?P<Y>\d{4})".into(),
        "z" => format!("(?P<z>Z|UTC|GMT|{OFFSET})"),
        "Z" => r"(?P<Z>Z|[A-Z]{3,5})".into(),
        "%" => "%".into(),
        "ExZ" => format!("(?P<Z>{ZONE_ABBR})"),
        "Exz" => format!("(?P<z>(?:{ZONE_ABBR})?{OFFSET}|{ZONE_ABBR})"),
        "Exd" => r"(?P<d>[12]\d|0[1-9]|3[01])".into(),
        "Exm" => r"(?P<m>0[1-9]|1[0-2])".into(),
        "ExH" => r"(?P<H>[01]\d|2[0-3])".into(),
        "Exk" => r" ?(?P<H>[01]?\d|2[0-3])".into(),
        "Exl" => r" ?(?P<I>1[0-2]|\d)".into(),
        "ExM" => r"(?P<M>[0-5]\d)".into(),
        "ExS" => r"(?P<S>[0-5]\d|6[01])".into(),
        "ExY" => format!("(?P<Y>{EX_YEAR})"),
        _ => return None,
    })
}

/// Expands the `%`-codes of a pattern. Returns the regex text and whether a
/// name code (case-insensitive matching) was used.
fn expand_codes(pattern: &str) -> Result<(String, bool), DateError> {
    let mut out = String::with_capacity(pattern.len() * 4);
    let mut alpha = false;
    let mut rest = pattern;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let code = if after.starts_with("Ex") && after.len() >= 3 && after.is_char_boundary(3) {
            Some(&after[..3]).filter(|c| code_regex(c).is_some())
        } else {
            None
        }
        .or_else(|| {
            let c = after.chars().next()?;
            Some(&after[..c.len_utf8()]).filter(|c| code_regex(c).is_some())
        });
        let Some(code) = code else {
            return Err(DateError::Pattern {
                pattern: pattern.to_owned(),
                reason: format!(
                    "unknown or unescaped `%` code at `%{}`",
                    after.chars().take(3).collect::<String>()
                ),
            });
        };
        alpha |= matches!(code, "a" | "A" | "b" | "B" | "p" | "c");
        out.push_str(&code_regex(code).unwrap_or_default());
        rest = &after[code.len()..];
    }
    out.push_str(rest);
    Ok((out, alpha))
}

/// Length of a leading inline flag group `(?flags)` (word characters only).
fn flag_group_len(s: &str) -> Option<usize> {
    let r = s.strip_prefix("(?")?;
    let n = r
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    (n > 0 && r[n..].starts_with(')')).then_some(n + 3)
}

/// Removes the first inline global flag group such as `(?iu)`.
fn take_global_flags(s: &mut String) -> Option<String> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while let Some(off) = s[i..].find("(?") {
        let at = i + off;
        let n = s[at + 2..]
            .bytes()
            .take_while(u8::is_ascii_lowercase)
            .count();
        if n > 0 && bytes.get(at + 2 + n) == Some(&b')') {
            let g = s[at..at + 3 + n].to_owned();
            s.replace_range(at..at + 3 + n, "");
            return Some(g);
        }
        i = at + 2;
    }
    None
}

/// Variants of `s` after skipping the optional leading flag group.
fn after_flags(s: &str) -> [&str; 2] {
    match flag_group_len(s) {
        Some(n) => [&s[n..], s],
        None => [s, s],
    }
}

/// Does the regex itself already say where it begins (`^`, `(^`, `**`)?
fn explicit_begin(s: &str) -> bool {
    let parens = s.bytes().take_while(|&b| b == b'(').count();
    (0..=parens).any(|k| {
        after_flags(&s[k..]).iter().any(|r| {
            r.starts_with('^')
                || r.trim_start_matches('(').starts_with("**")
                || r.starts_with("(^")
                || r.starts_with("(?:^")
        })
    })
}

fn escaped_at(s: &str, i: usize) -> bool {
    i > 0 && s.as_bytes()[i - 1] == b'\\'
}

/// Does the regex itself already say where it ends (`$`, `\b`, `\s`, `**`)?
fn explicit_end(s: &str) -> bool {
    let mut starts = Vec::new();
    if s.ends_with('$') {
        starts.push(s.len() - 1);
    }
    if s.ends_with("$)") {
        starts.push(s.len() - 2);
    }
    if s.ends_with(r"\b") || s.ends_with(r"\s") {
        starts.push(s.len() - 2);
    }
    let t = s.trim_end_matches(')');
    if t.ends_with("**") {
        starts.push(t.len() - 2);
    }
    starts.into_iter().any(|i| !escaped_at(s, i))
}

/// Anchored at the line begin without the `{^LN-BEG}` marker?
fn anchored_begin(s: &str) -> bool {
    after_flags(s).iter().any(|r| {
        r.starts_with('^')
            || ["(^", "(?:^"]
                .iter()
                .any(|p| r.starts_with(p) && !r[p.len()..].starts_with('|'))
    })
}

/// Anchored at the line end?
fn anchored_end(s: &str) -> bool {
    let dollar = if s.ends_with("$)") {
        s.len() - 2
    } else if s.ends_with('$') {
        s.len() - 1
    } else {
        return false;
    };
    !(dollar > 0 && matches!(s.as_bytes()[dollar - 1], b'\\' | b'|'))
}

/// Removes `**` word-boundary suppressors at the start and the end.
fn strip_stars(s: &str) -> String {
    let mut out = s.to_owned();
    let t = out.trim_end_matches(')');
    if t.ends_with("**") && !escaped_at(&out, t.len() - 2) {
        let at = t.len() - 2;
        out.replace_range(at..at + 2, "");
    }
    let parens = out.bytes().take_while(|&b| b == b'(').count();
    let mut p = parens;
    if let Some(n) = flag_group_len(&out[p..]) {
        p += n;
    }
    p += out[p..].bytes().take_while(|&b| b == b'(').count();
    if out[p..].starts_with("**") {
        out.replace_range(p..p + 2, "");
    }
    out
}

/// Byte offsets of the opening parenthesis of every capturing group, in
/// group-number order, with the group name if any. Skips escapes and classes.
fn capture_groups(s: &str) -> Vec<(usize, Option<String>)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut in_class = false;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'[' if !in_class => {
                in_class = true;
                if b.get(i + 1) == Some(&b'^') {
                    i += 1;
                }
                if b.get(i + 1) == Some(&b']') {
                    i += 1;
                }
            }
            b']' if in_class => in_class = false,
            b'(' if !in_class => {
                if b.get(i + 1) != Some(&b'?') {
                    out.push((i, None));
                } else if s[i..].starts_with("(?P<")
                    || (s[i..].starts_with("(?<")
                        && !s[i..].starts_with("(?<=")
                        && !s[i..].starts_with("(?<!"))
                {
                    let start = s[i..].find('<').map_or(i, |k| i + k + 1);
                    if let Some(end) = s[start..].find('>') {
                        out.push((i, Some(s[start..start + end].to_owned())));
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// fail2ban's "is there a plain group already" test: an unescaped `(` not
/// followed by `?` (named groups do not count).
fn has_plain_group(s: &str) -> bool {
    let b = s.as_bytes();
    (0..b.len()).any(|i| {
        b[i] == b'('
            && !escaped_at(s, i)
            && b.get(i + 1) != Some(&b'?')
            && !(i >= 2 && &b[i - 2..i] == b"(?")
    })
}

/// Wraps the body (after an optional leading `^` and flag groups, before an
/// optional trailing `$`) in a capturing group.
fn wrap_group(s: &str) -> String {
    let mut p = 0;
    if let Some(n) = flag_group_len(s) {
        p += n;
    }
    if s[p..].starts_with('^') {
        p += 1;
    }
    if let Some(n) = flag_group_len(&s[p..]) {
        p += n;
    }
    let (body, tail) = match s[p..].strip_suffix('$') {
        Some(b) => (b, "$"),
        None => (&s[p..], ""),
    };
    format!("{}({}){}", &s[..p], body, tail)
}

/// Finds the end (exclusive) of the group whose `(` is at `open`.
fn group_end(s: &str, open: usize) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    let mut in_class = false;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'[' if !in_class => {
                in_class = true;
                if b.get(i + 1) == Some(&b'^') {
                    i += 1;
                }
                if b.get(i + 1) == Some(&b']') {
                    i += 1;
                }
            }
            b']' if in_class => in_class = false,
            b'(' if !in_class => depth += 1,
            b')' if !in_class => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Literal characters a back-referenced group can match (a class or an
/// alternation of single characters).
fn group_chars(body: &str) -> Option<Vec<char>> {
    let mut out = Vec::new();
    if let Some(inner) = body.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        if inner.starts_with('^') {
            return None;
        }
        let cs: Vec<char> = inner.chars().collect();
        let mut i = 0;
        while i < cs.len() {
            let c = if cs[i] == '\\' {
                i += 1;
                *cs.get(i)?
            } else {
                cs[i]
            };
            if cs.get(i + 1) == Some(&'-') && i + 2 < cs.len() {
                let hi = cs[i + 2];
                if (hi as u32).saturating_sub(c as u32) > 32 {
                    return None;
                }
                out.extend(c..=hi);
                i += 3;
                continue;
            }
            out.push(c);
            i += 1;
        }
    } else {
        for alt in body.split('|') {
            let alt = alt.strip_prefix('\\').unwrap_or(alt);
            let mut it = alt.chars();
            let c = it.next()?;
            if it.next().is_some() {
                return None;
            }
            out.push(c);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Suffix used to keep duplicated group names unique.
pub(crate) const DUP_SUFFIX: &str = "__dup";

fn rename_groups(s: &str, k: usize) -> String {
    s.replace("(?P<", "(?P\u{1}<")
        .split('\u{1}')
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                return part.to_owned();
            }
            match part.find('>') {
                Some(e) => format!("{}{DUP_SUFFIX}{k}{}", &part[..e], &part[e..]),
                None => part.to_owned(),
            }
        })
        .collect::<String>()
        .replace("(?P=", "(?P\u{2}=")
        .split('\u{2}')
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                return part.to_owned();
            }
            match part.find(')') {
                Some(e) => format!("{}{DUP_SUFFIX}{k}{}", &part[..e], &part[e..]),
                None => part.to_owned(),
            }
        })
        .collect()
}

/// Rewrites `(?P<n>[abc]) ... (?P=n)` as `(?:a...a|b...b|c...c)`.
fn expand_backrefs(mut s: String, pattern: &str) -> Result<String, DateError> {
    let unsupported = |why: &str| DateError::Pattern {
        pattern: pattern.to_owned(),
        reason: format!("unsupported back-reference: {why}"),
    };
    for _ in 0..16 {
        let Some(r) = s.find("(?P=") else {
            return Ok(s);
        };
        let name_end = s[r..]
            .find(')')
            .ok_or_else(|| unsupported("unterminated"))?
            + r;
        let name = s[r + 4..name_end].to_owned();
        let def = s
            .find(&format!("(?P<{name}>"))
            .filter(|&d| d < r)
            .ok_or_else(|| unsupported("reference before its group"))?;
        let def_end = group_end(&s, def).ok_or_else(|| unsupported("unbalanced group"))?;
        if def_end > r {
            // `(?P<n>a(?P=n))`: found by the filter fuzzer (a slice past its end before).
            return Err(unsupported("reference inside its own group"));
        }
        let body = &s[def + 5 + name.len()..def_end - 1];
        let chars = group_chars(body)
            .ok_or_else(|| unsupported("group is not a set of literal characters"))?;
        let mid = &s[def_end..r];
        // the reference must sit at the same nesting level as its group
        let mut depth = 0i32;
        let mb = mid.as_bytes();
        let mut i = 0;
        let mut in_class = false;
        while i < mb.len() {
            match mb[i] {
                b'\\' => i += 1,
                b'[' => in_class = true,
                b']' => in_class = false,
                b'(' if !in_class => depth += 1,
                b')' if !in_class => {
                    depth -= 1;
                    if depth < 0 {
                        return Err(unsupported("reference outside of its group's scope"));
                    }
                }
                _ => {}
            }
            i += 1;
        }
        if depth != 0 {
            return Err(unsupported("reference inside a nested group"));
        }
        let alts: Vec<String> = chars
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let lit = regex::escape(&c.to_string());
                let m = if k == 0 {
                    mid.to_owned()
                } else {
                    rename_groups(mid, k)
                };
                format!("{lit}{m}{lit}")
            })
            .collect();
        let replacement = format!("(?:{})", alts.join("|"));
        s.replace_range(def..name_end + 1, &replacement);
    }
    Err(unsupported("too many back-references"))
}

/// Gives group number `n` (1-based, Python numbering) a name if it has none;
/// returns the group's name.
fn name_group(s: &mut String, n: usize, fresh: &str) -> Option<String> {
    let (at, name) = capture_groups(s).into_iter().nth(n - 1)?;
    if let Some(name) = name {
        return Some(name);
    }
    s.insert_str(at + 1, &format!("?P<{fresh}>"));
    Some(fresh.to_owned())
}

/// Where a template may begin.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Begin {
    /// Anywhere.
    Any,
    /// At a word edge.
    Word,
    /// At the line begin (after up to two non-word characters).
    Line,
}

/// A compiled-to-text template regex.
#[derive(Debug, Clone)]
pub(crate) struct RegexSpec {
    /// Source for the `regex` crate.
    pub source: String,
    /// Template flags (`LINE_BEGIN`...).
    pub flags: u8,
    /// Name of the group that holds the date text (Python's group 1).
    pub date_group: String,
    /// Name of Python's group 2 when requested (epoch value of `{EPOCH}` patterns).
    pub second_group: Option<String>,
}

/// Name of the group 1 marker.
pub(crate) const G1: &str = "__date";
/// Name of the group 2 marker.
pub(crate) const G2: &str = "__value";

/// Builds the final regex of a template from a (code-expanded) regex, like
/// fail2ban's generic template setup.
pub(crate) fn template_regex(
    regex: &str,
    begin: Begin,
    word_end: bool,
    want_group2: bool,
    pattern: &str,
) -> Result<RegexSpec, DateError> {
    let mut core = regex.trim().to_owned();
    let flags_group = take_global_flags(&mut core);
    let bound_begin = begin != Begin::Any && !explicit_begin(&core);
    let bound_end = word_end && !explicit_end(&core);
    if !has_plain_group(&core) {
        core = wrap_group(&core);
    }
    let mut flags = 0;
    let prefix = match (bound_begin, begin) {
        (true, Begin::Line) => {
            flags |= LINE_BEGIN;
            LINE_START
        }
        (true, _) => {
            flags |= WORD_BEGIN;
            EDGE
        }
        _ => "",
    };
    if bound_end {
        flags |= WORD_END;
    } else if anchored_end(&core) {
        flags |= LINE_END;
    }
    if prefix.is_empty() && anchored_begin(&core) {
        flags |= LINE_BEGIN;
    }
    core = strip_stars(&core);
    let date_group = name_group(&mut core, 1, G1).ok_or_else(|| DateError::Pattern {
        pattern: pattern.to_owned(),
        reason: "no capturing group".into(),
    })?;
    let second_group = if want_group2 {
        name_group(&mut core, 2, G2)
    } else {
        None
    };
    let core = expand_backrefs(core, pattern)?.replace(r"\Z", r"\z");
    let mut source = String::new();
    if let Some(g) = flags_group {
        source.push_str(&g);
    }
    source.push_str(prefix);
    source.push_str(&core);
    if bound_end {
        source.push_str(EDGE);
    }
    Ok(RegexSpec {
        source,
        flags,
        date_group,
        second_group,
    })
}

/// Builds a `%`-code datepattern (the generic pattern template).
pub(crate) fn pattern_regex(pattern: &str) -> Result<(RegexSpec, String), DateError> {
    let mut p = pattern;
    let mut begin = Begin::Word;
    let mut word_end = true;
    if let Some(r) = p.strip_prefix("{UNB}") {
        p = r;
        begin = Begin::Any;
        word_end = false;
    }
    if begin != Begin::Any
        && let Some(r) = p.strip_prefix("{^LN-BEG}")
    {
        p = r;
        begin = Begin::Line;
    }
    let (mut regex, alpha) = expand_codes(p)?;
    if alpha {
        regex.insert_str(0, "(?iu)");
    }
    let spec = template_regex(&regex, begin, word_end, false, pattern)?;
    let name = if spec.flags & LINE_BEGIN != 0 && begin == Begin::Line {
        format!("{{^LN-BEG}}{p}")
    } else {
        p.to_owned()
    };
    Ok((spec, name))
}

/// Normalises a capture group name (drops the suffix of duplicated groups).
pub(crate) fn base_name(name: &str) -> &str {
    match name.find(DUP_SUFFIX) {
        Some(i) => &name[..i],
        None => name,
    }
}

/// The default templates, in fail2ban's order.
pub(crate) mod defaults {
    /// ISO 8601-like, `YYYY-MM-DD hh:mm:ss`, also `/` and `.` separated.
    pub const ISO: &str =
        r"%ExY(?P<_sep>[./-])%m(?P=_sep)%d(?:T| {1,2})%H:%M:%S(?:[,.]%f)?(?:\s*%z)?";
    /// syslog / asctime `Www Mmm dd hh:mm:ss[.fff][ YYYY]`.
    pub const SYSLOG: &str = r"(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?";
    /// Apache / nginx access log `dd/Mmm/YYYY:hh:mm:ss[ zone]`.
    pub const APACHE: &str = r"%d(?P<_sep>[/-])%b(?P=_sep)%ExY[: ]?%H:%M:%S(?:\.%f)?(?: %z)?";

    /// One default template.
    #[derive(Debug, Clone, Copy)]
    pub enum Spec {
        /// A `%`-code datepattern.
        Pattern(&'static str),
        /// Unix time.
        Epoch,
        /// TAI64N label.
        Tai64n,
    }

    /// The default list (each non-anchored entry also gets a line-begin twin).
    pub const LIST: [Spec; 17] = [
        Spec::Pattern(ISO),
        Spec::Pattern(SYSLOG),
        Spec::Pattern(r"(?:%a )?%b %d %ExY %k:%M:%S(?:\.%f)?"),
        Spec::Pattern(r"%d(?P<_sep>[/-])%m(?P=_sep)(?:%ExY|%Exy) %k:%M:%S"),
        Spec::Pattern(APACHE),
        Spec::Pattern(r"%m/%d/%ExY:%H:%M:%S"),
        Spec::Pattern(r"%m-%d-%ExY %k:%M:%S(?:\.%f)?"),
        Spec::Epoch,
        Spec::Pattern(r"{^LN-BEG}%H:%M:%S"),
        Spec::Pattern(r"^<%m/%d/%Exy@%H:%M:%S>"),
        Spec::Pattern(r"%Exy%Exm%Exd {1,2}%H:%M:%S"),
        Spec::Pattern(r"%b %d, %ExY %I:%M:%S %p"),
        Spec::Pattern(r"^%b-%d-%Exy %k:%M:%S"),
        Spec::Pattern(r"%ExY%Exm%Exd(?:T| {1,2})%ExH%ExM%ExS(?:[,.]%f)?(?:\s*%z)?"),
        Spec::Pattern(r"(?:%Z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?"),
        Spec::Pattern(r"(?:%z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?"),
        Spec::Tai64n,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(p: &str) -> RegexSpec {
        pattern_regex(p).unwrap().0
    }

    #[test]
    fn codes() {
        assert!(expand_codes("%Q").is_err());
        assert!(expand_codes("100%").is_err());
        assert_eq!(expand_codes("%%").unwrap().0, "%");
        assert!(expand_codes("%b").unwrap().1);
        assert!(!expand_codes("%%b").unwrap().1);
    }

    #[test]
    fn bounds_and_flags() {
        let s = src("%H:%M:%S");
        assert_eq!(s.flags, WORD_BEGIN | WORD_END);
        assert!(s.source.starts_with(EDGE));
        let s = src("{^LN-BEG}%H:%M:%S");
        assert_eq!(s.flags, LINE_BEGIN | WORD_END);
        let s = src("^%H:%M:%S");
        assert_eq!(s.flags, LINE_BEGIN | WORD_END);
        let s = src("%H:%M:%S$");
        assert_eq!(s.flags, WORD_BEGIN | LINE_END);
        let s = src("**%H:%M:%S**");
        assert_eq!(s.flags, 0);
        assert!(!s.source.contains("**"));
        let s = src("{UNB}^");
        assert_eq!(s.source, format!("^(?P<{G1}>)"));
    }

    #[test]
    fn backrefs() {
        let s = src(defaults::ISO);
        assert!(!s.source.contains("(?P="));
        regex::Regex::new(&s.source).unwrap();
        let s = src("^(%d(?P<_sep>[-/])%m(?P=_sep)%Y)");
        assert_eq!(s.date_group, G1);
        regex::Regex::new(&s.source).unwrap();
    }

    /// Found by the filter fuzzer: a back-reference inside the group it names sliced the
    /// pattern past its end (a panic); it is refused now.
    #[test]
    fn a_back_reference_inside_its_own_group_is_refused() {
        let e = pattern_regex("%d(?P<s>[-/](?P=s))%m").unwrap_err();
        assert!(e.to_string().contains("inside its own group"), "{e}");
    }

    #[test]
    fn groups() {
        assert!(has_plain_group("a(b)"));
        assert!(!has_plain_group(r"a\(b(?:c)(?P<x>d)"));
        assert_eq!(wrap_group("^abc$"), "^(abc)$");
        assert_eq!(wrap_group("(?i)^abc"), "(?i)^(abc)");
    }
}
