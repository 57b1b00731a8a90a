//! fail2ban's `Utils.Cache`: values by key, each trusted for `max_time` seconds from when it
//! was set, at most `max_count` of them (when full, the oldest set go first). Used by
//! `ignorecache` ([`crate::ignore::IgnoreCache`]) and by the host names of log lines
//! (`usedns`, [`crate::jail::Jail`]). Time comes from the caller.

use std::collections::{HashMap, VecDeque};

/// A bounded cache with a time to live.
#[derive(Debug, Clone)]
pub struct TtlCache<V> {
    max_count: usize,
    max_time: f64,
    /// Value, expiry, and the number of the `set` that put it there.
    entries: HashMap<String, (V, f64, u64)>,
    /// `(set number, key)` oldest first; a slot whose number is not its entry's (the entry was
    /// dropped or set again since) is stale and skipped.
    order: VecDeque<(u64, String)>,
    next_seq: u64,
}

impl<V> TtlCache<V> {
    /// At most `max_count` entries (at least one), each living `max_time` seconds.
    pub fn new(max_count: usize, max_time: f64) -> Self {
        TtlCache {
            max_count: max_count.max(1),
            max_time,
            entries: HashMap::new(),
            order: VecDeque::new(),
            next_seq: 0,
        }
    }

    /// The value of `key` at `now`, when set and not expired (an expired one is dropped).
    pub fn get(&mut self, key: &str, now: f64) -> Option<&V> {
        if self.entries.get(key).is_some_and(|e| e.1 <= now) {
            self.entries.remove(key);
        }
        self.entries.get(key).map(|e| &e.0)
    }

    /// Sets `key` to `v` at `now`, dropping the oldest entries while the cache is full.
    pub fn set(&mut self, key: String, v: V, now: f64) {
        if !self.entries.contains_key(&key) {
            while self.entries.len() >= self.max_count {
                let Some((seq, old)) = self.order.pop_front() else {
                    break;
                };
                if self.entries.get(&old).is_some_and(|e| e.2 == seq) {
                    self.entries.remove(&old);
                }
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.push_back((seq, key.clone()));
        self.entries.insert(key, (v, now + self.max_time, seq));
        // Stale slots leave as they reach the front; bounded when none does for long.
        if self.order.len() > 2 * self.max_count {
            let entries = &self.entries;
            self.order
                .retain(|(seq, k)| entries.get(k).is_some_and(|e| e.2 == *seq));
        }
    }

    /// `(max_count, max_time)`.
    pub fn limits(&self) -> (usize, f64) {
        (self.max_count, self.max_time)
    }

    /// Entries held (expired ones included until looked up or pushed out).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entry held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::TtlCache;

    #[test]
    fn values_expire_and_the_oldest_go_first_when_full() {
        let mut c = TtlCache::new(2, 300.0);
        c.set("a".into(), 1, 0.0);
        c.set("b".into(), 2, 10.0);
        assert_eq!(c.get("a", 299.9), Some(&1));
        assert_eq!(c.get("a", 300.0), None, "expired at max_time");
        c.set("a".into(), 3, 300.0);
        c.set("c".into(), 4, 301.0);
        // Full at two: "b" (set first of those held) went out when "c" came; the slot "a"
        // left when it expired is skipped, not taken for the "a" set again.
        assert_eq!(c.get("b", 301.0), None);
        assert_eq!(c.get("a", 301.0), Some(&3));
        assert_eq!(c.get("c", 301.0), Some(&4));
        assert_eq!(c.len(), 2);
    }
}
