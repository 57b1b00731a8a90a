//! Jails (`jail.conf`, `jail.d/*.conf`, `jail.local`, `jail.d/*.local`), read the way fail2ban's
//! jail reader does, into typed [`JailDef`]s.
//!
//! For each jail: `enabled`, `backend` and `filter` are read first; the filter (with the
//! reference's options as init options and `logtype` set from the backend) is read with those as
//! variables and all its options are added to the jail's section as `known/<opt>` (so the jail
//! can use `%(known/failregex)s`). Then every jail option is read, the filter is re-read with
//! them, and each reference of the `action` list is read with the jail's options as variables.
//! A jail that fails is reported in [`JailsConfig::errors`] and skipped; the others load.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::action::{ActionDef, as_bool, read_action_with};
use crate::duration::parse_duration;
use crate::error::ConfigError;
use crate::filter::{self, FILTER_OPTIONS, FilterDef};
use crate::omap::OrderedMap;
use crate::refs::{parse_reference, split_references, split_words};
use crate::source::ConfigSource;
use crate::store::{IniSet, Loader, Vars};

/// The fail2ban version ferroban's configuration is compatible with (`%(fail2ban_version)s`).
pub const FAIL2BAN_COMPAT_VERSION: &str = "1.0.2";

/// Options for [`read_jails_with`].
#[derive(Debug, Clone)]
pub struct JailsOptions {
    /// Treat every jail as enabled.
    pub force_enable: bool,
    /// Value of `%(fail2ban_version)s`.
    pub version: String,
    /// Value of `%(fail2ban_confpath)s` (default: the top directory root).
    pub confpath: Option<String>,
}

impl Default for JailsOptions {
    fn default() -> Self {
        JailsOptions {
            force_enable: false,
            version: FAIL2BAN_COMPAT_VERSION.to_string(),
            confpath: None,
        }
    }
}

/// A `logpath` entry: a path or glob (kept as written) and whether to start at the end of file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPath {
    /// Path or glob pattern.
    pub path: String,
    /// `true` for a trailing ` tail` (start reading at the end), `false` for ` head` or nothing.
    pub tail: bool,
}

/// A `filter = name[opts]` reference.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterRef {
    /// Filter name.
    pub name: String,
    /// Reference options.
    pub opts: Vec<(String, String)>,
}

/// `bantime.*` settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BantimeIncrement {
    /// `bantime.increment`.
    pub increment: Option<bool>,
    /// `bantime.factor`.
    pub factor: Option<f64>,
    /// `bantime.formula`.
    pub formula: Option<String>,
    /// `bantime.multipliers` (as written).
    pub multipliers: Option<String>,
    /// `bantime.maxtime` in seconds.
    pub maxtime: Option<f64>,
    /// `bantime.rndtime` in seconds.
    pub rndtime: Option<f64>,
    /// `bantime.overalljails`.
    pub overalljails: Option<bool>,
}

