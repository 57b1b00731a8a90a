//! Run-time jail commands that act on more than a setting: `idle`, `attempt`, journal matches
//! and actions (`addaction`, `delaction`, `action <ACT> <PROPERTY> [VALUE]`,
//! `actionproperties`, `actionmethods`).
//!
//! A changed action list or action property is applied as an in-place reload of the jail
//! ([`reload_jail`](super::super::server::reload_jail)) with the changed definition: unchanged
//! actions run nothing; a removed or changed action takes the bans in force out of the
//! firewall and stops, a new or changed one starts and gets every ban in force. (fail2ban 1.0.2
//! only swaps the Python object: a deleted action leaves its firewall rules behind, an added
//! one is not started.) Journal matches of a journal jail rebuild its source the same way.
//!
//! What ferroban refuses although fail2ban accepts it: a Python action
//! (`addaction <ACT> <PYTHONFILE> <JSONKWARGS>` loads and runs a Python file named over the
//! socket) and calling an action's methods (`set <JAIL> action <ACT> <METHOD> [<JSON>]`).

use std::collections::BTreeSet;

use ferroban_config::{ActionDef, JailDef};
use serde_json::{Value, json};

use super::super::jailtask::{self, JailRt};
use super::super::journal::JailSource;
use super::super::server::{Shared, State, call};
use super::{Res, runtime, secs_value};
use crate::control::proto::unknown_jail;
use crate::ip::HostId;

/// The methods of fail2ban's `CommandAction` that `get <JAIL> actionmethods <ACT>` lists (so
/// that scripts reading the list see the same names). ferroban calls none of them over the
/// socket.
pub const ACTION_METHODS: [&str; 15] = [
    "ban",
    "clearAllParams",
    "consistencyCheck",
    "escapeTag",
    "executeCmd",
    "flush",
    "invalidateBanEpoch",
    "prolong",
    "reban",
    "reload",
    "replaceDynamicTags",
    "replaceTag",
    "start",
    "stop",
    "unban",
];

/// The properties every shell action has (fail2ban's `CommandAction` attributes); the
/// optional ones and the action's init options come on top ([`properties`]).
const BASE_PROPERTIES: [&str; 13] = [
    "ESCAPE_CRE",
    "ESCAPE_VN_CRE",
    "actionban",
    "actioncheck",
    "actionflush",
    "actionreban",
    "actionreload",
    "actionrepair",
    "actionstart",
    "actionstop",
    "actionunban",
    "banEpoch",
    "timeout",
];

/// fail2ban's escaping patterns: listed as properties, but internal to fail2ban's Python.
const INTERNAL: [&str; 2] = ["ESCAPE_CRE", "ESCAPE_VN_CRE"];

/// fail2ban's `CommandAction` default timeout (seconds).
const DEFAULT_TIMEOUT: f64 = 60.0;

fn invalid_action(name: &str) -> String {
    // str() of fail2ban's KeyError: the repr of its message.
    format!("'Invalid Action name: {name}'")
}

fn no_attribute(key: &str) -> String {
    format!("'CommandAction' object has no attribute '{key}'")
}

/// The command option `key` of `d`, mutable.
fn command_mut<'a>(d: &'a mut ActionDef, key: &str) -> Option<&'a mut Option<String>> {
    Some(match key {
        "actionstart" => &mut d.actionstart,
        "actionstop" => &mut d.actionstop,
        "actionflush" => &mut d.actionflush,
        "actionreload" => &mut d.actionreload,
        "actioncheck" => &mut d.actioncheck,
        "actionrepair" => &mut d.actionrepair,
        "actionban" => &mut d.actionban,
        "actionprolong" => &mut d.actionprolong,
        "actionreban" => &mut d.actionreban,
        "actionunban" => &mut d.actionunban,
        _ => return None,
    })
}

/// The boolean option `key` of `d`, mutable.
fn flag_mut<'a>(d: &'a mut ActionDef, key: &str) -> Option<&'a mut Option<bool>> {
    Some(match key {
        "actionstart_on_demand" => &mut d.actionstart_on_demand,
        "actionrepair_on_unban" => &mut d.actionrepair_on_unban,
        "norestored" => &mut d.norestored,
        _ => return None,
    })
}

