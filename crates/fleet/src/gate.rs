//! When a local decision may be published: a ban only once its local actions ran (the
//! firewall command finished, successfully or not), so that the fleet never learns of a ban
//! before the node that decided it enforces it. Pure bookkeeping of the fleet thread; the
//! intents themselves stay in `fleet_intent` (durable) until they are taken.
//!
//! - An intent written in this run is released by a report of the daemon that the actions of
//!   one ban of its (jail, address) ran ([`Gate::enforced`]). Reports are counted per (jail,
//!   address), so a report that comes before its intent is read (a store that wrote late) is
//!   kept for it.
//! - An intent of an earlier run (a crash or a stop between the commit and the publication:
//!   whether its actions ran is unknown) is released once its jail's start-up restore ran
//!   ([`Gate::restored`]), which enforces every stored ban again; those of jails that are not
//!   running are released when the daemon says which jails started ([`Gate::started`]).
//! - Unbans wait for nothing, but the decisions of one (jail, address) are taken in their
//!   order: nothing passes a ban that waits (the last decision must stay the last one).

use std::collections::{HashMap, HashSet, VecDeque};

use crate::db::Intent;

type Key = (String, String);

/// The intents read and not yet taken, and what releases them.
#[derive(Debug, Default)]
pub struct Gate {
    /// Per (jail, address), oldest first.
    held: HashMap<Key, VecDeque<Intent>>,
    /// Keys whose front may have become releasable since the last [`Gate::take`].
    dirty: HashSet<Key>,
    len: usize,
    /// The last row read.
    read_to: i64,
    /// Rows up to this one were written before this start.
    boot_seq: i64,
    /// Jails whose restore ran in this run.
    restored: HashSet<String>,
    /// The jails the daemon started (once it said so).
    started: Option<HashSet<String>>,
    /// Reports of actions that ran, not yet matched with an intent.
    enforced: HashMap<Key, u32>,
    /// Rows taken whose deletion is not known to be committed (read again after a rollback:
    /// they are taken again at once, their report was used).
    taken: HashSet<i64>,
}

impl Gate {
    /// A gate for a start at which the last intent row was `boot_seq`.
    pub fn new(boot_seq: i64) -> Gate {
        Gate {
            boot_seq,
            ..Gate::default()
        }
    }

    /// The last row read (read the next ones after it).
    pub fn read_to(&self) -> i64 {
        self.read_to
    }

    /// Intents waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// An intent read from the table (in row order).
    pub fn add(&mut self, i: Intent) {
        if i.seq <= self.read_to {
            return;
        }
        self.read_to = i.seq;
        let key = (i.jail.clone(), i.ip.clone());
        self.held.entry(key.clone()).or_default().push_back(i);
        self.dirty.insert(key);
        self.len += 1;
    }

    /// The actions of one ban of `ip` in `jail` ran.
    pub fn enforced(&mut self, jail: &str, ip: &str) {
        let key = (jail.to_string(), ip.to_string());
        *self.enforced.entry(key.clone()).or_default() += 1;
        self.dirty.insert(key);
    }

    /// The start-up restore of `jail` ran: its intents of an earlier run are released.
    pub fn restored(&mut self, jail: &str) {
        if self.restored.insert(jail.to_string()) {
            self.all_dirty();
        }
    }

    /// The daemon started `jails`: the intents of an earlier run of other jails (removed, or
    /// failing to start) are released; those of `jails` wait for their restore.
    pub fn started(&mut self, jails: impl IntoIterator<Item = String>) {
        self.started = Some(jails.into_iter().collect());
        self.all_dirty();
    }

    fn all_dirty(&mut self) {
        self.dirty.extend(self.held.keys().cloned());
    }

    fn releasable(&mut self, i: &Intent) -> bool {
        if !i.ban || self.taken.contains(&i.seq) {
            return true;
        }
        if i.seq <= self.boot_seq {
            return self.restored.contains(&i.jail)
                || self.started.as_ref().is_some_and(|s| !s.contains(&i.jail));
        }
        let key = (i.jail.clone(), i.ip.clone());
        match self.enforced.get_mut(&key) {
            Some(n) => {
                *n -= 1;
                if *n == 0 {
                    self.enforced.remove(&key);
                }
                true
            }
            None => false,
        }
    }

