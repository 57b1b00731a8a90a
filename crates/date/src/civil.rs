//! Proleptic Gregorian calendar arithmetic on plain integers.
//!
//! A "civil second" is the number of seconds since 1970-01-01 00:00:00 of a
//! naive (zone-less) date-time; it lets the year-inference rules compare naive
//! date-times exactly like fail2ban does, without allocating or touching jiff.

/// Days since 1970-01-01 for a proleptic Gregorian date (no validation).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`]: `(year, month, day)`.
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Gregorian leap year test.
pub(crate) fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Number of days of `month` (1..=12) in `year`.
pub(crate) fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        _ => 28,
    }
}

/// Validates like Python's `datetime.datetime(...)` constructor (year 1..=9999,
/// seconds 0..=59) and returns the civil second, or `None` when invalid.
pub(crate) fn civil_seconds(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    if !(1..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || d < 1
        || d > days_in_month(y, mo)
        || !(0..=23).contains(&h)
        || !(0..=59).contains(&mi)
        || !(0..=59).contains(&s)
    {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Weekday of a day number, Monday = 0 (Python's `date.weekday()`).
pub(crate) fn weekday(days: i64) -> i64 {
    // 1970-01-01 was a Thursday (3).
    (days + 3).rem_euclid(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        for d in -800_000..800_000i64 {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        assert_eq!(days_from_civil(2005, 8, 14), 13_009);
        assert_eq!(weekday(days_from_civil(2005, 8, 14)), 6);
    }

    #[test]
    fn validation() {
        assert!(civil_seconds(2004, 2, 29, 0, 0, 0).is_some());
        assert!(civil_seconds(2005, 2, 29, 0, 0, 0).is_none());
        assert!(civil_seconds(2005, 1, 1, 0, 0, 60).is_none());
        assert!(civil_seconds(2005, 1, 1, 24, 0, 0).is_none());
        assert!(civil_seconds(0, 1, 1, 0, 0, 0).is_none());
    }
}
