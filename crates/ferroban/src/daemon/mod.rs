//! The daemon (`ferroban server`, `fail2ban-server`): jails, sources, bans, actions and the
//! control socket wired together.
//!
//! - [`jail`]: one jail's synchronous state machine (lines in, ban/unban orders out).
//! - [`ignore`]: `ignoreip`, `ignoreself`, `ignorecommand`.
//! - [`server`]: the tasks (jails, unban timer, control, signals) on a current-thread runtime.
//! - [`jailtask`]: one task per jail, the only owner of the jail's state (messages in and out).
//! - [`storethread`]: the ban store's own thread, the only code that touches the database.
//! - [`actions`]: the per-jail action task.
//! - [`dispatch`]: the control commands.
//! - [`log`]: fail2ban's log line format and targets.

pub mod actions;
pub mod dispatch;
pub mod fleet;
/// The jail engine's ignore rules (crates/engine).
pub use ferroban_engine::ignore;
/// The jail engine's jail state machine (crates/engine).
pub use ferroban_engine::jail;
pub mod jailtask;
pub mod journal;
pub(crate) mod lean;
pub mod log;
pub mod server;
pub mod shared;
pub mod storethread;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, mpsc};

use crate::clock::Clock;
use crate::flog;
use server::{Settings, Shared, State};

/// The version string fail2ban clients see (`version`).
pub const FAIL2BAN_VERSION: &str = "1.0.2";

/// fail2ban-server's command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ferroban server",
    about = "The ferroban daemon (fail2ban-server compatible).",
    disable_version_flag = true
)]
pub struct ServerArgs {
    /// Configuration directory, layered over the embedded defaults (default: /etc/fail2ban if it
    /// exists, else /etc/ferroban if it exists, else the embedded defaults alone).
    #[arg(short = 'c', long = "conf", value_name = "DIR")]
    pub conf: Option<PathBuf>,
    /// Control socket path (default: `socket` of fail2ban.conf).
    #[arg(short = 's', value_name = "FILE")]
    pub socket: Option<PathBuf>,
    /// Pid file path (default: `pidfile` of fail2ban.conf).
    #[arg(short = 'p', value_name = "FILE")]
    pub pidfile: Option<PathBuf>,
    /// Process name (accepted for compatibility).
    #[arg(long = "pname", value_name = "NAME")]
    pub pname: Option<String>,
    /// Log level (default: `loglevel` of fail2ban.conf).
    #[arg(long = "loglevel", value_name = "LEVEL")]
    pub loglevel: Option<String>,
    /// Log target: a file, STDOUT, STDERR, SYSLOG, SYSTEMD-JOURNAL.
    #[arg(long = "logtarget", value_name = "TARGET")]
    pub logtarget: Option<String>,
    /// Syslog socket (accepted for compatibility; the local /dev/log is used).
    #[arg(long = "syslogsocket", value_name = "SOCKET")]
    pub syslogsocket: Option<String>,
    /// Stay in the foreground.
    #[arg(short = 'f')]
    pub foreground: bool,
    /// Go to the background (the default).
    #[arg(short = 'b')]
    pub background: bool,
    /// Remove the socket file of a server that is not running any more, and start.
    #[arg(short = 'x')]
    pub force: bool,
    /// Test the configuration, list the jails and exit (non-zero on errors).
    #[arg(short = 't', long = "test")]
    pub test: bool,
    /// Print the version and exit.
    #[arg(short = 'V', long = "version")]
    pub version: bool,
    /// Serve Prometheus metrics at ADDR (`127.0.0.1:9191`, or a Unix socket path); overrides
    /// `metrics` of fail2ban.local `[Definition]` (default: off).
    #[arg(long = "metrics", value_name = "ADDR")]
    pub metrics: Option<String>,
    /// Also emit the fail2ban exporter's metric names (f2b_up, f2b_jail_banned_current, ...).
    #[arg(long = "metrics-compat")]
    pub metrics_compat: bool,
    /// Convert a duration (`1d12h`) to seconds and exit.
    #[arg(long = "str2sec", value_name = "DURATION")]
    pub str2sec: Option<String>,
}

