//! References to filters and actions: `name[k=v, k2="v, 2", k3='x']`, and lists of them.
//!
//! * Option keys are made of word characters, `-` and `.`; values are double-quoted, single-quoted
//!   or bare (a bare value stops at `,` or `]`). Values and keys are trimmed.
//! * Several option groups may follow each other: `name[a=1][b=2]`.
//! * A list (a jail's `action`) holds references separated by whitespace or new lines; the options
//!   of one reference may span lines.

use std::collections::HashMap;

use crate::error::ConfigError;

fn is_key_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-' || c == '.'
}

fn err(input: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Reference {
        input: input.to_string(),
        message: message.into(),
    }
}

/// Parses `name[k=v, ...]` into the name and its options (in order; a repeated key keeps the last
/// value at the position of the first).
pub fn parse_reference(s: &str) -> Result<(String, Vec<(String, String)>), ConfigError> {
    let (name, body) = match s.find('[') {
        None => (s, None),
        Some(i) => {
            let rest = s[i + 1..].trim_end();
            let Some(inner) = rest.strip_suffix(']') else {
                return Err(err(s, "options must be enclosed in [...] at the end"));
            };
            (&s[..i], Some(inner))
        }
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(err(s, "missing name"));
    }
    let mut opts: Vec<(String, String)> = Vec::new();
    if let Some(body) = body {
        for (k, v) in parse_options(s, body)? {
            if let Some(e) = opts.iter_mut().find(|(ek, _)| *ek == k) {
                e.1 = v;
            } else {
                opts.push((k, v));
            }
        }
    }
    Ok((name.to_string(), opts))
}

fn parse_options(input: &str, body: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let b: Vec<char> = body.chars().collect();
    let n = b.len();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_ws = |mut j: usize| {
        while j < n && b[j].is_whitespace() {
            j += 1;
        }
        j
    };
    while i < n {
        let start = skip_ws(i);
        let mut j = start;
        while j < n && is_key_char(b[j]) {
            j += 1;
        }
        if j > start && j < n && b[j] == '=' {
            let key: String = b[start..j].iter().collect();
            j += 1;
            // Quoted value if the closing quote exists; otherwise bare.
            let mut value: Option<(String, usize)> = None;
            if j < n && (b[j] == '"' || b[j] == '\'') {
                let q = b[j];
                if let Some(end) = (j + 1..n).find(|&k| b[k] == q) {
                    value = Some((b[j + 1..end].iter().collect(), end + 1));
                }
            }
            let (val, mut k) = value.unwrap_or_else(|| {
                let mut k = j;
                while k < n && b[k] != ',' && b[k] != ']' {
                    k += 1;
                }
                (b[j..k].iter().collect(), k)
            });
            out.push((key.trim().to_string(), val.trim().to_string()));
            if k >= n {
                break;
            }
            if b[k] == ',' {
                i = k + 1;
                continue;
            }
            if b[k] == ']' {
                let l = skip_ws(k + 1);
                if l < n && b[l] == '[' {
                    i = l + 1;
                    continue;
                }
            }
            // Allow trailing whitespace only.
            k = skip_ws(k);
            if k >= n {
                break;
            }
            let tail: String = b[k..].iter().take(25).collect();
            return Err(err(
                input,
                format!(
                    "unexpected text after option '{}': {tail}",
                    out.last().map(|(k, _)| k.as_str()).unwrap_or("")
                ),
            ));
        }
        // Trailing `,` and/or whitespace.
        let mut t = i;
        if t < n && b[t] == ',' {
            t += 1;
        }
        if skip_ws(t) >= n {
            break;
        }
        let tail: String = b[start..].iter().take(25).collect();
        return Err(err(input, format!("expected 'key=value', found: {tail}")));
    }
    Ok(out)
}

/// Splits a list of references (a jail's `action` value) into single references, keeping the
/// options of one reference together even when they contain spaces or new lines.
pub fn split_references(s: &str) -> Vec<String> {
    let b: Vec<char> = s.chars().collect();
    let n = b.len();
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        if b[i].is_whitespace() {
            i += 1;
            continue;
        }
        // Name: no whitespace, no '['.
        let mut j = i;
        while j < n && !b[j].is_whitespace() && b[j] != '[' {
            j += 1;
        }
        let mut end = None;
        if j > i {
            let k = skip_ws(&b, j);
            if k < n
                && b[k] == '['
                && let Some(e) = match_options(&b, k + 1, &mut HashMap::new())
                && (e >= n || b[e].is_whitespace())
            {
                end = Some(e);
            }
            if end.is_none() && (j >= n || b[j].is_whitespace()) {
                end = Some(j);
            }
        }
        let e = end.unwrap_or_else(|| {
            let mut e = i;
            while e < n && !b[e].is_whitespace() {
                e += 1;
            }
            e
        });
        let item: String = b[i..e].iter().collect();
        let item = item.trim();
        if !item.is_empty() {
            out.push(item.to_string());
        }
        i = e;
    }
    out
}

