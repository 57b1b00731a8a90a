//! The daemon's side: what a jail's task hands to its [`JailMetrics`] after a read, a ban order
//! or an unban, in terms of the engine's types (one call at each point of interest).

use std::path::{Path, PathBuf};
use std::time::Instant;

use ferroban_engine::jail::{Event, JailCounts, LineStats, Ticket};

use super::{BanOrigin, JailMetrics, LineCounts, Metrics, UnbanReason};

/// Line counts of one read, per log path, gathered without touching an atomic per line.
#[derive(Debug, Default)]
pub struct ReadCounts {
    per_path: Vec<(PathBuf, LineCounts)>,
    last: usize,
}

impl ReadCounts {
    /// One line of `path`; `before`/`after`: the jail's [`LineStats`] around its processing.
    #[inline]
    pub fn line(&mut self, path: &Path, before: LineStats, after: LineStats) {
        let idx = match self.per_path.get(self.last) {
            Some((p, _)) if p.as_path() == path => self.last,
            _ => match self.per_path.iter().position(|(p, _)| p.as_path() == path) {
                Some(i) => i,
                None => {
                    self.per_path
                        .push((path.to_path_buf(), LineCounts::default()));
                    self.per_path.len() - 1
                }
            },
        };
        self.last = idx;
        let c = &mut self.per_path[idx].1;
        c.read += 1;
        c.matched += after.matched - before.matched;
        c.ignored_regex += after.ignored_regex - before.ignored_regex;
        c.too_old += after.too_old - before.too_old;
        c.ignored_ip += after.ignored_ip - before.ignored_ip;
        c.dateless += after.dateless - before.dateless;
    }

    /// Adds the counts to the jail's series.
    pub fn flush(self, m: &Metrics, j: &JailMetrics) {
        for (p, c) in self.per_path {
            j.lines(m, &p, c);
        }
    }
}

fn end_of(t: &Ticket) -> Option<f64> {
    (t.bantime >= 0.0).then_some(t.time + t.bantime)
}

impl JailMetrics {
    /// Counts the bans and unbans in `events` (bans with `origin`, unbans with `reason`) at
    /// `now`; `read_at`: when the line that led to them was read.
    pub fn events(
        &self,
        m: &Metrics,
        events: &[Event],
        origin: BanOrigin,
        reason: UnbanReason,
        now: f64,
        read_at: Option<Instant>,
    ) {
        for e in events {
            match e {
                Event::Ban(t) => self.banned(m, origin, &t.id.to_string(), end_of(t), now, read_at),
                Event::Unban(t) => self.unbanned(m, reason, &t.id.to_string(), now),
                // Neither a new ban nor an end: the ban's count and gauges stay.
                Event::Prolong(_) => {}
            }
        }
    }

    /// Counts the tickets ended by a jail stop or reload.
    pub fn tickets_ended(&self, m: &Metrics, tickets: &[Ticket], reason: UnbanReason, now: f64) {
        for t in tickets {
            self.unbanned(m, reason, &t.id.to_string(), now);
        }
    }

    /// Counts the bans restored from the database.
    pub fn restored(&self, m: &Metrics, tickets: &[Ticket], now: f64) {
        for t in tickets {
            self.banned(
                m,
                BanOrigin::Restored,
                &t.id.to_string(),
                end_of(t),
                now,
                None,
            );
        }
    }

    /// Takes the jail's counts after a change: failures counted since `before` (the total at the
    /// start of the read), current failures and bans.
    pub fn counts(&self, before_total_failed: u64, c: JailCounts, now: f64) {
        self.failures(c.total_failed.saturating_sub(before_total_failed), now);
        self.set_current(c.currently_failed, c.currently_banned);
    }

    /// The read position of `path` is `offset`: sets its read lag (how long unread data has
    /// waited: 0 when caught up, else the time since it was first seen behind).
    pub fn backlog(&self, m: &Metrics, path: &Path, offset: u64, now: f64) {
        let len = std::fs::metadata(path).map(|md| md.len()).unwrap_or(0);
        let behind = len > offset;
        let mut since = self.behind_since.lock().unwrap();
        let lag = if behind {
            now - *since.entry(path.to_path_buf()).or_insert(now)
        } else {
            since.remove(path);
            0.0
        };
        drop(since);
        self.read_lag(m, path, lag);
    }
}
