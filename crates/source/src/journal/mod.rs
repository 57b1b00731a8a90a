//! The systemd journal as a log source, read through `journalctl` child processes.
//!
//! # Why journalctl (see docs/journal.md for the measurement)
//! The reader is `journalctl -f --no-tail -o export`, not libsystemd in-process:
//! - systemd's own follower handles rotation, vacuuming and files appearing or vanishing
//!   (its `sd_journal_process` loop); the journal files are mmapped in the child, so a file
//!   truncated or deleted under it can crash (SIGBUS) or hold only the child, never the daemon;
//! - the daemon holds no journal-file descriptor at all: one pipe per reader, two descriptors per
//!   jail (an epoll and an eventfd), however many files the journal has;
//! - no build-time dependency (libsystemd-dev) and no LGPL code linked statically;
//! - the cost: about half of libsystemd's throughput (the export format is serialised and
//!   parsed again), ~17 ms to the first entry instead of ~0.3 ms, and ~1 MiB of private memory
//!   per child. sshd's worst case is a few thousand entries a second; the reader does ~100,000.
//!
//! # One reader per journal
//! Every jail with the same journal selection ([`JournalSelection`]) shares one child: it is
//! started with the alternatives of all their `journalmatch`es, and each entry is tested here
//! against each jail's own match ([`JournalMatch::accepts`]), formatted once, and queued for the
//! jails that want it. A jail whose match cannot be tested here (an executable path) gets a child
//! of its own.
//!
//! # Positions
//! Each jail has a cursor: the entry it read last ([`JournalSource::cursor`]). A child starts
//! at the oldest position of its jails (`--cursor`, or `--since` when the cursors come from
//! different writers or a jail starts without one, reading back `findtime`), and every jail
//! skips the entries up to and including its own position, so a restart neither repeats nor
//! loses an entry — also when the cursor's entry itself was vacuumed meanwhile.
//! When a jail joins a running reader, the child is restarted that way.
//!
//! # Catching up
//! While reading entries written before it started, a jail is not "in operation" (its filter
//! drops entries older than `findtime` instead of taking odd dates as now). A child started
//! with `-n 1` tells which entry was the last one when the reader started; a jail is caught up
//! ([`JournalReport::caught_up`]) once it has read past that entry.
//!
//! # Rotation
//! Every two seconds the selection's journal files are listed again (the explicit ones of
//! `journalfiles=` or `rotated=false`; every `*.journal` file of a directory or of the system
//! journal's directories otherwise). When the set changed (a file was rotated: same name, new
//! inode; or vacuumed), the child is restarted after the last entry read, once its output is
//! drained. journalctl follows a directory across rotations itself, but not always: under load
//! it was seen to deliver nothing more after a rotation (systemd 252), so the daemon does not
//! rely on it. After a rotation of explicit files, the restarted child also reads the old file
//! under its new name from the last entry read, so entries the old child had not reached yet
//! are not lost.

mod cursor;
mod export;
mod format;
mod hub;
mod matches;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use cursor::{Cursor, order as cursor_order};
pub use export::{Entry, ExportParser, MAX_FIELD};
pub use format::{Formatted, entry_time, format_entry};
pub use matches::{JournalMatch, MatchError, split_words};

/// The name positions are stored under (fail2ban's).
pub const JOURNAL_NAME: &str = "systemd-journal";

/// Entries handed out per [`JournalSource::poll`].
pub const POLL_BUDGET: usize = 2000;

