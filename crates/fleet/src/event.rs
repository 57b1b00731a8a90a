//! The fleet event (v1), its subject, and ed25519 signatures.
//!
//! The body is JSON; the signature covers the exact body bytes and travels in the `Fb-Sig`
//! header (base64), with the key id (the origin's node id) in `Fb-Kid`. The subject is
//! `<prefix>.<origin>.dec.<jail>.<ipkey>`: with `max_messages_per_subject = 1` the stream keeps
//! only the newest decision per (origin, jail, address), i.e. it is the compacted state.

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
pub use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use ed25519_dalek::{Signer, Verifier};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::FleetError;

/// Ban or unban.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A ban.
    Ban,
    /// The origin lifted its own ban early.
    Unban,
}

/// Which clock the times are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockKind {
    /// Corrected to the NATS server's clock (skew measured).
    Engine,
    /// The origin's own clock (no measurement yet).
    Local,
}

/// One decision of one origin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Schema version (1).
    pub v: u32,
    /// Ban or unban.
    pub kind: Kind,
    /// Unique id: `<origin>.<oseq>` (also the `Nats-Msg-Id`, so retries are deduplicated).
    pub id: String,
    /// The node that decided.
    pub origin: String,
    /// The origin's event counter (monotonic, persisted): last writer wins per origin.
    pub oseq: u64,
    /// The jail.
    pub jail: String,
    /// The address or network (`203.0.113.7`, `203.0.113.0/24`).
    pub ip: String,
    /// When, in ms since the epoch (fleet clock).
    pub issued_at: i64,
    /// When the ban ends, ms since the epoch (fleet clock); `None`: permanent.
    pub expires_at: Option<i64>,
    /// Whether the times are skew-corrected.
    pub clock: ClockKind,
}

/// A parsed address or network, normalised (`203.0.113.7` has prefix 32).
pub fn parse_target(ip: &str) -> Option<IpNet> {
    if let Ok(n) = ip.parse::<IpNet>() {
        return Some(n.trunc());
    }
    ip.parse::<IpAddr>().ok().map(IpNet::from)
}

/// Whether the target is a network (not a single address).
pub fn is_prefix(net: &IpNet) -> bool {
    net.prefix_len() < net.max_prefix_len()
}

/// The target as ferroban writes it: a single address without `/32`.
pub fn target_text(net: &IpNet) -> String {
    if is_prefix(net) {
        net.to_string()
    } else {
        net.addr().to_string()
    }
}

/// The subject-safe key of an address or network: the lower-case hex of the 16-byte
/// IPv6(-mapped) network address, `p`, and the prefix length in IPv6 terms. No `.` or `:`.
pub fn ipkey(net: &IpNet) -> String {
    let (bytes, plen) = match net {
        IpNet::V4(n) => (n.network().to_ipv6_mapped().octets(), n.prefix_len() + 96),
        IpNet::V6(n) => (n.network().octets(), n.prefix_len()),
    };
    let mut s = String::with_capacity(36);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s.push('p');
    s.push_str(&plen.to_string());
    s
}

/// A jail name as one subject token: kept when it is letters, digits, `-` and `_`, else `x`
/// and the hex of its bytes.
pub fn jail_token(jail: &str) -> String {
    if !jail.is_empty()
        && jail
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !jail.starts_with('x')
    {
        jail.to_string()
    } else {
        let mut s = String::from("x");
        for b in jail.bytes() {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

/// The subject of a decision.
pub fn subject(prefix: &str, origin: &str, jail: &str, net: &IpNet) -> String {
    format!("{prefix}.{origin}.dec.{}.{}", jail_token(jail), ipkey(net))
}

/// The origin token of a decision subject (`None` when it is not one).
pub fn subject_origin<'a>(prefix: &str, subject: &'a str) -> Option<&'a str> {
    let rest = subject.strip_prefix(prefix)?.strip_prefix('.')?;
    let mut parts = rest.split('.');
    let origin = parts.next()?;
    (parts.next()? == "dec").then_some(origin)
}

impl Event {
    /// The JSON body.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an event always serialises")
    }

    /// The target, parsed.
    pub fn target(&self) -> Option<IpNet> {
        parse_target(&self.ip)
    }
}

/// Signs `body`: the base64 signature for `Fb-Sig`.
pub fn sign(key: &SigningKey, body: &[u8]) -> String {
    B64.encode(key.sign(body).to_bytes())
}

