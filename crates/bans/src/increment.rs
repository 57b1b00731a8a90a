//! `bantime` and `bantime.increment`: how long the next ban of an id lasts.
//!
//! fail2ban's rules, rewritten:
//!
//! - Without `bantime.increment`, every ban lasts `bantime` seconds (`-1`: permanent) and is recorded with a
//!   ban count of 1.
//! - With it, the store's history of the id is consulted first: in the same jail, or with
//!   `bantime.overalljails` in every jail (the counts summed). No history: `bantime`, count 1. History with
//!   count `n`: the ban is recorded with count `n + 1`, and for `n > 0` its length is computed from
//!   `ban.Time = bantime` and `ban.Count = n`:
//!   - with `bantime.multipliers = m0 m1 …`: `ban.Time * banFactor * m[min(n, len-1)]` (the last value repeats);
//!   - otherwise `max(ban.Time, formula)`, the default formula being
//!     `ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor`;
//!   - then capped by `bantime.maxtime` if set,
//!   - then `random() * bantime.rndtime` added if set (so a botnet cannot compute the exact unban time).
//! - A permanent (`-1`) or zero `bantime` is never incremented.
//! - A failure whose time is not after the last recorded ban of the id was re-read from a log after a restart:
//!   its ban is already in the store, so [`BanDecision::already_recorded`] is set and the caller must not record
//!   it again (fail2ban marks such tickets "restored").
//!
//! fail2ban evaluates `bantime.factor` with Python's `eval` too, so `2.0 / 2.885385` is a valid factor; here it
//! goes through the same [`Expr`] evaluator and must be a constant.
//!
//! When the formula fails at ban time (e.g. `math.exp` overflows), fail2ban logs the error and bans for the
//! base `bantime`; [`BanTimePolicy::decide`] returns the error and [`BanTimePolicy::decide_or_base`] offers the
//! fail2ban fallback.

use thiserror::Error;

use crate::expr::{Expr, ExprError, Inputs, Value};
use crate::store::{BanHistory, Scope};

/// fail2ban's default `bantime.formula`.
pub const DEFAULT_FORMULA: &str = "ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor";

