//! The daemon under test, run inside the lab's "srv" namespace: `ferroban server` (the default), or
//! the reference fail2ban-server 1.0.2 to validate a test itself.
//!
//! `FERROBAN_E2E_SERVER=ferroban|fail2ban` picks it. The reference runs from `FERROBAN_F2B_ROOT`
//! (default `/tmp/f2b/root`, see scripts/f2b-env.sh) under `FERROBAN_F2B_PYTHON` (default
//! `/usr/bin/python3`, Debian's interpreter, which has python3-pyinotify like a Debian install).
//! Both take the same flags: `server -f -x -c DIR -s SOCK -p PID --logtarget FILE --loglevel INFO`
//! and `client -c DIR -s SOCK ...`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{CmdOutput, Lab, read_lossy, tail};

/// Which server runs.
#[derive(Debug, Clone)]
pub enum Flavour {
    Ferroban { bin: PathBuf },
    Fail2ban { root: PathBuf, python: PathBuf },
}

impl Flavour {
    /// From `FERROBAN_E2E_SERVER` (default `ferroban`); `ferroban_bin` is the binary under test.
    pub fn from_env(ferroban_bin: &str) -> Flavour {
        match std::env::var("FERROBAN_E2E_SERVER").as_deref() {
            Err(_) | Ok("") | Ok("ferroban") => Flavour::Ferroban {
                bin: ferroban_bin.into(),
            },
            Ok("fail2ban") => {
                let root = reference_root();
                let python = std::env::var_os("FERROBAN_F2B_PYTHON")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| {
                        if Path::new("/usr/bin/python3").exists() {
                            "/usr/bin/python3".into()
                        } else {
                            "python3".into()
                        }
                    });
                Flavour::Fail2ban { root, python }
            }
            Ok(other) => panic!("FERROBAN_E2E_SERVER={other:?}: expected `ferroban` or `fail2ban`"),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Flavour::Ferroban { .. } => "ferroban server",
            Flavour::Fail2ban { .. } => "fail2ban-server 1.0.2 (reference)",
        }
    }

    pub fn is_reference(&self) -> bool {
        matches!(self, Flavour::Fail2ban { .. })
    }

    /// The program and leading arguments for `server` or `client`.
    fn program(&self, role: &str) -> Vec<String> {
        match self {
            Flavour::Ferroban { bin } => vec![bin.display().to_string(), role.to_string()],
            Flavour::Fail2ban { root, python } => vec![
                python.display().to_string(),
                root.join(format!("usr/bin/fail2ban-{role}"))
                    .display()
                    .to_string(),
            ],
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        match self {
            Flavour::Ferroban { .. } => Vec::new(),
            Flavour::Fail2ban { root, .. } => vec![(
                "PYTHONPATH".to_string(),
                root.join("usr/lib/python3/dist-packages")
                    .display()
                    .to_string(),
            )],
        }
    }
}

/// The fail2ban reference tree (`FERROBAN_F2B_ROOT`, default `/tmp/f2b/root`).
pub fn reference_root() -> PathBuf {
    let root = PathBuf::from(
        std::env::var("FERROBAN_F2B_ROOT").unwrap_or_else(|_| "/tmp/f2b/root".into()),
    );
    assert!(
        root.join("etc/fail2ban/jail.conf").is_file(),
        "fail2ban 1.0.2 reference not found at {} (set FERROBAN_F2B_ROOT or run scripts/f2b-env.sh)",
        root.display()
    );
    root
}

/// Copies the reference's `etc/fail2ban` to `dest` (a fresh directory): what a Debian install has
/// before its user writes any `.local` file.
pub fn copy_reference_config(dest: &Path) {
    copy_tree(&reference_root().join("etc/fail2ban"), dest);
}

/// The reference configuration copied to `<lab>/etc-fail2ban`, with a `fail2ban.local` that puts
/// the database and the log in the lab's dir (`fail2ban.sqlite3`, `fail2ban.log`). Returns the dir.
pub fn lab_config(lab: &Lab) -> PathBuf {
    let cfg = lab.path("etc-fail2ban");
    copy_reference_config(&cfg);
    let d = lab.dir.display();
    std::fs::write(
        cfg.join("fail2ban.local"),
        format!("[Definition]\ndbfile = {d}/fail2ban.sqlite3\nlogtarget = {d}/fail2ban.log\n"),
    )
    .expect("fail2ban.local");
    cfg
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("creating {}: {e}", to.display()));
    let entries =
        std::fs::read_dir(from).unwrap_or_else(|e| panic!("reading {}: {e}", from.display()));
    for entry in entries {
        let entry = entry.expect("directory entry");
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst)
                .unwrap_or_else(|e| panic!("copying {} to {}: {e}", src.display(), dst.display()));
        }
    }
}

/// One daemon: its configuration dir, socket, pid file and log, and its process while it runs.
pub struct Daemon {
    pub flavour: Flavour,
    pub config: PathBuf,
    pub socket: PathBuf,
    pub pidfile: PathBuf,
    pub log: PathBuf,
    pid: Option<u32>,
    starts: usize,
}

impl Daemon {
    /// A daemon over configuration dir `config`; its socket, pid file and log go into the lab's dir.
    /// (`log` must be the `logtarget` that `fail2ban.local` names too.)
    pub fn new(lab: &mut Lab, flavour: Flavour, config: PathBuf, log: PathBuf) -> Daemon {
        lab.show_on_failure(log.clone());
        Daemon {
            flavour,
            config,
            socket: lab.path("server.sock"),
            pidfile: lab.path("server.pid"),
            log,
            pid: None,
            starts: 0,
        }
    }

