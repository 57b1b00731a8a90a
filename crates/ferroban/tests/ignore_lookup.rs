//! `ignorecommand` off the engine, end to end (`ferroban server -f` in a scratch tree, a
//! recording action, no firewall):
//! - a slow `ignorecommand` for one id delays neither another id's ban nor `status`;
//! - `ignorecache` (fail2ban's `key=..., max-count=..., max-time=...`) runs the command once per
//!   key while the verdict is fresh; exit status 0 ignores the id.
//!
//! Assertions are about order (which ban came first, what `status` saw), not about wall time, so
//! a loaded machine does not make them fail.

use std::time::Duration;

use ferroban_testkit::{RECORD_ACTION, Tree, WEB_FILTER, access_line};

const BIN: &str = env!("CARGO_BIN_EXE_ferroban");

struct Daemon(Tree);

impl std::ops::Deref for Daemon {
    type Target = Tree;
    fn deref(&self) -> &Tree {
        &self.0
    }
}

impl Daemon {
    /// Jail `web` (maxretry 1) with `extra` in its section.
    fn start(tag: &str, extra: &str) -> Daemon {
        let mut t = Tree::new(BIN, "ignlookup", tag, "INFO");
        let d = t.dir.display().to_string();
        t.write("filter.d/web.conf", WEB_FILTER);
        t.write("action.d/record.conf", RECORD_ACTION);
        t.write(
            "jail.conf",
            &format!(
                "[DEFAULT]\nbantime = 1h\nfindtime = 10m\nmaxretry = 1\nignoreself = false\n\n[web]\nenabled = true\nfilter = web\nlogpath = {d}/access.log\naction = record[out=\"{d}/actions.out\"]\n{extra}\n"
            ),
        );
        t.write("access.log", "");
        t.spawn();
        t.wait_jail("web");
        Daemon(t)
    }

    fn client(&self, args: &[&str]) -> (i32, String) {
        let o = self.0.client(args);
        (o.code, o.text())
    }

    fn actions(&self) -> String {
        self.read("actions.out")
    }

    fn fail(&self, ip: &str) {
        self.append("access.log", &format!("{}\n", access_line(ip, "/x")));
    }
}

fn wait_for(what: &str, f: impl FnMut() -> bool) {
    ferroban_testkit::wait_for(what, Duration::from_secs(30), f);
}

#[test]
fn a_slow_ignorecommand_delays_only_its_own_id() {
    // 192.0.2.66's command takes 6 s (then says: not ignored); every other id's answers at once.
    let started =
        std::env::temp_dir().join(format!("ferroban-ignlookup-slow-{}", std::process::id()));
    let _ = std::fs::remove_file(&started);
    let d = Daemon::start(
        "slow",
        &format!(
            r#"ignorecommand = case "<ip>" in 192.0.2.66) touch {}; sleep 6; exit 1;; *) exit 1;; esac"#,
            started.display()
        ),
    );
    d.fail("192.0.2.66");
    wait_for("the slow command started", || started.exists());
    let _ = std::fs::remove_file(&started);
    d.fail("192.0.2.7");
    wait_for("the other id's ban", || {
        d.actions().contains("web ban 192.0.2.7")
    });
    // `status` answers while the slow command still runs.
    let (code, out) = d.client(&["status", "web"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("192.0.2.7"), "{out}");
    assert!(
        !d.actions().contains("web ban 192.0.2.66"),
        "the slow id was banned before status answered: the command did not run off the engine"
    );
    assert!(!out.contains("192.0.2.66"), "{out}");
    // Then the slow command ends (exit 1: not ignored) and its id is banned too, after the other.
    wait_for("the slow id's ban", || {
        d.actions().contains("web ban 192.0.2.66")
    });
    assert_eq!(d.actions(), "web ban 192.0.2.7\nweb ban 192.0.2.66\n");
}

#[test]
fn ignorecache_runs_the_command_once_per_key_and_exit_0_ignores() {
    let tmp = std::env::temp_dir().join(format!("ferroban-ignlookup-runs-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let runs = tmp.display().to_string();
    // 192.0.2.1 is trusted (exit 0); the command logs each run.
    let d = Daemon::start(
        "cache",
        &format!(
            "maxretry = 3\nignorecommand = echo \"<ip>\" >> {runs}; test \"<ip>\" = 192.0.2.1\nignorecache = key=\"<ip>\", max-count=100, max-time=5m"
        ),
    );
    for round in 1..=3 {
        d.fail("192.0.2.1");
        d.fail("192.0.2.9");
        wait_for("both failures handled", || {
            d.log().matches("Ignore 192.0.2.1 by").count() == round
                && d.log().matches("Found 192.0.2.9").count() == round
        });
    }
    wait_for("the ban of the untrusted id", || {
        d.actions().contains("web ban 192.0.2.9")
    });
    let r = std::fs::read_to_string(&tmp).unwrap_or_default();
    let _ = std::fs::remove_file(&tmp);
    // One run per address: the cache answered the other four failures.
    assert_eq!(r.lines().filter(|l| *l == "192.0.2.1").count(), 1, "{r}");
    assert_eq!(r.lines().filter(|l| *l == "192.0.2.9").count(), 1, "{r}");
    assert_eq!(d.actions(), "web ban 192.0.2.9\n");
    assert!(d.log().contains("Ignore 192.0.2.1 by command"));
}
