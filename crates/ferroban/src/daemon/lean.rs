//! Giving back the start-up code's pages.
//!
//! Reading the configuration and building the jails (the INI reader, the regex and PCRE2
//! compilers, the date templates, SQLite's schema code, ...) runs once, through most of the
//! binary's code. The kernel maps a file's pages around each one touched (fault-around, 64 KiB),
//! so after start-up nearly all of the executable's ~10 MB of code and read-only data stays
//! mapped into the daemon, counted in its resident set, although the steady state (reading,
//! matching, the control socket) runs through a small part of it.
//!
//! Once the daemon is ready (its jails built, before it answers its first request), and again
//! once every jail it started has started (its actions too: the first action commands run
//! through code nothing else uses), [`release_startup_pages`] drops those mappings of the
//! executable with `madvise(MADV_DONTNEED)`: the pages stay in the page cache (nothing is read
//! from disk again), and the ones the daemon still runs are mapped back at their next use (a
//! minor fault).
//! Free heap pages that start-up's transient buffers left behind go back too (`malloc_trim`).
//! Only mappings of the executable's own file that are read-only and hold no private copy of a
//! page (`Anonymous: 0 kB` in `/proc/self/smaps`) are touched: dropping a page that relocation
//! or a write had copied would lose that copy, so such mappings (RELRO, `.data`) are left alone.

use std::path::PathBuf;
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

/// The server is ready (the jails are built; nothing has been answered yet): the start-up code
/// is released now, and again when the last jail still starting has started.
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

/// The mappings of `exe` in `smaps` (the text of `/proc/self/smaps`) that are read-only, private
/// and hold no anonymous (copied) page.
fn releasable(smaps: &str, exe: &str) -> Vec<Mapping> {
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
            let candidate = path == exe && (perms == "r-xp" || perms == "r--p") && start < end;
            current = Some((Mapping { start, end }, candidate, false));
        } else if let Some(kb) = line.strip_prefix("Anonymous:")
            && let Some((_, _, uncopied)) = current.as_mut()
        {
            *uncopied = kb.trim() == "0 kB";
        }
    }
    flush(current.take(), &mut out);
    out
}

/// Drops the start-up code's pages from the resident set (see the module's documentation).
/// Returns the number of bytes of mappings released; errors (no `/proc`) release nothing.
pub fn release_startup_pages() -> usize {
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return 0;
    };
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let exe: PathBuf = exe;
    let Some(exe) = exe.to_str() else {
        return 0;
    };
    let mut released = 0;
    for m in releasable(&smaps, exe) {
        let len = m.end - m.start;
        // SAFETY: the range is one whole mapping of the executable, read-only and without
        // private copies: MADV_DONTNEED only unmaps its page-table entries, and each page reads
        // back the same file content at its next use.
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
";

    #[test]
    fn only_the_executables_read_only_uncopied_mappings_are_released() {
        assert_eq!(
            releasable(SMAPS, "/usr/sbin/ferroban"),
            vec![
                Mapping {
                    start: 0x55d0c0000000,
                    end: 0x55d0c0200000
                },
                Mapping {
                    start: 0x55d0c0200000,
                    end: 0x55d0c0c00000
                },
            ]
        );
        assert_eq!(releasable(SMAPS, "/usr/sbin/other"), vec![]);
    }

    #[test]
    fn a_mapping_without_an_anonymous_line_is_not_released() {
        // An older kernel's smaps without the line: nothing says the pages are uncopied.
        let smaps = "55d0c0000000-55d0c0200000 r-xp 00000000 fd:01 42 /x\nSize: 2048 kB\n";
        assert_eq!(releasable(smaps, "/x"), vec![]);
    }

    #[test]
    fn releasing_in_this_process_keeps_the_code_running() {
        // The test binary's own start-up pages: released, then code and constants still work.
        let released = release_startup_pages();
        assert!(released > 0, "nothing released");
        let v: Vec<u64> = (1..=10).collect();
        assert_eq!(v.iter().sum::<u64>(), 55);
        assert_eq!(format!("{:?}", "still here"), "\"still here\"");
    }
}
