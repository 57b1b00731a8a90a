//! Running one command through `/bin/sh -c` in its own process group, with a timeout that kills
//! the whole group (SIGTERM, then SIGKILL 0.2 s later), capturing stdout and stderr, and logging
//! the way fail2ban's `executeCmd` does.

use std::fmt;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use super::tags::ShellCommand;
use super::{LogSink, Severity, pyfmt};

/// Grace given to the pipes after the shell is gone (a background process may hold them).
const PIPE_GRACE: Duration = Duration::from_millis(200);
/// Time between SIGTERM and SIGKILL of a timed-out group (fail2ban's sleep interval).
const TERM_GRACE: Duration = Duration::from_millis(200);
/// How long to wait for a SIGKILLed shell to be reaped.
const REAP_LIMIT: Duration = Duration::from_secs(5);
/// Captured output kept per stream.
const OUTPUT_LIMIT: usize = 1 << 20;

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The shell exited with this code.
    Code(i32),
    /// The shell was killed by this signal (not by us).
    Signal(i32),
    /// The timeout expired; the process group was sent SIGTERM and SIGKILL. `reaped` tells
    /// whether the shell was gone afterwards.
    TimedOut {
        /// The configured timeout, as configured (`60`, `0.2`).
        after: String,
        /// The shell was reaped after the kill.
        reaped: bool,
    },
    /// The shell could not be started.
    SpawnFailed(String),
}

impl Exit {
    /// True for exit code 0.
    pub fn success(&self) -> bool {
        *self == Exit::Code(0)
    }

    /// Python's `returncode`: the exit code, or minus the signal number.
    pub fn return_code(&self) -> Option<i32> {
        match self {
            Exit::Code(c) => Some(*c),
            Exit::Signal(s) => Some(-s),
            _ => None,
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(c) if *c > 128 => {
                write!(f, "return code {c} (killed with {})", signal_name(c - 128))
            }
            Exit::Code(c) => write!(f, "return code {c}"),
            Exit::Signal(s) => write!(f, "killed with {} (return code: -{s})", signal_name(*s)),
            Exit::TimedOut {
                after,
                reaped: true,
            } => {
                write!(f, "timed out after {after} seconds (process group killed)")
            }
            Exit::TimedOut {
                after,
                reaped: false,
            } => write!(
                f,
                "timed out after {after} seconds (process group killed, shell not reaped)"
            ),
            Exit::SpawnFailed(e) => write!(f, "could not start /bin/sh: {e}"),
        }
    }
}

/// The result of one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// How it ended.
    pub exit: Exit,
    /// Captured standard output (lossy UTF-8, at most 1 MiB).
    pub stdout: String,
    /// Captured standard error (lossy UTF-8, at most 1 MiB).
    pub stderr: String,
}

/// The name of signal `n` (`SIGTERM`), or `signal n`.
pub fn signal_name(n: i32) -> String {
    let name = match n {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGCONT => "SIGCONT",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGTSTP => "SIGTSTP",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        _ => return format!("signal {n}"),
    };
    name.to_string()
}

/// Identifies one execution in the log lines (fail2ban prints an object id in hex).
fn next_exec_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0x7f00_0000_0000);
    NEXT.fetch_add(0x30, Ordering::Relaxed)
}

fn log(sink: &LogSink, level: Severity, message: String) {
    sink.emit(level, "fail2ban.utils", &message);
}

/// Sends `sig` to the process group `pgid` (a group this module created).
fn kill_group(pgid: u32, sig: i32) {
    if let Ok(pgid) = libc::pid_t::try_from(pgid)
        && pgid > 1
    {
        // SAFETY: plain syscall; the group id is that of our own, not yet reaped, child.
        unsafe {
            libc::killpg(pgid, sig);
        }
    }
}

/// Kills the process group when the command's future is dropped before the shell was reaped
/// (the caller gave up on it): nothing the command started outlives it.
struct GroupGuard {
    pgid: u32,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            kill_group(self.pgid, libc::SIGKILL);
        }
    }
}

struct Capture {
    buf: Vec<u8>,
    eof: bool,
}

impl Capture {
    fn new(present: bool) -> Self {
        Capture {
            buf: Vec::new(),
            eof: !present,
        }
    }

    fn push(&mut self, data: &[u8]) {
        let room = OUTPUT_LIMIT.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&data[..data.len().min(room)]);
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }
}

/// Reads one chunk of an optional pipe into `cap` (never ready when the pipe is absent or done).
async fn read_chunk<R: tokio::io::AsyncRead + Unpin>(
    pipe: &mut Option<R>,
    scratch: &mut [u8],
) -> usize {
    match pipe {
        Some(p) => p.read(scratch).await.unwrap_or(0),
        None => std::future::pending().await,
    }
}

enum Phase {
    /// Waiting for the shell, until the timeout.
    Running,
    /// Timed out, SIGTERM sent; SIGKILL at the deadline.
    Terminating,
    /// SIGKILL sent; reaping.
    Killed,
    /// The shell is reaped; draining pipes until EOF or the deadline.
    Draining,
}

