//! The daemon's log, in fail2ban's line format so that `tail -f`, logwatch and the `recidive`
//! filter read it as they read fail2ban's:
//!
//! ```text
//! 2026-11-25 13:55:01,123 fail2ban.actions        [4242]: NOTICE  [sshd] Ban 198.51.100.7
//! ```
//!
//! (`%(asctime)s %(name)-24s[%(process)d]: %(levelname)-7s %(message)s`, local time.) Targets:
//! a file path (appended; reopened on SIGUSR1 / `flushlogs` for logrotate), `STDOUT`, `STDERR`,
//! `SYSLOG` (the local syslog socket, without the time stamp, as fail2ban writes it) and
//! `SYSTEMD-JOURNAL` (written to stderr, which systemd puts in the journal).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Mutex;

/// Severity, ordered like fail2ban's numeric levels (the action module's [`Severity`]).
///
/// [`Severity`]: crate::action::Severity
pub use crate::action::Severity as Level;

impl Level {
    /// fail2ban's numeric value.
    pub fn value(self) -> u32 {
        match self {
            Level::Critical => 50,
            Level::Error => 40,
            Level::Warning => 30,
            Level::Notice => 25,
            Level::Info => 20,
            Level::Debug => 10,
            Level::Trace => 7,
        }
    }

    /// The name printed in the log.
    pub fn name(self) -> &'static str {
        match self {
            Level::Critical => "CRITICAL",
            Level::Error => "ERROR",
            Level::Warning => "WARNING",
            Level::Notice => "NOTICE",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        }
    }

    /// Parses a `loglevel` value: a name (`INFO`, `WARN`, `HEAVYDEBUG`, ...) or a number.
    pub fn threshold(text: &str) -> Option<u32> {
        let t = text.trim().to_ascii_uppercase();
        if let Ok(n) = t.parse::<u32>() {
            return Some(n);
        }
        Some(match t.as_str() {
            "CRITICAL" | "FATAL" => 50,
            "ERROR" => 40,
            "WARNING" | "WARN" => 30,
            "NOTICE" => 25,
            "INFO" => 20,
            "DEBUG" => 10,
            "TRACEDEBUG" => 7,
            "HEAVYDEBUG" => 5,
            _ => return None,
        })
    }
}

/// Where log lines go.
#[derive(Debug)]
enum Sink {
    File { path: PathBuf, file: File },
    Stdout,
    Stderr,
    Syslog(Option<UnixDatagram>),
}

#[derive(Debug)]
struct Logger {
    sink: Sink,
    threshold: u32,
    pid: u32,
    /// Open [`Batch`]es: while any is, file lines gather in `pending` (one write at the end).
    batches: u32,
    pending: Vec<u8>,
    /// The last second formatted by [`asctime`] and its text (a storm logs thousands of lines
    /// within one second).
    stamp: Option<(i64, String)>,
}

/// Flushing `pending` once it holds this much, even inside a batch.
const BATCH_BYTES: usize = 256 * 1024;

impl Logger {
    fn flush_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if let Sink::File { file, .. } = &mut self.sink {
            let _ = file.write_all(&self.pending);
        }
        self.pending.clear();
    }

    /// Appends one file line to `pending` (no allocation but the date, once per second).
    fn push_line(&mut self, now: f64, module: &str, level: Level, msg: &str) {
        let secs = now.floor();
        let millis = ((now - secs) * 1000.0).floor().clamp(0.0, 999.0) as u32;
        let secs = secs as i64;
        let date = match &self.stamp {
            Some((s, text)) if *s == secs => text,
            _ => &self.stamp.insert((secs, local_time(secs))).1,
        };
        // `{:<24}` of `fail2ban.<module>`: the prefix is 9 characters.
        let _ = writeln!(
            self.pending,
            "{date},{millis:03} fail2ban.{module:<15}[{}]: {:<7} {msg}",
            self.pid,
            level.name()
        );
    }
}

/// Gathers the log file's lines into one write while it lives (a read of a flood logs a Found line
/// per failure, a restore or bulk ban of 100,000 addresses 100,000 Ban lines: one `write` each
/// cost a third of a second per 100,000). Lines keep their
/// order; the write happens when the last batch ends, or every 256 KiB.
#[must_use = "the batch ends when this is dropped"]
pub struct Batch(());

