//! The ban actions of a fail2ban 1.1.1-shaped tree (issue 15, item 4): since 1.1.1 `jail.conf`
//! refers to `%(banaction)s` and `%(banaction_allports)s` without defining them, and the
//! distribution's `paths-*.conf` (included `before`) supplies them; Debian's sets nftables. Most
//! trees here are written in that shape (our own files); the last test reads Debian's own 1.1.0
//! and 1.1.1 trees (scripts/f2b-newer.sh) and compares with fail2ban's own client. Checked, with
//! `ferroban server -f` in a scratch tree:
//! - the jails' actions resolve through the paths file (a ban runs that action, with the
//!   allports variant's parameter where the jail asks for it);
//! - a `jail.local` `banaction` still wins over the paths file (`server -t`);
//! - a tree where nothing defines `banaction` (Arch's 1.1.1 breakage) refuses that jail with an
//!   error naming the jail, the undefined name and the file and line, and the other jails start;
//! - the same on fail2ban 1.0.2's own tree (read from the reference at run time) with its
//!   `jail.conf` defaults commented out and the nftables ones given to `paths-debian.conf`;
//! - Debian's 1.1.0 and 1.1.1 trees as shipped, without `jail.d/defaults-debian.conf` and with
//!   Arch's paths file: each jail's actions are the ones `fail2ban-client -d` of that release
//!   resolves.
//!
//! The action named `nftables` is a recording stand-in written into the tree (it overrides the
//! embedded file of that name), so nothing touches a firewall.

use std::process::Command;
use std::time::Duration;

use ferroban_testkit::{Tree, access_line, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_ferroban");

/// `jail.conf` in 1.1.1's shape: the paths file first, the actions built from `%(banaction)s`
/// and `%(banaction_allports)s`, neither defined here. `web` uses the per-port action, `web-all`
/// the all-ports one, `plain` names its action directly (it needs no banaction).
fn jail_conf(t: &Tree) -> String {
    let d = t.dir.display();
    format!(
        "[INCLUDES]\n\
         before = paths-debian.conf\n\
         \n\
         [DEFAULT]\n\
         ignoreself = false\n\
         maxretry = 1\n\
         bantime = 1h\n\
         port = 0:65535\n\
         protocol = tcp\n\
         filter = web\n\
         action_ = %(banaction)s[port=\"%(port)s\", protocol=\"%(protocol)s\"]\n\
         action = %(action_)s\n\
         enabled = false\n\
         \n\
         [web]\n\
         enabled = true\n\
         port = http,https\n\
         logpath = {d}/web.log\n\
         \n\
         [web-all]\n\
         enabled = true\n\
         banaction = %(banaction_allports)s\n\
         logpath = {d}/web-all.log\n\
         \n\
         [plain]\n\
         enabled = true\n\
         logpath = {d}/plain.log\n\
         action = record\n"
    )
}

/// A tree with the filter, the recording actions and `paths` as `paths-debian.conf`.
fn tree(tag: &str, paths: &str) -> Tree {
    let t = Tree::new(BIN, "banpaths", tag, "INFO");
    let d = t.dir.display().to_string();
    t.write(
        "filter.d/web.conf",
        "[Definition]\nfailregex = ^<HOST> -.* \"(GET|POST).* HTTP/.*\" 404\n",
    );
    // Stand-in for the nftables action: records the jail's name, its type and port parameters.
    t.write(
        "action.d/nftables.conf",
        &format!(
            "[Definition]\nactionstart =\nactionstop =\nactioncheck =\n\
             actionban = echo \"<name> nftables type=<type> port=<port> ban <ip>\" >> {d}/actions.out\n\
             actionunban =\n[Init]\ntype = multiport\nport = 0:65535\n"
        ),
    );
    t.write(
        "action.d/record.conf",
        &format!(
            "[Definition]\nactionstart =\nactionstop =\n\
             actionban = echo \"<name> record ban <ip>\" >> {d}/actions.out\nactionunban =\n"
        ),
    );
    t.write("jail.conf", &jail_conf(&t));
    t.write("paths-debian.conf", paths);
    for log in ["web.log", "web-all.log", "plain.log"] {
        t.write(log, "");
    }
    t
}

/// Debian's 1.1.1 paths file, in our words: the nftables actions.
const DEBIAN_PATHS: &str = "[DEFAULT]\n\
     syslog_authpriv = /var/log/auth.log\n\
     banaction = nftables\n\
     banaction_allports = nftables[type=allports]\n";

/// A paths file that defines no ban action (the shape that broke Arch with 1.1.1).
const BARE_PATHS: &str = "[DEFAULT]\nsyslog_authpriv = /var/log/auth.log\n";

/// `ferroban server -t -c <tree>`: exit code and stdout then stderr.
fn config_test(t: &Tree) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["server", "-t", "-c"])
        .arg(&t.dir)
        .output()
        .expect("run ferroban server -t");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn wait(what: &str, f: impl FnMut() -> bool) {
    wait_for(what, Duration::from_secs(30), f);
}