/// Runs `ferroban server ARGS`. Returns the exit code.
pub fn run(args: &[String]) -> anyhow::Result<u8> {
    let mut argv = vec!["ferroban server".to_string()];
    argv.extend(args.iter().cloned());
    let a = match ServerArgs::try_parse_from(&argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return Ok(if e.use_stderr() { 255 } else { 0 });
        }
    };
    if a.version {
        println!(
            "ferroban v{} (fail2ban v{FAIL2BAN_VERSION} compatible)",
            env!("CARGO_PKG_VERSION")
        );
        return Ok(0);
    }
    if let Some(d) = &a.str2sec {
        let s = ferroban_config::parse_duration(d)?;
        println!("{}", fmt_secs(s));
        return Ok(0);
    }
    if let Some(d) = &a.conf
        && !d.is_dir()
    {
        anyhow::bail!("configuration directory {} does not exist", d.display());
    }
    let conf = crate::defaults::locate(a.conf.as_deref());
    let global =
        ferroban_config::read_global_with(&conf.loader()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let dbfile = match global.dbfile.trim() {
        "" | "None" | "none" | ":memory:" => None,
        f => Some(PathBuf::from(f)),
    };
    let settings = Settings {
        conf,
        socket: a.socket.clone().unwrap_or(global.socket.clone()),
        pidfile: a.pidfile.clone().unwrap_or(global.pidfile.clone()),
        dbfile,
        dbpurgeage: global.dbpurgeage,
        dbmaxmatches: global.dbmaxmatches,
        metrics: metrics_addr(&a, &global)?,
        metrics_compat: a.metrics_compat || global_flag(&global, "metrics_compat")?,
    };
    let loglevel = a
        .loglevel
        .clone()
        .unwrap_or_else(|| match &global.loglevel {
            ferroban_config::LogLevel::Named(n) => n.clone(),
            ferroban_config::LogLevel::Numeric(n) => n.to_string(),
        });
    let logtarget = a.logtarget.clone().unwrap_or(global.logtarget.clone());
    if a.test {
        return Ok(test_config(&settings));
    }
    if !a.force && socket_alive(&settings.socket) {
        eprintln!(
            "ERROR  Server already running: {} answers (use -x to force)",
            settings.socket.display()
        );
        return Ok(255);
    }
    if a.force {
        let _ = std::fs::remove_file(&settings.socket);
    }
    let ready = if a.foreground {
        None
    } else {
        Some(daemonize()?)
    };
    log::init(&logtarget, &loglevel)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let code = local.block_on(&rt, serve(settings, ready));
    Ok(code)
}

/// `--metrics`, else `metrics` of `[Definition]` (empty, `off`, `none`, `false`: off).
fn metrics_addr(
    a: &ServerArgs,
    g: &ferroban_config::GlobalConfig,
) -> anyhow::Result<Option<crate::metrics::http::MetricsAddr>> {
    let from_conf = || {
        g.values
            .iter()
            .rev()
            .find(|(k, _)| k == "metrics")
            .map(|(_, v)| v.clone())
    };
    let Some(v) = a.metrics.clone().or_else(from_conf) else {
        return Ok(None);
    };
    match v.trim().to_ascii_lowercase().as_str() {
        "" | "off" | "none" | "false" | "no" => Ok(None),
        _ => v
            .parse()
            .map(Some)
            .map_err(|e: String| anyhow::anyhow!("{e}")),
    }
}

/// A yes/no option of `[Definition]` (`metrics_compat = true`).
fn global_flag(g: &ferroban_config::GlobalConfig, key: &str) -> anyhow::Result<bool> {
    match g.values.iter().rev().find(|(k, _)| k == key) {
        None => Ok(false),
        Some((_, v)) => match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "" | "0" | "false" | "no" | "off" => Ok(false),
            other => anyhow::bail!("{key} = {other:?}: expected true or false"),
        },
    }
}

/// Seconds as fail2ban prints them (`600`, `0.5`).
pub fn fmt_secs(s: f64) -> String {
    if s.fract() == 0.0 && s.abs() < 1e15 {
        format!("{}", s as i64)
    } else {
        format!("{s}")
    }
}

