//! The persistent store: SQLite through rusqlite, one connection, WAL mode, a versioned schema.
//!
//! What is kept (compare fail2ban's `fail2ban.sqlite3`, whose tables `bans`, `bips`, `jails`, `logs` this
//! mirrors under clearer names):
//!
//! | table            | one row per                | used for                                               |
//! |------------------|----------------------------|--------------------------------------------------------|
//! | `schema_version` | (one row)                  | migrations                                             |
//! | `jails`          | jail                       | purging what belongs to jails no longer configured     |
//! | `bans`           | ban event                  | the log of bans (fail2ban `bans`), purged after `dbpurgeage` |
//! | `ban_history`    | (id, jail)                 | the latest ban and the ban count (fail2ban `bips`): restore on start, `bantime.increment` |
//! | `log_positions`  | (jail, path)               | where reading stopped: offset + first-line hash, or a journal cursor |
//!
//! Times are unix seconds stored as REAL; a negative `bantime` is permanent.
//!
//! # Order of operations
//! [`Store::record_ban`] must run *before* the ban's actions: if the daemon dies between the two, the ban is
//! restored (and the firewall reconciled) on the next start instead of being lost.
//!
//! # Batches
//! Between [`Store::begin_batch`] and [`Store::end_batch`] every write goes into one SQLite transaction (the
//! daemon wraps each read of a log, each bulk `banip`, in one): 100,000 bans cost one commit, not 100,000.
//! Reads on the same store see the batch's writes.
//!
//! # A store that cannot write
//! When a write fails (disk full, read-only file system, a damaged file), the store keeps the writes it could
//! not persist, in order, in memory ([`Store::fault`] says why and how many), returns the error **once** (on
//! the write that failed) and queues every later write behind it without trying the disk again, so a failing
//! disk costs neither an error per ban nor a syscall per ban. [`Store::retry`], called by the daemon every few
//! seconds, replays the queue in one transaction once the disk accepts it again; from then on nothing queued is
//! lost to a crash. Reads meanwhile see only what reached the disk.
//!
//! # Errors
//! Every error names the database path. A file that is not a database or is damaged yields
//! [`StoreError::Corrupt`]; the daemon may then [`move_aside`] the file and start with a fresh one
//! ([`Store::open_or_move_aside`] does both).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::history::HistoryRow;

/// The schema version this crate writes.
pub const SCHEMA_VERSION: u32 = 2;

/// Migrations: step `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [
    // 0 -> 1: the tables.
    "CREATE TABLE jails(
        name TEXT PRIMARY KEY NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1
     );
     CREATE TABLE bans(
        jail TEXT NOT NULL,
        id TEXT NOT NULL,
        banned_at REAL NOT NULL,
        bantime REAL NOT NULL,
        ban_count INTEGER NOT NULL DEFAULT 1,
        data TEXT NOT NULL DEFAULT '{}'
     );
     CREATE INDEX bans_jail_banned_at ON bans(jail, banned_at);
     CREATE INDEX bans_jail_id ON bans(jail, id);
     CREATE INDEX bans_id ON bans(id);
     CREATE TABLE ban_history(
        id TEXT NOT NULL,
        jail TEXT NOT NULL,
        banned_at REAL NOT NULL,
        bantime REAL NOT NULL,
        ban_count INTEGER NOT NULL DEFAULT 1,
        data TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY(id, jail)
     );
     CREATE INDEX ban_history_banned_at ON ban_history(banned_at);
     CREATE TABLE log_positions(
        jail TEXT NOT NULL,
        path TEXT NOT NULL,
        first_line_hash TEXT,
        offset INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY(jail, path)
     );",
    // 1 -> 2: journal sources resume from a cursor.
    "ALTER TABLE log_positions ADD COLUMN journal_cursor TEXT;",
];

