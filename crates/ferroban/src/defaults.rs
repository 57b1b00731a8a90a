//! Where the configuration comes from: ferroban's embedded defaults (the `config/` tree compiled
//! into the binary), with the user's directory layered on top, file by file.
//!
//! The directory is `-c DIR` when given, else `/etc/fail2ban` when it exists (a fail2ban user's
//! tree runs unchanged), else `/etc/ferroban` when it exists, else none: the embedded defaults
//! alone. A file the user has replaces the embedded file of the same name; directory listings
//! (`jail.d/*.conf`) are the union. So a `jail.d/custom.conf` naming `nginx-4xx` works on a machine
//! whose `/etc/fail2ban/filter.d` has no such filter: ferroban's own is used.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ferroban_config::{ConfigSource, Loader, Root};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_config.rs"));
}

/// The label embedded files carry in messages (`<embedded>/filter.d/sshd.conf`).
pub const EMBEDDED_LABEL: &str = "<embedded>";

/// Directories looked at, in order, when no `-c` is given.
pub const DEFAULT_DIRS: [&str; 2] = ["/etc/fail2ban", "/etc/ferroban"];

/// The embedded files: relative path → contents.
pub fn embedded_files() -> &'static [(&'static str, &'static str)] {
    embedded::FILES
}

/// The embedded tree as a configuration root.
pub fn embedded_root() -> Root {
    Root::Memory {
        label: EMBEDDED_LABEL.to_string(),
        files: embedded::FILES
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// The configuration in use: its source and the user's directory (if any).
#[derive(Debug, Clone)]
pub struct ConfigLocation {
    /// Embedded defaults, then the directory.
    pub source: ConfigSource,
    /// The user's directory, when one was found or given.
    pub dir: Option<PathBuf>,
}

impl ConfigLocation {
    /// A loader over [`ConfigLocation::source`].
    pub fn loader(&self) -> Loader {
        Loader::new(self.source.clone())
    }

    /// How to name it in messages.
    pub fn describe(&self) -> String {
        match &self.dir {
            Some(d) => format!("{} (over the embedded defaults)", d.display()),
            None => "the embedded defaults".to_string(),
        }
    }
}

/// Finds the configuration: `dir` when given, else the first of [`DEFAULT_DIRS`] that exists,
/// else the embedded defaults alone.
pub fn locate(dir: Option<&Path>) -> ConfigLocation {
    let dir = match dir {
        Some(d) => Some(d.to_path_buf()),
        None => DEFAULT_DIRS.iter().map(PathBuf::from).find(|p| p.is_dir()),
    };
    let mut source = ConfigSource::new();
    source.push(embedded_root());
    if let Some(d) = &dir {
        source.push(Root::Dir(d.clone()));
    }
    ConfigLocation { source, dir }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_file_replaces_the_embedded_one_and_listings_are_unions() {
        let Some((name, _)) = embedded_files()
            .iter()
            .find(|(k, _)| k.starts_with("filter.d/"))
        else {
            panic!("no embedded filter: config/filter.d is empty");
        };
        let dir = std::env::temp_dir().join(format!("ferroban-defaults-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("filter.d")).unwrap();
        std::fs::write(dir.join(name), "[Definition]\nfailregex = mine\n").unwrap();
        std::fs::write(dir.join("filter.d/only-mine.conf"), "[Definition]\n").unwrap();
        let loc = locate(Some(&dir));
        let f = loc.source.read(name).unwrap().unwrap();
        assert!(f.text.contains("failregex = mine"));
        let listed = loc.source.list("filter.d", ".conf");
        assert!(listed.iter().any(|n| n.contains("only-mine")), "{listed:?}");
        assert!(
            listed.len()
                >= embedded_files()
                    .iter()
                    .filter(|(k, _)| k.starts_with("filter.d/"))
                    .count()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
