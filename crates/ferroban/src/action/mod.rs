//! Actions: fail2ban `action.d` shell actions, run as fail2ban runs them.
//!
//! A [`CommandAction`] is built from a resolved [`ferroban_config::ActionDef`]. Its commands are
//! completed in two stages (see [`tags`]): static tags from the action's properties (init
//! options, commands, `timeout`; conditional `tag?family=inet6` values for the family of the
//! ticket), then run-time tags from a [`BanInfo`] (`<ip>`, `<F-USER>`, `<matches>`, ...). Run-time
//! values that contain any shell-special character never enter the script: they are passed to
//! `/bin/sh -c` as positional parameters and referred to as `$f2bV_<tag>`, exactly as fail2ban
//! 1.0 does (braced where text right after the tag would extend the name); addresses are checked to be addresses before they are substituted.
//!
//! Commands run with `/bin/sh -c` in their own process group ([`exec`]); a command that outlives
//! the action's `timeout` (default 60 s) has its whole group killed and fails with
//! [`Exit::TimedOut`]. Start/stop follow fail2ban's per-family bookkeeping: with conditional
//! options (or `actionstart_on_demand = true`) `actionstart` runs on the first ban of each family,
//! `actionstop`/`actionflush` run once per started family (the same command only once), and a
//! failed ban is retried once after `actioncheck`/`actionrepair` (or stop + start) restored the
//! environment.
//!
//! Python actions (`action.d/*.py`) are not supported: [`CommandAction::new`] refuses them.

mod command;
pub mod exec;
mod info;
pub mod pyfmt;
pub mod tags;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_f2b;

use std::fmt;
use std::sync::Arc;

pub use command::{CommandAction, Operation};
pub use exec::{Exit, Output};
pub use info::{BanInfo, TicketTime, family_of, reverse_lookup};
pub use tags::ShellCommand;

/// Severity of a log record produced by an action (fail2ban's levels; `Trace` is its level 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// `CRITICAL`.
    Critical,
    /// `ERROR`.
    Error,
    /// `WARNING`.
    Warning,
    /// `NOTICE`.
    Notice,
    /// `INFO`.
    Info,
    /// `DEBUG`.
    Debug,
    /// Below `DEBUG` (the executed command on success).
    Trace,
}

/// Where an action's log records go: `(severity, logger name, message)`, the logger name being
/// fail2ban's (`fail2ban.utils` for command execution, `fail2ban.actions` for the action).
#[derive(Clone, Default)]
pub struct LogSink(Option<Arc<LogFn>>);

/// The function behind a [`LogSink`].
type LogFn = dyn Fn(Severity, &str, &str) + Send + Sync;

impl LogSink {
    /// A sink calling `f` for each record.
    pub fn new(f: impl Fn(Severity, &str, &str) + Send + Sync + 'static) -> Self {
        LogSink(Some(Arc::new(f)))
    }

    /// A sink dropping every record.
    pub fn none() -> Self {
        LogSink(None)
    }

    /// Emits one record.
    pub fn emit(&self, level: Severity, logger: &str, message: &str) {
        if let Some(f) = &self.0 {
            f(level, logger, message);
        }
    }
}

impl fmt::Debug for LogSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "LogSink(..)"
        } else {
            "LogSink(none)"
        })
    }
}

/// A command that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandFailure {
    /// The jail.
    pub jail: String,
    /// The action's name in the jail (`actname`).
    pub action: String,
    /// What was being done.
    pub operation: Operation,
    /// The command as run (script and parameters).
    pub command: ShellCommand,
    /// How it ended.
    pub exit: Exit,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl fmt::Display for CommandFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "jail '{}' action '{}': {} failed: {}: {}",
            self.jail, self.action, self.operation, self.exit, self.command
        )?;
        let stderr = self.stderr.trim_end();
        if !stderr.is_empty() {
            write!(f, "; stderr: {}", pyfmt::repr(stderr))?;
        }
        Ok(())
    }
}

/// What replaces fail2ban's stock Python actions (`action.d/<name>.py`), which ferroban cannot
/// run: the shell action (fail2ban's own `action.d/*.conf`) that does the same job.
/// - `smtp.py` (mail through an SMTP server, with whois and the matched lines):
///   `sendmail-whois-lines` (or `mail-whois-lines`, `sendmail`, `mail`), which send the same
///   notices through the local MTA; smtp.py's `host`, `user` and `password` become the MTA's
///   relay settings.
/// - `badips.py` (reports to and blocklists from badips.com, a service that has closed; fail2ban
///   1.0 removed it): `abuseipdb` reports to AbuseIPDB.
pub fn python_action_replacement(file: &str) -> Option<&'static str> {
    let stem = std::path::Path::new(file).file_stem()?.to_str()?;
    match stem {
        "smtp" => Some(
            "use action = sendmail-whois-lines[...] (or mail-whois-lines, sendmail, mail): the same \
             ban and unban mails through the local MTA (smtp.py's host/user/password become the \
             MTA's relay settings)",
        ),
        "badips" => Some(
            "the badips.com service it used has closed (fail2ban 1.0 removed badips.py); use \
             action = abuseipdb[abuseipdb_apikey=...] to report to AbuseIPDB",
        ),
        _ => None,
    }
}

/// Why an action operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// The action is a Python action (`action.d/<name>.py`).
    #[error(
        "jail '{jail}' action '{action}': {path}: Python actions are not supported by ferroban; \
         {instead}"
    )]
    PythonAction {
        /// What to use instead: the native action that does the same for fail2ban's stock Python
        /// actions ([`python_action_replacement`]), a shell action from `action.d/*.conf`
        /// otherwise.
        instead: String,
        /// The jail.
        jail: String,
        /// The action's name.
        action: String,
        /// The `.py` file.
        path: String,
    },
    /// The action's definition is unusable (e.g. a `families` value that is not a word).
    #[error("jail '{jail}' action '{action}': {message}")]
    Definition {
        /// The jail.
        jail: String,
        /// The action's name.
        action: String,
        /// What is wrong.
        message: String,
    },
    /// Tags could not be substituted (self-referencing definitions).
    #[error("jail '{jail}' action '{action}': {operation}: tag substitution failed: {message}")]
    Tags {
        /// The jail.
        jail: String,
        /// The action's name.
        action: String,
        /// What was being done.
        operation: Operation,
        /// What went wrong.
        message: String,
    },
    /// A ticket's address failed validation; nothing was run.
    #[error("jail '{jail}' action '{action}': {operation}: refusing to substitute {message}")]
    InvalidId {
        /// The jail.
        jail: String,
        /// The action's name.
        action: String,
        /// What was being done.
        operation: Operation,
        /// What is wrong with the id.
        message: String,
    },
    /// A command failed (exit status, signal, timeout or spawn failure).
    #[error("{0}")]
    Command(Box<CommandFailure>),
}

impl ActionError {
    /// The failed command, when a command failed.
    pub fn failure(&self) -> Option<&CommandFailure> {
        match self {
            ActionError::Command(f) => Some(f),
            _ => None,
        }
    }
}