/// An error of the store. Each names the database file.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The file cannot be opened or created (missing directory, permissions, …).
    #[error("cannot open ban database {}: {source}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file is not a SQLite database, or is damaged. See [`move_aside`].
    #[error("ban database {} is corrupt or not a SQLite database: {detail}", path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What SQLite reported.
        detail: String,
    },
    /// The database was written by a newer ferroban.
    #[error("ban database {} has schema version {found}, newer than the {supported} this ferroban supports", path.display())]
    FutureSchema {
        /// The database file.
        path: PathBuf,
        /// Version found.
        found: u32,
        /// Version supported.
        supported: u32,
    },
    /// A schema migration failed.
    #[error("ban database {}: migration to schema version {version} failed: {source}", path.display())]
    Migration {
        /// The database file.
        path: PathBuf,
        /// The version being migrated to.
        version: u32,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// Another SQLite error during an operation.
    #[error("ban database {}: {op}: {source}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The store cannot write at the moment (see [`Store::fault`]).
    #[error("ban database {}: cannot write: {detail}", path.display())]
    Unwritable {
        /// The database file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// A stored JSON document does not decode.
    #[error("ban database {}: invalid data of {id} in jail {jail}: {source}", path.display())]
    Data {
        /// The database file.
        path: PathBuf,
        /// The jail of the row.
        jail: String,
        /// The id of the row.
        id: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// Moving a database aside failed.
    #[error("cannot move ban database {} aside to {}: {source}", path.display(), to.display())]
    MoveAside {
        /// The database file.
        path: PathBuf,
        /// Where it was to go.
        to: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether the database file itself is damaged or foreign (worth moving aside).
    pub fn is_corrupt(&self) -> bool {
        matches!(self, StoreError::Corrupt { .. })
    }

    /// The database file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            StoreError::Open { path, .. }
            | StoreError::Corrupt { path, .. }
            | StoreError::FutureSchema { path, .. }
            | StoreError::Migration { path, .. }
            | StoreError::Sqlite { path, .. }
            | StoreError::Unwritable { path, .. }
            | StoreError::Data { path, .. }
            | StoreError::MoveAside { path, .. } => path,
        }
    }
}

fn is_corrupt_code(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
    )
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Store options (fail2ban.conf's `[Definition]` database settings).
#[derive(Debug, Clone, PartialEq)]
pub struct StoreOptions {
    /// `dbpurgeage` in seconds (default 86400): ban events older than this are purged.
    pub purge_age: f64,
    /// `dbmaxmatches` (default 10): matched lines stored per ban; 0 stores none.
    pub max_matches: usize,
    /// A ban's history is purged once `banned_at + bantime * outdated_factor` is older than `purge_age`
    /// (fail2ban's factor: 3). Permanent bans' history is never purged.
    pub outdated_factor: f64,
    /// How long to wait for another connection's lock.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            purge_age: 86_400.0,
            max_matches: 10,
            outdated_factor: 3.0,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// A ban to record.
#[derive(Debug, Clone, PartialEq)]
pub struct BanRecord<'a> {
    /// The jail.
    pub jail: &'a str,
    /// The banned id.
    pub id: &'a str,
    /// Ban start (unix seconds).
    pub banned_at: f64,
    /// Length in seconds; negative is permanent.
    pub bantime: f64,
    /// Ban count including this ban.
    pub ban_count: u64,
    /// Matched lines (the last `dbmaxmatches` are stored).
    pub matches: &'a [String],
    /// Number of failures that led to the ban.
    pub failures: u64,
}

/// The JSON document stored with a ban (fail2ban's `data` column: `{"matches": [...], "failures": n}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BanData {
    /// Matched lines, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<String>,
    /// Failure count.
    #[serde(default)]
    pub failures: u64,
}

/// A ban still in force, for restoring on start.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveBan {
    /// The jail.
    pub jail: String,
    /// The banned id.
    pub id: String,
    /// Ban start (unix seconds).
    pub banned_at: f64,
    /// Length in seconds (after any cap); negative is permanent.
    pub bantime: f64,
    /// Seconds left; `None` for a permanent ban.
    pub remaining: Option<f64>,
    /// Ban count.
    pub ban_count: u64,
    /// Stored matches and failure count.
    pub data: BanData,
}

/// Which bans count for an id's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Only this jail.
    Jail(&'a str),
    /// Every jail (`bantime.overalljails`).
    All,
}

/// An id's ban history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BanHistory {
    /// Ban count (summed over jails for [`Scope::All`]).
    pub count: u64,
    /// Latest ban start.
    pub last_banned_at: f64,
    /// The ban time of that jail's latest ban (summed over jails for [`Scope::All`], as fail2ban does).
    pub bantime: f64,
}

/// Where reading a log stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPosition {
    /// The log's path.
    pub path: String,
    /// A hash of the file's first line, to notice a rotated or replaced file.
    pub first_line_hash: Option<String>,
    /// Byte offset to resume at.
    pub offset: u64,
}

impl LogPosition {
    /// The offset to resume at if the file still starts with the same line, else `None` (read from the start).
    pub fn resume_offset(&self, current_first_line_hash: Option<&str>) -> Option<u64> {
        (self.first_line_hash.as_deref() == current_first_line_hash).then_some(self.offset)
    }
}

/// What [`Store::purge`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Ban events.
    pub bans: usize,
    /// History rows.
    pub history: usize,
    /// Disabled jails left without bans.
    pub jails: usize,
}

/// A write, kept until its transaction is committed (and queued while the store cannot write).
#[derive(Debug, Clone)]
enum Op {
    Ban {
        /// The first ban of this jail since the store was opened: make sure it is in `jails`.
        new_jail: bool,
        jail: String,
        id: String,
        banned_at: f64,
        bantime: f64,
        count: i64,
        json: String,
    },
    Unban {
        jail: String,
        id: String,
    },
    UnbanJail {
        jail: String,
    },
    Position {
        jail: String,
        path: String,
        hash: Option<String>,
        offset: i64,
    },
    Cursor {
        jail: String,
        journal: String,
        cursor: String,
    },
    AddJail(String),
    DisableJail(String),
    /// A row of another component's table in the same database file ([`Store::write_foreign`]).
    Foreign {
        sql: &'static str,
        params: Vec<rusqlite::types::Value>,
    },
}

