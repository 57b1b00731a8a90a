//! The control wire protocol: newline-delimited JSON over a Unix stream socket.
//!
//! The same socket also speaks fail2ban's own framing (pickled command lists ending in
//! `<F2B_END_COMMAND>`, see [`super::f2bwire`]): a request whose first byte a pickle can start
//! with is read that way and answered in kind, with the values below typed as fail2ban's server
//! types them.
//!
//! # Framing
//! Each request is one line of JSON followed by `\n`:
//! ```text
//! {"v":1,"argv":["status","sshd"]}
//! ```
//! and the server answers each request, in order, with one line:
//! ```text
//! {"v":1,"ok":<value>}          the command succeeded; <value> is described below
//! {"v":1,"error":"<message>"}   the command failed; <message> is what the client prints
//! ```
//! A connection may carry any number of requests. A request line longer than
//! [`MAX_REQUEST_BYTES`] (without its newline), a line that is not a JSON request object, or a
//! request with another `v` gets an error response and the server closes the connection. Bulk
//! bans (`set J banip ...`, `set J unbanip ...`, recognised by [`bulk_prefix`] from the line's
//! start) may be up to [`MAX_BULK_REQUEST_BYTES`]: a blocklist of 1,000,000 addresses fits.
//! Responses have no size limit on the server side; the client accepts up to
//! [`MAX_RESPONSE_BYTES`].
//!
//! # Values
//! `<value>` is the JSON rendering of what fail2ban 1.0.2's server returns for the same command:
//! Python tuples and lists become arrays, dicts objects, `None` `null`, `True`/`False` booleans.
//! Whole numbers are JSON integers (`600`, not `600.0`): fail2ban-client prints Python's `str()`
//! of numbers, so a duration is an integer when it is integral and a float (`5400.5`) only when
//! it is not. Ids (addresses, networks, raw ids) are strings printed as fail2ban prints them.
//!
//! `J` is a jail name, `IP` an address, network or id. "jail order" is the order in which jails
//! were added (fail2ban keeps a dict); "sorted" is sorted by name.
//!
//! ## Server
//! | argv | `ok` value |
//! |------|-----------|
//! | `ping` | `"pong"` |
//! | `version` | the server's version string, fail2ban's compatibility level: `"1.0.2"` |
//! | `echo W...` | the words back: `["W", ...]` |
//! | `server-status` | `"Server ready"` (the client sends it after `start`) |
//! | `stop` | `null`; the reply is sent, then the daemon stops every jail and exits |
//! | `stop --all` | `null`; every jail is stopped and removed, the server keeps running |
//! | `stop J` | `null`; the jail is stopped and removed |
//! | `start J` | `null`; (re)starts jail `J` from the configuration |
//! | `add J [BACKEND]` | `"J"` |
//! | `reload [--restart] [--unban] [--if-exists] TARGET` | `"OK"`. The client always sends a `TARGET`: a jail name or `--all`; options come first. The server re-reads the configuration itself (fail2ban's client sent it a configuration stream instead) |
//! | `flushlogs` | `"rolled over"` when the log target is a file (reopened), `"flushed"` for `STDOUT`/`STDERR`/`SYSLOG`/`SYSTEMD-JOURNAL` |
//!
//! ## Status
//! | argv | `ok` value |
//! |------|-----------|
//! | `status` | `[["Number of jail",2],["Jail list","nginx-404, sshd"]]`: the names sorted, joined by `", "` (`""` when none) |
//! | `status J` or `status J basic` | `[["Filter",[["Currently failed",0],["Total failed",5],["File list",["/var/log/nginx/access.log"]]]],["Actions",[["Currently banned",1],["Total banned",1],["Banned IP list",["198.51.100.7"]]]]]` |
//! | `status J short` | the same without the `["Banned IP list",...]` pair |
//! | `status J cymru` | `basic` plus `["Banned ASN list",[...]]`, `["Banned Country list",[...]]`, `["Banned RIR list",[...]]`; a server that does no DNS lookups answers `["error"]` for each, as fail2ban does without dnspython |
//! | `status J OTHER` | as `basic` (fail2ban logs a warning about the unknown flavour) |
//! | `status --all [FLAVOR]` | fail2ban 1.1's shape: the `status` pairs followed by one object, jail name → that jail's `status J FLAVOR` value, sorted: `[["Number of jail",2],["Jail list","nginx-404, sshd"],{"nginx-404":[["Filter",...],["Actions",...]],"sshd":[...]}]` (the client also accepts the last element as a pair `["Jails",{...}]`) |
//! | `stats` (also `statistics`) | fail2ban 1.1's shape: jail name → `[backend, [currently failed, total failed], [currently banned, total banned]]`: `{"sshd":["polling",[0,5],[1,1]]}`; `{}` without jails |
//!
//! For a journal (systemd) jail, the `Filter` list has `["Journal matches",["_SYSTEMD_UNIT=sshd.service + _COMM=sshd"]]`
//! instead of `File list`: one string, the matches joined by `" + "`, each match's words by `" "`.
//!
//! ## Bans
//! | argv | `ok` value |
//! |------|-----------|
//! | `banned` | one single-key object per jail, in jail order: `[{"sshd":["198.51.100.7","203.0.113.5"]},{"nginx-404":[]}]` |
//! | `banned IP...` | one array per `IP`, in argument order, of the jails (jail order) that ban it: `[["sshd"],[]]` |
//! | `unban --all` | the number of bans removed (every jail), an integer |
//! | `unban IP...` | the number of bans removed, an integer (ids banned nowhere are skipped, not an error) |
//! | `set J banip IP...` | the number of ids newly banned (already banned ones do not count): `2` |
//! | `set J unbanip IP...` | the number of bans removed; absent ids are skipped |
//! | `set J unbanip --report-absent IP...` | the number; an absent id is an error `not banned: ['192.0.2.9']` (Python list repr) |
//! | `set J attempt IP [FAILURE...]` | `1` (fail2ban's answer); one failure per `FAILURE` (one without) is counted now |
//! | `get J banned` | the banned ids: `["198.51.100.7","203.0.113.5"]` |
//! | `get J banned IP` | `1` or `0` |
//! | `get J banned IP IP...` | one `1`/`0` per `IP`: `[1,0]` |
//! | `get J banip` / `get J banip SEP` | the banned ids ordered by end of ban (soonest first): `["203.0.113.5","198.51.100.7"]`; the separator is applied by the client |
//! | `get J banip --with-time` | one string per ban, same order: `"203.0.113.5 \t2026-11-25 14:08:51 + 600 = 2026-11-25 14:18:51"`: id, space, tab, ban start, ` + `, bantime in seconds (integer), ` = `, ban end; times local, `%Y-%m-%d %H:%M:%S` |
//!
//! ## Jail settings (`get J X`; `set J X V` returns the same value after the change)
//! | X | value |
//! |---|-------|
//! | `findtime`, `bantime` | seconds, a number (`600`; `-1` for a permanent ban) |
//! | `maxretry`, `maxlines`, `maxmatches` | integer |
//! | `ignoreip` (`set`: `addignoreip IP...`, `delignoreip IP`) | the ignore list as strings, networks as `"127.0.0.0/8"`; fail2ban lists the networks first, then single addresses: `["127.0.0.0/8","::1"]`; `[]` when empty |
//! | `ignoreself` | boolean |
//! | `ignorecommand` | the command string, `false` when unset (fail2ban's default) |
//! | `ignorecache` | `null`, or the cache options as fail2ban lists them: `["<ip>",100,300]` (key, max-count, max-time in seconds) |
//! | `logpath` (`set`: `addlogpath FILE [tail\|head]`, `dellogpath FILE`) | the monitored files: `["/var/log/auth.log"]` |
//! | `logencoding` | `"UTF-8"` |
//! | `journalmatch` (`set`: `addjournalmatch W...`, `deljournalmatch W...`) | the match groups (alternatives, `+` in a line), each an array of words: `[["_SYSTEMD_UNIT=sshd.service"],["_COMM=sshd"]]`; `[]` (always for a jail that reads files) |
//! | `failregex`, `ignoreregex` (`set`: `addfailregex R`, `delfailregex N`, `addignoreregex R`, `delignoreregex N`) | the regexes with tags expanded, in order: `["^fail from (?:...)$"]` |
//! | `prefregex` | the regex, `""` when unset |
//! | `usedns` | `"yes"`, `"no"`, `"warn"` or `"raw"` |
//! | `datepattern` | `null` (no detector), `[null,"Default Detectors"]`, or `[pattern, name]`: `["%Y-%m-%d %H:%M:%S","{^LN-BEG}%Y-%m-%d %H:%M:%S"]` |
//! | `logtimezone` | `null` or the zone string |
//! | `actions` | the action names, in order: `["iptables-multiport"]` |
//! | `actionproperties A`, `actionmethods A` | names: `["actionban","actionstart",...]` |
//! | `action A P` (`set J action A P V`) | the property's value (usually a string) |
//! | `bantime.increment`, `bantime.factor`, ... (`bantime.<OPT>`) | the option's value (string) or `null` when unset |
//! | `idle` (`set J idle on\|off` only) | boolean |
//! | `addaction A` (`set` only; `addaction A FILE KWARGS`, a Python action, is refused) | `"A"`; `delaction A` → `null` |
//!
//! ## Server settings (`get X`; `set X V` returns the same value after the change)
//! | X | value |
//! |---|-------|
//! | `loglevel` | the level name, upper-case: `"INFO"` (an integer is printed through Python's level names) |
//! | `logtarget` | `"/var/log/fail2ban.log"`, `"STDOUT"`, `"SYSLOG"`, ... |
//! | `syslogsocket` | `"auto"` or a path |
//! | `dbfile` | the path, or `null` when the database is disabled |
//! | `dbmaxmatches` | integer, or `null` without database |
//! | `dbpurgeage` | seconds (integer), or `null` without database |
//! | `thread` (`get` only) | `{"stacksize":0}` |
//! | `allowipv6` (`set` only) | the value given |
//!
//! Every command form is defined once in [`super::cmd`]: the request is parsed there into a typed
//! command (with the arity checks and errors below), which the server dispatches on and the
//! client renders from.
//!
//! ## Errors
//! The `error` string is printed by the client as is (fail2ban-client prints the same text on
//! stdout and logs `NOK: (<args>,)` on stderr, see [`nok_args`]). Use these texts:
//! | case | message |
//! |------|---------|
//! | no such jail | [`unknown_jail`]: `Sorry but the jail 'J' does not exist` |
//! | missing words (`get`, `get J`, `set`, `status J a b` is below) | [`invalid_command`]: `Sorry but the command is invalid` |
//! | unknown first word | `Invalid command` |
//! | unknown `get` option | `Invalid command (no get action or not yet implemented)` |
//! | unknown `set` option | `Invalid command 'X' (no set action or not yet implemented)` |
//! | `status` with more than two words after it | `Invalid command (no status)` |
//! | `add` of an existing jail | [`duplicate_jail`]: `The jail 'J' already exists` |
//! | `add --all` | `Reserved name '--all'` |
//! | anything else | a plain message naming what is wrong |

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The protocol version carried in every message as `"v"`.
pub const VERSION: u32 = 1;

