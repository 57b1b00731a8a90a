//! Date templates: one way of finding a date in a line and converting it.

use std::sync::OnceLock;

use regex::{CaptureLocations, Regex};

use crate::DateError;

/// The precomputed `audit(` searcher of the Epoch templates.
fn audit_finder() -> &'static memchr::memmem::Finder<'static> {
    static F: std::sync::OnceLock<memchr::memmem::Finder<'static>> = std::sync::OnceLock::new();
    F.get_or_init(|| memchr::memmem::Finder::new(b"audit("))
}
use crate::native::{Form, Native, Recall};
use crate::pattern::{self, Begin, LINE_BEGIN, WORD_BEGIN};
use crate::strptime::{self, Context, Fields, Key};

/// How a template finds its date.
#[derive(Debug)]
pub(crate) enum Kind {
    /// A regular expression (datepattern), optionally with a native fast path.
    Regex(Box<RegexTemplate>),
    /// Unix time, optionally in milli-/microseconds (`LEPOCH`).
    Epoch { long: bool },
    /// A TAI64N label (`@4000000...`).
    Tai64n,
}

/// When a template's regex is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compile {
    /// At construction (a user's datepattern: every error shows at once).
    Now,
    /// On first use (the defaults, known to compile, and the defaults embedded in a user's
    /// `{DATE}` wrap but the first one; their syntax is still checked at construction).
    Lazy,
}

/// A regex-based template.
#[derive(Debug)]
pub(crate) struct RegexTemplate {
    source: String,
    /// Compiled on first use for the default templates, plain or wrapped (most of them are
    /// never searched with it: the screen rules them out, or a native matcher reads the date).
    re: OnceLock<Option<Regex>>,
    /// The same pattern without Unicode, for ASCII lines (compiled on first use; `None` when
    /// it does not compile that way). On a line of ASCII characters only it matches exactly
    /// where the Unicode regex does (its classes, case folding and word boundaries differ only
    /// on non-ASCII characters), and its far smaller automaton makes the capture search that
    /// reads a match's groups several times cheaper (e.g. tine20's `{DATE}` wrap).
    ascii_re: OnceLock<Option<regex::bytes::Regex>>,
    /// Groups (duplicates included) holding the date text.
    date_groups: Vec<usize>,
    /// Field groups in group order.
    fields: Vec<(usize, Key)>,
    /// `%p` groups.
    ampm: Vec<usize>,
    /// `{EPOCH}` patterns: group of the epoch value and long form flag.
    epoch_value: Option<(Vec<usize>, bool)>,
    native: Option<Native>,
    /// `^[^c]*c({DATE})` wrapping a default with a native matcher: the regex can only match
    /// with the date right after the first `c` of the line.
    wrapped: Option<(char, Native)>,
}

/// A date template.
#[derive(Debug)]
pub(crate) struct Template {
    /// Unique name within a detector.
    pub name: String,
    /// `LINE_BEGIN`, `LINE_END`, `WORD_BEGIN`, `WORD_END`.
    pub flags: u8,
    /// Sorting weight (line-begin twins of the defaults weigh 100).
    pub weight: f64,
    /// Pattern substituted for `{DATE}` when this default is embedded
    /// (`None`: the name is substituted instead).
    pub embed: Option<String>,
    pub kind: Kind,
}

/// A template match, byte offsets into the line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit {
    pub start: usize,
    pub end: usize,
    /// The date text (group 1), if that group took part in the match.
    pub date: Option<(usize, usize)>,
    /// The fields were parsed by a native matcher (into the caller's buffer).
    pub native: bool,
}

impl Hit {
    /// A match read by a native matcher, the date being the whole match.
    fn native(start: usize, end: usize) -> Hit {
        Hit {
            start,
            end,
            date: Some((start, end)),
            native: true,
        }
    }
}

impl Hit {
    /// A match of an anchored template read by its native matcher: from the line's start to
    /// `end`, the date at `date_start..end`.
    fn anchored(date_start: usize, end: usize) -> Hit {
        Hit {
            start: 0,
            end,
            date: Some((date_start, end)),
            native: true,
        }
    }
}

/// Where an anchored template's native matcher reads a line searched from its start.
#[derive(Debug, Clone, Copy)]
enum Start {
    /// A `{DATE}` wrap after a character the line lacks: no match.
    Never,
    /// The matcher's form and the position it is asked at.
    At(Native, Form, usize),
    /// No anchored native form: the other paths of [`Template::find`] decide.
    Free,
}

