//! Native firewall backends: a jail's bans written straight into the kernel, in batches.
//!
//! fail2ban runs one shell (and one `nft`/`iptables`/`ufw` process) per ban and per unban. These
//! backends write a whole batch of bans as one transaction instead, with the remaining ban time on
//! each element where the firewall supports it, so the kernel expires them even while the daemon
//! is down:
//!
//! | backend | banaction | elements | one batch is |
//! | --- | --- | --- | --- |
//! | [`NftBackend`] | `ferroban-nftables` | nftables sets with `flags timeout` | one `nft -f -` script |
//! | [`IpsetBackend`] | `ferroban-iptables` | ipset `hash:ip`/`hash:net` with `timeout` | one `ipset restore` |
//! | [`UfwBackend`] | `ferroban-ufw` | ufw rules (no timeouts) | one `ufw` per rule (ufw has no batch) |
//!
//! All three share the API shape of [`Firewall`]: `start`, `stop`, `ban`, `unban`, `elements`,
//! `reconcile`. Bans are [`Ban`]s: a [`HostId`] (an address or a prefix; raw ids are refused)
//! with the remaining time in seconds (`None`: permanent).
//!
//! # Safety of generated commands
//! Nothing from a log reaches a firewall command as text: addresses and prefixes are
//! [`std::net::IpAddr`] values printed by Rust, numbers are numbers, and the configured names
//! (jail, table, ports, protocols) are checked against small character sets by [`JailRule::new`]
//! before any command is built. Commands are run without a shell.
//!
//! # Tests
//! `tests/firewall_netns.rs` runs every backend inside a network namespace (through
//! [`Runner::with_prefix`] = `ip netns exec NS`), never on the host's firewall.

mod exec;
mod ipset;
mod nft;
mod rule;
mod ufw;

pub use exec::Runner;
pub use ipset::{IpsetBackend, IpsetOptions};
pub use nft::{NftBackend, NftOptions};
pub use rule::{BlockType, JailRule, PortMatch, Protocol};
pub use ufw::UfwBackend;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use crate::ip::HostId;

/// One ban: the id and its remaining time in seconds (`None` = permanent).
pub type Ban = (HostId, Option<f64>);

/// What went wrong, with the command and what it printed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FirewallError {
    /// A configured value (jail name, port, protocol, ...) is not allowed.
    #[error("firewall configuration: {0}")]
    Config(String),
    /// An id cannot be written into the firewall (a raw id, `/0`).
    #[error("jail '{jail}': cannot ban {id:?} in the firewall: {reason}")]
    BadId {
        jail: String,
        id: String,
        reason: String,
    },
    /// A command could not be started or failed.
    #[error("`{command}` {status}{}", details(.stderr, .input))]
    Command {
        command: String,
        status: String,
        stderr: String,
        /// The start of the batch fed on stdin, if any (for the error's context).
        input: String,
    },
    /// A command's output could not be understood.
    #[error("`{command}`: cannot parse its output: {message}")]
    Parse { command: String, message: String },
    /// The firewall is not in a state where bans would take effect.
    #[error("{0}")]
    State(String),
}

fn details(stderr: &str, input: &str) -> String {
    let mut s = String::new();
    if !stderr.trim().is_empty() {
        s.push_str(":\n");
        s.push_str(stderr.trim_end());
    }
    if !input.is_empty() {
        s.push_str("\n--- input (start) ---\n");
        s.push_str(input);
    }
    s
}

/// What a `ban` call did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BanReport {
    /// Elements written (added or refreshed).
    pub written: usize,
    /// Ids left out because their remaining time was zero or negative.
    pub expired: Vec<HostId>,
    /// nftables interval sets cannot hold overlapping prefixes: `(narrower, wider)` pairs where the
    /// narrower prefix is blocked by the wider one, whose timeout became the longer of the two.
    pub merged: Vec<(HostId, HostId)>,
}

/// What a `reconcile` call did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReconcileReport {
    /// Desired elements that were missing and were added.
    pub added: usize,
    /// Elements that were in the kernel but not desired, deleted.
    pub removed: usize,
    /// Elements present with another timeout, rewritten.
    pub updated: usize,
    /// Elements already right.
    pub unchanged: usize,
    /// Desired bans left out because their time was up.
    pub expired: Vec<HostId>,
    /// See [`BanReport::merged`].
    pub merged: Vec<(HostId, HostId)>,
}

/// Any of the native backends, for a jail's action list.
pub enum Firewall {
    Nft(NftBackend),
    Ipset(IpsetBackend),
    Ufw(UfwBackend),
}

impl Firewall {
    /// The backend for a `banaction` name (`ferroban-nftables`, `ferroban-iptables`,
    /// `ferroban-ufw`), or `None` when the name is not a native one.
    pub fn for_banaction(name: &str, rule: JailRule, runner: Runner) -> Option<Firewall> {
        Some(match name {
            "ferroban-nftables" => {
                Firewall::Nft(NftBackend::new(rule, NftOptions::default(), runner))
            }
            "ferroban-iptables" => {
                Firewall::Ipset(IpsetBackend::new(rule, IpsetOptions::default(), runner))
            }
            "ferroban-ufw" => Firewall::Ufw(UfwBackend::new(rule, runner)),
            _ => return None,
        })
    }

