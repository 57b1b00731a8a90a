//! One journalctl child shared by the jails that read the same journal (see the module
//! documentation of [`crate::journal`]).

use std::cmp::Ordering;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use super::cursor::{self, Cursor};
use super::export::{Entry, ExportParser};
use super::format::{Formatted, format_entry};
use super::{FileId, JournalMatch, JournalNotice, JournalSelection, Start};

/// Bytes read from the child per pump.
const READ_BUDGET: usize = 1 << 20;
/// No more is read while some jail has this many entries queued (the child then waits on the
/// full pipe).
const QUEUE_CAP: usize = 20_000;
/// Pause before a child that ended is started again.
const RESTART_DELAY: Duration = Duration::from_secs(2);
/// How often the selection's journal files are listed again (to see rotations).
const FILES_CHECK: Duration = Duration::from_secs(2);
/// Time the old child gets to finish a rotated file before the reader moves to the new set.
const ROTATION_GRACE: Duration = Duration::from_millis(500);
/// A child silent this long while the journal files changed since it last wrote is restarted
/// at the last entry read (the silence allowed doubles after each such restart that brings
/// nothing, up to [`QUIET_MAX`]; output resets it).
const QUIET_BASE: Duration = Duration::from_secs(5);
const QUIET_MAX: Duration = Duration::from_secs(300);
/// A file changed this long before the child's last output may hold an entry the child missed.
const QUIET_MARGIN: Duration = Duration::from_secs(1);
/// Longest error output kept from a child.
const STDERR_CAP: usize = 4096;

/// An entry (or a run of entries this jail does not want, by their last cursor) queued for a jail.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub entry: Option<Arc<Formatted>>,
    pub cursor: Arc<str>,
    /// Reading this item brings the jail up to the entry that was last when the reader started.
    pub caught_up: bool,
}

struct Sub {
    id: u64,
    /// `None`: every entry the child gives (its matches are exactly this jail's).
    matches: Option<JournalMatch>,
    start: Start,
    /// Cursor of the last entry queued.
    pos: Option<Arc<str>>,
    /// Entries up to the start position are skipped until one after it is seen.
    passed: bool,
    queue: VecDeque<Item>,
    /// A queued item carries the caught-up mark, or the jail was caught up directly.
    caught_marked: bool,
    caught_now: bool,
    notices: Vec<JournalNotice>,
    epoll: RawFd,
    event: RawFd,
}

enum Tail {
    /// Nothing asked yet.
    Unknown,
    /// `journalctl -n 1` is running.
    Pending {
        child: Child,
        out: ChildStdout,
        buf: Vec<u8>,
    },
    /// The last entry when the reader started (`None`: the journal selection was empty).
    Known(Option<String>),
}

struct Reader {
    child: Child,
    out: ChildStdout,
    err: ChildStderr,
    err_buf: Vec<u8>,
    /// The last read found the pipe empty.
    drained: bool,
    /// When the child started or last wrote something.
    active: Instant,
    active_wall: SystemTime,
}

pub(crate) struct Hub {
    selection: JournalSelection,
    /// Matches of an exclusive hub (not testable here), given to the child as they are.
    exclusive: Option<JournalMatch>,
    journalctl: PathBuf,
    subs: Vec<Sub>,
    next_id: u64,
    reader: Option<Reader>,
    tail: Tail,
    parser: ExportParser,
    restart: bool,
    retry_at: Option<Instant>,
    /// The explicit files the child reads, when the selection names files.
    files: Option<Vec<FileId>>,
    /// Every journal file of the selection when the child started.
    watched: Vec<FileId>,
    next_files_check: Instant,
    /// When a change of the watched files was seen.
    files_changed: Option<Instant>,
    /// How long the child may stay silent while the files change (see [`QUIET_BASE`]).
    quiet_limit: Duration,
}

type Registry = Mutex<Vec<(JournalSelection, Option<JournalMatch>, Weak<Mutex<Hub>>)>>;
static HUBS: Registry = Mutex::new(Vec::new());

