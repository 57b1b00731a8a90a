//! The ufw backend (`ferroban-ufw`).
//!
//! One ufw rule per banned id and protocol, put before the other rules of its family and tagged
//! with the jail:
//! `ufw prepend deny|reject from X to any [port P proto T] comment ferroban-<jail>`
//! (fail2ban's `ufw` action also prepends; `ufw insert 1` fails on an empty rule list and cannot
//! put an IPv6 rule before IPv4 ones). ufw has no batch interface and no timeouts: each rule is one
//! `ufw` process (about 0.2 s), and bans end when the daemon unbans them, so the remaining time of
//! a ban is only used to skip expired ones. ufw keeps its rules across reboots; `reconcile` at
//! start-up removes those whose ban ended while the daemon was down.
//!
//! ufw accepts service names only for a single port, so names are resolved to numbers through
//! `/etc/services` here.

use std::collections::HashSet;
use std::sync::Arc;

use super::rule::{BlockType, PortMatch, Protocol, check_jail_name};
use super::{
    Ban, BanReport, FirewallError, JailRule, ReconcileReport, Runner, Target, prepare, targets,
};
use crate::ip::HostId;

const SERVICES: &str = "/etc/services";

/// A jail's ufw rules.
#[derive(Debug, Clone)]
pub struct UfwBackend {
    rule: JailRule,
    runner: Runner,
}

impl UfwBackend {
    /// The backend for `rule`'s jail. Nothing runs until `start`.
    pub fn new(rule: JailRule, runner: Runner) -> UfwBackend {
        UfwBackend { rule, runner }
    }

    /// The command runner (its invocation log).
    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    fn jail(&self) -> &str {
        self.rule.jail()
    }

    fn comment(&self) -> String {
        format!("ferroban-{}", self.jail())
    }

