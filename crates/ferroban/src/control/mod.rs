//! The control socket: protocol, server plumbing, and `ferroban client` (fail2ban-client).
//!
//! - [`proto`]: the newline-delimited JSON protocol and the table of every command's value.
//! - [`server`]: binding the socket and serving requests to the daemon's handler task.
//! - [`beautify`]: fail2ban-client's printed output for a value.
//! - [`json_output`]: the `--json` output objects.
//! - [`client`]: the `fail2ban-client` command line (JSON lines, or fail2ban's framing when the
//!   server is fail2ban).
//! - [`cmd`]: every command, defined once: the typed request the server dispatches on, the
//!   table of command forms the help is generated from, the settings of `get`/`set`.
//! - [`pickle`], [`f2bwire`]: fail2ban's own framing on the same socket (a restricted pickle
//!   decoder/encoder; requests and answers as fail2ban's client and server exchange them).

pub mod beautify;
pub mod blocklist;
pub mod client;
pub mod cmd;
pub mod f2bwire;
mod help;
pub mod json_output;
pub mod pickle;
pub mod proto;
pub mod pyrepr;
pub mod server;
#[cfg(test)]
mod testutil;
