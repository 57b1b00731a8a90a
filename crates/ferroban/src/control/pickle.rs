//! fail2ban's own socket protocol: pickled command lists, each followed by
//! `<F2B_END_COMMAND>`; answers pickled the same way (fail2ban 1.0.2's `client/csocket.py` and
//! `server/asyncserver.py`).
//!
//! # Why a hand-written codec
//! Python's pickle is a small stack machine whose `GLOBAL`/`STACK_GLOBAL` + `REDUCE`/`NEWOBJ`/
//! `BUILD` opcodes call arbitrary Python callables: unpickling untrusted input is code execution
//! in Python. A Rust decoder never *runs* anything, but it still has to refuse those opcodes,
//! bound nesting (a deep structure must not overflow the stack when it is walked or dropped),
//! bound memo fan-out (a list referenced a million times from the memo) and never allocate by a
//! declared length. serde-pickle (the well-kept crate) was checked: it resolves a set of
//! builtins globals (`set`, `frozenset`, `bytearray`, `_codecs.encode`, class instances through
//! `copyreg._reconstructor`), has no nesting-depth limit (its `Value` tree is built and dropped
//! recursively) and no option to refuse globals outright instead of replacing them by `None`.
//! Restricting it would mean re-validating its output *after* it decoded without limits. What
//! fail2ban's client sends is a list of strings and numbers (protocol 5: ~20 opcodes), so this
//! module decodes exactly that subset with explicit limits; the encoder writes the answers
//! fail2ban's server writes (values, and exceptions as `GLOBAL` + args + `REDUCE`, which the
//! client's Python reconstructs from fail2ban's own modules).
//!
//! # What [`decode`] accepts
//! [`Accept::Commands`] (the server, decoding what a client sends): `None`, booleans, integers
//! (up to 64 bits), floats, `str`, `bytes`, lists and tuples, nested at most [`MAX_DEPTH`] deep
//! and [`MAX_NODES`] values in all; memo references (`MEMOIZE`, `PUT`, `GET`…) are followed
//! without copying. Anything else — a global name, a call, an object, a dict, a set, an unknown
//! opcode, a truncated stream, data after `STOP` — is an error naming the problem.
//! [`Accept::Replies`] (the client, decoding a fail2ban server's answer) additionally reads
//! dicts, sets and `module.name(args…)` records ([`PyVal::Object`]: the exception a command
//! raised). They are plain data here: nothing is looked up or called.

use std::collections::HashMap;
use std::rc::Rc;

use serde_json::{Map, Number, Value};

/// The frame terminator.
pub const END: &[u8] = b"<F2B_END_COMMAND>";
/// The message a client sends (before [`END`]) to close the connection.
pub const CLOSE: &[u8] = b"<F2B_CLOSE_COMMAND>";
/// How deep lists and tuples may nest.
pub const MAX_DEPTH: usize = 32;
/// How many values a decoded message may hold in all (memo references included).
pub const MAX_NODES: usize = 1 << 20;

/// A decoded (or to be encoded) Python value.
#[derive(Debug, Clone, PartialEq)]
pub enum PyVal {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An `int` that fits 64 bits.
    Int(i64),
    /// A `float`.
    Float(f64),
    /// A `str`.
    Str(String),
    /// A `bytes`.
    Bytes(Vec<u8>),
    /// A `list`.
    List(Vec<PyVal>),
    /// A `tuple`.
    Tuple(Vec<PyVal>),
    /// A `dict`, in insertion order ([`Accept::Replies`] only).
    Dict(Vec<(PyVal, PyVal)>),
    /// A `set` or `frozenset` ([`Accept::Replies`] only).
    Set(Vec<PyVal>),
    /// `module.name(*args)`: an exception (or another object) as data; encoding writes it as
    /// `GLOBAL` + args + `REDUCE`; decoding ([`Accept::Replies`] only) never calls anything.
    Object {
        /// The module, `builtins` for Python's own exceptions.
        module: String,
        /// The class name.
        name: String,
        /// The constructor arguments.
        args: Vec<PyVal>,
    },
}

