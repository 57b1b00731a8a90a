//! The multi-line failure cache: per connection id (`<F-MLFID>`), what was seen so far.
//!
//! Bounded like fail2ban's: at most `max_count` entries (oldest evicted first) that live
//! `max_age` seconds from their creation. Time comes from the caller's clock. Lookups are
//! hashed (one line looks its id up two or three times); the creation order is a queue in
//! which an entry replaced or removed since leaves a stale slot, skipped when it comes up.

use ferroban_matcher::Text;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use super::FailData;

/// A cached connection: its data (shared with the result that made it; absent while a
/// new entry waits for its first data), expiry and creation number.
struct Entry {
    data: Option<Arc<FailData>>,
    expires: f64,
    seq: u64,
}

/// A word-at-a-time multiplicative hash of the connection ids (SipHash cost more than the
/// rest of a lookup). Not keyed: a crafted set of colliding ids costs at most a scan of the
/// cache, which holds `max_count` (100) entries.
#[derive(Default)]
struct KeyHasher(u64);

impl KeyHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for KeyHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn finish(&self) -> u64 {
        // the high bits pick hashbrown's control bytes: fold the low ones in
        self.0 ^ (self.0 >> 29)
    }
}

pub(super) struct MlfidCache {
    /// Keyed by the connection id as an inline text (ids up to 24 bytes, such as
    /// `host sshd[12345]: `, cost no allocation; the queue holds a copy).
    entries: HashMap<Text, Entry, BuildHasherDefault<KeyHasher>>,
    /// `(creation number, key)` oldest first; a slot whose number differs from its entry's
    /// (or whose entry is gone) is stale.
    order: VecDeque<(u64, Text)>,
    next_seq: u64,
    max_count: usize,
    max_age: f64,
}

impl std::fmt::Debug for MlfidCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MlfidCache")
            .field("entries", &self.entries.len())
            .field("max_count", &self.max_count)
            .finish_non_exhaustive()
    }
}

impl MlfidCache {
    pub(super) fn new(max_count: usize, max_age: f64) -> Self {
        MlfidCache {
            entries: HashMap::default(),
            order: VecDeque::new(),
            next_seq: 0,
            max_count,
            max_age,
        }
    }

    /// The data of the live entry for `key`, taken out (the entry keeps its place and expiry
    /// with empty data until [`MlfidCache::update`] puts the merged data back); an expired
    /// entry is dropped.
    pub(super) fn take(&mut self, key: &str, now: f64) -> Option<Arc<FailData>> {
        let e = self.entries.get_mut(key)?;
        if e.expires > now {
            return Some(e.data.take().unwrap_or_default());
        }
        self.entries.remove(key);
        self.compact();
        None
    }

    /// Adds a new entry (replacing one with the same key), evicting the oldest ones when full.
    pub(super) fn insert(&mut self, key: &str, data: Option<Arc<FailData>>, now: f64) {
        self.entries.remove(key);
        if self.entries.len() >= self.max_count {
            // fail2ban's order: the oldest go first, until one that was still alive has
            // gone and there is room
            while let Some((seq, k)) = self.order.pop_front() {
                let live = self.entries.get(&k).is_some_and(|e| e.seq == seq);
                if !live {
                    continue;
                }
                let expires = self.entries.remove(&k).map_or(0.0, |e| e.expires);
                if expires > now && self.entries.len() < self.max_count {
                    break;
                }
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let key = Text::from(key);
        self.entries.insert(
            key.clone(),
            Entry {
                data,
                expires: now + self.max_age,
                seq,
            },
        );
        self.order.push_back((seq, key));
        self.compact();
    }

    /// Replaces the data of an existing entry, keeping its expiry.
    pub(super) fn update(&mut self, key: &str, data: Arc<FailData>) {
        if let Some(e) = self.entries.get_mut(key) {
            e.data = Some(data);
        }
    }

    pub(super) fn unset(&mut self, key: &str) {
        if self.entries.remove(key).is_some() {
            self.compact();
        }
    }

    /// Drops stale slots from the queue once they outnumber the entries (the queue stays
    /// within twice the number of entries, plus one).
    fn compact(&mut self) {
        if self.order.len() > 2 * self.entries.len() + 1 {
            let entries = &self.entries;
            self.order
                .retain(|(seq, k)| entries.get(k).is_some_and(|e| e.seq == *seq));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_and_evicts() {
        let mut c = MlfidCache::new(2, 10.0);
        c.insert("a", None, 0.0);
        c.insert("b", None, 1.0);
        assert!(c.take("a", 5.0).is_some());
        assert!(c.take("a", 10.0).is_none());
        c.insert("c", None, 2.0);
        c.insert("d", None, 3.0);
        assert!(c.take("b", 3.0).is_none(), "oldest evicted when full");
        assert!(c.take("c", 3.0).is_some());
        assert!(c.take("d", 3.0).is_some());
    }

    #[test]
    fn finds_keys_after_removals_and_evictions() {
        let mut c = MlfidCache::new(3, 100.0);
        let data = |u: &str| {
            Arc::new(FailData {
                fields: vec![("user", ferroban_matcher::GroupValue::Str(u.into()))],
                ..FailData::default()
            })
        };
        for k in ["sshd[1]: ", "sshd[2]: ", "sshd[3]: "] {
            c.insert(k, Some(data(k)), 0.0);
        }
        c.update("sshd[1]: ", data("one"));
        c.unset("sshd[2]: ");
        c.insert("sshd[4]: ", Some(data("four")), 1.0);
        c.insert("sshd[5]: ", Some(data("five")), 2.0); // full: evicts sshd[1]
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
