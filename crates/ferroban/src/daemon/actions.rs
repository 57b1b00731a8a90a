//! The per-jail action task: runs the jail's actions for each ban and unban, in order, as
//! fail2ban's per-jail action thread does. Errors are logged; they never stop the jail.

use ferroban_config::JailDef;
use tokio::sync::{mpsc, oneshot};

use super::jail::Ticket;
use super::log::{self, Level};
use crate::action::{BanInfo, CommandAction, LogSink, TicketTime};
use crate::flog;

/// A ban for the actions, with the id's matches from the store when a command wants them.
#[derive(Debug)]
pub struct BanJob {
    /// The ban.
    pub ticket: Ticket,
    /// `<ipmatches>`.
    pub ipmatches: Option<Vec<String>>,
    /// `<ipjailmatches>`.
    pub ipjailmatches: Option<Vec<String>>,
}

/// Work for the action task.
#[derive(Debug)]
pub enum Job {
    /// `actionstart` (each action, unless it starts on demand).
    Start,
    /// `actionban`.
    Ban(Box<BanJob>),
    /// `actionunban`.
    Unban(Box<Ticket>),
    /// Jail stop: remove `tickets` from the firewall (`actionflush`, or `actionunban` each), then
    /// `actionstop`; then report on `done` and end.
    Stop {
        /// The bans in force.
        tickets: Vec<Ticket>,
        /// Signalled when finished.
        done: oneshot::Sender<()>,
    },
}

/// Builds the jail's actions. A Python action or an unusable definition fails the jail.
pub fn build(def: &JailDef) -> Result<Vec<CommandAction>, String> {
    let sink = LogSink::new(|sev, logger, msg| {
        let module = logger.strip_prefix("fail2ban.").unwrap_or(logger);
        let level: Level = sev;
        if log::enabled(level) {
            log::log(level, module, msg);
        }
    });
    let bantime = def.bantime.unwrap_or(super::jail::DEFAULT_BANTIME);
    def.actions
        .iter()
        .map(|a| {
            let mut act = CommandAction::new(a, &def.name)
                .map_err(|e| e.to_string())?
                .with_log(sink.clone());
            act.set_jail_bantime(bantime as i64);
            Ok(act)
        })
        .collect()
}

/// Whether any action substitutes `tag` (so the daemon fetches the value only then).
pub fn uses_tag(actions: &[CommandAction], tag: &str) -> bool {
    actions.iter().any(|a| a.uses_tag(tag))
}

fn info_of(t: &Ticket) -> BanInfo {
    let mut info = BanInfo::new(t.id.clone(), TicketTime::Float(t.time));
    info.failures = u64::from(t.failures);
    info.bantime = if t.bantime < 0.0 {
        -1
    } else {
        t.bantime.round() as i64
    };
    info.ticket_bantime = Some(info.bantime);
    info.bancount = t.ban_count.saturating_sub(1);
    info.matches = t.matches.clone();
    info.restored = t.restored;
    info.fields = t.fields.clone();
    info
}

/// Runs the jobs of jail `jail` until [`Job::Stop`] (or until the queue closes).
pub async fn worker(
    jail: String,
    mut actions: Vec<CommandAction>,
    mut rx: mpsc::UnboundedReceiver<Job>,
) {
    while let Some(job) = rx.recv().await {
        match job {
            Job::Start => {
                for a in &mut actions {
                    let cleaned = a.clean_stale().await;
                    if !cleaned.is_empty() {
                        flog!(
                            Warning,
                            "actions",
                            "[{jail}] action '{}' was not stopped cleanly before (found by actioncheck); stopped it before starting again",
                            a.name()
                        );
                    }
                    if let Err(e) = a.start().await {
                        flog!(
                            Error,
                            "actions",
                            "Failed to start jail '{jail}' action '{}': {e}",
                            a.name()
                        );
                    }
                }
            }
            Job::Ban(b) => {
                let mut info = info_of(&b.ticket);
                info.ipmatches = b.ipmatches;
                info.ipjailmatches = b.ipjailmatches;
                for a in &mut actions {
                    if let Err(e) = a.ban(&info).await {
                        flog!(
                            Error,
                            "actions",
                            "Failed to execute ban jail '{jail}' action '{}' info '{}': {e}",
                            a.name(),
                            b.ticket.id
                        );
                    }
                }
            }
            Job::Unban(t) => {
                let info = info_of(&t);
                for a in &mut actions {
                    if let Err(e) = a.unban(&info).await {
                        flog!(
                            Error,
                            "actions",
                            "Failed to execute unban jail '{jail}' action '{}' info '{}': {e}",
                            a.name(),
                            t.id
                        );
                    }
                }
            }
            Job::Stop { tickets, done } => {
                for a in actions.iter_mut().rev() {
                    if a.has_flush() {
                        if let Err(e) = a.flush().await {
                            flog!(
                                Error,
                                "actions",
                                "Failed to flush jail '{jail}' action '{}': {e}",
                                a.name()
                            );
                        }
                    } else {
                        for t in &tickets {
                            if let Err(e) = a.unban(&info_of(t)).await {
                                flog!(
                                    Error,
                                    "actions",
                                    "Failed to unban jail '{jail}' action '{}' info '{}': {e}",
                                    a.name(),
                                    t.id
                                );
                            }
                        }
                    }
                    if let Err(e) = a.stop().await {
                        flog!(
                            Error,
                            "actions",
                            "Failed to stop jail '{jail}' action '{}': {e}",
                            a.name()
                        );
                    }
                }
                let _ = done.send(());
                return;
            }
        }
    }
}
