//! The control commands: `argv` in, the JSON rendering of what fail2ban's server returns out
//! (shapes documented in [`crate::control::proto`]).

use serde_json::{Value, json};

use super::server::Shared;
use crate::flog;

mod jailops;
mod runtime;
use crate::ip::HostId;

type Res = Result<Value, String>;

fn unknown_jail(name: &str) -> String {
    format!("Sorry but the jail '{name}' does not exist")
}

fn jail_index(state: &Shared, name: &str) -> Result<usize, String> {
    state
        .borrow()
        .jails
        .iter()
        .position(|j| j.jail.name() == name)
        .ok_or_else(|| unknown_jail(name))
}

fn secs_value(s: f64) -> Value {
    if s.fract() == 0.0 && s.abs() < 9e15 {
        json!(s as i64)
    } else {
        json!(s)
    }
}

/// An id for `banip`: an address, a network or, as fail2ban bans it, any other text (a raw id
/// such as an F-ID value: shell actions get it escaped, the native firewall actions refuse to
/// write it and say so).
fn parse_id(text: &str) -> Result<HostId, String> {
    if text.is_empty() {
        return Err("an empty id cannot be banned".into());
    }
    Ok(HostId::parse(text))
}

/// The narrowest network `banip` accepts without `--force`: the jail options
/// `banip.minprefix.ipv4` (default 8) and `banip.minprefix.ipv6` (default 16).
fn min_prefix(j: &super::jail::Jail, v4: bool) -> Result<u8, String> {
    let (key, default, width) = if v4 {
        ("banip.minprefix.ipv4", 8, 32)
    } else {
        ("banip.minprefix.ipv6", 16, 128)
    };
    match j.def().value(key).map(str::trim) {
        None | Some("") => Ok(default),
        Some(v) => v
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= width)
            .ok_or_else(|| format!("jail '{}': {key} = {v:?}: expected 0 to {width}", j.name())),
    }
}

/// Guard rails of `banip`: a network wider than the minimum prefix is refused unless `force`;
/// a network covering an `ignoreip` entry is always refused, naming the entry.
fn guard_ban(j: &super::jail::Jail, id: &HostId, force: bool) -> Result<(), String> {
    let HostId::Net(base, plen) = id else {
        return Ok(());
    };
    let min = min_prefix(j, base.is_ipv4())?;
    if *plen < min && !force {
        let key = if base.is_ipv4() { "ipv4" } else { "ipv6" };
        return Err(format!(
            "refusing to ban {id} in jail '{}': wider than /{min} (banip.minprefix.{key}); use `set {} banip --force {id}` to ban it anyway",
            j.name(),
            j.name()
        ));
    }
    for e in j.ignore.entries() {
        if let super::ignore::IgnoreEntry::Net(entry) = e
            && id.contains(entry)
        {
            return Err(format!(
                "refusing to ban {id} in jail '{}': it covers {entry} of ignoreip (remove it with `set {} delignoreip {entry}` first)",
                j.name(),
                j.name()
            ));
        }
    }
    Ok(())
}

