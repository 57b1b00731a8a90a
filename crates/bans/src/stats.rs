//! Statistics that survive restarts: the daemon's counter totals (failures, bans by origin,
//! unbans by reason, lines read, …) kept in the ban database, in a table of their own.
//!
//! The table has its own schema version (`stats_schema`), independent of the ban tables'
//! [`crate::store::SCHEMA_VERSION`], so that it can be opened through a second connection by the
//! metrics thread (which writes the totals every few seconds, off the jails' tasks) and so that
//! either schema can move without the other. A database without the table gets it on first open;
//! one written by a newer ferroban (a higher `stats_schema` version) is refused with an error that
//! names the file, and the totals then start from zero for this run (nothing is overwritten).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use thiserror::Error;

/// The version of the `stats` table this crate writes.
pub const STATS_SCHEMA_VERSION: u32 = 1;

/// Step `i` brings the `stats` table from version `i` to `i + 1`.
const MIGRATIONS: [&str; STATS_SCHEMA_VERSION as usize] = [
    // 0 -> 1: one row per counter series: metric name and its labels (`k=v,k=v`, sorted).
    "CREATE TABLE stats(
        metric TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '',
        value REAL NOT NULL,
        updated REAL NOT NULL,
        PRIMARY KEY(metric, labels)
     );",
];

/// An error of the statistics table; each names the database file.
#[derive(Debug, Error)]
pub enum StatsError {
    /// SQLite failed.
    #[error("statistics in {}: {op}: {source}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// Written by a newer ferroban.
    #[error("statistics in {} have schema version {found}, newer than the {supported} this ferroban supports", path.display())]
    FutureSchema {
        /// The database file.
        path: PathBuf,
        /// Version found.
        found: u32,
        /// Version supported.
        supported: u32,
    },
}

/// One persisted counter series.
#[derive(Debug, Clone, PartialEq)]
pub struct StatRow {
    /// Metric name (`ferroban_jail_bans_total`).
    pub metric: String,
    /// Its labels, `name=value` pairs sorted by name and joined with `,`.
    pub labels: String,
    /// The total.
    pub value: f64,
}

/// A connection to the statistics table.
pub struct StatsStore {
    conn: Connection,
    path: PathBuf,
}

impl StatsStore {
    /// Opens the database at `path` (creating the table if needed).
    pub fn open(path: impl AsRef<Path>) -> Result<StatsStore, StatsError> {
        let path = path.as_ref().to_path_buf();
        let conn = Connection::open(&path).map_err(err(&path, "opening"))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(err(&path, "setting the busy timeout"))?;
        let mut s = StatsStore { conn, path };
        s.migrate()?;
        Ok(s)
    }

    /// An in-memory table (tests).
    pub fn open_in_memory() -> Result<StatsStore, StatsError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(err(&path, "opening"))?;
        let mut s = StatsStore { conn, path };
        s.migrate()?;
        Ok(s)
    }

    fn migrate(&mut self) -> Result<(), StatsError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err(&path, "starting the schema check"))?;
        tx.execute_batch("CREATE TABLE IF NOT EXISTS stats_schema(version INTEGER NOT NULL);")
            .map_err(err(&path, "creating stats_schema"))?;
        let found: Option<i64> = tx
            .query_row("SELECT max(version) FROM stats_schema", [], |r| r.get(0))
            .optional()
            .map_err(err(&path, "reading stats_schema"))?
            .flatten();
        let found = u32::try_from(found.unwrap_or(0)).unwrap_or(u32::MAX);
        if found > STATS_SCHEMA_VERSION {
            return Err(StatsError::FutureSchema {
                path,
                found,
                supported: STATS_SCHEMA_VERSION,
            });
        }
        for sql in MIGRATIONS.iter().skip(found as usize) {
            tx.execute_batch(sql)
                .map_err(err(&path, "migrating the stats table"))?;
        }
        if found < STATS_SCHEMA_VERSION {
            tx.execute("DELETE FROM stats_schema", [])
                .map_err(err(&path, "writing stats_schema"))?;
            tx.execute(
                "INSERT INTO stats_schema(version) VALUES (?1)",
                [STATS_SCHEMA_VERSION],
            )
            .map_err(err(&path, "writing stats_schema"))?;
        }
        tx.commit().map_err(err(&path, "committing the schema"))
    }

    /// Every stored series.
    pub fn load(&self) -> Result<Vec<StatRow>, StatsError> {
        let mut stmt = self
            .conn
            .prepare("SELECT metric, labels, value FROM stats ORDER BY metric, labels")
            .map_err(err(&self.path, "reading the totals"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(StatRow {
                    metric: r.get(0)?,
                    labels: r.get(1)?,
                    value: r.get(2)?,
                })
            })
            .map_err(err(&self.path, "reading the totals"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(err(&self.path, "reading the totals"))
    }

    /// Writes `rows` (inserted or replaced; series not named stay as they are) in one
    /// transaction, stamped `now`.
    pub fn save(&mut self, rows: &[StatRow], now: f64) -> Result<(), StatsError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err(&path, "writing the totals"))?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO stats(metric, labels, value, updated) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(metric, labels) DO UPDATE SET value = excluded.value, updated = excluded.updated",
                )
                .map_err(err(&path, "writing the totals"))?;
            for r in rows {
                stmt.execute(params![r.metric, r.labels, r.value, now])
                    .map_err(err(&path, "writing the totals"))?;
            }
        }
        tx.commit().map_err(err(&path, "writing the totals"))
    }
}

fn err<'a>(path: &'a Path, op: &'static str) -> impl Fn(rusqlite::Error) -> StatsError + 'a {
    move |source| StatsError::Sqlite {
        path: path.to_path_buf(),
        op,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(m: &str, l: &str, v: f64) -> StatRow {
        StatRow {
            metric: m.into(),
            labels: l.into(),
            value: v,
        }
    }

    #[test]
    fn totals_round_trip_and_update() {
        let mut s = StatsStore::open_in_memory().unwrap();
        assert!(s.load().unwrap().is_empty());
        s.save(
            &[
                row("ferroban_jail_bans_total", "jail=sshd,origin=log", 3.0),
                row("ferroban_jail_failures_total", "jail=sshd", 17.0),
            ],
            1.0,
        )
        .unwrap();
        s.save(
            &[row("ferroban_jail_bans_total", "jail=sshd,origin=log", 5.0)],
            2.0,
        )
        .unwrap();
        assert_eq!(
            s.load().unwrap(),
            vec![
                row("ferroban_jail_bans_total", "jail=sshd,origin=log", 5.0),
                row("ferroban_jail_failures_total", "jail=sshd", 17.0),
            ]
        );
    }

    #[test]
    fn reopening_a_file_keeps_totals_and_a_newer_schema_is_refused() {
        let dir = std::env::temp_dir().join(format!("ferroban-stats-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("db.sqlite3");
        let _ = std::fs::remove_file(&db);
        {
            let mut s = StatsStore::open(&db).unwrap();
            s.save(&[row("m_total", "jail=a", 2.0)], 1.0).unwrap();
        }
        assert_eq!(
            StatsStore::open(&db).unwrap().load().unwrap(),
            vec![row("m_total", "jail=a", 2.0)]
        );
        {
            let c = Connection::open(&db).unwrap();
            c.execute("UPDATE stats_schema SET version = 99", [])
                .unwrap();
        }
        let e = StatsStore::open(&db).err().unwrap();
        assert!(
            matches!(e, StatsError::FutureSchema { found: 99, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("db.sqlite3"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