    fn action(&self) -> &'static str {
        match self.rule.blocktype() {
            BlockType::Reject => "reject",
            BlockType::Drop => "deny",
        }
    }

    /// What follows `to any` in each of the jail's rules (one per protocol).
    fn clauses(&self) -> Result<Vec<Vec<String>>, FirewallError> {
        Ok(match self.rule.ports() {
            PortMatch::Multiport { ports, protocols } => {
                let services = std::fs::read_to_string(SERVICES).unwrap_or_default();
                let mut out = Vec::new();
                for p in protocols {
                    let mut list = Vec::new();
                    for port in ports {
                        list.push(resolve(&services, port, *p).ok_or_else(|| {
                            FirewallError::Config(format!(
                                "jail '{}': port {port:?} is not a {} service in {SERVICES}",
                                self.jail(),
                                p.name()
                            ))
                        })?);
                    }
                    out.push(vec![
                        "port".to_string(),
                        list.join(","),
                        "proto".to_string(),
                        p.name().to_string(),
                    ]);
                }
                out
            }
            PortMatch::AllPorts { protocols } if protocols.is_empty() => vec![Vec::new()],
            PortMatch::AllPorts { protocols } => protocols
                .iter()
                .map(|p| vec!["proto".to_string(), p.name().to_string()])
                .collect(),
        })
    }

    /// Checks that ufw is installed and active (rules of an inactive ufw are not enforced).
    pub async fn start(&self) -> Result<(), FirewallError> {
        check_jail_name(self.jail())?;
        self.clauses()?;
        let stdout = shared_status(&self.runner).await?;
        if !stdout.contains("Status: active") {
            return Err(FirewallError::State(format!(
                "jail '{}': ufw is not active (`ufw status` says {:?}): its rules would not be \
                 enforced; enable it with `ufw enable`",
                self.jail(),
                stdout.lines().next().unwrap_or("")
            )));
        }
        Ok(())
    }

    /// Deletes every rule of this jail (found by its comment); other rules stay.
    pub async fn stop(&self) -> Result<(), FirewallError> {
        let present: Vec<HostId> = self.listed().await?.into_iter().collect();
        self.unban(&present).await
    }

    async fn each_rule(
        &self,
        verb: &[&str],
        t: &Target,
        comment: bool,
    ) -> Result<(), FirewallError> {
        let text = t.text();
        let c = self.comment();
        for clause in self.clauses()? {
            let mut argv: Vec<&str> = vec!["ufw"];
            argv.extend(verb);
            argv.extend([self.action(), "from", &text, "to", "any"]);
            argv.extend(clause.iter().map(String::as_str));
            if comment {
                argv.extend(["comment", &c]);
            }
            self.runner.run(&argv, None).await?;
        }
        Ok(())
    }

    /// Adds a rule per id and protocol (ufw skips a rule it has already).
    pub async fn ban(&self, bans: &[Ban]) -> Result<BanReport, FirewallError> {
        let (items, expired) = prepare(self.jail(), bans)?;
        for (t, _) in &items {
            self.each_rule(&["prepend"], t, true).await?;
        }
        Ok(BanReport {
            written: items.len(),
            expired,
            merged: Vec::new(),
        })
    }

    /// Deletes the rules of `ids` (ufw ignores absent ones).
    pub async fn unban(&self, ids: &[HostId]) -> Result<(), FirewallError> {
        for t in targets(self.jail(), ids)? {
            self.each_rule(&["delete"], &t, false).await?;
        }
        Ok(())
    }

    /// The ids this jail's rules block (in `ufw show added`), found by the jail's comment.
    async fn listed(&self) -> Result<Vec<HostId>, FirewallError> {
        let argv = ["ufw", "show", "added"];
        let out = self.runner.run(&argv, None).await?;
        let tag = format!("comment '{}'", self.comment());
        let mut seen = HashSet::new();
        let mut ids = Vec::new();
        for line in out.stdout.lines().filter(|l| l.trim_end().ends_with(&tag)) {
            let mut words = line.split_whitespace();
            let from = words
                .by_ref()
                .skip_while(|w| *w != "from")
                .nth(1)
                .ok_or_else(|| FirewallError::Parse {
                    command: argv.join(" "),
                    message: format!("no address in {line:?}"),
                })?;
            let id = HostId::parse(from);
            if !id.is_ip() {
                return Err(FirewallError::Parse {
                    command: argv.join(" "),
                    message: format!("{from:?} in {line:?} is not an address"),
                });
            }
            if seen.insert(id.clone()) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// The ids blocked by this jail's rules (ufw rules have no timeout: always `None`).
    pub async fn elements(&self) -> Result<Vec<Ban>, FirewallError> {
        Ok(self
            .listed()
            .await?
            .into_iter()
            .map(|id| (id, None))
            .collect())
    }

    /// Adds the missing ids of `desired` and deletes this jail's rules for other ids.
    pub async fn reconcile(&self, desired: &[Ban]) -> Result<ReconcileReport, FirewallError> {
        let (items, expired) = prepare(self.jail(), desired)?;
        let have: HashSet<HostId> = self.listed().await?.into_iter().collect();
        let want: HashSet<HostId> = items.iter().map(|(t, _)| t.id()).collect();
        let mut report = ReconcileReport {
            expired,
            ..ReconcileReport::default()
        };
        let extra: Vec<HostId> = have
            .iter()
            .filter(|id| !want.contains(id))
            .cloned()
            .collect();
        self.unban(&extra).await?;
        report.removed = extra.len();
        for (t, _) in &items {
            if have.contains(&t.id()) {
                report.unchanged += 1;
            } else {
                self.each_rule(&["prepend"], t, true).await?;
                report.added += 1;
            }
        }
        Ok(report)
    }
}

/// A port item as ufw takes it in a list: a number, `a:b`, or a service name resolved for `proto`.
fn resolve(services: &str, port: &str, proto: Protocol) -> Option<String> {
    if port.bytes().all(|b| b.is_ascii_digit()) {
        return Some(port.to_string());
    }
    if let Some((a, b)) = port.split_once('-')
        && a.bytes().all(|c| c.is_ascii_digit())
        && b.bytes().all(|c| c.is_ascii_digit())
    {
        return Some(format!("{a}:{b}"));
    }
    for line in services.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let (Some(name), Some(pp)) = (words.next(), words.next()) else {
            continue;
        };
        let Some((num, p)) = pp.split_once('/') else {
            continue;
        };
        if p == proto.name() && (name == port || words.any(|alias| alias == port)) {
            return num.parse::<u16>().ok().map(|n| n.to_string());
        }
    }
    None
}

