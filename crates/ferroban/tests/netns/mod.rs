//! A throw-away network for end-to-end tests: two network namespaces joined by a veth pair, nginx
//! serving in one of them, and helpers to run commands inside either.
//!
//! ```text
//!   netns "srv" (Lab::srv)                     netns "cli" (Lab::cli)
//!   veth0 198.51.100.1/24, 2001:db8::1/64 <--> veth1 198.51.100.7/24, 2001:db8::7/64
//!   nginx :80 (access.log), :8080 (access-8080.log)   curl
//!                                                      (more addresses: Lab::add_cli_v4)
//! ```
//!
//! Everything the lab makes is its own and goes away in [`Lab`]'s `Drop`, also when the test
//! panics: the processes it started (killed by their PID, never by name), both namespaces (and with
//! them every nftables rule made inside), and the temp dir. The host's firewall, routes and
//! interfaces are never touched: the veth pair is created inside "srv" with its peer moved straight
//! into "cli", and every `nft` runs under `ip netns exec`.
//!
//! Needs root and iproute2's `ip netns`; [`require_root`] fails with a clear message otherwise.
//! Set `FERROBAN_E2E_KEEP=1` to keep the temp dir (its path is printed) for a post-mortem.

// Each e2e test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

pub mod daemon;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const SRV_V4: &str = "198.51.100.1";
pub const CLI_V4: &str = "198.51.100.7";
pub const SRV_V6: &str = "2001:db8::1";
pub const CLI_V6: &str = "2001:db8::7";

/// The existing page nginx serves (anything else is a 404).
pub const PAGE: &str = "/index.html";
pub const PAGE_BODY: &str = "ferroban e2e page\n";

/// Fails the test unless it runs as root with the given programs on PATH.
pub fn require_root(programs: &[&str]) {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert!(
        euid == 0,
        "this end-to-end test creates network namespaces and nftables rules inside them: it must run \
         as root (euid is {euid}); CI runs it as root"
    );
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| which(p).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "this end-to-end test needs {missing:?} on PATH (Debian packages: see the apt list in .ci/run)"
    );
}

/// The full path of `program` on PATH (also searching the sbin directories).
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

/// Polls `probe` every 50 ms until it returns `Some`, or panics after `timeout` naming `what`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {:.1} s waiting for {what}",
            timeout.as_secs_f64()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Prints how long the test took since `t0` and fails it if that is `bound` or more.
pub fn check_duration(test: &str, server: &str, t0: Instant, bound: Duration) {
    let took = t0.elapsed().as_secs_f64();
    eprintln!("{test}: all checks passed with {server} in {took:.1} s");
    assert!(
        took < bound.as_secs_f64(),
        "the test took {took:.1} s (bound: {} s)",
        bound.as_secs()
    );
}

/// What a finished command left.
#[derive(Debug)]
pub struct CmdOutput {
    pub argv: Vec<String>,
    /// `None` when it was killed at its timeout.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// The output, or a panic that shows the command, its status and both streams.
    pub fn expect_ok(self, context: &str) -> CmdOutput {
        assert!(self.success(), "{context}: {self}");
        self
    }
}

impl std::fmt::Display for CmdOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = match self.status {
            Some(s) => s.to_string(),
            None => "killed at its timeout".to_string(),
        };
        write!(
            f,
            "`{}` ended with {status}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.argv.join(" "),
            self.stdout,
            self.stderr
        )
    }
}

/// The result of one HTTP request from "cli".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Http {
    /// An HTTP response with this status.
    Status(u16),
    /// No response: connection refused, unreachable or timed out (curl's exit code).
    NoResponse(i32),
}

struct Proc {
    label: String,
    child: Child,
    output: PathBuf,
}

static LAB_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The two namespaces, the temp dir and the processes started in them.
pub struct Lab {
    /// Name of the server namespace (`ip netns exec <srv> ...`).
    pub srv: String,
    /// Name of the client namespace.
    pub cli: String,
    /// The temp dir (0755, so nginx and the daemon can read it).
    pub dir: PathBuf,
    namespaces: Vec<String>,
    procs: Vec<Proc>,
    scratch: AtomicUsize,
    show_on_failure: Vec<PathBuf>,
}

