//! What a ban or unban command can refer to: fail2ban's action info (`aInfo`) for one ticket.

use std::net::IpAddr;

use super::pyfmt;
use crate::ip::HostId;

/// A ticket's time as Python holds it: a float for live tickets, an int for tickets restored from
/// the database (the two print differently: `1700000000.0` / `1700000000`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TicketTime {
    /// Seconds since the epoch, as a float.
    Float(f64),
    /// Whole seconds since the epoch.
    Int(i64),
}

impl TicketTime {
    /// The value in seconds.
    pub fn seconds(self) -> f64 {
        match self {
            TicketTime::Float(f) => f,
            TicketTime::Int(i) => i as f64,
        }
    }
}

impl From<f64> for TicketTime {
    fn from(v: f64) -> Self {
        TicketTime::Float(v)
    }
}

impl std::fmt::Display for TicketTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TicketTime::Float(v) => f.write_str(&pyfmt::float(*v)),
            TicketTime::Int(v) => write!(f, "{v}"),
        }
    }
}

/// Everything a ban/unban command can refer to.
///
/// Tags: `<ip>`, `<family>`, `<ip-rev>`, `<ip-host>`, `<fid>`, `<failures>`, `<time>`,
/// `<bantime>`, `<bancount>`, `<matches>`, `<restored>`, `<ipmatches>`, `<ipjailmatches>`,
/// `<ipfailures>`, `<ipjailfailures>`, `<raw-ticket>`, `<F-*>`, `<F-NAME>` (from [`fields`]) and
/// any key of [`extra`] (e.g. `jail.banned`).
///
/// [`fields`]: BanInfo::fields
/// [`extra`]: BanInfo::extra
#[derive(Debug, Clone, PartialEq)]
pub struct BanInfo {
    /// The ticket's id (`<fid>`; also `<ip>` unless [`BanInfo::ip`] is set): an address, a
    /// network or a raw id.
    pub id: HostId,
    /// The address from the ticket's data when it differs from the id (a filter with `<F-ID>`
    /// and `<HOST>`); `<ip>` and `<family>` use it.
    pub ip: Option<HostId>,
    /// Failure count (`<failures>`).
    pub failures: u64,
    /// Time of the ticket (`<time>`).
    pub time: TicketTime,
    /// Ban time in seconds, `-1` for permanent (`<bantime>`).
    pub bantime: i64,
    /// How many times the id was banned before (`<bancount>`).
    pub bancount: u64,
    /// The matched log lines (`<matches>`, joined with newlines).
    pub matches: Vec<String>,
    /// The ticket was restored from the database at start (`<restored>`: `1`/`0`).
    pub restored: bool,
    /// Ticket data captured by the filter, keyed as fail2ban stores them (`user`, `fid`,
    /// `fport`, ...; a `F-USER` spelling is accepted too). Values as Python prints them.
    pub fields: Vec<(String, String)>,
    /// Matches of this id over all jails (`<ipmatches>`); the ticket's own matches when `None`.
    pub ipmatches: Option<Vec<String>>,
    /// Matches of this id in this jail (`<ipjailmatches>`); the ticket's own when `None`.
    pub ipjailmatches: Option<Vec<String>>,
    /// Failures of this id over all jails (`<ipfailures>`); `failures` when `None`.
    pub ipfailures: Option<u64>,
    /// Failures of this id in this jail (`<ipjailfailures>`); `failures` when `None`.
    pub ipjailfailures: Option<u64>,
    /// The host name of the address (`<ip-host>`); looked up (reverse DNS) when `None` and a
    /// command uses the tag. `"None"` is what fail2ban substitutes when the lookup fails.
    pub ip_host: Option<String>,
    /// Ban time stored in the ticket (`None` when it took the jail's; for `<raw-ticket>`).
    pub ticket_bantime: Option<i64>,
    /// Further tags (`jail.banned`, `jail.banned_total`, `jail.found`, `jail.found_total`, ...).
    pub extra: Vec<(String, String)>,
}

impl BanInfo {
    /// Information for `id` at `time` (no failures, no matches, permanent until set).
    pub fn new(id: HostId, time: impl Into<TicketTime>) -> Self {
        BanInfo {
            id,
            ip: None,
            failures: 0,
            time: time.into(),
            bantime: -1,
            bancount: 0,
            matches: Vec::new(),
            restored: false,
            fields: Vec::new(),
            ipmatches: None,
            ipjailmatches: None,
            ipfailures: None,
            ipjailfailures: None,
            ip_host: None,
            ticket_bantime: None,
            extra: Vec::new(),
        }
    }