    /// The intents that may be published now, in row order. Call [`Gate::committed`] once
    /// their rows are deleted, or [`Gate::rolled_back`].
    pub fn take(&mut self) -> Vec<Intent> {
        let mut out = Vec::new();
        for key in std::mem::take(&mut self.dirty) {
            let Some(mut q) = self.held.remove(&key) else {
                continue;
            };
            while let Some(front) = q.front() {
                let front = front.clone();
                if !self.releasable(&front) {
                    break;
                }
                self.taken.insert(front.seq);
                out.push(front);
                q.pop_front();
                self.len -= 1;
            }
            if !q.is_empty() {
                self.held.insert(key, q);
            }
        }
        out.sort_by_key(|i| i.seq);
        out
    }

    /// The rows taken are deleted (committed).
    pub fn committed(&mut self) {
        self.taken.clear();
    }

    /// The deletion of the rows taken was rolled back: read every row again (those taken are
    /// released at once).
    pub fn rolled_back(&mut self) {
        self.held.clear();
        self.dirty.clear();
        self.len = 0;
        self.read_to = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i(seq: i64, jail: &str, ip: &str, ban: bool) -> Intent {
        Intent {
            seq,
            jail: jail.into(),
            ip: ip.into(),
            ban,
            ends_at: None,
        }
    }

    fn seqs(v: &[Intent]) -> Vec<i64> {
        v.iter().map(|i| i.seq).collect()
    }

    #[test]
    fn a_ban_waits_for_its_actions_and_an_unban_waits_behind_it() {
        let mut g = Gate::new(0);
        g.add(i(1, "sshd", "192.0.2.1", true));
        g.add(i(2, "sshd", "192.0.2.2", true));
        g.add(i(3, "sshd", "192.0.2.1", false));
        g.add(i(4, "web", "192.0.2.3", false));
        // Only the unban of another address passes.
        assert_eq!(seqs(&g.take()), vec![4]);
        assert_eq!(g.len(), 3);
        g.enforced("sshd", "192.0.2.2");
        assert_eq!(seqs(&g.take()), vec![2]);
        // The ban of .1 ran: it goes, and its unban right behind it.
        g.enforced("sshd", "192.0.2.1");
        assert_eq!(seqs(&g.take()), vec![1, 3]);
        assert!(g.is_empty());
        assert!(g.take().is_empty());
    }

    #[test]
    fn a_report_before_its_intent_is_kept_for_it_and_used_once() {
        let mut g = Gate::new(0);
        g.enforced("sshd", "192.0.2.1");
        assert!(g.take().is_empty());
        g.add(i(7, "sshd", "192.0.2.1", true));
        g.add(i(8, "sshd", "192.0.2.1", true));
        assert_eq!(seqs(&g.take()), vec![7]);
        g.committed();
        assert_eq!(g.len(), 1, "one report releases one ban");
        g.enforced("sshd", "192.0.2.1");
        assert_eq!(seqs(&g.take()), vec![8]);
    }

    #[test]
    fn intents_of_an_earlier_run_wait_for_their_jails_restore() {
        let mut g = Gate::new(3);
        g.add(i(1, "sshd", "192.0.2.1", true));
        g.add(i(2, "gone", "192.0.2.2", true));
        g.add(i(3, "web", "192.0.2.3", true));
        g.add(i(4, "sshd", "192.0.2.1", true));
        // A report of this run does not release a ban of the earlier run.
        g.enforced("sshd", "192.0.2.1");
        assert!(g.take().is_empty());
        g.started(["sshd".to_string(), "web".to_string()]);
        assert_eq!(seqs(&g.take()), vec![2], "its jail is not running");
        g.restored("sshd");
        assert_eq!(seqs(&g.take()), vec![1, 4]);
        g.restored("web");
        assert_eq!(seqs(&g.take()), vec![3]);
    }

    #[test]
    fn after_a_rollback_the_rows_taken_are_taken_again_at_once() {
        let mut g = Gate::new(0);
        g.add(i(1, "sshd", "192.0.2.1", true));
        g.add(i(2, "sshd", "192.0.2.2", true));
        g.enforced("sshd", "192.0.2.1");
        assert_eq!(seqs(&g.take()), vec![1]);
        g.rolled_back();
        assert_eq!(g.read_to(), 0);
        // The table still has both rows.
        g.add(i(1, "sshd", "192.0.2.1", true));
        g.add(i(2, "sshd", "192.0.2.2", true));
        assert_eq!(seqs(&g.take()), vec![1]);
        g.committed();
        assert_eq!(g.len(), 1);
    }
}
