//! The journal export format (`journalctl -o export`), parsed incrementally from a byte stream.
//!
//! An entry is a run of fields ended by an empty line. A field is either `NAME=value\n` (text)
//! or `NAME\n` + 64-bit little-endian length + that many bytes + `\n` (binary: values with
//! control characters or invalid UTF-8). Values longer than [`MAX_FIELD`] are cut to their first
//! [`MAX_FIELD`] bytes (the rest is skipped without being buffered), so an entry never costs
//! more than its field count times the cap.

use std::ops::Range;

/// Longest field value kept (bytes); the crate's line cap.
pub const MAX_FIELD: usize = crate::MAX_LINE;

/// One parsed entry: its fields in order (a name may repeat).
#[derive(Debug, Default, Clone)]
pub struct Entry {
    data: Vec<u8>,
    fields: Vec<(Range<usize>, Range<usize>)>,
    /// Some value was longer than [`MAX_FIELD`] and was cut.
    pub cut: bool,
}

impl Entry {
    fn clear(&mut self) {
        self.data.clear();
        self.fields.clear();
        self.cut = false;
    }

    fn push(&mut self, name: &[u8], value: &[u8]) {
        let n0 = self.data.len();
        self.data.extend_from_slice(name);
        let v0 = self.data.len();
        self.data.extend_from_slice(value);
        self.fields.push((n0..v0, v0..self.data.len()));
    }

    /// The first value of field `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(n, _)| &self.data[n.clone()] == name.as_bytes())
            .map(|(_, v)| &self.data[v.clone()])
    }

    /// Every value of field `name`, in order.
    pub fn all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        self.fields
            .iter()
            .filter(move |(n, _)| &self.data[n.clone()] == name.as_bytes())
            .map(|(_, v)| &self.data[v.clone()])
    }

    /// The first value of `name` as text (lossy).
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// Every field as (name, value).
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields
            .iter()
            .map(|(n, v)| (&self.data[n.clone()], &self.data[v.clone()]))
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// No fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// What the parser is in the middle of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line.
    Line,
    /// Skipping the rest of a text line longer than the cap.
    SkipLine,
    /// Skipping this many bytes of a long binary value (its trailing newline included).
    SkipBytes(u64),
}

/// Incremental parser: [`push`](ExportParser::push) bytes, then take entries with
/// [`next_entry`](ExportParser::next_entry) until it returns `None`.
#[derive(Debug)]
pub struct ExportParser {
    buf: Vec<u8>,
    pos: usize,
    state: State,
    entry: Entry,
    /// The entry was handed out; it is cleared when parsing goes on.
    entry_done: bool,
    /// Malformed input seen (a binary value not followed by a newline); parsing resynchronises
    /// at the next line.
    pub errors: u64,
}

impl Default for ExportParser {
    fn default() -> Self {
        ExportParser::new()
    }
}

impl ExportParser {
    /// An empty parser.
    pub fn new() -> Self {
        ExportParser {
            buf: Vec::with_capacity(1 << 16),
            pos: 0,
            state: State::Line,
            entry: Entry::default(),
            entry_done: false,
            errors: 0,
        }
    }

