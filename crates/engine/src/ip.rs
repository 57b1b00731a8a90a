//! Failure identifiers: addresses, networks and raw ids, printed the way fail2ban prints them.
//!
//! fail2ban parses a captured host with `inet_pton`, masks it with a captured CIDR, turns
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) into IPv4, and keeps anything that does not
//! parse as the raw text. [`HostId`] is that value.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Which address families a capture may be parsed as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Try IPv4, then IPv6.
    Any,
    /// Only IPv4 (the `ip4` group).
    V4,
    /// Only IPv6 (the `ip6` group).
    V6,
}

/// A failure id: a single address, a network, or text that is not an address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostId {
    /// A single address (IPv4-mapped IPv6 is stored as IPv4).
    Addr(IpAddr),
    /// A network: address masked to `prefix` bits (prefix shorter than the family's width).
    Net(IpAddr, u8),
    /// Anything else (a DNS name kept raw, an `F-ID` value, an invalid address).
    Raw(String),
}

impl HostId {
    /// Keeps `text` as it is, never parsed (fail2ban's raw mode).
    pub fn raw(text: &str) -> HostId {
        HostId::Raw(text.to_string())
    }

    /// Parses `text` (optionally `[v6]`, optionally `addr/plen` or `addr/mask`) the way fail2ban's
    /// address type does; what does not parse stays raw.
    pub fn parse(text: &str) -> HostId {
        let mut s = text;
        if s.len() > 2 && s.starts_with('[') && s.ends_with(']') {
            s = &s[1..s.len() - 1];
        }
        if let Some((addr, plen)) = s.split_once('/') {
            let plen = if plen.contains('.') || plen.contains(':') {
                match parse_addr(plen, Family::Any).and_then(mask_to_prefix) {
                    Some(p) => p,
                    None => return HostId::Raw(text.to_string()),
                }
            } else {
                match plen.parse::<u8>() {
                    Ok(p) => p,
                    Err(_) => return HostId::Raw(text.to_string()),
                }
            };
            return HostId::with_prefix(addr, Family::Any, Some(plen));
        }
        HostId::with_prefix(s, Family::Any, None)
    }

    /// Parses `text` restricted to `family`, masked to `prefix` when given.
    pub fn with_prefix(text: &str, family: Family, prefix: Option<u8>) -> HostId {
        let Some(addr) = parse_addr(text, family) else {
            return HostId::Raw(text.to_string());
        };
        let width = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        match prefix {
            Some(p) if p < width => HostId::Net(mask(addr, p), p),
            Some(p) if p > width => HostId::Raw(text.to_string()),
            Some(_) => HostId::Addr(addr),
            None => match addr {
                IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                    Some(v4) => HostId::Addr(IpAddr::V4(v4)),
                    None => HostId::Addr(addr),
                },
                _ => HostId::Addr(addr),
            },
        }
    }

    /// The address when this is a single address.
    pub fn addr(&self) -> Option<IpAddr> {
        match self {
            HostId::Addr(a) => Some(*a),
            _ => None,
        }
    }

    /// True for a single address or a network (not a raw id).
    pub fn is_ip(&self) -> bool {
        !matches!(self, HostId::Raw(_))
    }

    /// True when `other` is this address or lies in this network.
    pub fn contains(&self, other: &HostId) -> bool {
        match (self, other) {
            // Family first: a prefix length is only meaningful in its own family.
            (HostId::Net(net, p), HostId::Addr(a)) => same_family(*a, *net) && mask(*a, *p) == *net,
            (HostId::Net(net, p), HostId::Net(n2, p2)) => {
                same_family(*n2, *net) && p2 >= p && mask(*n2, *p) == *net
            }
            _ => self == other,
        }
    }
}

/// The first and last address of the network `base/plen` (ids of one network are one range of
/// the [`HostId`] order).
pub fn range_of(base: IpAddr, plen: u8) -> (IpAddr, IpAddr) {
    let lo = mask(base, plen);
    let hi = match lo {
        IpAddr::V4(a) => {
            let host = u32::MAX.checked_shr(u32::from(plen)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) | host))
        }
        IpAddr::V6(a) => {
            let host = u128::MAX.checked_shr(u32::from(plen)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) | host))
        }
    };
    (lo, hi)
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

impl fmt::Display for HostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostId::Addr(a) => write!(f, "{a}"),
            HostId::Net(a, p) => write!(f, "{a}/{p}"),
            HostId::Raw(s) => f.write_str(s),
        }
    }
}

/// Strict dotted-quad / RFC 4291 text parsing (as `inet_pton`: no leading zeros in IPv4 octets).
fn parse_addr(text: &str, family: Family) -> Option<IpAddr> {
    match family {
        Family::V4 => text.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
        Family::V6 => text.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        Family::Any => text.parse::<IpAddr>().ok(),
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

fn mask_to_prefix(mask: IpAddr) -> Option<u8> {
    let (bits, width) = match mask {
        IpAddr::V4(a) => (u128::from(u32::from(a)) << 96, 32u32),
        IpAddr::V6(a) => (u128::from(a), 128u32),
    };
    let ones = bits.leading_ones();
    if bits.checked_shl(ones).unwrap_or(0) != 0 || ones > width {
        return None;
    }
    u8::try_from(ones).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containment_across_families_is_false_not_a_panic() {
        let v6net = HostId::parse("2001:db8::/64");
        let v4net = HostId::parse("192.0.2.0/24");
        assert!(!v6net.contains(&HostId::parse("192.0.2.1")));
        assert!(!v4net.contains(&HostId::parse("2001:db8::1")));
        assert!(!v6net.contains(&v4net));
        assert!(!v4net.contains(&v6net));
    }

    #[test]
    fn parses_and_normalises() {
        assert_eq!(HostId::parse("192.0.2.1").to_string(), "192.0.2.1");
        assert_eq!(HostId::parse("[2001:DB8::1]").to_string(), "2001:db8::1");
        assert_eq!(HostId::parse("::ffff:192.0.2.7").to_string(), "192.0.2.7");
        assert_eq!(HostId::parse("192.0.2.77/24").to_string(), "192.0.2.0/24");
        assert_eq!(
            HostId::parse("192.0.2.77/255.255.255.0").to_string(),
            "192.0.2.0/24"
        );
        assert_eq!(
            HostId::parse("2001:db8:1:2::5/64").to_string(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(HostId::parse("example.com").to_string(), "example.com");
        assert_eq!(HostId::parse("192.0.2.300").to_string(), "192.0.2.300");
        assert_eq!(HostId::parse("010.0.0.1"), HostId::raw("010.0.0.1"));
    }

    #[test]
    fn family_restriction() {
        assert_eq!(
            HostId::with_prefix("2001:db8::1", Family::V4, None),
            HostId::raw("2001:db8::1")
        );
        assert!(
            HostId::with_prefix("192.0.2.1", Family::V4, Some(32))
                .addr()
                .is_some()
        );
    }

    #[test]
    fn containment() {
        let net = HostId::parse("192.0.2.0/24");
        assert!(net.contains(&HostId::parse("192.0.2.9")));
        assert!(!net.contains(&HostId::parse("192.0.3.9")));
        assert!(!net.contains(&HostId::parse("2001:db8::1")));
        assert!(HostId::parse("192.0.0.0/16").contains(&net));
    }
}
