//! Hand-written matchers for the hottest default templates.
//!
//! Each matcher answers, for one start position, exactly what the regex form of
//! its template would answer with a leftmost-first (backtracking-preference)
//! engine: the preferred match starting there, or no match there. Whenever the
//! answer would depend on something the matcher does not model (any non-ASCII
//! byte it has to look at, for instance) it returns [`Unsure`] and the caller
//! falls back to the `regex` crate, so a native answer is always exact.
//! The equivalence is checked by the tests against the regex forms.
//!
//! All matchers are constant-time per position (a handful of byte reads).

use crate::strptime::{Fields, LineZone, month_lower};
use crate::zone::{parse_numeric, zone_offset_minutes};
use std::cell::Cell;

/// The matcher cannot decide: use the regex form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unsure;

type R<T> = Result<T, Unsure>;

/// Which default template a native matcher implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Native {
    /// `YYYY-MM-DD HH:MM:SS[,fff][ zone]` (also `/` and `.` separated, `T`).
    Iso,
    /// `[Www ]Mmm dd HH:MM:SS[.fff][ YYYY]`.
    Syslog,
    /// `dd/Mmm/YYYY:HH:MM:SS[.fff][ zone]` (also `-` separated).
    Apache,
}

/// A haystack whose reads are shown to a [`Probe`]: every byte a matcher looks at (and every
/// position past the end it looks for) goes through [`byte`] or is noted explicitly.
#[derive(Clone, Copy)]
pub(crate) struct Hay<'a, P> {
    b: &'a [u8],
    probe: P,
}

/// Watches the reads of a matcher (see [`Hay`]).
pub(crate) trait Probe: Copy {
    /// Byte `i` is read (or found missing: `i` is past the end).
    fn read(self, i: usize);
    /// An answer depends on the position being the line's first (nothing before it).
    fn line_start(self);
    /// A match's answer depends on bytes `i` and `i + 1` only through their being two
    /// digits of a value up to 59, which is the fields' `second` (see [`Entry::sec`]).
    fn seconds(self, i: usize);
}

/// No watching: the plain matchers.
impl Probe for () {
    #[inline(always)]
    fn read(self, _: usize) {}
    #[inline(always)]
    fn line_start(self) {}
    #[inline(always)]
    fn seconds(self, _: usize) {}
}

/// The span of the bytes a matcher read, and whether it relied on the line's start.
#[derive(Debug)]
pub(crate) struct Reach {
    lo: Cell<usize>,
    hi: Cell<usize>,
    start: Cell<bool>,
    sec: Cell<Option<usize>>,
}

impl Reach {
    fn new() -> Reach {
        Reach {
            lo: Cell::new(usize::MAX),
            hi: Cell::new(0),
            start: Cell::new(false),
            sec: Cell::new(None),
        }
    }
}

impl Probe for &Reach {
    #[inline]
    fn read(self, i: usize) {
        self.lo.set(self.lo.get().min(i));
        self.hi.set(self.hi.get().max(i));
    }
    #[inline]
    fn line_start(self) {
        self.start.set(true);
    }
    #[inline]
    fn seconds(self, i: usize) {
        self.sec.set(Some(i));
    }
}

#[inline]
fn byte<P: Probe>(h: Hay<'_, P>, i: usize) -> R<Option<u8>> {
    h.probe.read(i);
    match h.b.get(i) {
        None => Ok(None),
        Some(&b) if b >= 0x80 => Err(Unsure),
        Some(&b) => Ok(Some(b)),
    }
}

#[inline]
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

#[inline]
fn digit<P: Probe>(h: Hay<'_, P>, i: usize) -> R<Option<i64>> {
    Ok(byte(h, i)?
        .filter(u8::is_ascii_digit)
        .map(|b| i64::from(b - b'0')))
}

/// The "not inside a word" assertion used around templates: false only when
/// both neighbours of `i` are word characters.
#[inline]
fn bound<P: Probe>(h: Hay<'_, P>, i: usize) -> R<bool> {
    if i == 0 {
        h.probe.line_start();
        return Ok(true);
    }
    if i >= h.b.len() {
        h.probe.read(i);
        return Ok(true);
    }
    let prev = byte(h, i - 1)?.unwrap_or(b' ');
    let next = byte(h, i)?.unwrap_or(b' ');
    Ok(!(is_word(prev) && is_word(next)))
}

/// Day of month followed by a non-digit: `[12]\d | [0 ]?[1-9] | 3[01]`.
fn day<P: Probe>(h: Hay<'_, P>, i: usize) -> R<Option<(i64, usize)>> {
    let Some(b0) = byte(h, i)? else {
        return Ok(None);
    };
    let d1 = digit(h, i + 1)?;
    Ok(match (b0, d1) {
        (b'1' | b'2', Some(d)) => Some((i64::from(b0 - b'0') * 10 + d, 2)),
        (b'0' | b' ', Some(d)) if d >= 1 => Some((d, 2)),
        (b'3', Some(d)) if d <= 1 => Some((30 + d, 2)),
        (b'1'..=b'9', None) => Some((i64::from(b0 - b'0'), 1)),
        _ => None,
    })
}

/// One- or two-digit field followed by a non-digit; two digits allowed when
/// the first is at most `max_tens` (and, if `tens_limit` is set, tens == 2
/// allows units up to that limit).
fn two<P: Probe>(
    h: Hay<'_, P>,
    i: usize,
    max_tens: i64,
    two_limit: Option<i64>,
) -> R<Option<(i64, usize)>> {
    let Some(d0) = digit(h, i)? else {
        return Ok(None);
    };
    Ok(match digit(h, i + 1)? {
        Some(d1) if d0 <= max_tens => Some((d0 * 10 + d1, 2)),
        Some(d1) if two_limit.is_some_and(|l| d0 == 2 && d1 <= l) => Some((20 + d1, 2)),
        Some(_) => None,
        None => Some((d0, 1)),
    })
}