#[test]
fn the_paths_file_supplies_the_ban_actions() {
    let mut t = tree("debian", DEBIAN_PATHS);
    let (code, out) = config_test(&t);
    assert_eq!(code, 0, "{out}");
    for jail in ["web", "web-all"] {
        assert!(
            out.contains(&format!("OK     jail '{jail}': filter web,"))
                && out
                    .lines()
                    .any(|l| l.contains(&format!("jail '{jail}'"))
                        && l.ends_with("actions nftables")),
            "{out}"
        );
    }
    t.spawn();
    for jail in ["web", "web-all", "plain"] {
        t.wait_jail(jail);
    }
    t.append("web.log", &format!("{}\n", access_line("192.0.2.10", "/a")));
    t.append(
        "web-all.log",
        &format!("{}\n", access_line("192.0.2.20", "/b")),
    );
    wait("both bans", || t.read("actions.out").lines().count() >= 2);
    let mut got: Vec<String> = t.read("actions.out").lines().map(String::from).collect();
    got.sort();
    assert_eq!(
        got,
        [
            "web nftables type=multiport port=http,https ban 192.0.2.10",
            "web-all nftables type=allports port=0:65535 ban 192.0.2.20",
        ],
        "log:\n{}",
        t.log()
    );
}

#[test]
fn jail_local_still_wins_over_the_paths_file() {
    let t = tree("local", DEBIAN_PATHS);
    // The [DEFAULT] of jail.local replaces the paths file's for every jail; a jail's own
    // section replaces both.
    t.write(
        "jail.local",
        "[DEFAULT]\nbanaction = record\n\n[web-all]\nbanaction = nftables[type=allports]\n",
    );
    let (code, out) = config_test(&t);
    assert_eq!(code, 0, "{out}");
    let actions_of = |jail: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("OK     jail '{jail}'")))
            .and_then(|l| l.rsplit_once("actions "))
            .map(|(_, a)| a.to_string())
            .unwrap_or_else(|| panic!("no OK line for {jail}: {out}"))
    };
    assert_eq!(actions_of("web"), "record", "{out}");
    assert_eq!(actions_of("web-all"), "nftables", "{out}");
}

