//! The steady state of a jail's line path allocates nothing (issue 12 item 4): after a warm-up,
//! lines that no failregex matches and lines that match but are ignored by `ignoreregex` go
//! through `Jail::process_line` without one heap allocation. A counting global allocator proves
//! it (counting only on the test's own thread while it measures).
//!
//! The jails use ferroban's own shipped filters (config/filter.d), as the guide's jails do. Not yet
//! covered: sshd (its prefregex captures and multi-line bookkeeping still allocate, about 17
//! allocations per ordinary auth.log line when this test was written).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use ferroban_engine::jail::Jail;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COUNT_HERE: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    if COUNT_HERE.try_with(Cell::get).unwrap_or(false) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
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
    let before = ALLOCS.load(Ordering::Relaxed);
    COUNT_HERE.with(|c| c.set(true));
    f();
    COUNT_HERE.with(|c| c.set(false));
    ALLOCS.load(Ordering::Relaxed) - before
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
            jail.process_line(l, NOW, None);
        }
    }
    allocations(|| {
        for _ in 0..100 {
            for l in lines {
                let ev = jail.process_line(l, NOW, None);
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
