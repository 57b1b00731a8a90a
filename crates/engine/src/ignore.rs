//! `ignoreip`, `ignoreself` and `ignorecommand`: which failure ids a jail never bans.
//!
//! As in fail2ban, `ignoreip` takes addresses, networks (`a.b.c.d/n`, `addr/mask`) and host
//! names (resolved, trusted for five minutes); `ignoreself` ignores every address of the
//! machine's interfaces; `ignorecommand` is run with the id substituted (escaped; an address is
//! validated first) and ignores the id when it exits with 0; `ignorecache` (`key="<ip>",
//! max-count=100, max-time=5m`) remembers verdicts per rendered key.
//!
//! The engine does no I/O: [`IgnoreList::verdict`] answers from what it knows, or names the
//! [`Lookup`] it needs (a host name to resolve, a command to run). The daemon performs it off the
//! engine, with a timeout, and hands the answer back ([`IgnoreList::resolved`],
//! [`IgnoreList::command_done`]); meanwhile only the failures of that id wait.
//!
//! `ignoreip = file:PATH` (fail2ban 1.1) takes the entries listed in a file (addresses,
//! networks, names; separated by white space, commas or new lines; `#` starts a comment). The
//! file is read when the list is built and again by [`IgnoreList::reload_files`] when its
//! identity, size or modification time changed (the daemon calls it once a second; that `stat`
//! is the only I/O, outside the engine's checks).

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::time::Duration;

use crate::ip::HostId;
use crate::ttl::TtlCache;

/// How long a resolved `ignoreip` host name is trusted.
const DNS_TTL: f64 = 300.0;

/// One `ignoreip` entry.
#[derive(Debug, Clone, PartialEq)]
pub enum IgnoreEntry {
    /// An address or network.
    Net(HostId),
    /// A host name, resolved when checked.
    Name(String),
}

impl IgnoreEntry {
    /// Parses one entry as fail2ban does: an address/network when it parses, else a name.
    pub fn parse(text: &str) -> IgnoreEntry {
        match HostId::parse(text) {
            HostId::Raw(s) => IgnoreEntry::Name(s),
            id => IgnoreEntry::Net(id),
        }
    }
}

impl std::fmt::Display for IgnoreEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IgnoreEntry::Net(id) => write!(f, "{id}"),
            IgnoreEntry::Name(n) => f.write_str(n),
        }
    }
}

/// Why an id is ignored (fail2ban logs `Ignore <ip> by <source>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreReason {
    /// `ignoreself`.
    Self_,
    /// `ignoreip`.
    Ip,
    /// `ignorecommand`.
    Command,
    /// A verdict remembered by `ignorecache`.
    Cache,
}

impl IgnoreReason {
    /// The word fail2ban logs.
    pub fn word(self) -> &'static str {
        match self {
            IgnoreReason::Self_ => "ignoreself rule",
            IgnoreReason::Ip => "ip",
            IgnoreReason::Command => "command",
            IgnoreReason::Cache => "cache",
        }
    }
}

/// A resolver for host names (injectable: tests never touch DNS).
pub type NameResolver = fn(&str) -> Vec<IpAddr>;

fn system_resolve(name: &str) -> Vec<IpAddr> {
    (name, 0)
        .to_socket_addrs()
        .map(|it| it.map(|a| a.ip()).collect())
        .unwrap_or_default()
}

/// I/O a jail needs, done by the caller off the engine: for an ignore verdict, or to turn a
/// host name found in a log line into addresses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Lookup {
    /// Resolve this `ignoreip` host name; answer with [`IgnoreList::resolved`].
    Resolve(String),
    /// Run this `ignorecommand` (the id already substituted, quoted for the shell); answer with
    /// [`IgnoreList::command_done`] (`true`: exit status 0).
    Command(String),
    /// Resolve this host name a failregex found (`<HOST>` matched a name, `usedns = yes|warn`);
    /// answer with [`crate::jail::Jail::answer_dns`]. The failures of that name wait for it.
    HostName(String),
}

/// The answer of [`IgnoreList::verdict`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The id is ignored.
    Ignored(IgnoreReason),
    /// The id is not ignored.
    NotIgnored,
    /// The answer needs this lookup first.
    Unknown(Lookup),
}

/// fail2ban's `ignorecache`: verdicts by rendered key, at most `max_count` (oldest dropped
/// first), each trusted for `max_time` seconds.
#[derive(Debug, Clone)]
pub struct IgnoreCache {
    key: String,
    max_count: usize,
    max_time: f64,
    verdicts: TtlCache<bool>,
}

