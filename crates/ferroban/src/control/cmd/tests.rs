use super::*;

fn p<'a>(words: &'a [&'a str]) -> Result<Command<'a>, String> {
    parse(words)
}

/// Fails to compile when a form is added without being listed in [`Form::ALL`].
fn listed(f: Form) -> bool {
    match f {
        Form::Start
        | Form::Restart
        | Form::Stop
        | Form::ReloadAll
        | Form::ReloadJail
        | Form::RestartJail
        | Form::Status
        | Form::StatusAll
        | Form::Stats
        | Form::Ping
        | Form::Version
        | Form::FlushLogs
        | Form::Echo
        | Form::ServerStatus
        | Form::Top
        | Form::FleetStatus
        | Form::Help
        | Form::Banned
        | Form::BannedIds
        | Form::Unban
        | Form::UnbanAll
        | Form::SetBanip
        | Form::SetUnbanip
        | Form::SetAttempt
        | Form::GetBanned
        | Form::GetBannedIds
        | Form::GetBanip
        | Form::StatusJail
        | Form::StartJail
        | Form::StopJail
        | Form::StopAll
        | Form::Add
        | Form::GetJail
        | Form::SetJail
        | Form::GetServer
        | Form::SetServer => Form::ALL.contains(&f),
    }
}

#[test]
fn every_form_has_one_entry() {
    for f in Form::ALL {
        assert!(listed(f));
        let n = FORMS.iter().filter(|s| s.form == f).count();
        assert_eq!(n, 1, "{f:?} has {n} entries in FORMS");
    }
    assert_eq!(FORMS.len(), Form::ALL.len());
}

#[test]
fn every_server_form_parses_to_itself_and_client_forms_do_not_parse() {
    for s in FORMS {
        let r = p(s.example);
        if s.server {
            let c = r.unwrap_or_else(|e| panic!("{:?}: {e}", s.example));
            assert_eq!(c.form(), s.form, "{:?}", s.example);
            match &c {
                Command::GetJail { op, .. } => assert!(op.is_ok(), "{:?}", s.example),
                Command::SetJail { op, .. } => assert!(op.is_ok(), "{:?}", s.example),
                _ => {}
            }
            assert_eq!(client_action(s.example).form(), None, "{:?}", s.example);
        } else {
            // The client runs these itself: the server does not know them.
            assert_eq!(r.unwrap_err(), UNKNOWN, "{:?}", s.example);
            assert_eq!(
                client_action(s.example).form(),
                Some(s.form),
                "{:?}",
                s.example
            );
        }
    }
}

/// `get|set sshd SETTING ARGS...` for a setting of the table.
fn jail_words(verb: &'static str, s: &Setting, args: &[&'static str]) -> Vec<&'static str> {
    let name = if s.name.ends_with('.') {
        "bantime.increment"
    } else {
        s.name
    };
    let mut w = vec![verb, "sshd", name];
    w.extend_from_slice(args);
    w
}

#[test]
fn every_jail_setting_parses_for_its_verbs_only() {
    for s in JAIL_SETTINGS {
        for (verb, args, other) in [("get", s.get, s.set), ("set", s.set, s.get)] {
            match args {
                Some(args) => {
                    let words = jail_words(verb, s, args);
                    match p(&words) {
                        Ok(Command::GetJail {
                            jail: "sshd",
                            op: Ok(_),
                        })
                        | Ok(Command::SetJail {
                            jail: "sshd",
                            op: Ok(_),
                        }) => {}
                        other => panic!("{words:?}: {other:?}"),
                    }
                }
                // `banip` is in the table twice, once per verb.
                None if JAIL_SETTINGS.iter().any(|o| {
                    o.name == s.name && (if verb == "get" { o.get } else { o.set }).is_some()
                }) => {}
                None => {
                    let args = other.expect("a setting has a verb");
                    let words = jail_words(verb, s, args);
                    let want = if verb == "get" {
                        NO_GET.to_string()
                    } else {
                        no_set(words[2])
                    };
                    assert_eq!(p(&words).unwrap_err(), want, "{words:?}");
                }
            }
        }
    }
}

