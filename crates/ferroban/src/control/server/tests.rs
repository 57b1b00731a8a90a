//! The socket plumbing against a fake handler task.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{ControlRequest, Limits, bind, serve_with};
use crate::control::proto::{Request, Response};
use crate::control::testutil::TempDir;

/// The fake daemon: `ping` → "pong", `echo W...` → the words, `sleep MS` → waits then null,
/// anything else → "Invalid command".
async fn fake_handler(mut rx: mpsc::Receiver<ControlRequest>) {
    while let Some(req) = rx.recv().await {
        let words: Vec<&str> = req.argv.iter().map(String::as_str).collect();
        let result = match words.as_slice() {
            ["ping"] => Ok(json!("pong")),
            ["echo", rest @ ..] => Ok(json!(rest)),
            ["sleep", ms] => {
                tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
                Ok(Value::Null)
            }
            _ => Err("Invalid command".to_string()),
        };
        let _ = req.reply.send(result);
    }
}

fn small_limits() -> Limits {
    Limits {
        max_request_bytes: 1024,
        max_bulk_request_bytes: 64 * 1024,
        max_connections: 64,
        slot_wait: Duration::from_millis(500),
        idle_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_millis(300),
        write_timeout: Duration::from_secs(2),
        shutdown_grace: Duration::from_millis(500),
    }
}

struct Fixture {
    _dir: TempDir,
    path: PathBuf,
    server: JoinHandle<()>,
    handler: JoinHandle<()>,
}

async fn start(limits: Limits) -> Fixture {
    let dir = TempDir::new("ctl");
    let path = dir.0.join("run/fail2ban/f2b.sock");
    let listener = bind(&path).await.unwrap();
    let (tx, rx) = mpsc::channel(8);
    let server = tokio::spawn(serve_with(listener, tx, limits));
    let handler = tokio::spawn(fake_handler(rx));
    Fixture {
        _dir: dir,
        path,
        server,
        handler,
    }
}

struct Client {
    rd: BufReader<tokio::net::unix::OwnedReadHalf>,
    wr: tokio::net::unix::OwnedWriteHalf,
}

impl Client {
    async fn connect(path: &Path) -> Client {
        let (rd, wr) = UnixStream::connect(path).await.unwrap().into_split();
        Client {
            rd: BufReader::new(rd),
            wr,
        }
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.wr.write_all(bytes).await.unwrap();
    }

    async fn answer(&mut self) -> Result<Value, String> {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(5), self.rd.read_line(&mut line))
            .await
            .expect("an answer within 5 s")
            .unwrap();
        assert!(n > 0, "connection closed without an answer");
        assert!(line.ends_with('\n'));
        Response::parse(line.as_bytes()).unwrap()
    }

    async fn call(&mut self, words: &[&str]) -> Result<Value, String> {
        let req = Request::new(words.iter().map(|w| w.to_string()).collect());
        self.send_raw(req.to_line().as_bytes()).await;
        self.answer().await
    }

    /// True when the server closed the connection (EOF within 2 s).
    async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        matches!(
            tokio::time::timeout(Duration::from_secs(2), self.rd.read_to_end(&mut rest)).await,
            Ok(Ok(0))
        )
    }
}

