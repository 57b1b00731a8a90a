//! Where configuration files come from: a stack of roots (directories or in-memory trees).
//!
//! Files are addressed by a path relative to the configuration root (`jail.conf`, `filter.d/sshd.conf`)
//! or by an absolute filesystem path. A relative file is taken from the *last* root that has it, so
//! later roots override earlier ones file by file; directory listings (`jail.d/*.conf`) are the union
//! over all roots.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::ConfigError;

/// One configuration root.
#[derive(Debug, Clone)]
pub enum Root {
    /// A directory on disk (e.g. `/etc/fail2ban`).
    Dir(PathBuf),
    /// An in-memory tree: relative path (with `/` separators) → file contents.
    Memory {
        /// Label used in messages (`<label>/filter.d/sshd.conf`).
        label: String,
        /// The files.
        files: BTreeMap<String, String>,
    },
}

/// A stack of configuration roots; later roots override earlier ones file by file.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    roots: Vec<Root>,
}

/// A file found in a [`ConfigSource`].
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path for messages (`/etc/fail2ban/jail.conf` or `<label>/jail.conf`).
    pub display: String,
    /// Contents.
    pub text: String,
}

impl ConfigSource {
    /// An empty source (no roots).
    pub fn new() -> Self {
        Self::default()
    }

    /// A source made of one directory.
    pub fn dir(path: impl Into<PathBuf>) -> Self {
        Self {
            roots: vec![Root::Dir(path.into())],
        }
    }

    /// Adds a root on top of the existing ones (it overrides them).
    pub fn push(&mut self, root: Root) -> &mut Self {
        self.roots.push(root);
        self
    }

    /// Builder form of [`ConfigSource::push`].
    pub fn with(mut self, root: Root) -> Self {
        self.roots.push(root);
        self
    }

    /// The roots, bottom first.
    pub fn roots(&self) -> &[Root] {
        &self.roots
    }

    /// The top-most directory root, if any (used for `fail2ban_confpath`).
    pub fn base_dir(&self) -> Option<&Path> {
        self.roots.iter().rev().find_map(|r| match r {
            Root::Dir(p) => Some(p.as_path()),
            Root::Memory { .. } => None,
        })
    }

    /// Display path of a relative or absolute file key, as it would be read.
    pub fn display(&self, key: &str) -> String {
        if key.starts_with('/') {
            return key.to_string();
        }
        for root in self.roots.iter().rev() {
            if let Some(d) = root_has(root, key) {
                return d;
            }
        }
        match self.roots.last() {
            Some(Root::Dir(p)) => p.join(key).display().to_string(),
            Some(Root::Memory { label, .. }) => format!("{label}/{key}"),
            None => key.to_string(),
        }
    }

    /// Whether the file exists in some root (or on disk, for absolute keys).
    pub fn exists(&self, key: &str) -> bool {
        if key.starts_with('/') {
            return Path::new(key).is_file();
        }
        self.roots.iter().any(|r| root_has(r, key).is_some())
    }

    /// Reads a file; `Ok(None)` when it does not exist anywhere.
    pub fn read(&self, key: &str) -> Result<Option<SourceFile>, ConfigError> {
        if key.starts_with('/') {
            return read_disk(Path::new(key), key.to_string());
        }
        for root in self.roots.iter().rev() {
            match root {
                Root::Dir(dir) => {
                    let p = dir.join(key);
                    if p.is_file() {
                        return read_disk(&p, p.display().to_string());
                    }
                }
                Root::Memory { label, files } => {
                    if let Some(text) = files.get(key) {
                        return Ok(Some(SourceFile {
                            display: format!("{label}/{key}"),
                            text: text.clone(),
                        }));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Sorted keys of the files directly in `dir` (relative or absolute) whose name ends with
    /// `suffix` and does not start with a dot (the `dir/*<suffix>` glob).
    pub fn list(&self, dir: &str, suffix: &str) -> Vec<String> {
        let mut names = BTreeSet::new();
        let keep = |n: &str| n.ends_with(suffix) && !n.starts_with('.');
        let scan_disk = |names: &mut BTreeSet<String>, p: &Path| {
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    if let Some(n) = e.file_name().to_str()
                        && keep(n)
                        && e.path().is_file()
                    {
                        names.insert(n.to_string());
                    }
                }
            }
        };
        if dir.starts_with('/') {
            scan_disk(&mut names, Path::new(dir));
        } else {
            for root in &self.roots {
                match root {
                    Root::Dir(d) => scan_disk(&mut names, &d.join(dir)),
                    Root::Memory { files, .. } => {
                        let prefix = format!("{dir}/");
                        for k in files.keys() {
                            if let Some(rest) = k.strip_prefix(&prefix)
                                && !rest.contains('/')
                                && keep(rest)
                            {
                                names.insert(rest.to_string());
                            }
                        }
                    }
                }
            }
        }
        names.into_iter().map(|n| format!("{dir}/{n}")).collect()
    }
}

fn root_has(root: &Root, key: &str) -> Option<String> {
    match root {
        Root::Dir(dir) => {
            let p = dir.join(key);
            p.is_file().then(|| p.display().to_string())
        }
        Root::Memory { label, files } => files.contains_key(key).then(|| format!("{label}/{key}")),
    }
}

fn read_disk(p: &Path, display: String) -> Result<Option<SourceFile>, ConfigError> {
    match std::fs::read(p) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Ok(Some(SourceFile { display, text })),
            Err(e) => Err(ConfigError::Io {
                path: display,
                message: format!("not valid UTF-8: {e}"),
            }),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError::Io {
            path: display,
            message: e.to_string(),
        }),
    }
}

/// Joins `rel` to the directory of file key `base`, normalising `.` and `..` components.
pub(crate) fn join_relative(base: &str, rel: &str) -> String {
    if rel.starts_with('/') {
        return normalize(rel);
    }
    let dir = match base.rfind('/') {
        Some(i) => &base[..i],
        None => "",
    };
    if dir.is_empty() {
        normalize(rel)
    } else {
        normalize(&format!("{dir}/{rel}"))
    }
}

fn normalize(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !abs {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let s = parts.join("/");
    if abs { format!("/{s}") } else { s }
}
