//! What the daemon persists per log file, and the first-line hash that recognises a file.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use md5::{Digest, Md5};

use crate::SourceError;

/// MD5 of a file's first line, newline included — the same value fail2ban stores as
/// `firstlinemd5`, so positions can be carried over from its database.
///
/// A file whose first line is not complete yet has no hash. A first line longer than the line
/// cap is hashed over its first [`MAX_LINE`](crate::MAX_LINE) bytes (fail2ban hashes it whole;
/// such files do not occur in practice, and reading an unbounded line on every check would be a
/// cost an attacker controls).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FirstLineHash(pub [u8; 16]);

impl FirstLineHash {
    /// Hashes `first_line` (the bytes of the first line, with its newline).
    pub fn of(first_line: &[u8]) -> Self {
        FirstLineHash(Md5::digest(first_line).into())
    }

    /// Lower-case hexadecimal, as fail2ban writes it.
    pub fn to_hex(&self) -> String {
        use fmt::Write;
        let mut s = String::with_capacity(32);
        for b in self.0 {
            let _ = write!(s, "{b:02x}");
        }
        s
    }

    /// Parses 32 hexadecimal digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        let s = s.as_bytes();
        if s.len() != 32 {
            return None;
        }
        let mut out = [0u8; 16];
        for (i, pair) in s.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Some(FirstLineHash(out))
    }
}

impl fmt::Debug for FirstLineHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FirstLineHash({})", self.to_hex())
    }
}

impl fmt::Display for FirstLineHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl FromStr for FirstLineHash {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        FirstLineHash::from_hex(s).ok_or(())
    }
}

/// How far a log file has been read: the value the daemon persists (fail2ban's `logs` table:
/// path, `firstlinemd5`, `lastfilepos`) and hands back on restart.
///
/// `offset` is always the start of the first line not yet delivered (an incomplete last line is
/// never counted as read), so resuming there neither repeats nor skips a line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Position {
    /// The log path as configured or as matched by the glob (not canonicalised).
    pub path: PathBuf,
    /// Hash of the file's first line when the position was taken; `None` while it had none.
    pub first_line_hash: Option<FirstLineHash>,
    /// Byte offset of the next line to deliver.
    pub offset: u64,
    /// Inode number of the file, when known. fail2ban does not store it; when present it lets a
    /// restart tell a replaced file whose first line happens to be identical.
    pub inode: Option<u64>,
}

impl Position {
    /// A position from fail2ban's database columns (`firstlinemd5` may be empty or NULL).
    pub fn from_fail2ban(
        path: impl Into<PathBuf>,
        firstlinemd5: Option<&str>,
        lastfilepos: i64,
    ) -> Result<Self, SourceError> {
        let path = path.into();
        let first_line_hash = match firstlinemd5.map(str::trim) {
            None | Some("") => None,
            Some(h) => Some(
                FirstLineHash::from_hex(h).ok_or_else(|| SourceError::Position {
                    path: path.clone(),
                    message: format!("firstlinemd5 {h:?} is not 32 hexadecimal digits"),
                })?,
            ),
        };
        let offset = u64::try_from(lastfilepos).map_err(|_| SourceError::Position {
            path: path.clone(),
            message: format!("negative lastfilepos {lastfilepos}"),
        })?;
        Ok(Position {
            path,
            first_line_hash,
            offset,
            inode: None,
        })
    }
}