/// What [`decode`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// Only what fail2ban's client sends: lists/tuples of strings, bytes, numbers, booleans, None.
    Commands,
    /// A fail2ban server's answers: also dicts, sets and exception records.
    Replies,
}

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

fn err<T>(msg: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(msg.into()))
}

/// A value on the machine's stack. Mutable containers live in an arena and are referenced by
/// index, so memo references share them as Python does (an `APPEND` after `MEMOIZE` is seen by
/// every reference) without copying; immutable tuples are reference counted and carry their
/// depth, which is bounded at construction so dropping them never recurses deeply.
#[derive(Debug, Clone)]
enum Item {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Tuple(Rc<Vec<Item>>, usize),
    List(usize),
    Dict(usize),
    Set(usize),
    Global(Rc<str>, Rc<str>),
    Object(Rc<(Rc<str>, Rc<str>, Vec<Item>)>, usize),
    Mark,
}

impl Item {
    fn depth(&self) -> usize {
        match self {
            Item::Tuple(_, d) | Item::Object(_, d) => *d,
            Item::List(_) | Item::Dict(_) | Item::Set(_) => 1,
            _ => 0,
        }
    }
}

enum Container {
    List(Vec<Item>),
    Dict(Vec<(Item, Item)>),
    Set(Vec<Item>),
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    accept: Accept,
    stack: Vec<Item>,
    marks: Vec<usize>,
    memo: HashMap<u32, Item>,
    arena: Vec<Container>,
    /// Values pushed so far (bounded by [`MAX_NODES`]).
    pushed: usize,
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.data.len() - self.pos < n {
            return err(format!(
                "truncated pickle: {n} bytes announced at offset {}, {} left",
                self.pos,
                self.data.len() - self.pos
            ));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn le(&mut self, n: usize) -> Result<u64, DecodeError> {
        let b = self.take(n)?;
        let mut v = 0u64;
        for (i, x) in b.iter().enumerate() {
            v |= u64::from(*x) << (8 * i);
        }
        Ok(v)
    }

    /// A length announced by the stream; never trusted for allocation, only compared with what
    /// is left.
    fn len(&mut self, n: usize) -> Result<usize, DecodeError> {
        let v = self.le(n)?;
        usize::try_from(v)
            .ok()
            .filter(|l| *l <= self.data.len() - self.pos)
            .map_or_else(
                || {
                    err(format!(
                        "pickle announces {v} bytes at offset {}, only {} left",
                        self.pos,
                        self.data.len() - self.pos
                    ))
                },
                Ok,
            )
    }

    fn line(&mut self) -> Result<&'a str, DecodeError> {
        let rest = &self.data[self.pos..];
        let Some(i) = memchr::memchr(b'\n', rest) else {
            return err("truncated pickle: unterminated text argument");
        };
        self.pos += i + 1;
        std::str::from_utf8(&rest[..i]).or_else(|_| err("pickle text argument is not UTF-8"))
    }

    fn push(&mut self, item: Item) -> Result<(), DecodeError> {
        self.pushed += 1;
        if self.pushed > MAX_NODES {
            return err(format!("pickle holds more than {MAX_NODES} values"));
        }
        if item.depth() > MAX_DEPTH {
            return err(format!("pickle nests deeper than {MAX_DEPTH} levels"));
        }
        self.stack.push(item);
        Ok(())
    }

