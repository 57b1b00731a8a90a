//! Running firewall tools: argv without a shell, optional stdin, a timeout, and a log of every
//! invocation (tests count them).

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::FirewallError;

/// How much of a batch is quoted in an error.
const INPUT_EXCERPT: usize = 2000;

/// What a finished command printed.
#[derive(Debug)]
pub(crate) struct Output {
    pub success: bool,
    pub status: String,
    pub stdout: String,
    pub stderr: String,
}

/// Runs firewall commands, optionally under a prefix such as `ip netns exec NS` (tests run the
/// backends inside a network namespace this way; the daemon uses no prefix).
#[derive(Debug, Clone)]
pub struct Runner {
    prefix: Vec<String>,
    timeout: Duration,
    log: Arc<Mutex<Vec<Vec<String>>>>,
}

impl Default for Runner {
    fn default() -> Self {
        Runner::new()
    }
}

impl Runner {
    /// No prefix, 120 s timeout per command.
    pub fn new() -> Runner {
        Runner {
            prefix: Vec::new(),
            timeout: Duration::from_secs(120),
            log: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Every command becomes `prefix... program args...`.
    pub fn with_prefix<S: Into<String>>(prefix: impl IntoIterator<Item = S>) -> Runner {
        Runner {
            prefix: prefix.into_iter().map(Into::into).collect(),
            ..Runner::new()
        }
    }

    /// The words every command is prefixed with.
    pub(crate) fn prefix(&self) -> &[String] {
        &self.prefix
    }

    /// A command still running after `timeout` is killed and reported as failed.
    pub fn with_timeout(mut self, timeout: Duration) -> Runner {
        self.timeout = timeout;
        self
    }

    /// Every command run so far (without the prefix), oldest first.
    pub fn history(&self) -> Vec<Vec<String>> {
        self.log.lock().expect("runner log").clone()
    }

    /// How many commands were run so far.
    pub fn invocations(&self) -> usize {
        self.log.lock().expect("runner log").len()
    }

    /// Forgets the history.
    pub fn clear_history(&self) {
        self.log.lock().expect("runner log").clear();
    }

    /// Runs `argv`, feeding `input` on stdin; fails unless it exits 0.
    pub(crate) async fn run(
        &self,
        argv: &[&str],
        input: Option<&str>,
    ) -> Result<Output, FirewallError> {
        let out = self.run_any(argv, input).await?;
        if out.success {
            Ok(out)
        } else {
            Err(command_error(argv, &out, input))
        }
    }

    /// Runs `argv` and returns how it ended, whatever the exit status.
    pub(crate) async fn run_any(
        &self,
        argv: &[&str],
        input: Option<&str>,
    ) -> Result<Output, FirewallError> {
        self.log
            .lock()
            .expect("runner log")
            .push(argv.iter().map(|s| s.to_string()).collect());
        let full: Vec<&str> = self
            .prefix
            .iter()
            .map(String::as_str)
            .chain(argv.iter().copied())
            .collect();
        let spawn_err = |e: std::io::Error| FirewallError::Command {
            command: full.join(" "),
            status: format!("could not be started ({e})"),
            stderr: String::new(),
            input: String::new(),
        };
        let mut cmd = tokio::process::Command::new(full[0]);
        cmd.args(&full[1..])
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(spawn_err)?;
        let stdin = child.stdin.take();
        let feed = async move {
            if let (Some(text), Some(mut stdin)) = (input, stdin) {
                // A tool that exits early closes the pipe: its exit status tells why.
                let _ = stdin.write_all(text.as_bytes()).await;
                let _ = stdin.shutdown().await;
            }
        };
        // Feed stdin while the output is read, so neither pipe can fill up and stall the tool.
        let run = async {
            let ((), out) = tokio::join!(feed, child.wait_with_output());
            out
        };
        let output = match tokio::time::timeout(self.timeout, run).await {
            Ok(r) => r.map_err(spawn_err)?,
            Err(_) => {
                return Err(FirewallError::Command {
                    command: full.join(" "),
                    status: format!("timed out after {:?} (killed)", self.timeout),
                    stderr: String::new(),
                    input: excerpt(input),
                });
            }
        };
        Ok(Output {
            success: output.status.success(),
            status: output.status.to_string(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

pub(crate) fn command_error(argv: &[&str], out: &Output, input: Option<&str>) -> FirewallError {
    FirewallError::Command {
        command: argv.join(" "),
        status: format!("failed with {}", out.status),
        stderr: out.stderr.clone(),
        input: excerpt(input),
    }
}

fn excerpt(input: Option<&str>) -> String {
    let Some(text) = input else {
        return String::new();
    };
    if text.len() <= INPUT_EXCERPT {
        return text.to_string();
    }
    let mut end = INPUT_EXCERPT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes in all)", &text[..end], text.len())
}
