//! The client against a fake server (the real socket plumbing, a canned handler), and its
//! no-server behaviour against fail2ban-client 1.0.2 itself.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::{Client, ServerCommand, seconds_text};
use crate::control::proto::unknown_jail;
use crate::control::server::{ControlRequest, bind, serve};
use crate::control::testutil::{TempDir, f2b_root, jail_status, python};

type Seen = Arc<Mutex<Vec<Vec<String>>>>;

fn answer(words: &[&str]) -> Result<Value, String> {
    match words {
        ["ping"] => Ok(json!("pong")),
        ["server-status"] => Ok(json!("Server ready")),
        ["status"] => Ok(json!([
            ["Number of jail", 2],
            ["Jail list", "nginx-404, sshd"]
        ])),
        ["status", "sshd"] => Ok(jail_status()),
        ["status", jail] => Err(unknown_jail(jail)),
        ["get", "sshd", "banip", ..] => Ok(json!(["203.0.113.5", "198.51.100.7"])),
        ["get", "sshd", "logpath"] => Ok(json!(7)),
        ["reload", ..] => Ok(json!("OK")),
        ["stop"] => Ok(Value::Null),
        ["banned"] => Ok(json!([{"sshd": ["198.51.100.7"]}, {"nginx-404": []}])),
        _ => Err("Invalid command".into()),
    }
}

