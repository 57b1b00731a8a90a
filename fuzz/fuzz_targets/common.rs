//! Input layout shared by the targets: parts separated by NUL bytes, each read as UTF-8
//! (lossily: the daemon decodes log lines before any parser sees them).

#![allow(dead_code)]

/// The input split at NUL bytes, every part decoded lossily.
pub fn parts(data: &[u8]) -> Vec<String> {
    data.split(|b| *b == 0)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect()
}

/// A fixed "now" for date-dependent code (2026-12-06 12:00:00 UTC): results never depend on the
/// wall clock, so a crash reproduces.
pub const NOW: f64 = 1_796_558_400.0;

/// The longest line the daemon hands to a filter (the source's cap).
pub const MAX_LINE: usize = 64 * 1024;

/// Lines of `text` as the source delivers them (split at `\n`, each capped at [`MAX_LINE`]
/// bytes on a character boundary).
pub fn lines(text: &str) -> Vec<&str> {
    text.split('\n')
        .map(|l| {
            if l.len() <= MAX_LINE {
                l
            } else {
                let mut end = MAX_LINE;
                while !l.is_char_boundary(end) {
                    end -= 1;
                }
                &l[..end]
            }
        })
        .collect()
}
