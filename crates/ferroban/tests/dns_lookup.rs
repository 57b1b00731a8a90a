//! `usedns = warn` off the engine, end to end: `ferroban server -f` in private mount and network
//! namespaces whose `/etc/resolv.conf` names a DNS server this test runs there (127.0.0.1:53,
//! `DNS_SERVER` below). The server answers `slow.test` (192.0.2.99) only when the test says so
//! (or after 4 s, under the daemon's 5 s timeout), never answers `never.test`, and answers every
//! other name at once (NXDOMAIN). Checked:
//! - while `slow.test` is being resolved for jail `slow`, jail `fast` bans and `status` answers;
//! - once the answer comes, the waiting failure counts (jail `slow` bans 192.0.2.99), with
//!   fail2ban's `Determined IP using DNS Lookup` warning;
//! - a name without answer times out after 5 s with fail2ban's `Unable to find a corresponding
//!   IP address` warning, and is not asked again while that (empty) answer is cached.
//!
//! Assertions are about order, not wall time. Needs root, util-linux's unshare and iproute2's ip.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use ferroban_testkit::{RECORD_ACTION, Tree, WEB_FILTER, access_line, unshare_sh, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_ferroban");

/// A DNS server on 127.0.0.1:53 (UDP): A and AAAA questions for `slow.test` are held until the
/// file `<dir>/dns.release` exists (at most 4 s), then answered (A: 192.0.2.99; AAAA: no
/// record); questions for `never.test` are never answered; each question for either is noted
/// in `<dir>/dns.asked` (`NAME QTYPE`). Any other name: NXDOMAIN at once.
/// Exits when its parent (the daemon, which it was started by) is gone.
const DNS_SERVER: &str = r#"
import os, select, socket, struct, sys, time
d = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
open(d + "/dns.ready", "w").close()
parent = os.getppid()
held = []

def reply(q, qend, name, qtype):
    ans, an, rcode = b"", 0, 3
    if name == "slow.test":
        rcode = 0
        if qtype == 1:
            ans = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton("192.0.2.99")
            an = 1
    return q[:2] + struct.pack(">HHHHH", 0x8180 | rcode, 1, an, 0, 0) + q[12:qend] + ans

while os.getppid() == parent:
    r, _, _ = select.select([s], [], [], 0.05)
    if r:
        q, addr = s.recvfrom(4096)
        i, labels = 12, []
        while q[i]:
            labels.append(q[i + 1:i + 1 + q[i]].decode("ascii", "replace"))
            i += 1 + q[i]
        qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
        name = ".".join(labels).lower()
        if name in ("slow.test", "never.test"):
            with open(d + "/dns.asked", "a") as f:
                f.write("%s %d\n" % (name, qtype))
        if name == "slow.test":
            held.append((time.time() + 4, q, addr, i + 5, qtype))
        elif name != "never.test":
            s.sendto(reply(q, i + 5, name, qtype), addr)
    released = os.path.exists(d + "/dns.release")
    for h in [h for h in held if released or time.time() >= h[0]]:
        held.remove(h)
        s.sendto(reply(h[1], h[3], "slow.test", h[4]), h[2])
"#;

fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "tests/dns_lookup.rs needs root (private mount and network namespaces); CI runs as root"
    );
}

