//! [`FileFollower`]: one log path followed across rotations.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::{FirstLineHash, LogEncoding, Position, SourceError};

/// Longest line delivered, in bytes (newline excluded). Longer lines are dropped whole, never
/// delivered cut: a cut line is not the line that was written (`… from 203.0.113.77 from
/// 2001:db8:bad::1` cut between the two addresses would blame the first, while fail2ban, which
/// reads the whole line, blames the second). They are counted ([`FollowerStats::cut_lines`],
/// [`FollowerStats::skipped_bytes`]); at most [`MAX_LINE`] bytes of one are ever buffered.
pub const MAX_LINE: usize = 64 * 1024;

/// Largest size of one `read(2)`; the buffer is allocated once per follower and reused.
const CHUNK: usize = 64 * 1024;
/// The read buffer's first size.
const FIRST_CHUNK: usize = 4 * 1024;

/// Default upper bound on the bytes read from one file in one [`FileFollower::poll`] (so a large
/// backlog does not monopolise the task that drives the follower; see [`PollReport::more`]).
pub const DEFAULT_READ_BUDGET: u64 = 16 * 1024 * 1024;

/// Where to start in a file that exists when following begins (fail2ban's `logpath = … tail`).
///
/// Only the first opening of a path is concerned: a file that appears later, or replaces a
/// rotated one, is always read from its start, and a restored [`Position`] wins over both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartAt {
    /// Read the existing content (fail2ban's default, `head`).
    #[default]
    Head,
    /// Skip the existing content (`tail`). An incomplete last line is not skipped: it is being
    /// written now and is delivered once complete.
    Tail,
}

/// How a [`FileFollower`] reads; the same for every file of a [`LogSource`](crate::LogSource).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowOptions {
    /// Where to start in a file that exists at the first poll.
    pub start: StartAt,
    /// The files' encoding (`logencoding`).
    pub encoding: LogEncoding,
    /// Bytes read per poll at most ([`DEFAULT_READ_BUDGET`]; 0 counts as 1).
    pub read_budget: u64,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            start: StartAt::Head,
            encoding: LogEncoding::Utf8,
            read_budget: DEFAULT_READ_BUDGET,
        }
    }
}

/// One log line, borrowed for the duration of the sink call (copy what you keep).
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    /// The followed path (as configured or matched, not canonicalised).
    pub path: &'a Path,
    /// The decoded text, without the line terminator (`\n`, and any `\r` before it).
    pub text: &'a str,
    /// The raw bytes, without the line terminator.
    pub raw: &'a [u8],
    /// Byte offset of the line's start in its file.
    pub offset: u64,
    /// Byte offset just after the line (its newline included): where reading resumes.
    pub end: u64,
    /// Inode of the file the line was read from.
    pub inode: u64,
    /// First-line hash of the file the line was read from.
    pub first_line_hash: Option<FirstLineHash>,
    /// Some bytes were not valid in the log encoding and were replaced by U+FFFD.
    pub decode_errors: bool,
    /// The line had no newline: it is the last line of a file that was rotated away
    /// (delivered because nothing can complete it any more).
    pub unterminated: bool,
    /// Read from a file that has already been rotated away from [`path`](Self::path) (its
    /// remaining lines are delivered after the rotation was seen).
    pub rotated: bool,
}

/// Why a follower restarted from the beginning of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationKind {
    /// The path now names another file (rename + create, delete + recreate): inode changed.
    Replaced,
    /// The file shrank below the read position (copytruncate, `> file`). After a copytruncate,
    /// the lines not read yet are delivered from the copy first (`path.1`, `path-DATE`…: the
    /// newest file next to it with the same first line and at least as long as the part read).
    Truncated,
    /// Same inode, not shorter, but its first line changed (truncated and refilled between two
    /// polls).
    Rewritten,
    /// On the first opening, the restored [`Position`] did not match the file (other first line,
    /// other inode, or shorter than the offset): the file was rotated while we were stopped.
    ChangedWhileStopped,
}

