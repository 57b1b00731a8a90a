//! Receiving: verification, per-origin policy and the merge of every origin's decisions.
//!
//! State per (jail, target) is `{origin → (oseq, expires_at, active)}`. Per origin the event with
//! the highest `oseq` wins, so duplicates and reorderings are no-ops. The remote ban exists while
//! any origin's entry is active and unexpired; its end is the latest of their ends. An origin's
//! unban clears only its own entry.

use std::collections::{BTreeMap, HashMap};

use crate::config::Trust;
use crate::event::{self, Event, Kind};

/// Why an event was refused (counted per reason in `fleet status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reject {
    /// The key id is not in the trust file.
    UnknownKey,
    /// The signature does not verify.
    BadSignature,
    /// Key id, body origin and subject origin disagree.
    OriginMismatch,
    /// Not valid JSON / not schema v1 / bad address.
    Malformed,
    /// A network ban from an origin without `prefix=yes`.
    PrefixNotAllowed,
    /// A jail the origin may not ban in.
    JailNotAllowed,
    /// An unban of a ban the origin does not hold (another node's ban).
    UnbanNotOwner,
    /// A ban of an address in the receiver's `ignoreip` (counted by the daemon).
    Ignored,
}

impl Reject {
    /// The counter's name.
    pub fn name(self) -> &'static str {
        match self {
            Reject::UnknownKey => "unknown_key",
            Reject::BadSignature => "bad_signature",
            Reject::OriginMismatch => "origin_mismatch",
            Reject::Malformed => "malformed",
            Reject::PrefixNotAllowed => "prefix_not_allowed",
            Reject::JailNotAllowed => "jail_not_allowed",
            Reject::UnbanNotOwner => "unban_not_owner",
            Reject::Ignored => "ignored_address",
        }
    }

    /// Every reason.
    pub const ALL: [Reject; 8] = [
        Reject::UnknownKey,
        Reject::BadSignature,
        Reject::OriginMismatch,
        Reject::Malformed,
        Reject::PrefixNotAllowed,
        Reject::JailNotAllowed,
        Reject::UnbanNotOwner,
        Reject::Ignored,
    ];
}

/// Checks a received message: signature, identity, policy. Returns the event (with its ban
/// time capped by the origin's policy) or why it is refused.
pub fn verify(
    trust: &Trust,
    prefix: &str,
    subject: &str,
    kid: Option<&str>,
    sig: Option<&str>,
    body: &[u8],
) -> Result<Event, Reject> {
    let kid = kid.ok_or(Reject::UnknownKey)?;
    let peer = trust.peers.get(kid).ok_or(Reject::UnknownKey)?;
    if !event::verify(&peer.keys, body, sig.ok_or(Reject::BadSignature)?) {
        return Err(Reject::BadSignature);
    }
    let mut ev: Event = serde_json::from_slice(body).map_err(|_| Reject::Malformed)?;
    if ev.v != 1 {
        return Err(Reject::Malformed);
    }
    if ev.origin != kid || event::subject_origin(prefix, subject) != Some(kid) {
        return Err(Reject::OriginMismatch);
    }
    let net = ev.target().ok_or(Reject::Malformed)?;
    if event::subject(prefix, &ev.origin, &ev.jail, &net) != subject {
        return Err(Reject::OriginMismatch);
    }
    let p = &peer.policy;
    if p.jails.as_ref().is_some_and(|j| !j.contains(&ev.jail)) {
        return Err(Reject::JailNotAllowed);
    }
    if event::is_prefix(&net) && !p.prefix {
        return Err(Reject::PrefixNotAllowed);
    }
    if ev.kind == Kind::Ban {
        let cap_ms = p.max_bantime.map(|s| (s * 1000.0) as i64);
        ev.expires_at = match (ev.expires_at, cap_ms) {
            (None, _) if p.permanent => None,
            (None, cap) => Some(ev.issued_at + cap.unwrap_or(7 * 86_400_000)),
            (Some(e), Some(cap)) => Some(e.min(ev.issued_at + cap)),
            (Some(e), None) => Some(e),
        };
    }
    Ok(ev)
}

/// One origin's latest decision on a (jail, target).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Its `oseq`.
    pub oseq: u64,
    /// End (fleet ms; `None` permanent).
    pub expires_at: Option<i64>,
    /// A ban (true) or an unban (false).
    pub active: bool,
}

impl Entry {
    fn live(&self, now_ms: i64) -> bool {
        self.active && self.expires_at.is_none_or(|e| e > now_ms)
    }
}

/// What the receiver must do after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Ban (or extend) until this end (fleet ms; `None` permanent).
    Ban(Option<i64>),
    /// No origin holds a ban any more: remove the remote ban.
    Unban,
    /// Nothing changes (duplicate, older, shorter, already expired, refused unban).
    Unchanged,
    /// An unban of a ban the origin does not hold.
    NotOwner,
}

/// Every origin's decisions, per (jail, target text).
#[derive(Debug, Default, Clone)]
pub struct Merge {
    map: HashMap<(String, String), BTreeMap<String, Entry>>,
}

