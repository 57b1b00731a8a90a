//! `ferroban client` / `fail2ban-client`: sends one command to the server and prints the answer
//! as fail2ban-client 1.0.2 does.
//!
//! Command line: options (getopt style, stopping at the first command word), then the command.
//! `-c DIR`, `-s SOCKET`, `-p`, `--loglevel`, `--logtarget`, `--syslogsocket`, `-x`, `-b`,
//! `-f`, `-v`, `-q`, `--timeout`, `--str2sec`, `-h`, `-V`/`--version` as fail2ban-client, plus
//! `--json` ([`super::json_output`]). The socket is `-s`, else `socket` of `[Definition]` in
//! the configuration's fail2ban.conf/.local, else `/var/run/fail2ban/fail2ban.sock`.
//!
//! Commands go to the server as they are typed, except:
//! - `start`: launches `<this program> server -b -c DIR -s SOCKET [...]` (`-f`: runs it in place
//!   of the client) and waits until it answers `ping`, then prints `Server ready`;
//! - `restart`: `stop`, wait until the server is gone, `start`; `restart ... <JAIL>` is
//!   `reload --restart ... <JAIL>`;
//! - `reload [OPTS] [<JAIL>|--all]`: checked like fail2ban-client, sent with an explicit target;
//! - `ping [TIMEOUT]`: `ping` with a timeout in seconds;
//! - `help`: prints the help.
//!
//! Output: the beautified value on stdout ([`super::beautify`]); errors as fail2ban-client
//! prints them: the server's message on stdout and a log line on stderr
//! (`2026-11-25 14:08:31,009 fail2ban                [1234]: ERROR   NOK: ('x',)`). Exit status
//! 0 on success, 255 on failure, as fail2ban-client.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::beautify::render;
use super::cmd::{self, ClientAction};
use super::help::usage;
use super::json_output;
use super::proto::{MAX_RESPONSE_BYTES, Request, Response, nok_args};
use super::pyrepr::{float_repr, repr};

mod wire;

/// The fail2ban version whose client and protocol this one reproduces.
pub const FAIL2BAN_VERSION: &str = "1.0.2";

/// The socket when neither `-s` nor the configuration names one.
pub const DEFAULT_SOCKET: &str = "/var/run/fail2ban/fail2ban.sock";

/// The configuration directory when `-c` is not given.
pub const DEFAULT_CONF: &str = "/etc/fail2ban";

/// fail2ban-client's default `--timeout`, seconds.
const DEFAULT_TIMEOUT: f64 = 30.0;

/// Runs the client with `args` (the words after `ferroban client` / `fail2ban-client`) and
/// returns the exit status.
pub fn run(args: &[String]) -> anyhow::Result<u8> {
    let program = match std::env::args_os().next().as_deref().map(Path::new) {
        Some(p) if p.file_name().is_some_and(|n| n == "fail2ban-client") => "fail2ban-client",
        _ => "ferroban client",
    };
    let exe = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("cannot find this program's path (for `start`): {e}"))?;
    let server = ServerCommand {
        program: exe,
        args: Vec::new(),
    };
    let stdout = io::stdout();
    let stderr = io::stderr();
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    Ok(Client::new(program, server, &mut out, &mut err).run(args))
}

/// How `start` launches the server: `program args... server -b -c DIR -s SOCKET ...`.
#[derive(Debug, Clone)]
pub struct ServerCommand {
    /// The executable (this program).
    pub program: PathBuf,
    /// Words before `server`.
    pub args: Vec<String>,
}

/// Log levels of the client's stderr lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Debug = 10,
    Info = 20,
    Warning = 30,
    Error = 40,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
        }
    }
}

/// The options of one run.
#[derive(Debug, Clone)]
struct Opts {
    conf: PathBuf,
    conf_given: bool,
    socket: Option<PathBuf>,
    pidfile: Option<String>,
    loglevel: Option<String>,
    logtarget: Option<String>,
    syslogsocket: Option<String>,
    verbose: i32,
    force: bool,
    background: bool,
    timeout: f64,
    json: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            conf: PathBuf::from(DEFAULT_CONF),
            conf_given: false,
            socket: None,
            pidfile: None,
            loglevel: None,
            logtarget: None,
            syslogsocket: None,
            verbose: 1,
            force: false,
            background: true,
            timeout: DEFAULT_TIMEOUT,
            json: false,
        }
    }
}

