//! End to end for the FastAPI example (issue 5, deliverable 4), in network namespaces with a real
//! firewall: in "srv", Debian's nginx (the example's site `examples/fastapi/nginx.conf`, included
//! verbatim) proxies to uvicorn on 127.0.0.1:8000 running `examples/fastapi/app.py` with FastAPI
//! and uvicorn from PyPI (the command is the `ExecStart` of `examples/fastapi/fastapi-demo.service`);
//! beside them the daemon runs the example's jail file `jail.d/fastapi.conf` with the
//! `fastapi-auth` filter from `config/filter.d/` and `banaction = nftables[type=allports]`.
//! From "cli":
//!
//! 1. 198.51.100.7 fails to log in `maxretry - 1` times, logs in correctly 10 times, then fails
//!    until it is banned: the correct logins are not counted, the ban closes every port to it.
//! 2. 198.51.100.8 fails to log in with `X-Forwarded-For`, `X-Real-IP` and `Forwarded` headers
//!    naming 203.0.113.50, and with user names that try to inject that address into the log line:
//!    it is banned under its own address, and 203.0.113.50 never appears in the app's log, the
//!    daemon's log, `status` or the nftables set.
//! 3. 198.51.100.9 logs in correctly 10 times (with the spoofed header too), then fails once: it
//!    is not banned and still served, and `Total failed` equals the app's failed-login lines.
//!
//! The venv is built once and kept under `FERROBAN_FASTAPI_VENV` (default
//! `/tmp/ferroban-fastapi-venv`) with Debian's `/usr/bin/python3` (`python3 -m venv` needs
//! python3-venv, see .ci/run), rebuilt when requirements.txt or the interpreter changes.
//! `FERROBAN_FASTAPI_FILTER=FILE` tests another filter file in place of
//! `config/filter.d/fastapi-auth.conf`; `FERROBAN_E2E_SERVER=fail2ban` runs the reference
//! fail2ban-server 1.0.2 instead of `ferroban server` (see tests/netns/daemon.rs).

mod netns;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use netns::daemon::{Daemon, Flavour, lab_config};
use netns::{CLI_V4, Http, Lab, SRV_V4, check_duration, read_lossy, require_root, wait_for};

const JAIL: &str = "fastapi";
/// The nftables set of `nftables[type=allports]` for the jail.
const SET: &str = "addr-set-fastapi";
const SPOOFER: &str = "198.51.100.8";
const BYSTANDER: &str = "198.51.100.9";
/// The innocent address the spoofer names in its headers and user names.
const INNOCENT: &str = "203.0.113.50";
const DEMO_USER: &str = "demo";
const DEMO_PASSWORD: &str = "correct horse battery staple";
const CORRECT_LOGINS: usize = 10;

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/fastapi")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `key`'s value in the example's jail file (`key = value` lines).
fn jail_setting(key: &str) -> String {
    let path = example_dir().join("jail.d/fastapi.conf");
    read(&path)
        .lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| panic!("{} sets no {key}", path.display()))
}

/// The filter under test: `FERROBAN_FASTAPI_FILTER`, else the repository's own.
fn filter_file() -> PathBuf {
    let path = std::env::var_os("FERROBAN_FASTAPI_FILTER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/filter.d/fastapi-auth.conf")
        });
    assert!(
        path.is_file(),
        "the fastapi-auth filter {} does not exist (set FERROBAN_FASTAPI_FILTER to test another file)",
        path.display()
    );
    path
}

/// Debian's interpreter (what CI installs python3-venv for), else `python3` on PATH.
fn python() -> String {
    if Path::new("/usr/bin/python3").is_file() {
        "/usr/bin/python3".into()
    } else {
        "python3".into()
    }
}