/// Fails to compile when a server setting is added without being listed in
/// [`ServerSetting::ALL`].
fn listed_setting(s: ServerSetting) -> bool {
    match s {
        ServerSetting::Loglevel
        | ServerSetting::Logtarget
        | ServerSetting::Syslogsocket
        | ServerSetting::Dbfile
        | ServerSetting::Dbmaxmatches
        | ServerSetting::Dbpurgeage
        | ServerSetting::Thread
        | ServerSetting::Allowipv6 => ServerSetting::ALL.contains(&s),
    }
}

#[test]
fn server_settings_parse_for_their_verbs() {
    for s in ServerSetting::ALL {
        assert!(listed_setting(s));
        assert_eq!(
            SERVER_SETTINGS.iter().filter(|e| e.setting == s).count(),
            1,
            "{s:?}"
        );
    }
    assert_eq!(SERVER_SETTINGS.len(), ServerSetting::ALL.len());
    for s in SERVER_SETTINGS {
        assert_eq!(ServerSetting::from_name(s.name), Some(s));
        assert_eq!(s.setting.name(), s.name);
        let (get_words, set_words) = (["get", s.name], ["set", s.name, "x"]);
        let (get, set) = (p(&get_words), p(&set_words));
        if s.get {
            assert_eq!(get, Ok(Command::GetServer(s.setting)));
        } else {
            assert_eq!(get.unwrap_err(), INVALID);
        }
        if s.set {
            assert_eq!(set, Ok(Command::SetServer(s.setting, "x")));
        } else {
            assert_eq!(set.unwrap_err(), no_set("x"));
        }
    }
}

#[test]
fn the_help_names_every_form_and_setting() {
    let help = super::super::help::usage("fail2ban-client");
    for s in FORMS {
        assert!(help.contains(s.usage), "help does not show {:?}", s.usage);
    }
    for n in names() {
        let groups = JAIL_SETTINGS_HELP
            .iter()
            .filter(|(names, ..)| names.contains(&n))
            .count();
        assert_eq!(groups, 1, "jail setting {n} is on {groups} help lines");
        assert!(help.contains(n.trim_end_matches('.')), "{n}");
    }
    for (named, usage, _) in JAIL_SETTINGS_HELP {
        assert!(help.contains(usage));
        for n in *named {
            assert!(JAIL_SETTINGS.iter().any(|s| s.name == *n), "{n}");
        }
    }
    for s in SERVER_SETTINGS {
        let groups = SERVER_SETTINGS_HELP
            .iter()
            .filter(|(names, ..)| names.contains(&s.name))
            .count();
        assert_eq!(
            groups, 1,
            "server setting {} is on {groups} help lines",
            s.name
        );
    }
    for (named, usage, _) in SERVER_SETTINGS_HELP {
        assert!(help.contains(usage));
        for n in *named {
            assert!(ServerSetting::from_name(n).is_some(), "{n}");
        }
    }
}

#[test]
fn lookups() {
    assert!(jail_get_known("maxretry") && jail_set_known("maxretry"));
    assert!(jail_get_known("bantime.increment") && jail_set_known("bantime.maxtime"));
    assert!(jail_get_known("banip") && !jail_get_known("addfailregex"));
    assert!(!jail_get_known("nosuchsetting") && !jail_set_known("nosuchsetting"));
}