fn latest(entries: &BTreeMap<String, Entry>, now_ms: i64) -> Option<Option<i64>> {
    let mut best: Option<Option<i64>> = None;
    for e in entries.values().filter(|e| e.live(now_ms)) {
        best = Some(match (best, e.expires_at) {
            (None, x) => x,
            (Some(None), _) | (_, None) => None,
            (Some(Some(a)), Some(b)) => Some(a.max(b)),
        });
    }
    best
}

impl Merge {
    /// Loads one stored entry (at start, from the database).
    pub fn load(&mut self, jail: &str, ip: &str, origin: &str, e: Entry) {
        self.map
            .entry((jail.to_string(), ip.to_string()))
            .or_default()
            .insert(origin.to_string(), e);
    }

    /// Applies an event at `now_ms` (fleet clock).
    pub fn apply(&mut self, ev: &Event, ip: &str, now_ms: i64) -> Outcome {
        let entries = self
            .map
            .entry((ev.jail.clone(), ip.to_string()))
            .or_default();
        if entries.get(&ev.origin).is_some_and(|e| e.oseq >= ev.oseq) {
            return Outcome::Unchanged;
        }
        let before = latest(entries, now_ms);
        match ev.kind {
            Kind::Ban => {
                entries.insert(
                    ev.origin.clone(),
                    Entry {
                        oseq: ev.oseq,
                        expires_at: ev.expires_at,
                        active: true,
                    },
                );
                let after = latest(entries, now_ms);
                match (before, after) {
                    (_, None) => Outcome::Unchanged,
                    (None, Some(a)) => Outcome::Ban(a),
                    (Some(Some(b)), Some(Some(a))) if a > b => Outcome::Ban(Some(a)),
                    (Some(Some(_)), Some(None)) => Outcome::Ban(None),
                    _ => Outcome::Unchanged,
                }
            }
            Kind::Unban => {
                let held = entries.get(&ev.origin).is_some_and(|e| e.live(now_ms));
                entries.insert(
                    ev.origin.clone(),
                    Entry {
                        oseq: ev.oseq,
                        expires_at: None,
                        active: false,
                    },
                );
                let after = latest(entries, now_ms);
                // An origin lifts only a ban it holds: anything else is refused (and counted),
                // whoever else holds the address.
                match (held, after) {
                    (true, None) => Outcome::Unban,
                    (true, Some(_)) => Outcome::Unchanged,
                    (false, _) => Outcome::NotOwner,
                }
            }
        }
    }

    /// The live remote bans: (jail, target, origin with the latest end, end).
    pub fn live(&self, now_ms: i64) -> Vec<(String, String, String, Option<i64>)> {
        self.map
            .iter()
            .filter_map(|((j, ip), e)| {
                let end = latest(e, now_ms)?;
                let origin = e
                    .iter()
                    .filter(|(_, x)| x.live(now_ms))
                    .max_by_key(|(_, x)| x.expires_at.unwrap_or(i64::MAX))
                    .map(|(o, _)| o.clone())
                    .unwrap_or_default();
                Some((j.clone(), ip.clone(), origin, end))
            })
            .collect()
    }