fn socket_alive(path: &std::path::Path) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

/// `-t`: reads every jail, prints each active one with its filter, log paths and actions, and
/// every error. Returns 0 when everything loads.
fn test_config(s: &Settings) -> u8 {
    println!("Configuration: {}", s.conf.describe());
    let cfg = match server::load_jails(&s.conf) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ERROR  {e}");
            return 255;
        }
    };
    let mut bad = 0;
    for e in &cfg.errors {
        eprintln!("ERROR  jail '{}': {}", e.jail, e.error);
        bad += 1;
    }
    for def in &cfg.jails {
        let jail = jail::Jail::new(def.clone());
        let source = server::source_of(def);
        let acts = actions::build(def);
        let filter = def
            .filter
            .as_ref()
            .map_or("-".to_string(), |f| f.name.clone());
        match (&jail, &source, &acts) {
            (Ok(_), Ok(_), Ok(a)) => {
                let names: Vec<&str> = a.iter().map(|x| x.name()).collect();
                let paths: Vec<&str> = def.logpath.iter().map(|l| l.path.as_str()).collect();
                println!(
                    "OK     jail '{}': filter {filter}, logpath {}, actions {}",
                    def.name,
                    paths.join(" "),
                    names.join(" ")
                );
                for p in &paths {
                    if !p.contains(['*', '?', '[']) && !std::path::Path::new(p).exists() {
                        println!(
                            "WARN   jail '{}': log file {p} does not exist yet (the jail waits for it)",
                            def.name
                        );
                    }
                }
            }
            _ => {
                bad += 1;
                if let Err(e) = jail {
                    eprintln!("ERROR  {e}");
                }
                if let Err(e) = source {
                    eprintln!("ERROR  {e}");
                }
                if let Err(e) = acts {
                    eprintln!("ERROR  {e}");
                }
            }
        }
    }
    if bad == 0 {
        println!("OK: configuration test is successful");
        0
    } else {
        eprintln!("ERROR: {bad} jail(s) failed the configuration test");
        255
    }
}

/// Forks into the background: the parent waits until the child says it is ready (or failed),
/// then exits with that status. Returns, in the child, the pipe to report readiness on.
fn daemonize() -> anyhow::Result<std::fs::File> {
    let mut fds = [0i32; 2];
    // SAFETY: plain POSIX calls before any thread exists (the runtime is built afterwards).
    unsafe {
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            anyhow::bail!("pipe: {}", std::io::Error::last_os_error());
        }
        match libc::fork() {
            -1 => anyhow::bail!("fork: {}", std::io::Error::last_os_error()),
            0 => {
                libc::close(fds[0]);
                libc::setsid();
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                if null >= 0 {
                    libc::dup2(null, 0);
                    libc::dup2(null, 1);
                    libc::dup2(null, 2);
                    if null > 2 {
                        libc::close(null);
                    }
                }
                use std::os::fd::FromRawFd;
                Ok(std::fs::File::from_raw_fd(fds[1]))
            }
            _ => {
                libc::close(fds[1]);
                use std::io::Read;
                use std::os::fd::FromRawFd;
                let mut r = std::fs::File::from_raw_fd(fds[0]);
                let mut buf = [0u8; 1];
                let code = match r.read(&mut buf) {
                    Ok(1) => buf[0] as i32,
                    _ => 255,
                };
                if code != 0 {
                    eprintln!("ERROR  the server failed to start; see its log");
                }
                std::process::exit(code);
            }
        }
    }
}

