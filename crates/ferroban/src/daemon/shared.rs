//! One reader for the jails that follow the same log files.
//!
//! Jails whose file source is built from the same settings (`logpath` entries with head/tail,
//! `backend`, `logencoding`) and that start from the same stored positions share one
//! [`LogSource`]: each file is read, decoded and split into lines once, and the lines of each
//! read slice go to each of those jails in turn (in configuration order, every jail the whole
//! slice in file order: its filter's tables stay in the caches). The reader detects each line's
//! date once per date class (jails with equal `datepattern`, `logtimezone`:
//! [`Jail::date_key`](super::jail::Jail::date_key)): with its own jail for its class, with a
//! detector the first jail of each other class brought when it joined for that class.
//!
//! What stays per jail:
//! - **Membership**: the reader lists its jails by name (configuration order); a jail leaves by
//!   getting another source: `stop`, `reload` with changed source settings,
//!   `addlogpath`/`dellogpath`/`logencoding` (they build the jail its own source at the
//!   positions of the lines it was given), and `idle on` (see below). The others read on
//!   undisturbed.
//! - **Ownership**: each jail's state is its own task's ([`super::jailtask`]). The first member
//!   reads a slice and matches it; every other member gets the read as a message
//!   ([`SharedRead`]: the lines, their dates per date class, the positions after the read) and
//!   matches it on its own task, in the order read.
//! - **Positions**: every member stores, under its own name, the positions after the last read
//!   it was given.
//! - **Start**: a jail joins only a reader that has not read yet and whose jails start from the
//!   same stored positions as it does (a fresh daemon, all of them saved together at the last
//!   stop, or none stored). A jail with other stored positions, or one started while the others
//!   already read (`start`, `reload` adding it), reads alone: its own start (tail, head,
//!   restored position) is honoured exactly.
//! - **`idle on`**: the jail leaves at once with its own source at the positions of the lines it
//!   was given, so `idle off` resumes where its reading stopped; it reads alone from then on.
//! - **Rotation** is detected once, by the shared source; each member logs the notices.
//! - **Slicing**: the first member reads ([`INGEST_SLICE_BYTES`] per file and poll, as a jail
//!   alone) and hands the lines to the others; the others' own polls find nothing to do.
//!
//! [`INGEST_SLICE_BYTES`]: super::server::INGEST_SLICE_BYTES

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use ferroban_bans::LogPosition;
use ferroban_config::{JailDef, LogPath};
use ferroban_date::DateHit;
use ferroban_source::{LogSource, Notice, Position};

use super::jail::Jail;
use super::jailtask::{self, JailRt};
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
    /// Its jails, in configuration order; the first reads.
    members: Vec<Member>,
    /// The reader.
    pub source: LogSource,
}

/// The date settings of a jail ([`Jail::date_key`](super::jail::Jail::date_key)), owned.
type DateKey = (Option<String>, Option<String>);

/// A jail reading with a shared reader.
struct Member {
    name: String,
    /// Its date settings when it joined.
    date_key: DateKey,
    /// A date detector with those settings: the reader dates the lines for the members of a
    /// date class other than its own with the detector of the first of them.
    dates: Option<ferroban_date::DateDetector>,
}

fn date_key(jail: &Jail) -> DateKey {
    let (a, b) = jail.date_key();
    (a.map(str::to_string), b.map(str::to_string))
}

/// One read of a shared source (one slice of each file), handed to each member.
pub struct SharedRead {
    /// The source read.
    source: SharedSource,
    /// The lines' text, one after the other.
    text: String,
    /// Each line's range in `text`.
    spans: Vec<(usize, usize)>,
    /// The file of the lines from each index on.
    paths: Vec<(usize, PathBuf)>,
    /// The date of each line per date class (date settings) of the members.
    classes: Vec<(DateKey, Vec<Option<DateHit>>)>,
    /// The positions after the read.
    positions: Vec<Position>,
    /// What the source reported.
    notices: Vec<Notice>,
    error: Option<String>,
    /// More is pending.
    more: bool,
}

