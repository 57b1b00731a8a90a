//! Values printed the way Python's `str()` / `repr()` print them, so that substituted tags and log
//! lines read as fail2ban's do (`<time>` is a Python float, `<F-*>` a dict, `-- stdout: 'x'` a
//! repr).

use std::fmt::Write;

/// `str(x)` / `repr(x)` of a Python float: shortest round-trip digits, `.0` for integral values,
/// scientific notation (`1e+16`, `1e-05`) outside `1e-4 <= |x| < 1e16`.
pub fn float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` prints the shortest round-trip digits: "1.7e9", "1e-5".
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = String::new();
    if x < 0.0 {
        out.push('-');
    }
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    out
}

/// A number of seconds as Python holds it after evaluating a duration: an `int` when `text` (the
/// configured value) has no decimal point and the value is integral, a float otherwise.
pub fn seconds(value: f64, text: Option<&str>) -> String {
    let integral = value.fract() == 0.0 && value.abs() < 1e18;
    if integral && !text.is_some_and(|t| t.contains('.')) {
        format!("{}", value as i64)
    } else {
        float(value)
    }
}

/// `repr(s)` of a Python `str` (the control module's implementation).
pub fn repr(s: &str) -> String {
    crate::control::pyrepr::repr_str(s)
}

/// `repr(list)` of a list of Python strings.
pub fn list_repr<S: AsRef<str>>(items: &[S]) -> String {
    let inner: Vec<String> = items.iter().map(|s| repr(s.as_ref())).collect();
    format!("[{}]", inner.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_python() {
        assert_eq!(float(1_700_000_000.0), "1700000000.0");
        assert_eq!(float(1_700_000_000.25), "1700000000.25");
        assert_eq!(float(0.1), "0.1");
        assert_eq!(float(-2.5), "-2.5");
        assert_eq!(float(1e16), "1e+16");
        assert_eq!(float(1.5e16), "1.5e+16");
        assert_eq!(float(123456789012345.6), "123456789012345.6");
        assert_eq!(float(1e-5), "1e-05");
        assert_eq!(float(0.0001), "0.0001");
        assert_eq!(float(0.0), "0.0");
        assert_eq!(float(f64::INFINITY), "inf");
    }

    #[test]
    fn seconds_int_or_float() {
        assert_eq!(seconds(60.0, None), "60");
        assert_eq!(seconds(60.0, Some("1m")), "60");
        assert_eq!(seconds(60.0, Some("60.0")), "60.0");
        assert_eq!(seconds(0.2, Some("0.2")), "0.2");
    }

    #[test]
    fn repr_like_python() {
        assert_eq!(repr("abc"), "'abc'");
        assert_eq!(repr("it's"), "\"it's\"");
        assert_eq!(repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(repr("x\n\ty\\\u{1}"), "'x\\n\\ty\\\\\\x01'");
        assert_eq!(repr("é"), "'é'");
        assert_eq!(list_repr(&["a", "b"]), "['a', 'b']");
        assert_eq!(list_repr::<&str>(&[]), "[]");
    }
}
