//! A merged set of configuration files: includes, the `.conf → .d/*.conf → .local → .d/*.local`
//! read order, `known/` values and `%(...)s` interpolation.
//!
//! * `[INCLUDES]` `before`/`after` list files (one per line, relative to the including file) read
//!   before/after the file; each included `X.conf` is followed by `X.local` when it exists. A file is
//!   not included again by itself or by one of its own includes.
//! * Files are merged in order: `[DEFAULT]` options and sections are updated option by option; when
//!   an option of an existing section is overridden, its previous raw value is kept as `known/<opt>`
//!   for that section.
//! * `[Name?cond]` sections merge into `[Name]` with each key suffixed by `?cond`.
//! * `%(opt)s` reads `opt` from the lookup variables, the section, then `[DEFAULT]`;
//!   `%(__name__)s` is the section name; `%(sec/opt)s` reads `opt` of section `sec` (falling back to
//!   `[DEFAULT]`), `%(default/opt)s` the default, `%(known/opt)s` the value before the last override
//!   (falling back to `[DEFAULT]`). Values found are interpolated in the context of the section being
//!   read. `%%` is a literal `%`.

use std::cell::RefCell;
use std::rc::Rc;

use crate::FastMap;
use crate::error::{ConfigError, Origin};
use crate::ini::{self, DEFAULT_SECTION, IniFile, Section, Value};
use crate::omap::OrderedMap;
use crate::source::{ConfigSource, join_relative};

/// Maximum nesting of `%(...)s` interpolation (as in Python's configparser).
const MAX_INTERPOLATION_DEPTH: usize = 10;

/// Lookup variables (lower-case option name → value) that take precedence over the section.
pub type Vars = OrderedMap<String>;

/// Reads and caches parsed files of a [`ConfigSource`].
#[derive(Debug)]
pub struct Loader {
    source: ConfigSource,
    cache: RefCell<FastMap<String, Option<Rc<IniFile>>>>,
}

impl Loader {
    /// A loader over `source`.
    pub fn new(source: ConfigSource) -> Self {
        Loader {
            source,
            cache: RefCell::new(FastMap::default()),
        }
    }

    /// The underlying source.
    pub fn source(&self) -> &ConfigSource {
        &self.source
    }

    /// Parses one file (cached); `Ok(None)` when it does not exist.
    fn parse(&self, key: &str) -> Result<Option<Rc<IniFile>>, ConfigError> {
        if let Some(f) = self.cache.borrow().get(key) {
            return Ok(f.clone());
        }
        let parsed = match self.source.read(key)? {
            Some(sf) => Some(Rc::new(ini::parse(&sf.display, &sf.text)?)),
            None => None,
        };
        self.cache
            .borrow_mut()
            .insert(key.to_string(), parsed.clone());
        Ok(parsed)
    }

    /// The candidate files for configuration `name` (`name.conf`, `name.d/*.conf`, `name.local`,
    /// `name.d/*.local`), all of them, existing or not, as display paths.
    pub fn candidates(&self, name: &str) -> Vec<String> {
        let mut v = vec![
            self.source.display(&format!("{name}.conf")),
            self.source.display(&format!("{name}.d/*.conf")),
            self.source.display(&format!("{name}.local")),
            self.source.display(&format!("{name}.d/*.local")),
        ];
        v.dedup();
        v
    }

    /// Reads configuration `name` (relative to the roots, or absolute) in the fail2ban order with
    /// includes. `Ok(None)` when none of its files exists.
    pub fn read_named(&self, name: &str) -> Result<Option<IniSet>, ConfigError> {
        let mut files = vec![format!("{name}.conf")];
        files.extend(self.source.list(&format!("{name}.d"), ".conf"));
        files.push(format!("{name}.local"));
        files.extend(self.source.list(&format!("{name}.d"), ".local"));
        files.retain(|f| self.source.exists(f));
        if files.is_empty() {
            return Ok(None);
        }
        self.read_files(&files).map(Some)
    }

    /// Reads the given files (with their includes and `.local` companions) into one set.
    pub fn read_files(&self, files: &[String]) -> Result<IniSet, ConfigError> {
        let full = self.includes(files, &[])?;
        let mut set = IniSet::default();
        for key in &full {
            if let Some(f) = self.parse(key)? {
                set.files.push(f.path.clone());
                set.merge(&f);
            }
        }
        Ok(set)
    }

