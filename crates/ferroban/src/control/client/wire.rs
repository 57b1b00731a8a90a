//! Which protocol the server on the socket speaks, and fail2ban's framing from the client side.
//!
//! The peer process tells first ([`peer_wire`], SO_PEERCRED and `/proc/PID`): a `ferroban`
//! executable speaks JSON lines, a `fail2ban-server` pickles. When it cannot tell, `ferroban
//! client` sends its JSON line; a fail2ban server reads it as the start of a pickle frame and
//! waits for `<F2B_END_COMMAND>`, so it never answers: when the first byte of an answer has not
//! come within [`PROBE`], a second connection sends fail2ban's own `ping` frame; a pickled answer
//! within [`PROBE`] means a fail2ban server (the first connection, which it never executed, is
//! dropped) and the command goes again in its framing. A server that answers neither fails
//! within 2 s with a message naming both.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::Failure;
use crate::control::f2bwire::{CLOSE, END, message_of};
use crate::control::pickle::{self, Accept, PyVal};
use crate::control::proto::MAX_RESPONSE_BYTES;

/// How long an unknown server may take to show which protocol it speaks, for each of the two
/// probes (so that a server that answers neither is reported within 2 s).
pub(super) const PROBE: Duration = Duration::from_secs(1);

/// The protocol of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wire {
    /// ferroban's JSON lines.
    Json,
    /// fail2ban's pickles.
    Fail2ban,
}

/// The protocol the process at the other end of `stream` speaks, when its program says so:
/// [`Wire::Json`] when it runs a `ferroban` executable, [`Wire::Fail2ban`] when its command line
/// runs `fail2ban-server`; `None` when unknown (another pid namespace, no access to `/proc`).
pub(super) fn peer_wire(stream: &UnixStream) -> Option<Wire> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of a `ucred` for the duration of the call;
    // the descriptor is the live socket borrowed from `stream`.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 || cred.pid <= 0 {
        return None;
    }
    let exe = std::fs::read_link(format!("/proc/{}/exe", cred.pid)).ok();
    if exe
        .as_deref()
        .and_then(Path::file_name)
        .is_some_and(|n| n.to_string_lossy().starts_with("ferroban"))
    {
        return Some(Wire::Json);
    }
    // The command line is readable where the executable link is not (another user's process).
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", cred.pid)).ok()?;
    let arg0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    let base = arg0.rsplit(|b| *b == b'/').next().unwrap_or_default();
    if base.starts_with(b"ferroban") {
        return Some(Wire::Json);
    }
    cmdline
        .split(|b| *b == 0)
        .take(3)
        .any(|a| a.ends_with(b"fail2ban-server"))
        .then_some(Wire::Fail2ban)
}

/// Reads one frame (up to [`END`]) from `r`.
fn read_frame(r: &mut impl Read) -> Result<Vec<u8>, Failure> {
    let mut r = BufReader::new(r.take(MAX_RESPONSE_BYTES as u64 + END.len() as u64));
    let mut buf = Vec::new();
    loop {
        let chunk = r.fill_buf().map_err(Failure::Socket)?;
        if chunk.is_empty() {
            if buf.len() > MAX_RESPONSE_BYTES {
                return Err(Failure::Protocol(format!(
                    "the server's answer is longer than {MAX_RESPONSE_BYTES} bytes"
                )));
            }
            return Err(Failure::Socket(io::Error::from_raw_os_error(
                libc::ECONNRESET,
            )));
        }
        let start = buf.len().saturating_sub(END.len() - 1);
        let n = chunk.len();
        buf.extend_from_slice(chunk);
        r.consume(n);
        if let Some(i) = memchr::memmem::find(&buf[start..], END) {
            buf.truncate(start + i);
            return Ok(buf);
        }
    }
}

/// Sends `argv` in fail2ban's framing on `stream` and reads the answer.
fn exchange(stream: &UnixStream, argv: &[String]) -> Result<Result<Value, String>, Failure> {
    let words = PyVal::List(argv.iter().map(|w| PyVal::Str(w.clone())).collect());
    let mut frame = pickle::encode(&words);
    frame.extend_from_slice(END);
    (&*stream).write_all(&frame).map_err(Failure::Socket)?;
    let answer = read_frame(&mut &*stream)?;
    let decoded = pickle::decode(&answer, Accept::Replies).map_err(|e| {
        Failure::Protocol(format!("malformed answer from the fail2ban server: {e}"))
    })?;
    match decoded {
        PyVal::Tuple(t) | PyVal::List(t) if t.len() == 2 => match (&t[0], &t[1]) {
            (PyVal::Int(0), v) => Ok(Ok(v.to_json())),
            (PyVal::Int(_), e) => Ok(Err(message_of(e))),
            _ => Err(Failure::Protocol(
                "malformed answer from the fail2ban server: no status code".into(),
            )),
        },
        PyVal::Str(s) => Ok(Err(s)),
        other => Err(Failure::Protocol(format!(
            "malformed answer from the fail2ban server: {}",
            other.as_text()
        ))),
    }
}

fn close(stream: &UnixStream) {
    let mut bye = CLOSE.to_vec();
    bye.extend_from_slice(END);
    let _ = (&*stream).write_all(&bye);
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// One command to a fail2ban server: connect, send, read, close.
pub(super) fn transact(
    socket: &Path,
    argv: &[String],
    limit: Option<Duration>,
) -> Result<Result<Value, String>, Failure> {
    let words: Vec<&str> = argv.iter().map(String::as_str).collect();
    if words.first() == Some(&crate::control::cmd::RELOAD) {
        return Ok(Err(
            "this is a fail2ban server: `reload` sends it a configuration stream that only \
             fail2ban's own client builds (use fail2ban-client reload)"
                .into(),
        ));
    }
    let stream = UnixStream::connect(socket).map_err(Failure::Socket)?;
    stream.set_read_timeout(limit).map_err(Failure::Socket)?;
    stream.set_write_timeout(limit).map_err(Failure::Socket)?;
    let r = exchange(&stream, argv);
    close(&stream);
    r
}

/// True when a server on `socket` answers fail2ban's `ping` frame within [`PROBE`].
pub(super) fn answers_fail2ban_ping(socket: &Path) -> bool {
    let Ok(stream) = UnixStream::connect(socket) else {
        return false;
    };
    if stream.set_read_timeout(Some(PROBE)).is_err()
        || stream.set_write_timeout(Some(PROBE)).is_err()
    {
        return false;
    }
    let ok = matches!(
        exchange(&stream, &["ping".to_string()]),
        Ok(Ok(Value::String(s))) if s == "pong"
    );
    close(&stream);
    ok
}
