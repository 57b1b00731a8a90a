//! The fail2ban configuration dialect and typed configuration.
//!
//! * [`ini`]: one file of the INI dialect (sections, `[DEFAULT]`, continuation lines, comments);
//! * [`store`]: merged files (`[INCLUDES]`, `X.conf → X.d/*.conf → X.local → X.d/*.local`,
//!   `known/` values, `%(...)s` interpolation) read through a [`ConfigSource`] (a stack of
//!   directory or in-memory roots, later ones overriding earlier ones file by file);
//! * [`refs`]: `name[k=v, ...]` references and lists of them; [`duration`]: `10m`, `1d12h`, ...;
//! * [`tags`]: `<tag>` substitution;
//! * [`filter`], [`action`], [`jail`], [`global`]: typed readers following fail2ban's readers.
//!
//! CONTRACT (the filter and CLIs depend on exactly this):
//!
//! ```text
//! pub fn read_filter(config_dir: &Path, name: &str, opts: &[(String, String)]) -> Result<FilterDef, ConfigError>;
//! pub struct FilterDef { name, files, prefregex, failregex, ignoreregex, maxlines, datepattern, journalmatch, values }
//! pub fn parse_reference(s: &str) -> Result<(String, Vec<(String, String)>), ConfigError>;
//! pub fn parse_duration(s: &str) -> Result<f64, ConfigError>;
//! ```
//! plus [`read_jails`], [`read_global`] and [`read_action`] (and `*_with` variants over a
//! [`Loader`] for layered roots); errors name `file:line`.

#![warn(missing_docs)]

pub mod action;
mod definition;
pub mod duration;
pub mod error;
pub mod filter;
pub mod global;
pub mod ini;
pub mod jail;
pub mod omap;
pub mod refs;
pub mod source;
pub mod store;
pub mod tags;

pub use action::{ActionDef, ActionKind, as_bool, read_action, read_action_with};
pub use duration::parse_duration;
pub use error::{ConfigError, Origin};
pub use filter::{FilterDef, read_filter, read_filter_with};
pub use global::{GlobalConfig, LogLevel, read_global, read_global_with};
pub use jail::{
    BantimeIncrement, FilterRef, JailDef, JailError, JailsConfig, JailsOptions, LogPath,
    read_jails, read_jails_with,
};
pub use refs::{parse_reference, split_references};
pub use source::{ConfigSource, Root};
pub use store::{IniSet, Loader};

/// The hash maps and sets of the reader: keyed by option, section and tag names read from the
/// administrator's files (no untrusted input), hashed with foldhash instead of SipHash.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// See [`FastMap`].
pub(crate) type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
