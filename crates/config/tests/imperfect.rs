//! fail2ban's own "imperfect" test configuration (tests/config of the reference tree): broken
//! jails are reported and skipped, the others load with the values fail2ban's test-suite expects.

use std::path::PathBuf;

use ferroban_config::{ConfigSource, JailsOptions, Loader, read_jails_with};

fn imperfect_dir() -> PathBuf {
    let root = std::env::var("FERROBAN_F2B_ROOT").unwrap_or_else(|_| "/tmp/f2b/root".into());
    let dir = PathBuf::from(&root).join("usr/lib/python3/dist-packages/fail2ban/tests/config");
    assert!(
        dir.join("jail.conf").is_file(),
        "fail2ban reference tree not found at {root} (set FERROBAN_F2B_ROOT)"
    );
    dir
}

fn o(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn enabled_jails_load_and_broken_ones_are_reported() {
    let l = Loader::new(ConfigSource::dir(imperfect_dir()));
    let cfg = read_jails_with(&l, &JailsOptions::default()).unwrap();
    let names: Vec<&str> = cfg.jails.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "emptyaction",
            "test-known-interp",
            "missinglogfiles",
            "brokenaction",
            "parse_to_end_of_jail.conf",
            "tz_correct"
        ]
    );
    let errs: Vec<String> = cfg.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errs.len(), 4, "{errs:#?}");
    assert!(errs[0].contains("'brokenactiondef'") && errs[0].contains("joho[foo"));
    assert!(errs[1].contains("'brokenfilterdef'") && errs[1].contains("flt[test"));
    assert!(
        errs[2].contains("'missingaction'")
            && errs[2].contains("action.d/noactionfileforthisaction.conf")
    );
    assert!(
        errs[3].contains("'missingbitsjail'")
            && errs[3].contains("filter.d/catchallthebadies.local")
    );

    let j = |n: &str| cfg.jails.iter().find(|j| j.name == n).unwrap();
    assert!(j("emptyaction").filter.is_none() && j("emptyaction").actions.is_empty());
    assert_eq!(
        j("test-known-interp")
            .filter_def
            .as_ref()
            .unwrap()
            .failregex,
        vec![
            "failure test 1 (filter.d/test.conf) <HOST>",
            "failure test 2 (filter.d/test.local) <HOST>",
            "failure test 3 (jail.local) <HOST>"
        ]
    );
    assert_eq!(
        j("missinglogfiles").logpath[0].path,
        "/weapons/of/mass/destruction"
    );
    assert_eq!(j("tz_correct").logtimezone.as_deref(), Some("UTC+0200"));
    let ba = &j("brokenaction").actions[0];
    assert_eq!(ba.actionban.as_deref(), Some("hit with big stick <ip>"));
    assert_eq!(
        ba.params,
        o(&[("name", "brokenaction"), ("actname", "brokenaction")])
    );
}

#[test]
fn forced_jails_logtype_and_action_lists() {
    let l = Loader::new(ConfigSource::dir(imperfect_dir()));
    let opts = JailsOptions {
        force_enable: true,
        ..Default::default()
    };
    let cfg = read_jails_with(&l, &opts).unwrap();
    let j = |n: &str| cfg.jails.iter().find(|j| j.name == n).unwrap();
    for (jail, pref) in [
        ("checklogtype_jrnl", "JRNL"),
        ("checklogtype_file", "FILE"),
        ("checklogtype_test", "TEST"),
        ("checklogtype_init", "INIT"),
    ] {
        assert_eq!(
            j(jail).filter_def.as_ref().unwrap().failregex,
            vec![format!("^{pref} failure from <HOST>$")],
            "{jail}"
        );
    }
    let ml = j("multi-log");
    let names: Vec<&str> = ml.actions.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, vec!["ban", "log", "test"]);
    assert_eq!(
        ml.actions[1].param("logpath"),
        Some("a.log\nb.log\nc.log\nd.log")
    );
    assert_eq!(ml.logpath.len(), 3);
    assert!(j("special").ignoreip.is_empty());
    // Its filter includes common.conf, absent from this tree: fail2ban fails on it too.
    let e = cfg
        .errors
        .iter()
        .find(|e| e.jail == "sshd-override-flt-opts")
        .unwrap()
        .to_string();
    assert!(
        e.contains("__prefix_line") && e.contains("zzz-sshd-obsolete-multiline.conf:"),
        "{e}"
    );
}