/// The hub for `selection` (and, when `matches` cannot be tested in-process, for those matches).
pub(crate) fn join(
    selection: &JournalSelection,
    matches: &JournalMatch,
    journalctl: PathBuf,
) -> Arc<Mutex<Hub>> {
    let exclusive = (!matches.is_evaluable()).then(|| matches.clone());
    let mut reg = HUBS.lock().unwrap_or_else(|e| e.into_inner());
    reg.retain(|(_, _, w)| w.strong_count() > 0);
    for (s, x, w) in reg.iter() {
        if s == selection
            && *x == exclusive
            && let Some(h) = w.upgrade()
        {
            return h;
        }
    }
    let hub = Arc::new(Mutex::new(Hub {
        selection: selection.clone(),
        exclusive: exclusive.clone(),
        journalctl,
        subs: Vec::new(),
        next_id: 1,
        reader: None,
        tail: Tail::Unknown,
        parser: ExportParser::new(),
        restart: true,
        retry_at: None,
        files: None,
        watched: Vec::new(),
        next_files_check: Instant::now(),
        files_changed: None,
        quiet_limit: QUIET_BASE,
    }));
    reg.push((selection.clone(), exclusive, Arc::downgrade(&hub)));
    hub
}

/// A jail's wake-up descriptors: an epoll (what the daemon waits on) holding an eventfd.
pub(crate) fn wake_fds() -> io::Result<(OwnedFd, OwnedFd)> {
    // SAFETY: plain syscalls; each returned descriptor is checked and owned right away.
    unsafe {
        let ep = libc::epoll_create1(libc::EPOLL_CLOEXEC);
        if ep < 0 {
            return Err(io::Error::last_os_error());
        }
        let ep = OwnedFd::from_raw_fd(ep);
        let ev = libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK);
        if ev < 0 {
            return Err(io::Error::last_os_error());
        }
        let ev = OwnedFd::from_raw_fd(ev);
        epoll_add(ep.as_raw_fd(), ev.as_raw_fd())?;
        Ok((ep, ev))
    }
}

fn epoll_add(ep: RawFd, fd: RawFd) -> io::Result<()> {
    let mut e = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: fd as u64,
    };
    // SAFETY: both descriptors are open; the event struct lives across the call.
    if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut e) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn epoll_del(ep: RawFd, fd: RawFd) {
    // SAFETY: removing an interest; harmless if it is not registered.
    unsafe {
        libc::epoll_ctl(ep, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut());
    }
}

fn signal(event: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64 to an eventfd we registered.
    unsafe {
        libc::write(event, (&one as *const u64).cast(), 8);
    }
}

/// Resets an eventfd.
pub(crate) fn drain_eventfd(event: &OwnedFd) {
    let mut v: u64 = 0;
    // SAFETY: reads 8 bytes into a live u64 from a non-blocking eventfd.
    unsafe {
        libc::read(event.as_raw_fd(), (&mut v as *mut u64).cast(), 8);
    }
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl < 0 || libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn command(journalctl: &PathBuf, args: &[String]) -> Command {
    let mut cmd = Command::new(journalctl);
    cmd.args(args)
        .stdin(Stdio::null())
        .env("SYSTEMD_PAGER", "")
        .env("SYSTEMD_COLORS", "0");
    // SAFETY: prctl is async-signal-safe; it makes the child die with the thread that
    // started it, so a daemon killed with SIGKILL leaves no journalctl behind.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd
}

fn kill(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop_children();
    }
}

