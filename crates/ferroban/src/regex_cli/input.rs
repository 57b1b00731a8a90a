//! Reading a log file line by line out of one big reused buffer.
//!
//! * Lines end at `\n` only (as fail2ban reads its files: raw bytes up to the newline).
//! * A final line without a newline is **not** returned: fail2ban waits for the line to be
//!   completed and `fail2ban-regex` never sees it, so neither do we (the counts stay equal).
//! * Lines longer than [`MAX_LINE`] bytes are dropped and counted ([`LineReader::dropped`]),
//!   never buffered whole and never matched on a cut, as the daemon's follower drops them: a cut
//!   line could blame an address the whole line does not (`... from 203.0.113.77 from <the real
//!   source>` padded so that the cut falls between the two). fail2ban has no such cap; real log
//!   lines never come near it.

use std::io::{self, Read};

/// Longest line handed to the filter (bytes); longer lines are dropped.
pub const MAX_LINE: usize = 64 * 1024;

/// Read buffer size (larger than [`MAX_LINE`]).
const READ_BUF: usize = 1 << 20;

/// A line reader over any byte source: reads big chunks and hands out each line as a slice
/// of its buffer (no per-line copy).
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// Unread bytes are `buf[pos..end]`.
    pos: usize,
    end: usize,
    eof: bool,
    /// Bytes consumed so far (for the progress bar).
    pub consumed: u64,
    /// Lines longer than [`MAX_LINE`] dropped so far.
    pub dropped: u64,
    /// Whether lines are checked for UTF-8 a region at a time (see [`LineReader::check_utf8`]).
    check_utf8: bool,
    /// `buf[..checked]` has been checked for UTF-8 (it ends after a `\n`, or is empty).
    checked: usize,
    /// `buf[valid_from..valid_to]` is valid UTF-8 and holds whole lines (empty when the last
    /// checked region was not valid).
    valid_from: usize,
    valid_to: usize,
}

/// A line of a [`LineReader`]: its bytes (without the `\n`) and whether they are known to
/// be valid UTF-8 (`false`: not checked, or not valid).
pub struct RawLine<'a> {
    /// The bytes of the line.
    pub bytes: &'a [u8],
    /// The bytes are valid UTF-8.
    pub utf8: bool,
}

impl<R: Read> LineReader<R> {
    /// Wraps `inner` with a large read buffer.
    pub fn new(inner: R) -> Self {
        LineReader {
            inner,
            buf: vec![0; READ_BUF],
            pos: 0,
            end: 0,
            eof: false,
            consumed: 0,
            dropped: 0,
            check_utf8: false,
            checked: 0,
            valid_from: 0,
            valid_to: 0,
        }
    }

    /// Checks the lines for UTF-8 a region at a time: the whole lines in the buffer are
    /// validated in one pass when the first of them is read (a `\n` never falls inside a
    /// UTF-8 sequence, so each line of a valid region is valid), and [`RawLine::utf8`] says
    /// so. One pass over a megabyte costs a fraction of a pass per line. A region that is not
    /// valid leaves its lines to the caller's own check.
    pub fn check_utf8(mut self) -> Self {
        self.check_utf8 = true;
        self
    }

