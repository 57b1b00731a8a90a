//! The control commands: `argv` in, the JSON rendering of what fail2ban's server returns out
//! (shapes documented in [`crate::control::proto`]).

use serde_json::{Value, json};

use super::jailtask::{self, JailRt};
use super::server::{Shared, State, call, call_each};
use crate::control::cmd::{self, Command};
use crate::control::proto::unknown_jail;
use crate::flog;

mod jailops;
mod runtime;
use crate::ip::HostId;

type Res = Result<Value, String>;

/// Jail `name` runs (else fail2ban's error).
fn jail_exists(state: &Shared, name: &str) -> Result<(), String> {
    match state.borrow().jail(name) {
        Some(_) => Ok(()),
        None => Err(unknown_jail(name)),
    }
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

/// Handles one request: parses it ([`cmd::parse`], fail2ban's arity checks and errors), then
/// runs the typed command.
pub async fn handle(state: &Shared, argv: &[String]) -> Res {
    let words: Vec<&str> = argv.iter().map(String::as_str).collect();
    flog!(Debug, "server", "Command: {words:?}");
    run(state, argv, cmd::parse(&words)?).await
}

/// Runs one parsed command (`argv`: its words).
async fn run(state: &Shared, argv: &[String], command: Command<'_>) -> Res {
    use Command as C;
    match command {
        C::Ping => Ok(json!("pong")),
        // `ferroban top`: a snapshot from the metrics registry (never the jails' state), with the
        // bans/unbans after event number `since` (bounded).
        C::Top { since } => {
            let st = state.borrow();
            serde_json::to_value(st.metrics.snapshot(since, st.clock.now()))
                .map_err(|e| e.to_string())
        }
        C::Version => Ok(json!(super::FAIL2BAN_VERSION)),
        C::Echo(rest) => Ok(json!(rest)),
        C::ServerStatus => Ok(json!("Server ready")),
        C::Stop => {
            state.borrow().shutdown.notify_one();
            Ok(Value::Null)
        }
        C::StopAll => {
            super::server::stop_all_jails(state).await;
            Ok(Value::Null)
        }
        C::StopJail(name) => {
            if super::server::stop_jail(state, name).await {
                Ok(Value::Null)
            } else {
                Err(unknown_jail(name))
            }
        }
        // fail2ban 1.0.2 starts only a jail the server has: after `stop <jail>` the jail is
        // gone ("does not exist") until `reload` (or `reload --if-exists <jail>`) re-creates it.
        C::StartJail(name) => {
            // A jail still starting (`add`, a reload) is answered once started.
            super::server::start_ended(state, name).await;
            if state.borrow().jail(name).is_some() {
                Ok(Value::Null)
            } else {
                Err(unknown_jail(name))
            }
        }
        C::Reload { jails, opts } => {
            let only: Vec<String> = jails.iter().map(|w| w.to_string()).collect();
            // As fail2ban 1.0.2: a named jail must be running (a stopped jail "does not
            // exist"), unless `--if-exists`, which then starts it when it is configured.
            if let Some(j) = only.first() {
                // A jail still starting (`add`, another reload) takes the reload once started.
                super::server::start_ended(state, j).await;
                if state.borrow().jail(j).is_none() && !opts.if_exists {
                    return Err(unknown_jail(j));
                }
            }
            super::reload_jails_with(state, &only, opts).await;
            Ok(json!("OK"))
        }
        C::FlushLogs => {
            let r = super::log::reopen();
            flog!(
                Info,
                "server",
                "flush performed on {}",
                super::log::target()
            );
            Ok(json!(r))
        }
        C::Add { jail, backend } => {
            if state.borrow().jail(jail).is_some() {
                return Err(crate::control::proto::duplicate_jail(jail));
            }
            super::server::add_jail(state, jail, backend).await?;
            Ok(json!(jail))
        }
        C::Status => Ok(status_all(state)),
        C::StatusAll { flavor } => Ok(status_every(state, flavor).await),
        C::StatusJail { jail, flavor } => status_jail(state, jail, flavor).await,
        C::Stats => Ok(stats(state).await),
        C::FleetStatus => super::fleet::status_json(state).await,
        C::Banned => Ok(banned_all(state).await),
        C::BannedIds(ids) => Ok(banned_ids(state, ids).await),
        C::UnbanAll => Ok(json!(unban_all(state).await)),
        C::Unban(ids) => {
            let mut n = 0;
            for id in ids {
                // Any id a jail may have banned, F-ID values included.
                let id = HostId::parse(id);
                let unbanned = call_each(state, move |rt, st| jailtask::unban_in(st, rt, &id));
                n += unbanned.await.into_iter().filter(|(_, u)| *u).count();
            }
            Ok(json!(n))
        }
        C::GetServer(setting) => runtime::get_server(state, setting),
        C::SetServer(setting, value) => runtime::set_server(state, setting, value),
        // The jail is looked up before the words after the setting are checked (fail2ban's order).
        C::GetJail { jail, op } => {
            jail_exists(state, jail)?;
            op?;
            // Answered by the jail's task, which reads the request's words again (its own copy).
            let words = argv.to_vec();
            call(state, jail, move |rt, st| {
                let words: Vec<&str> = words.iter().map(String::as_str).collect();
                match cmd::parse(&words)? {
                    C::GetJail { op, .. } => runtime::get_jail(rt, st, op?),
                    _ => Err(cmd::INVALID.into()),
                }
            })
            .await
            .unwrap_or_else(|| Err(unknown_jail(jail)))
        }
        C::SetJail { jail, op } => {
            jail_exists(state, jail)?;
            runtime::set_jail(state, argv, jail, op?).await
        }
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
    state.borrow().jail_names()
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

async fn status_jail(state: &Shared, name: &str, flavor: &str) -> Res {
    let flavor = flavor.to_string();
    call(state, name, move |rt, st| status_of(rt, st, &flavor))
        .await
        .ok_or_else(|| unknown_jail(name))
}

/// `status <jail> [flavor]` of jail `rt` (on its task).
fn status_of(rt: &JailRt, st: &State, flavor: &str) -> Value {
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
        let ids = banned_list(rt);
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
        super::fleet::remote_status(rt.remote.as_ref(), st.clock.now()),
        actions.as_array_mut(),
    ) {
        list.insert(1, json!(["Remote banned", remote]));
    }
    json!([["Filter", filter], ["Actions", actions]])
}

async fn status_every(state: &Shared, flavor: &str) -> Value {
    let flavor = flavor.to_string();
    let mut all = call_each(state, move |rt, st| status_of(rt, st, &flavor)).await;
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    let (count, list) = (names.len(), names.join(", "));
    let jails: serde_json::Map<String, Value> = all.into_iter().collect();
    json!([
        ["Number of jail", count],
        ["Jail list", list],
        Value::Object(jails)
    ])
}

async fn stats(state: &Shared) -> Value {
    let all = call_each(state, |rt, _| {
        let c = rt.jail.counts();
        let backend = rt.source.backend_name();
        json!([
            backend,
            [c.currently_failed, c.total_failed],
            [c.currently_banned, c.total_banned]
        ])
    })
    .await;
    Value::Object(all.into_iter().collect())
}

/// The addresses (ids) jail `rt` bans, as `status` and `get <jail> banned` list them.
fn banned_list(rt: &JailRt) -> Vec<String> {
    rt.jail
        .banned()
        .into_iter()
        .map(|(id, _)| id.to_string())
        .collect()
}

async fn banned_all(state: &Shared) -> Value {
    let all = call_each(state, |rt, _| banned_list(rt)).await;
    Value::Array(
        all.into_iter()
            .map(|(name, ids)| json!({ name: ids }))
            .collect(),
    )
}

async fn banned_ids(state: &Shared, ids: &[&str]) -> Value {
    let ids: Vec<HostId> = ids.iter().map(|t| HostId::parse(t)).collect();
    let n = ids.len();
    let all = call_each(state, move |rt, _| {
        ids.iter()
            .map(|id| rt.jail.is_banned(id))
            .collect::<Vec<bool>>()
    })
    .await;
    // For each id, the jails that ban it.
    let v: Vec<Value> = (0..n)
        .map(|i| {
            let jails: Vec<&str> = all
                .iter()
                .filter(|(_, banned)| banned[i])
                .map(|(name, _)| name.as_str())
                .collect();
            json!(jails)
        })
        .collect();
    Value::Array(v)
}

async fn unban_all(state: &Shared) -> usize {
    let all = call_each(state, |rt, st| jailtask::unban_all_in(st, rt)).await;
    all.into_iter().map(|(_, n)| n).sum()
}