/// Something worth a log message, reported once per occurrence by [`FileFollower::poll`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Notice {
    /// The path does not exist (reported once until it appears); it is waited for.
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// The path exists again (or for the first time) after a [`Notice::Missing`].
    Appeared {
        /// The path.
        path: PathBuf,
    },
    /// Reading continues at the start of a new or rewritten file.
    Rotated {
        /// The path.
        path: PathBuf,
        /// What was detected.
        kind: RotationKind,
    },
    /// A restored [`Position`] matched: reading resumes at its offset.
    Resumed {
        /// The path.
        path: PathBuf,
        /// The offset reading resumes at.
        offset: u64,
    },
    /// A file could not be read (reported once until it can). Other files go on.
    Error(SourceError),
    /// A glob-matched path that stayed missing was dropped (its descriptor closed).
    Forgotten {
        /// The path.
        path: PathBuf,
    },
}

/// What one poll did.
#[derive(Debug, Default)]
pub struct PollReport {
    /// Lines delivered to the sink.
    pub lines: u64,
    /// Events worth logging, in order.
    pub notices: Vec<Notice>,
    /// The read budget ran out before the end of some file: poll again without waiting.
    pub more: bool,
}

impl PollReport {
    pub(crate) fn merge(&mut self, other: PollReport) {
        self.lines += other.lines;
        self.notices.extend(other.notices);
        self.more |= other.more;
    }
}

/// Counters of a follower (or, summed, of a source) since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FollowerStats {
    /// Lines delivered.
    pub lines: u64,
    /// Bytes read from files.
    pub bytes: u64,
    /// Lines longer than [`MAX_LINE`], dropped (not delivered, not in [`lines`](Self::lines)).
    pub cut_lines: u64,
    /// Bytes of the dropped over-long lines.
    pub skipped_bytes: u64,
    /// Lines with bytes invalid in the log encoding.
    pub decode_errors: u64,
    /// Rotations detected (every [`RotationKind`]).
    pub rotations: u64,
    /// copytruncate copies whose unread end was delivered (see [`RotationKind::Truncated`]).
    pub copies_drained: u64,
}

impl std::ops::AddAssign for FollowerStats {
    fn add_assign(&mut self, o: Self) {
        self.lines += o.lines;
        self.bytes += o.bytes;
        self.cut_lines += o.cut_lines;
        self.skipped_bytes += o.skipped_bytes;
        self.decode_errors += o.decode_errors;
        self.rotations += o.rotations;
        self.copies_drained += o.copies_drained;
    }
}

/// An open log file and how far it has been read.
#[derive(Debug)]
pub(crate) struct OpenFile {
    file: File,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    /// Bytes consumed from the file (the descriptor's position).
    read_offset: u64,
    /// Offset of the first byte of the line being assembled (== `read_offset - pending.len()`
    /// unless `skipping`).
    line_start: u64,
    /// Bytes of an incomplete line (at most [`MAX_LINE`]).
    pending: Vec<u8>,
    /// Inside an over-long line whose first part was delivered: discard up to the newline.
    skipping: bool,
    hash: Option<FirstLineHash>,
    /// Length of the bytes `hash` covers (first line with its newline, or [`MAX_LINE`]).
    hash_len: u64,
}

impl OpenFile {
    fn open(path: &Path) -> io::Result<(OpenFile, fs::Metadata)> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::other(NOT_A_FILE));
        }
        Ok((
            OpenFile {
                file,
                dev: meta.dev(),
                ino: meta.ino(),
                read_offset: 0,
                line_start: 0,
                pending: Vec::new(),
                skipping: false,
                hash: None,
                hash_len: 0,
            },
            meta,
        ))
    }

    /// Resume point: the start of the first line not yet delivered (mid-line only while skipping
    /// the rest of an over-long line, whose start was delivered).
    fn committed(&self) -> u64 {
        if self.skipping {
            self.read_offset
        } else {
            self.line_start
        }
    }

    fn seek_to(&mut self, offset: u64) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(offset))?;
        self.read_offset = offset;
        self.line_start = offset;
        self.pending.clear();
        self.skipping = false;
        Ok(())
    }

    /// Hash of the first line as the file is now (`None` while it is incomplete).
    fn current_hash(&self, buf: &mut Vec<u8>) -> io::Result<(Option<FirstLineHash>, u64)> {
        if self.hash.is_some() {
            // Cheap re-check: the same bytes as last time, ending in a newline (or the cap).
            buf.resize(self.hash_len as usize, 0);
            let n = read_full_at(&self.file, buf, 0)?;
            if n == buf.len() {
                return Ok((Some(FirstLineHash::of(buf)), self.hash_len));
            }
            // Shorter than the old first line: certainly another first line; search afresh.
        }
        // Grown step by step: most first lines are short, and a buffer of MAX_LINE per file
        // would stay allocated for nothing.
        let mut got = 0;
        let mut step = 512;
        loop {
            if buf.len() < step {
                buf.resize(step, 0);
            }
            let n = read_full_at(&self.file, &mut buf[got..step], got as u64)?;
            if let Some(i) = memchr::memchr(b'\n', &buf[got..got + n]) {
                let len = got + i + 1;
                return Ok((Some(FirstLineHash::of(&buf[..len])), len as u64));
            }
            got += n;
            if got > MAX_LINE {
                return Ok((Some(FirstLineHash::of(&buf[..MAX_LINE])), MAX_LINE as u64));
            }
            if got < step {
                return Ok((None, 0)); // end of file within an incomplete first line
            }
            step = (step * 8).min(MAX_LINE + 1);
        }
    }
}

