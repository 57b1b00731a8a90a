//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use ferroban_source::{FileFollower, Line, Notice, PollReport};

/// Appends `data` to `path` (creating it).
pub fn append(path: &Path, data: &[u8]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(data).unwrap();
}

/// Replaces `path`'s content in place (same inode: truncate, then write).
pub fn overwrite(path: &Path, data: &[u8]) {
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .unwrap();
    f.write_all(data).unwrap();
}

/// A line as the tests compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Got {
    pub path: PathBuf,
    pub text: String,
    pub bad: bool,
}

/// Collects the text of every delivered line.
#[derive(Default)]
pub struct Sink {
    pub lines: Vec<Got>,
}

impl Sink {
    pub fn push(&mut self, l: Line<'_>) {
        self.lines.push(Got {
            path: l.path.to_path_buf(),
            text: l.text.to_string(),
            bad: l.decode_errors,
        });
    }

    /// Texts delivered since the last call.
    pub fn take(&mut self) -> Vec<String> {
        std::mem::take(&mut self.lines)
            .into_iter()
            .map(|g| g.text)
            .collect()
    }
}

/// Polls `f` once; returns the texts delivered and the report.
pub fn poll(f: &mut FileFollower) -> (Vec<String>, PollReport) {
    let mut s = Sink::default();
    let r = f.poll(&mut |l| s.push(l)).unwrap();
    assert_eq!(r.lines as usize, s.lines.len());
    (s.take(), r)
}

/// Polls until nothing more is pending; returns all texts.
pub fn poll_all(f: &mut FileFollower) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let (l, r) = poll(f);
        out.extend(l);
        if !r.more {
            return out;
        }
    }
}

pub fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

pub fn has_rotation(r: &PollReport) -> bool {
    r.notices
        .iter()
        .any(|n| matches!(n, Notice::Rotated { .. }))
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ferroban-source-test")
        .tempdir()
        .unwrap()
}

pub fn rename(a: &Path, b: &Path) {
    fs::rename(a, b).unwrap();
}