#[test]
fn an_undefined_banaction_names_the_jail_and_the_others_start() {
    let mut t = tree("bare", BARE_PATHS);
    let jail_conf = t.path("jail.conf").display().to_string();
    let (code, out) = config_test(&t);
    assert_ne!(code, 0, "{out}");
    // The error names the jail, the undefined name, the options it was reached through and the
    // line that refers to it: `action_ = %(banaction)s[...]` (line 11) for `web`, the jail's own
    // `banaction = %(banaction_allports)s` (line 22) for `web-all`.
    for (jail, want) in [
        (
            "web",
            format!(
                "ERROR  jail 'web': [web] action: unknown interpolation key 'banaction', \
                 referred to through action_ ({jail_conf}:11)"
            ),
        ),
        (
            "web-all",
            format!(
                "ERROR  jail 'web-all': [web-all] action: unknown interpolation key \
                 'banaction_allports', referred to through action_ -> banaction ({jail_conf}:22)"
            ),
        ),
    ] {
        assert!(
            out.lines().any(|l| l == want),
            "{jail}: want {want:?} in\n{out}"
        );
    }
    assert!(out.contains("OK     jail 'plain'"), "{out}");

    t.spawn();
    t.wait_jail("plain");
    let log = t.log();
    assert!(
        log.contains("Jail 'web' skipped:")
            && log.contains("unknown interpolation key 'banaction'"),
        "{log}"
    );
    assert!(log.contains("Jail 'web-all' skipped:"), "{log}");
    let status = t.ok(&["status"]);
    assert!(
        status.contains("Number of jail:\t1") && status.contains("plain"),
        "{status}"
    );
    // The jail that started bans as usual.
    t.append(
        "plain.log",
        &format!("{}\n", access_line("192.0.2.30", "/c")),
    );
    wait("the plain jail's ban", || {
        t.read("actions.out")
            .contains("plain record ban 192.0.2.30")
    });
}

/// fail2ban 1.0.2's own tree (read from the reference at run time) turned into 1.1.1's shape:
/// `jail.conf`'s two banaction defaults commented out, Debian's paths file given the nftables
/// ones. Its sshd and recidive jails resolve to the paths file's action; with the Arch paths
/// file instead (which defines none), both are refused naming the key and the line.
#[test]
fn fail2bans_own_tree_in_the_1_1_1_shape() {
    let root = ferroban_testkit::f2b_root().join("etc/fail2ban");
    let t = Tree::new(BIN, "banpaths", "f2btree", "INFO");
    let ok = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", root.display()))
        .arg(&t.dir)
        .status()
        .expect("run cp")
        .success();
    assert!(ok, "cp -a {}/. {}", root.display(), t.dir.display());
    let jail_conf = t.read("jail.conf");
    let shaped = jail_conf
        .replacen(
            "\nbanaction = iptables-multiport\n",
            "\n#banaction = iptables-multiport\n",
            1,
        )
        .replacen(
            "\nbanaction_allports = iptables-allports\n",
            "\n#banaction_allports = iptables-allports\n",
            1,
        );
    assert_eq!(
        shaped.matches("\n#banaction").count(),
        2,
        "jail.conf of the reference no longer has its two defaults"
    );
    t.write("jail.conf", &shaped);
    let paths = t.read("paths-debian.conf");
    assert!(!paths.contains("banaction"), "{paths}");
    t.write(
        "paths-debian.conf",
        &paths.replacen(
            "[DEFAULT]\n",
            "[DEFAULT]\n\nbanaction = nftables\nbanaction_allports = nftables[type=allports]\n",
            1,
        ),
    );
    t.write(
        "jail.local",
        "[sshd]\nenabled = true\n\n[recidive]\nenabled = true\n",
    );
    let (code, out) = config_test(&t);
    assert_eq!(code, 0, "{out}");
    for jail in ["sshd", "recidive"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("OK     jail '{jail}'"))
                    && l.ends_with("actions nftables")),
            "{jail}: {out}"
        );
    }

    // Arch's paths file defines no ban action.
    let arch = t.read("paths-arch.conf");
    assert!(!arch.contains("banaction"), "{arch}");
    t.write(
        "jail.conf",
        &shaped.replacen(
            "\nbefore = paths-debian.conf\n",
            "\nbefore = paths-arch.conf\n",
            1,
        ),
    );
    let line_of = |needle: &str| {
        shaped
            .lines()
            .position(|l| l.starts_with(needle))
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("{needle:?} not in jail.conf"))
    };
    let file = t.path("jail.conf").display().to_string();
    let (code, out) = config_test(&t);
    assert_ne!(code, 0, "{out}");
    let want = [
        format!(
            "ERROR  jail 'sshd': [sshd] action: unknown interpolation key 'banaction', referred to \
             through action_ ({file}:{})",
            line_of("action_ = %(banaction)s")
        ),
        format!(
            "ERROR  jail 'recidive': [recidive] action: unknown interpolation key \
             'banaction_allports', referred to through action_ -> banaction ({file}:{})",
            // recidive's own `banaction = %(banaction_allports)s`, after its section header
            line_of("[recidive]")
                + shaped
                    .lines()
                    .skip(line_of("[recidive]"))
                    .position(|l| l.starts_with("banaction"))
                    .expect("recidive's banaction")
                + 1
        ),
    ];
    for w in &want {
        assert!(out.lines().any(|l| l == w), "want {w:?} in\n{out}");
    }
}

