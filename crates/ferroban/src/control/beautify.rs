//! fail2ban-client's printed output for a command's value (its "beautifier").
//!
//! [`beautify`] turns `(argv, value)` into the exact text fail2ban-client 1.0.2 prints on stdout
//! (without the final newline), for the value shapes of [`super::proto`]: the `Status` trees,
//! `Current monitored log file(s):`, `These IP addresses/networks are ignored:`, the regex
//! lists, `get J banip` joined by its separator, and Python's `str()` of anything it does not
//! dress up (`[1, 0]`, `None`, `{'sshd': [...]}`). `status --all` and `stats` follow fail2ban
//! 1.1's layout (1.0.2 has neither command).
//!
//! Which text is chosen from the parsed command ([`super::cmd::Command`]) and, for the settings
//! of `get`/`set`, from their entry of the table ([`super::cmd::Text`]).
//!
//! When a value does not have the shape the command expects, fail2ban's beautifier gives up and
//! prints the `repr()` of what it had built so far followed by the `repr()` of the value, and
//! logs an error; [`render`] reproduces that and says so in [`Rendered::mismatch`].

use serde_json::Value;

use super::cmd::{self, Command, Text};
use super::pyrepr::{repr, str_of};

/// A beautified value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The text to print (no trailing newline).
    pub text: String,
    /// The value did not have the shape the command expects (fail2ban logs
    /// `Beautifier error. Please report the error`).
    pub mismatch: bool,
}

/// The text fail2ban-client prints for `argv`'s successful `value`.
pub fn beautify(argv: &[String], value: &Value) -> String {
    render(argv, value).text
}

/// [`beautify`], also telling whether the value had an unexpected shape.
pub fn render(argv: &[String], value: &Value) -> Rendered {
    let words: Vec<&str> = argv.iter().map(String::as_str).collect();
    match dress(&words, value) {
        Ok(text) => Rendered {
            text,
            mismatch: false,
        },
        Err(partial) => Rendered {
            text: format!("{}{}", repr(&partial), repr(value)),
            mismatch: true,
        },
    }
}

/// `Err` carries what the beautifier had built when the value's shape did not fit.
type Dressed = Result<String, Value>;

fn text(s: impl Into<String>) -> Value {
    Value::String(s.into())
}

/// `prefix + value`, which needs a string value.
fn concat(prefix: &str, v: &Value, partial: Value) -> Dressed {
    v.as_str().map(|s| format!("{prefix}{s}")).ok_or(partial)
}

/// The items a Python `for` loop would see, for the sequences the beautifier loops over: an
/// array's items, a string's characters.
fn items(v: &Value) -> Option<Vec<Value>> {
    match v {
        Value::Array(a) => Some(a.clone()),
        Value::String(s) => Some(s.chars().map(|c| text(c.to_string())).collect()),
        _ => None,
    }
}

/// Python's `len(v) == 0`; `None` for values without a length.
fn is_empty(v: &Value) -> Option<bool> {
    match v {
        Value::Array(a) => Some(a.is_empty()),
        Value::String(s) => Some(s.is_empty()),
        Value::Object(o) => Some(o.is_empty()),
        _ => None,
    }
}

/// `sep.join(v)`: every item must be a string.
fn join(v: &Value, sep: &str) -> Option<String> {
    let parts: Option<Vec<String>> = items(v)?
        .iter()
        .map(|i| i.as_str().map(str::to_string))
        .collect();
    parts.map(|p| p.join(sep))
}

/// A `|- a` / `` `- z `` list after `header`; `empty` when there is nothing.
fn tree_list(
    v: &Value,
    empty: &str,
    header: &str,
    label: impl Fn(usize, &str) -> String,
) -> Dressed {
    match is_empty(v) {
        None => return Err(v.clone()),
        Some(true) => return Ok(empty.to_string()),
        Some(false) => {}
    }
    let list = items(v).ok_or_else(|| text(header))?;
    let mut msg = header.to_string();
    let last = list.len() - 1;
    for (i, item) in list.iter().enumerate() {
        let s = item.as_str().ok_or_else(|| text(msg.clone()))?;
        let branch = if i == last { "`- " } else { "|- " };
        msg.push_str(branch);
        msg.push_str(&label(i, s));
        if i != last {
            msg.push('\n');
        }
    }
    Ok(msg)
}