/// A resolved jail.
#[derive(Debug, Clone, PartialEq)]
pub struct JailDef {
    /// Jail name (section name).
    pub name: String,
    /// `enabled`.
    pub enabled: bool,
    /// `backend` (default `auto`).
    pub backend: String,
    /// The filter reference, if any.
    pub filter: Option<FilterRef>,
    /// The resolved filter (jail values of `failregex`, `maxlines`, ... replace the filter's).
    pub filter_def: Option<FilterDef>,
    /// `logpath` entries (globs kept as strings; fail2ban ignores them for `systemd` backends).
    pub logpath: Vec<LogPath>,
    /// `maxretry`.
    pub maxretry: Option<u32>,
    /// `maxmatches`.
    pub maxmatches: Option<u32>,
    /// `findtime` in seconds.
    pub findtime: Option<f64>,
    /// `bantime` in seconds (negative: permanent).
    pub bantime: Option<f64>,
    /// `bantime.*` settings.
    pub bantime_increment: BantimeIncrement,
    /// `ignoreip` words.
    pub ignoreip: Vec<String>,
    /// `ignoreself`.
    pub ignoreself: Option<bool>,
    /// `ignorecommand`.
    pub ignorecommand: Option<String>,
    /// `ignorecache`.
    pub ignorecache: Option<String>,
    /// `usedns`.
    pub usedns: Option<String>,
    /// `logencoding`.
    pub logencoding: Option<String>,
    /// `logtimezone`.
    pub logtimezone: Option<String>,
    /// `journalmatch` lines (of the jail, else of the filter).
    pub journalmatch: Vec<String>,
    /// `port`.
    pub port: Option<String>,
    /// `protocol`.
    pub protocol: Option<String>,
    /// `chain`.
    pub chain: Option<String>,
    /// Actions, in order.
    pub actions: Vec<ActionDef>,
    /// The raw `action` value after interpolation.
    pub action_raw: String,
    /// Every option of the jail (own and `[DEFAULT]`), interpolated (raw when interpolation fails).
    pub values: Vec<(String, String)>,
}

impl JailDef {
    /// A value of [`JailDef::values`].
    pub fn value(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// An error that made a jail be skipped.
#[derive(Debug)]
pub struct JailError {
    /// The jail.
    pub jail: String,
    /// What went wrong.
    pub error: ConfigError,
}

impl fmt::Display for JailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "jail '{}' skipped: {}", self.jail, self.error)
    }
}

/// All jails of a configuration.
#[derive(Debug)]
pub struct JailsConfig {
    /// Enabled jails that loaded.
    pub jails: Vec<JailDef>,
    /// Names of disabled jails.
    pub disabled: Vec<String>,
    /// Jails that failed to load.
    pub errors: Vec<JailError>,
    /// Files of the jail configuration read, in order.
    pub files: Vec<PathBuf>,
}

/// Reads the jails of `config_dir`.
pub fn read_jails(config_dir: &Path) -> Result<JailsConfig, ConfigError> {
    read_jails_with(
        &Loader::new(ConfigSource::dir(config_dir)),
        &JailsOptions::default(),
    )
}

/// Reads the jails of any [`Loader`]. Errors only when the jail configuration itself cannot be
/// read (missing, syntax error); per-jail problems go to [`JailsConfig::errors`].
pub fn read_jails_with(
    loader: &Loader,
    options: &JailsOptions,
) -> Result<JailsConfig, ConfigError> {
    let Some(mut set) = loader.read_named("jail")? else {
        return Err(ConfigError::NotFound {
            kind: "config",
            name: "jail".into(),
            tried: loader.candidates("jail"),
        });
    };
    let confpath = options.confpath.clone().unwrap_or_else(|| {
        loader
            .source()
            .base_dir()
            .map(|p| p.display().to_string().trim_end_matches('/').to_string())
            .unwrap_or_default()
    });
    set.merge_defaults(&[
        ("fail2ban_version", options.version.clone()),
        ("fail2ban_confpath", confpath),
    ]);
    let mut out = JailsConfig {
        jails: Vec::new(),
        disabled: Vec::new(),
        errors: Vec::new(),
        files: set.files.iter().map(PathBuf::from).collect(),
    };
    for name in set.sections() {
        if name == "INCLUDES" {
            continue;
        }
        match read_jail(loader, &mut set, &name, options.force_enable) {
            Ok(Some(j)) => out.jails.push(j),
            Ok(None) => out.disabled.push(name),
            Err(error) => out.errors.push(JailError { jail: name, error }),
        }
    }
    Ok(out)
}

fn bool_str(b: bool) -> String {
    if b { "True" } else { "False" }.to_string()
}

/// Typed jail option kinds.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Bool,
    Int,
}