    fn pop(&mut self) -> Result<Item, DecodeError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return err("malformed pickle: stack underflow");
        }
        match self.stack.pop() {
            Some(Item::Mark) | None => err("malformed pickle: stack underflow"),
            Some(i) => Ok(i),
        }
    }

    fn top(&self) -> Result<&Item, DecodeError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return err("malformed pickle: empty stack");
        }
        Ok(self.stack.last().expect("checked"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Item>, DecodeError> {
        let Some(m) = self.marks.pop() else {
            return err("malformed pickle: no MARK");
        };
        let items = self.stack.split_off(m);
        // The MARK itself.
        match self.stack.pop() {
            Some(Item::Mark) => Ok(items),
            _ => err("malformed pickle: MARK lost"),
        }
    }

    fn tuple(&mut self, items: Vec<Item>) -> Result<(), DecodeError> {
        let depth = 1 + items.iter().map(Item::depth).max().unwrap_or(0);
        self.push(Item::Tuple(Rc::new(items), depth))
    }

    fn new_container(&mut self, c: Container) -> Result<usize, DecodeError> {
        match (&c, self.accept) {
            (Container::Dict(_), Accept::Commands) => {
                return err("refused: a dict (fail2ban's client sends lists of strings)");
            }
            (Container::Set(_), Accept::Commands) => {
                return err("refused: a set (fail2ban's client sends lists of strings)");
            }
            _ => {}
        }
        self.arena.push(c);
        Ok(self.arena.len() - 1)
    }

    fn extend(&mut self, items: Vec<Item>, op: &str) -> Result<(), DecodeError> {
        match self.top()?.clone() {
            Item::List(i) => match &mut self.arena[i] {
                Container::List(l) => l.extend(items),
                _ => return err(format!("malformed pickle: {op} on a non-list")),
            },
            _ => return err(format!("malformed pickle: {op} on a non-list")),
        }
        Ok(())
    }

    fn set_items(&mut self, items: Vec<Item>) -> Result<(), DecodeError> {
        if !items.len().is_multiple_of(2) {
            return err("malformed pickle: odd number of dict items");
        }
        let Item::Dict(i) = self.top()?.clone() else {
            return err("malformed pickle: SETITEM on a non-dict");
        };
        let Container::Dict(d) = &mut self.arena[i] else {
            return err("malformed pickle: SETITEM on a non-dict");
        };
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            d.push((k, v));
        }
        Ok(())
    }

    fn global(&mut self, module: &str, name: &str) -> Result<(), DecodeError> {
        if self.accept == Accept::Commands {
            return err(format!(
                "refused: the request names the Python object {module}.{name} (fail2ban's \
                 client sends only lists of strings and numbers; nothing is ever called)"
            ));
        }
        self.push(Item::Global(module.into(), name.into()))
    }

    fn call(&mut self, callable: Item, args: Item) -> Result<(), DecodeError> {
        let Item::Global(m, n) = callable else {
            return err("malformed pickle: call of a non-global");
        };
        let args = match args {
            Item::Tuple(t, _) => t.as_ref().clone(),
            _ => return err("malformed pickle: call arguments are not a tuple"),
        };
        // As deep as its arguments' tuple, and a call without arguments as deep as the global
        // itself: the value is the same `PyVal::Object` either way, so its depth must be too (an
        // object without arguments is re-encoded as a call; found by the pickle fuzzer with 32
        // tuples around a global, refused after a round trip).
        let depth = args.iter().map(Item::depth).max().map_or(0, |d| d + 1);
        self.push(Item::Object(Rc::new((m, n, args)), depth))
    }

    fn memo_get(&mut self, key: u32) -> Result<(), DecodeError> {
        match self.memo.get(&key).cloned() {
            Some(i) => self.push(i),
            None => err(format!("malformed pickle: memo entry {key} missing")),
        }
    }

    fn memo_put(&mut self, key: u32) -> Result<(), DecodeError> {
        let top = self.top()?.clone();
        if self.memo.len() >= MAX_NODES {
            return err("pickle memo too large");
        }
        self.memo.insert(key, top);
        Ok(())
    }

    fn text_int(&mut self, line: &str) -> Result<(), DecodeError> {
        match line {
            "01" => self.push(Item::Bool(true)),
            "00" => self.push(Item::Bool(false)),
            s => match s.trim_end_matches('L').parse::<i64>() {
                Ok(v) => self.push(Item::Int(v)),
                Err(_) => err(format!("pickle integer {s:?} out of range or malformed")),
            },
        }
    }

    fn run(&mut self) -> Result<Item, DecodeError> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    let p = self.u8()?;
                    if p > 5 {
                        return err(format!("unsupported pickle protocol {p}"));
                    }
                }
                0x95 => {
                    self.le(8)?; // FRAME: a length hint only
                }
                b'.' => {
                    let v = self.pop()?;
                    if !self.stack.is_empty() || !self.marks.is_empty() {
                        return err("malformed pickle: values left on the stack at STOP");
                    }
                    if self.pos != self.data.len() {
                        return err("malformed pickle: data after STOP");
                    }
                    return Ok(v);
                }
                b'(' => {
                    if self.marks.len() > MAX_DEPTH * 4 {
                        return err(format!("pickle nests deeper than {MAX_DEPTH} levels"));
                    }
                    self.marks.push(self.stack.len() + 1);
                    self.stack.push(Item::Mark);
                }
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let t = self.top()?.clone();
                    self.push(t)?;
                }
                b'N' => self.push(Item::None)?,
                0x88 => self.push(Item::Bool(true))?,
                0x89 => self.push(Item::Bool(false))?,
                b'J' => {
                    let v = self.le(4)? as u32 as i32;
                    self.push(Item::Int(i64::from(v)))?
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Item::Int(i64::from(v)))?
                }
                b'M' => {
                    let v = self.le(2)?;
                    self.push(Item::Int(v as i64))?
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a {
                        usize::from(self.u8()?)
                    } else {
                        self.len(4)?
                    };
                    if n > 8 {
                        return err("pickle integer wider than 64 bits");
                    }
                    let b = self.take(n)?;
                    let mut v: i64 = 0;
                    for (i, x) in b.iter().enumerate() {
                        v |= i64::from(*x) << (8 * i);
                    }
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.push(Item::Int(v))?
                }
                b'G' => {
                    let b = self.take(8)?;
                    let v = f64::from_be_bytes(b.try_into().expect("8 bytes"));
                    self.push(Item::Float(v))?
                }
                b'I' => {
                    let l = self.line()?;
                    self.text_int(l)?
                }
                b'L' => {
                    let l = self.line()?;
                    self.text_int(l)?
                }
                b'F' => {
                    let l = self.line()?;
                    let v: f64 = l
                        .parse()
                        .or_else(|_| err(format!("malformed pickle float {l:?}")))?;
                    self.push(Item::Float(v))?
                }
                0x8c | b'X' | 0x8d => {
                    let n = match op {
                        0x8c => usize::from(self.u8()?),
                        b'X' => self.len(4)?,
                        _ => self.len(8)?,
                    };
                    let b = self.take(n)?;
                    let s = std::str::from_utf8(b)
                        .or_else(|_| err("pickle string is not valid UTF-8"))?;
                    self.push(Item::Str(s.into()))?
                }
                b'V' => {
                    let l = self.line()?;
                    let s = raw_unicode_escape(l)?;
                    self.push(Item::Str(s.into()))?
                }
                b'C' | b'B' | 0x8e | b'U' | b'T' => {
                    let n = match op {
                        b'C' | b'U' => usize::from(self.u8()?),
                        b'B' | b'T' => self.len(4)?,
                        _ => self.len(8)?,
                    };
                    let b = self.take(n)?;
                    // Python 2's `str` (U, T) is text for fail2ban's purposes.
                    let item = match (op, std::str::from_utf8(b)) {
                        (b'U' | b'T', Ok(s)) => Item::Str(s.into()),
                        _ => Item::Bytes(b.into()),
                    };
                    self.push(item)?
                }
                b')' => self.tuple(Vec::new())?,
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.tuple(items)?
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.tuple(items)?
                }
                b']' => {
                    let i = self.new_container(Container::List(Vec::new()))?;
                    self.push(Item::List(i))?
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    let i = self.new_container(Container::List(items))?;
                    self.push(Item::List(i))?
                }
                b'a' => {
                    let v = self.pop()?;
                    self.extend(vec![v], "APPEND")?
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.extend(items, "APPENDS")?
                }
                b'}' => {
                    let i = self.new_container(Container::Dict(Vec::new()))?;
                    self.push(Item::Dict(i))?
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let i = self.new_container(Container::Dict(Vec::new()))?;
                    self.push(Item::Dict(i))?;
                    self.set_items(items)?
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?
                }
                0x8f => {
                    let i = self.new_container(Container::Set(Vec::new()))?;
                    self.push(Item::Set(i))?
                }
                0x90 => {
                    let items = self.pop_mark()?;
                    let Item::Set(i) = self.top()?.clone() else {
                        return err("malformed pickle: ADDITEMS on a non-set");
                    };
                    if let Container::Set(s) = &mut self.arena[i] {
                        s.extend(items);
                    }
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    let i = self.new_container(Container::Set(items))?;
                    self.push(Item::Set(i))?
                }
                0x94 => {
                    let k = u32::try_from(self.memo.len()).unwrap_or(u32::MAX);
                    self.memo_put(k)?
                }
                b'q' => {
                    let k = u32::from(self.u8()?);
                    self.memo_put(k)?
                }
                b'r' => {
                    let k = self.le(4)? as u32;
                    self.memo_put(k)?
                }
                b'p' => {
                    let l = self.line()?;
                    let k = l
                        .parse()
                        .or_else(|_| err(format!("malformed pickle memo key {l:?}")))?;
                    self.memo_put(k)?
                }
                b'h' => {
                    let k = u32::from(self.u8()?);
                    self.memo_get(k)?
                }
                b'j' => {
                    let k = self.le(4)? as u32;
                    self.memo_get(k)?
                }
                b'g' => {
                    let l = self.line()?;
                    let k = l
                        .parse()
                        .or_else(|_| err(format!("malformed pickle memo key {l:?}")))?;
                    self.memo_get(k)?
                }
                b'c' => {
                    let m = self.line()?;
                    let n = self.line()?;
                    self.global(m, n)?
                }
                0x93 => {
                    let n = self.pop()?;
                    let m = self.pop()?;
                    match (m, n) {
                        (Item::Str(m), Item::Str(n)) => self.global(&m, &n)?,
                        _ => return err("malformed pickle: STACK_GLOBAL needs two strings"),
                    }
                }
                b'R' | 0x81 => {
                    // REDUCE: callable, args; NEWOBJ: class, args. Only reached in Replies
                    // mode (a global is refused before in Commands mode); recorded, not called.
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.call(callable, args)?
                }
                b'b' => {
                    // BUILD: an object's state (an exception's __dict__); dropped.
                    self.pop()?;
                    if !matches!(self.top()?, Item::Object(..)) {
                        return err("malformed pickle: BUILD on a non-object");
                    }
                }
                other => {
                    return err(format!(
                        "refused: pickle opcode {} at offset {} is not accepted",
                        describe(other),
                        self.pos - 1
                    ));
                }
            }
        }
    }

    /// The value of `item`, bounded in depth and size.
    fn value(&self, item: &Item, depth: usize, budget: &mut usize) -> Result<PyVal, DecodeError> {
        if depth > MAX_DEPTH {
            return err(format!(
                "pickle nests deeper than {MAX_DEPTH} levels (or refers to itself)"
            ));
        }
        if *budget == 0 {
            return err(format!("pickle expands to more than {MAX_NODES} values"));
        }
        *budget -= 1;
        let many = |items: &[Item], budget: &mut usize| {
            items
                .iter()
                .map(|i| self.value(i, depth + 1, budget))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(match item {
            Item::None => PyVal::None,
            Item::Bool(b) => PyVal::Bool(*b),
            Item::Int(i) => PyVal::Int(*i),
            Item::Float(f) => PyVal::Float(*f),
            Item::Str(s) => PyVal::Str(s.to_string()),
            Item::Bytes(b) => PyVal::Bytes(b.to_vec()),
            Item::Tuple(t, _) => PyVal::Tuple(many(t, budget)?),
            Item::List(i) => match &self.arena[*i] {
                Container::List(l) => PyVal::List(many(l, budget)?),
                _ => return err("malformed pickle"),
            },
            Item::Set(i) => match &self.arena[*i] {
                Container::Set(l) => PyVal::Set(many(l, budget)?),
                _ => return err("malformed pickle"),
            },
            Item::Dict(i) => match &self.arena[*i] {
                Container::Dict(d) => {
                    let mut out = Vec::with_capacity(d.len());
                    for (k, v) in d {
                        out.push((
                            self.value(k, depth + 1, budget)?,
                            self.value(v, depth + 1, budget)?,
                        ));
                    }
                    PyVal::Dict(out)
                }
                _ => return err("malformed pickle"),
            },
            Item::Object(o, _) => PyVal::Object {
                module: o.0.to_string(),
                name: o.1.to_string(),
                args: many(&o.2, budget)?,
            },
            Item::Global(m, n) => PyVal::Object {
                module: m.to_string(),
                name: n.to_string(),
                args: Vec::new(),
            },
            Item::Mark => return err("malformed pickle: MARK as a value"),
        })
    }
}

