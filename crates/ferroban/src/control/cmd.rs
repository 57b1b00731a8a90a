//! Every command of the control protocol, defined once: fail2ban 1.0.2's forms, fail2ban 1.1's
//! additions (`banned`, `status --all`, `stats`, `get <JAIL> banip --with-time`) and ferroban's
//! own (`top`, `fleet status`).
//!
//! - [`parse`] turns a request's words into a typed [`Command`], with fail2ban's arity checks
//!   and error texts. The server's dispatch (`daemon::dispatch`) matches on that value, so a
//!   command that parses is one the server handles (the match is exhaustive).
//! - [`FORMS`] is the table of command forms: each [`Form`]'s synopsis, help text, help section,
//!   whether the server or the client runs it, and an example. `ferroban client --help` is
//!   generated from it (`control::help`); [`Command::form`] says which entry a parsed command is.
//! - [`JAIL_SETTINGS`] and [`SERVER_SETTINGS`] are the settings of `get`/`set`, with the verbs
//!   that take them; an unknown setting is refused before the jail is looked up (fail2ban's
//!   order: an unknown setting is "Invalid command" even for an unknown jail).
//! - [`client_action`] says what `ferroban client` runs itself (`start`, `restart`, `help`, ...)
//!   or completes before sending (`reload`, `ping <TIMEOUT>`, `set ... --file`).
//! - The client picks its rendering from the parsed command: the `--json` object
//!   ([`super::json_output`], one per variant) and the beautified text ([`super::beautify`]; for
//!   a setting, the [`Text`] of its table entry).
//!
//! The tests at the end check that the four agree: every form parses to itself, has help text
//! and a `--json` rendering of its own, every setting parses for the verbs that take it and is
//! named in the help.

use crate::daemon::ReloadOptions;

/// `Sorry but the command is invalid` (a command missing words).
pub const INVALID: &str = "Sorry but the command is invalid";

/// An unknown first word.
pub const UNKNOWN: &str = "Invalid command";

/// An unknown or ill-formed `get` of a jail.
pub const NO_GET: &str = "Invalid command (no get action or not yet implemented)";

/// An unknown or ill-formed `set` of a jail.
pub fn no_set(what: &str) -> String {
    format!("Invalid command '{what}' (no set action or not yet implemented)")
}

/// Python's `int()` error text for `v`.
pub fn int_error(v: &str) -> String {
    format!(
        "invalid literal for int() with base 10: {}",
        super::pyrepr::repr_str(v)
    )
}

/// `v` as an integer, with Python's `int()` error.
pub fn parse_int<T: std::str::FromStr>(v: &str) -> Result<T, String> {
    v.trim().parse().map_err(|_| int_error(v))
}

/// fail2ban's boolean words (`true`, `yes`, `on`, `1`, …).
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "on" | "true" | "yes" => Some(true),
        "0" | "off" | "false" | "no" => Some(false),
        _ => None,
    }
}

/// How fail2ban-client prints a setting's answer (its beautifier); anything not listed is
/// Python's `str()` of the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    /// `str()` of the value.
    Plain,
    /// `Current logging level is 'INFO'`.
    LogLevel,
    /// `Current logging target is:` and the target.
    LogTarget,
    /// `Current syslog socket is:` and the socket.
    SyslogSocket,
    /// `Current database file is:` and the file, or `Database currently disabled`.
    DbFile,
    /// `Current database purge age is:` and the seconds, or `Database currently disabled`.
    DbPurgeAge,
    /// `Current monitored log file(s):` and a tree of the files.
    LogFiles,
    /// `Current log encoding is set to:` and the encoding.
    Encoding,
    /// `Current match filter:` and the matches.
    JournalMatch,
    /// `Current date pattern set to: ...`.
    DatePattern,
    /// `These IP addresses/networks are ignored:` and a tree.
    IgnoreList,
    /// `The following regular expression are defined:` and a numbered tree.
    Regexes,
    /// `The jail J has the following actions:` and the names.
    Actions,
    /// `The jail J action A has the following properties:` and the names.
    ActionProperties,
    /// `The jail J action A has the following methods:` and the names.
    ActionMethods,
    /// The ids joined by the separator word (a space, or a newline for `--with-time`).
    Banip,
}

/// The setting of the jail-setting command `get|set <JAIL> <name> ...` (any words after it).
pub fn jail_setting(verb: &str, name: &str) -> Option<&'static Setting> {
    entries(name).find(|s| match verb {
        "get" => s.get.is_some(),
        "set" => s.set.is_some(),
        _ => false,
    })
}

/// A setting of the server (`get X`, `set X V`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerSetting {
    /// `loglevel`.
    Loglevel,
    /// `logtarget`.
    Logtarget,
    /// `syslogsocket`.
    Syslogsocket,
    /// `dbfile`.
    Dbfile,
    /// `dbmaxmatches`.
    Dbmaxmatches,
    /// `dbpurgeage`.
    Dbpurgeage,
    /// `thread` (`get` only).
    Thread,
    /// `allowipv6` (`set` only).
    Allowipv6,
}

/// One server setting: its word and the verbs that take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSettingSpec {
    /// The setting.
    pub setting: ServerSetting,
    /// Its word.
    pub name: &'static str,
    /// `get name` exists.
    pub get: bool,
    /// `set name V` exists.
    pub set: bool,
    /// How fail2ban-client prints the answer.
    pub text: Text,
}

const fn server(
    setting: ServerSetting,
    name: &'static str,
    get: bool,
    set: bool,
    text: Text,
) -> ServerSettingSpec {
    ServerSettingSpec {
        setting,
        name,
        get,
        set,
        text,
    }
}

/// Every server setting of fail2ban 1.0.2's protocol.
pub const SERVER_SETTINGS: &[ServerSettingSpec] = &[
    server(
        ServerSetting::Loglevel,
        "loglevel",
        true,
        true,
        Text::LogLevel,
    ),
    server(
        ServerSetting::Logtarget,
        "logtarget",
        true,
        true,
        Text::LogTarget,
    ),
    server(
        ServerSetting::Syslogsocket,
        "syslogsocket",
        true,
        true,
        Text::SyslogSocket,
    ),
    server(ServerSetting::Dbfile, "dbfile", true, true, Text::DbFile),
    server(
        ServerSetting::Dbmaxmatches,
        "dbmaxmatches",
        true,
        true,
        Text::Plain,
    ),
    server(
        ServerSetting::Dbpurgeage,
        "dbpurgeage",
        true,
        true,
        Text::DbPurgeAge,
    ),
    server(ServerSetting::Thread, "thread", true, false, Text::Plain),
    server(
        ServerSetting::Allowipv6,
        "allowipv6",
        false,
        true,
        Text::Plain,
    ),
];