impl Batch {
    /// Starts a batch (batches nest).
    pub fn begin() -> Batch {
        if let Some(l) = LOGGER.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            l.batches += 1;
        }
        Batch(())
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some(l) = LOGGER.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            l.batches = l.batches.saturating_sub(1);
            if l.batches == 0 {
                l.flush_pending();
            }
        }
    }
}

static LOGGER: Mutex<Option<Logger>> = Mutex::new(None);

/// Errors setting up the log target.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log file could not be opened.
    #[error("cannot open log target {path}: {source}")]
    Open {
        /// The target.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Unknown `loglevel`.
    #[error("invalid loglevel {0:?}")]
    Level(String),
}

fn open_sink(target: &str) -> Result<Sink, LogError> {
    Ok(match target.trim() {
        "STDOUT" => Sink::Stdout,
        "STDERR" | "SYSTEMD-JOURNAL" => Sink::Stderr,
        "SYSLOG" => Sink::Syslog(connect_syslog()),
        path => {
            let path = PathBuf::from(path);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                let _ = std::fs::create_dir_all(dir);
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|source| LogError::Open {
                    path: path.clone(),
                    source,
                })?;
            Sink::File { path, file }
        }
    })
}

fn connect_syslog() -> Option<UnixDatagram> {
    let s = UnixDatagram::unbound().ok()?;
    s.connect("/dev/log").ok()?;
    Some(s)
}

/// Sets (or replaces) the log target and level. `target` is fail2ban's `logtarget`.
pub fn init(target: &str, level: &str) -> Result<(), LogError> {
    let threshold = Level::threshold(level).ok_or_else(|| LogError::Level(level.to_string()))?;
    let sink = open_sink(target)?;
    ferroban_engine::log::set_hook(ferroban_engine::log::Hook {
        enabled: |l| enabled(engine_level(l)),
        log: |l, module, msg| log(engine_level(l), module, msg),
    });
    let mut g = LOGGER.lock().unwrap_or_else(|e| e.into_inner());
    let batches = match g.as_mut() {
        Some(old) => {
            old.flush_pending();
            old.batches
        }
        None => 0,
    };
    *g = Some(Logger {
        sink,
        threshold,
        pid: std::process::id(),
        batches,
        pending: Vec::new(),
        stamp: None,
    });
    Ok(())
}

/// Changes the level only.
pub fn set_level(level: &str) -> Result<(), LogError> {
    let threshold = Level::threshold(level).ok_or_else(|| LogError::Level(level.to_string()))?;
    if let Some(l) = LOGGER.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        l.threshold = threshold;
    }
    Ok(())
}

/// The current level's name (`get loglevel`).
pub fn level_name() -> String {
    let t = LOGGER
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map_or(20, |l| l.threshold);
    match t {
        50 => "CRITICAL".into(),
        40 => "ERROR".into(),
        30 => "WARNING".into(),
        25 => "NOTICE".into(),
        20 => "INFO".into(),
        10 => "DEBUG".into(),
        7 => "TRACEDEBUG".into(),
        5 => "HEAVYDEBUG".into(),
        n => format!("Level {n}"),
    }
}

/// Reopens a file target (logrotate moved it away: SIGUSR1, `flushlogs`). Returns what was done.
pub fn reopen() -> String {
    let mut g = LOGGER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(l) = g.as_mut() else {
        return "logging not set up".into();
    };
    l.flush_pending();
    match &l.sink {
        Sink::File { path, .. } => {
            let path = path.clone();
            match open_sink(&path.to_string_lossy()) {
                Ok(s) => {
                    l.sink = s;
                    "rolled over".into()
                }
                Err(e) => format!("{e}"),
            }
        }
        Sink::Syslog(_) => {
            l.sink = Sink::Syslog(connect_syslog());
            "flushed".into()
        }
        _ => "flushed".into(),
    }
}

/// The current target as fail2ban names it.
pub fn target() -> String {
    match LOGGER.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        Some(Logger {
            sink: Sink::File { path, .. },
            ..
        }) => path.display().to_string(),
        Some(Logger {
            sink: Sink::Stdout, ..
        }) => "STDOUT".into(),
        Some(Logger {
            sink: Sink::Syslog(_),
            ..
        }) => "SYSLOG".into(),
        _ => "STDERR".into(),
    }
}

/// Whether a message at `level` would be written.
pub fn enabled(level: Level) -> bool {
    LOGGER
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|l| level.value() >= l.threshold)
}