/// `get <JAIL> actionproperties <ACT>`: sorted as Python's `dir()`.
pub fn properties(d: &ActionDef) -> Vec<String> {
    let mut d = d.clone();
    let mut set: BTreeSet<String> = BASE_PROPERTIES.iter().map(|s| s.to_string()).collect();
    if d.actionprolong.is_some() {
        set.insert("actionprolong".to_string());
    }
    for k in [
        "actionstart_on_demand",
        "actionrepair_on_unban",
        "norestored",
    ] {
        if flag_mut(&mut d, k).is_some_and(|v| v.is_some()) {
            set.insert(k.to_string());
        }
    }
    // `bantime` is not an action property (it follows the jail's).
    set.extend(
        d.params
            .iter()
            .filter(|(k, _)| k != "bantime" && !k.starts_with('_'))
            .map(|(k, _)| k.clone()),
    );
    set.into_iter().collect()
}

/// `get <JAIL> action <ACT> <KEY>`.
pub fn property(d: &ActionDef, key: &str) -> Res {
    let mut d = d.clone();
    if INTERNAL.contains(&key) {
        return Err(format!(
            "'{key}' is a compiled pattern internal to fail2ban's Python actions; ferroban has \
             no value to show for it"
        ));
    }
    if ACTION_METHODS.contains(&key) {
        return Err(format!(
            "'{key}' is a method of the action: ferroban does not call action methods over the \
             socket"
        ));
    }
    if key == "banEpoch" {
        return Ok(json!(0));
    }
    if key == "timeout" {
        return Ok(secs_value(d.timeout.unwrap_or(DEFAULT_TIMEOUT)));
    }
    if let Some(c) = command_mut(&mut d, key) {
        return match c {
            Some(v) => Ok(json!(v)),
            // The optional command is an attribute only once set.
            None if key == "actionprolong" => Err(no_attribute(key)),
            None => Ok(json!("")),
        };
    }
    if let Some(f) = flag_mut(&mut d, key) {
        return f.map(|b| json!(b)).ok_or_else(|| no_attribute(key));
    }
    match d.param(key) {
        Some(v) if key != "bantime" => Ok(json!(v)),
        _ => Err(no_attribute(key)),
    }
}

/// Sets property `key` of `d` to `value` (fail2ban's `setattr`: a new name becomes a new
/// property, an init option the commands' `<key>` tags read).
fn set_property(d: &mut ActionDef, key: &str, value: &str) -> Result<(), String> {
    if INTERNAL.contains(&key) || key == "banEpoch" {
        return Err(format!("'{key}' of an action cannot be set"));
    }
    if ACTION_METHODS.contains(&key) {
        return Err(format!(
            "refused: '{key}' is a method of the action; ferroban does not call action methods \
             over the socket (fail2ban runs it with arguments decoded from the request)"
        ));
    }
    if key == "bantime" {
        return Err("an action's bantime is the jail's: use `set <JAIL> bantime`".into());
    }
    if key.is_empty() || key.starts_with('_') || key.contains(char::is_whitespace) {
        return Err(format!("invalid action property name {key:?}"));
    }
    if key == "timeout" {
        let secs = ferroban_config::parse_duration(value).map_err(|e| e.to_string())?;
        d.timeout = Some(secs);
        if let Some(p) = d.params.iter_mut().find(|(k, _)| k == "timeout") {
            p.1 = value.to_string();
        }
        return Ok(());
    }
    if let Some(c) = command_mut(d, key) {
        *c = Some(value.to_string());
        return Ok(());
    }
    if let Some(f) = flag_mut(d, key) {
        *f = Some(ferroban_config::as_bool(value));
        return Ok(());
    }
    match d.params.iter_mut().find(|(k, _)| k == key) {
        Some(p) => p.1 = value.to_string(),
        None => d.params.push((key.to_string(), value.to_string())),
    }
    Ok(())
}

pub(super) fn action_of<'a>(def: &'a JailDef, name: &str) -> Result<&'a ActionDef, String> {
    def.actions
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| invalid_action(name))
}

