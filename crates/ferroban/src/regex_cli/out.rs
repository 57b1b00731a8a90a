//! `-o/--out TOKEN` (one token of every failure) and `--json` (one object per matched line).

use std::io::{self, Write};

use ferroban_matcher::GroupValue;
use serde_json::{Map, Value, json};

use super::load::py_repr;
use crate::filter::Failure;

fn id_text(f: &Failure) -> String {
    f.id.as_ref()
        .map_or_else(|| "None".to_string(), ToString::to_string)
}

/// Python's `repr()` of a float (`1.0`, `1700000000.5`).
fn py_float(t: f64) -> String {
    if t.fract() == 0.0 && t.abs() < 1e16 {
        format!("{t:.1}")
    } else {
        format!("{t}")
    }
}

fn py_value(v: &GroupValue) -> String {
    match v {
        GroupValue::None => "None".into(),
        GroupValue::Str(s) => py_repr(s),
        GroupValue::Tuple(t) => {
            let items: Vec<String> = t
                .iter()
                .map(|x| x.as_deref().map_or_else(|| "None".into(), py_repr))
                .collect();
            if items.len() == 1 {
                format!("({},)", items[0])
            } else {
                format!("({})", items.join(", "))
            }
        }
    }
}

/// Python's `repr()` of a groups dict.
pub fn py_dict(fields: &[(ferroban_matcher::Name, GroupValue)]) -> String {
    let items: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}: {}", py_repr(k), py_value(v)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

fn plain_value(v: Option<&GroupValue>) -> String {
    match v {
        None | Some(GroupValue::None) => "None".into(),
        Some(GroupValue::Str(s)) => s.to_string(),
        Some(t) => py_value(t),
    }
}

fn match_lines(f: &Failure) -> Vec<String> {
    f.data
        .matches
        .as_ref()
        .map(|m| m.iter().map(|l| l.text.to_string()).collect())
        .unwrap_or_default()
}

fn py_list(items: &[String]) -> String {
    let v: Vec<String> = items.iter().map(|s| py_repr(s)).collect();
    format!("[{}]", v.join(", "))
}

/// Prints the failures of one line for `-o TOKEN` (fail2ban-regex's tokens: `id`/`fid`, `ip`,
/// `msg`, `row`, a capture name, or a template with `<tags>`).
pub fn print_token(w: &mut dyn Write, token: &str, failures: &[&Failure]) -> io::Result<()> {
    for f in failures {
        match token {
            "id" | "fid" => writeln!(w, "{}", id_text(f))?,
            "ip" => match &f.data.ip {
                Some(ip) => writeln!(w, "{ip}")?,
                None => writeln!(w, "{}", id_text(f))?,
            },
            "msg" => {
                for l in match_lines(f) {
                    writeln!(w, "{l}")?;
                }
            }
            "row" => {
                let mut items: Vec<String> = f
                    .data
                    .fields
                    .iter()
                    .map(|(k, v)| format!("{}: {}", py_repr(k), py_value(v)))
                    .collect();
                if let Some(ip) = &f.data.ip {
                    items.push(format!("'ip': {}", py_repr(&ip.to_string())));
                }
                let id =
                    f.id.as_ref()
                        .map_or_else(|| "None".into(), |i| py_repr(&i.to_string()));
                let time = f.time.map_or_else(|| "None".into(), py_float);
                writeln!(w, "[{id},\t{time},\t{{{}}}],", items.join(", "))?;
            }
            "matches" => writeln!(w, "{}", py_list(&match_lines(f)))?,
            t if !t.contains('<') => writeln!(w, "{}", plain_value(f.data.get(t)))?,
            t => {
                let lines = match_lines(f);
                if t.contains("<msg>") && lines.len() > 1 {
                    for l in &lines {
                        writeln!(w, "{}", substitute(t, f, Some(l)))?;
                    }
                } else {
                    writeln!(w, "{}", substitute(t, f, None))?;
                }
            }
        }
    }
    Ok(())
}

