//! Giving back the start-up code's pages.
//!
//! Reading the configuration and building the jails (the INI reader, the regex and PCRE2
//! compilers, the date templates, SQLite's schema code, ...) runs once, through most of the
//! binary's code. The kernel maps a file's pages around each one touched (fault-around, 64 KiB),
//! so after start-up nearly all of the executable's ~10 MB of code and read-only data stays
//! mapped into the daemon, counted in its resident set, although the steady state (reading,
//! matching, the control socket) runs through a small part of it.
//!
//! The same holds for the shared libraries (libc's code is ~1 MB of the resident set after
//! start-up, libm's, ld.so's and libgcc_s's another ~0.5 MB, most of which the steady state
//! never runs again).
//!
//! Once the daemon is ready (its jails built and their tasks' first turn taken, before it answers
//! its first request), and again once every jail it started has started (its actions too: the
//! first action commands run through code nothing else uses), [`release_startup_pages`] drops
//! those mappings with `madvise(MADV_DONTNEED)`: the pages stay in the page cache (nothing is
//! read from disk again), and the ones the daemon still runs are mapped back at their next use
//! (a minor fault).
//! Free heap pages that start-up's transient buffers left behind go back too (`malloc_trim`).
//! Only private mappings of files (the executable, the shared libraries) that are read-only and
//! hold no private copy of a page (`Anonymous: 0 kB` in `/proc/self/smaps`) are touched:
//! dropping a page that relocation or a write had copied would lose that copy, so such mappings
//! (RELRO, `.data`) are left alone, as are shared mappings (SQLite's `-shm`), the heap, stacks
//! and the kernel's (`[vdso]`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Jails started whose action worker has not yet reported them started.
static STARTING: AtomicUsize = AtomicUsize::new(0);
/// Whether the server finished its own start-up (socket bound, jails built).
static READY: AtomicBool = AtomicBool::new(false);

/// A jail's start is under way (its restore job is queued to its action worker).
pub(crate) fn jail_starting() {
    STARTING.fetch_add(1, Ordering::SeqCst);
}

/// A jail's action worker has started it: when it was the last one and the server is ready, the
/// start-up code is released.
pub(crate) fn jail_started() {
    let was = STARTING
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .unwrap_or(0);
    if was == 1 && READY.load(Ordering::SeqCst) {
        release_logged();
    }
}

/// The server is ready (the jails are built and their tasks had a first turn; usually nothing
/// has been answered yet): the start-up code is released now, and again when the last jail
/// still starting has started.
pub(crate) fn server_ready() {
    READY.store(true, Ordering::SeqCst);
    release_logged();
}

fn release_logged() {
    let released = release_startup_pages();
    // Start-up's transient buffers (reading the configuration, hashing each log's first line)
    // were freed, but the allocator keeps the pages; give the free ones back.
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free memory of the allocator to the system.
    unsafe {
        libc::malloc_trim(0);
    }
    crate::flog!(
        Debug,
        "server",
        "Start-up code released from the resident set: {} KiB of mappings",
        released / 1024
    );
}

/// One mapping of `/proc/self/smaps` that may be released.
#[derive(Debug, PartialEq)]
struct Mapping {
    start: usize,
    end: usize,
}

/// The mappings of files in `smaps` (the text of `/proc/self/smaps`) that are read-only, private
/// and hold no anonymous (copied) page: the executable's and the shared libraries' code and
/// read-only data.
fn releasable(smaps: &str) -> Vec<Mapping> {
    // The mapping being read: itself, whether its header qualifies it, and whether its
    // `Anonymous:` line said 0 kB (without that line nothing says its pages are uncopied).
    let mut current: Option<(Mapping, bool, bool)> = None;
    let mut out = Vec::new();
    let flush = |cur: Option<(Mapping, bool, bool)>, out: &mut Vec<Mapping>| {
        if let Some((m, true, true)) = cur {
            out.push(m);
        }
    };
    for line in smaps.lines() {
        if let Some(kb) = line.strip_prefix("Anonymous:") {
            if let Some((_, _, uncopied)) = current.as_mut() {
                *uncopied = kb.trim() == "0 kB";
            }
            continue;
        }
        // A header starts with its range in lowercase hex; the other fields with a capital.
        if !line.starts_with(|c: char| c.is_ascii_digit() || ('a'..='f').contains(&c)) {
            continue;
        }
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            // A mapping's header: range, perms, offset, dev, inode, path.
            flush(current.take(), &mut out);
            let perms = words.next().unwrap_or("");
            let path = words.nth(3).unwrap_or("");
            // A file's own path (not `[vdso]`, `[heap]`, an anonymous mapping or a deleted file).
            let file = path.starts_with('/') && words.next().is_none();
            let candidate = file && (perms == "r-xp" || perms == "r--p") && start < end;
            current = Some((Mapping { start, end }, candidate, false));
        }
    }
    flush(current.take(), &mut out);
    out
}

