//! The multi-line failure cache: per connection id (`<F-MLFID>`), what was seen so far.
//!
//! Bounded like fail2ban's: at most `max_count` entries (oldest evicted first) that live
//! `max_age` seconds from their creation. Time comes from the caller's clock.

use std::collections::VecDeque;

use super::FailData;

#[derive(Debug)]
pub(super) struct MlfidCache {
    entries: VecDeque<(String, FailData, f64)>,
    max_count: usize,
    max_age: f64,
}

impl MlfidCache {
    pub(super) fn new(max_count: usize, max_age: f64) -> Self {
        MlfidCache {
            entries: VecDeque::new(),
            max_count,
            max_age,
        }
    }

    /// The data of the live entry for `key`, taken out (the entry keeps its place and expiry
    /// with empty data until [`MlfidCache::update`] puts the merged data back); an expired
    /// entry is dropped.
    pub(super) fn take(&mut self, key: &str, now: f64) -> Option<FailData> {
        // Keys are unique; the newest entries (live connections) are searched first.
        let pos = self.entries.iter().rposition(|(k, _, _)| k == key)?;
        if self.entries[pos].2 > now {
            return Some(std::mem::take(&mut self.entries[pos].1));
        }
        self.entries.remove(pos);
        None
    }

    /// Adds a new entry (replacing one with the same key), evicting the oldest ones when full.
    pub(super) fn insert(&mut self, key: &str, data: FailData, now: f64) {
        if let Some(pos) = self.entries.iter().rposition(|(k, _, _)| k == key) {
            self.entries.remove(pos);
        }
        if self.entries.len() >= self.max_count {
            while let Some((_, _, expires)) = self.entries.pop_front() {
                if expires > now && self.entries.len() < self.max_count {
                    break;
                }
            }
        }
        self.entries
            .push_back((key.to_string(), data, now + self.max_age));
    }

    /// Replaces the data of an existing entry, keeping its expiry.
    pub(super) fn update(&mut self, key: &str, data: FailData) {
        if let Some(e) = self.entries.iter_mut().rev().find(|(k, _, _)| k == key) {
            e.1 = data;
        }
    }

    pub(super) fn unset(&mut self, key: &str) {
        self.entries.retain(|(k, _, _)| k != key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_and_evicts() {
        let mut c = MlfidCache::new(2, 10.0);
        c.insert("a", FailData::default(), 0.0);
        c.insert("b", FailData::default(), 1.0);
        assert!(c.take("a", 5.0).is_some());
        assert!(c.take("a", 10.0).is_none());
        c.insert("c", FailData::default(), 2.0);
        c.insert("d", FailData::default(), 3.0);
        assert!(c.take("b", 3.0).is_none(), "oldest evicted when full");
        assert!(c.take("c", 3.0).is_some());
        assert!(c.take("d", 3.0).is_some());
    }
}
