//! The iptables + ipset backend (`ferroban-iptables`).
//!
//! Per jail and family, two ipsets with a timeout (`hash:ip` for addresses, `hash:net` for
//! prefixes; they may overlap) gathered in a `list:set`, so one iptables rule per protocol
//! (`ip6tables` for IPv6) matches both:
//!
//! ```text
//! fb-<jail>-4  hash:ip  family inet  timeout 0     fb-<jail>-6  ... family inet6
//! fb-<jail>-4n hash:net family inet  timeout 0     fb-<jail>-6n ...
//! fb-<jail>-4l list:set { fb-<jail>-4, fb-<jail>-4n }   fb-<jail>-6l ...
//! iptables  -I INPUT 1 -p tcp -m multiport --dports 80,443 -m set --match-set fb-<jail>-4l src
//!           -m comment --comment ferroban-<jail> -j REJECT --reject-with icmp-port-unreachable
//! ```
//! ipset names are at most 31 bytes: jail names longer than 22 bytes are shortened to 13 bytes,
//! `-` and a hash of the full name.
//!
//! Elements carry `timeout N` (whole seconds, rounded up; `0` = permanent). ipset accepts at most
//! 2,147,483 s (24.8 days): a longer ban is written as permanent and ends when the daemon unbans
//! it, as fail2ban's `iptables-ipset` action does. A batch of bans, unbans or a reconcile is one
//! `ipset restore -exist` (`add -exist` also refreshes the timeout of an element already there).
//! `ipset restore` applies line by line and stops at the first failing line; the lines are
//! generated from parsed addresses only, so a failure means the kernel refused (e.g. a full set).

use std::collections::HashMap;
use std::fmt::Write as _;

use super::rule::{BlockType, PortMatch, check_jail_name};
use super::{
    Ban, BanReport, FirewallError, JailRule, ReconcileReport, Runner, Target, plan_exact, prepare,
    targets,
};
use crate::ip::HostId;

/// ipset's largest timeout, in seconds.
pub const IPSET_MAX_TIMEOUT: u64 = 2_147_483;

/// iptables' multiport match takes at most 15 ports (a range counts as two).
const MULTIPORT_MAX: usize = 15;

/// Options of the ipset backend.
#[derive(Debug, Clone)]
pub struct IpsetOptions {
    /// `maxelem` of each hash set (ipset's default, 65,536, is too small for big restores).
    pub maxelem: u32,
    /// The chain the rules go into.
    pub chain: String,
}

impl Default for IpsetOptions {
    fn default() -> Self {
        IpsetOptions {
            maxelem: 1 << 20,
            chain: "INPUT".to_string(),
        }
    }
}

/// A jail's ipsets and iptables/ip6tables rules.
#[derive(Debug, Clone)]
pub struct IpsetBackend {
    rule: JailRule,
    opts: IpsetOptions,
    runner: Runner,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Fam {
    V4,
    V6,
}

impl Fam {
    fn of(t: &Target) -> Fam {
        if t.is_v4() { Fam::V4 } else { Fam::V6 }
    }

    fn digit(self) -> &'static str {
        match self {
            Fam::V4 => "4",
            Fam::V6 => "6",
        }
    }

    fn ipset_family(self) -> &'static str {
        match self {
            Fam::V4 => "inet",
            Fam::V6 => "inet6",
        }
    }

    fn iptables(self) -> &'static str {
        match self {
            Fam::V4 => "iptables",
            Fam::V6 => "ip6tables",
        }
    }

    fn reject_with(self) -> &'static str {
        match self {
            Fam::V4 => "icmp-port-unreachable",
            Fam::V6 => "icmp6-port-unreachable",
        }
    }
}

const FAMS: [Fam; 2] = [Fam::V4, Fam::V6];

impl IpsetBackend {
    /// The backend for `rule`'s jail. Nothing runs until `start`.
    pub fn new(rule: JailRule, opts: IpsetOptions, runner: Runner) -> IpsetBackend {
        IpsetBackend { rule, opts, runner }
    }

    /// The command runner (its invocation log).
    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    fn jail(&self) -> &str {
        self.rule.jail()
    }

    /// The jail's part of the set names (the jail, or a shortened form with a hash).
    fn base(&self) -> String {
        let jail = self.jail();
        if jail.len() <= 22 {
            return jail.to_string();
        }
        // FNV-1a, 32 bits: stable across versions and platforms.
        let mut h: u32 = 0x811c_9dc5;
        for b in jail.bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        format!("{}-{h:08x}", &jail[..13])
    }

    /// The name of the addresses (`net = false`) or prefixes set of a family.
    fn set(&self, fam: Fam, net: bool) -> String {
        format!(
            "fb-{}-{}{}",
            self.base(),
            fam.digit(),
            if net { "n" } else { "" }
        )
    }

