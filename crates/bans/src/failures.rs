//! Failure tracking: `findtime`, `maxretry`, `maxmatches`.
//!
//! One [`FailureTracker`] per jail, owned by the jail's task (no locks). Each failure of an id (an address or
//! an `<F-ID>`) is [recorded](FailureTracker::record); when the id's count reaches `maxretry` the tracker
//! forgets it and returns a [`BanOrder`] with the counts and the kept matches.
//!
//! # fail2ban's window is not a strict sliding window
//!
//! fail2ban keeps, per id, the time of the first and of the last failure and a retry count. It does not keep
//! the time of every failure. When a failure arrives later than the id's last one and the first failure lies
//! more than `findtime` before it, fail2ban *rescales* the count instead of dropping old failures
//! (`FailTicket.adjustTime`):
//!
//! ```text
//! retry = round_half_even(retry / (time - first) * findtime)   // the rate over the known interval, times findtime
//! first = time - findtime
//! retry += 1                                                    // the new failure
//! ```
//!
//! Consequences, pinned by the tests:
//! - Five failures in the first minute and one 650 s later (findtime 600, no cleanup in between) count
//!   `round(5/650*600) + 1 = 6`, where a sliding window counts 1: a burst is "remembered" as a rate.
//! - Two failures at 0 and 1 and one at 1000 count `round(2/1000*600) + 1 = 2`, where a sliding window counts 1.
//! - A failure older than the id's last one (out of order) is simply added: no rescaling.
//! - An id whose last failure is more than `findtime` old is forgotten only by [`cleanup`](FailureTracker::cleanup)
//!   (fail2ban: `FailManager.cleanup`), and fail2ban runs that at most every 5 seconds of wall time, after each
//!   ban and every 100 processed lines. Until then the stale entry is rescaled as above rather than restarted.
//!   [`service`](FailureTracker::service) reproduces the 5-second gate; the daemon calls it every 100 lines.
//!
//! [`Window::Sliding`] offers a strict sliding window instead (each failure counts for exactly `findtime`
//! seconds after its time), at the cost of keeping one timestamp per failure.
//!
//! # Matches
//! The matched lines of each failure are appended and only the last `maxmatches` are kept (`0`: none).
//! fail2ban trims only when a second failure arrives; ferroban trims the first one too.
//!
//! # Bounded memory (`maxfailed`)
//! An attacker can make every failure come from a new address (one IPv6 /64 holds 2^64). The table of pending
//! failures is therefore bounded: at most [`TrackerConfig::max_entries`] ids (the jail option `maxfailed`), and
//! when a new id arrives at the bound the stalest entry (the one whose latest failure arrived longest ago) is
//! evicted and counted ([`FailureTracker::evicted`]). Ids with a single failure are evicted before ids with
//! two or more (a segmented LRU: a flood of one-off addresses churns its own segment and cannot push out an
//! attacker that is already counting up); when repeat offenders hold more than three quarters of a full table,
//! they are evicted instead, so a flood of repeat offenders cannot starve new ids either. Every operation is `O(1)`; the matches
//! kept per id are bounded by `maxmatches`.
//!
//! # Known offenders
//! With `bantime.increment`, fail2ban's observer makes each new failure of an id that was banned before count
//! more: `2^min(n,20) / 2 + 1` retries for `n` earlier bans (2, 3, 5, 9, …), capped at `maxretry`, and ignores
//! failures not newer than the last ban. [`FailureTracker::record_known`] does both. (fail2ban also adds the
//! failure's matches and one "failure" a second time in that path; ferroban does not.)

use std::collections::VecDeque;
use std::hash::Hash;

use hashlink::LinkedHashMap;

use crate::expr::round_half_even;

/// How `findtime` limits the count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Window {
    /// fail2ban's behaviour: counts rescaled by the failure rate (see the module doc).
    #[default]
    Fail2ban,
    /// A strict sliding window: a failure counts while `time - failure_time < findtime`.
    Sliding,
}

/// A jail's failure-counting options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerConfig {
    /// `findtime` in seconds (fail2ban default 600).
    pub findtime: f64,
    /// `maxretry` (fail2ban default 5 in jail.conf).
    pub maxretry: u32,
    /// `maxmatches`: how many matched lines to keep per id (fail2ban default: `maxretry`).
    pub maxmatches: usize,
    /// Counting semantics.
    pub window: Window,
    /// `maxfailed`: the most ids with pending failures kept at once (0: no bound). See the module doc.
    pub max_entries: usize,
}