/// `set <JAIL> idle on|off` on jail `rt`.
pub(super) fn set_idle(rt: &mut JailRt, idle: bool) -> Value {
    if rt.idle != idle {
        crate::flog!(
            Info,
            "jail",
            "Jail '{}' {}",
            rt.jail.name(),
            if idle { "idle" } else { "active again" }
        );
    }
    if idle {
        // It leaves its shared reader (if any) at the lines it was given: `idle off` resumes
        // there.
        super::super::shared::detach(rt);
    }
    // Reading resumes at the task's next round.
    rt.idle = idle;
    json!(idle)
}

/// `set <JAIL> attempt <ID> [<FAILURE>...]` on jail `rt`: `1`, fail2ban's answer.
pub(super) fn attempt(st: &mut State, rt: &mut JailRt, id: &str, failures: &[&str]) -> Value {
    let matches = failures.iter().map(|m| m.to_string()).collect();
    crate::flog!(Info, "filter", "[{}] Attempt {id}", rt.jail.name());
    jailtask::attempt_in(st, rt, HostId::parse(id), matches);
    json!(1)
}

/// `get <JAIL> journalmatch`: the match groups (the alternatives, `+` in a `journalmatch`
/// line), each a list of words, as fail2ban keeps them.
pub(super) fn journal_groups(lines: &[String]) -> Vec<Vec<String>> {
    let mut groups = Vec::new();
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        groups.extend(
            words
                .split(|w| *w == "+")
                .filter(|g| !g.is_empty())
                .map(|g| g.iter().map(|w| w.to_string()).collect::<Vec<_>>()),
        );
    }
    groups
}

/// Applies `def` to the running jail (an in-place reload).
async fn apply(state: &Shared, def: JailDef) -> Result<(), String> {
    super::super::server::reload_jail(state, def).await
}

/// Jail `name`'s definition with its run-time values ([`runtime::current_def`]).
async fn current_def(state: &Shared, name: &str) -> Result<JailDef, String> {
    call(state, name, |rt, _| runtime::current_def(rt))
        .await
        .ok_or_else(|| unknown_jail(name))
}

/// `set <JAIL> addaction <ACT>`: an empty shell action.
pub(super) async fn add_action(state: &Shared, name: &str, act: &str) -> Res {
    let mut def = current_def(state, name).await?;
    if def.actions.iter().any(|a| a.name == act) {
        return Err(format!("Action {act} already exists"));
    }
    def.actions.push(ActionDef::empty_command(act));
    apply(state, def).await?;
    Ok(json!(act))
}

/// `set <JAIL> delaction <ACT>`.
pub(super) async fn del_action(state: &Shared, name: &str, act: &str) -> Res {
    let mut def = current_def(state, name).await?;
    let before = def.actions.len();
    def.actions.retain(|a| a.name != act);
    if def.actions.len() == before {
        return Err(invalid_action(act));
    }
    apply(state, def).await?;
    Ok(Value::Null)
}

/// `set <JAIL> action <ACT> <PROPERTY> <VALUE>`: the property's new value.
pub(super) async fn set_action(
    state: &Shared,
    name: &str,
    act: &str,
    key: &str,
    value: &str,
) -> Res {
    let mut def = current_def(state, name).await?;
    let a = def
        .actions
        .iter_mut()
        .find(|a| a.name == act)
        .ok_or_else(|| invalid_action(act))?;
    set_property(a, key, value)?;
    let shown = property(a, key)?;
    apply(state, def).await?;
    Ok(shown)
}

fn method_refused(key: &str) -> String {
    format!(
        "refused: '{key}' is a method of the action; ferroban does not call action methods over \
         the socket (fail2ban runs it with arguments decoded from the request)"
    )
}

/// `set <JAIL> action <ACT> <KEY>` (no value): a method call, refused, or a value missing.
pub(super) fn action_without_value(rt: &JailRt, name: &str, act: &str, key: &str) -> Res {
    action_of(rt.jail.def(), act)?;
    if ACTION_METHODS.contains(&key) {
        Err(method_refused(key))
    } else {
        Err(format!(
            "set {name} action {act} {key}: a value is needed (or a method name, which \
             ferroban refuses)"
        ))
    }
}

