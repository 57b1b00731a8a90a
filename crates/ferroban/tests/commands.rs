//! Every command of the table (`control::cmd::FORMS`, `JAIL_SETTINGS`, `SERVER_SETTINGS`) sent
//! to a running `ferroban server` over its socket: none may come back as a command the server
//! does not know ("Invalid command...", "Sorry but the command is invalid"), so the table, the
//! parser and the server's dispatch cannot drift apart. The examples name jail `sshd` and action
//! `act`, which the scratch configuration has. Commands that end things (`delaction`, `stop
//! <JAIL>`, `stop --all`, `stop`) go last.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use ferroban::control::cmd::{FORMS, Form, JAIL_SETTINGS, SERVER_SETTINGS};
use ferroban::control::proto::{Request, Response};
use ferroban_testkit::Tree;

const BIN: &str = env!("CARGO_BIN_EXE_ferroban");

/// The server's answer to `argv`.
fn ask(sock: &std::path::Path, argv: &[String]) -> Result<serde_json::Value, String> {
    let mut s = UnixStream::connect(sock).expect("connect to the server");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(Request::new(argv.to_vec()).to_line().as_bytes())
        .unwrap();
    let mut line = Vec::new();
    BufReader::new(s).read_until(b'\n', &mut line).unwrap();
    Response::parse(&line).expect("a protocol response")
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| s.to_string()).collect()
}

/// Whether `error` is the server not knowing the command (fail2ban's texts for that).
fn unknown_command(error: &str) -> bool {
    error.starts_with("Invalid command") || error == "Sorry but the command is invalid"
}

#[test]
fn every_command_of_the_table_reaches_the_server() {
    let mut t = Tree::new(BIN, "commands", "table", "INFO");
    let d = t.dir.display().to_string();
    t.write(
        "filter.d/test.conf",
        "[Definition]\nfailregex = ^fail from <HOST>$\n",
    );
    t.write(
        "action.d/act.conf",
        &format!(
            "[Definition]\nactionban = echo ban <ip> >> {d}/actions.out\nactionunban = echo unban <ip> >> {d}/actions.out\n"
        ),
    );
    t.write(
        "jail.conf",
        &format!(
            "[DEFAULT]\nbantime = 10m\nfindtime = 10m\nmaxretry = 3\nbackend = polling\n\n[sshd]\nenabled = true\nfilter = test\nlogpath = {d}/auth.log\nignoreip = 127.0.0.1\naction = act\n"
        ),
    );
    t.write("auth.log", "");
    t.spawn();
    t.wait_jail("sshd");
    let sock = t.path("ferroban.sock");

    // (order, words): gets, then sets, then server forms, then what ends things.
    let mut commands: Vec<(u8, Vec<String>)> = Vec::new();
    for s in JAIL_SETTINGS {
        let name = if s.name.ends_with('.') {
            "bantime.increment"
        } else {
            s.name
        };
        for (order, verb, args) in [(0, "get", s.get), (1, "set", s.set)] {
            if let Some(args) = args {
                let mut w = words(&[verb, "sshd", name]);
                w.extend(words(args));
                commands.push((if name == "delaction" { 4 } else { order }, w));
            }
        }
    }
    for s in SERVER_SETTINGS {
        if s.get {
            commands.push((0, words(&["get", s.name])));
        }
        if s.set {
            // A value each setting takes (the current one where ferroban keeps it).
            let value = match s.name {
                "loglevel" => "INFO".to_string(),
                "logtarget" => format!("{d}/ferroban.log"),
                "syslogsocket" => "auto".into(),
                "dbfile" => format!("{d}/ferroban.sqlite3"),
                "dbmaxmatches" => "10".into(),
                "dbpurgeage" => "1d".into(),
                _ => "auto".into(),
            };
            commands.push((1, vec!["set".into(), s.name.into(), value]));
        }
    }
    for s in FORMS.iter().filter(|s| s.server) {
        let order = match s.form {
            Form::StopJail => 5,
            Form::StopAll => 6,
            Form::Stop => 7,
            _ => 2,
        };
        commands.push((order, words(s.example)));
    }
    commands.sort_by_key(|(order, _)| *order);

    let mut answered = 0;
    let mut refused = Vec::new();
    for (_, argv) in &commands {
        match ask(&sock, argv) {
            Ok(_) => answered += 1,
            Err(e) if unknown_command(&e) => panic!("{argv:?}: the server does not know it: {e}"),
            Err(e) => refused.push(format!("{argv:?}: {e}")),
        }
    }
    eprintln!(
        "{} commands: {answered} answered, {} refused for their arguments or the state:\n{}",
        commands.len(),
        refused.len(),
        refused.join("\n")
    );
    // Nearly all succeed on this configuration; the refusals are the deliberate ones (a
    // journal match on a file jail is answered, a fleet status without fleet is not).
    assert!(
        answered * 10 >= commands.len() * 9,
        "only {answered} of {} answered",
        commands.len()
    );
    // `stop` was last: the server goes.
    ferroban_testkit::wait_for("the server exits", Duration::from_secs(10), || {
        UnixStream::connect(&sock).is_err()
    });
    t.kill9();
}
