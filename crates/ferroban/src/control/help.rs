//! `ferroban client --help`: the options, then every command form of [`super::cmd::FORMS`] and
//! the settings of [`super::cmd::JAIL_SETTINGS_HELP`] and [`super::cmd::SERVER_SETTINGS_HELP`].

use super::cmd::{FORMS, JAIL_SETTINGS_HELP, SERVER_SETTINGS_HELP, Section};

/// Option lines: (option, what it does).
const OPTIONS: &[(&str, &str)] = &[
    (
        "-c, --conf <DIR>",
        "configuration directory (default /etc/fail2ban)",
    ),
    (
        "-s, --socket <FILE>",
        "control socket (default: `socket` in fail2ban.conf/.local, else /var/run/fail2ban/fail2ban.sock)",
    ),
    (
        "-p, --pidfile <FILE>",
        "pid file, handed to the server by `start`",
    ),
    (
        "--loglevel <LEVEL>",
        "log level, handed to the server by `start`",
    ),
    (
        "--logtarget <TARGET>",
        "log target, handed to the server by `start`",
    ),
    (
        "--syslogsocket auto|<FILE>",
        "syslog socket, handed to the server by `start`",
    ),
    ("-x", "`start`: remove a leftover socket file first"),
    ("-b", "`start`: run the server in the background (default)"),
    (
        "-f",
        "`start`: run the server in the foreground, in place of the client",
    ),
    ("-v, -q", "more, less logging on stderr (repeatable)"),
    (
        "--timeout <TIME>",
        "how long `start` and `restart` wait for the server (default 30s)",
    ),
    (
        "--str2sec <TIME>",
        "print a duration such as 1h30m in seconds, then exit",
    ),
    ("--json", "print each result as one JSON object per line"),
    ("-h, --help", "print this help, then exit"),
    (
        "-V, --version",
        "print the version (-V: the bare number), then exit",
    ),
];

const WIDTH: usize = 79;
/// Where descriptions start, for options and for commands.
const OPTIONS_LEFT: usize = 34;
const COMMANDS_LEFT: usize = 46;

/// Appends `left` and `right` as two columns (the second from column `at`), wrapping `right`
/// within [`WIDTH`].
fn two_columns(out: &mut String, at: usize, left: &str, right: &str) {
    let mut first = format!("    {left}");
    if first.len() + 2 > at {
        out.push_str(&first);
        out.push('\n');
        first = String::new();
    }
    let mut line = format!("{first:<at$}");
    let mut empty = true;
    for word in right.split_whitespace() {
        if !empty && line.len() + 1 + word.len() > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = " ".repeat(at);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// The whole help text for `program` (`fail2ban-client` or `ferroban client`).
pub fn usage(program: &str) -> String {
    let mut out = format!(
        "Usage: {program} [OPTIONS] <COMMAND>\n\n\
         Controls a running ferroban (fail2ban-compatible) server through its socket.\n\n\
         Options:\n"
    );
    for (opt, what) in OPTIONS {
        two_columns(&mut out, OPTIONS_LEFT, opt, what);
    }
    out.push_str("\nCommands:\n");
    for section in Section::ALL {
        out.push_str(&format!("  {}\n", section.title()));
        for spec in FORMS.iter().filter(|s| s.section == section) {
            two_columns(&mut out, COMMANDS_LEFT, spec.usage, spec.help);
        }
        out.push('\n');
    }
    for (title, lines) in [
        ("Jail settings (get and set)", JAIL_SETTINGS_HELP),
        ("Server settings (get and set)", SERVER_SETTINGS_HELP),
    ] {
        out.push_str(&format!("  {title}\n"));
        for (_, usage, what) in lines {
            two_columns(&mut out, COMMANDS_LEFT, usage, what);
        }
        out.push('\n');
    }
    out.push_str("Exit status: 0 on success, 255 on any failure.\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_the_width_and_names_the_program() {
        let u = usage("fail2ban-client");
        assert!(u.starts_with("Usage: fail2ban-client [OPTIONS] <COMMAND>\n"));
        for line in u.lines() {
            assert!(line.chars().count() <= WIDTH, "too wide: {line:?}");
        }
        for word in [
            "--str2sec",
            "--json",
            "status --all",
            "get <JAIL> banip",
            "unban --all",
        ] {
            assert!(u.contains(word), "{word}");
        }
    }
}