/// A server on `socket` in a thread of its own, answering with [`answer`] and recording every
/// request; `stop` ends it (and removes the socket), as the daemon does.
struct FakeServer {
    seen: Seen,
    quit: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    fn start(socket: &Path) -> FakeServer {
        let seen: Seen = Arc::default();
        let (quit, mut quit_rx) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let socket = socket.to_path_buf();
        let record = seen.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = bind(&socket).await.unwrap();
                let (tx, mut rx) = mpsc::channel::<ControlRequest>(8);
                let server = tokio::spawn(serve(listener, tx));
                ready_tx.send(()).unwrap();
                loop {
                    let req = tokio::select! {
                        r = rx.recv() => match r { Some(r) => r, None => break },
                        _ = &mut quit_rx => break,
                    };
                    record.lock().unwrap().push(req.argv.clone());
                    let words: Vec<&str> = req.argv.iter().map(String::as_str).collect();
                    let stop = words == ["stop"];
                    let _ = req.reply.send(answer(&words));
                    if stop {
                        break;
                    }
                }
                drop(rx);
                server.await.unwrap();
                let _ = std::fs::remove_file(&socket);
            });
        });
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("fake server bound");
        FakeServer {
            seen,
            quit: Some(quit),
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Vec<Vec<String>> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(q) = self.quit.take() {
            let _ = q.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

struct Run {
    code: u8,
    out: String,
    err: String,
}

fn run_with(server: ServerCommand, args: &[&str]) -> Run {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = Client::new("fail2ban-client", server, &mut out, &mut err).run(&args);
    Run {
        code,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

fn no_server() -> ServerCommand {
    ServerCommand {
        program: PathBuf::from("/nonexistent/ferroban"),
        args: Vec::new(),
    }
}

fn run(args: &[&str]) -> Run {
    run_with(no_server(), args)
}

/// Strips the time and pid of fail2ban log lines:
/// `2026-11-25 14:08:31,009 fail2ban                [1234]: ERROR   x` → `fail2ban                []: ERROR   x`.
fn unstamp(err: &str) -> String {
    err.lines()
        .map(|l| {
            let rest = match l.as_bytes() {
                [
                    y,
                    _,
                    _,
                    _,
                    b'-',
                    _,
                    _,
                    b'-',
                    _,
                    _,
                    b' ',
                    _,
                    _,
                    b':',
                    _,
                    _,
                    b':',
                    _,
                    _,
                    b',',
                    _,
                    _,
                    _,
                    b' ',
                    ..,
                ] if y.is_ascii_digit() => &l[24..],
                _ => l,
            };
            match (rest.find('['), rest.find("]: ")) {
                (Some(a), Some(b)) if a < b => format!("{}[]{}\n", &rest[..a], &rest[b + 1..]),
                _ => format!("{rest}\n"),
            }
        })
        .collect()
}

fn socket_in(dir: &TempDir) -> PathBuf {
    dir.0.join("f2b.sock")
}

#[test]
fn ping_status_and_errors_print_like_fail2ban_client() {
    let dir = TempDir::new("cli");
    let sock = socket_in(&dir);
    let s = sock.to_str().unwrap();
    let _server = FakeServer::start(&sock);

    let r = run(&["-s", s, "ping"]);
    assert_eq!(
        (r.code, r.out.as_str(), r.err.as_str()),
        (0, "Server replied: pong\n", "")
    );

    let r = run(&["-s", s, "status"]);
    assert_eq!(
        r.out,
        "Status\n|- Number of jail:\t2\n`- Jail list:\tnginx-404, sshd\n"
    );
    assert_eq!(r.code, 0);

    let r = run(&["-s", s, "status", "sshd"]);
    assert!(
        r.out.starts_with("Status for the jail: sshd\n|- Filter\n"),
        "{}",
        r.out
    );
    assert!(
        r.out.ends_with("   `- Banned IP list:\t198.51.100.7\n"),
        "{}",
        r.out
    );

    let r = run(&["-s", s, "get", "sshd", "banip", ","]);
    assert_eq!(r.out, "203.0.113.5,198.51.100.7\n");

    let r = run(&["-s", s, "banned"]);
    assert_eq!(r.out, "[{'sshd': ['198.51.100.7']}, {'nginx-404': []}]\n");

    let r = run(&["-s", s, "status", "nosuch"]);
    assert_eq!(r.code, 255);
    assert_eq!(r.out, "Sorry but the jail 'nosuch' does not exist\n");
    assert_eq!(
        unstamp(&r.err),
        "fail2ban                []: ERROR   NOK: ('nosuch',)\n"
    );
    // The real stamp: local date and time with milliseconds, then the pid.
    let stamp = &r.err[..24];
    assert!(
        stamp.as_bytes()[..4].iter().all(u8::is_ascii_digit) && stamp.as_bytes()[19] == b',',
        "{:?}",
        r.err
    );
    assert!(
        r.err.contains(&format!("[{}]: ERROR", std::process::id())),
        "{}",
        r.err
    );

    let r = run(&["-s", s, "frobnicate"]);
    assert_eq!((r.code, r.out.as_str()), (255, "Invalid command\n"));
    assert!(
        r.err.ends_with("ERROR   NOK: ('Invalid command',)\n"),
        "{}",
        r.err
    );

    // -q hides nothing at error level; -v shows the socket in use.
    let r = run(&["-q", "-s", s, "status", "nosuch"]);
    assert!(r.err.contains("NOK"), "{}", r.err);
    let r = run(&["-v", "-s", s, "ping"]);
    assert!(
        r.err.contains(&format!("INFO    Using socket file {s}\n")),
        "{}",
        r.err
    );
    let r = run(&["-vv", "-s", s, "ping"]);
    assert!(r.err.contains("DEBUG   Exit with code 0\n"), "{}", r.err);
}

#[test]
fn unexpected_value_shapes_are_reported_like_the_beautifier() {
    let dir = TempDir::new("cli");
    let sock = socket_in(&dir);
    let _server = FakeServer::start(&sock);
    let r = run(&["-s", sock.to_str().unwrap(), "get", "sshd", "logpath"]);
    assert_eq!((r.code, r.out.as_str()), (0, "77\n"));
    assert_eq!(
        unstamp(&r.err),
        "fail2ban.beautifier     []: WARNING Beautifier error. Please report the error\n\
         fail2ban.beautifier     []: ERROR   Beautify 7 with ['get', 'sshd', 'logpath'] failed\n"
    );
}

#[test]
fn json_output() {
    let dir = TempDir::new("cli");
    let sock = socket_in(&dir);
    let s = sock.to_str().unwrap();
    let _server = FakeServer::start(&sock);
    let r = run(&["--json", "-s", s, "status", "sshd"]);
    assert_eq!(r.code, 0);
    let v: Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["jail"], "sshd");
    assert_eq!(v["filter"]["total_failed"], 5);
    assert_eq!(v["actions"]["banned_ip_list"], json!(["198.51.100.7"]));
    assert!(
        r.out.starts_with("{\"jail\":\"sshd\",\"filter\":"),
        "{}",
        r.out
    );
    let r = run(&["--json", "-s", s, "status", "nosuch"]);
    assert_eq!(r.code, 255);
    assert_eq!(
        r.out,
        "{\"error\":\"Sorry but the jail 'nosuch' does not exist\"}\n"
    );
    let r = run(&["--json", "-s", "/nonexistent/x.sock", "ping"]);
    assert_eq!(r.code, 255);
    assert_eq!(
        r.out,
        "{\"error\":\"Failed to access socket path: /nonexistent/x.sock. Is fail2ban running?\"}\n"
    );
    // What the client runs itself answers in JSON too: help, and its own failures.
    let r = run(&["--json", "-s", s, "help"]);
    assert_eq!(r.code, 0);
    let v: Value = serde_json::from_str(&r.out).unwrap();
    assert!(v["help"].as_str().unwrap().contains("reload"), "{}", r.out);
    let r = run(&["--json", "-s", s, "start"]);
    assert_eq!(r.code, 255);
    assert_eq!(r.out, "{\"error\":\"Server already running\"}\n");
    let r = run(&["--json", "-s", s, "reload", "a", "b"]);
    assert_eq!(r.code, 255);
    assert_eq!(
        r.out,
        "{\"error\":\"Unexpected argument(s) for reload: ['a', 'b']\"}\n"
    );
    let r = run(&["--json", "-s", s, "ping", "abc"]);
    assert_eq!(r.code, 255);
    let v: Value = serde_json::from_str(&r.out).unwrap();
    assert!(v["error"].as_str().unwrap().contains("float"), "{}", r.out);
    // Without --json: nothing on stdout for them, as fail2ban-client.
    let r = run(&["-s", s, "start"]);
    assert_eq!((r.code, r.out.as_str()), (255, ""));
}

#[test]
fn reload_and_restart_of_a_jail_are_sent_with_an_explicit_target() {
    let dir = TempDir::new("cli");
    let sock = socket_in(&dir);
    let s = sock.to_str().unwrap();
    let server = FakeServer::start(&sock);
    for (args, sent) in [
        (vec!["reload"], vec!["reload", "--all"]),
        (vec!["reload", "--all"], vec!["reload", "--all"]),
        (
            vec!["reload", "--restart", "--unban", "sshd"],
            vec!["reload", "--restart", "--unban", "sshd"],
        ),
        (
            vec!["restart", "--if-exists", "sshd"],
            vec!["reload", "--restart", "--if-exists", "sshd"],
        ),
    ] {
        let mut full = vec!["-s", s];
        full.extend(&args);
        let r = run(&full);
        assert_eq!(
            (r.code, r.out.as_str(), r.err.as_str()),
            (0, "OK\n", ""),
            "{args:?}"
        );
        let seen = server.seen();
        assert_eq!(seen[seen.len() - 2], ["ping"], "reload pings first");
        assert_eq!(seen[seen.len() - 1], sent, "{args:?}");
    }
    let before = server.seen().len();
    let r = run(&["-s", s, "reload", "a", "b"]);
    assert_eq!((r.code, r.out.as_str()), (255, ""));
    assert!(
        r.err
            .ends_with("ERROR   Unexpected argument(s) for reload: ['a', 'b']\n"),
        "{}",
        r.err
    );
    assert_eq!(server.seen().len(), before, "nothing sent");
    let r = run(&["-s", "/nonexistent/x.sock", "reload"]);
    assert_eq!(r.code, 255);
    assert!(
        r.err.ends_with("ERROR   Could not find server\n"),
        "{}",
        r.err
    );
}

#[test]
fn socket_comes_from_the_configuration() {
    let dir = TempDir::new("cli");
    let conf = dir.0.join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    let conf_sock = dir.0.join("conf.sock");
    let local_sock = dir.0.join("local.sock");
    std::fs::write(
        conf.join("fail2ban.conf"),
        format!("[Definition]\nsocket = {}\n", conf_sock.display()),
    )
    .unwrap();
    let c = conf.to_str().unwrap();
    {
        let _server = FakeServer::start(&conf_sock);
        let r = run(&["-c", c, "ping"]);
        assert_eq!((r.code, r.out.as_str()), (0, "Server replied: pong\n"));
    }
    std::fs::write(
        conf.join("fail2ban.local"),
        format!("[Definition]\nsocket = {}\n", local_sock.display()),
    )
    .unwrap();
    let _server = FakeServer::start(&local_sock);
    let r = run(&["-c", c, "ping"]);
    assert_eq!((r.code, r.out.as_str()), (0, "Server replied: pong\n"));
    // A broken configuration is reported.
    std::fs::write(
        conf.join("fail2ban.local"),
        "[Definition]\nloglevel = LOUD\n",
    )
    .unwrap();
    let r = run(&["-c", c, "ping"]);
    assert_eq!(r.code, 255);
    assert!(
        r.out.starts_with("ERROR: ") && r.out.contains("LOUD"),
        "{}",
        r.out
    );
    assert_eq!(r.err, "Init of command line failed\n");
    // A -c directory that does not exist.
    let r = run(&["-c", "/nonexistent/conf", "ping"]);
    assert_eq!(r.code, 255);
    assert_eq!(
        r.out,
        "ERROR: Base configuration directory /nonexistent/conf does not exist\n"
    );
}

#[test]
fn command_line_options() {
    // Usage on -h (0), with no command (255), on a bad option (255, with a note on stderr).
    let r = run(&["-h"]);
    assert_eq!((r.code, r.err.as_str()), (0, ""));
    assert!(
        r.out
            .starts_with("Usage: fail2ban-client [OPTIONS] <COMMAND>\n")
    );
    let r = run(&["--hel"]);
    assert_eq!(r.code, 0, "unique prefixes of long options work");
    let r = run(&["-s", "/x"]);
    assert!(r.out.starts_with("Usage: "));
    assert_eq!(r.code, 255);
    for bad in [
        &["--badopt"][..],
        &["-Z", "ping"],
        &["-s"],
        &["--socket"],
        &["--json=1", "ping"],
        &["--d", "ping"],
    ] {
        let r = run(bad);
        assert_eq!(r.code, 255, "{bad:?}");
        assert!(r.out.starts_with("Usage: "), "{bad:?}");
        assert_eq!(r.err, "Init of command line failed\n", "{bad:?}");
    }
    assert_eq!(run(&["-V"]).out, "1.0.2\n");
    assert!(
        run(&["--version"])
            .out
            .starts_with("Fail2Ban v1.0.2 (ferroban ")
    );
    // --str2sec prints like Python and ends the run.
    for (input, want) in [
        ("1h30m", "5400"),
        ("1.5h", "5400.0"),
        ("1mo", "2629800.0"),
        ("1y", "31557600.0"),
        ("-1", "-1"),
        ("3 days", "259200"),
        ("100.0", "100.0"),
        ("10", "10"),
        ("1w", "604800"),
    ] {
        let r = run(&["--str2sec", input, "ping"]);
        assert_eq!(
            (r.code, r.out.as_str()),
            (0, format!("{want}\n").as_str()),
            "{input}"
        );
    }
    let r = run(&["--str2sec", "abc"]);
    assert_eq!(r.code, 255);
    assert!(r.out.starts_with("ERROR: --str2sec abc: "), "{}", r.out);
    assert_eq!(r.err, "Init of command line failed\n");
    let r = run(&["--timeout", "soon", "ping"]);
    assert_eq!(r.code, 255);
    // Unsupported fail2ban options say so.
    let r = run(&["-d"]);
    assert_eq!(r.code, 255);
    assert!(r.err.contains("-d is not supported"), "{}", r.err);
    // Options stop at the first command word; clusters and attached values work.
    let dir = TempDir::new("cli");
    let sock = socket_in(&dir);
    let _server = FakeServer::start(&sock);
    let attached = format!("-qs{}", sock.display());
    let r = run(&[&attached, "status", "-v"]);
    assert_eq!(
        (r.code, r.out.as_str()),
        (255, "Sorry but the jail '-v' does not exist\n"),
        "`-v` after the command is a word"
    );
    let long = format!("--sock={}", sock.display());
    let r = run(&[&long, "--", "ping"]);
    assert_eq!((r.code, r.out.as_str()), (0, "Server replied: pong\n"));
    assert_eq!(seconds_text("2*1h", 7200.0), "7200");
    assert_eq!(seconds_text("1h/2", 1800.0), "1800.0");
}

#[test]
fn connection_failures() {
    let dir = TempDir::new("cli");
    // Nothing at the path.
    let missing = dir.0.join("missing.sock");
    let m = missing.to_str().unwrap();
    for cmd in ["ping", "status"] {
        let r = run(&["-s", m, cmd]);
        assert_eq!((r.code, r.out.as_str()), (255, ""));
        assert_eq!(
            unstamp(&r.err),
            format!(
                "fail2ban                []: ERROR   Failed to access socket path: {m}. Is fail2ban running?\n"
            )
        );
    }
    // A stale socket: nobody listens.
    let stale = dir.0.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let s = stale.to_str().unwrap();
    let r = run(&["-s", s, "ping"]);
    assert_eq!(
        unstamp(&r.err),
        "fail2ban                []: ERROR   [Errno 111] Connection refused\n"
    );
    let r = run(&["-s", s, "status"]);
    assert_eq!(
        unstamp(&r.err),
        "fail2ban                []: ERROR   [[Errno 111] Connection refused] Unable to contact server. Is it running?\n"
    );
    // A listener that never answers: `ping TIMEOUT` gives up.
    let mute = dir.0.join("mute.sock");
    let listener = std::os::unix::net::UnixListener::bind(&mute).unwrap();
    let t = Instant::now();
    let r = run(&["-s", mute.to_str().unwrap(), "ping", "0.3"]);
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(r.code, 255);
    assert_eq!(
        unstamp(&r.err),
        "fail2ban                []: ERROR   timed out\n"
    );
    let r = run(&["-s", mute.to_str().unwrap(), "ping", "soon"]);
    assert!(
        r.err
            .ends_with("ERROR   could not convert string to float: 'soon'\n"),
        "{}",
        r.err
    );
    // A server that hangs up without answering.
    let hangup = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 64];
        let _ = std::io::Read::read(&mut &conn, &mut buf);
        drop(conn);
    });
    let r = run(&["-s", mute.to_str().unwrap(), "status"]);
    hangup.join().unwrap();
    assert_eq!(
        unstamp(&r.err),
        "fail2ban                []: ERROR   [[Errno 104] Connection reset by peer] Unable to contact server. Is it running?\n"
    );
}