fn describe(op: u8) -> String {
    if op.is_ascii_graphic() {
        format!("{:?} (0x{op:02x})", op as char)
    } else {
        format!("0x{op:02x}")
    }
}

/// Python's `raw-unicode-escape`: `\uXXXX` and `\UXXXXXXXX` escapes, everything else as is.
fn raw_unicode_escape(s: &str) -> Result<String, DecodeError> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let n = match chars.clone().next() {
            Some('u') => 4,
            Some('U') => 8,
            _ => {
                out.push(c);
                continue;
            }
        };
        chars.next();
        let hex: String = chars.by_ref().take(n).collect();
        let cp = u32::from_str_radix(&hex, 16)
            .ok()
            .filter(|_| hex.len() == n)
            .and_then(char::from_u32);
        match cp {
            Some(ch) => out.push(ch),
            None => return err("malformed pickle: bad \\u escape"),
        }
    }
    Ok(out)
}

/// Decodes one pickle (the bytes before [`END`]).
pub fn decode(data: &[u8], accept: Accept) -> Result<PyVal, DecodeError> {
    let mut m = Machine {
        data,
        pos: 0,
        accept,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        arena: Vec::new(),
        pushed: 0,
    };
    let top = m.run()?;
    let mut budget = MAX_NODES;
    m.value(&top, 0, &mut budget)
}