impl IgnoreCache {
    /// Parses `key="<ip>", max-count=100, max-time=5m` (defaults: 100 entries, 300 s).
    pub fn parse(text: &str) -> Result<IgnoreCache, String> {
        let mut key = None;
        let mut max_count = 100usize;
        let mut max_time = 300.0;
        for part in split_options(text) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("ignorecache: {part:?} is not name=value"))?;
            let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
            match k.trim() {
                "key" => key = Some(v.to_string()),
                "max-count" => {
                    max_count = v
                        .parse()
                        .map_err(|_| format!("ignorecache: max-count {v:?} is not a number"))?
                }
                "max-time" => {
                    max_time = ferroban_config::parse_duration(v)
                        .map_err(|e| format!("ignorecache: max-time {v:?}: {e}"))?
                }
                other => return Err(format!("ignorecache: unknown option {other:?}")),
            }
        }
        let key = key.ok_or("ignorecache: no key")?;
        Ok(IgnoreCache {
            key,
            max_count,
            max_time,
            verdicts: TtlCache::new(max_count, max_time),
        })
    }

    /// The options as given: the key (its tags not rendered), `max-count` and `max-time` in
    /// seconds (what fail2ban's `get <JAIL> ignorecache` answers).
    pub fn options(&self) -> (&str, usize, f64) {
        (&self.key, self.max_count, self.max_time)
    }

    fn render(&self, id: &HostId, fields: &[(String, String)]) -> String {
        let mut k = self.key.replace("<ip>", &id.to_string());
        for (name, v) in fields {
            k = k.replace(&format!("<F-{}>", name.to_ascii_uppercase()), v);
        }
        k
    }

    fn get(&mut self, key: &str, now: f64) -> Option<bool> {
        self.verdicts.get(key, now).copied()
    }

    fn set(&mut self, key: String, v: bool, now: f64) {
        self.verdicts.set(key, v, now);
    }
}

/// `a="x, y", b=2` split at the commas outside quotes.
fn split_options(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    for c in text.chars() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (None, ',') => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// One `ignoreip = file:PATH`: the file's identity when last read and its entries.
#[derive(Debug, Clone)]
struct IgnoreFile {
    path: std::path::PathBuf,
    /// (device, inode, size, modification time in ns) when last read; `None`: unreadable.
    stamp: Option<(u64, u64, u64, i128)>,
    entries: Vec<IgnoreEntry>,
    /// Read at least once (a missing file is logged once, not at every reload).
    seen: bool,
}

impl IgnoreFile {
    fn new(path: &str) -> IgnoreFile {
        IgnoreFile {
            path: path.into(),
            stamp: None,
            entries: Vec::new(),
            seen: false,
        }
    }

    /// Reads the file again if it changed; whether its entries changed.
    fn reload(&mut self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let stamp = std::fs::metadata(&self.path).ok().map(|m| {
            (
                m.dev(),
                m.ino(),
                m.len(),
                i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            )
        });
        if self.seen && stamp == self.stamp {
            return false;
        }
        self.seen = true;
        self.stamp = stamp;
        let entries = match std::fs::read_to_string(&self.path) {
            Ok(text) => parse_ignore_file(&text),
            Err(e) => {
                crate::log::log(
                    crate::log::Level::Error,
                    "filter",
                    &format!("ignoreip file:{}: {e}", self.path.display()),
                );
                Vec::new()
            }
        };
        if entries == self.entries {
            return false;
        }
        crate::log::log(
            crate::log::Level::Info,
            "filter",
            &format!(
                "ignoreip file:{}: {} entries",
                self.path.display(),
                entries.len()
            ),
        );
        self.entries = entries;
        true
    }
}

/// The entries of an `ignoreip` file: separated by white space or commas, `#` to the end of a
/// line is a comment.
fn parse_ignore_file(text: &str) -> Vec<IgnoreEntry> {
    let mut out: Vec<IgnoreEntry> = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        for word in line.split(|c: char| c.is_whitespace() || c == ',') {
            if word.is_empty() {
                continue;
            }
            let e = IgnoreEntry::parse(word);
            if !out.contains(&e) {
                out.push(e);
            }
        }
    }
    out
}

