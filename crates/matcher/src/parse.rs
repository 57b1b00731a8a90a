//! A parser for Python's `re` dialect (as of Python 3.11, `str` patterns).
//!
//! The parser resolves inline flags while it reads, so every node carries the
//! flags that govern it (case-insensitivity, `.` and newline, `^`/`$` and
//! multi-line, ASCII vs Unicode classes). The emitters in
//! [`crate::translate`] never have to track flag scopes.
//!
//! Errors mirror Python's `re.error` messages where Python rejects a pattern,
//! so that a filter which fails in fail2ban also fails here.

use std::collections::HashMap;

/// Python's default repeat ceiling (`MAXREPEAT - 1` on 64-bit builds is far
/// larger; a bound is only needed to keep numbers sane).
const MAX_REPEAT: u32 = u32::MAX - 1;

/// Flags in effect at a point of the pattern.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Flags {
    pub icase: bool,
    pub multiline: bool,
    pub dotall: bool,
    pub ascii: bool,
    pub verbose: bool,
}

/// `\d`, `\s` or `\w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PerlKind {
    Digit,
    Space,
    Word,
}

/// A Python class escape (`\d`, `\W`, ...), resolved against the ASCII flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Perl {
    pub kind: PerlKind,
    pub negated: bool,
    pub ascii: bool,
}

/// One member of a character set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClassItem {
    Range(char, char),
    Perl(Perl),
}

/// A zero-width assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Assertion {
    /// `\A`, or `^` without MULTILINE.
    StartText,
    /// `^` with MULTILINE: start of text or after `\n`.
    StartLine,
    /// `$` without MULTILINE: end of text or before a final `\n`.
    EndTextOrFinalNewline,
    /// `$` with MULTILINE: before any `\n` or at the end.
    EndLine,
    /// `\Z`: end of text only.
    EndText,
    /// `\b` (`negated`: `\B`).
    WordBoundary { negated: bool, ascii: bool },
}

/// Repetition flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Greed {
    Greedy,
    Lazy,
    Possessive,
}

/// The parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Empty,
    Literal {
        c: char,
        icase: bool,
    },
    Class {
        negated: bool,
        items: Vec<ClassItem>,
        icase: bool,
    },
    Perl(Perl),
    /// `.`
    Any {
        dotall: bool,
    },
    Assert(Assertion),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    /// A capturing group (index from 1).
    Group {
        index: u32,
        name: Option<String>,
        node: Box<Node>,
    },
    /// `(?:...)` or a scoped-flags group: kept so emitters keep structure.
    NonCapture(Box<Node>),
    /// `(?>...)`
    Atomic(Box<Node>),
    Look {
        behind: bool,
        negated: bool,
        node: Box<Node>,
    },
    Repeat {
        node: Box<Node>,
        min: u32,
        max: Option<u32>,
        greed: Greed,
    },
    Backref {
        index: u32,
        icase: bool,
    },
    Cond {
        index: u32,
        yes: Box<Node>,
        no: Box<Node>,
    },
}

/// Result of a successful parse.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub node: Node,
    /// `names[i]` is the name of group `i + 1`, if any.
    pub names: Vec<Option<String>>,
}

/// A parse failure: message and character offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    pub offset: usize,
    pub message: String,
    /// Python accepts the pattern but this matcher does not implement the feature.
    pub unsupported: bool,
}

type PResult<T> = Result<T, ParseError>;

struct Parser {
    chars: Vec<char>,
    pos: usize,
    /// Number of groups opened so far.
    groups: u32,
    names: Vec<Option<String>>,
    by_name: HashMap<String, u32>,
    /// Groups currently open (not yet closed).
    open: Vec<u32>,
    /// Conditional references to groups checked at the end.
    cond_refs: Vec<(u32, usize)>,
    /// Global flags (set by a leading `(?flags)`).
    global: Flags,
    /// Parentheses entered and not yet left.
    depth: usize,
}

