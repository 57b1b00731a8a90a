//! A journal entry as a syslog-style line, the way fail2ban's journal backend presents it to the
//! filters: `HOST IDENT[PID]: MESSAGE` (each part only when known), newlines in the message
//! written as the two characters `\n`, and the time taken from the entry, not from the text.

use super::export::Entry;

/// An entry ready for the filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Formatted {
    /// `HOST IDENT[PID]: MESSAGE`.
    pub line: String,
    /// When the entry was logged, µs since the epoch (`_SOURCE_REALTIME_TIMESTAMP`, else
    /// `__REALTIME_TIMESTAMP`).
    pub time_usec: u64,
}

fn text(v: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(v)
}

fn non_empty<'a>(e: &'a Entry, name: &str) -> Option<&'a [u8]> {
    e.get(name).filter(|v| !v.is_empty())
}

/// Python's `int(text, 0)` for the forms a pid takes (decimal, `0x`/`0o`/`0b`, blanks around,
/// `_` between digits); `None` otherwise.
fn py_int(s: &str) -> Option<i128> {
    let t = s.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let lower = t.to_ascii_lowercase();
    let (radix, digits) = if let Some(r) = lower.strip_prefix("0x") {
        (16, r)
    } else if let Some(r) = lower.strip_prefix("0o") {
        (8, r)
    } else if let Some(r) = lower.strip_prefix("0b") {
        (2, r)
    } else {
        // Base 0 refuses leading zeros in a decimal number other than zero itself.
        if lower.len() > 1
            && lower.starts_with('0')
            && lower.bytes().any(|b| b != b'0' && b != b'_')
        {
            return None;
        }
        (10, lower.as_str())
    };
    let digits = digits
        .strip_prefix('_')
        .filter(|_| radix != 10)
        .unwrap_or(digits);
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let v = i128::from_str_radix(&digits.replace('_', ""), radix).ok()?;
    Some(if neg { -v } else { v })
}

/// The entry's time in µs since the epoch.
pub fn entry_time(e: &Entry) -> Option<u64> {
    ["_SOURCE_REALTIME_TIMESTAMP", "__REALTIME_TIMESTAMP"]
        .iter()
        .find_map(|f| {
            e.get(f)
                .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse().ok())
        })
}