const NOT_A_FILE: &str = "not a regular file";

fn read_full_at(file: &File, buf: &mut [u8], mut offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Delivers lines to the sink and counts them.
struct Emitter<'s, F> {
    path: &'s Path,
    encoding: LogEncoding,
    scratch: &'s mut String,
    stats: &'s mut FollowerStats,
    sink: &'s mut F,
    lines: u64,
}

struct LineMeta {
    offset: u64,
    end: u64,
    cut: bool,
    unterminated: bool,
    rotated: bool,
}

impl<F: FnMut(Line<'_>)> Emitter<'_, F> {
    fn emit(&mut self, of_hash: Option<FirstLineHash>, ino: u64, mut raw: &[u8], m: LineMeta) {
        if m.cut {
            // Dropped, never matched on a cut (see [`MAX_LINE`]); the rest of it is counted in
            // `skipped_bytes` as it is skipped.
            self.stats.cut_lines += 1;
            self.stats.skipped_bytes += raw.len() as u64;
            return;
        }
        while let [rest @ .., b'\r'] = raw {
            raw = rest;
        }
        let (text, bad) = self.encoding.decode(raw, self.scratch);
        self.stats.lines += 1;
        self.stats.decode_errors += u64::from(bad);
        self.lines += 1;
        (self.sink)(Line {
            path: self.path,
            text,
            raw,
            offset: m.offset,
            end: m.end,
            inode: ino,
            first_line_hash: of_hash,
            decode_errors: bad,
            unterminated: m.unterminated,
            rotated: m.rotated,
        });
    }

    /// Splits `data` (read at file offset `base`) into lines.
    fn process(&mut self, of: &mut OpenFile, data: &[u8], base: u64, rotated: bool) {
        let mut start = 0;
        while let Some(i) = memchr::memchr(b'\n', &data[start..]) {
            let nl = start + i;
            let seg = &data[start..nl];
            let end = base + nl as u64 + 1;
            if of.skipping {
                self.stats.skipped_bytes += seg.len() as u64;
                of.skipping = false;
            } else if of.pending.is_empty() && seg.len() <= MAX_LINE {
                let m = LineMeta {
                    offset: of.line_start,
                    end,
                    cut: false,
                    unterminated: false,
                    rotated,
                };
                self.emit(of.hash, of.ino, seg, m);
            } else {
                let room = MAX_LINE - of.pending.len();
                let take = seg.len().min(room);
                of.pending.extend_from_slice(&seg[..take]);
                let cut = seg.len() > room;
                if cut {
                    self.stats.skipped_bytes += (seg.len() - take) as u64;
                }
                let m = LineMeta {
                    offset: of.line_start,
                    end,
                    cut,
                    unterminated: false,
                    rotated,
                };
                let pending = std::mem::take(&mut of.pending);
                self.emit(of.hash, of.ino, &pending, m);
                of.pending = pending;
                of.pending.clear();
            }
            of.line_start = end;
            start = nl + 1;
        }
        let rest = &data[start..];
        if of.skipping {
            self.stats.skipped_bytes += rest.len() as u64;
        } else if of.pending.len() + rest.len() > MAX_LINE {
            // An over-long line still growing: deliver its first MAX_LINE bytes now, skip the rest.
            let take = MAX_LINE - of.pending.len();
            of.pending.extend_from_slice(&rest[..take]);
            self.stats.skipped_bytes += (rest.len() - take) as u64;
            let m = LineMeta {
                offset: of.line_start,
                end: base + data.len() as u64,
                cut: true,
                unterminated: false,
                rotated,
            };
            let pending = std::mem::take(&mut of.pending);
            self.emit(of.hash, of.ino, &pending, m);
            of.pending = pending;
            of.pending.clear();
            of.skipping = true;
        } else {
            of.pending.extend_from_slice(rest);
        }
    }

    /// The file will not grow any more: deliver a held incomplete line.
    fn finish(&mut self, of: &mut OpenFile, rotated: bool) {
        if !of.skipping && !of.pending.is_empty() {
            let m = LineMeta {
                offset: of.line_start,
                end: of.read_offset,
                cut: false,
                unterminated: true,
                rotated,
            };
            let pending = std::mem::take(&mut of.pending);
            self.emit(of.hash, of.ino, &pending, m);
            of.pending = pending;
            of.pending.clear();
            of.line_start = of.read_offset;
        }
    }
}

/// Reads `of` from its position to end of file (or until `budget` runs out); returns whether end
/// of file was reached.
fn read_available<F: FnMut(Line<'_>)>(
    of: &mut OpenFile,
    chunk: &mut Vec<u8>,
    em: &mut Emitter<'_, F>,
    budget: &mut u64,
    rotated: bool,
) -> io::Result<bool> {
    let mut first = true;
    loop {
        if *budget == 0 && !first {
            return Ok(false);
        }
        first = false;
        let want = chunk
            .len()
            .min(usize::try_from(*budget).unwrap_or(usize::MAX))
            .max(1);
        let n = match of.file.read(&mut chunk[..want]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(true);
        }
        *budget = budget.saturating_sub(n as u64);
        em.stats.bytes += n as u64;
        let base = of.read_offset;
        of.read_offset += n as u64;
        em.process(of, &chunk[..n], base, rotated);
        // A full read: more is coming, read it in larger pieces (up to CHUNK). Quiet files keep
        // the small first size (see FileFollower::poll_inner).
        if n == chunk.len() && chunk.len() < CHUNK {
            chunk.resize((chunk.len() * 4).min(CHUNK), 0);
        }
    }
}

/// Follows one log path like `tail -F`, across rotations, without losing or repeating a line.
///
/// Synchronous and passive: nothing happens between calls to [`poll`](Self::poll), which the
/// owner makes on an inotify wake-up or a timer. See the [crate documentation](crate) for the
/// rotation model.
#[derive(Debug)]
pub struct FileFollower {
    path: PathBuf,
    opts: FollowOptions,
    /// Position to resume at on the first opening, if it matches the file.
    restore: Option<Position>,
    /// No poll has looked at the path yet: [`FollowOptions::start`] still applies.
    initial: bool,
    current: Option<OpenFile>,
    /// The previous file after a replacement, drained until it stays quiet while the new one
    /// has data (writers often keep appending to it until they reopen the path).
    retired: Option<OpenFile>,
    /// Position of the last file read, kept while no file is open.
    last: Option<Position>,
    missing_reported: bool,
    error_reported: bool,
    chunk: Vec<u8>,
    hash_buf: Vec<u8>,
    scratch: String,
    stats: FollowerStats,
}

impl FileFollower {
    /// Follows `path` (nothing is opened before the first [`poll`](Self::poll)).
    pub fn new(path: impl Into<PathBuf>, opts: FollowOptions) -> Self {
        FileFollower {
            path: path.into(),
            opts,
            restore: None,
            initial: true,
            current: None,
            retired: None,
            last: None,
            missing_reported: false,
            error_reported: false,
            chunk: Vec::new(),
            hash_buf: Vec::new(),
            scratch: String::new(),
            stats: FollowerStats::default(),
        }
    }

    /// Resumes from a persisted position on the first opening of the file: at `pos.offset` if
    /// the file's first-line hash (and inode, when stored) still match and it is not shorter;
    /// from the start otherwise (it was rotated meanwhile). Wins over [`StartAt::Tail`].
    /// Ignored once the file has been opened.
    pub fn restore(&mut self, pos: Position) {
        if self.current.is_none() && self.last.is_none() {
            self.restore = Some(pos);
        }
    }

    /// The followed path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counters since creation.
    pub fn stats(&self) -> FollowerStats {
        self.stats
    }

    /// Open descriptors held: 0, 1, or 2 right after a rotation (the old file is drained until it
    /// is quiet).
    pub fn open_files(&self) -> usize {
        usize::from(self.current.is_some()) + usize::from(self.retired.is_some())
    }

    /// The position to persist: the current file's hash and the start of its first undelivered
    /// line. `None` until a file has been opened (or restored).
    pub fn position(&self) -> Option<Position> {
        match &self.current {
            Some(of) => Some(self.position_of(of)),
            None => self.last.clone().or_else(|| self.restore.clone()),
        }
    }

    fn position_of(&self, of: &OpenFile) -> Position {
        Position {
            path: self.path.clone(),
            first_line_hash: of.hash,
            offset: of.committed(),
            inode: Some(of.ino),
        }
    }

    /// Identity (device, inode) of the files held open.
    pub(crate) fn held(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.current
            .iter()
            .chain(self.retired.iter())
            .map(|of| (of.dev, of.ino))
    }

    /// Whether the file being read from the path now has identity `id`.
    pub(crate) fn holds_current(&self, id: (u64, u64)) -> bool {
        self.current
            .as_ref()
            .is_some_and(|of| (of.dev, of.ino) == id)
    }

    /// Gives up the open file with identity `id` (the path it came from was renamed to a path
    /// that another follower now owns). Lines already delivered stay delivered: the taker goes
    /// on from the same offset.
    pub(crate) fn take_file(&mut self, id: (u64, u64)) -> Option<OpenFile> {
        if self
            .retired
            .as_ref()
            .is_some_and(|of| (of.dev, of.ino) == id)
        {
            return self.retired.take();
        }
        if self
            .current
            .as_ref()
            .is_some_and(|of| (of.dev, of.ino) == id)
        {
            let of = self.current.take()?;
            self.last = Some(self.position_of(&of));
            return Some(of);
        }
        None
    }

    /// Continues reading an open file handed over from another follower.
    pub(crate) fn adopt(&mut self, of: OpenFile) {
        self.initial = false;
        self.restore = None;
        self.current = Some(of);
    }

    /// Reads what is new: the rest of a rotated-away file first, then the file the path names
    /// now, checking for rotation (inode change, shrinking, first-line change). Each complete
    /// line goes to `sink` in file order; an incomplete last line is held until completed.
    ///
    /// A missing path is not an error (reported once as [`Notice::Missing`]). An error is
    /// returned for a path that cannot be opened or read (permissions, not a regular file…);
    /// the follower stays usable and the next poll tries again.
    pub fn poll(&mut self, sink: &mut impl FnMut(Line<'_>)) -> Result<PollReport, SourceError> {
        let r = self.poll_inner(sink);
        match &r {
            Ok(_) => self.error_reported = false,
            Err(_) => self.error_reported = true,
        }
        r
    }

    /// Whether the last poll failed (so a repeated failure need not be reported again).
    pub(crate) fn error_reported(&self) -> bool {
        self.error_reported
    }

    fn poll_inner(&mut self, sink: &mut impl FnMut(Line<'_>)) -> Result<PollReport, SourceError> {
        if self.chunk.is_empty() {
            // Small at first: a quiet log never needs more; read_available grows it to CHUNK
            // while a file has more to read.
            self.chunk.resize(FIRST_CHUNK, 0);
        }
        let mut rep = PollReport::default();
        let mut budget = self.opts.read_budget.max(1);
        let path = self.path.clone();
        let io_err = |e: io::Error| {
            if e.get_ref().is_some_and(|m| m.to_string() == NOT_A_FILE) {
                SourceError::NotAFile { path: path.clone() }
            } else {
                SourceError::io(path.clone(), e)
            }
        };
        let mut em = Emitter {
            path: &self.path,
            encoding: self.opts.encoding,
            scratch: &mut self.scratch,
            stats: &mut self.stats,
            sink,
            lines: 0,
        };

        // 1. The rest of a rotated-away file comes first (it is older).
        if let Some(old) = self.retired.as_mut() {
            if let Some(kind) =
                check_rewritten(old, &mut self.hash_buf, |_| Ok(())).map_err(&io_err)?
            {
                em.stats.rotations += 1;
                rep.notices.push(Notice::Rotated {
                    path: self.path.clone(),
                    kind,
                });
            }
            let before = old.read_offset;
            let eof = read_available(old, &mut self.chunk, &mut em, &mut budget, true)
                .map_err(&io_err)?;
            rep.more |= !eof;
            let new_has_data = self
                .current
                .as_ref()
                .is_some_and(|c| c.read_offset > 0 || !c.pending.is_empty());
            if eof && old.read_offset == before && new_has_data {
                em.finish(old, true);
                self.retired = None; // closes it
            }
        }

        // 2. What does the path name now?
        let meta = match fs::metadata(&self.path) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(e)),
        };
        let Some(meta) = meta else {
            // Renamed or deleted: keep draining the file we hold (a writer may still append to
            // it) and wait for the path to come back.
            if let Some(cur) = self.current.as_mut() {
                if let Some(kind) =
                    check_rewritten(cur, &mut self.hash_buf, |_| Ok(())).map_err(&io_err)?
                {
                    em.stats.rotations += 1;
                    rep.notices.push(Notice::Rotated {
                        path: self.path.clone(),
                        kind,
                    });
                }
                let eof = read_available(cur, &mut self.chunk, &mut em, &mut budget, false)
                    .map_err(&io_err)?;
                rep.more |= !eof;
            }
            if !self.missing_reported {
                self.missing_reported = true;
                rep.notices.push(Notice::Missing {
                    path: self.path.clone(),
                });
            }
            self.initial = false;
            rep.lines = em.lines;
            return Ok(rep);
        };
        if !meta.is_file() {
            return Err(SourceError::NotAFile {
                path: self.path.clone(),
            });
        }
        if self.missing_reported {
            self.missing_reported = false;
            rep.notices.push(Notice::Appeared {
                path: self.path.clone(),
            });
        }

        let same = self
            .current
            .as_ref()
            .is_some_and(|c| (c.dev, c.ino) == (meta.dev(), meta.ino()));
        if self.current.is_some() && !same {
            // Replaced (rename + create, delete + recreate). Finish the old file first.
            let cur = self.current.as_mut().expect("checked above");
            if let Some(kind) =
                check_rewritten(cur, &mut self.hash_buf, |_| Ok(())).map_err(&io_err)?
            {
                em.stats.rotations += 1;
                rep.notices.push(Notice::Rotated {
                    path: self.path.clone(),
                    kind,
                });
            }
            // Read what the budget allows now; the rest is drained as the retired file, so the
            // new file is opened (and held) before anything can rotate it away as well.
            let eof = read_available(cur, &mut self.chunk, &mut em, &mut budget, true)
                .map_err(&io_err)?;
            rep.more |= !eof;
            let (mut new, _) = match OpenFile::open(&self.path) {
                Ok(x) => x,
                // Gone again between stat and open: next poll.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    rep.lines = em.lines;
                    return Ok(rep);
                }
                Err(e) => return Err(io_err(e)),
            };
            let (h, hl) = new.current_hash(&mut self.hash_buf).map_err(&io_err)?;
            new.hash = h;
            new.hash_len = hl;
            if let Some(mut older) = self.retired.take() {
                // A second rotation while the first old file was still held: it is done.
                let mut unlimited = u64::MAX;
                read_available(&mut older, &mut self.chunk, &mut em, &mut unlimited, true)
                    .map_err(&io_err)?;
                em.finish(&mut older, true);
            }
            self.retired = self.current.replace(new);
            em.stats.rotations += 1;
            rep.notices.push(Notice::Rotated {
                path: self.path.clone(),
                kind: RotationKind::Replaced,
            });
        } else if self.current.is_none() {
            let (mut new, meta) = match OpenFile::open(&self.path) {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    rep.lines = em.lines;
                    return Ok(rep);
                }
                Err(e) => return Err(io_err(e)),
            };
            let (h, hl) = new.current_hash(&mut self.hash_buf).map_err(&io_err)?;
            new.hash = h;
            new.hash_len = hl;
            let size = meta.len();
            let mut mid_line = false;
            let start = if let Some(pos) = self.restore.take() {
                let matches = pos.first_line_hash.is_some()
                    && pos.first_line_hash == h
                    && pos.inode.is_none_or(|i| i == new.ino)
                    && pos.offset <= size;
                if matches {
                    rep.notices.push(Notice::Resumed {
                        path: self.path.clone(),
                        offset: pos.offset,
                    });
                    pos.offset
                } else {
                    if pos.first_line_hash.is_some() {
                        em.stats.rotations += 1;
                        rep.notices.push(Notice::Rotated {
                            path: self.path.clone(),
                            kind: RotationKind::ChangedWhileStopped,
                        });
                    }
                    0
                }
            } else if self.initial && self.opts.start == StartAt::Tail {
                let (start, mid) =
                    tail_start(&new.file, size, &mut self.hash_buf).map_err(&io_err)?;
                mid_line = mid;
                start
            } else {
                0
            };
            new.seek_to(start).map_err(&io_err)?;
            new.skipping = mid_line;
            self.current = Some(new);
            self.last = None;
        } else {
            let cur = self.current.as_mut().expect("checked above");
            if let Some(kind) = check_rewritten(cur, &mut self.hash_buf, |of| {
                drain_copy(of, &self.path, &mut self.chunk, &mut em)
            })
            .map_err(&io_err)?
            {
                em.stats.rotations += 1;
                rep.notices.push(Notice::Rotated {
                    path: self.path.clone(),
                    kind,
                });
            }
        }
        self.initial = false;

        // 3. Read the current file.
        if let Some(cur) = self.current.as_mut() {
            let eof = read_available(cur, &mut self.chunk, &mut em, &mut budget, false)
                .map_err(&io_err)?;
            rep.more |= !eof;
            if cur.hash.is_none() && cur.read_offset > 0 {
                let (h, hl) = cur.current_hash(&mut self.hash_buf).map_err(&io_err)?;
                cur.hash = h;
                cur.hash_len = hl;
            }
        }
        rep.lines = em.lines;
        Ok(rep)
    }
}

