//! Time-zone designators found in log lines (`%z`, `%Z`) and the
//! `logtimezone` option: fixed UTC offsets, in minutes.
//!
//! Like fail2ban, zone abbreviations are mapped to a fixed offset (no DST
//! switching: `CET` is always UTC+1, `CEST` always UTC+2).

/// Abbreviation → offset east of UTC in minutes, sorted by name (binary search).
static ABBREVIATIONS: &[(&str, i32)] = &[
    ("A", 60),
    ("ACDT", 630),
    ("ACST", 570),
    ("ACT", 480),
    ("ADT", -180),
    ("AEDT", 660),
    ("AEST", 600),
    ("AFT", 270),
    ("AKDT", -480),
    ("AKST", -540),
    ("ALMT", 360),
    ("AMST", 300),
    ("AMT", 240),
    ("ANAST", 720),
    ("ANAT", 720),
    ("AQTT", 300),
    ("ART", -180),
    ("AST", -240),
    ("AWDT", 540),
    ("AWST", 480),
    ("AZOT", -60),
    ("AZST", 300),
    ("AZT", 240),
    ("B", 120),
    ("BDT", 480),
    ("BIOT", 360),
    ("BNT", 480),
    ("BOT", -240),
    ("BRST", -120),
    ("BRT", -180),
    ("BTT", 360),
    ("C", 180),
    ("CAST", 480),
    ("CAT", 120),
    ("CCT", 390),
    ("CDT", -300),
    ("CEDT", 120),
    ("CEST", 120),
    ("CET", 60),
    ("CIST", -480),
    ("CKT", -600),
    ("CLST", -180),
    ("CLT", -240),
    ("COST", -240),
    ("COT", -300),
    ("CST", -360),
    ("CVT", -60),
    ("CXT", 420),
    ("ChST", 600),
    ("D", 240),
    ("DAVT", 420),
    ("DFT", 60),
    ("E", 300),
    ("EASST", -300),
    ("EAST", -360),
    ("EAT", 180),
    ("ECT", -300),
    ("EDT", -240),
    ("EEDT", 180),
    ("EEST", 180),
    ("EET", 120),
    ("EGST", 0),
    ("EGT", -60),
    ("EST", -300),
    ("ET", -300),
    ("F", 360),
    ("FJST", 780),
    ("FJT", 720),
    ("FKST", -180),
    ("FKT", -240),
    ("FNT", -120),
    ("G", 420),
    ("GALT", -360),
    ("GAMT", -540),
    ("GET", 240),
    ("GFT", -180),
    ("GILT", 720),
    ("GIT", -540),
    ("GMT", 0),
    ("GST", 240),
    ("GYT", -240),
    ("H", 480),
    ("HAA", -180),
    ("HAC", -300),
    ("HADT", -540),
    ("HAE", -240),
    ("HAP", -420),
    ("HAR", -360),
    ("HAST", -600),
    ("HAT", -150),
    ("HAY", -480),
    ("HKT", 480),
    ("HLV", -270),
    ("HMT", 300),
    ("HNA", -240),
    ("HNC", -360),
    ("HNE", -300),
    ("HNP", -480),
    ("HNR", -420),
    ("HNT", -210),
    ("HNY", -540),
    ("HOVT", 420),
    ("HST", -600),
    ("I", 540),
    ("ICT", 420),
    ("IDT", 180),
    ("IOT", 360),
    ("IRDT", 270),
    ("IRKST", 540),
    ("IRKT", 480),
    ("IRST", 210),
    ("JST", 540),
    ("K", 600),
    ("KGT", 360),
    ("KRAST", 480),
    ("KRAT", 420),
    ("KST", 540),
    ("KUYT", 240),
    ("L", 660),
    ("LHDT", 660),
    ("LHST", 630),
    ("M", 720),
    ("MAGST", 720),
    ("MAGT", 660),
    ("MART", -570),
    ("MAWT", 300),
    ("MDT", -360),
    ("MHT", 720),
    ("MIT", -570),
    ("MMT", 390),
    ("MSD", 240),
    ("MSK", 180),
    ("MST", -420),
    ("MUT", 240),
    ("MVT", 300),
    ("MYT", 480),
    ("N", -60),
    ("NCT", 660),
    ("NDT", -150),
    ("NFT", 690),
    ("NOVST", 420),
    ("NOVT", 360),
    ("NPT", 345),
    ("NST", -210),
    ("NT", -210),
    ("NUT", -660),
    ("NZDT", 780),
    ("NZST", 720),
    ("O", -120),
    ("OMSST", 420),
    ("OMST", 360),
    ("P", -180),
    ("PDT", -420),
    ("PET", -300),
    ("PETST", 720),
    ("PETT", 720),
    ("PGT", 600),
    ("PHT", 480),
    ("PKT", 300),
    ("PMDT", -120),
    ("PMST", -180),
    ("PONT", 660),
    ("PST", -480),
    ("PT", -480),
    ("PWT", 540),
    ("PYST", -180),
    ("PYT", -240),
    ("Q", -240),
    ("R", -300),
    ("RET", 240),
    ("S", -360),
    ("SAMT", 240),
    ("SAST", 120),
    ("SBT", 660),
    ("SCT", 240),
    ("SGT", 480),
    ("SLT", 330),
    ("SRT", -180),
    ("SST", -660),
    ("T", -420),
    ("TAHT", -600),
    ("TFT", 300),
    ("THA", 420),
    ("TJT", 300),
    ("TKT", -600),
    ("TLT", 540),
    ("TMT", 300),
    ("TVT", 720),
    ("U", -480),
    ("ULAT", 480),
    ("UTC", 0),
    ("UYST", -120),
    ("UYT", -180),
    ("UZT", 300),
    ("V", -540),
    ("VET", -270),
    ("VLAST", 660),
    ("VLAT", 600),
    ("VUT", 660),
    ("W", -600),
    ("WAST", 120),
    ("WAT", 60),
    ("WDT", 540),
    ("WEDT", 60),
    ("WEST", 60),
    ("WET", 0),
    ("WFT", 720),
    ("WGST", -120),
    ("WGT", -180),
    ("WIB", 420),
    ("WIT", 540),
    ("WITA", 480),
    ("WST", 480),
    ("WT", 0),
    ("X", -660),
    ("Y", -720),
    ("YAKST", 600),
    ("YAKT", 540),
    ("YAPT", 600),
    ("YEKST", 360),
    ("YEKT", 300),
    ("Z", 0),
];