/// Checks `sig` (base64) over `body` against any of `keys`.
pub fn verify(keys: &[VerifyingKey], body: &[u8], sig: &str) -> bool {
    let Ok(raw) = B64.decode(sig.trim()) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(&raw) else {
        return false;
    };
    keys.iter().any(|k| k.verify(body, &sig).is_ok())
}

/// A public key in the trust file's form (base64 of the 32 bytes).
pub fn public_key_text(k: &VerifyingKey) -> String {
    B64.encode(k.as_bytes())
}

/// Parses a base64 public key.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let raw = B64.decode(text.trim()).map_err(|e| e.to_string())?;
    let arr: [u8; 32] = raw
        .try_into()
        .map_err(|_| "expected 32 bytes".to_string())?;
    VerifyingKey::from_bytes(&arr).map_err(|e| e.to_string())
}

/// Reads the signing key (base64 of the 32-byte seed), or creates it (mode 0600) with its public
/// key beside it (`<path>.pub`) when the file does not exist.
pub fn load_or_create_key(path: &Path) -> Result<SigningKey, FleetError> {
    let err = |e: String| FleetError::Config(format!("signing key {}: {e}", path.display()));
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let raw = B64.decode(text.trim()).map_err(|e| err(e.to_string()))?;
            let seed: [u8; 32] = raw
                .try_into()
                .map_err(|_| err("expected the base64 of 32 bytes".into()))?;
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            use std::io::Read;
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut seed))
                .map_err(|e| err(format!("/dev/urandom: {e}")))?;
            let key = SigningKey::from_bytes(&seed);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
            }
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| err(e.to_string()))?;
            writeln!(f, "{}", B64.encode(seed)).map_err(|e| err(e.to_string()))?;
            let mut pubpath = path.as_os_str().to_owned();
            pubpath.push(".pub");
            std::fs::write(
                &pubpath,
                format!("{}\n", public_key_text(&key.verifying_key())),
            )
            .map_err(|e| err(e.to_string()))?;
            Ok(key)
        }
        Err(e) => Err(err(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev() -> Event {
        Event {
            v: 1,
            kind: Kind::Ban,
            id: "n1.1".into(),
            origin: "n1".into(),
            oseq: 1,
            jail: "sshd".into(),
            ip: "203.0.113.7".into(),
            issued_at: 1_700_000_000_000,
            expires_at: Some(1_700_000_600_000),
            clock: ClockKind::Engine,
        }
    }

    #[test]
    fn ipkey_is_subject_safe_and_distinct() {
        let a = ipkey(&parse_target("203.0.113.7").unwrap());
        let b = ipkey(&parse_target("203.0.113.0/24").unwrap());
        let c = ipkey(&parse_target("2001:db8::7").unwrap());
        assert_eq!(a, "00000000000000000000ffffcb007107p128");
        assert!(b.ends_with("p120") && a != b && a != c);
        assert!(!c.contains([':', '.']));
        assert_eq!(
            target_text(&parse_target("10.1.2.3/8").unwrap()),
            "10.0.0.0/8"
        );
    }

    #[test]
    fn subject_round_trip() {
        let net = parse_target("198.18.1.1").unwrap();
        let s = subject("fb.v1", "web-01", "nginx.http", &net);
        assert_eq!(subject_origin("fb.v1", &s), Some("web-01"));
        assert_eq!(s.split('.').count(), 6, "{s}");
        assert_eq!(subject_origin("fb.v1", "fb.v1.web-01.clock"), None);
    }

    #[test]
    fn signatures_verify_only_with_the_right_key_and_body() {
        let k1 = SigningKey::from_bytes(&[1; 32]);
        let k2 = SigningKey::from_bytes(&[2; 32]);
        let body = ev().body();
        let sig = sign(&k1, &body);
        assert!(verify(&[k1.verifying_key()], &body, &sig));
        assert!(!verify(&[k2.verifying_key()], &body, &sig));
        let mut other = ev();
        other.expires_at = Some(1_800_000_000_000);
        assert!(!verify(&[k1.verifying_key()], &other.body(), &sig));
        assert!(!verify(&[k1.verifying_key()], &body, "bm90IGEgc2ln"));
        let back: Event = serde_json::from_slice(&body).unwrap();
        assert_eq!(back, ev());
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k/node.key");
        let a = load_or_create_key(&p).unwrap();
        let b = load_or_create_key(&p).unwrap();
        assert_eq!(a.to_bytes(), b.to_bytes());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let pubtext = std::fs::read_to_string(dir.path().join("k/node.key.pub")).unwrap();
        assert_eq!(parse_public_key(&pubtext).unwrap(), a.verifying_key());
    }
}