impl Hub {
    pub(crate) fn subscribe(
        &mut self,
        matches: &JournalMatch,
        start: Start,
        epoll: &OwnedFd,
        event: &OwnedFd,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let sub = Sub {
            id,
            matches: self.exclusive.is_none().then(|| matches.clone()),
            start,
            pos: None,
            passed: false,
            queue: VecDeque::new(),
            caught_marked: false,
            caught_now: false,
            notices: Vec::new(),
            epoll: epoll.as_fd().as_raw_fd(),
            event: event.as_fd().as_raw_fd(),
        };
        if let Some(r) = &self.reader {
            let _ = epoll_add(sub.epoll, r.out.as_raw_fd());
        }
        if let Tail::Pending { out, .. } = &self.tail {
            let _ = epoll_add(sub.epoll, out.as_raw_fd());
        }
        self.subs.push(sub);
        // The new jail needs its own backlog and its match in the child's.
        self.restart = true;
        signal(event.as_raw_fd());
        id
    }

    pub(crate) fn set_start(&mut self, id: u64, start: Start) {
        if let Some(s) = self.subs.iter_mut().find(|s| s.id == id) {
            s.start = start;
            s.pos = None;
            s.queue.clear();
            s.passed = false;
            s.caught_marked = false;
            s.caught_now = false;
            self.restart = true;
        }
    }

    pub(crate) fn unsubscribe(&mut self, id: u64) {
        if let Some(i) = self.subs.iter().position(|s| s.id == id) {
            let s = self.subs.remove(i);
            if let Some(r) = &self.reader {
                epoll_del(s.epoll, r.out.as_raw_fd());
            }
            if let Tail::Pending { out, .. } = &self.tail {
                epoll_del(s.epoll, out.as_raw_fd());
            }
        }
        if self.subs.is_empty() {
            self.stop_children();
        }
    }

    pub(crate) fn reader_pid(&self) -> Option<u32> {
        self.reader.as_ref().map(|r| r.child.id())
    }

    pub(crate) fn caught_up_now(&mut self, id: u64) -> bool {
        self.subs
            .iter()
            .find(|s| s.id == id)
            .is_some_and(|s| s.caught_now && s.queue.is_empty())
    }

    /// Takes up to `budget` queued items of jail `id`, whether more are queued, and its notices.
    pub(crate) fn take(&mut self, id: u64, budget: usize) -> (Vec<Item>, bool, Vec<JournalNotice>) {
        let Some(s) = self.subs.iter_mut().find(|s| s.id == id) else {
            return (Vec::new(), false, Vec::new());
        };
        let n = budget.min(s.queue.len());
        let items: Vec<Item> = s.queue.drain(..n).collect();
        (items, !s.queue.is_empty(), std::mem::take(&mut s.notices))
    }

    fn notify_all(&mut self, n: JournalNotice) {
        for s in &mut self.subs {
            s.notices.push(n.clone());
            signal(s.event);
        }
    }

    fn stop_children(&mut self) {
        if let Some(r) = self.reader.take() {
            for s in &self.subs {
                epoll_del(s.epoll, r.out.as_raw_fd());
            }
            kill(r.child);
        }
        if let Tail::Pending { child, out, .. } = std::mem::replace(&mut self.tail, Tail::Unknown) {
            for s in &self.subs {
                epoll_del(s.epoll, out.as_raw_fd());
            }
            kill(child);
        }
    }

    /// Does the reader's work: (re)starts the child when needed, reads its output and queues
    /// entries for the jails.
    pub(crate) fn pump(&mut self) {
        if self.subs.is_empty() {
            return;
        }
        self.check_files();
        if self.restart
            || (self.reader.is_none() && self.retry_at.is_none_or(|t| Instant::now() >= t))
        {
            self.spawn();
        }
        self.read_tail();
        self.read_stderr();
        let mut budget = READ_BUDGET;
        let mut buf = [0u8; 1 << 16];
        while budget > 0 {
            if self.subs.iter().any(|s| s.queue.len() >= QUEUE_CAP) {
                break;
            }
            let Some(r) = self.reader.as_mut() else { break };
            match r.out.read(&mut buf) {
                Ok(0) => {
                    self.reader_ended();
                    break;
                }
                Ok(n) => {
                    r.drained = false;
                    r.active = Instant::now();
                    r.active_wall = SystemTime::now();
                    budget = budget.saturating_sub(n);
                    self.parser.push(&buf[..n]);
                    self.dispatch_parsed();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    r.drained = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.notify_all(JournalNotice::Error(format!("reading journalctl: {e}")));
                    self.reader_ended();
                    break;
                }
            }
        }
        // The files were rotated (or vacuumed): once the old child's output is drained, continue
        // after the last entry read, in the new set. The new child reads a rotated explicit file
        // under its new name too, so what the old child had not read yet is not lost.
        if let Some(at) = self.files_changed
            && Instant::now() >= at + ROTATION_GRACE
            && self.reader.as_ref().is_none_or(|r| r.drained)
        {
            self.spawn();
        }
    }

