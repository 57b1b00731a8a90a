//! Reading a log file line by line into one reused buffer.
//!
//! * Lines end at `\n` only (as fail2ban reads its files: raw bytes up to the newline).
//! * A final line without a newline is **not** returned: fail2ban waits for the line to be
//!   completed and `fail2ban-regex` never sees it, so neither do we (the counts stay equal).
//! * Lines longer than [`MAX_LINE`] bytes are truncated to their first [`MAX_LINE`] bytes for
//!   matching (the rest is skipped without being buffered); this bounds memory and every regex
//!   search. fail2ban has no such cap; real log lines never come near it.

use std::io::{self, BufRead, Read};

/// Longest line handed to the filter (bytes); longer lines are truncated.
pub const MAX_LINE: usize = 64 * 1024;

/// Read buffer size.
const READ_BUF: usize = 1 << 20;

/// A line reader over any byte source.
pub struct LineReader<R> {
    inner: io::BufReader<R>,
    /// Bytes consumed so far (for the progress bar).
    pub consumed: u64,
    /// Lines longer than [`MAX_LINE`] seen so far.
    pub truncated: u64,
}

impl<R: Read> LineReader<R> {
    /// Wraps `inner` in a large buffered reader.
    pub fn new(inner: R) -> Self {
        LineReader {
            inner: io::BufReader::with_capacity(READ_BUF, inner),
            consumed: 0,
            truncated: 0,
        }
    }

    /// Reads the next complete line (without its `\n`) into `buf` (cleared first).
    /// Returns `Ok(false)` at the end of input (an incomplete last line is dropped).
    pub fn next_line(&mut self, buf: &mut Vec<u8>) -> io::Result<bool> {
        buf.clear();
        let mut over = false;
        loop {
            let chunk = match self.inner.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                // End of input: whatever is buffered has no newline.
                return Ok(false);
            }
            let (take, done) = match memchr::memchr(b'\n', chunk) {
                Some(p) => (p, true),
                None => (chunk.len(), false),
            };
            let room = MAX_LINE - buf.len();
            if take > room {
                over = true;
            }
            buf.extend_from_slice(&chunk[..take.min(room)]);
            let used = if done { take + 1 } else { take };
            self.inner.consume(used);
            self.consumed += used as u64;
            if done {
                if over {
                    self.truncated += 1;
                }
                return Ok(true);
            }
        }
    }
}

/// fail2ban's `rstrip('\r\n')`: drops every trailing `\r` and `\n`.
pub fn rstrip_newlines(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r' | b'\n'] = s {
        s = rest;
    }
    s
}

/// Decodes a line: UTF-8 fast path, otherwise lossy (invalid sequences become U+FFFD, as
/// fail2ban's `errors='replace'`), or Latin-1 when asked.
pub fn decode<'a>(bytes: &'a [u8], latin1: bool, scratch: &'a mut String) -> &'a str {
    if !latin1 && let Ok(s) = std::str::from_utf8(bytes) {
        return s;
    }
    scratch.clear();
    if latin1 {
        scratch.extend(bytes.iter().map(|&b| char::from(b)));
    } else {
        scratch.push_str(&String::from_utf8_lossy(bytes));
    }
    scratch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(data: &[u8]) -> Vec<Vec<u8>> {
        let mut r = LineReader::new(data);
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while r.next_line(&mut buf).unwrap() {
            out.push(buf.clone());
        }
        out
    }

    #[test]
    fn splits_on_newline_and_drops_incomplete_tail() {
        assert_eq!(
            lines(b"a\nb\r\n\nc"),
            vec![b"a".to_vec(), b"b\r".to_vec(), Vec::new()]
        );
        assert!(lines(b"").is_empty());
    }

    #[test]
    fn truncates_long_lines() {
        let mut data = vec![b'x'; MAX_LINE + 10];
        data.extend_from_slice(b"\nnext\n");
        let mut r = LineReader::new(&data[..]);
        let mut buf = Vec::new();
        assert!(r.next_line(&mut buf).unwrap());
        assert_eq!(buf.len(), MAX_LINE);
        assert!(r.next_line(&mut buf).unwrap());
        assert_eq!(buf, b"next");
        assert_eq!(r.truncated, 1);
    }

    #[test]
    fn strips_and_decodes() {
        assert_eq!(rstrip_newlines(b"ab\r\n\r"), b"ab");
        let mut s = String::new();
        assert_eq!(decode(b"caf\xc3\xa9", false, &mut s), "café");
        let mut s = String::new();
        assert_eq!(decode(b"caf\xe9", false, &mut s), "caf\u{fffd}");
        let mut s = String::new();
        assert_eq!(decode(b"caf\xe9", true, &mut s), "café");
    }
}