/// Why the journal cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// journalctl is not installed.
    #[error(
        "the systemd journal backend needs journalctl (systemd's package), not found in PATH or /usr/bin, /bin"
    )]
    NoJournalctl,
    /// The backend options are inconsistent.
    #[error("backend systemd: {0}")]
    Options(String),
    /// `journalmatch` is invalid.
    #[error(transparent)]
    Match(#[from] MatchError),
    /// journalctl could not be started or read.
    #[error("journalctl {args}: {source}")]
    Io {
        /// Its arguments.
        args: String,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// journalctl failed.
    #[error("journalctl {args}: {message}")]
    Failed {
        /// Its arguments.
        args: String,
        /// Its exit status and error output.
        message: String,
    },
}

/// Which journal files are read: fail2ban's `backend = systemd[...]` options.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct JournalSelection {
    /// `journalpath`: a directory of journal files (journalctl `--directory`).
    pub path: Option<PathBuf>,
    /// `journalfiles`: journal files or globs (journalctl `--file`), resolved when a reader
    /// starts and every two seconds.
    pub files: Vec<String>,
    /// `journalflags`: sd_journal_open flags (1 local only, 4 system, 8 current user, 32 all
    /// namespaces, 64 the default namespace too). Default 4, as fail2ban, when neither path
    /// nor files are given.
    pub flags: Option<u32>,
    /// `namespace`: a journal namespace (journalctl `--namespace`).
    pub namespace: Option<String>,
    /// `rotated`: read archived (`NAME@….journal`) files too. `true` by default (fail2ban
    /// 1.0.2 reads every file); `false` reads the active files only (fail2ban 1.1's default).
    pub rotated: bool,
}

const FLAG_LOCAL_ONLY: u32 = 1;
const FLAG_RUNTIME_ONLY: u32 = 2;
const FLAG_SYSTEM: u32 = 4;
const FLAG_CURRENT_USER: u32 = 8;
const FLAG_OS_ROOT: u32 = 16;
const FLAG_ALL_NAMESPACES: u32 = 32;
const FLAG_INCLUDE_DEFAULT_NAMESPACE: u32 = 64;

/// A file a selection resolved to, with its identity (a rotated file keeps its name but not its
/// inode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileId {
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
}

/// What a selection resolves to now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// journalctl's options.
    pub args: Vec<String>,
    /// The explicit files, when the selection names files.
    pub files: Option<Vec<FileId>>,
    /// Every journal file journalctl reads for this selection: when this set changes (a
    /// rotation, a vacuum), the reader is restarted after the last entry read. journalctl's own
    /// following of a directory does not always pick up a rotated set (entries stop until it is
    /// restarted).
    pub watched: Vec<FileId>,
}

impl JournalSelection {
    /// Builds the selection from fail2ban's backend options (`journalpath`, `journalfiles`,
    /// `journalflags`, `namespace`, `rotated`).
    pub fn from_options<K: AsRef<str>, V: AsRef<str>>(
        opts: &[(K, V)],
    ) -> Result<JournalSelection, JournalError> {
        let mut sel = JournalSelection {
            rotated: true,
            ..JournalSelection::default()
        };
        for (k, v) in opts {
            let (k, v) = (k.as_ref().trim(), v.as_ref().trim());
            match k {
                "journalpath" => sel.path = Some(PathBuf::from(v)),
                "journalfiles" => {
                    sel.files = v
                        .split(|c: char| c == ',' || c.is_whitespace())
                        .filter(|w| !w.is_empty())
                        .map(str::to_string)
                        .collect();
                }
                "journalflags" => {
                    let n = parse_int(v).ok_or_else(|| {
                        JournalError::Options(format!("journalflags={v:?}: not a number"))
                    })?;
                    sel.flags = Some(n);
                }
                "namespace" => sel.namespace = Some(v.to_string()).filter(|n| !n.is_empty()),
                "rotated" => {
                    sel.rotated = parse_bool(v).ok_or_else(|| {
                        JournalError::Options(format!("rotated={v:?}: expected true or false"))
                    })?;
                }
                other => {
                    return Err(JournalError::Options(format!(
                        "unknown option {other:?} (journalpath, journalfiles, journalflags, namespace, rotated)"
                    )));
                }
            }
        }
        sel.check()?;
        Ok(sel)
    }

