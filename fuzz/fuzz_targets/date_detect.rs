//! Date detection with fail2ban's default templates: every line of the input through one
//! detector (its template order adapts to hits, as in the daemon). A hit's span must lie on
//! character boundaries inside the line and its time must be finite.

#![no_main]

mod common;

use ferroban_date::DateDetector;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut det = DateDetector::with_default_templates();
    det.set_default_timezone(jiff::tz::TimeZone::UTC);
    for line in common::lines(&text) {
        if let Some(hit) = det.match_time(line, common::NOW) {
            assert!(hit.start <= hit.end && hit.end <= line.len(), "{hit:?} outside {line:?}");
            assert!(line.is_char_boundary(hit.start) && line.is_char_boundary(hit.end));
            if let Some(t) = hit.time {
                assert!(t.is_finite(), "{hit:?} for {line:?}");
            }
        }
    }
});