/// Deepest nesting of parentheses a pattern may have. The parser and every pass over the tree
/// recurse once per level, so a pattern of some thousands of nested `(` would exhaust the stack
/// (a daemon crash from an `addfailregex` request or a filter file); Python's own `re` refuses
/// deep nesting too (a RecursionError in its parser). fail2ban's stock filters nest at most
/// about ten levels.
pub(crate) const MAX_NESTING: usize = 100;

/// Parses `pattern` with the initial flags `base` (only `multiline` is used by fail2ban).
pub(crate) fn parse(pattern: &str, base: Flags) -> PResult<Parsed> {
    let mut p = Parser {
        chars: pattern.chars().collect(),
        pos: 0,
        groups: 0,
        names: Vec::new(),
        by_name: HashMap::new(),
        open: Vec::new(),
        cond_refs: Vec::new(),
        global: base,
        depth: 0,
    };
    // Leading global flags apply to the whole pattern: read them first.
    p.global_flags()?;
    let flags = p.global;
    let node = p.alternation(flags)?;
    if p.pos < p.chars.len() {
        // Only a stray ')' can stop the top-level alternation early.
        return Err(p.err_at(p.pos, "unbalanced parenthesis"));
    }
    for &(index, offset) in &p.cond_refs {
        if index > p.groups {
            return Err(p.err_at(offset, &format!("invalid group reference {index}")));
        }
    }
    Ok(Parsed {
        node,
        names: p.names,
    })
}

fn is_py_identifier(name: &str) -> bool {
    let mut it = name.chars();
    match it.next() {
        Some(c) if c == '_' || c.is_alphabetic() => {}
        _ => return false,
    }
    it.all(|c| c == '_' || c.is_alphanumeric())
}

impl Parser {
    fn err_at(&self, offset: usize, msg: &str) -> ParseError {
        ParseError {
            offset,
            message: msg.to_string(),
            unsupported: false,
        }
    }