impl ServerSetting {
    /// Every server setting.
    pub const ALL: [ServerSetting; 8] = [
        ServerSetting::Loglevel,
        ServerSetting::Logtarget,
        ServerSetting::Syslogsocket,
        ServerSetting::Dbfile,
        ServerSetting::Dbmaxmatches,
        ServerSetting::Dbpurgeage,
        ServerSetting::Thread,
        ServerSetting::Allowipv6,
    ];

    /// The setting's entry of [`SERVER_SETTINGS`].
    pub fn spec(self) -> &'static ServerSettingSpec {
        SERVER_SETTINGS
            .iter()
            .find(|s| s.setting == self)
            .expect("every server setting is in the table (tested)")
    }

    /// The setting's word.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The setting called `name`, when the protocol has one.
    pub fn from_name(name: &str) -> Option<&'static ServerSettingSpec> {
        SERVER_SETTINGS.iter().find(|s| s.name == name)
    }
}

/// One jail setting, with an example of the words after it for each verb that takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The word after the jail name (`bantime.` stands for every `bantime.<OPT>`).
    pub name: &'static str,
    /// How fail2ban-client prints the answer.
    pub text: Text,
    /// `get <JAIL> name ...` exists: an example of its further words.
    pub get: Option<&'static [&'static str]>,
    /// `set <JAIL> name ...` exists: an example of its further words.
    pub set: Option<&'static [&'static str]>,
}

const fn both(
    name: &'static str,
    text: Text,
    get: &'static [&'static str],
    set: &'static [&'static str],
) -> Setting {
    Setting {
        name,
        text,
        get: Some(get),
        set: Some(set),
    }
}

const fn get_only(name: &'static str, text: Text, get: &'static [&'static str]) -> Setting {
    Setting {
        name,
        text,
        get: Some(get),
        set: None,
    }
}

const fn set_only(name: &'static str, text: Text, set: &'static [&'static str]) -> Setting {
    Setting {
        name,
        text,
        get: None,
        set: Some(set),
    }
}

/// Every jail setting of fail2ban 1.0.2's protocol (examples on jail `sshd` with action `act`).
pub const JAIL_SETTINGS: &[Setting] = &[
    set_only("idle", Text::Plain, &["on"]),
    both("ignoreself", Text::Plain, &[], &["true"]),
    get_only("ignoreip", Text::IgnoreList, &[]),
    set_only(
        "addignoreip",
        Text::IgnoreList,
        &["192.0.2.1", "10.0.0.0/8"],
    ),
    set_only("delignoreip", Text::IgnoreList, &["127.0.0.1"]),
    both("ignorecommand", Text::Plain, &[], &["/bin/false"]),
    both(
        "ignorecache",
        Text::Plain,
        &[],
        &["key=<ip>,max-count=100,max-time=300"],
    ),
    get_only("logpath", Text::LogFiles, &[]),
    set_only("addlogpath", Text::LogFiles, &["/dev/null", "tail"]),
    set_only("dellogpath", Text::LogFiles, &["/dev/null"]),
    both("logencoding", Text::Encoding, &[], &["utf-8"]),
    get_only("journalmatch", Text::JournalMatch, &[]),
    set_only("addjournalmatch", Text::JournalMatch, &["_COMM=sshd"]),
    set_only("deljournalmatch", Text::JournalMatch, &["_COMM=sshd"]),
    both(
        "prefregex",
        Text::Plain,
        &[],
        &["^<F-CONTENT>.+</F-CONTENT>$"],
    ),
    get_only("failregex", Text::Regexes, &[]),
    set_only("addfailregex", Text::Regexes, &["^fail <HOST>$"]),
    set_only("delfailregex", Text::Regexes, &["0"]),
    get_only("ignoreregex", Text::Regexes, &[]),
    set_only("addignoreregex", Text::Regexes, &["^ok <HOST>$"]),
    set_only("delignoreregex", Text::Regexes, &["0"]),
    both("usedns", Text::Plain, &[], &["no"]),
    both("findtime", Text::Plain, &[], &["10m"]),
    both(
        "datepattern",
        Text::DatePattern,
        &[],
        &["%Y-%m-%d %H:%M:%S"],
    ),
    both("logtimezone", Text::Plain, &[], &["UTC"]),
    both("maxmatches", Text::Plain, &[], &["5"]),
    both("maxretry", Text::Plain, &[], &["3"]),
    both("maxlines", Text::Plain, &[], &["2"]),
    both("bantime", Text::Plain, &[], &["1h"]),
    both("bantime.", Text::Plain, &[], &["true"]),
    set_only("attempt", Text::Plain, &["192.0.2.1", "failed login"]),
    set_only("banip", Text::Plain, &["192.0.2.1"]),
    set_only("unbanip", Text::Plain, &["192.0.2.1"]),
    get_only("banned", Text::Plain, &["192.0.2.1"]),
    get_only("banip", Text::Banip, &["--with-time"]),
    get_only("actions", Text::Actions, &[]),
    set_only("addaction", Text::Plain, &["act2"]),
    set_only("delaction", Text::Plain, &["act"]),
    both(
        "action",
        Text::Plain,
        &["act", "actionban"],
        &["act", "actionban", "true"],
    ),
    get_only("actionproperties", Text::ActionProperties, &["act"]),
    get_only("actionmethods", Text::ActionMethods, &["act"]),
];

/// The entries for `name` (`banip` has one for `get` and one for `set`).
fn entries(name: &str) -> impl Iterator<Item = &'static Setting> + '_ {
    JAIL_SETTINGS
        .iter()
        .filter(move |s| s.name == name || (s.name.ends_with('.') && name.starts_with(s.name)))
}

/// `get <JAIL> name` is a command of the protocol.
pub fn jail_get_known(name: &str) -> bool {
    entries(name).any(|s| s.get.is_some())
}

/// `set <JAIL> name` is a command of the protocol.
pub fn jail_set_known(name: &str) -> bool {
    entries(name).any(|s| s.set.is_some())
}

/// The setting names, in table order.
pub fn names() -> impl Iterator<Item = &'static str> {
    JAIL_SETTINGS.iter().map(|s| s.name)
}

/// An option of the ban time increment (`bantime.<OPT>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BantimeOpt {
    /// `bantime.increment`.
    Increment,
    /// `bantime.factor`.
    Factor,
    /// `bantime.formula`.
    Formula,
    /// `bantime.multipliers`.
    Multipliers,
    /// `bantime.maxtime`.
    Maxtime,
    /// `bantime.rndtime`.
    Rndtime,
    /// `bantime.overalljails`.
    Overalljails,
}