impl Op {
    /// Runs the write; returns the rows it changed.
    fn exec(&self, conn: &Connection) -> rusqlite::Result<usize> {
        match self {
            Op::Ban {
                new_jail,
                jail,
                id,
                banned_at,
                bantime,
                count,
                json,
            } => {
                if *new_jail {
                    conn.prepare_cached(
                        "INSERT OR IGNORE INTO jails(name, enabled) VALUES (?1, 1)",
                    )?
                    .execute([jail])?;
                }
                conn.prepare_cached(
                    "INSERT INTO bans(jail, id, banned_at, bantime, ban_count, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![jail, id, banned_at, bantime, count, json])?;
                conn.prepare_cached(
                    "INSERT OR REPLACE INTO ban_history(id, jail, banned_at, bantime, ban_count, data)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![id, jail, banned_at, bantime, count, json])
            }
            Op::Unban { jail, id } => {
                let a = conn
                    .prepare_cached("DELETE FROM bans WHERE jail = ?1 AND id = ?2")?
                    .execute([jail, id])?;
                let b = conn
                    .prepare_cached("DELETE FROM ban_history WHERE jail = ?1 AND id = ?2")?
                    .execute([jail, id])?;
                Ok(a + b)
            }
            Op::UnbanJail { jail } => {
                let a = conn.execute("DELETE FROM bans WHERE jail = ?1", [jail])?;
                let b = conn.execute("DELETE FROM ban_history WHERE jail = ?1", [jail])?;
                Ok(a + b)
            }
            Op::Position {
                jail,
                path,
                hash,
                offset,
            } => conn
                .prepare_cached(
                    "INSERT INTO log_positions(jail, path, first_line_hash, offset) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(jail, path) DO UPDATE SET first_line_hash = ?3, offset = ?4",
                )?
                .execute(params![jail, path, hash, offset]),
            Op::Cursor {
                jail,
                journal,
                cursor,
            } => conn
                .prepare_cached(
                    "INSERT INTO log_positions(jail, path, journal_cursor) VALUES (?1, ?2, ?3)
                     ON CONFLICT(jail, path) DO UPDATE SET journal_cursor = ?3",
                )?
                .execute([jail, journal, cursor]),
            Op::AddJail(jail) => conn.execute(
                "INSERT INTO jails(name, enabled) VALUES (?1, 1) ON CONFLICT(name) DO UPDATE SET enabled = 1",
                [jail],
            ),
            Op::DisableJail(jail) => {
                conn.execute("UPDATE jails SET enabled = 0 WHERE name = ?1", [jail])
            }
            Op::Foreign { sql, params } => conn
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(params.iter())),
        }
    }

    fn what(&self) -> &'static str {
        match self {
            Op::Ban { .. } => "recording a ban",
            Op::Unban { .. } => "removing a ban",
            Op::UnbanJail { .. } => "removing a jail's bans",
            Op::Position { .. } => "storing a log position",
            Op::Cursor { .. } => "storing a journal cursor",
            Op::AddJail(_) => "adding a jail",
            Op::DisableJail(_) => "disabling a jail",
            Op::Foreign { .. } => "writing a row of another table",
        }
    }
}

/// Why the store cannot write, and what waits for it ([`Store::fault`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreFault {
    /// The first error (it names the database file).
    pub error: String,
    /// Writes kept in memory, not yet persisted.
    pub queued: usize,
}

