//! Run-time `get`/`set` of jail and server settings beyond the basic ones of [`super`].
//!
//! A jail setting is changed by rebuilding the jail from its definition with the change
//! applied ([`rebuild`]): the filter's regexes compile through the same engine as at start (a
//! bad regex is refused with the engine's reason and nothing changes), and
//! [`Jail::reconfigure`](super::super::jail::Jail::reconfigure) keeps the bans, failures and
//! counters. Values read back are those of the definition in force.

use ferroban_config::JailDef;
use serde_json::{Value, json};

use super::super::jailtask::{self, JailRt};
use super::super::server::{Shared, State};
use super::{Res, guard_ban, ignore_list, jailops, parse_id, secs_value};
use crate::control::cmd::{BantimeOpt, JailGet, JailSet, ServerSetting, parse_bool};
use crate::ip::HostId;

/// fail2ban's words for a regex it cannot take (`Unable to compile regular expression
/// '...':\n<reason>`, `No failure-id group in '...'`); other errors as ferroban words them.
fn jail_error_text(e: &super::super::jail::JailError) -> String {
    use ferroban_engine::filter::FilterError;
    use ferroban_matcher::RegexError;
    let super::super::jail::JailError::Filter { error, .. } = e else {
        return e.to_string();
    };
    match error.as_ref() {
        FilterError::Regex {
            source:
                RegexError::Syntax {
                    pattern,
                    offset,
                    message,
                },
            ..
        } => format!(
            "Unable to compile regular expression '{pattern}':\n{message} at position {offset}"
        ),
        FilterError::NoFailureId { pattern, .. } => {
            format!("No failure-id group in '{pattern}'")
        }
        _ => e.to_string(),
    }
}

/// Rebuilds jail `rt` from its definition after `change`; the current run-time values of
/// findtime, maxretry, bantime and the ignore list are kept.
pub(super) fn rebuild(
    rt: &mut JailRt,
    change: impl FnOnce(&mut JailDef) -> Result<(), String>,
) -> Result<(), String> {
    let mut def = current_def(rt);
    change(&mut def)?;
    let new = super::super::jail::Jail::new(def).map_err(|e| jail_error_text(&e))?;
    rt.jail.reconfigure(new);
    Ok(())
}

/// Jail `rt`'s definition with the run-time values of findtime, maxretry, bantime and the
/// ignore list (changed in the jail without a rebuild).
pub(super) fn current_def(rt: &JailRt) -> JailDef {
    let j = &rt.jail;
    let mut d = j.def().clone();
    d.findtime = Some(j.findtime());
    d.maxretry = Some(j.maxretry());
    d.bantime = Some(j.bantime());
    // Its `file:` entries stay files (followed by the rebuilt jail), not their contents.
    d.ignoreip = j.ignore.sources();
    d.ignoreself = Some(j.ignore.ignore_self());
    d
}

fn filter_mut(def: &mut JailDef) -> &mut ferroban_config::FilterDef {
    let name = def.name.clone();
    def.filter_def
        .get_or_insert_with(|| ferroban_config::FilterDef {
            name,
            ..Default::default()
        })
}

fn bantime_opt(def: &JailDef, opt: BantimeOpt) -> Value {
    let b = &def.bantime_increment;
    match opt {
        BantimeOpt::Increment => json!(b.increment),
        BantimeOpt::Factor => b.factor.map_or(Value::Null, secs_value),
        BantimeOpt::Formula => json!(b.formula),
        BantimeOpt::Multipliers => json!(b.multipliers),
        BantimeOpt::Maxtime => b.maxtime.map_or(Value::Null, secs_value),
        BantimeOpt::Rndtime => b.rndtime.map_or(Value::Null, secs_value),
        BantimeOpt::Overalljails => json!(b.overalljails),
    }
}