impl BantimeOpt {
    /// The option after `bantime.`.
    pub fn from_name(name: &str) -> Option<BantimeOpt> {
        Some(match name {
            "increment" => BantimeOpt::Increment,
            "factor" => BantimeOpt::Factor,
            "formula" => BantimeOpt::Formula,
            "multipliers" => BantimeOpt::Multipliers,
            "maxtime" => BantimeOpt::Maxtime,
            "rndtime" => BantimeOpt::Rndtime,
            "overalljails" => BantimeOpt::Overalljails,
            _ => return None,
        })
    }
}

/// `get <JAIL> ...`: what is read.
#[derive(Debug, Clone, PartialEq)]
pub enum JailGet<'a> {
    /// `banned`: the banned ids.
    Banned,
    /// `banned IP...`: 1 or 0 per id.
    BannedIds(&'a [&'a str]),
    /// `banip [SEP|--with-time]`: the bans by end; `sep` is the word after `banip` (the
    /// client joins with it), `with_time` whether `--with-time` is among the words.
    Banip {
        /// The first word after `banip`.
        sep: Option<&'a str>,
        /// `--with-time` was given.
        with_time: bool,
    },
    /// `findtime`.
    Findtime,
    /// `bantime`.
    Bantime,
    /// `maxretry`.
    Maxretry,
    /// `maxmatches`.
    Maxmatches,
    /// `ignoreip`.
    Ignoreip,
    /// `ignoreself`.
    Ignoreself,
    /// `ignorecommand`.
    Ignorecommand,
    /// `logpath`.
    Logpath,
    /// `logencoding`.
    Logencoding,
    /// `usedns`.
    Usedns,
    /// `failregex`.
    Failregex,
    /// `ignoreregex`.
    Ignoreregex,
    /// `actions`.
    Actions,
    /// `maxlines`.
    Maxlines,
    /// `prefregex`.
    Prefregex,
    /// `logtimezone`.
    Logtimezone,
    /// `ignorecache`.
    Ignorecache,
    /// `journalmatch`.
    Journalmatch,
    /// `datepattern`.
    Datepattern,
    /// `bantime.<OPT>`.
    BantimeOption(BantimeOpt),
    /// `action ACT PROPERTY`.
    Action {
        /// The action's name.
        act: &'a str,
        /// The property.
        key: &'a str,
    },
    /// `actionproperties ACT`.
    ActionProperties(&'a str),
    /// `actionmethods ACT`.
    ActionMethods(&'a str),
}

/// `set <JAIL> ...`: what is changed.
#[derive(Debug, Clone, PartialEq)]
pub enum JailSet<'a> {
    /// `banip [--force] IP...`.
    Banip {
        /// `--force`: a network wider than the minimum prefix is banned anyway.
        force: bool,
        /// The ids.
        ids: &'a [&'a str],
    },
    /// `unbanip [--report-absent] IP...`.
    Unbanip {
        /// `--report-absent`: an id not banned is an error.
        report_absent: bool,
        /// The ids.
        ids: &'a [&'a str],
    },
    /// `addignoreip IP...`.
    AddIgnoreip(&'a [&'a str]),
    /// `delignoreip IP...`.
    DelIgnoreip(&'a [&'a str]),
    /// `bantime DURATION` (seconds).
    Bantime(f64),
    /// `findtime DURATION` (seconds).
    Findtime(f64),
    /// `maxretry N`.
    Maxretry(u32),
    /// `addlogpath FILE [tail|head]`.
    AddLogpath {
        /// The file (or glob).
        path: &'a str,
        /// Read from its end.
        tail: bool,
    },
    /// `dellogpath FILE`.
    DelLogpath(&'a str),
    /// `logencoding ENC`.
    Logencoding(&'a str),
    /// `maxlines N`.
    Maxlines(usize),
    /// `maxmatches N`.
    Maxmatches(u32),
    /// `usedns yes|warn|no|raw` (anything else is `no`, as fail2ban takes it).
    Usedns(&'static str),
    /// `ignoreself BOOL`.
    Ignoreself(bool),
    /// `ignorecommand CMD`.
    Ignorecommand(&'a str),
    /// `ignorecache OPTIONS` (empty: none).
    Ignorecache(&'a str),
    /// `logtimezone ZONE` (empty: none).
    Logtimezone(&'a str),
    /// `prefregex RE` (empty: none).
    Prefregex(&'a str),
    /// `addfailregex RE`.
    AddFailregex(&'a str),
    /// `addignoreregex RE`.
    AddIgnoreregex(&'a str),
    /// `delfailregex N`.
    DelFailregex(i64),
    /// `delignoreregex N`.
    DelIgnoreregex(i64),
    /// `datepattern PATTERN`.
    Datepattern(&'a str),
    /// `bantime.<OPT> VALUE`.
    BantimeOption(BantimeOpt, &'a str),
    /// `idle on|off`.
    Idle(bool),
    /// `attempt ID [FAILURE...]`.
    Attempt {
        /// The id.
        id: &'a str,
        /// The failures' texts.
        failures: &'a [&'a str],
    },
    /// `addaction ACT`: an empty shell action.
    AddAction(&'a str),
    /// `addaction ACT FILE [KWARGS]`: a Python action (refused).
    AddPythonAction {
        /// The action's name.
        act: &'a str,
        /// The Python file.
        file: &'a str,
    },
    /// `delaction ACT`.
    DelAction(&'a str),
    /// `action ACT PROPERTY VALUE`.
    Action {
        /// The action's name.
        act: &'a str,
        /// The property.
        key: &'a str,
        /// Its new value.
        value: &'a str,
    },
    /// `action ACT NAME`: a method call without arguments (refused), or a value missing.
    ActionNoValue {
        /// The action's name.
        act: &'a str,
        /// The property or method.
        key: &'a str,
    },
    /// `action ACT METHOD ARG...`: a method call (refused).
    ActionCall {
        /// The action's name.
        act: &'a str,
        /// The method.
        key: &'a str,
    },
    /// `addjournalmatch WORD...`.
    AddJournalmatch(&'a [&'a str]),
    /// `deljournalmatch [WORD...]`.
    DelJournalmatch(&'a [&'a str]),
}

/// A parsed request.
#[derive(Debug, Clone, PartialEq)]
pub enum Command<'a> {
    /// `ping [TIMEOUT]` (the server ignores the timeout).
    Ping,
    /// `top [SINCE]`: the metrics snapshot of `ferroban top`, with the ban events after `since`.
    Top {
        /// The last event number the caller has.
        since: u64,
    },
    /// `version`.
    Version,
    /// `echo WORD...`.
    Echo(&'a [&'a str]),
    /// `server-status`.
    ServerStatus,
    /// `stop`: the server.
    Stop,
    /// `stop --all`: every jail.
    StopAll,
    /// `stop JAIL`.
    StopJail(&'a str),
    /// `start JAIL`.
    StartJail(&'a str),
    /// `reload [OPTIONS] [JAIL|--all]`.
    Reload {
        /// The jails named (none: all).
        jails: Vec<&'a str>,
        /// `--restart`, `--unban`, `--if-exists`.
        opts: ReloadOptions,
    },
    /// `flushlogs`.
    FlushLogs,
    /// `add JAIL [BACKEND]`.
    Add {
        /// The new jail's name.
        jail: &'a str,
        /// Its backend (`auto` when not given).
        backend: &'a str,
    },
    /// `status`.
    Status,
    /// `status --all [FLAVOR]`.
    StatusAll {
        /// `basic` when not given.
        flavor: &'a str,
    },
    /// `status JAIL [FLAVOR]`.
    StatusJail {
        /// The jail.
        jail: &'a str,
        /// `basic` when not given.
        flavor: &'a str,
    },
    /// `stats` (`statistics`).
    Stats,
    /// `fleet status`.
    FleetStatus,
    /// `banned`.
    Banned,
    /// `banned IP...`.
    BannedIds(&'a [&'a str]),
    /// `unban --all`.
    UnbanAll,
    /// `unban IP...`.
    Unban(&'a [&'a str]),
    /// `get SETTING`.
    GetServer(ServerSetting),
    /// `set SETTING VALUE`.
    SetServer(ServerSetting, &'a str),
    /// `get JAIL ...`. The setting is known; `op` is `Err` when its words do not fit (reported
    /// after the jail is looked up, as fail2ban does).
    GetJail {
        /// The jail.
        jail: &'a str,
        /// What is read.
        op: Result<JailGet<'a>, String>,
    },
    /// `set JAIL ...`, as [`Command::GetJail`].
    SetJail {
        /// The jail.
        jail: &'a str,
        /// What is changed.
        op: Result<JailSet<'a>, String>,
    },
}

fn get_jail_op<'a>(what: &'a str, rest: &'a [&'a str]) -> Result<JailGet<'a>, String> {
    use JailGet as G;
    Ok(match (what, rest) {
        ("banned", []) => G::Banned,
        ("banned", ids) => G::BannedIds(ids),
        ("banip", rest) => G::Banip {
            sep: rest.first().copied(),
            with_time: rest.contains(&"--with-time"),
        },
        ("findtime", []) => G::Findtime,
        ("bantime", []) => G::Bantime,
        ("maxretry", []) => G::Maxretry,
        ("maxmatches", []) => G::Maxmatches,
        ("ignoreip", []) => G::Ignoreip,
        ("ignoreself", []) => G::Ignoreself,
        ("ignorecommand", []) => G::Ignorecommand,
        ("logpath", []) => G::Logpath,
        ("logencoding", []) => G::Logencoding,
        ("usedns", []) => G::Usedns,
        ("failregex", []) => G::Failregex,
        ("ignoreregex", []) => G::Ignoreregex,
        ("actions", []) => G::Actions,
        ("maxlines", []) => G::Maxlines,
        ("prefregex", []) => G::Prefregex,
        ("logtimezone", []) => G::Logtimezone,
        ("ignorecache", []) => G::Ignorecache,
        ("journalmatch", []) => G::Journalmatch,
        ("datepattern", []) => G::Datepattern,
        (opt, []) if opt.starts_with("bantime.") => {
            G::BantimeOption(BantimeOpt::from_name(&opt["bantime.".len()..]).ok_or(NO_GET)?)
        }
        ("action", [act, key]) => G::Action { act, key },
        ("actionproperties", [act]) => G::ActionProperties(act),
        ("actionmethods", [act]) => G::ActionMethods(act),
        _ => return Err(NO_GET.into()),
    })
}

fn duration(v: &str) -> Result<f64, String> {
    ferroban_config::parse_duration(v).map_err(|e| e.to_string())
}

fn set_jail_op<'a>(what: &'a str, rest: &'a [&'a str]) -> Result<JailSet<'a>, String> {
    use JailSet as S;
    Ok(match (what, rest) {
        ("banip", ids) if !ids.is_empty() => match ids {
            ["--force", ids @ ..] => S::Banip { force: true, ids },
            _ => S::Banip { force: false, ids },
        },
        ("unbanip", ids) if !ids.is_empty() => match ids {
            ["--report-absent", ids @ ..] => S::Unbanip {
                report_absent: true,
                ids,
            },
            _ => S::Unbanip {
                report_absent: false,
                ids,
            },
        },
        ("addignoreip", ips) if !ips.is_empty() => S::AddIgnoreip(ips),
        ("delignoreip", ips) if !ips.is_empty() => S::DelIgnoreip(ips),
        ("bantime", [v]) => S::Bantime(duration(v)?),
        ("findtime", [v]) => S::Findtime(duration(v)?),
        ("maxretry", [v]) => S::Maxretry(parse_int(v)?),
        ("addlogpath", [path, opt @ ..]) => {
            let tail = match opt {
                [] => false,
                [o] if o.eq_ignore_ascii_case("tail") => true,
                [o] if o.eq_ignore_ascii_case("head") => false,
                [_] => return Err("File option must be 'head' or 'tail'".into()),
                _ => return Err("Only one file can be added at a time".into()),
            };
            S::AddLogpath { path, tail }
        }
        ("dellogpath", [path]) => S::DelLogpath(path),
        ("logencoding", [enc]) => {
            let known = enc.eq_ignore_ascii_case("auto")
                || ferroban_source::LogEncoding::parse(enc).is_ok();
            if !known {
                return Err(format!("unknown encoding: {enc}"));
            }
            S::Logencoding(enc)
        }
        ("maxlines", [v]) => S::Maxlines(parse_int(v)?),
        ("maxmatches", [v]) => S::Maxmatches(parse_int(v)?),
        // fail2ban takes yes/warn/no/raw and turns anything else into "no".
        ("usedns", [v]) => S::Usedns(match v.to_ascii_lowercase().as_str() {
            "yes" => "yes",
            "warn" => "warn",
            "raw" => "raw",
            _ => "no",
        }),
        ("ignoreself", [v]) => S::Ignoreself(parse_bool(v).unwrap_or(false)),
        ("ignorecommand", [v]) => S::Ignorecommand(v),
        ("ignorecache", [v]) => S::Ignorecache(v),
        ("logtimezone", [v]) => S::Logtimezone(v),
        ("prefregex", [v]) => S::Prefregex(v),
        ("addfailregex", [v]) => S::AddFailregex(v),
        ("addignoreregex", [v]) => S::AddIgnoreregex(v),
        ("delfailregex", [v]) => S::DelFailregex(parse_int(v)?),
        ("delignoreregex", [v]) => S::DelIgnoreregex(parse_int(v)?),
        ("datepattern", [v]) => S::Datepattern(v),
        (opt, [v]) if opt.starts_with("bantime.") => {
            let name = &opt["bantime.".len()..];
            let o =
                BantimeOpt::from_name(name).ok_or_else(|| format!("unknown option {name:?}"))?;
            S::BantimeOption(o, v)
        }
        ("idle", [v]) => S::Idle(match *v {
            "on" => true,
            "off" => false,
            _ => return Err("Invalid idle option, must be 'on' or 'off'".into()),
        }),
        ("attempt", [id, failures @ ..]) => {
            if id.is_empty() {
                return Err("an empty id cannot be counted".into());
            }
            S::Attempt { id, failures }
        }
        ("addaction", [act]) => S::AddAction(act),
        ("addaction", [act, file, ..]) => S::AddPythonAction { act, file },
        ("delaction", [act]) => S::DelAction(act),
        ("action", [act, key, value]) => S::Action { act, key, value },
        ("action", [act, key]) => S::ActionNoValue { act, key },
        ("action", [act, key, ..]) => S::ActionCall { act, key },
        ("addjournalmatch", words) => S::AddJournalmatch(words),
        ("deljournalmatch", words) => S::DelJournalmatch(words),
        _ => return Err(no_set(what)),
    })
}

/// The `set <JAIL>` settings applied as an in-place reload of the jail. Their jail comes first:
/// `set X action ...` names a jail `X` even when `X` is also a server setting.
const RELOADING_SETTINGS: [&str; 5] = [
    "addaction",
    "delaction",
    "action",
    "addjournalmatch",
    "deljournalmatch",
];

fn parse_get<'a>(rest: &'a [&'a str]) -> Result<Command<'a>, String> {
    match rest {
        [s] => match ServerSetting::from_name(s) {
            Some(spec) if spec.get => Ok(Command::GetServer(spec.setting)),
            _ => Err(INVALID.into()),
        },
        [jail, what, tail @ ..] => {
            // fail2ban checks the setting before it looks the jail up.
            if !jail_get_known(what) {
                return Err(NO_GET.into());
            }
            Ok(Command::GetJail {
                jail,
                op: get_jail_op(what, tail),
            })
        }
        [] => Err(INVALID.into()),
    }
}

fn parse_set<'a>(rest: &'a [&'a str]) -> Result<Command<'a>, String> {
    match rest {
        [jail, what, tail @ ..] if RELOADING_SETTINGS.contains(what) => Ok(Command::SetJail {
            jail,
            op: set_jail_op(what, tail),
        }),
        [s, v] if ServerSetting::from_name(s).is_some_and(|spec| spec.set) => Ok(
            Command::SetServer(ServerSetting::from_name(s).expect("checked").setting, v),
        ),
        [jail, what, tail @ ..] => {
            if !jail_set_known(what) {
                return Err(no_set(what));
            }
            Ok(Command::SetJail {
                jail,
                op: set_jail_op(what, tail),
            })
        }
        _ => Err(INVALID.into()),
    }
}

/// `reload`'s first word.
pub const RELOAD: &str = "reload";

/// The request words of `reload` with its option words and its target (a jail or `--all`):
/// `reload OPTIONS... TARGET`, which [`parse`] reads as [`Command::Reload`]. `ferroban client`
/// sends these, and fail2ban-client's frame `[reload, TARGET, [OPTIONS...], [CONFIG STREAM...]]`
/// becomes them (ferroban reads its configuration itself: the stream is not used).
pub fn reload_request<S: AsRef<str>>(opts: &[S], target: &str) -> Vec<String> {
    let mut argv = vec![RELOAD.to_string()];
    argv.extend(opts.iter().map(|o| o.as_ref().to_string()));
    argv.push(target.to_string());
    argv
}

/// How many leading words [`starts_bulk`] reads.
pub const BULK_PREFIX_WORDS: usize = 3;

/// Whether a request whose first [`BULK_PREFIX_WORDS`] words are `prefix` is of a bulk form
/// ([`Form::is_bulk`]): [`parse`] decides, on these words followed by one id. The server must
/// know this before it has read the whole request (a bulk request may be longer than the usual
/// limit), so the recognisers of both framings take the words from the start of the raw request
/// and ask here.
pub fn starts_bulk(prefix: &[&str]) -> bool {
    let [verb, jail, op] = prefix else {
        return false;
    };
    let words = [*verb, *jail, *op, "192.0.2.1"];
    parse(&words).is_ok_and(|c| c.form().is_bulk())
}

/// Parses a request's words. `Err` is the message the server answers (fail2ban's words).
pub fn parse<'a>(words: &'a [&'a str]) -> Result<Command<'a>, String> {
    use Command as C;
    Ok(match words {
        [] => return Err("Invalid command: empty".into()),
        // fail2ban-client's `ping TIMEOUT` sends the timeout along; the server ignores it.
        ["ping", ..] => C::Ping,
        ["top"] => C::Top { since: 0 },
        ["top", w] => C::Top {
            since: w
                .parse()
                .map_err(|_| format!("top {w:?}: expected an event number"))?,
        },
        ["version"] => C::Version,
        ["echo", rest @ ..] => C::Echo(rest),
        ["server-status"] => C::ServerStatus,
        ["stop"] => C::Stop,
        ["stop", "--all"] => C::StopAll,
        ["stop", jail] => C::StopJail(jail),
        ["start", jail] => C::StartJail(jail),
        [RELOAD, rest @ ..] => {
            // Options first, then the target: a jail name or `--all` (or nothing: all).
            let jails = rest
                .iter()
                .copied()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let opts = ReloadOptions::parse(
                rest.iter()
                    .copied()
                    .filter(|w| w.starts_with("--") && *w != "--all"),
            )
            .ok_or_else(|| format!("Invalid reload options: {rest:?}"))?;
            C::Reload { jails, opts }
        }
        ["flushlogs"] => C::FlushLogs,
        ["add", "--all", ..] => {
            return Err(format!(
                "Reserved name {}",
                super::pyrepr::repr_str("--all")
            ));
        }
        ["add", jail] => C::Add {
            jail,
            backend: "auto",
        },
        ["add", jail, backend] => C::Add { jail, backend },
        ["status"] => C::Status,
        ["status", "--all"] => C::StatusAll { flavor: "basic" },
        ["status", "--all", flavor] => C::StatusAll { flavor },
        ["status", jail] => C::StatusJail {
            jail,
            flavor: "basic",
        },
        ["status", jail, flavor] => C::StatusJail { jail, flavor },
        ["status", ..] => return Err("Invalid command (no status)".into()),
        ["stats" | "statistics"] => C::Stats,
        ["fleet", "status"] => C::FleetStatus,
        ["banned"] => C::Banned,
        ["banned", ids @ ..] => C::BannedIds(ids),
        ["unban", "--all"] => C::UnbanAll,
        ["unban", ids @ ..] if !ids.is_empty() => C::Unban(ids),
        ["get", rest @ ..] => return parse_get(rest),
        ["set", rest @ ..] => return parse_set(rest),
        _ => return Err(UNKNOWN.into()),
    })
}

/// What `ferroban client` does with a command line's words before (or instead of) sending them.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientAction<'a> {
    /// `start`: launch the server and wait for it.
    Start,
    /// `restart`: `stop`, wait until the server is gone, `start`.
    Restart,
    /// `restart [OPTIONS] <JAIL>`: sent as `reload --restart` with these words after it.
    RestartJail(&'a [&'a str]),
    /// `reload [OPTIONS] [<JAIL>|--all]`: checked like fail2ban-client, sent with a target.
    Reload,
    /// `set <JAIL> banip|unbanip ... --file PATH|-`: the ids are read from a file.
    BulkFile {
        /// The jail.
        jail: &'a str,
        /// `banip` or `unbanip`.
        op: &'a str,
        /// The words after `op`.
        rest: &'a [&'a str],
    },
    /// `ping <TIMEOUT>`: `ping` answered within the timeout (seconds), or Python's error for a
    /// timeout that is not a positive number.
    Ping(Result<f64, String>),
    /// `help`: the help text.
    Help,
    /// Anything else: sent as typed.
    Send,
}

/// What the client does with `words`.
pub fn client_action<'a>(words: &'a [&'a str]) -> ClientAction<'a> {
    match words {
        ["start"] => ClientAction::Start,
        ["restart"] => ClientAction::Restart,
        ["restart", rest @ ..] => ClientAction::RestartJail(rest),
        [RELOAD, ..] => ClientAction::Reload,
        ["set", jail, op, rest @ ..]
            if starts_bulk(&["set", jail, op]) && rest.contains(&"--file") =>
        {
            ClientAction::BulkFile { jail, op, rest }
        }
        ["ping", limit] => ClientAction::Ping(match limit.parse::<f64>() {
            Ok(secs) if secs.is_finite() && secs > 0.0 => Ok(secs),
            _ => Err(format!(
                "could not convert string to float: {}",
                super::pyrepr::repr_str(limit)
            )),
        }),
        ["help"] => ClientAction::Help,
        _ => ClientAction::Send,
    }
}

impl ClientAction<'_> {
    /// The form of [`FORMS`] the client runs itself, for those it does.
    pub fn form(&self) -> Option<Form> {
        match self {
            ClientAction::Start => Some(Form::Start),
            ClientAction::Restart => Some(Form::Restart),
            ClientAction::RestartJail(_) => Some(Form::RestartJail),
            ClientAction::Help => Some(Form::Help),
            ClientAction::Reload
            | ClientAction::BulkFile { .. }
            | ClientAction::Ping(_)
            | ClientAction::Send => None,
        }
    }
}

/// Each command form: one entry of [`FORMS`] (and one line of the help).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `start` (the client starts the server).
    Start,
    /// `restart` (the client: `stop`, then `start`).
    Restart,
    /// `stop`.
    Stop,
    /// `reload [OPTIONS] [--all]`.
    ReloadAll,
    /// `reload [OPTIONS] JAIL`.
    ReloadJail,
    /// `restart [OPTIONS] JAIL` (the client sends `reload --restart ...`).
    RestartJail,
    /// `status`.
    Status,
    /// `status --all [FLAVOR]`.
    StatusAll,
    /// `stats`.
    Stats,
    /// `ping [TIMEOUT]`.
    Ping,
    /// `version`.
    Version,
    /// `flushlogs`.
    FlushLogs,
    /// `echo WORDS`.
    Echo,
    /// `server-status`.
    ServerStatus,
    /// `top [SINCE]`.
    Top,
    /// `fleet status`.
    FleetStatus,
    /// `help` (the client).
    Help,
    /// `banned`.
    Banned,
    /// `banned IP...`.
    BannedIds,
    /// `unban IP...`.
    Unban,
    /// `unban --all`.
    UnbanAll,
    /// `set JAIL banip ...`.
    SetBanip,
    /// `set JAIL unbanip ...`.
    SetUnbanip,
    /// `set JAIL attempt ...`.
    SetAttempt,
    /// `get JAIL banned`.
    GetBanned,
    /// `get JAIL banned IP...`.
    GetBannedIds,
    /// `get JAIL banip ...`.
    GetBanip,
    /// `status JAIL [FLAVOR]`.
    StatusJail,
    /// `start JAIL`.
    StartJail,
    /// `stop JAIL`.
    StopJail,
    /// `stop --all`.
    StopAll,
    /// `add JAIL [BACKEND]`.
    Add,
    /// `get JAIL SETTING` (the other jail settings).
    GetJail,
    /// `set JAIL SETTING VALUE` (the other jail settings).
    SetJail,
    /// `get SETTING` of the server.
    GetServer,
    /// `set SETTING VALUE` of the server.
    SetServer,
}

impl Form {
    /// Every form, in declaration order.
    pub const ALL: [Form; 36] = [
        Form::Start,
        Form::Restart,
        Form::Stop,
        Form::ReloadAll,
        Form::ReloadJail,
        Form::RestartJail,
        Form::Status,
        Form::StatusAll,
        Form::Stats,
        Form::Ping,
        Form::Version,
        Form::FlushLogs,
        Form::Echo,
        Form::ServerStatus,
        Form::Top,
        Form::FleetStatus,
        Form::Help,
        Form::Banned,
        Form::BannedIds,
        Form::Unban,
        Form::UnbanAll,
        Form::SetBanip,
        Form::SetUnbanip,
        Form::SetAttempt,
        Form::GetBanned,
        Form::GetBannedIds,
        Form::GetBanip,
        Form::StatusJail,
        Form::StartJail,
        Form::StopJail,
        Form::StopAll,
        Form::Add,
        Form::GetJail,
        Form::SetJail,
        Form::GetServer,
        Form::SetServer,
    ];
}

/// Where a form's line is in the help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The server.
    Server,
    /// Bans.
    Bans,
    /// Jails.
    Jails,
}

