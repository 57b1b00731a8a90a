//! fail2ban-compatible date detection.
//!
//! CONTRACT (implemented by the date module owner; the filter depends on exactly this):
//!
//! ```ignore
//! pub struct DateDetector { .. }
//! impl DateDetector {
//!     /// fail2ban's default template list (adaptive: templates reordered by hits, last hit tried first).
//!     pub fn with_default_templates() -> DateDetector;
//!     /// A filter's `datepattern` value: `%`-codes (strptime dialect incl. `%ExY`, `%Exy`, `%z`, `%Z`, `%f`, `%s`...),
//!     /// `{^LN-BEG}`, `{DATE}`, `{DEFAULT}`, `{NONE}`, `Epoch`, `LEPOCH`, `TAI64N`, `ISO8601`, a plain regex with `(?P<..>)`
//!     /// groups; several patterns separated by newlines.
//!     pub fn from_pattern(datepattern: &str) -> Result<DateDetector, DateError>;
//!     /// Time zone used for dates that carry none (default: the process' local zone, `TZ` honoured).
//!     pub fn set_default_timezone(&mut self, tz: jiff::tz::TimeZone);
//!     /// The `logtimezone` option (`UTC`, `UTC+0200`, `UTC-5` ...).
//!     pub fn set_log_timezone(&mut self, spec: &str) -> Result<(), DateError>;
//!     /// Find the date in `line`. `now` (unix seconds, from the injectable clock) drives year
//!     /// inference for year-less dates exactly as fail2ban does.
//!     pub fn match_time(&mut self, line: &str, now: f64) -> Option<DateHit>;
//! }
//! pub struct DateHit {
//!     /// byte span of the date text in `line` (fail2ban's `group(1)` of the template match;
//!     /// this span is cut out of the line before the failregex runs). May be empty.
//!     pub start: usize, pub end: usize,
//!     /// unix seconds (fractional), `None` when the text matched but could not be parsed.
//!     pub time: Option<f64>,
//! }
//! ```