/// Dresses `r` for the command `c`: the parsed command says which text, and for the settings
/// of `get`/`set` their entry of the table ([`cmd::JAIL_SETTINGS`], [`cmd::SERVER_SETTINGS`]),
/// found by the setting's word as fail2ban's beautifier does (so that the answer of a fail2ban
/// server to words ferroban would refuse is dressed as fail2ban-client dresses it).
fn dress(c: &[&str], r: &Value) -> Dressed {
    use Command as C;
    match cmd::parse(c) {
        Ok(C::Ping) => concat("Server replied: ", r, r.clone()),
        Ok(C::StartJail(_)) => Ok("Jail started".into()),
        Ok(C::Stop) if r.is_null() => Ok("Shutdown successful".into()),
        Ok(C::StopJail(_) | C::StopAll) if r.is_null() => Ok("Jail stopped".into()),
        Ok(C::Add { .. }) => concat("Added jail ", r, r.clone()),
        Ok(C::FlushLogs) => concat("logs: ", r, r.clone()),
        Ok(C::Echo(_)) => join(r, " ").ok_or_else(|| r.clone()),
        Ok(C::Status) => status(None, false, r),
        Ok(C::StatusAll { .. }) => status(None, true, r),
        Ok(C::StatusJail { jail, .. }) => status(Some(jail), false, r),
        Ok(C::Stats) => stats(r),
        Ok(C::FleetStatus) => Ok(crate::daemon::fleet::status_text(r)),
        Ok(C::GetServer(s) | C::SetServer(s, _)) => setting_text(s.spec().text, c, r),
        Ok(C::GetJail { .. } | C::SetJail { .. }) | Err(_) => match c {
            [verb, _, word, ..] => match cmd::jail_setting(verb, word) {
                Some(setting) => setting_text(setting.text, c, r),
                None => Ok(str_of(r)),
            },
            _ => Ok(str_of(r)),
        },
        Ok(
            C::Version
            | C::Stop
            | C::StopJail(_)
            | C::StopAll
            | C::Top { .. }
            | C::ServerStatus
            | C::Reload { .. }
            | C::Banned
            | C::BannedIds(_)
            | C::Unban(_)
            | C::UnbanAll,
        ) => Ok(str_of(r)),
    }
}

/// The text of a setting's answer `r` (command `c`: `get|set [<JAIL>] <SETTING> ...`).
fn setting_text(t: Text, c: &[&str], r: &Value) -> Dressed {
    match t {
        Text::Plain => Ok(str_of(r)),
        Text::SyslogSocket => current("Current syslog socket is:\n", r),
        Text::LogTarget => current("Current logging target is:\n", r),
        Text::LogLevel => {
            let level = match r {
                Value::Number(n) if n.is_i64() => text(level_name(n.as_i64().unwrap_or(0))),
                Value::Bool(b) => text(level_name(i64::from(*b))),
                other => other.clone(),
            };
            Ok(format!("Current logging level is {}", repr(&level)))
        }
        Text::DbFile if r.is_null() => Ok("Database currently disabled".into()),
        Text::DbFile => current("Current database file is:\n", r),
        Text::DbPurgeAge if r.is_null() => Ok("Database currently disabled".into()),
        Text::DbPurgeAge => {
            let header = "Current database purge age is:\n";
            let secs = match r {
                Value::Number(n) if n.is_i64() => n.as_i64().map(|i| i.to_string()),
                Value::Number(n) if n.is_u64() => n.as_u64().map(|i| i.to_string()),
                Value::Number(n) => n
                    .as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| format!("{}", f.trunc() as i128)),
                Value::Bool(b) => Some(u8::from(*b).to_string()),
                _ => None,
            };
            secs.map(|s| format!("{header}`- {s}seconds"))
                .ok_or_else(|| text(header))
        }
        Text::LogFiles => tree_list(
            r,
            "No file is currently monitored",
            "Current monitored log file(s):\n",
            |_, s| s.to_string(),
        ),
        Text::Encoding => concat(
            "Current log encoding is set to:\n",
            r,
            text("Current log encoding is set to:\n"),
        ),
        Text::JournalMatch => match is_empty(r) {
            None => Err(r.clone()),
            Some(true) => Ok("No journal match filter set".into()),
            Some(false) => {
                let header = "Current match filter:\n";
                let matches: Option<Vec<String>> = items(r)
                    .unwrap_or_default()
                    .iter()
                    .map(|m| join(m, " "))
                    .collect();
                matches
                    .map(|m| format!("{header}{}", m.join(" + ")))
                    .ok_or_else(|| text(header))
            }
        },
        Text::DatePattern => {
            let header = "Current date pattern set to: ";
            match r {
                Value::Null => Ok(format!("{header}Not set/required")),
                Value::Array(a) if a.first() == Some(&Value::Null) => a
                    .get(1)
                    .map(|name| format!("{header}{}", str_of(name)))
                    .ok_or_else(|| text(header)),
                Value::Array(a) if a.len() == 2 => {
                    Ok(format!("{header}{} ({})", str_of(&a[0]), str_of(&a[1])))
                }
                _ => Err(text(header)),
            }
        }
        Text::IgnoreList => tree_list(
            r,
            "No IP address/network is ignored",
            "These IP addresses/networks are ignored:\n",
            |_, s| s.to_string(),
        ),
        Text::Regexes => tree_list(
            r,
            "No regular expression is defined",
            "The following regular expression are defined:\n",
            |i, s| format!("[{i}]: {s}"),
        ),
        Text::Actions => match is_empty(r) {
            None => Err(r.clone()),
            Some(true) => Ok(format!("No actions for jail {}", c[1])),
            Some(false) => {
                let header = format!("The jail {} has the following actions:\n", c[1]);
                join(r, ", ")
                    .map(|j| format!("{header}{j}"))
                    .ok_or_else(|| text(header))
            }
        },
        Text::ActionProperties | Text::ActionMethods => {
            let what = if t == Text::ActionProperties {
                "properties"
            } else {
                "methods"
            };
            let empty = is_empty(r).ok_or_else(|| r.clone())?;
            let action = c.get(3).ok_or_else(|| r.clone())?;
            if empty {
                return Ok(format!("No {what} for jail {} action {action}", c[1]));
            }
            let header = format!(
                "The jail {} action {action} has the following {what}:\n",
                c[1]
            );
            join(r, ", ")
                .map(|j| format!("{header}{j}"))
                .ok_or_else(|| text(header))
        }
        Text::Banip => match r {
            Value::Array(_) => {
                let sep = match c.get(3) {
                    None => " ",
                    Some(&"--with-time") => "\n",
                    Some(s) => s,
                };
                join(r, sep).ok_or_else(|| r.clone())
            }
            _ => Ok(str_of(r)),
        },
    }
}

