//! One reader for the jails that follow the same log files.
//!
//! Jails whose file source is built from the same settings (`logpath` entries with head/tail,
//! `backend`, `logencoding`) and that start from the same stored positions share one
//! [`LogSource`]: each file is read, decoded and split into lines once, and the lines of each
//! read slice go to each of those jails in turn (in configuration order, every jail the whole
//! slice in file order: its filter's tables stay in the caches). Among them, jails with the same
//! date settings (`datepattern`, `logtimezone`: [`Jail::date_key`](super::jail::Jail::date_key))
//! get one date detection per line, made by the first of them over the slice.
//!
//! What stays per jail:
//! - **Membership** is holding the reader ([`JailSource::Shared`]); nothing else lists members.
//!   A jail leaves by getting another source: `stop`, `reload` with changed source settings,
//!   `addlogpath`/`dellogpath`/`logencoding` (they build the jail its own source at the shared
//!   positions), and `idle on` (see below). The others read on undisturbed.
//! - **Positions**: every member stores the shared positions under its own name; they are the
//!   positions of the lines it was given.
//! - **Start**: a jail joins only a reader that has not read yet and whose jails start from the
//!   same stored positions as it does (a fresh daemon, all of them saved together at the last
//!   stop, or none stored). A jail with other stored positions, or one started while the others
//!   already read (`start`, `reload` adding it), reads alone: its own start (tail, head,
//!   restored position) is honoured exactly.
//! - **`idle on`**: the jail leaves at the next read with its own source at the shared
//!   positions, so `idle off` resumes where its reading stopped; it reads alone from then on.
//! - **Rotation** is detected once, by the shared source; each member logs the notices.
//! - **Slicing**: the first member that is not idle reads ([`INGEST_SLICE_BYTES`] per file
//!   and poll, as a jail alone) and hands the lines to all; the others' source tasks find
//!   nothing to do. One read slice of the reader costs what one slice of each member cost
//!   before, so the control socket waits no longer between slices than it did.
//!
//! [`INGEST_SLICE_BYTES`]: super::server::INGEST_SLICE_BYTES

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use ferroban_bans::LogPosition;
use ferroban_config::{JailDef, LogPath};
use ferroban_date::DateHit;
use ferroban_source::LogSource;

use super::journal::JailSource;
use super::server::State;
use crate::flog;

/// A file source shared by the jails holding it.
pub type SharedSource = Rc<RefCell<SharedFiles>>;

/// The settings a file source is built from: jails with equal keys can share one.
#[derive(Debug, Clone, PartialEq)]
struct SourceKey {
    logpath: Vec<LogPath>,
    backend: String,
    logencoding: Option<String>,
}

impl SourceKey {
    fn of(def: &JailDef) -> Self {
        SourceKey {
            logpath: def.logpath.clone(),
            backend: def.backend.clone(),
            logencoding: def.logencoding.clone(),
        }
    }
}

/// A shared file source (see the module documentation).
pub struct SharedFiles {
    key: SourceKey,
    /// The stored positions its jails started from.
    started_at: Vec<LogPosition>,
    /// It has read: no jail joins any more.
    polled: bool,
    /// The reader.
    pub source: LogSource,
    /// The lines of one read, kept between reads for its buffers.
    batch: Batch,
}

/// The lines of one read (one slice of each file), handed to the jails one jail at a time:
/// each filter and date detector then runs over the whole slice while its tables are in the
/// caches, instead of five of them taking turns on every line.
#[derive(Default)]
struct Batch {
    /// The lines' text, one after the other.
    text: String,
    /// Each line's range in `text`.
    spans: Vec<(usize, usize)>,
    /// The file of the lines from each index on.
    paths: Vec<(usize, PathBuf)>,
    /// The date found in each line, per date class (class-major).
    hits: Vec<Option<DateHit>>,
}

impl Batch {
    fn clear(&mut self) {
        self.text.clear();
        self.spans.clear();
        self.paths.clear();
        self.hits.clear();
    }

    fn push(&mut self, path: &Path, text: &str) {
        // Bytes, not components: the same follower's path every time but at a file change.
        if self
            .paths
            .last()
            .is_none_or(|(_, p)| p.as_os_str() != path.as_os_str())
        {
            self.paths.push((self.spans.len(), path.to_path_buf()));
        }
        let start = self.text.len();
        self.text.push_str(text);
        self.spans.push((start, self.text.len()));
    }

    fn line(&self, i: usize) -> &str {
        let (a, b) = self.spans[i];
        &self.text[a..b]
    }
}

/// The source jail `def` reads with: `source` (its own, positions restored) shared, or the
/// not yet read shared source of an earlier jail with the same settings and stored positions.
pub fn share(st: &State, def: &JailDef, source: JailSource) -> JailSource {
    let JailSource::Files(own) = source else {
        return source;
    };
    let key = SourceKey::of(def);
    let started_at = match &st.store {
        Some(store) => store.positions(&def.name).unwrap_or_default(),
        None => Vec::new(),
    };
    for rt in &st.jails {
        if let JailSource::Shared(s) = &rt.source {
            let b = s.borrow();
            if !b.polled && b.key == key && b.started_at == started_at {
                flog!(
                    Info,
                    "filter",
                    "[{}] Reads its log files with jail '{}' (one reader)",
                    def.name,
                    rt.jail.name()
                );
                return JailSource::Shared(s.clone());
            }
        }
    }
    JailSource::Shared(Rc::new(RefCell::new(SharedFiles {
        key,
        started_at,
        polled: false,
        source: own,
        batch: Batch::default(),
    })))
}

