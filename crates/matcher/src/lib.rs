//! fail2ban's regex dialect, matched exactly and in bounded time.
//!
//! CONTRACT (implemented by the matcher owner; the filter depends on exactly this):
//!
//! ```ignore
//! pub enum UseDns { Yes, Warn, No, Raw }
//! pub struct RegexOptions { pub multiline: bool, pub use_dns: UseDns }
//! pub struct Regex { .. }
//! impl Regex {
//!     /// `pattern` as written in a filter (tags unexpanded). Expands `<HOST> <ADDR> <IP4> <IP6> <DNS> <CIDR>
//!     /// <SUBNET> <F-ID> <F-PORT> <F-*>…</F-*> <SKIPLINES>` like fail2ban, maps global flags to local ones,
//!     /// translates the Python `re` dialect to PCRE2 and builds a linear-time gate.
//!     pub fn new(pattern: &str, opts: &RegexOptions) -> Result<Regex, RegexError>;
//!     pub fn source(&self) -> &str;          // as given
//!     pub fn expanded(&self) -> &str;        // after tag expansion, Python dialect (fail2ban's getRegex())
//!     pub fn has_group(&self, name: &str) -> bool;
//!     /// Python `re.search(haystack)` semantics (haystack is lines joined with '\n' plus a trailing '\n').
//!     pub fn search<'h>(&self, haystack: &'h str) -> Option<Captures<'h>>;
//!     pub fn is_match(&self, haystack: &str) -> bool;
//! }
//! pub struct Captures<'h> { .. }
//! impl<'h> Captures<'h> {
//!     pub fn start(&self) -> usize; pub fn end(&self) -> usize;
//!     pub fn name(&self, name: &str) -> Option<&'h str>;          // None if absent or not participating
//!     /// fail2ban's getGroups(): every named group (None when not participating), with `alt_*` merged
//!     /// and `tuple_*` combined. Keys are group names (e.g. "ip4", "fid", "user", "skiplines0").
//!     pub fn groups(&self) -> Vec<(String, GroupValue)>;
//! }
//! pub enum GroupValue { None, Str(String), Tuple(Vec<Option<String>>) }
//! /// Literal prefilter for a list of regexes: may report false candidates, never misses one.
//! pub struct Prefilter { .. }
//! impl Prefilter {
//!     pub fn new(regexes: &[&Regex]) -> Prefilter;
//!     /// Sets `out[i]` to false only when regex i cannot match `haystack`.
//!     pub fn candidates(&self, haystack: &str, out: &mut Vec<bool>);
//! }
//! ```
