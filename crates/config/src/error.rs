//! Error type shared by every reader of this crate.

use std::fmt;

/// A location in a configuration file (`file:line`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Display path of the file (a filesystem path or `<root label>/<relative path>`).
    pub file: String,
    /// 1-based line number.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// Every error produced while reading, interpolating or validating configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A line of a configuration file could not be parsed.
    #[error("{origin}: syntax error: {message}")]
    Syntax {
        /// Where the error is.
        origin: Origin,
        /// What is wrong.
        message: String,
    },
    /// A file could not be read (I/O or encoding problem).
    #[error("cannot read {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        message: String,
    },
    /// `%(...)s` interpolation refers to itself, directly or through other keys.
    #[error("interpolation loop in [{section}] {option}: {}", chain.join(" -> "))]
    InterpolationLoop {
        /// Section being read.
        section: String,
        /// Option being read.
        option: String,
        /// Keys expanded, in order, ending with the key seen twice.
        chain: Vec<String>,
    },
    /// `%(...)s` interpolation nests too deeply.
    #[error("interpolation too deep in [{section}] {option}: {}", chain.join(" -> "))]
    InterpolationDepth {
        /// Section being read.
        section: String,
        /// Option being read.
        option: String,
        /// Keys expanded, in order.
        chain: Vec<String>,
    },
    /// `%(name)s` names an option that does not exist.
    #[error("[{section}] {option}: unknown interpolation key '{key}'{}{}", via_text(via), origin.as_ref().map(|o| format!(" ({o})")).unwrap_or_default())]
    InterpolationMissing {
        /// Section being read.
        section: String,
        /// Option being read.
        option: String,
        /// The missing key.
        key: String,
        /// The keys expanded from `option` down to the one whose value refers to `key`, in
        /// order (empty: `option`'s own value refers to it).
        via: Box<[String]>,
        /// Where the option whose value refers to `key` was defined (the last of `via`, else
        /// `option`), when known.
        origin: Option<Origin>,
    },
    /// A `%` not followed by `%` or `(name)s`.
    #[error("[{section}] {option}: bad interpolation syntax: {message}{}", origin.as_ref().map(|o| format!(" ({o})")).unwrap_or_default())]
    InterpolationSyntax {
        /// Section being read.
        section: String,
        /// Option being read.
        option: String,
        /// What is wrong.
        message: String,
        /// Where the option was defined, when known.
        origin: Option<Origin>,
    },
    /// `<tag>` substitution is self-referencing.
    #[error("tag substitution loop: tag <{tag}> refers to <{found}> (value: {value})")]
    TagLoop {
        /// Tag being substituted.
        tag: String,
        /// The tag found again.
        found: String,
        /// Value at the time of detection.
        value: String,
    },
    /// A filter or action name could not be resolved to any file.
    #[error("{kind} '{name}' not found; tried: {}", tried.join(", "))]
    NotFound {
        /// `filter`, `action` or `config`.
        kind: &'static str,
        /// The name looked up.
        name: String,
        /// Paths tried.
        tried: Vec<String>,
    },
    /// A required section is missing.
    #[error("section [{0}] not found")]
    NoSection(String),
    /// A `name[k=v, ...]` reference is malformed.
    #[error("invalid reference {input:?}: {message}")]
    Reference {
        /// The text given.
        input: String,
        /// What is wrong.
        message: String,
    },
    /// A duration such as `10m` is malformed.
    #[error("invalid duration {input:?}: {message}")]
    Duration {
        /// The text given.
        input: String,
        /// What is wrong.
        message: String,
    },
    /// A typed option has an invalid value.
    #[error("[{section}] {option} = {value:?}: {message}")]
    InvalidValue {
        /// Section (jail name, `Definition`, ...).
        section: String,
        /// Option name.
        option: String,
        /// Value found.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// An error inside a jail, with the jail's name.
    #[error("jail '{jail}': {source}")]
    Jail {
        /// The jail.
        jail: String,
        /// The underlying error.
        #[source]
        source: Box<ConfigError>,
    },
}

/// `, referred to through a -> b` for [`ConfigError::InterpolationMissing`]'s `via`.
fn via_text(via: &[String]) -> String {
    if via.is_empty() {
        String::new()
    } else {
        format!(", referred to through {}", via.join(" -> "))
    }
}