/// `20[0-2]\d`.
fn ex_year<P: Probe>(h: Hay<'_, P>, i: usize) -> R<Option<i64>> {
    if byte(h, i)? != Some(b'2') || byte(h, i + 1)? != Some(b'0') {
        return Ok(None);
    }
    match (digit(h, i + 2)?, digit(h, i + 3)?) {
        (Some(c), Some(d)) if c <= 2 => Ok(Some(2000 + c * 10 + d)),
        _ => Ok(None),
    }
}

fn letters3<P: Probe>(h: Hay<'_, P>, i: usize) -> R<Option<[u8; 3]>> {
    let mut out = [0u8; 3];
    for (k, slot) in out.iter_mut().enumerate() {
        match byte(h, i + k)? {
            Some(b) if b.is_ascii_alphabetic() => *slot = b.to_ascii_lowercase(),
            _ => return Ok(None),
        }
    }
    Ok(Some(out))
}

fn month<P: Probe>(h: Hay<'_, P>, i: usize) -> R<Option<i64>> {
    Ok(letters3(h, i)?.and_then(|l| month_lower(&l)))
}

/// `HH:MM:SS` seconds candidates in preference order: `[0-5]?\d | 6[01]`.
fn second_candidates<P: Probe>(h: Hay<'_, P>, i: usize) -> R<[Option<(i64, usize)>; 3]> {
    let d0 = digit(h, i)?;
    let d1 = digit(h, i + 1)?;
    Ok([
        match (d0, d1) {
            (Some(a), Some(b)) if a <= 5 => Some((a * 10 + b, 2)),
            _ => None,
        },
        d0.map(|a| (a, 1)),
        match (d0, d1) {
            (Some(6), Some(b)) if b <= 1 => Some((60 + b, 2)),
            _ => None,
        },
    ])
}

