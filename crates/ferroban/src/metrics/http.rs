//! The metrics thread: serves `GET /metrics` (HTTP/1.1 over TCP or a Unix socket) and writes the
//! totals to the database every [`SAVE_INTERVAL`]. It runs on its own OS thread with its own
//! runtime, so neither a scrape nor a database write ever waits on, or delays, a jail's task: it
//! only reads the atomics of [`Metrics`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;

use ferroban_bans::StatsStore;

use super::Metrics;

/// How often the totals are written to the database.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(5);
/// Connections served at once; more wait for a free slot.
const MAX_CONNECTIONS: usize = 16;

/// Where `/metrics` listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsAddr {
    /// A TCP address (`127.0.0.1:9191`, `[::1]:9191`).
    Tcp(SocketAddr),
    /// A Unix socket path (anything with a `/`).
    Unix(PathBuf),
}

impl std::str::FromStr for MetricsAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.contains('/') {
            return Ok(MetricsAddr::Unix(PathBuf::from(s)));
        }
        s.parse::<SocketAddr>().map(MetricsAddr::Tcp).map_err(|_| {
            format!(
                "metrics = {s:?}: expected ADDRESS:PORT (127.0.0.1:9191, [::1]:9191) or a Unix socket path"
            )
        })
    }
}

impl std::fmt::Display for MetricsAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetricsAddr::Tcp(a) => write!(f, "http://{a}/metrics"),
            MetricsAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// The database side of the thread: the totals' table.
pub struct Totals {
    store: Mutex<Option<StatsStore>>,
    path: PathBuf,
}

impl Totals {
    /// Opens the totals' table in the database `path` and gives the stored totals to `metrics`.
    /// Call before the jails start. An error (logged by the caller) leaves the totals at zero and
    /// the database untouched.
    pub fn open(path: &Path, metrics: &Metrics) -> Result<Arc<Totals>, String> {
        let store = StatsStore::open(path).map_err(|e| e.to_string())?;
        metrics.restore_totals(store.load().map_err(|e| e.to_string())?);
        Ok(Arc::new(Totals {
            store: Mutex::new(Some(store)),
            path: path.to_path_buf(),
        }))
    }

    /// Writes every total now.
    pub fn save(&self, metrics: &Metrics, now: f64) -> Result<(), String> {
        let rows = metrics.totals();
        let mut g = self.store.lock().unwrap();
        match g.as_mut() {
            Some(s) => s.save(&rows, now).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The running metrics thread.
pub struct MetricsThread {
    stop: Arc<tokio::sync::Notify>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsThread {
    /// Starts the thread: binds `addr` (if any) first, so that a bad address is an error here;
    /// saves `totals` (if any) every [`SAVE_INTERVAL`] with `now` as the time stamp.
    pub fn start(
        metrics: Arc<Metrics>,
        addr: Option<MetricsAddr>,
        totals: Option<Arc<Totals>>,
        now: Arc<dyn Fn() -> f64 + Send + Sync>,
    ) -> Result<MetricsThread, String> {
        // The thread binds `addr` in its own runtime and says how that went before serving
        // (the caller may itself run inside a runtime: it only waits on a plain channel).
        let (bound_tx, bound_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let stop = Arc::new(tokio::sync::Notify::new());
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ferroban-metrics".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = bound_tx.send(Err(format!("metrics runtime: {e}")));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match &addr {
                        None => None,
                        Some(a) => match bind(a).await {
                            Ok(l) => Some(l),
                            Err(e) => {
                                let _ = bound_tx.send(Err(e));
                                return;
                            }
                        },
                    };
                    let _ = bound_tx.send(Ok(()));
                    let serve = async {
                        match listener {
                            Some(l) => serve(l, metrics.clone()).await,
                            None => std::future::pending().await,
                        }
                    };
                    let save = async {
                        let Some(t) = totals else {
                            return std::future::pending().await;
                        };
                        let mut tick = tokio::time::interval(SAVE_INTERVAL);
                        tick.tick().await;
                        loop {
                            tick.tick().await;
                            if let Err(e) = t.save(&metrics, now()) {
                                crate::flog!(Error, "database", "{e}");
                            }
                        }
                    };
                    tokio::select! {
                        _ = serve => {}
                        _ = save => {}
                        _ = stop2.notified() => {}
                    }
                })
            })
            .map_err(|e| format!("metrics thread: {e}"))?;
        match bound_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err("the metrics thread ended at start".into());
            }
        }
        Ok(MetricsThread {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops serving and waits for the thread.
    pub fn stop(mut self) {
        self.stop.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A bound listener.
pub enum Listener {
    /// TCP.
    Tcp(tokio::net::TcpListener),
    /// Unix socket (the path is removed when dropped).
    Unix(tokio::net::UnixListener, PathBuf),
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Binds `addr`. A Unix socket left behind by a dead daemon is replaced; a live one is an error.
pub async fn bind(addr: &MetricsAddr) -> Result<Listener, String> {
    match addr {
        MetricsAddr::Tcp(a) => tokio::net::TcpListener::bind(a)
            .await
            .map(Listener::Tcp)
            .map_err(|e| format!("cannot listen for metrics on {a}: {e}")),
        MetricsAddr::Unix(p) => {
            if p.exists() {
                if std::os::unix::net::UnixStream::connect(p).is_ok() {
                    return Err(format!(
                        "cannot listen for metrics on {}: another process serves it",
                        p.display()
                    ));
                }
                let _ = std::fs::remove_file(p);
            }
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                let _ = std::fs::create_dir_all(dir);
            }
            tokio::net::UnixListener::bind(p)
                .map(|l| Listener::Unix(l, p.clone()))
                .map_err(|e| format!("cannot listen for metrics on {}: {e}", p.display()))
        }
    }
}

/// Serves connections until the future is dropped.
pub async fn serve(listener: Listener, metrics: Arc<Metrics>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let m = metrics.clone();
        match &listener {
            Listener::Tcp(l) => match l.accept().await {
                Ok((s, _)) => {
                    let _ = s.set_nodelay(true);
                    tokio::spawn(async move {
                        connection(s, m).await;
                        drop(permit);
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Listener::Unix(l, _) => match l.accept().await {
                Ok((s, _)) => {
                    tokio::spawn(async move {
                        connection(s, m).await;
                        drop(permit);
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
        }
    }
}

async fn connection<S>(s: S, m: Arc<Metrics>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| {
        let m = m.clone();
        async move { Ok::<_, Infallible>(respond(&m, &req)) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .keep_alive(true)
        .serve_connection(TokioIo::new(s), svc);
    // A client that keeps a connection open without asking gets dropped after a while.
    let _ = tokio::time::timeout(Duration::from_secs(300), conn).await;
}

fn respond(m: &Metrics, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let reply = |status: StatusCode, ctype: &'static str, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", ctype)
            .body(Full::new(Bytes::from(body)))
            .expect("a valid response")
    };
    match (req.method(), path) {
        (&Method::GET | &Method::HEAD, "/metrics") => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            m.render(),
        ),
        (&Method::GET | &Method::HEAD, "/") => reply(
            StatusCode::OK,
            "text/html; charset=utf-8",
            "<html><body><a href=\"/metrics\">/metrics</a></body></html>\n".into(),
        ),
        (&Method::GET | &Method::HEAD, _) => reply(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            format!("no such page: {path} (try /metrics)\n"),
        ),
        _ => reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "only GET\n".into(),
        ),
    }
}
