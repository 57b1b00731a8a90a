//! Shared reader for files made of `[Definition]` and `[Init]` sections (filters and actions).
//!
//! The options given with a reference (`name[k=v]`) are *init options*: they override `[Init]`
//! values. `[Init]` values are also available as `known/<opt>`. The typed options of
//! `[Definition]` are read with the caller's options (a jail's settings) and the init options as
//! interpolation variables; the combined set is then `<tag>`-substituted, unresolved tags being
//! looked up in `[Definition]` (or `sec/opt` sections) with those variables.

use crate::error::ConfigError;
use crate::omap::OrderedMap;
use crate::store::{IniSet, Loader, Vars, conditional_base};
use crate::tags;

/// A filter or action file being read.
#[derive(Debug, Clone)]
pub(crate) struct DefinitionReader {
    /// Merged files.
    pub set: IniSet,
    /// Init options (reference options, then `[Init]` values and `known/...`).
    pub init_opts: OrderedMap<String>,
    /// Interpolation variables of the last `get_options`.
    pub p_opts: Vars,
    /// Options read from `[Definition]`.
    pub opts: OrderedMap<String>,
}

impl DefinitionReader {
    /// Reads `<kind_dir>/<name>` (or the file at absolute path `name`) from `loader`.
    pub fn read(
        loader: &Loader,
        kind: &'static str,
        kind_dir: &str,
        name: &str,
        init: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let set = if name.starts_with('/') {
            // An explicit file: read it (with its includes and `.local` companion) only.
            if !loader.source().exists(name) {
                return Err(ConfigError::NotFound {
                    kind,
                    name: name.to_string(),
                    tried: vec![name.to_string()],
                });
            }
            loader.read_files(&[name.to_string()])?
        } else {
            let base = format!("{kind_dir}/{name}");
            match loader.read_named(&base)? {
                Some(set) => set,
                None => {
                    return Err(ConfigError::NotFound {
                        kind,
                        name: name.to_string(),
                        tried: loader.candidates(&base),
                    });
                }
            }
        };
        Ok(DefinitionReader {
            set,
            init_opts: init.iter().cloned().collect(),
            p_opts: Vars::new(),
            opts: OrderedMap::new(),
        })
    }

    /// Reads the typed `config_opts` of `[Definition]` (those not given by `p_opts`) and folds
    /// `[Init]` into the init options. With `all`, every other `[Definition]` option is read too.
    pub fn get_options(
        &mut self,
        p_opts: &Vars,
        config_opts: &[&str],
        all: bool,
    ) -> Result<(), ConfigError> {
        let mut vars = p_opts.clone();
        vars.update(&self.init_opts);
        self.opts = OrderedMap::new();
        if self.set.has_section("Definition") {
            for opt in config_opts {
                if vars.contains_key(opt) {
                    continue;
                }
                if let Some(v) = self.set.get("Definition", opt, Some(&vars))? {
                    self.opts.insert(*opt, v);
                }
            }
        }
        self.p_opts = vars;
        if self.set.has_section("Init") {
            for opt in self.set.options("Init", false) {
                if opt == "__name__" {
                    continue;
                }
                let mut v: Option<String> = None;
                if !opt.starts_with("known/") {
                    let got = self.set.get("Init", &opt, None)?.unwrap_or_default();
                    self.init_opts.insert(format!("known/{opt}"), got.clone());
                    v = Some(got);
                }
                if !self.init_opts.contains_key(&opt) {
                    let got = match v {
                        Some(v) => v,
                        None => self.set.get("Init", &opt, None)?.unwrap_or_default(),
                    };
                    self.init_opts.insert(opt, got);
                }
            }
        }
        if all && self.set.has_section("Definition") {
            for opt in self.set.options("Definition", true) {
                if opt == "__name__" || self.opts.contains_key(&opt) {
                    continue;
                }
                if let Some(v) = self.set.get("Definition", &opt, None)? {
                    self.opts.insert(opt, v);
                }
            }
        }
        Ok(())
    }

    /// Definition options with the init options on top, tag-substituted.
    pub fn combined(&self, ignore: &[&str]) -> Result<OrderedMap<String>, ConfigError> {
        let mut comb = self.opts.clone();
        comb.update(&self.init_opts);
        if comb.is_empty() {
            return Ok(comb);
        }
        let mut ign: crate::FastSet<String> = ignore.iter().map(|s| s.to_string()).collect();
        for k in comb.keys() {
            if let Some(b) = conditional_base(k) {
                ign.insert(b.to_string());
            }
        }
        let mut cache: crate::FastMap<String, Option<String>> = Default::default();
        tags::substitute(&comb, &ign, |t| {
            if let Some(v) = cache.get(t) {
                return Ok(v.clone());
            }
            let v = match self.set.get_ex("Definition", t, Some(&self.p_opts)) {
                Ok(v) => v,
                Err(ConfigError::NoSection(_)) => None,
                Err(e) => return Err(e),
            };
            cache.insert(t.to_string(), v.clone());
            Ok(v)
        })
    }

    /// Every `[Definition]` option not in `skip`, interpolated without variables where possible
    /// (raw otherwise), for informational `values`.
    pub fn other_values(&self, skip: &[&str]) -> OrderedMap<String> {
        let mut out = OrderedMap::new();
        if !self.set.has_section("Definition") {
            return out;
        }
        for opt in self.set.options("Definition", true) {
            if opt == "__name__" || skip.contains(&opt.as_str()) {
                continue;
            }
            let v = match self.set.get("Definition", &opt, Some(&self.p_opts)) {
                Ok(Some(v)) => v,
                _ => self
                    .set
                    .get_raw("Definition", &opt, None)
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
            };
            out.insert(opt, v);
        }
        out
    }
}

impl DefinitionReader {
    /// The caller's variables of the last `get_options` (without the init options).
    pub fn p_opts_without_init(&self) -> Vars {
        self.p_opts
            .iter()
            .filter(|(k, _)| !self.init_opts.contains_key(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}
