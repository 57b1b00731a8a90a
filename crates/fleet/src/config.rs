//! `[Fleet]` in fail2ban.local (ferroban only; fail2ban ignores sections it does not know), and
//! the trust file it names.
//!
//! ```ini
//! [Fleet]
//! enabled     = true
//! node        = web-01                      ; this node's id: [A-Za-z0-9_-], unique in the fleet
//! servers     = nats://10.0.0.5:4222, nats://10.0.0.6:4222
//! user        = web-01                      ; or: token = …, or: creds = /etc/ferroban/fleet/web-01.creds
//! password    = …
//! tls_ca      = /etc/ferroban/fleet/ca.pem  ; tls_cert + tls_key for client certificates; tls = required
//! signing_key = /etc/ferroban/fleet/web-01.key   ; ed25519, created (0600) on first start
//! trust       = /etc/ferroban/fleet/trust   ; the fleet's public keys and per-origin policy
//! role        = detect+enforce              ; enforce-only (LB/edge), detect-only
//! jails       = sshd nginx-http-auth        ; shared jails (default: all)
//! share_failures = sshd                     ; jails counting failures fleet-wide (default: none)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::FleetError;

/// What this node does in the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Role {
    /// Publishes its own bans and enforces everyone's (the default).
    #[serde(rename = "detect+enforce")]
    DetectEnforce,
    /// Enforces the fleet's bans; publishes nothing (a load balancer or edge host).
    #[serde(rename = "enforce-only")]
    EnforceOnly,
    /// Publishes its bans; does not apply remote ones.
    #[serde(rename = "detect-only")]
    DetectOnly,
}

impl Role {
    /// Whether local bans are published.
    pub fn publishes(self) -> bool {
        self != Role::EnforceOnly
    }

    /// Whether remote bans are applied.
    pub fn enforces(self) -> bool {
        self != Role::DetectOnly
    }

    /// The name used in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Role::DetectEnforce => "detect+enforce",
            Role::EnforceOnly => "enforce-only",
            Role::DetectOnly => "detect-only",
        }
    }
}

/// The fleet settings of this node.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// This node's id (subject token, key id, origin of its events).
    pub node: String,
    /// NATS server URLs.
    pub servers: Vec<String>,
    /// User name and password.
    pub user: Option<(String, String)>,
    /// Token.
    pub token: Option<String>,
    /// A NATS `.creds` file (JWT + nkey seed).
    pub creds: Option<PathBuf>,
    /// CA certificate(s) to verify the servers.
    pub tls_ca: Option<PathBuf>,
    /// Client certificate and key.
    pub tls_client: Option<(PathBuf, PathBuf)>,
    /// `tls = required`.
    pub tls_required: bool,
    /// This node's ed25519 signing key (created on first start when missing).
    pub signing_key: PathBuf,
    /// The trust file.
    pub trust: PathBuf,
    /// The role.
    pub role: Role,
    /// Shared jails (`None`: every jail).
    pub jails: Option<Vec<String>>,
    /// JetStream stream name (default `FB_DEC`).
    pub stream: String,
    /// Subject prefix (default `fb.v1`).
    pub prefix: String,
    /// Replicas when this node creates the stream (a clustered JetStream: 3).
    pub replicas: usize,
    /// Create the stream when it does not exist (needs the JetStream API permission to do so).
    pub manage_stream: bool,
    /// The stream's `max_age` in seconds (longer bans are re-asserted by their origin).
    pub max_age: f64,
    /// Jails that count failures fleet-wide (`share_failures`; default none).
    pub share_failures: Vec<String>,
}

/// One `option = value` of the `[Fleet]` section with where it was written (`file:line`).
#[derive(Debug, Clone)]
pub struct RawOption {
    /// Option name (lower case).
    pub key: String,
    /// Its value.
    pub value: String,
    /// `file:line`, for messages.
    pub origin: String,
}

fn bad(o: &RawOption, why: impl std::fmt::Display) -> FleetError {
    FleetError::Config(format!(
        "{}: [Fleet] {} = {}: {why}",
        o.origin, o.key, o.value
    ))
}