/// Formats one line (without the newline) as fail2ban does, for time `now` (unix seconds).
pub fn format_line(now: f64, module: &str, pid: u32, level: Level, msg: &str) -> String {
    format!(
        "{} {:<24}[{pid}]: {:<7} {msg}",
        asctime(now),
        format!("fail2ban.{module}"),
        level.name()
    )
}

/// `YYYY-MM-DD HH:MM:SS,mmm` in the local zone.
pub fn asctime(now: f64) -> String {
    let secs = now.floor();
    let millis = ((now - secs) * 1000.0).floor().clamp(0.0, 999.0) as u32;
    format!("{},{millis:03}", local_time(secs as i64))
}

pub use ferroban_engine::log::local_time;

/// The daemon's level of an engine message.
fn engine_level(l: ferroban_engine::log::Level) -> Level {
    use ferroban_engine::log::Level as E;
    match l {
        E::Critical => Level::Critical,
        E::Error => Level::Error,
        E::Warning => Level::Warning,
        E::Notice => Level::Notice,
        E::Info => Level::Info,
        E::Debug => Level::Debug,
        E::Trace => Level::Trace,
    }
}

/// Writes a message for `module` (`actions`, `filter`, `jail`, `server`, ...).
pub fn log(level: Level, module: &str, msg: &str) {
    let mut g = LOGGER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(l) = g.as_mut() else {
        eprintln!(
            "{}",
            format_line(now(), module, std::process::id(), level, msg)
        );
        return;
    };
    if level.value() < l.threshold {
        return;
    }
    let pid = l.pid;
    if let Sink::File { .. } = l.sink {
        l.push_line(now(), module, level, msg);
        if l.batches == 0 || l.pending.len() >= BATCH_BYTES {
            l.flush_pending();
        }
        return;
    }
    match &mut l.sink {
        Sink::File { .. } => {} // written above
        Sink::Stdout => {
            let line = format_line(now(), module, pid, level, msg);
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
        Sink::Stderr => eprintln!("{}", format_line(now(), module, pid, level, msg)),
        Sink::Syslog(sock) => {
            // <facility*8 + severity>: daemon (3).
            let sev = match level {
                Level::Critical => 2,
                Level::Error => 3,
                Level::Warning => 4,
                Level::Notice => 5,
                Level::Info => 6,
                Level::Debug | Level::Trace => 7,
            };
            let text = format!(
                "<{}>{:<24}[{pid}]: {:<7} {msg}",
                3 * 8 + sev,
                format!("fail2ban.{module}"),
                level.name()
            );
            if let Some(s) = sock
                && s.send(text.as_bytes()).is_err()
            {
                *sock = connect_syslog();
                if let Some(s) = sock {
                    let _ = s.send(text.as_bytes());
                }
            }
        }
    }
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `log(level, module, format!(...))`.
#[macro_export]
macro_rules! flog {
    ($level:ident, $module:expr, $($arg:tt)*) => {
        if $crate::daemon::log::enabled($crate::daemon::log::Level::$level) {
            $crate::daemon::log::log($crate::daemon::log::Level::$level, $module, &format!($($arg)*))
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_layout_is_fail2bans() {
        let l = format_line(0.5, "actions", 42, Level::Notice, "[sshd] Ban 1.2.3.4");
        // Date part depends on the local zone; the rest is fixed.
        let (_, rest) = l.split_at(23);
        assert_eq!(
            rest,
            " fail2ban.actions        [42]: NOTICE  [sshd] Ban 1.2.3.4"
        );
        assert!(l[..23].ends_with(",500"), "{l}");
    }

    #[test]
    fn file_lines_are_format_line() {
        let mut l = Logger {
            sink: Sink::Stderr,
            threshold: 0,
            pid: 42,
            batches: 0,
            pending: Vec::new(),
            stamp: None,
        };
        for (now, module) in [
            (0.5, "actions"),
            (0.999, "a-very-long-module-name"),
            (1.0, ""),
        ] {
            l.pending.clear();
            l.push_line(now, module, Level::Notice, "[sshd] Ban 1.2.3.4");
            let want = format_line(now, module, 42, Level::Notice, "[sshd] Ban 1.2.3.4") + "\n";
            assert_eq!(String::from_utf8_lossy(&l.pending), want);
        }
    }

    #[test]
    fn levels_parse() {
        assert_eq!(Level::threshold("info"), Some(20));
        assert_eq!(Level::threshold("HEAVYDEBUG"), Some(5));
        assert_eq!(Level::threshold("17"), Some(17));
        assert_eq!(Level::threshold("loud"), None);
    }
}
