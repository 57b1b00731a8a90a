//! Real journal files for the journal tests: written by systemd-journal-remote (Debian package
//! `systemd-journal-remote`, installed by .ci/run) from export-format input on its stdin.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferroban_source::journal::{JournalLine, JournalReport, JournalSource};

pub const WRITER: &str = "/lib/systemd/systemd-journal-remote";
pub const BOOT_ID: &str = "0123456789abcdef0123456789abcdef";

/// µs since the epoch.
pub fn now_usec() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// One entry in export format (text fields; `MESSAGE` may hold anything but a newline).
pub fn export_entry(time_usec: u64, ident: &str, pid: u32, message: &str) -> String {
    format!(
        "__REALTIME_TIMESTAMP={time_usec}\n__MONOTONIC_TIMESTAMP={time_usec}\n_BOOT_ID={BOOT_ID}\n\
         _HOSTNAME=srv\nSYSLOG_IDENTIFIER={ident}\n_PID={pid}\n_COMM={ident}\n\
         _SYSTEMD_UNIT={ident}.service\nMESSAGE={message}\n\n"
    )
}

/// systemd-journal-remote writing `dir/remote.journal` from what is sent to it; it rotates the
/// file itself when its header limits are reached.
pub struct Writer {
    child: Child,
    stdin: Option<ChildStdin>,
    pub path: PathBuf,
    /// Time of the next entry (strictly increasing).
    pub clock: u64,
}

impl Writer {
    pub fn start(dir: &Path) -> Writer {
        assert!(
            Path::new(WRITER).exists(),
            "{WRITER} is missing: install Debian's systemd-journal-remote package (.ci/run does)"
        );
        let path = dir.join("remote.journal");
        let mut child = Command::new(WRITER)
            .arg(format!("--output={}", path.display()))
            .arg("--compress=no")
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start systemd-journal-remote");
        let stdin = child.stdin.take();
        Writer {
            child,
            stdin,
            path,
            clock: now_usec() - 60_000_000,
        }
    }

    /// Sends entries (ident, pid, message) timed one µs apart.
    pub fn send(&mut self, entries: &[(&str, u32, String)]) {
        let mut out = String::new();
        for (ident, pid, msg) in entries {
            self.clock += 1;
            out.push_str(&export_entry(self.clock, ident, *pid, msg));
        }
        let w = self.stdin.as_mut().expect("writer running");
        w.write_all(out.as_bytes()).unwrap();
        w.flush().unwrap();
    }

    /// Sends `n` entries of identifier `filler` that no test jail selects, each with ten
    /// distinct field values (the writer rotates its file when its data hash table fills: about
    /// every 17,000 such entries).
    pub fn send_filler(&mut self, n: usize) {
        let mut out = String::new();
        for _ in 0..n {
            self.clock += 1;
            let c = self.clock;
            out.push_str(&format!(
                "__REALTIME_TIMESTAMP={c}\n__MONOTONIC_TIMESTAMP={c}\n_BOOT_ID={BOOT_ID}\n\
                 _HOSTNAME=srv\nSYSLOG_IDENTIFIER=filler\n_COMM=filler\nMESSAGE=filler {c}\n\
                 F1={c}\nF2={c}\nF3={c}\nF4={c}\nF5={c}\nF6={c}\nF7={c}\nF8={c}\nF9={c}\n\n"
            ));
        }
        let w = self.stdin.as_mut().expect("writer running");
        w.write_all(out.as_bytes()).unwrap();
        w.flush().unwrap();
    }

    /// Sends filler until the writer has rotated its file once more (a new archived file).
    pub fn rotate(&mut self) {
        let dir = self.path.parent().unwrap().to_path_buf();
        let archived = |d: &Path| files(d).iter().filter(|f| f.contains('@')).count();
        let before = archived(&dir);
        let t = Instant::now();
        while archived(&dir) == before {
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "the writer never rotated"
            );
            self.send_filler(2000);
        }
    }

    /// Closes the input and waits for the writer to finish.
    pub fn finish(mut self) {
        drop(self.stdin.take());
        let st = self.child.wait().unwrap();
        assert!(st.success(), "systemd-journal-remote: {st}");
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `src` until `done` holds for what was read (or panics after `secs`); returns the texts.
pub fn read_until(
    src: &mut JournalSource,
    secs: u64,
    mut done: impl FnMut(&[String], &JournalReport) -> bool,
) -> Vec<String> {
    let t = Instant::now();
    let mut got = Vec::new();
    loop {
        let r = src.poll(&mut |l: JournalLine<'_>| got.push(l.text.to_string()));
        if std::env::var_os("JOURNAL_TEST_DEBUG").is_some() && !r.notices.is_empty() {
            eprintln!("{:?}", r.notices);
        }
        if done(&got, &r) {
            return got;
        }
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "timed out after {secs}s with {} entries read ({:?} ... {:?}; sequence numbers \
             missing: {:?}); last notices {:?}",
            got.len(),
            got.first(),
            got.last(),
            missing_numbers(&got),
            r.notices
        );
        if !r.more {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Polls `src` until its journalctl is another process than `pid` (or panics after `secs`);
/// returns the texts read meanwhile.
pub fn poll_until_restarted(src: &mut JournalSource, pid: &str, secs: u64) -> Vec<String> {
    let t = Instant::now();
    let mut got = Vec::new();
    loop {
        src.poll(&mut |l: JournalLine<'_>| got.push(l.text.to_string()));
        if src.reader_pid().is_some_and(|p| p.to_string() != pid) {
            return got;
        }
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "journalctl {pid} was not restarted within {secs}s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// For lines ending in `: n<number>`: the numbers missing between the first and the last.
pub fn missing_numbers(lines: &[String]) -> Vec<u64> {
    let nums: Vec<u64> = lines
        .iter()
        .filter_map(|l| l.rsplit(": n").next()?.parse().ok())
        .collect();
    match (nums.first(), nums.iter().max()) {
        (Some(&a), Some(&b)) => (a..b).filter(|n| !nums.contains(n)).collect(),
        _ => Vec::new(),
    }
}

/// Files in `dir` (names).
pub fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Deletes the archived files of `dir` as an administrator would (`journalctl --vacuum-files`).
pub fn vacuum(dir: &Path) {
    let st = Command::new("journalctl")
        .arg(format!("--directory={}", dir.display()))
        .arg("--vacuum-files=1")
        .output()
        .unwrap();
    assert!(st.status.success(), "{st:?}");
}

/// Descriptors open in process `pid`.
pub fn fd_count(pid: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}