    fn includes(&self, files: &[String], seen: &[String]) -> Result<Vec<String>, ConfigError> {
        let mut expanded: Vec<String> = Vec::new();
        for f in files {
            expanded.push(f.clone());
            let local = match f.rfind('.') {
                Some(i) if !f[i..].contains('/') => format!("{}.local", &f[..i]),
                _ => format!("{f}.local"),
            };
            if !files.contains(&local) && self.source.exists(&local) {
                expanded.push(local);
            }
        }
        let mut out = Vec::new();
        for f in &expanded {
            out.extend(self.includes_of(f, seen)?);
        }
        Ok(out)
    }

    fn includes_of(&self, key: &str, seen: &[String]) -> Result<Vec<String>, ConfigError> {
        let Some(file) = self.parse(key)? else {
            return Ok(Vec::new());
        };
        let mut before = Vec::new();
        let mut after = Vec::new();
        if file.sections.contains_key("INCLUDES") {
            let mut single = IniSet::default();
            single.merge(&file);
            for (opt, list) in [("before", &mut before), ("after", &mut after)] {
                let Some(v) = single.get("INCLUDES", opt, None)? else {
                    continue;
                };
                for entry in v.split('\n').map(str::trim).filter(|e| !e.is_empty()) {
                    let r = join_relative(key, entry);
                    if seen.contains(&r) {
                        continue;
                    }
                    let mut s = seen.to_vec();
                    s.push(key.to_string());
                    list.extend(self.includes(&[r], &s)?);
                }
            }
        }
        before.push(key.to_string());
        before.extend(after);
        Ok(before)
    }
}

/// Configuration merged from several files.
#[derive(Debug, Clone, Default)]
pub struct IniSet {
    /// Display paths of the files read, in order.
    pub files: Vec<String>,
    defaults: Section,
    sections: OrderedMap<Section>,
}

fn conditional_split(name: &str) -> Option<(&str, &str)> {
    let q = name.find('?')?;
    let base = &name[..q];
    let ok = !base.is_empty()
        && base.chars().all(|c| c.is_alphanumeric() || c == '_')
        && name.len() > q + 1;
    ok.then(|| (base, &name[q..]))
}

/// Splits a conditional option/section name `base?cond` into (`base`, `?cond`).
pub(crate) fn conditional_base(name: &str) -> Option<&str> {
    conditional_split(name).map(|(b, _)| b)
}

