//! ferroban: a fail2ban-compatible intrusion-prevention daemon.
//!
//! # Layout
//! ```text
//! log line ──► filter (date detection → prefregex → failregex → ignoreregex) ──► Failure
//!              │ crates/date       crates/matcher (tags, Python→PCRE2, gate, prefilter)
//!              └ configuration: crates/config (fail2ban's INI dialect, jails, filters, actions)
//! ```
//! - [`filter`]: fail2ban's per-line semantics, multi-line buffers and `<F-MLFID>` merging.
//! - [`ip`]: failure ids (addresses, networks, raw ids) printed as fail2ban prints them.
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
