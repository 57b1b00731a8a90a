//! `ferroban client --json`: one JSON object per command, on one line, with readable keys. The
//! object is chosen from the parsed command ([`super::cmd::Command`], one rendering per variant).
//!
//! Status labels become snake_case keys (`Currently failed` → `currently_failed`); key order is
//! the order shown here.
//!
//! | command | object |
//! |---------|--------|
//! | `status` | `{"number_of_jail":2,"jail_list":["nginx-404","sshd"]}` |
//! | `status J [FLAVOR]` | `{"jail":"sshd","filter":{"currently_failed":0,"total_failed":5,"file_list":["/var/log/auth.log"]},"actions":{"currently_banned":1,"total_banned":1,"banned_ip_list":["198.51.100.7"]}}` |
//! | `status --all [FLAVOR]` | `{"number_of_jail":2,"jail_list":[...],"jails":{"nginx-404":{"filter":{...},"actions":{...}},"sshd":{...}}}` |
//! | `stats` | `{"sshd":{"backend":"polling","filter":{"currently_failed":0,"total_failed":5},"actions":{"currently_banned":1,"total_banned":1}}}` |
//! | `banned` | `{"sshd":["198.51.100.7"],"nginx-404":[]}` |
//! | `banned IP...` | `{"198.51.100.7":["sshd"],"192.0.2.1":[]}` |
//! | `unban ...` | `{"unbanned":2}` |
//! | `ping` / `version` / `echo W...` | `{"ping":"pong"}` / `{"version":"1.0.2"}` / `{"echo":["W"]}` |
//! | `fleet status` | the fleet's status object: `{"node":"web-01","connected":true,"cursor":…,"outbox":0,"peers":{…},"rejects":{…},…}` |
//! | `top [SEQ]` | the metrics snapshot `ferroban top` reads: `{"events":[…],"jails":[…],"now":…,"offenders":[…],"seq":23,"version":1}` |
//! | `start` (the server) | `{"started":true}` |
//! | `stop` / `stop J` / `stop --all` | `{"stopped":true}` / `{"jail":"J","stopped":true}` / `{"jail":"--all","stopped":true}` |
//! | `start J` / `add J ...` | `{"jail":"J","started":true}` / `{"jail":"J","added":true}` |
//! | `reload ...` / `flushlogs` | `{"reload":"OK"}` / `{"flushlogs":"rolled over"}` |
//! | `get J banned` | `{"jail":"sshd","banned":["198.51.100.7"]}` |
//! | `get J banned IP...` | `{"jail":"sshd","banned":{"198.51.100.7":true,"192.0.2.1":false}}` |
//! | `get J banip [SEP]` | `{"jail":"sshd","banip":["203.0.113.5","198.51.100.7"]}` |
//! | `get J banip --with-time` | `{"jail":"sshd","banip":[{"ip":"203.0.113.5","start":"2026-11-25 14:08:51","bantime":600,"end":"2026-11-25 14:18:51"}]}` |
//! | `set J banip IP...` / `set J unbanip ...` | `{"jail":"sshd","banned":2}` / `{"jail":"sshd","unbanned":1}` |
//! | `set J attempt IP ...` | `{"jail":"sshd","failures":1}` |
//! | `get J datepattern` | `{"jail":"sshd","datepattern":{"pattern":null,"name":"Default Detectors"}}` (`null` when unset) |
//! | `get J X` / `set J X ...` | `{"jail":"sshd","X":<value>}`; `add`/`del` forms use the list's name: `set J addignoreip IP` → `{"jail":"sshd","ignoreip":[...]}` |
//! | `get J action A P` / `set J action A P V` | `{"jail":"sshd","action":"A","property":"P","value":<value>}` |
//! | `get J actionproperties A` / `actionmethods A` | `{"jail":"sshd","action":"A","actionproperties":[...]}` |
//! | `set J addaction A ...` / `delaction A` | `{"jail":"sshd","action":"A","added":true}` / `{..."removed":true}` |
//! | `get X` / `set X V` (server settings) | `{"X":<value>}`: `{"loglevel":"INFO"}` |
//! | words the protocol does not have ([`super::cmd::parse`] refuses them) | `{"command":["w1","w2"],"result":<value>}` |
//! | a failed command | `{"error":"Sorry but the jail 'x' does not exist"}` (exit status 255) |

use serde_json::{Value, json};

use super::cmd::{self, Command, JailGet, JailSet};

/// A JSON value whose objects keep their key order.
enum J {
    Obj(Vec<(String, J)>),
    Arr(Vec<J>),
    V(Value),
}