/// Preferred end of a `%z` at `r` (`Z|UTC|GMT|[+-][01]\d(:?\d\d)?`) that is
/// followed by a word bound.
fn zone_at<P: Probe>(h: Hay<'_, P>, r: usize, nocase: bool) -> R<Option<usize>> {
    let lit = |s: &[u8]| -> R<bool> {
        for (k, &c) in s.iter().enumerate() {
            match byte(h, r + k)? {
                Some(b) if b == c || (nocase && b.to_ascii_uppercase() == c) => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    };
    for word in [&b"Z"[..], b"UTC", b"GMT"] {
        if lit(word)? && bound(h, r + word.len())? {
            return Ok(Some(r + word.len()));
        }
    }
    if matches!(byte(h, r)?, Some(b'+' | b'-'))
        && matches!(byte(h, r + 1)?, Some(b'0' | b'1'))
        && digit(h, r + 2)?.is_some()
    {
        let colon = byte(h, r + 3)? == Some(b':');
        let off = usize::from(colon);
        if digit(h, r + 3 + off)?.is_some()
            && digit(h, r + 4 + off)?.is_some()
            && bound(h, r + 5 + off)?
        {
            return Ok(Some(r + 5 + off));
        }
        if bound(h, r + 3)? {
            return Ok(Some(r + 3));
        }
    }
    Ok(None)
}

fn set_zone(f: &mut Fields, text: &[u8]) {
    // a numeric offset is read directly (what `zone_offset_minutes` does with it)
    let minutes = if matches!(text.first(), Some(b'+' | b'-')) {
        parse_numeric(text, false)
    } else {
        zone_offset_minutes(std::str::from_utf8(text).unwrap_or("?"), false)
    };
    f.zone = match minutes {
        Some(m) => LineZone::Offset(m),
        None => LineZone::Invalid,
    };
}

/// Ends of an optional fraction (`sep` then 1..=6 digits) in preference order,
/// followed by "no fraction".
fn fraction_ends<P: Probe>(h: Hay<'_, P>, q: usize, seps: &[u8]) -> R<([usize; 7], usize)> {
    let mut out = [q; 7];
    let mut n = 0;
    if byte(h, q)?.is_some_and(|b| seps.contains(&b)) {
        let mut run = 0;
        while run < 7 && digit(h, q + 1 + run)?.is_some() {
            run += 1;
        }
        for l in (1..=run.min(6)).rev() {
            out[n] = q + 1 + l;
            n += 1;
        }
    }
    out[n] = q;
    Ok((out, n + 1))
}

fn iso_tail<P: Probe>(h: Hay<'_, P>, q: usize, f: &mut Fields) -> R<Option<usize>> {
    let (ends, n) = fraction_ends(h, q, b".,")?;
    for &e in &ends[..n] {
        let mut r = e;
        while byte(h, r)?.is_some_and(|b| b.is_ascii_whitespace() || b == 0x0b) {
            r += 1;
        }
        if let Some(z) = zone_at(h, r, false)? {
            set_zone(f, &h.b[r..z]);
            return Ok(Some(z));
        }
        if bound(h, e)? {
            return Ok(Some(e));
        }
    }
    Ok(None)
}

/// `%ExY(sep)%m(sep)%d(T| {1,2})%H:%M:%S([.,]%f)?(\s*%z)?` at `i`.
fn iso<P: Probe>(h: Hay<'_, P>, i: usize, out: &mut Fields) -> R<Option<usize>> {
    let mut f = Fields::default();
    let Some(y) = ex_year(h, i)? else {
        return Ok(None);
    };
    let mut p = i + 4;
    let Some(sep) = byte(h, p)?.filter(|b| matches!(b, b'-' | b'/' | b'.')) else {
        return Ok(None);
    };
    p += 1;
    let m = match (digit(h, p)?, digit(h, p + 1)?) {
        (Some(0), Some(d)) if d >= 1 => (d, 2),
        (Some(1), Some(d)) if d <= 2 => (10 + d, 2),
        (Some(d), None) if d >= 1 => (d, 1),
        _ => return Ok(None),
    };
    p += m.1;
    if byte(h, p)? != Some(sep) {
        return Ok(None);
    }
    p += 1;
    let Some((d, dl)) = day(h, p)? else {
        return Ok(None);
    };
    p += dl;
    match byte(h, p)? {
        Some(b'T') => p += 1,
        Some(b' ') => p += if byte(h, p + 1)? == Some(b' ') { 2 } else { 1 },
        _ => return Ok(None),
    }
    let Some((hh, hl)) = two(h, p, 1, Some(3))? else {
        return Ok(None);
    };
    p += hl;
    if byte(h, p)? != Some(b':') {
        return Ok(None);
    }
    let Some((mi, ml)) = two(h, p + 1, 5, None)? else {
        return Ok(None);
    };
    p += 1 + ml;
    if byte(h, p)? != Some(b':') {
        return Ok(None);
    }
    p += 1;
    (f.year, f.month, f.day, f.hour, f.minute) = (Some(y), Some(m.0), Some(d), hh, mi);
    for (s, sl) in second_candidates(h, p)?.into_iter().flatten() {
        f.second = s;
        f.zone = LineZone::Absent;
        if let Some(end) = iso_tail(h, p + sl, &mut f)? {
            *out = f;
            return Ok(Some(end));
        }
    }
    Ok(None)
}

/// `(Www )?Mmm %d %k:%M:%S(\.%f)?( %ExY)?` (case-insensitive names) at `i`.
fn syslog<P: Probe>(h: Hay<'_, P>, i: usize, out: &mut Fields) -> R<Option<usize>> {
    const DAYS: [&[u8; 3]; 7] = [b"mon", b"tue", b"wed", b"thu", b"fri", b"sat", b"sun"];
    let mut p = i;
    if let Some(l) = letters3(h, p)?
        && DAYS.contains(&&l)
        && byte(h, p + 3)? == Some(b' ')
    {
        p += 4;
    }
    let Some(mo) = month(h, p)? else {
        return Ok(None);
    };
    p += 3;
    if byte(h, p)? != Some(b' ') {
        return Ok(None);
    }
    let Some((d, dl)) = day(h, p + 1)? else {
        return Ok(None);
    };
    p += 1 + dl;
    if byte(h, p)? != Some(b' ') {
        return Ok(None);
    }
    p += 1;
    if byte(h, p)? == Some(b' ') {
        p += 1;
    }
    let Some((hh, hl)) = two(h, p, 2, None)? else {
        return Ok(None);
    };
    p += hl;
    if byte(h, p)? != Some(b':') {
        return Ok(None);
    }
    let Some((mi, ml)) = two(h, p + 1, 5, None)? else {
        return Ok(None);
    };
    p += 1 + ml;
    if byte(h, p)? != Some(b':') {
        return Ok(None);
    }
    p += 1;
    let mut f = Fields {
        month: Some(mo),
        day: Some(d),
        hour: hh,
        minute: mi,
        ..Fields::default()
    };
    for (s, sl) in second_candidates(h, p)?.into_iter().flatten() {
        f.second = s;
        let (ends, n) = fraction_ends(h, p + sl, b".")?;
        for &e in &ends[..n] {
            if byte(h, e)? == Some(b' ')
                && let Some(y) = ex_year(h, e + 1)?
                && bound(h, e + 5)?
            {
                f.year = Some(y);
                *out = f;
                return Ok(Some(e + 5));
            }
            if bound(h, e)? {
                *out = f;
                return Ok(Some(e));
            }
        }
    }
    Ok(None)
}

/// The common access-log shape of [`apache`], `dd/Mmm/YYYY:HH:MM:SS +hhmm` (either separator,
/// `:` or ` ` after the year, two-digit fields, a numeric zone, then a non-word ASCII byte or
/// the end), read in one pass: the same end and fields as the general matcher, which takes
/// every other case.
fn apache_common<P: Probe>(h: Hay<'_, P>, i: usize, out: &mut Fields) -> Option<usize> {
    // dd/Mmm/YYYY:HH:MM:SS +hhmm
    // 0  3   7    12 15 18 21
    h.probe.read(i);
    h.probe.read(i + 26);
    let b: &[u8; 26] = h.b.get(i..i + 26)?.try_into().ok()?;
    if h.b
        .get(i + 26)
        .is_some_and(|&c| !c.is_ascii() || is_word(c))
    {
        return None;
    }
    let digit = |k: usize| {
        let d = b[k].wrapping_sub(b'0');
        (d < 10).then_some(i64::from(d))
    };
    let two = |k: usize| Some(digit(k)? * 10 + digit(k + 1)?);
    let sep = b[2];
    let (day, year, hour, minute, second) = (two(0)?, two(9)?, two(12)?, two(15)?, two(18)?);
    let shape = matches!(sep, b'/' | b'-')
        && b[6] == sep
        && b[7..9] == *b"20"
        && b[9] <= b'2'
        && matches!(b[11], b':' | b' ')
        && b[14] == b':'
        && b[17] == b':'
        && b[20] == b' '
        && matches!(b[21], b'+' | b'-')
        && matches!(b[22], b'0' | b'1');
    if !shape || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let letters = [b[3], b[4], b[5]];
    if !letters.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let month = month_lower(&letters.map(|c| c.to_ascii_lowercase()))?;
    let offset = two(22)? * 60 + two(24)?;
    let offset = if b[21] == b'-' { -offset } else { offset };
    // (the seconds' bytes are read by `two(18)` only)
    h.probe.seconds(i + 18);
    *out = Fields {
        year: Some(2000 + year),
        month: Some(month),
        day: Some(day),
        hour,
        minute,
        second,
        zone: LineZone::Offset(i32::try_from(offset).ok()?),
        ..Fields::default()
    };
    Some(i + 26)
}

/// `%d(sep)Mmm(sep)%ExY[ :]?%H:%M:%S(\.%f)?( %z)?` (case-insensitive) at `i`.
fn apache<P: Probe>(h: Hay<'_, P>, i: usize, out: &mut Fields) -> R<Option<usize>> {
    match apache_common(h, i, out) {
        Some(end) => Ok(Some(end)),
        None => apache_general(h, i, out),
    }
}

fn apache_general<P: Probe>(h: Hay<'_, P>, i: usize, out: &mut Fields) -> R<Option<usize>> {
    let Some((d, dl)) = day(h, i)? else {
        return Ok(None);
    };
    let mut p = i + dl;
    let Some(sep) = byte(h, p)?.filter(|b| matches!(b, b'-' | b'/')) else {
        return Ok(None);
    };
    let Some(mo) = month(h, p + 1)? else {
        return Ok(None);
    };
    p += 4;
    if byte(h, p)? != Some(sep) {
        return Ok(None);
    }
    let Some(y) = ex_year(h, p + 1)? else {
        return Ok(None);
    };
    p += 5;
    if matches!(byte(h, p)?, Some(b' ' | b':')) {
        p += 1;
    }
    let Some((hh, hl)) = two(h, p, 1, Some(3))? else {
        return Ok(None);
    };
    p += hl;
    if byte(h, p)? != Some(b':') {
        return Ok(None);
    }
    let Some((mi, ml)) = two(h, p + 1, 5, None)? else {
        return Ok(None);
    };
    p += 1 + ml;
    if byte(h, p)? != Some(b':') {
        return Ok(None);
    }
    p += 1;
    let mut f = Fields {
        year: Some(y),
        month: Some(mo),
        day: Some(d),
        hour: hh,
        minute: mi,
        ..Fields::default()
    };
    for (s, sl) in second_candidates(h, p)?.into_iter().flatten() {
        f.second = s;
        let (ends, n) = fraction_ends(h, p + sl, b".")?;
        for &e in &ends[..n] {
            if byte(h, e)? == Some(b' ')
                && let Some(z) = zone_at(h, e + 1, true)?
            {
                set_zone(&mut f, &h.b[e + 1..z]);
                *out = f;
                return Ok(Some(z));
            }
            if bound(h, e)? {
                *out = f;
                return Ok(Some(e));
            }
        }
    }
    Ok(None)
}

/// Whether three ASCII letters follow the separator at `q`, then the same separator (the
/// month of an Apache date).
fn month_follows(h: &[u8], q: usize) -> bool {
    h.get(q + 1..q + 4)
        .is_some_and(|m| m.iter().all(u8::is_ascii_alphabetic))
        && h.get(q + 4) == h.get(q)
}

impl Native {
    /// Recognises the default template a datepattern is (without `{^LN-BEG}`).
    pub(crate) fn for_pattern(pattern: &str) -> Option<Native> {
        use crate::pattern::defaults as d;
        match pattern {
            d::ISO => Some(Native::Iso),
            d::SYSLOG => Some(Native::Syslog),
            d::APACHE => Some(Native::Apache),
            _ => None,
        }
    }

    /// True when the template's regex surely cannot match starting at byte `i` (judged from
    /// a few ASCII bytes; any non-ASCII byte among them means "cannot tell": `false`).
    /// ISO dates start with the literal `2` of `20[0-2]\d`; Apache dates have `/` or `-`
    /// after a one- or two-character day, then three letters and the same separator.
    pub(crate) fn cannot_start(self, h: &[u8], i: usize) -> bool {
        let ascii = |k: usize| h.get(k).is_none_or(u8::is_ascii);
        match self {
            Native::Iso => h.get(i).is_some_and(|&b| b.is_ascii() && b != b'2'),
            Native::Apache => {
                let sep = |k: usize| matches!(h.get(k), Some(b'/' | b'-'));
                if !(ascii(i) && ascii(i + 1) && ascii(i + 2)) {
                    return false;
                }
                let q = match (sep(i + 1), sep(i + 2)) {
                    (true, _) => i + 1,
                    (false, true) => i + 2,
                    (false, false) => return true,
                };
                (q + 1..=q + 4).all(ascii) && !month_follows(h, q)
            }
            Native::Syslog => false,
        }
    }

    /// Whether [`Native::next_start`] skips positions (else it returns every position).
    pub(crate) fn skips(self) -> bool {
        !matches!(self, Native::Syslog)
    }

    /// On an ASCII haystack: the first position `>= from` that [`Native::cannot_start`] does
    /// not rule out, found with memchr; `None` when there is none (the end of `h` included).
    pub(crate) fn next_start(self, h: &[u8], from: usize) -> Option<usize> {
        match self {
            Native::Iso => memchr::memchr(b'2', h.get(from..)?).map(|o| from + o),
            // a separator at `i + 1` or `i + 2` (the first one after `i`), followed by the
            // month's three letters and the same separator
            Native::Apache => {
                // no start below `lo`; separators are looked for from `s` on
                let (mut lo, mut s) = (from, from + 1);
                loop {
                    let q = s + memchr::memchr2(b'/', b'-', h.get(s..)?)?;
                    if month_follows(h, q) {
                        return Some(q.saturating_sub(2).max(lo));
                    }
                    // every start up to `q` has its first separator at `q` or before
                    (lo, s) = (q, q + 1);
                }
            }
            Native::Syslog => (from < h.len()).then_some(from),
        }
    }

    /// The preferred match of the template body starting exactly at `i`
    /// (no boundary assertion before `i`).
    #[cfg(test)]
    pub(crate) fn body_at(self, h: &[u8], i: usize, out: &mut Fields) -> R<Option<usize>> {
        self.body_in(Hay { b: h, probe: () }, i, out)
    }

    /// Word-bounded form at `i`: the end of the match starting at `i`.
    pub(crate) fn word_at(self, h: &[u8], i: usize, out: &mut Fields) -> R<Option<usize>> {
        self.word_in(Hay { b: h, probe: () }, i, out)
    }

    /// Line-begin form: up to two leading non-word characters, then the body.
    /// Returns `(date start, date end)`.
    #[cfg(test)]
    pub(crate) fn line_begin(self, h: &[u8], out: &mut Fields) -> R<Option<(usize, usize)>> {
        self.line_begin_in(Hay { b: h, probe: () }, out)
    }

    fn body_in<P: Probe>(self, h: Hay<'_, P>, i: usize, out: &mut Fields) -> R<Option<usize>> {
        match self {
            Native::Iso => iso(h, i, out),
            Native::Syslog => syslog(h, i, out),
            Native::Apache => apache(h, i, out),
        }
    }

    fn word_in<P: Probe>(self, h: Hay<'_, P>, i: usize, out: &mut Fields) -> R<Option<usize>> {
        if !bound(h, i)? {
            return Ok(None);
        }
        self.body_in(h, i, out)
    }

    fn line_begin_in<P: Probe>(self, h: Hay<'_, P>, out: &mut Fields) -> R<Option<(usize, usize)>> {
        let mut run = 0;
        while run < 2 && byte(h, run)?.is_some_and(|b| !is_word(b)) {
            run += 1;
        }
        for k in (0..=run).rev() {
            if let Some(end) = self.body_in(h, k, out)? {
                return Ok(Some((k, end)));
            }
        }
        Ok(None)
    }

    /// [`Native::body_at`] (`Form::Body`), [`Native::word_at`] (`Form::Word`) or
    /// [`Native::line_begin`] (`Form::LineBegin`, `i` = 0) at `i`, answered from `memo` when
    /// the haystack holds there what the remembered match read (see [`Recall`]). Returns the
    /// date's start and end.
    pub(crate) fn recalled(
        self,
        form: Form,
        h: &[u8],
        i: usize,
        out: &mut Fields,
        memo: &mut Recall,
    ) -> R<Option<(usize, usize)>> {
        if let Some((found, fields)) = memo.recall(self, form, h, i) {
            *out = *fields;
            return Ok(Some(found));
        }
        let reach = Reach::new();
        let hay = Hay {
            b: h,
            probe: &reach,
        };
        let got = match form {
            Form::Body => self.body_in(hay, i, out)?.map(|e| (i, e)),
            Form::Word => self.word_in(hay, i, out)?.map(|e| (i, e)),
            Form::LineBegin => self.line_begin_in(hay, out)?,
        };
        if let Some(found) = got {
            // The seconds are kept for a single position's match (a line-begin search tries
            // several, whose failed attempts may read those bytes too).
            if form == Form::LineBegin {
                reach.sec.set(None);
            }
            memo.older()
                .remember((self, form), h, i, found, &reach, out);
        }
        Ok(got)
    }
}

/// `a == b`, compared eight bytes at a time (the last word overlapping) without a call: the
/// remembered spans are a few dozen bytes, where a `memcmp` call costs more than the compare.
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return a == b;
    }
    let word = |s: &[u8], k: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[k..k + 8]);
        u64::from_le_bytes(w)
    };
    let mut k = 0;
    while k + 8 < n {
        if word(a, k) != word(b, k) {
            return false;
        }
        k += 8;
    }
    word(a, n - 8) == word(b, n - 8)
}