impl Section {
    /// Every section, in help order.
    pub const ALL: [Section; 3] = [Section::Server, Section::Bans, Section::Jails];

    /// The section's title.
    pub fn title(self) -> &'static str {
        match self {
            Section::Server => "Server",
            Section::Bans => "Bans",
            Section::Jails => "Jails",
        }
    }
}

/// One command form.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The form.
    pub form: Form,
    /// Its help section.
    pub section: Section,
    /// Its synopsis, as the help shows it.
    pub usage: &'static str,
    /// What it does, as the help shows it.
    pub help: &'static str,
    /// The server runs it (else the client does, or turns it into another request).
    pub server: bool,
    /// An example of the words sent (on the test configuration's jail `sshd`, action `act`).
    pub example: &'static [&'static str],
}

const fn spec(
    form: Form,
    section: Section,
    usage: &'static str,
    help: &'static str,
    server: bool,
    example: &'static [&'static str],
) -> Spec {
    Spec {
        form,
        section,
        usage,
        help,
        server,
        example,
    }
}

use Section::{Bans, Jails, Server};

/// Every command form, in help order.
pub const FORMS: &[Spec] = &[
    spec(
        Form::Start,
        Server,
        "start",
        "start the server and every enabled jail",
        false,
        &["start"],
    ),
    spec(
        Form::Restart,
        Server,
        "restart",
        "stop the server, then start it again",
        false,
        &["restart"],
    ),
    spec(
        Form::Stop,
        Server,
        "stop",
        "stop every jail, then the server",
        true,
        &["stop"],
    ),
    spec(
        Form::ReloadAll,
        Server,
        "reload [--restart] [--unban] [--all]",
        "re-read the configuration and apply it to every jail without stopping the server; \
         --restart restarts the jails, --unban also lifts their bans",
        true,
        &["reload", "--unban", "--all"],
    ),
    spec(
        Form::ReloadJail,
        Server,
        "reload [--restart] [--unban] [--if-exists] <JAIL>",
        "the same for one jail",
        true,
        &["reload", "--restart", "sshd"],
    ),
    spec(
        Form::RestartJail,
        Server,
        "restart [--unban] [--if-exists] <JAIL>",
        "short for `reload --restart ... <JAIL>`",
        false,
        &["restart", "--unban", "sshd"],
    ),
    spec(
        Form::Status,
        Server,
        "status",
        "number and names of the jails",
        true,
        &["status"],
    ),
    spec(
        Form::StatusAll,
        Server,
        "status --all [FLAVOR]",
        "the server's status followed by every jail's",
        true,
        &["status", "--all", "short"],
    ),
    spec(
        Form::Stats,
        Server,
        "stats",
        "a table of failure and ban counts per jail",
        true,
        &["stats"],
    ),
    spec(
        Form::Ping,
        Server,
        "ping [<TIMEOUT>]",
        "check that the server answers (within <TIMEOUT> seconds)",
        true,
        &["ping", "5"],
    ),
    spec(
        Form::Version,
        Server,
        "version",
        "the server's version",
        true,
        &["version"],
    ),
    spec(
        Form::FlushLogs,
        Server,
        "flushlogs",
        "reopen the log file (after log rotation)",
        true,
        &["flushlogs"],
    ),
    spec(
        Form::Echo,
        Server,
        "echo <WORDS>",
        "the server sends the words back",
        true,
        &["echo", "a", "b"],
    ),
    spec(
        Form::ServerStatus,
        Server,
        "server-status",
        "`Server ready` once the server answers (what `start` prints)",
        true,
        &["server-status"],
    ),
    spec(
        Form::Top,
        Server,
        "top [<SEQ>]",
        "the metrics snapshot `ferroban top` shows, with the ban events after number <SEQ>",
        true,
        &["top", "0"],
    ),
    spec(
        Form::FleetStatus,
        Server,
        "fleet status",
        "the fleet's connection, peers and counters (fleet mode)",
        true,
        &["fleet", "status"],
    ),
    spec(
        Form::GetServer,
        Server,
        "get <SETTING>",
        "read a setting of the server, see below",
        true,
        &["get", "loglevel"],
    ),
    spec(
        Form::SetServer,
        Server,
        "set <SETTING> <VALUE>",
        "change a setting of the server, see below",
        true,
        &["set", "loglevel", "INFO"],
    ),
    spec(
        Form::Help,
        Server,
        "help",
        "print this help",
        false,
        &["help"],
    ),
    spec(
        Form::Banned,
        Bans,
        "banned",
        "every jail with the ids it bans",
        true,
        &["banned"],
    ),
    spec(
        Form::BannedIds,
        Bans,
        "banned <IP> ... <IP>",
        "for each id, the jails that ban it",
        true,
        &["banned", "192.0.2.1", "192.0.2.2"],
    ),
    spec(
        Form::Unban,
        Bans,
        "unban <IP> ... <IP>",
        "lift the bans of these ids in every jail",
        true,
        &["unban", "192.0.2.1"],
    ),
    spec(
        Form::UnbanAll,
        Bans,
        "unban --all",
        "lift every ban in every jail",
        true,
        &["unban", "--all"],
    ),
    spec(
        Form::SetBanip,
        Bans,
        "set <JAIL> banip <IP> ... <IP>",
        "ban these ids in <JAIL>",
        true,
        &["set", "sshd", "banip", "192.0.2.1"],
    ),
    spec(
        Form::SetUnbanip,
        Bans,
        "set <JAIL> unbanip [--report-absent] <IP> ... <IP>",
        "lift these bans in <JAIL>; --report-absent fails for ids not banned there",
        true,
        &["set", "sshd", "unbanip", "--report-absent", "192.0.2.1"],
    ),
    spec(
        Form::SetAttempt,
        Bans,
        "set <JAIL> attempt <IP> [<FAILURE> ...]",
        "count one failure of <IP> in <JAIL>",
        true,
        &["set", "sshd", "attempt", "192.0.2.1", "bad login"],
    ),
    spec(
        Form::GetBanned,
        Bans,
        "get <JAIL> banned",
        "the ids <JAIL> bans",
        true,
        &["get", "sshd", "banned"],
    ),
    spec(
        Form::GetBannedIds,
        Bans,
        "get <JAIL> banned <IP> ... <IP>",
        "1 for each id <JAIL> bans, else 0",
        true,
        &["get", "sshd", "banned", "192.0.2.1", "192.0.2.2"],
    ),
    spec(
        Form::GetBanip,
        Bans,
        "get <JAIL> banip [<SEP>|--with-time]",
        "the ids <JAIL> bans, soonest to be lifted first, separated by <SEP> (a space by \
         default) or one per line with ban start, duration and end",
        true,
        &["get", "sshd", "banip", "--with-time"],
    ),
    spec(
        Form::StatusJail,
        Jails,
        "status <JAIL> [FLAVOR]",
        "failure and ban counts, files and bans of <JAIL>; FLAVOR short leaves out the ban list",
        true,
        &["status", "sshd", "short"],
    ),
    spec(
        Form::StartJail,
        Jails,
        "start <JAIL>",
        "start <JAIL>",
        true,
        &["start", "sshd"],
    ),
    spec(
        Form::StopJail,
        Jails,
        "stop <JAIL>",
        "stop <JAIL> and remove it",
        true,
        &["stop", "sshd"],
    ),
    spec(
        Form::StopAll,
        Jails,
        "stop --all",
        "stop and remove every jail; the server keeps running",
        true,
        &["stop", "--all"],
    ),
    spec(
        Form::Add,
        Jails,
        "add <JAIL> [<BACKEND>]",
        "add an empty jail",
        true,
        &["add", "new", "polling"],
    ),
    spec(
        Form::GetJail,
        Jails,
        "get <JAIL> <SETTING>",
        "read a setting of <JAIL>, see below",
        true,
        &["get", "sshd", "maxretry"],
    ),
    spec(
        Form::SetJail,
        Jails,
        "set <JAIL> <SETTING> <VALUE>",
        "change a setting of <JAIL>, see below",
        true,
        &["set", "sshd", "maxretry", "3"],
    ),
];