    fn check(&self) -> Result<(), JournalError> {
        if let Some(f) = self.flags {
            if (self.path.is_some() || !self.files.is_empty()) && f != 0 {
                return Err(JournalError::Options(
                    "journalflags cannot be combined with journalpath or journalfiles".into(),
                ));
            }
            let known = FLAG_LOCAL_ONLY
                | FLAG_SYSTEM
                | FLAG_CURRENT_USER
                | FLAG_ALL_NAMESPACES
                | FLAG_INCLUDE_DEFAULT_NAMESPACE;
            if f & (FLAG_RUNTIME_ONLY | FLAG_OS_ROOT) != 0 || f & !(known | 2 | 16) != 0 {
                return Err(JournalError::Options(format!(
                    "journalflags={f}: only 1 (local only), 4 (system), 8 (current user), 32 (all namespaces) and 64 (default namespace too) can be read through journalctl"
                )));
            }
        }
        if self.path.is_some() && !self.files.is_empty() {
            return Err(JournalError::Options(
                "journalpath and journalfiles exclude each other".into(),
            ));
        }
        Ok(())
    }

    /// How the selection reads in logs and `status`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = &self.path {
            parts.push(format!("journalpath={}", p.display()));
        }
        if !self.files.is_empty() {
            parts.push(format!("journalfiles={}", self.files.join(" ")));
        }
        if let Some(f) = self.flags {
            parts.push(format!("journalflags={f}"));
        }
        if let Some(n) = &self.namespace {
            parts.push(format!("namespace={n}"));
        }
        if !self.rotated {
            parts.push("rotated=false".into());
        }
        if parts.is_empty() {
            "systemd journal".into()
        } else {
            format!("systemd journal [{}]", parts.join(", "))
        }
    }

    /// journalctl's options for this selection, resolving files now.
    pub(crate) fn resolve(&self) -> Result<Resolved, JournalError> {
        let mut args = Vec::new();
        if !self.files.is_empty() {
            let mut files = Vec::new();
            for pattern in &self.files {
                let paths = glob::glob(pattern)
                    .map_err(|e| JournalError::Options(format!("journalfiles {pattern:?}: {e}")))?;
                for p in paths.flatten() {
                    if self.rotated || !is_archived(&p) {
                        files.push(p);
                    }
                }
            }
            return Ok(files_resolved(files));
        }
        if let Some(dir) = &self.path {
            if !self.rotated {
                return Ok(files_resolved(journal_files(dir, false)));
            }
            args.push(format!("--directory={}", dir.display()));
            return Ok(Resolved {
                args,
                files: None,
                watched: file_ids(journal_files(dir, true)),
            });
        }
        if !self.rotated && self.namespace.is_none() {
            let dir = SYSTEM_DIRS
                .into_iter()
                .map(Path::new)
                .find(|d| d.is_dir())
                .unwrap_or(Path::new("/run/log/journal"));
            return Ok(files_resolved(journal_files(dir, false)));
        }
        let flags = self.flags.unwrap_or(FLAG_SYSTEM);
        if flags & FLAG_LOCAL_ONLY == 0 {
            args.push("--merge".into());
        }
        if flags & FLAG_SYSTEM != 0 {
            args.push("--system".into());
        }
        if flags & FLAG_CURRENT_USER != 0 {
            args.push("--user".into());
        }
        match (&self.namespace, flags & FLAG_ALL_NAMESPACES != 0) {
            (_, true) => args.push("--namespace=*".into()),
            (Some(ns), false) if flags & FLAG_INCLUDE_DEFAULT_NAMESPACE != 0 => {
                args.push(format!("--namespace=+{ns}"))
            }
            (Some(ns), false) => args.push(format!("--namespace={ns}")),
            (None, false) => {}
        }
        let watched = SYSTEM_DIRS
            .into_iter()
            .flat_map(|d| journal_files(Path::new(d), true))
            .collect();
        Ok(Resolved {
            args,
            files: None,
            watched: file_ids(watched),
        })
    }
}

