//! Python's `repr()` and `str()` of JSON values, as fail2ban-client prints values it does not
//! beautify (`print(value)`): `None`, `True`, `'quoted'` strings inside containers, `[a, b]`,
//! `{'k': v}`, floats as `600.0`.

use serde_json::{Number, Value};

/// Python's `str()`: a string as is, anything else as [`repr`].
pub fn str_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => repr(other),
    }
}

/// Python's `repr()`.
pub fn repr(v: &Value) -> String {
    let mut out = String::new();
    write_repr(&mut out, v);
    out
}

fn write_repr(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => out.push_str(&number(n)),
        Value::String(s) => out.push_str(&repr_str(s)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&repr_str(k));
                out.push_str(": ");
                write_repr(out, item);
            }
            out.push('}');
        }
    }
}

/// A JSON number as Python prints it: integers as is, floats with [`float_repr`].
pub fn number(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        n.to_string()
    } else {
        float_repr(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// Python's `repr(float)`: the shortest round-trip digits, `.0` for whole numbers, exponent
/// form (`1e+16`, `1e-05`) outside `[1e-4, 1e16)`.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip mantissa: "1.5e-5", "1e16".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    if (-4..16).contains(&exp) {
        let plain = format!("{f}");
        if plain.contains('.') {
            plain
        } else {
            format!("{plain}.0")
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// Python's `repr(str)`: single quotes unless the text holds a `'` and no `"`; backslash
/// escapes for the quote, `\\`, `\t`, `\n`, `\r` and non-printable characters.
pub fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !printable(c) => {
                let n = c as u32;
                if n < 0x100 {
                    out.push_str(&format!("\\x{n:02x}"));
                } else if n < 0x10000 {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `str.isprintable()` for one character, closely enough: controls, separators other
/// than the space (every Unicode white space but ' '), format characters, private use and
/// non-characters are not printable.
fn printable(c: char) -> bool {
    let n = c as u32;
    !(n < 0x20
        || (c.is_whitespace() && c != ' ')
        || (0x7f..=0xa0).contains(&n)
        || n == 0xad
        || (0x2000..=0x200f).contains(&n)
        || (0x2028..=0x202f).contains(&n)
        || (0x205f..=0x206f).contains(&n)
        || n == 0x3000
        || n == 0xfeff
        || (0xfff9..=0xfffb).contains(&n)
        || (0xe000..=0xf8ff).contains(&n)
        || (n & 0xfffe) == 0xfffe
        || (0xfdd0..=0xfdef).contains(&n)
        || n >= 0xf0000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_and_scalars() {
        let v = json!([{"sshd": ["198.51.100.7", "203.0.113.5"]}, {"nginx-404": []}]);
        assert_eq!(
            repr(&v),
            "[{'sshd': ['198.51.100.7', '203.0.113.5']}, {'nginx-404': []}]"
        );
        assert_eq!(repr(&json!([1, 0])), "[1, 0]");
        assert_eq!(repr(&json!(null)), "None");
        assert_eq!(repr(&json!(true)), "True");
        assert_eq!(repr(&json!({"stacksize": 0})), "{'stacksize': 0}");
        assert_eq!(str_of(&json!("x y")), "x y");
        assert_eq!(str_of(&json!(false)), "False");
    }

    #[test]
    fn floats_like_python() {
        for (f, s) in [
            (600.0, "600.0"),
            (5400.5, "5400.5"),
            (0.1, "0.1"),
            (2629800.0, "2629800.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345.0, "123456789012345.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (-0.0, "-0.0"),
            (1e100, "1e+100"),
        ] {
            assert_eq!(float_repr(f), s, "{f}");
        }
        assert_eq!(repr(&json!(600.0)), "600.0");
        assert_eq!(repr(&json!(600)), "600");
    }

    #[test]
    fn strings_like_python() {
        assert_eq!(repr_str("abc"), "'abc'");
        assert_eq!(repr_str("it's"), "\"it's\"");
        assert_eq!(repr_str("it's \"x\""), "'it\\'s \"x\"'");
        assert_eq!(repr_str("a\\b\tc\n"), "'a\\\\b\\tc\\n'");
        assert_eq!(
            repr_str("\u{1}\u{7f}é\u{a0}\u{200b}"),
            "'\\x01\\x7fé\\xa0\\u200b'"
        );
    }
}
