//! Turning the REGEX / IGNOREREGEX arguments into regexes and filter options, the way
//! fail2ban-regex does: a filter name (with `[k=v]` options) looked up in `-c DIR`, a path to a
//! filter file, or a literal regex.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// What the command line and the filter file(s) give the filter.
#[derive(Debug, Default)]
pub struct Spec {
    /// `failregex` entries, as written (tags not expanded).
    pub failregex: Vec<String>,
    /// `ignoreregex` entries.
    pub ignoreregex: Vec<String>,
    /// `prefregex`.
    pub prefregex: Option<String>,
    /// `maxlines` (command line first, then the filter).
    pub maxlines: Option<usize>,
    /// `datepattern` (command line first, then the filter).
    pub datepattern: Option<String>,
    /// `journalmatch` (command line first, then the filter).
    pub journalmatch: Option<String>,
    /// The backend the filter is read for (`systemd` sets `logtype = journal`); `None`: the
    /// filter's own `logtype`.
    pub backend: Option<String>,
    /// Header lines ("Use ..."), in fail2ban-regex's order. `DATEPATTERN_NAME` in a line is
    /// replaced by the date template's name once the filter exists.
    pub header: Vec<String>,
    /// When REGEX looked like a filter name that was not found: the files tried.
    pub not_found: Option<(String, Vec<PathBuf>)>,
    /// Name of the filter read (for messages).
    pub filter_name: Option<String>,
}

/// Placeholder replaced with the date template's name in the header.
pub const DATEPATTERN_NAME: &str = "\u{0}DATEPATTERN_NAME\u{0}";

impl Spec {
    /// Sets `maxlines` unless already set (the command line wins), logging it.
    pub fn set_maxlines(&mut self, v: usize) {
        if self.maxlines.is_none() {
            self.maxlines = Some(v);
            self.header.push(format!("Use         maxlines : {v}"));
        }
    }

    /// Sets `datepattern` unless already set, logging it.
    pub fn set_datepattern(&mut self, v: &str) {
        if self.datepattern.is_none() {
            self.datepattern = Some(v.to_string());
            self.header
                .push(format!("Use      datepattern : {v} : {DATEPATTERN_NAME}"));
        }
    }
}

/// fail2ban's `shortstr`: at most `l` characters, `...` marking a cut.
pub fn shortstr(s: &str, l: usize) -> String {
    if s.chars().count() > l {
        let mut out: String = s.chars().take(l - 3).collect();
        out.push_str("...");
        out
    } else {
        s.to_string()
    }
}

/// Python's `repr()` of a string.
pub fn py_repr(s: &str) -> String {
    crate::control::pyrepr::repr_str(s)
}

/// The shape fail2ban-regex takes for a filter reference: word characters, `/`, `-`, `.`,
/// optionally followed by `[options]`.
fn looks_like_filter(value: &str) -> bool {
    let name = match value.find('[') {
        Some(i) if value.ends_with(']') => &value[..i],
        Some(_) => return false,
        None => value,
    };
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '/' || c == '-' || c == '.')
}

/// The last six characters of `name` contain a dot (fail2ban's "has an extension" test).
fn has_ext(name: &str) -> bool {
    let n = name.chars().count();
    name.chars().skip(n.saturating_sub(6)).any(|c| c == '.')
}

