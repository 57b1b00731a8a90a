//! The fleet's tables in ferroban's SQLite database (its own tables, own schema version, own
//! connection; the ban store's tables are not touched):
//!
//! - `fleet_meta(k, v)`: `schema`, `oseq` (last used), `cursor` (last stream sequence applied),
//!   `stream_created` (to notice a recreated/wiped stream), `skew_ms`.
//! - `fleet_own(subject, …, pending)`: this node's signed decisions. `pending = 1` is the
//!   outbox (not yet acknowledged by JetStream); acknowledged bans stay until they end so they
//!   can be re-asserted into a wiped stream; acknowledged unbans are deleted.
//! - `fleet_remote(jail, ip, origin, oseq, expires_at, active)`: other origins' decisions, so
//!   that a restart restores remote bans before the engine is reachable.
//! - `fleet_lifted(jail, ip, origin, oseq)`: remote bans lifted on this node by hand
//!   (`unbanip`): not restored at the next start, unless their origin decides anew (a newer
//!   oseq).
//! - `fleet_intent(seq, jail, ip, kind, ends_at, tag)`: local decisions not yet signed into
//!   `fleet_own`, written by the daemon's ban store in the transaction of the ban itself
//!   ([`intent`]), so a crash cannot keep a ban and lose its publication. `tag` is the
//!   daemon's id of the decision (chosen before the insert: `seq` is only known after it, and
//!   changes when a failed transaction is written again); the report that a ban's actions
//!   ran names it, so the report releases that row and no other. The fleet thread
//!   reads them ([`FleetDb::intents_after`]) and, once one may go (a ban when its local
//!   actions ran: [`crate::gate`]), turns it into a signed `fleet_own` row and deletes it, in
//!   one transaction ([`FleetDb::drop_intent_rows`]); the others stay in the table.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use crate::FleetError;
use crate::merge::Entry;

const SCHEMA: i64 = 1;

/// The fleet tables.
pub struct FleetDb {
    conn: Connection,
}

/// A row of this node's outbox / own decisions.
#[derive(Debug, Clone)]
pub struct OwnRow {
    /// The subject.
    pub subject: String,
    /// `Nats-Msg-Id`.
    pub id: String,
    /// The oseq.
    pub oseq: u64,
    /// The signed body.
    pub body: Vec<u8>,
    /// Its signature.
    pub sig: String,
}

/// A stored remote decision.
#[derive(Debug, Clone)]
pub struct RemoteRow {
    /// Jail.
    pub jail: String,
    /// Target text.
    pub ip: String,
    /// Origin.
    pub origin: String,
    /// The decision.
    pub entry: Entry,
}

/// A local decision to publish (a row of `fleet_intent`).
#[derive(Debug, Clone, PartialEq)]
pub struct Intent {
    /// Its row (order of the decisions).
    pub seq: i64,
    /// Jail.
    pub jail: String,
    /// Address or network.
    pub ip: String,
    /// A ban (true) or an unban.
    pub ban: bool,
    /// End of a ban on the daemon's clock (`None`: permanent).
    pub ends_at: Option<f64>,
    /// The daemon's id of this decision (`None`: written without one).
    pub tag: Option<i64>,
}

/// The write of a local decision into `fleet_intent`, as an SQL statement and its parameters,
/// for another connection to the same file (the daemon's ban store runs it in the ban's own
/// transaction). `tag`: the daemon's id of the decision, named again when its actions ran.
pub fn intent(
    jail: &str,
    ip: &str,
    ban: bool,
    ends_at: Option<f64>,
    tag: i64,
) -> (&'static str, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    (
        "INSERT INTO fleet_intent (jail, ip, kind, ends_at, tag) VALUES (?1, ?2, ?3, ?4, ?5)",
        vec![
            Value::Text(jail.to_string()),
            Value::Text(ip.to_string()),
            Value::Text(if ban { "ban" } else { "unban" }.to_string()),
            ends_at.map_or(Value::Null, Value::Real),
            Value::Integer(tag),
        ],
    )
}

fn e(what: &'static str) -> impl Fn(rusqlite::Error) -> FleetError {
    move |err| FleetError::Db(format!("{what}: {err}"))
}

