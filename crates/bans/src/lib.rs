//! Failure tracking (`findtime`/`maxretry`), bans (`bantime`, `bantime.increment`), and their store.
//!
//! The daemon's bookkeeping core. Everything here is synchronous and takes the time as an argument
//! (`now: f64`, unix seconds), so the daemon supplies its clock and tests move time by hand: nothing sleeps.
//! fail2ban 1.0.2's semantics are the reference; where ferroban differs, the module says so.
//!
//! # Layout
//! - [`failures`]: [`FailureTracker`], per-id failure counts within `findtime` up to `maxretry`, with the
//!   kept matches (`maxmatches`). fail2ban's rate-rescaling window by default, a strict sliding window on request.
//! - [`increment`]: [`BanTimePolicy`] and [`BanTimeIncrement`], the length of the next ban from `bantime` and
//!   the `bantime.*` options (factor, formula, multipliers, maxtime, rndtime, overalljails).
//! - [`expr`]: the small evaluator for `bantime.formula` / `bantime.factor` (a subset of Python expressions).
//! - [`schedule`]: [`UnbanScheduler`] (`BTreeSet<(unban_at, id)>`, `next_deadline`, `expire`) and
//!   [`BanManager`], the current bans of a jail.
//! - [`store`]: [`Store`], the SQLite database: bans, ban history, log positions, purge.
//! - [`history`]: [`History`], the ban history of `bantime.increment` in memory (loaded from the store
//!   once, then kept current by the same changes): a jail decides a ban without reading the database.
//!
//! # Data flow in a jail task
//! ```text
//! Failure { id, time, matches }
//!   │  tracker.record_known(id, time, matches, known)      known: from history.get() when bantime.increment
//!   ▼
//! Outcome::Ban(order)
//!   │  history  = history.get(&id, increment.scope(jail))   (in memory; as store.ban_count(.., None))
//!   │  decision = policy.decide(order.time, history, rng)  bantime (+ increment), ban count
//!   │  manager.add(id, Ban { banned_at: order.time, .. }, now)
//!   ▼
//! AddOutcome::Added | Prolonged
//!   │  history.record(..); store.record_ban(..)   BEFORE the actions run (unless decision.already_recorded)
//!   ▼
//! actions ban … and later: manager.expire(now) at manager.next_deadline() → actions unban
//! ```
//! On start: `store.current_bans_for(jail, now, policy.max_bantime())` → `manager.add(..)` → actions (the
//! firewall is reconciled by the daemon).

pub mod expr;
pub mod failures;
pub mod history;
pub mod increment;
pub mod schedule;
pub mod stats;
pub mod store;

pub use expr::{Expr, ExprError};
pub use failures::{BanOrder, FailureTracker, KnownOffender, Outcome, TrackerConfig, Window};
pub use history::{History, HistoryChange, HistoryRow};
pub use increment::{
    BanDecision, BanTimeIncrement, BanTimePolicy, DEFAULT_FORMULA, IncrementError,
    IncrementOptions, RandomSource, SplitMix64,
};
pub use schedule::{AddOutcome, Ban, BanManager, Expired, UnbanScheduler};
pub use stats::{STATS_SCHEMA_VERSION, StatRow, StatsError, StatsStore};
pub use store::{
    ActiveBan, BanData, BanHistory, BanRecord, LogPosition, PurgeReport, SCHEMA_VERSION, Scope,
    Store, StoreError, StoreFault, StoreOptions, move_aside,
};