/// Which form of a native matcher a [`Recall`] remembers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    /// [`Native::body_at`].
    Body,
    /// [`Native::word_at`].
    Word,
    /// [`Native::line_begin`].
    LineBegin,
}

/// The last two matches of a native matcher with the bytes they read (their [`Reach`]): a
/// template's calls alternate between two haystacks when its last place is searched with the
/// line cut after the date in some lines and the whole line in others.
#[derive(Debug, Default)]
pub(crate) struct Recall {
    entries: [Entry; 2],
    /// The entry that answered or was written last (asked first, replaced last).
    last: usize,
}

impl Recall {
    /// The answer of `native`'s `form` at `i` (the date's start and end) and its fields, when
    /// a remembered match applies there (they are then also [`Recall::fields`]).
    #[inline(always)]
    pub(crate) fn recall(
        &mut self,
        native: Native,
        form: Form,
        h: &[u8],
        i: usize,
    ) -> Option<((usize, usize), &Fields)> {
        let k = self.last & 1;
        if let Some(found) = self.entries[k].recall(native, form, h, i) {
            return Some((found, &self.entries[k].fields));
        }
        let k = 1 - k;
        if let Some(found) = self.entries[k].recall(native, form, h, i) {
            self.last = k;
            return Some((found, &self.entries[k].fields));
        }
        // The common change from line to line: the same date a second later.
        let k = self.last & 1;
        let found = self.entries[k].recall_new_second(native, form, h, i)?;
        Some((found, &self.entries[k].fields))
    }

