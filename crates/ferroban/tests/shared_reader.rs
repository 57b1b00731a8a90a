//! Jails that watch the same file share one reader (daemon/shared.rs) and keep their own
//! semantics: each jail gets every line once, `idle` and `stop` of one jail leave the others
//! reading, the idle jail resumes where it stopped, stored positions stay per jail, and a jail
//! with other stored positions reads alone from its own.

use std::time::Duration;

use ferroban_testkit::{Tree, access_line, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_ferroban");

const FILTER: &str = r#"[Definition]
failregex = ^<HOST> -.* "(GET|POST).* HTTP/.*" (404|403)
ignoreregex =
"#;

/// `Found` lines of jail `jail` in the daemon's log.
fn found(t: &Tree, jail: &str) -> usize {
    let needle = format!("[{jail}] Found ");
    t.log().lines().filter(|l| l.contains(&needle)).count()
}

fn append(t: &Tree, n: usize, from: usize) {
    let text: String = (from..from + n)
        .map(|i| {
            format!(
                "{}\n",
                access_line(&format!("198.51.100.{}", i % 200 + 1), "/x")
            )
        })
        .collect();
    t.append("access.log", &text);
}

fn wait_found(t: &Tree, jail: &str, n: usize) {
    wait_for(
        &format!("{n} Found of {jail}"),
        Duration::from_secs(10),
        || found(t, jail) >= n,
    );
    assert_eq!(found(t, jail), n, "{jail}:\n{}", t.log());
}

#[test]
fn jails_on_one_file_share_a_reader_and_keep_idle_stop_and_positions_their_own() {
    let mut t = Tree::new(BIN, "shared", "main", "INFO");
    let d = t.dir.display().to_string();
    t.write("filter.d/web.conf", FILTER);
    // `c` dates lines with its own pattern: same reader, its own date detection.
    t.write(
        "jail.conf",
        &format!(
            "[DEFAULT]\nbantime = 1h\nfindtime = 10m\nmaxretry = 1000\nignoreself = false\nfilter = web\nlogpath = {d}/access.log\naction =\n\n\
             [a]\nenabled = true\n\n[b]\nenabled = true\n\n[c]\nenabled = true\ndatepattern = %%d/%%b/%%Y:%%H:%%M:%%S %%z\n"
        ),
    );
    t.write("access.log", "");
    t.spawn();
    for j in ["a", "b", "c"] {
        t.wait_jail(j);
    }
    let log = t.log();
    assert!(
        log.contains("[b] Reads its log files with jail 'a' (one reader)"),
        "{log}"
    );
    assert!(
        log.contains("[c] Reads its log files with jail 'a' (one reader)"),
        "{log}"
    );

    append(&t, 3, 0);
    for j in ["a", "b", "c"] {
        wait_found(&t, j, 3);
    }

    // `b` idle: the others read on, `b` does not.
    t.ok(&["set", "b", "idle", "on"]);
    append(&t, 2, 3);
    wait_found(&t, "a", 5);
    wait_found(&t, "c", 5);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(found(&t, "b"), 3, "an idle jail read lines:\n{}", t.log());

    // `c` stopped: `a` reads on alone.
    t.ok(&["stop", "c"]);
    append(&t, 1, 5);
    wait_found(&t, "a", 6);

    // `b` active again: the three lines it missed, from where it stopped, each once.
    t.ok(&["set", "b", "idle", "off"]);
    wait_found(&t, "b", 6);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(found(&t, "a"), 6);
    assert_eq!(found(&t, "b"), 6);
    assert_eq!(found(&t, "c"), 5);

    // Restart: `a` and `b` stored the same positions and share again; `c` stored an earlier
    // one and reads alone from it (the one line written after its stop), nobody re-reads.
    t.stop();
    t.spawn();
    for j in ["a", "b", "c"] {
        t.wait_jail(j);
    }
    wait_found(&t, "c", 6);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(found(&t, "a"), 6, "{}", t.log());
    assert_eq!(found(&t, "b"), 6, "{}", t.log());
    assert_eq!(found(&t, "c"), 6, "{}", t.log());
    let log = t.log();
    let shared = |j: &str| {
        log.matches(&format!("[{j}] Reads its log files with jail 'a'"))
            .count()
    };
    assert_eq!(shared("b"), 2, "{log}");
    assert_eq!(shared("c"), 1, "{log}");

    // And they go on: one more line for everyone.
    append(&t, 1, 6);
    for j in ["a", "b", "c"] {
        wait_found(&t, j, 7);
    }
    t.stop();
}