/// Drops the start-up code's pages from the resident set (see the module's documentation).
/// Returns the number of bytes of mappings released; errors (no `/proc`) release nothing.
pub fn release_startup_pages() -> usize {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let mut released = 0;
    for m in releasable(&smaps) {
        let len = m.end - m.start;
        // SAFETY: the range is one whole mapping of a file, read-only and without private
        // copies: MADV_DONTNEED only unmaps its page-table entries, and each page reads back
        // the same file content at its next use.
        let rc = unsafe { libc::madvise(m.start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
        if rc == 0 {
            released += len;
        }
    }
    released
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0c0000000-55d0c0200000 r--p 00000000 fd:01 42 /usr/sbin/ferroban
Size:               2048 kB
Rss:                1600 kB
Anonymous:             0 kB
55d0c0200000-55d0c0c00000 r-xp 00200000 fd:01 42 /usr/sbin/ferroban
Size:              10240 kB
Anonymous:             0 kB
55d0c0c00000-55d0c0c40000 r--p 00c00000 fd:01 42 /usr/sbin/ferroban
Size:                256 kB
Anonymous:           256 kB
55d0c0c40000-55d0c0c48000 rw-p 00c40000 fd:01 42 /usr/sbin/ferroban
Anonymous:            32 kB
55d0c1000000-55d0c1100000 rw-p 00000000 00:00 0 [heap]
Anonymous:          1024 kB
7f0000000000-7f0000100000 r-xp 00000000 fd:01 7 /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7f0000100000-7f0000104000 r--p 00100000 fd:01 7 /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:            16 kB
7f0000200000-7f0000208000 rw-s 00000000 fd:01 9 /var/lib/ferroban/ferroban.sqlite3-shm
Anonymous:             0 kB
7f0000300000-7f0000301000 r--p 00000000 fd:01 11 /tmp/gone (deleted)
Anonymous:             0 kB
7ffc00000000-7ffc00002000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
";

    #[test]
    fn only_read_only_uncopied_mappings_of_files_are_released() {
        assert_eq!(
            releasable(SMAPS),
            vec![
                Mapping {
                    start: 0x55d0c0000000,
                    end: 0x55d0c0200000
                },
                Mapping {
                    start: 0x55d0c0200000,
                    end: 0x55d0c0c00000
                },
                Mapping {
                    start: 0x7f0000000000,
                    end: 0x7f0000100000
                },
            ]
        );
    }

    #[test]
    fn a_mapping_without_an_anonymous_line_is_not_released() {
        // An older kernel's smaps without the line: nothing says the pages are uncopied.
        let smaps = "55d0c0000000-55d0c0200000 r-xp 00000000 fd:01 42 /x\nSize: 2048 kB\n";
        assert_eq!(releasable(smaps), vec![]);
    }

    #[test]
    fn releasing_in_this_process_keeps_the_code_running() {
        // The test binary's own start-up pages: released, then code and constants still work.
        let released = release_startup_pages();
        assert!(released > 0, "nothing released");
        let v: Vec<u64> = (1..=10).collect();
        assert_eq!(v.iter().sum::<u64>(), 55);
        assert_eq!(format!("{:?}", "still here"), "\"still here\"");
        // libc's code too (released with the executable's).
        let dir = std::env::temp_dir().join(format!("ferroban-lean-{}", std::process::id()));
        std::fs::write(&dir, "back from the page cache").unwrap();
        assert_eq!(
            std::fs::read_to_string(&dir).unwrap(),
            "back from the page cache"
        );
        let _ = std::fs::remove_file(&dir);
    }

    #[test]
    #[cfg(target_env = "gnu")]
    fn libc_code_is_among_the_released_mappings() {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let libc_code: Vec<Mapping> = smaps
            .lines()
            .filter(|l| l.contains(" r-xp ") && l.contains("/libc.so"))
            .filter_map(|l| {
                let (a, b) = l.split_whitespace().next()?.split_once('-')?;
                Some(Mapping {
                    start: usize::from_str_radix(a, 16).ok()?,
                    end: usize::from_str_radix(b, 16).ok()?,
                })
            })
            .collect();
        assert!(!libc_code.is_empty(), "no libc code mapping in smaps");
        let released = releasable(&smaps);
        for m in &libc_code {
            assert!(released.contains(m), "{m:?} not released");
        }
    }
}