/// Replaces `<tag>`s of an `-o` template: `<ip>`, `<fid>`/`<F-ID>`, `<time>`, `<matches>`,
/// `<msg>`, `<F-NAME>` (the capture `name`) and any capture name; unknown tags stay.
fn substitute(template: &str, f: &Failure, msg: Option<&str>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let tag = &after[..close];
        let value = match tag {
            "ip" => Some(
                f.data
                    .ip
                    .as_ref()
                    .map_or_else(|| id_text(f), ToString::to_string),
            ),
            "fid" | "F-ID" | "id" => Some(id_text(f)),
            "time" => Some(f.time.map_or_else(|| "None".into(), py_float)),
            "matches" => Some(match_lines(f).join("\n")),
            "msg" => Some(msg.map_or_else(|| match_lines(f).join("\n"), str::to_string)),
            t => {
                let key = t
                    .strip_prefix("F-")
                    .map_or_else(|| t.to_string(), str::to_lowercase);
                f.data.get(&key).map(|v| plain_value(Some(v)))
            }
        };
        match value {
            Some(v) => out.push_str(&v),
            None => {
                out.push('<');
                out.push_str(tag);
                out.push('>');
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

fn json_value(v: &GroupValue) -> Value {
    match v {
        GroupValue::None => Value::Null,
        GroupValue::Str(s) => Value::String(s.to_string()),
        GroupValue::Tuple(t) => Value::Array(
            t.iter()
                .map(|x| x.as_ref().map_or(Value::Null, |s| Value::String(s.clone())))
                .collect(),
        ),
    }
}

fn iso_time(t: f64) -> Value {
    let nanos = (t * 1e9).round();
    if !nanos.is_finite() || nanos.abs() > i128::MAX as f64 {
        return Value::Null;
    }
    match jiff::Timestamp::from_nanosecond(nanos as i128) {
        Ok(ts) => Value::String(ts.to_string()),
        Err(_) => Value::Null,
    }
}

fn failure_json(f: &Failure) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("regex".into(), json!(f.regex_index + 1));
    o.insert(
        "id".into(),
        f.id.as_ref()
            .map_or(Value::Null, |i| Value::String(i.to_string())),
    );
    let ip = f.data.ip.as_ref().or(f.id.as_ref()).filter(|i| i.is_ip());
    o.insert(
        "ip".into(),
        ip.map_or(Value::Null, |i| Value::String(i.to_string())),
    );
    o.insert("time".into(), f.time.map_or(Value::Null, |t| json!(t)));
    o.insert("time_iso".into(), f.time.map_or(Value::Null, iso_time));
    let mut caps = Map::new();
    for (k, v) in &f.data.fields {
        caps.insert(k.to_string(), json_value(v));
    }
    o.insert("captures".into(), Value::Object(caps));
    if let Some(users) = &f.data.users {
        o.insert(
            "users".into(),
            json!(users.iter().map(|u| u.as_str()).collect::<Vec<_>>()),
        );
    }
    o
}

/// One JSON object for a matched line: `line` (1-based line number in the input), `text`, the
/// first failure's `regex` (1-based, as in the report), `id`, `ip`, `time` (unix seconds),
/// `time_iso` (RFC 3339, UTC) and `captures` (every named group: `user`, `fid`, `F-*` tags...,
/// `null` when not participating); further failures of the same line under `also`.
pub fn print_json(
    w: &mut dyn Write,
    line_no: u64,
    text: &str,
    failures: &[&Failure],
) -> io::Result<()> {
    let Some((first, rest)) = failures.split_first() else {
        return Ok(());
    };
    let mut o = Map::new();
    o.insert("line".into(), json!(line_no));
    o.insert("text".into(), Value::String(text.to_string()));
    o.extend(failure_json(first));
    if !rest.is_empty() {
        o.insert(
            "also".into(),
            Value::Array(
                rest.iter()
                    .map(|f| Value::Object(failure_json(f)))
                    .collect(),
            ),
        );
    }
    serde_json::to_writer(&mut *w, &Value::Object(o))?;
    writeln!(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_python() {
        assert_eq!(py_float(1.0), "1.0");
        assert_eq!(py_float(1.5), "1.5");
        assert_eq!(
            py_value(&GroupValue::Tuple(vec![Some("a".into())])),
            "('a',)"
        );
    }

    #[test]
    fn iso() {
        assert_eq!(iso_time(0.0), Value::String("1970-01-01T00:00:00Z".into()));
    }
}