/// Runs `cmd` with `/bin/sh -c` (parameters as `$0`, `$1`, ...) in a new process group.
/// `timeout_text` is the timeout as configured, for messages.
pub async fn run(
    cmd: &ShellCommand,
    timeout: Duration,
    timeout_text: &str,
    sink: &LogSink,
) -> Output {
    let id = next_exec_id();
    log(sink, Severity::Trace, cmd.to_string());
    let mut command = tokio::process::Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(&cmd.script)
        .args(&cmd.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            log(sink, Severity::Error, format!("{id:x} -- exec: {cmd}"));
            let msg = format!("{cmd} -- failed with {e}");
            log(sink, Severity::Error, msg.clone());
            return Output {
                exit: Exit::SpawnFailed(e.to_string()),
                stdout: String::new(),
                stderr: msg,
            };
        }
    };
    let pgid = child.id().unwrap_or(0);
    // Declared after `child`, so it is dropped first, while the shell is not yet reaped.
    let mut guard = GroupGuard { pgid, armed: true };
    let mut out_pipe = child.stdout.take();
    let mut err_pipe = child.stderr.take();
    let mut out = Capture::new(out_pipe.is_some());
    let mut err = Capture::new(err_pipe.is_some());
    let mut out_scratch = vec![0u8; 8192];
    let mut err_scratch = vec![0u8; 8192];
    let mut phase = Phase::Running;
    let mut deadline = Instant::now() + timeout;
    let mut exit: Option<Exit> = None;
    let mut timed_out = false;
    loop {
        if matches!(phase, Phase::Draining) && out.eof && err.eof {
            break;
        }
        let may_reap = matches!(phase, Phase::Running | Phase::Killed);
        tokio::select! {
            status = child.wait(), if may_reap => {
                exit = Some(match status {
                    Ok(s) => {
                        use std::os::unix::process::ExitStatusExt;
                        match (s.code(), s.signal()) {
                            (Some(c), _) => Exit::Code(c),
                            (None, Some(sig)) => Exit::Signal(sig),
                            (None, None) => Exit::Code(-1),
                        }
                    }
                    Err(e) => Exit::SpawnFailed(e.to_string()),
                });
                guard.armed = false;
                phase = Phase::Draining;
                deadline = Instant::now() + PIPE_GRACE;
            }
            n = read_chunk(&mut out_pipe, &mut out_scratch), if !out.eof => {
                if n == 0 { out.eof = true; out_pipe = None; } else { out.push(&out_scratch[..n]); }
            }
            n = read_chunk(&mut err_pipe, &mut err_scratch), if !err.eof => {
                if n == 0 { err.eof = true; err_pipe = None; } else { err.push(&err_scratch[..n]); }
            }
            () = tokio::time::sleep_until(deadline) => match phase {
                Phase::Running => {
                    timed_out = true;
                    log(sink, Severity::Error, format!("{id:x} -- exec: {cmd}"));
                    log(sink, Severity::Error, format!("{id:x} -- timed out after {timeout_text} seconds."));
                    kill_group(pgid, libc::SIGTERM);
                    phase = Phase::Terminating;
                    deadline = Instant::now() + TERM_GRACE;
                }
                Phase::Terminating => {
                    kill_group(pgid, libc::SIGKILL);
                    phase = Phase::Killed;
                    deadline = Instant::now() + REAP_LIMIT;
                }
                Phase::Killed => {
                    phase = Phase::Draining;
                    deadline = Instant::now() + PIPE_GRACE;
                }
                Phase::Draining => break,
            },
        }
    }
    let exit = if timed_out {
        Exit::TimedOut {
            after: timeout_text.to_string(),
            reaped: exit.is_some(),
        }
    } else {
        exit.unwrap_or(Exit::Code(-1))
    };
    let output = Output {
        exit,
        stdout: out.text(),
        stderr: err.text(),
    };
    log_result(id, cmd, &output, timed_out, sink);
    output
}

/// The log lines fail2ban writes after a command: the command (on failure), its output lines and
/// how it ended.
fn log_result(id: u64, cmd: &ShellCommand, o: &Output, timed_out: bool, sink: &LogSink) {
    let ok = o.exit.success();
    let level = if ok { Severity::Debug } else { Severity::Error };
    if !timed_out {
        let exec_level = if ok { Severity::Trace } else { Severity::Error };
        log(sink, exec_level, format!("{id:x} -- exec: {cmd}"));
    }
    for (name, text) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
        for line in text.lines() {
            log(
                sink,
                level,
                format!("{id:x} -- {name}: {}", pyfmt::repr(line)),
            );
        }
    }
    match &o.exit {
        Exit::Code(0) => log(
            sink,
            Severity::Debug,
            format!("{id:x} -- returned successfully 0"),
        ),
        Exit::Code(c) if *c > 128 => log(
            sink,
            Severity::Error,
            format!(
                "{id:x} -- killed with {} (return code: {c})",
                signal_name(c - 128)
            ),
        ),
        Exit::Code(c) => {
            log(sink, Severity::Error, format!("{id:x} -- returned {c}"));
            if *c == 127 {
                log(
                    sink,
                    Severity::Info,
                    format!(
                        "HINT on 127: \"Command not found\". A command of {:?} is not in the \
                         PATH of the ferroban daemon.",
                        cmd.script
                    ),
                );
            }
        }
        Exit::Signal(s) => log(
            sink,
            Severity::Error,
            format!(
                "{id:x} -- killed with {} (return code: -{s})",
                signal_name(*s)
            ),
        ),
        Exit::TimedOut { reaped: false, .. } => log(
            sink,
            Severity::Error,
            format!("{id:x} -- unable to kill the process group of the command"),
        ),
        Exit::TimedOut { reaped: true, .. } => log(
            sink,
            Severity::Error,
            format!("{id:x} -- killed with SIGKILL after the timeout"),
        ),
        Exit::SpawnFailed(_) => {}
    }
}
