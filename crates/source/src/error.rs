//! Typed errors of this crate; each names the path (or pattern) it is about.

use std::io;
use std::path::PathBuf;

/// An error of a log source. Every variant names the file, directory or pattern involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// Opening, reading or inspecting a log file failed (other than "does not exist", which is
    /// waited for, not an error).
    #[error("{path}: {source}")]
    Io {
        /// The log file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The path exists but is not a regular file (a directory, a socket…).
    #[error("{path}: not a regular file")]
    NotAFile {
        /// The offending path.
        path: PathBuf,
    },
    /// A `logpath` glob pattern is malformed.
    #[error("logpath {pattern:?}: invalid glob pattern: {message}")]
    Pattern {
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        message: String,
    },
    /// `logencoding` names an encoding that is unknown or cannot be split into lines on `\n`
    /// bytes (UTF-16, ISO-2022-JP…).
    #[error("logencoding {name:?}: {reason}")]
    Encoding {
        /// The encoding label as configured.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// `backend` is not one this crate serves (`auto`, `pyinotify`, `inotify`, `polling`).
    #[error(
        "backend {name:?} is not a file backend (expected auto, pyinotify, inotify or polling)"
    )]
    Backend {
        /// The backend as configured.
        name: String,
    },
    /// The inotify facility failed (initialisation, adding a watch on a directory, reading events).
    #[error("inotify on {path}: {source}")]
    Inotify {
        /// The directory being watched, or `inotify` itself for initialisation errors.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A persisted [`Position`](crate::Position) could not be parsed.
    #[error("position for {path}: {message}")]
    Position {
        /// The path the position was for.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

impl SourceError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        SourceError::Io {
            path: path.into(),
            source,
        }
    }
}
