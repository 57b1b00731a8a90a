//! The jail settings of fail2ban 1.0.2's protocol (`get <JAIL> X`, `set <JAIL> X ...`), one
//! entry per setting: which verbs take it. The server checks a command's setting against this
//! table before it looks the jail up (fail2ban's order: an unknown setting is "Invalid command"
//! even for an unknown jail), and [`names`] lists them for the help text's consistency test.

/// One jail setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The word after the jail name (`bantime.` stands for every `bantime.<OPT>`).
    pub name: &'static str,
    /// `get <JAIL> name ...` exists.
    pub get: bool,
    /// `set <JAIL> name ...` exists.
    pub set: bool,
}

const fn both(name: &'static str) -> Setting {
    Setting {
        name,
        get: true,
        set: true,
    }
}

const fn get_only(name: &'static str) -> Setting {
    Setting {
        name,
        get: true,
        set: false,
    }
}

const fn set_only(name: &'static str) -> Setting {
    Setting {
        name,
        get: false,
        set: true,
    }
}

/// Every jail setting of fail2ban 1.0.2's protocol.
pub const JAIL_SETTINGS: &[Setting] = &[
    set_only("idle"),
    both("ignoreself"),
    get_only("ignoreip"),
    set_only("addignoreip"),
    set_only("delignoreip"),
    both("ignorecommand"),
    both("ignorecache"),
    get_only("logpath"),
    set_only("addlogpath"),
    set_only("dellogpath"),
    both("logencoding"),
    get_only("journalmatch"),
    set_only("addjournalmatch"),
    set_only("deljournalmatch"),
    both("prefregex"),
    get_only("failregex"),
    set_only("addfailregex"),
    set_only("delfailregex"),
    get_only("ignoreregex"),
    set_only("addignoreregex"),
    set_only("delignoreregex"),
    both("usedns"),
    both("findtime"),
    both("datepattern"),
    both("logtimezone"),
    both("maxmatches"),
    both("maxretry"),
    both("maxlines"),
    both("bantime"),
    both("bantime."),
    set_only("attempt"),
    set_only("banip"),
    set_only("unbanip"),
    get_only("banned"),
    get_only("banip"),
    get_only("actions"),
    set_only("addaction"),
    set_only("delaction"),
    both("action"),
    get_only("actionproperties"),
    get_only("actionmethods"),
];

/// The entries for `name` (`banip` has one for `get` and one for `set`).
fn entries(name: &str) -> impl Iterator<Item = &'static Setting> + '_ {
    JAIL_SETTINGS
        .iter()
        .filter(move |s| s.name == name || (s.name.ends_with('.') && name.starts_with(s.name)))
}

/// `get <JAIL> name` is a command of the protocol.
pub fn jail_get_known(name: &str) -> bool {
    entries(name).any(|s| s.get)
}

/// `set <JAIL> name` is a command of the protocol.
pub fn jail_set_known(name: &str) -> bool {
    entries(name).any(|s| s.set)
}

/// The setting names, in table order.
pub fn names() -> impl Iterator<Item = &'static str> {
    JAIL_SETTINGS.iter().map(|s| s.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert!(jail_get_known("maxretry") && jail_set_known("maxretry"));
        assert!(jail_get_known("bantime.increment") && jail_set_known("bantime.maxtime"));
        assert!(jail_get_known("banip") && !jail_get_known("addfailregex"));
        assert!(!jail_get_known("nosuchsetting") && !jail_set_known("nosuchsetting"));
    }

    #[test]
    fn the_help_text_names_every_setting() {
        let help = super::super::help::usage("fail2ban-client");
        for n in names() {
            let word = n.trim_end_matches('.');
            assert!(help.contains(word), "help does not mention {word}");
        }
    }
}
