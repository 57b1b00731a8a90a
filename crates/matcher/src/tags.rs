//! fail2ban tag expansion (`<HOST>`, `<F-USER>…</F-USER>`, `<SKIPLINES>`, …)
//! and the mapping of wrapped global flags (`((?i)x)` → `(?i:x)`).
//!
//! The expansions are written for this crate; they match the same text with the
//! same groups and the same leftmost-first choices as fail2ban's, which the
//! differential test (`tests/differential.rs`) checks against fail2ban itself.

use std::sync::LazyLock;

/// Which host expansion `<HOST>` gets (fail2ban's `usedns`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UseDns {
    /// Addresses and host names.
    Yes,
    /// Addresses and host names (host names are resolved with a warning).
    #[default]
    Warn,
    /// Addresses only: `<HOST>` is `<ADDR>`.
    No,
    /// Addresses and host names, used as given (never resolved).
    Raw,
}

/// IPv4 dotted quad.
const IP4: &str = r"\d{1,3}(?:\.\d{1,3}){3}";
/// IPv6, loose: hextets separated by `:` or `::`, ending in a hextet or in a
/// second `:` of a trailing `::`. (The repeated part always ends in `:`, so no
/// look-behind is needed to require one before the final `:`.)
const IP6: &str = r"(?:[0-9A-Fa-f]{1,4}:{1,2}|::){1,7}(?:[0-9A-Fa-f]{1,4}|:)";

fn ip4_group() -> String {
    format!("(?::{{2}}f{{4,6}}:)?(?P<ip4>{IP4})")
}

fn ip6_group() -> String {
    format!("(?P<ip6>{IP6})")
}

fn dns_group() -> String {
    // Word characters, dots, dashes and carets, ending in a word character.
    r"(?P<dns>[-.^\w]*\w)".to_string()
}

fn cidr_group() -> String {
    r"(?P<cidr>\d+)".to_string()
}

fn addr() -> String {
    format!(r"\[?(?:{}|{})\]?", ip4_group(), ip6_group())
}

fn host(use_dns: UseDns) -> String {
    if use_dns == UseDns::No {
        addr()
    } else {
        format!("(?:{}|{})", addr(), dns_group())
    }
}

fn subnet() -> String {
    format!(
        r"\[?(?:{}|{})(?:/{})?\]?",
        ip4_group(),
        ip6_group(),
        cidr_group()
    )
}

/// The fixed replacement of a tag body (between `<` and `>`), if it has one.
fn fixed(tag: &str, use_dns: UseDns) -> Option<String> {
    Some(match tag {
        "HOST" => host(use_dns),
        "IP4" | "F-IP4/" => ip4_group(),
        "IP6" | "F-IP6/" => ip6_group(),
        "ADDR" | "F-ADDR/" => addr(),
        "CIDR" | "F-CIDR/" => cidr_group(),
        "SUBNET" | "F-SUBNET/" => subnet(),
        "DNS" | "F-DNS/" => dns_group(),
        "F-ID/" => r"(?P<fid>\S+)".to_string(),
        "F-PORT/" => r"(?P<fport>\w+)".to_string(),
        _ => return None,
    })
}

/// Group name for a custom `F-NAME` tag: lower case, `id` → `fid`, `port` → `fport`.
pub(crate) fn tag_to_group(name: &str) -> String {
    let lower = name.to_lowercase();
    match lower.as_str() {
        "id" => "fid".to_string(),
        "port" => "fport".to_string(),
        _ => lower,
    }
}

/// A tag candidate: `<`, optional `/`, word characters or `-`, optional `/`, `>`.
static TAG: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"</?[\p{L}\p{N}_\-]+/?>").unwrap_or_else(|_| unreachable!())
});

/// Expands fail2ban tags in `pattern`.
pub(crate) fn expand_tags(pattern: &str, use_dns: UseDns) -> String {
    let mut open: Vec<String> = Vec::new();
    let mut skiplines = 0usize;
    TAG.replace_all(pattern, |m: &regex::Captures<'_>| {
        let whole = &m[0];
        let body = &whole[1..whole.len() - 1];
        if body == "SKIPLINES" {
            let n = skiplines;
            skiplines += 1;
            return format!(r"\n(?P<skiplines{n}>(?:.*\n)*?)");
        }
        if let Some(r) = fixed(body, use_dns) {
            return r;
        }
        // Custom `<F-NAME>` / `</F-NAME>`: NAME is upper-case letters, digits, `_`, `-`.
        let (close, rest) = match body.strip_prefix('/') {
            Some(r) => (true, r),
            None => (false, body),
        };
        if let Some(name) = rest.strip_prefix("F-") {
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '-');
            if valid {
                if close {
                    return if open.iter().any(|n| n == name) {
                        ")".to_string()
                    } else {
                        whole.to_string()
                    };
                }
                open.push(name.to_string());
                return format!("(?P<{}>", tag_to_group(name));
            }
        }
        whole.to_string()
    })
    .into_owned()
}