/// The ban database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    opts: StoreOptions,
    /// Open batches ([`Store::begin_batch`]).
    batch: u32,
    /// A write transaction is open.
    in_tx: bool,
    /// The writes of the open transaction, to queue them if it fails.
    pending: Vec<Op>,
    /// Writes that could not be persisted, oldest first (non-empty only with `fault`).
    queued: Vec<Op>,
    /// Why writing failed; `None` while the store writes.
    fault: Option<String>,
    /// Jails that had a ban recorded since the store was opened (their `jails` row exists).
    jails_seen: std::collections::HashSet<String>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it to [`SCHEMA_VERSION`].
    pub fn open(path: impl AsRef<Path>, opts: StoreOptions) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        let conn = Connection::open(&path).map_err(|source| {
            if is_corrupt_code(&source) {
                StoreError::Corrupt {
                    detail: source.to_string(),
                    path: path.clone(),
                }
            } else {
                StoreError::Open {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        Store::init(conn, path, opts, true)
    }

    /// An in-memory database (tests, `--no-db` style runs). Its path reads `:memory:`.
    pub fn open_in_memory(opts: StoreOptions) -> Result<Store, StoreError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        Store::init(conn, path, opts, false)
    }

    /// Opens the database; if it is corrupt, moves it aside (see [`move_aside`]) and creates a fresh one.
    /// Returns where the damaged file went, if it was moved.
    pub fn open_or_move_aside(
        path: impl AsRef<Path>,
        opts: StoreOptions,
        now: f64,
    ) -> Result<(Store, Option<PathBuf>), StoreError> {
        let path = path.as_ref();
        match Store::open(path, opts.clone()) {
            Ok(s) => Ok((s, None)),
            Err(e) if e.is_corrupt() => {
                let moved = move_aside(path, now)?;
                Ok((Store::open(path, opts)?, Some(moved)))
            }
            Err(e) => Err(e),
        }
    }

    fn init(
        conn: Connection,
        path: PathBuf,
        opts: StoreOptions,
        wal: bool,
    ) -> Result<Store, StoreError> {
        let mut store = Store {
            conn,
            path,
            opts,
            batch: 0,
            in_tx: false,
            pending: Vec::new(),
            queued: Vec::new(),
            fault: None,
            jails_seen: Default::default(),
        };
        store.conn.set_prepared_statement_cache_capacity(32);
        let timeout = store.opts.busy_timeout;
        store
            .conn
            .busy_timeout(timeout)
            .map_err(store.err("setting the busy timeout"))?;
        if wal {
            // Switching a new file to WAL needs its exclusive lock, and SQLite answers BUSY at
            // once (without its busy handler, to avoid a deadlock) when another connection is
            // opening the same file: retry within the busy timeout.
            let started = std::time::Instant::now();
            let mode: String = loop {
                match store
                    .conn
                    .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                {
                    Err(e) if is_busy(&e) && started.elapsed() < timeout => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    other => break other.map_err(store.err("switching to WAL mode"))?,
                }
            };
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Corrupt {
                    path: store.path.clone(),
                    detail: format!("journal mode stays {mode:?} instead of WAL"),
                });
            }
            store
                .conn
                .execute_batch("PRAGMA synchronous = NORMAL;")
                .map_err(store.err("setting synchronous mode"))?;
        }
        store.migrate()?;
        Ok(store)
    }

    /// Maps a rusqlite error, recognising a corrupt file.
    fn err(&self, op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError + use<> {
        let path = self.path.clone();
        move |source| {
            if is_corrupt_code(&source) {
                StoreError::Corrupt {
                    path,
                    detail: format!("{op}: {source}"),
                }
            } else {
                StoreError::Sqlite { path, op, source }
            }
        }
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self_err(&path, "starting the schema check"))?;
        tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL);")
            .map_err(self_err(&path, "creating schema_version"))?;
        let found: Option<i64> = tx
            .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
            .map_err(self_err(&path, "reading schema_version"))?;
        let found = u32::try_from(found.unwrap_or(0)).unwrap_or(u32::MAX);
        if found > SCHEMA_VERSION {
            return Err(StoreError::FutureSchema {
                path,
                found,
                supported: SCHEMA_VERSION,
            });
        }
        for (step, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let version = step as u32 + 1;
            let mig = |source| StoreError::Migration {
                path: path.clone(),
                version,
                source,
            };
            tx.execute_batch(sql).map_err(mig)?;
            tx.execute("DELETE FROM schema_version", []).map_err(mig)?;
            tx.execute("INSERT INTO schema_version(version) VALUES (?1)", [version])
                .map_err(mig)?;
        }
        tx.commit()
            .map_err(self_err(&path, "committing the schema"))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options in force.
    pub fn options(&self) -> &StoreOptions {
        &self.opts
    }

    /// Changes `dbpurgeage` / `dbmaxmatches` at run time.
    pub fn set_options(&mut self, opts: StoreOptions) -> Result<(), StoreError> {
        self.conn
            .busy_timeout(opts.busy_timeout)
            .map_err(self.err("setting the busy timeout"))?;
        self.opts = opts;
        Ok(())
    }

    /// The schema version stored in the database.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        let v: Option<i64> = self
            .conn
            .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
            .map_err(self.err("reading schema_version"))?;
        Ok(u32::try_from(v.unwrap_or(0)).unwrap_or(u32::MAX))
    }

    /// Runs SQLite's integrity check; a damaged database yields [`StoreError::Corrupt`].
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare("PRAGMA integrity_check")
            .map_err(self.err("checking integrity"))?;
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(self.err("checking integrity"))?;
        if rows.len() == 1 && rows[0] == "ok" {
            Ok(())
        } else {
            Err(StoreError::Corrupt {
                path: self.path.clone(),
                detail: rows.join("; "),
            })
        }
    }

    /// Marks `jail` as configured.
    pub fn add_jail(&mut self, jail: &str) -> Result<(), StoreError> {
        self.write(Op::AddJail(jail.to_string())).map(drop)
    }

    /// Marks `jail` as no longer configured: [`purge`](Self::purge) removes it once its bans are gone.
    pub fn disable_jail(&mut self, jail: &str) -> Result<(), StoreError> {
        self.write(Op::DisableJail(jail.to_string())).map(drop)
    }

    /// The known jails and whether they are enabled, by name.
    pub fn jails(&self) -> Result<Vec<(String, bool)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, enabled FROM jails ORDER BY name")
            .map_err(self.err("listing jails"))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? != 0)))
            .and_then(|rows| rows.collect())
            .map_err(self.err("listing jails"))
    }

    /// Records a ban: one event in `bans`, and the id's latest ban and count in `ban_history`, in one
    /// transaction. Call it before running the ban's actions.
    pub fn record_ban(&mut self, ban: &BanRecord<'_>) -> Result<(), StoreError> {
        let keep = ban.matches.len().saturating_sub(self.opts.max_matches);
        let data = BanData {
            matches: if self.opts.max_matches == 0 {
                Vec::new()
            } else {
                ban.matches[keep..].to_vec()
            },
            failures: ban.failures,
        };
        let json = serde_json::to_string(&data).map_err(|source| StoreError::Data {
            path: self.path.clone(),
            jail: ban.jail.to_string(),
            id: ban.id.to_string(),
            source,
        })?;
        let count = i64::try_from(ban.ban_count).unwrap_or(i64::MAX);
        // Replayed writes keep their flag: a queued first ban still adds the jail.
        let new_jail = self.jails_seen.insert(ban.jail.to_string());
        self.write(Op::Ban {
            new_jail,
            jail: ban.jail.to_string(),
            id: ban.id.to_string(),
            banned_at: ban.banned_at,
            bantime: ban.bantime,
            count,
            json,
        })
        .map(drop)
    }

    /// Removes the bans of `id` in `jail` (an unban by hand). As in fail2ban, its history goes too: an id
    /// unbanned by the administrator starts again from `bantime`. Returns whether anything was removed.
    /// (While the store cannot write, the removal is queued and `true` returned.)
    pub fn remove_ban(&mut self, jail: &str, id: &str) -> Result<bool, StoreError> {
        self.write(Op::Unban {
            jail: jail.to_string(),
            id: id.to_string(),
        })
        .map(|n| n.is_none_or(|n| n > 0))
    }

    /// Removes every ban and history row of `jail` (`unban --all` on that jail). Returns the rows removed
    /// (0 while the store cannot write and the removal is queued).
    pub fn remove_jail_bans(&mut self, jail: &str) -> Result<usize, StoreError> {
        self.write(Op::UnbanJail {
            jail: jail.to_string(),
        })
        .map(Option::unwrap_or_default)
    }

    /// Writes a row of another component's table in the same database file (`sql` with its
    /// `params`; the table is that component's, created by it) within the store's transaction:
    /// in a batch it commits with the bans of that batch, or not at all. The fleet's outbox
    /// uses it, so that a ban and the decision to publish it are one commit. Like every write,
    /// it is queued while the store cannot write.
    pub fn write_foreign(
        &mut self,
        sql: &'static str,
        params: Vec<rusqlite::types::Value>,
    ) -> Result<(), StoreError> {
        self.write(Op::Foreign { sql, params }).map(drop)
    }

    /// Starts a batch: until the matching [`end_batch`](Self::end_batch), writes share one transaction.
    /// Batches nest; only the outermost end commits.
    pub fn begin_batch(&mut self) {
        self.batch += 1;
    }

    /// Whether a batch is open (writes wait for its end to be committed).
    pub fn in_batch(&self) -> bool {
        self.batch > 0
    }

    /// Ends a batch; the outermost end commits its writes. A failed commit queues them (see
    /// [`fault`](Self::fault)) and returns the error.
    pub fn end_batch(&mut self) -> Result<(), StoreError> {
        self.batch = self.batch.saturating_sub(1);
        if self.batch == 0 {
            self.commit()
        } else {
            Ok(())
        }
    }

    /// Why the store cannot write and how many writes wait in memory; `None` while it writes.
    pub fn fault(&self) -> Option<StoreFault> {
        self.fault.as_ref().map(|e| StoreFault {
            error: e.clone(),
            queued: self.queued.len(),
        })
    }

    /// Tries to persist the queued writes (in one transaction). `Ok(Some(n))`: the store writes again and
    /// `n` queued writes were persisted; `Ok(None)`: nothing was queued (or a batch is open); `Err`: still
    /// failing, everything stays queued.
    pub fn retry(&mut self) -> Result<Option<usize>, StoreError> {
        if self.fault.is_none() || self.in_tx {
            return Ok(None);
        }
        let path = self.path.clone();
        let r = (|| {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            for op in &self.queued {
                op.exec(&self.conn)?;
            }
            self.conn.execute_batch("COMMIT")
        })();
        match r {
            Ok(()) => {
                self.fault = None;
                Ok(Some(std::mem::take(&mut self.queued).len()))
            }
            Err(source) => {
                self.rollback();
                Err(self_err(&path, "writing queued changes")(source))
            }
        }
    }

    /// Runs `op` in the open transaction (opening one if needed; committing at once outside a batch).
    /// `Ok(None)`: queued behind an earlier failure. The error is returned by the write that fails only.
    fn write(&mut self, op: Op) -> Result<Option<usize>, StoreError> {
        if self.fault.is_some() {
            self.queued.push(op);
            return Ok(None);
        }
        let what = op.what();
        let r = (|| {
            if !self.in_tx {
                self.conn.execute_batch("BEGIN IMMEDIATE")?;
                self.in_tx = true;
            }
            op.exec(&self.conn)
        })();
        match r {
            Ok(n) => {
                self.pending.push(op);
                if self.batch == 0 {
                    self.commit()?;
                }
                Ok(Some(n))
            }
            Err(source) => {
                self.pending.push(op);
                Err(self.fail(source, what))
            }
        }
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        if !self.in_tx {
            return Ok(());
        }
        match self.conn.execute_batch("COMMIT") {
            Ok(()) => {
                self.in_tx = false;
                self.pending.clear();
                Ok(())
            }
            Err(source) => Err(self.fail(source, "committing")),
        }
    }

    /// Rolls the open transaction back, queues its writes and enters the fault state.
    fn fail(&mut self, source: rusqlite::Error, op: &'static str) -> StoreError {
        self.rollback();
        let mut queued = std::mem::take(&mut self.pending);
        queued.append(&mut self.queued);
        self.queued = queued;
        let e = self.err(op)(source);
        self.fault = Some(e.to_string());
        e
    }

    fn rollback(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        self.in_tx = false;
    }

    /// The bans still in force at `now`, in every jail, ordered by jail and id.
    pub fn current_bans(&self, now: f64) -> Result<Vec<ActiveBan>, StoreError> {
        self.query_current(None, now, None)
    }

    /// The bans of `jail` still in force at `now`, for restoring that jail on start. With `max_bantime`
    /// (fail2ban: `bantime.maxtime` with increment, else `bantime`; see
    /// [`BanTimePolicy::max_bantime`](crate::BanTimePolicy::max_bantime)), a longer or permanent stored ban is
    /// shortened to it first, so a jail whose configuration was made milder restores milder bans.
    pub fn current_bans_for(
        &self,
        jail: &str,
        now: f64,
        max_bantime: Option<f64>,
    ) -> Result<Vec<ActiveBan>, StoreError> {
        self.query_current(Some(jail), now, max_bantime.filter(|m| *m >= 0.0))
    }

    fn query_current(
        &self,
        jail: Option<&str>,
        now: f64,
        cap: Option<f64>,
    ) -> Result<Vec<ActiveBan>, StoreError> {
        let sql = "SELECT jail, id, banned_at, bantime, ban_count, data FROM ban_history
                   WHERE (?1 IS NULL OR jail = ?1) AND (bantime < 0 OR banned_at + bantime > ?2)
                   ORDER BY jail, id";
        let mut stmt = self
            .conn
            .prepare(sql)
            .map_err(self.err("reading current bans"))?;
        let rows: Vec<(String, String, f64, f64, i64, String)> = stmt
            .query_map(params![jail, now], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .and_then(|rows| rows.collect())
            .map_err(self.err("reading current bans"))?;
        let mut out = Vec::with_capacity(rows.len());
        for (jail, id, banned_at, mut bantime, count, data) in rows {
            if let Some(cap) = cap
                && (bantime < 0.0 || bantime > cap)
            {
                bantime = cap;
            }
            let remaining = (bantime >= 0.0).then_some(banned_at + bantime - now);
            if remaining.is_some_and(|r| r <= 0.0) {
                continue;
            }
            let data = self.decode(&jail, &id, &data)?;
            out.push(ActiveBan {
                jail,
                id,
                banned_at,
                bantime,
                remaining,
                ban_count: u64::try_from(count).unwrap_or(0),
                data,
            });
        }
        Ok(out)
    }

    fn decode(&self, jail: &str, id: &str, data: &str) -> Result<BanData, StoreError> {
        serde_json::from_str(data).map_err(|source| StoreError::Data {
            path: self.path.clone(),
            jail: jail.to_string(),
            id: id.to_string(),
            source,
        })
    }

    /// The ban history of `id` (for `bantime.increment`), counting only bans that started after `since` if
    /// given. `None`: never banned (or purged).
    pub fn ban_count(
        &self,
        id: &str,
        scope: Scope<'_>,
        since: Option<f64>,
    ) -> Result<Option<BanHistory>, StoreError> {
        let (sql, jail) = match scope {
            Scope::Jail(j) => (
                "SELECT ban_count, banned_at, bantime FROM ban_history
                 WHERE id = ?1 AND jail = ?2 AND (?3 IS NULL OR banned_at > ?3)",
                Some(j),
            ),
            Scope::All => (
                "SELECT sum(ban_count), max(banned_at), sum(bantime) FROM ban_history
                 WHERE id = ?1 AND (?3 IS NULL OR banned_at > ?3) GROUP BY id",
                None,
            ),
        };
        let row: Option<(i64, f64, f64)> = self
            .conn
            .query_row(sql, params![id, jail, since], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
            .map_err(self.err("reading ban history"))?;
        Ok(row.map(|(count, last, bantime)| BanHistory {
            count: u64::try_from(count).unwrap_or(0),
            last_banned_at: last,
            bantime,
        }))
    }

    /// The rows of the ban history of `jail` (every jail with `None`), to keep the history of
    /// `bantime.increment` in memory ([`History`](crate::History)).
    pub fn history_rows(&self, jail: Option<&str>) -> Result<Vec<HistoryRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT jail, id, banned_at, bantime, ban_count FROM ban_history
                 WHERE ?1 IS NULL OR jail = ?1",
            )
            .map_err(self.err("reading ban history"))?;
        stmt.query_map(params![jail], |r| {
            Ok(HistoryRow {
                jail: r.get(0)?,
                id: r.get(1)?,
                banned_at: r.get(2)?,
                bantime: r.get(3)?,
                ban_count: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(self.err("reading ban history"))
    }

    /// Number of ban events stored for `jail` (all jails with `None`), for status output and tests.
    pub fn ban_events(&self, jail: Option<&str>) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM bans WHERE ?1 IS NULL OR jail = ?1",
                [jail],
                |r| r.get(0),
            )
            .map_err(self.err("counting bans"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Stores where reading `pos.path` for `jail` stopped.
    pub fn set_position(&mut self, jail: &str, pos: &LogPosition) -> Result<(), StoreError> {
        let offset = i64::try_from(pos.offset).unwrap_or(i64::MAX);
        self.write(Op::Position {
            jail: jail.to_string(),
            path: pos.path.clone(),
            hash: pos.first_line_hash.clone(),
            offset,
        })
        .map(drop)
    }

    /// Where reading `path` for `jail` stopped, if known.
    pub fn get_position(&self, jail: &str, path: &str) -> Result<Option<LogPosition>, StoreError> {
        self.conn
            .query_row(
                "SELECT path, first_line_hash, offset FROM log_positions WHERE jail = ?1 AND path = ?2",
                [jail, path],
                |r| {
                    Ok(LogPosition {
                        path: r.get(0)?,
                        first_line_hash: r.get(1)?,
                        offset: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                    })
                },
            )
            .optional()
            .map_err(self.err("reading a log position"))
    }

    /// Every stored file position of `jail` (journal cursors excluded), for restoring a jail whose
    /// `logpath` has globs.
    pub fn positions(&self, jail: &str) -> Result<Vec<LogPosition>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT path, first_line_hash, offset FROM log_positions
                 WHERE jail = ?1 AND journal_cursor IS NULL ORDER BY path",
            )
            .map_err(self.err("reading log positions"))?;
        stmt.query_map([jail], |r| {
            Ok(LogPosition {
                path: r.get(0)?,
                first_line_hash: r.get(1)?,
                offset: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(self.err("reading log positions"))
    }

    /// Stores the cursor where reading `journal` (e.g. `systemd-journal`) for `jail` stopped.
    pub fn set_journal_cursor(
        &mut self,
        jail: &str,
        journal: &str,
        cursor: &str,
    ) -> Result<(), StoreError> {
        self.write(Op::Cursor {
            jail: jail.to_string(),
            journal: journal.to_string(),
            cursor: cursor.to_string(),
        })
        .map(drop)
    }

    /// The cursor where reading `journal` for `jail` stopped, if known.
    pub fn get_journal_cursor(
        &self,
        jail: &str,
        journal: &str,
    ) -> Result<Option<String>, StoreError> {
        let v: Option<Option<String>> = self
            .conn
            .query_row(
                "SELECT journal_cursor FROM log_positions WHERE jail = ?1 AND path = ?2",
                [jail, journal],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err("reading a journal cursor"))?;
        Ok(v.flatten())
    }

    /// Purges (fail2ban `dbpurgeage`): ban events older than `purge_age`; history rows of non-permanent bans
    /// that ended long ago (`banned_at + bantime * outdated_factor` older than `purge_age`); disabled jails
    /// left without bans, with their log positions.
    pub fn purge(&mut self, now: f64) -> Result<PurgeReport, StoreError> {
        // Queued writes first (the purge runs outside batches, in its own transaction).
        self.commit()?;
        // It may delete rows of `jails`: the next ban of each jail checks its row again.
        self.jails_seen.clear();
        if let Some(e) = &self.fault {
            return Err(StoreError::Unwritable {
                path: self.path.clone(),
                detail: format!("purge skipped: {e}"),
            });
        }
        let limit = now - self.opts.purge_age;
        let factor = self.opts.outdated_factor;
        let path = self.path.clone();
        let e = |op| self_err(&path, op);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(e("purging"))?;
        let bans = tx
            .execute("DELETE FROM bans WHERE banned_at < ?1", [limit])
            .map_err(e("purging bans"))?;
        let history = tx
            .execute(
                "DELETE FROM ban_history WHERE banned_at < ?1 AND bantime >= 0 AND banned_at + bantime * ?2 < ?1",
                params![limit, factor],
            )
            .map_err(e("purging ban history"))?;
        let orphan = "enabled = 0 AND NOT EXISTS (SELECT 1 FROM bans WHERE bans.jail = jails.name)
                      AND NOT EXISTS (SELECT 1 FROM ban_history h WHERE h.jail = jails.name)";
        tx.execute(
            &format!(
                "DELETE FROM log_positions WHERE jail IN (SELECT name FROM jails WHERE {orphan})"
            ),
            [],
        )
        .map_err(e("purging log positions"))?;
        let jails = tx
            .execute(&format!("DELETE FROM jails WHERE {orphan}"), [])
            .map_err(e("purging jails"))?;
        tx.commit().map_err(e("purging"))?;
        Ok(PurgeReport {
            bans,
            history,
            jails,
        })
    }
}

fn self_err(path: &Path, op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError + use<> {
    let path = path.to_path_buf();
    move |source| {
        if is_corrupt_code(&source) {
            StoreError::Corrupt {
                path,
                detail: format!("{op}: {source}"),
            }
        } else {
            StoreError::Sqlite { path, op, source }
        }
    }
}

/// Moves a damaged database (and its `-wal` / `-shm` files) aside to `<path>.corrupt.<unix seconds>` (with a
/// numeric suffix if that exists), so a fresh database can be created and the old one examined later.
/// Returns the new path of the main file.
pub fn move_aside(path: &Path, now: f64) -> Result<PathBuf, StoreError> {
    let stamp = if now.is_finite() && now > 0.0 {
        now as u64
    } else {
        0
    };
    let base = format!("{}.corrupt.{stamp}", path.display());
    let mut to = PathBuf::from(&base);
    let mut n = 1;
    while to.exists() {
        to = PathBuf::from(format!("{base}.{n}"));
        n += 1;
    }
    std::fs::rename(path, &to).map_err(|source| StoreError::MoveAside {
        path: path.to_path_buf(),
        to: to.clone(),
        source,
    })?;
    for suffix in ["-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", path.display()));
        if from.exists() {
            let side = PathBuf::from(format!("{}{suffix}", to.display()));
            std::fs::rename(&from, &side).map_err(|source| StoreError::MoveAside {
                path: from.clone(),
                to: side.clone(),
                source,
            })?;
        }
    }
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec<'a>(id: &'a str, matches: &'a [String]) -> BanRecord<'a> {
        BanRecord {
            jail: "sshd",
            id,
            banned_at: 1000.0,
            bantime: 600.0,
            ban_count: 1,
            matches,
            failures: 3,
        }
    }

    fn temp_db(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ferroban-store-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("db.sqlite3")
    }

    #[test]
    fn a_foreign_row_commits_with_the_bans_of_its_batch() {
        let db = temp_db("foreign");
        let mut s = Store::open(&db, StoreOptions::default()).unwrap();
        // Another component's table in the same file (the fleet's outbox).
        let other = Connection::open(&db).unwrap();
        other
            .execute_batch("CREATE TABLE outbox(ip TEXT NOT NULL)")
            .unwrap();
        let rows = |table: &str| -> i64 {
            other
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .unwrap()
        };
        s.begin_batch();
        s.record_ban(&rec("10.0.0.1", &[])).unwrap();
        s.write_foreign(
            "INSERT INTO outbox(ip) VALUES (?1)",
            vec![rusqlite::types::Value::Text("10.0.0.1".into())],
        )
        .unwrap();
        assert!(s.in_batch());
        assert_eq!((rows("bans"), rows("outbox")), (0, 0), "not committed yet");
        s.end_batch().unwrap();
        assert!(!s.in_batch());
        assert_eq!((rows("bans"), rows("outbox")), (1, 1), "one commit");
    }

    #[test]
    fn a_batch_is_one_transaction_and_reads_see_it() {
        let db = temp_db("batch");
        let mut s = Store::open(&db, StoreOptions::default()).unwrap();
        s.begin_batch();
        for i in 0..1000 {
            s.record_ban(&rec(&format!("10.0.{}.{}", i / 256, i % 256), &[]))
                .unwrap();
        }
        // Visible to this connection inside the batch, not to another one yet.
        assert_eq!(s.current_bans(1001.0).unwrap().len(), 1000);
        let other = Connection::open(&db).unwrap();
        let count = |c: &Connection| -> i64 {
            c.query_row("SELECT count(*) FROM ban_history", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(count(&other), 0);
        s.end_batch().unwrap();
        assert_eq!(count(&other), 1000);
        let _ = std::fs::remove_dir_all(db.parent().unwrap());
    }

    /// A store that cannot write (here: SQLite's page limit, the same SQLITE_FULL a full disk gives) reports
    /// the error once, queues every write in order, and persists them all once it can write again.
    #[test]
    fn a_full_store_queues_and_catches_up() {
        let db = temp_db("full");
        let mut s = Store::open(&db, StoreOptions::default()).unwrap();
        s.record_ban(&rec("192.0.2.1", &[])).unwrap();
        let pages: i64 = s
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        s.conn
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
            .unwrap();
        let big: Vec<String> = vec!["x".repeat(3000); 10];
        let mut errors = 0;
        for i in 0..50 {
            let id = format!("198.51.100.{i}");
            if s.record_ban(&rec(&id, &big)).is_err() {
                errors += 1;
            }
        }
        s.remove_ban("sshd", "192.0.2.1").unwrap();
        assert_eq!(errors, 1, "one error, when the store started failing");
        let fault = s.fault().expect("the store reports its fault");
        assert!(fault.error.contains("db.sqlite3"), "{}", fault.error);
        assert!(fault.queued >= 2, "{fault:?}");
        // Still full: the retry fails and keeps everything.
        assert!(s.retry().is_err());
        assert_eq!(s.fault().unwrap().queued, fault.queued);
        // Room again.
        s.conn
            .query_row("PRAGMA max_page_count = 1000000", [], |_| Ok(()))
            .unwrap();
        assert_eq!(s.retry().unwrap(), Some(fault.queued));
        assert_eq!(s.fault(), None);
        drop(s);
        let s = Store::open(&db, StoreOptions::default()).unwrap();
        let ids: Vec<String> = s
            .current_bans(1001.0)
            .unwrap()
            .into_iter()
            .map(|b| b.id)
            .collect();
        assert_eq!(ids.len(), 50, "{ids:?}");
        assert!(
            !ids.contains(&"192.0.2.1".to_string()),
            "the unban queued after the bans was applied in order"
        );
        let _ = std::fs::remove_dir_all(db.parent().unwrap());
    }
}