/// The default `maxfailed`: room for a storm of 20,000 distinct addresses each failing `maxretry`
/// times in turn; a full table takes about 10 MB (an entry with one kept match of a 100-byte line
/// is about 400 bytes).
pub const DEFAULT_MAX_ENTRIES: usize = 25_000;

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            findtime: 600.0,
            maxretry: 5,
            maxmatches: 5,
            window: Window::Fail2ban,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

/// The order to ban an id that reached `maxretry`.
#[derive(Debug, Clone, PartialEq)]
pub struct BanOrder<K> {
    /// The failure id.
    pub id: K,
    /// Time of the latest failure (the ban's start time in fail2ban).
    pub time: f64,
    /// Start of the counted interval (the first failure, or `time - findtime` after rescaling).
    pub first_time: f64,
    /// The retry count that reached `maxretry` (may be weighted).
    pub retry: u32,
    /// How many failures were seen (fail2ban's `failures`, the `<failures>` action tag).
    pub failures: u32,
    /// The kept matched lines, oldest first, at most `maxmatches`.
    pub matches: Vec<String>,
}

/// What recording a failure led to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<K> {
    /// Counted; the id's retry count is now `retry`, below `maxretry`.
    Counted {
        /// The current count.
        retry: u32,
    },
    /// `maxretry` reached: the id is forgotten by the tracker and must be banned.
    Ban(BanOrder<K>),
    /// Ignored (only from [`FailureTracker::record_known`]: failure not newer than the last ban).
    Ignored,
}

/// What fail2ban's observer knows about an id from the store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KnownOffender {
    /// How often it was banned before.
    pub ban_count: u64,
    /// When it was last banned.
    pub last_banned_at: f64,
}

#[derive(Debug, Clone)]
struct Entry {
    first_time: f64,
    last_time: f64,
    retry: u32,
    failures: u32,
    matches: VecDeque<String>,
    /// (time, weight) of each failure, only in [`Window::Sliding`].
    events: VecDeque<(f64, u32)>,
}

/// Per-id failure counts of one jail.
#[derive(Debug, Clone)]
pub struct FailureTracker<K: Eq + Hash> {
    cfg: TrackerConfig,
    /// Ids with one failure so far, stalest first.
    single: LinkedHashMap<K, Entry>,
    /// Ids with two failures or more, stalest first.
    repeat: LinkedHashMap<K, Entry>,
    total: u64,
    evicted: u64,
    next_service: f64,
}

/// fail2ban cleans the failure list at most this often (seconds of wall time).
pub const SERVICE_INTERVAL: f64 = 5.0;

impl<K: Eq + Hash + Clone> FailureTracker<K> {
    /// An empty tracker.
    pub fn new(cfg: TrackerConfig) -> Self {
        FailureTracker {
            cfg,
            single: LinkedHashMap::new(),
            repeat: LinkedHashMap::new(),
            total: 0,
            evicted: 0,
            next_service: f64::NEG_INFINITY,
        }
    }

    /// The options in force.
    pub fn config(&self) -> &TrackerConfig {
        &self.cfg
    }

    /// Changes the options (e.g. `set <jail> findtime`); current counts are kept (the stalest are evicted
    /// if the new bound is lower).
    pub fn set_config(&mut self, cfg: TrackerConfig) {
        self.cfg = cfg;
        while self.cfg.max_entries > 0 && self.len() > self.cfg.max_entries {
            self.evict_one();
        }
    }

    /// Number of ids with failures ("Currently failed").
    pub fn len(&self) -> usize {
        self.single.len() + self.repeat.len()
    }

    /// Whether no id has failures.
    pub fn is_empty(&self) -> bool {
        self.single.is_empty() && self.repeat.is_empty()
    }

    /// Ids evicted since creation because the table was at its bound (`maxfailed`).
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Evicts the stalest single-failure id, else the stalest repeat one.
    fn evict_one(&mut self) -> bool {
        let gone = self.single.pop_front().or_else(|| self.repeat.pop_front());
        if gone.is_some() {
            self.evicted += 1;
        }
        gone.is_some()
    }

    fn get(&self, id: &K) -> Option<&Entry> {
        self.repeat.get(id).or_else(|| self.single.get(id))
    }

    /// Failures recorded since creation ("Total failed").
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The current retry count of `id`.
    pub fn retry(&self, id: &K) -> Option<u32> {
        self.get(id).map(|e| e.retry)
    }

    /// Forgets `id` (fail2ban `delFailure`, e.g. when it is banned or unbanned by hand).
    pub fn remove(&mut self, id: &K) -> bool {
        self.repeat.remove(id).is_some() || self.single.remove(id).is_some()
    }