fn parse_int(v: &str) -> Option<u32> {
    let v = v.trim();
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

/// `NAME@….journal` (and `….journal~`, a file journald found unclean) is an archived file.
fn is_archived(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    name.contains('@') || name.ends_with('~')
}

/// Where the system journal's files are (a machine-id directory below each).
const SYSTEM_DIRS: [&str; 2] = ["/var/log/journal", "/run/log/journal"];

/// The `*.journal` files in `dir` and its subdirectories one level down (the machine-id
/// directory of a system journal): the active ones, and the archived ones too with `archived`.
fn journal_files(dir: &Path, archived: bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let scan = |d: &Path, out: &mut Vec<PathBuf>, subdirs: &mut Vec<PathBuf>| {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                let p = e.path();
                let Ok(ft) = e.file_type() else { continue };
                let name = e.file_name();
                let name = name.to_string_lossy();
                if ft.is_dir() {
                    subdirs.push(p);
                } else if (name.ends_with(".journal") || (archived && name.ends_with(".journal~")))
                    && (archived || !is_archived(&p))
                {
                    out.push(p);
                }
            }
        }
    };
    let mut subdirs = Vec::new();
    scan(dir, &mut out, &mut subdirs);
    for s in subdirs {
        scan(&s, &mut out, &mut Vec::new());
    }
    out
}

/// The files that exist, sorted, with their identities.
fn file_ids(mut files: Vec<PathBuf>) -> Vec<FileId> {
    use std::os::unix::fs::MetadataExt;
    files.sort();
    files.dedup();
    files
        .into_iter()
        .filter_map(|p| {
            let m = std::fs::metadata(&p).ok()?;
            m.is_file().then(|| FileId {
                dev: m.dev(),
                ino: m.ino(),
                path: p,
            })
        })
        .collect()
}

fn files_resolved(files: Vec<PathBuf>) -> Resolved {
    let ids = file_ids(files);
    let args = ids
        .iter()
        .map(|f| format!("--file={}", f.path.display()))
        .collect();
    Resolved {
        args,
        watched: ids.clone(),
        files: Some(ids),
    }
}

/// Where a jail starts reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Right after the entry with this cursor (a restart).
    AfterCursor(String),
    /// At the first entry logged at or after this time, µs since the epoch (a first start:
    /// now − findtime).
    Since(u64),
}

/// Something worth logging about the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalNotice {
    /// A reader (journalctl) was started.
    Started {
        /// Its command line.
        command: String,
    },
    /// journalctl wrote to its error output.
    Stderr(String),
    /// journalctl ended; it is started again after a pause.
    Exited {
        /// How it ended.
        status: String,
    },
    /// journalctl could not be started.
    Error(String),
    /// The journal files changed (rotation, vacuum): the reader restarts after the last entry.
    FilesChanged,
    /// No file matches the explicit journal files yet.
    NoFiles,
    /// journalctl wrote nothing for this many seconds while the journal files changed: it is
    /// restarted at the last entry read, in case it missed a change.
    Quiet {
        /// Seconds of silence.
        secs: u64,
    },
}

impl std::fmt::Display for JournalNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JournalNotice::Started { command } => write!(f, "reading the journal: {command}"),
            JournalNotice::Stderr(s) => write!(f, "journalctl: {s}"),
            JournalNotice::Exited { status } => {
                write!(f, "journalctl ended ({status}); restarting it shortly")
            }
            JournalNotice::Error(e) => write!(f, "{e}"),
            JournalNotice::FilesChanged => {
                write!(
                    f,
                    "journal files rotated; continuing after the last entry read"
                )
            }
            JournalNotice::NoFiles => write!(f, "no journal file matches (yet); waiting"),
            JournalNotice::Quiet { secs } => write!(
                f,
                "journalctl silent for {secs} s while the journal changed; restarting it at the last entry read"
            ),
        }
    }
}

/// One entry for the filter.
#[derive(Debug, Clone, Copy)]
pub struct JournalLine<'a> {
    /// `HOST IDENT[PID]: MESSAGE`.
    pub text: &'a str,
    /// The entry's time, µs since the epoch.
    pub time_usec: u64,
    /// The entry's cursor.
    pub cursor: &'a str,
}

/// What one poll did.
#[derive(Debug, Default)]
pub struct JournalReport {
    /// Entries handed to the sink.
    pub lines: u64,
    /// Entries passed over (not selected by this jail's match).
    pub skipped: u64,
    /// More entries are queued: poll again without waiting.
    pub more: bool,
    /// The jail has read past the entry that was last when the reader started.
    pub caught_up: bool,
    /// Events worth logging.
    pub notices: Vec<JournalNotice>,
}

