//! What ferroban's integration tests share (a dev-dependency only):
//!
//! - [`Tree`]: a scratch configuration directory whose `fail2ban.conf` keeps the log, socket,
//!   pid file and database inside it, a `ferroban server -f` started on it (killed and the
//!   directory removed on drop) and `ferroban client` calls against it;
//! - [`wait_for`]: polling a condition with a deadline (tests wait on what they observe, never
//!   on a fixed sleep);
//! - [`nginx_now`] / [`access_line`]: nginx access-log lines dated now; [`WEB_FILTER`], a
//!   filter matching them, and [`RECORD_ACTION`], an action that records bans in a file;
//! - [`guide`]: the classic fail2ban guide's `jail.local` and `jail.d/custom.conf`, verbatim;
//! - [`guide_daemon`]: those files run by a daemon in private mount and network namespaces;
//! - [`f2b_root`] / [`f2b_python`] / [`f2b_command`]: the fail2ban 1.0.2 reference unpacked by
//!   scripts/f2b-env.sh, and the Python that runs its programs; [`f2b_newer_root`]: fail2ban
//!   1.1.0 and 1.1.1 unpacked by scripts/f2b-newer.sh; [`f2b_dump_actions`]: the ban actions
//!   a reference's own client resolves for a configuration directory.
//!
//! The binary under test is passed in (`env!("CARGO_BIN_EXE_ferroban")` exists only in the
//! ferroban crate's own tests).

pub mod guide;
pub mod guide_daemon;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The unpacked fail2ban 1.0.2 reference: `$FERROBAN_F2B_ROOT`, default /tmp/f2b/root
/// (scripts/f2b-env.sh puts it there). Panics with how to get it when it is missing.
pub fn f2b_root() -> PathBuf {
    let root = PathBuf::from(
        std::env::var("FERROBAN_F2B_ROOT").unwrap_or_else(|_| "/tmp/f2b/root".to_string()),
    );
    assert!(
        root.join("usr/bin/fail2ban-server").is_file(),
        "fail2ban reference not found at {} (set FERROBAN_F2B_ROOT, see scripts/f2b-env.sh)",
        root.display()
    );
    root
}

/// A newer fail2ban release (`"1.1.0"`, `"1.1.1"`) unpacked by scripts/f2b-newer.sh:
/// `$FERROBAN_F2B_NEWER/<version>`, default /tmp/f2b/newer. Panics with how to get it when it
/// is missing.
pub fn f2b_newer_root(version: &str) -> PathBuf {
    let root = PathBuf::from(
        std::env::var("FERROBAN_F2B_NEWER").unwrap_or_else(|_| "/tmp/f2b/newer".to_string()),
    )
    .join(version);
    assert!(
        root.join("etc/fail2ban/jail.conf").is_file()
            && root
                .join("usr/lib/python3/dist-packages/fail2ban/tests/files/logs")
                .is_dir(),
        "fail2ban {version} not found at {} (run scripts/f2b-newer.sh as root, or set \
         FERROBAN_F2B_NEWER)",
        root.display()
    );
    root
}

/// The ban actions the reference unpacked at `root` (its own `fail2ban-client -c ETC -d`)
/// gives the jails of the configuration directory `etc`: its `addaction` lines as
/// `(jail, action)`, sorted, and the client's stderr (the jails it refused, and why).
pub fn f2b_dump_actions(root: &Path, etc: &Path) -> (Vec<(String, String)>, String) {
    let out = Command::new(f2b_python())
        .env("PYTHONPATH", root.join("usr/lib/python3/dist-packages"))
        .arg(root.join("usr/bin/fail2ban-client"))
        .arg("-c")
        .arg(etc)
        .arg("-d")
        .output()
        .expect("run the reference's fail2ban-client -d");
    let dump = String::from_utf8_lossy(&out.stdout);
    let mut got: Vec<(String, String)> = dump
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("['set', '")?;
            let (jail, rest) = rest.split_once("', 'addaction', '")?;
            Some((jail.to_string(), rest.strip_suffix("']")?.to_string()))
        })
        .collect();
    got.sort();
    (got, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The Python that runs the reference: `$FERROBAN_F2B_PYTHON`, default Debian's /usr/bin/python3.
pub fn f2b_python() -> String {
    std::env::var("FERROBAN_F2B_PYTHON").unwrap_or_else(|_| {
        if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3".into()
        } else {
            "python3".into()
        }
    })
}

/// A command running the reference's `usr/bin/<program>` (e.g. `fail2ban-client`) with its
/// Python package on the path.
pub fn f2b_command(program: &str) -> Command {
    let root = f2b_root();
    let mut c = Command::new(f2b_python());
    c.env("PYTHONPATH", root.join("usr/lib/python3/dist-packages"))
        .arg(root.join("usr/bin").join(program));
    c
}

/// `unshare --mount --net --propagation private sh -c <script>`: `script` runs in a fresh mount
/// namespace (its mounts invisible to the host) and a fresh network namespace, both gone when the
/// last process in them ends. Needs root and util-linux.
pub fn unshare_sh(script: &str) -> Command {
    let mut c = Command::new("unshare");
    c.args([
        "--mount",
        "--net",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
    ]);
    c
}

/// Polls `f` every 10 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Now, as nginx writes it in access.log (`06/Dec/2026:20:33:47 +0000`, local zone).
pub fn nginx_now() -> String {
    jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::system())
        .strftime("%d/%b/%Y:%H:%M:%S %z")
        .to_string()
}

