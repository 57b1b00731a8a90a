//! Parser for one file of the fail2ban INI dialect (no includes, no interpolation).
//!
//! Rules (those of the Python `configparser` as configured by fail2ban):
//! * `[name]` opens a section; `[DEFAULT]` holds defaults visible from every section. The header is
//!   the text between the leading `[` and the last `]` of the (comment-stripped) line.
//! * `key = value` or `key : value` (first `=` or `:`); keys are lower-cased, both sides trimmed.
//! * A line indented deeper than the line that started the current option continues its value
//!   (joined with `\n`). Blank lines inside a value are kept (trailing ones are dropped).
//! * A line whose first non-blank character is `#` or `;` is a comment (even inside a value).
//!   An inline comment starts at a `;` that is at the start of the line or preceded by whitespace;
//!   `#` never starts an inline comment.
//! * Within one file a section or an option may not appear twice.

use crate::error::{ConfigError, Origin};
use crate::omap::OrderedMap;

/// A raw option value with the place it was defined.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    /// The raw (uninterpolated) text.
    pub text: String,
    /// Where the option was defined (`None` for values injected by the readers).
    pub origin: Option<Origin>,
}

impl Value {
    /// A value without origin.
    pub fn synthetic(text: impl Into<String>) -> Self {
        Value {
            text: text.into(),
            origin: None,
        }
    }
}

/// A section: option name → value.
pub type Section = OrderedMap<Value>;

/// The content of one parsed file.
#[derive(Debug, Clone, Default)]
pub struct IniFile {
    /// Display path of the file.
    pub path: String,
    /// `[DEFAULT]` options.
    pub defaults: Section,
    /// Other sections in file order.
    pub sections: OrderedMap<Section>,
}

/// Name of the defaults section.
pub const DEFAULT_SECTION: &str = "DEFAULT";

/// Parses `text` (read from `path`, used in error messages).
pub fn parse(path: &str, text: &str) -> Result<IniFile, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Universal newlines: `\r\n`, `\n` and a lone `\r` all end a line.
    let normalized;
    let text = if text.contains('\r') {
        normalized = text.replace("\r\n", "\n").replace('\r', "\n");
        normalized.as_str()
    } else {
        text
    };
    let mut file = IniFile {
        path: path.to_string(),
        ..Default::default()
    };
    // Current section: None before any header; Some(None) for DEFAULT; Some(Some(name)) otherwise.
    let mut cur: Option<Option<String>> = None;
    let mut optname: Option<String> = None;
    let mut indent_level = 0usize;
    let mut seen_sections: Vec<String> = Vec::new();
    let mut seen_opts: crate::FastSet<(String, String)> = Default::default();
    // Lines of the value being accumulated.
    let mut pending: Vec<String> = Vec::new();
    let mut pending_origin: Option<Origin> = None;

    let flush = |file: &mut IniFile,
                 cur: &Option<Option<String>>,
                 optname: &Option<String>,
                 pending: &mut Vec<String>,
                 origin: &mut Option<Origin>| {
        if let (Some(sec), Some(name)) = (cur, optname) {
            let joined = pending.join("\n");
            let v = Value {
                text: joined.trim_end().to_string(),
                origin: origin.take(),
            };
            match sec {
                None => file.defaults.insert(name.clone(), v),
                Some(s) => {
                    if let Some(m) = file.sections.get_mut(s) {
                        m.insert(name.clone(), v)
                    }
                }
            }
        }
        pending.clear();
    };

    for (idx, line) in text.lines().enumerate() {
        let lineno = idx + 1;
        let origin = || Origin {
            file: path.to_string(),
            line: lineno,
        };
        let stripped_full = line.trim();
        let comment_start = if stripped_full.starts_with('#') || stripped_full.starts_with(';') {
            Some(0)
        } else {
            inline_comment(line)
        };
        let value = match comment_start {
            Some(i) => line[..i].trim(),
            None => stripped_full,
        };
        if value.is_empty() {
            if comment_start.is_none() && cur.is_some() && optname.is_some() {
                pending.push(String::new());
            }
            continue;
        }
        let cur_indent = line.chars().take_while(|c| c.is_whitespace()).count();
        if cur.is_some() && optname.is_some() && cur_indent > indent_level {
            pending.push(value.to_string());
            continue;
        }
        // A new section header or option: finish the previous option.
        flush(&mut file, &cur, &optname, &mut pending, &mut pending_origin);
        indent_level = cur_indent;
        if let Some(header) = section_header(value) {
            if header == DEFAULT_SECTION {
                cur = Some(None);
            } else {
                if seen_sections.iter().any(|s| s == header) {
                    return Err(ConfigError::Syntax {
                        origin: origin(),
                        message: format!("section [{header}] already exists in this file"),
                    });
                }
                seen_sections.push(header.to_string());
                if !file.sections.contains_key(header) {
                    file.sections.insert(header.to_string(), Section::new());
                }
                cur = Some(Some(header.to_string()));
            }
            optname = None;
            continue;
        }
        let Some(sec) = &cur else {
            return Err(ConfigError::Syntax {
                origin: origin(),
                message: format!("line outside of any section: {line:?}"),
            });
        };
        let Some(pos) = value.find(['=', ':']) else {
            return Err(ConfigError::Syntax {
                origin: origin(),
                message: format!("expected 'name = value', a [section] or a comment, got {line:?}"),
            });
        };
        let name = value[..pos].trim_end();
        if name.is_empty() {
            return Err(ConfigError::Syntax {
                origin: origin(),
                message: format!("missing option name before '{}'", &value[pos..pos + 1]),
            });
        }
        let name = name.to_lowercase();
        let sec_key = sec.clone().unwrap_or_else(|| DEFAULT_SECTION.to_string());
        if !seen_opts.insert((sec_key.clone(), name.clone())) {
            return Err(ConfigError::Syntax {
                origin: origin(),
                message: format!("option '{name}' already set in section [{sec_key}] of this file"),
            });
        }
        optname = Some(name);
        pending.push(value[pos + 1..].trim().to_string());
        pending_origin = Some(origin());
    }
    flush(&mut file, &cur, &optname, &mut pending, &mut pending_origin);
    Ok(file)
}