    /// Starts the server in "srv" (foreground, `-x` clears a stale socket) and waits until `client
    /// status` answers and the log says each of `jails` started. Returns the log offset at which
    /// this run's lines begin.
    pub fn start(&mut self, lab: &mut Lab, jails: &[&str]) -> u64 {
        assert!(self.pid.is_none(), "the daemon is already running");
        let offset = self.log_len();
        let mut argv = self.flavour.program("server");
        argv.extend(
            [
                "-f",
                "-x",
                "-c",
                &self.config.display().to_string(),
                "-s",
                &self.socket.display().to_string(),
                "-p",
                &self.pidfile.display().to_string(),
                "--logtarget",
                &self.log.display().to_string(),
                "--loglevel",
                "INFO",
            ]
            .map(String::from),
        );
        self.starts += 1;
        let label = format!("server-run{}", self.starts);
        let argv_ref: Vec<&str> = argv.iter().map(String::as_str).collect();
        let srv = lab.srv.clone();
        let pid = lab.spawn(&srv, &label, &argv_ref, &self.flavour.env());
        self.pid = Some(pid);
        let start = Instant::now();
        let timeout = Duration::from_secs(20);
        loop {
            if let Some(status) = lab.exited(pid) {
                self.pid = None;
                panic!(
                    "{} exited with {status} {:.1} s after its start, before it was ready.\n\
                     command: {}\n--- its stdout/stderr ---\n{}\n--- its log {} ---\n{}",
                    self.flavour.name(),
                    start.elapsed().as_secs_f64(),
                    argv.join(" "),
                    tail(&lab.output_of(pid), 30),
                    self.log.display(),
                    tail(&self.log_since(offset), 30),
                );
            }
            let log = self.log_since(offset);
            let started = jails
                .iter()
                .all(|j| log.contains(&format!("Jail '{j}' started")));
            if started && self.client(lab, &["status"]).success() {
                return offset;
            }
            assert!(
                start.elapsed() < timeout,
                "{} (PID {pid}) was not ready within {} s: `client status` must answer and the log \
                 must say \"Jail '<name>' started\" for {jails:?}.\n--- its log ---\n{}",
                self.flavour.name(),
                timeout.as_secs(),
                tail(&log, 30),
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `client stop`, which must answer "Shutdown successful", then waits (up to 15 s) for the server
    /// to exit with success; no `inet f2b-table` may remain in "srv" (the actions' stop ran).
    pub fn stop(&mut self, lab: &mut Lab) {
        let out = self.client(lab, &["stop"]).expect_ok("`client stop`");
        assert!(
            out.stdout.contains("Shutdown successful"),
            "`client stop` output: {out}"
        );
        let status = self.wait_exit(lab, Duration::from_secs(15));
        assert!(
            status.success(),
            "{} exited with {status} after `client stop`",
            self.flavour.name()
        );
        let tables = lab.nft_ruleset().tables();
        assert!(
            !tables.iter().any(|t| t == "inet f2b-table"),
            "after stop no f2b table remains: {tables:?}\n{}",
            lab.nft_text()
        );
    }

    /// The running server's PID.
    pub fn pid(&self) -> u32 {
        self.pid.expect("the daemon is not running")
    }

    /// `kill -9` the server and reap it.
    pub fn kill9(&mut self, lab: &mut Lab) {
        let pid = self.pid.take().expect("the daemon is not running");
        lab.kill9(pid);
    }

    /// Waits (up to `timeout`) for the server to exit by itself; its exit status.
    pub fn wait_exit(&mut self, lab: &mut Lab, timeout: Duration) -> std::process::ExitStatus {
        let pid = self.pid();
        let status = lab.wait_exit(pid, timeout).unwrap_or_else(|| {
            panic!(
                "{} (PID {pid}) did not exit within {} s",
                self.flavour.name(),
                timeout.as_secs()
            )
        });
        self.pid = None;
        status
    }

    /// Runs `client -c CONFIG -s SOCKET <args>` in "srv" (10 s at most).
    pub fn client(&self, lab: &Lab, args: &[&str]) -> CmdOutput {
        let mut argv = self.flavour.program("client");
        argv.extend(
            [
                "-c",
                &self.config.display().to_string(),
                "-s",
                &self.socket.display().to_string(),
            ]
            .map(String::from),
        );
        argv.extend(args.iter().map(|s| s.to_string()));
        let argv_ref: Vec<&str> = argv.iter().map(String::as_str).collect();
        lab.exec_env(
            &lab.srv,
            &argv_ref,
            &self.flavour.env(),
            Duration::from_secs(10),
        )
    }

    /// The addresses `client status <jail>` lists as banned.
    pub fn banned(&self, lab: &Lab, jail: &str) -> Vec<String> {
        let out = self.client(lab, &["status", jail]).expect_ok(&format!(
            "`client status {jail}` with {}",
            self.flavour.name()
        ));
        let line = out
            .stdout
            .lines()
            .find(|l| l.contains("Banned IP list:"))
            .unwrap_or_else(|| {
                panic!("`client status {jail}` printed no \"Banned IP list:\" line:\n{out}")
            });
        let list = line
            .split_once("Banned IP list:")
            .map(|(_, l)| l)
            .unwrap_or("");
        list.split_whitespace().map(str::to_string).collect()
    }

    /// The size of the log now.
    pub fn log_len(&self) -> u64 {
        std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0)
    }

    /// The log from byte `offset` on.
    pub fn log_since(&self, offset: u64) -> String {
        let all = read_lossy(&self.log);
        all.get(offset as usize..).unwrap_or("").to_string()
    }
}