/// Detects, on a file we hold, a truncation (size below the read offset: copytruncate,
/// `> file`) or a rewrite (same inode, not shorter, other first line: truncated and refilled up
/// to or past our offset before we looked), and restarts it at 0. The first line is re-hashed
/// on every call: one small `pread`, and no dependence on file times, whose clock ticks too
/// coarsely to see a refill within a few milliseconds.
///
/// Before the restart, `before_restart` sees the file as it was read so far (the daemon's
/// follower drains a copytruncate copy there: [`drain_copy`]); a held incomplete line is then
/// dropped: its completion went into the copy, not into this file.
fn check_rewritten(
    of: &mut OpenFile,
    hash_buf: &mut Vec<u8>,
    before_restart: impl FnOnce(&OpenFile) -> io::Result<()>,
) -> io::Result<Option<RotationKind>> {
    let size = of.file.metadata()?.len();
    let kind = if size < of.read_offset {
        RotationKind::Truncated
    } else if size == 0 {
        return Ok(None);
    } else {
        let (h, hl) = of.current_hash(hash_buf)?;
        if of.hash.is_none() {
            of.hash = h;
            of.hash_len = hl;
            return Ok(None);
        }
        if h == of.hash {
            return Ok(None);
        }
        RotationKind::Rewritten
    };
    before_restart(of)?;
    of.seek_to(0)?;
    let (h, hl) = of.current_hash(hash_buf)?;
    of.hash = h;
    of.hash_len = hl;
    Ok(Some(kind))
}