fn skip_ws(b: &[char], mut j: usize) -> usize {
    while j < b.len() && b[j].is_whitespace() {
        j += 1;
    }
    j
}

/// Matches the options of a reference starting after `[`; returns the index after the closing `]`.
/// Results are memoised per position so backtracking stays linear.
fn match_options(b: &[char], p: usize, memo: &mut HashMap<usize, Option<usize>>) -> Option<usize> {
    if let Some(r) = memo.get(&p) {
        return *r;
    }
    let r = match_options_uncached(b, p, memo);
    memo.insert(p, r);
    r
}

fn match_options_uncached(
    b: &[char],
    p: usize,
    memo: &mut HashMap<usize, Option<usize>>,
) -> Option<usize> {
    let n = b.len();
    let p = skip_ws(b, p);
    if p < n && b[p] == ']' {
        return Some(p + 1);
    }
    let mut k = p;
    while k < n && is_key_char(b[k]) {
        k += 1;
    }
    if k == p || k >= n || b[k] != '=' {
        return None;
    }
    let v = k + 1;
    let mut ends = Vec::new();
    if v < n
        && (b[v] == '"' || b[v] == '\'')
        && let Some(e) = (v + 1..n).find(|&x| b[x] == b[v])
    {
        ends.push(e + 1);
    }
    let mut e = v;
    while e < n && b[e] != ',' && b[e] != ']' {
        e += 1;
    }
    ends.push(e);
    for e in ends {
        let q = skip_ws(b, e);
        // Separator: ',' or "] [" or none; then either ']' (end) or the next option.
        let mut nexts = Vec::new();
        if q < n && b[q] == ',' {
            nexts.push(q + 1);
        }
        if q < n && b[q] == ']' {
            let r = skip_ws(b, q + 1);
            if r < n && b[r] == '[' {
                nexts.push(r + 1);
            }
        }
        nexts.push(q);
        for nx in nexts {
            if let Some(r) = match_options(b, nx, memo) {
                return Some(r);
            }
        }
    }
    None
}

/// Splits on commas, spaces and new lines, dropping empty words.
pub fn split_words(s: &str) -> Vec<String> {
    s.split([' ', ',', '\n'])
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn references() {
        assert_eq!(parse_reference("sshd").unwrap(), ("sshd".into(), vec![]));
        assert_eq!(
            parse_reference("sshd[mode=aggressive]").unwrap(),
            ("sshd".into(), o(&[("mode", "aggressive")]))
        );
        assert_eq!(
            parse_reference("name[k=v, k2=\"v, 2\"]").unwrap(),
            ("name".into(), o(&[("k", "v"), ("k2", "v, 2")]))
        );
        assert_eq!(
            parse_reference("a[x='1]2', y=3 ][z=4]").unwrap(),
            ("a".into(), o(&[("x", "1]2"), ("y", "3"), ("z", "4")]))
        );
        assert_eq!(
            parse_reference("act[port=\"ssh\",\n   protocol=tcp]").unwrap(),
            ("act".into(), o(&[("port", "ssh"), ("protocol", "tcp")]))
        );
        assert!(parse_reference("a[x=1").is_err());
        assert!(parse_reference("a[x='1]2', y = 3 ,][z=4]").is_err());
        assert_eq!(
            parse_reference("a[x=1, ]  ").unwrap(),
            ("a".into(), o(&[("x", "1")]))
        );
        assert!(parse_reference("a[x=\"1\" y]").is_err());
        assert!(parse_reference("a[=1]").is_err());
        assert!(parse_reference("a[b=1]c").is_err());
    }

    #[test]
    fn reference_lists() {
        let v = split_references(
            "iptables[name=SSH, port=\"ssh, 22\", protocol=tcp]\n   sendmail-whois[name=SSH,\n     dest=root]  dummy\n",
        );
        assert_eq!(
            v,
            vec![
                "iptables[name=SSH, port=\"ssh, 22\", protocol=tcp]",
                "sendmail-whois[name=SSH,\n     dest=root]",
                "dummy"
            ]
        );
        assert_eq!(split_references("a[x=1][y=2] b"), vec!["a[x=1][y=2]", "b"]);
        assert_eq!(split_references(""), Vec::<String>::new());
        assert_eq!(split_references("a [x=1]"), vec!["a [x=1]"]);
        assert_eq!(
            split_references("a[x=\"1 2\" y] b"),
            vec!["a[x=\"1 2\" y]", "b"]
        );
    }

    #[test]
    fn words() {
        assert_eq!(
            split_words("127.0.0.1/8 ::1,\n 10.0.0.1"),
            vec!["127.0.0.1/8", "::1", "10.0.0.1"]
        );
    }
}