/// One `ufw status` in flight: its runner's prefix and the answer it will give.
type StatusCheck = (
    Vec<String>,
    Arc<tokio::sync::OnceCell<Result<String, FirewallError>>>,
);

/// The `ufw status` checks in flight. The daemon starts every jail at once, and with the
/// guide's configuration each of its 12 jails checks that ufw is active: they share one run
/// (one process instead of 12 at start-up). A start that comes after a check finished runs its
/// own, so a later `start` or `reload` sees ufw's state at that time.
static STATUS_CHECKS: std::sync::Mutex<Vec<StatusCheck>> = std::sync::Mutex::new(Vec::new());

/// What `ufw status` prints, from the check in flight under the same prefix or a new one.
async fn shared_status(runner: &Runner) -> Result<String, FirewallError> {
    let cell = {
        let mut checks = STATUS_CHECKS.lock().unwrap_or_else(|e| e.into_inner());
        match checks.iter().find(|(k, _)| k.as_slice() == runner.prefix()) {
            Some((_, c)) => c.clone(),
            None => {
                let c = Arc::new(tokio::sync::OnceCell::new());
                checks.push((runner.prefix().to_vec(), c.clone()));
                c
            }
        }
    };
    let answer = cell
        .get_or_init(|| async {
            runner
                .run(&["ufw", "status"], None)
                .await
                .map(|out| out.stdout)
        })
        .await
        .clone();
    // Finished: whoever comes next runs a new check (the waiters hold the answer already).
    STATUS_CHECKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(_, c)| !Arc::ptr_eq(c, &cell));
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICES_SAMPLE: &str = "ssh\t\t22/tcp\t\t\t# SSH\n\
        http\t\t80/tcp\t\twww\t# HTTP\n\
        https\t\t443/tcp\n\
        https\t\t443/udp\n\
        domain\t\t53/udp\n";

    #[test]
    fn resolves_ports_for_ufw() {
        assert_eq!(
            resolve(SERVICES_SAMPLE, "http", Protocol::Tcp).as_deref(),
            Some("80")
        );
        assert_eq!(
            resolve(SERVICES_SAMPLE, "www", Protocol::Tcp).as_deref(),
            Some("80")
        );
        assert_eq!(
            resolve(SERVICES_SAMPLE, "https", Protocol::Udp).as_deref(),
            Some("443")
        );
        assert_eq!(resolve(SERVICES_SAMPLE, "http", Protocol::Udp), None);
        assert_eq!(
            resolve(SERVICES_SAMPLE, "8000-8010", Protocol::Tcp).as_deref(),
            Some("8000:8010")
        );
        assert_eq!(
            resolve(SERVICES_SAMPLE, "8080", Protocol::Tcp).as_deref(),
            Some("8080")
        );
    }

    #[test]
    fn clauses() {
        let b = UfwBackend::new(
            JailRule::new("j", "allports", "", "tcp,udp", "drop").unwrap(),
            Runner::new(),
        );
        assert_eq!(
            b.clauses().unwrap(),
            vec![
                vec!["proto".to_string(), "tcp".into()],
                vec!["proto".into(), "udp".into()]
            ]
        );
        assert_eq!(b.action(), "deny");
        let b = UfwBackend::new(
            JailRule::new("j", "allports", "", "all", "").unwrap(),
            Runner::new(),
        );
        assert_eq!(b.clauses().unwrap(), vec![Vec::<String>::new()]);
        assert_eq!(b.action(), "reject");
    }
}
