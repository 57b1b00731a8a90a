//! The nftables backend (`ferroban-nftables`).
//!
//! ```text
//! table inet ferroban {                       # shared by all jails, deleted by the last stop()
//!   set addr4-<jail> { type ipv4_addr; flags timeout; }            # single addresses
//!   set net4-<jail>  { type ipv4_addr; flags interval,timeout; }   # prefixes
//!   set addr6-<jail> { type ipv6_addr; flags timeout; }
//!   set net6-<jail>  { type ipv6_addr; flags interval,timeout; }
//!   chain input-<jail> {
//!     type filter hook input priority -1; policy accept;
//!     tcp dport { http, https } ip saddr @addr4-<jail> reject      # one rule per protocol
//!     ...                                                          # and per set
//!   }
//! }
//! ```
//! Each jail has its own base chain, so `start()` can rewrite its rules (`flush chain` + `add
//! rule`) and `stop()` can delete them (`delete chain`) in one transaction without looking up rule
//! handles, and never touches another jail's objects. Priority -1 (`filter - 1`) is fail2ban's
//! `nftables` action's default: the ban is decided before a `filter`-priority chain of the
//! administrator's own sees the packet (a verdict of `drop`/`reject` is final in any base chain;
//! an `accept` elsewhere does not override it).
//!
//! Addresses go into hash sets and prefixes into interval sets (100,000 addresses load about
//! three times faster into a hash set). Each element carries its remaining ban time as
//! `timeout`, so the kernel removes it at the end of the ban even when the daemon is not running;
//! permanent bans have no timeout.
//!
//! Every call that changes the kernel is one `nft -f -` transaction: all or nothing.
//! - `ban` must also set the new time of an address already in the set (a re-ban, a longer ban).
//!   Recent kernels (seen on 6.18) do that on a plain `add element` of an existing element, older
//!   ones keep the old timeout. `start` probes which kind this kernel is (on a scratch set
//!   `probe-<jail>`, deleted at once); on an old kernel, or before a probe, `ban` writes each
//!   address as `add` + `delete` + `add ... timeout` in the one transaction (the first `add` makes
//!   the `delete` safe when the element is absent), which costs about twice as much.
//! - An interval set cannot hold overlapping prefixes (`192.0.2.0/24` inside `192.0.0.0/16`):
//!   the wider prefix is kept with the longer of the two timeouts and the pair is reported in
//!   [`BanReport::merged`]. Unbanning the wider prefix does not bring the narrower one back; the
//!   daemon's [`NftBackend::reconcile`] with its list of bans does.
//! - `reconcile` lists the jail's four sets and writes the difference (missing elements with their
//!   remaining time, extra ones deleted, wrong timeouts rewritten) as one transaction.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use serde_json::Value;

use super::TOLERANCE;
use super::rule::{BlockType, PortMatch, check_jail_name};
use super::{
    Ban, BanReport, FirewallError, JailRule, Plan, ReconcileReport, Runner, Target, millis,
    plan_exact, prepare, targets,
};
use crate::ip::HostId;

/// Elements per `add element`/`delete element` command in a script (keeps nft's error messages,
/// which quote the failing command, readable).
const CHUNK: usize = 1000;

/// Serialises start/stop: `stop` deletes the shared table when it is empty, which must not race
/// with another jail's `start` adding to it.
static TABLE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Options of the nftables backend.
#[derive(Debug, Clone)]
pub struct NftOptions {
    /// The `inet` table holding every jail's sets and chains.
    pub table: String,
    /// Priority of each jail's input chain.
    pub priority: i32,
    /// Probe at `start` whether the kernel sets the timeout of an element added again (then
    /// `ban` writes a plain `add`); `false` always uses `add` + `delete` + `add`.
    pub probe_readd: bool,
}

impl Default for NftOptions {
    fn default() -> Self {
        NftOptions {
            table: "ferroban".to_string(),
            priority: -1,
            probe_readd: true,
        }
    }
}

