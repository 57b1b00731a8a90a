//! Shared failure counting (gh-238; docs/fleet.md "Shared failure counting"): jails listed in
//! `share_failures` send their counted failures, batched, as signed `fail` events on core NATS
//! (`<prefix>.<node>.fail`: may be shed, never stored); every node sums, per (jail, id) within
//! the jail's findtime, `min(count_o, cap)` over the origins and bans when the sum reaches the
//! jail's threshold. `cap` is the receiver's `maxretry − 1`, so one origin alone (lying or not)
//! never bans through the fleet: its own `maxretry` does that locally.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::config::Trust;
use crate::event::{self, SigningKey};
use crate::merge::Reject;

/// A batch is sent when it holds this many (jail, id) entries ...
pub const BATCH_ENTRIES: usize = 64;
/// ... or this long after its first entry.
pub const BATCH_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
/// Pending (jail, id) entries kept while the engine is unreachable; more are shed.
pub const MAX_PENDING: usize = 4096;
/// (jail, id) keys counted at once; beyond, new keys are shed (bans never are).
pub const MAX_KEYS: usize = 100_000;

/// One id's failures in one batch (no log lines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailEntry {
    /// The jail.
    pub jail: String,
    /// The address.
    pub ip: String,
    /// Failures counted (weighted).
    pub n: u32,
    /// First and last failure (fleet ms).
    pub first: i64,
    /// Last failure (fleet ms).
    pub last: i64,
}

/// The signed body of a `fail` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailBatch {
    /// Schema version (1).
    pub v: u32,
    /// `"fail"`.
    pub kind: String,
    /// The sending node.
    pub origin: String,
    /// Its batch number (informational).
    pub seq: u64,
    /// When sent (fleet ms).
    pub sent_at: i64,
    /// The failures.
    pub entries: Vec<FailEntry>,
}

/// The subject of a node's failure batches.
pub fn subject(prefix: &str, origin: &str) -> String {
    format!("{prefix}.{origin}.fail")
}

/// Signs a batch: (body, base64 signature).
pub fn sign_batch(key: &SigningKey, batch: &FailBatch) -> (Vec<u8>, String) {
    let body = serde_json::to_vec(batch).expect("a batch always serialises");
    let sig = event::sign(key, &body);
    (body, sig)
}

/// Checks a received batch: signature, identity (key id = origin = subject's node), and the
/// origin's `jails=` policy (entries of other jails are dropped). Malformed entries are dropped.
pub fn verify_batch(
    trust: &Trust,
    prefix: &str,
    subject_: &str,
    kid: Option<&str>,
    sig: Option<&str>,
    body: &[u8],
) -> Result<FailBatch, Reject> {
    let kid = kid.ok_or(Reject::UnknownKey)?;
    let peer = trust.peers.get(kid).ok_or(Reject::UnknownKey)?;
    if !event::verify(&peer.keys, body, sig.ok_or(Reject::BadSignature)?) {
        return Err(Reject::BadSignature);
    }
    let mut b: FailBatch = serde_json::from_slice(body).map_err(|_| Reject::Malformed)?;
    if b.v != 1 || b.kind != "fail" {
        return Err(Reject::Malformed);
    }
    if b.origin != kid || subject(prefix, kid) != subject_ {
        return Err(Reject::OriginMismatch);
    }
    let jails = &peer.policy.jails;
    b.entries.retain(|e| {
        e.n > 0
            && e.first <= e.last
            && jails.as_ref().is_none_or(|j| j.contains(&e.jail))
            && event::parse_target(&e.ip).is_some_and(|n| !event::is_prefix(&n))
    });
    Ok(b)
}

/// A jail's limits for shared counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The window (ms): the jail's findtime.
    pub findtime_ms: i64,
    /// Ban when the capped sum reaches this (default: the jail's maxretry).
    pub threshold: u32,
    /// The most one origin contributes (default: maxretry − 1).
    pub cap: u32,
}

impl Limits {
    /// The defaults from a jail's `maxretry` and `findtime` (seconds).
    pub fn of(maxretry: u32, findtime_s: f64) -> Limits {
        Limits {
            findtime_ms: (findtime_s * 1000.0) as i64,
            threshold: maxretry.max(1),
            cap: maxretry.saturating_sub(1),
        }
    }
}

