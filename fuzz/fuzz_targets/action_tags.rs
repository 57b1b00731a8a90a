//! Action tag substitution and escaping: an action's properties (`name = value` lines, with
//! `<tag>`s, `?family=` conditionals, self references) resolved against each other, a command
//! statically substituted, then run-time values (attacker-controlled: matches, user names,
//! `<F-*>` captures) substituted dynamically.
//!
//! Invariants (fail2ban's `escapeTag` and ferroban's positional parameters): a value with a
//! character a shell could act on never appears in the script itself, only as an argument;
//! `escape_tag` leaves no such character unescaped and can be undone.
//!
//! Input: properties, NUL, the command, NUL, run-time values (one per `\n`; each tag and each
//! `<F-*>` field gets the next unused value the first time it is asked for, and keeps it).

#![no_main]

mod common;

use ferroban::action::tags::{escape_tag, needs_variable, replace_dynamic, replace_static, resolve_properties};
use ferroban_config::omap::OrderedMap;
use libfuzzer_sys::fuzz_target;

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some(c) => out.push(c),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `${f2bV_x}` written as `$f2bV_x`.
fn unbrace_references(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find("${f2bV_") {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[pos..]);
            return out;
        };
        out.push('$');
        out.push_str(&after[..end]);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fuzz_target!(|data: &[u8]| {
    let parts = common::parts(data);
    let [props_text, cmd, values, ..] = parts.as_slice() else {
        return;
    };
    let mut props: OrderedMap<String> = OrderedMap::new();
    for l in props_text.lines() {
        if let Some((k, v)) = l.split_once('=') {
            props.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    let values: Vec<&str> = values.split('\n').collect();
    for v in &values {
        let e = escape_tag(v);
        assert_eq!(unescape(&e), *v, "escape_tag is not reversible: {v:?} -> {e:?}");
        assert!(!e.contains('\n') && !e.contains('\r'));
    }
    for cond in ["", "family=inet6"] {
        let Ok(resolved) = resolve_properties(&props, cond) else {
            continue;
        };
        let Ok(stat) = replace_static(cmd, &resolved) else {
            continue;
        };
        // Each tag has one value (the next unused one the first time it is asked for).
        let assigned: std::cell::RefCell<Vec<(String, Option<String>)>> = Default::default();
        let given: std::cell::RefCell<Vec<String>> = Default::default();
        let value_of = |key: String| -> Option<String> {
            let mut a = assigned.borrow_mut();
            if let Some((_, v)) = a.iter().find(|(k, _)| *k == key) {
                return v.clone();
            }
            let v = values.get(a.len()).map(|v| v.to_string());
            a.push((key, v.clone()));
            if let Some(v) = &v {
                given.borrow_mut().push(v.clone());
            }
            v
        };
        let sc = replace_dynamic(
            &stat,
            |tag| {
                if tag == "br" || tag == "sp" || tag.ends_with("hostname") {
                    return None;
                }
                value_of(tag.to_string())
            },
            |key| value_of(format!("F-{key}")),
        );
        for v in given.borrow().iter().filter(|v| needs_variable(v)) {
            assert!(
                sc.args.contains(v),
                "unsafe value {v:?} not passed as an argument: {sc:?}"
            );
        }
        // The script is the static command with safe values and `$f2bV_*` references: no
        // shell-special character in it comes from a run-time value.
        let body = sc.script.split_once('\n').map_or(sc.script.as_str(), |(_, b)| b);
        let body = if sc.args.is_empty() { sc.script.as_str() } else { body };
        // `${f2bV_name}` (braced where the next character would extend the name): its braces
        // are the reference's, not a value's.
        let body = unbrace_references(body);
        for c in body.chars() {
            if needs_variable(&c.to_string()) && c != '$' && c != '\n' {
                assert!(stat.contains(c), "{c:?} from a run-time value pasted into {sc:?}");
            }
        }
    }
});