    /// The id `<ip>` refers to.
    pub fn address(&self) -> &HostId {
        self.ip.as_ref().unwrap_or(&self.id)
    }

    /// `inet4` / `inet6` for an address or network, `None` for a raw id.
    pub fn family(&self) -> Option<&'static str> {
        family_of(self.address())
    }

    /// A ticket-data field (`<F-NAME>`), by fail2ban's option name (`user`, `fid`, `fport`).
    pub fn field(&self, key: &str) -> Option<String> {
        for (k, v) in &self.fields {
            let k = k
                .strip_prefix("F-")
                .map_or_else(|| k.to_string(), super::tags::field_key);
            if k == key {
                return Some(v.clone());
            }
        }
        match key {
            "matches" => Some(pyfmt::list_repr(&self.matches)),
            "failures" => Some(self.failures.to_string()),
            "ip" => self.ip.as_ref().map(|ip| ip.to_string()),
            _ => None,
        }
    }

    /// `<F-*>`: the ticket's whole data as a Python dict.
    fn data_repr(&self) -> String {
        let mut parts = vec![
            format!("'matches': {}", pyfmt::list_repr(&self.matches)),
            format!("'failures': {}", self.failures),
        ];
        for (k, v) in &self.fields {
            let k = k
                .strip_prefix("F-")
                .map_or_else(|| k.clone(), super::tags::field_key);
            if k != "matches" && k != "failures" {
                parts.push(format!("{}: {}", pyfmt::repr(&k), pyfmt::repr(v)));
            }
        }
        format!("{{{}}}", parts.join(", "))
    }

    /// `<raw-ticket>`: the ticket as fail2ban prints it.
    fn ticket_repr(&self) -> String {
        format!(
            "BanTicket: ip={} time={} bantime={} bancount={} #attempts={} matches={}",
            self.id,
            self.time,
            self.ticket_bantime
                .map_or_else(|| "None".to_string(), |b| b.to_string()),
            self.bancount,
            self.failures,
            pyfmt::list_repr(&self.matches)
        )
    }

    /// The value of run-time tag `tag` (with `<family>` given as `family`), `None` when the tag
    /// is not a run-time tag.
    pub(crate) fn value(&self, tag: &str, family: Option<&str>) -> Option<String> {
        let join = |v: &[String]| v.join("\n");
        Some(match tag {
            "ip" => self.address().to_string(),
            "family" => family.unwrap_or("None").to_string(),
            "ip-rev" => ptr_name(self.address()),
            "ip-host" => self.ip_host.clone().unwrap_or_else(|| "None".into()),
            "fid" => self.id.to_string(),
            "failures" => self.failures.to_string(),
            "time" => self.time.to_string(),
            "bantime" => self.bantime.to_string(),
            "bancount" => self.bancount.to_string(),
            "matches" => join(&self.matches),
            "restored" => u8::from(self.restored).to_string(),
            "F-*" => self.data_repr(),
            "ipmatches" => join(self.ipmatches.as_deref().unwrap_or(&self.matches)),
            "ipjailmatches" => join(self.ipjailmatches.as_deref().unwrap_or(&self.matches)),
            "ipfailures" => self.ipfailures.unwrap_or(self.failures).to_string(),
            "ipjailfailures" => self.ipjailfailures.unwrap_or(self.failures).to_string(),
            "raw-ticket" => self.ticket_repr(),
            _ => {
                return self
                    .extra
                    .iter()
                    .find(|(k, _)| k == tag)
                    .map(|(_, v)| v.clone());
            }
        })
    }
}

/// `inet4` / `inet6` for an address or network, `None` for a raw id.
pub fn family_of(id: &HostId) -> Option<&'static str> {
    match id {
        HostId::Addr(a) | HostId::Net(a, _) => Some(if a.is_ipv4() { "inet4" } else { "inet6" }),
        HostId::Raw(_) => None,
    }
}

/// Checks that the text of an address/network id is an address or CIDR and nothing else (the
/// text substituted for `<ip>` when the family claims an address).
pub fn validate_address_text(id: &HostId) -> Result<(), String> {
    let text = id.to_string();
    let ok = match id {
        HostId::Addr(a) => text.parse::<IpAddr>().is_ok_and(|p| p == *a),
        HostId::Net(a, p) => text.split_once('/').is_some_and(|(addr, plen)| {
            addr.parse::<IpAddr>().is_ok_and(|x| x == *a) && plen.parse::<u8>() == Ok(*p)
        }),
        HostId::Raw(_) => true,
    };
    let charset = matches!(id, HostId::Raw(_))
        || text
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || matches!(b, b'.' | b':' | b'/'));
    if ok && charset {
        Ok(())
    } else {
        Err(format!("{text:?} is not a valid address or network"))
    }
}