/// `sh -c SCRIPT server -b ...`: `$0` is `server`, `$@` the rest.
fn shell_server(script: &str) -> ServerCommand {
    ServerCommand {
        program: PathBuf::from("/bin/sh"),
        args: vec!["-c".into(), script.into()],
    }
}

/// Plays the daemon: once the launched "server" has written `args_file`, waits `delay` and
/// starts a [`FakeServer`] on `sock`.
fn serve_once_launched(args_file: &Path, sock: &Path, delay: Duration) -> JoinHandle<FakeServer> {
    let (args_file, sock) = (args_file.to_path_buf(), sock.to_path_buf());
    std::thread::spawn(move || {
        let t = Instant::now();
        while !args_file.exists() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "server never launched"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(delay);
        FakeServer::start(&sock)
    })
}

#[test]
fn start_launches_the_server_and_waits_for_it() {
    let dir = TempDir::new("cli");
    let sock = socket_in(&dir);
    let conf = dir.0.join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    let args_file = dir.0.join("args");
    // The "server" records its arguments and exits 0 (as a daemonising parent does); the test
    // plays the daemon once the arguments appear.
    let script = format!(
        "echo \"$0 $*\" > {}.tmp && mv {0}.tmp {0}",
        args_file.display()
    );
    let watcher = serve_once_launched(&args_file, &sock, Duration::from_millis(300));
    let (c, s) = (conf.to_str().unwrap(), sock.to_str().unwrap());
    let r = run_with(
        shell_server(&script),
        &["-c", c, "-s", s, "--loglevel", "DEBUG", "start"],
    );
    let server = watcher.join().unwrap();
    assert_eq!(
        (r.code, r.out.as_str(), r.err.as_str()),
        (0, "Server ready\n", "")
    );
    assert_eq!(
        std::fs::read_to_string(&args_file).unwrap(),
        format!("server -b -c {c} -s {s} --loglevel DEBUG\n")
    );
    assert_eq!(server.seen().last().unwrap(), &["server-status"]);

    // Already running.
    let r = run_with(shell_server("exit 0"), &["-s", s, "start"]);
    assert_eq!(r.code, 255);
    assert!(
        r.err.ends_with("ERROR   Server already running\n"),
        "{}",
        r.err
    );

    // `restart`: stop, wait for the socket to go, start again.
    std::fs::remove_file(&args_file).unwrap();
    let watcher = serve_once_launched(&args_file, &sock, Duration::ZERO);
    let r = run_with(shell_server(&script), &["-c", c, "-s", s, "-x", "restart"]);
    drop(server);
    let _server = watcher.join().unwrap();
    assert_eq!(
        (r.code, r.out.as_str(), r.err.as_str()),
        (0, "Shutdown successful\nServer ready\n", "")
    );
    assert_eq!(
        std::fs::read_to_string(&args_file).unwrap(),
        format!("server -b -c {c} -s {s} -x\n")
    );
}