/// A jail's nftables sets and chain.
#[derive(Debug, Clone)]
pub struct NftBackend {
    rule: JailRule,
    opts: NftOptions,
    runner: Runner,
    /// Whether re-adding an existing element sets its timeout (found by `start`'s probe).
    readd_sets_timeout: std::sync::Arc<std::sync::OnceLock<bool>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SetKind {
    Addr4,
    Net4,
    Addr6,
    Net6,
}

const SETS: [SetKind; 4] = [SetKind::Addr4, SetKind::Net4, SetKind::Addr6, SetKind::Net6];

impl SetKind {
    fn of(t: &Target) -> SetKind {
        match (t.is_v4(), t.prefix.is_some()) {
            (true, false) => SetKind::Addr4,
            (true, true) => SetKind::Net4,
            (false, false) => SetKind::Addr6,
            (false, true) => SetKind::Net6,
        }
    }

    fn stem(self) -> &'static str {
        match self {
            SetKind::Addr4 => "addr4",
            SetKind::Net4 => "net4",
            SetKind::Addr6 => "addr6",
            SetKind::Net6 => "net6",
        }
    }

    fn decl(self) -> &'static str {
        match self {
            SetKind::Addr4 => "type ipv4_addr; flags timeout;",
            SetKind::Net4 => "type ipv4_addr; flags interval, timeout;",
            SetKind::Addr6 => "type ipv6_addr; flags timeout;",
            SetKind::Net6 => "type ipv6_addr; flags interval, timeout;",
        }
    }

    fn saddr(self) -> &'static str {
        match self {
            SetKind::Addr4 | SetKind::Net4 => "ip saddr",
            SetKind::Addr6 | SetKind::Net6 => "ip6 saddr",
        }
    }

    fn is_net(self) -> bool {
        matches!(self, SetKind::Net4 | SetKind::Net6)
    }
}

impl NftBackend {
    /// The backend for `rule`'s jail. Nothing runs until `start`.
    pub fn new(rule: JailRule, opts: NftOptions, runner: Runner) -> NftBackend {
        NftBackend {
            rule,
            opts,
            runner,
            readd_sets_timeout: Default::default(),
        }
    }

    /// The command runner (its invocation log).
    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    fn jail(&self) -> &str {
        self.rule.jail()
    }