impl RegexTemplate {
    /// The anchored native form of a search of `h` from its start: a `{DATE}` wrap after
    /// the first `c` of the line (`^[^c]*c(...)`) reads the date right after that `c`; a
    /// line-begin template with a native matcher reads it at the line's start.
    #[inline]
    fn anchored_start(&self, flags: u8, h: &[u8]) -> Start {
        if let Some((c, native)) = self.wrapped {
            // `c` is ASCII punctuation (see `first_char_wrap`)
            return match memchr::memchr(c as u8, h) {
                Some(p) => Start::At(native, Form::Body, p + 1),
                None => Start::Never,
            };
        }
        match self.native {
            Some(native) if flags & LINE_BEGIN != 0 => Start::At(native, Form::LineBegin, 0),
            _ => Start::Free,
        }
    }

    /// The compiled regex (`None` only if a lazily compiled pattern that parsed fails to
    /// compile, which the defaults never do (tested); the template then matches nothing).
    fn re(&self) -> Option<&Regex> {
        self.re
            .get_or_init(|| Regex::new(&self.source).ok())
            .as_ref()
    }

    /// The ASCII twin of [`RegexTemplate::re`], for lines of ASCII characters only.
    fn ascii_re(&self) -> Option<&regex::bytes::Regex> {
        self.ascii_re
            .get_or_init(|| {
                regex::bytes::RegexBuilder::new(&self.source)
                    .unicode(false)
                    .build()
                    .ok()
            })
            .as_ref()
    }
}

/// Where the groups of a template's last capture search are: the capture locations of its
/// Unicode regex, or of its ASCII twin when the line was ASCII (byte offsets either way).
#[derive(Debug, Default)]
pub(crate) struct Locations {
    unicode: Option<CaptureLocations>,
    ascii: Option<regex::bytes::CaptureLocations>,
    /// The last search used the ASCII twin.
    last_ascii: bool,
    /// The last match of the template's native matcher at a given position.
    recall: Recall,
}

impl Locations {
    /// The fields of the remembered match that answered last (see [`Template::find_anchored`]).
    pub(crate) fn recalled_fields(&self) -> &Fields {
        self.recall.fields()
    }

    /// Group `i` of the last capture search.
    fn get(&self, i: usize) -> Option<(usize, usize)> {
        if self.last_ascii {
            self.ascii.as_ref()?.get(i)
        } else {
            self.unicode.as_ref()?.get(i)
        }
    }
}

/// Names of the capture groups of `source` by group index (0 = the whole match), as the
/// `regex` crate numbers them, read from the syntax tree without compiling.
fn capture_names(source: &str) -> Result<Vec<Option<String>>, Box<regex_syntax::ast::Error>> {
    use regex_syntax::ast::{Ast, GroupKind};
    fn walk(ast: &Ast, out: &mut Vec<Option<String>>) {
        match ast {
            Ast::Group(g) => {
                let (index, name) = match &g.kind {
                    GroupKind::CaptureIndex(i) => (Some(*i), None),
                    GroupKind::CaptureName { name, .. } => (Some(name.index), Some(&name.name)),
                    GroupKind::NonCapturing(_) => (None, None),
                };
                if let Some(i) = index.and_then(|i| usize::try_from(i).ok()) {
                    if out.len() <= i {
                        out.resize(i + 1, None);
                    }
                    out[i] = name.cloned();
                }
                walk(&g.ast, out);
            }
            Ast::Repetition(r) => walk(&r.ast, out),
            Ast::Alternation(a) => a.asts.iter().for_each(|a| walk(a, out)),
            Ast::Concat(c) => c.asts.iter().for_each(|a| walk(a, out)),
            _ => {}
        }
    }
    let ast = regex_syntax::ast::parse::Parser::new()
        .parse(source)
        .map_err(Box::new)?;
    let mut out = vec![None];
    walk(&ast, &mut out);
    Ok(out)
}

fn groups_named(names: &[Option<String>], pred: impl Fn(&str) -> bool) -> Vec<usize> {
    names
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            n.as_deref()
                .filter(|n| pred(pattern::base_name(n)))
                .map(|_| i)
        })
        .collect()
}

/// Python-like word character (`str.isalnum()` or `_`).
pub(crate) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn word_at(s: &str, i: usize) -> bool {
    s[i..].chars().next().is_some_and(is_word_char)
}

fn word_before(s: &str, i: usize) -> bool {
    s[..i].chars().next_back().is_some_and(is_word_char)
}

