//! `reload` in place with fail2ban 1.0.2's semantics, end to end: `ferroban server -f` in a
//! scratch configuration tree whose actions append what they are asked to do to a file (a
//! recording action), `ferroban client` driving it. No firewall is touched.
//!
//! - `reload` of an unchanged configuration runs no action; a changed jail takes its new settings
//!   and keeps its bans; an added action starts and gets the bans in force; a changed shell action
//!   runs only its `actionreload`, then bans with its new definition; new jails start, removed
//!   ones stop.
//! - `reload --unban`, `reload --restart`, `restart --unban`, `reload --restart --unban <jail>`.
//! - after `stop <jail>`: `start <jail>` and `reload <jail>` say the jail does not exist,
//!   `reload --if-exists <jail>` and `reload` start it again.

use std::time::Duration;

use ferroban_testkit::{Tree, access_line};

const BIN: &str = env!("CARGO_BIN_EXE_ferroban");

const FILTER: &str = r#"[Definition]
failregex = ^<HOST> -.* "(GET|POST).* HTTP/.*" (404|403)
ignoreregex =
"#;

const ACTION: &str = r#"[Definition]
actionstart = echo "start <name>" >> %(out)s
actionstop = echo "stop <name>" >> %(out)s
actionban = echo "ban <name> <ip> restored=<restored>" >> %(out)s
actionunban = echo "unban <name> <ip>" >> %(out)s
actionreload = echo "reload <name> <extra>" >> %(out)s
[Init]
out = /dev/null
extra = one
"#;

struct Daemon(Tree);

impl std::ops::Deref for Daemon {
    type Target = Tree;
    fn deref(&self) -> &Tree {
        &self.0
    }
}

impl Daemon {
    fn new(tag: &str) -> Daemon {
        let t = Tree::new(BIN, "reload", tag, "INFO");
        t.write("filter.d/web.conf", FILTER);
        t.write("action.d/record.conf", ACTION);
        t.write("access.log", "");
        t.write("access2.log", "");
        let me = Daemon(t);
        me.write_jails("", None, "");
        me
    }

    /// jail.conf: jail `web` with `web_extra` in its section and the recording action (or
    /// `action`), then `more` (further jails).
    fn write_jails(&self, web_extra: &str, action: Option<&str>, more: &str) {
        let d = self.dir.display();
        let action = action.map_or_else(
            || format!("record[out=\"{d}/actions.out\"]"),
            str::to_string,
        );
        self.write(
            "jail.conf",
            &format!(
                "[DEFAULT]\nbantime = 1h\nfindtime = 10m\nmaxretry = 3\nignoreself = false\n\n[web]\nenabled = true\nfilter = web\nlogpath = {d}/access.log\naction = {action}\n{web_extra}\n\n{more}\n"
            ),
        );
    }

    fn start(&mut self) {
        self.0.spawn();
        self.0.wait_jail("web");
    }

    fn client(&self, args: &[&str]) -> (i32, String) {
        let o = self.0.client(args);
        (o.code, o.text())
    }

    fn actions(&self) -> String {
        self.read("actions.out")
    }

    /// Three 404s of `ip` (maxretry 3) appended to `file`.
    fn attack(&self, file: &str, ip: &str) {
        let line = format!("{}\n", access_line(ip, "/x"));
        self.append(file, &line.repeat(3));
    }

    /// `status <jail>` (its banned list).
    fn banned(&self, jail: &str) -> String {
        self.ok(&["status", jail])
    }
}