impl J {
    fn write(&self, out: &mut String) {
        match self {
            J::V(v) => out.push_str(&v.to_string()),
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            J::Obj(pairs) => {
                out.push('{');
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

fn obj<const N: usize>(pairs: [(&str, J); N]) -> J {
    J::Obj(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn v(value: impl Into<Value>) -> J {
    J::V(value.into())
}

/// `Currently failed` → `currently_failed`.
fn snake(label: &Value) -> String {
    let label = match label {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = String::new();
    for c in label.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}

/// `[["Label", value], ...]` → `{"label": value, ...}`; `None` for another shape.
fn pairs_object(v: &Value, nested: bool) -> Option<J> {
    let items = v.as_array()?;
    let mut out = Vec::new();
    for item in items {
        let pair = item.as_array().filter(|p| p.len() == 2)?;
        let value = if nested {
            pairs_object(&pair[1], false)?
        } else {
            J::V(pair[1].clone())
        };
        out.push((snake(&pair[0]), value));
    }
    Some(J::Obj(out))
}

/// A jail's status: `{"filter":{...},"actions":{...}}`.
fn jail_status(v: &Value) -> J {
    pairs_object(v, true).unwrap_or_else(|| J::V(v.clone()))
}

/// The server summary pairs, with `Jail list` split into names.
fn summary(pairs: &[Value]) -> Vec<(String, J)> {
    pairs
        .iter()
        .filter_map(|p| {
            let p = p.as_array().filter(|p| p.len() == 2)?;
            let key = snake(&p[0]);
            let value = match (&p[1], key.as_str()) {
                (Value::String(s), "jail_list") => {
                    let names: Vec<&str> = s.split(", ").filter(|n| !n.is_empty()).collect();
                    json!(names)
                }
                (other, _) => other.clone(),
            };
            Some((key, J::V(value)))
        })
        .collect()
}

/// `status` (`all`: `status --all`, whose last element holds the jails) or `status JAIL`.
fn status(jail: Option<&str>, all: bool, r: &Value) -> Option<J> {
    if let Some(jail) = jail {
        let mut out = vec![("jail".to_string(), v(jail))];
        match jail_status(r) {
            J::Obj(sections) => out.extend(sections),
            other => out.push(("status".into(), other)),
        }
        return Some(J::Obj(out));
    }
    let items = r.as_array()?;
    let (jails, pairs) = match items.split_last() {
        Some((Value::Object(o), rest)) if all => (Some(o), rest),
        Some((last, rest)) if all => match last.as_array().and_then(|p| p.get(1)) {
            Some(Value::Object(o)) => (Some(o), rest),
            _ => (None, items.as_slice()),
        },
        _ => (None, items.as_slice()),
    };
    let mut out = summary(pairs);
    if let Some(jails) = jails {
        let each = jails
            .iter()
            .map(|(name, st)| (name.clone(), jail_status(st)))
            .collect();
        out.push(("jails".into(), J::Obj(each)));
    }
    Some(J::Obj(out))
}

fn counts(v: &Value, current: &str, total: &str) -> J {
    match v.as_array().map(Vec::as_slice) {
        Some([cur, tot]) => obj([(current, J::V(cur.clone())), (total, J::V(tot.clone()))]),
        _ => J::V(v.clone()),
    }
}

fn stats(r: &Value) -> Option<J> {
    let jails = r.as_object()?;
    let mut out = Vec::new();
    for (name, row) in jails {
        let row = row.as_array().filter(|a| a.len() == 3)?;
        out.push((
            name.clone(),
            obj([
                ("backend", J::V(row[0].clone())),
                (
                    "filter",
                    counts(&row[1], "currently_failed", "total_failed"),
                ),
                (
                    "actions",
                    counts(&row[2], "currently_banned", "total_banned"),
                ),
            ]),
        ));
    }
    Some(J::Obj(out))
}

/// `banned` (no `ids`) or `banned IP...`.
fn banned(ids: &[&str], r: &Value) -> Option<J> {
    let items = r.as_array()?;
    if ids.is_empty() {
        let mut out = Vec::new();
        for item in items {
            for (name, ids) in item.as_object()? {
                out.push((name.clone(), J::V(ids.clone())));
            }
        }
        return Some(J::Obj(out));
    }
    (ids.len() == items.len()).then(|| {
        J::Obj(
            ids.iter()
                .zip(items)
                .map(|(id, jails)| (id.to_string(), J::V(jails.clone())))
                .collect(),
        )
    })
}

/// `"203.0.113.5 \t2026-11-25 14:08:51 + 600 = 2026-11-25 14:18:51"` → an object.
fn ban_with_time(line: &Value) -> J {
    let parsed = line.as_str().and_then(|s| {
        let (ip, rest) = s.split_once(" \t")?;
        let (start, rest) = rest.split_once(" + ")?;
        let (bantime, end) = rest.split_once(" = ")?;
        let bantime: Value = serde_json::from_str(bantime).ok()?;
        Some(obj([
            ("ip", v(ip)),
            ("start", v(start)),
            ("bantime", J::V(bantime)),
            ("end", v(end)),
        ]))
    });
    parsed.unwrap_or_else(|| J::V(line.clone()))
}

/// `get JAIL ...`; `option` is the setting's word.
fn jail_get(jail: &str, op: &JailGet<'_>, option: &str, r: &Value) -> Option<J> {
    let mut out = vec![("jail".to_string(), v(jail))];
    let mut add = |k: &str, val: J| out.push((k.to_string(), val));
    match op {
        JailGet::BannedIds([id]) => {
            let flag = r.as_i64()?;
            add("banned", obj([(*id, v(flag != 0))]));
        }
        JailGet::BannedIds(ids) => {
            let flags = r.as_array().filter(|a| a.len() == ids.len())?;
            let each = ids
                .iter()
                .zip(flags)
                .map(|(ip, f)| {
                    (
                        ip.to_string(),
                        v(f.as_i64().map_or(Value::Null, |n| json!(n != 0))),
                    )
                })
                .collect();
            add("banned", J::Obj(each));
        }
        JailGet::Banip {
            sep: Some("--with-time"),
            ..
        } => add(
            "banip",
            J::Arr(r.as_array()?.iter().map(ban_with_time).collect()),
        ),
        JailGet::Datepattern => add("datepattern", datepattern(r)),
        JailGet::Action { act, key } => {
            add("action", v(*act));
            add("property", v(*key));
            add("value", J::V(r.clone()));
        }
        JailGet::ActionProperties(act) | JailGet::ActionMethods(act) => {
            add("action", v(*act));
            add(option, J::V(r.clone()));
        }
        JailGet::Banned
        | JailGet::Banip { .. }
        | JailGet::Findtime
        | JailGet::Bantime
        | JailGet::Maxretry
        | JailGet::Maxmatches
        | JailGet::Ignoreip
        | JailGet::Ignoreself
        | JailGet::Ignorecommand
        | JailGet::Logpath
        | JailGet::Logencoding
        | JailGet::Usedns
        | JailGet::Failregex
        | JailGet::Ignoreregex
        | JailGet::Actions
        | JailGet::Maxlines
        | JailGet::Prefregex
        | JailGet::Logtimezone
        | JailGet::Ignorecache
        | JailGet::Journalmatch
        | JailGet::BantimeOption(_) => add(option, J::V(r.clone())),
    }
    Some(J::Obj(out))
}

/// `set JAIL ...`; `option` is the setting's word.
fn jail_set(jail: &str, op: &JailSet<'_>, option: &str, r: &Value) -> Option<J> {
    let mut out = vec![("jail".to_string(), v(jail))];
    let mut add = |k: &str, val: J| out.push((k.to_string(), val));
    match op {
        JailSet::Banip { .. } => add("banned", J::V(r.clone())),
        JailSet::Unbanip { .. } => add("unbanned", J::V(r.clone())),
        JailSet::Attempt { .. } => add("failures", J::V(r.clone())),
        JailSet::Datepattern(_) => add("datepattern", datepattern(r)),
        JailSet::Action { act, key, .. }
        | JailSet::ActionNoValue { act, key }
        | JailSet::ActionCall { act, key } => {
            add("action", v(*act));
            add("property", v(*key));
            add("value", J::V(r.clone()));
        }
        JailSet::AddAction(act) | JailSet::AddPythonAction { act, .. } => {
            add("action", v(*act));
            add("added", v(true));
        }
        JailSet::DelAction(act) => {
            add("action", v(*act));
            add("removed", v(true));
        }
        // The list an `add*`/`del*` changes (and returns) is named after the list.
        JailSet::AddIgnoreip(_) | JailSet::DelIgnoreip(_) => add("ignoreip", J::V(r.clone())),
        JailSet::AddLogpath { .. } | JailSet::DelLogpath(_) => add("logpath", J::V(r.clone())),
        JailSet::AddFailregex(_) | JailSet::DelFailregex(_) => add("failregex", J::V(r.clone())),
        JailSet::AddIgnoreregex(_) | JailSet::DelIgnoreregex(_) => {
            add("ignoreregex", J::V(r.clone()))
        }
        JailSet::AddJournalmatch(_) | JailSet::DelJournalmatch(_) => {
            add("journalmatch", J::V(r.clone()))
        }
        JailSet::Bantime(_)
        | JailSet::Findtime(_)
        | JailSet::Maxretry(_)
        | JailSet::Logencoding(_)
        | JailSet::Maxlines(_)
        | JailSet::Maxmatches(_)
        | JailSet::Usedns(_)
        | JailSet::Ignoreself(_)
        | JailSet::Ignorecommand(_)
        | JailSet::Ignorecache(_)
        | JailSet::Logtimezone(_)
        | JailSet::Prefregex(_)
        | JailSet::BantimeOption(..)
        | JailSet::Idle(_) => add(option, J::V(r.clone())),
    }
    Some(J::Obj(out))
}

/// `[pattern, name]` → `{"pattern":...,"name":...}`.
fn datepattern(r: &Value) -> J {
    match r.as_array().map(Vec::as_slice) {
        Some([p, n]) => obj([("pattern", J::V(p.clone())), ("name", J::V(n.clone()))]),
        _ => J::V(r.clone()),
    }
}

/// The object for command `c`'s value `r`; `option` is the word after the jail name. `None` when
/// the value does not have the command's shape.
fn shaped(c: &Command<'_>, option: &str, r: &Value) -> Option<J> {
    use Command as C;
    Some(match c {
        C::Ping => obj([("ping", J::V(r.clone()))]),
        C::Version => obj([("version", J::V(r.clone()))]),
        C::Echo(_) => obj([("echo", J::V(r.clone()))]),
        C::ServerStatus => obj([("server_status", J::V(r.clone()))]),
        // The fleet's status object as the server sends it (crates/fleet `Status`), and the
        // metrics snapshot of `ferroban top` (crate::metrics `Snapshot`).
        C::FleetStatus | C::Top { .. } => J::V(r.clone()),
        C::Status => status(None, false, r)?,
        C::StatusAll { .. } => status(None, true, r)?,
        C::StatusJail { jail, .. } => status(Some(jail), false, r)?,
        C::Stats => stats(r)?,
        C::Banned => banned(&[], r)?,
        C::BannedIds(ids) => banned(ids, r)?,
        C::Unban(_) | C::UnbanAll => obj([("unbanned", J::V(r.clone()))]),
        C::Stop => obj([("stopped", v(true))]),
        C::StopJail(jail) => obj([("jail", v(*jail)), ("stopped", v(true))]),
        C::StopAll => obj([("jail", v("--all")), ("stopped", v(true))]),
        C::StartJail(jail) => obj([("jail", v(*jail)), ("started", v(true))]),
        C::Add { jail, .. } => obj([("jail", v(*jail)), ("added", v(true))]),
        C::Reload { .. } => obj([("reload", J::V(r.clone()))]),
        C::FlushLogs => obj([("flushlogs", J::V(r.clone()))]),
        C::GetServer(s) | C::SetServer(s, _) => obj([(s.name(), J::V(r.clone()))]),
        C::GetJail { jail, op } => jail_get(jail, op.as_ref().ok()?, option, r)?,
        C::SetJail { jail, op } => jail_set(jail, op.as_ref().ok()?, option, r)?,
    })
}

/// The `--json` line (without newline) for `argv`'s successful `value`.
pub fn render(argv: &[String], value: &Value) -> String {
    let words: Vec<&str> = argv.iter().map(String::as_str).collect();
    let j = cmd::parse(&words)
        .ok()
        .and_then(|c| shaped(&c, words.get(2).copied().unwrap_or_default(), value))
        .unwrap_or_else(|| obj([("command", v(json!(argv))), ("result", J::V(value.clone()))]));
    let mut out = String::new();
    j.write(&mut out);
    out
}

/// The `--json` line for a failed command.
pub fn render_error(message: &str) -> String {
    json!({ "error": message }).to_string()
}

/// The `--json` line for `help`: the usage text.
pub fn render_help(text: &str) -> String {
    json!({ "help": text }).to_string()
}

/// The `--json` line for a server started by the client.
pub fn render_started() -> String {
    json!({ "started": true }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::testutil::jail_status;

    fn r(words: &str, value: Value) -> String {
        let argv: Vec<String> = words.split(' ').map(str::to_string).collect();
        render(&argv, &value)
    }

    #[test]
    fn status_objects() {
        assert_eq!(
            r(
                "status",
                json!([["Number of jail", 2], ["Jail list", "nginx-404, sshd"]])
            ),
            r#"{"number_of_jail":2,"jail_list":["nginx-404","sshd"]}"#
        );
        assert_eq!(
            r("status", json!([["Number of jail", 0], ["Jail list", ""]])),
            r#"{"number_of_jail":0,"jail_list":[]}"#
        );
        let jail = jail_status();
        let want = r#"{"jail":"sshd","filter":{"currently_failed":0,"total_failed":5,"file_list":["/var/log/nginx/access.log"]},"actions":{"currently_banned":1,"total_banned":1,"banned_ip_list":["198.51.100.7"]}}"#;
        assert_eq!(r("status sshd", jail.clone()), want);
        let all = json!([["Number of jail", 1], ["Jail list", "sshd"], {"sshd": jail.clone()}]);
        let inner = &want[r#"{"jail":"sshd","#.len()..];
        assert_eq!(
            r("status --all", all),
            format!(r#"{{"number_of_jail":1,"jail_list":["sshd"],"jails":{{"sshd":{{{inner}}}}}"#)
        );
        let paired =
            json!([["Number of jail", 1], ["Jail list", "sshd"], ["Jails", {"sshd": jail}]]);
        assert!(r("status --all", paired).contains(r#""jails":{"sshd":{"filter""#));
    }

    #[test]
    fn stats_and_bans() {
        assert_eq!(
            r("stats", json!({"sshd": ["polling", [0, 5], [1, 1]]})),
            r#"{"sshd":{"backend":"polling","filter":{"currently_failed":0,"total_failed":5},"actions":{"currently_banned":1,"total_banned":1}}}"#
        );
        assert_eq!(
            r(
                "banned",
                json!([{"sshd": ["198.51.100.7"]}, {"nginx-404": []}])
            ),
            r#"{"sshd":["198.51.100.7"],"nginx-404":[]}"#
        );
        assert_eq!(
            r("banned 198.51.100.7 192.0.2.1", json!([["sshd"], []])),
            r#"{"198.51.100.7":["sshd"],"192.0.2.1":[]}"#
        );
        assert_eq!(
            r("get sshd banned 1.2.3.4 5.6.7.8", json!([1, 0])),
            r#"{"jail":"sshd","banned":{"1.2.3.4":true,"5.6.7.8":false}}"#
        );
        assert_eq!(
            r("get sshd banned 1.2.3.4", json!(0)),
            r#"{"jail":"sshd","banned":{"1.2.3.4":false}}"#
        );
        assert_eq!(
            r(
                "get sshd banip --with-time",
                json!(["203.0.113.5 \t2026-11-25 14:08:51 + 600 = 2026-11-25 14:18:51"])
            ),
            r#"{"jail":"sshd","banip":[{"ip":"203.0.113.5","start":"2026-11-25 14:08:51","bantime":600,"end":"2026-11-25 14:18:51"}]}"#
        );
        assert_eq!(r("unban --all", json!(3)), r#"{"unbanned":3}"#);
        assert_eq!(
            r("set sshd banip 1.2.3.4", json!(1)),
            r#"{"jail":"sshd","banned":1}"#
        );
    }

    #[test]
    fn settings_and_fallback() {
        assert_eq!(
            r("set sshd addignoreip 10.0.0.1", json!(["10.0.0.1"])),
            r#"{"jail":"sshd","ignoreip":["10.0.0.1"]}"#
        );
        assert_eq!(
            r("get sshd bantime", json!(600)),
            r#"{"jail":"sshd","bantime":600}"#
        );
        assert_eq!(
            r("get sshd datepattern", json!([null, "Default Detectors"])),
            r#"{"jail":"sshd","datepattern":{"pattern":null,"name":"Default Detectors"}}"#
        );
        assert_eq!(r("get loglevel", json!("INFO")), r#"{"loglevel":"INFO"}"#);
        assert_eq!(r("ping", json!("pong")), r#"{"ping":"pong"}"#);
        assert_eq!(r("stop", Value::Null), r#"{"stopped":true}"#);
        assert_eq!(
            r("get sshd action iptables actionban", json!("x")),
            r#"{"jail":"sshd","action":"iptables","property":"actionban","value":"x"}"#
        );
        assert_eq!(
            r("weird a", json!([1])),
            r#"{"command":["weird","a"],"result":[1]}"#
        );
        assert_eq!(render_error("it's \"bad\""), r#"{"error":"it's \"bad\""}"#);
    }
}