    /// The fields of the entry that answered or was written last.
    pub(crate) fn fields(&self) -> &Fields {
        &self.entries[self.last & 1].fields
    }

    /// The entry to write a new match into (the one that answered least recently).
    fn older(&mut self) -> &mut Entry {
        self.last = 1 - self.last;
        &mut self.entries[self.last]
    }
}

/// A match of a native matcher with the bytes it read (its [`Reach`]).
///
/// A matcher's answer at a position depends only on the bytes it reads, on where the
/// haystack ends when it looks past the end, and on the line's start when it relies on there
/// being nothing before the position. So a later call of the same matcher and form at a
/// position where the haystack holds the same bytes at the same offsets (ending at the same
/// offset when the reads reached the end; at the line's start when the answer relied on it)
/// has the same answer, shifted by the difference of the positions. Log lines usually repeat
/// their date (and the byte after it) from line to line, at the same place or, when a field
/// before it changes length, at another.
#[derive(Debug, Default)]
struct Entry {
    key: Option<(Native, Form)>,
    /// The bytes read, from the first to the last (cut at the end of the haystack).
    bytes: Vec<u8>,
    /// The position minus the offset of the first byte read.
    back: usize,
    /// The reads reached the end of the haystack.
    to_end: bool,
    /// The answer relied on the position being the line's start.
    at_start: bool,
    /// The date's start and end, relative to the position.
    found: (usize, usize),
    fields: Fields,
    /// Where the seconds' two digits are in `bytes`, when the answer depends on them only
    /// through their value (two digits up to 59, the fields' `second`): the same bytes with
    /// other such seconds have the same answer with those seconds.
    sec: Option<usize>,
}

