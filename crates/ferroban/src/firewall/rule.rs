//! What a jail blocks: its name, which traffic (ports and protocols, or all ports) and how
//! (reject or drop), each value checked so it can be written into a firewall command verbatim.

use super::FirewallError;

/// A transport protocol a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
    Dccp,
    Udplite,
}

impl Protocol {
    /// nftables / iptables / ufw spelling.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
            Protocol::Dccp => "dccp",
            Protocol::Udplite => "udplite",
        }
    }

    fn parse(text: &str) -> Option<Protocol> {
        Some(match text.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "sctp" => Protocol::Sctp,
            "dccp" => Protocol::Dccp,
            "udplite" => Protocol::Udplite,
            _ => return None,
        })
    }
}

/// Which traffic of a banned host is blocked (fail2ban's `type` option).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortMatch {
    /// `type = multiport`: these destination ports (numbers `80`, ranges `1000-2000`, or service
    /// names `http` resolved by the firewall tool) over each of these protocols.
    Multiport {
        ports: Vec<String>,
        protocols: Vec<Protocol>,
    },
    /// `type = allports`: every port of these protocols; an empty list is every protocol
    /// (`protocol = all`).
    AllPorts { protocols: Vec<Protocol> },
}

/// What happens to a banned host's packets (fail2ban's `blocktype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockType {
    /// Answer with an ICMP port-unreachable (fail2ban's default).
    Reject,
    /// Drop silently.
    Drop,
}

/// A jail's firewall rule: the jail name and what it blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailRule {
    jail: String,
    ports: PortMatch,
    blocktype: BlockType,
}

/// Longest jail name accepted (names go into set, chain and comment names).
pub const MAX_JAIL_NAME: usize = 64;

impl JailRule {
    /// Builds the rule from fail2ban-style option values:
    /// `kind` is `multiport` or `allports`; `port` a comma list of numbers, ranges (`a:b` or `a-b`)
    /// or service names (`http,https`); `protocol` a comma list of `tcp`, `udp`, `sctp`, `dccp`,
    /// `udplite` (or `all` with `allports`); `blocktype` `reject` or `drop` (`REJECT`/`DROP`/
    /// `deny` accepted). Anything else is refused with the offending value named.
    pub fn new(
        jail: &str,
        kind: &str,
        port: &str,
        protocol: &str,
        blocktype: &str,
    ) -> Result<JailRule, FirewallError> {
        check_jail_name(jail)?;
        let err = |what: &str, value: &str, allowed: &str| {
            FirewallError::Config(format!(
                "jail '{jail}': {what} {value:?} is not allowed ({allowed})"
            ))
        };
        let proto_list = |allow_all: bool| -> Result<Vec<Protocol>, FirewallError> {
            let items: Vec<&str> = split_list(protocol);
            if allow_all && items.iter().any(|p| p.eq_ignore_ascii_case("all")) {
                return if items.len() == 1 {
                    Ok(Vec::new())
                } else {
                    Err(err("protocol", protocol, "'all' stands alone"))
                };
            }
            if items.is_empty() {
                return Err(err("protocol", protocol, "give at least one"));
            }
            let mut out: Vec<Protocol> = Vec::new();
            for p in items {
                let p = Protocol::parse(p).ok_or_else(|| {
                    err(
                        "protocol",
                        p,
                        if allow_all {
                            "tcp, udp, sctp, dccp, udplite or all"
                        } else {
                            "tcp, udp, sctp, dccp or udplite"
                        },
                    )
                })?;
                if !out.contains(&p) {
                    out.push(p);
                }
            }
            Ok(out)
        };
        let ports = match kind.trim() {
            "" | "multiport" => {
                let items = split_list(port);
                if items.is_empty() {
                    return Err(err("port", port, "give at least one port"));
                }
                let mut out = Vec::new();
                for p in items {
                    out.push(check_port(p).ok_or_else(|| {
                        err(
                            "port",
                            p,
                            "a number 0-65535, a range a:b or a-b, or a service name of letters, digits, '-', '_', '.'",
                        )
                    })?);
                }
                PortMatch::Multiport {
                    ports: out,
                    protocols: proto_list(false)?,
                }
            }
            "allports" => PortMatch::AllPorts {
                protocols: proto_list(true)?,
            },
            other => return Err(err("type", other, "multiport or allports")),
        };
        let blocktype = match blocktype.trim().to_ascii_lowercase().as_str() {
            "" | "reject" => BlockType::Reject,
            "drop" | "deny" => BlockType::Drop,
            _ => return Err(err("blocktype", blocktype, "reject or drop")),
        };
        Ok(JailRule {
            jail: jail.to_string(),
            ports,
            blocktype,
        })
    }

