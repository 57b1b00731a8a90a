//! Compiled screens shared by every detector of the process.
//!
//! A daemon or a test run builds many detectors over the same template lists (fail2ban's
//! defaults above all); their screens are compiled once and cloned (clones share the
//! compiled automata and get fresh search caches).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// At most this many lists are remembered per kind: a daemon has a few dozen (the defaults and
/// each jail's `datepattern`); beyond that (run-time `set <jail> datepattern` after another,
/// found by the datepattern fuzzer as memory growing without bound) a list is compiled for its
/// detector alone.
const MAX_ENTRIES: usize = 256;

/// A process-wide map from a list of regex sources to what was compiled from it.
pub(crate) struct Memo<T> {
    map: OnceLock<Mutex<HashMap<Vec<String>, T>>>,
}

impl<T: Clone> Memo<T> {
    pub(crate) const fn new() -> Self {
        Memo {
            map: OnceLock::new(),
        }
    }

    /// The value compiled for `key`, compiled by `build` the first time.
    pub(crate) fn get(&self, key: &[String], build: impl FnOnce() -> T) -> T {
        let map = self.map.get_or_init(Default::default);
        if let Ok(m) = map.lock()
            && let Some(v) = m.get(key)
        {
            return v.clone();
        }
        // compiled without the lock held (two threads may both compile; either result is fine)
        let v = build();
        if let Ok(mut m) = map.lock()
            && m.len() < MAX_ENTRIES
        {
            m.entry(key.to_vec()).or_insert_with(|| v.clone());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the datepattern fuzzer: every distinct pattern stayed compiled for the life of
    /// the process (2 GB after 115,000 inputs). The memo now holds at most MAX_ENTRIES lists.
    #[test]
    fn the_memo_is_bounded() {
        static MEMO: Memo<Vec<u8>> = Memo::new();
        for i in 0..MAX_ENTRIES * 3 {
            let v = MEMO.get(&[format!("pattern {i}")], || vec![0; 1024]);
            assert_eq!(v.len(), 1024);
        }
        let len = MEMO.map.get().unwrap().lock().unwrap().len();
        assert_eq!(len, MAX_ENTRIES);
        // What is remembered is still shared.
        let mut built = false;
        MEMO.get(&["pattern 0".to_string()], || {
            built = true;
            Vec::new()
        });
        assert!(!built);
    }
}