impl Entry {
    #[inline]
    fn recall(&self, native: Native, form: Form, h: &[u8], i: usize) -> Option<(usize, usize)> {
        if self.key != Some((native, form)) || (self.at_start && i != 0) {
            return None;
        }
        let lo = i.checked_sub(self.back)?;
        let hi = lo + self.bytes.len();
        let same = same_bytes(h.get(lo..hi)?, &self.bytes) && (!self.to_end || hi == h.len());
        same.then_some((i + self.found.0, i + self.found.1))
    }

    /// [`Entry::recall`] of the same bytes but another second (see [`Entry::sec`]): the entry
    /// then remembers this match (its bytes and fields take the new second).
    #[inline]
    fn recall_new_second(
        &mut self,
        native: Native,
        form: Form,
        h: &[u8],
        i: usize,
    ) -> Option<(usize, usize)> {
        let s = self.sec?;
        if self.key != Some((native, form)) || (self.at_start && i != 0) {
            return None;
        }
        let lo = i.checked_sub(self.back)?;
        let hi = lo + self.bytes.len();
        let got = h.get(lo..hi)?;
        if self.to_end && hi != h.len() {
            return None;
        }
        let (tens, ones) = (got[s].wrapping_sub(b'0'), got[s + 1].wrapping_sub(b'0'));
        if tens > 5
            || ones > 9
            || !same_bytes(&got[..s], &self.bytes[..s])
            || !same_bytes(&got[s + 2..], &self.bytes[s + 2..])
        {
            return None;
        }
        self.bytes[s..s + 2].copy_from_slice(&got[s..s + 2]);
        self.fields.second = i64::from(tens * 10 + ones);
        Some((i + self.found.0, i + self.found.1))
    }

