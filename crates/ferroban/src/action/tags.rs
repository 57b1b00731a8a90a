//! Tag substitution in action commands, with fail2ban's two stages:
//!
//! 1. **Static** ([`replace_static`]): `<tag>` references to the action's own properties (init
//!    options, commands, `timeout`), resolved recursively with loop protection, preferring the
//!    conditional value `tag?family=inet6` when a family is given. `<br>`, `<sp>`,
//!    `<fq-hostname>` and `<sh-hostname>` are built in. The escaped tags (`matches`,
//!    `ipmatches`, `ipjailmatches`) are backslash-escaped ([`escape_tag`]) when a property
//!    supplies them.
//! 2. **Dynamic** ([`replace_dynamic`]): run-time values (ban information, `F-*` captures) are
//!    substituted in a single pass, never recursively. A value containing any character the
//!    shell treats specially is not put into the script at all: the tag becomes a shell variable
//!    reference (`$f2bV_ip`, or `${f2bV_ip}` where text after the tag would extend the name;
//!    two tags mapping to one name get numbered names), and the value is passed as a positional
//!    argument of `sh -c` (`f2bV_ip=$0` is prepended to the script), so the shell never parses
//!    it.

use std::collections::HashSet;
use std::fmt;
use std::sync::OnceLock;

use ferroban_config::omap::OrderedMap;

/// How many times a query may be re-substituted before it is taken for a loop.
const MAX_TAG_REPLACE_COUNT: usize = 25;

/// Tags whose static values are escaped as untrusted text.
pub const ESCAPED_TAGS: [&str; 3] = ["matches", "ipmatches", "ipjailmatches"];

/// A command ready for `/bin/sh -c`: the script and the values bound to `$0`, `$1`, ...
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShellCommand {
    /// The script (`sh -c` argument).
    pub script: String,
    /// Positional parameters, starting at `$0`.
    pub args: Vec<String>,
}

impl ShellCommand {
    /// A script without parameters.
    pub fn plain(script: impl Into<String>) -> Self {
        ShellCommand {
            script: script.into(),
            args: Vec::new(),
        }
    }

    /// True when there is nothing to run.
    pub fn is_empty(&self) -> bool {
        self.script.is_empty()
    }
}

impl fmt::Display for ShellCommand {
    /// The script alone, or (with parameters) the list `['script', 'value', ...]` as fail2ban
    /// logs it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.args.is_empty() {
            f.write_str(&self.script)
        } else {
            let mut all = vec![self.script.as_str()];
            all.extend(self.args.iter().map(String::as_str));
            f.write_str(&super::pyfmt::list_repr(&all))
        }
    }
}

/// Calls `f` for each `<name>` (name: one or more characters other than space, `<`, `>`), left to
/// right without overlap; `f` returns the replacement or `None` to keep the tag as it is.
pub fn sub_tags(s: &str, mut f: impl FnMut(&str) -> Option<String>) -> String {
    if !s.contains('<') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'<', &b[i..]) {
        let start = i + off;
        let mut j = start + 1;
        while j < b.len() && !matches!(b[j], b' ' | b'<' | b'>') {
            j += 1;
        }
        if j < b.len() && b[j] == b'>' && j > start + 1 {
            if let Some(rep) = f(&s[start + 1..j]) {
                out.push_str(&s[copied..start]);
                out.push_str(&rep);
                copied = j + 1;
            }
            i = j + 1;
        } else {
            i = start + 1;
        }
    }
    out.push_str(&s[copied..]);
    out
}

