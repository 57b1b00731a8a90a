//! The control socket's server side: [`bind`] the Unix socket, then [`serve`] it, handing each
//! request to the daemon's handler task as a [`ControlRequest`].
//!
//! Works on a `current_thread` runtime: every connection is its own task, so a slow or broken
//! client (one that stalls mid-line, never reads its answer or vanishes) only ever holds its own
//! task; requests reach the handler one at a time through the channel. Limits ([`Limits`]):
//! request line length, number of open connections, time to finish a started request line,
//! idle time between requests, time to write an answer.
//!
//! ```no_run
//! # async fn f() -> std::io::Result<()> {
//! use ferroban::control::server::{self, ControlRequest};
//! let listener = server::bind(std::path::Path::new("/run/fail2ban/fail2ban.sock")).await?;
//! let (tx, mut rx) = tokio::sync::mpsc::channel::<ControlRequest>(16);
//! tokio::spawn(server::serve(listener, tx));
//! while let Some(req) = rx.recv().await {
//!     let _ = req.reply.send(Ok(serde_json::json!("pong")));
//! }
//! # Ok(()) }
//! ```
//! Dropping the receiver stops [`serve`]: it stops accepting, lets requests already handed over
//! write their answers (a short grace), closes idle connections and returns. So a daemon that
//! answers `stop` and then drops its receiver and awaits `serve` has delivered the answer.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::timeout;

use super::proto::{MAX_BULK_REQUEST_BYTES, MAX_REQUEST_BYTES, Request, Response, bulk_prefix};

/// One command for the daemon: its words and where to send the result.
#[derive(Debug)]
pub struct ControlRequest {
    /// The command words (`["status", "sshd"]`).
    pub argv: Vec<String>,
    /// The command's value or error message (see [`super::proto`] for every command's value).
    pub reply: oneshot::Sender<Result<Value, String>>,
}

/// The server's limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The longest request line, newline excluded.
    pub max_request_bytes: usize,
    /// The longest bulk ban request line (`set J banip|unbanip ...`), newline excluded.
    pub max_bulk_request_bytes: usize,
    /// Connections served at once. One more makes the idle connections (between requests, or
    /// silent since they connected) close, then waits up to `slot_wait` for a slot; it gets an
    /// error if none frees (every connection is busy with a request).
    pub max_connections: usize,
    /// How long a connection over the limit waits for a slot.
    pub slot_wait: Duration,
    /// How long a connection may stay silent between requests.
    pub idle_timeout: Duration,
    /// How long a request line may take to arrive once its first byte has; also how long a new
    /// connection may stay silent before its first request.
    pub request_timeout: Duration,
    /// How long writing one answer may take.
    pub write_timeout: Duration,
    /// How long [`serve`] waits, once stopped, for answers still being written.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_bytes: MAX_REQUEST_BYTES,
            max_bulk_request_bytes: MAX_BULK_REQUEST_BYTES,
            max_connections: 256,
            slot_wait: Duration::from_secs(3),
            idle_timeout: Duration::from_secs(300),
            request_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(2),
        }
    }
}

fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Binds the control socket at `path`, mode 0600, creating its parent directory if needed.
///
/// An existing socket a live server accepts connections on is left alone (error
/// `AddrInUse`); a stale one (nobody listening) is removed first. Anything else at `path`
/// (a regular file, a directory) is never removed (error `AlreadyExists`).
pub async fn bind(path: &Path) -> io::Result<UnixListener> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| at(parent, e))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            match timeout(Duration::from_secs(2), UnixStream::connect(path)).await {
                Ok(Ok(_)) | Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!(
                            "{}: a running server answers on this socket; not replacing it",
                            path.display()
                        ),
                    ));
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!(
                            "{}: a running server is too busy to accept; not replacing its socket",
                            path.display()
                        ),
                    ));
                }
                Ok(Err(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
                    ) =>
                {
                    match std::fs::remove_file(path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(at(path, e)),
                    }
                }
                Ok(Err(e)) => return Err(at(path, e)),
            }
        }
        Ok(meta) => {
            let what = if meta.is_dir() {
                "a directory"
            } else {
                "not a socket"
            };
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: exists and is {what}; not replacing it", path.display()),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(at(path, e)),
    }
    let listener = UnixListener::bind(path).map_err(|e| at(path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| at(path, e))?;
    Ok(listener)
}