/// Handles one request.
pub async fn handle(state: &Shared, argv: &[String]) -> Res {
    let words: Vec<&str> = argv.iter().map(String::as_str).collect();
    flog!(Debug, "server", "Command: {words:?}");
    match words.as_slice() {
        [] => Err("Invalid command: empty".into()),
        // fail2ban-client's `ping TIMEOUT` sends the timeout along; the server ignores it.
        ["ping", ..] => Ok(json!("pong")),
        // `ferroban top`: a snapshot from the metrics registry (never the jails' state), with the
        // bans/unbans after event number `since` (bounded).
        ["top"] | ["top", _] => {
            let since = match words.get(1) {
                Some(w) => w
                    .parse()
                    .map_err(|_| format!("top {w:?}: expected an event number"))?,
                None => 0,
            };
            let st = state.borrow();
            serde_json::to_value(st.metrics.snapshot(since, st.clock.now()))
                .map_err(|e| e.to_string())
        }
        ["version"] => Ok(json!(super::FAIL2BAN_VERSION)),
        ["echo", rest @ ..] => Ok(json!(rest)),
        ["server-status"] => Ok(json!("Server ready")),
        ["stop"] => {
            state.borrow().shutdown.notify_one();
            Ok(Value::Null)
        }
        ["stop", "--all"] => {
            let names: Vec<String> = jail_names(state);
            for n in names {
                super::server::stop_jail(state, &n).await;
            }
            Ok(Value::Null)
        }
        ["stop", name] => {
            if super::server::stop_jail(state, name).await {
                Ok(Value::Null)
            } else {
                Err(unknown_jail(name))
            }
        }
        // fail2ban 1.0.2 starts only a jail the server has: after `stop <jail>` the jail is
        // gone ("does not exist") until `reload` (or `reload --if-exists <jail>`) re-creates it.
        ["start", name] => {
            if state.borrow().jail(name).is_some() {
                Ok(Value::Null)
            } else {
                Err(unknown_jail(name))
            }
        }
        ["reload", rest @ ..] => {
            // Options first, then the target: a jail name or `--all` (or nothing: all).
            let only: Vec<String> = rest
                .iter()
                .filter(|w| !w.starts_with("--"))
                .map(|w| w.to_string())
                .collect();
            let opts = super::ReloadOptions::parse(
                rest.iter()
                    .copied()
                    .filter(|w| w.starts_with("--") && *w != "--all"),
            )
            .ok_or_else(|| format!("Invalid reload options: {rest:?}"))?;
            // As fail2ban 1.0.2: a named jail must be running (a stopped jail "does not
            // exist"), unless `--if-exists`, which then starts it when it is configured.
            if let Some(j) = only.first()
                && state.borrow().jail(j).is_none()
                && !opts.if_exists
            {
                return Err(unknown_jail(j));
            }
            super::reload_jails_with(state, &only, opts).await;
            Ok(json!("OK"))
        }
        ["flushlogs"] => {
            let r = super::log::reopen();
            flog!(
                Info,
                "server",
                "flush performed on {}",
                super::log::target()
            );
            Ok(json!(r))
        }
        ["add", "--all", ..] => Err(format!(
            "Reserved name {}",
            crate::control::pyrepr::repr_str("--all")
        )),
        ["add", name] | ["add", name, _] => {
            if state.borrow().jail(name).is_some() {
                return Err(crate::control::proto::duplicate_jail(name));
            }
            let backend = words.get(2).copied().unwrap_or("auto");
            super::server::add_jail(state, name, backend)?;
            Ok(json!(name))
        }
        ["status"] => Ok(status_all(state)),
        ["status", "--all"] => Ok(status_every(state, "basic")),
        ["status", "--all", flavor] => Ok(status_every(state, flavor)),
        ["status", name] => status_jail(state, name, "basic"),
        ["status", name, flavor] => status_jail(state, name, flavor),
        ["stats"] | ["statistics"] => Ok(stats(state)),
        ["fleet", "status"] => super::fleet::status_json(state),
        ["banned"] => Ok(banned_all(state)),
        ["banned", ids @ ..] => Ok(banned_ids(state, ids)),
        ["unban", "--all"] => Ok(json!(unban_all(state))),
        ["unban", ids @ ..] if !ids.is_empty() => {
            let mut n = 0;
            for id in ids {
                // Any id a jail may have banned, F-ID values included.
                let id = HostId::parse(id);
                let count = state.borrow().jails.len();
                for idx in 0..count {
                    if state.borrow_mut().unban_in(idx, &id) {
                        n += 1;
                    }
                }
            }
            Ok(json!(n))
        }
        ["get", rest @ ..] => get(state, rest),
        // Run-time changes of actions and journal matches reload the jail in place (async).
        [
            "set",
            name,
            what @ ("addaction" | "delaction" | "action" | "addjournalmatch" | "deljournalmatch"),
            rest @ ..,
        ] => jailops::set_async(state, name, what, rest).await,
        ["set", rest @ ..] => set(state, rest),
        ["status", ..] => Err("Invalid command (no status)".into()),
        _ => Err("Invalid command".into()),
    }
}

fn ignore_list(j: &super::jail::Jail) -> Value {
    use super::ignore::IgnoreEntry;
    let (nets, rest): (Vec<&IgnoreEntry>, Vec<&IgnoreEntry>) = j
        .ignore
        .entries()
        .iter()
        .partition(|e| matches!(e, IgnoreEntry::Net(HostId::Net(..))));
    json!(
        nets.iter()
            .chain(rest.iter())
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    )
}