    fn check_table(&self) -> Result<(), FirewallError> {
        let t = &self.opts.table;
        let ok = !t.is_empty()
            && t.len() <= 64
            && t.as_bytes()[0].is_ascii_alphabetic()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(())
        } else {
            Err(FirewallError::Config(format!(
                "nftables table name {t:?}: use a letter, then letters, digits, '-' or '_' (64 at most)"
            )))
        }
    }

    /// The name of one of the jail's sets (`addr4-<jail>`, `net4-`, `addr6-`, `net6-`).
    fn set_name(&self, kind: SetKind) -> String {
        format!("{}-{}", kind.stem(), self.jail())
    }

    /// The jail's chain (`input-<jail>`).
    pub fn chain_name(&self) -> String {
        format!("input-{}", self.jail())
    }

    /// The names of the jail's four sets: IPv4 addresses, IPv4 prefixes, IPv6 addresses, IPv6
    /// prefixes.
    pub fn set_names(&self) -> [String; 4] {
        SETS.map(|k| self.set_name(k))
    }

    fn chain_decl(&self) -> String {
        format!(
            "{{ type filter hook input priority {}; policy accept; }}",
            self.opts.priority
        )
    }

    /// The script `start` runs: idempotent (`add` of existing objects is a no-op; the chain is
    /// flushed before its rules are added).
    pub(crate) fn start_script(&self) -> Result<String, FirewallError> {
        check_jail_name(self.jail())?;
        self.check_table()?;
        let t = &self.opts.table;
        let chain = self.chain_name();
        let mut s = format!("add table inet {t}\n");
        for k in SETS {
            let _ = writeln!(
                s,
                "add set inet {t} {} {{ {} }}",
                self.set_name(k),
                k.decl()
            );
        }
        let _ = writeln!(s, "add chain inet {t} {chain} {}", self.chain_decl());
        let _ = writeln!(s, "flush chain inet {t} {chain}");
        let verdict = match self.rule.blocktype() {
            BlockType::Reject => "reject",
            BlockType::Drop => "drop",
        };
        let matches: Vec<String> = match self.rule.ports() {
            PortMatch::Multiport { ports, protocols } => protocols
                .iter()
                .map(|p| format!("{} dport {{ {} }} ", p.name(), ports.join(", ")))
                .collect(),
            PortMatch::AllPorts { protocols } if protocols.is_empty() => vec![String::new()],
            PortMatch::AllPorts { protocols } => vec![format!(
                "meta l4proto {{ {} }} ",
                protocols
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
        };
        for m in &matches {
            for k in SETS {
                let _ = writeln!(
                    s,
                    "add rule inet {t} {chain} {m}{} @{} {verdict}",
                    k.saddr(),
                    self.set_name(k)
                );
            }
        }
        Ok(s)
    }

    /// The script `stop` runs: creates then deletes the chain and the sets, so it succeeds whether
    /// they exist or not, and touches nothing else.
    pub(crate) fn stop_script(&self) -> Result<String, FirewallError> {
        check_jail_name(self.jail())?;
        self.check_table()?;
        let t = &self.opts.table;
        let chain = self.chain_name();
        let mut s = format!("add table inet {t}\n");
        let _ = writeln!(s, "add chain inet {t} {chain} {}", self.chain_decl());
        let _ = writeln!(s, "delete chain inet {t} {chain}");
        let probe = (self.probe_set(), SetKind::Addr4);
        for (name, k) in SETS
            .map(|k| (self.set_name(k), k))
            .into_iter()
            .chain([probe])
        {
            let _ = writeln!(s, "add set inet {t} {name} {{ {} }}", k.decl());
            let _ = writeln!(s, "delete set inet {t} {name}");
        }
        Ok(s)
    }

    async fn apply(&self, script: &str) -> Result<(), FirewallError> {
        self.runner.run(&["nft", "-f", "-"], Some(script)).await?;
        Ok(())
    }

    /// Creates the table, the jail's sets, its chain and its rules. Safe to repeat: a second
    /// start (or a start after a crash) leaves one copy of each rule and keeps the sets' elements.
    pub async fn start(&self) -> Result<(), FirewallError> {
        let script = self.start_script()?;
        let _guard = TABLE_LOCK.lock().await;
        self.apply(&script).await?;
        if self.opts.probe_readd && self.readd_sets_timeout.get().is_none() {
            let found = self.probe_readd().await?;
            let _ = self.readd_sets_timeout.set(found);
        }
        Ok(())
    }

    /// What `start`'s probe found: `Some(true)` when a plain `add element` sets the timeout of
    /// an existing element (then `ban` writes one `add` per element), `None` before a probe.
    pub fn readd_sets_timeout(&self) -> Option<bool> {
        self.readd_sets_timeout.get().copied()
    }

    fn probe_set(&self) -> String {
        format!("probe-{}", self.jail())
    }

    /// Does an `add element` of an existing element set its timeout (also to none)? Tried on a
    /// scratch set that is deleted again (also when the probe fails).
    async fn probe_readd(&self) -> Result<bool, FirewallError> {
        let t = &self.opts.table;
        let set = self.probe_set();
        let script = format!(
            "add set inet {t} {set} {{ {} }}\n\
             flush set inet {t} {set}\n\
             add element inet {t} {set} {{ 192.0.2.1 timeout 3600s, 192.0.2.2 timeout 3600s }}\n\
             add element inet {t} {set} {{ 192.0.2.1 timeout 7200s, 192.0.2.2 }}\n",
            SetKind::Addr4.decl()
        );
        let probed = async {
            self.apply(&script).await?;
            let argv = ["nft", "-j", "list", "set", "inet", t, &set];
            let out = self.runner.run(&argv, None).await?;
            let json = parse_json(&argv, &out.stdout)?;
            let elems = parse_set_elements(&json).map_err(|message| FirewallError::Parse {
                command: argv.join(" "),
                message,
            })?;
            let of = |a: &str| {
                elems
                    .iter()
                    .find(|(e, _)| e.addr.to_string() == a)
                    .map(|(_, r)| *r)
            };
            Ok::<bool, FirewallError>(
                matches!(of("192.0.2.1"), Some(Some(r)) if r > 3600.0 + TOLERANCE)
                    && of("192.0.2.2") == Some(None),
            )
        }
        .await;
        let cleanup = self
            .runner
            .run(&["nft", "delete", "set", "inet", t, &set], None)
            .await;
        let found = probed?;
        cleanup?;
        Ok(found)
    }

    /// Removes the jail's chain (with its rules) and sets, then the table if nothing is left in
    /// it. Other jails' objects and other tables are not touched.
    pub async fn stop(&self) -> Result<(), FirewallError> {
        let script = self.stop_script()?;
        let _guard = TABLE_LOCK.lock().await;
        self.apply(&script).await?;
        let t = &self.opts.table;
        // -t (terse): without set elements, which may be many.
        let argv = ["nft", "-t", "-j", "list", "table", "inet", t];
        let out = self.runner.run(&argv, None).await?;
        let json = parse_json(&argv, &out.stdout)?;
        let left = json_items(&json)
            .filter(|i| i.get("set").is_some() || i.get("chain").is_some())
            .count();
        if left == 0 {
            self.runner
                .run(&["nft", "delete", "table", "inet", t], None)
                .await?;
        }
        Ok(())
    }

    /// Bans `bans` (addresses and prefixes, IPv4 and IPv6) in one transaction, each with its
    /// remaining time. Raw ids are refused (nothing is written); expired ones are skipped.
    pub async fn ban(&self, bans: &[Ban]) -> Result<BanReport, FirewallError> {
        let (items, expired) = prepare(self.jail(), bans)?;
        let mut report = BanReport {
            expired,
            ..BanReport::default()
        };
        let mut by_set: HashMap<SetKind, Vec<(Target, Option<f64>)>> = HashMap::new();
        for (t, r) in items {
            by_set.entry(SetKind::of(&t)).or_default().push((t, r));
        }
        let mut script = String::new();
        for kind in SETS {
            let Some(list) = by_set.get(&kind) else {
                continue;
            };
            let name = self.set_name(kind);
            if kind.is_net() {
                let kernel = self.list_set(kind).await?;
                let plan = plan_prefixes(&kernel, list, true);
                self.write_plan(&mut script, &name, &plan);
                report.written += plan.adds.len();
                report.merged.extend(plan.merged);
            } else {
                if self.readd_sets_timeout.get() != Some(&true) {
                    let texts = || list.iter().map(|(t, _)| t.text());
                    self.elements_cmd(&mut script, "add", &name, texts());
                    self.elements_cmd(&mut script, "delete", &name, texts());
                }
                self.elements_cmd(&mut script, "add", &name, list.iter().map(element));
                report.written += list.len();
            }
        }
        if !script.is_empty() {
            self.apply(&script).await?;
        }
        Ok(report)
    }

    /// Removes `ids` from the jail's sets in one transaction; ids that are not there are ignored.
    pub async fn unban(&self, ids: &[HostId]) -> Result<(), FirewallError> {
        let list = targets(self.jail(), ids)?;
        let mut script = String::new();
        for kind in SETS {
            let mine: Vec<&Target> = list.iter().filter(|t| SetKind::of(t) == kind).collect();
            if mine.is_empty() {
                continue;
            }
            let name = self.set_name(kind);
            if kind.is_net() {
                // Adding a prefix that overlaps another would fail the transaction: delete only
                // what the set really holds.
                let present: HashSet<Target> = self
                    .list_set(kind)
                    .await?
                    .into_iter()
                    .map(|(t, _)| t)
                    .collect();
                let gone = mine.into_iter().filter(|t| present.contains(t));
                self.elements_cmd(&mut script, "delete", &name, gone.map(Target::text));
            } else {
                self.elements_cmd(&mut script, "add", &name, mine.iter().map(|t| t.text()));
                self.elements_cmd(&mut script, "delete", &name, mine.iter().map(|t| t.text()));
            }
        }
        if !script.is_empty() {
            self.apply(&script).await?;
        }
        Ok(())
    }

    /// What the kernel holds for this jail: every element of its four sets with its remaining
    /// time in whole seconds (`None`: no timeout).
    pub async fn elements(&self) -> Result<Vec<Ban>, FirewallError> {
        let mut out = Vec::new();
        for kind in SETS {
            out.extend(
                self.list_set(kind)
                    .await?
                    .into_iter()
                    .map(|(t, r)| (t.id(), r)),
            );
        }
        Ok(out)
    }

    /// Makes the kernel hold exactly `desired` (after dropping expired bans and merging
    /// overlapping prefixes), in one transaction: missing elements are added with their remaining
    /// time, extra ones deleted, and elements whose timeout is off by more than 5 s rewritten.
    pub async fn reconcile(&self, desired: &[Ban]) -> Result<ReconcileReport, FirewallError> {
        let (items, expired) = prepare(self.jail(), desired)?;
        let mut report = ReconcileReport {
            expired,
            ..ReconcileReport::default()
        };
        let mut by_set: HashMap<SetKind, Vec<(Target, Option<f64>)>> = HashMap::new();
        for (t, r) in items {
            by_set.entry(SetKind::of(&t)).or_default().push((t, r));
        }
        let mut script = String::new();
        for kind in SETS {
            let kernel = self.list_set(kind).await?;
            let want = by_set.remove(&kind).unwrap_or_default();
            let name = self.set_name(kind);
            let plan = if kind.is_net() {
                plan_prefixes(&kernel, &want, false)
            } else {
                plan_exact(&kernel, &want)
            };
            report.added += plan.adds.len() - plan.updated;
            report.updated += plan.updated;
            report.removed += plan.deletes.len() - plan.updated;
            report.unchanged += plan.unchanged;
            report.merged.extend(plan.merged.iter().cloned());
            self.write_plan(&mut script, &name, &plan);
        }
        if !script.is_empty() {
            self.apply(&script).await?;
        }
        Ok(report)
    }

    fn write_plan(&self, script: &mut String, set: &str, plan: &Plan) {
        self.elements_cmd(script, "delete", set, plan.deletes.iter().map(Target::text));
        self.elements_cmd(script, "add", set, plan.adds.iter().map(element));
    }

    /// Appends `<verb> element inet T SET { a, b, ... }` commands, `CHUNK` elements each.
    fn elements_cmd(
        &self,
        script: &mut String,
        verb: &str,
        set: &str,
        items: impl Iterator<Item = String>,
    ) {
        let t = &self.opts.table;
        let mut n = 0;
        for item in items {
            if n == 0 {
                let _ = write!(script, "{verb} element inet {t} {set} {{ ");
            } else {
                script.push_str(", ");
            }
            script.push_str(&item);
            n += 1;
            if n == CHUNK {
                script.push_str(" }\n");
                n = 0;
            }
        }
        if n > 0 {
            script.push_str(" }\n");
        }
    }

    async fn list_set(&self, kind: SetKind) -> Result<Vec<(Target, Option<f64>)>, FirewallError> {
        let name = self.set_name(kind);
        let argv = ["nft", "-j", "list", "set", "inet", &self.opts.table, &name];
        let out = self.runner.run(&argv, None).await?;
        let json = parse_json(&argv, &out.stdout)?;
        parse_set_elements(&json).map_err(|message| FirewallError::Parse {
            command: argv.join(" "),
            message,
        })
    }
}

/// `addr` or `addr/len`, with ` timeout Nms` unless permanent.
fn element((t, r): &(Target, Option<f64>)) -> String {
    match r {
        Some(secs) => format!("{} timeout {}ms", t.text(), millis(*secs)),
        None => t.text(),
    }
}

fn parse_json(argv: &[&str], stdout: &str) -> Result<Value, FirewallError> {
    serde_json::from_str(stdout).map_err(|e| FirewallError::Parse {
        command: argv.join(" "),
        message: format!("not JSON: {e}"),
    })
}

fn json_items(json: &Value) -> impl Iterator<Item = &Value> {
    json.get("nftables")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The elements of the one set in an `nft -j list set` document.
fn parse_set_elements(json: &Value) -> Result<Vec<(Target, Option<f64>)>, String> {
    let set = json_items(json)
        .find_map(|i| i.get("set"))
        .ok_or("no set in the listing")?;
    let Some(elems) = set.get("elem") else {
        return Ok(Vec::new());
    };
    let elems = elems.as_array().ok_or("\"elem\" is not a list")?;
    let mut out = Vec::with_capacity(elems.len());
    for e in elems {
        let (val, remaining) = match e.get("elem") {
            Some(inner) => {
                let secs = inner
                    .get("expires")
                    .or_else(|| inner.get("timeout"))
                    .and_then(Value::as_f64);
                (inner.get("val").ok_or("element without \"val\"")?, secs)
            }
            None => (e, None),
        };
        out.push((parse_value(val)?, remaining));
    }
    Ok(out)
}

fn parse_value(val: &Value) -> Result<Target, String> {
    if let Some(s) = val.as_str() {
        let addr: IpAddr = s
            .parse()
            .map_err(|_| format!("element {s:?} is not an address"))?;
        return Ok(Target { addr, prefix: None });
    }
    if let Some(p) = val.get("prefix") {
        let addr: IpAddr = p
            .get("addr")
            .and_then(Value::as_str)
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("prefix element {p} has no address"))?;
        let len = p
            .get("len")
            .and_then(Value::as_u64)
            .and_then(|l| u8::try_from(l).ok())
            .ok_or_else(|| format!("prefix element {p} has no length"))?;
        return Ok(Target {
            addr,
            prefix: Some(len),
        });
    }
    Err(format!(
        "element {val} is neither an address nor a prefix (ferroban writes no ranges: \
         delete it by hand)"
    ))
}

/// Plans an interval set: the prefixes that should be there are the widest of `want` (and, with
/// `keep_kernel`, of what the kernel holds, `want` replacing the kernel's time of the same
/// prefix), each with the longest time of the prefixes it covers.
fn plan_prefixes(
    kernel: &[(Target, Option<f64>)],
    want: &[(Target, Option<f64>)],
    keep_kernel: bool,
) -> Plan {
    let mut all: HashMap<Target, Option<f64>> = HashMap::new();
    if keep_kernel {
        all.extend(kernel.iter().copied());
    }
    all.extend(want.iter().copied());
    let mut order: Vec<Target> = all.keys().copied().collect();
    order.sort_by_key(|t| (t.prefix, t.addr));
    // Widest first: a prefix is kept unless a kept one covers it.
    let mut kept: HashMap<Target, Option<f64>> = HashMap::new();
    let mut lengths: Vec<u8> = Vec::new();
    let mut merged = Vec::new();
    for t in order {
        let len = t.prefix.unwrap_or(128);
        let cover = lengths.iter().filter(|&&l| l < len).find_map(|&l| {
            let wider = Target {
                addr: t.id_masked(l),
                prefix: Some(l),
            };
            kept.contains_key(&wider).then_some(wider)
        });
        let r = all[&t];
        match cover {
            Some(w) => {
                let slot = kept.get_mut(&w).expect("kept");
                *slot = longest(*slot, r);
                merged.push((t.id(), w.id()));
            }
            None => {
                kept.insert(t, r);
                if !lengths.contains(&len) {
                    lengths.push(len);
                }
            }
        }
    }
    let mut kept: Vec<(Target, Option<f64>)> = kept.into_iter().collect();
    kept.sort_by_key(|(t, _)| (t.prefix, t.addr));
    let mut plan = plan_exact(kernel, &kept);
    // Only pairs that involve what was asked for are news to the caller.
    let asked: HashSet<HostId> = want.iter().map(|(t, _)| t.id()).collect();
    merged.retain(|(n, w)| asked.contains(n) || asked.contains(w));
    plan.merged = merged;
    plan
}

/// The longer of two remaining times (`None`, permanent, is the longest).
fn longest(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        _ => None,
    }
}