/// Serves `listener` with the default [`Limits`] until `tx`'s receiver is dropped.
pub async fn serve(listener: UnixListener, tx: mpsc::Sender<ControlRequest>) {
    serve_with(listener, tx, Limits::default()).await
}

/// [`serve`] with explicit limits.
pub async fn serve_with(listener: UnixListener, tx: mpsc::Sender<ControlRequest>, limits: Limits) {
    let limits = Arc::new(limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // Connections over the limit waiting for a slot (at most as many again).
    let waiting = Arc::new(Semaphore::new(limits.max_connections));
    // Tells idle connections to close: someone waits for a slot.
    let make_room = Arc::new(Notify::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            _ = tx.closed() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => match slots.clone().try_acquire_owned() {
                    Ok(slot) => {
                        tasks.spawn(connection(stream, tx.clone(), limits.clone(), stop_rx.clone(), slot, make_room.clone()));
                    }
                    Err(_) => {
                        let message = format!(
                            "too many connections to the control socket (limit {})",
                            limits.max_connections
                        );
                        let Ok(queued) = waiting.clone().try_acquire_owned() else {
                            tasks.spawn(refuse(stream, message, limits.write_timeout));
                            continue;
                        };
                        // Idle connections close to make room; the newcomer waits for a slot.
                        make_room.notify_waiters();
                        let (slots, tx, limits, stop, room) =
                            (slots.clone(), tx.clone(), limits.clone(), stop_rx.clone(), make_room.clone());
                        tasks.spawn(async move {
                            let slot = timeout(limits.slot_wait, slots.acquire_owned()).await;
                            drop(queued);
                            match slot {
                                Ok(Ok(slot)) => connection(stream, tx, limits, stop, slot, room).await,
                                _ => refuse(stream, message, limits.write_timeout).await,
                            }
                        });
                    }
                },
                // Out of descriptors and the like: the condition passes, don't spin meanwhile.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
        }
    }
    let _ = stop_tx.send(true);
    let drain = async { while tasks.join_next().await.is_some() {} };
    if timeout(limits.shutdown_grace, drain).await.is_err() {
        tasks.abort_all();
    }
}

async fn write_line<W: AsyncWrite + Unpin>(w: &mut W, line: &str, limit: Duration) -> bool {
    matches!(
        timeout(limit, w.write_all(line.as_bytes())).await,
        Ok(Ok(()))
    )
}

async fn refuse(mut stream: UnixStream, message: String, limit: Duration) {
    write_line(&mut stream, &Response::error(message).to_line(), limit).await;
}

/// How reading one request line ended.
enum Line {
    /// A full line (newline consumed, not stored).
    Complete,
    /// End of stream; `buf` holds what came before it (maybe nothing).
    Eof,
    /// Longer than the limit.
    TooLong,
}

/// Reads one request line of at most `max` bytes, or `bulk_max` for a bulk ban request
/// ([`bulk_prefix`]).
async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    mut max: usize,
    bulk_max: usize,
) -> io::Result<Line> {
    loop {
        let chunk = r.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(Line::Eof);
        }
        let (take, done) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        if buf.len() + take > max {
            let more = max < bulk_max && {
                let mut start = buf.clone();
                start.extend_from_slice(&chunk[..take.min(max)]);
                bulk_prefix(&start)
            };
            if !more {
                return Ok(Line::TooLong);
            }
            max = bulk_max;
            if buf.len() + take > max {
                return Ok(Line::TooLong);
            }
        }
        buf.extend_from_slice(&chunk[..take]);
        r.consume(take + usize::from(done));
        if done {
            return Ok(Line::Complete);
        }
    }
}