/// `get <jail> datepattern`: `[null, "Default Detectors"]` without a pattern (or with several
/// templates), else `[pattern, name]` of the one template (`pattern` null for the keyword
/// templates `Epoch`, `LEPOCH`, `TAI64N`, `ISO8601`); the name spells the `%`-codes out as
/// fail2ban does (`Year-Month-Day 24hour:Minute:Second`).
fn datepattern_value(pattern: Option<&str>) -> Value {
    let default = json!([null, "Default Detectors"]);
    let Some(p) = pattern.map(str::trim).filter(|p| !p.is_empty()) else {
        return default;
    };
    let Ok(d) = ferroban_date::DateDetector::from_pattern(p) else {
        return default;
    };
    let names = d.template_hits();
    if names.len() != 1 {
        return default;
    }
    let bare = p
        .strip_prefix("{^LN-BEG}")
        .or_else(|| p.strip_prefix('^'))
        .unwrap_or(p);
    let keyword = ["Epoch", "LEPOCH", "TAI64N", "ISO8601"].contains(&bare);
    json!([(!keyword).then_some(p), names[0].0])
}

/// `get <JAIL> ...` on jail `rt` (on its task).
pub(super) fn get_jail(rt: &JailRt, _st: &State, op: JailGet<'_>) -> Res {
    use JailGet as G;
    let j = &rt.jail;
    let def = j.def();
    let filter = def.filter_def.as_ref();
    Ok(match op {
        G::Banned => json!(super::banned_list(rt)),
        G::BannedIds(ids) => {
            let flags: Vec<u8> = ids
                .iter()
                .map(|t| u8::from(j.is_banned(&HostId::parse(t))))
                .collect();
            if flags.len() == 1 {
                json!(flags[0])
            } else {
                json!(flags)
            }
        }
        G::Banip { with_time, .. } => {
            let v: Vec<String> = j
                .banned_by_end()
                .into_iter()
                .map(|(id, b)| {
                    if with_time {
                        let end = b.end().map_or("inf".to_string(), |e| {
                            super::super::log::local_time(e as i64)
                        });
                        format!(
                            "{id} \t{} + {} = {end}",
                            super::super::log::local_time(b.banned_at as i64),
                            b.bantime as i64
                        )
                    } else {
                        id.to_string()
                    }
                })
                .collect();
            json!(v)
        }
        G::Findtime => secs_value(j.findtime()),
        G::Bantime => secs_value(j.bantime()),
        G::Maxretry => json!(j.maxretry()),
        // fail2ban's built-in default when the configuration sets none.
        G::Maxmatches => json!(def.maxmatches.unwrap_or(5)),
        G::Ignoreip => ignore_list(j),
        G::Ignoreself => json!(j.ignore.ignore_self()),
        G::Ignorecommand => match def.ignorecommand.as_deref() {
            Some(c) => json!(c),
            None => json!(false),
        },
        G::Logpath => json!(
            rt.source
                .paths()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
        ),
        G::Logencoding => json!(def.logencoding.clone().unwrap_or_else(|| "UTF-8".into())),
        G::Usedns => json!(def.usedns.clone().unwrap_or_else(|| "warn".into())),
        G::Failregex => json!(j.failregex()),
        G::Ignoreregex => json!(j.ignoreregex()),
        G::Actions => json!(rt.action_names),
        G::Maxlines => json!(filter.and_then(|f| f.maxlines).unwrap_or(1)),
        G::Prefregex => json!(j.prefregex().unwrap_or_default()),
        G::Logtimezone => json!(def.logtimezone),
        G::Ignorecache => ignorecache_value(def),
        G::Journalmatch => json!(jailops::journal_groups(&def.journalmatch)),
        G::Datepattern => datepattern_value(filter.and_then(|f| f.datepattern.as_deref())),
        G::BantimeOption(opt) => bantime_opt(def, opt),
        G::Action { act, key } => {
            return jailops::action_of(def, act).and_then(|a| jailops::property(a, key));
        }
        G::ActionProperties(act) => json!(jailops::properties(jailops::action_of(def, act)?)),
        G::ActionMethods(act) => {
            jailops::action_of(def, act)?;
            json!(jailops::ACTION_METHODS)
        }
    })
}

/// `get <JAIL> ignorecache`: `null`, or fail2ban's list of the cache options: the key,
/// `max-count` and `max-time` in seconds (`["<ip>", 100, 300]`).
fn ignorecache_value(def: &JailDef) -> Value {
    let parsed = def
        .ignorecache
        .as_deref()
        .map(ferroban_engine::ignore::IgnoreCache::parse);
    match parsed {
        Some(Ok(cache)) => {
            let (key, max_count, max_time) = cache.options();
            json!([key, max_count, secs_value(max_time)])
        }
        None | Some(Err(_)) => Value::Null,
    }
}