    /// Bytes received but not parsed yet.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Appends input.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > (1 << 16) && self.pos * 2 > self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Forgets everything (a new stream starts).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.pos = 0;
        self.state = State::Line;
        self.entry.clear();
        self.entry_done = false;
    }

    /// The next complete entry, if the input holds one. The entry is valid until the next call.
    pub fn next_entry(&mut self) -> Option<&Entry> {
        if self.parse() {
            Some(&self.entry)
        } else {
            None
        }
    }

    /// Parses until an entry is complete (`true`) or the input is exhausted (`false`).
    fn parse(&mut self) -> bool {
        // An entry handed out by the previous call is done with.
        if self.state == State::Line && self.entry_done {
            self.entry.clear();
            self.entry_done = false;
        }
        loop {
            let avail = &self.buf[self.pos..];
            match self.state {
                State::SkipBytes(n) => {
                    let take = (n as usize).min(avail.len());
                    // The last skipped byte is the value's newline; anything else means the
                    // stream is out of step.
                    if take as u64 == n && take > 0 && avail[take - 1] != b'\n' {
                        self.errors += 1;
                    }
                    self.pos += take;
                    let left = n - take as u64;
                    if left > 0 {
                        self.state = State::SkipBytes(left);
                        return false;
                    }
                    self.state = State::Line;
                }
                State::SkipLine => match memchr::memchr(b'\n', avail) {
                    Some(i) => {
                        self.pos += i + 1;
                        self.state = State::Line;
                    }
                    None => {
                        self.pos += avail.len();
                        return false;
                    }
                },
                State::Line => {
                    if avail.is_empty() {
                        return false;
                    }
                    if avail[0] == b'\n' {
                        self.pos += 1;
                        if !self.entry.is_empty() {
                            self.entry_done = true;
                            return true;
                        }
                        continue;
                    }
                    let nl = memchr::memchr(b'\n', avail);
                    let line_end = nl.unwrap_or(avail.len());
                    let eq = memchr::memchr(b'=', &avail[..line_end]);
                    match (nl, eq) {
                        (Some(nl), Some(eq)) => {
                            let (name, value) = (&avail[..eq], &avail[eq + 1..nl]);
                            let cut = value.len() > MAX_FIELD;
                            self.entry.push(name, &value[..value.len().min(MAX_FIELD)]);
                            self.entry.cut |= cut;
                            self.pos += nl + 1;
                        }
                        (None, Some(eq)) if avail.len() - eq - 1 > MAX_FIELD => {
                            // A text value longer than the cap: keep its start, skip the rest.
                            let (name, value) = (&avail[..eq], &avail[eq + 1..eq + 1 + MAX_FIELD]);
                            self.entry.push(name, value);
                            self.entry.cut = true;
                            self.pos += eq + 1 + MAX_FIELD;
                            self.state = State::SkipLine;
                        }
                        (None, _) => {
                            if avail.len() > MAX_FIELD + 256 {
                                // A name line this long is no export stream: resynchronise.
                                self.errors += 1;
                                self.pos += avail.len();
                                self.state = State::SkipLine;
                            }
                            return false;
                        }
                        (Some(nl), None) => {
                            // Binary field: name, newline, length, value, newline.
                            if avail.len() < nl + 1 + 8 {
                                return false;
                            }
                            let mut len8 = [0u8; 8];
                            len8.copy_from_slice(&avail[nl + 1..nl + 9]);
                            let len = u64::from_le_bytes(len8);
                            let start = nl + 9;
                            if len <= MAX_FIELD as u64 {
                                let len = len as usize;
                                if avail.len() < start + len + 1 {
                                    return false;
                                }
                                let name = &avail[..nl];
                                let value = &avail[start..start + len];
                                self.entry.push(name, value);
                                if avail[start + len] != b'\n' {
                                    self.errors += 1;
                                }
                                self.pos += start + len + 1;
                            } else {
                                if avail.len() < start + MAX_FIELD {
                                    return false;
                                }
                                let name = &avail[..nl];
                                let value = &avail[start..start + MAX_FIELD];
                                self.entry.push(name, value);
                                self.entry.cut = true;
                                self.pos += start + MAX_FIELD;
                                self.state = State::SkipBytes(len - MAX_FIELD as u64 + 1);
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8], chunk: usize) -> Vec<Entry> {
        let mut p = ExportParser::new();
        let mut out = Vec::new();
        for c in input.chunks(chunk.max(1)) {
            p.push(c);
            while let Some(e) = p.next_entry() {
                out.push(e.clone());
            }
        }
        out
    }

    fn binary(name: &str, value: &[u8]) -> Vec<u8> {
        let mut v = name.as_bytes().to_vec();
        v.push(b'\n');
        v.extend_from_slice(&(value.len() as u64).to_le_bytes());
        v.extend_from_slice(value);
        v.push(b'\n');
        v
    }

    #[test]
    fn text_and_binary_fields_in_any_chunking() {
        let mut input = b"__CURSOR=s=1;i=2\nMESSAGE=hello = world\n".to_vec();
        input.extend(binary("MESSAGE", b"two\nlines\x01"));
        input.extend_from_slice(b"_PID=7\n\n\n__CURSOR=c2\nMESSAGE=\n\n");
        for chunk in [1, 2, 3, 7, 64, 4096] {
            let es = all(&input, chunk);
            assert_eq!(es.len(), 2, "chunk {chunk}");
            assert_eq!(es[0].get("__CURSOR"), Some(&b"s=1;i=2"[..]));
            let msgs: Vec<&[u8]> = es[0].all("MESSAGE").collect();
            assert_eq!(msgs, vec![&b"hello = world"[..], &b"two\nlines\x01"[..]]);
            assert_eq!(es[0].get("_PID"), Some(&b"7"[..]));
            assert_eq!(es[1].get("MESSAGE"), Some(&b""[..]));
            assert_eq!(es[1].len(), 2);
        }
    }

    #[test]
    fn incomplete_entry_waits() {
        let mut p = ExportParser::new();
        p.push(b"A=1\nB=2\n");
        assert!(p.next_entry().is_none());
        p.push(b"\n");
        assert_eq!(p.next_entry().map(Entry::len), Some(2));
        assert!(p.next_entry().is_none());
    }

    #[test]
    fn long_values_are_cut_without_buffering_them() {
        let big = vec![b'x'; MAX_FIELD * 3];
        let mut input = b"A=".to_vec();
        input.extend_from_slice(&big);
        input.extend_from_slice(b"\n");
        input.extend(binary("B", &big));
        input.extend_from_slice(b"C=end\n\n");
        for chunk in [1000, 65536, 1 << 20] {
            let mut p = ExportParser::new();
            let mut out = Vec::new();
            for c in input.chunks(chunk) {
                p.push(c);
                assert!(p.pending() <= chunk + MAX_FIELD + 64, "bounded buffer");
                while let Some(e) = p.next_entry() {
                    out.push(e.clone());
                }
            }
            assert_eq!(out.len(), 1);
            assert!(out[0].cut);
            assert_eq!(out[0].get("A").map(<[u8]>::len), Some(MAX_FIELD));
            assert_eq!(out[0].get("B").map(<[u8]>::len), Some(MAX_FIELD));
            assert_eq!(out[0].get("C"), Some(&b"end"[..]));
            assert_eq!(p.errors, 0);
        }
    }
}