/// Looks up a zone abbreviation (exact, case-sensitive).
pub(crate) fn abbreviation_offset(name: &str) -> Option<i32> {
    ABBREVIATIONS
        .binary_search_by(|(n, _)| n.cmp(&name))
        .ok()
        .map(|i| ABBREVIATIONS[i].1)
}

/// Parses `[+-]hh`, `[+-]hhmm` or `[+-]hh:mm` (the hour's first digit is 0 or 1)
/// into minutes. `lenient` additionally accepts a single hour digit (`-5`).
pub(crate) fn parse_numeric(s: &[u8], lenient: bool) -> Option<i32> {
    let sign = match s.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digit = |b: u8| b.is_ascii_digit().then(|| i32::from(b - b'0'));
    let rest = &s[1..];
    if lenient && rest.len() == 1 {
        return Some(sign * digit(rest[0])? * 60);
    }
    if rest.len() < 2 || !matches!(rest[0], b'0' | b'1') {
        return None;
    }
    let hours = digit(rest[0])? * 10 + digit(rest[1])?;
    let minutes = match &rest[2..] {
        [] => 0,
        [a, b] | [b':', a, b] => digit(*a)? * 10 + digit(*b)?,
        _ => return None,
    };
    Some(sign * (hours * 60 + minutes))
}

/// Converts a zone designator to minutes east of UTC, as fail2ban does:
/// optional abbreviation (one letter or three to five upper-case letters)
/// followed by an optional numeric offset; both parts add up. `Z`, `UTC` and
/// `GMT` are zero; the empty string is zero. `None` for unknown text.
pub(crate) fn zone_offset_minutes(spec: &str, lenient: bool) -> Option<i32> {
    if matches!(spec, "Z" | "UTC" | "GMT") {
        return Some(0);
    }
    let bytes = spec.as_bytes();
    let abbr_len = bytes.iter().take_while(|b| b.is_ascii_uppercase()).count();
    if abbr_len == 2 || abbr_len > 5 {
        return None;
    }
    let base = if abbr_len == 0 {
        0
    } else {
        abbreviation_offset(&spec[..abbr_len])?
    };
    let rest = &bytes[abbr_len..];
    if rest.is_empty() {
        return Some(base);
    }
    Some(base + parse_numeric(rest, lenient)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_sorted() {
        assert!(ABBREVIATIONS.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(abbreviation_offset("CEST"), Some(120));
        assert_eq!(abbreviation_offset("NPT"), Some(345));
        assert_eq!(abbreviation_offset("XYZ"), None);
    }

    #[test]
    fn designators() {
        let z = |s| zone_offset_minutes(s, false);
        assert_eq!(z("+0200"), Some(120));
        assert_eq!(z("-02:30"), Some(-150));
        assert_eq!(z("-05"), Some(-300));
        assert_eq!(z("-00"), Some(0));
        assert_eq!(z("UTC+0100"), Some(60));
        assert_eq!(z("CET"), Some(60));
        assert_eq!(z("CET+01"), Some(120));
        assert_eq!(z("utc"), None);
        assert_eq!(z("UTC-5"), None);
        assert_eq!(zone_offset_minutes("UTC-5", true), Some(-300));
        assert_eq!(z("+2000"), None);
        assert_eq!(z(""), Some(0));
    }
}
