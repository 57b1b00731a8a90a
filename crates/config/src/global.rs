//! Global settings (`fail2ban.conf`, `fail2ban.d/*.conf`, `fail2ban.local`, `fail2ban.d/*.local`).

use std::path::{Path, PathBuf};

use crate::duration::parse_duration;
use crate::error::ConfigError;
use crate::source::ConfigSource;
use crate::store::Loader;

/// Log level names accepted by `loglevel` (besides plain numbers).
pub const LOG_LEVELS: [&str; 10] = [
    "CRITICAL",
    "FATAL",
    "ERROR",
    "WARNING",
    "WARN",
    "NOTICE",
    "INFO",
    "DEBUG",
    "TRACEDEBUG",
    "HEAVYDEBUG",
];

/// The `loglevel` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogLevel {
    /// A named level, upper-cased (`INFO`, `DEBUG`, ...).
    Named(String),
    /// A numeric level.
    Numeric(u32),
}

/// Typed `[Definition]` (and `[Thread]`) settings of fail2ban.conf.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalConfig {
    /// `loglevel` (default `INFO`).
    pub loglevel: LogLevel,
    /// `logtarget` (default `/var/log/fail2ban.log`): a path, `STDOUT`, `STDERR`, `SYSLOG`, `SYSTEMD-JOURNAL`.
    pub logtarget: String,
    /// `syslogsocket` (default `auto`).
    pub syslogsocket: String,
    /// `socket` (default `/var/run/fail2ban/fail2ban.sock`).
    pub socket: PathBuf,
    /// `pidfile` (default `/var/run/fail2ban/fail2ban.pid`).
    pub pidfile: PathBuf,
    /// `allowipv6` (default `auto`).
    pub allowipv6: String,
    /// `dbfile` (default `/var/lib/fail2ban/fail2ban.sqlite3`; `:memory:` or `None` possible).
    pub dbfile: String,
    /// `dbmaxmatches`.
    pub dbmaxmatches: Option<u32>,
    /// `dbpurgeage` in seconds (default one day).
    pub dbpurgeage: f64,
    /// `[Thread] stacksize` (KiB).
    pub stacksize: Option<u32>,
    /// Every `[Definition]` option, interpolated.
    pub values: Vec<(String, String)>,
    /// Files read, in order.
    pub files: Vec<PathBuf>,
}

/// Reads fail2ban.conf and friends from `config_dir`.
pub fn read_global(config_dir: &Path) -> Result<GlobalConfig, ConfigError> {
    read_global_with(&Loader::new(ConfigSource::dir(config_dir)))
}

fn invalid(option: &str, value: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        section: "Definition".into(),
        option: option.into(),
        value: value.into(),
        message: message.into(),
    }
}

/// Parses a `loglevel` value.
pub fn parse_log_level(v: &str) -> Result<LogLevel, ConfigError> {
    if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()) {
        return v
            .parse()
            .map(LogLevel::Numeric)
            .map_err(|e| invalid("loglevel", v, e.to_string()));
    }
    let up = v.to_uppercase();
    if LOG_LEVELS.contains(&up.as_str()) {
        Ok(LogLevel::Named(up))
    } else {
        Err(invalid(
            "loglevel",
            v,
            format!(
                "unknown log level (expected one of {})",
                LOG_LEVELS.join(", ")
            ),
        ))
    }
}

/// Reads fail2ban.conf and friends from any [`Loader`].
pub fn read_global_with(loader: &Loader) -> Result<GlobalConfig, ConfigError> {
    let Some(set) = loader.read_named("fail2ban")? else {
        return Err(ConfigError::NotFound {
            kind: "config",
            name: "fail2ban".into(),
            tried: loader.candidates("fail2ban"),
        });
    };
    let has_def = set.has_section("Definition");
    let get = |k: &str, default: &str| -> Result<String, ConfigError> {
        if !has_def {
            return Ok(default.to_string());
        }
        Ok(set
            .get("Definition", k, None)?
            .unwrap_or_else(|| default.to_string()))
    };
    let opt = |k: &str| -> Result<Option<String>, ConfigError> {
        if !has_def {
            return Ok(None);
        }
        set.get("Definition", k, None)
    };
    let loglevel = parse_log_level(&get("loglevel", "INFO")?)?;
    let dbmaxmatches =
        match opt("dbmaxmatches")? {
            None => None,
            Some(v) => Some(v.trim().parse().map_err(|e: std::num::ParseIntError| {
                invalid("dbmaxmatches", &v, e.to_string())
            })?),
        };
    let purge = get("dbpurgeage", "1d")?;
    let dbpurgeage =
        parse_duration(&purge).map_err(|e| invalid("dbpurgeage", &purge, e.to_string()))?;
    let stacksize = if set.has_section("Thread") {
        match set.get("Thread", "stacksize", None)? {
            None => None,
            Some(v) => Some(v.trim().parse().map_err(|e: std::num::ParseIntError| {
                ConfigError::InvalidValue {
                    section: "Thread".into(),
                    option: "stacksize".into(),
                    value: v.clone(),
                    message: e.to_string(),
                }
            })?),
        }
    } else {
        None
    };
    let mut values = Vec::new();
    if has_def {
        for k in set.options("Definition", true) {
            if let Some(v) = set.get("Definition", &k, None)? {
                values.push((k, v));
            }
        }
    }
    Ok(GlobalConfig {
        loglevel,
        logtarget: get("logtarget", "/var/log/fail2ban.log")?,
        syslogsocket: get("syslogsocket", "auto")?,
        socket: PathBuf::from(get("socket", "/var/run/fail2ban/fail2ban.sock")?),
        pidfile: PathBuf::from(get("pidfile", "/var/run/fail2ban/fail2ban.pid")?),
        allowipv6: get("allowipv6", "auto")?,
        dbfile: get("dbfile", "/var/lib/fail2ban/fail2ban.sqlite3")?,
        dbmaxmatches,
        dbpurgeage,
        stacksize,
        values,
        files: set.files.iter().map(PathBuf::from).collect(),
    })
}
