//! Journal cursors: parsing and ordering.
//!
//! A cursor (`s=SEQNUM_ID;i=SEQNUM;b=BOOT_ID;m=MONOTONIC;t=REALTIME;x=XOR_HASH`, values in
//! hexadecimal) names one entry. Two entries are ordered the way the journal itself orders
//! entries of different files: by sequence number when they share a sequence-number id (one
//! writer, across its rotations), else by the monotonic clock when they come from the same boot,
//! else by the wall clock.

use std::cmp::Ordering;

/// The parts of a cursor that order entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Sequence-number id (`s=`).
    pub seqnum_id: String,
    /// Sequence number (`i=`).
    pub seqnum: u64,
    /// Boot id (`b=`).
    pub boot_id: String,
    /// Monotonic time in µs (`m=`).
    pub monotonic: u64,
    /// Wall-clock time in µs since the epoch (`t=`).
    pub realtime: u64,
}

impl Cursor {
    /// Parses a cursor; `None` when a part is missing or not hexadecimal.
    pub fn parse(s: &str) -> Option<Cursor> {
        let (mut sid, mut i, mut b, mut m, mut t) = (None, None, None, None, None);
        for part in s.split(';') {
            let (k, v) = part.split_once('=')?;
            match k {
                "s" => sid = Some(v.to_string()),
                "i" => i = Some(u64::from_str_radix(v, 16).ok()?),
                "b" => b = Some(v.to_string()),
                "m" => m = Some(u64::from_str_radix(v, 16).ok()?),
                "t" => t = Some(u64::from_str_radix(v, 16).ok()?),
                _ => {}
            }
        }
        Some(Cursor {
            seqnum_id: sid?,
            seqnum: i?,
            boot_id: b?,
            monotonic: m?,
            realtime: t?,
        })
    }

    /// The order of the entries named by `self` and `other`.
    pub fn order(&self, other: &Cursor) -> Ordering {
        if self.seqnum_id == other.seqnum_id {
            self.seqnum.cmp(&other.seqnum)
        } else if self.boot_id == other.boot_id {
            self.monotonic.cmp(&other.monotonic)
        } else {
            self.realtime.cmp(&other.realtime)
        }
    }
}

/// The order of two cursor strings; unparsable cursors compare by nothing (`None`).
pub fn order(a: &str, b: &str) -> Option<Ordering> {
    if a == b {
        return Some(Ordering::Equal);
    }
    Some(Cursor::parse(a)?.order(&Cursor::parse(b)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "s=5e70;i=10;b=aa;m=3e8;t=6611a50abc206;x=1";

    #[test]
    fn parses_and_orders() {
        let c = Cursor::parse(A).unwrap();
        assert_eq!(
            (c.seqnum, c.monotonic, c.realtime),
            (16, 1000, 0x6611a50abc206)
        );
        assert_eq!(
            order(A, "s=5e70;i=11;b=bb;m=0;t=0;x=2"),
            Some(Ordering::Less)
        );
        assert_eq!(
            order(A, "s=ffff;i=1;b=aa;m=3e7;t=ffffffffffff;x=2"),
            Some(Ordering::Greater)
        );
        assert_eq!(
            order(A, "s=ffff;i=1;b=cc;m=0;t=6611a50abc207;x=2"),
            Some(Ordering::Less)
        );
        assert_eq!(order(A, A), Some(Ordering::Equal));
        assert_eq!(order(A, "garbage"), None);
        assert_eq!(Cursor::parse("s=1;i=zz;b=1;m=1;t=1"), None);
    }
}