impl SharedRead {
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

/// The source jail `def` (`jail`) reads with: `source` (its own, positions restored) shared, or
/// the not yet read shared source of an earlier jail with the same settings and stored
/// positions (`started_at`, read with the jail's other start-up reads).
pub fn share(
    st: &mut State,
    def: &JailDef,
    jail: &Jail,
    source: JailSource,
    started_at: Vec<LogPosition>,
) -> JailSource {
    let JailSource::Files(own) = source else {
        return source;
    };
    let key = SourceKey::of(def);
    st.readers
        .retain(|s| !s.borrow().polled && !s.borrow().members.is_empty());
    let key_of_jail = date_key(jail);
    let member = |dates| Member {
        name: def.name.clone(),
        date_key: key_of_jail.clone(),
        dates,
    };
    for s in &st.readers {
        let mut b = s.borrow_mut();
        if b.key == key && b.started_at == started_at {
            flog!(
                Info,
                "filter",
                "[{}] Reads its log files with jail '{}' (one reader)",
                def.name,
                b.members[0].name
            );
            // The first jail of a date class brings a detector for it.
            let dates = (!b.members.iter().any(|m| m.date_key == key_of_jail))
                .then(|| jail.new_date_detector())
                .flatten();
            b.members.push(member(dates));
            return JailSource::Shared(s.clone());
        }
    }
    let s = Rc::new(RefCell::new(SharedFiles {
        key,
        started_at,
        polled: false,
        // The reader dates its own class's lines with its own jail.
        members: vec![member(None)],
        source: own,
    }));
    st.readers.push(s.clone());
    JailSource::Shared(s)
}

/// Jail `name` no longer reads with `source` (when that is a shared reader).
pub fn leave(name: &str, source: &JailSource) {
    if let JailSource::Shared(s) = source {
        s.borrow_mut().members.retain(|m| m.name != name);
    }
}

/// The jail leaves its shared reader (if it has one) with a source of its own that starts at
/// the positions of the lines it was given.
pub fn detach(rt: &mut JailRt) {
    if !matches!(rt.source, JailSource::Shared(_)) {
        return;
    }
    let def = rt.jail.def().clone();
    match super::server::source_any(&def) {
        Ok(JailSource::Files(mut own)) => {
            own.restore(rt.shared_at.clone());
            rt.set_source(JailSource::Files(own));
        }
        Ok(other) => rt.set_source(other),
        // Cannot happen with settings that built the shared source; it stays a member then.
        Err(e) => flog!(Error, "filter", "[{}] {e}", def.name),
    }
}

/// Reads `shared` when jail `rt` is the one that reads it (its first member): matches the
/// slice read and hands it to the other members' tasks; returns whether more is pending.
pub fn poll(st: &mut State, rt: &mut JailRt, shared: &SharedSource) -> bool {
    let others: Vec<String> = {
        let mut b = shared.borrow_mut();
        if b.members.first().map(|m| m.name.as_str()) != Some(rt.jail.name()) {
            return false;
        }
        b.polled = true;
        b.members[1..].iter().map(|m| m.name.clone()).collect()
    };
    let now = st.clock.now();
    let mut read = SharedRead {
        source: shared.clone(),
        text: String::new(),
        spans: Vec::new(),
        paths: Vec::new(),
        classes: Vec::new(),
        positions: Vec::new(),
        notices: Vec::new(),
        error: None,
        more: false,
    };
    let report = shared
        .borrow_mut()
        .source
        .poll(&mut |line| read.push(line.path, line.text));
    match report {
        Ok(r) => {
            read.notices = r.notices;
            read.more = r.more;
        }
        Err(e) => read.error = Some(e.to_string()),
    }
    read.positions = shared.borrow().source.positions();
    // One date detection per date class: the reader's own for its class, the detector of the
    // first member of each other class for that class.
    let own = date_key(&rt.jail);
    let mut hits = Vec::with_capacity(read.spans.len());
    for l in 0..read.spans.len() {
        hits.push(rt.jail.detect_date(read.line(l), now));
    }
    read.classes.push((own, hits));
    {
        let mut b = shared.borrow_mut();
        for m in b.members.iter_mut().skip(1) {
            if read.classes.iter().any(|(k, _)| *k == m.date_key) {
                continue;
            }
            let Some(dates) = m.dates.as_mut() else {
                continue;
            };
            let hits = (0..read.spans.len())
                .map(|l| dates.match_time(read.line(l), now))
                .collect();
            read.classes.push((m.date_key.clone(), hits));
        }
    }
    let read = Rc::new(read);
    for name in &others {
        if let Some(s) = st.sender(name) {
            s.lines(read.clone());
        }
    }
    take_lines(st, rt, &read);
    read.more
}

/// Matches the lines of `read` in jail `rt` (a member of the reader that read them).
/// Its bans go to the actions once the store thread committed them.
pub fn take_lines(st: &mut State, rt: &mut JailRt, read: &SharedRead) {
    // A jail that left the reader (idle, a new source) does not take its reads any more.
    if !matches!(&rt.source, JailSource::Shared(s) if Rc::ptr_eq(s, &read.source)) {
        return;
    }
    let mut slice = jailtask::SliceRead::begin(st, rt);
    let key = date_key(&rt.jail);
    let hits = read.classes.iter().find(|(k, _)| *k == key).map(|(_, h)| h);
    {
        let now = slice.now;
        let jail = &mut rt.jail;
        let mut file = 0;
        for l in 0..read.spans.len() {
            while read.paths.get(file + 1).is_some_and(|&(from, _)| from <= l) {
                file += 1;
            }
            let text = read.line(l);
            let hit = match hits {
                Some(h) => h[l],
                None => jail.detect_date(text, now),
            };
            let before = jail.line_stats();
            slice.events.extend(jail.process_line_dated(text, hit, now));
            slice
                .counts
                .line(&read.paths[file].1, before, jail.line_stats());
        }
    }
    for n in &read.notices {
        super::server::log_notice(rt.jail.name(), n);
    }
    if let Some(e) = &read.error {
        flog!(Error, "filter", "[{}] {e}", rt.jail.name());
    }
    rt.shared_at = read.positions.clone();
    slice.end(st, rt, read.more);
}