#[test]
fn errors_as_fail2ban_words_them() {
    let err = |w: &[&str]| p(w).unwrap_err();
    assert_eq!(err(&[]), "Invalid command: empty");
    assert_eq!(err(&["nosuch", "a"]), UNKNOWN);
    assert_eq!(err(&["version", "x"]), UNKNOWN);
    assert_eq!(err(&["stop", "a", "b"]), UNKNOWN);
    assert_eq!(err(&["unban"]), UNKNOWN);
    assert_eq!(err(&["top", "1", "2"]), UNKNOWN);
    assert_eq!(
        err(&["top", "abc"]),
        "top \"abc\": expected an event number"
    );
    assert_eq!(
        err(&["status", "a", "b", "c"]),
        "Invalid command (no status)"
    );
    assert_eq!(
        err(&["status", "--all", "a", "b"]),
        "Invalid command (no status)"
    );
    assert_eq!(err(&["add", "--all", "polling"]), "Reserved name '--all'");
    assert_eq!(err(&["add", "a", "b", "c"]), UNKNOWN);
    assert_eq!(
        err(&["reload", "--bogus", "web"]),
        "Invalid reload options: [\"--bogus\", \"web\"]"
    );
    assert_eq!(err(&["get"]), INVALID);
    assert_eq!(err(&["get", "web"]), INVALID);
    assert_eq!(err(&["get", "allowipv6"]), INVALID);
    assert_eq!(err(&["get", "loglevel", "extra"]), NO_GET);
    assert_eq!(err(&["get", "nosuch", "nosuchsetting"]), NO_GET);
    assert_eq!(err(&["set"]), INVALID);
    assert_eq!(err(&["set", "web"]), INVALID);
    assert_eq!(err(&["set", "logtarget"]), INVALID);
    assert_eq!(err(&["set", "thread", "1"]), no_set("1"));
    assert_eq!(err(&["set", "loglevel", "a", "b"]), no_set("a"));
    assert_eq!(
        err(&["set", "web", "nosuchsetting", "1"]),
        "Invalid command 'nosuchsetting' (no set action or not yet implemented)"
    );
}

#[test]
fn word_errors_come_after_the_jail() {
    // Known setting, wrong words: the jail is looked up first, so the error is kept for later.
    let op = |w: &'static [&'static str]| match p(w) {
        Ok(Command::GetJail { op, .. }) => op.map(|_| ()),
        Ok(Command::SetJail { op, .. }) => op.map(|_| ()),
        other => panic!("{w:?}: {other:?}"),
    };
    assert_eq!(op(&["get", "nosuch", "maxretry", "x"]), Err(NO_GET.into()));
    assert_eq!(op(&["get", "web", "bantime.nosuch"]), Err(NO_GET.into()));
    assert_eq!(op(&["set", "web", "banip"]), Err(no_set("banip")));
    assert_eq!(
        op(&["set", "web", "maxretry", "1", "2"]),
        Err(no_set("maxretry"))
    );
    assert_eq!(
        op(&["set", "web", "maxretry", "x"]),
        Err("invalid literal for int() with base 10: 'x'".into())
    );
    assert_eq!(
        op(&["set", "web", "bantime.nosuch", "3"]),
        Err("unknown option \"nosuch\"".into())
    );
    assert_eq!(
        op(&["set", "web", "idle", "maybe"]),
        Err("Invalid idle option, must be 'on' or 'off'".into())
    );
    assert_eq!(
        op(&["set", "web", "addlogpath", "/x", "middle"]),
        Err("File option must be 'head' or 'tail'".into())
    );
    assert_eq!(
        op(&["set", "web", "addlogpath", "/x", "a", "b"]),
        Err("Only one file can be added at a time".into())
    );
    assert_eq!(
        op(&["set", "web", "logencoding", "bogus"]),
        Err("unknown encoding: bogus".into())
    );
    assert_eq!(op(&["set", "web", "action"]), Err(no_set("action")));
}

