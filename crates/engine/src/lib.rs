//! ferroban's jail engine: everything a jail decides, without I/O.
//!
//! ```text
//! log line ──► filter (date → prefregex → failregex → ignoreregex) ──► Failure (id, time, data)
//!                                                                        │
//!        ignore rules (ignoreip, ignoreself, ignorecommand's verdict) ◄──┤
//!                                                                        ▼
//!               failure tracker (findtime, maxretry) ──► ban decision (bantime, increment,
//!                                                          prefixes) ──► Event::Ban / Unban
//!                                                                        + StoreWrite
//! ```
//! The increment reads the ban history the caller gave the jail (in memory, loaded from the
//! store at its start); what the store must write comes out as [`jail::StoreWrite`]s, which the
//! caller writes (and commits) before it hands the events to the actions.
//! - [`filter`]: fail2ban's per-line semantics, multi-line buffers and `<F-MLFID>` merging.
//! - [`ip`]: failure ids (addresses, networks, raw ids) printed as fail2ban prints them.
//! - [`jail`]: one jail's state machine: lines and the time in, ban and unban events out.
//! - [`ignore`]: `ignoreip`, `ignoreself`, `ignorecommand`.
//! - [`log`]: the hook through which the host program receives the engine's messages.
//! - [`ttl`]: fail2ban's bounded cache with a time to live (`ignorecache`, host names).
//!
//! Nothing here reads the clock: callers pass the time, so tests drive it with any time.

pub mod filter;
pub mod ignore;
pub mod ip;
pub mod jail;
pub mod log;
pub mod ttl;
