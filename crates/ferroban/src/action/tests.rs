//! Behaviour tests: commands really run through `/bin/sh` and write into temporary files (no
//! firewall is touched).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferroban_config::{ActionDef, ActionKind};

use super::*;
use crate::clock::ManualClock;
use crate::ip::HostId;

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "ferroban-action-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn file(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An action definition from `(option, value)` pairs: `action*`, `norestored`, `timeout` set the
/// typed fields, anything else is a parameter.
fn def(opts: &[(&str, &str)]) -> ActionDef {
    let mut d = ActionDef {
        name: "test".into(),
        file: "test".into(),
        kind: ActionKind::Command,
        files: Vec::new(),
        actionstart: None,
        actionstart_on_demand: None,
        actionstop: None,
        actionflush: None,
        actionreload: None,
        actioncheck: None,
        actionrepair: None,
        actionrepair_on_unban: None,
        actionban: None,
        actionprolong: None,
        actionreban: None,
        actionunban: None,
        norestored: None,
        timeout: None,
        params: vec![
            ("name".into(), "jail".into()),
            ("actname".into(), "test".into()),
        ],
    };
    for (k, v) in opts {
        let s = Some(v.to_string());
        let b = Some(ferroban_config::as_bool(v));
        match *k {
            "actionstart" => d.actionstart = s,
            "actionstop" => d.actionstop = s,
            "actionflush" => d.actionflush = s,
            "actionreload" => d.actionreload = s,
            "actioncheck" => d.actioncheck = s,
            "actionrepair" => d.actionrepair = s,
            "actionban" => d.actionban = s,
            "actionprolong" => d.actionprolong = s,
            "actionreban" => d.actionreban = s,
            "actionunban" => d.actionunban = s,
            "actionstart_on_demand" => d.actionstart_on_demand = b,
            "actionrepair_on_unban" => d.actionrepair_on_unban = b,
            "norestored" => d.norestored = b,
            "timeout" => {
                d.timeout = Some(v.parse().unwrap());
                d.params.push((k.to_string(), v.to_string()));
            }
            _ => d.params.push((k.to_string(), v.to_string())),
        }
    }
    d
}

