//! Current bans of a jail and their unban schedule.
//!
//! [`UnbanScheduler`] is the shape of mini-redis's expiry: a `BTreeSet<(deadline, id)>` whose first element is
//! the next thing to do, plus a map from id to its deadline so a ban can be cancelled or prolonged. Permanent
//! bans have no deadline and never expire. The daemon sleeps until [`next_deadline`](UnbanScheduler::next_deadline)
//! (or until a new ban arrives) and then calls [`expire`](UnbanScheduler::expire) with the current time.
//!
//! [`BanManager`] keeps the bans themselves (start, length, count) on top of the scheduler, with fail2ban's
//! rules for a ban of an id that is already banned (prolong when the new ban ends later, else ignore).
//!
//! Every operation on a ban (add, prolong, remove, expire) is `O(log n)`: the scheduler is indexed by deadline
//! and by id, and the manager keeps a second index by start time, so listing the bans in either order is a walk
//! of an index, never a sort.
//!
//! A ban covers `[banned_at, banned_at + bantime)`: it expires when `now >= banned_at + bantime`. (fail2ban
//! tests `now > end`; the difference is one instant, and `>=` lets a timer that fires exactly at the deadline
//! make progress.)

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// A point in time (unix seconds) with a total order, usable as a `BTreeSet` key.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(pub f64);

impl PartialEq for Deadline {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Deadline {}
impl PartialOrd for Deadline {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Deadline {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// An id whose deadline passed.
#[derive(Debug, Clone, PartialEq)]
pub struct Expired<K> {
    /// The id.
    pub id: K,
    /// The deadline it had.
    pub unban_at: f64,
}

/// Unban deadlines, ordered.
#[derive(Debug, Clone)]
pub struct UnbanScheduler<K> {
    queue: BTreeSet<(Deadline, K)>,
    /// Every scheduled id; `None` is permanent.
    by_id: BTreeMap<K, Option<Deadline>>,
}

impl<K: Ord + Clone> Default for UnbanScheduler<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Ord + Clone> UnbanScheduler<K> {
    /// An empty schedule.
    pub fn new() -> Self {
        UnbanScheduler {
            queue: BTreeSet::new(),
            by_id: BTreeMap::new(),
        }
    }

    /// Schedules `id` to be unbanned at `unban_at` (`None`: never), replacing any earlier deadline.
    /// A NaN deadline is treated as permanent.
    pub fn schedule(&mut self, id: K, unban_at: Option<f64>) {
        self.cancel(&id);
        let d = unban_at.filter(|t| !t.is_nan()).map(Deadline);
        if let Some(d) = d {
            self.queue.insert((d, id.clone()));
        }
        self.by_id.insert(id, d);
    }

    /// Removes `id`; returns whether it was scheduled.
    pub fn cancel(&mut self, id: &K) -> bool {
        match self.by_id.remove(id) {
            Some(Some(d)) => {
                self.queue.remove(&(d, id.clone()));
                true
            }
            Some(None) => true,
            None => false,
        }
    }

    /// Whether `id` is scheduled (permanent included).
    pub fn contains(&self, id: &K) -> bool {
        self.by_id.contains_key(id)
    }

    /// The deadline of `id`: `None` if not scheduled, `Some(None)` if permanent.
    pub fn unban_at(&self, id: &K) -> Option<Option<f64>> {
        self.by_id.get(id).map(|d| d.map(|d| d.0))
    }

    /// The earliest deadline, if any ban is not permanent.
    pub fn next_deadline(&self) -> Option<f64> {
        self.queue.first().map(|(d, _)| d.0)
    }

    /// Removes and returns, earliest first, every id whose deadline is `<= now`.
    pub fn expire(&mut self, now: f64) -> Vec<Expired<K>> {
        let mut out = Vec::new();
        while let Some((d, _)) = self.queue.first() {
            if d.0 > now {
                break;
            }
            let Some((d, id)) = self.queue.pop_first() else {
                break;
            };
            self.by_id.remove(&id);
            out.push(Expired { id, unban_at: d.0 });
        }
        out
    }

    /// Number of scheduled ids (permanent included).
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The scheduled ids in deadline order (then id), permanent ones last (in id order), with their deadline.
    /// Walks the indexes: `O(n)`, no sort.
    pub fn iter_by_deadline(&self) -> impl Iterator<Item = (&K, Option<f64>)> {
        self.queue.iter().map(|(d, k)| (k, Some(d.0))).chain(
            self.by_id
                .iter()
                .filter(|(_, d)| d.is_none())
                .map(|(k, _)| (k, None)),
        )
    }

    /// Removes everything, returning the ids.
    pub fn clear(&mut self) -> Vec<K> {
        self.queue.clear();
        std::mem::take(&mut self.by_id).into_keys().collect()
    }
}

/// One current ban.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ban {
    /// When the ban started (unix seconds; fail2ban: the time of the last failure).
    pub banned_at: f64,
    /// Its length in seconds; negative (fail2ban: `-1`) is permanent.
    pub bantime: f64,
    /// How many times the id has been banned, this ban included.
    pub ban_count: u64,
}

impl Ban {
    /// Whether the ban never ends.
    pub fn is_permanent(&self) -> bool {
        self.bantime < 0.0
    }

    /// When the ban ends; `None` if permanent.
    pub fn end(&self) -> Option<f64> {
        (!self.is_permanent()).then_some(self.banned_at + self.bantime)
    }

    /// Seconds left at `now` (never negative); `None` if permanent.
    pub fn remaining(&self, now: f64) -> Option<f64> {
        self.end().map(|e| (e - now).max(0.0))
    }