    pub fn jail(&self) -> &str {
        &self.jail
    }

    pub fn ports(&self) -> &PortMatch {
        &self.ports
    }

    pub fn blocktype(&self) -> BlockType {
        self.blocktype
    }
}

fn split_list(text: &str) -> Vec<&str> {
    text.split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Jail names: letters, digits, `-`, `_`, `.`, at most [`MAX_JAIL_NAME`] bytes.
pub(crate) fn check_jail_name(jail: &str) -> Result<(), FirewallError> {
    let ok = !jail.is_empty()
        && jail.len() <= MAX_JAIL_NAME
        && jail
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(FirewallError::Config(format!(
            "jail name {jail:?} cannot be used in firewall object names: use 1-{MAX_JAIL_NAME} \
             letters, digits, '-', '_' or '.'"
        )))
    }
}

/// A port item normalised to `N`, `A-B` or a service name; `None` when not allowed.
fn check_port(p: &str) -> Option<String> {
    let num = |s: &str| -> Option<u16> {
        if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    if let Some(n) = num(p) {
        return Some(n.to_string());
    }
    for sep in [':', '-'] {
        if let Some((a, b)) = p.split_once(sep)
            && let (Some(a), Some(b)) = (num(a), num(b))
        {
            return (a <= b).then(|| format!("{a}-{b}"));
        }
    }
    let service = p.len() <= 32
        && p.as_bytes()[0].is_ascii_alphabetic()
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    service.then(|| p.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fail2ban_style_values() {
        let r =
            JailRule::new("nginx-404", "multiport", "http,https, 8000:8010", "tcp", "").unwrap();
        assert_eq!(
            r.ports(),
            &PortMatch::Multiport {
                ports: vec!["http".into(), "https".into(), "8000-8010".into()],
                protocols: vec![Protocol::Tcp]
            }
        );
        assert_eq!(r.blocktype(), BlockType::Reject);
        let r = JailRule::new("sshd", "allports", "ssh", "all", "DROP").unwrap();
        assert_eq!(r.ports(), &PortMatch::AllPorts { protocols: vec![] });
        assert_eq!(r.blocktype(), BlockType::Drop);
        let r = JailRule::new("dns", "multiport", "53", "tcp,udp,tcp", "reject").unwrap();
        assert_eq!(
            r.ports(),
            &PortMatch::Multiport {
                ports: vec!["53".into()],
                protocols: vec![Protocol::Tcp, Protocol::Udp]
            }
        );
    }

    #[test]
    fn refuses_anything_that_could_carry_syntax() {
        for (jail, kind, port, proto, block) in [
            ("a b", "multiport", "80", "tcp", "reject"),
            ("a;b", "multiport", "80", "tcp", "reject"),
            ("", "multiport", "80", "tcp", "reject"),
            ("j", "multiport", "80 }; flush ruleset", "tcp", "reject"),
            ("j", "multiport", "80\"", "tcp", "reject"),
            ("j", "multiport", "70000", "tcp", "reject"),
            ("j", "multiport", "90:80", "tcp", "reject"),
            ("j", "multiport", "", "tcp", "reject"),
            ("j", "multiport", "80", "icmp", "reject"),
            ("j", "multiport", "80", "all", "reject"),
            ("j", "allports", "80", "tcp,all", "reject"),
            ("j", "multiport", "80", "tcp", "accept"),
            ("j", "custom", "80", "tcp", "reject"),
            ("j", "multiport", "$(reboot)", "tcp", "reject"),
        ] {
            assert!(
                JailRule::new(jail, kind, port, proto, block).is_err(),
                "{jail:?} {kind:?} {port:?} {proto:?} {block:?} must be refused"
            );
        }
        assert!(JailRule::new(&"x".repeat(MAX_JAIL_NAME + 1), "", "80", "tcp", "").is_err());
    }
}