/// `header` then `` `- value``.
fn current(header: &str, r: &Value) -> Dressed {
    concat(&format!("{header}`- "), r, text(header))
}

/// Python's `logging.getLevelName` with fail2ban's extra levels.
fn level_name(n: i64) -> String {
    match n {
        0 => "NOTSET".into(),
        5 => "HEAVY".into(),
        7 => "TRACE".into(),
        10 => "DEBUG".into(),
        18 => "MSG".into(),
        20 => "INFO".into(),
        25 => "NOTICE".into(),
        30 => "WARNING".into(),
        40 => "ERROR".into(),
        50 => "CRITICAL".into(),
        1..=49 => format!("#{n:02}-Lev."),
        _ => format!("Level {n}"),
    }
}

/// A status value: a list's items joined by spaces (`str()` of each), anything else `str()`.
fn status_value(v: &Value) -> String {
    match v {
        Value::Array(a) => a.iter().map(str_of).collect::<Vec<_>>().join(" "),
        other => str_of(other),
    }
}

/// A `[label, value]` pair of a status list.
fn pair(v: &Value) -> Option<(&Value, &Value)> {
    match v {
        Value::Array(a) if a.len() >= 2 => Some((&a[0], &a[1])),
        _ => None,
    }
}

/// The `Filter` / `Actions` sections of one jail's status, each line prefixed with `pref`.
fn jail_tree(lines: &mut Vec<String>, jail: &Value, pref: &str) -> Result<(), ()> {
    let sections = jail.as_array().ok_or(())?;
    for (n, section) in sections.iter().enumerate() {
        let last = n + 1 == sections.len();
        let (label, entries) = pair(section).ok_or(())?;
        lines.push(format!(
            "{pref}{} {}",
            if last { "`-" } else { "|-" },
            str_of(label)
        ));
        let inner = format!("{pref}{}", if last { "   " } else { "|  " });
        let entries = entries.as_array().ok_or(())?;
        for (m, entry) in entries.iter().enumerate() {
            let (key, value) = pair(entry).ok_or(())?;
            let branch = if m + 1 == entries.len() { "`-" } else { "|-" };
            lines.push(format!(
                "{inner}{branch} {}:\t{}",
                str_of(key),
                status_value(value)
            ));
        }
    }
    Ok(())
}

