//! The multi-line failure cache: per connection id (`<F-MLFID>`), what was seen so far.
//!
//! Bounded like fail2ban's: at most `max_count` entries (oldest evicted first) that live
//! `max_age` seconds from their creation. Time comes from the caller's clock.

use std::collections::VecDeque;

use super::FailData;

/// A cached connection: its key, data and expiry.
type Entry = (String, FailData, f64);

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
    /// Hash of each entry's key (same index), scanned without touching the entries.
    hashes: VecDeque<u64>,
    /// Index of the entry found or added last (one line looks its key up two or three times).
    last: Option<usize>,
    max_count: usize,
    max_age: f64,
}

impl MlfidCache {
    pub(super) fn new(max_count: usize, max_age: f64) -> Self {
        MlfidCache {
            entries: VecDeque::new(),
            hashes: VecDeque::new(),
            last: None,
            max_count,
            max_age,
        }
    }

    /// Index of the entry for `key`.
    fn position(&mut self, key: &str) -> Option<usize> {
        let h = hash(key);
        let is = |i: usize| self.hashes[i] == h && self.entries[i].0 == key;
        if let Some(i) = self.last.filter(|&i| i < self.entries.len() && is(i)) {
            return Some(i);
        }
        // Keys are unique; the newest entries (live connections) are searched first.
        let found = self
            .hashes
            .iter()
            .enumerate()
            .rev()
            .find(|&(i, &eh)| eh == h && self.entries[i].0 == key)
            .map(|(i, _)| i);
        self.last = found;
        found
    }

    fn remove(&mut self, pos: usize) {
        self.entries.remove(pos);
        self.hashes.remove(pos);
        self.last = None;
    }

    /// The data of the live entry for `key`, taken out (the entry keeps its place and expiry
    /// with empty data until [`MlfidCache::update`] puts the merged data back); an expired
    /// entry is dropped.
    pub(super) fn take(&mut self, key: &str, now: f64) -> Option<FailData> {
        let pos = self.position(key)?;
        if self.entries[pos].2 > now {
            return Some(std::mem::take(&mut self.entries[pos].1));
        }
        self.remove(pos);
        None
    }

    /// Adds a new entry (replacing one with the same key), evicting the oldest ones when full.
    pub(super) fn insert(&mut self, key: &str, data: FailData, now: f64) {
        if let Some(pos) = self.position(key) {
            self.remove(pos);
        }
        if self.entries.len() >= self.max_count {
            while let Some((_, _, expires)) = self.entries.pop_front() {
                self.hashes.pop_front();
                if expires > now && self.entries.len() < self.max_count {
                    break;
                }
            }
        }
        self.entries
            .push_back((key.to_string(), data, now + self.max_age));
        self.hashes.push_back(hash(key));
        self.last = Some(self.entries.len() - 1);
    }

    /// Replaces the data of an existing entry, keeping its expiry.
    pub(super) fn update(&mut self, key: &str, data: FailData) {
        if let Some(pos) = self.position(key) {
            self.entries[pos].1 = data;
        }
    }

    pub(super) fn unset(&mut self, key: &str) {
        if let Some(pos) = self.position(key) {
            self.remove(pos);
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

    #[test]
    fn finds_keys_after_removals_and_evictions() {
        let mut c = MlfidCache::new(3, 100.0);
        let data = |u: &str| FailData {
            fields: vec![("user".into(), ferroban_matcher::GroupValue::Str(u.into()))],
            ..FailData::default()
        };
        for k in ["sshd[1]: ", "sshd[2]: ", "sshd[3]: "] {
            c.insert(k, data(k), 0.0);
        }
        c.update("sshd[1]: ", data("one"));
        c.unset("sshd[2]: ");
        c.insert("sshd[4]: ", data("four"), 1.0);
        c.insert("sshd[5]: ", data("five"), 2.0); // full: evicts sshd[1]
        assert!(c.take("sshd[1]: ", 3.0).is_none());
        assert!(c.take("sshd[2]: ", 3.0).is_none());
        for (k, u) in [
            ("sshd[3]: ", "sshd[3]: "),
            ("sshd[5]: ", "five"),
            ("sshd[4]: ", "four"),
        ] {
            assert_eq!(c.take(k, 3.0).unwrap().get_str("user"), Some(u), "{k}");
            c.update(k, data(u));
            assert_eq!(
                c.take(k, 3.0).unwrap().get_str("user"),
                Some(u),
                "{k} again"
            );
            c.update(k, data(u));
        }
    }
}