/// A node id: letters, digits, `-` and `_` (it is a subject token and a key id).
pub fn valid_node_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn truthy(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

impl FleetConfig {
    /// Reads the `[Fleet]` options. `Ok(None)`: fleet mode is off (no section, or `enabled`
    /// false). Relative paths are taken relative to `base` (the configuration directory).
    pub fn parse(opts: &[RawOption], base: &Path) -> Result<Option<FleetConfig>, FleetError> {
        let map: BTreeMap<&str, &RawOption> = opts.iter().map(|o| (o.key.as_str(), o)).collect();
        let get = |k: &str| map.get(k).map(|o| o.value.trim()).filter(|v| !v.is_empty());
        let enabled = match map.get("enabled") {
            None => !opts.is_empty(),
            Some(o) => truthy(&o.value).ok_or_else(|| bad(o, "expected true or false"))?,
        };
        if !enabled {
            return Ok(None);
        }
        let missing = |k: &str| {
            FleetError::Config(format!("[Fleet] {k} is required when the fleet is enabled"))
        };
        let path = |k: &str| {
            get(k).map(|v| {
                let p = PathBuf::from(v);
                if p.is_absolute() { p } else { base.join(p) }
            })
        };
        let node = get("node").ok_or_else(|| missing("node"))?.to_string();
        if !valid_node_id(&node) {
            return Err(bad(
                map["node"],
                "a node id is 1-64 letters, digits, '-' or '_'",
            ));
        }
        let servers: Vec<String> = get("servers")
            .ok_or_else(|| missing("servers"))?
            .split([',', ' ', '\n', '\t'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        for s in &servers {
            if !(s.starts_with("nats://") || s.starts_with("tls://") || !s.contains("://")) {
                return Err(bad(
                    map["servers"],
                    format!("{s}: expected nats:// or tls://"),
                ));
            }
        }
        let user = match (get("user"), get("password")) {
            (Some(u), Some(p)) => Some((u.to_string(), p.to_string())),
            (None, None) => None,
            _ => return Err(missing("user and password (both)")),
        };
        let tls_client = match (path("tls_cert"), path("tls_key")) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => return Err(missing("tls_cert and tls_key (both)")),
        };
        let tls_required = match map.get("tls") {
            None => false,
            Some(o) => match o.value.trim() {
                "required" | "yes" | "true" | "on" => true,
                "no" | "false" | "off" | "optional" => false,
                _ => return Err(bad(o, "expected required or no")),
            },
        };
        let role = match map.get("role") {
            None => Role::DetectEnforce,
            Some(o) => match o.value.trim() {
                "detect+enforce" | "detect-enforce" | "both" => Role::DetectEnforce,
                "enforce-only" | "enforce" => Role::EnforceOnly,
                "detect-only" | "detect" => Role::DetectOnly,
                _ => {
                    return Err(bad(
                        o,
                        "expected detect+enforce, enforce-only or detect-only",
                    ));
                }
            },
        };
        let jails = get("jails").map(|v| {
            v.split([',', ' ', '\n', '\t'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        });
        let jails = match jails {
            Some(j) if j.iter().any(|x| x == "*" || x == "all") => None,
            j => j,
        };
        let stream = get("stream").unwrap_or("FB_DEC").to_string();
        if !stream
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(bad(
                map["stream"],
                "a stream name is letters, digits, '-' or '_'",
            ));
        }
        let prefix = get("subject_prefix").unwrap_or("fb.v1").to_string();
        let replicas = match map.get("replicas") {
            None => 1,
            Some(o) => o
                .value
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=5).contains(n))
                .ok_or_else(|| bad(o, "expected 1 to 5"))?,
        };
        let manage_stream = match map.get("manage_stream") {
            None => true,
            Some(o) => truthy(&o.value).ok_or_else(|| bad(o, "expected true or false"))?,
        };
        let max_age = match map.get("max_age") {
            None => 30.0 * 86400.0,
            Some(o) => ferroban_config::parse_duration(o.value.trim())
                .ok()
                .filter(|s| *s > 0.0)
                .ok_or_else(|| bad(o, "expected a positive duration"))?,
        };
        let share_failures: Vec<String> = get("share_failures")
            .map(|v| {
                v.split([',', ' ', '\n', '\t'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(o) = map.get("share_failures")
            && let Some(j) = share_failures
                .iter()
                .find(|j| jails.as_ref().is_some_and(|js| !js.contains(j)))
        {
            return Err(bad(
                o,
                format!("jail {j} does not share its bans (not in jails =)"),
            ));
        }
        for o in opts {
            const KNOWN: &[&str] = &[
                "enabled",
                "node",
                "servers",
                "user",
                "password",
                "token",
                "creds",
                "tls_ca",
                "tls_cert",
                "tls_key",
                "tls",
                "signing_key",
                "trust",
                "role",
                "jails",
                "stream",
                "subject_prefix",
                "replicas",
                "manage_stream",
                "max_age",
                "share_failures",
            ];
            if !KNOWN.contains(&o.key.as_str()) {
                return Err(bad(
                    o,
                    format!("unknown option (known: {})", KNOWN.join(", ")),
                ));
            }
        }
        Ok(Some(FleetConfig {
            signing_key: path("signing_key").ok_or_else(|| missing("signing_key"))?,
            trust: path("trust").ok_or_else(|| missing("trust"))?,
            node,
            servers,
            user,
            token: get("token").map(str::to_string),
            creds: path("creds"),
            tls_ca: path("tls_ca"),
            tls_client,
            tls_required,
            role,
            jails,
            stream,
            prefix,
            replicas,
            manage_stream,
            max_age,
            share_failures,
        }))
    }

    /// Whether jail `name` counts its failures fleet-wide (`share_failures`).
    pub fn shares_failures(&self, jail: &str) -> bool {
        self.shares(jail) && self.share_failures.iter().any(|x| x == jail)
    }

    /// Whether jail `name` shares its bans.
    pub fn shares(&self, jail: &str) -> bool {
        self.jails
            .as_ref()
            .is_none_or(|j| j.iter().any(|x| x == jail))
    }
}

/// What a receiver lets one origin do (a line of the trust file).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Jails it may ban in (`None`: all shared jails).
    pub jails: Option<Vec<String>>,
    /// Prefix (network) bans are accepted from it.
    pub prefix: bool,
    /// Longest ban accepted (seconds); longer ones are cut to this. `None`: no cap.
    pub max_bantime: Option<f64>,
    /// Permanent bans are accepted (else cut to `max_bantime`, or 7 days).
    pub permanent: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            jails: None,
            prefix: false,
            max_bantime: Some(7.0 * 86400.0),
            permanent: false,
        }
    }
}

/// A fleet member as the trust file lists it.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Node id.
    pub node: String,
    /// Its ed25519 public keys (two during a rotation).
    pub keys: Vec<ed25519_dalek::VerifyingKey>,
    /// What it may do.
    pub policy: Policy,
}

/// The trust file: one line per node,
/// `NODE PUBLIC-KEY[,PUBLIC-KEY2] [prefix=yes] [jails=a,b] [max_bantime=7d] [permanent=yes]`,
/// public keys in base64 (as `<signing_key>.pub` holds them); `#` starts a comment.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// The peers by node id.
    pub peers: BTreeMap<String, Peer>,
}