    fn unsupported(&self, offset: usize, msg: &str) -> ParseError {
        ParseError {
            offset,
            message: msg.to_string(),
            unsupported: true,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, k: usize) -> Option<char> {
        self.chars.get(self.pos + k).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Reads any number of leading `(?flags)` groups (Python 3.11 only accepts
    /// global flags at the very start of the pattern).
    fn global_flags(&mut self) -> PResult<()> {
        loop {
            if self.global.verbose {
                self.skip_verbose();
            }
            let save = self.pos;
            if self.peek() == Some('(')
                && self.peek_at(1) == Some('?')
                && let Some(c) = self.peek_at(2)
                && "aiLmsux".contains(c)
            {
                self.pos += 2;
                let first = self.next().unwrap_or(')');
                match self.flags(first, self.global)? {
                    FlagsOutcome::Global(f) => {
                        self.global = f;
                        continue;
                    }
                    FlagsOutcome::Scoped(_) => {
                        self.pos = save;
                        return Ok(());
                    }
                }
            }
            return Ok(());
        }
    }

    fn skip_verbose(&mut self) {
        while let Some(c) = self.peek() {
            if c == '#' {
                while let Some(c) = self.next() {
                    if c == '\n' {
                        break;
                    }
                }
            } else if " \t\n\r\x0b\x0c".contains(c) {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn alternation(&mut self, flags: Flags) -> PResult<Node> {
        let mut alts = vec![self.sequence(flags)?];
        while self.eat('|') {
            alts.push(self.sequence(flags)?);
        }
        Ok(if alts.len() == 1 {
            alts.pop().unwrap_or(Node::Empty)
        } else {
            Node::Alt(alts)
        })
    }

    fn sequence(&mut self, flags: Flags) -> PResult<Node> {
        let mut items: Vec<Node> = Vec::new();
        loop {
            if flags.verbose {
                self.skip_verbose();
            }
            let start = self.pos;
            let Some(c) = self.next() else { break };
            match c {
                '|' | ')' => {
                    self.pos -= 1;
                    break;
                }
                '[' => items.push(self.class(flags)?),
                '.' => items.push(Node::Any {
                    dotall: flags.dotall,
                }),
                '^' => items.push(Node::Assert(if flags.multiline {
                    Assertion::StartLine
                } else {
                    Assertion::StartText
                })),
                '$' => items.push(Node::Assert(if flags.multiline {
                    Assertion::EndLine
                } else {
                    Assertion::EndTextOrFinalNewline
                })),
                '(' => {
                    if self.depth >= MAX_NESTING {
                        return Err(self.err_at(
                            start,
                            &format!("parentheses nested deeper than {MAX_NESTING} levels"),
                        ));
                    }
                    self.depth += 1;
                    let group = self.group(flags, start);
                    self.depth -= 1;
                    if let Some(node) = group? {
                        items.push(node);
                    }
                }
                '*' | '+' | '?' => {
                    let (min, max) = match c {
                        '*' => (0, None),
                        '+' => (1, None),
                        _ => (0, Some(1)),
                    };
                    self.repeat(&mut items, min, max, start)?;
                }
                '{' => match self.brace_quantifier()? {
                    Some((min, max)) => self.repeat(&mut items, min, max, start)?,
                    None => items.push(Node::Literal {
                        c: '{',
                        icase: flags.icase,
                    }),
                },
                '\\' => items.push(self.escape(flags, start)?),
                c => items.push(Node::Literal {
                    c,
                    icase: flags.icase,
                }),
            }
        }
        Ok(match items.len() {
            0 => Node::Empty,
            1 => items.pop().unwrap_or(Node::Empty),
            _ => Node::Concat(items),
        })
    }

    /// After `{`: a valid quantifier (`{m}`, `{m,}`, `{,n}`, `{m,n}`, `{,}`) or
    /// `None` (the `{` is a literal and the position is restored).
    fn brace_quantifier(&mut self) -> PResult<Option<(u32, Option<u32>)>> {
        let here = self.pos;
        if self.peek() == Some('}') {
            return Ok(None);
        }
        let mut lo = String::new();
        while let Some(c) = self.peek().filter(char::is_ascii_digit) {
            lo.push(c);
            self.pos += 1;
        }
        let hi = if self.eat(',') {
            let mut hi = String::new();
            while let Some(c) = self.peek().filter(char::is_ascii_digit) {
                hi.push(c);
                self.pos += 1;
            }
            hi
        } else {
            lo.clone()
        };
        if !self.eat('}') {
            self.pos = here;
            return Ok(None);
        }
        let parse = |s: &str| -> PResult<u32> {
            match s.parse::<u64>() {
                Ok(v) if v <= u64::from(MAX_REPEAT) => Ok(v as u32),
                _ => Err(self.err_at(here, "the repetition number is too large")),
            }
        };
        let min = if lo.is_empty() { 0 } else { parse(&lo)? };
        let max = if hi.is_empty() {
            None
        } else {
            Some(parse(&hi)?)
        };
        if let Some(max) = max
            && max < min
        {
            return Err(self.err_at(here, "min repeat greater than max repeat"));
        }
        Ok(Some((min, max)))
    }

    fn repeat(
        &mut self,
        items: &mut Vec<Node>,
        min: u32,
        max: Option<u32>,
        start: usize,
    ) -> PResult<()> {
        let Some(last) = items.pop() else {
            return Err(self.err_at(start, "nothing to repeat"));
        };
        match last {
            Node::Assert(_) | Node::Empty => {
                return Err(self.err_at(start, "nothing to repeat"));
            }
            Node::Repeat { .. } => {
                return Err(self.err_at(start, "multiple repeat"));
            }
            _ => {}
        }
        let greed = if self.eat('?') {
            Greed::Lazy
        } else if self.eat('+') {
            Greed::Possessive
        } else {
            Greed::Greedy
        };
        items.push(Node::Repeat {
            node: Box::new(last),
            min,
            max,
            greed,
        });
        Ok(())
    }

    fn hex_escape(&mut self, n: usize, start: usize, what: char) -> PResult<char> {
        let mut v: u32 = 0;
        for _ in 0..n {
            match self.peek().and_then(|c| c.to_digit(16)) {
                Some(d) => {
                    v = v * 16 + d;
                    self.pos += 1;
                }
                None => {
                    return Err(self.err_at(start, &format!("incomplete escape \\{what}")));
                }
            }
        }
        char::from_u32(v).ok_or_else(|| self.err_at(start, "bad escape (invalid code point)"))
    }

    /// Escapes shared by both contexts; `None` if `c` is not one of them.
    fn common_escape(&mut self, c: char, start: usize) -> PResult<Option<char>> {
        Ok(Some(match c {
            'a' => '\x07',
            'f' => '\x0c',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\x0b',
            'x' => self.hex_escape(2, start, 'x')?,
            'u' => self.hex_escape(4, start, 'u')?,
            'U' => self.hex_escape(8, start, 'U')?,
            'N' => return Err(self.unsupported(start, "named Unicode escapes (\\N{...})")),
            _ => return Ok(None),
        }))
    }

    fn perl_of(c: char, flags: Flags) -> Option<Perl> {
        let (kind, negated) = match c {
            'd' => (PerlKind::Digit, false),
            'D' => (PerlKind::Digit, true),
            's' => (PerlKind::Space, false),
            'S' => (PerlKind::Space, true),
            'w' => (PerlKind::Word, false),
            'W' => (PerlKind::Word, true),
            _ => return None,
        };
        Some(Perl {
            kind,
            negated,
            ascii: flags.ascii,
        })
    }

    /// An escape outside a character set (the backslash is consumed).
    fn escape(&mut self, flags: Flags, start: usize) -> PResult<Node> {
        let Some(c) = self.next() else {
            return Err(self.err_at(start, "bad escape (end of pattern)"));
        };
        if let Some(lit) = self.common_escape(c, start)? {
            return Ok(Node::Literal {
                c: lit,
                icase: flags.icase,
            });
        }
        if let Some(perl) = Self::perl_of(c, flags) {
            return Ok(Node::Perl(perl));
        }
        match c {
            'A' => return Ok(Node::Assert(Assertion::StartText)),
            'Z' => return Ok(Node::Assert(Assertion::EndText)),
            'b' | 'B' => {
                return Ok(Node::Assert(Assertion::WordBoundary {
                    negated: c == 'B',
                    ascii: flags.ascii,
                }));
            }
            '0' => {
                let mut v = 0u32;
                for _ in 0..2 {
                    match self.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            self.pos += 1;
                        }
                        None => break,
                    }
                }
                return Ok(Node::Literal {
                    c: char::from_u32(v).unwrap_or('\0'),
                    icase: flags.icase,
                });
            }
            '1'..='9' => {
                let mut digits = String::from(c);
                if let Some(d2) = self.peek().filter(char::is_ascii_digit) {
                    self.pos += 1;
                    digits.push(d2);
                    let oct = |ch: char| ('0'..='7').contains(&ch);
                    if oct(c) && oct(d2) && self.peek().is_some_and(oct) {
                        let d3 = self.next().unwrap_or('0');
                        digits.push(d3);
                        let v = u32::from_str_radix(&digits, 8).unwrap_or(0);
                        if v > 0o377 {
                            return Err(self.err_at(
                                start,
                                &format!("octal escape value \\{digits} outside of range 0-0o377"),
                            ));
                        }
                        return Ok(Node::Literal {
                            c: char::from_u32(v).unwrap_or('\0'),
                            icase: flags.icase,
                        });
                    }
                }
                let group: u32 = digits.parse().unwrap_or(0);
                if group >= 1 && group <= self.groups {
                    if self.open.contains(&group) {
                        return Err(self.err_at(start, "cannot refer to an open group"));
                    }
                    return Ok(Node::Backref {
                        index: group,
                        icase: flags.icase,
                    });
                }
                return Err(self.err_at(start, &format!("invalid group reference {group}")));
            }
            _ => {}
        }
        if c.is_ascii_alphanumeric() {
            return Err(self.err_at(start, &format!("bad escape \\{c}")));
        }
        Ok(Node::Literal {
            c,
            icase: flags.icase,
        })
    }

    /// An escape inside a character set: a single char or a class.
    fn class_escape(&mut self, flags: Flags, start: usize) -> PResult<ClassItem> {
        let Some(c) = self.next() else {
            return Err(self.err_at(start, "bad escape (end of pattern)"));
        };
        if let Some(lit) = self.common_escape(c, start)? {
            return Ok(ClassItem::Range(lit, lit));
        }
        if let Some(perl) = Self::perl_of(c, flags) {
            return Ok(ClassItem::Perl(perl));
        }
        if c == 'b' {
            return Ok(ClassItem::Range('\x08', '\x08'));
        }
        if ('0'..='7').contains(&c) {
            let mut v = c.to_digit(8).unwrap_or(0);
            for _ in 0..2 {
                match self.peek().and_then(|d| d.to_digit(8)) {
                    Some(d) => {
                        v = v * 8 + d;
                        self.pos += 1;
                    }
                    None => break,
                }
            }
            if v > 0o377 {
                return Err(self.err_at(start, "octal escape value outside of range 0-0o377"));
            }
            let ch = char::from_u32(v).unwrap_or('\0');
            return Ok(ClassItem::Range(ch, ch));
        }
        if c.is_ascii_alphanumeric() {
            return Err(self.err_at(start, &format!("bad escape \\{c}")));
        }
        Ok(ClassItem::Range(c, c))
    }

    /// After `[`.
    fn class(&mut self, flags: Flags) -> PResult<Node> {
        let here = self.pos - 1;
        let negated = self.eat('^');
        let mut items: Vec<ClassItem> = Vec::new();
        loop {
            let at = self.pos;
            let Some(this) = self.next() else {
                return Err(self.err_at(here, "unterminated character set"));
            };
            if this == ']' && !items.is_empty() {
                break;
            }
            let code1 = if this == '\\' {
                self.class_escape(flags, at)?
            } else {
                ClassItem::Range(this, this)
            };
            if self.eat('-') {
                let at2 = self.pos;
                let Some(that) = self.next() else {
                    return Err(self.err_at(here, "unterminated character set"));
                };
                if that == ']' {
                    items.push(code1);
                    items.push(ClassItem::Range('-', '-'));
                    break;
                }
                let code2 = if that == '\\' {
                    self.class_escape(flags, at2)?
                } else {
                    ClassItem::Range(that, that)
                };
                match (code1, code2) {
                    (ClassItem::Range(lo, lo2), ClassItem::Range(hi, hi2))
                        if lo == lo2 && hi == hi2 && lo <= hi =>
                    {
                        items.push(ClassItem::Range(lo, hi));
                    }
                    _ => return Err(self.err_at(at, "bad character range")),
                }
            } else {
                items.push(code1);
            }
        }
        Ok(Node::Class {
            negated,
            items,
            icase: flags.icase,
        })
    }

    /// Reads a group name up to `end`.
    fn name_until(&mut self, end: char, start: usize) -> PResult<String> {
        let mut name = String::new();
        loop {
            match self.next() {
                None => return Err(self.err_at(start, "missing group name")),
                Some(c) if c == end => break,
                Some(c) => name.push(c),
            }
        }
        if name.is_empty() {
            return Err(self.err_at(start, "missing group name"));
        }
        Ok(name)
    }

    /// After `(`. Returns `None` for comments.
    fn group(&mut self, flags: Flags, start: usize) -> PResult<Option<Node>> {
        let mut name = None;
        let mut capture = true;
        let mut atomic = false;
        let mut inner = flags;
        if self.eat('?') {
            let Some(c) = self.next() else {
                return Err(self.err_at(start, "unexpected end of pattern"));
            };
            match c {
                'P' => {
                    if self.eat('<') {
                        let n = self.name_until('>', start)?;
                        if !is_py_identifier(&n) {
                            return Err(
                                self.err_at(start, &format!("bad character in group name {n:?}"))
                            );
                        }
                        name = Some(n);
                    } else if self.eat('=') {
                        let n = self.name_until(')', start)?;
                        let Some(&index) = self.by_name.get(&n) else {
                            return Err(self.err_at(start, &format!("unknown group name {n:?}")));
                        };
                        if self.open.contains(&index) {
                            return Err(self.err_at(start, "cannot refer to an open group"));
                        }
                        return Ok(Some(Node::Backref {
                            index,
                            icase: flags.icase,
                        }));
                    } else {
                        return Err(self.err_at(start, "unknown extension ?P"));
                    }
                }
                ':' => capture = false,
                '#' => {
                    loop {
                        match self.next() {
                            None => {
                                return Err(self.err_at(start, "missing ), unterminated comment"));
                            }
                            Some(')') => break,
                            Some(_) => {}
                        }
                    }
                    return Ok(None);
                }
                '=' | '!' | '<' => {
                    let (behind, kind) = if c == '<' {
                        match self.next() {
                            Some(k @ ('=' | '!')) => (true, k),
                            Some(k) => {
                                return Err(self.err_at(start, &format!("unknown extension ?<{k}")));
                            }
                            None => return Err(self.err_at(start, "unexpected end of pattern")),
                        }
                    } else {
                        (false, c)
                    };
                    let node = self.alternation(flags)?;
                    if !self.eat(')') {
                        return Err(self.err_at(start, "missing ), unterminated subpattern"));
                    }
                    if behind {
                        let (lo, hi) = width(&node);
                        if Some(lo) != hi {
                            return Err(
                                self.err_at(start, "look-behind requires fixed-width pattern")
                            );
                        }
                    }
                    return Ok(Some(Node::Look {
                        behind,
                        negated: kind == '!',
                        node: Box::new(node),
                    }));
                }
                '(' => {
                    let cname = self.name_until(')', start)?;
                    let index = if is_py_identifier(&cname) {
                        match self.by_name.get(&cname) {
                            Some(&i) => i,
                            None => {
                                return Err(
                                    self.err_at(start, &format!("unknown group name {cname:?}"))
                                );
                            }
                        }
                    } else {
                        match cname.parse::<u32>() {
                            Ok(0) => return Err(self.err_at(start, "bad group number")),
                            Ok(i) if cname.chars().all(|c| c.is_ascii_digit()) => {
                                self.cond_refs.push((i, start));
                                i
                            }
                            _ => {
                                return Err(self.err_at(
                                    start,
                                    &format!("bad character in group name {cname:?}"),
                                ));
                            }
                        }
                    };
                    let yes = self.sequence(flags)?;
                    let no = if self.eat('|') {
                        let no = self.sequence(flags)?;
                        if self.peek() == Some('|') {
                            return Err(self
                                .err_at(start, "conditional backref with more than two branches"));
                        }
                        no
                    } else {
                        Node::Empty
                    };
                    if !self.eat(')') {
                        return Err(self.err_at(start, "missing ), unterminated subpattern"));
                    }
                    return Ok(Some(Node::Cond {
                        index,
                        yes: Box::new(yes),
                        no: Box::new(no),
                    }));
                }
                '>' => {
                    capture = false;
                    atomic = true;
                }
                c if "aiLmsux-".contains(c) => match self.flags(c, flags)? {
                    FlagsOutcome::Global(_) => {
                        return Err(
                            self.err_at(start, "global flags not at the start of the expression")
                        );
                    }
                    FlagsOutcome::Scoped(f) => {
                        capture = false;
                        inner = f;
                    }
                },
                c => return Err(self.err_at(start, &format!("unknown extension ?{c}"))),
            }
        }
        let index = if capture {
            self.groups += 1;
            let index = self.groups;
            if let Some(n) = &name {
                if self.by_name.contains_key(n) {
                    return Err(self.err_at(
                        start,
                        &format!("redefinition of group name {n:?} as group {index}"),
                    ));
                }
                self.by_name.insert(n.clone(), index);
            }
            self.names.push(name.clone());
            self.open.push(index);
            Some(index)
        } else {
            None
        };
        let node = self.alternation(inner)?;
        if !self.eat(')') {
            return Err(self.err_at(start, "missing ), unterminated subpattern"));
        }
        Ok(Some(match index {
            Some(index) => {
                self.open.retain(|&g| g != index);
                Node::Group {
                    index,
                    name,
                    node: Box::new(node),
                }
            }
            None if atomic => Node::Atomic(Box::new(node)),
            None => Node::NonCapture(Box::new(node)),
        }))
    }

    /// Inline flags after `(?`; `first` is the first flag char (or `-`).
    fn flags(&mut self, first: char, base: Flags) -> PResult<FlagsOutcome> {
        let start = self.pos;
        let mut add = Vec::new();
        let mut del = Vec::new();
        let mut c = first;
        if c != '-' {
            loop {
                if c == 'L' {
                    return Err(self.err_at(
                        start,
                        "bad inline flags: cannot use 'L' flag with a str pattern",
                    ));
                }
                add.push(c);
                if add.contains(&'a') && add.contains(&'u') {
                    return Err(self.err_at(
                        start,
                        "bad inline flags: flags 'a', 'u' and 'L' are incompatible",
                    ));
                }
                match self.next() {
                    None => return Err(self.err_at(start, "missing -, : or )")),
                    Some(n @ (')' | '-' | ':')) => {
                        c = n;
                        break;
                    }
                    Some(n) if "aiLmsux".contains(n) => c = n,
                    Some(n) => {
                        let msg = if n.is_alphabetic() {
                            "unknown flag"
                        } else {
                            "missing -, : or )"
                        };
                        return Err(self.err_at(start, msg));
                    }
                }
            }
        }
        if c == ')' {
            let mut f = base;
            apply_flags(&mut f, &add, true);
            return Ok(FlagsOutcome::Global(f));
        }
        if c == '-' {
            loop {
                match self.next() {
                    None => return Err(self.err_at(start, "missing :")),
                    Some(':') if !del.is_empty() => break,
                    Some(n) if "imsx".contains(n) => del.push(n),
                    Some('a' | 'u' | 'L') => {
                        return Err(self.err_at(
                            start,
                            "bad inline flags: cannot turn off flags 'a', 'u' and 'L'",
                        ));
                    }
                    Some(n) => {
                        let msg = if n.is_alphabetic() {
                            "unknown flag"
                        } else {
                            "missing flag"
                        };
                        return Err(self.err_at(start, msg));
                    }
                }
            }
        }
        if add.iter().any(|c| del.contains(c)) {
            return Err(self.err_at(start, "bad inline flags: flag turned on and off"));
        }
        let mut f = base;
        apply_flags(&mut f, &add, true);
        apply_flags(&mut f, &del, false);
        Ok(FlagsOutcome::Scoped(f))
    }
}

enum FlagsOutcome {
    Global(Flags),
    Scoped(Flags),
}

fn apply_flags(f: &mut Flags, letters: &[char], on: bool) {
    for &c in letters {
        match c {
            'i' => f.icase = on,
            'm' => f.multiline = on,
            's' => f.dotall = on,
            'x' => f.verbose = on,
            'a' => f.ascii = on,
            'u' => f.ascii = !on,
            _ => {}
        }
    }
}

/// Minimum and maximum match width in characters (`None`: unbounded).
pub(crate) fn width(node: &Node) -> (u64, Option<u64>) {
    match node {
        Node::Empty | Node::Assert(_) | Node::Look { .. } => (0, Some(0)),
        Node::Literal { .. } | Node::Class { .. } | Node::Perl(_) | Node::Any { .. } => {
            (1, Some(1))
        }
        Node::Concat(v) => v.iter().fold((0, Some(0)), |(lo, hi), n| {
            let (l, h) = width(n);
            (lo + l, hi.and_then(|a| h.map(|b| a + b)))
        }),
        Node::Alt(v) => {
            let mut lo = u64::MAX;
            let mut hi = Some(0);
            for n in v {
                let (l, h) = width(n);
                lo = lo.min(l);
                hi = match (hi, h) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
            }
            (if v.is_empty() { 0 } else { lo }, hi)
        }
        Node::Group { node, .. } | Node::NonCapture(node) | Node::Atomic(node) => width(node),
        Node::Repeat { node, min, max, .. } => {
            let (l, h) = width(node);
            let hi = match (h, max) {
                (Some(0), _) => Some(0),
                (Some(h), Some(m)) => Some(h * u64::from(*m)),
                _ => None,
            };
            (l * u64::from(*min), hi)
        }
        Node::Backref { .. } => (0, None),
        Node::Cond { yes, no, .. } => {
            let (l1, h1) = width(yes);
            let (l2, h2) = width(no);
            (
                l1.min(l2),
                match (h1, h2) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PResult<Parsed> {
        parse(s, Flags::default())
    }

    #[test]
    fn braces_that_are_not_quantifiers_are_literals() {
        let n = p("a{").unwrap().node;
        assert!(matches!(n, Node::Concat(ref v) if v.len() == 2));
        let n = p("a{,3}").unwrap().node;
        assert!(matches!(
            n,
            Node::Repeat {
                min: 0,
                max: Some(3),
                ..
            }
        ));
        let n = p("a{x}").unwrap().node;
        assert!(matches!(n, Node::Concat(ref v) if v.len() == 4));
        let n = p("a{}").unwrap().node;
        assert!(matches!(n, Node::Concat(ref v) if v.len() == 3));
    }

    #[test]
    fn python_errors_are_reported() {
        assert!(p("(?i)a(?m)b").is_err());
        assert!(p("*a").is_err());
        assert!(p("a**").is_err());
        assert!(p(r"\q").is_err());
        assert!(p("(a").is_err());
        assert!(p("a)").is_err());
        assert!(p("(?P<x>a)(?P<x>b)").is_err());
        assert!(p(r"(a)\2").is_err());
        assert!(p(r"(a\1)").is_err());
        assert!(p(r"(?<=a|bc)").is_err());
        assert!(p("[z-a]").is_err());
        assert!(p(r"[\w-z]").is_err());
    }

    #[test]
    fn leading_global_flags_apply() {
        let n = p("(?i)a").unwrap().node;
        assert_eq!(
            n,
            Node::Literal {
                c: 'a',
                icase: true
            }
        );
        let n = p("(?i:a)b").unwrap().node;
        assert!(matches!(n, Node::Concat(_)));
    }

    #[test]
    fn class_edge_cases() {
        let n = p("[]a]").unwrap().node;
        assert!(matches!(n, Node::Class { ref items, .. } if items.len() == 2));
        let n = p(r"[\w-]").unwrap().node;
        assert!(matches!(n, Node::Class { ref items, .. } if items.len() == 2));
        let n = p("[[]").unwrap().node;
        assert!(
            matches!(n, Node::Class { ref items, .. } if items == &[ClassItem::Range('[', '[')])
        );
    }

    #[test]
    fn backrefs_and_octals() {
        assert!(
            matches!(p(r"(a)\1").unwrap().node, Node::Concat(ref v) if matches!(v[1], Node::Backref { index: 1, .. }))
        );
        assert!(matches!(
            p(r"\101").unwrap().node,
            Node::Literal { c: 'A', .. }
        ));
        assert!(matches!(
            p(r"\0").unwrap().node,
            Node::Literal { c: '\0', .. }
        ));
    }
}