/// Starts every jail and serves until stopped.
async fn serve(settings: Settings, ready: Option<std::fs::File>) -> u8 {
    let clock: Arc<dyn Clock> = crate::clock::daemon_clock();
    flog!(
        Info,
        "server",
        "--------------------------------------------------"
    );
    flog!(
        Info,
        "server",
        "Starting ferroban v{} (fail2ban v{FAIL2BAN_VERSION} compatible)",
        env!("CARGO_PKG_VERSION")
    );
    let listener = match crate::control::server::bind(&settings.socket).await {
        Ok(l) => l,
        Err(e) => {
            flog!(
                Error,
                "server",
                "Cannot bind the control socket {}: {e}",
                settings.socket.display()
            );
            report_ready(ready, 255);
            return 255;
        }
    };
    write_pidfile(&settings.pidfile);
    let store = server::open_store(&settings, clock.now());
    // Metrics: totals from the database first (the jails' series start from them), then the
    // thread that serves /metrics and writes the totals back.
    let metrics = crate::metrics::Metrics::new(crate::metrics::MetricsOptions {
        compat: settings.metrics_compat,
    });
    let totals = settings
        .dbfile
        .as_ref()
        .filter(|_| store.is_some())
        .and_then(|db| {
            crate::metrics::http::Totals::open(db, &metrics)
                .map_err(|e| flog!(Error, "database", "{e}; totals start from zero"))
                .ok()
        });
    let now_fn: Arc<dyn Fn() -> f64 + Send + Sync> = {
        let c = clock.clone();
        Arc::new(move || c.now())
    };
    let metrics_thread = match crate::metrics::http::MetricsThread::start(
        metrics.clone(),
        settings.metrics.clone(),
        totals.clone(),
        now_fn,
    ) {
        Ok(t) => {
            if let Some(a) = &settings.metrics {
                flog!(Info, "server", "Metrics at {a}");
            }
            Some(t)
        }
        Err(e) => {
            flog!(Error, "server", "{e}");
            report_ready(ready, 255);
            return 255;
        }
    };
    fleet::init(&settings, clock.clone());
    let state: Shared = Rc::new(RefCell::new(State {
        settings: settings.clone(),
        jails: Vec::new(),
        store: store.map(storethread::StoreHandle::spawn),
        clock,
        timer: Rc::new(Notify::new()),
        shutdown: Rc::new(Notify::new()),
        reload: Rc::new(Notify::new()),
        reload_only: Vec::new(),
        broken: BTreeMap::new(),
        metrics: metrics.clone(),
        reloading: false,
        readers: Vec::new(),
        starting: Default::default(),
    }));
    // The control socket's tasks are queued before the jails' tasks (a request is served as
    // soon as it is read, ahead of jails woken at the same time); they first run once
    // `start_all` returned: building the jails does not yield, so no request sees some of them.
    let (tx, rx) = mpsc::channel(64);
    tokio::task::spawn_local(crate::control::server::serve(listener, tx));
    tokio::task::spawn_local(server::control_task(state.clone(), rx));
    // Signals that arrive while the jails are built wait for the loop below (a SIGHUP then
    // reloads, a SIGTERM stops) instead of ending the process by their default action.
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    let mut hup = signal(SignalKind::hangup()).ok();
    let mut usr1 = signal(SignalKind::user_defined1()).ok();
    start_all(&state, None);
    // Publications of a previous run go once the jails' restores ran (of other jails: now).
    fleet::started(&state);
    tokio::task::spawn_local(fleet::apply_task(state.clone()));
    tokio::task::spawn_local(server::timer_task(state.clone()));
    tokio::task::spawn_local(server::store_retry_task(state.clone()));
    tokio::task::spawn_local(purge_task(state.clone()));
    report_ready(ready, 0);
    // The start-up code need not stay mapped: released once the tasks queued above had their
    // first turn (the jails' first reads, their actions' first commands begun: code the first
    // answer would otherwise find mapped again), and again once every jail has started (its
    // actions too). The first request is usually read after this release: the socket's
    // readiness comes with the reactor's next poll, after the turn.
    tokio::task::yield_now().await;
    lean::server_ready();

    let (shutdown, reload) = {
        let st = state.borrow();
        (st.shutdown.clone(), st.reload.clone())
    };
    loop {
        tokio::select! {
            _ = shutdown.notified() => break,
            _ = recv(&mut term) => break,
            _ = recv(&mut int) => break,
            _ = recv(&mut hup) => {
                flog!(Info, "server", "Reloading the configuration (SIGHUP)");
                reload_jails(&state, &[]).await;
            }
            _ = reload.notified() => {
                let only = std::mem::take(&mut state.borrow_mut().reload_only);
                reload_jails(&state, &only).await;
            }
            _ = recv(&mut usr1) => {
                let r = log::reopen();
                flog!(Info, "server", "Log target reopened ({r})");
            }
        }
    }
    flog!(Info, "server", "Shutdown in progress...");
    // Every jail stops, also one waiting for its start-up reads (once started); the store
    // thread then writes what was sent, closes the database and ends before the process does.
    server::shut_down(&state).await;
    if let Some(t) = metrics_thread {
        t.stop();
    }
    if let Some(t) = &totals
        && let Err(e) = t.save(&metrics, state.borrow().clock.now())
    {
        flog!(Error, "database", "{e}");
    }
    let _ = std::fs::remove_file(&settings.socket);
    let _ = std::fs::remove_file(&settings.pidfile);
    flog!(Info, "server", "Exiting ferroban");
    0
}

