//! The ban history of `bantime.increment`, in memory: the store's `ban_history` table as a jail
//! needs it, so that deciding a ban reads no database.
//!
//! [`History`] holds one row per (id, jail): the latest ban's start and length and the ban count,
//! exactly what [`Store::record_ban`](crate::Store::record_ban) writes to `ban_history` (`INSERT
//! OR REPLACE`), [`Store::remove_ban`](crate::Store::remove_ban) deletes and
//! [`Store::purge`](crate::Store::purge) purges. [`History::get`] answers as
//! [`Store::ban_count`](crate::Store::ban_count) does without `since`: the jail's row, or over every
//! jail (`bantime.overalljails`) the summed counts and ban times with the latest start. It is
//! loaded from the store once ([`Store::history_rows`](crate::Store::history_rows)) and then kept
//! current by the same changes the store receives, in the same order.

use std::collections::HashMap;

use crate::store::{BanHistory, Scope};

/// One row of the history: an id's latest ban in one jail.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    /// The jail.
    pub jail: String,
    /// The banned id, as stored.
    pub id: String,
    /// Start of the latest ban (unix seconds).
    pub banned_at: f64,
    /// Its length in seconds; negative is permanent.
    pub bantime: f64,
    /// Bans of the id in the jail, the latest included.
    pub ban_count: u64,
}

/// A change of the history, as a jail's decision makes it (and the store writes it).
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryChange {
    /// A ban recorded: the (id, jail) row becomes this ban.
    Ban {
        /// The banned id, as stored.
        id: String,
        /// Ban start.
        banned_at: f64,
        /// Seconds; negative is permanent.
        bantime: f64,
        /// Ban count, this ban included.
        ban_count: u64,
    },
    /// An unban by hand: the (id, jail) row goes.
    Remove {
        /// The id, as stored.
        id: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
struct Row {
    jail: Box<str>,
    banned_at: f64,
    bantime: f64,
    ban_count: u64,
}

/// The ban history of one jail (`all == false`) or of every jail (`bantime.overalljails`).
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Rows of every jail are kept (else the caller gives only its jail's).
    all: bool,
    /// Rows by id, ordered by jail name (the order the database sums them in).
    rows: HashMap<String, Vec<Row>>,
}

impl History {
    /// An empty history; `all`: it keeps the rows of every jail.
    pub fn new(all: bool) -> History {
        History {
            all,
            rows: HashMap::new(),
        }
    }

    /// A history of `rows` (read from the store).
    pub fn from_rows(all: bool, rows: impl IntoIterator<Item = HistoryRow>) -> History {
        let mut h = History::new(all);
        for r in rows {
            h.record(&r.jail, &r.id, r.banned_at, r.bantime, r.ban_count);
        }
        h
    }

    /// Whether it keeps the rows of every jail.
    pub fn is_all(&self) -> bool {
        self.all
    }

    /// Rows kept.
    pub fn len(&self) -> usize {
        self.rows.values().map(Vec::len).sum()
    }

    /// Whether no row is kept.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// A ban of `id` in `jail` (the store's `INSERT OR REPLACE INTO ban_history`).
    pub fn record(&mut self, jail: &str, id: &str, banned_at: f64, bantime: f64, ban_count: u64) {
        // The store keeps the count as a signed 64-bit integer and reads it back as such.
        let ban_count = ban_count.min(i64::MAX as u64);
        let row = Row {
            jail: jail.into(),
            banned_at,
            bantime,
            ban_count,
        };
        let rows = match self.rows.get_mut(id) {
            Some(rows) => rows,
            None => self.rows.entry(id.to_string()).or_default(),
        };
        match rows.binary_search_by(|r| (*r.jail).cmp(jail)) {
            Ok(i) => rows[i] = row,
            Err(i) => rows.insert(i, row),
        }
    }

    /// Removes the row of `id` in `jail` (an unban by hand).
    pub fn remove(&mut self, jail: &str, id: &str) {
        if let Some(rows) = self.rows.get_mut(id) {
            rows.retain(|r| &*r.jail != jail);
            if rows.is_empty() {
                self.rows.remove(id);
            }
        }
    }

    /// Removes every row of `jail`.
    pub fn remove_jail(&mut self, jail: &str) {
        self.rows.retain(|_, rows| {
            rows.retain(|r| &*r.jail != jail);
            !rows.is_empty()
        });
    }

    /// Applies a change of jail `jail`.
    pub fn apply(&mut self, jail: &str, change: &HistoryChange) {
        match change {
            HistoryChange::Ban {
                id,
                banned_at,
                bantime,
                ban_count,
            } => self.record(jail, id, *banned_at, *bantime, *ban_count),
            HistoryChange::Remove { id } => self.remove(jail, id),
        }
    }

    /// Purges as the store's purge does at `limit` (`now - dbpurgeage`) with its outdated factor:
    /// the rows of non-permanent bans that started before `limit` and ended (times the factor)
    /// before it.
    pub fn purge(&mut self, limit: f64, outdated_factor: f64) {
        self.rows.retain(|_, rows| {
            rows.retain(|r| {
                !(r.banned_at < limit
                    && r.bantime >= 0.0
                    && r.banned_at + r.bantime * outdated_factor < limit)
            });
            !rows.is_empty()
        });
    }

    /// The history of `id` in `scope` (`None`: never banned, or purged), as
    /// [`Store::ban_count`](crate::Store::ban_count) reads it without `since`.
    pub fn get(&self, id: &str, scope: Scope<'_>) -> Option<BanHistory> {
        let rows = self.rows.get(id)?;
        match scope {
            Scope::Jail(jail) => rows.iter().find(|r| &*r.jail == jail).map(|r| BanHistory {
                count: r.ban_count,
                last_banned_at: r.banned_at,
                bantime: r.bantime,
            }),
            Scope::All => {
                let mut it = rows.iter();
                let first = it.next()?;
                let mut h = BanHistory {
                    count: first.ban_count,
                    last_banned_at: first.banned_at,
                    bantime: first.bantime,
                };
                for r in it {
                    h.count = h.count.saturating_add(r.ban_count);
                    h.last_banned_at = h.last_banned_at.max(r.banned_at);
                    h.bantime += r.bantime;
                }
                Some(h)
            }
        }
    }
}