/// `<ip-rev>`: the reverse-DNS name without the `in-addr.arpa.`/`ip6.arpa.` suffix (dotted,
/// with a trailing dot), built as fail2ban builds it; empty for raw ids.
fn ptr_name(id: &HostId) -> String {
    let a = match id {
        HostId::Addr(a) | HostId::Net(a, _) => *a,
        HostId::Raw(_) => return String::new(),
    };
    let parts: Vec<String> = match a {
        // fail2ban splits the printed text (with any `/prefix`) at dots.
        IpAddr::V4(_) => id.to_string().split('.').map(str::to_string).collect(),
        IpAddr::V6(v6) => format!("{:032x}", u128::from(v6))
            .chars()
            .map(|c| c.to_string())
            .collect(),
    };
    let mut rev: Vec<String> = parts.into_iter().rev().collect();
    rev.push(String::new());
    rev.join(".")
}

/// The primary host name of `addr` (reverse lookup through the system resolver), if any.
pub fn reverse_lookup(addr: IpAddr) -> Option<String> {
    let sa = std::net::SocketAddr::new(addr, 0);
    let (storage, len) = sockaddr_of(&sa);
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes; `host` is a writable buffer of the
    // given length; no service buffer is requested.
    let rc = unsafe {
        libc::getnameinfo(
            (&raw const storage).cast(),
            len,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: on success getnameinfo wrote a NUL-terminated string into `host`.
    let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

fn sockaddr_of(sa: &std::net::SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match sa {
        std::net::SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*v4.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is large enough and suitably aligned for sockaddr_in.
            unsafe { std::ptr::write((&raw mut storage).cast(), sin) };
            (
                storage,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        std::net::SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_storage is large enough and suitably aligned for sockaddr_in6.
            unsafe { std::ptr::write((&raw mut storage).cast(), sin6) };
            (
                storage,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_like_fail2ban() {
        let mut b = BanInfo::new(HostId::parse("192.0.2.10"), 1_700_000_000.0);
        b.failures = 3;
        b.bantime = 600;
        b.matches = vec!["l1".into(), "l'2".into()];
        b.fields = vec![
            ("user".into(), "root".into()),
            ("F-PORT".into(), "22".into()),
        ];
        assert_eq!(b.value("ip", b.family()).unwrap(), "192.0.2.10");
        assert_eq!(b.value("family", b.family()).unwrap(), "inet4");
        assert_eq!(b.value("ip-rev", None).unwrap(), "10.2.0.192.");
        assert_eq!(b.value("time", None).unwrap(), "1700000000.0");
        assert_eq!(b.value("matches", None).unwrap(), "l1\nl'2");
        assert_eq!(b.value("ipjailmatches", None).unwrap(), "l1\nl'2");
        assert_eq!(b.value("restored", None).unwrap(), "0");
        assert_eq!(b.field("fport").unwrap(), "22");
        assert_eq!(b.field("user").unwrap(), "root");
        assert_eq!(
            b.value("F-*", None).unwrap(),
            "{'matches': ['l1', \"l'2\"], 'failures': 3, 'user': 'root', 'fport': '22'}"
        );
        assert!(b.value("nope", None).is_none());
        let raw = BanInfo::new(HostId::raw("user@example"), TicketTime::Int(5));
        assert_eq!(raw.family(), None);
        assert_eq!(raw.value("family", raw.family()).unwrap(), "None");
        assert_eq!(raw.value("ip-rev", None).unwrap(), "");
        assert_eq!(raw.value("time", None).unwrap(), "5");
        let v6 = HostId::parse("2001:db8::1");
        assert_eq!(
            ptr_name(&v6),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2."
        );
    }

    #[test]
    fn address_validation() {
        assert!(validate_address_text(&HostId::parse("192.0.2.0/24")).is_ok());
        assert!(validate_address_text(&HostId::parse("2001:db8::/32")).is_ok());
        assert!(validate_address_text(&HostId::raw("1.2.3.4;reboot")).is_ok());
    }

    #[test]
    fn reverse_lookup_of_loopback() {
        // /etc/hosts normally names 127.0.0.1; the lookup must not fail for it when it does.
        if std::fs::read_to_string("/etc/hosts").is_ok_and(|h| h.contains("127.0.0.1")) {
            assert!(reverse_lookup("127.0.0.1".parse().unwrap()).is_some());
        }
    }
}
