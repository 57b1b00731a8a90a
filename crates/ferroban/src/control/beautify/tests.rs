//! The beautifier, checked against fail2ban's own `Beautifier` (run with `python3` at test time
//! from `$FERROBAN_F2B_ROOT`, default `/tmp/f2b/root`) and, for fail2ban 1.1's `status --all`
//! and `stats`, against written-out text.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::{beautify, render};
use crate::control::testutil::{f2b_root, jail_status, python};

fn argv(words: &str) -> Vec<String> {
    words.split(' ').map(str::to_string).collect()
}

/// Every (command, value) pair compared with fail2ban; `|` separates words that contain spaces.
fn cases() -> Vec<(Vec<String>, Value)> {
    let w = |s: &str| -> Vec<String> {
        if s.contains('|') {
            s.split('|').map(str::to_string).collect()
        } else {
            argv(s)
        }
    };
    let regexes = json!(["^fail from (?:\\[?(?P<ip4>\\d+))$", "x <HOST> y"]);
    vec![
        (w("ping"), json!("pong")),
        (w("ping 0.5"), json!("pong")),
        (w("version"), json!("1.0.2")),
        (w("start sshd"), Value::Null),
        (w("stop"), Value::Null),
        (w("stop sshd"), Value::Null),
        (w("stop --all"), Value::Null),
        (w("stop"), json!("odd")),
        (w("add newjail polling"), json!("newjail")),
        (w("flushlogs"), json!("rolled over")),
        (w("flushlogs"), json!("flushed")),
        (w("echo hello world"), json!(["hello", "world"])),
        (w("echo"), json!([])),
        (w("server-status"), json!("Server ready")),
        (w("reload --all"), json!("OK")),
        (w("reload --restart --unban sshd"), json!("OK")),
        (
            w("status"),
            json!([["Number of jail", 2], ["Jail list", "nginx-404, sshd"]]),
        ),
        (
            w("status"),
            json!([["Number of jail", 0], ["Jail list", ""]]),
        ),
        (w("status nginx-404"), jail_status()),
        (w("status sshd basic"), jail_status()),
        (
            w("status sshd short"),
            json!([
                [
                    "Filter",
                    [
                        ["Currently failed", 2],
                        ["Total failed", 9],
                        ["File list", ["/var/log/auth.log", "/var/log/secure"]]
                    ]
                ],
                ["Actions", [["Currently banned", 2], ["Total banned", 7]]]
            ]),
        ),
        (
            w("status sshd cymru"),
            json!([
                [
                    "Filter",
                    [
                        ["Currently failed", 0],
                        ["Total failed", 0],
                        ["File list", []]
                    ]
                ],
                [
                    "Actions",
                    [
                        ["Currently banned", 2],
                        ["Total banned", 2],
                        ["Banned IP list", ["198.51.100.7", "2001:db8::1"]],
                        ["Banned ASN list", ["error"]],
                        ["Banned Country list", ["error"]],
                        ["Banned RIR list", ["error"]]
                    ]
                ]
            ]),
        ),
        (
            w("status sshd"),
            json!([
                [
                    "Filter",
                    [
                        ["Currently failed", 0],
                        ["Total failed", 3],
                        [
                            "Journal matches",
                            ["_SYSTEMD_UNIT=sshd.service + _COMM=sshd"]
                        ]
                    ]
                ],
                [
                    "Actions",
                    [
                        ["Currently banned", 0],
                        ["Total banned", 0],
                        ["Banned IP list", []]
                    ]
                ]
            ]),
        ),
        (w("status sshd"), json!([])),
        (w("status sshd"), Value::Null),
        (w("status sshd"), json!([["Filter", 3]])),
        (w("status"), json!([["Number of jail"]])),
        (
            w("banned"),
            json!([{"sshd": ["198.51.100.7", "203.0.113.5"]}, {"nginx-404": []}]),
        ),
        (w("banned"), json!([])),
        (w("banned 198.51.100.7 192.0.2.1"), json!([["sshd"], []])),
        (w("banned 198.51.100.7"), json!([["sshd", "nginx-404"]])),
        (w("unban --all"), json!(2)),
        (w("unban 192.0.2.1"), json!(0)),
        (w("get sshd banned"), json!(["198.51.100.7", "203.0.113.5"])),
        (w("get sshd banned 198.51.100.7"), json!(1)),
        (w("get sshd banned 198.51.100.7 1.2.3.4"), json!([1, 0])),
        (w("get sshd banip"), json!(["203.0.113.5", "198.51.100.7"])),
        (
            w("get sshd banip ,"),
            json!(["203.0.113.5", "198.51.100.7"]),
        ),
        (w("get sshd banip"), json!([])),
        (
            w("get sshd banip --with-time"),
            json!([
                "203.0.113.5 \t2026-11-25 14:08:51 + 600 = 2026-11-25 14:18:51",
                "198.51.100.7 \t2026-11-25 14:08:51 + 600 = 2026-11-25 14:18:51"
            ]),
        ),
        (w("get sshd banip"), json!([1])),
        (w("get sshd banip"), json!("odd")),
        (w("get sshd findtime"), json!(600)),
        (w("get sshd bantime"), json!(-1)),
        (w("set sshd bantime 1.5h"), json!(5400.0)),
        (w("set sshd findtime 10.5"), json!(10.5)),
        (w("get sshd maxretry"), json!(3)),
        (w("get sshd maxlines"), json!(1)),
        (w("get sshd maxmatches"), json!(5)),
        (w("get sshd ignoreip"), json!(["127.0.0.0/8", "::1"])),
        (w("get sshd ignoreip"), json!([])),
        (w("get sshd ignoreip"), json!(["10.0.0.1"])),
        (
            w("set sshd addignoreip 10.0.0.1"),
            json!(["127.0.0.0/8", "10.0.0.1", "::1"]),
        ),
        (
            w("set sshd delignoreip 10.0.0.1"),
            json!(["127.0.0.0/8", "::1"]),
        ),
        (w("get sshd ignoreip"), json!("ab")),
        (w("get sshd ignoreip"), json!(5)),
        (w("get sshd ignoreip"), json!(["a", 1])),
        (w("get sshd ignoreip"), json!({"a": 1})),
        (w("get sshd ignoreip"), json!({})),
        (w("get sshd logpath"), json!(["/var/log/auth.log"])),
        (
            w("get sshd logpath"),
            json!(["/var/log/auth.log", "/var/log/secure", "/x"]),
        ),
        (w("get sshd logpath"), json!([])),
        (
            w("set sshd addlogpath /x tail"),
            json!(["/var/log/auth.log", "/x"]),
        ),
        (w("set sshd dellogpath /x"), json!([])),
        (w("get sshd logpath"), Value::Null),
        (w("get sshd logencoding"), json!("UTF-8")),
        (w("set sshd logencoding latin-1"), json!("latin-1")),
        (w("get sshd logencoding"), Value::Null),
        (w("get sshd journalmatch"), json!([])),
        (
            w("get sshd journalmatch"),
            json!([["_SYSTEMD_UNIT=sshd.service", "+", "_COMM=sshd"]]),
        ),
        (
            w("set sshd addjournalmatch _COMM=x"),
            json!([["_SYSTEMD_UNIT=sshd.service"], ["_COMM=x"]]),
        ),
        (w("get sshd journalmatch"), json!([[1]])),
        (w("get sshd failregex"), regexes.clone()),
        (w("get sshd failregex"), json!([])),
        (w("get sshd ignoreregex"), json!(["^ignored$"])),
        (w("set sshd addfailregex|x <HOST>"), regexes.clone()),
        (w("set sshd delfailregex 0"), json!(["x"])),
        (w("set sshd addignoreregex y"), json!(["y"])),
        (w("set sshd delignoreregex 0"), json!([])),
        (w("get sshd prefregex"), json!("")),
        (w("get sshd prefregex"), json!("^%(__prefix_line)s")),
        (w("get sshd usedns"), json!("warn")),
        (w("set sshd usedns no"), json!("no")),
        (w("get sshd datepattern"), Value::Null),
        (
            w("get sshd datepattern"),
            json!([null, "Default Detectors"]),
        ),
        (
            w("get sshd datepattern"),
            json!(["%Y-%m-%d", "{^LN-BEG}%Y-%m-%d"]),
        ),
        (w("set sshd datepattern %Y"), json!(["%Y", "%Y"])),
        (w("get sshd datepattern"), json!("ab")),
        (w("get sshd logtimezone"), Value::Null),
        (w("get sshd logtimezone"), json!("UTC")),
        (w("get sshd ignoreself"), json!(true)),
        (w("set sshd ignoreself false"), json!(false)),
        (w("get sshd ignorecommand"), json!(false)),
        (w("get sshd ignorecommand"), json!("/bin/true <ip>")),
        (w("get sshd ignorecache"), Value::Null),
        (w("get sshd ignorecache"), json!(["<ip>", 100, 300])),
        (w("get sshd actions"), json!([])),
        (
            w("get sshd actions"),
            json!(["iptables-multiport", "sendmail-whois"]),
        ),
        (w("get sshd actions"), json!([1])),
        (
            w("get sshd actionproperties iptables"),
            json!(["actionban", "actionstart"]),
        ),
        (w("get sshd actionproperties iptables"), json!([])),
        (
            w("get sshd actionmethods iptables"),
            json!(["ban", "start"]),
        ),
        (w("get sshd actionmethods iptables"), json!([])),
        (w("get sshd actionmethods"), json!([])),
        (
            w("get sshd action iptables actionban"),
            json!("iptables -I f2b-<name> 1 -s <ip> -j <blocktype>"),
        ),
        (w("set sshd action iptables timeout 60"), json!("60")),
        (w("get sshd bantime.increment"), Value::Null),
        (w("set sshd bantime.factor 2"), json!("2")),
        (w("set sshd banip 198.51.100.7 203.0.113.5"), json!(2)),
        (w("set sshd unbanip 192.0.2.9"), json!(0)),
        (w("set sshd attempt 1.2.3.4"), json!(1)),
        (w("set sshd idle on"), json!(true)),
        (w("set sshd maxretry 5"), json!(5)),
        (w("set sshd addaction foo"), json!("foo")),
        (w("set sshd delaction foo"), Value::Null),
        (w("get loglevel"), json!("INFO")),
        (w("set loglevel DEBUG"), json!("DEBUG")),
        (w("get loglevel"), json!(20)),
        (w("get loglevel"), json!(25)),
        (w("get loglevel"), json!(5)),
        (w("get loglevel"), json!(7)),
        (w("get loglevel"), json!(18)),
        (w("get loglevel"), json!(33)),
        (w("get loglevel"), json!(0)),
        (w("get loglevel"), json!(100)),
        (w("get loglevel"), json!(-3)),
        (w("get loglevel"), json!(true)),
        (w("get loglevel"), json!(20.5)),
        (w("get logtarget"), json!("/var/log/fail2ban.log")),
        (w("set logtarget STDOUT"), json!("STDOUT")),
        (w("get logtarget"), Value::Null),
        (w("get syslogsocket"), json!("auto")),
        (w("set syslogsocket /dev/log"), json!("/dev/log")),
        (w("get dbfile"), Value::Null),
        (w("get dbfile"), json!("/var/lib/fail2ban/fail2ban.sqlite3")),
        (w("set dbfile :memory:"), json!(":memory:")),
        (w("get dbfile"), json!(3)),
        (w("get dbpurgeage"), json!(86400)),
        (w("get dbpurgeage"), json!(86400.7)),
        (w("get dbpurgeage"), json!(-0.5)),
        (w("get dbpurgeage"), json!(true)),
        (w("get dbpurgeage"), Value::Null),
        (w("get dbpurgeage"), json!("1d")),
        (w("get dbmaxmatches"), json!(10)),
        (w("get dbmaxmatches"), Value::Null),
        (w("get thread"), json!({"stacksize": 0})),
        (w("set allowipv6 auto"), json!("auto")),
        (w("nosuch"), json!("x")),
        (w("nosuch a b c"), json!({"k": [1.5, null, "it's"]})),
        (w("ping"), Value::Null),
        (w("echo"), json!([1])),
        (w("add x"), json!(1)),
        (w("get sshd action a b"), json!("tab\there\nline é\u{1}")),
    ]
}