#[test]
fn start_failures() {
    let dir = TempDir::new("cli");
    let sock = socket_in(&dir);
    let s = sock.to_str().unwrap();
    // The server process fails: reported at once, not after the timeout.
    let t = Instant::now();
    let r = run_with(shell_server("exit 3"), &["-s", s, "start"]);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(r.code, 255);
    assert!(
        r.err
            .contains("ERROR   Could not start server: the server process exit status: 3"),
        "{}",
        r.err
    );
    // It exits 0 but never answers: give up after --timeout.
    let t = Instant::now();
    let r = run_with(
        shell_server("exit 0"),
        &["-s", s, "--timeout", "1", "start"],
    );
    assert!(t.elapsed() >= Duration::from_secs(1) && t.elapsed() < Duration::from_secs(5));
    assert_eq!(r.code, 255);
    assert!(
        r.err
            .contains("Could not start server. Maybe an old socket file"),
        "{}",
        r.err
    );
    // The program cannot be run.
    let r = run(&["-s", s, "start"]);
    assert_eq!(r.code, 255);
    assert!(
        r.err
            .contains("Could not start server \"/nonexistent/ferroban\""),
        "{}",
        r.err
    );
    // A socket file without a server.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    let r = run_with(shell_server("exit 0"), &["-s", s, "start"]);
    assert_eq!(r.code, 255);
    assert!(
        r.err.ends_with(
            "ERROR   Fail2ban seems to be in unexpected state (not running but the socket exists)\n"
        ),
        "{}",
        r.err
    );
}

