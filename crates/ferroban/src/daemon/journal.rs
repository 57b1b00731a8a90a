//! `backend = systemd[...]` in the daemon: a jail's source is its log files or the journal.
//!
//! The reader is [`ferroban_source::journal`] (journalctl children shared by the jails of one
//! journal; docs/journal.md says why). Here: which jails read the journal (`systemd`, or `auto`
//! when no `logpath` file exists and the filter has a `journalmatch`, as fail2ban 1.1 does),
//! where they start (the stored cursor, else `findtime` back), how entries reach the filter
//! (the entry's own time, the `HOST IDENT[PID]: MESSAGE` line) and when the jail goes live.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use ferroban_config::{JailDef, LogPath};
use ferroban_source::journal::{
    JOURNAL_NAME, JournalMatch, JournalNotice, JournalSelection, JournalSource, Start,
};
use ferroban_source::{Backend, LogSource};

use super::jail::{Event, Jail};
use crate::flog;

/// A jail's log source.
pub enum JailSource {
    /// `logpath` files, read by this jail alone.
    Files(LogSource),
    /// `logpath` files, read once for every jail holding the reader (see [`super::shared`]).
    Shared(super::shared::SharedSource),
    /// The systemd journal.
    Journal(JournalJail),
}

impl JailSource {
    /// The files followed (none for the journal).
    pub fn paths(&self) -> std::vec::IntoIter<PathBuf> {
        let paths: Vec<PathBuf> = match self {
            JailSource::Files(s) => s.paths().map(PathBuf::from).collect(),
            JailSource::Shared(s) => s.borrow().source.paths().map(PathBuf::from).collect(),
            JailSource::Journal(_) => Vec::new(),
        };
        paths.into_iter()
    }

    /// fail2ban's backend name (`pyinotify`, `polling`, `systemd`).
    pub fn backend_name(&self) -> &'static str {
        match self {
            JailSource::Files(s) if s.backend() == Backend::Inotify => "pyinotify",
            JailSource::Shared(s) if s.borrow().source.backend() == Backend::Inotify => "pyinotify",
            JailSource::Files(_) | JailSource::Shared(_) => "polling",
            JailSource::Journal(_) => "systemd",
        }
    }

    /// A duplicate of the descriptor that is readable when the source may have something new.
    pub fn wake_fd(&self) -> Option<OwnedFd> {
        match self {
            JailSource::Files(s) => s.wake_fd()?.try_clone_to_owned().ok(),
            JailSource::Shared(s) => s.borrow().source.wake_fd()?.try_clone_to_owned().ok(),
            JailSource::Journal(j) => j.source.wake_fd().try_clone_to_owned().ok(),
        }
    }

    /// The `status <jail>` line about the source: `File list`, or `Journal matches` as
    /// fail2ban's systemd backend shows it.
    pub fn status_entry(&self) -> (&'static str, serde_json::Value) {
        match self {
            JailSource::Files(_) | JailSource::Shared(_) => {
                let files: Vec<String> = self.paths().map(|p| p.display().to_string()).collect();
                ("File list", serde_json::json!(files))
            }
            JailSource::Journal(j) => (
                "Journal matches",
                serde_json::json!([j.source.matches().display()]),
            ),
        }
    }
}

/// The journal selection jail `def` reads, if it reads the journal: `backend = systemd[...]`,
/// or `backend = auto` when no `logpath` entry names an existing file and the jail has a
/// `journalmatch` (fail2ban 1.1.1's switch; `systemd_if_nologs = false` in the jail turns it
/// off, as in fail2ban 1.1.1). The filter keeps the `logtype` it was read with;
/// the `file` prefixes of fail2ban's and ferroban's common.conf also take the journal's
/// `HOST IDENT[PID]:` lines.
pub fn selection_of(def: &JailDef) -> Result<Option<JournalSelection>, String> {
    let switch = def
        .value("systemd_if_nologs")
        .is_none_or(ferroban_config::as_bool);
    let no_match: [String; 0] = [];
    let journalmatch = if switch || def.backend.trim().starts_with("systemd") {
        &def.journalmatch[..]
    } else {
        &no_match[..]
    };
    selection_for(&def.backend, &def.logpath, journalmatch)
        .map_err(|e| format!("jail '{}': {e}", def.name))
}

