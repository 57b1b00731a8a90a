//! `ferroban client --help`.

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

/// Command sections: (title, [(command, what it does)]).
const COMMANDS: &[(&str, &[(&str, &str)])] = &[
    (
        "Server",
        &[
            ("start", "start the server and every enabled jail"),
            ("restart", "stop the server, then start it again"),
            ("stop", "stop every jail, then the server"),
            (
                "reload [--restart] [--unban] [--all]",
                "re-read the configuration and apply it to every jail without stopping the server; \
                 --restart restarts the jails, --unban also lifts their bans",
            ),
            (
                "reload [--restart] [--unban] [--if-exists] <JAIL>",
                "the same for one jail",
            ),
            (
                "restart [--unban] [--if-exists] <JAIL>",
                "short for `reload --restart ... <JAIL>`",
            ),
            ("status", "number and names of the jails"),
            (
                "status --all [FLAVOR]",
                "the server's status followed by every jail's",
            ),
            ("stats", "a table of failure and ban counts per jail"),
            ("ping", "check that the server answers"),
            ("version", "the server's version"),
            ("flushlogs", "reopen the log file (after log rotation)"),
            ("echo <WORDS>", "the server sends the words back"),
            ("help", "print this help"),
        ],
    ),
    (
        "Bans",
        &[
            ("banned", "every jail with the ids it bans"),
            ("banned <IP> ... <IP>", "for each id, the jails that ban it"),
            (
                "unban <IP> ... <IP>",
                "lift the bans of these ids in every jail",
            ),
            ("unban --all", "lift every ban in every jail"),
            ("set <JAIL> banip <IP> ... <IP>", "ban these ids in <JAIL>"),
            (
                "set <JAIL> unbanip [--report-absent] <IP> ... <IP>",
                "lift these bans in <JAIL>; --report-absent fails for ids not banned there",
            ),
            (
                "set <JAIL> attempt <IP> [<FAILURE> ...]",
                "count one failure of <IP> in <JAIL>",
            ),
            ("get <JAIL> banned", "the ids <JAIL> bans"),
            (
                "get <JAIL> banned <IP> ... <IP>",
                "1 for each id <JAIL> bans, else 0",
            ),
            (
                "get <JAIL> banip [<SEP>|--with-time]",
                "the ids <JAIL> bans, soonest to be lifted first, separated by <SEP> (a space by \
                 default) or one per line with ban start, duration and end",
            ),
        ],
    ),
    (
        "Jails",
        &[
            (
                "status <JAIL> [FLAVOR]",
                "failure and ban counts, files and bans of <JAIL>; FLAVOR short leaves out the ban list",
            ),
            ("start <JAIL>", "start <JAIL>"),
            ("stop <JAIL>", "stop <JAIL> and remove it"),
            ("add <JAIL> [<BACKEND>]", "add an empty jail"),
            (
                "get <JAIL> <SETTING>",
                "read a setting of <JAIL>, see below",
            ),
            (
                "set <JAIL> <SETTING> <VALUE>",
                "change a setting of <JAIL>, see below",
            ),
        ],
    ),
    (
        "Jail settings (get and set)",
        &[
            (
                "findtime, bantime, bantime.<OPT>",
                "durations such as 10m, 1h, 1d; -1 bans for ever",
            ),
            ("maxretry, maxlines, maxmatches", "numbers"),
            ("usedns, datepattern, logtimezone", "filter options"),
            ("logencoding, prefregex", "filter options"),
            (
                "ignoreself, ignorecommand, ignorecache",
                "what is never banned",
            ),
            ("idle on|off", "`set` only: pause or resume the jail"),
            (
                "ignoreip",
                "`get` the ignore list; `set` with addignoreip <IP> ... or delignoreip <IP>",
            ),
            (
                "logpath",
                "`get` the files; `set` with addlogpath <FILE> [tail] or dellogpath <FILE>",
            ),
            (
                "journalmatch",
                "`get` the matches; `set` with addjournalmatch or deljournalmatch",
            ),
            (
                "failregex, ignoreregex",
                "`get` the list; `set` with addfailregex <RE>, delfailregex <N>, addignoreregex, delignoreregex",
            ),
            ("actions", "`get` the action names"),
            (
                "addaction <ACT>, delaction <ACT>",
                "`set` only: add an empty shell action (give it commands with `action`), or \
                 remove one (its bans leave the firewall); Python actions are refused",
            ),
            (
                "action <ACT> <PROPERTY> [<VALUE>]",
                "read or change a property of an action (a change restarts that action); \
                 calling an action's methods is refused",
            ),
            (
                "actionproperties <ACT>, actionmethods <ACT>",
                "`get` only: the names an action has",
            ),
        ],
    ),
    (
        "Server settings (get and set)",
        &[
            ("loglevel, logtarget, syslogsocket", "logging"),
            ("dbfile, dbmaxmatches, dbpurgeage", "the ban database"),
        ],
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
    for (title, commands) in COMMANDS {
        out.push_str(&format!("  {title}\n"));
        for (cmd, what) in *commands {
            two_columns(&mut out, COMMANDS_LEFT, cmd, what);
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