/// `jail -> its actions` from `ferroban server -t` (its `OK` lines).
fn our_actions(out: &str) -> Vec<(String, String)> {
    let mut got: Vec<(String, String)> = out
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("OK     jail '")?;
            let (jail, rest) = rest.split_once('\'')?;
            Some((
                jail.to_string(),
                rest.rsplit_once("actions ")?.1.to_string(),
            ))
        })
        .collect();
    got.sort();
    got
}

/// fail2ban 1.1.0's and 1.1.1's own trees, as Debian 13 and sid ship them: the sshd and
/// recidive jails resolve to the same ban actions as fail2ban's own client resolves them, with
/// Debian's `jail.d/defaults-debian.conf` (which sets nftables) and without it (then 1.1.1's
/// `paths-debian.conf` supplies the ban actions, 1.1.0's `jail.conf` still has its own); with
/// Arch's paths file instead, 1.1.1 defines no ban action and both fail2ban and ferroban refuse
/// the two jails.
#[test]
fn newer_releases_own_trees_resolve_the_ban_actions_as_fail2ban_does() {
    for version in ["1.1.0", "1.1.1"] {
        let root = ferroban_testkit::f2b_newer_root(version);
        let t = Tree::new(BIN, "banpaths", &format!("real{version}"), "INFO");
        let ok = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", root.join("etc/fail2ban").display()))
            .arg(&t.dir)
            .status()
            .expect("run cp")
            .success();
        assert!(ok, "cp -a {} {}", root.display(), t.dir.display());
        // the journal, so that neither side needs the log files of this machine
        t.write(
            "jail.local",
            "[sshd]\nenabled = true\nbackend = systemd\n\n\
             [recidive]\nenabled = true\nbackend = systemd\n",
        );
        let compare = |what: &str| {
            let (want, stderr) = ferroban_testkit::f2b_dump_actions(&root, &t.dir);
            let (code, out) = config_test(&t);
            let ours = our_actions(&out);
            assert_eq!(
                ours, want,
                "{version}, {what}: ferroban\n{out}\nfail2ban\n{stderr}"
            );
            (code, out, want)
        };
        let (code, out, want) = compare("as shipped");
        assert_eq!(code, 0, "{out}");
        assert_eq!(want.len(), 2, "{version}: {want:?}");
        assert!(
            want.iter().all(|(_, a)| a == "nftables"),
            "{version}: {want:?}"
        );

        std::fs::remove_file(t.path("jail.d/defaults-debian.conf")).expect("rm defaults-debian");
        let (code, out, want) = compare("without defaults-debian.conf");
        assert_eq!(code, 0, "{out}");
        assert_eq!(want.len(), 2, "{version}: {want:?}");

        let jail_conf = t.read("jail.conf");
        t.write(
            "jail.conf",
            &jail_conf.replacen(
                "\nbefore = paths-debian.conf\n",
                "\nbefore = paths-arch.conf\n",
                1,
            ),
        );
        let (code, out, want) = compare("with Arch's paths file");
        if version == "1.1.1" {
            assert!(want.is_empty(), "{version}: {want:?}");
            assert_ne!(code, 0, "{out}");
            for jail in ["sshd", "recidive"] {
                assert!(
                    out.lines()
                        .any(|l| l.starts_with(&format!("ERROR  jail '{jail}'"))
                            && l.contains("unknown interpolation key 'banaction")),
                    "{jail}: {out}"
                );
            }
        }
    }
}