/// `set <JAIL> ...` on jail `name` (`argv`: the request's words): the settings that rebuild the
/// jail's actions or source from its configuration go through an in-place reload; every other
/// one runs on the jail's task.
pub(super) async fn set_jail(state: &Shared, argv: &[String], name: &str, op: JailSet<'_>) -> Res {
    use JailSet as S;
    match op {
        S::AddAction(act) => return jailops::add_action(state, name, act).await,
        S::DelAction(act) => return jailops::del_action(state, name, act).await,
        S::Action { act, key, value } => {
            return jailops::set_action(state, name, act, key, value).await;
        }
        S::AddJournalmatch(words) => return jailops::journalmatch(state, name, true, words).await,
        S::DelJournalmatch(words) => {
            return jailops::journalmatch(state, name, false, words).await;
        }
        _ => {}
    }
    // The jail's task reads the request's words again (its own copy).
    let words = argv.to_vec();
    super::super::server::call(state, name, move |rt, st| {
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        match crate::control::cmd::parse(&words)? {
            crate::control::cmd::Command::SetJail { jail, op } => set_here(rt, st, jail, op?),
            _ => Err(crate::control::cmd::INVALID.into()),
        }
    })
    .await
    .unwrap_or_else(|| Err(crate::control::proto::unknown_jail(name)))
}