/// A configuration error in the `bantime.*` options.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum IncrementError {
    /// `bantime.formula` does not parse.
    #[error("bantime.formula: {0}")]
    Formula(#[source] ExprError),
    /// `bantime.factor` does not parse or evaluate.
    #[error("bantime.factor: {0}")]
    Factor(#[source] ExprError),
    /// `bantime.factor` reads ban inputs; it must be a constant.
    #[error("bantime.factor must be a constant expression, got {0:?}")]
    FactorNotConstant(String),
    /// A word of `bantime.multipliers` is not an integer.
    #[error("bantime.multipliers: {word:?} is not an integer (in {value:?})")]
    Multiplier {
        /// The offending word.
        word: String,
        /// The whole option value.
        value: String,
    },
    /// `bantime.maxtime` or `bantime.rndtime` is negative or not finite.
    #[error("bantime.{option} must be a non-negative number of seconds, got {value}")]
    Seconds {
        /// `maxtime` or `rndtime`.
        option: &'static str,
        /// The value given.
        value: f64,
    },
}

/// A source of uniform random numbers in `[0, 1)`, injectable so tests are deterministic.
pub trait RandomSource {
    /// The next number in `[0, 1)`.
    fn next_f64(&mut self) -> f64;
}

/// A small, fast, seedable generator (SplitMix64). Not cryptographic: `rndtime` only needs to be unpredictable
/// enough that a botnet cannot compute the unban time.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator with a fixed seed (tests).
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// A generator seeded from the system clock, the process id and an address.
    pub fn from_entropy() -> SplitMix64 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let local = 0u8;
        let addr = &local as *const u8 as u64;
        SplitMix64(nanos ^ (u64::from(std::process::id()) << 32) ^ addr.rotate_left(17))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl RandomSource for SplitMix64 {
    fn next_f64(&mut self) -> f64 {
        // 53 random bits: every value is exactly representable and below 1.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The raw `bantime.*` options as a fail2ban user writes them (durations already converted to seconds).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncrementOptions {
    /// `bantime.factor` (default `1`).
    pub factor: Option<String>,
    /// `bantime.formula` (default [`DEFAULT_FORMULA`]).
    pub formula: Option<String>,
    /// `bantime.multipliers`, space-separated integers; empty or absent: use the formula.
    pub multipliers: Option<String>,
    /// `bantime.maxtime` in seconds.
    pub maxtime: Option<f64>,
    /// `bantime.rndtime` in seconds.
    pub rndtime: Option<f64>,
    /// `bantime.overalljails`.
    pub overalljails: bool,
}

/// How the next ban time grows: the validated `bantime.*` options of a jail with `bantime.increment = true`.
#[derive(Debug, Clone, PartialEq)]
pub struct BanTimeIncrement {
    factor: Value,
    formula: Expr,
    multipliers: Vec<i64>,
    maxtime: Option<f64>,
    rndtime: Option<f64>,
    overalljails: bool,
}

impl Default for BanTimeIncrement {
    fn default() -> Self {
        BanTimeIncrement {
            factor: Value::Int(1),
            // The default formula is a constant of this crate and parses (tested).
            formula: Expr::parse(DEFAULT_FORMULA).unwrap_or_else(|_| unreachable!()),
            multipliers: Vec::new(),
            maxtime: None,
            rndtime: None,
            overalljails: false,
        }
    }
}

impl BanTimeIncrement {
    /// Validates the options. Empty strings count as unset, as in fail2ban.
    pub fn from_options(opts: &IncrementOptions) -> Result<BanTimeIncrement, IncrementError> {
        let set = |o: &Option<String>| {
            o.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let mut inc = BanTimeIncrement::default();
        if let Some(f) = set(&opts.factor) {
            let e = Expr::parse(&f).map_err(IncrementError::Factor)?;
            if !e.is_constant() {
                return Err(IncrementError::FactorNotConstant(f));
            }
            let zero = Inputs {
                ban_time: Value::Int(0),
                ban_count: 0,
                ban_factor: Value::Int(1),
            };
            inc.factor = e.eval_value(&zero).map_err(IncrementError::Factor)?;
        }
        if let Some(f) = set(&opts.formula) {
            inc.formula = Expr::parse(&f).map_err(IncrementError::Formula)?;
        }
        if let Some(m) = set(&opts.multipliers) {
            inc.multipliers = m
                .split_whitespace()
                .map(|w| {
                    w.parse::<i64>().map_err(|_| IncrementError::Multiplier {
                        word: w.to_string(),
                        value: m.clone(),
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        for (option, v) in [("maxtime", opts.maxtime), ("rndtime", opts.rndtime)] {
            if let Some(v) = v
                && !(v.is_finite() && v >= 0.0)
            {
                return Err(IncrementError::Seconds { option, value: v });
            }
        }
        inc.maxtime = opts.maxtime;
        inc.rndtime = opts.rndtime;
        inc.overalljails = opts.overalljails;
        Ok(inc)
    }

    /// The value of `banFactor`.
    pub fn factor(&self) -> f64 {
        self.factor.as_f64()
    }

    /// The formula in use (ignored when multipliers are set).
    pub fn formula(&self) -> &Expr {
        &self.formula
    }

    /// The multipliers; empty when the formula is used.
    pub fn multipliers(&self) -> &[i64] {
        &self.multipliers
    }

    /// `bantime.maxtime`.
    pub fn maxtime(&self) -> Option<f64> {
        self.maxtime
    }

    /// `bantime.rndtime`.
    pub fn rndtime(&self) -> Option<f64> {
        self.rndtime
    }

    /// `bantime.overalljails`.
    pub fn overalljails(&self) -> bool {
        self.overalljails
    }

    /// Where to look up the history of an id banned in `jail`.
    pub fn scope<'a>(&self, jail: &'a str) -> Scope<'a> {
        if self.overalljails {
            Scope::All
        } else {
            Scope::Jail(jail)
        }
    }

    /// fail2ban's "evformula": the ban time for base `ban_time` after `ban_count` earlier bans, including the
    /// multipliers or formula, `maxtime` and `rndtime`.
    pub fn evaluate(
        &self,
        ban_time: f64,
        ban_count: u64,
        rng: &mut dyn RandomSource,
    ) -> Result<f64, ExprError> {
        let count = i64::try_from(ban_count).unwrap_or(i64::MAX);
        let mut t = if let Some(last) = self.multipliers.last() {
            let idx = usize::try_from(ban_count).unwrap_or(usize::MAX);
            let m = self.multipliers.get(idx).unwrap_or(last);
            ban_time * self.factor.as_f64() * (*m as f64)
        } else {
            let inputs = Inputs {
                ban_time: Value::from_f64(ban_time),
                ban_count: count,
                ban_factor: self.factor,
            };
            ban_time.max(self.formula.eval(&inputs)?)
        };
        if let Some(max) = self.maxtime {
            t = t.min(max);
        }
        if let Some(rnd) = self.rndtime {
            t += rng.next_f64() * rnd;
        }
        if t.is_finite() {
            Ok(t)
        } else {
            Err(ExprError::NotFinite(t))
        }
    }
}

/// A jail's ban-time configuration: `bantime` and optionally `bantime.increment`.
#[derive(Debug, Clone, PartialEq)]
pub struct BanTimePolicy {
    /// `bantime` in seconds; negative (fail2ban: `-1`) is permanent.
    pub bantime: f64,
    /// `Some` when `bantime.increment = true`.
    pub increment: Option<BanTimeIncrement>,
}

/// The outcome of [`BanTimePolicy::decide`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BanDecision {
    /// How long to ban, in seconds; negative is permanent.
    pub bantime: f64,
    /// The ban count to record with this ban (earlier bans + 1).
    pub ban_count: u64,
    /// The failure is not newer than the last recorded ban: the ban is already in the store (a log re-read
    /// after a restart). Ban, but do not record it again.
    pub already_recorded: bool,
}

impl BanTimePolicy {
    /// A policy without increment.
    pub fn fixed(bantime: f64) -> BanTimePolicy {
        BanTimePolicy {
            bantime,
            increment: None,
        }
    }

    /// The cap fail2ban applies to bans restored from the store: `bantime.maxtime` with increment (so a
    /// restored ban loses any `rndtime` beyond it, as in fail2ban), `bantime` without; `None`: no cap.
    pub fn max_bantime(&self) -> Option<f64> {
        match &self.increment {
            Some(inc) => inc.maxtime,
            None if self.bantime < 0.0 => None,
            None => Some(self.bantime),
        }
    }

    /// Decides the ban time for a failure at `failure_time`, given the id's history from the store (look it up
    /// in [`BanTimeIncrement::scope`]; `None` without history or without increment).
    pub fn decide(
        &self,
        failure_time: f64,
        history: Option<&BanHistory>,
        rng: &mut dyn RandomSource,
    ) -> Result<BanDecision, ExprError> {
        let mut d = BanDecision {
            bantime: self.bantime,
            ban_count: 1,
            already_recorded: false,
        };
        let (Some(inc), Some(h)) = (&self.increment, history) else {
            return Ok(d);
        };
        if self.bantime <= 0.0 {
            return Ok(d);
        }
        d.ban_count = h.count + 1;
        d.already_recorded = failure_time <= h.last_banned_at;
        if h.count > 0 {
            d.bantime = inc.evaluate(self.bantime, h.count, rng)?;
        }
        Ok(d)
    }

    /// Like [`decide`](Self::decide), but on a formula error falls back to the base `bantime` as fail2ban does,
    /// returning the error alongside for logging.
    pub fn decide_or_base(
        &self,
        failure_time: f64,
        history: Option<&BanHistory>,
        rng: &mut dyn RandomSource,
    ) -> (BanDecision, Option<ExprError>) {
        match self.decide(failure_time, history, rng) {
            Ok(d) => (d, None),
            Err(e) => (
                BanDecision {
                    bantime: self.bantime,
                    ban_count: history.map_or(1, |h| h.count + 1),
                    already_recorded: history.is_some_and(|h| failure_time <= h.last_banned_at),
                },
                Some(e),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(f64);
    impl RandomSource for Fixed {
        fn next_f64(&mut self) -> f64 {
            self.0
        }
    }

    #[test]
    fn default_formula_parses_and_doubles() {
        let inc = BanTimeIncrement::default();
        assert_eq!(inc.formula().source(), DEFAULT_FORMULA);
        let mut r = Fixed(0.0);
        assert_eq!(inc.evaluate(600.0, 1, &mut r), Ok(1200.0));
        assert_eq!(inc.evaluate(600.0, 3, &mut r), Ok(4800.0));
    }

    #[test]
    fn splitmix_is_deterministic_and_in_range() {
        let mut a = SplitMix64::new(42);
        let mut b = SplitMix64::new(42);
        for _ in 0..1000 {
            let x = a.next_f64();
            assert_eq!(x, b.next_f64());
            assert!((0.0..1.0).contains(&x));
        }
        let _ = SplitMix64::from_entropy().next_f64();
    }

    #[test]
    fn option_errors() {
        let o = |f: fn(&mut IncrementOptions)| {
            let mut opts = IncrementOptions::default();
            f(&mut opts);
            BanTimeIncrement::from_options(&opts)
        };
        assert!(matches!(
            o(|x| x.factor = Some("ban.Count".into())),
            Err(IncrementError::FactorNotConstant(_))
        ));
        assert!(matches!(
            o(|x| x.factor = Some("1 +".into())),
            Err(IncrementError::Factor(_))
        ));
        assert!(matches!(
            o(|x| x.formula = Some("nope".into())),
            Err(IncrementError::Formula(_))
        ));
        assert!(matches!(
            o(|x| x.multipliers = Some("1 2 x".into())),
            Err(IncrementError::Multiplier { .. })
        ));
        assert!(matches!(
            o(|x| x.maxtime = Some(-1.0)),
            Err(IncrementError::Seconds {
                option: "maxtime",
                ..
            })
        ));
        assert!(matches!(
            o(|x| x.rndtime = Some(f64::NAN)),
            Err(IncrementError::Seconds {
                option: "rndtime",
                ..
            })
        ));
        // Empty values are unset, as in fail2ban.
        let inc = o(|x| {
            x.formula = Some(" ".into());
            x.multipliers = Some(String::new());
        })
        .unwrap();
        assert_eq!(inc, BanTimeIncrement::default());
    }
}