/// Byte offsets of the first (up to) two leading non-word characters'
/// ends, i.e. the possible starts after `^\W{0,2}`, longest first.
fn line_starts(s: &str) -> ([usize; 3], usize) {
    let mut out = [0; 3];
    let mut n = 1;
    let mut at = 0;
    for c in s.chars().take(2) {
        if is_word_char(c) {
            break;
        }
        at += c.len_utf8();
        out[n] = at;
        n += 1;
    }
    out[..n].reverse();
    (out, n)
}

/// End of the preferred epoch match starting at `p` (`hay` is the searchable text).
fn epoch_at(hay: &str, p: usize, long: bool) -> Option<usize> {
    let b = hay.as_bytes();
    let run = |from: usize| {
        b[from.min(b.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let n = run(p);
    let edge = |e: usize| e >= hay.len() || !word_at(hay, e) || !word_before(hay, e);
    for k in [11, 10] {
        if n < k {
            continue;
        }
        let base = p + k;
        if long {
            if n >= k + 3 {
                let q = base + 3;
                if b.get(q) == Some(&b'.') {
                    let f = run(q + 1);
                    for l in (1..=f.min(6)).rev() {
                        if edge(q + 1 + l) {
                            return Some(q + 1 + l);
                        }
                    }
                }
                if n >= k + 6 && edge(q + 3) {
                    return Some(q + 3);
                }
                if edge(q) {
                    return Some(q);
                }
            }
            if edge(base) {
                return Some(base);
            }
        } else {
            // `\b` right after the digits
            if !edge(base) {
                continue;
            }
            if b.get(base) == Some(&b'.') {
                let f = run(base + 1);
                for l in (3..=f.min(6)).rev() {
                    if edge(base + 1 + l) {
                        return Some(base + 1 + l);
                    }
                }
            }
            return Some(base);
        }
    }
    None
}

/// Can an (unanchored) epoch start at `p`: line start, right after a leading
/// `[`, or right after a word `audit(`.
fn epoch_start_ok(line: &str, p: usize) -> bool {
    p == 0
        || (p == 1 && line.starts_with('['))
        || (p >= 6
            && line.is_char_boundary(p - 6)
            && &line[p - 6..p] == "audit("
            && !word_before(line, p - 6))
}

fn tai64n_at(hay: &str, p: usize) -> Option<usize> {
    let b = hay.as_bytes();
    let e = p + 25;
    (b.get(p) == Some(&b'@')
        && b.len() >= e
        && b[p + 1..e]
            .iter()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        && (e == b.len() || !word_at(hay, e)))
    .then_some(e)
}

/// The delimiter `c` of a wrap `^[^c]*c({DATE})` (`c` an escaped ASCII punctuation
/// character, the same in both places).
fn first_char_wrap(wrap: &str) -> Option<char> {
    let rest = wrap.strip_prefix("^[^\\")?;
    let c = rest.chars().next().filter(char::is_ascii_punctuation)?;
    let tail = &rest[1..];
    (tail == format!("]*\\{c}({{DATE}})")).then_some(c)
}

/// Start positions a full search tries with the native matcher before the DFA.
const NATIVE_SCAN: usize = 48;

/// Value of an epoch text: seconds, or milli-/microseconds in the long form.
fn epoch_value(text: &str, long: bool) -> Option<f64> {
    let v: f64 = text.parse().ok()?;
    if long && text.len() >= 13 {
        if text.len() >= 16 && !text.contains('.') {
            return Some(v / 1_000_000.0);
        }
        return Some(v / 1000.0);
    }
    Some(v)
}

impl Template {
    fn from_spec(
        spec: pattern::RegexSpec,
        name: String,
        embed: Option<String>,
        native: Option<Native>,
        epoch_long: Option<bool>,
        compile: Compile,
    ) -> Result<Template, DateError> {
        let re = OnceLock::new();
        match compile {
            Compile::Now => {
                let compiled = Regex::new(&spec.source).map_err(|e| DateError::Regex {
                    pattern: name.clone(),
                    source: Box::new(e),
                })?;
                let _ = re.set(Some(compiled));
            }
            // the syntax tree is read below (syntax errors, duplicate group names show there)
            Compile::Lazy => {}
        }
        let names = capture_names(&spec.source).map_err(|e| DateError::Pattern {
            pattern: name.clone(),
            reason: e.to_string(),
        })?;
        let date_groups = groups_named(&names, |n| n == spec.date_group);
        let mut fields = Vec::new();
        for (i, n) in names.iter().enumerate() {
            if let Some(k) = n
                .as_deref()
                .and_then(|n| Key::from_group_name(pattern::base_name(n)))
            {
                fields.push((i, k));
            }
        }
        let ampm = groups_named(&names, |n| n == "p");
        let epoch_value = match (epoch_long, &spec.second_group) {
            (Some(long), Some(g)) => Some((groups_named(&names, |n| n == g), long)),
            _ => None,
        };
        Ok(Template {
            name,
            flags: spec.flags,
            weight: 1.0,
            embed,
            kind: Kind::Regex(Box::new(RegexTemplate {
                source: spec.source,
                re,
                ascii_re: OnceLock::new(),
                date_groups,
                fields,
                ampm,
                epoch_value,
                native,
                wrapped: None,
            })),
        })
    }

    /// A `%`-code datepattern template.
    pub(crate) fn pattern(p: &str) -> Result<Template, DateError> {
        Template::pattern_with(p, Compile::Now)
    }

    /// A default template: its regex is compiled on first use.
    pub(crate) fn default_pattern(p: &str) -> Result<Template, DateError> {
        Template::pattern_with(p, Compile::Lazy)
    }

    fn pattern_with(p: &str, compile: Compile) -> Result<Template, DateError> {
        let (spec, name) = pattern::pattern_regex(p)?;
        let body = p
            .strip_prefix("{UNB}")
            .or_else(|| p.strip_prefix("{^LN-BEG}"))
            .unwrap_or(p);
        let native = if p.starts_with("{UNB}") {
            None
        } else {
            Native::for_pattern(body)
        };
        Template::from_spec(spec, name, Some(body.to_owned()), native, None, compile)
    }

    /// A default template `body` embedded in a `{DATE}` wrap.
    /// `compile_now`: compile at once (one of the wraps of a list is, which shows the errors
    /// of the wrap itself); the others are compiled on first use after a syntax check.
    pub(crate) fn wrapped(
        wrap: &str,
        body: &str,
        compile_now: bool,
    ) -> Result<Template, DateError> {
        let p = replace_marker(wrap, &["{DATE}"], body);
        let compile = if compile_now {
            Compile::Now
        } else {
            Compile::Lazy
        };
        let mut t = Template::pattern_with(&p, compile)?;
        if let Some(c) = first_char_wrap(wrap)
            && let Some(native) = Native::for_pattern(body)
            && let Kind::Regex(rt) = &mut t.kind
            && t.flags == LINE_BEGIN | pattern::WORD_END
            && rt.date_groups.len() == 1
        {
            rt.wrapped = Some((c, native));
        }
        Ok(t)
    }

    /// A pattern with an `{EPOCH}` / `{LEPOCH}` placeholder.
    pub(crate) fn epoch_pattern(p: &str, long: bool) -> Result<Template, DateError> {
        let inner = if long {
            r"\d{10,11}(?:\d{3}(?:\.\d{1,6}|\d{3})?)?"
        } else {
            r"\d{10,11}\b(?:\.\d{3,6})?"
        };
        let replaced = replace_marker(p, &["{LEPOCH}", "{EPOCH}"], &format!("({inner})"));
        let regex = format!("({replaced})");
        let spec = pattern::template_regex(&regex, Begin::Word, true, true, p)?;
        Template::from_spec(spec, p.to_owned(), None, None, Some(long), Compile::Now)
    }

    /// The plain epoch template.
    pub(crate) fn epoch(line_begin: bool, long: bool) -> Template {
        let base = if long { "LongEpoch" } else { "Epoch" };
        Template {
            name: if line_begin {
                format!("{{^LN-BEG}}{base}")
            } else {
                base.to_owned()
            },
            flags: if line_begin {
                LINE_BEGIN | pattern::WORD_END
            } else {
                pattern::WORD_END
            },
            weight: 1.0,
            embed: None,
            kind: Kind::Epoch { long },
        }
    }

    /// The TAI64N template.
    pub(crate) fn tai64n(line_begin: bool) -> Template {
        Template {
            name: if line_begin {
                "{^LN-BEG}TAI64N".into()
            } else {
                "TAI64N".into()
            },
            flags: if line_begin {
                LINE_BEGIN | pattern::WORD_END
            } else {
                pattern::WORD_END
            },
            weight: 1.0,
            embed: None,
            kind: Kind::Tai64n,
        }
    }

    /// The pattern the screen runs for this template: a regex that matches wherever the
    /// template can match (its own regex, or a looser one for the epoch and TAI64N scanners).
    pub(crate) fn screen_source(&self) -> &str {
        let line_begin = self.flags & LINE_BEGIN != 0;
        match (&self.kind, line_begin) {
            (Kind::Regex(rt), _) => &rt.source,
            // up to two leading characters, then at least ten digits
            (Kind::Epoch { .. }, true) => r"^(?s:.){0,2}[0-9]{10}",
            // at the start, after a leading `[`, or after `audit(`
            (Kind::Epoch { .. }, false) => r"^\[?[0-9]{10}|audit\([0-9]{10}",
            (Kind::Tai64n, true) => r"^(?s:.){0,2}@[0-9a-f]{24}",
            (Kind::Tai64n, false) => r"@[0-9a-f]{24}",
        }
    }

    /// The source of the template's regex (regex templates only).
    pub(crate) fn regex_source(&self) -> Option<&str> {
        match &self.kind {
            Kind::Regex(rt) => Some(&rt.source),
            _ => None,
        }
    }

    /// [`Template::find`] of a whole line (`pos` 0, not windowed) when an anchored native
    /// form finds the date: the same hit, answered from the remembered matches ([`Recall`])
    /// when one applies, else read by the matcher (which remembers it); the match's fields are
    /// then [`Locations::recalled_fields`] (and also in `fields` when the matcher ran).
    /// `None` when there is no such form or it finds no date or cannot tell: the search
    /// itself then decides.
    #[inline]
    pub(crate) fn find_anchored(
        &self,
        line: &str,
        locs: &mut Locations,
        fields: &mut Fields,
    ) -> Option<Hit> {
        let Kind::Regex(rt) = &self.kind else {
            return None;
        };
        let h = line.as_bytes();
        let Start::At(native, form, i) = rt.anchored_start(self.flags, h) else {
            return None;
        };
        let (k, end) = match locs.recall.recall(native, form, h, i) {
            Some((found, _)) => found,
            None => native
                .recalled(form, h, i, fields, &mut locs.recall)
                .ok()??,
        };
        Some(Hit::anchored(k, end))
    }

    /// Searches `line[pos..end]` (byte offsets; `end` limits what the search
    /// sees, like a line that ends there). `ascii`: the line is all ASCII.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn find(
        &self,
        line: &str,
        pos: usize,
        end: usize,
        windowed: bool,
        ascii: bool,
        locs: &mut Locations,
        fields: &mut Fields,
    ) -> Option<Hit> {
        let hay = &line[..end];
        if pos > hay.len() {
            return None;
        }
        let line_begin = self.flags & LINE_BEGIN != 0;
        match &self.kind {
            Kind::Epoch { long } => {
                if line_begin {
                    if pos > 0 {
                        return None;
                    }
                    let (starts, n) = line_starts(hay);
                    return starts[..n].iter().find_map(|&k| {
                        epoch_at(hay, k, *long).map(|e| Hit {
                            start: 0,
                            end: e,
                            date: Some((k, e)),
                            native: false,
                        })
                    });
                }
                let mut cands = [usize::MAX; 2];
                if pos == 0 {
                    cands[0] = 0;
                }
                if pos <= 1 && line.starts_with('[') {
                    cands[1] = 1;
                }
                for p in cands.into_iter().filter(|&p| p != usize::MAX) {
                    if let Some(e) = epoch_at(hay, p, *long) {
                        return Some(Hit {
                            start: p,
                            end: e,
                            date: Some((p, e)),
                            native: false,
                        });
                    }
                }
                let mut from = pos.saturating_sub(6);
                while let Some(off) = hay
                    .get(from..)
                    .and_then(|s| audit_finder().find(s.as_bytes()))
                {
                    let p = from + off + 6;
                    if p >= pos
                        && epoch_start_ok(line, p)
                        && let Some(e) = epoch_at(hay, p, *long)
                    {
                        return Some(Hit {
                            start: p,
                            end: e,
                            date: Some((p, e)),
                            native: false,
                        });
                    }
                    from = from + off + 1;
                }
                None
            }
            Kind::Tai64n => {
                if line_begin {
                    if pos > 0 {
                        return None;
                    }
                    let (starts, n) = line_starts(hay);
                    return starts[..n].iter().find_map(|&k| {
                        tai64n_at(hay, k).map(|e| Hit {
                            start: 0,
                            end: e,
                            date: Some((k, e)),
                            native: false,
                        })
                    });
                }
                let mut from = pos;
                while let Some(off) = hay
                    .get(from..)
                    .and_then(|s| memchr::memchr(b'@', s.as_bytes()))
                {
                    let p = from + off;
                    if let Some(e) = tai64n_at(hay, p) {
                        return Some(Hit {
                            start: p,
                            end: e,
                            date: Some((p, e)),
                            native: false,
                        });
                    }
                    from = p + 1;
                }
                None
            }
            Kind::Regex(rt) => {
                let start = if pos == 0 {
                    rt.anchored_start(self.flags, hay.as_bytes())
                } else {
                    Start::Free
                };
                match start {
                    Start::Never => return None,
                    Start::At(native, form, i) => {
                        match native.recalled(form, hay.as_bytes(), i, fields, &mut locs.recall) {
                            Ok(Some((k, end))) => return Some(Hit::anchored(k, end)),
                            Ok(None) => return None,
                            Err(_) => {}
                        }
                    }
                    Start::Free => {}
                }
                if let Some(native) = rt.native {
                    if line_begin && pos == 0 {
                        // answered above, or not natively (`Unsure`): the regex decides
                    } else if windowed
                        && self.flags & WORD_BEGIN != 0
                        && let Ok(Some((_, end))) = native.recalled(
                            Form::Word,
                            hay.as_bytes(),
                            pos,
                            fields,
                            &mut locs.recall,
                        )
                    {
                        return Some(Hit::native(pos, end));
                    }
                }
                // A full search with a native matcher: the DFA finds the span, the native
                // matcher (exact at a given start) reads the fields, no capture engine needed.
                if let Some(native) = rt.native
                    && !windowed
                    && !line_begin
                    && self.flags & WORD_BEGIN != 0
                {
                    // The first positions are tried natively (the date is usually near the
                    // line start): the first start with a native match is the leftmost match;
                    // after positions without one the DFA goes on from the next position.
                    let h = hay.as_bytes();
                    let mut from = pos;
                    if ascii && native.skips() {
                        // On ASCII text the native matcher is exact at every start, and the
                        // starts it rules out are skipped with memchr: the first native match
                        // is the leftmost match, and no native match means no match at all.
                        let mut at = pos;
                        loop {
                            let i = native.next_start(h, at)?;
                            match native.recalled(Form::Word, h, i, fields, &mut locs.recall) {
                                Ok(Some((_, end))) => {
                                    return Some(Hit::native(i, end));
                                }
                                Ok(None) => at = i + 1,
                                // not on ASCII text; the scan below decides
                                Err(_) => break,
                            }
                        }
                    }
                    let limit = h.len().min(pos + NATIVE_SCAN);
                    while from < limit {
                        if native.cannot_start(h, from) {
                            from += 1;
                            continue;
                        }
                        match native.word_at(h, from, fields) {
                            Ok(Some(end)) => {
                                return Some(Hit::native(from, end));
                            }
                            Ok(None) => from += 1,
                            Err(_) => {
                                from = pos;
                                break;
                            }
                        }
                    }
                    let m = rt.re()?.find_at(hay, from)?;
                    if let Ok(Some(end)) = native.word_at(hay.as_bytes(), m.start(), fields)
                        && end == m.end()
                    {
                        return Some(Hit::native(m.start(), end));
                    }
                }
                let (start, end) = match rt.ascii_re().filter(|_| ascii) {
                    Some(re) => {
                        let l = locs.ascii.get_or_insert_with(|| re.capture_locations());
                        let m = re.captures_read_at(l, hay.as_bytes(), pos)?;
                        locs.last_ascii = true;
                        (m.start(), m.end())
                    }
                    None => {
                        let re = rt.re()?;
                        let l = locs.unicode.get_or_insert_with(|| re.capture_locations());
                        let m = re.captures_read_at(l, hay, pos)?;
                        locs.last_ascii = false;
                        (m.start(), m.end())
                    }
                };
                let date = rt.date_groups.iter().find_map(|&g| locs.get(g));
                Some(Hit {
                    start,
                    end,
                    date,
                    native: false,
                })
            }
        }
    }

    /// Converts a hit of this template to unix seconds.
    pub(crate) fn time(
        &self,
        line: &str,
        hit: &Hit,
        locs: &Locations,
        native: &Fields,
        ctx: &mut Context<'_>,
    ) -> Option<f64> {
        let (s, e) = hit.date?;
        match &self.kind {
            Kind::Epoch { long } => epoch_value(&line[s..e], *long),
            Kind::Tai64n => {
                let hex = line.get(s + 2..s + 17)?;
                i64::from_str_radix(hex, 16).ok().map(|v| v as f64)
            }
            Kind::Regex(rt) => {
                if hit.native {
                    return strptime::to_unix(native, ctx);
                }
                if let Some((groups, long)) = &rt.epoch_value {
                    let (a, b) = groups.iter().find_map(|&g| locs.get(g))?;
                    return epoch_value(&line[a..b], *long);
                }
                let ampm = rt
                    .ampm
                    .iter()
                    .find_map(|&g| locs.get(g))
                    .map(|(a, b)| &line[a..b]);
                let mut f = Fields::default();
                for &(g, key) in &rt.fields {
                    if let Some((a, b)) = locs.get(g) {
                        f.set(key, &line[a..b], ampm);
                    }
                }
                strptime::to_unix(&f, ctx)
            }
        }
    }
}

/// Replaces unescaped, case-insensitive occurrences of any of `markers`.
pub(crate) fn replace_marker(s: &str, markers: &[&str], with: &str) -> String {
    let upper = s.to_ascii_uppercase();
    let mut out = String::with_capacity(s.len() + with.len());
    let mut i = 0;
    'outer: while i < s.len() {
        for m in markers {
            if upper[i..].starts_with(m) && !(i > 0 && s.as_bytes()[i - 1] == b'\\') {
                out.push_str(with);
                i += m.len();
                continue 'outer;
            }
        }
        let c = s[i..].chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_forms() {
        assert_eq!(epoch_at("1138253920 x", 0, false), Some(10));
        assert_eq!(epoch_at("1138253920.123 x", 0, false), Some(14));
        assert_eq!(epoch_at("1138253920.1234567 x", 0, false), Some(10));
        assert_eq!(epoch_at("1138253920.12a", 0, false), Some(10));
        assert_eq!(epoch_at("113825392012", 0, false), None);
        assert_eq!(epoch_at("1138253920x", 0, false), None);
        assert_eq!(epoch_at("1138253920123", 0, true), Some(13));
        assert_eq!(epoch_at("1138253920123456", 0, true), Some(16));
        assert_eq!(epoch_at("1138253920123.4", 0, true), Some(15));
        assert_eq!(epoch_value("1138253920123", true), Some(1_138_253_920.123));
        assert_eq!(
            epoch_value("1138253920123456", true),
            Some(1_138_253_920.123456)
        );
        assert!(epoch_start_ok("type=x audit(1138253920.123:1)", 13));
        assert!(!epoch_start_ok("xaudit(1138253920", 7));
    }

    /// The screen pattern of the epoch and TAI64N templates matches every line they match.
    #[test]
    fn screen_sources_cover_the_scanners() {
        let templates = [
            Template::epoch(false, false),
            Template::epoch(true, false),
            Template::epoch(false, true),
            Template::epoch(true, true),
            Template::tai64n(false),
            Template::tai64n(true),
        ];
        let mut lines = Vec::new();
        for date in [
            "1138253920",
            "1138253920.123",
            "11382539201",
            "1138253920123",
            "1138253920123456",
            "@4000000037c219bf2ef02e94",
            "@4000000037C219BF2EF02E94",
        ] {
            for pre in [
                "",
                "[",
                " ",
                "[[",
                "é",
                "x ",
                "audit(",
                "type=X audit(",
                "xaudit(",
                "a@",
            ] {
                for post in ["", " x", "]", ":1)", "a", "0"] {
                    lines.push(format!("{pre}{date}{post}"));
                }
            }
        }
        let mut found = 0;
        for t in &templates {
            let screen = regex::Regex::new(t.screen_source()).unwrap();
            let bytes = regex::bytes::RegexBuilder::new(t.screen_source())
                .unicode(false)
                .build()
                .unwrap();
            for l in &lines {
                let hit = t.find(
                    l,
                    0,
                    l.len(),
                    false,
                    l.is_ascii(),
                    &mut Locations::default(),
                    &mut Fields::default(),
                );
                if hit.is_some() {
                    found += 1;
                    assert!(screen.is_match(l), "{} {l:?}", t.name);
                    assert!(
                        !l.is_ascii() || bytes.is_match(l.as_bytes()),
                        "{} {l:?}",
                        t.name
                    );
                }
            }
        }
        assert!(found > 100, "{found}");
    }

    /// The lazily compiled defaults compile, and their group names read from the syntax tree
    /// are the `regex` crate's.
    #[test]
    fn defaults_compile_with_the_same_groups() {
        let mut n = 0;
        for spec in pattern::defaults::LIST {
            let pattern::defaults::Spec::Pattern(p) = spec else {
                continue;
            };
            let mut forms = vec![p.to_string()];
            if !p.starts_with('^') && !p.starts_with("{^LN-BEG}") {
                forms.push(format!("{{^LN-BEG}}{p}"));
            }
            for p in forms {
                let t = Template::default_pattern(&p).unwrap();
                let Kind::Regex(rt) = &t.kind else { panic!() };
                assert!(rt.re.get().is_none());
                let names: Vec<Option<String>> = rt
                    .re()
                    .unwrap()
                    .capture_names()
                    .map(|n| n.map(str::to_owned))
                    .collect();
                assert_eq!(capture_names(&rt.source).unwrap(), names, "{p}");
                n += 1;
            }
        }
        assert!(n >= 25, "{n}");
        assert_eq!(
            capture_names(r"(a)(?:b)(?P<x>c(d))|(?<y>e)").unwrap(),
            vec![None, None, Some("x".into()), None, Some("y".into())]
        );
    }

    /// On ASCII lines the ASCII twin of every default pattern (plain, `{^LN-BEG}` and wrapped
    /// the way tine20's `datepattern` wraps `{DATE}`) finds the same match with the same
    /// groups as the Unicode regex.
    #[test]
    fn the_ascii_twin_captures_what_the_unicode_regex_captures() {
        let dates = [
            "2005-08-14 11:00:00",
            "2005-08-14T11:00:00.123+02:00",
            "2005/08/14 11:00:00,5",
            "Aug 14 11:00:00",
            "Mon Aug 14 11:00:00 2005",
            "Aug 14 11:00:00.123456 2005",
            "aug 14 2005 11:00:00",
            "14/Aug/2005:11:00:00 +0200",
            "14-Aug-2005 11:00:00.123 -0700",
            "14/08/05 11:00:00",
            "08/14/2005:11:00:00",
            "08-14-2005 11:00:00",
            "20050814 110000",
            "20050814T110000.5 UTC",
            "050814 11:00:00",
            "Aug 14, 2005 11:00:00 AM",
            "Aug 14, 2005 1:00:00 pm",
            "Mon, 14 Aug 2005 11:00:00 +0000",
            "CEST Aug 14 11:00:00",
            "+0200 Aug 14 11:00:00",
            "11:00:00",
            "[14/Aug/2005:11:00:00 +0200]",
        ];
        let mut lines = Vec::new();
        for d in dates {
            for (pre, post) in [
                ("", ""),
                ("", " host sshd[1]: x"),
                ("a1b2c -- none -- - ", " WARN x"),
                ("192.0.2.1 - - [", "] \"GET / HTTP/1.1\" 404"),
                ("x ", "x"),
                ("KELVIN k s S ", " _w9"),
            ] {
                lines.push(format!("{pre}{d}{post}"));
            }
        }
        let mut compared = 0;
        for spec in pattern::defaults::LIST {
            let pattern::defaults::Spec::Pattern(p) = spec else {
                continue;
            };
            for form in [
                p.to_string(),
                format!("{{^LN-BEG}}{p}"),
                format!("^[^-]+ -- [^-]+ -- - ({p})"),
            ] {
                let Ok(t) = Template::default_pattern(&form) else {
                    continue;
                };
                let Kind::Regex(rt) = &t.kind else { continue };
                let (Some(re), Some(ascii)) = (rt.re(), rt.ascii_re()) else {
                    panic!("{form}: no ASCII twin");
                };
                let mut u = re.capture_locations();
                let mut a = ascii.capture_locations();
                for l in &lines {
                    let mu = re.captures_read_at(&mut u, l, 0).map(|m| m.range());
                    let ma = ascii
                        .captures_read_at(&mut a, l.as_bytes(), 0)
                        .map(|m| m.range());
                    assert_eq!(mu, ma, "{form} on {l:?}");
                    if mu.is_some() {
                        compared += 1;
                        for g in 0..u.len() {
                            assert_eq!(u.get(g), a.get(g), "{form} group {g} on {l:?}");
                        }
                    }
                }
            }
        }
        assert!(compared > 200, "{compared}");
    }

    #[test]
    fn markers() {
        assert_eq!(
            replace_marker(r"^a{epoch}b\{EPOCH}", &["{EPOCH}"], "X"),
            r"^aXb\{EPOCH}"
        );
    }
}