/// Escapes the characters a shell could use for injection with a backslash (newline and carriage
/// return become `\n` and `\r`): fail2ban's `escapeTag`.
pub fn escape_tag(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if is_special(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// The characters that make a run-time value unsafe to paste into a script.
fn is_special(c: char) -> bool {
    matches!(
        c,
        '\\' | '#'
            | '&'
            | ';'
            | '`'
            | '|'
            | '*'
            | '?'
            | '~'
            | '<'
            | '>'
            | '^'
            | '('
            | ')'
            | '['
            | ']'
            | '{'
            | '}'
            | '$'
            | '\''
            | '"'
            | '\n'
            | '\r'
    )
}

/// True when `value` must be passed as a shell variable rather than pasted into the script.
pub fn needs_variable(value: &str) -> bool {
    value.chars().any(is_special)
}

/// The built-in tags that need no property: `<br>` (newline), `<sp>` (space) and the host's
/// names.
fn builtin(tag: &str) -> Option<String> {
    match tag {
        "br" => Some("\n".into()),
        "sp" => Some(" ".into()),
        "fq-hostname" => Some(hostnames().0.clone()),
        "sh-hostname" => Some(hostnames().1.clone()),
        _ => None,
    }
}

/// (fully qualified, short) host name, looked up once.
fn hostnames() -> &'static (String, String) {
    static NAMES: OnceLock<(String, String)> = OnceLock::new();
    NAMES.get_or_init(|| {
        let short = host_name();
        let fq = match canonical_names(&short) {
            // A canonical name extending the host name (`www.example.org` for `www`), else the
            // first one; no canonical name at all leaves nothing (Python's `None`).
            Some(names) => {
                let pref = format!("{short}.");
                names
                    .iter()
                    .find(|n| n.starts_with(&pref))
                    .or(names.first())
                    .cloned()
                    .unwrap_or_else(|| "None".to_string())
            }
            // Resolution failed: the primary name of the address's reverse lookup.
            None => reverse_name(&short).unwrap_or_else(|| short.clone()),
        };
        (fq, short)
    })
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The canonical names `getaddrinfo(name, AI_CANONNAME)` reports (datagram sockets), `None`
/// when the name does not resolve.
fn canonical_names(name: &str) -> Option<Vec<String>> {
    let cname = std::ffi::CString::new(name).ok()?;
    // SAFETY: addrinfo is plain data; all-zero is a valid hints value.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_socktype = libc::SOCK_DGRAM;
    hints.ai_flags = libc::AI_CANONNAME;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid C string and hints; `res` receives a list freed below.
    let rc = unsafe { libc::getaddrinfo(cname.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 {
        return None;
    }
    let mut names = Vec::new();
    let mut p = res;
    while !p.is_null() {
        // SAFETY: `p` walks the list getaddrinfo returned; canonname, when set, is a C string.
        unsafe {
            let canon = (*p).ai_canonname;
            if !canon.is_null() {
                let n = std::ffi::CStr::from_ptr(canon)
                    .to_string_lossy()
                    .into_owned();
                if !n.is_empty() {
                    names.push(n);
                }
            }
            p = (*p).ai_next;
        }
    }
    // SAFETY: `res` came from a successful getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(res) };
    Some(names)
}

/// The primary name of the first address `name` resolves to.
fn reverse_name(name: &str) -> Option<String> {
    use std::net::ToSocketAddrs;
    let addr = (name, 0).to_socket_addrs().ok()?.next()?;
    super::info::reverse_lookup(addr.ip())
}

/// Conditional key suffix for `family` (`family=inet6`), empty without a family.
pub fn conditional(family: Option<&str>) -> String {
    match family {
        Some(f) if !f.is_empty() => format!("family={f}"),
        _ => String::new(),
    }
}

/// True when `key` is a conditional option name (`word?family=...`).
pub fn is_conditional_key(key: &str) -> bool {
    key.split_once('?').is_some_and(|(name, rest)| {
        !name.is_empty()
            && name.chars().all(|c| c.is_alphanumeric() || c == '_')
            && rest.starts_with("family=")
    })
}

/// The properties with every tag inside their values resolved against each other (conditional
/// values preferred), as fail2ban's recursive substitution does; the escaped tags are left alone.
pub fn resolve_properties(
    props: &OrderedMap<String>,
    cond: &str,
) -> Result<OrderedMap<String>, String> {
    let mut view = props.clone();
    if !cond.is_empty() {
        let suffix = format!("?{cond}");
        for (k, v) in props.iter() {
            if let Some(base) = k.strip_suffix(&suffix) {
                view.insert(base.to_string(), v.clone());
            }
        }
    }
    let ignore: HashSet<String> = ESCAPED_TAGS.iter().map(|s| s.to_string()).collect();
    ferroban_config::tags::substitute(&view, &ignore, |_| Ok(None)).map_err(|e| e.to_string())
}

/// Replaces the static tags of `query` with the resolved properties `resolved` (see
/// [`resolve_properties`]), repeating while the result still holds known tags.
pub fn replace_static(query: &str, resolved: &OrderedMap<String>) -> Result<String, String> {
    let mut query = query.to_string();
    if !query.contains('<') {
        return Ok(query);
    }
    let mut count = MAX_TAG_REPLACE_COUNT + 1;
    loop {
        let value = sub_tags(&query, |tag| match resolved.get(tag) {
            Some(v) if ESCAPED_TAGS.contains(&tag) => Some(escape_tag(v)),
            Some(v) => Some(v.clone()),
            None => builtin(tag),
        });
        if value == query || !value.contains('<') {
            return Ok(value);
        }
        query = value;
        count -= 1;
        if count == 0 {
            return Err(format!(
                "unexpectedly long tag interpolation (self-referencing definitions?) in: {query}"
            ));
        }
    }
}

/// fail2ban's name of the ticket-data option a `<F-NAME>` tag reads (`F-ID` → `fid`,
/// `F-PORT` → `fport`, others lower-cased).
pub fn field_key(name: &str) -> String {
    let key = name.to_lowercase();
    match key.as_str() {
        "id" => "fid".into(),
        "port" => "fport".into(),
        _ => key,
    }
}

/// Finds the `<F-NAME>` tags (NAME: `A-Z`, `0-9`, `_`, `-`) in `s`, replacing each with `f(NAME)`.
fn sub_field_tags(s: &str, mut f: impl FnMut(&str) -> String) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find("<F-") {
        let after = &rest[pos + 3..];
        let len = after
            .bytes()
            .take_while(|b| {
                b.is_ascii_uppercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-')
            })
            .count();
        if len > 0 && after.as_bytes().get(len) == Some(&b'>') {
            out.push_str(&rest[..pos]);
            out.push_str(&f(&after[..len]));
            rest = &after[len + 1..];
        } else {
            out.push_str(&rest[..pos + 1]);
            rest = &rest[pos + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// Substitutes run-time values into `cmd` (already statically substituted): `value(tag)` gives
/// the value of a run-time tag, `field(key)` the ticket-data value of `<F-KEY>` tags (missing
/// fields become empty). Values with shell-special characters become positional parameters.
pub fn replace_dynamic(
    cmd: &str,
    mut value: impl FnMut(&str) -> Option<String>,
    mut field: impl FnMut(&str) -> Option<String>,
) -> ShellCommand {
    let mut vars: OrderedMap<String> = OrderedMap::new();
    let mut escape = |tag: &str, v: String| -> String {
        if !needs_variable(&v) {
            return v;
        }
        let name: String = tag
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        // Two tags can map to one name (`a.b` and `a_b`, a tag `F_x` and a field `F-x`): a
        // name already holding another value gets a numbered suffix, so each value keeps its
        // own variable.
        let base = format!("f2bV_{name}");
        let mut name = base.clone();
        let mut n = 1;
        while let Some(held) = vars.get(&name) {
            if *held == v {
                return format!("${{{name}}}");
            }
            n += 1;
            name = format!("{base}_{n}");
        }
        let reference = format!("${{{name}}}");
        vars.insert(name, v);
        reference
    };
    let mut script = sub_tags(cmd, |tag| match value(tag) {
        Some(v) => Some(escape(tag, v)),
        None => builtin(tag),
    });
    if script.contains('<') {
        script = sub_field_tags(&script, |name| {
            let key = field_key(name);
            match field(&key) {
                Some(v) => escape(&format!("F_{key}"), v),
                None => String::new(),
            }
        });
    }
    if vars.is_empty() {
        return ShellCommand::plain(script);
    }
    // `${name}` is written as fail2ban writes it, `$name`, wherever the next character cannot
    // extend the name.
    for name in vars.keys() {
        let braced = format!("${{{name}}}");
        if !script.contains(&braced) {
            continue;
        }
        let mut out = String::with_capacity(script.len());
        let mut rest = script.as_str();
        while let Some(pos) = rest.find(&braced) {
            out.push_str(&rest[..pos]);
            rest = &rest[pos + braced.len()..];
            let extends = rest
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            if extends {
                out.push_str(&braced);
            } else {
                out.push('$');
                out.push_str(name);
            }
        }
        out.push_str(rest);
        script = out;
    }
    let mut head = String::new();
    let mut args = Vec::with_capacity(vars.len());
    for (i, (name, v)) in vars.iter().enumerate() {
        // `$10` would read as `$1` followed by `0`.
        if i < 10 {
            head.push_str(&format!("{name}=${i} "));
        } else {
            head.push_str(&format!("{name}=${{{i}}} "));
        }
        args.push(v.clone());
    }
    ShellCommand {
        script: format!("{head}\n{script}"),
        args,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(v: &[(&str, &str)]) -> OrderedMap<String> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn scanner_matches_python_tag_regex() {
        let seen = std::cell::RefCell::new(Vec::new());
        let out = sub_tags("<a> << b> <c d> <> <<e>> x<f\ng>", |t| {
            seen.borrow_mut().push(t.to_string());
            Some(format!("[{t}]"))
        });
        assert_eq!(out, "[a] << b> <c d> <> <[e]> x[f\ng]");
        assert_eq!(*seen.borrow(), vec!["a", "e", "f\ng"]);
        assert_eq!(sub_tags("<a><b>", |_| None), "<a><b>");
    }

    #[test]
    fn escape_tag_rules() {
        assert_eq!(
            escape_tag("a;b`c`$(d)\n'\"\r|&*?~<>^[]{}#\\ e"),
            "a\\;b\\`c\\`\\$\\(d\\)\\n\\'\\\"\\r\\|\\&\\*\\?\\~\\<\\>\\^\\[\\]\\{\\}\\#\\\\ e"
        );
        assert_eq!(escape_tag("plain text 1.2.3.4"), "plain text 1.2.3.4");
    }

    #[test]
    fn static_recursion_conditional_and_loops() {
        let p = props(&[
            ("actionban", "add <set> <ip> <br>x<sp>y"),
            ("set", "s-<name>"),
            ("set?family=inet6", "s6-<name>"),
            ("name", "sshd"),
        ]);
        let r4 = resolve_properties(&p, "family=inet4").unwrap();
        assert_eq!(
            replace_static("<actionban>", &r4).unwrap(),
            "add s-sshd <ip> \nx y"
        );
        let r6 = resolve_properties(&p, "family=inet6").unwrap();
        assert_eq!(
            replace_static("<actionban>", &r6).unwrap(),
            "add s6-sshd <ip> \nx y"
        );
        let looped = props(&[("a", "<b>"), ("b", "<a>")]);
        assert!(resolve_properties(&looped, "").is_err());
        let p = props(&[("matches", "x;y"), ("cmd", "echo <matches>")]);
        let r = resolve_properties(&p, "").unwrap();
        assert_eq!(replace_static("<cmd>", &r).unwrap(), "echo x\\;y");
    }

    #[test]
    fn dynamic_values_become_variables_when_special() {
        let c = replace_dynamic(
            "ban <ip> <fid> <F-USER> <F-ID> <F-NOPE> <unknown> <F-user>",
            |t| match t {
                "ip" => Some("192.0.2.1".into()),
                "fid" => Some("x; rm -rf /".into()),
                _ => None,
            },
            |k| match k {
                "user" => Some("$(touch /tmp/x)".into()),
                "fid" => Some("plain".into()),
                _ => None,
            },
        );
        assert_eq!(
            c.script,
            "f2bV_fid=$0 f2bV_F_user=$1 \nban 192.0.2.1 $f2bV_fid $f2bV_F_user plain  <unknown> <F-user>"
        );
        assert_eq!(c.args, vec!["x; rm -rf /", "$(touch /tmp/x)"]);
        let c = replace_dynamic("a<br>b", |_| None, |_| None);
        assert_eq!(c, ShellCommand::plain("a\nb"));
    }

    #[test]
    fn colliding_variable_names_keep_their_own_values() {
        // `a.b` and `a_b` (and the tag `F_x` and the field `F-X`) map to one shell name: found
        // by the action_tags fuzzer, where the second value overwrote the first.
        let c = replace_dynamic(
            "<a.b> <a_b> <a.b>x <F_x> <F-X>",
            |t| match t {
                "a.b" => Some("one;".into()),
                "a_b" => Some("two;".into()),
                "F_x" => Some("three;".into()),
                _ => None,
            },
            |k| (k == "x").then(|| "four;".into()),
        );
        assert_eq!(
            c.script,
            "f2bV_a_b=$0 f2bV_a_b_2=$1 f2bV_F_x=$2 f2bV_F_x_2=$3 \n\
             $f2bV_a_b $f2bV_a_b_2 ${f2bV_a_b}x $f2bV_F_x $f2bV_F_x_2"
        );
        assert_eq!(c.args, vec!["one;", "two;", "three;", "four;"]);
    }

    #[test]
    fn conditional_keys() {
        assert!(is_conditional_key("chain?family=inet6"));
        assert!(!is_conditional_key("chain"));
        assert!(!is_conditional_key("a-b?family=inet6"));
        assert!(!is_conditional_key("?family=inet6"));
    }
}