#[tokio::test]
async fn binds_0600_in_a_new_directory_and_serves_several_requests_per_connection() {
    let f = start(small_limits()).await;
    let mode = std::fs::metadata(&f.path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let mut c = Client::connect(&f.path).await;
    assert_eq!(c.call(&["ping"]).await, Ok(json!("pong")));
    assert_eq!(c.call(&["echo", "a", "b c"]).await, Ok(json!(["a", "b c"])));
    assert_eq!(c.call(&["nosuch"]).await, Err("Invalid command".into()));
    // Two requests in one write: two answers, in order.
    let two = format!(
        "{}{}",
        Request::new(vec!["echo".into(), "1".into()]).to_line(),
        Request::new(vec!["echo".into(), "2".into()]).to_line()
    );
    c.send_raw(two.as_bytes()).await;
    assert_eq!(c.answer().await, Ok(json!(["1"])));
    assert_eq!(c.answer().await, Ok(json!(["2"])));
}

#[tokio::test]
async fn malformed_json_gets_an_error_and_the_connection_closes() {
    let f = start(small_limits()).await;
    for bad in [
        &b"{not json\n"[..],
        b"[\"ping\"]\n",
        b"{\"v\":1}\n",
        b"{\"v\":7,\"argv\":[\"ping\"]}\n",
        b"\n",
        b"\xff\xfe\n",
    ] {
        let mut c = Client::connect(&f.path).await;
        c.send_raw(bad).await;
        let err = c.answer().await.unwrap_err();
        assert!(
            err.contains("malformed request") || err.contains("version 7"),
            "{err}"
        );
        assert!(c.closed().await, "still open after {bad:?}");
    }
    // The server still serves.
    assert_eq!(
        Client::connect(&f.path).await.call(&["ping"]).await,
        Ok(json!("pong"))
    );
}

#[tokio::test]
async fn over_long_line_gets_an_error_and_the_connection_closes() {
    let f = start(small_limits()).await;
    let mut c = Client::connect(&f.path).await;
    // Exactly at the limit is fine.
    let pad = "x".repeat(1024 - r#"{"v":1,"argv":["echo",""]}"#.len());
    let at_limit = format!(r#"{{"v":1,"argv":["echo","{pad}"]}}"#);
    assert_eq!(at_limit.len(), 1024);
    c.send_raw(format!("{at_limit}\n").as_bytes()).await;
    assert_eq!(c.answer().await, Ok(json!([pad])));
    // One byte more is not, newline or not.
    let over = format!(r#"{{"v":1,"argv":["echo","{pad}x"]}}"#);
    c.send_raw(format!("{over}\n").as_bytes()).await;
    let err = c.answer().await.unwrap_err();
    assert!(err.contains("longer than 1024 bytes"), "{err}");
    assert!(c.closed().await);
    // A long line without newline is cut off as soon as it passes the limit.
    let mut c = Client::connect(&f.path).await;
    c.send_raw(&[b'{'; 4000]).await;
    let err = c.answer().await.unwrap_err();
    assert!(err.contains("longer than"), "{err}");
    assert!(c.closed().await);
}

#[tokio::test]
async fn early_disconnects_do_not_disturb_the_server() {
    let f = start(small_limits()).await;
    // Connect and leave at once.
    drop(UnixStream::connect(&f.path).await.unwrap());
    // Leave in the middle of a line.
    let mut c = Client::connect(&f.path).await;
    c.send_raw(b"{\"v\":1,\"ar").await;
    drop(c);
    // Leave while the handler works on the request: its answer has nowhere to go.
    let mut c = Client::connect(&f.path).await;
    c.send_raw(
        Request::new(vec!["sleep".into(), "100".into()])
            .to_line()
            .as_bytes(),
    )
    .await;
    drop(c);
    // A last request without its newline, then the write side closed: still answered.
    let (rd, mut wr) = UnixStream::connect(&f.path).await.unwrap().into_split();
    wr.write_all(br#"{"v":1,"argv":["ping"]}"#).await.unwrap();
    wr.shutdown().await.unwrap();
    let mut rd = BufReader::new(rd);
    let mut line = String::new();
    rd.read_line(&mut line).await.unwrap();
    assert_eq!(line, "{\"v\":1,\"ok\":\"pong\"}\n");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        Client::connect(&f.path).await.call(&["ping"]).await,
        Ok(json!("pong"))
    );
    assert!(!f.server.is_finished() && !f.handler.is_finished());
}

#[tokio::test]
async fn a_stalled_client_does_not_block_others_and_times_out() {
    let f = start(Limits {
        request_timeout: Duration::from_secs(3),
        ..small_limits()
    })
    .await;
    let mut stalled = Client::connect(&f.path).await;
    stalled.send_raw(b"{\"v\":1,\"argv\":[\"pi").await;
    // A client that never reads its answers.
    let mut deaf = UnixStream::connect(&f.path).await.unwrap();
    for _ in 0..50 {
        deaf.write_all(Request::new(vec!["ping".into()]).to_line().as_bytes())
            .await
            .unwrap();
    }
    let t = Instant::now();
    let mut c = Client::connect(&f.path).await;
    for _ in 0..20 {
        assert_eq!(c.call(&["ping"]).await, Ok(json!("pong")));
    }
    assert!(
        t.elapsed() < Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
    let err = stalled.answer().await.unwrap_err();
    assert!(err.contains("not completed within"), "{err}");
    assert!(stalled.closed().await);
}

#[tokio::test]
async fn many_concurrent_clients() {
    let f = start(small_limits()).await;
    let mut clients = Vec::new();
    for i in 0..60 {
        let path = f.path.clone();
        clients.push(tokio::spawn(async move {
            let mut c = Client::connect(&path).await;
            for j in 0..10 {
                let (a, b) = (i.to_string(), j.to_string());
                assert_eq!(c.call(&["echo", &a, &b]).await, Ok(json!([a, b])));
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
}

#[tokio::test]
async fn connections_over_the_limit_are_refused_when_all_are_busy() {
    let f = start(Limits {
        max_connections: 3,
        ..small_limits()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = Client::connect(&f.path).await;
        // Busy: a request in the handler for longer than the slot wait.
        c.send_raw(
            Request::new(vec!["sleep".into(), "1500".into()])
                .to_line()
                .as_bytes(),
        )
        .await;
        held.push(c);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = Client::connect(&f.path).await;
    let err = extra.answer().await.unwrap_err();
    assert!(err.contains("too many connections"), "{err}");
    for c in &mut held {
        assert_eq!(c.answer().await, Ok(Value::Null));
    }
    assert_eq!(
        Client::connect(&f.path).await.call(&["ping"]).await,
        Ok(json!("pong"))
    );
}

#[tokio::test]
async fn idle_connections_make_room_for_a_new_one() {
    let f = start(Limits {
        max_connections: 3,
        ..small_limits()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = Client::connect(&f.path).await;
        assert_eq!(c.call(&["ping"]).await, Ok(json!("pong")));
        held.push(c);
    }
    let t = Instant::now();
    assert_eq!(
        Client::connect(&f.path).await.call(&["ping"]).await,
        Ok(json!("pong"))
    );
    assert!(
        t.elapsed() < Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    assert!(
        held[0].closed().await,
        "an idle connection was closed to make room"
    );
}

/// 256 connections that never say anything (the default limit) do not keep the administrator
/// out: the new connection is served at once (they close to make room), and a silent
/// connection is closed after the request timeout anyway.
#[tokio::test]
async fn silent_connections_do_not_lock_the_administrator_out() {
    let limits = Limits::default();
    let f = start(limits.clone()).await;
    let mut silent = Vec::new();
    for _ in 0..limits.max_connections {
        silent.push(UnixStream::connect(&f.path).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    assert_eq!(
        Client::connect(&f.path).await.call(&["ping"]).await,
        Ok(json!("pong"))
    );
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    // The silent ones are gone.
    let mut buf = [0u8; 1];
    for s in &mut silent {
        let n = tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf))
            .await
            .expect("closed at once")
            .unwrap();
        assert_eq!(n, 0);
    }
    // Without pressure, a silent connection is closed after the request timeout.
    let mut lone = UnixStream::connect(&f.path).await.unwrap();
    let t = Instant::now();
    let n = tokio::time::timeout(limits.request_timeout * 2, lone.read(&mut buf))
        .await
        .expect("closed within the request timeout")
        .unwrap();
    assert_eq!(n, 0);
    assert!(t.elapsed() >= limits.request_timeout - Duration::from_millis(100));
}

/// A 10 MB request that is not a bulk ban is refused with an error and the connection closed;
/// the server goes on; a bulk `banip` of the same size is accepted.
#[tokio::test]
async fn a_10_mb_request_is_refused_cleanly_and_a_bulk_ban_is_not() {
    let f = start(Limits::default()).await;
    let big = "x".repeat(10 * 1024 * 1024);
    let mut c = Client::connect(&f.path).await;
    let req = Request::new(vec!["echo".into(), big]).to_line();
    // The server answers and closes while the client is still writing: ignore that write error.
    let _ = c.wr.write_all(req.as_bytes()).await;
    let err = c.answer().await.unwrap_err();
    assert!(err.contains("request longer than 65536 bytes"), "{err}");
    // Closed: end of stream, or a reset (the server closed with the rest of the request unread).
    let mut rest = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(2), c.rd.read_to_end(&mut rest)).await;
    assert!(matches!(end, Ok(Ok(0)) | Ok(Err(_))), "{end:?}");
    assert_eq!(
        Client::connect(&f.path).await.call(&["ping"]).await,
        Ok(json!("pong"))
    );
    // 800,000 addresses (about 11 MB): the fake handler answers "Invalid command" for `set`,
    // which proves the request was read whole and handed over.
    let mut argv: Vec<String> = vec!["set".into(), "sshd".into(), "banip".into()];
    argv.extend((0..800_000u32).map(|i| std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string()));
    let req = Request::new(argv).to_line();
    assert!(req.len() > 10_000_000, "{}", req.len());
    let mut c = Client::connect(&f.path).await;
    c.send_raw(req.as_bytes()).await;
    assert_eq!(c.answer().await, Err("Invalid command".to_string()));
}

#[tokio::test]
async fn serve_ends_when_the_handler_goes_and_delivers_the_last_answer() {
    let dir = TempDir::new("ctl");
    let path = dir.0.join("f2b.sock");
    let listener = bind(&path).await.unwrap();
    let (tx, mut rx) = mpsc::channel::<ControlRequest>(8);
    let limits = Limits {
        shutdown_grace: Duration::from_secs(4),
        ..small_limits()
    };
    let server = tokio::spawn(serve_with(listener, tx, limits));
    // An idle connection must not hold the shutdown up (for the 4 s grace).
    let _idle = Client::connect(&path).await;
    let mut c = Client::connect(&path).await;
    let req = Request::new(vec!["stop".into()]).to_line();
    c.send_raw(req.as_bytes()).await;
    // The daemon answers `stop`, then drops its receiver.
    let stop = rx.recv().await.unwrap();
    assert_eq!(stop.argv, vec!["stop"]);
    stop.reply.send(Ok(Value::Null)).unwrap();
    drop(rx);
    let t = Instant::now();
    tokio::time::timeout(Duration::from_secs(2), server)
        .await
        .expect("serve returns")
        .unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(c.answer().await, Ok(Value::Null));
}

#[tokio::test]
async fn bind_refuses_a_live_socket_and_replaces_a_stale_one() {
    let f = start(small_limits()).await;
    let err = bind(&f.path).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    assert!(err.to_string().contains("f2b.sock"), "{err}");
    // The live server is untouched.
    assert_eq!(
        Client::connect(&f.path).await.call(&["ping"]).await,
        Ok(json!("pong"))
    );

    let dir = TempDir::new("ctl");
    let stale = dir.0.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let listener = bind(&stale).await.unwrap();
    drop(listener);

    let file = dir.0.join("file");
    std::fs::write(&file, "keep me").unwrap();
    let err = bind(&file).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    let err = bind(&dir.0).await.unwrap_err();
    assert!(err.to_string().contains("directory"), "{err}");
}
