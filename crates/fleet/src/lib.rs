//! ferroban's fleet mode: a ban on one server reaches every server's kernel within a second,
//! through NATS JetStream (docs/fleet.md has the design and why).
//!
//! ```text
//!  daemon (jail bans, enforced locally first)                      daemon (same jail's actions)
//!     │ FleetHandle::local_ban / local_unban (never waits)              ▲ Vec<Apply> batches
//!     ▼                                                                 │
//!  fleet thread: outbox (SQLite fleet_own) ──sign──► JetStream FB_DEC ──► ordered consumer
//!                coalesced per subject          (max 1 msg/subject:      verify (ed25519, trust)
//!                                                the compacted state)    policy, merge (per-origin
//!                                                                        last-writer-wins), cursor
//! ```
//!
//! - [`config`]: `[Fleet]` of fail2ban.local and the trust file (keys and per-origin policy).
//! - [`event`]: the v1 event, subjects, `ipkey`, ed25519 signing.
//! - [`failures`]: shared failure counting (`share_failures`): batches and the capped sums.
//! - [`gate`]: when a local decision may be published (a ban once its local actions ran).
//! - [`merge`]: verification, policy and the merge of every origin's decisions (pure).
//! - [`db`]: the fleet's own tables in ferroban's SQLite database (outbox, cursor, remote bans).
//! - [`node`]: the NATS side, on its own thread and runtime, so the daemon never waits on it.
//!
//! The crate knows nothing of the daemon: it takes bans in ([`FleetHandle`]) and hands remote
//! decisions out ([`Apply`]); the daemon runs them through the jail's own actions.

pub mod config;
pub mod db;
pub mod event;
pub mod failures;
pub mod gate;
pub mod merge;
pub mod node;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use config::{FleetConfig, RawOption, Role, Trust};
pub use merge::Reject;
pub use node::{FleetHandle, Started, start};

/// Errors of the fleet.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// Bad configuration (names the file and line where known).
    #[error("{0}")]
    Config(String),
    /// The fleet tables.
    #[error("fleet database: {0}")]
    Db(String),
    /// NATS.
    #[error("NATS: {0}")]
    Nats(String),
}

/// The daemon's clock: unix seconds (an injectable clock in tests).
pub type Now = Arc<dyn Fn() -> f64 + Send + Sync>;

/// A remote decision for the daemon to run through jail `jail`'s actions.
#[derive(Debug, Clone, PartialEq)]
pub struct Apply {
    /// The jail.
    pub jail: String,
    /// Address or network (`203.0.113.7`, `203.0.113.0/24`).
    pub ip: String,
    /// The origin that decided (for a ban held by several: the one with the latest end).
    pub origin: String,
    /// Ban or unban.
    pub kind: ApplyKind,
}

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ApplyKind {
    /// Ban until this time on the daemon's clock (`None`: permanent); an existing remote ban
    /// of the target is extended to it.
    Ban {
        /// End, unix seconds on the daemon's clock.
        ends_at: Option<f64>,
    },
    /// No origin holds a ban of the target any more.
    Unban,
    /// Shared failure counting: the fleet-wide failures of the address (this many, capped per
    /// origin) reached the jail's threshold. The daemon bans it as its own ban (published as
    /// usual) unless it is banned already or in the jail's `ignoreip`.
    Failures {
        /// The capped sum that reached the threshold.
        count: u32,
    },
}

/// One peer as seen from here.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PeerStatus {
    /// Listed in the trust file.
    pub trusted: bool,
    /// Its live bans applied here.
    pub active: usize,
    /// Events received from it.
    pub events: u64,
    /// When its last event was issued (ms, fleet clock).
    pub last_event_ms: Option<i64>,
}

/// `ferroban client fleet status`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Status {
    /// This node.
    pub node: String,
    /// Its role.
    pub role: String,
    /// Servers.
    pub servers: Vec<String>,
    /// Stream.
    pub stream: String,
    /// Connected, stream found and consumer running.
    pub connected: bool,
    /// Last stream sequence applied (persisted).
    pub cursor: u64,
    /// The stream's last sequence when last looked at.
    pub stream_last_seq: u64,
    /// `stream_last_seq - cursor`.
    pub lag: u64,
    /// Own decisions not yet acknowledged by JetStream.
    pub outbox: u64,
    /// Own decisions not yet signed into the outbox: bans whose local actions have not run
    /// yet (and decisions of the same address behind them).
    pub awaiting_enforcement: u64,
    /// Engine clock minus local clock (ms), when measured.
    pub skew_ms: Option<i64>,
    /// Own decisions acknowledged by JetStream.
    pub published: u64,
    /// Other nodes' events received.
    pub received: u64,
    /// Remote decisions handed to the jails.
    pub applied: u64,
    /// Live remote bans.
    pub remote_active: usize,
    /// Per peer.
    pub peers: BTreeMap<String, PeerStatus>,
    /// Refused events per reason.
    pub rejects: BTreeMap<String, u64>,
    /// The last error, if any since the last success.
    pub last_error: Option<String>,
    /// Jails that count failures fleet-wide (`share_failures`).
    pub share_failures: Vec<String>,
    /// Shared failure counting: failure batches sent.
    pub failure_batches_sent: u64,
    /// Failure entries received from other nodes (after verification and policy).
    pub failures_received: u64,
    /// Failure entries shed (queue or table full).
    pub failures_shed: u64,
    /// Addresses whose fleet-wide failures reached a jail's threshold here.
    pub failure_thresholds: u64,
}