async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

fn report_ready(ready: Option<std::fs::File>, code: u8) {
    if let Some(mut f) = ready {
        let _ = f.write_all(&[code]);
    }
}

fn write_pidfile(path: &std::path::Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = std::fs::write(path, format!("{}\n", std::process::id())) {
        flog!(
            Error,
            "server",
            "Cannot write pid file {}: {e}",
            path.display()
        );
    }
}

/// Reads the jails and starts them (all, or only those named in `only`).
pub fn start_all(state: &Shared, only: Option<&[String]>) {
    let conf = state.borrow().settings.conf.clone();
    let cfg = match server::load_jails(&conf) {
        Ok(c) => c,
        Err(e) => {
            flog!(Error, "server", "Cannot read the jails: {e}");
            return;
        }
    };
    let wanted = |n: &str| only.is_none_or(|o| o.iter().any(|x| x == n));
    for e in &cfg.errors {
        if wanted(&e.jail) {
            flog!(Error, "jail", "Jail '{}' skipped: {}", e.jail, e.error);
            state
                .borrow_mut()
                .broken
                .insert(e.jail.clone(), e.error.to_string());
        }
    }
    for def in cfg.jails {
        if !wanted(&def.name) || state.borrow().jail(&def.name).is_some() {
            continue;
        }
        let name = def.name.clone();
        match server::start_jail(state, def) {
            Ok(()) => {
                state.borrow_mut().broken.remove(&name);
            }
            Err(e) => {
                flog!(Error, "jail", "Jail '{name}' skipped: {e}");
                state.borrow_mut().broken.insert(name, e);
            }
        }
    }
}

/// `reload`'s options (fail2ban 1.0.2: `reload [--restart] [--unban] [--if-exists] [JAIL]`;
/// `restart --unban` is `reload --restart --unban`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReloadOptions {
    /// `--restart`: stop the jails (their actions flush and stop), then start them anew; the bans
    /// come back from the store.
    pub restart: bool,
    /// `--unban`: lift every ban of the jails first (actionunban, removed from the store).
    pub unban: bool,
    /// `--if-exists`: a named jail that is not running is not an error (it is started when
    /// configured).
    pub if_exists: bool,
}

impl ReloadOptions {
    /// Parses the option words of a `reload` request; `None` for an unknown `--` word.
    pub fn parse<'a>(words: impl IntoIterator<Item = &'a str>) -> Option<ReloadOptions> {
        let mut o = ReloadOptions::default();
        for w in words {
            match w {
                "--restart" => o.restart = true,
                "--unban" => o.unban = true,
                "--if-exists" => o.if_exists = true,
                _ => return None,
            }
        }
        Some(o)
    }
}

/// `reload` without options (SIGHUP, `reload`).
pub async fn reload_jails(state: &Shared, only: &[String]) {
    reload_jails_with(state, only, ReloadOptions::default()).await
}

