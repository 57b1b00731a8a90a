//! `ferroban regex`: fail2ban-regex's twin (same arguments, same report layout).
//!
//! ```text
//! ferroban regex [OPTIONS] LOG REGEX [IGNOREREGEX]
//! ```
//! * LOG: a log file, a literal log line (several lines separated by `\n`), or
//!   `systemd-journal[journalpath=…, journalfiles=…, journalflags=…, namespace=…, rotated=…,
//!   journalmatch=…]`: the journal's entries (read through journalctl, formatted as the daemon
//!   formats them, with their own time); the match is `-m`, else `journalmatch=`, else the
//!   filter's, and the filter is read with `logtype = journal`.
//! * REGEX: a literal failregex, a filter name with optional `[k=v]` options (looked up in
//!   `-c DIR`/filter.d, `.conf`/`.local` and `.d/` overrides), or the path of a filter file.
//! * IGNOREREGEX: a literal ignoreregex (or, as an extension, the path of a filter file whose
//!   `ignoreregex` is used).
//!
//! The report has fail2ban-regex's layout and counts; `-o/--out TOKEN` prints only one token of
//! every failure, `--json` one JSON object per matched line.
//!
//! Layout: [`input`] (line reader: 1 MiB buffer, one reused line buffer, 64 KiB line cap,
//! incomplete last line dropped as fail2ban does), [`load`] (argument resolution), `run`
//! (the scan), `report` (statistics and the printed report), `out` (`-o` and `--json`).

use clap::Args;

pub mod input;
pub mod load;
mod out;
mod report;
mod run;

/// Arguments of `ferroban regex` (fail2ban-regex's options).
#[derive(Debug, Clone, Args)]
pub struct RegexArgs {
    /// A log file, a single log line, or `systemd-journal[...]`.
    pub log: String,
    /// A failregex, a filter name with optional `[k=v]` options, or a filter file.
    pub regex: String,
    /// An ignoreregex or a filter file.
    pub ignoreregex: Option<String>,
    /// Configuration directory (for filter names).
    #[arg(short = 'c', long = "config", default_value = "/etc/fail2ban")]
    pub config: String,
    /// Custom date pattern.
    #[arg(short = 'd', long = "datepattern")]
    pub datepattern: Option<String>,
    /// Time zone for dates without one.
    #[arg(long = "timezone", visible_alias = "TZ")]
    pub timezone: Option<String>,
    /// Log file encoding.
    #[arg(short = 'e', long = "encoding")]
    pub encoding: Option<String>,
    /// Raw hosts: never resolve DNS.
    #[arg(short = 'r', long = "raw")]
    pub raw: bool,
    /// `usedns` for `<HOST>` (yes, no, warn, raw).
    #[arg(long = "usedns")]
    pub usedns: Option<String>,
    /// maxlines for multi-line regexes.
    #[arg(short = 'L', long = "maxlines", default_value_t = 0)]
    pub maxlines: usize,
    /// journalctl-style matches (systemd-journal only).
    #[arg(short = 'm', long = "journalmatch")]
    pub journalmatch: Option<String>,
    /// Log level of ferroban's own logger.
    #[arg(short = 'l', long = "log-level", default_value = "critical")]
    pub log_level: String,
    /// Increase verbosity.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Set numerical level of verbosity (0..4).
    #[arg(long = "verbosity")]
    pub verbosity: Option<u8>,
    /// Show date patterns and regexes in the output.
    #[arg(long = "verbose-date", visible_alias = "VD")]
    pub verbose_date: bool,
    /// Report only the first matching failregex of a line.
    #[arg(long = "no-check-all")]
    pub no_check_all: bool,
    /// Print only this token of each failure (row, id, ip, msg, host, ip4, ip6, dns, matches, ...).
    #[arg(short = 'o', long = "out")]
    pub out: Option<String>,
    /// Do not print missed lines.
    #[arg(long = "print-no-missed")]
    pub print_no_missed: bool,
    /// Do not print ignored lines.
    #[arg(long = "print-no-ignored")]
    pub print_no_ignored: bool,
    /// Print all matched lines.
    #[arg(long = "print-all-matched")]
    pub print_all_matched: bool,
    /// Print all missed lines.
    #[arg(long = "print-all-missed")]
    pub print_all_missed: bool,
    /// Print all ignored lines.
    #[arg(long = "print-all-ignored")]
    pub print_all_ignored: bool,
    /// Print one JSON object per matched line instead of the report.
    #[arg(long = "json")]
    pub json: bool,
}

/// Runs `ferroban regex`; returns the process exit code.
pub fn run(args: &RegexArgs) -> anyhow::Result<i32> {
    run::run(args)
}