/// A jail's ignore rules.
#[derive(Debug, Clone)]
pub struct IgnoreList {
    /// What the checks use: `configured`, then the entries of every `file:`.
    entries: Vec<IgnoreEntry>,
    /// The entries given directly (and added or removed by the control socket).
    configured: Vec<IgnoreEntry>,
    /// `ignoreip = file:PATH` entries.
    files: Vec<IgnoreFile>,
    ignore_self: bool,
    self_addrs: Vec<IpAddr>,
    command: Option<String>,
    resolver: NameResolver,
    dns_cache: HashMap<String, (f64, Vec<IpAddr>)>,
    cache: Option<IgnoreCache>,
    /// Command verdicts that arrived, for the failures that waited on them (one use each run).
    answers: HashMap<String, bool>,
}

impl IgnoreList {
    /// Rules from the jail's `ignoreip` entries, `ignoreself` and `ignorecommand`.
    pub fn new(entries: &[String], ignore_self: bool, command: Option<String>) -> IgnoreList {
        let mut configured = Vec::new();
        let mut files = Vec::new();
        for e in entries {
            match e.strip_prefix("file:") {
                Some(path) => files.push(IgnoreFile::new(path.trim())),
                None => configured.push(IgnoreEntry::parse(e)),
            }
        }
        let mut list = IgnoreList {
            entries: Vec::new(),
            configured,
            files,
            ignore_self,
            self_addrs: if ignore_self {
                recent_local_addresses()
            } else {
                Vec::new()
            },
            command: command.filter(|c| !c.trim().is_empty()),
            resolver: system_resolve,
            dns_cache: HashMap::new(),
            cache: None,
            answers: HashMap::new(),
        };
        list.reload_files();
        list.rebuild();
        list
    }

    /// Re-reads each `ignoreip = file:PATH` whose file changed (other inode or device, size or
    /// modification time) since it was last read; returns whether any did. A file that cannot
    /// be read contributes nothing until it can (logged once per change).
    pub fn reload_files(&mut self) -> bool {
        let mut changed = false;
        for f in &mut self.files {
            changed |= f.reload();
        }
        if changed {
            self.rebuild();
        }
        changed
    }

    /// The list as `ignoreip` words that build it again: the direct entries, then `file:PATH`
    /// for each file (whose entries [`IgnoreList::entries`] lists instead), so that a list
    /// rebuilt from them goes on following the files.
    pub fn sources(&self) -> Vec<String> {
        self.configured
            .iter()
            .map(|e| e.to_string())
            .chain(
                self.files
                    .iter()
                    .map(|f| format!("file:{}", f.path.display())),
            )
            .collect()
    }

    /// The `file:` paths of `ignoreip`.
    pub fn files(&self) -> impl Iterator<Item = &std::path::Path> {
        self.files.iter().map(|f| f.path.as_path())
    }

    fn rebuild(&mut self) {
        self.entries = self.configured.clone();
        for f in &self.files {
            for e in &f.entries {
                if !self.entries.contains(e) {
                    self.entries.push(e.clone());
                }
            }
        }
    }

    /// Sets `ignorecache` (`None`: no cache).
    pub fn set_cache(&mut self, cache: Option<IgnoreCache>) {
        self.cache = cache;
    }

    /// Whether `ignorecommand` is set.
    pub fn has_command(&self) -> bool {
        self.command.is_some()
    }

    /// Whether `id` is ignored at `now`, without I/O: `ignoreself`, `ignoreip` (host names as
    /// last resolved), `ignorecache`, and `ignorecommand`'s answer when it came in
    /// ([`IgnoreList::command_done`]); otherwise the [`Lookup`] needed. `fields` are the
    /// failure's `F-*` values (for `ignorecache`'s key).
    pub fn verdict(&mut self, id: &HostId, now: f64, fields: &[(String, String)]) -> Verdict {
        let key = self.cache.as_ref().map(|c| c.render(id, fields));
        if let (Some(c), Some(k)) = (self.cache.as_mut(), key.as_ref())
            && let Some(v) = c.get(k, now)
        {
            return if v {
                Verdict::Ignored(IgnoreReason::Cache)
            } else {
                Verdict::NotIgnored
            };
        }
        let v = self.verdict_uncached(id, now);
        if let (Some(c), Some(k)) = (self.cache.as_mut(), key) {
            match &v {
                Verdict::Ignored(_) => c.set(k, true, now),
                Verdict::NotIgnored => c.set(k, false, now),
                Verdict::Unknown(_) => {}
            }
        }
        v
    }