/// The help lines of the jail settings: (settings named, synopsis, text). Every entry of
/// [`JAIL_SETTINGS`] is on one of them.
pub const JAIL_SETTINGS_HELP: &[(&[&str], &str, &str)] = &[
    (
        &["findtime", "bantime", "bantime."],
        "findtime, bantime, bantime.<OPT>",
        "durations such as 10m, 1h, 1d; -1 bans for ever",
    ),
    (
        &["maxretry", "maxlines", "maxmatches"],
        "maxretry, maxlines, maxmatches",
        "numbers",
    ),
    (
        &["usedns", "datepattern", "logtimezone"],
        "usedns, datepattern, logtimezone",
        "filter options",
    ),
    (
        &["logencoding", "prefregex"],
        "logencoding, prefregex",
        "filter options",
    ),
    (
        &["ignoreself", "ignorecommand", "ignorecache"],
        "ignoreself, ignorecommand, ignorecache",
        "what is never banned",
    ),
    (
        &["idle"],
        "idle on|off",
        "`set` only: pause or resume the jail",
    ),
    (
        &["ignoreip", "addignoreip", "delignoreip"],
        "ignoreip",
        "`get` the ignore list; `set` with addignoreip <IP> ... or delignoreip <IP>",
    ),
    (
        &["logpath", "addlogpath", "dellogpath"],
        "logpath",
        "`get` the files; `set` with addlogpath <FILE> [tail] or dellogpath <FILE>",
    ),
    (
        &["journalmatch", "addjournalmatch", "deljournalmatch"],
        "journalmatch",
        "`get` the matches; `set` with addjournalmatch or deljournalmatch",
    ),
    (
        &[
            "failregex",
            "ignoreregex",
            "addfailregex",
            "delfailregex",
            "addignoreregex",
            "delignoreregex",
        ],
        "failregex, ignoreregex",
        "`get` the list; `set` with addfailregex <RE>, delfailregex <N>, addignoreregex, delignoreregex",
    ),
    (&["actions"], "actions", "`get` the action names"),
    (
        &["addaction", "delaction"],
        "addaction <ACT>, delaction <ACT>",
        "`set` only: add an empty shell action (give it commands with `action`), or \
         remove one (its bans leave the firewall); Python actions are refused",
    ),
    (
        &["action"],
        "action <ACT> <PROPERTY> [<VALUE>]",
        "read or change a property of an action (a change restarts that action); \
         calling an action's methods is refused",
    ),
    (
        &["actionproperties", "actionmethods"],
        "actionproperties <ACT>, actionmethods <ACT>",
        "`get` only: the names an action has",
    ),
    (
        &["banip", "unbanip", "attempt", "banned"],
        "banip, unbanip, attempt, banned",
        "see Bans above",
    ),
];

