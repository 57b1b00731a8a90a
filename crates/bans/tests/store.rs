//! The SQLite store: round trip, restore after restart, purge, schema, migrations, corruption, concurrency.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use ferroban_bans::{
    AddOutcome, Ban, BanData, BanManager, BanRecord, LogPosition, PurgeReport, SCHEMA_VERSION,
    Scope, Store, StoreError, StoreOptions, move_aside,
};

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "ferroban-bans-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn db(&self) -> PathBuf {
        self.0.join("ferroban.sqlite3")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn lines(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("line {i}")).collect()
}

fn ban<'a>(
    jail: &'a str,
    id: &'a str,
    at: f64,
    bantime: f64,
    matches: &'a [String],
) -> BanRecord<'a> {
    BanRecord {
        jail,
        id,
        banned_at: at,
        bantime,
        ban_count: 1,
        matches,
        failures: matches.len() as u64,
    }
}

fn open(path: &Path) -> Store {
    Store::open(path, StoreOptions::default()).unwrap()
}

#[test]
fn schema_version_is_present_and_wal_is_on() {
    let dir = TempDir::new("schema");
    let store = open(&dir.db());
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(store.path(), dir.db());
    store.integrity_check().unwrap();
    drop(store);
    let raw = rusqlite::Connection::open(dir.db()).unwrap();
    let v: i64 = raw
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, i64::from(SCHEMA_VERSION));
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn round_trip_with_dbmaxmatches() {
    let mut store = Store::open_in_memory(StoreOptions::default()).unwrap();
    let m = lines(12);
    store
        .record_ban(&BanRecord {
            ban_count: 2,
            ..ban("sshd", "192.0.2.1", 1000.0, 600.0, &m)
        })
        .unwrap();
    let bans = store.current_bans(1100.0).unwrap();
    assert_eq!(bans.len(), 1);
    let b = &bans[0];
    assert_eq!((b.jail.as_str(), b.id.as_str()), ("sshd", "192.0.2.1"));
    assert_eq!(
        (b.banned_at, b.bantime, b.remaining, b.ban_count),
        (1000.0, 600.0, Some(500.0), 2)
    );
    // dbmaxmatches = 10 keeps the last ten.
    assert_eq!(
        b.data,
        BanData {
            matches: m[2..].to_vec(),
            failures: 12
        }
    );
    assert_eq!(store.ban_events(Some("sshd")).unwrap(), 1);
    assert_eq!(store.jails().unwrap(), [("sshd".to_string(), true)]);

    // dbmaxmatches = 0 stores no lines.
    let mut store = Store::open_in_memory(StoreOptions {
        max_matches: 0,
        ..Default::default()
    })
    .unwrap();
    store
        .record_ban(&ban("sshd", "192.0.2.1", 1000.0, 600.0, &m))
        .unwrap();
    assert!(
        store.current_bans(1000.0).unwrap()[0]
            .data
            .matches
            .is_empty()
    );
}

#[test]
fn restart_restores_remaining_ban_time() {
    let dir = TempDir::new("restore");
    let m = lines(2);
    {
        let mut store = open(&dir.db());
        store
            .record_ban(&ban("sshd", "a", 1000.0, 600.0, &m))
            .unwrap();
        store
            .record_ban(&ban("sshd", "b", 1000.0, 60.0, &m))
            .unwrap();
        store
            .record_ban(&ban("sshd", "perm", 1000.0, -1.0, &m))
            .unwrap();
        store
            .record_ban(&ban("nginx", "a", 1200.0, 3600.0, &m))
            .unwrap();
    } // daemon stops
    let now = 1250.0; // daemon starts again 250 s after the first bans
    let store = open(&dir.db());
    let all = store.current_bans(now).unwrap();
    let got: Vec<_> = all
        .iter()
        .map(|b| (b.jail.as_str(), b.id.as_str(), b.remaining))
        .collect();
    assert_eq!(
        got,
        [
            ("nginx", "a", Some(3550.0)),
            ("sshd", "a", Some(350.0)),
            ("sshd", "perm", None)
        ],
        "b ended at 1060 and is not restored"
    );

    // Restoring a jail into its ban manager: the unban happens at the original time.
    let mut manager = BanManager::new();
    for b in store.current_bans_for("sshd", now, None).unwrap() {
        let out = manager.add(
            b.id,
            Ban {
                banned_at: b.banned_at,
                bantime: b.bantime,
                ban_count: b.ban_count,
            },
            now,
        );
        assert_eq!(out, AddOutcome::Added);
    }
    assert_eq!(manager.next_deadline(), Some(1600.0));
    assert_eq!(manager.expire(1600.0).len(), 1);
    assert!(manager.is_banned(&"perm".to_string()));

    // With a cap (the jail's bantime became 300): the permanent ban and "a" last 300 s from their start.
    let capped = store.current_bans_for("sshd", now, Some(300.0)).unwrap();
    let got: Vec<_> = capped
        .iter()
        .map(|b| (b.id.as_str(), b.bantime, b.remaining))
        .collect();
    assert_eq!(got, [("a", 300.0, Some(50.0)), ("perm", 300.0, Some(50.0))]);
    // Capped to 200 s, both ended at 1200.
    assert!(
        store
            .current_bans_for("sshd", now, Some(200.0))
            .unwrap()
            .is_empty()
    );
    // Capped to 400 s: "a" (600 s) and the permanent ban both end at 1400; a negative cap means none.
    let capped = store.current_bans_for("sshd", now, Some(400.0)).unwrap();
    let got: Vec<_> = capped
        .iter()
        .map(|b| (b.id.as_str(), b.bantime, b.remaining))
        .collect();
    assert_eq!(
        got,
        [("a", 400.0, Some(150.0)), ("perm", 400.0, Some(150.0))]
    );
    let uncapped = store.current_bans_for("sshd", now, Some(-1.0)).unwrap();
    assert_eq!(
        uncapped.iter().map(|b| b.bantime).collect::<Vec<_>>(),
        [600.0, -1.0]
    );
}

