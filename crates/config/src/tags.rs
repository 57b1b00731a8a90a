//! `<tag>` substitution inside a set of options (fail2ban's recursive tag replacement).
//!
//! Each value has its `<name>` tags replaced by the value of option `name` (or, when absent, by
//! the result of a fallback lookup); substitution repeats until no value changes. A tag that
//! refers to itself, or is replaced too many times, is a loop. Unknown tags are left as they are.

use std::collections::HashSet;
use std::hash::BuildHasher;

use crate::error::ConfigError;
use crate::omap::OrderedMap;
use crate::{FastMap, FastSet};

const MAX_TAG_REPLACE_COUNT: usize = 25;

/// Longest value a substitution may build (bytes). Each of the [`MAX_TAG_REPLACE_COUNT`] rounds
/// of fail2ban's algorithm replaces every occurrence of a tag at once, so a value holding a tag
/// ten times whose definition holds another tag ten times grows tenfold per round (found by
/// fuzzing: 10^25 bytes; fail2ban itself exhausts memory there). No real definition comes close.
const MAX_VALUE_LEN: usize = 1 << 20;

/// Finds the first `<name>` (name without spaces and angle brackets) at or after byte `from`.
fn find_tag(s: &str, from: usize) -> Option<(usize, usize, &str)> {
    let b = s.as_bytes();
    let mut i = from;
    while i < b.len() {
        if b[i] == b'<' {
            let mut j = i + 1;
            while j < b.len() && !matches!(b[j], b' ' | b'<' | b'>') {
                j += 1;
            }
            if j < b.len() && b[j] == b'>' && j > i + 1 {
                return Some((i, j + 1, &s[i + 1..j]));
            }
            i = j.max(i + 1);
            if i < b.len() && b[i] == b'<' {
                continue;
            }
        } else {
            i += 1;
        }
    }
    None
}

/// Substitutes tags in `tags`, skipping keys (and tags) in `ignore`; `fallback` resolves tags that
/// are not keys of `tags`.
pub fn substitute(
    tags: &OrderedMap<String>,
    ignore: &HashSet<String, impl BuildHasher>,
    mut fallback: impl FnMut(&str) -> Result<Option<String>, ConfigError>,
) -> Result<OrderedMap<String>, ConfigError> {
    let mut tags = tags.clone();
    let mut done: FastSet<String> = FastSet::default();
    let mut rep_counts: FastMap<String, FastMap<String, usize>> = FastMap::default();
    let keys: Vec<String> = tags.keys().cloned().collect();
    loop {
        let mut repeat = false;
        for tag in &keys {
            if ignore.contains(tag) || done.contains(tag) {
                continue;
            }
            // Most values hold no tag: nothing to replace, nothing to copy (the loop below would
            // find none, leave the value and its counts as they are and call it done).
            if tags.get(tag).is_none_or(|v| !v.contains('<')) {
                done.insert(tag.clone());
                continue;
            }
            let orig = tags.get(tag).cloned().unwrap_or_default();
            let mut value = orig.clone();
            let stored = rep_counts.contains_key(tag);
            let mut rplc = rep_counts.get(tag).cloned().unwrap_or_default();
            let mut m = find_tag(&value, 0).map(|(s, e, n)| (s, e, n.to_string()));
            while let Some((start, end, rtag)) = m {
                if ignore.contains(&rtag) {
                    m = find_tag(&value, end).map(|(s, e, n)| (s, e, n.to_string()));
                    continue;
                }
                if rtag == *tag || rplc.get(&rtag).copied().unwrap_or(1) > MAX_TAG_REPLACE_COUNT {
                    return Err(ConfigError::TagLoop {
                        tag: tag.clone(),
                        found: rtag,
                        value,
                    });
                }
                let repl = match tags.get(&rtag) {
                    Some(v) => Some(v.clone()),
                    None => fallback(&rtag)?,
                };
                let Some(repl) = repl else {
                    m = find_tag(&value, end).map(|(s, e, n)| (s, e, n.to_string()));
                    continue;
                };
                value = value.replace(&format!("<{rtag}>"), &repl);
                if value.len() > MAX_VALUE_LEN {
                    let mut end = 200;
                    while !value.is_char_boundary(end) {
                        end -= 1;
                    }
                    return Err(ConfigError::TagLoop {
                        tag: tag.clone(),
                        found: rtag,
                        value: format!(
                            "{}… (grows past {MAX_VALUE_LEN} bytes: every <tag> it holds is \
                             replaced by a value holding tags again)",
                            &value[..end]
                        ),
                    });
                }
                *rplc.entry(rtag).or_insert(0) += 1;
                m = find_tag(&value, start).map(|(s, e, n)| (s, e, n.to_string()));
            }
            if orig != value {
                if find_tag(&value, 0).is_some() {
                    repeat = true;
                    rep_counts.insert(tag.clone(), rplc);
                } else if stored {
                    rep_counts.insert(tag.clone(), rplc);
                }
                tags.insert(tag.clone(), value.clone());
            } else if stored {
                rep_counts.insert(tag.clone(), rplc);
            }
            if !value.contains('<') {
                done.insert(tag.clone());
            }
        }
        if !repeat {
            break;
        }
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(v: &[(&str, &str)]) -> OrderedMap<String> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// Found by `fuzz/fuzz_targets/action_tags.rs` (out of memory): a value holding a tag ten
    /// times whose definition holds ten more tags grew tenfold in each of 25 rounds.
    #[test]
    fn regression_fuzz_action_tags_oom_multiplying_substitution() {
        let ten = |t: &str| format!("<{t}>").repeat(10);
        let r = substitute(
            &m(&[
                ("cmd", &ten("a")),
                ("a", &format!("x{}", ten("b"))),
                ("b", &format!("y{}", ten("c"))),
                ("c", &format!("z{}", ten("d"))),
                ("d", &format!("w{}", ten("e"))),
                ("e", &format!("v{}", ten("f"))),
                ("f", &format!("u{}", ten("g"))),
                ("g", "end"),
            ]),
            &HashSet::new(),
            |_| Ok(None),
        );
        let e = r.unwrap_err().to_string();
        assert!(e.contains("grows past"), "{e}");
        // Growth that stays small still resolves.
        let r = substitute(
            &m(&[("cmd", &ten("a")), ("a", &ten("b")), ("b", "x")]),
            &HashSet::new(),
            |_| Ok(None),
        )
        .unwrap();
        assert_eq!(r.get("cmd").unwrap(), &"x".repeat(100));
    }

    #[test]
    fn basic_and_embedded() {
        let r = substitute(
            &m(&[
                ("a", "3"),
                ("b", "<a>_3"),
                ("c", "<lt_<x>>"),
                ("x", "file"),
                ("lt_file", "F<a>"),
            ]),
            &HashSet::new(),
            |_| Ok(None),
        )
        .unwrap();
        assert_eq!(r.get("b").unwrap(), "3_3");
        assert_eq!(r.get("c").unwrap(), "F3");
    }

    #[test]
    fn unknown_and_fallback() {
        let r = substitute(&m(&[("a", "<HOST> <ext>")]), &HashSet::new(), |t| {
            Ok((t == "ext").then(|| "E".to_string()))
        })
        .unwrap();
        assert_eq!(r.get("a").unwrap(), "<HOST> E");
    }

    #[test]
    fn loops() {
        assert!(substitute(&m(&[("a", "<a>")]), &HashSet::new(), |_| Ok(None)).is_err());
        assert!(
            substitute(&m(&[("a", "<b>"), ("b", "<a>")]), &HashSet::new(), |_| Ok(
                None
            ))
            .is_err()
        );
    }
}