/// `set <JAIL> action <ACT> <METHOD> <ARG>...`: a method call, refused.
pub(super) fn action_call(rt: &JailRt, name: &str, act: &str, key: &str) -> Res {
    action_of(rt.jail.def(), act)?;
    Err(format!(
        "refused: `set {name} action {act} {key} ...` with several values calls a method of \
         the action; ferroban does not call action methods over the socket"
    ))
}

/// `set <JAIL> addjournalmatch|deljournalmatch <WORD>...` (`add`: true for the first).
pub(super) async fn journalmatch(state: &Shared, name: &str, add: bool, words: &[&str]) -> Res {
    let (mut def, journal) = call(state, name, |rt, _| {
        let journal = matches!(rt.source, JailSource::Journal(_));
        (runtime::current_def(rt), journal)
    })
    .await
    .ok_or_else(|| unknown_jail(name))?;
    // fail2ban changes the matches of a journal jail only; others have none.
    if !journal {
        return Ok(json!([]));
    }
    // One line per group (`+` separates alternatives, as between lines).
    let mut groups = journal_groups(&def.journalmatch);
    if add {
        for group in words.split(|w| *w == "+") {
            if group.is_empty() {
                return Err(format!(
                    "Error adding journal match for: {:?}",
                    words.join(" ")
                ));
            }
            groups.push(group.iter().map(|w| w.to_string()).collect());
        }
    } else if words.is_empty() {
        groups.clear();
    } else {
        let pos = groups
            .iter()
            .position(|g| g.iter().map(String::as_str).eq(words.iter().copied()))
            // fail2ban's ValueError: the group as a Python list.
            .ok_or_else(|| {
                format!(
                    "Match {} not found",
                    crate::control::pyrepr::repr(&json!(words))
                )
            })?;
        groups.remove(pos);
    }
    def.journalmatch = groups.iter().map(|g| g.join(" ")).collect();
    apply(state, def).await?;
    let groups = call(state, name, |rt, _| {
        journal_groups(&rt.jail.def().journalmatch)
    })
    .await
    .ok_or_else(|| unknown_jail(name))?;
    Ok(json!(groups))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_of_an_action() {
        let mut a = ActionDef::empty_command("rec");
        assert_eq!(properties(&a), BASE_PROPERTIES);
        assert_eq!(property(&a, "actionban").unwrap(), json!(""));
        assert_eq!(property(&a, "timeout").unwrap(), json!(60));
        assert_eq!(
            property(&a, "nosuch").unwrap_err(),
            "'CommandAction' object has no attribute 'nosuch'"
        );
        assert!(property(&a, "actionprolong").is_err());
        set_property(&mut a, "timeout", "30").unwrap();
        set_property(&mut a, "actionban", "echo <ip>").unwrap();
        set_property(&mut a, "port", "22").unwrap();
        set_property(&mut a, "actionprolong", "true").unwrap();
        assert_eq!(property(&a, "timeout").unwrap(), json!(30));
        assert_eq!(property(&a, "actionban").unwrap(), json!("echo <ip>"));
        assert_eq!(property(&a, "port").unwrap(), json!("22"));
        let p = properties(&a);
        assert!(p.contains(&"port".to_string()) && p.contains(&"actionprolong".to_string()));
        assert!(p.windows(2).all(|w| w[0] < w[1]));
        for refused in ["ban", "ESCAPE_CRE", "banEpoch", "bantime", "_x", ""] {
            assert!(set_property(&mut a, refused, "1").is_err(), "{refused}");
        }
        assert!(set_property(&mut a, "timeout", "soon").is_err());
    }

    #[test]
    fn journal_match_groups() {
        let lines = vec![
            "_SYSTEMD_UNIT=sshd.service + _COMM=sshd".to_string(),
            "_COMM=dropbear".to_string(),
        ];
        assert_eq!(
            journal_groups(&lines),
            [
                vec!["_SYSTEMD_UNIT=sshd.service"],
                vec!["_COMM=sshd"],
                vec!["_COMM=dropbear"]
            ]
        );
        assert!(journal_groups(&[]).is_empty());
    }
}