fn wait_for(what: &str, f: impl FnMut() -> bool) {
    ferroban_testkit::wait_for(what, Duration::from_secs(15), f);
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

#[test]
fn reload_runs_no_action_keeps_bans_and_applies_changes() {
    let mut d = Daemon::new("inplace");
    d.start();
    d.attack("access.log", "192.0.2.1");
    wait_for("the ban", || d.actions().contains("ban web 192.0.2.1"));
    let before = d.actions();
    assert_eq!(count(&before, "start web"), 1, "{before}");

    // Unchanged configuration: no action runs at all, the ban stays.
    d.ok(&["reload"]);
    d.ok(&["reload", "web"]);
    d.ok(&["reload", "--all"]);
    assert_eq!(
        d.actions(),
        before,
        "reload of an unchanged jail ran actions"
    );
    assert!(d.banned("web").contains("192.0.2.1"));

    // Changed settings, a second action and a new jail.
    let dd = d.dir.display().to_string();
    d.write_jails(
        "maxretry = 5",
        Some(&format!("record[out=\"{dd}/actions.out\"]\n         record[actname=second, out=\"{dd}/second.out\"]")),
        &format!("[web2]\nenabled = true\nfilter = web\nlogpath = {dd}/access2.log\naction = record[out=\"{dd}/web2.out\"]\n"),
    );
    d.ok(&["reload"]);
    assert_eq!(
        d.actions(),
        before,
        "the unchanged action of a changed jail ran commands"
    );
    assert_eq!(d.ok(&["get", "web", "maxretry"]).trim(), "5");
    assert!(d.banned("web").contains("192.0.2.1"));
    // The new action started and got the ban in force.
    let second = d.read("second.out");
    assert_eq!(
        second, "start web\nban web 192.0.2.1 restored=1\n",
        "new action"
    );
    // The new jail runs and bans.
    assert_eq!(d.read("web2.out"), "start web2\n");
    d.attack("access2.log", "192.0.2.2");
    wait_for("web2's ban", || {
        d.read("web2.out").contains("ban web2 192.0.2.2")
    });
    // With maxretry 5 now, three failures of a new address do not ban in web.
    d.attack("access.log", "192.0.2.3");
    wait_for("the failures counted", || {
        d.ok(&["status", "web"]).contains("192.0.2.1")
            && d.log().contains("Found 192.0.2.3")
            && count(&d.log(), "Found 192.0.2.3") == 3
    });
    assert!(!d.banned("web").contains("192.0.2.3"));

    // web2 removed, web's second action removed: web2 stops (its ban leaves its firewall), the
    // second action takes its ban out and stops; the first action still runs nothing.
    d.write_jails("maxretry = 5", None, "");
    d.ok(&["reload"]);
    assert!(
        d.read("web2.out")
            .ends_with("unban web2 192.0.2.2\nstop web2\n")
    );
    assert!(
        d.read("second.out")
            .ends_with("unban web 192.0.2.1\nstop web\n")
    );
    assert_eq!(d.actions(), before);
    let status = d.ok(&["status"]);
    assert!(status.contains("Number of jail:\t1"), "{status}");
    assert!(d.banned("web").contains("192.0.2.1"));
}

#[test]
fn a_changed_shell_action_runs_actionreload_and_keeps_its_bans() {
    let mut d = Daemon::new("changed");
    d.start();
    d.attack("access.log", "192.0.2.1");
    wait_for("the ban", || d.actions().contains("ban web 192.0.2.1"));
    let before = d.actions();
    // The same action (same name), one parameter changed: fail2ban keeps it running with the
    // new parameters and runs its actionreload; no stop, start, unban or ban.
    let dd = d.dir.display().to_string();
    d.write_jails(
        "",
        Some(&format!("record[out=\"{dd}/actions.out\", extra=two]")),
        "",
    );
    d.ok(&["reload"]);
    wait_for("actionreload", || d.actions().len() > before.len());
    assert_eq!(d.actions(), format!("{before}reload web two\n"));
    assert!(d.banned("web").contains("192.0.2.1"));
    // The next ban and the stop use the running action, never started twice.
    d.attack("access.log", "192.0.2.4");
    wait_for("the second ban", || {
        d.actions().contains("ban web 192.0.2.4")
    });
    d.ok(&["stop", "web"]);
    wait_for("the stop", || d.actions().contains("stop web"));
    let all = d.actions();
    assert_eq!(count(&all, "start web"), 1, "{all}");
    assert_eq!(count(&all, "stop web"), 1, "{all}");
}

#[test]
fn unban_and_restart_variants() {
    let mut d = Daemon::new("unban");
    d.start();
    d.attack("access.log", "192.0.2.1");
    d.attack("access.log", "192.0.2.2");
    wait_for("two bans", || count(&d.actions(), "ban web 192.0.2.") == 2);

    // --unban lifts the bans; the jail is not restarted.
    d.ok(&["reload", "--unban"]);
    wait_for("the unbans", || {
        count(&d.actions(), "unban web 192.0.2.") == 2
    });
    let a = d.actions();
    assert!(a.contains("unban web 192.0.2.1\n") && a.contains("unban web 192.0.2.2\n"));
    assert_eq!(count(&a, "stop web"), 0, "{a}");
    assert!(!d.banned("web").contains("192.0.2."));

    // --restart alone: stop and start, the ban comes back from the store.
    d.attack("access.log", "192.0.2.5");
    wait_for("the ban", || {
        d.actions().contains("ban web 192.0.2.5 restored=0")
    });
    d.ok(&["reload", "--restart"]);
    wait_for("the restart", || {
        d.actions()
            .ends_with("stop web\nstart web\nban web 192.0.2.5 restored=1\n")
    });
    assert!(d.banned("web").contains("192.0.2.5"));

    // restart --unban (the client's `reload --restart --unban`): the ban is gone for good.
    d.ok(&["restart", "--unban", "web"]);
    wait_for("the restart", || {
        d.actions()
            .ends_with("unban web 192.0.2.5\nstop web\nstart web\n")
    });
    assert!(!d.banned("web").contains("192.0.2."));
    d.ok(&["reload", "--restart"]);
    wait_for("the restart", || {
        d.actions().ends_with("stop web\nstart web\n")
    });
    assert!(
        !d.banned("web").contains("192.0.2."),
        "a lifted ban came back"
    );

    // reload --restart --unban <jail> on a fresh ban.
    d.attack("access.log", "192.0.2.6");
    wait_for("the ban", || {
        d.actions().contains("ban web 192.0.2.6 restored=0")
    });
    d.ok(&["reload", "--restart", "--unban", "web"]);
    wait_for("the restart", || {
        d.actions()
            .ends_with("unban web 192.0.2.6\nstop web\nstart web\n")
    });
    assert!(!d.banned("web").contains("192.0.2."));
}

#[test]
fn a_stopped_jail_does_not_exist_until_reloaded() {
    let mut d = Daemon::new("stopped");
    d.start();
    d.ok(&["stop", "web"]);
    for args in [
        &["start", "web"][..],
        &["reload", "web"],
        &["status", "web"],
    ] {
        let (code, out) = d.client(args);
        assert_ne!(code, 0, "{args:?}: {out}");
        assert!(
            out.contains("Sorry but the jail 'web' does not exist"),
            "{args:?}: {out}"
        );
    }
    // --if-exists: not an error, and the configured jail is started again.
    d.ok(&["reload", "--if-exists", "web"]);
    assert!(d.ok(&["status"]).contains("web"));
    d.ok(&["start", "web"]);
    d.ok(&["stop", "web"]);
    // A full reload re-creates every configured jail.
    d.ok(&["reload"]);
    let status = d.ok(&["status", "web"]);
    assert!(status.contains("Currently banned"), "{status}");
    assert_eq!(count(&d.actions(), "start web"), 3, "{}", d.actions());
}