/// Failures of a (jail, id) per origin: (time, count) within the window.
type PerOrigin = BTreeMap<String, VecDeque<(i64, u32)>>;

/// The fleet-wide counts.
#[derive(Debug, Default)]
pub struct Counter {
    keys: HashMap<(String, String), PerOrigin>,
    /// Keys not counted because the table was full.
    pub shed: u64,
}

fn trim(q: &mut VecDeque<(i64, u32)>, from: i64) {
    while q.front().is_some_and(|(t, _)| *t < from) {
        q.pop_front();
    }
}

impl Counter {
    /// Counts `n` failures of `ip` in `jail` from `origin` at `at` (fleet ms). Returns the
    /// capped fleet-wide sum when it reaches the threshold (the key is then cleared: the
    /// caller bans), else `None`.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        jail: &str,
        ip: &str,
        origin: &str,
        n: u32,
        at: i64,
        lim: &Limits,
        now_ms: i64,
    ) -> Option<u32> {
        let from = now_ms - lim.findtime_ms;
        if n == 0 || at < from {
            return None;
        }
        let key = (jail.to_string(), ip.to_string());
        if !self.keys.contains_key(&key) && self.keys.len() >= MAX_KEYS {
            self.shed += 1;
            return None;
        }
        let per = self.keys.entry(key.clone()).or_default();
        let q = per.entry(origin.to_string()).or_default();
        // Kept in time order (batches of one origin arrive in order; a late one is placed).
        let pos = q.iter().rposition(|(t, _)| *t <= at).map_or(0, |p| p + 1);
        q.insert(pos, (at, n));
        let total = Self::sum(per, from, lim);
        if total >= lim.threshold {
            self.keys.remove(&key);
            return Some(total);
        }
        None
    }

    fn sum(per: &mut PerOrigin, from: i64, lim: &Limits) -> u32 {
        let mut total = 0u32;
        per.retain(|_, q| {
            trim(q, from);
            let c: u32 = q.iter().map(|(_, n)| *n).fold(0, u32::saturating_add);
            total = total.saturating_add(c.min(lim.cap));
            !q.is_empty()
        });
        total
    }

    /// The capped sum of `ip` in `jail` now.
    pub fn total(&mut self, jail: &str, ip: &str, lim: &Limits, now_ms: i64) -> u32 {
        let key = (jail.to_string(), ip.to_string());
        match self.keys.get_mut(&key) {
            Some(per) => Self::sum(per, now_ms - lim.findtime_ms, lim),
            None => 0,
        }
    }

    /// Forgets `ip` in `jail` (it was banned).
    pub fn clear(&mut self, jail: &str, ip: &str) {
        self.keys.remove(&(jail.to_string(), ip.to_string()));
    }

    /// Drops what left every window (`limits`: per jail; unknown jails are dropped).
    pub fn prune(&mut self, limits: &BTreeMap<String, Limits>, now_ms: i64) {
        self.keys.retain(|(jail, _), per| match limits.get(jail) {
            Some(l) => {
                let from = now_ms - l.findtime_ms;
                per.retain(|_, q| {
                    trim(q, from);
                    !q.is_empty()
                });
                !per.is_empty()
            }
            None => false,
        });
    }

    /// Keys counted now.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether nothing is counted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// This node's failures waiting to be sent, merged per (jail, id).
#[derive(Debug, Default)]
pub struct Outgoing {
    pending: BTreeMap<(String, String), FailEntry>,
    /// Entries shed because too many were pending.
    pub shed: u64,
    seq: u64,
}

impl Outgoing {
    /// Adds `n` failures of `ip` in `jail` at `at` (fleet ms).
    pub fn push(&mut self, jail: &str, ip: &str, n: u32, at: i64) {
        let key = (jail.to_string(), ip.to_string());
        if let Some(e) = self.pending.get_mut(&key) {
            e.n = e.n.saturating_add(n);
            e.first = e.first.min(at);
            e.last = e.last.max(at);
            return;
        }
        if self.pending.len() >= MAX_PENDING {
            self.shed += 1;
            return;
        }
        self.pending.insert(
            key,
            FailEntry {
                jail: jail.to_string(),
                ip: ip.to_string(),
                n,
                first: at,
                last: at,
            },
        );
    }

