//! Turning matched date fields into a unix time, with fail2ban's rules:
//! two-digit years are in the 2000s, a missing year is inferred from `now`
//! (one year back when the date would be more than a day in the future), a
//! missing day means "today" (or yesterday when that is still in the future),
//! a zone in the line wins over `logtimezone`, and dates without any zone are
//! wall-clock times of the default (local) zone.
//!
//! Like fail2ban, `%f` is matched but ignored (whole seconds), and invalid
//! values (Feb 30, second 60, hour 24...) give no time at all.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};

use crate::civil;
use crate::zone;

/// A zone found in the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum LineZone {
    /// No `%z` / `%Z` in the line.
    #[default]
    Absent,
    /// Offset in minutes east of UTC.
    Offset(i32),
    /// A zone designator fail2ban cannot convert: the line gets no time.
    Invalid,
}

/// Date fields collected from a match (all optional, fail2ban's defaults apply).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Fields {
    pub year: Option<i64>,
    pub month: Option<i64>,
    pub day: Option<i64>,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
    pub weekday: Option<i64>,
    pub julian: Option<i64>,
    /// `(week number, week starts on Monday)` from `%W` / `%U`.
    pub week: Option<(i64, bool)>,
    pub zone: LineZone,
    /// `%s`: seconds since the epoch, used as-is.
    pub epoch: Option<i64>,
    /// A field could not be converted (e.g. an unknown month name).
    pub invalid: bool,
}

const MONTHS_FULL: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAYS_FULL: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Integer value of a matched numeric field (surrounding blanks allowed, ASCII digits).
pub(crate) fn int(text: &str) -> Option<i64> {
    let t = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let (neg, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v = digits
        .bytes()
        .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0'));
    Some(if neg { -v } else { v })
}

fn name_index(list: &[&str], text: &str) -> Option<i64> {
    list.iter()
        .position(|n| n.eq_ignore_ascii_case(text))
        .and_then(|i| i64::try_from(i).ok())
}

/// Month number (1..=12) of an abbreviated English month name, any case.
pub(crate) fn month_abbr(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 3 {
        return None;
    }
    let m = month_lower(&[b[0] | 0x20, b[1] | 0x20, b[2] | 0x20])?;
    // `| 0x20` folds only ASCII letters correctly
    b.iter().all(u8::is_ascii_alphabetic).then_some(m)
}

/// Month number of a lower-case three-letter English abbreviation.
pub(crate) fn month_lower(l: &[u8; 3]) -> Option<i64> {
    Some(match l {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    })
}

/// The strptime field a capture group feeds, by group name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    Y,
    Y2,
    Month,
    MonthName,
    MonthAbbr,
    Day,
    Hour,
    Hour12,
    AmPm,
    Minute,
    Second,
    Fraction,
    WeekdayName,
    WeekdayAbbr,
    WeekdayNum,
    YearDay,
    WeekSun,
    WeekMon,
    Zone,
    Epoch,
}

impl Key {
    /// Maps a (normalised) capture group name to a field; other names are ignored.
    pub(crate) fn from_group_name(name: &str) -> Option<Key> {
        Some(match name {
            "Y" => Key::Y,
            "y" => Key::Y2,
            "m" => Key::Month,
            "B" => Key::MonthName,
            "b" => Key::MonthAbbr,
            "d" => Key::Day,
            "H" => Key::Hour,
            "I" => Key::Hour12,
            "p" => Key::AmPm,
            "M" => Key::Minute,
            "S" => Key::Second,
            "f" => Key::Fraction,
            "A" => Key::WeekdayName,
            "a" => Key::WeekdayAbbr,
            "w" => Key::WeekdayNum,
            "j" => Key::YearDay,
            "U" => Key::WeekSun,
            "W" => Key::WeekMon,
            "z" | "Z" => Key::Zone,
            "s" => Key::Epoch,
            _ => return None,
        })
    }
}

