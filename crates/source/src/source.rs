//! [`LogSource`]: the `logpath` entries of one jail (paths and globs), one [`FileFollower`] per
//! file, woken by inotify or by a polling interval.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use inotify::{EventMask, Inotify, WatchMask};

use crate::{
    FileFollower, FollowOptions, FollowerStats, Line, LogEncoding, Notice, PollReport, Position,
    SourceError, StartAt,
};

/// fail2ban's `backend` for file logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// inotify when the kernel offers it, polling otherwise.
    #[default]
    Auto,
    /// inotify (`pyinotify` in fail2ban); an error if it cannot be initialised.
    Inotify,
    /// stat every file on each interval.
    Polling,
}

impl FromStr for Backend {
    type Err = SourceError;

    /// `auto`, `pyinotify` (or `inotify`), `polling`; fail2ban's options after the name
    /// (`polling[...]`) are ignored. `systemd` and `gamin` are refused: they are not file
    /// backends here.
    fn from_str(s: &str) -> Result<Self, SourceError> {
        let name = s.split('[').next().unwrap_or("").trim();
        match name.to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Backend::Auto),
            "pyinotify" | "inotify" => Ok(Backend::Inotify),
            "polling" => Ok(Backend::Polling),
            _ => Err(SourceError::Backend {
                name: s.to_string(),
            }),
        }
    }
}

/// One `logpath` entry: a path or a glob, and where to start in files that exist at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPathSpec {
    /// A path, or a glob pattern (`*`, `?`, `[…]`) re-evaluated so that files created later are
    /// followed (read from their start).
    pub pattern: String,
    /// `head` (default) or `tail`, for files that exist at the first poll.
    pub start: StartAt,
}

impl LogPathSpec {
    /// A spec from fail2ban's `logpath` line syntax: `PATH [head|tail]`.
    pub fn parse(entry: &str) -> Self {
        let entry = entry.trim();
        match entry.rsplit_once(char::is_whitespace) {
            Some((p, "tail")) => LogPathSpec {
                pattern: p.trim_end().to_string(),
                start: StartAt::Tail,
            },
            Some((p, "head")) => LogPathSpec {
                pattern: p.trim_end().to_string(),
                start: StartAt::Head,
            },
            _ => LogPathSpec {
                pattern: entry.to_string(),
                start: StartAt::Head,
            },
        }
    }
}

/// Settings of a [`LogSource`].
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// inotify or polling.
    pub backend: Backend,
    /// `logencoding`.
    pub encoding: LogEncoding,
    /// With inotify, globs are re-evaluated on directory events and at least this often (a
    /// directory that does not exist yet cannot be watched). Polling re-evaluates on every poll.
    pub rescan_interval: Duration,
    /// A glob-matched file missing for this long is dropped (and its descriptor closed); a file
    /// named literally is waited for forever.
    pub forget_missing_after: Duration,
    /// Bytes read per file and poll at most.
    pub read_budget: u64,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            backend: Backend::Auto,
            encoding: LogEncoding::Utf8,
            rescan_interval: Duration::from_secs(10),
            forget_missing_after: Duration::from_secs(60),
            read_budget: crate::DEFAULT_READ_BUDGET,
        }
    }
}

#[derive(Debug)]
struct Spec {
    pattern: String,
    start: StartAt,
    /// `Some` for a glob.
    glob: Option<glob::Pattern>,
}

#[derive(Debug)]
struct Entry {
    follower: FileFollower,
    /// Found by a glob (may be forgotten when missing), not named literally.
    from_glob: bool,
    missing_since: Option<Instant>,
}

/// All files of one jail's `logpath`: follows each, re-evaluates globs, wakes on inotify.
///
/// Drive it with [`poll_at`](Self::poll_at) (or [`poll`](Self::poll)) whenever
/// [`wake_fd`](Self::wake_fd) is readable (e.g. through tokio's `AsyncFd`), or after
/// [`wait`](Self::wait) returns in a thread, and in any case every few seconds: every poll checks
/// every file, so a missed event delays a line, never loses it, and the inotify and polling
/// backends deliver the same lines.
#[derive(Debug)]
pub struct LogSource {
    specs: Vec<Spec>,
    opts: SourceOptions,
    followers: BTreeMap<PathBuf, Entry>,
    restore: HashMap<PathBuf, Position>,
    watcher: Option<Watcher>,
    scanned: bool,
    next_rescan: Option<Instant>,
    pattern_errors: BTreeSet<String>,
}