/// `status` (`all`: `status --all`) or `status JAIL`.
fn status(jail: Option<&str>, all: bool, r: &Value) -> Dressed {
    let as_partial = |lines: Vec<String>| Value::Array(lines.into_iter().map(text).collect());
    if let Some(jail) = jail {
        let mut lines = vec![format!("Status for the jail: {jail}")];
        return match jail_tree(&mut lines, r, "") {
            Ok(()) => Ok(lines.join("\n")),
            Err(()) => Err(as_partial(lines)),
        };
    }
    let mut lines = vec!["Status".to_string()];
    let items = r.as_array().ok_or_else(|| as_partial(lines.clone()))?;
    // `status --all`: the last element is the jail name → status object (fail2ban 1.1), or a
    // `["Jails", {...}]` pair.
    let (pairs, jails) = match (all, items.split_last()) {
        (true, Some((Value::Object(o), rest))) => (rest, Some(o)),
        (true, Some((last, rest))) => match pair(last) {
            Some((_, Value::Object(o))) => (rest, Some(o)),
            _ => (items.as_slice(), None),
        },
        _ => (items.as_slice(), None),
    };
    let jails = jails.filter(|o| !o.is_empty());
    for (n, item) in pairs.iter().enumerate() {
        let (label, value) = pair(item).ok_or_else(|| as_partial(lines.clone()))?;
        let last = jails.is_none() && n + 1 == pairs.len();
        lines.push(format!(
            "{} {}:\t{}",
            if last { "`-" } else { "|-" },
            str_of(label),
            status_value(value)
        ));
    }
    if let Some(jails) = jails {
        lines.push("`- Status for the jails:".into());
        for (i, (name, jail)) in jails.iter().enumerate() {
            let last = i + 1 == jails.len();
            lines.push(format!(
                "   {} Jail: {name}",
                if last { "`-" } else { "|-" }
            ));
            let pref = if last { "      " } else { "   |  " };
            if jail_tree(&mut lines, jail, pref).is_err() {
                return Err(as_partial(lines));
            }
        }
    }
    Ok(lines.join("\n"))
}

/// One `stats` row: name, backend, failed now, failed in total, banned now, banned in total.
fn stats_row(name: &str, v: &Value) -> Option<[String; 6]> {
    let a = v.as_array()?;
    let counts = |i: usize| -> Option<(String, String)> {
        let p = a.get(i)?.as_array()?;
        Some((str_of(p.first()?), str_of(p.get(1)?)))
    };
    let (fc, ft) = counts(1)?;
    let (bc, bt) = counts(2)?;
    Some([name.to_string(), str_of(a.first()?), fc, ft, bc, bt])
}

fn pad_left(s: &str, width: usize) -> String {
    format!("{s:<width$}")
}

fn pad_right(s: &str, width: usize) -> String {
    format!("{s:>width$}")
}

/// fail2ban 1.1's `stats` table.
fn stats(r: &Value) -> Dressed {
    let jails = match r {
        Value::Object(o) if !o.is_empty() => o,
        Value::Object(_) | Value::Null => return Ok("No jails found.".into()),
        Value::Array(a) if a.is_empty() => return Ok("No jails found.".into()),
        other => return Err(other.clone()),
    };
    let rows: Vec<[String; 6]> = jails
        .iter()
        .map(|(n, v)| stats_row(n, v))
        .collect::<Option<_>>()
        .ok_or_else(|| r.clone())?;
    let mut w = [8, 8, 3, 3, 3, 3];
    for row in &rows {
        for (wi, cell) in w.iter_mut().zip(row) {
            *wi = (*wi).max(cell.chars().count());
        }
    }
    let (filter_w, actions_w) = (3 + w[2] + w[3], 3 + w[4] + w[5]);
    let line = |cells: [String; 6]| {
        format!(
            "{} \u{2551} {} \u{2551} {} \u{2502} {} \u{2551} {} \u{2502} {}",
            pad_left(&cells[0], w[0]),
            pad_left(&cells[1], w[1]),
            pad_right(&cells[2], w[2]),
            pad_right(&cells[3], w[3]),
            pad_right(&cells[4], w[4]),
            pad_right(&cells[5], w[5]),
        )
    };
    let rule = |joint: char| {
        [w[0], w[1], filter_w, actions_w]
            .iter()
            .map(|&n| "\u{2550}".repeat(n))
            .collect::<Vec<_>>()
            .join(&format!("\u{2550}{joint}\u{2550}"))
            + "\u{2550}"
    };
    let mut out = vec![
        format!(
            "{} \u{2551} {} \u{2551} {} \u{2551} {}",
            pad_left("", w[0]),
            pad_left("", w[1]),
            pad_left("Filter", filter_w),
            pad_left("Actions", actions_w)
        ),
        format!(
            "{} \u{2551} {} \u{255F}\u{2500}{}\u{2500}\u{256B}\u{2500}{}\u{2500}",
            pad_left("Jail", w[0]),
            pad_left("Backend", w[1]),
            "\u{2500}".repeat(filter_w),
            "\u{2500}".repeat(actions_w)
        ),
        line(["", "", "cur", "tot", "cur", "tot"].map(String::from)),
        rule('\u{256C}'),
    ];
    out.extend(rows.into_iter().map(line));
    out.push(rule('\u{2569}'));
    Ok(out.join("\n"))
}

#[cfg(test)]
mod tests;