/// Jail `idx` leaves `shared` with a source of its own that starts at the shared positions.
fn detach(st: &mut State, idx: usize, shared: &SharedSource) {
    let def = st.jails[idx].jail.def().clone();
    match super::server::source_any(&def) {
        Ok(JailSource::Files(mut own)) => {
            own.restore(shared.borrow().source.positions());
            st.jails[idx].source = JailSource::Files(own);
        }
        Ok(other) => st.jails[idx].source = other,
        // Cannot happen with settings that built the shared source; it stays a member then.
        Err(e) => flog!(Error, "filter", "[{}] {e}", def.name),
    }
}

/// Reads `shared` for its jails when jail `idx` is the one that reads it (the first member not
/// idle); returns whether more is pending. Idle members leave first.
pub fn poll(st: &mut State, idx: usize, shared: &SharedSource) -> bool {
    let holds = |src: &JailSource| matches!(src, JailSource::Shared(s) if Rc::ptr_eq(s, shared));
    let idle: Vec<usize> = (0..st.jails.len())
        .filter(|&i| holds(&st.jails[i].source) && st.jails[i].idle)
        .collect();
    for i in idle {
        detach(st, i, shared);
    }
    let members: Vec<usize> = (0..st.jails.len())
        .filter(|&i| holds(&st.jails[i].source))
        .collect();
    if members.first() != Some(&idx) {
        return false;
    }
    shared.borrow_mut().polled = true;
    // The Found/Ban lines of this read: one write at its end.
    let _lines = super::log::Batch::begin();
    let now = st.clock.now();
    let read_at = std::time::Instant::now();
    let n = members.len();
    let failed_before: Vec<u64> = members
        .iter()
        .map(|&i| st.jails[i].jail.counts().total_failed)
        .collect();
    let mut counts: Vec<crate::metrics::hooks::ReadCounts> =
        (0..n).map(|_| Default::default()).collect();
    let mut events: Vec<Vec<super::jail::Event>> = (0..n).map(|_| Vec::new()).collect();
    // Date classes: the first member of each detects, the class's members get its hit.
    let mut detectors: Vec<usize> = Vec::new();
    let mut class_of: Vec<usize> = Vec::with_capacity(n);
    for &i in &members {
        let key = st.jails[i].jail.date_key();
        match detectors
            .iter()
            .position(|&d| st.jails[d].jail.date_key() == key)
        {
            Some(c) => class_of.push(c),
            None => {
                class_of.push(detectors.len());
                detectors.push(i);
            }
        }
    }
    if let Some(s) = st.store.as_mut() {
        // The bans and positions of this read, of every member: one transaction.
        s.begin_batch();
    }
    let report = {
        let State { jails, store, .. } = &mut *st;
        let mut store = store.as_mut();
        let mut guard = shared.borrow_mut();
        let SharedFiles { source, batch, .. } = &mut *guard;
        batch.clear();
        let report = source.poll(&mut |line| batch.push(line.path, line.text));
        let lines = batch.spans.len();
        for &d in &detectors {
            let jail = &mut jails[d].jail;
            for l in 0..lines {
                let hit = jail.detect_date(batch.line(l), now);
                batch.hits.push(hit);
            }
        }
        for (k, &i) in members.iter().enumerate() {
            let jail = &mut jails[i].jail;
            let hits = &batch.hits[class_of[k] * lines..][..lines];
            let mut file = 0;
            for (l, &hit) in hits.iter().enumerate() {
                while batch
                    .paths
                    .get(file + 1)
                    .is_some_and(|&(from, _)| from <= l)
                {
                    file += 1;
                }
                let before = jail.line_stats();
                let text = batch.line(l);
                events[k].extend(jail.process_line_dated(text, hit, now, store.as_deref_mut()));
                counts[k].line(&batch.paths[file].1, before, jail.line_stats());
            }
        }
        report
    };
    let more = match report {
        Ok(r) => {
            for notice in &r.notices {
                for &i in &members {
                    super::server::log_notice(st.jails[i].jail.name(), notice);
                }
            }
            r.more
        }
        Err(e) => {
            for &i in &members {
                flog!(Error, "filter", "[{}] {e}", st.jails[i].jail.name());
            }
            false
        }
    };
    for (k, &i) in members.iter().enumerate() {
        let c = std::mem::take(&mut counts[k]);
        st.read_done(i, c, &events[k], failed_before[k], now, read_at, more);
    }
    st.end_store_batch();
    for (k, &i) in members.iter().enumerate() {
        st.read_dispatched(i, std::mem::take(&mut events[k]), now);
    }
    more
}

/// The jails that read with jail `idx` (itself included when it reads alone).
pub fn readers_with(st: &State, idx: usize) -> Vec<usize> {
    match &st.jails[idx].source {
        JailSource::Shared(shared) => (0..st.jails.len())
            .filter(
                |&i| matches!(&st.jails[i].source, JailSource::Shared(s) if Rc::ptr_eq(s, shared)),
            )
            .collect(),
        _ => vec![idx],
    }
}