/// A jail's view of the journal (see the module documentation).
pub struct JournalSource {
    hub: Arc<Mutex<hub::Hub>>,
    id: u64,
    matches: JournalMatch,
    selection: JournalSelection,
    epoll: OwnedFd,
    event: OwnedFd,
    cursor: Option<Arc<str>>,
    caught_up: bool,
}

impl std::fmt::Debug for JournalSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalSource")
            .field("selection", &self.selection)
            .field("matches", &self.matches.display())
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

/// The journalctl binary.
pub fn journalctl() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")])
        .map(|d| d.join("journalctl"))
        .find(|p| p.is_file())
}

impl JournalSource {
    /// Joins (or starts) the reader of `selection` with `matches`, reading from `start`. Nothing
    /// is started before the first [`poll`](Self::poll).
    pub fn new(
        selection: JournalSelection,
        matches: JournalMatch,
        start: Start,
    ) -> Result<JournalSource, JournalError> {
        selection.check()?;
        let journalctl = journalctl().ok_or(JournalError::NoJournalctl)?;
        let (epoll, event) = hub::wake_fds().map_err(|source| JournalError::Io {
            args: "(epoll/eventfd)".into(),
            source,
        })?;
        let hub = hub::join(&selection, &matches, journalctl);
        let id = hub
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .subscribe(&matches, start, &epoll, &event);
        Ok(JournalSource {
            hub,
            id,
            matches,
            selection,
            epoll,
            event,
            cursor: None,
            caught_up: false,
        })
    }

