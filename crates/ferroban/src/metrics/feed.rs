//! What `ferroban top` reads: recent bans and unbans (a bounded ring with sequence numbers, so a
//! client asks only for what it has not seen), the top offenders (a bounded table), per-minute
//! failure and ban counts per jail, and the snapshot served by the `top` control command.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::{BanOrigin, Metrics, UnbanReason};

/// Events kept for `top`.
pub const FEED_CAPACITY: usize = 512;
/// Events sent in one `top` answer at most.
pub const FEED_BATCH: usize = 200;
/// Addresses tracked for the top offenders at most (the least banned are dropped beyond).
pub const OFFENDERS_CAPACITY: usize = 10_000;
/// Offenders sent in one answer.
pub const OFFENDERS_SHOWN: usize = 10;
/// Minutes of per-minute counts kept per jail.
pub const MINUTES: usize = 30;

/// A ban or unban.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedEvent {
    /// Increasing number (1, 2, …) in this daemon run.
    pub seq: u64,
    /// When (Unix seconds).
    pub time: f64,
    /// `ban` or `unban`.
    pub kind: String,
    /// The jail.
    pub jail: String,
    /// The banned id (address or network).
    pub id: String,
    /// The origin of a ban (`log`, `manual`, `restored`, `fleet`) or the reason of an unban.
    pub why: String,
    /// When a ban ends (Unix seconds); `None` for permanent bans and for unbans.
    pub end: Option<f64>,
}

impl FeedEvent {
    /// A ban.
    pub fn ban(jail: &str, id: &str, origin: BanOrigin, now: f64, end: Option<f64>) -> Self {
        FeedEvent {
            seq: 0,
            time: now,
            kind: "ban".into(),
            jail: jail.into(),
            id: id.into(),
            why: origin.label().into(),
            end,
        }
    }

    /// An unban.
    pub fn unban(jail: &str, id: &str, reason: UnbanReason, now: f64) -> Self {
        FeedEvent {
            seq: 0,
            time: now,
            kind: "unban".into(),
            jail: jail.into(),
            id: id.into(),
            why: reason.label().into(),
            end: None,
        }
    }
}

/// An address that was banned (not counting restored bans).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offender {
    /// The address.
    pub id: String,
    /// Bans in this daemon run.
    pub bans: u64,
    /// The jail of its last ban.
    pub jail: String,
    /// When it was last banned.
    pub last: f64,
}

#[derive(Default)]
struct Inner {
    seq: u64,
    events: VecDeque<FeedEvent>,
    offenders: HashMap<String, Offender>,
}

/// Recent events and offenders.
#[derive(Default)]
pub struct Feed {
    inner: Mutex<Inner>,
}

impl Feed {
    /// An empty feed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `e` (numbered here).
    pub fn push(&self, mut e: FeedEvent) {
        let mut g = self.inner.lock().unwrap();
        g.seq += 1;
        e.seq = g.seq;
        if e.kind == "ban" && e.why != BanOrigin::Restored.label() {
            let o = g.offenders.entry(e.id.clone()).or_insert_with(|| Offender {
                id: e.id.clone(),
                bans: 0,
                jail: String::new(),
                last: 0.0,
            });
            o.bans += 1;
            o.jail.clone_from(&e.jail);
            o.last = e.time;
            if g.offenders.len() > OFFENDERS_CAPACITY {
                // Keep the most banned half (ties: the most recent).
                let mut all: Vec<Offender> = g.offenders.drain().map(|(_, o)| o).collect();
                all.sort_by(|a, b| b.bans.cmp(&a.bans).then(b.last.total_cmp(&a.last)));
                all.truncate(OFFENDERS_CAPACITY / 2);
                g.offenders = all.into_iter().map(|o| (o.id.clone(), o)).collect();
            }
        }
        if g.events.len() == FEED_CAPACITY {
            g.events.pop_front();
        }
        g.events.push_back(e);
    }

    /// The last sequence number given.
    pub fn seq(&self) -> u64 {
        self.inner.lock().unwrap().seq
    }