/// One parsed option: its canonical name and its argument.
type Opt = (&'static str, Option<String>);

/// Long options: (name, takes an argument).
const LONG: &[(&str, bool)] = &[
    ("loglevel", true),
    ("logtarget", true),
    ("syslogsocket", true),
    ("test", false),
    ("async", false),
    ("conf", true),
    ("pidfile", true),
    ("pname", true),
    ("socket", true),
    ("timeout", true),
    ("str2sec", true),
    ("help", false),
    ("version", false),
    ("dp", false),
    ("dump-pretty", false),
    ("json", false),
];

const SHORT_FLAGS: &str = "hxfbdtviqV";
const SHORT_WITH_ARG: &str = "csp";

/// Splits `args` into options and the command, getopt style (options stop at the first word
/// that is not one, or after `--`).
fn getopt(args: &[String]) -> Result<(Vec<Opt>, Vec<String>), String> {
    let mut opts = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            i += 1;
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let exact = LONG.iter().find(|(n, _)| *n == name);
            let candidates: Vec<&(&str, bool)> = match exact {
                Some(e) => vec![e],
                None => LONG.iter().filter(|(n, _)| n.starts_with(name)).collect(),
            };
            let &(full, takes) = match candidates.as_slice() {
                [one] => *one,
                [] => return Err(format!("option --{name} not recognized")),
                _ => return Err(format!("option --{name} not a unique prefix")),
            };
            let value = if takes {
                match inline {
                    Some(v) => Some(v),
                    None => {
                        i += 1;
                        Some(
                            args.get(i)
                                .cloned()
                                .ok_or_else(|| format!("option --{full} requires argument"))?,
                        )
                    }
                }
            } else if inline.is_some() {
                return Err(format!("option --{full} must not have an argument"));
            } else {
                None
            };
            opts.push((full, value));
            i += 1;
            continue;
        }
        if a.len() > 1 && a.starts_with('-') {
            let chars: Vec<char> = a[1..].chars().collect();
            let mut j = 0;
            while j < chars.len() {
                let c = chars[j];
                let name = short_name(c).ok_or_else(|| format!("option -{c} not recognized"))?;
                if SHORT_WITH_ARG.contains(c) {
                    let rest: String = chars[j + 1..].iter().collect();
                    let value = if rest.is_empty() {
                        i += 1;
                        args.get(i)
                            .cloned()
                            .ok_or_else(|| format!("option -{c} requires argument"))?
                    } else {
                        rest
                    };
                    opts.push((name, Some(value)));
                    break;
                }
                opts.push((name, None));
                j += 1;
            }
            i += 1;
            continue;
        }
        break;
    }
    Ok((opts, args[i..].to_vec()))
}

fn short_name(c: char) -> Option<&'static str> {
    if !SHORT_FLAGS.contains(c) && !SHORT_WITH_ARG.contains(c) {
        return None;
    }
    Some(match c {
        'h' => "-h",
        'x' => "-x",
        'f' => "-f",
        'b' => "-b",
        'd' => "-d",
        't' => "-t",
        'v' => "-v",
        'i' => "-i",
        'q' => "-q",
        'V' => "-V",
        'c' => "-c",
        's' => "-s",
        'p' => "-p",
        _ => return None,
    })
}

/// `--str2sec`'s output: Python prints an int unless the expression involved a float (a
/// decimal point, a division, months or years).
fn seconds_text(input: &str, secs: f64) -> String {
    let lower = input.to_ascii_lowercase();
    let mut float = lower.contains('.') || lower.contains('/');
    let mut word = String::new();
    for c in lower.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphabetic() {
            word.push(c);
        } else if !word.is_empty() {
            float |= word.starts_with("mo") || word.starts_with('y');
            word.clear();
        }
    }
    if float || secs.fract() != 0.0 || secs.abs() >= 9e15 {
        float_repr(secs)
    } else {
        format!("{}", secs as i64)
    }
}

/// Python's text for an OS error: `[Errno 111] Connection refused`.
fn os_error_text(e: &io::Error) -> String {
    if matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    ) {
        return "timed out".to_string();
    }
    match e.raw_os_error() {
        Some(code) => {
            let text = e.to_string();
            let desc = text
                .strip_suffix(&format!(" (os error {code})"))
                .unwrap_or(&text)
                .to_string();
            format!("[Errno {code}] {desc}")
        }
        None => e.to_string(),
    }
}

