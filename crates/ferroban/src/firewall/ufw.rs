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
use std::sync::atomic::{AtomicU64, Ordering};

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
        let stdout = shared_read(&self.runner, &["ufw", "status"]).await?;
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
            // Readings in flight from now on cannot be shared with later readers (before and
            // after: the change may land while one runs).
            RULE_CHANGES.fetch_add(1, Ordering::SeqCst);
            let r = self.runner.run(&argv, None).await;
            RULE_CHANGES.fetch_add(1, Ordering::SeqCst);
            r?;
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
        let stdout = shared_read(&self.runner, &argv).await?;
        let tag = format!("comment '{}'", self.comment());
        let mut seen = HashSet::new();
        let mut ids = Vec::new();
        for line in stdout.lines().filter(|l| l.trim_end().ends_with(&tag)) {
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

/// One reading of ufw in flight (`ufw status`, `ufw show added`): its runner's prefix, its
/// command, the [`RULE_CHANGES`] count when it started, and the answer it will give.
type Reading = (
    Vec<String>,
    Vec<String>,
    u64,
    Arc<tokio::sync::OnceCell<Result<String, FirewallError>>>,
);

/// The readings of ufw in flight. The daemon starts every jail at once, and with the guide's
/// configuration each of its 12 jails checks that ufw is active and lists the rules (to
/// reconcile its restored bans): they share one run of each (two processes instead of 24 at
/// start-up; ufw is a Python program, ~0.2 s of CPU each). A reader that comes after a run
/// finished runs its own, so a later `start` or `reload` sees ufw's state at that time.
static READINGS: std::sync::Mutex<Vec<Reading>> = std::sync::Mutex::new(Vec::new());

/// Rule changes begun or ended by this process (each `ufw prepend`/`delete` counts twice, once
/// before and once after). A reading in flight is shared only while the count is what it was
/// when the reading started: a reader then knows that no rule changed since the reading began,
/// its own changes included (a jail's worker changes its rules, then lists them).
static RULE_CHANGES: AtomicU64 = AtomicU64::new(0);

/// What `argv` (a command that changes nothing) prints: the answer of the same reading in
/// flight under the same prefix if no rule changed since it started, else of a new one.
async fn shared_read(runner: &Runner, argv: &[&str]) -> Result<String, FirewallError> {
    let cell = {
        let mut readings = READINGS.lock().unwrap_or_else(|e| e.into_inner());
        let changes = RULE_CHANGES.load(Ordering::SeqCst);
        let same = |(prefix, cmd, at, _): &&Reading| {
            prefix.as_slice() == runner.prefix() && *at == changes && cmd.iter().eq(argv.iter())
        };
        match readings.iter().find(same) {
            Some((.., c)) => c.clone(),
            None => {
                let c = Arc::new(tokio::sync::OnceCell::new());
                readings.push((
                    runner.prefix().to_vec(),
                    argv.iter().map(|a| a.to_string()).collect(),
                    changes,
                    c.clone(),
                ));
                c
            }
        }
    };
    let answer = cell
        .get_or_init(|| async { runner.run(argv, None).await.map(|out| out.stdout) })
        .await
        .clone();
    // Finished: whoever comes next runs a new reading (the waiters hold the answer already).
    READINGS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(.., c)| !Arc::ptr_eq(c, &cell));
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

    /// A ufw stand-in under a prefix of its own (`sh -c SCRIPT`): logs each command to
    /// `DIR/log`, answers `status`, keeps prepended rules in `DIR/rules` and lists them for
    /// `show added` (then pauses: readers overlap, and a reading holds the rules of its start).
    fn fake_ufw(dir: &std::path::Path) -> Runner {
        let d = dir.display();
        let script = format!(
            r#"shift; echo "$*" >> {d}/log
case "$1 $2" in
  "status ") echo "Status: active" ;;
  "show added") cat {d}/rules 2>/dev/null; sleep 0.3 ;;
  "prepend deny") sleep 0.1; eval last=\${{$#}}; echo "ufw prepend deny from $4 to any comment '$last'" >> {d}/rules ;;
esac"#
        );
        Runner::with_prefix(["sh", "-c", script.as_str(), "fake-ufw"])
    }

    fn commands(dir: &std::path::Path, what: &str) -> usize {
        std::fs::read_to_string(dir.join("log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == what)
            .count()
    }

    #[tokio::test]
    async fn jails_starting_together_share_one_reading_and_a_change_is_never_missed() {
        let dir = std::env::temp_dir().join(format!("ferroban-ufw-share-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let runner = fake_ufw(&dir);
        let jail = |name: &str| {
            UfwBackend::new(
                JailRule::new(name, "allports", "", "all", "drop").unwrap(),
                runner.clone(),
            )
        };
        let (a, b, c) = (jail("a"), jail("b"), jail("c"));
        // Three jails starting together: one `ufw status` and one `ufw show added`.
        let (ra, rb, rc) = tokio::join!(a.start(), b.start(), c.start());
        assert!(ra.is_ok() && rb.is_ok() && rc.is_ok());
        let (la, lb, lc) = tokio::join!(a.listed(), b.listed(), c.listed());
        assert_eq!(
            (la.unwrap(), lb.unwrap(), lc.unwrap()),
            (vec![], vec![], vec![])
        );
        assert_eq!(commands(&dir, "status"), 1);
        assert_eq!(commands(&dir, "show added"), 1);
        // A reading that began before a jail changed its rules is not the answer of that
        // jail's next reading: `a` bans while `b` reads, then lists its own rule.
        let id = HostId::parse("192.0.2.7");
        let (lb, la) = tokio::join!(b.listed(), async {
            a.ban(&[(id.clone(), None)]).await.unwrap();
            a.listed().await
        });
        assert_eq!(lb.unwrap(), vec![]);
        assert_eq!(la.unwrap(), vec![id.clone()]);
        assert_eq!(commands(&dir, "show added"), 3);
        // A later reading runs anew (nothing in flight).
        assert_eq!(a.listed().await.unwrap(), vec![id]);
        assert_eq!(commands(&dir, "show added"), 4);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