/// Formats `e`; `None` when it has no time at all, or when a value was longer than
/// [`MAX_FIELD`](super::MAX_FIELD) and was cut: such an entry is dropped (counted as skipped by
/// the caller), never matched on a cut, as over-long file lines are not (see
/// [`MAX_LINE`](crate::MAX_LINE)).
pub fn format_entry(e: &Entry) -> Option<Formatted> {
    if e.cut {
        return None;
    }
    let time_usec = entry_time(e)?;
    let mut parts: Vec<String> = Vec::with_capacity(4);
    if let Some(h) = non_empty(e, "_HOSTNAME") {
        parts.push(text(h).into_owned());
    }
    let ident = non_empty(e, "SYSLOG_IDENTIFIER").or_else(|| non_empty(e, "_COMM"));
    if let Some(ident) = ident {
        let mut tag = text(ident).into_owned();
        if let Some(pid) = non_empty(e, "SYSLOG_PID").or_else(|| non_empty(e, "_PID")) {
            let pid = text(pid);
            match py_int(&pid) {
                Some(n) => tag.push_str(&format!("[{n}]")),
                None => tag.push_str(&format!("[{pid}]")),
            }
        }
        tag.push(':');
        let kernel = tag == "kernel:";
        parts.push(tag);
        if kernel {
            let mono = ["_SOURCE_MONOTONIC_TIMESTAMP", "__MONOTONIC_TIMESTAMP"]
                .iter()
                .find_map(|f| {
                    e.get(f)
                        .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<u64>().ok())
                })
                .unwrap_or(0);
            parts.push(format!("[{:12.6}]", mono as f64 / 1e6));
        }
    }
    let messages: Vec<std::borrow::Cow<'_, str>> = e.all("MESSAGE").map(text).collect();
    parts.push(messages.join(" "));
    let line = parts.join(" ").replace('\n', "\\n");
    Some(Formatted { line, time_usec })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::export::ExportParser;

    fn entry(fields: &[(&str, &[u8])]) -> Entry {
        let mut input = Vec::new();
        for (k, v) in fields {
            input.extend_from_slice(k.as_bytes());
            input.push(b'\n');
            input.extend_from_slice(&(v.len() as u64).to_le_bytes());
            input.extend_from_slice(v);
            input.push(b'\n');
        }
        input.push(b'\n');
        let mut p = ExportParser::new();
        p.push(&input);
        p.next_entry().unwrap().clone()
    }

    /// The journal's over-long line: a MESSAGE padded so that a cut at [`MAX_FIELD`] falls
    /// between two addresses is dropped, never formatted cut (the cut would blame the first).
    #[test]
    fn overlong_message_with_two_addresses_is_dropped() {
        let first = b" from 203.0.113.77";
        let mut msg = b"Invalid user ".to_vec();
        msg.resize(crate::journal::MAX_FIELD - first.len(), b'a');
        msg.extend_from_slice(first);
        msg.extend_from_slice(b" from 2001:db8:bad::1 port 22");
        let e = entry(&[
            ("__REALTIME_TIMESTAMP", b"1700000000000000"),
            ("SYSLOG_IDENTIFIER", b"sshd"),
            ("MESSAGE", &msg),
        ]);
        assert!(e.cut);
        assert!(format_entry(&e).is_none());
        let ok = entry(&[
            ("__REALTIME_TIMESTAMP", b"1700000000000000"),
            ("SYSLOG_IDENTIFIER", b"sshd"),
            ("MESSAGE", &msg[..crate::journal::MAX_FIELD]),
        ]);
        assert!(
            format_entry(&ok)
                .unwrap()
                .line
                .ends_with("from 203.0.113.77")
        );
    }

    #[test]
    fn syslog_shape() {
        let e = entry(&[
            ("__REALTIME_TIMESTAMP", b"1700000000123456"),
            ("_HOSTNAME", b"srv"),
            ("SYSLOG_IDENTIFIER", b"sshd"),
            ("_PID", b"0x10"),
            ("MESSAGE", b"Failed password\nfor root"),
        ]);
        let f = format_entry(&e).unwrap();
        assert_eq!(f.line, "srv sshd[16]: Failed password\\nfor root");
        assert_eq!(f.time_usec, 1_700_000_000_123_456);
    }

    #[test]
    fn fallbacks() {
        // _COMM when no identifier, raw pid text when not a number, source time first.
        let e = entry(&[
            ("__REALTIME_TIMESTAMP", b"2"),
            ("_SOURCE_REALTIME_TIMESTAMP", b"1"),
            ("_COMM", b"app"),
            ("SYSLOG_PID", b"abc"),
            ("MESSAGE", b"one"),
            ("MESSAGE", b"two"),
        ]);
        let f = format_entry(&e).unwrap();
        assert_eq!((f.line.as_str(), f.time_usec), ("app[abc]: one two", 1));
        // Nothing but a message.
        let e = entry(&[("__REALTIME_TIMESTAMP", b"5"), ("MESSAGE", b"bare")]);
        assert_eq!(format_entry(&e).unwrap().line, "bare");
        // No identifier, so the pid is not shown; no message at all.
        let e = entry(&[
            ("__REALTIME_TIMESTAMP", b"5"),
            ("_HOSTNAME", b"h"),
            ("_PID", b"1"),
        ]);
        assert_eq!(format_entry(&e).unwrap().line, "h ");
        // The kernel's monotonic stamp.
        let e = entry(&[
            ("__REALTIME_TIMESTAMP", b"5"),
            ("__MONOTONIC_TIMESTAMP", b"12345678"),
            ("SYSLOG_IDENTIFIER", b"kernel"),
            ("MESSAGE", b"x"),
        ]);
        assert_eq!(format_entry(&e).unwrap().line, "kernel: [   12.345678] x");
        assert!(format_entry(&entry(&[("MESSAGE", b"no time")])).is_none());
    }

    #[test]
    fn python_int() {
        assert_eq!(py_int(" 42 "), Some(42));
        assert_eq!(py_int("0o17"), Some(15));
        assert_eq!(py_int("1_000"), Some(1000));
        assert_eq!(py_int("012"), None);
        assert_eq!(py_int("0"), Some(0));
        assert_eq!(py_int("00"), Some(0));
        assert_eq!(py_int("1__0"), None);
        assert_eq!(py_int(""), None);
    }
}