    fn verdict_uncached(&mut self, id: &HostId, now: f64) -> Verdict {
        if let Some(r) = self.static_check(id) {
            return Verdict::Ignored(r);
        }
        for e in &self.entries {
            if let IgnoreEntry::Name(name) = e {
                match self.dns_cache.get(name) {
                    Some((t, addrs)) if now - t < DNS_TTL => {
                        if addrs
                            .iter()
                            .any(|a| HostId::Addr(*a) == *id || covers(id, &HostId::Addr(*a)))
                        {
                            return Verdict::Ignored(IgnoreReason::Ip);
                        }
                    }
                    _ => return Verdict::Unknown(Lookup::Resolve(name.clone())),
                }
            }
        }
        if let Some(cmd) = &self.command {
            let cmd = render_command(cmd, id);
            return match self.answers.get(&cmd) {
                Some(true) => Verdict::Ignored(IgnoreReason::Command),
                Some(false) => Verdict::NotIgnored,
                None => Verdict::Unknown(Lookup::Command(cmd)),
            };
        }
        Verdict::NotIgnored
    }

    /// `ignoreself` and the address/network entries of `ignoreip` (and a raw id equal to a name).
    fn static_check(&self, id: &HostId) -> Option<IgnoreReason> {
        if self.ignore_self
            && self
                .self_addrs
                .iter()
                .any(|a| covers(id, &HostId::Addr(*a)) || HostId::Addr(*a) == *id)
        {
            return Some(IgnoreReason::Self_);
        }
        let hit = self.entries.iter().any(|e| match e {
            IgnoreEntry::Net(net) => net.contains(id) || covers(id, net) || raw_equal(net, id),
            IgnoreEntry::Name(name) => matches!(id, HostId::Raw(r) if r == name),
        });
        hit.then_some(IgnoreReason::Ip)
    }

    /// The addresses of `name` (a [`Lookup::Resolve`]) at `now`.
    pub fn resolved(&mut self, name: &str, addrs: Vec<IpAddr>, now: f64) {
        self.dns_cache.insert(name.to_string(), (now, addrs));
    }

    /// The exit of `command` (a [`Lookup::Command`]): `true` when it exited with 0. Used by the
    /// next verdict that needs it (the failures that waited for this run).
    pub fn command_done(&mut self, command: &str, ignored: bool) {
        self.answers.insert(command.to_string(), ignored);
    }

    /// Forgets a command answer nobody used.
    pub fn forget_answer(&mut self, command: &str) {
        self.answers.remove(command);
    }

    /// Replaces the host-name resolver (tests).
    pub fn set_resolver(&mut self, r: NameResolver) {
        self.resolver = r;
        self.dns_cache.clear();
    }

    /// Replaces the machine's own addresses (tests).
    pub fn set_self_addresses(&mut self, addrs: Vec<IpAddr>) {
        self.self_addrs = addrs;
    }

    /// The `ignoreip` entries as written (`get <jail> ignoreip`).
    pub fn entries(&self) -> &[IgnoreEntry] {
        &self.entries
    }

    /// `ignoreself`.
    pub fn ignore_self(&self) -> bool {
        self.ignore_self
    }

    /// `set <jail> addignoreip`. `file:PATH` adds the file's entries, read now and followed
    /// like those of `ignoreip = file:PATH` (fail2ban's configuration reaches its server as this
    /// same command).
    pub fn add(&mut self, text: &str) {
        if let Some(path) = text.strip_prefix("file:") {
            let path = path.trim();
            if !self
                .files
                .iter()
                .any(|f| f.path == std::path::Path::new(path))
            {
                let mut f = IgnoreFile::new(path);
                f.reload();
                self.files.push(f);
            }
        } else {
            let e = IgnoreEntry::parse(text);
            if !self.configured.contains(&e) {
                self.configured.push(e);
            }
        }
        self.rebuild();
    }

    /// `set <jail> delignoreip` (`file:PATH`: that file's entries); returns whether it was
    /// there.
    pub fn remove(&mut self, text: &str) -> bool {
        let removed = if let Some(path) = text.strip_prefix("file:") {
            let before = self.files.len();
            self.files
                .retain(|f| f.path != std::path::Path::new(path.trim()));
            before != self.files.len()
        } else {
            let e = IgnoreEntry::parse(text);
            let before = self.configured.len();
            self.configured.retain(|x| *x != e);
            before != self.configured.len()
        };
        self.rebuild();
        removed
    }