impl LogSource {
    /// A source for `specs`. Validates glob patterns; with [`Backend::Inotify`] fails if inotify
    /// cannot be initialised, with [`Backend::Auto`] falls back to polling.
    pub fn new(specs: Vec<LogPathSpec>, opts: SourceOptions) -> Result<Self, SourceError> {
        let specs = specs
            .into_iter()
            .map(|s| {
                let glob = if s.pattern.contains(['*', '?', '[']) {
                    Some(
                        glob::Pattern::new(&s.pattern).map_err(|e| SourceError::Pattern {
                            pattern: s.pattern.clone(),
                            message: e.msg.to_string(),
                        })?,
                    )
                } else {
                    None
                };
                Ok(Spec {
                    pattern: s.pattern,
                    start: s.start,
                    glob,
                })
            })
            .collect::<Result<Vec<_>, SourceError>>()?;
        let watcher = match opts.backend {
            Backend::Polling => None,
            Backend::Inotify => Some(Watcher::new()?),
            Backend::Auto => Watcher::new().ok(),
        };
        Ok(LogSource {
            specs,
            opts,
            followers: BTreeMap::new(),
            restore: HashMap::new(),
            watcher,
            scanned: false,
            next_rescan: None,
            pattern_errors: BTreeSet::new(),
        })
    }

    /// The backend in use ([`Backend::Auto`] resolved).
    pub fn backend(&self) -> Backend {
        if self.watcher.is_some() {
            Backend::Inotify
        } else {
            Backend::Polling
        }
    }

    /// Positions persisted by an earlier run; each applies when its path is first opened (see
    /// [`FileFollower::restore`]). Call before the first poll.
    pub fn restore(&mut self, positions: impl IntoIterator<Item = Position>) {
        for p in positions {
            match self.followers.get_mut(&p.path) {
                Some(e) => e.follower.restore(p),
                None => {
                    self.restore.insert(p.path.clone(), p);
                }
            }
        }
    }

    /// The positions to persist, one per followed path that has been opened.
    pub fn positions(&self) -> Vec<Position> {
        self.followers
            .values()
            .filter_map(|e| e.follower.position())
            .collect()
    }