/// Compressed rotations: never a fresh copytruncate copy (logrotate compresses later, or a
/// rotation after).
const COMPRESSED: [&str; 6] = [".gz", ".bz2", ".xz", ".zst", ".lz4", ".Z"];

/// After a copytruncate (same inode, shrunk, or truncated and refilled), the lines written
/// between the last read and the copy are only in the copy (logrotate's `path.1`, `path-DATE`,
/// …): a follower that polls once a second would lose up to a second of lines per rotation.
/// This finds the copy next to `path` (a regular file named `path.*` or `path-*`, not
/// compressed, another inode, at least `of.read_offset` long, with the same first line and, when
/// an incomplete line is held, the same bytes before the read offset; the newest such file) and
/// delivers the rest of it from `of`'s offset, as if it had been read before logrotate ran.
/// Nothing is found after a plain `> file` (no copy), and a copy that cannot be read is skipped:
/// the restart from 0 goes on either way.
fn drain_copy<F: FnMut(Line<'_>)>(
    of: &OpenFile,
    path: &Path,
    chunk: &mut Vec<u8>,
    em: &mut Emitter<'_, F>,
) -> io::Result<()> {
    let Some(hash) = of.hash else {
        return Ok(());
    };
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Ok(());
    };
    if of.read_offset == 0 {
        return Ok(());
    }
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    let mut candidates = Vec::new();
    for e in entries.flatten() {
        let file_name = e.file_name();
        let Some(rest) = file_name.to_str().and_then(|f| f.strip_prefix(name)) else {
            continue;
        };
        if !(rest.starts_with('.') || rest.starts_with('-'))
            || COMPRESSED.iter().any(|c| rest.ends_with(c))
        {
            continue;
        }
        let Ok(meta) = fs::metadata(e.path()) else {
            continue;
        };
        if meta.is_file()
            && (meta.dev(), meta.ino()) != (of.dev, of.ino)
            && meta.len() >= of.read_offset
        {
            candidates.push((meta.modified().ok(), e.path()));
        }
    }
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    let mut buf = Vec::new();
    for (_, p) in candidates {
        let Ok((mut copy, _)) = OpenFile::open(&p) else {
            continue;
        };
        buf.resize(of.hash_len as usize, 0);
        if !matches!(read_full_at(&copy.file, &mut buf, 0), Ok(n) if n == buf.len())
            || FirstLineHash::of(&buf) != hash
        {
            continue;
        }
        if !of.pending.is_empty() && !of.skipping {
            buf.resize(of.pending.len(), 0);
            let at = of.read_offset - of.pending.len() as u64;
            if !matches!(read_full_at(&copy.file, &mut buf, at), Ok(n) if n == buf.len())
                || buf != of.pending
            {
                continue;
            }
        }
        if copy.file.seek(SeekFrom::Start(of.read_offset)).is_err() {
            continue;
        }
        copy.read_offset = of.read_offset;
        copy.line_start = of.line_start;
        copy.pending.clone_from(&of.pending);
        copy.skipping = of.skipping;
        copy.hash = of.hash;
        copy.hash_len = of.hash_len;
        let mut unlimited = u64::MAX;
        read_available(&mut copy, chunk, em, &mut unlimited, true)?;
        em.finish(&mut copy, true);
        em.stats.copies_drained += 1;
        return Ok(());
    }
    Ok(())
}