#[test]
fn repeated_bans_keep_one_history_row_with_the_latest_ban() {
    let mut store = Store::open_in_memory(StoreOptions::default()).unwrap();
    store
        .record_ban(&ban("sshd", "a", 1000.0, 600.0, &[]))
        .unwrap();
    store
        .record_ban(&BanRecord {
            ban_count: 2,
            ..ban("sshd", "a", 2000.0, 1200.0, &[])
        })
        .unwrap();
    assert_eq!(store.ban_events(None).unwrap(), 2);
    let h = store
        .ban_count("a", Scope::Jail("sshd"), None)
        .unwrap()
        .unwrap();
    assert_eq!((h.count, h.last_banned_at, h.bantime), (2, 2000.0, 1200.0));
    let cur = store.current_bans(2100.0).unwrap();
    assert_eq!(cur.len(), 1);
    assert_eq!(cur[0].remaining, Some(1100.0));
}

#[test]
fn remove_ban_forgets_the_ban_and_its_history() {
    let mut store = Store::open_in_memory(StoreOptions::default()).unwrap();
    store
        .record_ban(&ban("sshd", "a", 1000.0, 600.0, &[]))
        .unwrap();
    store
        .record_ban(&ban("sshd", "b", 1000.0, 600.0, &[]))
        .unwrap();
    store
        .record_ban(&ban("nginx", "a", 1000.0, 600.0, &[]))
        .unwrap();
    assert!(store.remove_ban("sshd", "a").unwrap());
    assert!(!store.remove_ban("sshd", "a").unwrap());
    assert_eq!(
        store.ban_count("a", Scope::Jail("sshd"), None).unwrap(),
        None
    );
    assert_eq!(
        store
            .ban_count("a", Scope::All, None)
            .unwrap()
            .map(|h| h.count),
        Some(1)
    );
    assert_eq!(store.remove_jail_bans("sshd").unwrap(), 2);
    let left: Vec<_> = store
        .current_bans(1000.0)
        .unwrap()
        .into_iter()
        .map(|b| (b.jail, b.id))
        .collect();
    assert_eq!(left, [("nginx".to_string(), "a".to_string())]);
}

