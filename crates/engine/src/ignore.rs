//! `ignoreip`, `ignoreself` and `ignorecommand`: which failure ids a jail never bans.
//!
//! As in fail2ban, `ignoreip` takes addresses, networks (`a.b.c.d/n`, `addr/mask`) and host
//! names (resolved when checked, cached for five minutes); `ignoreself` ignores every address of
//! the machine's interfaces; `ignorecommand` is run with the id substituted (escaped; an address
//! is validated first) and ignores the id when it exits with 0.

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::time::Duration;

use crate::ip::HostId;

/// How long a resolved `ignoreip` host name is trusted.
const DNS_TTL: f64 = 300.0;

/// One `ignoreip` entry.
#[derive(Debug, Clone, PartialEq)]
pub enum IgnoreEntry {
    /// An address or network.
    Net(HostId),
    /// A host name, resolved when checked.
    Name(String),
}

impl IgnoreEntry {
    /// Parses one entry as fail2ban does: an address/network when it parses, else a name.
    pub fn parse(text: &str) -> IgnoreEntry {
        match HostId::parse(text) {
            HostId::Raw(s) => IgnoreEntry::Name(s),
            id => IgnoreEntry::Net(id),
        }
    }
}

impl std::fmt::Display for IgnoreEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IgnoreEntry::Net(id) => write!(f, "{id}"),
            IgnoreEntry::Name(n) => f.write_str(n),
        }
    }
}

/// Why an id is ignored (fail2ban logs `Ignore <ip> by <source>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreReason {
    /// `ignoreself`.
    Self_,
    /// `ignoreip`.
    Ip,
    /// `ignorecommand`.
    Command,
}

impl IgnoreReason {
    /// The word fail2ban logs.
    pub fn word(self) -> &'static str {
        match self {
            IgnoreReason::Self_ => "ignoreself rule",
            IgnoreReason::Ip => "ip",
            IgnoreReason::Command => "command",
        }
    }
}

/// A resolver for host names (injectable: tests never touch DNS).
pub type NameResolver = fn(&str) -> Vec<IpAddr>;

fn system_resolve(name: &str) -> Vec<IpAddr> {
    (name, 0)
        .to_socket_addrs()
        .map(|it| it.map(|a| a.ip()).collect())
        .unwrap_or_default()
}

/// A jail's ignore rules.
#[derive(Debug, Clone)]
pub struct IgnoreList {
    entries: Vec<IgnoreEntry>,
    ignore_self: bool,
    self_addrs: Vec<IpAddr>,
    command: Option<String>,
    resolver: NameResolver,
    dns_cache: HashMap<String, (f64, Vec<IpAddr>)>,
}

impl IgnoreList {
    /// Rules from the jail's `ignoreip` entries, `ignoreself` and `ignorecommand`.
    pub fn new(entries: &[String], ignore_self: bool, command: Option<String>) -> IgnoreList {
        IgnoreList {
            entries: entries.iter().map(|e| IgnoreEntry::parse(e)).collect(),
            ignore_self,
            self_addrs: if ignore_self {
                local_addresses()
            } else {
                Vec::new()
            },
            command: command.filter(|c| !c.trim().is_empty()),
            resolver: system_resolve,
            dns_cache: HashMap::new(),
        }
    }

    /// Replaces the host-name resolver (tests).
    pub fn set_resolver(&mut self, r: NameResolver) {
        self.resolver = r;
        self.dns_cache.clear();
    }

    /// Replaces the machine's own addresses (tests).
    pub fn set_self_addresses(&mut self, addrs: Vec<IpAddr>) {
        self.self_addrs = addrs;
    }

    /// The `ignoreip` entries as written (`get <jail> ignoreip`).
    pub fn entries(&self) -> &[IgnoreEntry] {
        &self.entries
    }

    /// `ignoreself`.
    pub fn ignore_self(&self) -> bool {
        self.ignore_self
    }

    /// `set <jail> addignoreip`.
    pub fn add(&mut self, text: &str) {
        let e = IgnoreEntry::parse(text);
        if !self.entries.contains(&e) {
            self.entries.push(e);
        }
    }

    /// `set <jail> delignoreip`; returns whether it was there.
    pub fn remove(&mut self, text: &str) -> bool {
        let e = IgnoreEntry::parse(text);
        let before = self.entries.len();
        self.entries.retain(|x| *x != e);
        before != self.entries.len()
    }

    /// Whether `id` is ignored at `now`, and by what. `ignoreip` also covers networks: a network id
    /// is ignored when an ignored network contains it, and (so that `ignoreip` always wins) a network
    /// that contains an ignored address is ignored too.
    pub fn check(&mut self, id: &HostId, now: f64) -> Option<IgnoreReason> {
        if self.ignore_self
            && self
                .self_addrs
                .iter()
                .any(|a| covers(id, &HostId::Addr(*a)) || HostId::Addr(*a) == *id)
        {
            return Some(IgnoreReason::Self_);
        }
        for i in 0..self.entries.len() {
            let hit = match &self.entries[i] {
                IgnoreEntry::Net(net) => net.contains(id) || covers(id, net) || raw_equal(net, id),
                IgnoreEntry::Name(name) => {
                    if let HostId::Raw(r) = id
                        && r == name
                    {
                        true
                    } else {
                        let name = name.clone();
                        self.resolve(&name, now)
                            .iter()
                            .any(|a| HostId::Addr(*a) == *id || covers(id, &HostId::Addr(*a)))
                    }
                }
            };
            if hit {
                return Some(IgnoreReason::Ip);
            }
        }
        if let Some(cmd) = &self.command
            && run_ignore_command(cmd, id)
        {
            return Some(IgnoreReason::Command);
        }
        None
    }

