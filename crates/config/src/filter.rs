//! Filters (`filter.d/<name>.conf` and friends), read the way fail2ban's filter reader does.

use std::path::{Path, PathBuf};

use crate::definition::DefinitionReader;
use crate::error::ConfigError;
use crate::omap::OrderedMap;
use crate::source::ConfigSource;
use crate::store::{Loader, Vars};

/// The typed options of a filter's `[Definition]`.
pub const FILTER_OPTIONS: [&str; 7] = [
    "usedns",
    "prefregex",
    "ignoreregex",
    "failregex",
    "maxlines",
    "datepattern",
    "journalmatch",
];

/// A resolved filter: interpolated, tag-substituted, split.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FilterDef {
    /// Filter name as referenced.
    pub name: String,
    /// Files read, in order.
    pub files: Vec<PathBuf>,
    /// `prefregex`, if set.
    pub prefregex: Option<String>,
    /// `failregex`: one entry per non-empty line.
    pub failregex: Vec<String>,
    /// `ignoreregex`: one entry per non-empty line.
    pub ignoreregex: Vec<String>,
    /// `maxlines`, if set.
    pub maxlines: Option<usize>,
    /// `datepattern`, if set.
    pub datepattern: Option<String>,
    /// `journalmatch`, if set (may hold several lines, one match per line).
    pub journalmatch: Option<String>,
    /// Every other `[Definition]`/`[Init]` value (including `usedns`), interpolated.
    pub values: Vec<(String, String)>,
}

impl FilterDef {
    /// A value of [`FilterDef::values`].
    pub fn value(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn split_lines(v: &str) -> Vec<String> {
    v.split('\n')
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Reads filter `name` from `config_dir` (`filter.d/<name>.conf`, `.d/*.conf`, `.local`,
/// `.d/*.local`, with includes) or, when `name` contains a `/`, the file at that path; `opts` are
/// the init options (e.g. `mode=aggressive`) overriding `[Init]`.
pub fn read_filter(
    config_dir: &Path,
    name: &str,
    opts: &[(String, String)],
) -> Result<FilterDef, ConfigError> {
    let loader = Loader::new(ConfigSource::dir(config_dir));
    read_filter_with(&loader, name, opts, None)
}

/// Like [`read_filter`] over any [`Loader`]; with `backend`, sets `logtype` (`journal` for
/// `systemd*` backends, `file` otherwise) unless given or defined in `[Definition]`.
pub fn read_filter_with(
    loader: &Loader,
    name: &str,
    opts: &[(String, String)],
    backend: Option<&str>,
) -> Result<FilterDef, ConfigError> {
    let mut r = open(loader, name, opts)?;
    if let Some(b) = backend {
        apply_auto_options(&mut r, b);
    }
    r.get_options(&Vars::new(), &FILTER_OPTIONS, false)?;
    build(&r, name, &OrderedMap::new())
}

/// Opens the filter reader (file lookup only).
pub(crate) fn open(
    loader: &Loader,
    name: &str,
    opts: &[(String, String)],
) -> Result<DefinitionReader, ConfigError> {
    let name_or_path = if name.contains('/') && !name.starts_with('/') {
        std::path::absolute(name)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| name.to_string())
    } else {
        name.to_string()
    };
    DefinitionReader::read(loader, "filter", "filter.d", &name_or_path, opts)
}

/// Sets the backend-dependent `logtype` init option.
pub(crate) fn apply_auto_options(r: &mut DefinitionReader, backend: &str) {
    let given = r.init_opts.get("logtype").is_some_and(|v| !v.is_empty());
    if !given && !r.set.has_own_option("Definition", "logtype") {
        let lt = if backend.starts_with("systemd") {
            "journal"
        } else {
            "file"
        };
        r.init_opts.insert("logtype", lt.to_string());
    }
}

/// Builds the [`FilterDef`] from a reader on which `get_options` was called; `overrides` are jail
/// values of the typed options that replace the filter's.
pub(crate) fn build(
    r: &DefinitionReader,
    name: &str,
    overrides: &OrderedMap<String>,
) -> Result<FilterDef, ConfigError> {
    let comb = r.combined(&[])?;
    let pick = |k: &str| overrides.get(k).or_else(|| comb.get(k)).cloned();
    let maxlines = match pick("maxlines") {
        None => None,
        Some(v) => Some(
            v.trim()
                .parse::<usize>()
                .map_err(|e| ConfigError::InvalidValue {
                    section: "Definition".into(),
                    option: "maxlines".into(),
                    value: v.clone(),
                    message: e.to_string(),
                })?,
        ),
    };
    // Informational values: all other definition options and init options, substituted.
    let mut full = r.clone();
    let mut values: Vec<(String, String)> = Vec::new();
    let extra = match full.get_options(&r.p_opts_without_init(), &FILTER_OPTIONS, true) {
        Ok(()) => full.combined(&[]).ok(),
        Err(_) => None,
    };
    let extra = extra.unwrap_or_else(|| {
        let mut m = r.other_values(&FILTER_OPTIONS);
        m.update(&r.init_opts);
        m
    });
    for (k, v) in extra.iter() {
        if k.starts_with("known/") || (FILTER_OPTIONS.contains(&k.as_str()) && k != "usedns") {
            continue;
        }
        values.push((k.clone(), v.clone()));
    }
    if let Some(u) = pick("usedns") {
        if let Some(e) = values.iter_mut().find(|(k, _)| k == "usedns") {
            e.1 = u;
        } else {
            values.push(("usedns".into(), u));
        }
    }
    Ok(FilterDef {
        name: name.to_string(),
        files: r.set.files.iter().map(PathBuf::from).collect(),
        prefregex: pick("prefregex"),
        failregex: pick("failregex")
            .map(|v| split_lines(&v))
            .unwrap_or_default(),
        ignoreregex: pick("ignoreregex")
            .map(|v| split_lines(&v))
            .unwrap_or_default(),
        maxlines,
        datepattern: pick("datepattern"),
        journalmatch: pick("journalmatch"),
        values,
    })
}