/// Runs fail2ban's Beautifier on every case in one python process; returns what `print()`
/// would write for each (without the newline).
fn reference(cases: &[(Vec<String>, Value)]) -> Vec<String> {
    const SCRIPT: &str = r#"
import json, logging, sys
logging.disable(logging.CRITICAL)
from fail2ban.client.beautifier import Beautifier
out = []
for argv, value in json.load(sys.stdin):
    # fail2ban returns the date pattern as a tuple
    if len(argv) > 2 and argv[2] == "datepattern" and isinstance(value, list):
        value = tuple(value)
    out.append(str(Beautifier(argv).beautify(value)))
json.dump(out, sys.stdout)
"#;
    let root = f2b_root("usr/lib/python3/dist-packages/fail2ban/client/beautifier.py");
    let python = python();
    let mut child = Command::new(&python)
        .arg("-c")
        .arg(SCRIPT)
        .env("PYTHONPATH", root.join("usr/lib/python3/dist-packages"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let input = serde_json::to_vec(cases).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python beautifier failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python printed JSON")
}

#[test]
fn matches_fail2ban_beautifier_byte_for_byte() {
    let cases = cases();
    let expected = reference(&cases);
    assert_eq!(expected.len(), cases.len());
    let mut bad = Vec::new();
    for ((argv, value), want) in cases.iter().zip(&expected) {
        let got = beautify(argv, value);
        if &got != want {
            bad.push(format!(
                "{argv:?} {value}\n  fail2ban: {want:?}\n  ferroban: {got:?}"
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} differ:\n{}",
        bad.len(),
        cases.len(),
        bad.join("\n")
    );
}

#[test]
fn shape_mismatch_is_flagged() {
    assert!(!render(&argv("get sshd logpath"), &json!([])).mismatch);
    let r = render(&argv("get sshd logpath"), &json!(5));
    assert!(r.mismatch);
    assert_eq!(r.text, "55");
}

#[test]
fn jail_status_tree() {
    let text = beautify(&argv("status sshd"), &jail_status());
    assert_eq!(
        text,
        "Status for the jail: sshd\n\
         |- Filter\n\
         |  |- Currently failed:\t0\n\
         |  |- Total failed:\t5\n\
         |  `- File list:\t/var/log/nginx/access.log\n\
         `- Actions\n\
         \x20  |- Currently banned:\t1\n\
         \x20  |- Total banned:\t1\n\
         \x20  `- Banned IP list:\t198.51.100.7"
    );
}

#[test]
fn status_all_like_fail2ban_1_1() {
    let value = json!([
        ["Number of jail", 2],
        ["Jail list", "nginx-404, sshd"],
        {"nginx-404": [["Filter", [["Currently failed", 0]]], ["Actions", [["Currently banned", 0]]]],
         "sshd": jail_status()}
    ]);
    let want = "Status\n\
        |- Number of jail:\t2\n\
        |- Jail list:\tnginx-404, sshd\n\
        `- Status for the jails:\n\
        \x20  |- Jail: nginx-404\n\
        \x20  |  |- Filter\n\
        \x20  |  |  `- Currently failed:\t0\n\
        \x20  |  `- Actions\n\
        \x20  |     `- Currently banned:\t0\n\
        \x20  `- Jail: sshd\n\
        \x20     |- Filter\n\
        \x20     |  |- Currently failed:\t0\n\
        \x20     |  |- Total failed:\t5\n\
        \x20     |  `- File list:\t/var/log/nginx/access.log\n\
        \x20     `- Actions\n\
        \x20        |- Currently banned:\t1\n\
        \x20        |- Total banned:\t1\n\
        \x20        `- Banned IP list:\t198.51.100.7";
    assert_eq!(beautify(&argv("status --all"), &value), want);
    // The daemon may also send the jails as a ["Jails", {...}] pair.
    let mut paired = value.as_array().unwrap().clone();
    let jails = paired.pop().unwrap();
    paired.push(json!(["Jails", jails]));
    assert_eq!(
        beautify(&argv("status --all short"), &Value::Array(paired)),
        want
    );
    // Without jails, only the summary.
    let none = json!([["Number of jail", 0], ["Jail list", ""], {}]);
    assert_eq!(
        beautify(&argv("status --all"), &none),
        "Status\n|- Number of jail:\t0\n`- Jail list:\t"
    );
}

#[test]
fn stats_table_like_fail2ban_1_1() {
    let value = json!({
        "nginx-botsearch": ["pyinotify", [0, 12], [3, 1234]],
        "sshd": ["polling", [1, 5], [0, 1]]
    });
    let got = beautify(&argv("stats"), &value);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 7, "{got}");
    // Column widths follow the widest cell: "pyinotify" (9) widens the backend column.
    assert_eq!(
        lines[0],
        "                ║           ║ Filter    ║ Actions   "
    );
    assert_eq!(
        lines[1],
        "Jail            ║ Backend   ╟───────────╫────────────"
    );
    assert_eq!(
        lines[2],
        "                ║           ║ cur │ tot ║ cur │  tot"
    );
    assert_eq!(
        lines[3],
        "════════════════╬═══════════╬═══════════╬════════════"
    );
    assert_eq!(
        lines[4],
        "nginx-botsearch ║ pyinotify ║   0 │  12 ║   3 │ 1234"
    );
    assert_eq!(
        lines[5],
        "sshd            ║ polling   ║   1 │   5 ║   0 │    1"
    );
    assert_eq!(
        lines[6],
        "════════════════╩═══════════╩═══════════╩════════════"
    );
    assert_eq!(beautify(&argv("stats"), &json!({})), "No jails found.");
    assert_eq!(beautify(&argv("statistics"), &json!({})), "No jails found.");
}