    fn list_set(&self, fam: Fam) -> String {
        format!("fb-{}-{}l", self.base(), fam.digit())
    }

    /// The names of the element sets: IPv4 addresses, IPv4 prefixes, IPv6 addresses, IPv6 prefixes.
    pub fn set_names(&self) -> [String; 4] {
        [
            self.set(Fam::V4, false),
            self.set(Fam::V4, true),
            self.set(Fam::V6, false),
            self.set(Fam::V6, true),
        ]
    }

    fn comment(&self) -> String {
        format!("ferroban-{}", self.jail())
    }

    /// The iptables rule specifications (after the chain name) of one family.
    fn rule_specs(&self, fam: Fam) -> Result<Vec<Vec<String>>, FirewallError> {
        let mut tail: Vec<String> = vec![
            "-m".into(),
            "set".into(),
            "--match-set".into(),
            self.list_set(fam),
            "src".into(),
            "-m".into(),
            "comment".into(),
            "--comment".into(),
            self.comment(),
            "-j".into(),
        ];
        match self.rule.blocktype() {
            BlockType::Reject => tail.extend([
                "REJECT".into(),
                "--reject-with".into(),
                fam.reject_with().into(),
            ]),
            BlockType::Drop => tail.push("DROP".into()),
        }
        let with = |head: Vec<String>| head.into_iter().chain(tail.iter().cloned()).collect();
        Ok(match self.rule.ports() {
            PortMatch::Multiport { ports, protocols } => {
                let weight: usize = ports
                    .iter()
                    .map(|p| if p.contains('-') { 2 } else { 1 })
                    .sum();
                if weight > MULTIPORT_MAX {
                    return Err(FirewallError::Config(format!(
                        "jail '{}': iptables' multiport match takes at most {MULTIPORT_MAX} ports \
                         (a range counts twice), port has {weight}",
                        self.jail()
                    )));
                }
                let list = ports
                    .iter()
                    .map(|p| p.replace('-', ":"))
                    .collect::<Vec<_>>()
                    .join(",");
                protocols
                    .iter()
                    .map(|p| {
                        with(vec![
                            "-p".into(),
                            p.name().into(),
                            "-m".into(),
                            "multiport".into(),
                            "--dports".into(),
                            list.clone(),
                        ])
                    })
                    .collect()
            }
            PortMatch::AllPorts { protocols } if protocols.is_empty() => vec![with(vec![])],
            PortMatch::AllPorts { protocols } => protocols
                .iter()
                .map(|p| with(vec!["-p".into(), p.name().into()]))
                .collect(),
        })
    }

