//! Log sources: files followed like `tail -F`, with rotation detection and persisted positions.
//!
//! # Layout
//! - [`FileFollower`] (`follower.rs`): one path, read across rotations; the synchronous core.
//! - [`LogSource`] (`source.rs`): a jail's `logpath` entries (paths and globs, `head`/`tail`),
//!   one follower per file, inotify wake-ups (`backend = auto | pyinotify | polling`).
//! - [`Position`], [`FirstLineHash`] (`position.rs`): what the daemon persists per file.
//! - [`LogEncoding`] (`encoding.rs`): `logencoding`, lossy decoding that never fails.
//! - [`SourceError`] (`error.rs`): typed errors naming the path.
//! - [`journal`]: the systemd journal, read through `journalctl` children shared by the jails.
//!
//! # Driving it
//! Nothing runs in the background. The owner (a tokio task or a thread) calls
//! [`LogSource::poll`] when [`LogSource::wake_fd`] is readable (or after [`LogSource::wait`]),
//! and on a timer in any case; each poll hands every new complete line to a sink closure
//! (borrowed [`Line`]s: no allocation per line), returns [`Notice`]s worth logging, and
//! [`LogSource::positions`] gives what to persist. Time enters only as a parameter
//! ([`LogSource::poll_at`]).
//!
//! ```no_run
//! use ferroban_source::{LogPathSpec, LogSource, SourceOptions};
//! use std::time::Duration;
//! let mut src = LogSource::new(
//!     vec![LogPathSpec::parse("/var/log/auth.log"), LogPathSpec::parse("/var/log/nginx/*.log tail")],
//!     SourceOptions::default(),
//! )?;
//! loop {
//!     let report = src.poll(&mut |line| println!("{}: {}", line.path.display(), line.text))?;
//!     if !report.more {
//!         src.wait(Duration::from_secs(1))?;
//!     }
//! }
//! # Ok::<(), ferroban_source::SourceError>(())
//! ```
//!
//! # Rotation model
//! A follower keeps the file it reads **open**, and on every poll compares it with what its
//! path names now:
//!
//! - **Same inode, size ≥ read offset**: append. The first line is re-hashed on every poll
//!   (one `pread` of its length); a different hash means the file
//!   was truncated and refilled up to or past our offset between two polls →
//!   [`RotationKind::Rewritten`], read from 0. (A refill with an identical first line, to no
//!   more than our offset, cannot be told from an untouched file.)
//! - **Same inode, size < read offset** (copytruncate, `> file`): [`RotationKind::Truncated`],
//!   read from 0. Lines written between our last read and the truncation went into the copy and
//!   are not seen here (inherent to copytruncate); a held incomplete line is dropped (its end
//!   went into the copy too).
//!
//! These two checks run on every file held, before it is read — also on one whose path has
//! meanwhile been renamed or deleted.
//! - **Other inode** (rename + create, delete + recreate): the old file is read to its end
//!   through the descriptor we hold (still readable after a rename or unlink) *before* the new
//!   file is opened and read from 0 ([`RotationKind::Replaced`]). The old descriptor is then kept
//!   as *retired* and drained on each poll until it yields nothing while the new file has data:
//!   writers keep appending to the old file until they reopen the path (e.g. until logrotate's
//!   `postrotate` signal). Its held incomplete last line is delivered when it is closed
//!   ([`Line::unterminated`]). Because the old inode stays open meanwhile, the kernel cannot
//!   hand its number to the new file, so an inode comparison cannot be fooled by reuse.
//! - **Path missing**: reported once ([`Notice::Missing`]), the held file is still drained, and
//!   the path is waited for; when it reappears it is a new file, read from 0. A path missing at
//!   startup is waited for the same way. Glob matches missing for
//!   [`SourceOptions::forget_missing_after`] are dropped.
//! - **Renamed to a name a glob also matches** (`logpath = /var/log/app.log*`): the glob's new
//!   follower adopts the open file at its current offset instead of reading it again. A glob
//!   match that names a file another path is reading now (symlink, hard link) is not followed
//!   a second time.
//!
//! At most two descriptors are held per path. A read budget per poll
//! ([`SourceOptions::read_budget`]) bounds the time one poll takes on a large backlog;
//! [`PollReport::more`] then asks for another poll right away. Positions are the start of the first line not
//! yet delivered: an incomplete last line is held (at most [`MAX_LINE`] bytes) and never counted
//! as read. On restart, [`Position`] is honoured when the first-line hash (and inode, if stored)
//! match and the file is not shorter; otherwise the file was rotated while we were down and is
//! read from 0. Lines longer than [`MAX_LINE`] are dropped and counted, never delivered cut (a
//! cut line could blame an address the whole line does not: see [`MAX_LINE`]).
//!
//! # Differences from fail2ban 1.0.2
//! - A restored position wins over `tail` (fail2ban ignores the database with `tail`, dropping
//!   lines written while it was stopped).
//! - fail2ban re-checks the first-line hash every 30 s; here on every poll (no wall-clock
//!   dependency, earlier detection; the cost is one small `pread` per file and poll).
//! - fail2ban closes the file after every read and reopens the path, so lines appended to a
//!   renamed file after its last read are lost; here they are read (see above).
//! - The initial "seek to now − findtime" of `head` mode needs date detection and is left to
//!   the daemon (the [`Line::offset`]s are available).
//! - `latin-1` is ISO-8859-1 exactly (like Python), not WHATWG's windows-1252.

mod encoding;
mod error;
mod follower;
pub mod journal;
mod position;
mod source;

pub use encoding::LogEncoding;
pub use error::SourceError;
pub use follower::{
    DEFAULT_READ_BUDGET, FileFollower, FollowOptions, FollowerStats, Line, MAX_LINE, Notice,
    PollReport, RotationKind, StartAt,
};
pub use position::{FirstLineHash, Position};
pub use source::{Backend, LogPathSpec, LogSource, SourceOptions};