fn jail_names(state: &Shared) -> Vec<String> {
    state
        .borrow()
        .jails
        .iter()
        .map(|j| j.jail.name().to_string())
        .collect()
}

fn status_all(state: &Shared) -> Value {
    let mut names = jail_names(state);
    names.sort();
    let mut v = vec![
        json!(["Number of jail", names.len()]),
        json!(["Jail list", names.join(", ")]),
    ];
    // Only while the database cannot be written: fail2ban's layout otherwise.
    if let Some(f) = state.borrow().store.as_ref().and_then(|s| s.fault()) {
        v.push(json!([
            "Database",
            format!(
                "cannot write ({}); {} change(s) kept in memory, bans enforced",
                f.error, f.queued
            )
        ]));
    }
    Value::Array(v)
}

fn status_jail(state: &Shared, name: &str, flavor: &str) -> Res {
    let st = state.borrow();
    let rt = st.jail(name).ok_or_else(|| unknown_jail(name))?;
    let c = rt.jail.counts();
    let (what, list) = rt.source.status_entry();
    let mut filter = vec![
        json!(["Currently failed", c.currently_failed]),
        json!(["Total failed", c.total_failed]),
    ];
    // Only once the failure table overflowed (maxfailed): fail2ban's layout otherwise.
    if c.evicted_failed > 0 {
        filter.push(json!(["Evicted failed", c.evicted_failed]));
    }
    filter.push(json!([what, list]));
    let filter = Value::Array(filter);
    let mut actions = if flavor == "short" {
        json!([
            ["Currently banned", c.currently_banned],
            ["Total banned", c.total_banned]
        ])
    } else {
        let ids: Vec<String> = rt
            .jail
            .banned()
            .into_iter()
            .map(|(id, _)| id.to_string())
            .collect();
        json!([
            ["Currently banned", ids.len()],
            ["Total banned", c.total_banned],
            ["Banned IP list", ids]
        ])
    };
    // `cymru`: fail2ban looks the banned addresses up at Team Cymru (DNS) and answers "error"
    // for each list when it cannot; ferroban does no such look-ups in the daemon: "error".
    if flavor == "cymru"
        && let Some(list) = actions.as_array_mut()
    {
        for what in ["Banned ASN list", "Banned Country list", "Banned RIR list"] {
            list.push(json!([what, ["error"]]));
        }
    }
    // Fleet mode only (fail2ban's layout otherwise): the remote bans enforced in this jail.
    if let (Some(remote), Some(list)) = (
        super::fleet::remote_status(name, st.clock.now()),
        actions.as_array_mut(),
    ) {
        list.insert(1, json!(["Remote banned", remote]));
    }
    Ok(json!([["Filter", filter], ["Actions", actions]]))
}

fn status_every(state: &Shared, flavor: &str) -> Value {
    let mut names = jail_names(state);
    names.sort();
    let mut jails = serde_json::Map::new();
    for n in &names {
        if let Ok(v) = status_jail(state, n, flavor) {
            jails.insert(n.clone(), v);
        }
    }
    json!([
        ["Number of jail", names.len()],
        ["Jail list", names.join(", ")],
        Value::Object(jails)
    ])
}

fn stats(state: &Shared) -> Value {
    let st = state.borrow();
    let mut out = serde_json::Map::new();
    for rt in &st.jails {
        let c = rt.jail.counts();
        let backend = rt.source.backend_name();
        out.insert(
            rt.jail.name().to_string(),
            json!([
                backend,
                [c.currently_failed, c.total_failed],
                [c.currently_banned, c.total_banned]
            ]),
        );
    }
    Value::Object(out)
}

fn banned_all(state: &Shared) -> Value {
    let st = state.borrow();
    let v: Vec<Value> = st
        .jails
        .iter()
        .map(|rt| {
            let ids: Vec<String> = rt
                .jail
                .banned()
                .into_iter()
                .map(|(id, _)| id.to_string())
                .collect();
            json!({ rt.jail.name(): ids })
        })
        .collect();
    Value::Array(v)
}

fn banned_ids(state: &Shared, ids: &[&str]) -> Value {
    let st = state.borrow();
    let v: Vec<Value> = ids
        .iter()
        .map(|text| {
            let id = HostId::parse(text);
            let jails: Vec<&str> = st
                .jails
                .iter()
                .filter(|rt| rt.jail.is_banned(&id))
                .map(|rt| rt.jail.name())
                .collect();
            json!(jails)
        })
        .collect();
    Value::Array(v)
}