/// The venv with the example's requirements: reused when its stamp (interpreter and
/// requirements.txt) matches, else rebuilt from PyPI. Serialised by an flock beside it.
fn venv(lab: &Lab) -> PathBuf {
    let dir = PathBuf::from(
        std::env::var("FERROBAN_FASTAPI_VENV")
            .unwrap_or_else(|_| "/tmp/ferroban-fastapi-venv".into()),
    );
    let lock_path = dir.with_extension("lock");
    let lock = std::fs::File::create(&lock_path)
        .unwrap_or_else(|e| panic!("creating {}: {e}", lock_path.display()));
    // SAFETY: flock on a file descriptor this function owns; released when `lock` is dropped.
    let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock {}", lock_path.display());

    let python = python();
    let version = lab
        .run_host(
            &[&python, "-c", "import sys; print(sys.version)"],
            &[],
            Duration::from_secs(20),
        )
        .expect_ok("asking the Python interpreter its version");
    let requirements = example_dir().join("requirements.txt");
    let stamp = format!(
        "{python} {}\n{}",
        version.stdout.trim(),
        read(&requirements)
    );
    let stamp_path = dir.join("ferroban-stamp");
    if read_lossy(&stamp_path) == stamp && dir.join("bin/uvicorn").is_file() {
        return dir;
    }
    let t = Instant::now();
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .unwrap_or_else(|e| panic!("removing the stale venv {}: {e}", dir.display()));
    }
    let dir_s = dir.display().to_string();
    lab.run_host(
        &[&python, "-m", "venv", &dir_s],
        &[],
        Duration::from_secs(60),
    )
    .expect_ok(&format!(
        "creating the venv {dir_s} (Debian: apt-get install python3-venv)"
    ));
    let pip = dir.join("bin/pip").display().to_string();
    let req = requirements.display().to_string();
    lab.run_host(
        &[
            &pip,
            "install",
            "--disable-pip-version-check",
            "-q",
            "-r",
            &req,
        ],
        &[],
        Duration::from_secs(300),
    )
    .expect_ok(&format!("pip install -r {req} into {dir_s}"));
    std::fs::write(&stamp_path, stamp)
        .unwrap_or_else(|e| panic!("writing {}: {e}", stamp_path.display()));
    eprintln!(
        "e2e-fastapi: built the venv {dir_s} in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    dir
}

/// The unit file's `ExecStart`, with the install paths (`/opt/fastapi-demo` and its `venv`)
/// replaced by the example directory and the test's venv.
fn uvicorn_argv(venv: &Path) -> Vec<String> {
    let unit = example_dir().join("fastapi-demo.service");
    let text = read(&unit);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap_or_else(|| panic!("{} has no ExecStart= line", unit.display()));
    let (venv, app) = (
        venv.display().to_string(),
        example_dir().display().to_string(),
    );
    line.split_whitespace()
        .map(|w| {
            w.replace("/opt/fastapi-demo/venv", &venv)
                .replace("/opt/fastapi-demo", &app)
        })
        .collect()
}