/// Start offset for [`StartAt::Tail`]: after the last newline, so that a line being written
/// is delivered whole once complete; at the end, inside an over-long line whose rest is then
/// skipped (`true`), if the last [`MAX_LINE`] bytes hold no newline.
fn tail_start(file: &File, size: u64, buf: &mut Vec<u8>) -> io::Result<(u64, bool)> {
    // The last newline is nearly always in the last few KiB: look there first, then in larger
    // windows up to MAX_LINE (so the buffer stays small for ordinary logs).
    let mut window = size.min(4096);
    loop {
        let from = size - window;
        buf.resize(window as usize, 0);
        let n = read_full_at(file, buf, from)?;
        if let Some(i) = memchr::memrchr(b'\n', &buf[..n]) {
            return Ok((from + i as u64 + 1, false));
        }
        if from == 0 {
            return Ok((0, false));
        }
        if window >= MAX_LINE as u64 {
            return Ok((size, true));
        }
        window = (window * 4).min(MAX_LINE as u64).min(size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of `content`, opened for reading.
    fn file_of(content: &[u8]) -> File {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        fs::write(&path, content).unwrap();
        File::open(path).unwrap()
    }

    #[test]
    fn tail_start_finds_the_last_newline_at_any_distance_up_to_max_line() {
        // The last line's length decides which window finds its newline: the first (4 KiB),
        // a grown one, the last (MAX_LINE), or none (an over-long last line: skipped whole).
        for last in [
            0usize,
            10,
            4095,
            4096,
            5000,
            20_000,
            MAX_LINE - 1,
            MAX_LINE,
            MAX_LINE + 10,
        ] {
            let mut content = b"first line\nsecond line\n".to_vec();
            let newline_at = content.len();
            content.extend(std::iter::repeat_n(b'x', last));
            let size = content.len() as u64;
            let mut buf = Vec::new();
            let got = tail_start(&file_of(&content), size, &mut buf).unwrap();
            let want = if last < MAX_LINE {
                (newline_at as u64, false)
            } else {
                (size, true)
            };
            assert_eq!(got, want, "last line of {last} bytes");
            assert!(buf.len() <= MAX_LINE, "buffer of {} bytes", buf.len());
        }
        // No newline at all in a short file: from the start.
        let mut buf = Vec::new();
        assert_eq!(
            tail_start(&file_of(b"abc"), 3, &mut buf).unwrap(),
            (0, false)
        );
        // An ordinary log keeps the buffer at the first window.
        let mut content = Vec::new();
        for i in 0..10_000 {
            content.extend(format!("line {i}\n").bytes());
        }
        let mut buf = Vec::new();
        let size = content.len() as u64;
        let (at, cut) = tail_start(&file_of(&content), size, &mut buf).unwrap();
        assert_eq!((at, cut), (size, false));
        assert_eq!(buf.len(), 4096);
    }
}