#[test]
fn purge_follows_dbpurgeage() {
    let day = 86_400.0;
    let mut store = Store::open_in_memory(StoreOptions::default()).unwrap();
    store.add_jail("old").unwrap();
    store.add_jail("sshd").unwrap();
    store
        .set_position(
            "old",
            &LogPosition {
                path: "/var/log/old".into(),
                first_line_hash: None,
                offset: 9,
            },
        )
        .unwrap();
    store
        .record_ban(&ban("sshd", "short", 0.0, 600.0, &[]))
        .unwrap();
    store
        .record_ban(&ban("sshd", "long", 0.0, 2.0 * day, &[]))
        .unwrap(); // ends at 2d: 3 × 2d = 6d not yet outdated at 5d
    store
        .record_ban(&ban("sshd", "perm", 0.0, -1.0, &[]))
        .unwrap();
    store
        .record_ban(&ban("sshd", "recent", 4.5 * day, 600.0, &[]))
        .unwrap();
    store.disable_jail("old").unwrap();

    let report = store.purge(5.0 * day).unwrap();
    assert_eq!(
        report,
        PurgeReport {
            bans: 3,
            history: 1,
            jails: 1
        }
    );
    assert_eq!(store.ban_events(None).unwrap(), 1);
    assert_eq!(store.ban_count("short", Scope::All, None).unwrap(), None);
    assert!(store.ban_count("long", Scope::All, None).unwrap().is_some());
    assert!(
        store.ban_count("perm", Scope::All, None).unwrap().is_some(),
        "permanent history is kept"
    );
    assert_eq!(
        store.current_bans(5.0 * day).unwrap().len(),
        1,
        "the permanent ban is still restored"
    );
    assert_eq!(store.jails().unwrap(), [("sshd".to_string(), true)]);
    assert_eq!(store.get_position("old", "/var/log/old").unwrap(), None);
    // Nothing more to purge at the same time.
    assert_eq!(store.purge(5.0 * day).unwrap(), PurgeReport::default());
}

#[test]
fn log_positions_and_journal_cursor() {
    let dir = TempDir::new("positions");
    {
        let mut store = open(&dir.db());
        assert_eq!(
            store.get_position("sshd", "/var/log/auth.log").unwrap(),
            None
        );
        let pos = LogPosition {
            path: "/var/log/auth.log".into(),
            first_line_hash: Some("abc".into()),
            offset: 10,
        };
        store.set_position("sshd", &pos).unwrap();
        store
            .set_position(
                "sshd",
                &LogPosition {
                    offset: 4096,
                    ..pos
                },
            )
            .unwrap();
        store
            .set_journal_cursor("sshd", "systemd-journal", "s=1;i=2")
            .unwrap();
        store
            .set_journal_cursor("sshd", "systemd-journal", "s=1;i=3")
            .unwrap();
    }
    let store = open(&dir.db());
    let got = store
        .get_position("sshd", "/var/log/auth.log")
        .unwrap()
        .unwrap();
    assert_eq!(got.offset, 4096);
    assert_eq!(got.resume_offset(Some("abc")), Some(4096));
    assert_eq!(got.resume_offset(Some("rotated")), None);
    assert_eq!(
        store.get_position("nginx", "/var/log/auth.log").unwrap(),
        None
    );
    assert_eq!(
        store
            .get_journal_cursor("sshd", "systemd-journal")
            .unwrap()
            .as_deref(),
        Some("s=1;i=3")
    );
    assert_eq!(
        store
            .get_journal_cursor("sshd", "/var/log/auth.log")
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .get_journal_cursor("nginx", "systemd-journal")
            .unwrap(),
        None
    );
}

#[test]
fn a_version_1_database_is_migrated() {
    let dir = TempDir::new("migrate");
    {
        let raw = rusqlite::Connection::open(dir.db()).unwrap();
        raw.execute_batch(
            "CREATE TABLE schema_version(version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);
             CREATE TABLE jails(name TEXT PRIMARY KEY NOT NULL, enabled INTEGER NOT NULL DEFAULT 1);
             CREATE TABLE bans(jail TEXT NOT NULL, id TEXT NOT NULL, banned_at REAL NOT NULL, bantime REAL NOT NULL,
                               ban_count INTEGER NOT NULL DEFAULT 1, data TEXT NOT NULL DEFAULT '{}');
             CREATE TABLE ban_history(id TEXT NOT NULL, jail TEXT NOT NULL, banned_at REAL NOT NULL,
                               bantime REAL NOT NULL, ban_count INTEGER NOT NULL DEFAULT 1,
                               data TEXT NOT NULL DEFAULT '{}', PRIMARY KEY(id, jail));
             CREATE TABLE log_positions(jail TEXT NOT NULL, path TEXT NOT NULL, first_line_hash TEXT,
                               offset INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(jail, path));
             INSERT INTO log_positions VALUES ('sshd', '/var/log/auth.log', 'h', 77);
             INSERT INTO ban_history VALUES ('a', 'sshd', 100.0, -1.0, 1, '{\"failures\":5}');",
        )
        .unwrap();
    }
    let mut store = open(&dir.db());
    assert_eq!(store.schema_version().unwrap(), 2);
    assert_eq!(
        store
            .get_position("sshd", "/var/log/auth.log")
            .unwrap()
            .unwrap()
            .offset,
        77
    );
    store
        .set_journal_cursor("sshd", "systemd-journal", "c")
        .unwrap();
    let cur = store.current_bans(1e9).unwrap();
    assert_eq!(
        cur[0].data,
        BanData {
            matches: vec![],
            failures: 5
        }
    );
}