    fn end_key(&self) -> f64 {
        self.end().unwrap_or(f64::INFINITY)
    }
}

/// What [`BanManager::add`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AddOutcome {
    /// A new ban: record it in the store, then run the actions.
    Added,
    /// The id was banned already and the new ban ends later: its length was extended so that it ends when the
    /// new one would. Record it in the store (fail2ban does not, so a restart restores the shorter ban) and
    /// prolong it in the actions.
    Prolonged {
        /// The old end (`None` never happens here: a permanent ban cannot be prolonged).
        previous_end: Option<f64>,
        /// The ban as it stands now.
        ban: Ban,
    },
    /// The id is banned already until at least as late: nothing to do.
    AlreadyBanned,
    /// The ban would have ended before `now` (e.g. an old log line): not banned.
    Expired,
}

/// The current bans of a jail.
#[derive(Debug, Clone)]
pub struct BanManager<K> {
    bans: BTreeMap<K, Ban>,
    schedule: UnbanScheduler<K>,
    /// The bans by start (`banned_at`, then id): the order `status` lists them in.
    by_start: BTreeSet<(Deadline, K)>,
    total: u64,
}

impl<K: Ord + Clone> Default for BanManager<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Ord + Clone> BanManager<K> {
    /// No bans.
    pub fn new() -> Self {
        BanManager {
            bans: BTreeMap::new(),
            schedule: UnbanScheduler::new(),
            by_start: BTreeSet::new(),
            total: 0,
        }
    }

    /// Bans `id` (fail2ban `BanManager.addBanTicket`).
    pub fn add(&mut self, id: K, ban: Ban, now: f64) -> AddOutcome {
        if ban.end_key() < now {
            return AddOutcome::Expired;
        }
        if let Some(old) = self.bans.get_mut(&id) {
            if ban.end_key() <= old.end_key() {
                return AddOutcome::AlreadyBanned;
            }
            let previous_end = old.end();
            if ban.is_permanent() {
                old.bantime = ban.bantime;
            } else {
                // Ends when the new ban ends (fail2ban: `eob - banned.getTime()`), also when the
                // new ban started before the old one (an older line read late): a `max(0)` here
                // made it end later than either (found by tests/prop_bookkeeping.rs).
                old.bantime = ban.banned_at + ban.bantime - old.banned_at;
            }
            old.ban_count = old.ban_count.max(ban.ban_count);
            let updated = *old;
            self.schedule.schedule(id, updated.end());
            return AddOutcome::Prolonged {
                previous_end,
                ban: updated,
            };
        }
        self.schedule.schedule(id.clone(), ban.end());
        self.by_start.insert((Deadline(ban.banned_at), id.clone()));
        self.bans.insert(id, ban);
        self.total += 1;
        AddOutcome::Added
    }

    /// Unbans `id` now (by hand); returns the ban it had.
    pub fn remove(&mut self, id: &K) -> Option<Ban> {
        self.schedule.cancel(id);
        let ban = self.bans.remove(id)?;
        self.by_start.remove(&(Deadline(ban.banned_at), id.clone()));
        Some(ban)
    }

    /// Removes and returns, earliest end first, the bans that ended at or before `now`.
    pub fn expire(&mut self, now: f64) -> Vec<(K, Ban)> {
        let mut out = Vec::new();
        for e in self.schedule.expire(now) {
            if let Some(b) = self.bans.remove(&e.id) {
                self.by_start.remove(&(Deadline(b.banned_at), e.id.clone()));
                out.push((e.id, b));
            }
        }
        out
    }

    /// The earliest end of a non-permanent ban.
    pub fn next_deadline(&self) -> Option<f64> {
        self.schedule.next_deadline()
    }

    /// The ban of `id`, if banned.
    pub fn get(&self, id: &K) -> Option<&Ban> {
        self.bans.get(id)
    }

    /// Whether `id` is banned.
    pub fn is_banned(&self, id: &K) -> bool {
        self.bans.contains_key(id)
    }

    /// Number of current bans ("Currently banned").
    pub fn len(&self) -> usize {
        self.bans.len()
    }

    /// Whether nothing is banned.
    pub fn is_empty(&self) -> bool {
        self.bans.is_empty()
    }

    /// Bans added since creation ("Total banned").
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The current bans ordered by end (then id; permanent last), as `fail2ban-client get <jail> banip
    /// --with-time` lists them. A walk of the unban schedule: no sort.
    pub fn by_end(&self) -> Vec<(&K, &Ban)> {
        self.schedule
            .iter_by_deadline()
            .filter_map(|(k, _)| self.bans.get_key_value(k))
            .collect()
    }

    /// The current bans ordered by start (`banned_at`, then id), as `status` lists them. A walk of an
    /// index: no sort.
    pub fn by_start(&self) -> impl Iterator<Item = (&K, &Ban)> {
        self.by_start
            .iter()
            .filter_map(|(_, k)| self.bans.get_key_value(k))
    }

    /// The bans whose ids lie in `range`, in id order (`O(log n)` to the first).
    pub fn range<R: std::ops::RangeBounds<K>>(&self, range: R) -> impl Iterator<Item = (&K, &Ban)> {
        self.bans.range(range)
    }

    /// Removes every ban (`unban --all`, jail stop), returning them.
    pub fn flush(&mut self) -> Vec<(K, Ban)> {
        self.schedule.clear();
        self.by_start.clear();
        std::mem::take(&mut self.bans).into_iter().collect()
    }
}