/// Encodes `v` as a pickle (protocol 4 opcodes; Python reads every protocol).
pub fn encode(v: &PyVal) -> Vec<u8> {
    let mut out = vec![0x80, 4];
    encode_into(v, &mut out);
    out.push(b'.');
    out
}

fn encode_into(v: &PyVal, out: &mut Vec<u8>) {
    match v {
        PyVal::None => out.push(b'N'),
        PyVal::Bool(true) => out.push(0x88),
        PyVal::Bool(false) => out.push(0x89),
        PyVal::Int(i) => {
            if let Ok(x) = i32::try_from(*i) {
                out.push(b'J');
                out.extend_from_slice(&x.to_le_bytes());
            } else {
                out.push(0x8a);
                out.push(8);
                out.extend_from_slice(&i.to_le_bytes());
            }
        }
        PyVal::Float(f) => {
            out.push(b'G');
            out.extend_from_slice(&f.to_be_bytes());
        }
        PyVal::Str(s) => {
            out.push(0x8d);
            out.extend_from_slice(&(s.len() as u64).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        PyVal::Bytes(b) => {
            out.push(0x8e);
            out.extend_from_slice(&(b.len() as u64).to_le_bytes());
            out.extend_from_slice(b);
        }
        PyVal::List(items) => {
            out.push(b']');
            if !items.is_empty() {
                out.push(b'(');
                items.iter().for_each(|i| encode_into(i, out));
                out.push(b'e');
            }
        }
        PyVal::Tuple(items) => {
            out.push(b'(');
            items.iter().for_each(|i| encode_into(i, out));
            out.push(b't');
        }
        PyVal::Set(items) => {
            out.push(0x8f);
            if !items.is_empty() {
                out.push(b'(');
                items.iter().for_each(|i| encode_into(i, out));
                out.push(0x90);
            }
        }
        PyVal::Dict(items) => {
            out.push(b'}');
            if !items.is_empty() {
                out.push(b'(');
                for (k, v) in items {
                    encode_into(k, out);
                    encode_into(v, out);
                }
                out.push(b'u');
            }
        }
        PyVal::Object { module, name, args } => {
            out.push(b'c');
            out.extend_from_slice(module.as_bytes());
            out.push(b'\n');
            out.extend_from_slice(name.as_bytes());
            out.push(b'\n');
            encode_into(&PyVal::Tuple(args.clone()), out);
            out.push(b'R');
        }
    }
}

/// `v` as a frame: the pickle followed by [`END`].
pub fn frame(v: &PyVal) -> Vec<u8> {
    let mut out = encode(v);
    out.extend_from_slice(END);
    out
}

impl PyVal {
    /// A JSON value as fail2ban's server would return it: arrays become lists, objects dicts.
    pub fn from_json(v: &Value) -> PyVal {
        match v {
            Value::Null => PyVal::None,
            Value::Bool(b) => PyVal::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => PyVal::Int(i),
                None => PyVal::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => PyVal::Str(s.clone()),
            Value::Array(a) => PyVal::List(a.iter().map(PyVal::from_json).collect()),
            Value::Object(o) => PyVal::Dict(
                o.iter()
                    .map(|(k, v)| (PyVal::Str(k.clone()), PyVal::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// This value as JSON (the `--json` shapes of [`super::proto`]): tuples, lists and sets
    /// become arrays, dicts objects (keys as their `str()`), bytes text (lossy), an object
    /// `{"module.name": [args]}`.
    pub fn to_json(&self) -> Value {
        match self {
            PyVal::None => Value::Null,
            PyVal::Bool(b) => Value::Bool(*b),
            PyVal::Int(i) => Value::from(*i),
            PyVal::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            PyVal::Str(s) => Value::String(s.clone()),
            PyVal::Bytes(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
            PyVal::List(a) | PyVal::Tuple(a) | PyVal::Set(a) => {
                Value::Array(a.iter().map(PyVal::to_json).collect())
            }
            PyVal::Dict(d) => {
                let mut m = Map::new();
                for (k, v) in d {
                    m.insert(k.as_text(), v.to_json());
                }
                Value::Object(m)
            }
            PyVal::Object { module, name, args } => {
                let mut m = Map::new();
                m.insert(
                    format!("{module}.{name}"),
                    Value::Array(args.iter().map(PyVal::to_json).collect()),
                );
                Value::Object(m)
            }
        }
    }

    /// Python's `str()` of a scalar (what fail2ban's server sees as a command word).
    pub fn as_text(&self) -> String {
        match self {
            PyVal::None => "None".into(),
            PyVal::Bool(true) => "True".into(),
            PyVal::Bool(false) => "False".into(),
            PyVal::Int(i) => i.to_string(),
            PyVal::Float(f) => super::pyrepr::float_repr(*f),
            PyVal::Str(s) => s.clone(),
            PyVal::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            other => super::pyrepr::repr(&other.to_json()),
        }
    }
}

#[cfg(test)]
mod tests;
