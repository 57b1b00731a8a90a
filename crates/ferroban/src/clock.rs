//! Time as the daemon sees it: real, or a manual clock that tests advance.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A source of the current time (unix seconds, fractional).
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> f64;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> f64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    }
}

/// The system's clock shifted by a fixed number of seconds: a node with a wrong clock, in
/// tests (`FERROBAN_TEST_CLOCK_OFFSET=30` makes the daemon 30 s ahead; see [`daemon_clock`]).
#[derive(Debug, Clone, Copy)]
pub struct OffsetClock(pub f64);

impl Clock for OffsetClock {
    fn now(&self) -> f64 {
        SystemClock.now() + self.0
    }
}

/// The daemon's clock: the system clock, or with `FERROBAN_TEST_CLOCK_OFFSET=<seconds>` in the
/// environment the system clock shifted by that much (the fleet's clock-skew test).
pub fn daemon_clock() -> Arc<dyn Clock> {
    match std::env::var("FERROBAN_TEST_CLOCK_OFFSET")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
    {
        Some(off) if off != 0.0 && off.is_finite() => Arc::new(OffsetClock(off)),
        _ => Arc::new(SystemClock),
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock standing at `now`.
    pub fn new(now: f64) -> Self {
        ManualClock(Arc::new(AtomicU64::new(now.to_bits())))
    }

    /// Moves the clock to `now`.
    pub fn set(&self, now: f64) {
        self.0.store(now.to_bits(), Ordering::SeqCst);
    }

    /// Moves the clock forward by `secs`.
    pub fn advance(&self, secs: f64) {
        self.set(self.now() + secs);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(100.0);
        let shared = c.clone();
        assert_eq!(c.now(), 100.0);
        shared.advance(5.5);
        assert_eq!(c.now(), 105.5);
    }
}
