//! Durations in fail2ban's notation, converted to seconds.
//!
//! A duration is an arithmetic expression of numbers optionally followed by a unit: `s`/`sec`/
//! `second(s)`, `m`/`mm`/`min`/`minute(s)`, `h`/`hh`/`hour(s)`, `d`/`dd`/`day(s)`,
//! `w`/`ww`/`week(s)`, `mo`/`mon`/`month(s)` (1/12 of an average year) and `y`/`yy`/`year(s)`
//! (365.25 days), case-insensitive. Terms written next to each other add up (`1d12h`, `1h 30m`);
//! `+ - * /` and parentheses are allowed (`1year-6mo`, `2*1h`). Plain numbers are seconds; `-1`
//! (persistent ban) is simply a negative number.

use crate::error::ConfigError;

const DAY: f64 = 86400.0;
const YEAR: f64 = (365.0 * 3.0 + 366.0) * DAY / 4.0;

fn unit_seconds(word: &str) -> Option<f64> {
    let w = word.to_ascii_lowercase();
    Some(match w.as_str() {
        "d" | "dd" | "da" | "day" | "days" => DAY,
        "w" | "ww" | "we" | "wee" | "week" | "weeks" => 7.0 * DAY,
        "mo" | "mon" | "month" | "months" => YEAR / 12.0,
        "y" | "yy" | "ye" | "yea" | "year" | "years" => YEAR,
        "s" | "ss" | "se" | "sec" | "second" | "seconds" => 1.0,
        "m" | "mm" | "mi" | "min" | "minute" | "minutes" => 60.0,
        "h" | "hh" | "ho" | "hou" | "hour" | "hours" => 3600.0,
        _ => return None,
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Op(char),
    Open,
    Close,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let c: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch.is_ascii_digit() || ch == '.' {
            let st = i;
            while i < c.len() && (c[i].is_ascii_digit() || c[i] == '.') {
                i += 1;
            }
            let txt: String = c[st..i].iter().collect();
            let mut v: f64 = txt.parse().map_err(|_| format!("bad number {txt:?}"))?;
            // Optional unit, possibly after spaces.
            let mut j = i;
            while j < c.len() && c[j].is_whitespace() {
                j += 1;
            }
            if j < c.len() && c[j].is_alphabetic() {
                let ws = j;
                while j < c.len() && c[j].is_alphanumeric() && !c[j].is_ascii_digit() {
                    j += 1;
                }
                let word: String = c[ws..j].iter().collect();
                let f = unit_seconds(&word).ok_or_else(|| format!("unknown unit {word:?}"))?;
                v *= f;
                i = j;
            }
            out.push(Tok::Num(v));
        } else if matches!(ch, '+' | '-' | '*' | '/') {
            out.push(Tok::Op(ch));
            i += 1;
        } else if ch == '(' {
            out.push(Tok::Open);
            i += 1;
        } else if ch == ')' {
            out.push(Tok::Close);
            i += 1;
        } else {
            return Err(format!("unexpected character {ch:?}"));
        }
    }
    Ok(out)
}

struct P {
    t: Vec<Tok>,
    i: usize,
    /// Signs and parentheses entered and not yet left (each is a recursion of `factor`).
    depth: usize,
}

/// Deepest nesting of signs and parentheses a duration may have: each level is a recursion of
/// the parser, so a hand-written `((((...` or `----...1` of some ten thousand levels would run
/// out of stack (found by the ini fuzz target: a 40 KB `bantime`). fail2ban evaluates durations
/// with Python, whose parser has limits of its own (200 nested parentheses).
const MAX_NESTING: usize = 100;

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.i)
    }
    fn expr(&mut self) -> Result<f64, String> {
        let mut v = self.term()?;
        loop {
            match self.peek() {
                Some(Tok::Op('+')) => {
                    self.i += 1;
                    v += self.term()?;
                }
                Some(Tok::Op('-')) => {
                    self.i += 1;
                    v -= self.term()?;
                }
                // Juxtaposed terms add up ("1d 12h").
                Some(Tok::Num(_)) => v += self.term()?,
                _ => return Ok(v),
            }
        }
    }
    fn term(&mut self) -> Result<f64, String> {
        let mut v = self.factor()?;
        loop {
            match self.peek() {
                Some(Tok::Op('*')) => {
                    self.i += 1;
                    v *= self.factor()?;
                }
                Some(Tok::Op('/')) => {
                    self.i += 1;
                    let d = self.factor()?;
                    if d == 0.0 {
                        return Err("division by zero".into());
                    }
                    v /= d;
                }
                _ => return Ok(v),
            }
        }
    }
    fn factor(&mut self) -> Result<f64, String> {
        if self.depth >= MAX_NESTING {
            return Err(format!(
                "nested deeper than {MAX_NESTING} signs or parentheses"
            ));
        }
        self.depth += 1;
        let v = self.factor_inner();
        self.depth -= 1;
        v
    }
    fn factor_inner(&mut self) -> Result<f64, String> {
        match self.t.get(self.i).cloned() {
            Some(Tok::Op('-')) => {
                self.i += 1;
                Ok(-self.factor()?)
            }
            Some(Tok::Op('+')) => {
                self.i += 1;
                self.factor()
            }
            Some(Tok::Num(v)) => {
                self.i += 1;
                Ok(v)
            }
            Some(Tok::Open) => {
                self.i += 1;
                let v = self.expr()?;
                if self.peek() != Some(&Tok::Close) {
                    return Err("missing ')'".into());
                }
                self.i += 1;
                Ok(v)
            }
            Some(t) => Err(format!("unexpected {t:?}")),
            None => Err("unexpected end".into()),
        }
    }
}