    /// The origins whose ban of `ip` in `jail` is live at `now_ms`, with their decision's oseq.
    pub fn live_entries(&self, jail: &str, ip: &str, now_ms: i64) -> Vec<(String, u64)> {
        self.map
            .get(&(jail.to_string(), ip.to_string()))
            .map(|e| {
                e.iter()
                    .filter(|(_, x)| x.live(now_ms))
                    .map(|(o, x)| (o.clone(), x.oseq))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Live bans per origin.
    pub fn per_origin(&self, now_ms: i64) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for e in self.map.values() {
            for (o, x) in e {
                if x.live(now_ms) {
                    *out.entry(o.clone()).or_default() += 1;
                }
            }
        }
        out
    }

    /// Drops bans that ended before `now_ms` and unbans (called rarely, so an unban stays
    /// long enough to win over a late duplicate of the ban it lifted).
    pub fn prune(&mut self, now_ms: i64) {
        self.map.retain(|_, e| {
            e.retain(|_, x| x.live(now_ms));
            !e.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Peer, Policy};
    use crate::event::{ClockKind, SigningKey, sign, subject};

    fn ev(origin: &str, oseq: u64, kind: Kind, exp: Option<i64>) -> Event {
        Event {
            v: 1,
            kind,
            id: format!("{origin}.{oseq}"),
            origin: origin.into(),
            oseq,
            jail: "sshd".into(),
            ip: "203.0.113.7".into(),
            issued_at: 1000,
            expires_at: exp,
            clock: ClockKind::Engine,
        }
    }

    #[test]
    fn last_writer_wins_per_origin_and_unban_is_own_only() {
        let mut m = Merge::default();
        let ip = "203.0.113.7";
        assert_eq!(
            m.apply(&ev("n1", 2, Kind::Ban, Some(5000)), ip, 1000),
            Outcome::Ban(Some(5000))
        );
        // Duplicate and older: nothing.
        assert_eq!(
            m.apply(&ev("n1", 2, Kind::Ban, Some(5000)), ip, 1000),
            Outcome::Unchanged
        );
        assert_eq!(
            m.apply(&ev("n1", 1, Kind::Unban, None), ip, 1000),
            Outcome::Unchanged
        );
        // n2 bans shorter: nothing; longer: extend.
        assert_eq!(
            m.apply(&ev("n2", 1, Kind::Ban, Some(3000)), ip, 1000),
            Outcome::Unchanged
        );
        assert_eq!(
            m.apply(&ev("n2", 2, Kind::Ban, Some(9000)), ip, 1000),
            Outcome::Ban(Some(9000))
        );
        // n3 unbanning what it never banned: refused.
        assert_eq!(
            m.apply(&ev("n3", 1, Kind::Unban, None), ip, 1000),
            Outcome::NotOwner
        );
        // n1 lifts its own: n2's still holds.
        assert_eq!(
            m.apply(&ev("n1", 3, Kind::Unban, None), ip, 1000),
            Outcome::Unchanged
        );
        assert_eq!(
            m.apply(&ev("n2", 3, Kind::Unban, None), ip, 1000),
            Outcome::Unban
        );
        assert!(m.live(1000).is_empty());
    }

    #[test]
    fn any_order_of_a_log_gives_the_same_state() {
        let log = vec![
            ev("n1", 1, Kind::Ban, Some(5000)),
            ev("n2", 1, Kind::Ban, Some(7000)),
            ev("n1", 2, Kind::Unban, None),
            ev("n1", 3, Kind::Ban, Some(6000)),
            ev("n2", 2, Kind::Unban, None),
        ];
        let mut reference = Merge::default();
        for e in &log {
            reference.apply(e, "203.0.113.7", 0);
        }
        let want = reference.live(0);
        assert_eq!(
            want,
            vec![("sshd".into(), "203.0.113.7".into(), "n1".into(), Some(6000))]
        );
        // Every rotation, reversed, and with duplicates.
        for r in 0..log.len() {
            let mut l = log.clone();
            l.rotate_left(r);
            for variant in [
                l.clone(),
                l.iter().rev().cloned().collect(),
                [l.clone(), l.clone()].concat(),
            ] {
                let mut m = Merge::default();
                for e in &variant {
                    m.apply(e, "203.0.113.7", 0);
                }
                assert_eq!(m.live(0), want);
            }
        }
    }

    #[test]
    fn expired_bans_do_not_count() {
        let mut m = Merge::default();
        assert_eq!(
            m.apply(&ev("n1", 1, Kind::Ban, Some(500)), "203.0.113.7", 1000),
            Outcome::Unchanged
        );
        assert!(m.live(1000).is_empty());
    }

    fn trust(policy: Policy) -> (Trust, SigningKey) {
        let k = SigningKey::from_bytes(&[3; 32]);
        let mut t = Trust::default();
        t.peers.insert(
            "n1".into(),
            Peer {
                node: "n1".into(),
                keys: vec![k.verifying_key()],
                policy,
            },
        );
        (t, k)
    }

    #[test]
    fn verification_refuses_forgeries_and_policy_breaches() {
        let (t, k) = trust(Policy::default());
        let e = ev("n1", 1, Kind::Ban, Some(5000));
        let body = e.body();
        let subj = subject("fb.v1", "n1", "sshd", &e.target().unwrap());
        let sig = sign(&k, &body);
        assert!(verify(&t, "fb.v1", &subj, Some("n1"), Some(&sig), &body).is_ok());
        let forger = SigningKey::from_bytes(&[4; 32]);
        let bad = sign(&forger, &body);
        assert_eq!(
            verify(&t, "fb.v1", &subj, Some("n1"), Some(&bad), &body),
            Err(Reject::BadSignature)
        );
        assert_eq!(
            verify(&t, "fb.v1", &subj, Some("n9"), Some(&sig), &body),
            Err(Reject::UnknownKey)
        );
        let other_subj = subject("fb.v1", "n2", "sshd", &e.target().unwrap());
        assert_eq!(
            verify(&t, "fb.v1", &other_subj, Some("n1"), Some(&sig), &body),
            Err(Reject::OriginMismatch)
        );
        let mut net = ev("n1", 2, Kind::Ban, Some(5000));
        net.ip = "203.0.113.0/24".into();
        let nb = net.body();
        let ns = subject("fb.v1", "n1", "sshd", &net.target().unwrap());
        assert_eq!(
            verify(&t, "fb.v1", &ns, Some("n1"), Some(&sign(&k, &nb)), &nb),
            Err(Reject::PrefixNotAllowed)
        );
        let (t2, k2) = trust(Policy {
            prefix: true,
            max_bantime: Some(1.0),
            ..Policy::default()
        });
        let got = verify(&t2, "fb.v1", &ns, Some("n1"), Some(&sign(&k2, &nb)), &nb).unwrap();
        assert_eq!(got.expires_at, Some(1000 + 1000), "capped by max_bantime");
    }
}