    /// The entry of `id`, moved to the back of its segment (it is the freshest now); a new one is made,
    /// evicting the stalest entry first when the table is at its bound.
    fn touch(&mut self, id: &K, time: f64) -> &mut Entry {
        if self.repeat.contains_key(id) {
            return self.repeat.to_back(id).expect("present");
        }
        if let Some(e) = self.single.remove(id) {
            // The second failure: into the repeat segment (the table does not grow).
            self.repeat.insert(id.clone(), e);
            return self.repeat.get_mut(id).expect("inserted");
        }
        if self.cfg.max_entries > 0 {
            // At the bound: the stalest single-failure id goes, unless repeat offenders hold more
            // than three quarters of the table (then the stalest of them: new ids keep room).
            let cap = self.cfg.max_entries - self.cfg.max_entries / 4;
            while self.len() >= self.cfg.max_entries {
                let gone = if self.repeat.len() > cap || self.single.is_empty() {
                    self.repeat.pop_front()
                } else {
                    self.single.pop_front()
                };
                if gone.is_none() {
                    break;
                }
                self.evicted += 1;
            }
        }
        self.single.insert(
            id.clone(),
            Entry {
                first_time: time,
                last_time: time,
                retry: 0,
                failures: 0,
                matches: VecDeque::new(),
                events: VecDeque::new(),
            },
        );
        self.single.get_mut(id).expect("inserted")
    }

    /// Records one failure of `id` at `time` with its matched lines.
    pub fn record(&mut self, id: K, time: f64, matches: Vec<String>) -> Outcome<K> {
        self.record_weighted(id, time, matches, 1)
    }

