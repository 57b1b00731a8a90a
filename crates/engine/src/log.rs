//! The engine's log hook: the engine says what happened, the host program decides where it goes.
//!
//! The daemon installs its logger with [`set_hook`]; without one, nothing is written (as the
//! daemon's own log before it is set up).

use std::sync::RwLock;

/// Severity, ordered like fail2ban's levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Most detailed.
    Trace,
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Notice.
    Notice,
    /// Warning.
    Warning,
    /// Error.
    Error,
    /// Critical.
    Critical,
}

/// Where engine messages go: `enabled(level)` and `log(level, module, message)`.
#[derive(Debug, Clone, Copy)]
pub struct Hook {
    /// Whether a message at this level would be written.
    pub enabled: fn(Level) -> bool,
    /// Writes one message for `module` (`filter`, `actions`, `database`, ...).
    pub log: fn(Level, &str, &str),
}

static HOOK: RwLock<Option<Hook>> = RwLock::new(None);

/// Installs the host program's logger.
pub fn set_hook(hook: Hook) {
    *HOOK.write().unwrap_or_else(|e| e.into_inner()) = Some(hook);
}

/// Whether a message at `level` would be written.
pub fn enabled(level: Level) -> bool {
    match *HOOK.read().unwrap_or_else(|e| e.into_inner()) {
        Some(h) => (h.enabled)(level),
        None => false,
    }
}

/// Writes a message.
pub fn log(level: Level, module: &str, msg: &str) {
    if let Some(h) = *HOOK.read().unwrap_or_else(|e| e.into_inner()) {
        (h.log)(level, module, msg)
    }
}

/// `YYYY-MM-DD HH:MM:SS` of unix time `secs` in the local zone (fail2ban's Found lines).
///
/// The last second converted is remembered per thread: a flood logs one Found line per failure,
/// nearly all within a few seconds, and a time-zone conversion costs more than the rest of it.
pub fn local_time(secs: i64) -> String {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(i64, String)>> = const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((s, text)) = last.as_ref()
            && *s == secs
        {
            return text.clone();
        }
        let text = jiff::Timestamp::from_second(secs)
            .map(|t| {
                t.to_zoned_datetime(jiff::tz::TimeZone::system())
                    .strftime("%Y-%m-%d %H:%M:%S")
                    .to_string()
            })
            .unwrap_or_else(|_| secs.to_string());
        *last = Some((secs, text.clone()));
        text
    })
}

/// `log(level, module, format!(...))` when the level is enabled.
macro_rules! flog {
    ($level:ident, $module:expr, $($arg:tt)*) => {
        if $crate::log::enabled($crate::log::Level::$level) {
            $crate::log::log($crate::log::Level::$level, $module, &format!($($arg)*))
        }
    };
}
pub(crate) use flog;
