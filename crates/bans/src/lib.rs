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
//!
//! # Data flow in a jail task
//! ```text
//! Failure { id, time, matches }
//!   │  tracker.record_known(id, time, matches, known)      known: from store.ban_count() when bantime.increment
//!   ▼
//! Outcome::Ban(order)
//!   │  history  = store.ban_count(&id, increment.scope(jail), None)
//!   │  decision = policy.decide(order.time, history, rng)  bantime (+ increment), ban count
//!   │  manager.add(id, Ban { banned_at: order.time, .. }, now)
//!   ▼
//! AddOutcome::Added | Prolonged
//!   │  store.record_ban(..)          BEFORE the actions run (unless decision.already_recorded)
//!   ▼
//! actions ban … and later: manager.expire(now) at manager.next_deadline() → actions unban
//! ```
//! On start: `store.current_bans_for(jail, now, policy.max_bantime())` → `manager.add(..)` → actions (the
//! firewall is reconciled by the daemon).

pub mod expr;
pub mod failures;
pub mod increment;
pub mod schedule;
pub mod stats;
pub mod store;

pub use expr::{Expr, ExprError};
pub use failures::{BanOrder, FailureTracker, KnownOffender, Outcome, TrackerConfig, Window};
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