impl Fields {
    /// Applies one matched field, in match-group order (later groups win).
    /// `ampm` is the text of the `p` group, if any (used by `%I`).
    pub(crate) fn set(&mut self, key: Key, text: &str, ampm: Option<&str>) {
        let num = || int(text);
        let mut bad = false;
        match key {
            Key::Y2 => match num() {
                Some(v) => self.year = Some(if v <= 2000 { v + 2000 } else { v }),
                None => bad = true,
            },
            Key::Y => {
                self.year = num().or_else(|| {
                    bad = true;
                    None
                })
            }
            Key::Month => {
                self.month = num().or_else(|| {
                    bad = true;
                    None
                })
            }
            Key::MonthName => {
                self.month = name_index(&MONTHS_FULL, text).map(|m| m + 1).or_else(|| {
                    bad = true;
                    None
                })
            }
            Key::MonthAbbr => {
                self.month = month_abbr(text).or_else(|| {
                    bad = true;
                    None
                })
            }
            Key::Day => {
                self.day = num().or_else(|| {
                    bad = true;
                    None
                })
            }
            Key::Hour => match num() {
                Some(v) => self.hour = v,
                None => bad = true,
            },
            Key::Hour12 => match num() {
                Some(mut h) => {
                    let p = ampm.unwrap_or("").to_ascii_lowercase();
                    if p.is_empty() || p == "am" {
                        if h == 12 {
                            h = 0;
                        }
                    } else if p == "pm" && h != 12 {
                        h += 12;
                    }
                    self.hour = h;
                }
                None => bad = true,
            },
            Key::Minute => match num() {
                Some(v) => self.minute = v,
                None => bad = true,
            },
            Key::Second => match num() {
                Some(v) => self.second = v,
                None => bad = true,
            },
            Key::AmPm | Key::Fraction => {}
            Key::WeekdayName => {
                self.weekday = name_index(&DAYS_FULL, text).or_else(|| {
                    bad = true;
                    None
                })
            }
            Key::WeekdayAbbr => {
                self.weekday = name_index(&DAYS, text).or_else(|| {
                    bad = true;
                    None
                })
            }
            Key::WeekdayNum => match num() {
                Some(v) => self.weekday = Some(if v - 1 < 0 { 6 } else { v - 1 }),
                None => bad = true,
            },
            Key::YearDay => {
                self.julian = num().or_else(|| {
                    bad = true;
                    None
                })
            }
            Key::WeekSun | Key::WeekMon => match num() {
                Some(v) => self.week = Some((v, key == Key::WeekMon)),
                None => bad = true,
            },
            Key::Zone => {
                self.zone = match zone_offset_minutes_line(text) {
                    Some(m) => LineZone::Offset(m),
                    None => LineZone::Invalid,
                }
            }
            Key::Epoch => {
                self.epoch = num().or_else(|| {
                    bad = true;
                    None
                })
            }
        }
        self.invalid |= bad;
    }
}

fn zone_offset_minutes_line(text: &str) -> Option<i32> {
    zone::zone_offset_minutes(text, false)
}

/// Day of year from a week number and weekday (Python's `%U`/`%W` rule).
fn julian_from_week(year: i64, week: i64, weekday: i64, monday_first: bool) -> i64 {
    let mut first = civil::weekday(civil::days_from_civil(year, 1, 1));
    let mut wd = weekday;
    if !monday_first {
        first = (first + 1) % 7;
        wd = (wd + 1) % 7;
    }
    let week0 = (7 - first) % 7;
    if week == 0 {
        1 + wd - first
    } else {
        1 + week0 + 7 * (week - 1) + wd
    }
}

/// Converts the default zone's wall-clock time to UTC, with small caches:
/// results are reused within 15-minute buckets whose offset is uniform.
#[derive(Debug)]
pub(crate) struct LocalZone {
    pub tz: TimeZone,
    /// `(bucket, offset seconds)` for civil → UTC.
    to_utc: Option<(i64, i64)>,
    /// `(bucket, offset seconds)` for UTC → civil (`now`).
    to_civil: Option<(i64, i64)>,
    /// Offset of the previous civil → UTC conversion: like C's `mktime`, an
    /// ambiguous wall time (DST fold) keeps the offset used last when it can.
    last_offset: i64,
}

const BUCKET: i64 = 900;

impl LocalZone {
    pub(crate) fn new(tz: TimeZone) -> LocalZone {
        LocalZone {
            tz,
            to_utc: None,
            to_civil: None,
            last_offset: 0,
        }
    }

    fn civil_dt(cs: i64) -> Option<DateTime> {
        let days = cs.div_euclid(86_400);
        let sod = cs.rem_euclid(86_400);
        let (y, m, d) = civil::civil_from_days(days);
        DateTime::new(
            i16::try_from(y).ok()?,
            i8::try_from(m).ok()?,
            i8::try_from(d).ok()?,
            i8::try_from(sod / 3600).ok()?,
            i8::try_from(sod / 60 % 60).ok()?,
            i8::try_from(sod % 60).ok()?,
            0,
        )
        .ok()
    }