/// The tree, and the daemon in its namespaces (killed on drop, before the tree is removed).
struct Lab {
    tree: Tree,
    child: Option<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Lab {
    fn start(tag: &str) -> Lab {
        require_root();
        let t = Tree::new(BIN, "dnslookup", tag, "INFO");
        let d = t.dir.display().to_string();
        t.write("filter.d/web.conf", WEB_FILTER);
        t.write("action.d/record.conf", RECORD_ACTION);
        t.write(
            "jail.conf",
            &format!(
                "[DEFAULT]\nbantime = 1h\nfindtime = 10m\nmaxretry = 1\nignoreself = false\n\
                 filter = web\naction = record[out=\"{d}/actions.out\"]\n\n\
                 [slow]\nenabled = true\nusedns = warn\nlogpath = {d}/slow.log\n\n\
                 [fast]\nenabled = true\nusedns = warn\nlogpath = {d}/fast.log\n"
            ),
        );
        for log in ["slow.log", "fast.log"] {
            t.write(log, "");
        }
        t.write("dns.py", DNS_SERVER);
        // One query per name and family, waited for up to 30 s: the daemon's 5 s timeout is
        // the one that ends a look-up.
        t.write(
            "resolv.conf",
            "nameserver 127.0.0.1\noptions timeout:30 attempts:1\n",
        );
        t.write("nsswitch.conf", "hosts: files dns\n");
        t.write("hosts", "127.0.0.1 localhost\n::1 localhost\n");
        let script = format!(
            "ip link set lo up \
             && mount --bind {d}/resolv.conf /etc/resolv.conf \
             && mount --bind {d}/nsswitch.conf /etc/nsswitch.conf \
             && mount --bind {d}/hosts /etc/hosts \
             && {{ /usr/bin/python3 {d}/dns.py {d} & }} \
             && while [ ! -e {d}/dns.ready ]; do sleep 0.05; done \
             && exec {BIN} server -f -x -c {d}"
        );
        let child = unshare_sh(&script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("unshare");
        let lab = Lab {
            tree: t,
            child: Some(child),
        };
        wait_for("the server answers ping", Duration::from_secs(30), || {
            lab.tree.client(&["ping"]).code == 0
        });
        for jail in ["slow", "fast"] {
            lab.tree.wait_jail(jail);
        }
        lab
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tree.path(name)
    }

    fn actions(&self) -> String {
        self.tree.read("actions.out")
    }
}

fn wait(what: &str, f: impl FnMut() -> bool) {
    wait_for(what, Duration::from_secs(30), f);
}

#[test]
fn a_slow_host_name_delays_neither_another_jails_ban_nor_status() {
    let lab = Lab::start("slow");
    let t = &lab.tree;
    // Jail slow: a failure from a host name whose look-up the DNS server holds.
    t.append("slow.log", &format!("{}\n", access_line("slow.test", "/x")));
    wait("the daemon asked for slow.test", || {
        lab.path("dns.asked").exists()
    });
    // Meanwhile jail fast bans, and status answers.
    t.append("fast.log", &format!("{}\n", access_line("192.0.2.7", "/y")));
    wait("fast's ban", || {
        lab.actions().contains("fast ban 192.0.2.7")
    });
    let status = t.client(&["status", "fast"]);
    assert_eq!(status.code, 0, "{}", status.text());
    assert!(status.stdout.contains("192.0.2.7"), "{}", status.text());
    let slow = t.client(&["status", "slow"]);
    assert_eq!(slow.code, 0, "{}", slow.text());
    assert!(
        !lab.actions().contains("192.0.2.99") && !slow.stdout.contains("192.0.2.99"),
        "slow.test was counted before its answer came: {}\n{}",
        lab.actions(),
        slow.text()
    );
    // The answer comes: the waiting failure counts, jail slow bans the name's address.
    t.write("dns.release", "");
    wait("slow's ban", || {
        lab.actions().contains("slow ban 192.0.2.99")
    });
    assert_eq!(
        lab.actions(),
        "fast ban 192.0.2.7\nslow ban 192.0.2.99\n",
        "log:\n{}",
        t.log()
    );
    let log = t.log();
    assert!(
        log.contains("Determined IP using DNS Lookup: slow.test = {'192.0.2.99'}"),
        "{log}"
    );
}

#[test]
fn a_name_without_answer_times_out_once_and_is_cached() {
    let lab = Lab::start("never");
    let t = &lab.tree;
    let asked = || {
        std::fs::read_to_string(lab.path("dns.asked"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("never.test "))
            .count()
    };
    t.append(
        "slow.log",
        &format!("{}\n", access_line("never.test", "/x")),
    );
    wait("the daemon asked for never.test", || asked() > 0);
    // The daemon gives up after 5 s, with fail2ban's warning.
    wait("the timeout's warning", || {
        t.log().contains(
            "Unable to find a corresponding IP address for never.test: no answer within 5 s",
        )
    });
    let before = asked();
    // The empty answer is cached: a second failure of the name is dropped without a question.
    // (Lines of one jail are handled in order: once 192.0.2.8 is banned, the name's second
    // line was handled.)
    t.append(
        "slow.log",
        &format!("{}\n", access_line("never.test", "/y")),
    );
    t.append("slow.log", &format!("{}\n", access_line("192.0.2.8", "/z")));
    wait("the ban after the second line", || {
        lab.actions().contains("slow ban 192.0.2.8")
    });
    assert_eq!(asked(), before, "never.test was asked again");
    assert_eq!(lab.actions(), "slow ban 192.0.2.8\n");
    let warnings = t
        .log()
        .matches("Unable to find a corresponding IP address")
        .count();
    assert_eq!(warnings, 1, "{}", t.log());
}
