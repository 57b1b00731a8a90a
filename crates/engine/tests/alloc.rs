//! The steady state of a jail's line path allocates nothing (issue 12 item 4): after a warm-up,
//! lines that no failregex matches and lines that match but are ignored by `ignoreregex` go
//! through `Jail::process_line` without one heap allocation. A counting global allocator proves
//! it (counting only on the test's own thread while it measures).
//!
//! The jails use ferroban's own shipped filters (config/filter.d), as the guide's jails do. For
//! sshd, ordinary auth.log lines (no failregex matches) allocate nothing; lines of connections
//! (`nofail` matches kept in the multi-line cache) and failures still allocate (their figures are
//! printed, not asserted).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ferroban_engine::jail::Jail;

struct Counting;

thread_local! {
    static COUNT_HERE: Cell<bool> = const { Cell::new(false) };
    /// Allocations of this thread while it counts (per thread: the tests run in parallel).
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    if COUNT_HERE.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.with(Cell::get);
    COUNT_HERE.with(|c| c.set(true));
    f();
    COUNT_HERE.with(|c| c.set(false));
    ALLOCS.with(Cell::get) - before
}

/// Jail `name` with filter `filter` from ferroban's shipped configuration.
fn jail(name: &str, filter: &str) -> Jail {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = std::env::temp_dir().join(format!("ferroban-alloc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("filter.d")).unwrap();
    for entry in std::fs::read_dir(repo.join("config/filter.d")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.join("filter.d").join(p.file_name().unwrap())).unwrap();
    }
    std::fs::write(
        dir.join("jail.conf"),
        format!(
            "[{name}]\nenabled = true\nfilter = {filter}\nlogpath = /nonexistent/{name}.log\n\
             action =\nmaxretry = 5\nfindtime = 10m\nbantime = 10m\n"
        ),
    )
    .unwrap();
    let cfg = ferroban_config::read_jails(&dir).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(cfg.errors.is_empty(), "{:?}", cfg.errors);
    Jail::new(cfg.jails.into_iter().next().unwrap()).unwrap()
}

const NOW: f64 = 1_796_558_400.0; // 2026-12-06 ...

fn steady(jail: &mut Jail, lines: &[String]) -> u64 {
    // Warm-up: lazy automata, caches and buffers are built on first use.
    for _ in 0..3 {
        for l in lines {
            jail.process_line(l, NOW);
        }
    }
    allocations(|| {
        for _ in 0..100 {
            for l in lines {
                let ev = jail.process_line(l, NOW);
                assert!(ev.is_empty());
            }
        }
    })
}

#[test]
fn access_log_lines_no_failregex_matches_allocate_nothing() {
    let ts = jiff::Timestamp::from_second(NOW as i64).unwrap();
    let nginx_time = ts
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .strftime("%d/%b/%Y:%H:%M:%S +0000")
        .to_string();
    let access: Vec<String> = (0..50)
        .map(|i| {
            format!(
                "198.51.100.{i} - - [{nginx_time}] \"GET /page/{i}.html HTTP/1.1\" 200 5123 \"-\" \"Mozilla/5.0\""
            )
        })
        .collect();
    let mut n404 = jail("nginx-404", "nginx-404");
    assert_eq!(steady(&mut n404, &access), 0, "nginx-404 on 200 lines");
    let mut bots = jail("nginx-botsearch", "nginx-botsearch");
    assert_eq!(
        steady(&mut bots, &access),
        0,
        "nginx-botsearch on 200 lines"
    );
}

/// Allocations per line of `lines` after a warm-up (lines may produce events).
fn per_line(jail: &mut Jail, lines: &[String]) -> f64 {
    for l in lines {
        jail.process_line(l, NOW);
    }
    let n = allocations(|| {
        for _ in 0..10 {
            for l in lines {
                jail.process_line(l, NOW);
            }
        }
    });
    n as f64 / (10 * lines.len()) as f64
}

#[test]
fn auth_log_lines_no_sshd_failregex_matches_allocate_nothing() {
    let ts = jiff::Timestamp::from_second(NOW as i64).unwrap();
    let syslog_time = ts
        .to_zoned_datetime(jiff::tz::TimeZone::system())
        .strftime("%b %e %H:%M:%S")
        .to_string();
    let other: Vec<String> = (0..50)
        .flat_map(|i| {
            [
                format!(
                    "{syslog_time} web1 sshd[{}]: Server listening on 0.0.0.0 port 22.",
                    1000 + i
                ),
                format!(
                    "{syslog_time} web1 CRON[{}]: (root) CMD (run-parts /etc/cron.hourly)",
                    2000 + i
                ),
                format!("{syslog_time} web1 systemd[1]: Started Session {i} of user bob."),
                format!(
                    "{syslog_time} web1 sshd[{}]: Received SIGHUP; restarting.",
                    3000 + i
                ),
            ]
        })
        .collect();
    let mut sshd = jail("sshd", "sshd");
    assert_eq!(
        steady(&mut sshd, &other),
        0,
        "sshd on 200 ordinary auth.log lines"
    );

    // Lines of connections (no failure, or a failure) keep state and report failures: they
    // allocate; their figures are printed for the record.
    let conn: Vec<String> = (0..50)
        .flat_map(|i| {
            let pid = 4000 + i;
            [
                format!("{syslog_time} web1 sshd[{pid}]: Connection from 203.0.113.{i} port 4{i:04} on 192.0.2.1 port 22"),
                format!("{syslog_time} web1 sshd[{pid}]: Accepted publickey for bob from 203.0.113.{i} port 4{i:04} ssh2"),
                format!("{syslog_time} web1 sshd[{pid}]: Disconnected from user bob 203.0.113.{i} port 4{i:04}"),
            ]
        })
        .collect();
    let fail: Vec<String> = (0..50)
        .map(|i| {
            format!(
                "{syslog_time} web1 sshd[{}]: Failed password for invalid user admin from 198.51.100.{i} port 5{i:04} ssh2",
                6000 + i
            )
        })
        .collect();
    eprintln!(
        "sshd allocations per line: connection lines {:.1}, failed-password lines {:.1}",
        per_line(&mut sshd, &conn),
        per_line(&mut jail("sshd", "sshd"), &fail)
    );
}
