//! `journalmatch`: journalctl's match syntax.
//!
//! Each configured line is split like a shell command line (quotes, backslashes); `+` between
//! words is an OR. Within one group, matches on different fields must all hold, matches on the
//! same field are alternatives (journalctl's rules). Lines are alternatives of each other, as
//! fail2ban adds each line as its own disjunction.
//!
//! The words go to journalctl as they are (after `--`, so none is taken for an option), and the
//! same rules are evaluated here on every entry when one reader serves several jails with
//! different matches. A word that is not `FIELD=value` (journalctl also takes an executable
//! path, e.g. `/usr/sbin/sshd`) cannot be evaluated here: such a jail gets a reader of its own.

use super::export::Entry;

/// A `journalmatch`: groups of words, any group may match. Empty: every entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct JournalMatch {
    groups: Vec<Vec<String>>,
}

/// Why a `journalmatch` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    /// A quote is not closed.
    #[error("journalmatch {line:?}: no closing quotation")]
    Unclosed {
        /// The line.
        line: String,
    },
    /// A `+` with nothing on one side.
    #[error("journalmatch {line:?}: '+' must stand between two matches")]
    EmptyGroup {
        /// The line.
        line: String,
    },
    /// A word journalctl would reject.
    #[error(
        "journalmatch {line:?}: {word:?} is neither FIELD=value (FIELD of A-Z, 0-9, _) nor an absolute path"
    )]
    BadWord {
        /// The line.
        line: String,
        /// The word.
        word: String,
    },
}

impl JournalMatch {
    /// Every entry.
    pub fn all() -> Self {
        JournalMatch::default()
    }

    /// Parses `journalmatch` lines (empty lines are skipped).
    pub fn parse<S: AsRef<str>>(lines: &[S]) -> Result<Self, MatchError> {
        let mut groups = Vec::new();
        for line in lines {
            let line = line.as_ref();
            let words = split_words(line).ok_or_else(|| MatchError::Unclosed {
                line: line.to_string(),
            })?;
            if words.is_empty() {
                continue;
            }
            let mut group: Vec<String> = Vec::new();
            for w in words {
                if w == "+" {
                    if group.is_empty() {
                        return Err(MatchError::EmptyGroup {
                            line: line.to_string(),
                        });
                    }
                    groups.push(std::mem::take(&mut group));
                } else {
                    if field_match(&w).is_none() && !w.starts_with('/') {
                        return Err(MatchError::BadWord {
                            line: line.to_string(),
                            word: w,
                        });
                    }
                    group.push(w);
                }
            }
            if group.is_empty() {
                return Err(MatchError::EmptyGroup {
                    line: line.to_string(),
                });
            }
            groups.push(group);
        }
        Ok(JournalMatch { groups })
    }

    /// No match at all: every entry.
    pub fn is_all(&self) -> bool {
        self.groups.is_empty()
    }

    /// The groups (alternatives), each a list of words.
    pub fn groups(&self) -> &[Vec<String>] {
        &self.groups
    }

    /// Every word is `FIELD=value`, so entries can be tested here.
    pub fn is_evaluable(&self) -> bool {
        self.groups
            .iter()
            .flatten()
            .all(|w| field_match(w).is_some())
    }

    /// fail2ban's display: groups joined by ` + `.
    pub fn display(&self) -> String {
        self.groups
            .iter()
            .map(|g| g.join(" "))
            .collect::<Vec<_>>()
            .join(" + ")
    }

    /// journalctl's arguments (without the leading `--`).
    pub fn args(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, g) in self.groups.iter().enumerate() {
            if i > 0 {
                out.push("+".to_string());
            }
            out.extend(g.iter().cloned());
        }
        out
    }

    /// The alternatives of all of `matches`; every entry if one of them takes every entry.
    pub fn union<'a>(matches: impl IntoIterator<Item = &'a JournalMatch>) -> JournalMatch {
        let mut groups: Vec<Vec<String>> = Vec::new();
        for m in matches {
            if m.is_all() {
                return JournalMatch::all();
            }
            for g in &m.groups {
                if !groups.contains(g) {
                    groups.push(g.clone());
                }
            }
        }
        JournalMatch { groups }
    }

    /// Whether `entry` is selected (only meaningful when [`is_evaluable`](Self::is_evaluable)).
    pub fn accepts(&self, entry: &Entry) -> bool {
        if self.groups.is_empty() {
            return true;
        }
        self.groups.iter().any(|g| group_accepts(g, entry))
    }
}