impl Lab {
    /// Creates the temp dir and the network. `tag` goes into every name, with the PID and a counter.
    pub fn new(tag: &str) -> Lab {
        let n = LAB_COUNTER.fetch_add(1, Ordering::Relaxed);
        let id = format!("{tag}-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(format!("ferroban-{id}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .unwrap_or_else(|e| panic!("removing stale {}: {e}", dir.display()));
        }
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        set_mode(&dir, 0o755);
        let mut lab = Lab {
            srv: format!("fb-srv-{id}"),
            cli: format!("fb-cli-{id}"),
            dir,
            namespaces: Vec::new(),
            procs: Vec::new(),
            scratch: AtomicUsize::new(0),
            show_on_failure: Vec::new(),
        };
        lab.build_network();
        lab
    }

    fn build_network(&mut self) {
        let (srv, cli) = (self.srv.clone(), self.cli.clone());
        for ns in [&srv, &cli] {
            self.host(&["ip", "netns", "add", ns])
                .expect_ok("creating a network namespace");
            self.namespaces.push(ns.clone());
            self.host(&["ip", "-n", ns, "link", "set", "lo", "up"])
                .expect_ok("loopback up");
        }
        // Both ends are born inside the namespaces: no interface ever exists on the host.
        self.host(&[
            "ip", "-n", &srv, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
            "netns", &cli,
        ])
        .expect_ok("creating the veth pair");
        for (ns, dev, v4, v6) in [
            (&srv, "veth0", SRV_V4, SRV_V6),
            (&cli, "veth1", CLI_V4, CLI_V6),
        ] {
            // nodad: the IPv6 address is usable at once, no duplicate address detection to wait for.
            for (addr, extra) in [
                (format!("{v4}/24"), None),
                (format!("{v6}/64"), Some("nodad")),
            ] {
                let mut argv = vec!["ip", "-n", ns, "addr", "add", &addr, "dev", dev];
                argv.extend(extra);
                self.host(&argv).expect_ok("adding an address");
            }
            self.host(&["ip", "-n", ns, "link", "set", dev, "up"])
                .expect_ok("veth up");
        }
        let probe = |lab: &Lab, target: &str| {
            lab.exec(
                &cli,
                &["ping", "-c", "1", "-W", "1", target],
                Duration::from_secs(3),
            )
            .success()
        };
        if which("ping").is_some() {
            for target in [SRV_V4, SRV_V6] {
                wait_for(
                    &format!("ping {target} from the client namespace"),
                    Duration::from_secs(5),
                    || probe(self, target).then_some(()),
                );
            }
        }
    }

    /// A path inside the temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Prints the tail of this file if the test fails.
    pub fn show_on_failure(&mut self, path: PathBuf) {
        self.show_on_failure.push(path);
    }

    /// Runs `argv` on the host (only `ip` itself, to manage the namespaces), 10 s at most.
    fn host(&self, argv: &[&str]) -> CmdOutput {
        self.run_argv(
            argv.iter().map(|s| s.to_string()).collect(),
            &[],
            Duration::from_secs(10),
        )
    }

    /// Runs `argv` inside namespace `ns` and waits for it, killing it after `timeout`.
    pub fn exec(&self, ns: &str, argv: &[&str], timeout: Duration) -> CmdOutput {
        self.exec_env(ns, argv, &[], timeout)
    }

    /// [`Lab::exec`] with extra environment variables.
    pub fn exec_env(
        &self,
        ns: &str,
        argv: &[&str],
        env: &[(String, String)],
        timeout: Duration,
    ) -> CmdOutput {
        self.run_argv(in_netns(ns, argv), env, timeout)
    }