fn basename(p: &Path) -> String {
    p.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads the REGEX argument into `spec`.
pub fn read_fail(spec: &mut Spec, value: &str, config: &Path) -> anyhow::Result<()> {
    if looks_like_filter(value) {
        let (name, opts) = ferroban_config::parse_reference(value)
            .with_context(|| format!("wrong filter name or options while parsing {value:?}"))?;
        let tries: Vec<String> = if has_ext(&name) {
            vec![name.clone()]
        } else {
            vec![
                name.clone(),
                format!("{name}.conf"),
                format!("{name}.local"),
            ]
        };
        let mut basedir = config.to_path_buf();
        let mut found = None;
        let mut tried = Vec::new();
        for t in &tries {
            let path = if t.contains('/') {
                let p = PathBuf::from(t);
                basedir = p.parent().map(Path::to_path_buf).unwrap_or_default();
                p
            } else if basename(&basedir) == "filter.d" {
                basedir.join(t)
            } else {
                basedir.join("filter.d").join(t)
            };
            if path.is_file() {
                found = Some(path);
                break;
            }
            tried.push(path);
        }
        if found.is_some() {
            return read_filter_file(spec, value, &name, &opts, basedir, config);
        }
        // Not on disk: ferroban's own filter of that name, with the directory layered over the
        // embedded defaults (the server's view of the configuration).
        if !name.contains('/') && !has_ext(&name) {
            let dir = config.is_dir().then_some(config);
            let loc = crate::defaults::locate(dir);
            if loc.source.exists(&format!("filter.d/{name}.conf")) {
                spec.header.push(format!(
                    "Use   failregex filter file : {name}, basedir: {}",
                    loc.describe()
                ));
                push_options(spec, &opts);
                let def = ferroban_config::read_filter_with(
                    &loc.loader(),
                    &name,
                    &opts,
                    spec.backend.as_deref(),
                )
                .with_context(|| {
                    format!("failed to load filter {value} (from {})", loc.describe())
                })?;
                apply_filter(spec, &def);
                return Ok(());
            }
        }
        spec.not_found = Some((value.to_string(), tried));
    }
    spec.header
        .push(format!("Use   failregex line : {}", shortstr(value, 53)));
    spec.failregex = vec![value.to_string()];
    Ok(())
}

fn read_filter_file(
    spec: &mut Spec,
    value: &str,
    name: &str,
    opts: &[(String, String)],
    mut basedir: PathBuf,
    config: &Path,
) -> anyhow::Result<()> {
    let standard = basedir == config
        || basename(&basedir) == "filter.d"
        || (!has_ext(name) && !name.contains('/'));
    let def = if standard {
        if basename(&basedir) == "filter.d" {
            basedir = basedir.parent().map(Path::to_path_buf).unwrap_or_default();
        }
        let stem = Path::new(name)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| name.to_string());
        spec.header.push(format!(
            "Use   failregex filter file : {stem}, basedir: {}",
            basedir.display()
        ));
        push_options(spec, opts);
        read_filter(&basedir, &stem, opts, spec.backend.as_deref()).with_context(|| {
            format!("failed to load filter {value} (from {})", basedir.display())
        })?
    } else {
        spec.header.push(format!("Use   failregex file : {name}"));
        push_options(spec, opts);
        let abs = std::path::absolute(name).unwrap_or_else(|_| PathBuf::from(name));
        read_filter(
            config,
            &abs.display().to_string(),
            opts,
            spec.backend.as_deref(),
        )
        .with_context(|| format!("failed to load filter file {}", abs.display()))?
    };
    apply_filter(spec, &def);
    Ok(())
}

/// Reads filter `name` from `dir` for `backend` (its `logtype`).
fn read_filter(
    dir: &Path,
    name: &str,
    opts: &[(String, String)],
    backend: Option<&str>,
) -> Result<ferroban_config::FilterDef, ferroban_config::ConfigError> {
    let loader = ferroban_config::Loader::new(ferroban_config::ConfigSource::dir(dir));
    ferroban_config::read_filter_with(&loader, name, opts, backend)
}

/// Takes the filter's regexes, options and date pattern into `spec`.
fn apply_filter(spec: &mut Spec, def: &ferroban_config::FilterDef) {
    spec.filter_name = Some(def.name.clone());
    // fail2ban's order: maxlines and prefregex first, then the regexes and the date pattern.
    if let Some(m) = def.maxlines {
        spec.set_maxlines(m);
    }
    spec.prefregex = def.prefregex.clone().filter(|p| !p.is_empty());
    spec.failregex = def.failregex.clone();
    spec.ignoreregex = def.ignoreregex.clone();
    if let Some(d) = &def.datepattern {
        spec.set_datepattern(d);
    }
    if spec.journalmatch.is_none() {
        spec.journalmatch = def.journalmatch.clone();
    }
}

fn push_options(spec: &mut Spec, opts: &[(String, String)]) {
    if opts.is_empty() {
        return;
    }
    let items: Vec<String> = opts
        .iter()
        .map(|(k, v)| format!("{}: {}", py_repr(k), py_repr(v)))
        .collect();
    spec.header
        .push(format!("Use   filter options : {{{}}}", items.join(", ")));
}

/// Reads the IGNOREREGEX argument. fail2ban-regex takes it as a literal regex; ferroban also
/// accepts the path of a filter file (it contains a `/` and exists) and takes its `ignoreregex`.
pub fn read_ignore(spec: &mut Spec, value: &str, config: &Path) -> anyhow::Result<()> {
    let path = Path::new(value);
    if value.contains('/') && path.is_file() {
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        spec.header.push(format!("Use ignoreregex file : {value}"));
        let def = ferroban_config::read_filter(config, &abs.display().to_string(), &[])
            .with_context(|| format!("failed to load filter file {}", abs.display()))?;
        spec.ignoreregex = def.ignoreregex;
        return Ok(());
    }
    spec.header
        .push(format!("Use ignoreregex line : {}", shortstr(value, 53)));
    spec.ignoreregex = vec![value.to_string()];
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_shape() {
        assert!(looks_like_filter("sshd"));
        assert!(looks_like_filter("sshd[mode=aggressive]"));
        assert!(looks_like_filter("/etc/fail2ban/filter.d/sshd.conf"));
        assert!(!looks_like_filter("Failed .* from <HOST>"));
        assert!(!looks_like_filter("^<HOST> -"));
    }

    #[test]
    fn helpers() {
        assert_eq!(shortstr("abcdef", 5), "ab...");
        assert_eq!(shortstr("abc", 5), "abc");
        assert_eq!(py_repr("a'b"), "\"a'b\"");
        assert_eq!(py_repr("ab"), "'ab'");
        assert!(has_ext("x/sshd.conf"));
        assert!(!has_ext("sshd"));
    }
}