/// `FIELD=value` with a valid field name: (field, value).
fn field_match(word: &str) -> Option<(&str, &str)> {
    let (f, v) = word.split_once('=')?;
    let ok = !f.is_empty()
        && !f.as_bytes()[0].is_ascii_digit()
        && f.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    ok.then_some((f, v))
}

/// All fields named in the group hold one of the group's values for them.
fn group_accepts(group: &[String], entry: &Entry) -> bool {
    let pairs: Vec<(&str, &str)> = group.iter().filter_map(|w| field_match(w)).collect();
    pairs.iter().all(|(field, _)| {
        entry.all(field).any(|have| {
            pairs
                .iter()
                .any(|(f, want)| f == field && have == want.as_bytes())
        })
    })
}

/// Python's `shlex.split` (POSIX mode, no comments): words separated by blanks; `'...'` is
/// literal; in `"..."` a backslash escapes `"` and `\` only; elsewhere a backslash escapes the
/// next character. `None` when a quote is not closed.
pub fn split_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => cur.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\') => cur.push(c),
                            c => {
                                cur.push('\\');
                                cur.push(c);
                            }
                        },
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                // A backslash at the very end escapes nothing: shlex reports it as an error.
                cur.push(chars.next()?);
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::export::ExportParser;

    fn entry(text: &str) -> Entry {
        let mut p = ExportParser::new();
        p.push(text.as_bytes());
        p.push(b"\n\n");
        p.next_entry().unwrap().clone()
    }

    #[test]
    fn shell_words() {
        assert_eq!(
            split_words(r#"A=1 'B=two words' "C=\"q\" \x" D=e\ f"#).unwrap(),
            vec!["A=1", "B=two words", r#"C="q" \x"#, "D=e f"]
        );
        assert_eq!(split_words("A='x"), None);
        assert_eq!(split_words("  ").unwrap(), Vec::<String>::new());
        assert_eq!(split_words("A='' B").unwrap(), vec!["A=", "B"]);
    }

    #[test]
    fn groups_and_args() {
        let m = JournalMatch::parse(&[
            "_SYSTEMD_UNIT=sshd.service + _COMM=sshd",
            "",
            "SYSLOG_IDENTIFIER=x _PID=1",
        ])
        .unwrap();
        assert_eq!(m.groups().len(), 3);
        assert_eq!(
            m.display(),
            "_SYSTEMD_UNIT=sshd.service + _COMM=sshd + SYSLOG_IDENTIFIER=x _PID=1"
        );
        assert_eq!(
            m.args(),
            vec![
                "_SYSTEMD_UNIT=sshd.service",
                "+",
                "_COMM=sshd",
                "+",
                "SYSLOG_IDENTIFIER=x",
                "_PID=1"
            ]
        );
        assert!(m.is_evaluable());
        assert!(JournalMatch::parse(&["+ A=1"]).is_err());
        assert!(JournalMatch::parse(&["A=1 +"]).is_err());
        assert!(JournalMatch::parse(&["-f"]).is_err());
        assert!(JournalMatch::parse(&["lower=1"]).is_err());
        let path = JournalMatch::parse(&["/usr/sbin/sshd"]).unwrap();
        assert!(!path.is_evaluable());
    }

    #[test]
    fn journalctl_semantics() {
        let e = entry("_COMM=sshd\n_PID=5\nTAG=a\nTAG=b\n");
        let m = |s: &str| JournalMatch::parse(&[s]).unwrap();
        assert!(m("_COMM=sshd").accepts(&e));
        assert!(!m("_COMM=sshd _PID=6").accepts(&e), "different fields: AND");
        assert!(m("_COMM=sshd _PID=6 _PID=5").accepts(&e), "same field: OR");
        assert!(m("_COMM=nginx + _PID=5").accepts(&e), "+: OR");
        assert!(!m("_COMM=nginx + _PID=6").accepts(&e));
        assert!(m("TAG=b").accepts(&e), "a repeated field matches any value");
        assert!(!m("MISSING=").accepts(&e));
        assert!(JournalMatch::all().accepts(&e));
        let u = JournalMatch::union([&m("_COMM=nginx"), &m("_PID=5 + _COMM=nginx")]);
        assert_eq!(u.display(), "_COMM=nginx + _PID=5");
        assert!(JournalMatch::union([&m("A=1"), &JournalMatch::all()]).is_all());
    }
}