/// fail2ban-client 1.0.2 itself, with the reference configuration directory (it insists on
/// reading one).
fn reference(args: &[&str]) -> Run {
    let root = f2b_root("usr/bin/fail2ban-client");
    let out = Command::new(python())
        .arg(root.join("usr/bin/fail2ban-client"))
        .arg("-c")
        .arg(root.join("etc/fail2ban"))
        .args(args)
        .env("PYTHONPATH", root.join("usr/lib/python3/dist-packages"))
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1) as u8,
        out: String::from_utf8(out.stdout).unwrap(),
        err: String::from_utf8(out.stderr).unwrap(),
    }
}

#[test]
fn without_a_server_like_fail2ban_client() {
    let dir = TempDir::new("cli");
    let missing = dir.0.join("missing.sock");
    let stale = dir.0.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let (m, s) = (missing.to_str().unwrap(), stale.to_str().unwrap());
    let cases: Vec<Vec<&str>> = vec![
        vec!["-s", m, "ping"],
        vec!["-s", m, "status"],
        vec!["-s", m, "status", "sshd"],
        vec!["-s", m, "stop"],
        vec!["-s", m, "reload"],
        vec!["-s", m, "reload", "a", "b"],
        vec!["-s", s, "ping"],
        vec!["-s", s, "get", "sshd", "bantime"],
        vec!["-q", "-s", m, "unban", "--all"],
        vec!["--str2sec", "1h30m"],
        vec!["--str2sec", "1.5h"],
        vec!["--str2sec", "2mo"],
        vec!["-V"],
    ];
    for args in cases {
        let want = reference(&args);
        let got = run(&args);
        assert_eq!(got.code, want.code, "exit status of {args:?}");
        assert_eq!(got.out, want.out, "stdout of {args:?}");
        assert_eq!(unstamp(&got.err), unstamp(&want.err), "stderr of {args:?}");
    }
}
