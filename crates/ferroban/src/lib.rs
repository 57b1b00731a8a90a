//! ferroban: a fail2ban-compatible intrusion-prevention daemon.
//!
//! # Layout
//! ```text
//!  crates/source (files, journal) ── lines, 64 KiB slices per jail, then yield ──┐
//!                                                                                 ▼
//!  crates/engine (no I/O) ┌ filter: date → prefregex → failregex → ignoreregex ─► Failure
//!   one Jail per jail     │ ignore rules ── look-up needed? ──► daemon runs it (DNS thread,
//!                         │   ▲ answer: waiting failures of that id go on        child process,
//!                         │   └───────────────────────────────────────────────── timeouts)
//!                         └ failure tracker → ban decision ─► Event::Ban / Unban + StoreWrite
//!                           (increment: ban history in memory)    │ the store thread commits it
//!                                                                 │ first (crates/bans), awaited
//!  daemon: per-jail action task (shell / native firewall) ◄───────┘   unban timer, control
//!          socket, reload in place (kept actions run nothing)
//!  configuration: crates/config (fail2ban's INI dialect); regexes: crates/matcher, crates/date
//! ```
//! - [`filter`], [`ip`], [`daemon::jail`], [`daemon::ignore`]: re-exported from the engine crate
//!   (`ferroban-engine`): per-line semantics, failure ids, the jail state machine, ignore rules.
//! - [`clock`]: the injectable clock every time-dependent part reads.
//! - [`testfilters`]: `ferroban test-filters`, the annotated-sample runner.
//! - [`regex_cli`]: `ferroban regex`, fail2ban-regex's twin.
//! - [`metrics`]: Prometheus `/metrics`, the `top` feed, totals kept across restarts.
//! - [`top`]: `ferroban top`, the live terminal dashboard over the control socket.

pub mod action;
pub mod clock;
pub mod control;
pub mod daemon;
pub mod defaults;
pub mod firewall;
pub mod metrics;
pub mod regex_cli;
pub mod testfilters;
pub mod top;

/// The jail engine's filter (crates/engine).
pub use ferroban_engine::filter;
/// The jail engine's failure ids (crates/engine).
pub use ferroban_engine::ip;