    fn resolve(&mut self, name: &str, now: f64) -> Vec<IpAddr> {
        if let Some((t, v)) = self.dns_cache.get(name)
            && now - t < DNS_TTL
        {
            return v.clone();
        }
        let v = (self.resolver)(name);
        self.dns_cache.insert(name.to_string(), (now, v.clone()));
        v
    }
}

/// `id` is a network containing `inner`.
fn covers(id: &HostId, inner: &HostId) -> bool {
    matches!(id, HostId::Net(..)) && id.contains(inner)
}

fn raw_equal(a: &HostId, b: &HostId) -> bool {
    a.to_string() == b.to_string()
}

/// Runs `ignorecommand` for `id`: `<ip>` becomes the id (an address as printed, a raw id
/// single-quoted for the shell). Exit status 0 ignores; anything else (or a failure to run) does not.
fn run_ignore_command(cmd: &str, id: &HostId) -> bool {
    let value = if id.is_ip() {
        id.to_string()
    } else {
        shell_quote(&id.to_string())
    };
    let cmd = cmd.replace("<ip>", &value);
    let child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(&cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return false;
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return st.success(),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

/// `'text'` with embedded quotes closed and escaped: safe as one shell word.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Every address of the machine's interfaces (`ignoreself`), plus the loopback addresses.
pub fn local_addresses() -> Vec<IpAddr> {
    let mut out = vec![
        IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
    ];
    // SAFETY: getifaddrs fills a linked list that we walk read-only and free once.
    unsafe {
        let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut head) == 0 {
            let mut cur = head;
            while !cur.is_null() {
                let sa = (*cur).ifa_addr;
                if !sa.is_null() {
                    match i32::from((*sa).sa_family) {
                        libc::AF_INET => {
                            let sin = sa as *const libc::sockaddr_in;
                            let a = u32::from_be((*sin).sin_addr.s_addr);
                            out.push(IpAddr::V4(a.into()));
                        }
                        libc::AF_INET6 => {
                            let sin6 = sa as *const libc::sockaddr_in6;
                            out.push(IpAddr::V6((*sin6).sin6_addr.s6_addr.into()));
                        }
                        _ => {}
                    }
                }
                cur = (*cur).ifa_next;
            }
            libc::freeifaddrs(head);
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> IgnoreList {
        let e: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        let mut l = IgnoreList::new(&e, false, None);
        l.set_resolver(|n| match n {
            "trusted.example" => vec!["203.0.113.9".parse().unwrap()],
            _ => vec![],
        });
        l
    }

    #[test]
    fn addresses_networks_and_names() {
        let mut l = list(&[
            "127.0.0.1/8",
            "192.168.0.0/16",
            "2001:db8::/32",
            "trusted.example",
        ]);
        let ig = |l: &mut IgnoreList, s: &str| l.check(&HostId::parse(s), 0.0);
        assert_eq!(ig(&mut l, "127.0.0.5"), Some(IgnoreReason::Ip));
        assert_eq!(ig(&mut l, "192.168.44.1"), Some(IgnoreReason::Ip));
        assert_eq!(ig(&mut l, "2001:db8:1::7"), Some(IgnoreReason::Ip));
        assert_eq!(ig(&mut l, "203.0.113.9"), Some(IgnoreReason::Ip));
        assert_eq!(ig(&mut l, "198.51.100.7"), None);
        // A prefix that covers an ignored address is never banned.
        assert_eq!(ig(&mut l, "203.0.113.0/24"), Some(IgnoreReason::Ip));
        assert_eq!(ig(&mut l, "10.0.0.0/8"), None);
    }

    #[test]
    fn add_and_remove() {
        let mut l = list(&[]);
        l.add("198.51.100.0/24");
        assert!(l.check(&HostId::parse("198.51.100.7"), 0.0).is_some());
        assert!(l.remove("198.51.100.0/24"));
        assert!(l.check(&HostId::parse("198.51.100.7"), 0.0).is_none());
    }

    #[test]
    fn ignore_self_uses_local_addresses() {
        let mut l = IgnoreList::new(&[], true, None);
        l.set_self_addresses(vec!["192.0.2.10".parse().unwrap()]);
        assert_eq!(
            l.check(&HostId::parse("192.0.2.10"), 0.0),
            Some(IgnoreReason::Self_)
        );
        assert_eq!(l.check(&HostId::parse("192.0.2.11"), 0.0), None);
        assert!(local_addresses().contains(&"127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn ignore_command_exit_status_and_hostile_ids() {
        let dir = std::env::temp_dir().join(format!("ferroban-ign-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("pwned");
        let cmd = "test <ip> = 198.51.100.7".to_string();
        let mut l = IgnoreList::new(&[], false, Some(cmd));
        assert_eq!(
            l.check(&HostId::parse("198.51.100.7"), 0.0),
            Some(IgnoreReason::Command)
        );
        assert_eq!(l.check(&HostId::parse("198.51.100.8"), 0.0), None);
        // A raw id crafted to run a command is passed as one quoted word.
        let evil = format!("x'; touch {}; echo '", marker.display());
        assert_eq!(l.check(&HostId::raw(&evil), 0.0), None);
        let evil2 = format!("$(touch {})", marker.display());
        assert_eq!(l.check(&HostId::raw(&evil2), 0.0), None);
        assert!(!marker.exists(), "hostile id executed");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
