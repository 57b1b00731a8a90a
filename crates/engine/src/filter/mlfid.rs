//! The multi-line failure cache: per connection id (`<F-MLFID>`), what was seen so far.
//!
//! Bounded like fail2ban's: at most `max_count` entries (oldest evicted first) that live
//! `max_age` seconds from their creation. Time comes from the caller's clock.

use std::collections::VecDeque;

use super::FailData;

/// A cached connection: its key's hash, key, data and expiry.
type Entry = (u64, String, FailData, f64);

/// FNV-1a of a key: entries are compared by hash before their keys (connection ids of one
/// program share long prefixes, so comparing the text alone costs a `memcmp` per entry).
fn hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[derive(Debug)]
pub(super) struct MlfidCache {
    entries: VecDeque<Entry>,
    /// `entries[i].0`, scanned without touching the entries.
    hashes: VecDeque<u64>,
    max_count: usize,
    max_age: f64,
}

impl MlfidCache {
    pub(super) fn new(max_count: usize, max_age: f64) -> Self {
        MlfidCache {
            entries: VecDeque::new(),
            hashes: VecDeque::new(),
            max_count,
            max_age,
        }
    }

    /// The data of the live entry for `key`, taken out (the entry keeps its place and expiry
    /// with empty data until [`MlfidCache::update`] puts the merged data back); an expired
    /// entry is dropped.
    fn position(&self, key: &str) -> Option<usize> {
        let h = hash(key);
        // Keys are unique; the newest entries (live connections) are searched first.
        self.hashes
            .iter()
            .enumerate()
            .rev()
            .find(|&(i, &eh)| eh == h && self.entries[i].1 == key)
            .map(|(i, _)| i)
    }

    pub(super) fn take(&mut self, key: &str, now: f64) -> Option<FailData> {
        let pos = self.position(key)?;
        if self.entries[pos].3 > now {
            return Some(std::mem::take(&mut self.entries[pos].2));
        }
        self.entries.remove(pos);
        self.hashes.remove(pos);
        None
    }

    /// Adds a new entry (replacing one with the same key), evicting the oldest ones when full.
    pub(super) fn insert(&mut self, key: &str, data: FailData, now: f64) {
        if let Some(pos) = self.position(key) {
            self.entries.remove(pos);
            self.hashes.remove(pos);
        }
        if self.entries.len() >= self.max_count {
            while let Some((_, _, _, expires)) = self.entries.pop_front() {
                self.hashes.pop_front();
                if expires > now && self.entries.len() < self.max_count {
                    break;
                }
            }
        }
        self.entries
            .push_back((hash(key), key.to_string(), data, now + self.max_age));
        self.hashes.push_back(hash(key));
    }

    /// Replaces the data of an existing entry, keeping its expiry.
    pub(super) fn update(&mut self, key: &str, data: FailData) {
        if let Some(pos) = self.position(key) {
            self.entries[pos].2 = data;
        }
    }

    pub(super) fn unset(&mut self, key: &str) {
        if let Some(pos) = self.position(key) {
            self.entries.remove(pos);
            self.hashes.remove(pos);
        }
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
