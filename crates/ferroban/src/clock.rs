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
