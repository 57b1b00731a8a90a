//! Compiled screens shared by every detector of the process.
//!
//! A daemon or a test run builds many detectors over the same template lists (fail2ban's
//! defaults above all); their screens are compiled once and cloned (clones share the
//! compiled automata and get fresh search caches).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

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
        if let Ok(mut m) = map.lock() {
            m.entry(key.to_vec()).or_insert_with(|| v.clone());
        }
        v
    }
}