    /// Sets where reading starts (a cursor restored from the database); the reader restarts if
    /// it is running.
    pub fn set_start(&mut self, start: Start) {
        if let Start::AfterCursor(c) = &start {
            self.cursor = Some(Arc::from(c.as_str()));
        }
        self.lock().set_start(self.id, start);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, hub::Hub> {
        self.hub.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The selection read.
    pub fn selection(&self) -> &JournalSelection {
        &self.selection
    }

    /// This jail's match.
    pub fn matches(&self) -> &JournalMatch {
        &self.matches
    }

    /// The cursor of the last entry read (to persist), or the one restored.
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// Whether the jail has caught up with the journal (see the module documentation).
    pub fn caught_up(&self) -> bool {
        self.caught_up
    }

    /// Readable when there may be something to poll (an epoll descriptor over the reader's pipe
    /// and this jail's wake-up event).
    pub fn wake_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }

    /// The process id of the running journalctl, if any (tests and diagnostics).
    pub fn reader_pid(&self) -> Option<u32> {
        self.lock().reader_pid()
    }

    /// Reads what journalctl wrote, then hands this jail's queued entries to `sink`, at most
    /// [`POLL_BUDGET`] of them.
    pub fn poll(&mut self, sink: &mut impl FnMut(JournalLine<'_>)) -> JournalReport {
        hub::drain_eventfd(&self.event);
        let (items, more, notices) = {
            let mut hub = self.lock();
            hub.pump();
            hub.take(self.id, POLL_BUDGET)
        };
        let mut report = JournalReport {
            more,
            notices,
            ..JournalReport::default()
        };
        for item in items {
            match &item.entry {
                Some(f) => {
                    sink(JournalLine {
                        text: &f.line,
                        time_usec: f.time_usec,
                        cursor: &item.cursor,
                    });
                    report.lines += 1;
                }
                None => report.skipped += 1,
            }
            if item.caught_up {
                self.caught_up = true;
            }
            self.cursor = Some(item.cursor);
        }
        if !self.caught_up && self.lock().caught_up_now(self.id) {
            self.caught_up = true;
        }
        report.caught_up = self.caught_up;
        report
    }
}

impl Drop for JournalSource {
    fn drop(&mut self) {
        // Unsubscribe before our descriptors close: the hub holds their numbers.
        self.lock().unsubscribe(self.id);
    }
}

/// Reads every entry of `selection` selected by `matches`, oldest first, without following
/// (`ferroban regex systemd-journal[...]`). Returns the number of entries read.
pub fn read_all(
    selection: &JournalSelection,
    matches: &JournalMatch,
    sink: &mut dyn FnMut(&Formatted),
) -> Result<u64, JournalError> {
    use std::io::Read;
    selection.check()?;
    let journalctl = journalctl().ok_or(JournalError::NoJournalctl)?;
    let resolved = selection.resolve()?;
    if resolved.files.as_ref().is_some_and(Vec::is_empty) {
        return Err(JournalError::Options(format!(
            "no journal file matches {}",
            selection.describe()
        )));
    }
    let mut args: Vec<String> = vec!["--no-pager".into(), "-o".into(), "export".into()];
    args.extend(resolved.args);
    args.push("--".into());
    args.extend(matches.args());
    let shown = args.join(" ");
    let mut child = std::process::Command::new(&journalctl)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|source| JournalError::Io {
            args: shown.clone(),
            source,
        })?;
    let mut out = child.stdout.take().expect("piped stdout");
    let mut parser = ExportParser::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let got = match out.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(JournalError::Io {
                    args: shown,
                    source,
                });
            }
        };
        parser.push(&buf[..got]);
        while let Some(e) = parser.next_entry() {
            if let Some(f) = format_entry(e) {
                sink(&f);
                n += 1;
            }
        }
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let status = child.wait().map_err(|source| JournalError::Io {
        args: shown.clone(),
        source,
    })?;
    if !status.success() {
        return Err(JournalError::Failed {
            args: shown,
            message: format!("{status}: {}", err.trim()),
        });
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(v: &[(&str, &str)]) -> Result<JournalSelection, JournalError> {
        JournalSelection::from_options(v)
    }

    #[test]
    fn backend_options() {
        let s = opts(&[]).unwrap();
        assert!(s.rotated);
        assert_eq!(
            s.resolve().unwrap().args,
            vec!["--merge".to_string(), "--system".into()]
        );
        let s = opts(&[("journalflags", "1")]).unwrap();
        assert_eq!(s.resolve().unwrap().args, Vec::<String>::new());
        let s = opts(&[("journalflags", "13")]).unwrap();
        assert_eq!(s.resolve().unwrap().args, vec!["--system", "--user"]);
        let s = opts(&[("namespace", "web"), ("journalflags", "69")]).unwrap();
        assert_eq!(
            s.resolve().unwrap().args,
            vec!["--system", "--namespace=+web"]
        );
        let s = opts(&[("journalpath", "/x/y")]).unwrap();
        assert_eq!(s.resolve().unwrap().args, vec!["--directory=/x/y"]);
        assert!(opts(&[("journalpath", "/x"), ("journalflags", "4")]).is_err());
        assert!(opts(&[("journalflags", "2")]).is_err());
        assert!(opts(&[("journalflags", "x")]).is_err());
        assert!(opts(&[("rotated", "maybe")]).is_err());
        assert!(opts(&[("bogus", "1")]).is_err());
        assert!(!opts(&[("rotated", "off")]).unwrap().rotated);
    }

    #[test]
    fn explicit_and_active_files() {
        let d = tempfile::tempdir().unwrap();
        for n in [
            "a.journal",
            "a@0001-0002-0003.journal",
            "b.journal~",
            "c.journal",
        ] {
            std::fs::write(d.path().join(n), b"x").unwrap();
        }
        std::fs::create_dir(d.path().join("m")).unwrap();
        std::fs::write(d.path().join("m/system.journal"), b"x").unwrap();
        let path = d.path().display().to_string();
        let glob = format!("{path}/*.journal*");
        let all = opts(&[("journalfiles", glob.as_str())])
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(all.files.unwrap().len(), 4);
        let active = opts(&[("journalfiles", glob.as_str()), ("rotated", "false")])
            .unwrap()
            .resolve()
            .unwrap();
        let names: Vec<String> = active
            .files
            .unwrap()
            .iter()
            .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["a.journal", "c.journal"]);
        let dir = opts(&[("journalpath", path.as_str()), ("rotated", "no")])
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(
            dir.files.unwrap().len(),
            3,
            "active files, machine-id dir included"
        );
    }
}
