//! `datepattern` (strptime dialect, `{^LN-BEG}`, `Epoch`, `TAI64N`, `ISO8601`, `%ExY`, regex
//! parts) and `logtimezone`: compiled, then lines matched. A hit's span must lie on character
//! boundaries inside the line and its time must be finite.
//!
//! Input: the datepattern, NUL, an optional logtimezone, NUL, lines (`\n`).

#![no_main]

mod common;

use ferroban_date::DateDetector;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parts = common::parts(data);
    let [pattern, tz, log, ..] = parts.as_slice() else {
        return;
    };
    let Ok(mut det) = DateDetector::from_pattern(pattern) else {
        return;
    };
    det.set_default_timezone(jiff::tz::TimeZone::UTC);
    if !tz.is_empty() && det.set_log_timezone(tz).is_err() {
        return;
    }
    for line in common::lines(log) {
        if let Some(hit) = det.match_time(line, common::NOW) {
            assert!(hit.start <= hit.end && hit.end <= line.len(), "{hit:?} outside {line:?}");
            assert!(line.is_char_boundary(hit.start) && line.is_char_boundary(hit.end));
            if let Some(t) = hit.time {
                assert!(t.is_finite(), "{hit:?} for {line:?}");
            }
        }
    }
});