    fn check_files(&mut self) {
        if self.reader.is_none() || Instant::now() < self.next_files_check {
            return;
        }
        self.next_files_check = Instant::now() + FILES_CHECK;
        let Ok(r) = self.selection.resolve() else {
            return;
        };
        if r.watched != self.watched {
            if self.files_changed.is_none() {
                self.files_changed = Some(Instant::now());
                self.notify_all(JournalNotice::FilesChanged);
            }
            return;
        }
        // journalctl -f can miss a wake-up (seen with systemd 252 under load: the last entries
        // written stay undelivered until something else is written). A child silent while the
        // files changed around or after its last output is restarted at the last entry read.
        let Some(reader) = self.reader.as_ref().filter(|r| r.drained) else {
            return;
        };
        let silent = reader.active.elapsed();
        if silent < self.quiet_limit {
            return;
        }
        let since = reader.active_wall - QUIET_MARGIN;
        let changed = r.watched.iter().any(|f| {
            std::fs::metadata(&f.path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since)
        });
        if changed {
            self.notify_all(JournalNotice::Quiet {
                secs: silent.as_secs(),
            });
            self.quiet_limit = (self.quiet_limit * 2).min(QUIET_MAX);
            self.restart = true;
        }
    }

    fn reader_ended(&mut self) {
        let Some(mut r) = self.reader.take() else {
            return;
        };
        for s in &self.subs {
            epoll_del(s.epoll, r.out.as_raw_fd());
        }
        let _ = r.err.read_to_end(&mut r.err_buf);
        let status = match r.child.try_wait() {
            Ok(Some(st)) => st.to_string(),
            _ => {
                let _ = r.child.kill();
                r.child
                    .wait()
                    .map(|s| s.to_string())
                    .unwrap_or_else(|e| e.to_string())
            }
        };
        let err = String::from_utf8_lossy(&r.err_buf).trim().to_string();
        let status = if err.is_empty() {
            status
        } else {
            format!("{status}: {err}")
        };
        self.notify_all(JournalNotice::Exited { status });
        self.retry_at = Some(Instant::now() + RESTART_DELAY);
    }