    /// The paths followed now (literal ones even while missing).
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.followers.keys().map(PathBuf::as_path)
    }

    /// Counters summed over the files followed now.
    pub fn stats(&self) -> FollowerStats {
        let mut s = FollowerStats::default();
        for e in self.followers.values() {
            s += e.follower.stats();
        }
        s
    }

    /// Log-file descriptors held (at most two per path, right after a rotation).
    pub fn open_files(&self) -> usize {
        self.followers
            .values()
            .map(|e| e.follower.open_files())
            .sum()
    }

    /// The inotify descriptor, readable when something may have changed (`None` when polling).
    /// Register it with an event loop (tokio's `AsyncFd`) and call [`poll`](Self::poll) when it
    /// is readable; the poll consumes the events.
    pub fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        self.watcher.as_ref().map(|w| w.inotify.as_fd())
    }

    /// Blocks until an inotify event is pending or `timeout` has passed; returns whether an
    /// event woke it. With polling it just sleeps for `timeout`. For thread-driven use; an
    /// async owner uses [`wake_fd`](Self::wake_fd) instead.
    pub fn wait(&mut self, timeout: Duration) -> Result<bool, SourceError> {
        match &self.watcher {
            None => {
                std::thread::sleep(timeout);
                Ok(false)
            }
            Some(w) => w.wait(timeout),
        }
    }

    /// [`poll_at`](Self::poll_at) with the current time.
    pub fn poll(&mut self, sink: &mut impl FnMut(Line<'_>)) -> Result<PollReport, SourceError> {
        self.poll_at(Instant::now(), sink)
    }

    /// Consumes pending inotify events, re-evaluates globs when due, then reads every followed
    /// file (see [`FileFollower::poll`]); `now` is used only for the rescan interval and for
    /// forgetting missing glob matches.
    ///
    /// Errors of single files are reported once as [`Notice::Error`] and do not stop the others;
    /// only an inotify failure is returned as an error.
    pub fn poll_at(
        &mut self,
        now: Instant,
        sink: &mut impl FnMut(Line<'_>),
    ) -> Result<PollReport, SourceError> {
        let mut rep = PollReport::default();
        let dir_event = match self.watcher.as_mut() {
            Some(w) => w.drain()?,
            None => true,
        };
        let due = self.next_rescan.is_none_or(|t| now >= t);

        // Literal paths are followed from the start; globs are expanded below.
        if !self.scanned {
            for i in 0..self.specs.len() {
                if self.specs[i].glob.is_none() {
                    let p = PathBuf::from(&self.specs[i].pattern);
                    let start = self.specs[i].start;
                    self.add(p, start, false);
                }
            }
        }

        // Existing followers first: they see renames away from their path before a glob could
        // pick the renamed file up as new.
        let mut forget = Vec::new();
        for (path, e) in self.followers.iter_mut() {
            let failing = e.follower.error_reported();
            match e.follower.poll(sink) {
                Ok(r) => {
                    for n in &r.notices {
                        match n {
                            Notice::Missing { .. } => {
                                e.missing_since = e.missing_since.or(Some(now))
                            }
                            Notice::Appeared { .. } => e.missing_since = None,
                            _ => {}
                        }
                    }
                    rep.merge(r);
                }
                // Reported once until a poll succeeds again.
                Err(err) if !failing => rep.notices.push(Notice::Error(err)),
                Err(_) => {}
            }
            if e.from_glob
                && e.missing_since.is_some_and(|t| {
                    now.saturating_duration_since(t) >= self.opts.forget_missing_after
                })
            {
                forget.push(path.clone());
            }
        }
        for p in forget {
            if let Some(mut e) = self.followers.remove(&p) {
                // Deliver whatever the held file still has before closing it.
                if let Ok(r) = e.follower.poll(sink) {
                    rep.merge(r);
                }
                rep.notices.push(Notice::Forgotten { path: p });
            }
        }

        if !self.scanned || dir_event || due || self.watcher.is_none() {
            self.rescan(now, sink, &mut rep);
        }
        if let Some(w) = self.watcher.as_mut() {
            let mut dirs = BTreeSet::new();
            for s in &self.specs {
                if let Some(d) = watch_dir_of(&s.pattern, s.glob.is_some()) {
                    dirs.insert(d);
                }
            }
            for p in self.followers.keys() {
                if let Some(d) = p.parent() {
                    dirs.insert(non_empty(d));
                }
                if let Ok(c) = std::fs::canonicalize(p)
                    && let Some(d) = c.parent()
                {
                    dirs.insert(d.to_path_buf());
                }
            }
            w.sync(&dirs);
        }
        Ok(rep)
    }

    fn add(&mut self, path: PathBuf, start: StartAt, from_glob: bool) -> bool {
        if self.followers.contains_key(&path) {
            return false;
        }
        let mut f = FileFollower::new(
            path.clone(),
            FollowOptions {
                start,
                encoding: self.opts.encoding,
                read_budget: self.opts.read_budget,
            },
        );
        if let Some(p) = self.restore.remove(&path) {
            f.restore(p);
        }
        self.followers.insert(
            path,
            Entry {
                follower: f,
                from_glob,
                missing_since: None,
            },
        );
        true
    }

    /// Expands the globs; new matches are followed (and read once right away).
    fn rescan(&mut self, now: Instant, sink: &mut impl FnMut(Line<'_>), rep: &mut PollReport) {
        let initial = !self.scanned;
        self.scanned = true;
        self.next_rescan = Some(now + self.opts.rescan_interval);
        let mut found = Vec::new();
        for s in &self.specs {
            if s.glob.is_none() {
                continue;
            }
            match glob::glob(&s.pattern) {
                Ok(paths) => {
                    for p in paths.flatten() {
                        if p.is_file() && !self.followers.contains_key(&p) {
                            // Files present at the first scan honour head/tail; later ones are new.
                            let start = if initial { s.start } else { StartAt::Head };
                            found.push((p, start));
                        }
                    }
                }
                Err(e) => {
                    if self.pattern_errors.insert(s.pattern.clone()) {
                        rep.notices.push(Notice::Error(SourceError::Pattern {
                            pattern: s.pattern.clone(),
                            message: e.msg.to_string(),
                        }));
                    }
                }
            }
        }
        for (p, start) in found {
            // A file we already hold open under another path: either that path was rotated
            // away from it (renamed to a name the glob also matches) and the new follower goes
            // on where the old one was, or both paths name it now (symlink, hard link) and it
            // is not followed twice.
            let mut taken = None;
            if let Ok(meta) = std::fs::metadata(&p) {
                let id = (meta.dev(), meta.ino());
                let mut alias = false;
                for (q, e) in self.followers.iter_mut() {
                    if !e.follower.held().any(|h| h == id) {
                        continue;
                    }
                    let still_named = std::fs::metadata(q).is_ok_and(|m| (m.dev(), m.ino()) == id);
                    if e.follower.holds_current(id) && still_named {
                        alias = true;
                    } else {
                        taken = e.follower.take_file(id);
                    }
                    break;
                }
                if alias {
                    continue;
                }
            }
            if !self.add(p.clone(), start, true) {
                continue;
            }
            if let Some(of) = taken
                && let Some(e) = self.followers.get_mut(&p)
            {
                e.follower.adopt(of);
            }
            if let Some(e) = self.followers.get_mut(&p) {
                match e.follower.poll(sink) {
                    Ok(r) => rep.merge(r),
                    Err(err) => rep.notices.push(Notice::Error(err)),
                }
            }
        }
    }
}

fn non_empty(d: &Path) -> PathBuf {
    if d.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        d.to_path_buf()
    }
}

/// The directory to watch for a spec: the parent of a literal path, the longest glob-free
/// prefix of a glob.
fn watch_dir_of(pattern: &str, is_glob: bool) -> Option<PathBuf> {
    let p = Path::new(pattern);
    if !is_glob {
        return p.parent().map(non_empty);
    }
    let mut dir = PathBuf::new();
    for c in p.components() {
        let s = c.as_os_str().to_string_lossy();
        if matches!(c, Component::Normal(_)) && s.contains(['*', '?', '[']) {
            break;
        }
        dir.push(c.as_os_str());
    }
    if dir.as_os_str().is_empty() {
        Some(PathBuf::from("."))
    } else if dir == p {
        dir.parent().map(non_empty)
    } else {
        Some(dir)
    }
}

/// Directory watches: a modification, creation, rename or deletion of any entry of a watched
/// directory is one event, so no per-file watch has to follow rotations.
#[derive(Debug)]
struct Watcher {
    inotify: Inotify,
    dirs: BTreeMap<PathBuf, inotify::WatchDescriptor>,
    by_wd: HashMap<i32, PathBuf>,
    buf: Vec<u8>,
}

impl Watcher {
    fn new() -> Result<Self, SourceError> {
        let inotify = Inotify::init().map_err(|e| SourceError::Inotify {
            path: PathBuf::from("inotify"),
            source: e,
        })?;
        Ok(Watcher {
            inotify,
            dirs: BTreeMap::new(),
            by_wd: HashMap::new(),
            buf: vec![0; 16 * 1024],
        })
    }

    /// Watches exactly `want` (those that exist; the others are retried at the next sync).
    fn sync(&mut self, want: &BTreeSet<PathBuf>) {
        let stale: Vec<PathBuf> = self
            .dirs
            .keys()
            .filter(|d| !want.contains(*d))
            .cloned()
            .collect();
        for d in stale {
            if let Some(wd) = self.dirs.remove(&d) {
                self.by_wd.remove(&wd.get_watch_descriptor_id());
                let _ = self.inotify.watches().remove(wd);
            }
        }
        let mask = WatchMask::MODIFY
            | WatchMask::CLOSE_WRITE
            | WatchMask::ATTRIB
            | WatchMask::CREATE
            | WatchMask::MOVED_FROM
            | WatchMask::MOVED_TO
            | WatchMask::DELETE
            | WatchMask::DELETE_SELF
            | WatchMask::MOVE_SELF
            | WatchMask::ONLYDIR;
        for d in want {
            if self.dirs.contains_key(d) {
                continue;
            }
            // A directory that does not exist (yet) or cannot be watched is covered by the
            // periodic rescan and the per-poll stat of every file.
            if let Ok(wd) = self.inotify.watches().add(d, mask) {
                self.by_wd.insert(wd.get_watch_descriptor_id(), d.clone());
                self.dirs.insert(d.clone(), wd);
            }
        }
    }

    /// Consumes pending events; returns whether any may change what the globs match.
    fn drain(&mut self) -> Result<bool, SourceError> {
        let mut dir_event = false;
        loop {
            let events = match self.inotify.read_events(&mut self.buf) {
                Ok(ev) => ev,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(dir_event),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(SourceError::Inotify {
                        path: PathBuf::from("inotify"),
                        source: e,
                    });
                }
            };
            let mut any = false;
            for ev in events {
                any = true;
                let m = ev.mask;
                if m.intersects(
                    EventMask::CREATE
                        | EventMask::MOVED_TO
                        | EventMask::MOVED_FROM
                        | EventMask::DELETE
                        | EventMask::Q_OVERFLOW,
                ) {
                    dir_event = true;
                }
                if m.intersects(EventMask::IGNORED | EventMask::DELETE_SELF | EventMask::MOVE_SELF)
                {
                    // The directory went away: forget the watch, re-add it when it is back.
                    dir_event = true;
                    let id = ev.wd.get_watch_descriptor_id();
                    if let Some(d) = self.by_wd.remove(&id)
                        && let Some(wd) = self.dirs.remove(&d)
                        && !m.contains(EventMask::IGNORED)
                    {
                        let _ = self.inotify.watches().remove(wd);
                    }
                }
            }
            if !any {
                return Ok(dir_event);
            }
        }
    }

    fn wait(&self, timeout: Duration) -> Result<bool, SourceError> {
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let mut pfd = libc::pollfd {
            fd: self.inotify.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is a valid, initialised pollfd and we pass a count of exactly one;
        // the descriptor stays open for the duration of the call (borrowed from `self`).
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(SourceError::Inotify {
                path: PathBuf::from("inotify"),
                source: e,
            });
        }
        Ok(r > 0)
    }
}