impl Trust {
    /// Reads the trust file.
    pub fn load(path: &Path) -> Result<Trust, FleetError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| FleetError::Config(format!("trust file {}: {e}", path.display())))?;
        Trust::parse(&text, &path.display().to_string())
    }

    /// Parses trust file text (`name` for messages).
    pub fn parse(text: &str, name: &str) -> Result<Trust, FleetError> {
        let mut peers = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let err = |why: String| FleetError::Config(format!("{name}:{}: {why}", n + 1));
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let node = words.next().unwrap_or_default().to_string();
            if !valid_node_id(&node) {
                return Err(err(format!("{node:?} is not a node id")));
            }
            let keys_text = words
                .next()
                .ok_or_else(|| err(format!("{node}: no public key")))?;
            let mut keys = Vec::new();
            for k in keys_text.split(',') {
                keys.push(
                    crate::event::parse_public_key(k)
                        .map_err(|e| err(format!("{node}: public key {k}: {e}")))?,
                );
            }
            let mut policy = Policy::default();
            for w in words {
                let (k, v) = w
                    .split_once('=')
                    .ok_or_else(|| err(format!("{w:?}: expected option=value")))?;
                let yes = || truthy(v).ok_or_else(|| err(format!("{k}={v}: expected yes or no")));
                match k {
                    "prefix" => policy.prefix = yes()?,
                    "permanent" => policy.permanent = yes()?,
                    "jails" => {
                        policy.jails = Some(
                            v.split(',')
                                .filter(|s| !s.is_empty())
                                .map(str::to_string)
                                .collect(),
                        )
                    }
                    "max_bantime" => {
                        policy.max_bantime = if v == "none" {
                            None
                        } else {
                            Some(
                                ferroban_config::parse_duration(v)
                                    .map_err(|e| err(format!("max_bantime={v}: {e}")))?,
                            )
                        }
                    }
                    _ => return Err(err(format!("unknown option {k:?}"))),
                }
            }
            if peers.contains_key(&node) {
                return Err(err(format!("{node} is listed twice")));
            }
            peers.insert(node.clone(), Peer { node, keys, policy });
        }
        Ok(Trust { peers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> Vec<RawOption> {
        pairs
            .iter()
            .enumerate()
            .map(|(i, (k, v))| RawOption {
                key: k.to_string(),
                value: v.to_string(),
                origin: format!("fail2ban.local:{}", i + 2),
            })
            .collect()
    }

    #[test]
    fn off_without_section_or_when_disabled() {
        assert!(
            FleetConfig::parse(&[], Path::new("/etc"))
                .unwrap()
                .is_none()
        );
        let r = raw(&[("enabled", "false"), ("node", "a")]);
        assert!(FleetConfig::parse(&r, Path::new("/etc")).unwrap().is_none());
    }

    #[test]
    fn parses_a_full_section() {
        let r = raw(&[
            ("node", "web-01"),
            ("servers", "nats://127.0.0.1:4222, tls://10.0.0.2:4222"),
            ("user", "web-01"),
            ("password", "pw"),
            ("signing_key", "fleet/web-01.key"),
            ("trust", "/etc/ferroban/fleet/trust"),
            ("role", "enforce-only"),
            ("jails", "sshd nginx"),
            ("replicas", "3"),
        ]);
        let c = FleetConfig::parse(&r, Path::new("/etc/ferroban"))
            .unwrap()
            .unwrap();
        assert_eq!(c.node, "web-01");
        assert_eq!(c.servers.len(), 2);
        assert_eq!(c.signing_key, Path::new("/etc/ferroban/fleet/web-01.key"));
        assert_eq!(c.role, Role::EnforceOnly);
        assert!(c.shares("sshd") && !c.shares("recidive"));
        assert_eq!(c.replicas, 3);
        assert_eq!(c.stream, "FB_DEC");
        assert!(c.share_failures.is_empty() && !c.shares_failures("sshd"));
    }

    #[test]
    fn share_failures_lists_jails_that_share_bans() {
        let base = [
            ("node", "a"),
            ("servers", "nats://x"),
            ("signing_key", "k"),
            ("trust", "t"),
            ("jails", "sshd nginx"),
        ];
        let mut r = raw(&base);
        r.extend(raw(&[("share_failures", "sshd")]).into_iter().map(|mut o| {
            o.origin = "fail2ban.local:9".into();
            o
        }));
        let c = FleetConfig::parse(&r, Path::new("/")).unwrap().unwrap();
        assert!(c.shares_failures("sshd") && !c.shares_failures("nginx"));
        r.last_mut().unwrap().value = "sshd, recidive".into();
        let e = FleetConfig::parse(&r, Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("fail2ban.local:9") && e.contains("recidive"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let r = raw(&[("node", "web 01"), ("servers", "nats://x")]);
        let e = FleetConfig::parse(&r, Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("fail2ban.local:2") && e.contains("node"), "{e}");
        let r = raw(&[
            ("node", "a"),
            ("servers", "nats://x"),
            ("signing_key", "k"),
            ("trust", "t"),
            ("rol", "x"),
        ]);
        let e = FleetConfig::parse(&r, Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("fail2ban.local:6") && e.contains("unknown option"),
            "{e}"
        );
    }

    #[test]
    fn trust_file_lines_and_errors() {
        let k = crate::event::SigningKey::from_bytes(&[7; 32]);
        let pk = crate::event::public_key_text(&k.verifying_key());
        let t = Trust::parse(
            &format!("# fleet\nn1 {pk} prefix=yes jails=sshd max_bantime=1d\nn2 {pk}\n"),
            "trust",
        )
        .unwrap();
        assert!(t.peers["n1"].policy.prefix);
        assert_eq!(t.peers["n1"].policy.max_bantime, Some(86400.0));
        assert!(!t.peers["n2"].policy.prefix);
        let e = Trust::parse("n1 notakey\n", "trust")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("trust:1:"), "{e}");
        let e = Trust::parse(&format!("n1 {pk} bogus=1\n"), "trust")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown option"), "{e}");
    }
}