const JAIL_OPTIONS: [(&str, Kind); 22] = [
    ("enabled", Kind::Bool),
    ("backend", Kind::Str),
    ("maxretry", Kind::Int),
    ("maxmatches", Kind::Int),
    ("findtime", Kind::Str),
    ("bantime", Kind::Str),
    ("bantime.increment", Kind::Bool),
    ("bantime.factor", Kind::Str),
    ("bantime.formula", Kind::Str),
    ("bantime.multipliers", Kind::Str),
    ("bantime.maxtime", Kind::Str),
    ("bantime.rndtime", Kind::Str),
    ("bantime.overalljails", Kind::Bool),
    ("ignorecommand", Kind::Str),
    ("ignoreself", Kind::Bool),
    ("ignoreip", Kind::Str),
    ("ignorecache", Kind::Str),
    ("filter", Kind::Str),
    ("logtimezone", Kind::Str),
    ("logencoding", Kind::Str),
    ("logpath", Kind::Str),
    ("action", Kind::Str),
];

/// Reads the typed options `opts` of the jail as fail2ban does (defaults for `enabled`,
/// `backend`, `filter`, `action`); returns them as interpolation variables.
fn jail_options(set: &IniSet, jail: &str, opts: &[(&str, Kind)]) -> Result<Vars, ConfigError> {
    let mut out = Vars::new();
    for (name, kind) in opts {
        let v = set.get(jail, name, None)?;
        let v = match (v, *name) {
            (Some(v), _) => v,
            (None, "enabled") => "false".into(),
            (None, "backend") => "auto".into(),
            (None, "filter" | "action") => String::new(),
            (None, _) => continue,
        };
        let v = match kind {
            Kind::Str => v,
            Kind::Bool => bool_str(as_bool(&v)),
            Kind::Int => v
                .trim()
                .parse::<i64>()
                .map_err(|e| ConfigError::InvalidValue {
                    section: jail.to_string(),
                    option: name.to_string(),
                    value: v.clone(),
                    message: e.to_string(),
                })?
                .to_string(),
        };
        out.insert(*name, v);
    }
    Ok(out)
}