async fn connection(
    stream: UnixStream,
    tx: mpsc::Sender<ControlRequest>,
    limits: Arc<Limits>,
    mut stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
    make_room: Arc<Notify>,
) {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut line = Vec::new();
    let mut served = false;
    loop {
        if *stop.borrow() {
            return;
        }
        // Wait, idle, for the next request's first byte (or for the server to stop, or for a
        // connection over the limit that needs the slot). A new connection gets a request's time.
        let idle = if served {
            limits.idle_timeout
        } else {
            limits.request_timeout
        };
        served = true;
        let ready = tokio::select! {
            r = timeout(idle, rd.fill_buf()) => r,
            _ = stop.changed() => return,
            _ = make_room.notified() => return,
        };
        let first = match ready {
            Ok(Ok(chunk)) if !chunk.is_empty() => chunk[0],
            _ => return, // idle too long, end of stream or a broken connection
        };
        line.clear();
        if super::f2bwire::is_f2b_start(first) {
            // fail2ban's framing (a pickle and <F2B_END_COMMAND>), answered in kind.
            if f2b_request(&mut rd, &mut wr, &mut line, &tx, &limits).await {
                continue;
            }
            return;
        }
        let read = timeout(
            limits.request_timeout,
            read_line(
                &mut rd,
                &mut line,
                limits.max_request_bytes,
                limits.max_bulk_request_bytes,
            ),
        )
        .await;
        let last = match read {
            Ok(Ok(Line::Complete)) => false,
            Ok(Ok(Line::Eof)) => true,
            Ok(Ok(Line::TooLong)) => {
                let message = format!(
                    "request longer than {} bytes; closing the connection",
                    limits.max_request_bytes
                );
                write_line(
                    &mut wr,
                    &Response::error(message).to_line(),
                    limits.write_timeout,
                )
                .await;
                return;
            }
            Ok(Err(_)) => return,
            Err(_) => {
                let message = format!(
                    "request not completed within {:?}; closing the connection",
                    limits.request_timeout
                );
                write_line(
                    &mut wr,
                    &Response::error(message).to_line(),
                    limits.write_timeout,
                )
                .await;
                return;
            }
        };
        let request = match Request::parse(&line) {
            Ok(r) => r,
            Err(message) => {
                write_line(
                    &mut wr,
                    &Response::error(message).to_line(),
                    limits.write_timeout,
                )
                .await;
                return;
            }
        };
        let (reply, answer) = oneshot::channel();
        let sent = tx
            .send(ControlRequest {
                argv: request.argv,
                reply,
            })
            .await;
        let result = match sent {
            Ok(()) => answer
                .await
                .unwrap_or_else(|_| Err("the server dropped the request (shutting down?)".into())),
            Err(_) => Err("the server is shutting down".into()),
        };
        let ok = write_line(
            &mut wr,
            &Response::from_result(result).to_line(),
            limits.write_timeout,
        )
        .await;
        if !ok || last {
            return;
        }
    }
}

/// Serves one request in fail2ban's framing; false when the connection is to be closed (a
/// close message, end of stream, a refused or oversized request, a write that failed).
async fn f2b_request<R, W>(
    rd: &mut R,
    wr: &mut W,
    buf: &mut Vec<u8>,
    tx: &mpsc::Sender<ControlRequest>,
    limits: &Limits,
) -> bool
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    use super::f2bwire::{self, Frame, Message};
    use super::pickle;
    let send = |v: pickle::PyVal| pickle::frame(&v);
    let refuse = |why: String| send(f2bwire::load_error(&why));
    let read = timeout(
        limits.request_timeout,
        f2bwire::read_frame(
            rd,
            buf,
            limits.max_request_bytes,
            limits.max_bulk_request_bytes,
        ),
    )
    .await;
    let answer = match read {
        Ok(Ok(Frame::Complete)) => None,
        Ok(Ok(Frame::Eof)) | Ok(Err(_)) => return false,
        Ok(Ok(Frame::TooLong)) => Some(refuse(format!(
            "request longer than {} bytes ({} for `set <jail> banip|unbanip ...`); closing the \
             connection",
            limits.max_request_bytes, limits.max_bulk_request_bytes
        ))),
        Err(_) => Some(refuse(format!(
            "request not completed within {:?}; closing the connection",
            limits.request_timeout
        ))),
    };
    if let Some(bytes) = answer {
        write_bytes(wr, &bytes, limits.write_timeout).await;
        return false;
    }
    let argv = match f2bwire::decode_request(buf) {
        Ok(Message::Close) => return false,
        Ok(Message::Command(argv)) => argv,
        Err(why) => {
            write_bytes(wr, &refuse(why), limits.write_timeout).await;
            return false;
        }
    };
    let (reply, answer) = oneshot::channel();
    let sent = tx
        .send(ControlRequest {
            argv: argv.clone(),
            reply,
        })
        .await;
    let result = match sent {
        Ok(()) => answer
            .await
            .unwrap_or_else(|_| Err("the server dropped the request (shutting down?)".into())),
        Err(_) => Err("the server is shutting down".into()),
    };
    let bytes = send(f2bwire::reply(&argv, &result));
    write_bytes(wr, &bytes, limits.write_timeout).await
}

async fn write_bytes<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8], limit: Duration) -> bool {
    matches!(timeout(limit, w.write_all(bytes)).await, Ok(Ok(())))
}

#[cfg(test)]
mod tests;