    fn run_argv(
        &self,
        argv: Vec<String>,
        env: &[(String, String)],
        timeout: Duration,
    ) -> CmdOutput {
        let n = self.scratch.fetch_add(1, Ordering::Relaxed);
        let out_path = self.dir.join(format!(".cmd-{n}.out"));
        let err_path = self.dir.join(format!(".cmd-{n}.err"));
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(create(&out_path))
            .stderr(create(&err_path));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", argv.join(" ")));
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if start.elapsed() >= timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("waiting for `{}`: {e}", argv.join(" ")),
            }
        };
        let stdout = read_lossy(&out_path);
        let stderr = read_lossy(&err_path);
        let _ = std::fs::remove_file(&out_path);
        let _ = std::fs::remove_file(&err_path);
        CmdOutput {
            argv,
            status,
            stdout,
            stderr,
        }
    }

    /// Starts `argv` inside `ns` in the background, stdout and stderr to `<dir>/<label>.out`.
    /// Returns its PID (the program's own: `ip netns exec` execs it).
    pub fn spawn(&mut self, ns: &str, label: &str, argv: &[&str], env: &[(String, String)]) -> u32 {
        let argv = in_netns(ns, argv);
        let output = self.dir.join(format!("{label}.out"));
        let out = File::options()
            .create(true)
            .append(true)
            .open(&output)
            .unwrap_or_else(|e| panic!("opening {}: {e}", output.display()));
        let err = out.try_clone().expect("dup output file");
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {label} (`{}`): {e}", argv.join(" ")));
        let pid = child.id();
        self.procs.push(Proc {
            label: label.to_string(),
            child,
            output,
        });
        pid
    }

    fn proc_mut(&mut self, pid: u32) -> &mut Proc {
        self.procs
            .iter_mut()
            .find(|p| p.child.id() == pid)
            .unwrap_or_else(|| panic!("PID {pid} was not started by this lab"))
    }

    /// The exit status if process `pid` (started by [`Lab::spawn`]) has ended.
    pub fn exited(&mut self, pid: u32) -> Option<ExitStatus> {
        self.proc_mut(pid).child.try_wait().expect("try_wait")
    }

    /// Waits up to `timeout` for process `pid` to end.
    pub fn wait_exit(&mut self, pid: u32, timeout: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(s) = self.exited(pid) {
                return Some(s);
            }
            if start.elapsed() >= timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILLs process `pid` (started by [`Lab::spawn`]) and reaps it.
    pub fn kill9(&mut self, pid: u32) -> ExitStatus {
        let p = self.proc_mut(pid);
        // Child::kill sends SIGKILL to the child, which is not reaped yet: it cannot hit another PID.
        let _ = p.child.kill();
        p.child.wait().expect("reaping a killed process")
    }

    /// What process `pid` wrote to stdout and stderr so far.
    pub fn output_of(&mut self, pid: u32) -> String {
        read_lossy(&self.proc_mut(pid).output.clone())
    }

    /// Starts Debian's nginx in "srv": `:80` logs to `access.log`, `:8080` to `access-8080.log`,
    /// both on IPv4 and IPv6, serving [`PAGE`] and 404 for anything else. Waits until "cli" gets the
    /// page over both families. Returns its PID.
    pub fn start_nginx(&mut self) -> u32 {
        let www = self.path("www");
        std::fs::create_dir_all(&www).expect("www dir");
        set_mode(&www, 0o755);
        std::fs::write(www.join(PAGE.trim_start_matches('/')), PAGE_BODY).expect("page");
        std::fs::write(self.path("access.log"), "").expect("access.log");
        std::fs::write(self.path("access-8080.log"), "").expect("access-8080.log");
        let d = self.dir.display();
        let servers = format!(
            "\x20 server {{ listen 80; listen [::]:80; root {d}/www; access_log {d}/access.log combined; }}\n\
             \x20 server {{ listen 8080; listen [::]:8080; root {d}/www; access_log {d}/access-8080.log combined; }}\n"
        );
        let ready: Vec<String> = [
            format!("http://{SRV_V4}{PAGE}"),
            format!("http://[{SRV_V6}]{PAGE}"),
            format!("http://{SRV_V4}:8080{PAGE}"),
            format!("http://[{SRV_V6}]:8080{PAGE}"),
        ]
        .into();
        self.start_nginx_with(&servers, &ready)
    }

    /// Starts Debian's nginx in "srv" with `http_directives` (server blocks, `include`s, ...) inside
    /// its `http` block, every temp and pid path in the lab's dir, and waits until each of
    /// `ready_urls` answers 200 to "cli". Returns its PID.
    pub fn start_nginx_with(&mut self, http_directives: &str, ready_urls: &[String]) -> u32 {
        let d = self.dir.display();
        // One process (master_process off), so killing its PID stops all of nginx; it stays
        // root and never forks workers under another user. Every path is in the temp dir.
        let conf = format!(
            "daemon off;\n\
             master_process off;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/nginx-error.log notice;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n\
             \x20 default_type text/plain;\n\
             \x20 client_body_temp_path {d}/nginx-tmp-body;\n\
             \x20 proxy_temp_path {d}/nginx-tmp-proxy;\n\
             \x20 fastcgi_temp_path {d}/nginx-tmp-fastcgi;\n\
             \x20 uwsgi_temp_path {d}/nginx-tmp-uwsgi;\n\
             \x20 scgi_temp_path {d}/nginx-tmp-scgi;\n\
             {http_directives}\
             }}\n"
        );
        let conf_path = self.path("nginx.conf");
        std::fs::write(&conf_path, conf).expect("nginx.conf");
        let err_log = self.path("nginx-error.log");
        self.show_on_failure(err_log.clone());
        let srv = self.srv.clone();
        let pid = self.spawn(
            &srv,
            "nginx",
            &[
                "nginx",
                "-e",
                &err_log.to_string_lossy(),
                "-c",
                &conf_path.to_string_lossy(),
            ],
            &[],
        );
        for url in ready_urls {
            let ready = Instant::now();
            loop {
                if let Some(s) = self.exited(pid) {
                    panic!("nginx exited with {s} at start:\n{}", self.output_of(pid));
                }
                if self.http(url) == Http::Status(200) {
                    break;
                }
                assert!(
                    ready.elapsed() < Duration::from_secs(10),
                    "nginx did not serve {url} within 10 s:\n{}",
                    read_lossy(&err_log)
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        pid
    }

    /// GET `url` from "cli" with curl (1 s to connect, 2 s in all).
    pub fn http(&self, url: &str) -> Http {
        self.curl(&[url])
    }

    /// Runs curl in "cli" with `args` (a URL and any options: `--interface`, `-H`, `--data`, ...),
    /// 1 s to connect, 2 s in all; the response's status, or why there was none.
    pub fn curl(&self, args: &[&str]) -> Http {
        let mut argv = vec![
            "curl",
            "-g",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--connect-timeout",
            "1",
            "-m",
            "2",
        ];
        argv.extend(args);
        let out = self.exec(&self.cli, &argv, Duration::from_secs(5));
        match out.status.and_then(|s| s.code()) {
            Some(0) => Http::Status(
                out.stdout
                    .trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("curl printed no status code: {out}")),
            ),
            Some(code) => Http::NoResponse(code),
            None => Http::NoResponse(-1),
        }
    }

    /// Adds `addr` (IPv4, in the lab's /24) as a further address of "cli"'s interface, for a
    /// second client: `curl --interface ADDR` sends from it.
    pub fn add_cli_v4(&self, addr: &str) {
        self.host(&[
            "ip",
            "-n",
            &self.cli,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "veth1",
        ])
        .expect_ok("adding a client address");
    }

    /// Runs `argv` on the host, not in a namespace, killing it after `timeout`: only for commands
    /// that leave the network alone (e.g. building a Python venv with pip).
    pub fn run_host(
        &self,
        argv: &[&str],
        env: &[(String, String)],
        timeout: Duration,
    ) -> CmdOutput {
        self.run_argv(argv.iter().map(|s| s.to_string()).collect(), env, timeout)
    }

    /// `nft -j list ruleset` inside "srv", parsed.
    pub fn nft_ruleset(&self) -> Nft {
        let out = self
            .exec(
                &self.srv,
                &["nft", "-j", "list", "ruleset"],
                Duration::from_secs(5),
            )
            .expect_ok("listing the nftables ruleset in the server namespace");
        let json: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("nft -j printed no JSON ({e}):\n{}", out.stdout));
        let items = json["nftables"].as_array().cloned().unwrap_or_default();
        Nft { items }
    }

    /// `nft list ruleset` inside "srv", as text (for messages).
    pub fn nft_text(&self) -> String {
        self.exec(
            &self.srv,
            &["nft", "-a", "list", "ruleset"],
            Duration::from_secs(5),
        )
        .stdout
    }
}

/// A parsed `nft -j list ruleset`.
pub struct Nft {
    items: Vec<serde_json::Value>,
}

impl Nft {
    /// Names of the tables, as `family name`.
    pub fn tables(&self) -> Vec<String> {
        self.items
            .iter()
            .filter_map(|i| i.get("table"))
            .map(|t| {
                format!(
                    "{} {}",
                    t["family"].as_str().unwrap_or("?"),
                    t["name"].as_str().unwrap_or("?")
                )
            })
            .collect()
    }

    /// The elements of set `name` (any table), as text; `None` when there is no such set.
    pub fn set_elements(&self, name: &str) -> Option<Vec<String>> {
        let set = self
            .items
            .iter()
            .filter_map(|i| i.get("set"))
            .find(|s| s["name"].as_str() == Some(name))?;
        let elems = set
            .get("elem")
            .and_then(|e| e.as_array())
            .cloned()
            .unwrap_or_default();
        Some(
            elems
                .iter()
                .map(|e| match e {
                    serde_json::Value::String(s) => s.clone(),
                    // An element with options (timeout, counter, ...) is {"elem": {"val": ...}}.
                    other => other["elem"]["val"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| other.to_string()),
                })
                .collect(),
        )
    }

    /// The `expires` (seconds left, as the kernel lists them) of the elements of set `name` that
    /// have a timeout.
    pub fn set_expires(&self, name: &str) -> Vec<u64> {
        self.items
            .iter()
            .filter_map(|i| i.get("set"))
            .filter(|s| s["name"].as_str() == Some(name))
            .filter_map(|s| s.get("elem").and_then(|e| e.as_array()))
            .flatten()
            .filter_map(|e| e["elem"]["expires"].as_u64())
            .collect()
    }

    /// The rules (any table/chain) that refer to set `name` (`@name`), as JSON text.
    pub fn rules_using_set(&self, name: &str) -> Vec<String> {
        let needle = format!("\"@{name}\"");
        self.items
            .iter()
            .filter_map(|i| i.get("rule"))
            .map(|r| r.to_string())
            .filter(|r| r.contains(&needle))
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for p in &self.procs {
                eprintln!("----- {} output ({}) -----", p.label, p.output.display());
                eprintln!("{}", tail(&read_lossy(&p.output), 40));
            }
            for f in &self.show_on_failure {
                eprintln!("----- {} (last lines) -----", f.display());
                eprintln!("{}", tail(&read_lossy(f), 60));
            }
            // Bounded, so that the panic message above stays in view (a test with 100,000 bans
            // would print 200,000 lines): set elements are left out of a long listing.
            let full = self.nft_text();
            let lines = full.lines().count();
            if lines <= 200 {
                eprintln!("----- nft ruleset in {} -----\n{full}", self.srv);
            } else {
                let terse = self
                    .exec(
                        &self.srv,
                        &["nft", "-a", "-t", "list", "ruleset"],
                        Duration::from_secs(5),
                    )
                    .stdout;
                eprintln!(
                    "----- nft ruleset in {} ({lines} lines; set elements left out) -----\n{terse}",
                    self.srv
                );
            }
        }
        // Only the processes this lab started, by their (unreaped) PIDs.
        for p in &mut self.procs {
            if let Ok(None) = p.child.try_wait() {
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
        }
        // Deleting a namespace drops its interfaces and its nftables ruleset with it.
        for ns in std::mem::take(&mut self.namespaces) {
            let out = self.host(&["ip", "netns", "del", &ns]);
            if !out.success() {
                eprintln!("cleanup: {out}");
            }
        }
        if std::env::var_os("FERROBAN_E2E_KEEP").is_some() {
            eprintln!("FERROBAN_E2E_KEEP: kept {}", self.dir.display());
        } else if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("cleanup: removing {}: {e}", self.dir.display());
        }
    }
}

fn in_netns(ns: &str, argv: &[&str]) -> Vec<String> {
    ["ip", "netns", "exec", ns]
        .iter()
        .chain(argv)
        .map(|s| s.to_string())
        .collect()
}

fn create(path: &Path) -> File {
    File::create(path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()))
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// The file's content (lossy UTF-8), empty if it cannot be read.
pub fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