#[test]
fn typed_values() {
    assert_eq!(
        p(&["set", "web", "banip", "--force", "10.0.0.0/4"]),
        Ok(Command::SetJail {
            jail: "web",
            op: Ok(JailSet::Banip {
                force: true,
                ids: &["10.0.0.0/4"]
            })
        })
    );
    assert_eq!(
        p(&["get", "web", "banip", ",", "--with-time"]),
        Ok(Command::GetJail {
            jail: "web",
            op: Ok(JailGet::Banip {
                sep: Some(","),
                with_time: true
            })
        })
    );
    assert_eq!(
        p(&["set", "web", "usedns", "bogus"]),
        Ok(Command::SetJail {
            jail: "web",
            op: Ok(JailSet::Usedns("no"))
        })
    );
    assert_eq!(
        p(&["reload", "--restart", "--all"]),
        Ok(Command::Reload {
            jails: vec![],
            opts: ReloadOptions {
                restart: true,
                ..Default::default()
            }
        })
    );
    assert_eq!(p(&["ping", "5"]), Ok(Command::Ping));
    assert_eq!(p(&["statistics"]), Ok(Command::Stats));
    assert_eq!(
        p(&["add", "j"]),
        Ok(Command::Add {
            jail: "j",
            backend: "auto"
        })
    );
    // A setting applied by reloading the jail names a jail even after a server setting's word.
    assert_eq!(
        p(&["set", "dbfile", "action"]),
        Ok(Command::SetJail {
            jail: "dbfile",
            op: Err(no_set("action"))
        })
    );
    assert_eq!(
        p(&["set", "dbfile", "/x"]),
        Ok(Command::SetServer(ServerSetting::Dbfile, "/x"))
    );
}

/// A value of the shape the server answers for `form`.
fn sample(form: Form) -> serde_json::Value {
    use serde_json::json;
    let jail = crate::control::testutil::jail_status();
    match form {
        Form::Status => json!([["Number of jail", 1], ["Jail list", "sshd"]]),
        Form::StatusAll => {
            json!([["Number of jail", 1], ["Jail list", "sshd"], { "sshd": jail }])
        }
        Form::StatusJail => jail,
        Form::Stats => json!({"sshd": ["polling", [0, 5], [1, 1]]}),
        Form::Banned => json!([{"sshd": ["192.0.2.1"]}]),
        Form::BannedIds => json!([["sshd"], []]),
        Form::GetBannedIds => json!([1, 0]),
        Form::GetBanned => json!(["192.0.2.1"]),
        Form::GetBanip => json!(["192.0.2.1 \t2026-11-25 14:08:51 + 600 = 2026-11-25 14:18:51"]),
        Form::Echo => json!(["a", "b"]),
        Form::Top | Form::FleetStatus => json!({}),
        Form::Stop | Form::StopJail | Form::StopAll | Form::StartJail => serde_json::Value::Null,
        Form::Unban | Form::UnbanAll | Form::SetBanip | Form::SetUnbanip | Form::SetAttempt => {
            json!(1)
        }
        Form::GetJail | Form::SetJail => json!(3),
        Form::GetServer | Form::SetServer => json!("INFO"),
        Form::Ping => json!("pong"),
        Form::Version => json!("1.0.2"),
        Form::ReloadAll | Form::ReloadJail => json!("OK"),
        Form::FlushLogs => json!("rolled over"),
        Form::ServerStatus => json!("Server ready"),
        Form::Add => json!("new"),
        // The client runs these itself.
        Form::Start | Form::Restart | Form::RestartJail | Form::Help => serde_json::Value::Null,
    }
}