    fn check_chain(&self) -> Result<(), FirewallError> {
        let c = &self.opts.chain;
        let ok = !c.is_empty()
            && c.len() <= 28
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(())
        } else {
            Err(FirewallError::Config(format!(
                "iptables chain name {c:?}: letters, digits, '-' or '_', 28 at most"
            )))
        }
    }

    /// Creates the sets (kept with their elements when they exist) and inserts each rule unless
    /// it is there already, so a second start adds nothing.
    pub async fn start(&self) -> Result<(), FirewallError> {
        check_jail_name(self.jail())?;
        self.check_chain()?;
        let mut script = String::new();
        for fam in FAMS {
            for (net, kind) in [(false, "hash:ip"), (true, "hash:net")] {
                let _ = writeln!(
                    script,
                    "create {} {kind} family {} timeout 0 maxelem {}",
                    self.set(fam, net),
                    fam.ipset_family(),
                    self.opts.maxelem
                );
            }
            let list = self.list_set(fam);
            let _ = writeln!(script, "create {list} list:set");
            let _ = writeln!(script, "add {list} {}", self.set(fam, false));
            let _ = writeln!(script, "add {list} {}", self.set(fam, true));
        }
        self.runner
            .run(&["ipset", "restore", "-exist"], Some(&script))
            .await?;
        for fam in FAMS {
            for spec in self.rule_specs(fam)? {
                if !self.rule_present(fam, &spec).await? {
                    let mut argv = vec![fam.iptables(), "-w", "-I", &self.opts.chain, "1"];
                    argv.extend(spec.iter().map(String::as_str));
                    self.runner.run(&argv, None).await?;
                }
            }
        }
        Ok(())
    }

    async fn rule_present(&self, fam: Fam, spec: &[String]) -> Result<bool, FirewallError> {
        let mut argv = vec![fam.iptables(), "-w", "-C", &self.opts.chain];
        argv.extend(spec.iter().map(String::as_str));
        let out = self.runner.run_any(&argv, None).await?;
        // -C fails when the rule is absent, or when its set is (then the rule cannot be there);
        // anything else is a real failure.
        let absent = out.stderr.contains("does a matching rule exist")
            || out.stderr.contains("doesn't exist")
            || out.stderr.is_empty();
        if !out.success && !absent {
            return Err(super::exec::command_error(&argv, &out, None));
        }
        Ok(out.success)
    }

    /// Deletes the jail's rules (every copy) and destroys its sets. Other rules and sets stay.
    pub async fn stop(&self) -> Result<(), FirewallError> {
        check_jail_name(self.jail())?;
        self.check_chain()?;
        for fam in FAMS {
            for spec in self.rule_specs(fam)? {
                // Bounded: a rule that cannot be deleted must not loop forever.
                for _ in 0..64 {
                    if !self.rule_present(fam, &spec).await? {
                        break;
                    }
                    let mut argv = vec![fam.iptables(), "-w", "-D", &self.opts.chain];
                    argv.extend(spec.iter().map(String::as_str));
                    self.runner.run(&argv, None).await?;
                }
            }
        }
        let mut script = String::new();
        for fam in FAMS {
            let _ = writeln!(script, "destroy {}", self.list_set(fam));
            let _ = writeln!(script, "destroy {}", self.set(fam, false));
            let _ = writeln!(script, "destroy {}", self.set(fam, true));
        }
        self.runner
            .run(&["ipset", "restore", "-exist"], Some(&script))
            .await?;
        Ok(())
    }

    fn set_of(&self, t: &Target) -> String {
        self.set(Fam::of(t), t.prefix.is_some())
    }

    /// Adds (or refreshes) `bans` with one `ipset restore`.
    pub async fn ban(&self, bans: &[Ban]) -> Result<BanReport, FirewallError> {
        let (items, expired) = prepare(self.jail(), bans)?;
        let mut script = String::new();
        for (t, r) in &items {
            let _ = writeln!(
                script,
                "add {} {} timeout {}",
                self.set_of(t),
                t.text(),
                secs(*r)
            );
        }
        if !script.is_empty() {
            self.runner
                .run(&["ipset", "restore", "-exist"], Some(&script))
                .await?;
        }
        Ok(BanReport {
            written: items.len(),
            expired,
            merged: Vec::new(),
        })
    }

    /// Deletes `ids` with one `ipset restore` (absent ones are ignored).
    pub async fn unban(&self, ids: &[HostId]) -> Result<(), FirewallError> {
        let list = targets(self.jail(), ids)?;
        let mut script = String::new();
        for t in &list {
            let _ = writeln!(script, "del {} {}", self.set_of(t), t.text());
        }
        if !script.is_empty() {
            self.runner
                .run(&["ipset", "restore", "-exist"], Some(&script))
                .await?;
        }
        Ok(())
    }

    async fn list(&self, set: &str) -> Result<Vec<(Target, Option<f64>)>, FirewallError> {
        let argv = ["ipset", "save", set];
        let out = self.runner.run(&argv, None).await?;
        parse_save(set, &out.stdout).map_err(|message| FirewallError::Parse {
            command: argv.join(" "),
            message,
        })
    }

    /// The jail's elements with their remaining time in whole seconds (`None`: permanent).
    pub async fn elements(&self) -> Result<Vec<Ban>, FirewallError> {
        let mut out = Vec::new();
        for set in self.set_names() {
            out.extend(self.list(&set).await?.into_iter().map(|(t, r)| (t.id(), r)));
        }
        Ok(out)
    }

    /// Makes the sets hold exactly `desired`, with one `ipset restore` (`del` of the extra
    /// elements, `add -exist` of the missing ones and of those whose timeout is off).
    pub async fn reconcile(&self, desired: &[Ban]) -> Result<ReconcileReport, FirewallError> {
        let (items, expired) = prepare(self.jail(), desired)?;
        let mut report = ReconcileReport {
            expired,
            ..ReconcileReport::default()
        };
        let mut by_set: HashMap<String, Vec<(Target, Option<f64>)>> = HashMap::new();
        for (t, r) in items {
            by_set.entry(self.set_of(&t)).or_default().push((t, r));
        }
        let mut script = String::new();
        for set in self.set_names() {
            let kernel = self.list(&set).await?;
            let want = by_set.remove(&set).unwrap_or_default();
            let plan = plan_exact(&kernel, &want);
            report.added += plan.adds.len() - plan.updated;
            report.updated += plan.updated;
            report.removed += plan.deletes.len() - plan.updated;
            report.unchanged += plan.unchanged;
            // `add -exist` rewrites the timeout in place: rewritten elements need no `del`.
            let rewritten: std::collections::HashSet<Target> =
                plan.adds.iter().map(|(t, _)| *t).collect();
            for t in plan.deletes.iter().filter(|t| !rewritten.contains(t)) {
                let _ = writeln!(script, "del {set} {}", t.text());
            }
            for (t, r) in &plan.adds {
                let _ = writeln!(script, "add {set} {} timeout {}", t.text(), secs(*r));
            }
        }
        if !script.is_empty() {
            self.runner
                .run(&["ipset", "restore", "-exist"], Some(&script))
                .await?;
        }
        Ok(report)
    }
}