    /// Whether `id` is ignored at `now`, and by what, doing the look-ups in place (blocking:
    /// tests and tools, never the daemon's engine, which uses [`IgnoreList::verdict`]).
    /// `ignoreip` also covers networks: a network id is ignored when an ignored network contains
    /// it, and (so that `ignoreip` always wins) a network that contains an ignored address is
    /// ignored too.
    pub fn check_blocking(&mut self, id: &HostId, now: f64) -> Option<IgnoreReason> {
        if self.ignore_self
            && self
                .self_addrs
                .iter()
                .any(|a| covers(id, &HostId::Addr(*a)) || HostId::Addr(*a) == *id)
        {
            return Some(IgnoreReason::Self_);
        }
        for i in 0..self.entries.len() {
            let hit = match &self.entries[i] {
                IgnoreEntry::Net(net) => net.contains(id) || covers(id, net) || raw_equal(net, id),
                IgnoreEntry::Name(name) => {
                    if let HostId::Raw(r) = id
                        && r == name
                    {
                        true
                    } else {
                        let name = name.clone();
                        self.resolve(&name, now)
                            .iter()
                            .any(|a| HostId::Addr(*a) == *id || covers(id, &HostId::Addr(*a)))
                    }
                }
            };
            if hit {
                return Some(IgnoreReason::Ip);
            }
        }
        if let Some(cmd) = &self.command
            && run_ignore_command(cmd, id)
        {
            return Some(IgnoreReason::Command);
        }
        None
    }

    /// Whether `id` is ignored by what is known without I/O: `ignoreself`, `ignoreip` (host
    /// names as last resolved), a cached `ignorecache` verdict. Used for prefixes and remote bans.
    pub fn check(&mut self, id: &HostId, now: f64) -> Option<IgnoreReason> {
        if let Some(r) = self.static_check(id) {
            return Some(r);
        }
        let by_name = self.entries.iter().any(|e| match e {
            IgnoreEntry::Name(name) => self.dns_cache.get(name).is_some_and(|(t, addrs)| {
                now - t < DNS_TTL
                    && addrs
                        .iter()
                        .any(|a| HostId::Addr(*a) == *id || covers(id, &HostId::Addr(*a)))
            }),
            IgnoreEntry::Net(_) => false,
        });
        if by_name {
            return Some(IgnoreReason::Ip);
        }
        let key = self.cache.as_ref().map(|c| c.render(id, &[]))?;
        self.cache
            .as_mut()
            .and_then(|c| c.get(&key, now))
            .filter(|v| *v)
            .map(|_| IgnoreReason::Cache)
    }

    fn resolve(&mut self, name: &str, now: f64) -> Vec<IpAddr> {
        if let Some((t, v)) = self.dns_cache.get(name)
            && now - t < DNS_TTL
        {
            return v.clone();
        }
        let v = (self.resolver)(name);
        self.dns_cache.insert(name.to_string(), (now, v.clone()));
        v
    }
}

/// `id` is a network containing `inner`.
fn covers(id: &HostId, inner: &HostId) -> bool {
    matches!(id, HostId::Net(..)) && id.contains(inner)
}

fn raw_equal(a: &HostId, b: &HostId) -> bool {
    a.to_string() == b.to_string()
}

/// `ignorecommand` for `id`: `<ip>` becomes the id (an address as printed, a raw id
/// single-quoted for the shell).
pub fn render_command(cmd: &str, id: &HostId) -> String {
    let value = if id.is_ip() {
        id.to_string()
    } else {
        shell_quote(&id.to_string())
    };
    cmd.replace("<ip>", &value)
}

