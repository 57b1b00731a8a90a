//! Run-time `get`/`set` of jail and server settings beyond the basic ones of [`super`].
//!
//! A jail setting is changed by rebuilding the jail from its definition with the change
//! applied ([`rebuild`]): the filter's regexes compile through the same engine as at start (a
//! bad regex is refused with the engine's reason and nothing changes), and
//! [`Jail::reconfigure`](super::super::jail::Jail::reconfigure) keeps the bans, failures and
//! counters. Values read back are those of the definition in force.

use ferroban_config::JailDef;
use serde_json::{Value, json};

use super::super::server::Shared;
use super::{Res, secs_value};

/// Python's `int()` error text for `v`.
fn int_error(v: &str) -> String {
    format!(
        "invalid literal for int() with base 10: {}",
        crate::control::pyrepr::repr_str(v)
    )
}

fn parse_int<T: std::str::FromStr>(v: &str) -> Result<T, String> {
    v.trim().parse().map_err(|_| int_error(v))
}

/// fail2ban's boolean words (`true`, `yes`, `on`, `1`, …).
fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "on" | "true" | "yes" => Some(true),
        "0" | "off" | "false" | "no" => Some(false),
        _ => None,
    }
}

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

/// Rebuilds jail `idx` from its definition after `change`; the current run-time values of
/// findtime, maxretry, bantime and the ignore list are kept.
pub(super) fn rebuild(
    state: &Shared,
    idx: usize,
    change: impl FnOnce(&mut JailDef) -> Result<(), String>,
) -> Result<(), String> {
    let mut def = current_def(state, idx);
    change(&mut def)?;
    let new = super::super::jail::Jail::new(def).map_err(|e| jail_error_text(&e))?;
    state.borrow_mut().jails[idx].jail.reconfigure(new);
    Ok(())
}