/// Starts uvicorn in "srv" and waits until it answers on 127.0.0.1:8000.
fn start_app(lab: &mut Lab, venv: &Path) {
    let argv = uvicorn_argv(venv);
    let env: Vec<(String, String)> = [
        ("FASTAPI_DEMO_USER", DEMO_USER.to_string()),
        ("FASTAPI_DEMO_PASSWORD", DEMO_PASSWORD.to_string()),
        (
            "FASTAPI_AUTH_LOG",
            lab.path("auth.log").display().to_string(),
        ),
        // No __pycache__ in the repository's examples/ directory.
        ("PYTHONDONTWRITEBYTECODE", "1".to_string()),
    ]
    .map(|(k, v)| (k.to_string(), v))
    .into();
    let argv_ref: Vec<&str> = argv.iter().map(String::as_str).collect();
    let srv = lab.srv.clone();
    let pid = lab.spawn(&srv, "uvicorn", &argv_ref, &env);
    let start = Instant::now();
    loop {
        if let Some(s) = lab.exited(pid) {
            panic!(
                "uvicorn (`{}`) exited with {s} at start:\n{}",
                argv.join(" "),
                lab.output_of(pid)
            );
        }
        let probe = lab.exec(
            &srv,
            &["curl", "-s", "-m", "2", "http://127.0.0.1:8000/"],
            Duration::from_secs(5),
        );
        if probe.success() && probe.stdout.contains("ok") {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "uvicorn did not answer on 127.0.0.1:8000 within 30 s:\n{}",
            lab.output_of(pid)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The reference configuration with the example's jail file and the filter under test; the
/// user's `jail.local` only points the jail at the lab's log and firewall.
fn write_config(lab: &Lab) -> PathBuf {
    let cfg = lab_config(lab);
    let d = lab.dir.display();
    let filter = filter_file();
    std::fs::copy(&filter, cfg.join("filter.d/fastapi-auth.conf"))
        .unwrap_or_else(|e| panic!("copying {}: {e}", filter.display()));
    let jail_file = example_dir().join("jail.d/fastapi.conf");
    std::fs::copy(&jail_file, cfg.join("jail.d/fastapi.conf"))
        .unwrap_or_else(|e| panic!("copying {}: {e}", jail_file.display()));
    // [sshd]: Debian's jail.d/defaults-debian.conf enables it, and this machine has no sshd log.
    std::fs::write(
        cfg.join("jail.local"),
        format!(
            "[sshd]\nenabled = false\n\n\
             [{JAIL}]\nlogpath = {d}/auth.log\nbanaction = nftables[type=allports]\n"
        ),
    )
    .expect("jail.local");
    cfg
}

#[derive(Clone, Copy)]
enum Body {
    Form,
    Json,
}

/// POSTs a login to nginx from `src` ("cli"'s address to send from), with extra `headers`.
fn login(lab: &Lab, src: &str, user: &str, password: &str, body: Body, headers: &[&str]) -> Http {
    let url = format!("http://{SRV_V4}/login");
    let (user_f, pass_f) = (format!("user={user}"), format!("password={password}"));
    let json = serde_json::json!({ "user": user, "password": password }).to_string();
    let mut args = vec!["--interface", src];
    for h in headers {
        args.extend(["-H", h]);
    }
    match body {
        Body::Form => args.extend(["--data-urlencode", &user_f, "--data-urlencode", &pass_f]),
        Body::Json => args.extend([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &json,
        ]),
    }
    args.push(&url);
    lab.curl(&args)
}

/// GET / through nginx from `src`.
fn home(lab: &Lab, src: &str) -> Http {
    lab.curl(&["--interface", src, &format!("http://{SRV_V4}/")])
}

/// Sends failed logins from `src` (user names and headers taken in turn from `users` and
/// `headers`) until they stop getting through: the first `maxretry` must be answered 401, then the
/// ban must come within 15 s. Returns how many more got through before it did.
fn fail_until_banned(
    lab: &Lab,
    src: &str,
    maxretry: usize,
    users: &[&str],
    headers: &[&[&str]],
) -> usize {
    let start = Instant::now();
    for i in 0.. {
        let user = users[i % users.len()];
        let hdrs = headers[i % headers.len()];
        let body = if i % 2 == 0 { Body::Form } else { Body::Json };
        let password = format!("wrong-{i}");
        match login(lab, src, user, &password, body, hdrs) {
            Http::Status(401) => {}
            Http::NoResponse(_) if i >= maxretry => return i - maxretry,
            other => panic!(
                "failed login {} of {src} (user {user:?}, headers {hdrs:?}): {other:?}; the first \
                 {maxretry} must be answered 401",
                i + 1
            ),
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{src}: still answered after {} failed logins and 15 s: no ban",
            i + 1
        );
    }
    unreachable!()
}

/// What the app wrote: failed and successful logins per address. Every line must have the
/// documented format, with an escaped user name that has no quote, space or backslash.
#[derive(Debug, Default)]
struct AuthLog {
    failed: BTreeMap<String, usize>,
    ok: BTreeMap<String, usize>,
    users: Vec<String>,
}

fn parse_auth_log(text: &str) -> AuthLog {
    let mut log = AuthLog::default();
    for line in text.lines() {
        let bad = |why: &str| -> ! { panic!("auth.log line {line:?}: {why}") };
        let (stamp, rest) = line
            .split_at_checked(23)
            .unwrap_or_else(|| bad("too short"));
        let shape_ok = stamp.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b' ',
            13 | 16 => b == b':',
            19 => b == b',',
            _ => b.is_ascii_digit(),
        });
        if !shape_ok {
            bad("no `YYYY-MM-DD HH:MM:SS,mmm` time stamp");
        }
        let (map, rest) = if let Some(r) =
            rest.strip_prefix(" WARNING fastapi-auth: failed login for user '")
        {
            (&mut log.failed, r)
        } else if let Some(r) = rest.strip_prefix(" INFO fastapi-auth: successful login for user '")
        {
            (&mut log.ok, r)
        } else {
            bad("not a failed/successful login line")
        };
        let (user, addr) = rest
            .split_once("' from ")
            .unwrap_or_else(|| bad("no `' from ADDRESS`"));
        if !user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@+._~%-".contains(&b))
        {
            bad("the user name is not percent-encoded");
        }
        if addr.parse::<IpAddr>().is_err() {
            bad("the address is not an IP address");
        }
        *map.entry(addr.to_string()).or_default() += 1;
        log.users.push(user.to_string());
    }
    log
}

/// The daemon's `Found ADDR` lines for the jail.
fn found(daemon: &Daemon, since: u64, addr: &str) -> usize {
    daemon
        .log_since(since)
        .matches(&format!("[{JAIL}] Found {addr} "))
        .count()
}

/// Waits until the daemon has counted (`Found`) exactly the failed logins the app logged for
/// `addr`, then checks it counts no more (a successful login counted late).
fn wait_counted(lab: &Lab, daemon: &Daemon, since: u64, addr: &str) {
    let expected = || {
        parse_auth_log(&read_lossy(&lab.path("auth.log")))
            .failed
            .get(addr)
            .copied()
            .unwrap_or(0)
    };
    wait_for(
        &format!("the daemon to count the failed logins of {addr} that auth.log has"),
        Duration::from_secs(10),
        || (found(daemon, since, addr) >= expected()).then_some(()),
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        found(daemon, since, addr),
        expected(),
        "the daemon's `[{JAIL}] Found {addr}` lines vs the failed logins auth.log has for {addr} \
         (successful logins must not count)"
    );
}

/// `Total failed` of `status fastapi`.
fn total_failed(lab: &Lab, daemon: &Daemon) -> usize {
    let out = daemon
        .client(lab, &["status", JAIL])
        .expect_ok("`client status fastapi`");
    out.stdout
        .lines()
        .find_map(|l| l.split_once("Total failed:"))
        .and_then(|(_, n)| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `Total failed:` number in `status {JAIL}`:\n{out}"))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn fastapi_brute_force_and_spoofed_forwarded_for_are_banned_under_the_real_address() {
    require_root(&["ip", "nft", "nginx", "curl"]);
    let flavour = Flavour::from_env(env!("CARGO_BIN_EXE_ferroban"));
    eprintln!("e2e-fastapi: server under test: {}", flavour.name());
    let maxretry: usize = jail_setting("maxretry")
        .parse()
        .expect("maxretry of the example jail is a number");

    let mut lab = Lab::new("fapi");
    let venv = venv(&lab);
    let t0 = Instant::now();
    lab.add_cli_v4(SPOOFER);
    lab.add_cli_v4(BYSTANDER);
    let auth_log = lab.path("auth.log");
    lab.show_on_failure(auth_log.clone());
    start_app(&mut lab, &venv);
    let d = lab.dir.display().to_string();
    let site = example_dir().join("nginx.conf");
    lab.start_nginx_with(
        &format!(
            "\x20 access_log {d}/access.log combined;\n\x20 include {};\n",
            site.display()
        ),
        &[format!("http://{SRV_V4}/")],
    );
    let cfg = write_config(&lab);
    let log = lab.path("fail2ban.log");
    let mut daemon = Daemon::new(&mut lab, flavour, cfg, log);
    let since = daemon.start(&mut lab, &[JAIL]);
    eprintln!(
        "e2e-fastapi: app, nginx and {} ready after {:.1} s",
        daemon.flavour.name(),
        t0.elapsed().as_secs_f64()
    );

    // 1. Brute force from CLI_V4, with correct logins in between that must not count.
    for i in 1..maxretry {
        let body = if i % 2 == 0 { Body::Form } else { Body::Json };
        assert_eq!(
            login(&lab, CLI_V4, "admin", &format!("guess-{i}"), body, &[]),
            Http::Status(401),
            "failed login {i} of {CLI_V4}"
        );
    }
    for i in 0..CORRECT_LOGINS {
        let body = if i % 2 == 0 { Body::Form } else { Body::Json };
        assert_eq!(
            login(&lab, CLI_V4, DEMO_USER, DEMO_PASSWORD, body, &[]),
            Http::Status(200),
            "correct login {} of {CLI_V4} after {} failed ones (correct logins must not count)",
            i + 1,
            maxretry - 1
        );
    }
    // The next failure is the maxretry-th: it gets through, then the ban.
    let extra = fail_until_banned(&lab, CLI_V4, 1, &["admin"], &[&[]]);
    eprintln!(
        "e2e-fastapi: {CLI_V4}: {} failed and {CORRECT_LOGINS} correct logins, then failed ones until \
         banned ({extra} more than maxretry got through before the ban)",
        maxretry - 1
    );
    assert!(
        matches!(home(&lab, CLI_V4), Http::NoResponse(_)),
        "allports: {CLI_V4} gets no answer at all once banned"
    );
    wait_counted(&lab, &daemon, since, CLI_V4);
    assert_eq!(daemon.banned(&lab, JAIL), vec![CLI_V4], "`status {JAIL}`");
    let nft = lab.nft_ruleset();
    assert_eq!(
        nft.set_elements(SET),
        Some(vec![CLI_V4.to_string()]),
        "nftables set {SET}:\n{}",
        lab.nft_text()
    );
    let rules = nft.rules_using_set(SET);
    assert!(
        rules.len() == 1 && !rules[0].contains("dport"),
        "type=allports: one rule, matching no port, uses @{SET}: {rules:?}"
    );

    // 2. A client naming an innocent address in every header a proxy might trust, and in user
    //    names crafted to end the log line with it.
    let xff = format!("X-Forwarded-For: {INNOCENT}");
    let xff_via_proxy = format!("X-Forwarded-For: {INNOCENT}, 127.0.0.1");
    let xff_twice = format!("X-Forwarded-For: {INNOCENT}, {INNOCENT}");
    let real_ip = format!("X-Real-IP: {INNOCENT}");
    let forwarded = format!("Forwarded: for={INNOCENT}");
    let headers: [&[&str]; 4] = [
        &[&xff, &real_ip],
        &[&xff_via_proxy, &forwarded],
        &[&xff_twice, &xff],
        &["X-Forwarded-For: 127.0.0.1", &real_ip],
    ];
    let injected_quote = format!("admin' from {INNOCENT}");
    let injected_line = format!(
        "x\n2026-11-25 14:00:00,123 WARNING fastapi-auth: failed login for user 'y' from {INNOCENT}"
    );
    let injected_escape = format!("root\\' from {INNOCENT} '");
    let users = [
        injected_quote.as_str(),
        injected_line.as_str(),
        injected_escape.as_str(),
        "root",
    ];
    let extra = fail_until_banned(&lab, SPOOFER, maxretry, &users, &headers);
    eprintln!("e2e-fastapi: spoofer {SPOOFER} banned ({extra} more got through before the ban)");
    assert!(
        matches!(home(&lab, SPOOFER), Http::NoResponse(_)),
        "{SPOOFER} gets no answer once banned"
    );
    wait_counted(&lab, &daemon, since, SPOOFER);

    // 3. Correct logins (spoofed header and all) from a third address: never counted.
    for i in 0..CORRECT_LOGINS {
        let body = if i % 2 == 0 { Body::Form } else { Body::Json };
        assert_eq!(
            login(&lab, BYSTANDER, DEMO_USER, DEMO_PASSWORD, body, &[&xff]),
            Http::Status(200),
            "correct login {} of {BYSTANDER}",
            i + 1
        );
    }
    // One failure after them: once it is counted, the lines before it were read.
    assert_eq!(
        login(&lab, BYSTANDER, "demo", "typo", Body::Form, &[]),
        Http::Status(401),
        "one failed login of {BYSTANDER}"
    );
    wait_counted(&lab, &daemon, since, BYSTANDER);
    assert_eq!(
        home(&lab, BYSTANDER),
        Http::Status(200),
        "{BYSTANDER} is still served"
    );

    // The app's log: well-formed lines, every address a real client's, the injections escaped.
    let app_log = parse_auth_log(&read(&auth_log));
    let addrs: Vec<&String> = app_log.failed.keys().chain(app_log.ok.keys()).collect();
    assert!(
        addrs
            .iter()
            .all(|a| [CLI_V4, SPOOFER, BYSTANDER].contains(&a.as_str())),
        "auth.log names an address that sent nothing: {app_log:?}"
    );
    assert_eq!(
        app_log.ok.get(CLI_V4).copied().unwrap_or(0),
        CORRECT_LOGINS,
        "successful logins of {CLI_V4} in auth.log: {app_log:?}"
    );
    assert_eq!(
        app_log.ok.get(BYSTANDER).copied().unwrap_or(0),
        CORRECT_LOGINS,
        "successful logins of {BYSTANDER} in auth.log: {app_log:?}"
    );
    assert!(
        app_log
            .users
            .contains(&format!("admin%27%20from%20{INNOCENT}")),
        "the injected user name {injected_quote:?} is in auth.log, percent-encoded: {:?}",
        app_log.users
    );
    let total: usize = app_log.failed.values().sum();
    assert_eq!(
        total_failed(&lab, &daemon),
        total,
        "`Total failed` of `status {JAIL}` vs the failed-login lines in auth.log ({:?})",
        app_log.failed
    );

    // Banned: the two attackers under their own addresses; never the innocent address.
    let banned = sorted(daemon.banned(&lab, JAIL));
    assert_eq!(
        banned,
        vec![CLI_V4, SPOOFER],
        "`status {JAIL}` bans the brute-forcer and the spoofer (and nobody else)"
    );
    let set = sorted(lab.nft_ruleset().set_elements(SET).unwrap_or_default());
    assert_eq!(
        set,
        vec![CLI_V4, SPOOFER],
        "nftables set {SET}:\n{}",
        lab.nft_text()
    );
    let daemon_log = daemon.log_since(since);
    assert!(
        !daemon_log.contains(INNOCENT),
        "the daemon's log never names {INNOCENT}:\n{daemon_log}"
    );
    assert!(
        !lab.nft_text().contains(INNOCENT),
        "no nftables element or rule names {INNOCENT}"
    );
    let banned_anywhere = daemon
        .client(&lab, &["banned", INNOCENT])
        .expect_ok("`client banned 203.0.113.50`");
    assert!(
        !banned_anywhere.stdout.contains(JAIL),
        "`banned {INNOCENT}` lists no jail: {banned_anywhere}"
    );

    daemon.stop(&mut lab);
    // The venv is not counted: built once, then reused.
    check_duration(
        "e2e-fastapi",
        daemon.flavour.name(),
        t0,
        Duration::from_secs(110),
    );
}