    fn fill(&mut self, at: usize) -> io::Result<usize> {
        loop {
            match self.inner.read(&mut self.buf[at..]) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The bytes of the next line (see [`LineReader::next_raw_line`]).
    #[cfg(test)]
    pub fn next_line(&mut self) -> io::Result<Option<&[u8]>> {
        Ok(self.next_raw_line()?.map(|l| l.bytes))
    }

    /// The next complete line of at most [`MAX_LINE`] bytes (without its `\n`), or `None` at
    /// the end of input (an incomplete last line is not returned; longer lines are skipped),
    /// with whether it is known to be UTF-8 (see [`LineReader::check_utf8`]).
    pub fn next_raw_line(&mut self) -> io::Result<Option<RawLine<'_>>> {
        loop {
            if let Some(p) = memchr::memchr(b'\n', &self.buf[self.pos..self.end]) {
                let start = self.pos;
                self.pos += p + 1;
                self.consumed += p as u64 + 1;
                if p > MAX_LINE {
                    self.dropped += 1;
                    continue;
                }
                if self.check_utf8 && start >= self.checked {
                    self.check_region(start, start + p + 1);
                }
                let utf8 = start >= self.valid_from && start + p < self.valid_to;
                return Ok(Some(RawLine {
                    bytes: &self.buf[start..start + p],
                    utf8,
                }));
            }
            if self.eof {
                // whatever is left has no newline
                return Ok(None);
            }
            if self.pos > 0 {
                self.buf.copy_within(self.pos..self.end, 0);
                self.end -= self.pos;
                self.pos = 0;
                // (what is left holds no whole line: nothing checked is kept)
                self.forget_checked();
            }
            if self.end == self.buf.len() {
                if !self.skip_long_line()? {
                    return Ok(None);
                }
                continue;
            }
            let n = self.fill(self.end)?;
            if n == 0 {
                self.eof = true;
            }
            self.end += n;
        }
    }

    /// The buffer is full of one line without a newline: skip it up to its newline. `false`
    /// when the input ends first (an incomplete line, not counted).
    fn skip_long_line(&mut self) -> io::Result<bool> {
        self.forget_checked();
        self.consumed += self.end as u64;
        self.pos = 0;
        self.end = 0;
        loop {
            let n = self.fill(0)?;
            if n == 0 {
                self.eof = true;
                return Ok(false);
            }
            if let Some(p) = memchr::memchr(b'\n', &self.buf[..n]) {
                self.pos = p + 1;
                self.end = n;
                self.consumed += p as u64 + 1;
                self.dropped += 1;
                return Ok(true);
            }
            self.consumed += n as u64;
        }
    }
}

impl<R> LineReader<R> {
    /// Checks the whole lines of `buf[start..]` for UTF-8 in one pass; `first_end` is the end
    /// of the first one (after its `\n`).
    fn check_region(&mut self, start: usize, first_end: usize) {
        let end = memchr::memrchr(b'\n', &self.buf[first_end..self.end])
            .map_or(first_end, |q| first_end + q + 1);
        self.checked = end;
        if simdutf8::basic::from_utf8(&self.buf[start..end]).is_ok() {
            (self.valid_from, self.valid_to) = (start, end);
        } else {
            (self.valid_from, self.valid_to) = (0, 0);
        }
    }

