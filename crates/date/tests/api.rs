//! Public API behaviour with fail2ban's test clock (CET/CEST, 2005-08-14 12:00 CEST).

use ferroban_date::{DateDetector, DateError};
use jiff::tz::TimeZone;

const NOW: f64 = 1_124_013_600.0;

fn det(p: Option<&str>) -> DateDetector {
    let mut d = match p {
        None => DateDetector::with_default_templates(),
        Some(p) => DateDetector::from_pattern(p).unwrap(),
    };
    d.set_default_timezone(TimeZone::posix("CET-01CEST-02,M3.5.0,M10.5.0").unwrap());
    d
}

fn hit(d: &mut DateDetector, line: &str, now: f64) -> (String, Option<f64>) {
    let h = d.match_time(line, now).expect("a date");
    (line[h.start..h.end].to_owned(), h.time)
}

#[test]
fn default_families() {
    let mut d = det(None);
    let cases = [
        (
            "Aug 14 11:59:59 host sshd[1]: x",
            "Aug 14 11:59:59",
            1_124_013_599.0,
        ),
        (
            "2005-08-14 11:59:59,123 x",
            "2005-08-14 11:59:59,123",
            1_124_013_599.0,
        ),
        (
            "1.2.3.4 - - [14/Aug/2005:11:59:59 +0200] \"GET\"",
            "14/Aug/2005:11:59:59 +0200",
            1_124_013_599.0,
        ),
        (
            "2005/08/14 11:59:59 [error] x",
            "2005/08/14 11:59:59",
            1_124_013_599.0,
        ),
        ("1124013599.500 x", "1124013599.500", 1_124_013_599.5),
        (
            "@4000000042ff0e9c00000000 x",
            "@4000000042ff0e9c00000000",
            1_124_011_676.0,
        ),
        (
            "Sun Aug 14 11:59:59 2005 x",
            "Sun Aug 14 11:59:59 2005",
            1_124_013_599.0,
        ),
        (
            "2005-08-14T09:59:59Z x",
            "2005-08-14T09:59:59Z",
            1_124_013_599.0,
        ),
    ];
    for (line, text, time) in cases {
        assert_eq!(
            hit(&mut d, line, NOW),
            (text.to_owned(), Some(time)),
            "{line}"
        );
    }
    assert!(d.match_time("no date", NOW).is_none());
}

#[test]
fn year_inference() {
    let mut d = det(Some("^%b %d %H:%M:%S"));
    // more than a day in the future: previous year
    assert_eq!(hit(&mut d, "Aug 16 10:00:00", NOW).1, Some(1_092_643_200.0));
    // within a day: this year
    assert_eq!(hit(&mut d, "Aug 15 10:00:00", NOW).1, Some(1_124_092_800.0));
    // Dec 31 seen on Jan 1: last year
    let jan1 = 1_136_073_000.0; // 2006-01-01 00:50 CET
    assert_eq!(
        hit(&mut d, "Dec 31 23:59:59", jan1).1,
        Some(1_136_069_999.0)
    );
    // Feb 29 in a non-leap year is invalid
    let h = d.match_time("Feb 29 10:00:00", NOW).unwrap();
    assert_eq!(h.time, None);
}

#[test]
fn time_only_is_today_or_yesterday() {
    let mut d = det(Some("%H:%M:%S"));
    assert_eq!(hit(&mut d, "x 11:00:00", NOW).1, Some(1_124_010_000.0));
    assert_eq!(
        hit(&mut d, "x 13:00:00", NOW).1,
        Some(1_124_017_200.0 - 86_400.0)
    );
}

#[test]
fn log_timezone_and_line_zone() {
    let mut d = det(Some("%Y-%m-%d %H:%M:%S"));
    d.set_log_timezone("UTC").unwrap();
    assert_eq!(hit(&mut d, "2005-08-14 10:00:00", NOW).1, Some(NOW));
    d.set_log_timezone("UTC-5").unwrap();
    assert_eq!(hit(&mut d, "2005-08-14 05:00:00", NOW).1, Some(NOW));
    d.set_log_timezone("UTC+0200").unwrap();
    assert_eq!(hit(&mut d, "2005-08-14 12:00:00", NOW).1, Some(NOW));
    assert!(matches!(
        d.set_log_timezone("Mars/Olympus"),
        Err(DateError::TimeZone(_))
    ));
    let mut z = det(Some("%Y-%m-%d %H:%M:%S %z"));
    z.set_log_timezone("UTC+0500").unwrap();
    assert_eq!(hit(&mut z, "2005-08-14 11:00:00 +0100", NOW).1, Some(NOW));
}

#[test]
fn markers_and_keywords() {
    let mut d = det(Some("{NONE}"));
    let h = d.match_time("Aug 14 11:59:59 x", NOW).unwrap();
    assert_eq!((h.start, h.end, h.time), (0, 0, None));
    let mut d = det(Some("LEPOCH"));
    assert_eq!(
        hit(&mut d, "1124013599123 x", NOW).1,
        Some(1_124_013_599.123)
    );
    let mut d = det(Some(r"^[^\[]*\[({DATE})"));
    assert_eq!(
        hit(&mut d, "x [14/Aug/2005:11:59:59 +0200]", NOW).0,
        "14/Aug/2005:11:59:59 +0200"
    );
    let mut d = det(Some("%d/%m/%Y %I:%M:%S %p"));
    assert_eq!(
        hit(&mut d, "14/08/2005 11:59:59 AM", NOW).1,
        Some(1_124_013_599.0)
    );
    assert!(matches!(
        DateDetector::from_pattern("%Q"),
        Err(DateError::Pattern { .. })
    ));
    assert!(DateDetector::from_pattern("(?<=x)%H:%M").is_err());
    assert!(matches!(
        DateDetector::from_pattern("Epoch\nEPOCH"),
        Err(DateError::DuplicateTemplate(_))
    ));
    // a bad {DATE} wrap is refused at construction (most wrapped defaults compile later)
    for bad in [r"^[({DATE})", r"^(?P<d>x)({DATE})", r"^\p{Bogus}({DATE})"] {
        assert!(DateDetector::from_pattern(bad).is_err(), "{bad}");
    }
}

#[test]
fn non_ascii_and_long_lines_are_fine() {
    let mut d = det(None);
    assert_eq!(hit(&mut d, "é Aug 14 11:59:59 ü", NOW).0, "Aug 14 11:59:59");
    let long = "a".repeat(1 << 20);
    assert!(d.match_time(&long, NOW).is_none());
}