    /// Entries pending.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Forgets pending failures of `ip` in `jail` (it was banned meanwhile).
    pub fn forget(&mut self, jail: &str, ip: &str) {
        self.pending.remove(&(jail.to_string(), ip.to_string()));
    }

    /// The next batch (at most [`BATCH_ENTRIES`] entries), `None` when nothing is pending.
    pub fn take(&mut self, origin: &str, now_ms: i64) -> Option<FailBatch> {
        if self.pending.is_empty() {
            return None;
        }
        let keys: Vec<_> = self.pending.keys().take(BATCH_ENTRIES).cloned().collect();
        let entries = keys.iter().filter_map(|k| self.pending.remove(k)).collect();
        self.seq += 1;
        Some(FailBatch {
            v: 1,
            kind: "fail".into(),
            origin: origin.to_string(),
            seq: self.seq,
            sent_at: now_ms,
            entries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Policy, Trust};

    const J: &str = "sshd";
    const IP: &str = "198.51.100.7";

    fn lim() -> Limits {
        Limits::of(3, 600.0)
    }

    #[test]
    fn defaults_follow_maxretry() {
        assert_eq!(
            Limits::of(5, 60.0),
            Limits {
                findtime_ms: 60_000,
                threshold: 5,
                cap: 4
            }
        );
    }

    #[test]
    fn failures_split_over_origins_reach_the_threshold() {
        let mut c = Counter::default();
        let l = lim();
        assert_eq!(c.add(J, IP, "n1", 1, 1000, &l, 1000), None);
        assert_eq!(c.add(J, IP, "n2", 1, 1500, &l, 1500), None);
        assert_eq!(c.total(J, IP, &l, 1500), 2);
        assert_eq!(c.add(J, IP, "n3", 1, 2000, &l, 2000), Some(3));
        // Cleared once reached: the next failure starts again.
        assert_eq!(c.total(J, IP, &l, 2000), 0);
        assert!(c.is_empty());
    }

    #[test]
    fn one_origin_alone_never_reaches_the_threshold() {
        let mut c = Counter::default();
        let l = lim();
        for i in 0..50 {
            assert_eq!(c.add(J, IP, "liar", 1, 1000 + i, &l, 1000 + i), None);
        }
        assert_eq!(c.add(J, IP, "liar", 1_000_000, 2000, &l, 2000), None);
        assert_eq!(c.total(J, IP, &l, 2000), 2, "capped at maxretry - 1");
        // A second origin's single failure completes it.
        assert_eq!(c.add(J, IP, "n2", 1, 2100, &l, 2100), Some(3));
    }

    #[test]
    fn maxretry_one_counts_nothing_remote() {
        let mut c = Counter::default();
        let l = Limits::of(1, 600.0);
        assert_eq!(c.add(J, IP, "n1", 5, 0, &l, 0), None);
        assert_eq!(c.add(J, IP, "n2", 5, 0, &l, 0), None);
        assert_eq!(c.total(J, IP, &l, 0), 0);
    }

    #[test]
    fn failures_leave_the_window_after_findtime() {
        let mut c = Counter::default();
        let l = Limits::of(3, 10.0);
        assert_eq!(c.add(J, IP, "n1", 2, 0, &l, 0), None);
        assert_eq!(c.add(J, IP, "n2", 0, 5000, &l, 5000), None);
        // n1's two are older than 10 s at 10,001 ms: n2's one is not enough.
        assert_eq!(c.add(J, IP, "n2", 1, 10_001, &l, 10_001), None);
        assert_eq!(c.total(J, IP, &l, 10_001), 1);
        // A failure already older than the window is not counted at all.
        assert_eq!(c.add(J, IP, "n3", 2, 0, &l, 10_001), None);
        assert_eq!(c.total(J, IP, &l, 10_001), 1);
        // Within the window again: 1 + 2 = 3.
        assert_eq!(c.add(J, IP, "n3", 2, 10_002, &l, 10_002), Some(3));
    }

    #[test]
    fn jails_and_ids_are_counted_apart_and_pruned() {
        let mut c = Counter::default();
        let l = lim();
        c.add(J, IP, "n1", 2, 0, &l, 0);
        c.add("nginx", IP, "n2", 2, 0, &l, 0);
        c.add(J, "198.51.100.8", "n2", 2, 0, &l, 0);
        assert_eq!(c.len(), 3);
        assert_eq!(c.total(J, IP, &l, 0), 2);
        let limits: BTreeMap<String, Limits> = [(J.to_string(), l)].into();
        c.prune(&limits, 1000);
        assert_eq!(c.len(), 2, "the unknown jail's key is dropped");
        c.prune(&limits, 700_000);
        assert!(c.is_empty());
        c.add(J, IP, "n1", 2, 700_000, &l, 700_000);
        c.clear(J, IP);
        assert!(c.is_empty());
    }

    #[test]
    fn outgoing_batches_merge_per_id_and_are_bounded() {
        let mut o = Outgoing::default();
        o.push(J, IP, 1, 100);
        o.push(J, IP, 2, 50);
        o.push(J, IP, 1, 300);
        for i in 0..(BATCH_ENTRIES + 10) {
            o.push(J, &format!("198.51.101.{i}"), 1, 10);
        }
        let b = o.take("n1", 400).expect("a batch");
        assert_eq!(b.entries.len(), BATCH_ENTRIES);
        assert_eq!(
            (b.origin.as_str(), b.kind.as_str(), b.seq),
            ("n1", "fail", 1)
        );
        let mine = b
            .entries
            .iter()
            .chain(o.take("n1", 400).expect("the rest").entries.iter())
            .find(|e| e.ip == IP)
            .cloned()
            .expect("the merged entry");
        assert_eq!((mine.n, mine.first, mine.last), (4, 50, 300));
        assert!(o.take("n1", 400).is_none());
        for i in 0..(MAX_PENDING + 5) {
            o.push(J, &format!("10.0.{}.{}", i / 256, i % 256), 1, 0);
        }
        assert_eq!((o.len(), o.shed), (MAX_PENDING, 5));
        o.forget(J, "10.0.0.0");
        assert_eq!(o.len(), MAX_PENDING - 1);
    }

    #[test]
    fn batches_are_verified_per_origin() {
        let k1 = SigningKey::from_bytes(&[1; 32]);
        let k2 = SigningKey::from_bytes(&[2; 32]);
        let mut trust = Trust::default();
        trust.peers.insert(
            "n1".into(),
            crate::config::Peer {
                node: "n1".into(),
                keys: vec![k1.verifying_key()],
                policy: Policy {
                    jails: Some(vec![J.into()]),
                    ..Policy::default()
                },
            },
        );
        let batch = FailBatch {
            v: 1,
            kind: "fail".into(),
            origin: "n1".into(),
            seq: 1,
            sent_at: 0,
            entries: vec![
                FailEntry {
                    jail: J.into(),
                    ip: IP.into(),
                    n: 2,
                    first: 0,
                    last: 1,
                },
                FailEntry {
                    jail: "other".into(),
                    ip: IP.into(),
                    n: 2,
                    first: 0,
                    last: 1,
                },
                FailEntry {
                    jail: J.into(),
                    ip: "198.51.100.0/24".into(),
                    n: 2,
                    first: 0,
                    last: 1,
                },
                FailEntry {
                    jail: J.into(),
                    ip: "nonsense".into(),
                    n: 2,
                    first: 0,
                    last: 1,
                },
            ],
        };
        let (body, sig) = sign_batch(&k1, &batch);
        let s = subject("fb.v1", "n1");
        let ok = verify_batch(&trust, "fb.v1", &s, Some("n1"), Some(&sig), &body).unwrap();
        assert_eq!(
            ok.entries,
            batch.entries[..1].to_vec(),
            "policy and malformed"
        );
        let (_, forged) = sign_batch(&k2, &batch);
        let v = |subj: &str, kid: Option<&str>, sig: Option<&str>| {
            verify_batch(&trust, "fb.v1", subj, kid, sig, &body).err()
        };
        assert_eq!(v(&s, Some("n1"), Some(&forged)), Some(Reject::BadSignature));
        assert_eq!(v(&s, Some("n9"), Some(&sig)), Some(Reject::UnknownKey));
        assert_eq!(v(&s, Some("n1"), None), Some(Reject::BadSignature));
        assert_eq!(
            v("fb.v1.n2.fail", Some("n1"), Some(&sig)),
            Some(Reject::OriginMismatch)
        );
    }
}