/// Converts a duration (`10m`, `1d12h`, `1w`, `-1`, `3600`, `1.5h`, `1h 30m`, `1year-6mo`) to seconds.
pub fn parse_duration(s: &str) -> Result<f64, ConfigError> {
    let fail = |m: String| ConfigError::Duration {
        input: s.to_string(),
        message: m,
    };
    let toks = tokenize(s).map_err(fail)?;
    if toks.is_empty() {
        return Err(fail("empty".into()));
    }
    let mut p = P {
        t: toks,
        i: 0,
        depth: 0,
    };
    let v = p.expr().map_err(fail)?;
    if p.i != p.t.len() {
        return Err(fail("trailing input".into()));
    }
    if !v.is_finite() {
        return Err(fail("not a finite number".into()));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::parse_duration as d;

    /// The ini fuzz target's finding (a silent stack overflow): deep nesting is an error that
    /// names the duration, never a crash, on a thread with a small stack.
    #[test]
    fn fuzz_ini_deeply_nested_duration_is_refused() {
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                for s in [
                    format!("{}1", "-".repeat(200_000)),
                    format!("{}1{}", "(".repeat(200_000), ")".repeat(200_000)),
                    format!("{}1", "+(-".repeat(70_000)),
                ] {
                    let e = d(&s).unwrap_err().to_string();
                    assert!(
                        e.contains("nested deeper than 100"),
                        "{}",
                        &e[e.len() - 80..]
                    );
                }
                // 100 levels are fine.
                let ok = format!("{}1h{}", "(".repeat(99), ")".repeat(99));
                assert_eq!(d(&ok).unwrap(), 3600.0);
                assert_eq!(d(&format!("{}1", "-".repeat(98))).unwrap(), 1.0);
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn forms() {
        assert_eq!(d("10m").unwrap(), 600.0);
        assert_eq!(d("1d12h").unwrap(), 129600.0);
        assert_eq!(d("1w").unwrap(), 604800.0);
        assert_eq!(d("-1").unwrap(), -1.0);
        assert_eq!(d("3600").unwrap(), 3600.0);
        assert_eq!(d("1.5h").unwrap(), 5400.0);
        assert_eq!(d("1hour+30min").unwrap(), 5400.0);
        assert_eq!(d("0d 1h 30m").unwrap(), 5400.0);
        assert_eq!(d("1year-6mo").unwrap(), 15778800.0);
        assert_eq!(d("6 months").unwrap(), 15778800.0);
        assert_eq!(d("1 2").unwrap(), 3.0);
        assert_eq!(d("2*(1h+1m)").unwrap(), 7320.0);
        assert_eq!(d("1H").unwrap(), 3600.0);
        assert_eq!(d("600s").unwrap(), 600.0);
        assert_eq!(d("1mo").unwrap() / 86400.0, 30.4375);
    }

    #[test]
    fn errors() {
        for bad in ["", "abc", "1x", "10m)", "(1", "1/0", "1..2"] {
            assert!(d(bad).is_err(), "{bad}");
        }
    }
}