/// Why a command got no answer.
#[derive(Debug)]
enum Failure {
    /// Connecting, writing or reading failed.
    Socket(io::Error),
    /// The answer was not a protocol response.
    Protocol(String),
}

fn access(path: &Path, mode: libc::c_int) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    unsafe { libc::access(c.as_ptr(), mode) == 0 }
}

/// One client run, writing to `out` and `err`.
pub struct Client<'a> {
    program: String,
    server: ServerCommand,
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    opts: Opts,
    socket: PathBuf,
    logging: bool,
    /// The server's protocol, once known.
    wire: std::cell::Cell<Option<wire::Wire>>,
}

impl<'a> Client<'a> {
    /// A client named `program` (for the usage text) that starts servers with `server`.
    pub fn new(
        program: &str,
        server: ServerCommand,
        out: &'a mut dyn Write,
        err: &'a mut dyn Write,
    ) -> Self {
        Client {
            program: program.to_string(),
            server,
            out,
            err,
            opts: Opts::default(),
            socket: PathBuf::from(DEFAULT_SOCKET),
            logging: false,
            wire: std::cell::Cell::new(None),
        }
    }

    /// Prints a line on stdout (a closed stdout is ignored, as fail2ban-client does).
    fn say(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
    }

    /// A stderr log line, in fail2ban's layout, when `-v`/`-q` let `level` through. Before the
    /// command line is read, only the bare message.
    fn log(&mut self, level: Level, logger: &str, message: &str) {
        if !self.logging {
            let _ = writeln!(self.err, "{message}");
            return;
        }
        let threshold = match self.opts.verbose {
            i32::MIN..=0 => Level::Error,
            1 => Level::Warning,
            2 => Level::Info,
            _ => Level::Debug,
        };
        if level < threshold {
            return;
        }
        let now = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::system());
        let _ = writeln!(
            self.err,
            "{},{:03} {logger:<24}[{}]: {:<7} {message}",
            now.strftime("%Y-%m-%d %H:%M:%S"),
            now.subsec_nanosecond() / 1_000_000,
            std::process::id(),
            level.name()
        );
    }

    fn error(&mut self, message: &str) {
        self.log(Level::Error, "fail2ban", message);
    }

    /// A failure of what the client runs itself (`start`, `reload`'s checks, `--file`, ...):
    /// logged as [`Client::error`] does, and with `--json` also the error object on stdout, as
    /// for an error the server answers. Always false.
    fn fail(&mut self, message: &str) -> bool {
        self.error(message);
        if self.opts.json {
            let line = json_output::render_error(message);
            self.say(&line);
        }
        false
    }

    /// Usage on stdout and `Init of command line failed` on stderr: status 255.
    fn bad_command_line(&mut self) -> u8 {
        let text = usage(&self.program);
        let _ = write!(self.out, "{text}");
        self.log(Level::Error, "fail2ban", "Init of command line failed");
        255
    }

    /// A command-line value fail2ban reports as `ERROR: ...` on stdout.
    fn init_error(&mut self, message: &str) -> u8 {
        self.say(&format!("ERROR: {message}"));
        self.log(Level::Error, "fail2ban", "Init of command line failed");
        255
    }

    /// Runs the whole command line; returns the exit status.
    pub fn run(&mut self, args: &[String]) -> u8 {
        let (opts, mut command) = match getopt(args) {
            Ok(p) => p,
            Err(_) => return self.bad_command_line(),
        };
        // `fleet status --json` (ferroban's own command) also takes the option after it.
        if command.first().map(String::as_str) == Some("fleet")
            && let Some(i) = command.iter().position(|w| w == "--json")
        {
            command.remove(i);
            self.opts.json = true;
        }
        if let Some(code) = self.apply(opts) {
            return code;
        }
        self.logging = true;
        if command.is_empty() {
            let text = usage(&self.program);
            let _ = write!(self.out, "{text}");
            return 255;
        }
        if let Err(code) = self.resolve_socket() {
            return code;
        }
        let socket = self.socket.display().to_string();
        self.log(
            Level::Info,
            "fail2ban",
            &format!("Using socket file {socket}"),
        );
        let ok = self.command(command);
        let code = if ok { 0 } else { 255 };
        self.log(Level::Debug, "fail2ban", &format!("Exit with code {code}"));
        let _ = self.out.flush();
        code
    }

    /// Applies the options in order; `Some(status)` when one of them ends the run.
    fn apply(&mut self, opts: Vec<Opt>) -> Option<u8> {
        for (name, value) in opts {
            let value = value.unwrap_or_default();
            match name {
                "-c" | "conf" => {
                    self.opts.conf = PathBuf::from(value);
                    self.opts.conf_given = true;
                }
                "-s" | "socket" => self.opts.socket = Some(PathBuf::from(value)),
                "-p" | "pidfile" => self.opts.pidfile = Some(value),
                "loglevel" => self.opts.loglevel = Some(value),
                "logtarget" => self.opts.logtarget = Some(value),
                "syslogsocket" => self.opts.syslogsocket = Some(value),
                "-v" => self.opts.verbose += 1,
                "-q" => self.opts.verbose -= 1,
                "-x" => self.opts.force = true,
                "-b" => self.opts.background = true,
                "-f" => self.opts.background = false,
                "async" | "pname" => {}
                "json" => self.opts.json = true,
                "timeout" => match ferroban_config::parse_duration(&value) {
                    Ok(secs) if secs > 0.0 => self.opts.timeout = secs,
                    Ok(_) => {
                        return Some(self.init_error(&format!(
                            "--timeout {value}: the timeout must be positive"
                        )));
                    }
                    Err(e) => return Some(self.init_error(&format!("--timeout {value}: {e}"))),
                },
                "str2sec" => {
                    return Some(match ferroban_config::parse_duration(&value) {
                        Ok(secs) => {
                            let text = seconds_text(&value, secs);
                            self.say(&text);
                            0
                        }
                        Err(e) => self.init_error(&format!("--str2sec {value}: {e}")),
                    });
                }
                "-h" | "help" => {
                    let text = usage(&self.program);
                    let _ = write!(self.out, "{text}");
                    return Some(0);
                }
                "-V" => {
                    self.say(FAIL2BAN_VERSION);
                    return Some(0);
                }
                "version" => {
                    let text = format!(
                        "Fail2Ban v{FAIL2BAN_VERSION} (ferroban {})",
                        env!("CARGO_PKG_VERSION")
                    );
                    self.say(&text);
                    return Some(0);
                }
                "-d" | "dp" | "dump-pretty" | "-t" | "test" | "-i" => {
                    let shown = if name.starts_with('-') {
                        name.to_string()
                    } else {
                        format!("--{name}")
                    };
                    self.log(
                        Level::Error,
                        "fail2ban",
                        &format!(
                            "option {shown} is not supported by this client \
                             (use `ferroban server` for configuration tests and dumps)"
                        ),
                    );
                    return Some(255);
                }
                other => unreachable!("getopt returned an unknown option {other}"),
            }
        }
        None
    }

    /// `-s`, else the configuration's `socket`, else the default.
    fn resolve_socket(&mut self) -> Result<(), u8> {
        if let Some(s) = &self.opts.socket {
            self.socket = s.clone();
            return Ok(());
        }
        let conf = self.opts.conf.clone();
        if self.opts.conf_given && !conf.is_dir() {
            self.logging = false;
            return Err(self.init_error(&format!(
                "Base configuration directory {} does not exist",
                conf.display()
            )));
        }
        // The same configuration the server finds: embedded defaults under the directory.
        let loc = crate::defaults::locate(self.opts.conf_given.then_some(conf.as_path()));
        match ferroban_config::read_global_with(&loc.loader()) {
            Ok(g) => self.socket = g.socket,
            Err(ferroban_config::ConfigError::NotFound { .. }) => {
                self.socket = PathBuf::from(DEFAULT_SOCKET);
            }
            Err(e) => {
                self.logging = false;
                return Err(self.init_error(&e.to_string()));
            }
        }
        Ok(())
    }

    /// Sends `argv`, waits for the answer (at most `limit` when given), in the protocol the
    /// server speaks ([`wire`]: found on the first exchange).
    fn transact(
        &self,
        argv: &[String],
        limit: Option<Duration>,
    ) -> Result<Result<Value, String>, Failure> {
        if self.wire.get() == Some(wire::Wire::Fail2ban) {
            return wire::transact(&self.socket, argv, limit);
        }
        let stream = UnixStream::connect(&self.socket).map_err(Failure::Socket)?;
        if self.wire.get().is_none() {
            self.wire.set(wire::peer_wire(&stream));
            if self.wire.get().is_none() && argv != ["ping"] {
                // The peer's program is unknown: learn its protocol from a ping first, so that a
                // request that is slow to answer (a 100,000-address banip) is never taken for
                // the silence of a fail2ban server.
                drop(stream);
                let _pong = self.transact(&["ping".to_string()], Some(wire::PROBE))?;
                return self.transact(argv, limit);
            }
            if self.wire.get() == Some(wire::Wire::Fail2ban) {
                drop(stream);
                return wire::transact(&self.socket, argv, limit);
            }
        }
        stream.set_write_timeout(limit).map_err(Failure::Socket)?;
        (&stream)
            .write_all(Request::new(argv.to_vec()).to_line().as_bytes())
            .map_err(Failure::Socket)?;
        let mut reader = BufReader::new((&stream).take(MAX_RESPONSE_BYTES as u64 + 1));
        if self.wire.get().is_none() {
            // First contact: the first byte of the answer within the probe time, else find out
            // whether this is a fail2ban server (which never answers a JSON line).
            let probe = limit.map_or(wire::PROBE, |l| l.min(wire::PROBE));
            stream
                .set_read_timeout(Some(probe))
                .map_err(Failure::Socket)?;
            match reader.fill_buf() {
                Ok(_) => self.wire.set(Some(wire::Wire::Json)),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) && probe == wire::PROBE =>
                {
                    drop(reader);
                    drop(stream);
                    if wire::answers_fail2ban_ping(&self.socket) {
                        self.wire.set(Some(wire::Wire::Fail2ban));
                        return wire::transact(&self.socket, argv, limit);
                    }
                    return Err(Failure::Protocol(format!(
                        "the server on {} answered neither ferroban's protocol nor fail2ban's \
                         within {} s",
                        self.socket.display(),
                        2 * wire::PROBE.as_secs()
                    )));
                }
                Err(e) => return Err(Failure::Socket(e)),
            }
        }
        stream.set_read_timeout(limit).map_err(Failure::Socket)?;
        let mut line = Vec::new();
        reader
            .read_until(b'\n', &mut line)
            .map_err(Failure::Socket)?;
        if line.last() != Some(&b'\n') {
            if line.len() > MAX_RESPONSE_BYTES {
                return Err(Failure::Protocol(format!(
                    "the server's answer is longer than {MAX_RESPONSE_BYTES} bytes"
                )));
            }
            return Err(Failure::Socket(io::Error::from_raw_os_error(
                libc::ECONNRESET,
            )));
        }
        Response::parse(&line).map_err(Failure::Protocol)
    }

    /// True when the server answers `ping` within `limit`.
    fn ping(&self, limit: Option<Duration>) -> bool {
        matches!(
            self.transact(&["ping".to_string()], limit),
            Ok(Ok(Value::String(s))) if s == "pong"
        )
    }

    /// Logs a connection failure as fail2ban-client does.
    fn socket_error(&mut self, e: &io::Error, is_ping: bool) -> String {
        let path = self.socket.clone();
        let text = os_error_text(e);
        let message = if access(&path, libc::F_OK) {
            if access(&path, libc::W_OK) {
                if is_ping {
                    text
                } else {
                    format!("[{text}] Unable to contact server. Is it running?")
                }
            } else {
                format!(
                    "Permission denied to socket: {}, (you must be root)",
                    path.display()
                )
            }
        } else {
            format!(
                "Failed to access socket path: {}. Is fail2ban running?",
                path.display()
            )
        };
        self.error(&message);
        message
    }

    /// Sends one command and prints its answer; true on success.
    fn send(&mut self, argv: &[String], limit: Option<Duration>) -> bool {
        match self.transact(argv, limit) {
            Ok(Ok(value)) => {
                if self.opts.json {
                    let line = json_output::render(argv, &value);
                    self.say(&line);
                } else {
                    let shown = render(argv, &value);
                    if shown.mismatch {
                        self.log(
                            Level::Warning,
                            "fail2ban.beautifier",
                            "Beautifier error. Please report the error",
                        );
                        let argv_value = Value::from(argv.to_vec());
                        self.log(
                            Level::Error,
                            "fail2ban.beautifier",
                            &format!(
                                "Beautify {} with {} failed",
                                repr(&value),
                                repr(&argv_value)
                            ),
                        );
                    }
                    self.say(&shown.text);
                }
                true
            }
            Ok(Err(message)) => {
                self.error(&format!("NOK: {}", nok_args(&message)));
                let shown = if self.opts.json {
                    json_output::render_error(&message)
                } else {
                    message
                };
                self.say(&shown);
                false
            }
            Err(Failure::Socket(e)) => {
                let is_ping = argv.first().is_some_and(|w| w == "ping");
                let message = self.socket_error(&e, is_ping);
                if self.opts.json {
                    let line = json_output::render_error(&message);
                    self.say(&line);
                }
                false
            }
            Err(Failure::Protocol(message)) => {
                self.error(&message);
                if self.opts.json {
                    let line = json_output::render_error(&message);
                    self.say(&line);
                }
                false
            }
        }
    }

    fn command(&mut self, cmd: Vec<String>) -> bool {
        let words: Vec<&str> = cmd.iter().map(String::as_str).collect();
        match cmd::client_action(&words) {
            ClientAction::Start => self.start_server(),
            ClientAction::Restart => self.restart(),
            ClientAction::RestartJail(rest) => {
                let mut reload = vec![cmd::RELOAD.to_string(), "--restart".to_string()];
                reload.extend(rest.iter().map(|w| w.to_string()));
                self.reload(reload)
            }
            ClientAction::Reload => self.reload(cmd.clone()),
            ClientAction::BulkFile { jail, op, rest } => {
                let (jail, op) = (jail.to_string(), op.to_string());
                let rest: Vec<String> = rest.iter().map(|w| w.to_string()).collect();
                self.bulk_file(&jail, &op, &rest)
            }
            ClientAction::Ping(Ok(secs)) => {
                self.send(&["ping".to_string()], Some(Duration::from_secs_f64(secs)))
            }
            ClientAction::Ping(Err(message)) => self.fail(&message),
            ClientAction::Help => {
                let text = usage(&self.program);
                if self.opts.json {
                    let line = json_output::render_help(&text);
                    self.say(&line);
                } else {
                    let _ = write!(self.out, "{text}");
                }
                true
            }
            ClientAction::Send => self.send(&cmd, None),
        }
    }

    /// `set <jail> banip|unbanip [--force] --file PATH|-`: reads the blocklist, reports its
    /// invalid lines (with their numbers) on stderr, and sends the valid rest as one request.
    /// Succeeds only when every line was valid and the server accepted the rest.
    fn bulk_file(&mut self, jail: &str, op: &str, rest: &[String]) -> bool {
        let mut force = false;
        let mut file = None;
        let mut words = rest.iter();
        while let Some(w) = words.next() {
            match w.as_str() {
                "--force" if op == "banip" => force = true,
                "--file" => file = words.next().cloned(),
                other => {
                    return self.fail(&format!(
                        "set {jail} {op} --file: unexpected argument {other:?} (addresses go in the file)"
                    ));
                }
            }
        }
        let Some(file) = file else {
            return self.fail(&format!(
                "set {jail} {op} --file: missing PATH (or - for standard input)"
            ));
        };
        let read = if file == "-" {
            super::blocklist::read(io::stdin().lock())
        } else {
            std::fs::File::open(&file).and_then(|f| super::blocklist::read(BufReader::new(f)))
        };
        let list = match read {
            Ok(l) => l,
            Err(e) => {
                return self.fail(&format!("cannot read blocklist {file}: {e}"));
            }
        };
        let name = if file == "-" {
            "<stdin>"
        } else {
            file.as_str()
        };
        for bad in &list.bad {
            self.error(&format!(
                "{name}:{}: {}: {:?} (skipped)",
                bad.line, bad.reason, bad.text
            ));
        }
        if list.ids.is_empty() {
            return self.fail(&format!("{name}: no address or network to {op}"));
        }
        let mut ok = true;
        // 1,000,000 per request: the server's bulk request limit fits that many.
        for chunk in list.ids.chunks(1_000_000) {
            let mut argv = vec!["set".to_string(), jail.to_string(), op.to_string()];
            if force {
                argv.push("--force".into());
            }
            argv.extend(chunk.iter().cloned());
            ok &= self.send(&argv, None);
        }
        ok && list.bad.is_empty()
    }

    /// `reload [--restart] [--unban] [--if-exists] [<JAIL>|--all]`.
    fn reload(&mut self, cmd: Vec<String>) -> bool {
        let mut opts = Vec::new();
        let mut rest = cmd[1..].to_vec();
        while let Some(first) = rest.first() {
            if crate::daemon::ReloadOptions::parse([first.as_str()]).is_some() {
                opts.push(rest.remove(0));
            } else {
                break;
            }
        }
        if rest.len() > 1 {
            let words = Value::from(rest);
            return self.fail(&format!(
                "Unexpected argument(s) for reload: {}",
                repr(&words)
            ));
        }
        if !self.ping(None) {
            return self.fail("Could not find server");
        }
        let target = rest.pop().unwrap_or_else(|| "--all".to_string());
        self.send(&super::cmd::reload_request(&opts, &target), None)
    }

    /// `restart`: stop, wait until the server is gone, start.
    fn restart(&mut self) -> bool {
        self.send(&["stop".to_string()], None);
        if !self.wait_for_server(false, None) {
            return self.fail("Could not stop server");
        }
        self.start_server()
    }

    /// Polls until the server is up (`alive`) or gone; false after `--timeout`.
    /// With `child`, gives up as soon as that process fails.
    fn wait_for_server(
        &mut self,
        alive: bool,
        mut child: Option<&mut std::process::Child>,
    ) -> bool {
        let started = Instant::now();
        let mut pause = Duration::from_micros(6250);
        loop {
            let up = self.socket.exists() && self.ping(Some(Duration::from_millis(500)));
            if up == alive {
                return true;
            }
            if let Some(c) = child.as_deref_mut()
                && let Ok(Some(status)) = c.try_wait()
                && !status.success()
            {
                return self.fail(&format!(
                    "Could not start server: the server process {status}"
                ));
            }
            let waited = started.elapsed();
            if waited.as_secs_f64() >= self.opts.timeout {
                return false;
            }
            std::thread::sleep(pause);
            let cap = if waited > Duration::from_millis(200) {
                Duration::from_millis(500)
            } else {
                Duration::from_millis(100)
            };
            pause = (pause * 2).min(cap);
        }
    }

    /// The command line `start` runs.
    fn server_command(&self) -> Command {
        let mut c = Command::new(&self.server.program);
        c.args(&self.server.args);
        c.arg("server");
        c.arg(if self.opts.background { "-b" } else { "-f" });
        if self.opts.conf_given {
            c.arg("-c").arg(&self.opts.conf);
        }
        c.arg("-s").arg(&self.socket);
        if self.opts.force {
            c.arg("-x");
        }
        if let Some(p) = &self.opts.pidfile {
            c.arg("-p").arg(p);
        }
        for (name, value) in [
            ("--loglevel", &self.opts.loglevel),
            ("--logtarget", &self.opts.logtarget),
            ("--syslogsocket", &self.opts.syslogsocket),
        ] {
            if let Some(v) = value {
                c.arg(name).arg(v);
            }
        }
        c
    }

    /// `start`: launch the server and wait for it.
    fn start_server(&mut self) -> bool {
        if self.ping(Some(Duration::from_millis(100))) {
            return self.fail("Server already running");
        }
        if !self.opts.force && self.socket.exists() {
            return self.fail(
                "Fail2ban seems to be in unexpected state (not running but the socket exists)",
            );
        }
        let mut command = self.server_command();
        let shown = format!("{command:?}");
        self.log(Level::Info, "fail2ban", &format!("Starting {shown}"));
        if !self.opts.background {
            let _ = self.out.flush();
            let e = command.exec();
            self.error(&format!("Could not start server {shown}: {e}"));
            return false;
        }
        let _ = self.out.flush();
        let spawned = command.stdin(Stdio::null()).process_group(0).spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                return self.fail(&format!("Could not start server {shown}: {e}"));
            }
        };
        if !self.wait_for_server(true, Some(&mut child)) {
            let failed = matches!(child.try_wait(), Ok(Some(status)) if !status.success());
            if !failed {
                self.fail(&format!(
                    "Could not start server. Maybe an old socket file is still present. Try to \
                     remove {}. If you used fail2ban-client to start the server, adding the -x \
                     option will do it",
                    self.socket.display()
                ));
            }
            return false;
        }
        if self.opts.json {
            let line = json_output::render_started();
            self.say(&line);
            return true;
        }
        self.send(&["server-status".to_string()], None)
    }
}

#[cfg(test)]
mod tests;