    fn ambiguous(&self, cs: i64) -> Option<AmbiguousOffset> {
        Some(self.tz.to_ambiguous_timestamp(Self::civil_dt(cs)?).offset())
    }

    /// Unix seconds of a naive local civil second, like C's `mktime` with an
    /// unknown DST flag: a time in a gap uses the offset before the gap (it
    /// lands in DST), a time in a fold keeps the offset of the previous
    /// conversion if that is one of the two candidates.
    pub(crate) fn civil_to_unix(&mut self, cs: i64) -> Option<i64> {
        let bucket = cs.div_euclid(BUCKET);
        if let Some((b, off)) = self.to_utc
            && b == bucket
        {
            self.last_offset = off;
            return Some(cs - off);
        }
        let off = match self.ambiguous(cs)? {
            AmbiguousOffset::Unambiguous { offset } => {
                let off = i64::from(offset.seconds());
                let start = bucket * BUCKET;
                let uniform = [start, start + BUCKET - 1].iter().all(|&c| {
                    matches!(self.ambiguous(c), Some(AmbiguousOffset::Unambiguous { offset: o })
                        if i64::from(o.seconds()) == off)
                });
                if uniform {
                    self.to_utc = Some((bucket, off));
                }
                off
            }
            AmbiguousOffset::Gap { before, .. } => i64::from(before.seconds()),
            AmbiguousOffset::Fold { before, after } => {
                let (b, a) = (i64::from(before.seconds()), i64::from(after.seconds()));
                if self.last_offset == b || self.last_offset == a {
                    self.last_offset
                } else {
                    // first guess with the previous offset, then its own offset
                    Timestamp::from_second(cs - self.last_offset)
                        .map_or(a, |t| i64::from(self.tz.to_offset(t).seconds()))
                }
            }
        };
        self.last_offset = off;
        Some(cs - off)
    }

    /// Offset (seconds) of the default zone at a unix second.
    pub(crate) fn offset_at(&mut self, unix: i64) -> i64 {
        let bucket = unix.div_euclid(BUCKET);
        if let Some((b, off)) = self.to_civil
            && b == bucket
        {
            return off;
        }
        let at = |s: i64| {
            Timestamp::from_second(s)
                .ok()
                .map(|t| i64::from(self.tz.to_offset(t).seconds()))
        };
        let off = at(unix).unwrap_or(0);
        let start = bucket * BUCKET;
        if at(start) == Some(off) && at(start + BUCKET - 1) == Some(off) {
            self.to_civil = Some((bucket, off));
        }
        off
    }
}

/// When `new` differs from `old` in its second only and [`to_unix`] converts both without
/// `now` or the local zone (year, month and day in the fields, an offset in the line or else
/// `log_tz`), both seconds valid: `new`'s time minus `old`'s, which is then the difference of
/// their seconds (the conversion is a civil second plus a fixed offset).
pub(crate) fn second_shift(old: &Fields, new: &Fields, log_tz: Option<i32>) -> Option<i64> {
    let fixed = match new.zone {
        LineZone::Offset(_) => true,
        LineZone::Absent => log_tz.is_some(),
        LineZone::Invalid => false,
    };
    let valid = |s: i64| (0..=59).contains(&s);
    let same = Fields {
        second: old.second,
        ..*new
    } == *old;
    (same
        && fixed
        && !new.invalid
        && new.epoch.is_none()
        && new.year.is_some()
        && new.month.is_some()
        && new.day.is_some()
        && valid(old.second)
        && valid(new.second))
    .then(|| new.second - old.second)
}

/// What the conversion needs besides the fields.
pub(crate) struct Context<'a> {
    /// `now` as a naive local civil second (fraction included).
    pub now_civil: f64,
    /// The `logtimezone` offset in minutes.
    pub log_tz: Option<i32>,
    pub local: &'a mut LocalZone,
}