/// The longest request line the server accepts, newline excluded.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// The longest `set J banip|unbanip ...` request line the server accepts, newline excluded:
/// 1,000,000 IPv6 addresses of the longest form (39 characters, quoted, with a comma) fit.
pub const MAX_BULK_REQUEST_BYTES: usize = 48 * 1024 * 1024;

/// Whether the start of a request line (at least up to its fourth argv word) is a bulk ban
/// request, `{"v":1,"argv":["set","J","banip"|"unbanip",...`: such a request may be longer than
/// [`MAX_REQUEST_BYTES`]. Reads only the words it needs (the command definition says which
/// forms are bulk: `cmd::starts_bulk`); any other shape answers `false`.
pub fn bulk_prefix(line: &[u8]) -> bool {
    let Some(at) = memchr::memmem::find(line, b"\"argv\"") else {
        return false;
    };
    let mut rest = &line[at + 6..];
    let skip_ws = |r: &mut &[u8]| {
        while let [b' ' | b'\t' | b'\r' | b'\n', tail @ ..] = r {
            *r = tail;
        }
    };
    let expect = |r: &mut &[u8], c: u8| -> bool {
        skip_ws(r);
        match r.split_first() {
            Some((&b, tail)) if b == c => {
                *r = tail;
                true
            }
            _ => false,
        }
    };
    if !expect(&mut rest, b':') || !expect(&mut rest, b'[') {
        return false;
    }
    let mut words = Vec::new();
    for i in 0..super::cmd::BULK_PREFIX_WORDS {
        if i > 0 && !expect(&mut rest, b',') {
            return false;
        }
        skip_ws(&mut rest);
        let mut it = serde_json::Deserializer::from_slice(rest).into_iter::<String>();
        match it.next() {
            Some(Ok(w)) => {
                let used = it.byte_offset();
                rest = &rest[used..];
                words.push(w);
            }
            _ => return false,
        }
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    super::cmd::starts_bulk(&words)
}

/// The longest response line the client accepts, newline excluded.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// One request: a command's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// The protocol version ([`VERSION`]).
    pub v: u32,
    /// The command words, as fail2ban-client would send them.
    pub argv: Vec<String>,
}