    /// Records a failure counting `weight` retries (fail2ban's `addAttempt` counts one per match given).
    /// A weight of 0 counts as 1.
    pub fn record_weighted(
        &mut self,
        id: K,
        time: f64,
        matches: Vec<String>,
        weight: u32,
    ) -> Outcome<K> {
        let weight = weight.max(1);
        let cfg = self.cfg;
        self.total += 1;
        let entry = self.touch(&id, time);
        match cfg.window {
            Window::Fail2ban => {
                adjust_time(entry, time, cfg.findtime);
                entry.retry = entry.retry.saturating_add(weight);
            }
            Window::Sliding => {
                entry.events.push_back((time, weight));
                entry.last_time = entry.last_time.max(time);
                entry.first_time = entry.first_time.min(time);
                prune_events(entry, cfg.findtime);
            }
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.matches.extend(matches);
        while entry.matches.len() > cfg.maxmatches {
            entry.matches.pop_front();
        }
        self.check(id)
    }

    /// Records a failure of an id that was banned before (fail2ban's observer, with `bantime.increment`).
    ///
    /// A failure not newer than `known.last_banned_at` is [`Outcome::Ignored`] (a log re-read after a restart).
    /// Otherwise it counts `min(2^min(n,20)/2 + 1, maxretry)` retries for `n = known.ban_count` (at least 1).
    pub fn record_known(
        &mut self,
        id: K,
        time: f64,
        matches: Vec<String>,
        known: Option<KnownOffender>,
    ) -> Outcome<K> {
        let Some(k) = known else {
            return self.record(id, time, matches);
        };
        if time <= k.last_banned_at {
            return Outcome::Ignored;
        }
        let shift = k.ban_count.min(20) as u32;
        let weight = ((1u32 << shift) / 2 + 1).min(self.cfg.maxretry).max(1);
        self.record_weighted(id, time, matches, weight)
    }

    fn check(&mut self, id: K) -> Outcome<K> {
        let Some(e) = self.get(&id) else {
            return Outcome::Counted { retry: 0 };
        };
        if e.retry < self.cfg.maxretry {
            return Outcome::Counted { retry: e.retry };
        }
        let Some(e) = self.repeat.remove(&id).or_else(|| self.single.remove(&id)) else {
            return Outcome::Counted { retry: 0 };
        };
        Outcome::Ban(BanOrder {
            id,
            time: e.last_time,
            first_time: e.first_time,
            retry: e.retry,
            failures: e.failures,
            matches: e.matches.into(),
        })
    }

    /// Forgets ids whose last failure is at least `findtime` before `now` (fail2ban `FailManager.cleanup`).
    /// Returns how many were forgotten.
    pub fn cleanup(&mut self, now: f64) -> usize {
        let limit = now - self.cfg.findtime;
        let before = self.len();
        self.single.retain(|_, e| e.last_time > limit);
        self.repeat.retain(|_, e| e.last_time > limit);
        before - self.len()
    }

    /// [`cleanup`](Self::cleanup), but at most every [`SERVICE_INTERVAL`] seconds, like fail2ban's
    /// `performSvc`. fail2ban calls it after each ban and every 100 processed lines. Returns `None` when skipped.
    pub fn service(&mut self, now: f64) -> Option<usize> {
        if now < self.next_service {
            return None;
        }
        self.next_service = now + SERVICE_INTERVAL;
        Some(self.cleanup(now))
    }
}

/// fail2ban's `FailTicket.adjustTime`: extends the interval to `time`, rescaling the count when the interval
/// would exceed `findtime`.
fn adjust_time(e: &mut Entry, time: f64, findtime: f64) {
    if time > e.last_time {
        if e.first_time < time - findtime {
            let span = time - e.first_time;
            let scaled = round_half_even(f64::from(e.retry) / span * findtime);
            e.retry = if scaled.is_finite() && scaled > 0.0 {
                scaled.min(f64::from(u32::MAX)) as u32
            } else {
                0
            };
            e.first_time = time - findtime;
        }
        e.last_time = time;
    }
}

fn prune_events(e: &mut Entry, findtime: f64) {
    let limit = e.last_time - findtime;
    e.events.retain(|(t, _)| *t > limit);
    e.retry = e
        .events
        .iter()
        .fold(0u32, |acc, (_, w)| acc.saturating_add(*w));
    if let Some(first) = e.events.iter().map(|(t, _)| *t).reduce(f64::min) {
        e.first_time = first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(maxretry: u32) -> FailureTracker<String> {
        FailureTracker::new(TrackerConfig {
            findtime: 600.0,
            maxretry,
            maxmatches: 3,
            window: Window::Fail2ban,
            max_entries: 0,
        })
    }

    #[test]
    fn adjust_time_rounds_half_to_even() {
        // retry 1 over 1200 s rescaled to 600 s: 0.5 rounds to 0 (Python's round), then +1.
        let mut t = tracker(10);
        t.record("a".into(), 0.0, vec![]);
        assert_eq!(
            t.record("a".into(), 1200.0, vec![]),
            Outcome::Counted { retry: 1 }
        );
        // retry 3 over 1200 s: 1.5 rounds to 2, then +1.
        let mut t = tracker(10);
        for time in [0.0, 1.0, 2.0] {
            t.record("a".into(), time, vec![]);
        }
        assert_eq!(
            t.record("a".into(), 1200.0, vec![]),
            Outcome::Counted { retry: 3 }
        );
    }

    #[test]
    fn bounded_table_evicts_single_failures_first() {
        let mut t: FailureTracker<u32> = FailureTracker::new(TrackerConfig {
            maxretry: 3,
            max_entries: 8,
            ..TrackerConfig::default()
        });
        // An attacker counting up among a flood of one-off ids.
        t.record(7, 0.0, vec![]);
        t.record(7, 0.1, vec![]);
        for i in 0..10_000u32 {
            t.record(1000 + i, 1.0, vec!["x".into()]);
            assert!(t.len() <= 8);
        }
        assert_eq!(t.retry(&7), Some(2));
        assert!(matches!(t.record(7, 2.0, vec![]), Outcome::Ban(_)));
        // 10,000 one-off ids through a table of 8 (one slot was the attacker's): 10,000 - 7 evicted.
        assert_eq!(t.evicted(), 10_000 - 7);
        // The freshest one-off ids are the ones kept.
        assert_eq!(t.retry(&(1000 + 9_999)), Some(1));
        assert_eq!(t.retry(&1000), None);
    }

    #[test]
    fn repeat_segment_keeps_room_for_new_ids() {
        let mut t: FailureTracker<u32> = FailureTracker::new(TrackerConfig {
            maxretry: 100,
            max_entries: 8,
            ..TrackerConfig::default()
        });
        for i in 0..100u32 {
            t.record(i, 0.0, vec![]);
            t.record(i, 0.0, vec![]);
        }
        // Without new ids competing, repeat offenders may fill the table: the newest 8.
        assert_eq!(t.len(), 8);
        assert_eq!(t.retry(&99), Some(2));
        assert_eq!(t.retry(&92), Some(2));
        assert_eq!(t.retry(&91), None);
        // New ids take room from them down to 6 (3/4 of 8), then evict each other.
        for id in [500, 501, 502, 503] {
            t.record(id, 1.0, vec![]);
        }
        assert_eq!(t.len(), 8);
        assert_eq!(t.retry(&93), None);
        assert_eq!(t.retry(&94), Some(2));
        assert_eq!(t.retry(&501), None);
        assert_eq!(t.retry(&502), Some(1));
        assert_eq!(t.retry(&503), Some(1));
    }

    #[test]
    fn service_is_gated() {
        let mut t = tracker(10);
        t.record("a".into(), 0.0, vec![]);
        assert_eq!(t.service(100.0), Some(0));
        assert_eq!(t.service(104.0), None);
        assert_eq!(t.service(700.0), Some(1));
    }
}