fn action(opts: &[(&str, &str)]) -> CommandAction {
    let mut a = CommandAction::new(&def(opts), "jail").unwrap();
    a.set_ipv6_allowed(true);
    a
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn ticket(id: &str) -> BanInfo {
    let mut b = BanInfo::new(HostId::parse(id), 1_700_000_000.5);
    b.failures = 3;
    b.bantime = 600;
    b
}

/// Values that would run `touch <marker>` if the shell ever parsed them.
fn hostile(marker: &str) -> Vec<String> {
    vec![
        format!("; touch {marker}"),
        format!("$(touch {marker})"),
        format!("`touch {marker}`"),
        format!("x\ntouch {marker}"),
        format!("x\rtouch {marker}"),
        format!("'; touch {marker}; '"),
        format!("\"; touch {marker}; \""),
        format!("\\\"; touch {marker} #"),
        format!("| touch {marker}"),
        format!("&& touch {marker}"),
        format!("> {marker}"),
        format!("${{IFS}}touch${{IFS}}{marker}"),
        format!("$(touch${{IFS}}{marker})"),
        "-e \\x41".to_string(),
        "*".to_string(),
    ]
}

#[tokio::test(flavor = "current_thread")]
async fn hostile_values_never_execute() {
    let dir = TempDir::new("hostile");
    let marker = dir.file("MARKER");
    let out = dir.file("out");
    // The tags in every quoting context an action might use.
    let ban = format!(
        "printf '%s|\\n' <ip> <fid> \"<fid>\" '<fid>' <F-USER> \"<F-USER>\" '<F-USER>' \
         \"<matches>\" <F-ID> >> {out}"
    );
    let mut a = action(&[("actionban", &ban)]);
    for value in hostile(&marker) {
        // A raw id (no family) and a filter field carrying the hostile text.
        let mut b = BanInfo::new(HostId::raw(&value), 1.0);
        b.fields = vec![
            ("user".into(), value.clone()),
            ("fid".into(), value.clone()),
        ];
        b.matches = vec![value.clone(), format!("2nd {value}")];
        assert!(a.ban(&b).await.unwrap(), "{value:?}");
        assert!(!Path::new(&marker).exists(), "executed: {value:?}");
        // Address ids with hostile fields.
        let mut b = ticket("192.0.2.1");
        b.fields = vec![("user".into(), value.clone())];
        a.ban(&b).await.unwrap();
        assert!(!Path::new(&marker).exists(), "executed: {value:?}");
    }
    // Control: the same command shape does run what the static configuration says.
    let control = format!("{marker}-control");
    let mut c = action(&[("actionban", "touch <file> <F-USER>"), ("file", &control)]);
    c.ban(&ticket("192.0.2.1")).await.unwrap();
    assert!(Path::new(&control).exists());
    let text = read(Path::new(&out));
    // Double-quoted references received the values verbatim.
    for value in hostile(&marker) {
        if value != "*" && !value.contains('\n') && !value.contains('\r') {
            assert!(
                text.contains(&format!("{value}|")),
                "{value:?} not passed verbatim"
            );
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn hostile_values_are_parameters_not_script() {
    let mut a = action(&[("actionban", "echo <ip> <F-USER> <ip-rev> <family>")]);
    let mut b = BanInfo::new(HostId::raw("1.2.3.4; rm -rf /"), 1.0);
    b.fields = vec![("F-USER".into(), "$(id)".into())];
    let c = a.render(Operation::Ban, &b).unwrap();
    assert_eq!(
        c.script,
        "f2bV_ip=$0 f2bV_F_user=$1 \necho $f2bV_ip $f2bV_F_user  None"
    );
    assert_eq!(c.args, vec!["1.2.3.4; rm -rf /", "$(id)"]);
    // Addresses and networks are validated and pasted as they are.
    let c = a.render(Operation::Ban, &ticket("2001:db8::/32")).unwrap();
    assert_eq!(
        c.script,
        "echo 2001:db8::/32  0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2. inet6"
    );
    assert!(c.args.is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn timeout_kills_the_process_group() {
    let dir = TempDir::new("timeout");
    let pidfile = dir.file("pid");
    let start = format!("sleep 5 & echo $! > {pidfile}; wait");
    let mut a = action(&[("actionstart", &start), ("timeout", "0.2")]);
    let t0 = Instant::now();
    let err = a.start().await.unwrap_err();
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let f = err.failure().expect("a command failure");
    assert_eq!(f.operation, Operation::Start);
    assert_eq!(
        f.exit,
        Exit::TimedOut {
            after: "0.2".into(),
            reaped: true
        }
    );
    assert!(
        err.to_string().contains("timed out after 0.2 seconds"),
        "{err}"
    );
    let pid: i32 = read(Path::new(&pidfile)).trim().parse().unwrap();
    // The background sleep was in the group: it is gone (at most a zombie awaiting init).
    assert_gone(pid).await;
    // A failed start leaves the action not started: stop has nothing to do.
    a.stop().await.unwrap();
}

/// Waits until process `pid` is gone (or a zombie awaiting its reaper).
async fn assert_gone(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit(')').next().unwrap_or("").trim().chars().next();
        if stat.is_empty() || state == Some('Z') {
            return;
        }
        assert!(Instant::now() < deadline, "{pid} still running: {stat}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn abandoned_command_is_killed() {
    let dir = TempDir::new("abandon");
    let pidfile = dir.file("pid");
    let ban = format!("sleep 5 & echo $! > {pidfile}; wait");
    let mut a = action(&[("actionban", &ban)]);
    let t = ticket("192.0.2.1");
    let r = tokio::time::timeout(Duration::from_millis(300), a.ban(&t)).await;
    assert!(r.is_err(), "the ban should still be running");
    let pid: i32 = read(Path::new(&pidfile)).trim().parse().unwrap();
    assert_gone(pid).await;
}

#[tokio::test(flavor = "current_thread")]
async fn failure_carries_status_and_stderr() {
    let mut a = action(&[("actionban", "echo out; echo 'bad thing' >&2; exit 3")]);
    let logs = Arc::new(Mutex::new(Vec::new()));
    let l = logs.clone();
    a = a.with_log(LogSink::new(move |lvl, logger, msg| {
        l.lock()
            .unwrap()
            .push((lvl, logger.to_string(), msg.to_string()));
    }));
    let err = a.ban(&ticket("192.0.2.9")).await.unwrap_err();
    let f = err.failure().unwrap();
    assert_eq!(f.exit, Exit::Code(3));
    assert_eq!(f.stderr, "bad thing\n");
    assert_eq!(f.stdout, "out\n");
    assert_eq!(f.action, "test");
    assert_eq!(f.jail, "jail");
    assert_eq!(f.command.script, "echo out; echo 'bad thing' >&2; exit 3");
    assert!(err.to_string().contains("'bad thing'"), "{err}");
    let logs = logs.lock().unwrap();
    // Without actioncheck fail2ban runs a failed ban twice.
    let returned: Vec<_> = logs
        .iter()
        .filter(|(_, _, m)| m.ends_with("-- returned 3"))
        .collect();
    assert_eq!(returned.len(), 2, "{logs:?}");
    assert!(logs.iter().any(|(l, n, m)| *l == Severity::Error
        && n == "fail2ban.utils"
        && m.ends_with("-- stderr: 'bad thing'")));
}

#[tokio::test(flavor = "current_thread")]
async fn on_demand_and_per_family_start() {
    let dir = TempDir::new("family");
    let log = dir.file("log");
    let opts = [
        ("actionstart", "echo start <family> <chain> >> <log>"),
        ("actionstop", "echo stop <family> <chain> >> <log>"),
        ("actionflush", "echo flush >> <log>"),
        ("actionban", "echo ban <ip> <chain> >> <log>"),
        ("actionunban", "echo unban <ip> <chain> >> <log>"),
        ("chain", "c4"),
        ("chain?family=inet6", "c6"),
        ("log", &log),
    ];
    let mut a = action(&opts);
    assert!(a.starts_on_demand());
    a.start().await.unwrap();
    assert_eq!(read(Path::new(&log)), "");
    a.ban(&ticket("192.0.2.1")).await.unwrap();
    a.ban(&ticket("192.0.2.2")).await.unwrap();
    a.ban(&ticket("2001:db8::1")).await.unwrap();
    assert!(a.unban(&ticket("192.0.2.1")).await.unwrap());
    a.flush().await.unwrap();
    // Flushed: unbans have nothing to do.
    assert!(!a.unban(&ticket("192.0.2.2")).await.unwrap());
    a.stop().await.unwrap();
    assert_eq!(
        read(Path::new(&log)),
        "start inet4 c4\nban 192.0.2.1 c4\nban 192.0.2.2 c4\nstart inet6 c6\n\
         ban 2001:db8::1 c6\nunban 192.0.2.1 c4\nflush\nstop inet4 c4\nstop inet6 c6\n"
    );
    // Stopped: nothing left to stop.
    a.stop().await.unwrap();
    assert_eq!(read(Path::new(&log)).matches("stop").count(), 2);

    // Not on demand: start runs once per family; the same command runs once.
    std::fs::remove_file(&log).unwrap();
    let mut opts2 = opts.to_vec();
    opts2.push(("actionstart_on_demand", "false"));
    opts2[1] = ("actionstop", "echo stop-all >> <log>");
    let mut a = action(&opts2);
    a.start().await.unwrap();
    a.ban(&ticket("2001:db8::5")).await.unwrap();
    a.stop().await.unwrap();
    assert_eq!(
        read(Path::new(&log)),
        "start inet4 c4\nstart inet6 c6\nban 2001:db8::5 c6\nstop-all\n"
    );

    // A raw id starts every family on demand; IPv6 only when allowed.
    std::fs::remove_file(&log).unwrap();
    let mut a = action(&opts);
    a.set_ipv6_allowed(false);
    a.ban(&BanInfo::new(HostId::raw("someone"), 1.0))
        .await
        .unwrap();
    assert_eq!(read(Path::new(&log)), "start inet4 c4\nban someone c4\n");
}

#[tokio::test(flavor = "current_thread")]
async fn plain_action_starts_once_and_uses_operation_tags() {
    let dir = TempDir::new("plain");
    let log = dir.file("log");
    let mut a = action(&[
        (
            "actionstart",
            "echo start '<family>' <time> <bantime> <ip><br>echo x<sp>y >> <log>",
        ),
        ("actionstop", "echo stop >> <log>"),
        (
            "actionban",
            "echo ban <ip> <family> <failures> <time> <bantime> <restored> >> <log>",
        ),
        ("log", &log),
    ])
    .with_clock(Arc::new(ManualClock::new(1234.5)));
    a.set_jail_bantime(3600);
    assert!(!a.starts_on_demand());
    a.start().await.unwrap();
    a.ban(&ticket("198.51.100.7")).await.unwrap();
    a.stop().await.unwrap();
    assert_eq!(
        read(Path::new(&log)),
        "x y\nban 198.51.100.7 inet4 3 1700000000.5 600 0\nstop\n"
    );
    let c = a.render_operation(Operation::Start, Some("")).unwrap();
    assert_eq!(
        c.script,
        format!("echo start '' 1234.5 3600 \necho x y >> {log}")
    );
}

#[tokio::test(flavor = "current_thread")]
async fn norestored_skips_restored_tickets() {
    let dir = TempDir::new("restored");
    let log = dir.file("log");
    let ban = format!("echo ban <ip> <restored> >> {log}");
    let mut restored = ticket("192.0.2.3");
    restored.restored = true;
    let mut a = action(&[("actionban", &ban), ("norestored", "true")]);
    assert!(!a.ban(&restored).await.unwrap());
    assert!(a.ban(&ticket("192.0.2.4")).await.unwrap());
    let mut b = action(&[("actionban", &ban)]);
    assert!(b.ban(&restored).await.unwrap());
    assert_eq!(read(Path::new(&log)), "ban 192.0.2.4 0\nban 192.0.2.3 1\n");
}

#[tokio::test(flavor = "current_thread")]
async fn failed_ban_is_checked_repaired_and_retried() {
    let dir = TempDir::new("repair");
    let log = dir.file("log");
    let ok = dir.file("ok");
    let mut a = action(&[
        ("actionban", "test -f <ok> && echo ban <ip> >> <log>"),
        ("actioncheck", "test -f <ok>"),
        ("actionrepair", "touch <ok>; echo repair >> <log>"),
        ("actionunban", "echo unban <ip> >> <log>"),
        ("ok", &ok),
        ("log", &log),
    ]);
    a.ban(&ticket("192.0.2.5")).await.unwrap();
    assert_eq!(read(Path::new(&log)), "repair\nban 192.0.2.5\n");
    assert_eq!(a.ban_epoch(), 1);
    assert!(a.check().await.unwrap());

    // No repair command: the family is stopped and started again before the retry.
    std::fs::remove_file(&log).unwrap();
    let opts = [
        ("actionstart", "touch <ok>; echo start <family> >> <log>"),
        ("actionstop", "echo stop <family> >> <log>"),
        ("actionban", "test -f <ok> && echo ban <ip> >> <log>"),
        ("actioncheck", "test -f <ok>"),
        ("x?family=inet6", "per-family"),
        ("ok", &ok),
        ("log", &log),
    ];
    let mut a = action(&opts);
    a.ban(&ticket("192.0.2.5")).await.unwrap();
    std::fs::remove_file(&ok).unwrap();
    a.ban(&ticket("192.0.2.6")).await.unwrap();
    assert_eq!(
        read(Path::new(&log)),
        "start inet4\nban 192.0.2.5\nstop inet4\nstart inet4\nban 192.0.2.6\n"
    );
    // A failed check whose repair is declined is left alone (fail2ban counts it as sane).
    std::fs::remove_file(&ok).unwrap();
    let mut never = || false;
    assert!(a.consistency_check(Some(&mut never)).await.unwrap());
    // A repair that fails marks the family not started: stop has nothing to do for it.
    let mut opts = opts.to_vec();
    opts.push(("actionrepair", "echo repair >> <log>; false"));
    let mut a = action(&opts);
    std::fs::write(&ok, "").unwrap();
    a.ban(&ticket("192.0.2.8")).await.unwrap();
    std::fs::remove_file(&ok).unwrap();
    std::fs::remove_file(&log).unwrap();
    assert!(!a.check().await.unwrap());
    a.stop().await.unwrap();
    assert_eq!(read(Path::new(&log)), "repair\n");
}

#[tokio::test(flavor = "current_thread")]
async fn reban_prolong_and_uses_tag() {
    let dir = TempDir::new("reban");
    let log = dir.file("log");
    let mut a = action(&[
        ("actionban", "echo ban <ip> >> <log>"),
        ("actionreban", "echo reban <ip> >> <log>"),
        ("actionprolong", "echo prolong <ip> <bantime> >> <log>"),
        ("actionunban", "echo unban <ip> <ipjailmatches> >> <log>"),
        ("log", &log),
    ]);
    assert!(a.uses_tag("ipjailmatches"));
    assert!(!a.uses_tag("ipmatches"));
    assert!(a.uses_tag("bantime"));
    assert!(a.is_prolongable());
    a.reban(&ticket("192.0.2.7")).await.unwrap();
    let mut t = ticket("192.0.2.7");
    t.bantime = 1200;
    assert!(a.prolong(&t).await.unwrap());
    t.ipjailmatches = Some(vec!["a".into()]);
    a.unban(&t).await.unwrap();
    assert_eq!(
        read(Path::new(&log)),
        "reban 192.0.2.7\nprolong 192.0.2.7 1200\nunban 192.0.2.7 a\n"
    );
    let plain = action(&[("actionban", "x")]);
    assert!(!plain.is_prolongable());
    assert!(!plain.has_flush());
}

#[test]
fn python_actions_are_refused() {
    let mut d = def(&[]);
    d.kind = ActionKind::Python {
        path: "/etc/fail2ban/action.d/smtp.py".into(),
    };
    let err = CommandAction::new(&d, "sshd").unwrap_err();
    assert!(matches!(err, ActionError::PythonAction { .. }));
    assert!(
        err.to_string().contains("/etc/fail2ban/action.d/smtp.py"),
        "{err}"
    );
    assert!(err.to_string().contains("sendmail-whois-lines"), "{err}");
}

/// Every Python action fail2ban ships is refused with a named native replacement that fail2ban's
/// own tree provides (read from the reference at run time; 1.0.2 ships smtp.py).
#[test]
fn stock_python_actions_name_a_native_replacement() {
    let root = std::env::var("FERROBAN_F2B_ROOT").unwrap_or_else(|_| "/tmp/f2b/root".into());
    let dir = std::path::Path::new(&root).join("etc/fail2ban/action.d");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        panic!("fail2ban reference not found at {}", dir.display());
    };
    let mut seen = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".py") {
            continue;
        }
        seen += 1;
        let instead = super::python_action_replacement(&name)
            .unwrap_or_else(|| panic!("no native replacement named for fail2ban's {name}"));
        let action = instead
            .split("action = ")
            .nth(1)
            .and_then(|s| s.split(['[', ' ', ':']).next())
            .unwrap_or_else(|| panic!("{name}: {instead}"));
        assert!(
            dir.join(format!("{action}.conf")).is_file(),
            "{name}: the replacement {action}.conf is not in fail2ban's action.d"
        );
        let mut d = def(&[]);
        d.kind = ActionKind::Python {
            path: e.path().display().to_string(),
        };
        let err = CommandAction::new(&d, "sshd").unwrap_err().to_string();
        assert!(err.contains(instead), "{err}");
    }
    assert!(seen > 0, "no Python action in {}", dir.display());
}

#[test]
fn self_reference_is_an_error() {
    let mut a = action(&[("actionban", "<a>"), ("a", "<b>"), ("b", "<a>")]);
    let err = a.render(Operation::Ban, &ticket("192.0.2.1")).unwrap_err();
    assert!(matches!(err, ActionError::Tags { .. }), "{err}");
}
