//! Actions (`action.d/<name>.conf` and friends), read the way fail2ban's action reader does.
//!
//! The reference options (`iptables[port=ssh, name=x]`) become init options; `name` defaults to
//! the jail's name and `actname` (the unique action name in the jail) to the file name, suffixed
//! when `name` differs from the jail's name. The `action*` commands are interpolated and
//! tag-substituted with the jail's options and the init options; the init options themselves
//! (reference options, `[Init]` values, `name`, `actname`, conditional `opt?family=inet6` values)
//! are passed on unsubstituted as [`ActionDef::params`], as fail2ban does.

use std::path::PathBuf;

use crate::definition::DefinitionReader;
use crate::duration::parse_duration;
use crate::error::ConfigError;
use crate::store::{Loader, Vars};

/// The typed options of an action's `[Definition]`.
pub const ACTION_OPTIONS: [&str; 13] = [
    "actionstart",
    "actionstart_on_demand",
    "actionstop",
    "actionflush",
    "actionreload",
    "actioncheck",
    "actionrepair",
    "actionrepair_on_unban",
    "actionban",
    "actionprolong",
    "actionreban",
    "actionunban",
    "norestored",
];

/// Tags left for the action itself to substitute at run time.
const ESCAPED_TAGS: [&str; 5] = [
    "matches",
    "ipmatches",
    "ipjailmatches",
    "timeout",
    "bantime",
];

/// How an action is implemented.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionKind {
    /// Shell commands from an `action.d/*.conf` file.
    Command,
    /// A Python action (`action.d/<name>.py`); only its path and parameters are known.
    Python {
        /// Path of the `.py` file.
        path: String,
    },
}

/// A resolved action of a jail.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionDef {
    /// Unique name of the action within its jail (`actname`).
    pub name: String,
    /// The referenced file name (e.g. `iptables-multiport`).
    pub file: String,
    /// Command or Python action.
    pub kind: ActionKind,
    /// Files read, in order.
    pub files: Vec<PathBuf>,
    /// `actionstart` command.
    pub actionstart: Option<String>,
    /// `actionstart_on_demand`.
    pub actionstart_on_demand: Option<bool>,
    /// `actionstop` command.
    pub actionstop: Option<String>,
    /// `actionflush` command.
    pub actionflush: Option<String>,
    /// `actionreload` command.
    pub actionreload: Option<String>,
    /// `actioncheck` command.
    pub actioncheck: Option<String>,
    /// `actionrepair` command.
    pub actionrepair: Option<String>,
    /// `actionrepair_on_unban`.
    pub actionrepair_on_unban: Option<bool>,
    /// `actionban` command.
    pub actionban: Option<String>,
    /// `actionprolong` command.
    pub actionprolong: Option<String>,
    /// `actionreban` command.
    pub actionreban: Option<String>,
    /// `actionunban` command.
    pub actionunban: Option<String>,
    /// `norestored`.
    pub norestored: Option<bool>,
    /// `timeout` (seconds) when set and numeric.
    pub timeout: Option<f64>,
    /// Parameters passed to the action (init options), in order.
    pub params: Vec<(String, String)>,
}

impl ActionDef {
    /// A shell action named `name` without commands or options (fail2ban's `addaction <ACT>`
    /// creates one; its commands are set afterwards).
    pub fn empty_command(name: &str) -> ActionDef {
        ActionDef {
            name: name.to_string(),
            file: name.to_string(),
            ..empty(Vec::new())
        }
    }