fn selection_for(
    backend: &str,
    logpath: &[LogPath],
    journalmatch: &[String],
) -> Result<Option<JournalSelection>, String> {
    let (name, opts) = ferroban_config::parse_reference(backend.trim())
        .map_err(|e| format!("backend {backend:?}: {e}"))?;
    let journal = match name.trim() {
        "systemd" => true,
        "auto" | "" => !journalmatch.is_empty() && !any_log_file(logpath),
        _ => false,
    };
    if !journal {
        return Ok(None);
    }
    JournalSelection::from_options(&opts)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Some `logpath` entry (path or glob) names an existing file.
pub(crate) fn any_log_file(logpath: &[LogPath]) -> bool {
    logpath.iter().any(|l| {
        Path::new(&l.path).is_file()
            || glob::glob(&l.path).is_ok_and(|mut g| g.any(|p| p.is_ok_and(|p| p.is_file())))
    })
}

/// A jail reading the journal.
pub struct JournalJail {
    /// The reader's handle.
    pub source: JournalSource,
    saved: Option<String>,
    live: bool,
    /// `backend = auto` switched to the journal.
    auto: bool,
}

/// Builds the journal source of jail `def`, starting `findtime` back until [`JournalJail::restore`]
/// gives it a stored cursor.
pub fn journal_source(def: &JailDef, selection: JournalSelection) -> Result<JournalJail, String> {
    let err = |e: String| format!("jail '{}': {e}", def.name);
    let matches = JournalMatch::parse(&def.journalmatch).map_err(|e| err(e.to_string()))?;
    let findtime = def.findtime.unwrap_or(super::jail::DEFAULT_FINDTIME);
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    let source = JournalSource::new(selection, matches, since(now, findtime))
        .map_err(|e| err(e.to_string()))?;
    let auto = !def.backend.trim_start().starts_with("systemd");
    Ok(JournalJail {
        source,
        saved: None,
        live: false,
        auto,
    })
}

/// The journal cursor stored for jail `jail` (read on the store thread, for
/// [`JournalJail::restore`]).
pub fn stored_cursor(
    store: &ferroban_bans::Store,
    jail: &str,
) -> Result<Option<String>, ferroban_bans::StoreError> {
    store.get_journal_cursor(jail, JOURNAL_NAME)
}

fn since(now: f64, findtime: f64) -> Start {
    Start::Since(((now - findtime).max(0.0) * 1e6) as u64)
}

/// The journal's time text for the filter: the entry's local time as fail2ban shows it
/// (ISO 8601, microseconds when not zero) and a blank.
pub fn time_text(usec: u64) -> String {
    let t = jiff::Timestamp::from_microsecond(usec as i64).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let z = t.to_zoned_datetime(jiff::tz::TimeZone::system());
    if usec.is_multiple_of(1_000_000) {
        format!("{} ", z.strftime("%Y-%m-%dT%H:%M:%S"))
    } else {
        format!("{} ", z.strftime("%Y-%m-%dT%H:%M:%S%.6f"))
    }
}

impl JournalJail {
    /// Logs how the jail reads the journal and starts it at its stored cursor (else `findtime`
    /// back from `now`): `cursor` is what [`stored_cursor`] read (`None`: no store).
    pub fn restore(
        &mut self,
        name: &str,
        cursor: Option<Result<Option<String>, ferroban_bans::StoreError>>,
        now: f64,
        findtime: f64,
    ) {
        let m = self.source.matches();
        if self.auto {
            flog!(
                Notice,
                "filter",
                "[{name}] No file found for logpath: backend auto reads the systemd journal"
            );
        }
        if m.is_all() {
            flog!(
                Notice,
                "filter",
                "[{name}] Jail started without 'journalmatch' set. Jail regexs will be checked against all journal entries, which is not advised for performance reasons."
            );
        } else {
            flog!(
                Info,
                "filter",
                "[{name}] Added journal match for: '{}'",
                m.display()
            );
        }
        let cursor = cursor.and_then(|c| match c {
            Ok(c) => c,
            Err(e) => {
                flog!(Error, "database", "[{name}] {e}");
                None
            }
        });
        match cursor {
            Some(c) if ferroban_source::journal::Cursor::parse(&c).is_some() => {
                flog!(
                    Info,
                    "filter",
                    "[{name}] Resuming the journal after cursor {c}"
                );
                self.saved = Some(c.clone());
                self.source.set_start(Start::AfterCursor(c));
            }
            other => {
                if let Some(c) = other {
                    flog!(
                        Warning,
                        "filter",
                        "[{name}] Stored journal cursor {c:?} is not a cursor; reading back findtime"
                    );
                }
                self.source.set_start(since(now, findtime));
            }
        }
    }

    /// Hands new entries to `jail`; returns whether more are queued. Switches the jail to live
    /// operation once it caught up with the journal.
    pub fn poll(&mut self, jail: &mut Jail, now: f64, events: &mut Vec<Event>) -> bool {
        let name = jail.name().to_string();
        let report = self.source.poll(&mut |l| {
            let time = l.time_usec as f64 / 1e6;
            let tt = time_text(l.time_usec);
            events.extend(jail.process_dated(&tt, l.text, time, now));
        });
        for n in &report.notices {
            match n {
                JournalNotice::Started { .. } | JournalNotice::Quiet { .. } => {
                    flog!(Debug, "filter", "[{name}] {n}")
                }
                JournalNotice::FilesChanged => flog!(Info, "filter", "[{name}] {n}"),
                JournalNotice::Stderr(_) | JournalNotice::NoFiles => {
                    flog!(Warning, "filter", "[{name}] {n}")
                }
                JournalNotice::Exited { .. } | JournalNotice::Error(_) => {
                    flog!(Error, "filter", "[{name}] {n}")
                }
            }
        }
        if report.caught_up && !self.live {
            self.live = true;
            jail.set_in_operation(true);
            flog!(
                Info,
                "filter",
                "[{name}] Jail is in operation now (process new journal entries)"
            );
        }
        report.more
    }

    /// Whether the jail has caught up with the journal.
    pub fn live(&self) -> bool {
        self.live
    }

    /// Stores the cursor of the last entry read, when it changed (in the store's open batch,
    /// if any; a failure is logged by the store thread).
    pub fn save(&mut self, name: &str, store: &mut super::storethread::StoreHandle) {
        let Some(c) = self.source.cursor() else {
            return;
        };
        if self.saved.as_deref() == Some(c) {
            return;
        }
        self.saved = Some(c.to_string());
        let (jail, c) = (name.to_string(), c.to_string());
        store.write(move |s| {
            if let Err(e) = s.set_journal_cursor(&jail, JOURNAL_NAME, &c) {
                flog!(Error, "database", "[{jail}] {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(p: &[&str]) -> Vec<LogPath> {
        p.iter()
            .map(|p| LogPath {
                path: p.to_string(),
                tail: false,
            })
            .collect()
    }

    /// fail2ban 1.1.1's jail options for a jail whose `logpath` names no existing file:
    /// `systemd_if_nologs` (default on: `backend = auto` reads the journal when the jail has a
    /// `journalmatch`; off: it does not) and `skip_if_nologs` (the jail is not started, said so).
    #[test]
    fn systemd_if_nologs_and_skip_if_nologs() {
        let dir = std::env::temp_dir().join(format!("ferroban-nologs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("filter.d")).unwrap();
        std::fs::write(
            dir.join("filter.d/t.conf"),
            "[Definition]\nfailregex = ^x <HOST>$\njournalmatch = _SYSTEMD_UNIT=t.service\n",
        )
        .unwrap();
        let def = |opts: &str| {
            std::fs::write(
                dir.join("jail.conf"),
                format!(
                    "[t]\nenabled = true\nfilter = t\naction =\nbackend = auto\n\
                     logpath = {}/missing.log\n{opts}\n",
                    dir.display()
                ),
            )
            .unwrap();
            let cfg = ferroban_config::read_jails(&dir).unwrap();
            assert!(cfg.errors.is_empty(), "{:?}", cfg.errors);
            cfg.jails.into_iter().next().unwrap()
        };
        assert!(selection_of(&def("")).unwrap().is_some());
        assert!(
            selection_of(&def("systemd_if_nologs = true"))
                .unwrap()
                .is_some()
        );
        let off = def("systemd_if_nologs = false");
        assert!(selection_of(&off).unwrap().is_none());
        // Without the switch it follows the (missing) file, waiting for it...
        assert!(crate::daemon::server::source_of(&off).is_ok());
        // ...unless skip_if_nologs says to skip the jail.
        let skip = def("systemd_if_nologs = false\nskip_if_nologs = true");
        let err = crate::daemon::server::source_of(&skip).err().unwrap();
        assert!(
            err.contains("no log file found") && err.contains("skip_if_nologs"),
            "{err}"
        );
        // A log file that exists: skip_if_nologs changes nothing.
        std::fs::write(dir.join("missing.log"), "").unwrap();
        assert!(crate::daemon::server::source_of(&def("skip_if_nologs = true")).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn which_jails_read_the_journal() {
        let dir = std::env::temp_dir().join(format!("ferroban-journal-sel-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("auth.log");
        std::fs::write(&log, "x\n").unwrap();
        let log = log.display().to_string();
        let glob = dir.join("auth*.log").display().to_string();
        let missing = dir.join("none*.log").display().to_string();
        let m = vec!["_COMM=sshd".to_string()];
        let sel = |b: &str, p: &[&str], m: &[String]| selection_for(b, &paths(p), m);
        assert!(sel("systemd", &[], &[]).unwrap().is_some());
        let s = sel("systemd[journalpath=/x, rotated=off]", &[], &m)
            .unwrap()
            .unwrap();
        assert_eq!(s.path.as_deref(), Some(Path::new("/x")));
        assert!(!s.rotated);
        assert!(sel("systemd[bogus=1]", &[], &m).is_err());
        // auto: the journal only without log files and with a journalmatch.
        assert!(sel("auto", &[&missing], &m).unwrap().is_some());
        assert!(sel("auto", &[], &m).unwrap().is_some());
        assert!(sel("auto", &[&log], &m).unwrap().is_none());
        assert!(sel("auto", &[&missing, &glob], &m).unwrap().is_none());
        assert!(sel("auto", &[&missing], &[]).unwrap().is_none());
        assert!(sel("polling", &[&missing], &m).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn time_text_like_isoformat() {
        let t = time_text(1_700_000_000_000_000);
        assert!(
            t.ends_with(' ') && t.len() == "2023-11-14T22:13:20 ".len(),
            "{t}"
        );
        let t = time_text(1_700_000_000_000_123);
        assert!(t.trim_end().ends_with(".000123"), "{t}");
    }
}