/// Runs `ignorecommand` for `id`, blocking. Exit status 0 ignores; anything else (or a failure
/// to run) does not.
fn run_ignore_command(cmd: &str, id: &HostId) -> bool {
    let cmd = render_command(cmd, id);
    let child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(&cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return false;
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return st.success(),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

/// `'text'` with embedded quotes closed and escaped: safe as one shell word.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// How long one reading of the machine's addresses serves the jails created after it: the jails
/// of one start (or reload) are created within milliseconds of each other and share one
/// reading (one netlink dump instead of one per jail). fail2ban keeps its reading for five
/// minutes; a second keeps a jail created later from seeing an address change that late.
const LOCAL_ADDRESSES_REUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// The last reading of [`local_addresses`] and when it was taken.
static LOCAL_READING: std::sync::Mutex<Option<(std::time::Instant, Vec<IpAddr>)>> =
    std::sync::Mutex::new(None);

/// [`local_addresses`], read again only when the last reading is older than
/// [`LOCAL_ADDRESSES_REUSE`].
fn recent_local_addresses() -> Vec<IpAddr> {
    let mut last = LOCAL_READING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((at, addrs)) = last.as_ref()
        && at.elapsed() < LOCAL_ADDRESSES_REUSE
    {
        return addrs.clone();
    }
    let addrs = local_addresses();
    *last = Some((std::time::Instant::now(), addrs.clone()));
    addrs
}

/// Every address of the machine's interfaces (`ignoreself`), plus the loopback addresses.
pub fn local_addresses() -> Vec<IpAddr> {
    let mut out = vec![
        IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
    ];
    // SAFETY: getifaddrs fills a linked list that we walk read-only and free once.
    unsafe {
        let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut head) == 0 {
            let mut cur = head;
            while !cur.is_null() {
                let sa = (*cur).ifa_addr;
                if !sa.is_null() {
                    match i32::from((*sa).sa_family) {
                        libc::AF_INET => {
                            let sin = sa as *const libc::sockaddr_in;
                            let a = u32::from_be((*sin).sin_addr.s_addr);
                            out.push(IpAddr::V4(a.into()));
                        }
                        libc::AF_INET6 => {
                            let sin6 = sa as *const libc::sockaddr_in6;
                            out.push(IpAddr::V6((*sin6).sin6_addr.s6_addr.into()));
                        }
                        _ => {}
                    }
                }
                cur = (*cur).ifa_next;
            }
            libc::freeifaddrs(head);
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> IgnoreList {
        let e: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        let mut l = IgnoreList::new(&e, false, None);
        l.set_resolver(|n| match n {
            "trusted.example" => vec!["203.0.113.9".parse().unwrap()],
            _ => vec![],
        });
        l
    }

    #[test]
    fn addresses_networks_and_names() {
        let mut l = list(&[
            "127.0.0.1/8",
            "192.168.0.0/16",
            "2001:db8::/32",
            "trusted.example",
        ]);
        let ig = |l: &mut IgnoreList, s: &str| l.check_blocking(&HostId::parse(s), 0.0);
        assert_eq!(ig(&mut l, "127.0.0.5"), Some(IgnoreReason::Ip));
        assert_eq!(ig(&mut l, "192.168.44.1"), Some(IgnoreReason::Ip));
        assert_eq!(ig(&mut l, "2001:db8:1::7"), Some(IgnoreReason::Ip));
        assert_eq!(ig(&mut l, "203.0.113.9"), Some(IgnoreReason::Ip));
        assert_eq!(ig(&mut l, "198.51.100.7"), None);
        // A prefix that covers an ignored address is never banned.
        assert_eq!(ig(&mut l, "203.0.113.0/24"), Some(IgnoreReason::Ip));
        assert_eq!(ig(&mut l, "10.0.0.0/8"), None);
    }

    /// fail2ban 1.1's `ignoreip = file:PATH`: the file's entries are ignored, with comments and
    /// any separators; a change (size, time, or a new file under the name) is picked up by
    /// `reload_files`, and direct entries and `addignoreip` survive reloads.
    #[test]
    fn ignoreip_file_is_read_and_reloaded_when_it_changes() {
        let dir = std::env::temp_dir().join(format!("ferroban-ignorefile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ignore.lst");
        std::fs::write(&file, "# trusted\n192.0.2.1, 2001:db8::/32  # office\n").unwrap();
        let mut l = list(&["198.51.100.9", &format!("file:{}", file.display())]);
        let ig = |l: &mut IgnoreList, s: &str| l.check_blocking(&HostId::parse(s), 0.0);
        assert_eq!(ig(&mut l, "192.0.2.1"), Some(IgnoreReason::Ip));
        assert_eq!(ig(&mut l, "2001:db8::7"), Some(IgnoreReason::Ip));
        assert_eq!(ig(&mut l, "198.51.100.9"), Some(IgnoreReason::Ip));
        assert_eq!(ig(&mut l, "203.0.113.5"), None);
        assert!(!l.reload_files(), "unchanged file, nothing to do");
        l.add("203.0.113.0/24");
        // Replaced by a new file (as editors and config management write it).
        let tmp = dir.join("ignore.lst.new");
        std::fs::write(&tmp, "192.0.2.2\n").unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        assert!(l.reload_files());
        assert_eq!(ig(&mut l, "192.0.2.1"), None);
        assert_eq!(ig(&mut l, "192.0.2.2"), Some(IgnoreReason::Ip));
        assert_eq!(ig(&mut l, "2001:db8::7"), None);
        assert_eq!(ig(&mut l, "198.51.100.9"), Some(IgnoreReason::Ip));
        assert_eq!(ig(&mut l, "203.0.113.5"), Some(IgnoreReason::Ip));
        // Gone: its entries go too; back: read again.
        std::fs::remove_file(&file).unwrap();
        assert!(l.reload_files());
        assert_eq!(ig(&mut l, "192.0.2.2"), None);
        std::fs::write(&file, "192.0.2.3\n").unwrap();
        assert!(l.reload_files());
        assert_eq!(ig(&mut l, "192.0.2.3"), Some(IgnoreReason::Ip));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// `addignoreip file:PATH` at run time: the file's entries are ignored at once and followed
    /// like a configured file's; `delignoreip file:PATH` drops them (a direct entry stays).
    #[test]
    fn an_ignoreip_file_added_at_run_time_counts_at_once() {
        let dir = std::env::temp_dir().join(format!("ferroban-ignoreadd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("trusted.lst");
        std::fs::write(&file, "192.0.2.77 198.51.100.0/24\n").unwrap();
        let entry = format!("file:{}", file.display());
        let mut l = list(&["203.0.113.1"]);
        let ig = |l: &mut IgnoreList, s: &str| l.check_blocking(&HostId::parse(s), 0.0);
        assert_eq!(ig(&mut l, "192.0.2.77"), None);
        l.add(&entry);
        assert_eq!(ig(&mut l, "192.0.2.77"), Some(IgnoreReason::Ip));
        assert_eq!(ig(&mut l, "198.51.100.4"), Some(IgnoreReason::Ip));
        assert_eq!(l.files().count(), 1);
        // Added again: still one file.
        l.add(&entry);
        assert_eq!(l.files().count(), 1);
        std::fs::write(&file, "192.0.2.78\n").unwrap();
        assert!(l.reload_files());
        assert_eq!(ig(&mut l, "192.0.2.77"), None);
        assert_eq!(ig(&mut l, "192.0.2.78"), Some(IgnoreReason::Ip));
        // A list rebuilt from its sources (a jail rebuilt by a setting) follows the file still.
        assert_eq!(l.sources(), vec!["203.0.113.1".to_string(), entry.clone()]);
        let mut rebuilt = list(&l.sources().iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(ig(&mut rebuilt, "192.0.2.78"), Some(IgnoreReason::Ip));
        std::fs::write(&file, "192.0.2.79 192.0.2.80\n").unwrap();
        assert!(rebuilt.reload_files());
        assert_eq!(ig(&mut rebuilt, "192.0.2.79"), Some(IgnoreReason::Ip));
        assert!(l.reload_files());
        assert!(l.remove(&entry));
        assert!(!l.remove(&entry));
        assert_eq!(ig(&mut l, "192.0.2.79"), None);
        assert_eq!(ig(&mut l, "203.0.113.1"), Some(IgnoreReason::Ip));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn add_and_remove() {
        let mut l = list(&[]);
        l.add("198.51.100.0/24");
        assert!(
            l.check_blocking(&HostId::parse("198.51.100.7"), 0.0)
                .is_some()
        );
        assert!(l.remove("198.51.100.0/24"));
        assert!(
            l.check_blocking(&HostId::parse("198.51.100.7"), 0.0)
                .is_none()
        );
    }

    #[test]
    fn ignore_self_uses_local_addresses() {
        let mut l = IgnoreList::new(&[], true, None);
        l.set_self_addresses(vec!["192.0.2.10".parse().unwrap()]);
        assert_eq!(
            l.check_blocking(&HostId::parse("192.0.2.10"), 0.0),
            Some(IgnoreReason::Self_)
        );
        assert_eq!(l.check_blocking(&HostId::parse("192.0.2.11"), 0.0), None);
        assert!(local_addresses().contains(&"127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn jails_created_together_share_one_reading_of_the_local_addresses() {
        let taken = || LOCAL_READING.lock().unwrap().as_ref().map(|(at, _)| *at);
        std::thread::sleep(LOCAL_ADDRESSES_REUSE);
        let first = recent_local_addresses();
        let at = taken();
        assert!(first.contains(&"127.0.0.1".parse().unwrap()));
        // A jail created right after takes the same reading.
        assert_eq!(recent_local_addresses(), first);
        assert_eq!(taken(), at);
        // One created later reads again.
        std::thread::sleep(LOCAL_ADDRESSES_REUSE);
        assert_eq!(recent_local_addresses(), local_addresses());
        assert!(taken() > at);
    }

    #[test]
    fn ignore_command_exit_status_and_hostile_ids() {
        let dir = std::env::temp_dir().join(format!("ferroban-ign-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("pwned");
        let cmd = "test <ip> = 198.51.100.7".to_string();
        let mut l = IgnoreList::new(&[], false, Some(cmd));
        assert_eq!(
            l.check_blocking(&HostId::parse("198.51.100.7"), 0.0),
            Some(IgnoreReason::Command)
        );
        assert_eq!(l.check_blocking(&HostId::parse("198.51.100.8"), 0.0), None);
        // A raw id crafted to run a command is passed as one quoted word.
        let evil = format!("x'; touch {}; echo '", marker.display());
        assert_eq!(l.check_blocking(&HostId::raw(&evil), 0.0), None);
        let evil2 = format!("$(touch {})", marker.display());
        assert_eq!(l.check_blocking(&HostId::raw(&evil2), 0.0), None);
        assert!(!marker.exists(), "hostile id executed");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn verdicts_ask_for_lookups_then_use_answers_and_the_cache() {
        let mut l = IgnoreList::new(
            &["trusted.example".to_string()],
            false,
            Some("check <ip>".to_string()),
        );
        let cache = IgnoreCache::parse(r#"key="<ip>", max-count=2, max-time=60"#).unwrap();
        l.set_cache(Some(cache));
        let id = HostId::parse("192.0.2.5");
        let cmd = Lookup::Command("check 192.0.2.5".into());
        assert_eq!(
            l.verdict(&id, 0.0, &[]),
            Verdict::Unknown(Lookup::Resolve("trusted.example".into()))
        );
        l.resolved("trusted.example", vec!["203.0.113.9".parse().unwrap()], 0.0);
        assert_eq!(
            l.verdict(&HostId::parse("203.0.113.9"), 1.0, &[]),
            Verdict::Ignored(IgnoreReason::Ip)
        );
        assert_eq!(l.verdict(&id, 1.0, &[]), Verdict::Unknown(cmd.clone()));
        l.command_done("check 192.0.2.5", true);
        assert_eq!(
            l.verdict(&id, 1.0, &[]),
            Verdict::Ignored(IgnoreReason::Command)
        );
        l.forget_answer("check 192.0.2.5");
        // Remembered for max-time, then asked again.
        assert_eq!(
            l.verdict(&id, 60.0, &[]),
            Verdict::Ignored(IgnoreReason::Cache)
        );
        assert_eq!(l.verdict(&id, 61.5, &[]), Verdict::Unknown(cmd));
        // max-count: the oldest key goes first.
        for (ip, t) in [
            ("192.0.2.6", 62.0),
            ("192.0.2.7", 63.0),
            ("192.0.2.8", 64.0),
        ] {
            l.command_done(&format!("check {ip}"), false);
            assert_eq!(l.verdict(&HostId::parse(ip), t, &[]), Verdict::NotIgnored);
            l.forget_answer(&format!("check {ip}"));
        }
        assert!(matches!(
            l.verdict(&HostId::parse("192.0.2.6"), 65.0, &[]),
            Verdict::Unknown(Lookup::Command(_))
        ));
        assert_eq!(
            l.verdict(&HostId::parse("192.0.2.8"), 65.0, &[]),
            Verdict::NotIgnored
        );
        // The resolved name is trusted for five minutes.
        assert!(matches!(
            l.verdict(&HostId::parse("198.51.100.1"), 400.0, &[]),
            Verdict::Unknown(Lookup::Resolve(_))
        ));
    }

    #[test]
    fn ignorecache_options_parse_like_fail2bans() {
        let c = IgnoreCache::parse(r#"key="<F-USER>@<ip>", max-count=10, max-time=1h"#).unwrap();
        assert_eq!(
            (c.key.as_str(), c.verdicts.limits()),
            ("<F-USER>@<ip>", (10, 3600.0))
        );
        let fields = vec![("user".to_string(), "root".to_string())];
        assert_eq!(
            c.render(&HostId::parse("192.0.2.1"), &fields),
            "root@192.0.2.1"
        );
        let d = IgnoreCache::parse(r#"key="<ip>""#).unwrap();
        assert_eq!(d.verdicts.limits(), (100, 300.0));
        assert!(IgnoreCache::parse("max-count=3").is_err());
        assert!(IgnoreCache::parse(r#"key="<ip>", max-count=x"#).is_err());
    }
}