    /// The buffer's bytes move: what was checked is checked again when read.
    fn forget_checked(&mut self) {
        self.checked = 0;
        self.valid_from = 0;
        self.valid_to = 0;
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
/// fail2ban's `errors='replace'`), or Latin-1 when asked. `utf8`: the bytes are known to be
/// valid UTF-8 ([`RawLine::utf8`]), they are not checked again.
#[inline]
pub fn decode<'a>(bytes: &'a [u8], utf8: bool, latin1: bool, scratch: &'a mut String) -> &'a str {
    if !latin1 && utf8 {
        // SAFETY: `utf8` says the bytes were validated (a region of whole lines that passed
        // `simdutf8::basic::from_utf8`, of which `bytes` is one line cut at ASCII bytes).
        return unsafe { std::str::from_utf8_unchecked(bytes) };
    }
    decode_checked(bytes, latin1, scratch)
}

/// [`decode`] of a line not known to be UTF-8 (kept out of line: the common line is).
#[inline(never)]
fn decode_checked<'a>(bytes: &'a [u8], latin1: bool, scratch: &'a mut String) -> &'a str {
    // (simdutf8: the validation is a measurable share of a line's cost, ~200 instructions
    // for an nginx line with the standard library's)
    if !latin1 && let Ok(s) = simdutf8::basic::from_utf8(bytes) {
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
        while let Some(l) = r.next_line().unwrap() {
            out.push(l.to_vec());
        }
        assert_eq!(
            r.consumed,
            data.iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p as u64 + 1)
        );
        out
    }

    /// A reader that hands out a few bytes per call, to cross every buffer boundary.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(out.len()).min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn lines_across_reads_and_buffer_ends() {
        let mut data = Vec::new();
        for i in 0..50_000 {
            data.extend_from_slice(format!("line {i} {}\n", "x".repeat(i % 97)).as_bytes());
        }
        data.extend_from_slice(b"tail without newline");
        let want: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
        let want = &want[..want.len() - 1];
        for step in [1 << 20, 4093, 7] {
            let mut r = LineReader::new(Trickle(&data, step));
            let mut n = 0;
            while let Some(l) = r.next_line().unwrap() {
                assert_eq!(l, want[n], "step {step}, line {n}");
                n += 1;
            }
            assert_eq!(n, want.len(), "step {step}");
        }
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
    fn drops_long_lines_whole() {
        let mut data = vec![b'x'; MAX_LINE + 10];
        data.extend_from_slice(b"\nnext\n");
        // longer than the read buffer too
        data.extend(std::iter::repeat_n(b'y', 3 * READ_BUF + 5));
        data.extend_from_slice(b"\nlast\n");
        data.extend_from_slice(&vec![b'z'; MAX_LINE]);
        data.extend_from_slice(b"\n");
        // an unfinished over-long line at the end is neither returned nor counted
        data.extend(std::iter::repeat_n(b'w', READ_BUF + 1));
        let mut r = LineReader::new(&data[..]);
        assert_eq!(r.next_line().unwrap().unwrap(), b"next");
        assert_eq!(r.next_line().unwrap().unwrap(), b"last");
        assert_eq!(r.next_line().unwrap().unwrap(), vec![b'z'; MAX_LINE]);
        assert!(r.next_line().unwrap().is_none());
        assert_eq!(r.dropped, 2);
    }

    /// The region check marks a line UTF-8 exactly when it is, across buffer ends and refills,
    /// with invalid lines in some regions and multi-byte characters cut by the reads.
    #[test]
    fn region_check_marks_exactly_the_valid_lines() {
        let mut data = Vec::new();
        for i in 0..40_000 {
            let mut l = format!("line {i} café {}", "é".repeat(i % 53)).into_bytes();
            if i == 7 || i == 31_000 {
                l.push(0xe9);
            }
            data.extend_from_slice(&l);
            data.push(b'\n');
        }
        // a long line dropped in the middle of a region
        data.extend(std::iter::repeat_n(b'x', MAX_LINE + 3));
        data.extend_from_slice("\nlast é\n".as_bytes());
        for step in [1 << 20, 4093, 7] {
            let mut r = LineReader::new(Trickle(&data, step)).check_utf8();
            let (mut n, mut marked, mut invalid) = (0, 0, 0);
            while let Some(l) = r.next_raw_line().unwrap() {
                let valid = std::str::from_utf8(l.bytes).is_ok();
                assert!(
                    !l.utf8 || valid,
                    "step {step}, line {n} marked but not UTF-8"
                );
                marked += usize::from(l.utf8);
                invalid += usize::from(!valid);
                n += 1;
            }
            assert_eq!((n, invalid), (40_001, 2), "step {step}");
            if step == 1 << 20 {
                // the lines of the regions without an invalid line are answered by their
                // region's check (the data fills three regions and a bit)
                assert!(marked > 10_000, "step {step}: {marked} marked");
            }
            assert!(marked > 0, "step {step}");
        }
        // without the check no line is marked
        let mut r = LineReader::new(&data[..]);
        while let Some(l) = r.next_raw_line().unwrap() {
            assert!(!l.utf8);
        }
    }

    #[test]
    fn strips_and_decodes() {
        assert_eq!(rstrip_newlines(b"ab\r\n\r"), b"ab");
        let mut s = String::new();
        assert_eq!(decode(b"caf\xc3\xa9", false, false, &mut s), "café");
        assert_eq!(decode(b"caf\xc3\xa9", true, false, &mut s), "café");
        let mut s = String::new();
        assert_eq!(decode(b"caf\xe9", false, false, &mut s), "caf\u{fffd}");
        let mut s = String::new();
        assert_eq!(decode(b"caf\xe9", false, true, &mut s), "café");
    }
}