fn read_jail(
    loader: &Loader,
    set: &mut IniSet,
    name: &str,
    force: bool,
) -> Result<Option<JailDef>, ConfigError> {
    let first: Vec<(&str, Kind)> = JAIL_OPTIONS
        .iter()
        .copied()
        .filter(|(n, _)| matches!(*n, "enabled" | "backend" | "filter"))
        .collect();
    let opts1 = jail_options(set, name, &first)?;
    let enabled = opts1.get("enabled").is_some_and(|v| v == "True");
    if !force && !enabled {
        return Ok(None);
    }
    let backend = opts1.get("backend").cloned().unwrap_or_default();
    let filter_text = opts1.get("filter").cloned().unwrap_or_default();
    let mut filter_reader = None;
    let mut filter_ref = None;
    if !filter_text.is_empty() {
        let (fname, fopts) = parse_reference(&filter_text)?;
        let mut r = filter::open(loader, &fname, &fopts)?;
        filter::apply_auto_options(&mut r, &backend);
        r.get_options(&opts1, &FILTER_OPTIONS, true)?;
        let comb = r.combined(&[])?;
        set.merge_section(name, &comb, "known/");
        filter_reader = Some(r);
        filter_ref = Some(FilterRef {
            name: fname,
            opts: fopts,
        });
    }
    // All typed options, plus the filter's typed options given in the jail.
    let mut all: Vec<(&str, Kind)> = JAIL_OPTIONS.to_vec();
    for f in FILTER_OPTIONS {
        all.push((
            f,
            if f == "maxlines" {
                Kind::Int
            } else {
                Kind::Str
            },
        ));
    }
    let opts = jail_options(set, name, &all)?;
    let mut filter_def = None;
    if let (Some(mut r), Some(fr)) = (filter_reader, &filter_ref) {
        r.get_options(&opts, &FILTER_OPTIONS, false)?;
        let overrides: OrderedMap<String> = FILTER_OPTIONS
            .iter()
            .filter_map(|k| opts.get(k).map(|v| (k.to_string(), v.clone())))
            .collect();
        filter_def = Some(filter::build(&r, &fr.name, &overrides)?);
    }
    let action_raw = opts.get("action").cloned().unwrap_or_default();
    let mut actions = Vec::new();
    for item in split_references(&action_raw) {
        let (aname, aopts) = parse_reference(&item)?;
        actions.push(read_action_with(loader, &aname, name, &aopts, &opts)?);
    }

    let get = |k: &str| opts.get(k).cloned();
    let dur = |k: &str| -> Result<Option<f64>, ConfigError> {
        match opts.get(k) {
            None => Ok(None),
            Some(v) => parse_duration(v)
                .map(Some)
                .map_err(|e| ConfigError::InvalidValue {
                    section: name.to_string(),
                    option: k.to_string(),
                    value: v.clone(),
                    message: e.to_string(),
                }),
        }
    };
    let int = |k: &str| -> Result<Option<u32>, ConfigError> {
        match opts.get(k) {
            None => Ok(None),
            Some(v) => v
                .parse::<u32>()
                .map(Some)
                .map_err(|e| ConfigError::InvalidValue {
                    section: name.to_string(),
                    option: k.to_string(),
                    value: v.clone(),
                    message: e.to_string(),
                }),
        }
    };
    let flag = |k: &str| opts.get(k).map(|v| v == "True");
    let factor = match opts.get("bantime.factor") {
        None => None,
        Some(v) => Some(
            v.trim()
                .parse::<f64>()
                .map_err(|e| ConfigError::InvalidValue {
                    section: name.to_string(),
                    option: "bantime.factor".into(),
                    value: v.clone(),
                    message: e.to_string(),
                })?,
        ),
    };
    let logpath = get("logpath")
        .map(|v| {
            v.split('\n')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| match l.rsplit_once(' ') {
                    Some((p, t)) if t == "tail" || t == "head" => LogPath {
                        path: p.trim_end().to_string(),
                        tail: t == "tail",
                    },
                    _ => LogPath {
                        path: l.to_string(),
                        tail: false,
                    },
                })
                .collect()
        })
        .unwrap_or_default();
    let journalmatch = match get("journalmatch")
        .or_else(|| filter_def.as_ref().and_then(|f| f.journalmatch.clone()))
    {
        Some(v) => v
            .split('\n')
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
    };
    let raw_get = |k: &str| set.get(name, k, None).ok().flatten();
    let values = set
        .options(name, true)
        .into_iter()
        .filter(|k| !k.starts_with("known/"))
        .map(|k| {
            let v = match set.get(name, &k, None) {
                Ok(Some(v)) => v,
                _ => set
                    .get_raw(name, &k, None)
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
            };
            (k, v)
        })
        .collect();
    Ok(Some(JailDef {
        name: name.to_string(),
        enabled,
        backend,
        filter: filter_ref,
        filter_def,
        logpath,
        maxretry: int("maxretry")?,
        maxmatches: int("maxmatches")?,
        findtime: dur("findtime")?,
        bantime: dur("bantime")?,
        bantime_increment: BantimeIncrement {
            increment: flag("bantime.increment"),
            factor,
            formula: get("bantime.formula"),
            multipliers: get("bantime.multipliers"),
            maxtime: dur("bantime.maxtime")?,
            rndtime: dur("bantime.rndtime")?,
            overalljails: flag("bantime.overalljails"),
        },
        ignoreip: get("ignoreip").map(|v| split_words(&v)).unwrap_or_default(),
        ignoreself: flag("ignoreself"),
        ignorecommand: get("ignorecommand"),
        ignorecache: get("ignorecache"),
        usedns: get("usedns"),
        logencoding: get("logencoding"),
        logtimezone: get("logtimezone"),
        journalmatch,
        port: raw_get("port"),
        protocol: raw_get("protocol"),
        chain: raw_get("chain"),
        actions,
        action_raw,
        values,
    }))
}