/// `set <JAIL> ...` on jail `rt` (named `name`), on its task.
fn set_here(rt: &mut JailRt, st: &mut State, name: &str, op: JailSet<'_>) -> Res {
    use JailSet as S;
    match op {
        S::Banip { force, ids } => {
            let ids: Vec<HostId> = ids.iter().map(|t| parse_id(t)).collect::<Result<_, _>>()?;
            for id in &ids {
                guard_ban(&rt.jail, id, force)?;
            }
            let n = jailtask::ban_many_in(st, rt, ids);
            Ok(json!(n))
        }
        S::Unbanip { report_absent, ids } => {
            // Any id a jail may have banned, F-ID values included.
            let parsed: Vec<HostId> = ids.iter().map(|t| HostId::parse(t)).collect();
            if report_absent {
                let absent: Vec<String> = parsed
                    .iter()
                    .filter(|id| !rt.jail.is_banned(id))
                    .map(|id| format!("'{id}'"))
                    .collect();
                if !absent.is_empty() {
                    return Err(format!("not banned: [{}]", absent.join(", ")));
                }
            }
            // The store's removals in one transaction.
            if let Some(s) = st.store.as_mut() {
                s.begin_batch();
            }
            let mut n = 0;
            for id in parsed {
                if jailtask::unban_in(st, rt, &id)
                    || super::super::fleet::unban_remote_in(st, rt, &id)
                {
                    n += 1;
                }
            }
            st.end_store_batch();
            Ok(json!(n))
        }
        S::AddIgnoreip(ips) => {
            let j = &mut rt.jail;
            for ip in ips {
                j.ignore.add(ip);
            }
            Ok(ignore_list(j))
        }
        S::DelIgnoreip(ips) => {
            let j = &mut rt.jail;
            for ip in ips {
                if !j.ignore.remove(ip) {
                    // fail2ban removes from a list: an absent entry is an error.
                    return Err("list.remove(x): x not in list".into());
                }
            }
            Ok(ignore_list(j))
        }
        S::Bantime(s) => {
            rt.jail.set_bantime(s);
            Ok(secs_value(s))
        }
        S::Findtime(s) => {
            rt.jail.set_findtime(s);
            Ok(secs_value(s))
        }
        S::Maxretry(n) => {
            rt.jail.set_maxretry(n);
            Ok(json!(n))
        }
        S::AddLogpath { path, tail } => add_logpath(st, rt, path, tail),
        S::DelLogpath(path) => del_logpath(st, rt, path),
        S::Logencoding(enc) => rebuild_source(st, rt, |d| {
            d.logencoding = Some(enc.to_string());
            Ok(())
        })
        .map(|()| json!(enc)),
        S::Maxlines(n) => rebuild(rt, |d| {
            filter_mut(d).maxlines = Some(n);
            Ok(())
        })
        .map(|()| json!(n)),
        S::Maxmatches(n) => rebuild(rt, |d| {
            d.maxmatches = Some(n);
            Ok(())
        })
        .map(|()| json!(n)),
        S::Usedns(v) => rebuild(rt, |d| {
            d.usedns = Some(v.to_string());
            Ok(())
        })
        .map(|()| json!(v)),
        S::Ignoreself(b) => rebuild(rt, |d| {
            d.ignoreself = Some(b);
            Ok(())
        })
        .map(|()| json!(b)),
        S::Ignorecommand(v) => rebuild(rt, |d| {
            d.ignorecommand = Some(v.to_string());
            Ok(())
        })
        .map(|()| json!(v)),
        S::Ignorecache(v) => rebuild(rt, |d| {
            d.ignorecache = (!v.is_empty()).then(|| v.to_string());
            Ok(())
        })
        .map(|()| ignorecache_value(rt.jail.def())),
        S::Logtimezone(v) => rebuild(rt, |d| {
            d.logtimezone = (!v.is_empty()).then(|| v.to_string());
            Ok(())
        })
        .map(|()| json!(v))
        // Only the zone changed: the rebuild failed on it (fail2ban's words).
        .map_err(|_| {
            format!(
                "Unknown or unsupported time zone: {}",
                crate::control::pyrepr::repr_str(v)
            )
        }),
        S::Prefregex(v) => rebuild(rt, |d| {
            filter_mut(d).prefregex = (!v.is_empty()).then(|| v.to_string());
            Ok(())
        })
        .map(|()| json!(rt.jail.prefregex().unwrap_or_default())),
        S::AddFailregex(v) => add_regex(rt, Regexes::Fail, v),
        S::AddIgnoreregex(v) => add_regex(rt, Regexes::Ignore, v),
        S::DelFailregex(n) => del_regex(rt, Regexes::Fail, n),
        S::DelIgnoreregex(n) => del_regex(rt, Regexes::Ignore, n),
        S::Datepattern(v) => rebuild(rt, |d| {
            filter_mut(d).datepattern = Some(v.to_string());
            Ok(())
        })
        .map(|()| datepattern_value(Some(v))),
        S::BantimeOption(opt, v) => {
            let secs = |v: &str| ferroban_config::parse_duration(v).map_err(|e| e.to_string());
            rebuild(rt, |d| {
                let b = &mut d.bantime_increment;
                match opt {
                    BantimeOpt::Increment => b.increment = Some(parse_bool(v).unwrap_or(false)),
                    BantimeOpt::Factor => b.factor = Some(secs(v)?),
                    BantimeOpt::Formula => b.formula = Some(v.to_string()),
                    BantimeOpt::Multipliers => b.multipliers = Some(v.to_string()),
                    BantimeOpt::Maxtime => b.maxtime = Some(secs(v)?),
                    BantimeOpt::Rndtime => b.rndtime = Some(secs(v)?),
                    BantimeOpt::Overalljails => {
                        b.overalljails = Some(parse_bool(v).unwrap_or(false))
                    }
                }
                Ok(())
            })
            .map(|()| bantime_opt(rt.jail.def(), opt))
        }
        S::Idle(idle) => Ok(jailops::set_idle(rt, idle)),
        S::Attempt { id, failures } => Ok(jailops::attempt(st, rt, id, failures)),
        S::AddPythonAction { act, file } => Err(format!(
            "refused: ferroban does not load Python actions ('{act}' from {file}): fail2ban \
             would run that file's code in the server; add a shell action with \
             `set {name} addaction {act}` and set its commands"
        )),
        S::ActionNoValue { act, key } => jailops::action_without_value(rt, name, act, key),
        S::ActionCall { act, key } => jailops::action_call(rt, name, act, key),
        // Handled by [`set_jail`] (an in-place reload).
        S::AddAction(_)
        | S::DelAction(_)
        | S::Action { .. }
        | S::AddJournalmatch(_)
        | S::DelJournalmatch(_) => Err(crate::control::cmd::INVALID.into()),
    }
}