    /// A parameter of [`ActionDef::params`].
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// fail2ban's boolean reading: `1`, `on`, `true`, `yes` (any case) are true; anything else false.
pub fn as_bool(v: &str) -> bool {
    matches!(v.to_lowercase().as_str(), "1" | "on" | "true" | "yes")
}

/// Reads action `name` from `config_dir/action.d` for jail `jail` with reference options `opts`
/// (no jail options), as fail2ban's action reader does.
pub fn read_action(
    config_dir: &std::path::Path,
    name: &str,
    jail: &str,
    opts: &[(String, String)],
) -> Result<ActionDef, ConfigError> {
    let loader = Loader::new(crate::source::ConfigSource::dir(config_dir));
    read_action_with(&loader, name, jail, opts, &Vars::new())
}

/// Reads action `file` for jail `jail` with reference options `opts`; `jail_opts` are the
/// jail's typed options (interpolation variables).
pub fn read_action_with(
    loader: &Loader,
    file: &str,
    jail: &str,
    opts: &[(String, String)],
    jail_opts: &Vars,
) -> Result<ActionDef, ConfigError> {
    if let Some(base) = file.strip_suffix(".py") {
        // Python actions get their options as given; `actname` names the action.
        let path = loader.source().display(&format!("action.d/{file}"));
        let mut name = base.to_string();
        let mut params = Vec::new();
        for (k, v) in opts {
            if k == "actname" {
                name = v.clone();
            } else {
                params.push((k.clone(), v.clone()));
            }
        }
        return Ok(ActionDef {
            name,
            file: file.to_string(),
            kind: ActionKind::Python { path: path.clone() },
            files: vec![PathBuf::from(path)],
            ..empty(params)
        });
    }
    let mut opts: Vec<(String, String)> = opts.to_vec();
    let get =
        |o: &[(String, String)], k: &str| o.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
    let name = match get(&opts, "name") {
        Some(n) => n,
        None => {
            opts.push(("name".into(), jail.to_string()));
            jail.to_string()
        }
    };
    let actname = match get(&opts, "actname") {
        Some(a) => a,
        None => {
            let mut a = file.to_string();
            if name != jail {
                match name.strip_prefix(jail) {
                    Some(rest) => a.push_str(rest),
                    None => {
                        a.push('-');
                        a.push_str(&name);
                    }
                }
            }
            opts.push(("actname".into(), a.clone()));
            a
        }
    };
    let mut r = DefinitionReader::read(loader, "action", "action.d", file, &opts)?;
    r.get_options(jail_opts, &ACTION_OPTIONS, false)?;
    let comb = r.combined(&ESCAPED_TAGS)?;
    let cmd = |k: &str| comb.get(k).cloned();
    let flag = |k: &str| comb.get(k).map(|v| as_bool(v));
    let params: Vec<(String, String)> = r
        .init_opts
        .iter()
        .filter(|(k, _)| !ACTION_OPTIONS.contains(&k.as_str()) && !k.starts_with("known/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let timeout = params
        .iter()
        .find(|(k, _)| k == "timeout")
        .and_then(|(_, v)| parse_duration(v).ok());
    Ok(ActionDef {
        name: actname,
        file: file.to_string(),
        kind: ActionKind::Command,
        files: r.set.files.iter().map(PathBuf::from).collect(),
        actionstart: cmd("actionstart"),
        actionstart_on_demand: flag("actionstart_on_demand"),
        actionstop: cmd("actionstop"),
        actionflush: cmd("actionflush"),
        actionreload: cmd("actionreload"),
        actioncheck: cmd("actioncheck"),
        actionrepair: cmd("actionrepair"),
        actionrepair_on_unban: flag("actionrepair_on_unban"),
        actionban: cmd("actionban"),
        actionprolong: cmd("actionprolong"),
        actionreban: cmd("actionreban"),
        actionunban: cmd("actionunban"),
        norestored: flag("norestored"),
        timeout,
        params,
    })
}

fn empty(params: Vec<(String, String)>) -> ActionDef {
    ActionDef {
        name: String::new(),
        file: String::new(),
        kind: ActionKind::Command,
        files: Vec::new(),
        actionstart: None,
        actionstart_on_demand: None,
        actionstop: None,
        actionflush: None,
        actionreload: None,
        actioncheck: None,
        actionrepair: None,
        actionrepair_on_unban: None,
        actionban: None,
        actionprolong: None,
        actionreban: None,
        actionunban: None,
        norestored: None,
        timeout: None,
        params,
    }
}