    fn read_stderr(&mut self) {
        let Some(r) = self.reader.as_mut() else {
            return;
        };
        let mut buf = [0u8; 1024];
        let mut lines = Vec::new();
        loop {
            match r.err.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if r.err_buf.len() < STDERR_CAP {
                        r.err_buf.extend_from_slice(&buf[..n]);
                    }
                    while let Some(i) = r.err_buf.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = r.err_buf.drain(..=i).collect();
                        let text = String::from_utf8_lossy(&line).trim().to_string();
                        if !text.is_empty() {
                            lines.push(text);
                        }
                    }
                }
                Err(_) => break,
            }
        }
        for l in lines {
            self.notify_all(JournalNotice::Stderr(l));
        }
    }

    /// Where the child starts: at the oldest position of the jails. `--cursor` (inclusive), not
    /// `--after-cursor`: journalctl's "after" skips one entry blindly, which loses an entry when
    /// the cursor's own entry is gone (vacuumed, or in a file no longer read); the jails skip
    /// the cursor's entry themselves.
    fn start_args(&self) -> Vec<String> {
        let points: Vec<Start> = self
            .subs
            .iter()
            .map(|s| match &s.pos {
                Some(c) => Start::AfterCursor(c.to_string()),
                None => s.start.clone(),
            })
            .collect();
        let cursors: Vec<&str> = points
            .iter()
            .filter_map(|p| match p {
                Start::AfterCursor(c) => Some(c.as_str()),
                Start::Since(_) => None,
            })
            .collect();
        if cursors.len() == points.len() {
            if cursors.iter().all(|c| *c == cursors[0]) {
                return vec![format!("--cursor={}", cursors[0])];
            }
            let parsed: Option<Vec<Cursor>> = cursors.iter().map(|c| Cursor::parse(c)).collect();
            if let Some(p) = parsed
                && p.iter().all(|c| c.seqnum_id == p[0].seqnum_id)
                && let Some(i) = (0..p.len()).min_by_key(|&i| p[i].seqnum)
            {
                return vec![format!("--cursor={}", cursors[i])];
            }
        }
        let since = points
            .iter()
            .map(|p| match p {
                Start::AfterCursor(c) => Cursor::parse(c).map_or(0, |c| c.realtime),
                Start::Since(t) => *t,
            })
            .min()
            .unwrap_or(0);
        vec![format!("--since=@{}", since / 1_000_000)]
    }

    fn match_args(&self) -> Vec<String> {
        let m = match &self.exclusive {
            Some(m) => m.clone(),
            None => JournalMatch::union(self.subs.iter().filter_map(|s| s.matches.as_ref())),
        };
        let mut out = vec!["--".to_string()];
        out.extend(m.args());
        out
    }

    fn spawn(&mut self) {
        self.restart = false;
        let rotated = self.files_changed.take().is_some();
        self.retry_at = None;
        self.stop_children();
        let resolved = match self.selection.resolve() {
            Ok(r) => r,
            Err(e) => {
                self.notify_all(JournalNotice::Error(e.to_string()));
                self.retry_at = Some(Instant::now() + RESTART_DELAY);
                return;
            }
        };
        // Explicit files the old child read that were renamed since (rotated): read on from
        // the cursor in them too.
        let renamed: Vec<String> = match (&self.files, &resolved.files) {
            (Some(old), Some(new)) if rotated => renamed_files(old, new)
                .iter()
                .map(|p| format!("--file={}", p.display()))
                .collect(),
            _ => Vec::new(),
        };
        self.files = resolved.files.clone();
        self.watched = resolved.watched.clone();
        self.next_files_check = Instant::now() + FILES_CHECK;
        if resolved.files.as_ref().is_some_and(Vec::is_empty) {
            self.notify_all(JournalNotice::NoFiles);
            self.retry_at = Some(Instant::now() + RESTART_DELAY);
            return;
        }
        let mut args: Vec<String> = vec![
            "--no-pager".into(),
            "--follow".into(),
            "--no-tail".into(),
            "--output=export".into(),
        ];
        args.extend(renamed);
        args.extend(resolved.args.iter().cloned());
        args.extend(self.start_args());
        args.extend(self.match_args());
        let shown = format!("{} {}", self.journalctl.display(), args.join(" "));
        let child = command(&self.journalctl, &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                self.notify_all(JournalNotice::Error(format!("{shown}: {e}")));
                self.retry_at = Some(Instant::now() + RESTART_DELAY);
                return;
            }
        };
        let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
            kill(child);
            return;
        };
        let _ = set_nonblocking(out.as_raw_fd());
        let _ = set_nonblocking(err.as_raw_fd());
        for s in &mut self.subs {
            let _ = epoll_add(s.epoll, out.as_raw_fd());
            s.passed = false;
        }
        self.parser.reset();
        self.reader = Some(Reader {
            child,
            out,
            err,
            err_buf: Vec::new(),
            drained: false,
            active: Instant::now(),
            active_wall: SystemTime::now(),
        });
        self.notify_all(JournalNotice::Started { command: shown });
        self.start_tail(&resolved.args);
    }

    /// Asks journalctl for the last entry now (`-n 1`), to tell when the jails caught up.
    fn start_tail(&mut self, selection_args: &[String]) {
        if self.subs.iter().all(|s| s.caught_marked) {
            return;
        }
        let mut args: Vec<String> = vec![
            "--no-pager".into(),
            "--lines=1".into(),
            "--output=export".into(),
            "--output-fields=_BOOT_ID".into(),
        ];
        args.extend(selection_args.iter().cloned());
        args.extend(self.match_args());
        let spawned = command(&self.journalctl, &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            Ok(mut child) => {
                let Some(out) = child.stdout.take() else {
                    kill(child);
                    self.tail_known(None);
                    return;
                };
                let _ = set_nonblocking(out.as_raw_fd());
                for s in &self.subs {
                    let _ = epoll_add(s.epoll, out.as_raw_fd());
                }
                self.tail = Tail::Pending {
                    child,
                    out,
                    buf: Vec::new(),
                };
            }
            Err(e) => {
                self.notify_all(JournalNotice::Error(format!(
                    "journalctl --lines=1: {e}; taking every jail as caught up"
                )));
                self.tail_known(None);
            }
        }
    }

    fn read_tail(&mut self) {
        let Tail::Pending { out, buf, .. } = &mut self.tail else {
            return;
        };
        let mut chunk = [0u8; 4096];
        let done = loop {
            match out.read(&mut chunk) {
                Ok(0) => break true,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                Err(_) => break true,
            }
        };
        if !done {
            return;
        }
        let Tail::Pending { child, out, buf } = std::mem::replace(&mut self.tail, Tail::Unknown)
        else {
            return;
        };
        for s in &self.subs {
            epoll_del(s.epoll, out.as_raw_fd());
        }
        kill(child);
        let mut p = ExportParser::new();
        p.push(&buf);
        p.push(b"\n");
        let mut last = None;
        while let Some(e) = p.next_entry() {
            if let Some(c) = e.get("__CURSOR") {
                last = Some(String::from_utf8_lossy(c).into_owned());
            }
        }
        self.tail_known(last);
    }

    /// The tail is known: jails already at or past it are caught up.
    fn tail_known(&mut self, tail: Option<String>) {
        for s in &mut self.subs {
            if s.caught_marked {
                continue;
            }
            let reached = match &tail {
                None => true,
                Some(t) => {
                    let at = |c: &str| {
                        c == t.as_str() || cursor::order(c, t).is_some_and(|o| o != Ordering::Less)
                    };
                    match (&s.pos, &s.start) {
                        (Some(p), _) => at(p),
                        (None, Start::AfterCursor(c)) => at(c),
                        (None, Start::Since(since)) => {
                            Cursor::parse(t).is_some_and(|c| c.realtime < *since)
                        }
                    }
                }
            };
            if reached {
                s.caught_marked = true;
                match s.queue.back_mut() {
                    Some(last) => last.caught_up = true,
                    None => s.caught_now = true,
                }
                signal(s.event);
            }
        }
        self.tail = Tail::Known(tail);
    }

    fn dispatch_parsed(&mut self) {
        while let Some(entry) = self.parser.next_entry() {
            let Some(c) = entry.get("__CURSOR") else {
                continue;
            };
            let cursor: Arc<str> = Arc::from(String::from_utf8_lossy(c).as_ref());
            let realtime = entry
                .get("__REALTIME_TIMESTAMP")
                .and_then(|v| std::str::from_utf8(v).ok()?.parse::<u64>().ok())
                .unwrap_or(0);
            let tail = match &self.tail {
                Tail::Known(t) => Some(t.as_deref()),
                _ => None,
            };
            // Only a new entry resets the silence allowed: a restarted child first repeats the
            // entry at its cursor, which every jail skips.
            if dispatch(&mut self.subs, entry, &cursor, realtime, tail) {
                self.quiet_limit = QUIET_BASE;
            }
        }
    }
}