/// `reload` as fail2ban 1.0.2 does it, in place: running jails whose configuration did not
/// change run no action (their bans stay in the firewall), changed ones take their new settings
/// and keep their bans, jails new in the configuration start, running jails gone from it stop.
/// `only` names the jails concerned (empty: all). With `--unban` the bans of the jails
/// concerned are lifted first, with `--restart` those jails are stopped and started anew.
pub async fn reload_jails_with(state: &Shared, only: &[String], opts: ReloadOptions) {
    // Bans lifted while reloading count as ended by `reload` (metrics).
    state.borrow_mut().reloading = true;
    reload_inner(state, only, opts).await;
    state.borrow_mut().reloading = false;
}

async fn reload_inner(state: &Shared, only: &[String], opts: ReloadOptions) {
    let running: Vec<String> = state
        .borrow()
        .jail_names()
        .into_iter()
        .filter(|n| only.is_empty() || only.contains(n))
        .collect();
    if opts.unban {
        for n in &running {
            let k = server::unban_jail(state, n).await;
            flog!(Info, "jail", "[{n}] {k} ban(s) lifted by reload --unban");
        }
    }
    if opts.restart {
        for n in &running {
            server::stop_jail(state, n).await;
        }
    }
    let conf = state.borrow().settings.conf.clone();
    let cfg = match server::load_jails(&conf) {
        Ok(c) => c,
        Err(e) => {
            flog!(
                Error,
                "server",
                "Cannot read the jails: {e}; nothing reloaded"
            );
            return;
        }
    };
    let wanted = |n: &str| only.is_empty() || only.iter().any(|x| x == n);
    if only.is_empty() {
        state.borrow_mut().broken.clear();
    }
    for e in &cfg.errors {
        if wanted(&e.jail) {
            // A running jail whose configuration is now broken keeps running as it was.
            flog!(Error, "jail", "Jail '{}' not reloaded: {}", e.jail, e.error);
            state
                .borrow_mut()
                .broken
                .insert(e.jail.clone(), e.error.to_string());
        }
    }
    for n in &running {
        let configured =
            cfg.jails.iter().any(|d| &d.name == n) || cfg.errors.iter().any(|e| &e.jail == n);
        if !configured && state.borrow().jail(n).is_some() {
            flog!(
                Info,
                "jail",
                "Jail '{n}' is gone from the configuration: stopping it"
            );
            server::stop_jail(state, n).await;
            fleet::forget_jail(n);
        }
    }
    for def in cfg.jails {
        if !wanted(&def.name) {
            continue;
        }
        let name = def.name.clone();
        // A jail of that name still starting (`add`, another reload) takes this reload once
        // started.
        server::start_ended(state, &name).await;
        let r = if state.borrow().jail(&name).is_some() {
            server::reload_jail(state, def).await
        } else {
            server::start_jail_async(state, def).await
        };
        match r {
            Ok(()) => {
                state.borrow_mut().broken.remove(&name);
            }
            Err(e) => {
                flog!(Error, "jail", "Jail '{name}' not (re)loaded: {e}");
                state.borrow_mut().broken.insert(name, e);
            }
        }
    }
    flog!(Info, "server", "Reload finished.");
}

/// Purges old ban events from the store once an hour (`dbpurgeage`).
async fn purge_task(state: Shared) {
    loop {
        // On the store thread; the runtime serves meanwhile.
        let purged = {
            let st = state.borrow();
            let now = st.clock.now();
            st.store.as_ref().map(|store| {
                store.ask(move |s| {
                    s.purge(now).map(|r| {
                        let o = s.options();
                        (r, now - o.purge_age, o.outdated_factor)
                    })
                })
            })
        };
        if let Some(purged) = purged {
            match purged.await {
                Ok(Ok((r, limit, factor))) => {
                    flog!(Debug, "database", "Purged {r:?}");
                    // The jails' histories of bantime.increment lose the same rows, also those
                    // of the jails waiting for their start-up reads (which may have read them).
                    let st = state.borrow();
                    for j in &st.jails {
                        j.sender()
                            .post(move |rt, _| rt.jail.purge_history(limit, factor));
                    }
                    for (_, wait) in &st.starting.jails {
                        wait.borrow_mut()
                            .push(jailtask::Waited::Purge(limit, factor));
                    }
                }
                Ok(Err(e)) => flog!(Error, "database", "Purge failed: {e}"),
                Err(_) => {}
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
}
