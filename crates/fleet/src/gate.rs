//! When a local decision may be published: a ban only once its local actions ran (the
//! firewall command finished, successfully or not), so that the fleet never learns of a ban
//! before the node that decided it enforces it. Pure bookkeeping of the fleet thread; the
//! intents themselves stay in `fleet_intent` (durable) until they are taken.
//!
//! - An intent written in this run is released by the daemon's report that the actions of
//!   its ban ran ([`Gate::enforced`]), which names the intent's tag (the daemon's id of the
//!   decision, carried from the ban through its action task): a report releases its own row,
//!   never another row of the same (jail, address) (a re-ban, or a row whose actions never
//!   reported). A report that comes before its intent is read (a store that wrote late) is
//!   kept for it.
//! - The decisions of one (jail, address) share one subject, on which only the last one
//!   counts. A ban released by its report therefore also releases the older decisions of its
//!   (jail, address) still held in front of it: they are superseded, deleted unpublished.
//! - An intent of an earlier run (a crash or a stop between the commit and the publication:
//!   whether its actions ran is unknown) is released once its jail's start-up restore ran
//!   ([`Gate::restored`]), which enforces every stored ban again; those of jails that are not
//!   running are released when the daemon says which jails started ([`Gate::started`]).
//! - Unbans wait for nothing, but the decisions of one (jail, address) are taken in their
//!   order: nothing passes a ban that waits (the last decision must stay the last one).

use std::collections::{HashMap, HashSet, VecDeque};

use crate::db::Intent;

type Key = (String, String);

/// What [`Gate::take`] releases.
#[derive(Debug, Default)]
pub struct Taken {
    /// To publish, in row order.
    pub publish: Vec<Intent>,
    /// Rows superseded by a later decision of their (jail, address) released with them.
    pub superseded: Vec<i64>,
}

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
    /// Tags of bans whose actions ran, not yet matched with an intent.
    enforced: HashSet<i64>,
    /// Rows taken whose deletion is not known to be committed (read again after a rollback:
    /// they are taken again at once, their report was used).
    taken: HashSet<i64>,
    /// Benchmarks only ([`Gate::without_enforcement_wait`]): bans go without waiting.
    no_wait: bool,
}

impl Gate {
    /// A gate for a start at which the last intent row was `boot_seq`.
    pub fn new(boot_seq: i64) -> Gate {
        Gate {
            boot_seq,
            ..Gate::default()
        }
    }