impl Request {
    /// A request for `argv` at the current [`VERSION`].
    pub fn new(argv: Vec<String>) -> Self {
        Request { v: VERSION, argv }
    }

    /// The request as one JSON line, `\n` included.
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).expect("a request always serialises");
        s.push('\n');
        s
    }

    /// Parses one request line (without or with its newline). Errors are the messages the
    /// server sends back.
    pub fn parse(line: &[u8]) -> Result<Request, String> {
        let line = trim_newline(line);
        let req: Request = serde_json::from_slice(line)
            .map_err(|e| format!("malformed request (expected {{\"v\":1,\"argv\":[...]}}): {e}"))?;
        if req.v != VERSION {
            return Err(format!(
                "unsupported protocol version {} (this server speaks {VERSION})",
                req.v
            ));
        }
        Ok(req)
    }
}

/// One response: a value or an error message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The protocol version ([`VERSION`]).
    pub v: u32,
    /// The command's value, when it succeeded (`null` is a valid value).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_value"
    )]
    pub ok: Option<Value>,
    /// The error message, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Keeps an explicit `"ok":null` as `Some(Value::Null)` (a missing `ok` stays `None`).
fn some_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl Response {
    /// A success response.
    pub fn ok(value: Value) -> Self {
        Response {
            v: VERSION,
            ok: Some(value),
            error: None,
        }
    }

    /// An error response.
    pub fn error(message: impl Into<String>) -> Self {
        Response {
            v: VERSION,
            ok: None,
            error: Some(message.into()),
        }
    }

    /// The response for a handler's result.
    pub fn from_result(r: Result<Value, String>) -> Self {
        match r {
            Ok(v) => Response::ok(v),
            Err(e) => Response::error(e),
        }
    }

    /// The response as one JSON line, `\n` included.
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).expect("a response always serialises");
        s.push('\n');
        s
    }

    /// Parses one response line. The outer `Err` is a protocol problem (not JSON, neither or
    /// both of `ok` and `error`, another version); the inner result is the command's.
    pub fn parse(line: &[u8]) -> Result<Result<Value, String>, String> {
        let line = trim_newline(line);
        let r: Response = serde_json::from_slice(line)
            .map_err(|e| format!("malformed response from the server: {e}"))?;
        if r.v != VERSION {
            return Err(format!(
                "the server speaks protocol version {}, this client {VERSION}",
                r.v
            ));
        }
        match (r.ok, r.error) {
            (Some(v), None) => Ok(Ok(v)),
            (None, Some(e)) => Ok(Err(e)),
            _ => Err(
                "malformed response from the server: expected exactly one of \"ok\" and \"error\""
                    .into(),
            ),
        }
    }
}

fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `Sorry but the jail 'NAME' does not exist`.
pub fn unknown_jail(name: &str) -> String {
    format!("Sorry but the jail '{name}' does not exist")
}

/// `The jail 'NAME' already exists`.
pub fn duplicate_jail(name: &str) -> String {
    format!("The jail '{name}' already exists")
}

/// `Sorry but the command is invalid` (a command missing words).
pub fn invalid_command() -> String {
    super::cmd::INVALID.to_string()
}

/// The arguments fail2ban-client logs as `NOK: <args>` for an error message: the exception's
/// args as a Python tuple, recovered from the messages of [`unknown_jail`], [`duplicate_jail`]
/// and [`invalid_command`] (an `IndexError`), else the message itself.
pub fn nok_args(message: &str) -> String {
    use super::pyrepr::repr_str;
    let quoted = |prefix: &str, suffix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(suffix))
            .map(str::to_string)
    };
    let arg = if let Some(j) = quoted("Sorry but the jail '", "' does not exist") {
        j
    } else if let Some(j) = quoted("The jail '", "' already exists") {
        j
    } else if message == invalid_command() {
        "list index out of range".to_string()
    } else {
        message.to_string()
    };
    format!("({},)", repr_str(&arg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_round_trip() {
        let r = Request::new(vec!["status".into(), "sshd".into()]);
        assert_eq!(r.to_line(), "{\"v\":1,\"argv\":[\"status\",\"sshd\"]}\n");
        assert_eq!(Request::parse(r.to_line().as_bytes()).unwrap(), r);
    }

    #[test]
    fn bad_requests_are_errors() {
        assert!(
            Request::parse(b"{")
                .unwrap_err()
                .starts_with("malformed request")
        );
        assert!(Request::parse(b"[\"ping\"]").is_err());
        assert!(Request::parse(b"{\"v\":1}").is_err());
        assert!(Request::parse(b"{\"v\":1,\"argv\":[1]}").is_err());
        assert!(Request::parse(b"{\"v\":1,\"argv\":[],\"x\":1}").is_err());
        let e = Request::parse(b"{\"v\":2,\"argv\":[\"ping\"]}").unwrap_err();
        assert!(e.contains("version 2"), "{e}");
    }

    #[test]
    fn responses() {
        assert_eq!(
            Response::ok(json!("pong")).to_line(),
            "{\"v\":1,\"ok\":\"pong\"}\n"
        );
        assert_eq!(
            Response::ok(Value::Null).to_line(),
            "{\"v\":1,\"ok\":null}\n"
        );
        assert_eq!(
            Response::error("x").to_line(),
            "{\"v\":1,\"error\":\"x\"}\n"
        );
        assert_eq!(
            Response::parse(b"{\"v\":1,\"ok\":null}\n").unwrap(),
            Ok(Value::Null)
        );
        assert_eq!(
            Response::parse(b"{\"v\":1,\"ok\":[1]}").unwrap(),
            Ok(json!([1]))
        );
        assert_eq!(
            Response::parse(b"{\"v\":1,\"error\":\"e\"}").unwrap(),
            Err("e".to_string())
        );
        assert!(Response::parse(b"{\"v\":1}").is_err());
        assert!(Response::parse(b"{\"v\":1,\"ok\":1,\"error\":\"e\"}").is_err());
        assert!(Response::parse(b"{\"v\":9,\"ok\":1}").is_err());
        assert!(Response::parse(b"nope").is_err());
    }

    #[test]
    fn nok_arguments_like_fail2ban() {
        assert_eq!(nok_args(&unknown_jail("nosuch")), "('nosuch',)");
        assert_eq!(nok_args(&duplicate_jail("x")), "('x',)");
        assert_eq!(nok_args(&invalid_command()), "('list index out of range',)");
        assert_eq!(nok_args("Invalid command"), "('Invalid command',)");
        assert_eq!(
            nok_args("not banned: ['192.0.2.9']"),
            "(\"not banned: ['192.0.2.9']\",)"
        );
    }
}