    pub async fn start(&self) -> Result<(), FirewallError> {
        match self {
            Firewall::Nft(b) => b.start().await,
            Firewall::Ipset(b) => b.start().await,
            Firewall::Ufw(b) => b.start().await,
        }
    }

    pub async fn stop(&self) -> Result<(), FirewallError> {
        match self {
            Firewall::Nft(b) => b.stop().await,
            Firewall::Ipset(b) => b.stop().await,
            Firewall::Ufw(b) => b.stop().await,
        }
    }

    /// Whether the elements carry the ban's remaining time (nftables and ipset timeouts): then a
    /// lengthened ban must be written again, or the kernel ends it at the first end. ufw's rules
    /// have none (the daemon removes them), so there is nothing to lengthen.
    pub fn keeps_timeouts(&self) -> bool {
        match self {
            Firewall::Nft(_) | Firewall::Ipset(_) => true,
            Firewall::Ufw(_) => false,
        }
    }

    pub async fn ban(&self, bans: &[Ban]) -> Result<BanReport, FirewallError> {
        match self {
            Firewall::Nft(b) => b.ban(bans).await,
            Firewall::Ipset(b) => b.ban(bans).await,
            Firewall::Ufw(b) => b.ban(bans).await,
        }
    }

    pub async fn unban(&self, ids: &[HostId]) -> Result<(), FirewallError> {
        match self {
            Firewall::Nft(b) => b.unban(ids).await,
            Firewall::Ipset(b) => b.unban(ids).await,
            Firewall::Ufw(b) => b.unban(ids).await,
        }
    }

    pub async fn elements(&self) -> Result<Vec<Ban>, FirewallError> {
        match self {
            Firewall::Nft(b) => b.elements().await,
            Firewall::Ipset(b) => b.elements().await,
            Firewall::Ufw(b) => b.elements().await,
        }
    }

    pub async fn reconcile(&self, desired: &[Ban]) -> Result<ReconcileReport, FirewallError> {
        match self {
            Firewall::Nft(b) => b.reconcile(desired).await,
            Firewall::Ipset(b) => b.reconcile(desired).await,
            Firewall::Ufw(b) => b.reconcile(desired).await,
        }
    }

    /// The command runner (its invocation log).
    pub fn runner(&self) -> &Runner {
        match self {
            Firewall::Nft(b) => b.runner(),
            Firewall::Ipset(b) => b.runner(),
            Firewall::Ufw(b) => b.runner(),
        }
    }
}

/// An id as the firewall sees it: an address or a masked prefix (never `/0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Target {
    pub addr: IpAddr,
    /// `None` for a single address.
    pub prefix: Option<u8>,
}

impl Target {
    pub fn from_id(jail: &str, id: &HostId) -> Result<Target, FirewallError> {
        let bad = |reason: &str| FirewallError::BadId {
            jail: jail.to_string(),
            id: id.to_string(),
            reason: reason.to_string(),
        };
        match id {
            HostId::Addr(a) => Ok(Target {
                addr: *a,
                prefix: None,
            }),
            HostId::Net(_, 0) => Err(bad("a /0 prefix would block every address")),
            HostId::Net(a, p) => {
                // Re-mask through HostId so a hand-made Net with host bits set is normalised.
                match HostId::with_prefix(&a.to_string(), crate::ip::Family::Any, Some(*p)) {
                    HostId::Net(m, p) => Ok(Target {
                        addr: m,
                        prefix: Some(p),
                    }),
                    HostId::Addr(m) => Ok(Target {
                        addr: m,
                        prefix: None,
                    }),
                    HostId::Raw(_) => Err(bad("the prefix length is out of range")),
                }
            }
            HostId::Raw(_) => Err(bad(
                "it is not an IP address or prefix (raw ids can only be used by shell actions)",
            )),
        }
    }

    pub fn is_v4(&self) -> bool {
        self.addr.is_ipv4()
    }

    pub fn id(&self) -> HostId {
        match self.prefix {
            None => HostId::Addr(self.addr),
            Some(p) => HostId::Net(self.addr, p),
        }
    }

    /// `addr` or `addr/len`: the text every firewall tool accepts.
    pub fn text(&self) -> String {
        match self.prefix {
            None => self.addr.to_string(),
            Some(p) => format!("{}/{p}", self.addr),
        }
    }
}

/// A validated ban: the target and its remaining time.
pub(crate) type Item = (Target, Option<f64>);