impl IniSet {
    /// Merges one parsed file on top of this set.
    pub fn merge(&mut self, file: &IniFile) {
        self.defaults.update(&file.defaults);
        for (name, sec) in file.sections.iter() {
            let (name, sec) = match conditional_split(name) {
                Some((base, cond)) => {
                    let renamed: Section = sec
                        .iter()
                        .map(|(k, v)| (format!("{k}{cond}"), v.clone()))
                        .collect();
                    (base.to_string(), renamed)
                }
                None => (name.clone(), sec.clone()),
            };
            if let Some(existing) = self.sections.get(&name) {
                let previous: Vec<(String, Value)> = existing
                    .iter()
                    .filter(|(k, _)| sec.contains_key(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let known_name = format!("KNOWN/{name}");
                if !self.sections.contains_key(&known_name) {
                    self.sections.insert(known_name.clone(), Section::new());
                }
                if let Some(known) = self.sections.get_mut(&known_name) {
                    for (k, v) in previous {
                        known.insert(k, v);
                    }
                }
                if let Some(existing) = self.sections.get_mut(&name) {
                    existing.update(&sec);
                }
            } else {
                self.sections.insert(name, sec);
            }
        }
    }

    /// Section names (without the internal `KNOWN/...` ones), in order.
    pub fn sections(&self) -> Vec<String> {
        self.sections
            .keys()
            .filter(|k| !k.starts_with("KNOWN/"))
            .cloned()
            .collect()
    }

    /// Whether section `name` exists.
    pub fn has_section(&self, name: &str) -> bool {
        self.sections.contains_key(name)
    }

    /// Whether `option` is set in `section` itself (not counting `[DEFAULT]`).
    pub fn has_own_option(&self, section: &str, option: &str) -> bool {
        self.sections
            .get(section)
            .is_some_and(|s| s.contains_key(option))
    }

    /// Option names of `section`, optionally followed by the `[DEFAULT]` ones not in it.
    pub fn options(&self, section: &str, with_defaults: bool) -> Vec<String> {
        let mut v: Vec<String> = self
            .sections
            .get(section)
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default();
        if with_defaults {
            for k in self.defaults.keys() {
                if !v.contains(k) {
                    v.push(k.clone());
                }
            }
        }
        v
    }

    /// Adds options to `[DEFAULT]`.
    pub fn merge_defaults(&mut self, opts: &[(&str, String)]) {
        for (k, v) in opts {
            self.defaults.insert(*k, Value::synthetic(v.clone()));
        }
    }

    /// Adds options to `section` (created if needed), each name prefixed by `prefix`; names already
    /// starting with the prefix and `__name__` are skipped.
    pub fn merge_section(&mut self, section: &str, opts: &OrderedMap<String>, prefix: &str) {
        if !self.sections.contains_key(section) {
            self.sections.insert(section.to_string(), Section::new());
        }
        if let Some(sec) = self.sections.get_mut(section) {
            for (k, v) in opts.iter() {
                if !prefix.is_empty() && (k.starts_with(prefix) || k == "__name__") {
                    continue;
                }
                sec.insert(format!("{prefix}{k}"), Value::synthetic(v.clone()));
            }
        }
    }

    /// Where `option` of `section` (or `[DEFAULT]`) was defined.
    pub fn origin(&self, section: &str, option: &str) -> Option<Origin> {
        self.sections
            .get(section)
            .and_then(|s| s.get(option))
            .or_else(|| self.defaults.get(option))
            .and_then(|v| v.origin.clone())
    }

    /// The raw value of `option` (vars, then section, then `[DEFAULT]`).
    pub fn get_raw(
        &self,
        section: &str,
        option: &str,
        vars: Option<&Vars>,
    ) -> Result<Option<String>, ConfigError> {
        let sec = if section == DEFAULT_SECTION {
            None
        } else {
            Some(
                self.sections
                    .get(section)
                    .ok_or_else(|| ConfigError::NoSection(section.to_string()))?,
            )
        };
        let option = option.to_lowercase();
        if let Some(v) = vars.and_then(|v| v.get(&option)) {
            return Ok(Some(v.clone()));
        }
        Ok(sec
            .and_then(|s| s.get(&option))
            .or_else(|| self.defaults.get(&option))
            .map(|v| v.text.clone()))
    }

    /// The interpolated value of `option` in `section`; `Ok(None)` when the option is not set.
    pub fn get(
        &self,
        section: &str,
        option: &str,
        vars: Option<&Vars>,
    ) -> Result<Option<String>, ConfigError> {
        let Some(raw) = self.get_raw(section, option, vars)? else {
            return Ok(None);
        };
        let option = option.to_lowercase();
        let mut out = String::new();
        let mut chain = vec![option.clone()];
        self.interpolate(section, &option, &raw, vars, 1, &mut chain, &mut out)?;
        Ok(Some(out))
    }

    /// Like [`IniSet::get`] but `option` may be `sec/opt` (`known/opt` looks in the values before
    /// override, then in `section`; `default/opt` in `[DEFAULT]`).
    pub fn get_ex(
        &self,
        section: &str,
        option: &str,
        vars: Option<&Vars>,
    ) -> Result<Option<String>, ConfigError> {
        if let Some((sec, opt)) = split_section_option(option) {
            let lower = sec.to_lowercase();
            let candidates: Vec<String> = if lower == "known" {
                vec![format!("KNOWN/{section}"), section.to_string()]
            } else if lower == "default" {
                vec![DEFAULT_SECTION.to_string()]
            } else {
                vec![sec.to_string()]
            };
            for s in candidates {
                match self.get(&s, opt, None) {
                    Ok(Some(v)) => return Ok(Some(v)),
                    Ok(None) | Err(ConfigError::NoSection(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.get(section, option, vars)
    }

    /// Resolves the raw value of interpolation key `key` seen in `section`.
    fn lookup(&self, section: &str, key: &str, vars: Option<&Vars>) -> Option<String> {
        let var = key.to_lowercase();
        if var == "__name__" {
            return Some(section.to_string());
        }
        if let Some(v) = vars.and_then(|v| v.get(&var)) {
            return Some(v.clone());
        }
        if let Some(v) = self
            .sections
            .get(section)
            .and_then(|s| s.get(&var))
            .or_else(|| self.defaults.get(&var))
        {
            return Some(v.text.clone());
        }
        // `sec/opt` form (only matched when written in lower case, as fail2ban does).
        if var != key {
            return None;
        }
        let slash = key.find('/')?;
        let (sec, opt) = (&key[..slash], &key[slash + 1..]);
        if sec.is_empty()
            || !sec
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        {
            return None;
        }
        let from_defaults = || self.defaults.get(opt).map(|v| v.text.clone());
        match sec.to_lowercase().as_str() {
            "default" => from_defaults(),
            "known" => self
                .sections
                .get(&format!("KNOWN/{section}"))
                .and_then(|s| s.get(opt))
                .map(|v| v.text.clone())
                .or_else(from_defaults),
            _ => {
                let s = self.sections.get(sec)?;
                s.get(opt).map(|v| v.text.clone()).or_else(from_defaults)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn interpolate(
        &self,
        section: &str,
        option: &str,
        mut rest: &str,
        vars: Option<&Vars>,
        depth: usize,
        chain: &mut Vec<String>,
        out: &mut String,
    ) -> Result<(), ConfigError> {
        if depth > MAX_INTERPOLATION_DEPTH {
            return Err(ConfigError::InterpolationDepth {
                section: section.to_string(),
                option: option.to_string(),
                chain: chain.clone(),
            });
        }
        while !rest.is_empty() {
            let Some(p) = rest.find('%') else {
                out.push_str(rest);
                return Ok(());
            };
            out.push_str(&rest[..p]);
            rest = &rest[p..];
            let next = rest[1..].chars().next();
            match next {
                Some('%') => {
                    out.push('%');
                    rest = &rest[2..];
                }
                Some('(') => {
                    let close = rest[2..].find(')').map(|i| i + 2);
                    let key = match close {
                        Some(c) if c > 2 && rest[c + 1..].starts_with('s') => &rest[2..c],
                        _ => {
                            return Err(ConfigError::InterpolationSyntax {
                                section: section.to_string(),
                                option: option.to_string(),
                                message: format!("bad variable reference {rest:?}"),
                                origin: self.origin(section, option),
                            });
                        }
                    };
                    let after = &rest[close.unwrap_or(0) + 2..];
                    let var = key.to_lowercase();
                    let Some(v) = self.lookup(section, key, vars) else {
                        // `chain` starts with `option`; the value that holds the reference is
                        // the innermost key expanded.
                        let holder = chain.last().map_or(option, String::as_str);
                        return Err(ConfigError::InterpolationMissing {
                            section: section.to_string(),
                            option: option.to_string(),
                            key: var,
                            via: chain.iter().skip(1).cloned().collect(),
                            origin: self.origin(section, holder),
                        });
                    };
                    if v.contains('%') {
                        if chain.contains(&var) {
                            let mut c = chain.clone();
                            c.push(var);
                            return Err(ConfigError::InterpolationLoop {
                                section: section.to_string(),
                                option: option.to_string(),
                                chain: c,
                            });
                        }
                        chain.push(var);
                        self.interpolate(section, option, &v, vars, depth + 1, chain, out)?;
                        chain.pop();
                    } else {
                        out.push_str(&v);
                    }
                    rest = after;
                }
                _ => {
                    return Err(ConfigError::InterpolationSyntax {
                        section: section.to_string(),
                        option: option.to_string(),
                        message: format!(
                            "'%' must be followed by '%' or '(name)s', found {rest:?}"
                        ),
                        origin: self.origin(section, option),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Splits `sec/opt` (section: word characters and `-`; option: no whitespace or `>`).
pub(crate) fn split_section_option(s: &str) -> Option<(&str, &str)> {
    let i = s.find('/')?;
    let (sec, opt) = (&s[..i], &s[i + 1..]);
    let sec_ok = !sec.is_empty()
        && sec
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    let opt_ok = !opt.is_empty() && !opt.chars().any(|c| c.is_whitespace() || c == '>');
    (sec_ok && opt_ok).then_some((sec, opt))
}