fn unban_all(state: &Shared) -> usize {
    let mut n = 0;
    let count = state.borrow().jails.len();
    for idx in 0..count {
        let ids: Vec<HostId> = state.borrow().jails[idx]
            .jail
            .banned()
            .into_iter()
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            if state.borrow_mut().unban_in(idx, &id) {
                n += 1;
            }
        }
    }
    n
}

fn get(state: &Shared, words: &[&str]) -> Res {
    if let Some(r) = runtime::get_server(state, words) {
        return r;
    }
    match words {
        ["loglevel"] => Ok(json!(super::log::level_name())),
        ["logtarget"] => Ok(json!(super::log::target())),
        ["dbfile"] => Ok(json!(
            state
                .borrow()
                .settings
                .dbfile
                .as_ref()
                .map(|p| p.display().to_string())
        )),
        ["dbpurgeage"] => Ok(secs_value(state.borrow().settings.dbpurgeage)),
        [name, what, rest @ ..] => {
            // fail2ban checks the setting before it looks the jail up.
            if !crate::control::cmd::jail_get_known(what) {
                return Err("Invalid command (no get action or not yet implemented)".into());
            }
            let st = state.borrow();
            let rt = st.jail(name).ok_or_else(|| unknown_jail(name))?;
            let j = &rt.jail;
            match (*what, rest) {
                ("banned", []) => Ok(json!(
                    j.banned()
                        .into_iter()
                        .map(|(id, _)| id.to_string())
                        .collect::<Vec<_>>()
                )),
                ("banned", ids) => {
                    let flags: Vec<u8> = ids
                        .iter()
                        .map(|t| u8::from(j.is_banned(&HostId::parse(t))))
                        .collect();
                    if flags.len() == 1 {
                        Ok(json!(flags[0]))
                    } else {
                        Ok(json!(flags))
                    }
                }
                ("banip", rest) => {
                    let with_time = rest.contains(&"--with-time");
                    let bans = j.banned_by_end();
                    let v: Vec<String> = bans
                        .into_iter()
                        .map(|(id, b)| {
                            if with_time {
                                let end = b.end().map_or("inf".to_string(), |e| {
                                    super::log::local_time(e as i64)
                                });
                                format!(
                                    "{id} \t{} + {} = {end}",
                                    super::log::local_time(b.banned_at as i64),
                                    b.bantime as i64
                                )
                            } else {
                                id.to_string()
                            }
                        })
                        .collect();
                    Ok(json!(v))
                }
                ("findtime", []) => Ok(secs_value(j.findtime())),
                ("bantime", []) => Ok(secs_value(j.bantime())),
                ("maxretry", []) => Ok(json!(j.maxretry())),
                // fail2ban's built-in default when the configuration sets none.
                ("maxmatches", []) => Ok(json!(j.def().maxmatches.unwrap_or(5))),
                ("ignoreip", []) => Ok(ignore_list(j)),
                ("ignoreself", []) => Ok(json!(j.ignore.ignore_self())),
                ("ignorecommand", []) => Ok(match j.def().ignorecommand.as_deref() {
                    Some(c) => json!(c),
                    None => json!(false),
                }),
                ("logpath", []) => Ok(json!(
                    rt.source
                        .paths()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                )),
                ("logencoding", []) => Ok(json!(
                    j.def()
                        .logencoding
                        .clone()
                        .unwrap_or_else(|| "UTF-8".into())
                )),
                ("usedns", []) => Ok(json!(
                    j.def().usedns.clone().unwrap_or_else(|| "warn".into())
                )),
                ("failregex", []) => Ok(json!(j.failregex())),
                ("ignoreregex", []) => Ok(json!(j.ignoreregex())),
                ("actions", []) => Ok(json!(rt.action_names)),
                _ => {
                    let idx = jail_index(state, name)?;
                    drop(st);
                    runtime::get_jail(state, idx, what, rest)
                        .or_else(|| jailops::get_jail(state, idx, what, rest))
                        .unwrap_or_else(|| {
                            Err("Invalid command (no get action or not yet implemented)".into())
                        })
                }
            }
        }
        _ => Err("Sorry but the command is invalid".into()),
    }
}

