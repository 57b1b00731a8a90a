//! The control socket: protocol, server plumbing, and `ferroban client` (fail2ban-client).
//!
//! - [`proto`]: the newline-delimited JSON protocol and the table of every command's value.
//! - [`server`]: binding the socket and serving requests to the daemon's handler task.
//! - [`beautify`]: fail2ban-client's printed output for a value.
//! - [`json_output`]: the `--json` output objects.
//! - [`client`]: the `fail2ban-client` command line.

pub mod beautify;
pub mod blocklist;
pub mod client;
pub mod f2bwire;
mod help;
pub mod json_output;
pub mod pickle;
pub mod proto;
pub mod pyrepr;
pub mod server;
#[cfg(test)]
mod testutil;
