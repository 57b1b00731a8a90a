//! The classic guide's configuration run by `ferroban server` with the guide's paths as written
//! (`/var/log/nginx/access.log`, `/var/log/ufw.log`, ...), in a private mount and network
//! namespace (`unshare --mount --net`): empty tmpfs `/var/log`, `/var/lib` and `/etc/ufw`, its own
//! loopback (up), and a `ufw` first on its PATH that records its arguments. Nothing on the host is
//! read, written or firewalled. tests/guide.rs and tests/metrics_top.rs start their daemon so.
//!
//! Needs root, util-linux (`unshare`, `nsenter`, `mount`) and iproute2 (`ip`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::guide::{CUSTOM_CONF, JAIL_LOCAL};
use crate::{unshare_sh, wait_for};

/// A scratch directory (`etc/`: the configuration, `bin/`: the daemon's PATH, the socket, the
/// pid file, `ufw.calls`) and, once [`start`](GuideDaemon::start)ed, the daemon in its
/// namespaces. On drop the daemon is killed (by its PID) and the directory removed, unless
/// `FERROBAN_E2E_KEEP` is set.
pub struct GuideDaemon {
    /// The scratch directory.
    pub dir: PathBuf,
    bin: PathBuf,
    kind: String,
    child: Option<Child>,
}

impl Drop for GuideDaemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::env::var_os("FERROBAN_E2E_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("FERROBAN_E2E_KEEP: kept {}", self.dir.display());
        }
    }
}

impl GuideDaemon {
    /// A fresh `<tmp>/ferroban-<kind>-<tag>-<pid>` whose `etc/` holds a copy of `base` (e.g. the
    /// fail2ban reference's `etc/fail2ban`), when given, then the guide's `jail.local` and
    /// `jail.d/custom.conf`; `bin/` holds the `ufw` stand-in (answers like an enabled ufw, appends
    /// each call to `ufw.calls`) and `fail2ban-client`, a link to `bin`, the ferroban binary under
    /// test. Not started yet: more files can go into [`etc`](Self::etc) first.
    pub fn new(bin: &str, kind: &str, tag: &str, base: Option<&Path>) -> GuideDaemon {
        let dir =
            std::env::temp_dir().join(format!("ferroban-{kind}-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let etc = dir.join("etc");
        std::fs::create_dir_all(etc.join("jail.d")).unwrap();
        if let Some(base) = base {
            let ok = Command::new("cp")
                .arg("-a")
                .arg(format!("{}/.", base.display()))
                .arg(&etc)
                .status()
                .expect("run cp")
                .success();
            assert!(ok, "cp -a {}/. {}", base.display(), etc.display());
        }
        std::fs::write(etc.join("jail.local"), JAIL_LOCAL).unwrap();
        std::fs::write(etc.join("jail.d/custom.conf"), CUSTOM_CONF).unwrap();
        let path = dir.join("bin");
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(
            path.join("ufw"),
            format!(
                "#!/bin/sh\necho \"ufw $*\" >> {}/ufw.calls\ncase \"$1\" in status) echo 'Status: active';; esac\nexit 0\n",
                dir.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path.join("ufw"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(bin, path.join("fail2ban-client")).unwrap();
        GuideDaemon {
            dir,
            bin: PathBuf::from(bin),
            kind: kind.to_string(),
            child: None,
        }
    }

    /// The configuration directory (`-c`).
    pub fn etc(&self) -> PathBuf {
        self.dir.join("etc")
    }

    /// The control socket.
    pub fn sock(&self) -> PathBuf {
        self.dir.join("ferroban.sock")
    }

    /// Starts `ferroban server -f -x` in fresh namespaces (loopback up, the tmpfs mounts,
    /// `/var/log/nginx` and `/var/log/fastapi` made) and waits until it answers `ping`.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "the daemon is already running");
        let d = self.dir.display();
        let k = &self.kind;
        let bin = self.bin.display();
        let script = format!(
            "ip link set lo up \
             && mount -t tmpfs ferroban-{k}-log /var/log && mount -t tmpfs ferroban-{k}-lib /var/lib \
             && mount -t tmpfs ferroban-{k}-ufw /etc/ufw \
             && mkdir -p /var/log/nginx /var/log/fastapi \
             && exec {bin} server -f -x -c {d}/etc -s {d}/ferroban.sock -p {d}/ferroban.pid"
        );
        // A private network namespace: whatever a firewall command does stays there; /etc/ufw is
        // an empty tmpfs: the host's ufw rules files are never written.
        let child = unshare_sh(&script)
            .env("PATH", format!("{d}/bin:/usr/sbin:/usr/bin:/sbin:/bin"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("unshare");
        self.child = Some(child);
        wait_for("the server answers ping", Duration::from_secs(30), || {
            self.client(&["ping"]).0 == 0
        });
    }

    /// `client stop`, then waits (20 s at most) for the daemon to exit.
    pub fn stop(&mut self) {
        let (code, out) = self.client(&["stop"]);
        assert_eq!(code, 0, "stop: {out}");
        let mut c = self.child.take().expect("the daemon is not running");
        wait_for(
            "the daemon exits after stop",
            Duration::from_secs(20),
            || matches!(c.try_wait(), Ok(Some(_))),
        );
    }

    /// The daemon's PID (that of the process that holds its namespaces).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the daemon is not running").id()
    }

    /// `sh -c script` inside the daemon's mount namespace; its stdout (it must succeed).
    pub fn in_mount(&self, script: &str) -> String {
        let out = Command::new("nsenter")
            .args(["-t", &self.pid().to_string(), "-m", "sh", "-c", script])
            .output()
            .expect("nsenter");
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `argv` inside the daemon's network namespace: whether it succeeded, and its stdout.
    pub fn in_net(&self, argv: &[&str]) -> (bool, String) {
        let out = Command::new("nsenter")
            .args(["-t", &self.pid().to_string(), "-n", "--"])
            .args(argv)
            .output()
            .expect("nsenter");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// Appends `line` and a newline to `path` as the daemon sees it (its mount namespace).
    pub fn append(&self, path: &str, line: &str) {
        let mut child = Command::new("nsenter")
            .args(["-t", &self.pid().to_string(), "-m", "sh", "-c"])
            .arg(format!("cat >> {path}"))
            .stdin(Stdio::piped())
            .spawn()
            .expect("nsenter");
        writeln!(child.stdin.as_mut().unwrap(), "{line}").unwrap();
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success(), "append to {path}");
    }

    /// `ferroban client -s <socket> args...`: exit code (-1: killed by a signal) and stdout.
    pub fn client(&self, args: &[&str]) -> (i32, String) {
        self.run_client(Command::new(&self.bin).arg("client"), args)
    }

    /// The same through `bin/fail2ban-client` (the name the guide's commands use).
    pub fn fail2ban_client(&self, args: &[&str]) -> (i32, String) {
        self.run_client(
            &mut Command::new(self.dir.join("bin/fail2ban-client")),
            args,
        )
    }

    fn run_client(&self, cmd: &mut Command, args: &[&str]) -> (i32, String) {
        let out = cmd
            .arg("-s")
            .arg(self.sock())
            .args(args)
            .output()
            .expect("run the client");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// What the `ufw` stand-in was called with so far, one call a line.
    pub fn ufw_calls(&self) -> String {
        std::fs::read_to_string(self.dir.join("ufw.calls")).unwrap_or_default()
    }
}