/// The two regex lists of a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Regexes {
    Fail,
    Ignore,
}

fn regex_list(f: &mut ferroban_config::FilterDef, which: Regexes) -> &mut Vec<String> {
    match which {
        Regexes::Fail => &mut f.failregex,
        Regexes::Ignore => &mut f.ignoreregex,
    }
}

/// `addfailregex`/`addignoreregex`.
fn add_regex(rt: &mut JailRt, which: Regexes, v: &str) -> Res {
    rebuild(rt, |d| {
        regex_list(filter_mut(d), which).push(v.to_string());
        Ok(())
    })
    .map(|()| list_of(rt, which))
}

/// `delfailregex`/`delignoreregex`.
fn del_regex(rt: &mut JailRt, which: Regexes, n: i64) -> Res {
    let len = {
        let f = rt.jail.def().filter_def.as_ref();
        f.map_or(0, |f| match which {
            Regexes::Fail => f.failregex.len(),
            Regexes::Ignore => f.ignoreregex.len(),
        })
    };
    // fail2ban logs an index out of range and leaves the list as it is.
    if n >= 0 && (n as usize) < len {
        rebuild(rt, |d| {
            regex_list(filter_mut(d), which).remove(n as usize);
            Ok(())
        })?;
    } else {
        crate::flog!(
            Error,
            "filter",
            "Cannot remove regular expression. Index {n} is not valid"
        );
    }
    Ok(list_of(rt, which))
}

/// The regex list an `add*`/`del*regex` command returns.
fn list_of(rt: &JailRt, which: Regexes) -> Value {
    let j = &rt.jail;
    match which {
        Regexes::Fail => json!(j.failregex()),
        Regexes::Ignore => json!(j.ignoreregex()),
    }
}

/// ferroban writes to syslog through `/dev/log`: fail2ban's `auto`.
const SYSLOGSOCKET: &str = "auto";

/// `get <SETTING>` of the server.
pub(super) fn get_server(state: &Shared, setting: ServerSetting) -> Res {
    use super::super::log;
    let st = state.borrow();
    Ok(match setting {
        ServerSetting::Loglevel => json!(log::level_name()),
        ServerSetting::Logtarget => json!(log::target()),
        ServerSetting::Syslogsocket => json!(SYSLOGSOCKET),
        ServerSetting::Dbfile => {
            json!(st.settings.dbfile.as_ref().map(|p| p.display().to_string()))
        }
        ServerSetting::Dbmaxmatches => st
            .store
            .as_ref()
            .map_or(Value::Null, |s| json!(s.options().max_matches)),
        ServerSetting::Dbpurgeage => st
            .store
            .as_ref()
            .map_or(Value::Null, |s| secs_value(s.options().purge_age)),
        ServerSetting::Thread => json!({"stacksize": 0}),
        // `set` only: [`crate::control::cmd::parse`] answers this for `get allowipv6`.
        ServerSetting::Allowipv6 => return Err(crate::control::cmd::INVALID.into()),
    })
}