/// Validates the ids of a batch and splits off the expired ones. A later duplicate of an id
/// replaces the earlier one. Order of first appearance is kept.
pub(crate) fn prepare(jail: &str, bans: &[Ban]) -> Result<(Vec<Item>, Vec<HostId>), FirewallError> {
    let mut out: Vec<(Target, Option<f64>)> = Vec::with_capacity(bans.len());
    let mut index: HashMap<Target, usize> = HashMap::with_capacity(bans.len());
    let mut expired = Vec::new();
    for (id, remaining) in bans {
        let t = Target::from_id(jail, id)?;
        // None or +inf: permanent; NaN, zero or negative: the ban is over.
        let remaining = match remaining {
            None => None,
            Some(r) if *r == f64::INFINITY => None,
            Some(r) if *r > 0.0 => Some(*r),
            Some(_) => {
                expired.push(id.clone());
                if let Some(&i) = index.get(&t) {
                    out[i].1 = Some(0.0);
                }
                continue;
            }
        };
        match index.get(&t) {
            Some(&i) => out[i].1 = remaining,
            None => {
                index.insert(t, out.len());
                out.push((t, remaining));
            }
        }
    }
    // An id banned and then expired within the same batch is left out.
    out.retain(|(_, r)| *r != Some(0.0));
    Ok((out, expired))
}

/// Validates ids for an unban.
pub(crate) fn targets(jail: &str, ids: &[HostId]) -> Result<Vec<Target>, FirewallError> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let t = Target::from_id(jail, id)?;
        if seen.insert(t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// Whole milliseconds of a remaining time, at least 1 (callers drop expired bans first).
pub(crate) fn millis(remaining: f64) -> u64 {
    let ms = (remaining * 1000.0).ceil();
    if ms < 1.0 { 1 } else { ms as u64 }
}

/// True when two remaining times differ enough to rewrite the element: one permanent and the
/// other not, or more than `tolerance` seconds apart (listings round to whole seconds).
pub(crate) fn timeout_differs(kernel: Option<f64>, desired: Option<f64>, tolerance: f64) -> bool {
    match (kernel, desired) {
        (None, None) => false,
        (Some(k), Some(d)) => (k - d).abs() > tolerance,
        _ => true,
    }
}

/// Timeouts this close count as equal: listings give remaining times in whole seconds, and the
/// elements of a big batch start their timeout a few seconds after the caller computed it.
pub(crate) const TOLERANCE: f64 = 5.0;

/// Changes to one set: delete these, then add these.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Plan {
    pub deletes: Vec<Target>,
    pub adds: Vec<(Target, Option<f64>)>,
    /// How many of the adds rewrite an element also in `deletes`.
    pub updated: usize,
    pub unchanged: usize,
    pub merged: Vec<(HostId, HostId)>,
}

/// Exact diff for a hash set.
pub(crate) fn plan_exact(kernel: &[(Target, Option<f64>)], want: &[(Target, Option<f64>)]) -> Plan {
    let have: HashMap<Target, Option<f64>> = kernel.iter().copied().collect();
    let wanted: HashSet<Target> = want.iter().map(|(t, _)| *t).collect();
    let mut plan = Plan::default();
    for (t, r) in want {
        match have.get(t) {
            None => plan.adds.push((*t, *r)),
            Some(k) if timeout_differs(*k, *r, TOLERANCE) => {
                plan.deletes.push(*t);
                plan.adds.push((*t, *r));
                plan.updated += 1;
            }
            Some(_) => plan.unchanged += 1,
        }
    }
    plan.deletes.extend(
        kernel
            .iter()
            .map(|(t, _)| *t)
            .filter(|t| !wanted.contains(t)),
    );
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_validates_dedupes_and_drops_expired() {
        let bans = vec![
            (HostId::parse("192.0.2.1"), Some(10.0)),
            (HostId::parse("192.0.2.2"), Some(0.0)),
            (HostId::parse("192.0.2.1"), None),
            (HostId::parse("2001:db8::/64"), Some(-1.0)),
            (HostId::parse("198.51.100.0/24"), Some(f64::INFINITY)),
        ];
        let (ok, expired) = prepare("j", &bans).unwrap();
        assert_eq!(
            ok.iter().map(|(t, r)| (t.text(), *r)).collect::<Vec<_>>(),
            vec![
                ("192.0.2.1".to_string(), None),
                ("198.51.100.0/24".to_string(), None)
            ]
        );
        assert_eq!(expired.len(), 2);
    }

    #[test]
    fn raw_ids_and_slash_zero_are_refused() {
        let e = prepare("j", &[(HostId::raw("evil; flush ruleset"), None)]).unwrap_err();
        assert!(e.to_string().contains("raw ids"), "{e}");
        let e = prepare("j", &[(HostId::parse("0.0.0.0/0"), None)]).unwrap_err();
        assert!(e.to_string().contains("/0"), "{e}");
        // A hand-made network with host bits set is masked.
        let t = Target::from_id("j", &HostId::Net("192.0.2.77".parse().unwrap(), 24)).unwrap();
        assert_eq!(t.text(), "192.0.2.0/24");
    }

    #[test]
    fn millis_rounds_up() {
        assert_eq!(millis(1.0), 1000);
        assert_eq!(millis(0.0001), 1);
        assert_eq!(millis(2.5004), 2501);
    }
}
