//! A ban made longer while in force (issue 10/11: a re-ban restarts the ban, as fail2ban 1.0.2
//! does) reaches the actions: a shell action runs its `actionprolong` with the new `<bantime>`,
//! and `set <jail> banip` does not count it as a new ban. (The native nftables action's kernel
//! timeout following the longer ban is checked in tests/e2e_native.rs.) `ferroban server -f` in
//! a scratch tree, a recording action, no firewall.

use std::time::Duration;

use ferroban_testkit::{Tree, WEB_FILTER};

const BIN: &str = env!("CARGO_BIN_EXE_ferroban");

#[test]
fn a_longer_reban_runs_actionprolong_and_is_not_counted() {
    let mut t = Tree::new(BIN, "prolong", "shell", "INFO");
    let d = t.dir.display().to_string();
    t.write("filter.d/web.conf", WEB_FILTER);
    t.write(
        "action.d/recordprolong.conf",
        "[Definition]\nactionstart =\nactionstop =\n\
         actionban = echo \"ban <ip> <bantime>\" >> %(out)s\n\
         actionprolong = echo \"prolong <ip> <bantime>\" >> %(out)s\n\
         actionunban = echo \"unban <ip>\" >> %(out)s\n[Init]\nout = /dev/null\n",
    );
    t.write(
        "jail.conf",
        &format!(
            "[DEFAULT]\nbantime = 1h\nfindtime = 10m\nmaxretry = 1\nignoreself = false\n\n[web]\nenabled = true\nfilter = web\nlogpath = {d}/access.log\naction = recordprolong[out=\"{d}/actions.out\"]\n"
        ),
    );
    t.write("access.log", "");
    t.spawn();
    t.wait_jail("web");
    let actions = || t.read("actions.out");
    let wait = |what: &str, f: &dyn Fn() -> bool| {
        ferroban_testkit::wait_for(what, Duration::from_secs(30), f)
    };

    let out = t.client(&["set", "web", "banip", "192.0.2.9"]);
    assert_eq!(out.text().trim(), "1", "{out:?}");
    wait("the ban", &|| actions().contains("ban 192.0.2.9 3600"));

    // The same bantime again ends later by the time passed at most: a whole second may not have
    // passed, so only a longer bantime is sure to lengthen it.
    let out = t.client(&["set", "web", "bantime", "2h"]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = t.client(&["set", "web", "banip", "192.0.2.9"]);
    assert_eq!(out.text().trim(), "0", "not a new ban: {out:?}");
    wait("actionprolong", &|| {
        actions().contains("prolong 192.0.2.9 72")
    });
    // The actions saw one ban and one prolong, no unban in between (the ban never lapsed).
    let seen = actions();
    assert_eq!(seen.matches("ban 192.0.2.9").count(), 1, "{seen}");
    assert!(!seen.contains("unban"), "{seen}");
    let out = t.client(&["status", "web"]);
    assert!(out.text().contains("Total banned:\t1"), "{out:?}");

    // A shorter re-ban changes nothing and runs nothing.
    let out = t.client(&["set", "web", "bantime", "10m"]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = t.client(&["set", "web", "banip", "192.0.2.9"]);
    assert_eq!(out.text().trim(), "0", "{out:?}");
    let out = t.client(&["set", "web", "banip", "192.0.2.10"]);
    assert_eq!(out.text().trim(), "1", "{out:?}");
    wait("the next ban", &|| actions().contains("ban 192.0.2.10 600"));
    assert_eq!(actions().matches("prolong").count(), 1, "{}", actions());
}