/// The help lines of the server settings: (settings named, synopsis, text).
pub const SERVER_SETTINGS_HELP: &[(&[&str], &str, &str)] = &[
    (
        &["loglevel", "logtarget", "syslogsocket"],
        "loglevel, logtarget, syslogsocket",
        "logging",
    ),
    (
        &["dbfile", "dbmaxmatches", "dbpurgeage"],
        "dbfile, dbmaxmatches, dbpurgeage",
        "the ban database",
    ),
    (&["thread"], "thread", "`get` only: thread options"),
    (
        &["allowipv6"],
        "allowipv6",
        "`set` only: IPv6 is always handled (`no` is refused)",
    ),
];

impl Command<'_> {
    /// The form of this command (its entry of [`FORMS`]).
    pub fn form(&self) -> Form {
        use Command as C;
        match self {
            C::Ping => Form::Ping,
            C::Top { .. } => Form::Top,
            C::Version => Form::Version,
            C::Echo(_) => Form::Echo,
            C::ServerStatus => Form::ServerStatus,
            C::Stop => Form::Stop,
            C::StopAll => Form::StopAll,
            C::StopJail(_) => Form::StopJail,
            C::StartJail(_) => Form::StartJail,
            C::Reload { jails, .. } if jails.is_empty() => Form::ReloadAll,
            C::Reload { .. } => Form::ReloadJail,
            C::FlushLogs => Form::FlushLogs,
            C::Add { .. } => Form::Add,
            C::Status => Form::Status,
            C::StatusAll { .. } => Form::StatusAll,
            C::StatusJail { .. } => Form::StatusJail,
            C::Stats => Form::Stats,
            C::FleetStatus => Form::FleetStatus,
            C::Banned => Form::Banned,
            C::BannedIds(_) => Form::BannedIds,
            C::UnbanAll => Form::UnbanAll,
            C::Unban(_) => Form::Unban,
            C::GetServer(_) => Form::GetServer,
            C::SetServer(..) => Form::SetServer,
            C::GetJail { op, .. } => match op {
                Ok(JailGet::Banned) => Form::GetBanned,
                Ok(JailGet::BannedIds(_)) => Form::GetBannedIds,
                Ok(JailGet::Banip { .. }) => Form::GetBanip,
                _ => Form::GetJail,
            },
            C::SetJail { op, .. } => match op {
                Ok(JailSet::Banip { .. }) => Form::SetBanip,
                Ok(JailSet::Unbanip { .. }) => Form::SetUnbanip,
                Ok(JailSet::Attempt { .. }) => Form::SetAttempt,
                _ => Form::SetJail,
            },
        }
    }
}

impl Form {
    /// A bulk form: its request carries up to a million ids, so the server accepts it up to
    /// its larger size limit ([`starts_bulk`]).
    pub fn is_bulk(self) -> bool {
        matches!(self, Form::SetBanip | Form::SetUnbanip)
    }

    /// This form's entry of [`FORMS`].
    pub fn spec(self) -> &'static Spec {
        FORMS
            .iter()
            .find(|s| s.form == self)
            .expect("every form has an entry (tested)")
    }
}

#[cfg(test)]
mod tests;