impl Target {
    /// The address masked to `len` bits.
    fn id_masked(&self, len: u8) -> IpAddr {
        match HostId::with_prefix(&self.addr.to_string(), crate::ip::Family::Any, Some(len)) {
            HostId::Net(a, _) | HostId::Addr(a) => a,
            HostId::Raw(_) => self.addr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(kind: &str, port: &str, proto: &str, block: &str) -> NftBackend {
        NftBackend::new(
            JailRule::new("nginx-404", kind, port, proto, block).unwrap(),
            NftOptions::default(),
            Runner::new(),
        )
    }

    fn t(s: &str) -> Target {
        Target::from_id("j", &HostId::parse(s)).unwrap()
    }

    #[test]
    fn start_script_multiport() {
        let s = backend("multiport", "http,https,8000:8010", "tcp,udp", "reject")
            .start_script()
            .unwrap();
        let expected = "add table inet ferroban\n\
add set inet ferroban addr4-nginx-404 { type ipv4_addr; flags timeout; }\n\
add set inet ferroban net4-nginx-404 { type ipv4_addr; flags interval, timeout; }\n\
add set inet ferroban addr6-nginx-404 { type ipv6_addr; flags timeout; }\n\
add set inet ferroban net6-nginx-404 { type ipv6_addr; flags interval, timeout; }\n\
add chain inet ferroban input-nginx-404 { type filter hook input priority -1; policy accept; }\n\
flush chain inet ferroban input-nginx-404\n\
add rule inet ferroban input-nginx-404 tcp dport { http, https, 8000-8010 } ip saddr @addr4-nginx-404 reject\n\
add rule inet ferroban input-nginx-404 tcp dport { http, https, 8000-8010 } ip saddr @net4-nginx-404 reject\n\
add rule inet ferroban input-nginx-404 tcp dport { http, https, 8000-8010 } ip6 saddr @addr6-nginx-404 reject\n\
add rule inet ferroban input-nginx-404 tcp dport { http, https, 8000-8010 } ip6 saddr @net6-nginx-404 reject\n\
add rule inet ferroban input-nginx-404 udp dport { http, https, 8000-8010 } ip saddr @addr4-nginx-404 reject\n\
add rule inet ferroban input-nginx-404 udp dport { http, https, 8000-8010 } ip saddr @net4-nginx-404 reject\n\
add rule inet ferroban input-nginx-404 udp dport { http, https, 8000-8010 } ip6 saddr @addr6-nginx-404 reject\n\
add rule inet ferroban input-nginx-404 udp dport { http, https, 8000-8010 } ip6 saddr @net6-nginx-404 reject\n";
        assert_eq!(s, expected);
    }

    #[test]
    fn start_script_allports() {
        let s = backend("allports", "", "all", "drop")
            .start_script()
            .unwrap();
        assert!(
            s.contains("add rule inet ferroban input-nginx-404 ip saddr @addr4-nginx-404 drop\n")
        );
        let s = backend("allports", "", "tcp", "drop")
            .start_script()
            .unwrap();
        assert!(s.contains(
            "add rule inet ferroban input-nginx-404 meta l4proto { tcp } ip6 saddr @net6-nginx-404 drop\n"
        ));
    }

    #[test]
    fn bad_table_name_is_refused() {
        let b = NftBackend::new(
            JailRule::new("j", "", "80", "tcp", "").unwrap(),
            NftOptions {
                table: "x; flush ruleset".into(),
                ..NftOptions::default()
            },
            Runner::new(),
        );
        assert!(b.start_script().is_err());
        assert!(b.stop_script().is_err());
    }

    #[test]
    fn elements_are_chunked_with_millisecond_timeouts() {
        let b = backend("", "80", "tcp", "");
        let mut s = String::new();
        let items: Vec<(Target, Option<f64>)> = (0..CHUNK + 1)
            .map(|i| {
                (
                    t(&format!("10.0.{}.{}", i / 256, i % 256)),
                    if i == 0 { Some(1.5) } else { None },
                )
            })
            .collect();
        b.elements_cmd(&mut s, "add", "addr4-j", items.iter().map(element));
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with(
            "add element inet ferroban addr4-j { 10.0.0.0 timeout 1500ms, 10.0.0.1, "
        ));
        assert_eq!(lines[1], "add element inet ferroban addr4-j { 10.0.3.232 }");
    }

    #[test]
    fn parses_listings() {
        let json: Value = serde_json::from_str(
            r#"{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"set": {"family": "inet", "name": "n6", "table": "t", "type": "ipv6_addr", "handle": 1, "flags": ["interval", "timeout"], "elem": [{"elem": {"val": {"prefix": {"addr": "2001:db8::", "len": 64}}, "timeout": 100, "expires": 99}}, {"prefix": {"addr": "2001:db9::", "len": 48}}, "::1", {"elem": {"val": "2001:db8::7", "timeout": 100, "expires": 42}}]}}]}"#,
        )
        .unwrap();
        let got = parse_set_elements(&json).unwrap();
        assert_eq!(
            got,
            vec![
                (t("2001:db8::/64"), Some(99.0)),
                (t("2001:db9::/48"), None),
                (t("::1"), None),
                (t("2001:db8::7"), Some(42.0)),
            ]
        );
        let empty: Value =
            serde_json::from_str(r#"{"nftables": [{"set": {"name": "a4"}}]}"#).unwrap();
        assert_eq!(parse_set_elements(&empty).unwrap(), vec![]);
        let range: Value = serde_json::from_str(
            r#"{"nftables": [{"set": {"name": "a4", "elem": [{"range": ["10.0.0.1", "10.0.0.5"]}]}}]}"#,
        )
        .unwrap();
        assert!(parse_set_elements(&range).unwrap_err().contains("ranges"));
    }

    #[test]
    fn exact_plan_adds_deletes_and_rewrites() {
        let kernel = vec![
            (t("192.0.2.1"), Some(100.0)),
            (t("192.0.2.2"), None),
            (t("192.0.2.3"), Some(50.0)),
        ];
        let want = vec![
            (t("192.0.2.1"), Some(101.0)), // within tolerance
            (t("192.0.2.3"), None),        // now permanent
            (t("192.0.2.4"), Some(10.0)),  // missing
        ];
        let p = plan_exact(&kernel, &want);
        assert_eq!(p.deletes, vec![t("192.0.2.3"), t("192.0.2.2")]);
        assert_eq!(
            p.adds,
            vec![(t("192.0.2.3"), None), (t("192.0.2.4"), Some(10.0))]
        );
        assert_eq!((p.updated, p.unchanged), (1, 1));
    }

    #[test]
    fn prefix_plan_keeps_the_widest_with_the_longest_time() {
        // ban(): a /24 inside a banned /16 with a longer time stretches the /16.
        let kernel = vec![(t("192.0.0.0/16"), Some(100.0)), (t("10.0.0.0/8"), None)];
        let p = plan_prefixes(&kernel, &[(t("192.0.2.0/24"), Some(500.0))], true);
        assert_eq!(p.deletes, vec![t("192.0.0.0/16")]);
        assert_eq!(p.adds, vec![(t("192.0.0.0/16"), Some(500.0))]);
        assert_eq!(
            p.merged,
            vec![(HostId::parse("192.0.2.0/24"), HostId::parse("192.0.0.0/16"))]
        );
        // ban(): a wider prefix replaces the narrower ones it covers.
        let kernel = vec![(t("192.0.2.0/24"), None), (t("192.0.3.0/24"), Some(5.0))];
        let p = plan_prefixes(&kernel, &[(t("192.0.0.0/16"), Some(60.0))], true);
        assert_eq!(p.deletes, vec![t("192.0.2.0/24"), t("192.0.3.0/24")]);
        assert_eq!(p.adds, vec![(t("192.0.0.0/16"), None)]);
        assert_eq!(p.merged.len(), 2);
        // reconcile(): what is not wanted goes; nested wanted prefixes merge.
        let kernel = vec![
            (t("198.51.100.0/24"), Some(9.0)),
            (t("2001:db8::/64"), None),
        ];
        let want = vec![(t("2001:db8::/64"), None), (t("2001:db8::/48"), Some(7.0))];
        let p = plan_prefixes(&kernel, &want, false);
        assert_eq!(p.deletes, vec![t("198.51.100.0/24"), t("2001:db8::/64")]);
        assert_eq!(p.adds, vec![(t("2001:db8::/48"), None)]);
    }
}