fn owned(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// `--json` falls back to `{"command":[...],"result":...}` only for words it does not know.
fn has_own_json(words: &[&str], value: &serde_json::Value) -> bool {
    let line = super::super::json_output::render(&owned(words), value);
    !line.starts_with("{\"command\":")
}

#[test]
fn every_server_form_and_setting_has_a_json_rendering_and_beautifies() {
    for s in FORMS.iter().filter(|s| s.server) {
        let value = sample(s.form);
        assert!(has_own_json(s.example, &value), "{:?}", s.example);
        let shown = super::super::beautify::render(&owned(s.example), &value);
        assert!(!shown.mismatch, "{:?}: {}", s.example, shown.text);
    }
    for s in JAIL_SETTINGS {
        for (verb, args) in [("get", s.get), ("set", s.set)] {
            let Some(args) = args else { continue };
            let words = jail_words(verb, s, args);
            // `get J banned IP` answers one flag, the lists and values below are of any shape.
            let value = if s.name == "banned" {
                serde_json::json!(1)
            } else {
                serde_json::json!([])
            };
            assert!(has_own_json(&words, &value), "{words:?}");
        }
    }
    assert!(!has_own_json(&["nosuch", "a"], &serde_json::json!(1)));
}

#[test]
fn the_beautifier_dresses_each_setting_as_its_entry_says() {
    use serde_json::json;
    let beautify =
        |w: &[&str], v: &serde_json::Value| super::super::beautify::beautify(&owned(w), v);
    for s in JAIL_SETTINGS {
        for (verb, args) in [("get", s.get), ("set", s.set)] {
            let Some(args) = args else { continue };
            let words = jail_words(verb, s, args);
            // Python's str() of an empty list is `[]`; every other text says something.
            let plain = beautify(&words, &json!([])) == "[]";
            assert_eq!(plain, s.text == Text::Plain, "{words:?}");
        }
    }
    for s in SERVER_SETTINGS {
        let words: Vec<&str> = if s.get {
            vec!["get", s.name]
        } else {
            vec!["set", s.name, "x"]
        };
        let plain = beautify(&words, &json!("x")) == "x";
        assert_eq!(plain, s.text == Text::Plain, "{words:?}");
    }
}

#[test]
fn what_the_client_completes_before_sending() {
    assert_eq!(client_action(&["reload", "sshd"]), ClientAction::Reload);
    assert_eq!(client_action(&["ping"]), ClientAction::Send);
    assert_eq!(client_action(&["ping", "0.5"]), ClientAction::Ping(Ok(0.5)));
    assert_eq!(
        client_action(&["ping", "abc"]),
        ClientAction::Ping(Err("could not convert string to float: 'abc'".into()))
    );
    assert_eq!(
        client_action(&["ping", "-1"]),
        ClientAction::Ping(Err("could not convert string to float: '-1'".into()))
    );
    assert_eq!(
        client_action(&["set", "sshd", "banip", "--force", "--file", "-"]),
        ClientAction::BulkFile {
            jail: "sshd",
            op: "banip",
            rest: &["--force", "--file", "-"]
        }
    );
    assert_eq!(
        client_action(&["set", "sshd", "banip", "192.0.2.1"]),
        ClientAction::Send
    );
}

#[test]
fn the_bulk_recognisers_words_are_the_bulk_forms() {
    // Each server form's example: its first words start a bulk request exactly when the form is
    // bulk.
    let mut bulk = 0;
    for s in FORMS.iter().filter(|s| s.server) {
        let Some(prefix) = s.example.get(..BULK_PREFIX_WORDS) else {
            assert!(!s.form.is_bulk(), "{:?}", s.form);
            continue;
        };
        assert_eq!(starts_bulk(prefix), s.form.is_bulk(), "{:?}", s.example);
        bulk += usize::from(s.form.is_bulk());
    }
    assert_eq!(bulk, 2);
    // Every other `set <JAIL>` setting, and the `get` of `banip`, is not bulk.
    for s in JAIL_SETTINGS {
        for verb in ["get", "set"] {
            let expect = verb == "set" && matches!(s.name, "banip" | "unbanip");
            assert_eq!(
                starts_bulk(&[verb, "sshd", s.name]),
                expect,
                "{verb} {}",
                s.name
            );
        }
    }
    // A jail named like a server setting is still a jail there.
    assert!(starts_bulk(&["set", "loglevel", "banip"]));
    assert!(!starts_bulk(&["set", "sshd"]));
    assert!(!starts_bulk(&["banip", "sshd", "set"]));
}

#[test]
fn reload_requests_parse_as_reload() {
    let opts = |restart, unban, if_exists| ReloadOptions {
        restart,
        unban,
        if_exists,
    };
    for (o, target, jails, want) in [
        (vec![], "--all", vec![], opts(false, false, false)),
        (vec!["--unban"], "--all", vec![], opts(false, true, false)),
        (
            vec!["--restart", "--if-exists"],
            "sshd",
            vec!["sshd"],
            opts(true, false, true),
        ),
    ] {
        let argv = reload_request(&o, target);
        let words: Vec<&str> = argv.iter().map(String::as_str).collect();
        assert_eq!(
            parse(&words),
            Ok(Command::Reload { jails, opts: want }),
            "{argv:?}"
        );
    }
}