/// fail2ban's conversion of fields to unix seconds. `None` when fail2ban would
/// fail (invalid date, unknown zone...).
pub(crate) fn to_unix(f: &Fields, ctx: &mut Context<'_>) -> Option<f64> {
    if f.invalid {
        return None;
    }
    if let Some(e) = f.epoch {
        return Some(e as f64);
    }
    let now_cs = ctx.now_civil.floor() as i64;
    let now_days = now_cs.div_euclid(86_400);
    let (now_y, now_m, now_d) = civil::civil_from_days(now_days);
    let mut assume_year = false;
    let mut year = match f.year {
        Some(y) => y,
        None => {
            assume_year = true;
            now_y
        }
    };
    let (mut month, mut day) = (f.month, f.day);
    if month.is_none() || day.is_none() {
        let mut julian = f.julian;
        if julian.is_none()
            && let (Some((week, monday)), Some(wd)) = (f.week, f.weekday)
        {
            julian = Some(julian_from_week(year, week, wd, monday));
        }
        if let Some(j) = julian {
            if !(1..=9999).contains(&year) {
                return None;
            }
            let days = civil::days_from_civil(year, 1, 1) + j - 1;
            let (y, m, d) = civil::civil_from_days(days);
            if !(1..=9999).contains(&y) {
                return None;
            }
            (year, month, day) = (y, Some(m), Some(d));
        }
    }
    let mut assume_today = false;
    if month.is_none() && day.is_none() {
        month = Some(now_m);
        day = Some(now_d);
        assume_today = true;
    }
    let (month, day) = (month?, day?);
    let mut dt = civil::civil_seconds(year, month, day, f.hour, f.minute, f.second)?;
    let offset = match f.zone {
        LineZone::Invalid => return None,
        LineZone::Offset(m) => Some(m),
        LineZone::Absent => ctx.log_tz,
    };
    if let Some(m) = offset {
        dt -= i64::from(m) * 60;
    }
    if assume_today && dt as f64 > ctx.now_civil {
        dt -= 86_400;
    }
    if assume_year && dt as f64 > ctx.now_civil + 86_400.0 {
        // previous year, same month and day, keeping the (possibly shifted) time of day
        let tod = dt.rem_euclid(86_400);
        let base = civil::civil_seconds(year - 1, month, day, 0, 0, 0)?;
        dt = base + tod;
    }
    let unix = match offset {
        Some(_) => dt,
        None => ctx.local.civil_to_unix(dt)?,
    };
    Some(unix as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cet() -> TimeZone {
        TimeZone::posix("CET-01CEST-02,M3.5.0,M10.5.0").unwrap()
    }

    #[test]
    fn mktime_like() {
        let mut z = LocalZone::new(cet());
        let cs = |y, m, d, h, mi| civil::civil_seconds(y, m, d, h, mi, 0).unwrap();
        assert_eq!(z.civil_to_unix(cs(2005, 3, 27, 2, 30)), Some(1_111_887_000));
        assert_eq!(
            z.civil_to_unix(cs(2005, 10, 30, 2, 30)),
            Some(1_130_635_800)
        );
        assert_eq!(z.civil_to_unix(cs(2005, 8, 14, 12, 0)), Some(1_124_013_600));
        // cached bucket reuse
        assert_eq!(z.civil_to_unix(cs(2005, 8, 14, 12, 1)), Some(1_124_013_660));
        assert_eq!(z.offset_at(1_124_013_600), 7200);
    }

    #[test]
    fn week_numbers() {
        // 2005-01-01 is a Saturday; Monday-based week 1 starts on Jan 3.
        assert_eq!(julian_from_week(2005, 1, 0, true), 3);
        assert_eq!(julian_from_week(2005, 0, 5, true), 1);
        // Sunday-based week 1 starts Jan 2.
        assert_eq!(julian_from_week(2005, 1, 6, false), 2);
    }

    #[test]
    fn ints() {
        assert_eq!(int(" 5"), Some(5));
        assert_eq!(int("07"), Some(7));
        assert_eq!(int(""), None);
        assert_eq!(int("1a"), None);
    }
}

#[cfg(test)]
mod fold_tests {
    use super::*;

    #[test]
    fn fold_keeps_previous_offset() {
        // POSIX rule without a time: DST ends 02:00 CEST, 01:00..02:00 is ambiguous
        let mut z = LocalZone::new(TimeZone::posix("CET-01CEST-02,M3.5.0,M10.5.0").unwrap());
        let fold = civil::civil_seconds(2005, 10, 30, 1, 2, 3).unwrap();
        let summer = civil::civil_seconds(2005, 10, 29, 10, 0, 0).unwrap();
        let winter = civil::civil_seconds(2005, 11, 2, 10, 0, 0).unwrap();
        z.civil_to_unix(summer);
        assert_eq!(z.civil_to_unix(fold), Some(1_130_626_923));
        z.civil_to_unix(winter);
        assert_eq!(z.civil_to_unix(fold), Some(1_130_630_523));
    }
}