/// Maps a global flag group wrapped in a group, `((?i)x)` or `(?:(?i)x)`, to
/// the local form `(?i:x)` (what fail2ban does before compiling).
pub(crate) fn map_global_flags(pattern: &str) -> String {
    let b = pattern.as_bytes();
    let mut out = String::with_capacity(pattern.len());
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        if b[i] == b'(' && (i == 0 || b[i - 1] != b'\\') {
            let mut j = i + 1;
            if b[j..].starts_with(b"?:") {
                j += 2;
            }
            if b[j..].starts_with(b"(?") {
                let mut k = j + 2;
                while k < b.len() && b[k].is_ascii_lowercase() {
                    k += 1;
                }
                if k > j + 2 && k < b.len() && b[k] == b')' {
                    out.push_str(&pattern[copied..i]);
                    out.push_str(&pattern[j..k]);
                    out.push(':');
                    i = k + 1;
                    copied = i;
                    continue;
                }
            }
        }
        i += 1;
    }
    out.push_str(&pattern[copied..]);
    out
}

/// The `alt_`/`tuple_` classification of a group name: `(is_alt, target)`.
/// `alt_user_1` → `(true, "user")`, `tuple_id_2` → `(false, "fid")`.
pub(crate) fn complex_name(name: &str) -> Option<(bool, String)> {
    if name.chars().count() <= 4 {
        return None;
    }
    let (alt, rest) = if let Some(r) = name.strip_prefix("alt_") {
        (true, r)
    } else if let Some(r) = name.strip_prefix("tuple_") {
        (false, r)
    } else {
        return None;
    };
    // The shortest head such that the tail is empty or `_` followed by digits.
    let mut cut = rest.len();
    for (j, _) in rest.char_indices() {
        let tail = &rest[j..];
        if let Some(d) = tail.strip_prefix('_')
            && !d.is_empty()
            && d.chars().all(|c| c.is_ascii_digit())
        {
            cut = j;
            break;
        }
    }
    Some((alt, tag_to_group(&rest[..cut])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_tag_depends_on_usedns() {
        let yes = expand_tags("<HOST>", UseDns::Yes);
        assert!(yes.contains("(?P<dns>"));
        assert!(yes.contains("(?P<ip4>") && yes.contains("(?P<ip6>"));
        let no = expand_tags("<HOST>", UseDns::No);
        assert!(!no.contains("(?P<dns>"));
        assert_eq!(expand_tags("<HOST>", UseDns::Raw), yes);
    }

    #[test]
    fn custom_tags_open_and_close() {
        assert_eq!(
            expand_tags("<F-USER>x</F-USER>", UseDns::Yes),
            "(?P<user>x)"
        );
        assert_eq!(expand_tags("<F-ID>x</F-ID>", UseDns::Yes), "(?P<fid>x)");
        assert_eq!(
            expand_tags("<F-PORT>x</F-PORT>", UseDns::Yes),
            "(?P<fport>x)"
        );
        assert_eq!(expand_tags("x</F-USER>", UseDns::Yes), "x</F-USER>");
        assert_eq!(expand_tags("<F-user>", UseDns::Yes), "<F-user>");
        assert_eq!(expand_tags("<F-USER/>", UseDns::Yes), "<F-USER/>");
        assert_eq!(expand_tags("<F-ID/>", UseDns::Yes), r"(?P<fid>\S+)");
        assert_eq!(expand_tags("<F-PORT/>", UseDns::Yes), r"(?P<fport>\w+)");
        assert_eq!(expand_tags("<unknown>", UseDns::Yes), "<unknown>");
        assert_eq!(
            expand_tags("<F-ALT_USER1>a</F-ALT_USER1>", UseDns::Yes),
            "(?P<alt_user1>a)"
        );
    }

    #[test]
    fn skiplines_are_numbered() {
        assert_eq!(
            expand_tags("a<SKIPLINES>b<SKIPLINES>", UseDns::Yes),
            r"a\n(?P<skiplines0>(?:.*\n)*?)b\n(?P<skiplines1>(?:.*\n)*?)"
        );
    }

    #[test]
    fn wrapped_global_flags_become_local() {
        assert_eq!(map_global_flags("((?i)abc)"), "(?i:abc)");
        assert_eq!(map_global_flags("x(?:(?is)abc)"), "x(?is:abc)");
        assert_eq!(map_global_flags("(?i)abc"), "(?i)abc");
        assert_eq!(map_global_flags(r"\((?i)abc"), r"\((?i)abc");
        assert_eq!(map_global_flags("((?I)abc)"), "((?I)abc)");
    }

    #[test]
    fn complex_names() {
        assert_eq!(complex_name("alt_user_1"), Some((true, "user".into())));
        assert_eq!(complex_name("alt_user"), Some((true, "user".into())));
        assert_eq!(complex_name("tuple_id_2"), Some((false, "fid".into())));
        assert_eq!(complex_name("alt_host_1_2"), Some((true, "host_1".into())));
        assert_eq!(complex_name("alt_"), None);
        assert_eq!(complex_name("user"), None);
    }
}