    fn remember(
        &mut self,
        key: (Native, Form),
        h: &[u8],
        i: usize,
        found: (usize, usize),
        reach: &Reach,
        fields: &Fields,
    ) {
        let lo = reach.lo.get().min(i);
        let hi = reach.hi.get().max(i);
        self.key = Some(key);
        self.bytes.clear();
        self.bytes
            .extend_from_slice(&h[lo.min(h.len())..(hi + 1).min(h.len())]);
        self.back = i - lo;
        self.to_end = hi >= h.len();
        self.at_start = reach.start.get();
        self.found = (found.0 - i, found.1 - i);
        self.fields = *fields;
        self.sec = reach
            .sec
            .get()
            .filter(|&k| k >= lo && k + 2 <= (hi + 1).min(h.len()))
            .map(|k| k - lo);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern;

    /// Exhaustive-ish check: the native matchers agree with the regex forms of
    /// their templates at every start position of many generated lines.
    #[test]
    fn native_equals_regex() {
        let bodies = [
            (Native::Iso, pattern::defaults::ISO),
            (Native::Syslog, pattern::defaults::SYSLOG),
            (Native::Apache, pattern::defaults::APACHE),
        ];
        let seeds = [
            "2005-08-14 10:00:00",
            "2005/8/4  1:02:03,5 +02:00",
            "2029.12.31T23:59:61.1234567Z",
            "2005-08-14 10:00:00 UTCx",
            "2005-08-14 10:00:00+0200x",
            "2005-10-31 24:00:00",
            "Sun Aug 14 10:00:00.123 2005",
            "aug  4  9:05:07",
            "Aug 34 10:00:00",
            "Aug 14 29:00:00 20291",
            "14/Aug/2005:10:00:00 +0200",
            "30/May/2024:23:59:59 -1130\"",
            "01-jan-2029 00:00:00 +1959 x",
            "31/DEC/2020:19:09:09 +0000]",
            "4-aug-2005 9:00:00.5 utc",
            "31/Dec/2005 23:59:60 -05",
            "14/Aug/2005:10:00:00 +02:0",
            "05-Aug-2005:00:00:00 GMT",
            "Mon Aug  1 00:00:00",
        ];
        let affixes = [
            "", "a", " ", "_", "x ", "[", "0", ".5", " 2005", ":", "é", "\t+0100", ",1234567",
        ];
        let mut lines = Vec::new();
        for s in seeds {
            for a in affixes {
                for b in affixes {
                    lines.push(format!("{a}{s}{b}"));
                }
            }
            // single-character mutations
            for i in 0..s.len() {
                for c in [
                    '0', '1', '2', '3', '6', '9', ' ', ':', '-', 'T', 'Z', 'x', 'é',
                ] {
                    let mut t = s.to_owned();
                    if t.is_char_boundary(i) && t.is_char_boundary(i + 1) {
                        t.replace_range(i..i + 1, c.encode_utf8(&mut [0; 4]));
                        lines.push(t);
                    }
                }
            }
        }
        let mut checked = 0;
        for (native, body) in bodies {
            let word = regex::Regex::new(&pattern::pattern_regex(body).unwrap().0.source).unwrap();
            let line = regex::Regex::new(
                &pattern::pattern_regex(&format!("{{^LN-BEG}}{body}"))
                    .unwrap()
                    .0
                    .source,
            )
            .unwrap();
            for l in &lines {
                let h = l.as_bytes();
                for i in (0..=l.len()).filter(|&i| l.is_char_boundary(i)) {
                    if native.cannot_start(h, i) {
                        let at_i = word.find_at(l, i).filter(|m| m.start() == i);
                        assert_eq!(at_i, None, "{native:?} cannot_start at {i} in {l:?}");
                        checked += 1;
                    }
                    if let Ok(got) = native.word_at(h, i, &mut Fields::default()) {
                        let want = word
                            .find_at(l, i)
                            .filter(|m| m.start() == i)
                            .map(|m| m.end());
                        assert_eq!(got, want, "{native:?} at {i} in {l:?}");
                        checked += 1;
                    }
                }
                if let Ok(got) = native.line_begin(h, &mut Fields::default()) {
                    let want = line.captures(l).map(|c| {
                        let g = c.iter().skip(1).flatten().next().unwrap();
                        (g.start(), g.end())
                    });
                    assert_eq!(got, want, "{native:?} line-begin {l:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 50_000, "{checked}");
    }

    /// The one-pass reading of the common access-log shape gives the general matcher's end
    /// and fields.
    #[test]
    fn apache_common_equals_general() {
        let mut lines = Vec::new();
        for base in [
            "30/May/2024:00:00:00 +0000",
            "01-Jan-2029 23:59:59 -1130",
            "19/dEc/2000:09:05:07 +1959",
        ] {
            for tail in ["", "]", " x", "x", "0", "_", "é", ":", "\""] {
                lines.push(format!("{base}{tail}"));
                for k in 0..base.len() {
                    for c in [
                        '0', '1', '2', '3', '4', '5', '6', '9', ' ', ':', '/', '-', '+', 'x', 'é',
                    ] {
                        let mut t = base.to_owned();
                        t.replace_range(k..k + 1, c.encode_utf8(&mut [0; 4]));
                        lines.push(format!("{t}{tail}"));
                    }
                }
            }
        }
        let mut fast = 0;
        for l in &lines {
            let h = l.as_bytes();
            let mut a = Fields::default();
            if let Some(end) = apache_common(Hay { b: h, probe: () }, 0, &mut a) {
                fast += 1;
                let mut b = Fields::default();
                assert_eq!(
                    apache_general(Hay { b: h, probe: () }, 0, &mut b),
                    Ok(Some(end)),
                    "{l:?}"
                );
                assert_eq!(a, b, "{l:?}");
            }
        }
        assert!(fast > 1000, "{fast}");
    }

    /// On ASCII haystacks `next_start` returns exactly the positions `cannot_start` keeps.
    #[test]
    fn next_start_skips_what_cannot_start() {
        let lines = [
            "198.18.79.121 - alice [30/May/2024:00:00:00 +0000] \"GET /a/b-c HTTP/1.1\" 404",
            "2005-08-14 10:00:00 x 2 22 -/",
            "-/--//a-b/c",
            "",
            "x",
            "12/",
            "1-",
            "1/Jan/x 12-jan/ 3/ja/ 4-Feb-5/MAR- 6//abc//7--abc-x/abc/",
            "a/b/c/d-e-f/gh-/ijk/ 30/May/2024:00:00:00 +0000 1-abc-",
            "-abc-/def/",
        ];
        for native in [Native::Iso, Native::Apache, Native::Syslog] {
            for l in lines {
                let h = l.as_bytes();
                let keep: Vec<usize> = (0..=h.len())
                    .filter(|&i| !native.cannot_start(h, i) && (i < h.len() || !native.skips()))
                    .collect();
                let mut got = Vec::new();
                let mut from = 0;
                while let Some(i) = native.next_start(h, from) {
                    got.push(i);
                    from = i + 1;
                }
                let keep: Vec<usize> = keep.into_iter().filter(|&i| i < h.len()).collect();
                assert_eq!(got, keep, "{native:?} {l:?}");
            }
        }
    }

    /// A date a second later is answered by the memo (its remembered match with the new
    /// second) exactly as the matcher answers it: seconds walking up, minutes turning, seconds
    /// that are not a second (60, 7x, a letter), in every form and place.
    #[test]
    fn a_new_second_is_recalled_as_the_matcher_reads_it() {
        let mut lines = Vec::new();
        for (before, after) in [("", " x"), ("192.0.2.1 - - [", "] \"GET /"), ("[", "")] {
            for minute in 0..3 {
                for sec in (0..60).chain([60, 75, 99]) {
                    let t = format!("{before}30/May/2024:10:{minute:02}:{sec:02} +0000{after}");
                    lines.push((before.len(), t.clone()));
                    lines.push((before.len(), t.replace(":0", ":a")));
                    lines.push((before.len(), t));
                }
            }
        }
        let (mut by_second, mut checked) = (0, 0);
        for form in [Form::Body, Form::Word, Form::LineBegin] {
            let mut memo = Recall::default();
            for (at, l) in &lines {
                let h = l.as_bytes();
                let i = if form == Form::LineBegin { 0 } else { *at };
                let exact = memo
                    .entries
                    .iter()
                    .any(|e| e.recall(Native::Apache, form, h, i).is_some());
                let remembered = memo.recall(Native::Apache, form, h, i).is_some();
                let mut a = Fields::default();
                let got = Native::Apache.recalled(form, h, i, &mut a, &mut memo);
                let mut b = Fields::default();
                let want = match form {
                    Form::Body => Native::Apache
                        .body_at(h, i, &mut b)
                        .map(|o| o.map(|e| (i, e))),
                    Form::Word => Native::Apache
                        .word_at(h, i, &mut b)
                        .map(|o| o.map(|e| (i, e))),
                    Form::LineBegin => Native::Apache.line_begin(h, &mut b),
                };
                assert_eq!(got, want, "{form:?} at {i} in {l:?}");
                if let Ok(Some(_)) = want {
                    assert_eq!(a, b, "{form:?} at {i} in {l:?}");
                }
                by_second += usize::from(remembered && !exact);
                checked += 1;
            }
        }
        // Body and Word: every new second after the first of a place and minute
        assert!(by_second >= 2 * 3 * 3 * 55, "{by_second} of {checked}");
    }

    /// A recalled answer is the matcher's answer: the memo is carried from line to line
    /// through lines that repeat a date at other places, with other bytes around it, cut
    /// short, at the line's start, and mutated inside the date or right after it.
    #[test]
    fn a_recalled_answer_is_the_matchers_answer() {
        let seeds = [
            "Jan  5 00:00:00",
            "Sun Aug 14 10:00:00.123 2005",
            "30/May/2024:00:00:00 +0000",
            "14/Aug/2005:10:00:00 +02:00",
            "4-aug-2005 9:00:00.5 utc",
            "2005-08-14 10:00:00",
            "2005/8/4  1:02:03,5 +02:00",
            "2005-08-14 10:00:00.1234567",
        ];
        let before = ["", "[", "x ", "192.0.2.1 - - [", "a", " ", "é ", "2"];
        let after = [
            "",
            " web01 sshd[1]: x",
            "] \"GET /",
            " 2005",
            ".5",
            "0",
            "x",
            " +0100",
            "é",
            "\t UTC",
        ];
        let mut lines = Vec::new();
        for s in seeds {
            for a in before {
                for b in after {
                    lines.push((a.len(), format!("{a}{s}{b}")));
                    // the same line again, then its mutations one byte at a time
                    lines.push((a.len(), format!("{a}{s}{b}")));
                    let t = format!("{a}{s}{b}");
                    for k in a.len()..t.len().min(a.len() + s.len() + 3) {
                        for c in ["0", "9", " ", ".", "é"] {
                            if t.is_char_boundary(k) && t.is_char_boundary(k + 1) {
                                let mut m = t.clone();
                                m.replace_range(k..k + 1, c);
                                lines.push((a.len(), m));
                                lines.push((a.len(), t.clone()));
                            }
                        }
                    }
                }
            }
        }
        let (mut hits, mut checked) = (0, 0);
        for native in [Native::Iso, Native::Syslog, Native::Apache] {
            for form in [Form::Body, Form::Word, Form::LineBegin] {
                let mut memo = Recall::default();
                for (at, l) in &lines {
                    let h = l.as_bytes();
                    let i = if form == Form::LineBegin { 0 } else { *at };
                    // cut at every length from the date's end on (a windowed search's haystack)
                    for cut in [h.len(), (i + 12).min(h.len()), (i + 20).min(h.len())] {
                        let h = &h[..cut];
                        let remembered = memo.recall(native, form, h, i).is_some();
                        let mut a = Fields::default();
                        let got = native.recalled(form, h, i, &mut a, &mut memo);
                        let mut b = Fields::default();
                        let want = match form {
                            Form::Body => native.body_at(h, i, &mut b).map(|o| o.map(|e| (i, e))),
                            Form::Word => native.word_at(h, i, &mut b).map(|o| o.map(|e| (i, e))),
                            Form::LineBegin => native.line_begin(h, &mut b),
                        };
                        assert_eq!(got, want, "{native:?} {form:?} at {i} in {h:?}");
                        if let Ok(Some(_)) = want {
                            assert_eq!(a, b, "{native:?} {form:?} at {i} in {h:?}");
                        }
                        hits += usize::from(remembered);
                        checked += 1;
                    }
                }
            }
        }
        assert!(hits > 5_000 && checked > 50_000, "{hits} {checked}");
    }
}