impl FleetDb {
    /// Opens (or creates) the tables in `path` (`None`: in memory).
    pub fn open(path: Option<&Path>) -> Result<FleetDb, FleetError> {
        let conn = match path {
            Some(p) => Connection::open(p),
            None => Connection::open_in_memory(),
        }
        .map_err(e("opening the database"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(e("busy timeout"))?;
        if path.is_some() {
            let _: String = conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .map_err(e("WAL"))?;
            // WAL with synchronous NORMAL: a commit survives a crash of the process (the
            // daemon's case) without an fsync per ban; the outbox is re-asserted anyway.
            conn.execute_batch("PRAGMA synchronous = NORMAL")
                .map_err(e("synchronous"))?;
        }
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS fleet_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS fleet_own (
                 subject TEXT PRIMARY KEY, id TEXT NOT NULL, oseq INTEGER NOT NULL,
                 kind TEXT NOT NULL, body BLOB NOT NULL, sig TEXT NOT NULL,
                 expires_at INTEGER, pending INTEGER NOT NULL);
             CREATE INDEX IF NOT EXISTS fleet_own_pending ON fleet_own(pending, oseq);
             CREATE TABLE IF NOT EXISTS fleet_remote (
                 jail TEXT NOT NULL, ip TEXT NOT NULL, origin TEXT NOT NULL,
                 oseq INTEGER NOT NULL, expires_at INTEGER, active INTEGER NOT NULL,
                 PRIMARY KEY (jail, ip, origin));
             CREATE TABLE IF NOT EXISTS fleet_lifted (
                 jail TEXT NOT NULL, ip TEXT NOT NULL, origin TEXT NOT NULL,
                 oseq INTEGER NOT NULL, PRIMARY KEY (jail, ip, origin));
             CREATE TABLE IF NOT EXISTS fleet_intent (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT, jail TEXT NOT NULL, ip TEXT NOT NULL,
                 kind TEXT NOT NULL, ends_at REAL, tag INTEGER);",
        )
        .map_err(e("creating the fleet tables"))?;
        // Tables of a version before the tag: add it (their rows have none; they are of an
        // earlier run, released by their jail's restore).
        let has_tag: bool = conn
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('fleet_intent') WHERE name = 'tag'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(e("reading the intent table"))?
            > 0;
        if !has_tag {
            conn.execute_batch("ALTER TABLE fleet_intent ADD COLUMN tag INTEGER")
                .map_err(e("adding the intents' tag"))?;
        }
        let db = FleetDb { conn };
        match db.meta("schema")? {
            None => db.set_meta("schema", &SCHEMA.to_string())?,
            Some(v) if v == SCHEMA.to_string() => {}
            Some(v) => {
                return Err(FleetError::Db(format!(
                    "fleet tables have schema version {v}; this ferroban knows {SCHEMA}"
                )));
            }
        }
        Ok(db)
    }

    /// Starts a transaction (a batch of decisions: one commit).
    pub fn begin(&self) -> Result<(), FleetError> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(e("begin"))
    }

    /// Commits the transaction [`FleetDb::begin`] started.
    pub fn commit(&self) -> Result<(), FleetError> {
        self.conn.execute_batch("COMMIT").map_err(e("commit"))
    }

