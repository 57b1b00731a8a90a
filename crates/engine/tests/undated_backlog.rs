//! Undated lines in the backlog read after a restart: a failregex matches them but their time is
//! unknown, so they are skipped (not counted against the address), with fail2ban's warning,
//! once a day, in fail2ban's words (checked against its `filter.py` when the reference is there).

mod common;

use std::sync::Mutex;

use ferroban_engine::jail::{Event, Jail};
use ferroban_engine::log::{Hook, Level, set_hook};

static LOGGED: Mutex<Vec<(Level, String)>> = Mutex::new(Vec::new());

fn capture() {
    set_hook(Hook {
        enabled: |_| true,
        log: |level, _module, msg| LOGGED.lock().unwrap().push((level, msg.to_string())),
    });
}

fn warnings() -> Vec<String> {
    let mut l = LOGGED.lock().unwrap();
    let out = l
        .iter()
        .filter(|(lv, _)| *lv == Level::Warning)
        .map(|(_, m)| m.clone())
        .collect();
    l.clear();
    out
}

fn jail() -> Jail {
    common::test_jail("undated", "maxretry = 3\nfindtime = 10m\nbantime = 10m")
}

const T0: f64 = 1_796_558_400.0;

#[test]
fn undated_backlog_lines_are_skipped_with_fail2bans_warning_once_a_day() {
    capture();
    let mut j = jail();
    // Restart: the backlog is read before the jail is in operation.
    j.set_in_operation(false);
    let mut events = Vec::new();
    for _ in 0..5 {
        events.extend(j.process_line("FAIL from 192.0.2.1", T0));
    }
    assert!(
        !events.iter().any(|e| matches!(e, Event::Ban(..))),
        "undated backlog lines were counted: {events:?}"
    );
    let want = [
        "[test] Found a match but no valid date/time found for ''.",
        "[test] Match without a timestamp: FAIL from 192.0.2.1",
        "[test] Please try setting a custom date pattern (see man page jail.conf(5)).",
    ];
    assert_eq!(warnings(), want, "once, not once per line");
    // The same words as fail2ban's filter.py.
    let root = std::env::var("FERROBAN_F2B_ROOT").unwrap_or_else(|_| "/tmp/f2b/root".into());
    let py =
        std::path::Path::new(&root).join("usr/lib/python3/dist-packages/fail2ban/server/filter.py");
    if let Ok(src) = std::fs::read_to_string(&py) {
        for s in [
            "Found a match but no valid date/time found for %r.",
            "Match without a timestamp: %s",
            "Please try setting a custom date pattern (see man page jail.conf(5)).",
        ] {
            assert!(src.contains(s), "fail2ban's filter.py no longer says {s:?}");
        }
    }
    // A day later: warned again.
    let later = T0 + 24.0 * 3600.0 + 1.0;
    j.process_line("FAIL from 192.0.2.1", later);
    assert_eq!(warnings().len(), 3);
    // In operation, an undated line counts as happening now (fail2ban does the same).
    j.set_in_operation(true);
    let mut events = Vec::new();
    for _ in 0..3 {
        events.extend(j.process_line("FAIL from 192.0.2.1", later + 10.0));
    }
    assert!(
        events.iter().any(|e| matches!(e, Event::Ban(..))),
        "{events:?}"
    );
}