/// Jail `idx`'s definition with the run-time values of findtime, maxretry, bantime and the
/// ignore list (changed in the jail without a rebuild).
pub(super) fn current_def(state: &Shared, idx: usize) -> JailDef {
    let st = state.borrow();
    let j = &st.jails[idx].jail;
    let mut d = j.def().clone();
    d.findtime = Some(j.findtime());
    d.maxretry = Some(j.maxretry());
    d.bantime = Some(j.bantime());
    d.ignoreip = j.ignore.entries().iter().map(|e| e.to_string()).collect();
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

fn bantime_opt(def: &JailDef, opt: &str) -> Option<Value> {
    let b = &def.bantime_increment;
    Some(match opt {
        "increment" => json!(b.increment),
        "factor" => b.factor.map_or(Value::Null, secs_value),
        "formula" => json!(b.formula),
        "multipliers" => json!(b.multipliers),
        "maxtime" => b.maxtime.map_or(Value::Null, secs_value),
        "rndtime" => b.rndtime.map_or(Value::Null, secs_value),
        "overalljails" => json!(b.overalljails),
        _ => return None,
    })
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

/// `get <jail> <what> ...` for the settings [`super`] does not read itself; `None` when `what`
/// is no such setting.
pub(super) fn get_jail(state: &Shared, idx: usize, what: &str, rest: &[&str]) -> Option<Res> {
    let st = state.borrow();
    let rt = &st.jails[idx];
    let def = rt.jail.def();
    let filter = def.filter_def.as_ref();
    Some(Ok(match (what, rest) {
        ("maxlines", []) => json!(filter.and_then(|f| f.maxlines).unwrap_or(1)),
        ("prefregex", []) => json!(rt.jail.prefregex().unwrap_or_default()),
        ("logtimezone", []) => json!(def.logtimezone),
        ("ignorecache", []) => match &def.ignorecache {
            None => Value::Null,
            Some(spec) => {
                let mut m = serde_json::Map::new();
                for part in spec.split(',') {
                    if let Some((k, v)) = part.split_once('=') {
                        m.insert(k.trim().to_string(), json!(v.trim().trim_matches('"')));
                    }
                }
                Value::Object(m)
            }
        },
        ("journalmatch", []) => json!(super::jailops::journal_groups(&def.journalmatch)),
        ("datepattern", []) => datepattern_value(filter.and_then(|f| f.datepattern.as_deref())),
        (opt, []) if opt.starts_with("bantime.") => bantime_opt(def, &opt["bantime.".len()..])?,
        _ => return None,
    }))
}

/// `set <jail> <what> ...` for the settings [`super`] does not change itself; `None` when
/// `what` is no such setting.
pub(super) fn set_jail(state: &Shared, idx: usize, what: &str, rest: &[&str]) -> Option<Res> {
    if let Some(r) = set_source(state, idx, what, rest) {
        return Some(r);
    }
    let r = match (what, rest) {
        ("maxlines", [v]) => parse_int::<usize>(v).and_then(|n| {
            rebuild(state, idx, |d| {
                filter_mut(d).maxlines = Some(n);
                Ok(())
            })
            .map(|()| json!(n))
        }),
        ("maxmatches", [v]) => parse_int::<u32>(v).and_then(|n| {
            rebuild(state, idx, |d| {
                d.maxmatches = Some(n);
                Ok(())
            })
            .map(|()| json!(n))
        }),
        ("usedns", [v]) => {
            // fail2ban takes yes/warn/no/raw and turns anything else into "no".
            let v = match v.to_ascii_lowercase().as_str() {
                w @ ("yes" | "warn" | "no" | "raw") => w.to_string(),
                _ => "no".to_string(),
            };
            rebuild(state, idx, |d| {
                d.usedns = Some(v.clone());
                Ok(())
            })
            .map(|()| json!(v))
        }
        ("ignoreself", [v]) => {
            let b = parse_bool(v).unwrap_or(false);
            rebuild(state, idx, |d| {
                d.ignoreself = Some(b);
                Ok(())
            })
            .map(|()| json!(b))
        }
        ("ignorecommand", [v]) => rebuild(state, idx, |d| {
            d.ignorecommand = Some(v.to_string());
            Ok(())
        })
        .map(|()| json!(v)),
        ("ignorecache", [v]) => rebuild(state, idx, |d| {
            d.ignorecache = (!v.is_empty()).then(|| v.to_string());
            Ok(())
        })
        .and_then(|()| get_jail(state, idx, "ignorecache", &[]).expect("a setting")),
        ("logtimezone", [v]) => rebuild(state, idx, |d| {
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
        ("prefregex", [v]) => rebuild(state, idx, |d| {
            filter_mut(d).prefregex = (!v.is_empty()).then(|| v.to_string());
            Ok(())
        })
        .map(|()| {
            json!(
                state.borrow().jails[idx]
                    .jail
                    .prefregex()
                    .unwrap_or_default()
            )
        }),
        (op @ ("addfailregex" | "addignoreregex"), [v]) => rebuild(state, idx, |d| {
            let f = filter_mut(d);
            if op == "addfailregex" {
                f.failregex.push(v.to_string());
            } else {
                f.ignoreregex.push(v.to_string());
            }
            Ok(())
        })
        .map(|()| list_of(state, idx, op)),
        (op @ ("delfailregex" | "delignoreregex"), [v]) => parse_int::<i64>(v).and_then(|n| {
            let fail = op == "delfailregex";
            let len = {
                let st = state.borrow();
                let f = st.jails[idx].jail.def().filter_def.as_ref();
                f.map_or(0, |f| {
                    if fail {
                        f.failregex.len()
                    } else {
                        f.ignoreregex.len()
                    }
                })
            };
            // fail2ban logs an index out of range and leaves the list as it is.
            if n >= 0 && (n as usize) < len {
                rebuild(state, idx, |d| {
                    let f = filter_mut(d);
                    if fail {
                        f.failregex.remove(n as usize);
                    } else {
                        f.ignoreregex.remove(n as usize);
                    }
                    Ok(())
                })?;
            } else {
                crate::flog!(
                    Error,
                    "filter",
                    "Cannot remove regular expression. Index {n} is not valid"
                );
            }
            Ok(list_of(state, idx, op))
        }),
        ("datepattern", [v]) => rebuild(state, idx, |d| {
            filter_mut(d).datepattern = Some(v.to_string());
            Ok(())
        })
        .map(|()| datepattern_value(Some(v))),
        (opt, [v]) if opt.starts_with("bantime.") => {
            let name = &opt["bantime.".len()..];
            let secs = |v: &str| ferroban_config::parse_duration(v).map_err(|e| e.to_string());
            let changed = rebuild(state, idx, |d| {
                let b = &mut d.bantime_increment;
                match name {
                    "increment" => b.increment = Some(parse_bool(v).unwrap_or(false)),
                    "factor" => b.factor = Some(secs(v)?),
                    "formula" => b.formula = Some(v.to_string()),
                    "multipliers" => b.multipliers = Some(v.to_string()),
                    "maxtime" => b.maxtime = Some(secs(v)?),
                    "rndtime" => b.rndtime = Some(secs(v)?),
                    "overalljails" => b.overalljails = Some(parse_bool(v).unwrap_or(false)),
                    _ => return Err(format!("unknown option {:?}", name)),
                }
                Ok(())
            });
            changed.map(|()| {
                let st = state.borrow();
                bantime_opt(st.jails[idx].jail.def(), name).unwrap_or(Value::Null)
            })
        }
        _ => return None,
    };
    Some(r)
}

/// The regex list an `add*`/`del*regex` command returns.
fn list_of(state: &Shared, idx: usize, op: &str) -> Value {
    let st = state.borrow();
    let j = &st.jails[idx].jail;
    if op.contains("fail") {
        json!(j.failregex())
    } else {
        json!(j.ignoreregex())
    }
}

/// ferroban writes to syslog through `/dev/log`: fail2ban's `auto`.
const SYSLOGSOCKET: &str = "auto";

/// `get <setting>` of the server for the settings [`super`] does not read itself.
pub(super) fn get_server(state: &Shared, words: &[&str]) -> Option<Res> {
    let st = state.borrow();
    Some(Ok(match words {
        ["syslogsocket"] => json!(SYSLOGSOCKET),
        ["dbmaxmatches"] => st
            .store
            .as_ref()
            .map_or(Value::Null, |s| json!(s.options().max_matches)),
        ["dbpurgeage"] => st
            .store
            .as_ref()
            .map_or(Value::Null, |s| secs_value(s.options().purge_age)),
        ["thread"] => json!({"stacksize": 0}),
        _ => return None,
    }))
}

/// `set <setting> <value>` of the server for the settings [`super`] does not change itself.
pub(super) fn set_server(state: &Shared, words: &[&str]) -> Option<Res> {
    use super::super::log;
    Some(match words {
        ["logtarget", t] => log::init(t, &log::level_name())
            .map(|()| json!(log::target()))
            .map_err(|e| format!("Failed to change log target: {e}")),
        ["syslogsocket", v] if *v == SYSLOGSOCKET => Ok(json!(SYSLOGSOCKET)),
        ["syslogsocket", v] => Err(format!(
            "Failed to change syslog socket: ferroban writes to syslog through /dev/log \
             (syslogsocket auto), not {v:?}"
        )),
        ["dbfile", p] => {
            let st = state.borrow();
            match &st.settings.dbfile {
                Some(cur) if cur.as_path() == std::path::Path::new(p) => {
                    Ok(json!(cur.display().to_string()))
                }
                _ => Err(format!(
                    "ferroban does not switch its database at run time: set dbfile = {p} in \
                     fail2ban.local and restart"
                )),
            }
        }
        ["dbmaxmatches", v] => parse_int::<usize>(v).and_then(|n| {
            let mut st = state.borrow_mut();
            let Some(store) = st.store.as_mut() else {
                return Ok(Value::Null);
            };
            let mut o = store.options().clone();
            o.max_matches = n;
            store.set_options(o).map_err(|e| e.to_string())?;
            st.settings.dbmaxmatches = u32::try_from(n).ok();
            Ok(json!(n))
        }),
        ["dbpurgeage", v] => ferroban_config::parse_duration(v)
            .map_err(|e| e.to_string())
            .and_then(|secs| {
                let mut st = state.borrow_mut();
                let Some(store) = st.store.as_mut() else {
                    return Ok(Value::Null);
                };
                let mut o = store.options().clone();
                o.purge_age = secs;
                store.set_options(o).map_err(|e| e.to_string())?;
                st.settings.dbpurgeage = secs;
                Ok(secs_value(secs))
            }),
        ["allowipv6", v] => match parse_bool(v) {
            Some(false) => Err(
                "ferroban always handles IPv6 addresses (allowipv6 = no is not supported)".into(),
            ),
            _ => Ok(json!(v)),
        },
        _ => return None,
    })
}

/// Rebuilds jail `idx`'s log source after `change` to its definition (log paths, encoding); the
/// files it followed keep their read positions. The new definition is kept only when the
/// source builds.
fn rebuild_source(
    state: &Shared,
    idx: usize,
    change: impl FnOnce(&mut JailDef) -> Result<(), String>,
) -> Result<(), String> {
    use super::super::journal::JailSource;
    let mut def = state.borrow().jails[idx].jail.def().clone();
    change(&mut def)?;
    let mut source = super::super::server::source_any(&def)?;
    {
        let st = state.borrow();
        if let (JailSource::Files(old), JailSource::Files(new)) =
            (&st.jails[idx].source, &mut source)
        {
            new.restore(old.positions());
        }
    }
    rebuild(state, idx, |d| {
        d.logpath = def.logpath.clone();
        d.logencoding = def.logencoding.clone();
        Ok(())
    })?;
    state.borrow_mut().jails[idx].source = source;
    // Open the files now (the source task would at its next round): `get logpath` and
    // `status` list them at once.
    state.borrow_mut().poll_jail(idx);
    Ok(())
}

fn logpaths(state: &Shared, idx: usize) -> Value {
    let st = state.borrow();
    json!(
        st.jails[idx]
            .source
            .paths()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
    )
}

/// `set <jail> addlogpath|dellogpath|logencoding ...`; `None` for other settings.
pub(super) fn set_source(state: &Shared, idx: usize, what: &str, rest: &[&str]) -> Option<Res> {
    Some(match (what, rest) {
        ("addlogpath", [path, opt @ ..]) => {
            let tail = match opt {
                [] => false,
                [o] if o.eq_ignore_ascii_case("tail") => true,
                [o] if o.eq_ignore_ascii_case("head") => false,
                [_] => return Some(Err("File option must be 'head' or 'tail'".into())),
                _ => return Some(Err("Only one file can be added at a time".into())),
            };
            let is_glob = path.contains(['*', '?', '[']);
            if !is_glob && !std::path::Path::new(path).exists() {
                return Some(Err(format!(
                    "[Errno 2] No such file or directory: {}",
                    crate::control::pyrepr::repr_str(path)
                )));
            }
            let known = state.borrow().jails[idx]
                .jail
                .def()
                .logpath
                .iter()
                .any(|l| l.path == *path);
            if known {
                // fail2ban keeps a file once.
                Ok(logpaths(state, idx))
            } else {
                rebuild_source(state, idx, |d| {
                    d.logpath.push(ferroban_config::LogPath {
                        path: path.to_string(),
                        tail,
                    });
                    Ok(())
                })
                .map(|()| logpaths(state, idx))
            }
        }
        ("dellogpath", [path]) => {
            let known = state.borrow().jails[idx]
                .jail
                .def()
                .logpath
                .iter()
                .any(|l| l.path == *path);
            if !known {
                Ok(logpaths(state, idx))
            } else {
                rebuild_source(state, idx, |d| {
                    d.logpath.retain(|l| l.path != *path);
                    Ok(())
                })
                .map(|()| logpaths(state, idx))
            }
        }
        ("logencoding", [enc]) => {
            let known = enc.eq_ignore_ascii_case("auto")
                || ferroban_source::LogEncoding::parse(enc).is_ok();
            if !known {
                return Some(Err(format!("unknown encoding: {enc}")));
            }
            rebuild_source(state, idx, |d| {
                d.logencoding = Some(enc.to_string());
                Ok(())
            })
            .map(|()| json!(enc))
        }
        _ => return None,
    })
}