    /// For benchmarks only (`FERROBAN_BENCH_FLEET_NO_ENFORCEMENT_WAIT=1`): bans are published
    /// as soon as they are read, without waiting for their local actions, as before the gate
    /// existed; it measures what the wait costs. Never in production: the fleet could then
    /// learn of a ban before the node that decided it enforces it.
    pub fn without_enforcement_wait(mut self) -> Gate {
        self.no_wait = true;
        self
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

    /// The actions of the ban whose intent has tag `tag`, of `ip` in `jail`, ran.
    pub fn enforced(&mut self, jail: &str, ip: &str, tag: i64) {
        self.enforced.insert(tag);
        self.dirty.insert((jail.to_string(), ip.to_string()));
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

    /// Whether `i` may go without a report of its own (an unban, a row taken before, a row of
    /// an earlier run whose jail was restored or does not run).
    fn free(&self, i: &Intent) -> bool {
        if !i.ban || self.taken.contains(&i.seq) || self.no_wait {
            return true;
        }
        i.seq <= self.boot_seq
            && (self.restored.contains(&i.jail)
                || self.started.as_ref().is_some_and(|s| !s.contains(&i.jail)))
    }

    /// Whether `i` is a ban of this run whose actions were reported.
    fn reported(&self, i: &Intent) -> bool {
        i.ban && i.seq > self.boot_seq && i.tag.is_some_and(|t| self.enforced.contains(&t))
    }

    /// The intents that may be published now, in row order, and the rows superseded (older
    /// decisions of the same (jail, address) in front of a ban released by its report: deleted
    /// without publishing). Call [`Gate::committed`] once their rows are deleted, or
    /// [`Gate::rolled_back`].
    pub fn take(&mut self) -> Taken {
        let mut out = Taken::default();
        for key in std::mem::take(&mut self.dirty) {
            let Some(mut q) = self.held.remove(&key) else {
                continue;
            };
            // The last ban of the key whose actions were reported: it and everything in front.
            if let Some(last) = q.iter().rposition(|i| self.reported(i)) {
                for (k, i) in q.drain(..=last).enumerate() {
                    if let Some(t) = i.tag.filter(|_| self.reported(&i)) {
                        self.enforced.remove(&t);
                    }
                    self.taken.insert(i.seq);
                    self.len -= 1;
                    if k == last {
                        out.publish.push(i);
                    } else {
                        out.superseded.push(i.seq);
                    }
                }
            }
            while let Some(front) = q.front() {
                if !(self.free(front) || self.reported(front)) {
                    break;
                }
                let front = q.pop_front().expect("a front");
                if let Some(t) = front.tag.filter(|_| self.reported(&front)) {
                    self.enforced.remove(&t);
                }
                self.taken.insert(front.seq);
                out.publish.push(front);
                self.len -= 1;
            }
            if !q.is_empty() {
                self.held.insert(key, q);
            }
        }
        out.publish.sort_by_key(|i| i.seq);
        out.superseded.sort_unstable();
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

    /// Intent row `seq`; its tag is `100 + seq` (the daemon's id, not the row's).
    fn i(seq: i64, jail: &str, ip: &str, ban: bool) -> Intent {
        Intent {
            seq,
            jail: jail.into(),
            ip: ip.into(),
            ban,
            ends_at: None,
            tag: Some(100 + seq),
        }
    }

    fn seqs(t: &Taken) -> Vec<i64> {
        t.publish.iter().map(|i| i.seq).collect()
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
        g.enforced("sshd", "192.0.2.2", 102);
        assert_eq!(seqs(&g.take()), vec![2]);
        // The ban of .1 ran: it goes, and its unban right behind it.
        g.enforced("sshd", "192.0.2.1", 101);
        assert_eq!(seqs(&g.take()), vec![1, 3]);
        assert!(g.is_empty());
        assert!(g.take().publish.is_empty());
    }

    #[test]
    fn a_report_before_its_intent_is_kept_for_it_and_used_once() {
        let mut g = Gate::new(0);
        g.enforced("sshd", "192.0.2.1", 107);
        assert!(g.take().publish.is_empty());
        g.add(i(7, "sshd", "192.0.2.1", true));
        g.add(i(8, "sshd", "192.0.2.1", true));
        assert_eq!(seqs(&g.take()), vec![7]);
        g.committed();
        assert_eq!(g.len(), 1, "one report releases one ban");
        g.enforced("sshd", "192.0.2.1", 108);
        assert_eq!(seqs(&g.take()), vec![8]);
        assert!(g.is_empty());
    }

    /// Two rows for one address (a re-ban): the report names its row. Matched by (jail,
    /// address), the re-ban's report released the first row (published with the first ban's
    /// end) and left the re-ban waiting for a report that had come already.
    #[test]
    fn a_report_releases_its_own_row_not_another_of_the_same_address() {
        let mut g = Gate::new(0);
        g.add(i(1, "sshd", "192.0.2.1", true));
        g.add(i(2, "sshd", "192.0.2.1", true));
        // The first ban's actions never reported (its job was lost); the re-ban's did.
        g.enforced("sshd", "192.0.2.1", 102);
        let t = g.take();
        assert_eq!(seqs(&t), vec![2], "the re-ban goes, with its own end");
        assert_eq!(
            t.superseded,
            vec![1],
            "the older row is superseded, not published"
        );
        assert!(g.is_empty());
        g.committed();
        // In order: the first report releases the first row only.
        g.add(i(3, "sshd", "192.0.2.1", true));
        g.add(i(4, "sshd", "192.0.2.1", false));
        g.add(i(5, "sshd", "192.0.2.1", true));
        g.enforced("sshd", "192.0.2.1", 103);
        let t = g.take();
        assert_eq!(seqs(&t), vec![3, 4]);
        assert!(t.superseded.is_empty());
        assert_eq!(g.len(), 1);
        // A report of a tag no row has releases nothing.
        g.enforced("sshd", "192.0.2.1", 999);
        assert!(g.take().publish.is_empty());
        g.enforced("sshd", "192.0.2.1", 105);
        assert_eq!(seqs(&g.take()), vec![5]);
    }

    #[test]
    fn intents_of_an_earlier_run_wait_for_their_jails_restore() {
        let mut g = Gate::new(3);
        g.add(i(1, "sshd", "192.0.2.1", true));
        g.add(i(2, "gone", "192.0.2.2", true));
        g.add(i(3, "web", "192.0.2.3", true));
        g.add(i(4, "sshd", "192.0.2.9", true));
        // A report of this run with an earlier run's tag releases nothing of that run.
        g.enforced("sshd", "192.0.2.1", 101);
        assert!(g.take().publish.is_empty());
        g.started(["sshd".to_string(), "web".to_string()]);
        assert_eq!(seqs(&g.take()), vec![2], "its jail is not running");
        g.restored("sshd");
        assert_eq!(seqs(&g.take()), vec![1]);
        g.restored("web");
        assert_eq!(seqs(&g.take()), vec![3]);
        g.enforced("sshd", "192.0.2.9", 104);
        assert_eq!(seqs(&g.take()), vec![4]);
    }

    #[test]
    fn after_a_rollback_the_rows_taken_are_taken_again_at_once() {
        let mut g = Gate::new(0);
        g.add(i(1, "sshd", "192.0.2.1", true));
        g.add(i(2, "sshd", "192.0.2.2", true));
        g.enforced("sshd", "192.0.2.1", 101);
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