/// Files of `old` that are no longer at their path (same device and inode), found under a new
/// name in the same directory and not part of `new`.
fn renamed_files(old: &[FileId], new: &[FileId]) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    for f in old {
        if new.iter().any(|n| n.dev == f.dev && n.ino == f.ino) {
            continue;
        }
        let Some(dir) = f.path.parent() else { continue };
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in rd.flatten() {
            if let Ok(m) = e.metadata()
                && m.is_file()
                && m.dev() == f.dev
                && m.ino() == f.ino
            {
                out.push(e.path());
                break;
            }
        }
    }
    out
}

/// Queues one entry for every jail that is past its start position; whether any was.
fn dispatch(
    subs: &mut [Sub],
    entry: &Entry,
    cursor: &Arc<str>,
    realtime: u64,
    tail: Option<Option<&str>>,
) -> bool {
    let mut formatted: Option<Option<Arc<Formatted>>> = None;
    let mut taken = false;
    for s in subs.iter_mut() {
        if !s.passed {
            let point = match &s.pos {
                Some(p) => Start::AfterCursor(p.to_string()),
                None => s.start.clone(),
            };
            let skip = match &point {
                Start::AfterCursor(c) if **c == **cursor => {
                    s.passed = true;
                    true
                }
                Start::AfterCursor(c) => {
                    cursor::order(cursor, c).is_some_and(|o| o != Ordering::Greater)
                }
                Start::Since(t) => realtime < *t,
            };
            if skip {
                continue;
            }
            s.passed = true;
        }
        let caught = !s.caught_marked
            && match tail {
                Some(None) => true,
                Some(Some(t)) => {
                    t == &**cursor || cursor::order(cursor, t).is_some_and(|o| o != Ordering::Less)
                }
                None => false,
            };
        if caught {
            s.caught_marked = true;
        }
        let wanted = s.matches.as_ref().is_none_or(|m| m.accepts(entry));
        let was_empty = s.queue.is_empty();
        if wanted {
            let f = formatted
                .get_or_insert_with(|| format_entry(entry).map(Arc::new))
                .clone();
            s.queue.push_back(Item {
                entry: f,
                cursor: cursor.clone(),
                caught_up: caught,
            });
        } else {
            match s.queue.back_mut() {
                Some(last) if last.entry.is_none() => {
                    last.cursor = cursor.clone();
                    last.caught_up |= caught;
                }
                _ => s.queue.push_back(Item {
                    entry: None,
                    cursor: cursor.clone(),
                    caught_up: caught,
                }),
            }
        }
        s.pos = Some(cursor.clone());
        taken = true;
        if was_empty {
            signal(s.event);
        }
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(p: &std::path::Path) -> FileId {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(p).unwrap();
        FileId {
            path: p.to_path_buf(),
            dev: m.dev(),
            ino: m.ino(),
        }
    }

    #[test]
    fn a_rotated_file_is_found_under_its_new_name() {
        let d = tempfile::tempdir().unwrap();
        let active = d.path().join("system.journal");
        let other = d.path().join("user-1000.journal");
        std::fs::write(&active, b"a").unwrap();
        std::fs::write(&other, b"b").unwrap();
        let old = vec![id(&active), id(&other)];
        let archived = d.path().join("system@0001-0002.journal");
        std::fs::rename(&active, &archived).unwrap();
        std::fs::write(&active, b"new").unwrap();
        let new = vec![id(&active), id(&other)];
        assert_eq!(renamed_files(&old, &new), vec![archived.clone()]);
        // Not rotated: nothing to add.
        assert!(renamed_files(&new, &new).is_empty());
        // Deleted rather than renamed: nothing to add.
        std::fs::remove_file(&archived).unwrap();
        assert!(renamed_files(&old, &new).is_empty());
    }
}