    /// Events after `since`, oldest first, at most [`FEED_BATCH`] (the newest ones).
    pub fn since(&self, since: u64) -> Vec<FeedEvent> {
        let g = self.inner.lock().unwrap();
        let newer: Vec<&FeedEvent> = g.events.iter().filter(|e| e.seq > since).collect();
        let skip = newer.len().saturating_sub(FEED_BATCH);
        newer.into_iter().skip(skip).cloned().collect()
    }

    /// The most banned addresses, most first.
    pub fn offenders(&self, n: usize) -> Vec<Offender> {
        let g = self.inner.lock().unwrap();
        let mut all: Vec<&Offender> = g.offenders.values().collect();
        all.sort_by(|a, b| {
            b.bans
                .cmp(&a.bans)
                .then(b.last.total_cmp(&a.last))
                .then(a.id.cmp(&b.id))
        });
        all.into_iter().take(n).cloned().collect()
    }
}

/// Per-minute counts of one jail (a ring of [`MINUTES`] buckets).
#[derive(Debug, Default)]
pub struct Rates {
    buckets: Vec<(i64, u64, u64)>,
}

impl Rates {
    /// Adds `failures` and `bans` at `now`.
    pub fn add(&mut self, now: f64, failures: u64, bans: u64) {
        if self.buckets.is_empty() {
            self.buckets = vec![(i64::MIN, 0, 0); MINUTES];
        }
        let minute = (now / 60.0).floor() as i64;
        let b = &mut self.buckets[minute.rem_euclid(MINUTES as i64) as usize];
        if b.0 != minute {
            *b = (minute, 0, 0);
        }
        b.1 += failures;
        b.2 += bans;
    }

    /// Failures and bans per minute over the last [`MINUTES`] minutes ending with the one of
    /// `now`, oldest first.
    pub fn series(&self, now: f64) -> (Vec<u64>, Vec<u64>) {
        let cur = (now / 60.0).floor() as i64;
        let mut f = Vec::with_capacity(MINUTES);
        let mut b = Vec::with_capacity(MINUTES);
        for m in (cur - MINUTES as i64 + 1)..=cur {
            let hit = self
                .buckets
                .get(m.rem_euclid(MINUTES as i64) as usize)
                .filter(|x| x.0 == m);
            f.push(hit.map_or(0, |x| x.1));
            b.push(hit.map_or(0, |x| x.2));
        }
        (f, b)
    }
}

/// One jail's row in a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JailRow {
    /// The jail.
    pub name: String,
    /// Addresses with failures within findtime.
    pub failed_current: i64,
    /// Failures counted (kept across restarts).
    pub failed_total: u64,
    /// Bans in force.
    pub banned_current: i64,
    /// Bans (every origin, kept across restarts).
    pub banned_total: u64,
    /// Failures per minute, oldest first, the current minute last.
    pub failures_per_minute: Vec<u64>,
    /// Bans per minute (restored bans not counted), likewise.
    pub bans_per_minute: Vec<u64>,
}

/// What one `top` request returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Format version.
    pub version: u32,
    /// The daemon's time (Unix seconds).
    pub now: f64,
    /// The last event number (ask with it next time).
    pub seq: u64,
    /// Every running jail, by name.
    pub jails: Vec<JailRow>,
    /// The most banned addresses.
    pub offenders: Vec<Offender>,
    /// Events after the `since` asked for, oldest first (bounded).
    pub events: Vec<FeedEvent>,
}

impl Metrics {
    /// The `top` snapshot at `now`, with the events after `since`. Cost: one pass over the jails
    /// and at most [`FEED_CAPACITY`] events and [`OFFENDERS_CAPACITY`] offenders; it never touches
    /// the jails' own state.
    pub fn snapshot(&self, since: u64, now: f64) -> Snapshot {
        let jails = self
            .jails()
            .iter()
            .map(|j| {
                let (f, b) = j.per_minute(now);
                JailRow {
                    name: j.name.clone(),
                    failed_current: j.failures_current(),
                    failed_total: j.failures_total(),
                    banned_current: j.banned_current(),
                    banned_total: j.bans_total(),
                    failures_per_minute: f,
                    bans_per_minute: b,
                }
            })
            .collect();
        let events = self.feed.since(since);
        Snapshot {
            version: 1,
            now,
            seq: self.feed.seq(),
            jails,
            offenders: self.feed.offenders(OFFENDERS_SHOWN),
            events,
        }
    }
}