/// ipset's `timeout` value: whole seconds rounded up, 0 for permanent and for longer than ipset
/// allows.
fn secs(r: Option<f64>) -> u64 {
    match r {
        None => 0,
        Some(s) => {
            let s = s.ceil().max(1.0);
            if s > IPSET_MAX_TIMEOUT as f64 {
                0
            } else {
                s as u64
            }
        }
    }
}

/// The `add SET ELEM [timeout N]` lines of `ipset save SET`.
fn parse_save(set: &str, text: &str) -> Result<Vec<(Target, Option<f64>)>, String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("add") || words.next() != Some(set) {
            continue;
        }
        let elem = words
            .next()
            .ok_or_else(|| format!("line {line:?} has no element"))?;
        let (addr, prefix) = match elem.split_once('/') {
            Some((a, p)) => (
                a,
                Some(
                    p.parse::<u8>()
                        .map_err(|_| format!("bad prefix in {line:?}"))?,
                ),
            ),
            None => (elem, None),
        };
        let addr = addr
            .parse()
            .map_err(|_| format!("element {elem:?} is not an address"))?;
        let mut remaining = None;
        while let Some(w) = words.next() {
            if w == "timeout" {
                let n: f64 = words
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| format!("bad timeout in {line:?}"))?;
                remaining = (n > 0.0).then_some(n);
            }
        }
        out.push((Target { addr, prefix }, remaining));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(jail: &str, kind: &str, port: &str, proto: &str, block: &str) -> IpsetBackend {
        IpsetBackend::new(
            JailRule::new(jail, kind, port, proto, block).unwrap(),
            IpsetOptions::default(),
            Runner::new(),
        )
    }

    #[test]
    fn names_fit_ipset() {
        let b = backend("sshd", "", "22", "tcp", "");
        assert_eq!(
            b.set_names(),
            ["fb-sshd-4", "fb-sshd-4n", "fb-sshd-6", "fb-sshd-6n"]
        );
        let long = backend(
            &"a-very-long-jail-name-indeed".repeat(2),
            "",
            "22",
            "tcp",
            "",
        );
        for n in long.set_names().iter().chain([&long.list_set(Fam::V6)]) {
            assert!(n.len() <= 31, "{n}");
        }
        assert_ne!(
            long.base(),
            backend(
                &"a-very-long-jail-name-indeed-2".repeat(2),
                "",
                "22",
                "tcp",
                ""
            )
            .base()
        );
    }

    #[test]
    fn rule_specs() {
        let b = backend(
            "web",
            "multiport",
            "http,https,8000:8010",
            "tcp,udp",
            "reject",
        );
        let specs = b.rule_specs(Fam::V6).unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(
            specs[1].join(" "),
            "-p udp -m multiport --dports http,https,8000:8010 -m set --match-set fb-web-6l src \
             -m comment --comment ferroban-web -j REJECT --reject-with icmp6-port-unreachable"
        );
        let b = backend("all", "allports", "", "all", "drop");
        assert_eq!(
            b.rule_specs(Fam::V4).unwrap()[0].join(" "),
            "-m set --match-set fb-all-4l src -m comment --comment ferroban-all -j DROP"
        );
        let many = (1..=16)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        assert!(
            backend("m", "", &many, "tcp", "")
                .rule_specs(Fam::V4)
                .is_err()
        );
    }

    #[test]
    fn timeouts() {
        assert_eq!(secs(None), 0);
        assert_eq!(secs(Some(0.2)), 1);
        assert_eq!(secs(Some(59.1)), 60);
        assert_eq!(secs(Some(3e6)), 0);
    }

    #[test]
    fn parses_save_output() {
        let text = "create fb-j-4n hash:net family inet hashsize 1024 maxelem 65536 timeout 0\n\
                    add fb-j-4n 10.0.0.0/8 timeout 4\n\
                    add fb-j-4n 192.0.2.0/24 timeout 0\n\
                    add other 1.2.3.4\n";
        let got = parse_save("fb-j-4n", text).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0.text(), "10.0.0.0/8");
        assert_eq!(got[0].1, Some(4.0));
        assert_eq!(got[1].1, None);
    }
}
