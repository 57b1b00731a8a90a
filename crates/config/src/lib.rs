//! The fail2ban configuration dialect and typed configuration.
//!
//! CONTRACT (implemented by the config owner; the filter and CLIs depend on exactly this):
//!
//! ```ignore
//! /// Reads filter `name` (a name resolved in `<dir>/filter.d/` with the .conf/.d/.local order, or a path to a
//! /// file) with init options `opts` (e.g. [("mode","aggressive")], overriding [Init]) the way fail2ban's
//! /// FilterReader does, and returns the interpolated, split values.
//! pub fn read_filter(config_dir: &Path, name: &str, opts: &[(String, String)]) -> Result<FilterDef, ConfigError>;
//! pub struct FilterDef {
//!     pub name: String,
//!     pub files: Vec<PathBuf>,              // files read, in order
//!     pub prefregex: Option<String>,
//!     pub failregex: Vec<String>,           // one entry per non-empty line of the multi-line value
//!     pub ignoreregex: Vec<String>,
//!     pub maxlines: Option<usize>,
//!     pub datepattern: Option<String>,
//!     pub journalmatch: Option<String>,
//!     pub values: Vec<(String, String)>,    // every other [Definition]/[Init] value, interpolated
//! }
//! /// "name[k=v, k2=\"v, 2\"]" -> ("name", [("k","v"),("k2","v, 2")])
//! pub fn parse_reference(s: &str) -> Result<(String, Vec<(String, String)>), ConfigError>;
//! /// "10m", "1d12h", "1w", "-1", "3600", "1.5h" -> seconds
//! pub fn parse_duration(s: &str) -> Result<f64, ConfigError>;
//! ```
//! plus the jail.conf/jail.local/jail.d reader (jails with their filter, actions, logpath, settings), action.d
//! reader and fail2ban.conf reader with typed, validated structures; errors name `file:line`.