/// `filter.d/web.conf` of the guide's failregex: a 404 or 403 in an nginx access log
/// ([`access_line`] writes lines it matches).
pub const WEB_FILTER: &str = "[Definition]\n\
    failregex = ^<HOST> -.* \"(GET|POST).* HTTP/.*\" (404|403)\n\
    ignoreregex =\n";

/// `action.d/record.conf`: each ban appends `<jail> ban <ip>` to the file `out` (an `[Init]`
/// option the jail sets: `action = record[out="..."]`); nothing else runs.
pub const RECORD_ACTION: &str = "[Definition]\n\
    actionstart =\nactionstop =\n\
    actionban = echo \"<name> ban <ip>\" >> %(out)s\n\
    actionunban =\n[Init]\nout = /dev/null\n";

/// One nginx access-log line (without newline): `ip` got a 404 for `path`, now.
pub fn access_line(ip: &str, path: &str) -> String {
    format!(
        r#"{ip} - - [{}] "GET {path} HTTP/1.1" 404 153 "-" "curl/7.88.1""#,
        nginx_now()
    )
}

/// What a `ferroban client` call printed.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code (-1: killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// Standard output followed by standard error.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// A scratch configuration tree and, once [`spawn`](Tree::spawn)ed, its daemon.
pub struct Tree {
    /// The configuration directory (`-c`).
    pub dir: PathBuf,
    bin: PathBuf,
    child: Option<Child>,
}

impl Drop for Tree {
    fn drop(&mut self) {
        self.kill9();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Tree {
    /// A fresh `<tmp>/ferroban-<kind>-<tag>-<pid>` with a `fail2ban.conf` at `loglevel` whose
    /// log (`ferroban.log`), socket, pid file and database are inside it. `bin` is the ferroban
    /// binary under test.
    pub fn new(bin: &str, kind: &str, tag: &str, loglevel: &str) -> Tree {
        let dir =
            std::env::temp_dir().join(format!("ferroban-{kind}-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let t = Tree {
            dir,
            bin: PathBuf::from(bin),
            child: None,
        };
        let d = t.dir.display();
        t.write(
            "fail2ban.conf",
            &format!(
                "[Definition]\nloglevel = {loglevel}\nlogtarget = {d}/ferroban.log\nsocket = {d}/ferroban.sock\npidfile = {d}/ferroban.pid\ndbfile = {d}/ferroban.sqlite3\n"
            ),
        );
        t
    }

    /// One jail, `web`, that reads `access.log` (written empty) with filter `web` (its
    /// `failregex`) and action `none`, which does nothing (no firewall); `jail_extra` (whole
    /// lines, e.g. `"bantime = 1h\n"`) ends the jail's section. `ignoreself = false`.
    pub fn write_web_jail(&self, failregex: &str, jail_extra: &str) {
        let d = self.dir.display();
        self.write(
            "filter.d/web.conf",
            &format!("[Definition]\nfailregex = {failregex}\n"),
        );
        self.write(
            "action.d/none.conf",
            "[Definition]\nactionstart =\nactionstop =\nactionban =\nactionunban =\n",
        );
        self.write(
            "jail.conf",
            &format!(
                "[DEFAULT]\nignoreself = false\n\n[web]\nenabled = true\nfilter = web\nlogpath = {d}/access.log\naction = none\n{jail_extra}"
            ),
        );
        self.write("access.log", "");
    }

    /// `name` inside the tree.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `name` (creating its directory).
    pub fn write(&self, name: &str, text: &str) {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    }

    /// Appends `text` to `name` (created if missing).
    pub fn append(&self, name: &str, text: &str) {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(name))
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .unwrap_or_else(|e| panic!("append to {name}: {e}"));
    }

    /// `name`'s text, empty when it does not exist (yet).
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// The daemon's log.
    pub fn log(&self) -> String {
        self.read("ferroban.log")
    }

    /// Starts `ferroban server -f -x -c <dir>` and waits until it answers `ping`.
    pub fn spawn(&mut self) {
        let child = Command::new(&self.bin)
            .args(["server", "-f", "-x", "-c"])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start ferroban server");
        self.child = Some(child);
        wait_for("the server answers ping", Duration::from_secs(15), || {
            self.client(&["ping"]).code == 0
        });
    }

    /// Waits until the log says jail `name` started.
    pub fn wait_jail(&self, name: &str) {
        let needle = format!("Jail '{name}' started");
        wait_for(&needle, Duration::from_secs(15), || {
            self.log().contains(&needle)
        });
    }

    /// The daemon's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `ferroban client -c <dir> args...`.
    pub fn client(&self, args: &[&str]) -> Output {
        client_at(&self.bin, &self.dir, args)
    }

    /// [`client`](Self::client), asserting exit code 0; stdout then stderr.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.client(args);
        assert_eq!(o.code, 0, "client {args:?}: {}", o.text());
        o.text()
    }

    /// Kills the daemon (SIGKILL) and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `client stop`, then waits for the daemon to exit.
    pub fn stop(&mut self) {
        let o = self.client(&["stop"]);
        assert_eq!(o.code, 0, "stop: {}", o.text());
        assert!(
            o.stdout.contains("Shutdown successful"),
            "stop: {}",
            o.text()
        );
        if let Some(mut c) = self.child.take() {
            wait_for(
                "the server exits after stop",
                Duration::from_secs(10),
                || matches!(c.try_wait(), Ok(Some(_))),
            );
        }
    }
}

/// `ferroban client -c <dir> args...` with binary `bin`.
pub fn client_at(bin: &Path, dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(bin)
        .arg("client")
        .arg("-c")
        .arg(dir)
        .args(args)
        .output()
        .expect("run ferroban client");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