/// Byte index of an inline `;` comment: at line start or preceded by whitespace.
fn inline_comment(line: &str) -> Option<usize> {
    let mut prev: Option<char> = None;
    for (i, c) in line.char_indices() {
        if c == ';' && prev.is_none_or(char::is_whitespace) {
            return Some(i);
        }
        prev = Some(c);
    }
    None
}

/// The header of a `[name]` line: between the first `[` and the last `]` (at least one char).
fn section_header(value: &str) -> Option<&str> {
    let rest = value.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    (end > 0).then(|| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> IniFile {
        parse("t.conf", text).unwrap()
    }
    fn get<'a>(f: &'a IniFile, s: &str, k: &str) -> &'a str {
        &f.sections.get(s).unwrap().get(k).unwrap().text
    }

    #[test]
    fn basic_sections_and_defaults() {
        let f = p("[DEFAULT]\na = 1\n[s]\nB = 2\nc: 3\nd=e=f\n");
        assert_eq!(f.defaults.get("a").unwrap().text, "1");
        assert_eq!(get(&f, "s", "b"), "2");
        assert_eq!(get(&f, "s", "c"), "3");
        assert_eq!(get(&f, "s", "d"), "e=f");
        assert_eq!(
            f.sections
                .get("s")
                .unwrap()
                .get("b")
                .unwrap()
                .origin
                .as_ref()
                .unwrap()
                .line,
            4
        );
    }

    #[test]
    fn continuation_lines_and_blank_lines() {
        let f =
            p("[s]\nfailregex = one\n    two\n\n   three\n\nnext = x\n  # comment inside\n  y\n");
        assert_eq!(get(&f, "s", "failregex"), "one\ntwo\n\nthree");
        assert_eq!(get(&f, "s", "next"), "x\ny");
        let f = p("[s]\nfailregex =\n  a\n  b\n");
        assert_eq!(get(&f, "s", "failregex"), "\na\nb");
    }

    #[test]
    fn comments_inline_rules() {
        let f = p(
            "# c\n; c\n[s]\na = x ; comment\nb = x;not comment\nc = x # not comment\n  ; indented comment\nd = ; all comment\n",
        );
        assert_eq!(get(&f, "s", "a"), "x");
        assert_eq!(get(&f, "s", "b"), "x;not comment");
        assert_eq!(get(&f, "s", "c"), "x # not comment");
        assert_eq!(get(&f, "s", "d"), "");
    }

    #[test]
    fn universal_newlines() {
        let f = p("[s]\r\na = 1\r  b\rc = 2\r\n");
        assert_eq!(get(&f, "s", "a"), "1\nb");
        assert_eq!(get(&f, "s", "c"), "2");
    }

    #[test]
    fn tab_before_semicolon_is_comment() {
        let f = p("[s]\na = x\t;c\n");
        assert_eq!(get(&f, "s", "a"), "x");
    }

    #[test]
    fn headers() {
        let f = p("[Init?family=inet6]\na=1\n[x] trailing\nb=2\n");
        assert_eq!(get(&f, "Init?family=inet6", "a"), "1");
        assert_eq!(get(&f, "x", "b"), "2");
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse("f.conf", "[s]\na = 1\nbogus line\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f.conf:3:"), "{e}");
        let e = parse("f.conf", "a = 1\n").unwrap_err().to_string();
        assert!(e.starts_with("f.conf:1:"), "{e}");
        let e = parse("f.conf", "[s]\na=1\n[s]\n").unwrap_err().to_string();
        assert!(e.starts_with("f.conf:3:"), "{e}");
        let e = parse("f.conf", "[s]\na=1\nA=2\n").unwrap_err().to_string();
        assert!(e.starts_with("f.conf:3:"), "{e}");
        let e = parse("f.conf", "[s]\n = 2\n").unwrap_err().to_string();
        assert!(e.starts_with("f.conf:2:"), "{e}");
    }

    #[test]
    fn indented_option_line_needs_deeper_continuation() {
        let f = p("[s]\n  a = 1\n  b = 2\n    c\n");
        assert_eq!(get(&f, "s", "a"), "1");
        assert_eq!(get(&f, "s", "b"), "2\nc");
    }
}