fn set(state: &Shared, words: &[&str]) -> Res {
    if let Some(r) = runtime::set_server(state, words) {
        return r;
    }
    match words {
        ["loglevel", level] => {
            super::log::set_level(level).map_err(|_| {
                format!(
                    "Invalid log level {}",
                    crate::control::pyrepr::repr_str(level)
                )
            })?;
            Ok(json!(level.to_ascii_uppercase()))
        }
        [name, what, rest @ ..] => {
            // fail2ban checks the setting before it looks the jail up.
            if !crate::control::cmd::jail_set_known(what) {
                return Err(format!(
                    "Invalid command '{what}' (no set action or not yet implemented)"
                ));
            }
            let idx = jail_index(state, name)?;
            match (*what, rest) {
                ("banip", ids) if !ids.is_empty() => {
                    let (force, ids) = match ids {
                        ["--force", rest @ ..] => (true, rest),
                        _ => (false, ids),
                    };
                    let ids: Vec<HostId> =
                        ids.iter().map(|t| parse_id(t)).collect::<Result<_, _>>()?;
                    {
                        let st = state.borrow();
                        let j = &st.jails[idx].jail;
                        for id in &ids {
                            guard_ban(j, id, force)?;
                        }
                    }
                    let n = state.borrow_mut().ban_many_in(idx, ids);
                    Ok(json!(n))
                }
                ("unbanip", ids) if !ids.is_empty() => {
                    let (report_absent, ids) = match ids {
                        ["--report-absent", rest @ ..] => (true, rest),
                        _ => (false, ids),
                    };
                    // Any id a jail may have banned, F-ID values included.
                    let parsed: Vec<HostId> = ids.iter().map(|t| HostId::parse(t)).collect();
                    if report_absent {
                        let st = state.borrow();
                        let absent: Vec<String> = parsed
                            .iter()
                            .filter(|id| !st.jails[idx].jail.is_banned(id))
                            .map(|id| format!("'{id}'"))
                            .collect();
                        if !absent.is_empty() {
                            return Err(format!("not banned: [{}]", absent.join(", ")));
                        }
                    }
                    // The store's removals in one transaction.
                    if let Some(s) = state.borrow_mut().store.as_mut() {
                        s.begin_batch();
                    }
                    let mut n = 0;
                    for id in parsed {
                        if state.borrow_mut().unban_in(idx, &id)
                            || super::fleet::unban_remote_in(state, idx, &id)
                        {
                            n += 1;
                        }
                    }
                    state.borrow_mut().end_store_batch();
                    Ok(json!(n))
                }
                (op @ ("addignoreip" | "delignoreip"), ips) if !ips.is_empty() => {
                    let mut st = state.borrow_mut();
                    let j = &mut st.jails[idx].jail;
                    for ip in ips {
                        if op == "addignoreip" {
                            j.ignore.add(ip);
                        } else if !j.ignore.remove(ip) {
                            // fail2ban removes from a list: an absent entry is an error.
                            return Err("list.remove(x): x not in list".into());
                        }
                    }
                    Ok(ignore_list(j))
                }
                ("bantime", [v]) => {
                    let s = ferroban_config::parse_duration(v).map_err(|e| e.to_string())?;
                    state.borrow_mut().jails[idx].jail.set_bantime(s);
                    Ok(secs_value(s))
                }
                ("findtime", [v]) => {
                    let s = ferroban_config::parse_duration(v).map_err(|e| e.to_string())?;
                    state.borrow_mut().jails[idx].jail.set_findtime(s);
                    Ok(secs_value(s))
                }
                ("maxretry", [v]) => {
                    let n: u32 = v.trim().parse().map_err(|_| {
                        format!(
                            "invalid literal for int() with base 10: {}",
                            crate::control::pyrepr::repr_str(v)
                        )
                    })?;
                    state.borrow_mut().jails[idx].jail.set_maxretry(n);
                    Ok(json!(n))
                }
                _ => runtime::set_jail(state, idx, what, rest)
                    .or_else(|| jailops::set_jail(state, idx, what, rest))
                    .unwrap_or_else(|| {
                        Err(format!(
                            "Invalid command '{what}' (no set action or not yet implemented)"
                        ))
                    }),
            }
        }
        _ => Err("Sorry but the command is invalid".into()),
    }
}