#[test]
fn a_newer_schema_is_refused_naming_the_file() {
    let dir = TempDir::new("future");
    drop(open(&dir.db()));
    let raw = rusqlite::Connection::open(dir.db()).unwrap();
    raw.execute("UPDATE schema_version SET version = 99", [])
        .unwrap();
    drop(raw);
    let err = Store::open(dir.db(), StoreOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::FutureSchema {
                found: 99,
                supported: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains(&dir.db().display().to_string()),
        "{err}"
    );
}

#[test]
fn a_corrupt_database_is_reported_and_can_be_moved_aside() {
    let dir = TempDir::new("corrupt");
    let junk: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(dir.db(), &junk).unwrap();
    let err = Store::open(dir.db(), StoreOptions::default()).unwrap_err();
    assert!(err.is_corrupt(), "{err:?}");
    assert_eq!(err.path(), dir.db());
    let msg = err.to_string();
    assert!(
        msg.contains("corrupt or not a SQLite database")
            && msg.contains(&dir.db().display().to_string()),
        "{msg}"
    );

    let (mut store, moved) =
        Store::open_or_move_aside(dir.db(), StoreOptions::default(), 1_700_000_000.0).unwrap();
    let moved = moved.expect("moved aside");
    assert_eq!(moved, dir.0.join("ferroban.sqlite3.corrupt.1700000000"));
    assert_eq!(
        std::fs::read(&moved).unwrap(),
        junk,
        "the damaged file is kept for inspection"
    );
    store.record_ban(&ban("sshd", "a", 0.0, -1.0, &[])).unwrap();
    drop(store);

    // A second move at the same second gets a distinct name.
    let again = move_aside(&dir.db(), 1_700_000_000.0).unwrap();
    assert_eq!(again, dir.0.join("ferroban.sqlite3.corrupt.1700000000.1"));
    assert!(!dir.db().exists());
}

#[test]
fn an_unopenable_path_is_reported_naming_it() {
    let dir = TempDir::new("unopenable");
    let missing = dir.0.join("no/such/dir/ferroban.sqlite3");
    let err = Store::open(&missing, StoreOptions::default()).unwrap_err();
    assert!(
        matches!(err, StoreError::Open { .. } | StoreError::Sqlite { .. }),
        "{err:?}"
    );
    assert!(!err.is_corrupt());
    assert!(
        err.to_string().contains("no/such/dir/ferroban.sqlite3"),
        "{err}"
    );
    // A directory where the file should be.
    let err = Store::open(&dir.0, StoreOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains(&dir.0.display().to_string()),
        "{err}"
    );
}

#[test]
fn invalid_stored_data_is_a_typed_error() {
    let dir = TempDir::new("baddata");
    drop(open(&dir.db()));
    let raw = rusqlite::Connection::open(dir.db()).unwrap();
    raw.execute(
        "INSERT INTO ban_history VALUES ('9.9.9.9', 'sshd', 0.0, -1.0, 1, 'not json')",
        [],
    )
    .unwrap();
    drop(raw);
    let err = open(&dir.db()).current_bans(0.0).unwrap_err();
    assert!(
        matches!(&err, StoreError::Data { id, jail, .. } if id == "9.9.9.9" && jail == "sshd"),
        "{err}"
    );
}

#[test]
fn concurrent_opens_and_writers_are_safe() {
    let dir = TempDir::new("concurrent");
    let path = dir.db();
    // Several connections create and migrate the same new file at once, then write.
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut store = Store::open(&path, StoreOptions::default()).unwrap();
                for i in 0..25 {
                    let id = format!("10.0.{t}.{i}");
                    store
                        .record_ban(&ban("sshd", &id, 1000.0, 600.0, &[]))
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let a = open(&path);
    assert_eq!(a.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(a.current_bans(1000.0).unwrap().len(), 100);
    // Two connections at once (the daemon and `ferroban` client reading): writes of one are seen by the other.
    let mut b = open(&path);
    b.record_ban(&ban("nginx", "x", 1000.0, 600.0, &[]))
        .unwrap();
    assert_eq!(a.ban_events(Some("nginx")).unwrap(), 1);
    drop(a);
    drop(b);
    // Reopen after close: still there, still consistent.
    let c = open(&path);
    c.integrity_check().unwrap();
    assert_eq!(c.ban_events(None).unwrap(), 101);
}