/// `set <SETTING> <VALUE>` of the server.
pub(super) fn set_server(state: &Shared, setting: ServerSetting, v: &str) -> Res {
    use super::super::log;
    match setting {
        ServerSetting::Loglevel => {
            log::set_level(v).map_err(|_| {
                format!("Invalid log level {}", crate::control::pyrepr::repr_str(v))
            })?;
            Ok(json!(v.to_ascii_uppercase()))
        }
        ServerSetting::Logtarget => log::init(v, &log::level_name())
            .map(|()| json!(log::target()))
            .map_err(|e| format!("Failed to change log target: {e}")),
        ServerSetting::Syslogsocket if v == SYSLOGSOCKET => Ok(json!(SYSLOGSOCKET)),
        ServerSetting::Syslogsocket => Err(format!(
            "Failed to change syslog socket: ferroban writes to syslog through /dev/log \
             (syslogsocket auto), not {v:?}"
        )),
        ServerSetting::Dbfile => {
            let st = state.borrow();
            match &st.settings.dbfile {
                Some(cur) if cur.as_path() == std::path::Path::new(v) => {
                    Ok(json!(cur.display().to_string()))
                }
                _ => Err(format!(
                    "ferroban does not switch its database at run time: set dbfile = {v} in \
                     fail2ban.local and restart"
                )),
            }
        }
        ServerSetting::Dbmaxmatches => crate::control::cmd::parse_int::<usize>(v).map(|n| {
            let mut st = state.borrow_mut();
            let Some(store) = st.store.as_mut() else {
                return Value::Null;
            };
            let mut o = store.options().clone();
            o.max_matches = n;
            store.set_options(o);
            st.settings.dbmaxmatches = u32::try_from(n).ok();
            json!(n)
        }),
        ServerSetting::Dbpurgeage => ferroban_config::parse_duration(v)
            .map_err(|e| e.to_string())
            .map(|secs| {
                let mut st = state.borrow_mut();
                let Some(store) = st.store.as_mut() else {
                    return Value::Null;
                };
                let mut o = store.options().clone();
                o.purge_age = secs;
                store.set_options(o);
                st.settings.dbpurgeage = secs;
                secs_value(secs)
            }),
        ServerSetting::Allowipv6 => match parse_bool(v) {
            Some(false) => Err(
                "ferroban always handles IPv6 addresses (allowipv6 = no is not supported)".into(),
            ),
            _ => Ok(json!(v)),
        },
        // `get` only: [`crate::control::cmd::parse`] answers this for `set thread V`.
        ServerSetting::Thread => Err(crate::control::cmd::no_set(v)),
    }
}

/// Rebuilds jail `rt`'s log source after `change` to its definition (log paths, encoding); the
/// files it followed keep their read positions. The new definition is kept only when the
/// source builds.
fn rebuild_source(
    st: &mut State,
    rt: &mut JailRt,
    change: impl FnOnce(&mut JailDef) -> Result<(), String>,
) -> Result<(), String> {
    use super::super::journal::JailSource;
    let mut def = rt.jail.def().clone();
    change(&mut def)?;
    let mut source = super::super::server::source_any(&def)?;
    if let JailSource::Files(new) = &mut source {
        match &rt.source {
            JailSource::Files(old) => new.restore(old.positions()),
            // The jail leaves its shared reader, at the positions of the lines it was given.
            JailSource::Shared(_) => new.restore(rt.shared_at.clone()),
            JailSource::Journal(_) => {}
        }
    }
    rebuild(rt, |d| {
        d.logpath = def.logpath.clone();
        d.logencoding = def.logencoding.clone();
        Ok(())
    })?;
    rt.set_source(source);
    // Open the files now (the jail's task would at its next round): `get logpath` and `status`
    // list them at once.
    jailtask::poll_jail(st, rt);
    Ok(())
}

fn logpaths(rt: &JailRt) -> Value {
    json!(
        rt.source
            .paths()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
    )
}

fn has_logpath(rt: &JailRt, path: &str) -> bool {
    rt.jail.def().logpath.iter().any(|l| l.path == path)
}

/// `set <JAIL> addlogpath FILE [tail|head]`.
fn add_logpath(st: &mut State, rt: &mut JailRt, path: &str, tail: bool) -> Res {
    let is_glob = path.contains(['*', '?', '[']);
    if !is_glob && !std::path::Path::new(path).exists() {
        return Err(format!(
            "[Errno 2] No such file or directory: {}",
            crate::control::pyrepr::repr_str(path)
        ));
    }
    if has_logpath(rt, path) {
        // fail2ban keeps a file once.
        return Ok(logpaths(rt));
    }
    rebuild_source(st, rt, |d| {
        d.logpath.push(ferroban_config::LogPath {
            path: path.to_string(),
            tail,
        });
        Ok(())
    })
    .map(|()| logpaths(rt))
}

/// `set <JAIL> dellogpath FILE`.
fn del_logpath(st: &mut State, rt: &mut JailRt, path: &str) -> Res {
    if !has_logpath(rt, path) {
        return Ok(logpaths(rt));
    }
    rebuild_source(st, rt, |d| {
        d.logpath.retain(|l| l.path != path);
        Ok(())
    })
    .map(|()| logpaths(rt))
}