    /// Rolls back the open transaction (after a failed commit).
    pub fn rollback(&self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    /// Whether a transaction is open.
    pub fn in_transaction(&self) -> bool {
        !self.conn.is_autocommit()
    }

    /// Records that the remote ban of `ip` in `jail` was lifted here by hand, as decided by
    /// `entries` (origin, oseq).
    pub fn lift(&self, jail: &str, ip: &str, entries: &[(String, u64)]) -> Result<(), FleetError> {
        for (origin, oseq) in entries {
            self.conn
                .execute(
                    "INSERT INTO fleet_lifted (jail, ip, origin, oseq) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(jail, ip, origin) DO UPDATE SET oseq = excluded.oseq",
                    params![jail, ip, origin, *oseq as i64],
                )
                .map_err(e("recording a lifted remote ban"))?;
        }
        Ok(())
    }

    /// The remote decisions lifted here by hand (jail, ip, origin, oseq), after dropping those
    /// whose decision is no longer a stored live ban.
    pub fn lifted(
        &self,
    ) -> Result<std::collections::HashSet<(String, String, String, u64)>, FleetError> {
        self.conn
            .execute(
                "DELETE FROM fleet_lifted WHERE NOT EXISTS (SELECT 1 FROM fleet_remote r
                   WHERE r.jail = fleet_lifted.jail AND r.ip = fleet_lifted.ip
                   AND r.origin = fleet_lifted.origin AND r.oseq = fleet_lifted.oseq
                   AND r.active = 1)",
                [],
            )
            .map_err(e("pruning lifted remote bans"))?;
        let mut st = self
            .conn
            .prepare("SELECT jail, ip, origin, oseq FROM fleet_lifted")
            .map_err(e("reading lifted remote bans"))?;
        st.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? as u64))
        })
        .and_then(|rows| rows.collect())
        .map_err(e("reading lifted remote bans"))
    }

    /// Up to `limit` local decisions written by the daemon and not yet taken, oldest first.
    pub fn intents(&self, limit: usize) -> Result<Vec<Intent>, FleetError> {
        self.intents_after(0, limit)
    }

    /// Up to `limit` intents after row `seq`, oldest first.
    pub fn intents_after(&self, seq: i64, limit: usize) -> Result<Vec<Intent>, FleetError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT seq, jail, ip, kind, ends_at, tag FROM fleet_intent WHERE seq > ?1
                 ORDER BY seq LIMIT ?2",
            )
            .map_err(e("reading the intents"))?;
        st.query_map([seq, limit as i64], |r| {
            Ok(Intent {
                seq: r.get(0)?,
                jail: r.get(1)?,
                ip: r.get(2)?,
                ban: r.get::<_, String>(3)? == "ban",
                ends_at: r.get(4)?,
                tag: r.get(5)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(e("reading the intents"))
    }

    /// Every own decision stored (signed body, and whether it is still unacknowledged), in
    /// oseq order: what `fleet status` sums up, for tests and inspection.
    pub fn own_rows(&self) -> Result<Vec<(Vec<u8>, bool)>, FleetError> {
        let mut st = self
            .conn
            .prepare("SELECT body, pending FROM fleet_own ORDER BY oseq")
            .map_err(e("reading the own decisions"))?;
        st.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? != 0)))
            .and_then(|rows| rows.collect())
            .map_err(e("reading the own decisions"))
    }

    /// The last intent's row (0: none): the intents up to it were written before this start.
    pub fn last_intent_seq(&self) -> Result<i64, FleetError> {
        self.conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM fleet_intent", [], |r| {
                r.get(0)
            })
            .map_err(e("reading the intents"))
    }

    /// Deletes the intents `seqs` (taken into the outbox).
    pub fn drop_intent_rows(&self, seqs: &[i64]) -> Result<(), FleetError> {
        let mut st = self
            .conn
            .prepare_cached("DELETE FROM fleet_intent WHERE seq = ?1")
            .map_err(e("deleting the intents"))?;
        for s in seqs {
            st.execute([s]).map_err(e("deleting the intents"))?;
        }
        Ok(())
    }

    /// Deletes the intents up to `seq` (taken into the outbox).
    pub fn drop_intents(&self, seq: i64) -> Result<(), FleetError> {
        self.conn
            .execute("DELETE FROM fleet_intent WHERE seq <= ?1", [seq])
            .map(|_| ())
            .map_err(e("deleting the intents"))
    }

    /// A meta value.
    pub fn meta(&self, k: &str) -> Result<Option<String>, FleetError> {
        self.conn
            .query_row("SELECT v FROM fleet_meta WHERE k = ?1", [k], |r| r.get(0))
            .optional()
            .map_err(e("reading fleet_meta"))
    }

    /// A numeric meta value (0 when unset).
    pub fn meta_i64(&self, k: &str) -> Result<i64, FleetError> {
        Ok(self
            .meta(k)?
            .and_then(|v| v.parse().ok())
            .unwrap_or_default())
    }

    /// Sets a meta value.
    pub fn set_meta(&self, k: &str, v: &str) -> Result<(), FleetError> {
        self.conn
            .execute(
                "INSERT INTO fleet_meta (k, v) VALUES (?1, ?2)
                 ON CONFLICT(k) DO UPDATE SET v = excluded.v",
                params![k, v],
            )
            .map(|_| ())
            .map_err(e("writing fleet_meta"))
    }

    /// The next oseq (persisted before it is used).
    pub fn next_oseq(&self) -> Result<u64, FleetError> {
        let n = self.meta_i64("oseq")? + 1;
        self.set_meta("oseq", &n.to_string())?;
        Ok(n as u64)
    }

    /// Records an own decision in the outbox. A newer decision on the same subject replaces an
    /// unsent older one: a storm of bans of one address leaves one message (coalescing).
    pub fn put_own(
        &self,
        row: &OwnRow,
        kind: &str,
        expires_at: Option<i64>,
    ) -> Result<(), FleetError> {
        self.conn
            .execute(
                "INSERT INTO fleet_own (subject, id, oseq, kind, body, sig, expires_at, pending)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1)
                 ON CONFLICT(subject) DO UPDATE SET id = excluded.id, oseq = excluded.oseq,
                   kind = excluded.kind, body = excluded.body, sig = excluded.sig,
                   expires_at = excluded.expires_at, pending = 1",
                params![
                    row.subject,
                    row.id,
                    row.oseq as i64,
                    kind,
                    row.body,
                    row.sig,
                    expires_at
                ],
            )
            .map(|_| ())
            .map_err(e("writing the outbox"))
    }

    /// Up to `limit` unacknowledged decisions in oseq order, skipping (and dropping) bans that
    /// have ended by `now_ms`.
    pub fn pending(&self, limit: usize, now_ms: i64) -> Result<Vec<OwnRow>, FleetError> {
        self.conn
            .execute(
                "DELETE FROM fleet_own WHERE kind = 'ban' AND expires_at IS NOT NULL
                   AND expires_at <= ?1",
                [now_ms],
            )
            .map_err(e("pruning the outbox"))?;
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT subject, id, oseq, body, sig FROM fleet_own WHERE pending = 1
                 ORDER BY oseq LIMIT ?1",
            )
            .map_err(e("reading the outbox"))?;
        st.query_map([limit as i64], |r| {
            Ok(OwnRow {
                subject: r.get(0)?,
                id: r.get(1)?,
                oseq: r.get::<_, i64>(2)? as u64,
                body: r.get(3)?,
                sig: r.get(4)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(e("reading the outbox"))
    }

    /// The outbox depth.
    pub fn pending_count(&self) -> Result<u64, FleetError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM fleet_own WHERE pending = 1",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(e("counting the outbox"))
    }

    /// Marks decisions acknowledged (only if not replaced since: same oseq).
    pub fn acked(&mut self, rows: &[(String, u64)]) -> Result<(), FleetError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(e("transaction"))?;
        for (subject, oseq) in rows {
            tx.execute(
                "DELETE FROM fleet_own WHERE subject = ?1 AND oseq = ?2 AND kind = 'unban'",
                params![subject, *oseq as i64],
            )
            .map_err(e("acknowledging"))?;
            tx.execute(
                "UPDATE fleet_own SET pending = 0 WHERE subject = ?1 AND oseq = ?2",
                params![subject, *oseq as i64],
            )
            .map_err(e("acknowledging"))?;
        }
        tx.commit().map_err(e("commit"))
    }

    /// Puts every live own ban back into the outbox (the stream was recreated or wiped).
    pub fn reassert_all(&self, now_ms: i64) -> Result<usize, FleetError> {
        self.conn
            .execute(
                "UPDATE fleet_own SET pending = 1 WHERE kind = 'ban'
                   AND (expires_at IS NULL OR expires_at > ?1)",
                [now_ms],
            )
            .map_err(e("re-asserting"))
    }

    /// Stores a batch of remote decisions and the new cursor in one transaction.
    pub fn save_remote(&mut self, rows: &[RemoteRow], cursor: u64) -> Result<(), FleetError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(e("transaction"))?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO fleet_remote (jail, ip, origin, oseq, expires_at, active)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT(jail, ip, origin) DO UPDATE SET oseq = excluded.oseq,
                       expires_at = excluded.expires_at, active = excluded.active
                     WHERE excluded.oseq > fleet_remote.oseq",
                )
                .map_err(e("writing remote bans"))?;
            for r in rows {
                st.execute(params![
                    r.jail,
                    r.ip,
                    r.origin,
                    r.entry.oseq as i64,
                    r.entry.expires_at,
                    r.entry.active
                ])
                .map_err(e("writing remote bans"))?;
            }
            tx.execute(
                "INSERT INTO fleet_meta (k, v) VALUES ('cursor', ?1)
                 ON CONFLICT(k) DO UPDATE SET v = excluded.v",
                [cursor.to_string()],
            )
            .map_err(e("writing the cursor"))?;
        }
        tx.commit().map_err(e("commit"))
    }

    /// Every stored remote decision still of use at `now_ms` (live bans and unbans); ended
    /// bans are deleted.
    pub fn remote(&self, now_ms: i64) -> Result<Vec<RemoteRow>, FleetError> {
        self.conn
            .execute(
                "DELETE FROM fleet_remote WHERE active = 1 AND expires_at IS NOT NULL
                   AND expires_at <= ?1",
                [now_ms],
            )
            .map_err(e("pruning remote bans"))?;
        let mut st = self
            .conn
            .prepare("SELECT jail, ip, origin, oseq, expires_at, active FROM fleet_remote")
            .map_err(e("reading remote bans"))?;
        st.query_map([], |r| {
            Ok(RemoteRow {
                jail: r.get(0)?,
                ip: r.get(1)?,
                origin: r.get(2)?,
                entry: Entry {
                    oseq: r.get::<_, i64>(3)? as u64,
                    expires_at: r.get(4)?,
                    active: r.get(5)?,
                },
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(e("reading remote bans"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(subject: &str, oseq: u64) -> OwnRow {
        OwnRow {
            subject: subject.into(),
            id: format!("n1.{oseq}"),
            oseq,
            body: b"{}".to_vec(),
            sig: "s".into(),
        }
    }

    #[test]
    fn outbox_coalesces_acks_and_reasserts() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.sqlite3");
        let mut db = FleetDb::open(Some(&p)).unwrap();
        assert_eq!(db.next_oseq().unwrap(), 1);
        db.put_own(&row("a", 1), "ban", Some(10_000)).unwrap();
        db.put_own(&row("a", 2), "ban", Some(20_000)).unwrap();
        db.put_own(&row("b", 3), "unban", None).unwrap();
        db.put_own(&row("c", 4), "ban", Some(50)).unwrap();
        let p1 = db.pending(10, 100).unwrap();
        assert_eq!(
            p1.iter().map(|r| r.oseq).collect::<Vec<_>>(),
            vec![2, 3],
            "coalesced, expired skipped"
        );
        // An ack of an old oseq does not clear a newer decision.
        db.acked(&[("a".into(), 1)]).unwrap();
        assert_eq!(db.pending_count().unwrap(), 2);
        db.acked(&[("a".into(), 2), ("b".into(), 3)]).unwrap();
        assert_eq!(db.pending_count().unwrap(), 0);
        assert_eq!(db.reassert_all(100).unwrap(), 1);
        drop(db);
        let db = FleetDb::open(Some(&p)).unwrap();
        assert_eq!(db.pending_count().unwrap(), 1, "persisted");
        assert_eq!(db.next_oseq().unwrap(), 2);
    }

    #[test]
    fn intents_written_by_another_connection_are_read_in_order_and_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.sqlite3");
        let db = FleetDb::open(Some(&p)).unwrap();
        // The daemon's ban store: another connection, its own transaction.
        let other = Connection::open(&p).unwrap();
        other.execute_batch("BEGIN").unwrap();
        for (tag, (ip, ban, end)) in [
            ("203.0.113.7", true, Some(1000.5)),
            ("203.0.113.8", true, None),
            ("203.0.113.7", false, None),
        ]
        .into_iter()
        .enumerate()
        {
            let (sql, params) = intent("sshd", ip, ban, end, 40 + tag as i64);
            other
                .execute(sql, rusqlite::params_from_iter(params.iter()))
                .unwrap();
        }
        assert!(db.intents(10).unwrap().is_empty(), "not committed yet");
        other.execute_batch("COMMIT").unwrap();
        let got = db.intents(10).unwrap();
        let brief: Vec<_> = got
            .iter()
            .map(|i| (i.ip.as_str(), i.ban, i.ends_at, i.tag))
            .collect();
        assert_eq!(
            brief,
            vec![
                ("203.0.113.7", true, Some(1000.5), Some(40)),
                ("203.0.113.8", true, None, Some(41)),
                ("203.0.113.7", false, None, Some(42)),
            ]
        );
        assert_eq!(db.intents(2).unwrap().len(), 2);
        db.drop_intents(got[1].seq).unwrap();
        assert_eq!(db.intents(10).unwrap(), got[2..].to_vec());
    }

    #[test]
    fn remote_rows_keep_the_newest_and_the_cursor() {
        let mut db = FleetDb::open(None).unwrap();
        let r = |oseq, active| RemoteRow {
            jail: "sshd".into(),
            ip: "203.0.113.7".into(),
            origin: "n2".into(),
            entry: Entry {
                oseq,
                expires_at: Some(5000),
                active,
            },
        };
        db.save_remote(&[r(2, true)], 7).unwrap();
        db.save_remote(&[r(1, false)], 8).unwrap();
        let rows = db.remote(0).unwrap();
        assert_eq!(rows.len(), 1);
        assert!(rows[0].entry.active && rows[0].entry.oseq == 2);
        assert_eq!(db.meta_i64("cursor").unwrap(), 8);
        assert!(
            db.remote(6000).unwrap().is_empty(),
            "ended bans are dropped"
        );
    }
}
