//! Differential tests against fail2ban's own readers (run with python3 at test time).
//!
//! Needs the fail2ban 1.0.2 reference tree at `$FERROBAN_F2B_ROOT` (default `/tmp/f2b/root`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ferroban_config::{ConfigSource, JailsOptions, Loader, read_filter, read_jails_with};

fn f2b_root() -> PathBuf {
    let root = PathBuf::from(
        std::env::var("FERROBAN_F2B_ROOT").unwrap_or_else(|_| "/tmp/f2b/root".to_string()),
    );
    let pkg = root.join("usr/lib/python3/dist-packages/fail2ban");
    assert!(
        pkg.is_dir() && root.join("etc/fail2ban/jail.conf").is_file(),
        "fail2ban reference tree not found at {} (set FERROBAN_F2B_ROOT to the extracted fail2ban 1.0.2 \
         package root containing etc/fail2ban and usr/lib/python3/dist-packages/fail2ban)",
        root.display()
    );
    root
}

fn unesc(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some(o) => out.push(o),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

type Record = Vec<(String, Vec<String>)>;

fn run_python(mode: &str, arg: &Path, extra: &[&str]) -> Vec<Record> {
    let root = f2b_root();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/f2b_dump.py");
    let output = Command::new("python3")
        .arg(&script)
        .arg(mode)
        .arg(arg)
        .args(extra)
        .env("PYTHONPATH", root.join("usr/lib/python3/dist-packages"))
        .output()
        .expect("python3 is needed for the differential tests");
    assert!(
        output.status.success(),
        "python helper failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("utf-8 output");
    let mut records = Vec::new();
    let mut cur: Option<Record> = None;
    for line in text.lines() {
        match line {
            "BEGIN" => cur = Some(Vec::new()),
            "END" => records.push(cur.take().expect("END without BEGIN")),
            l => {
                let mut parts = l.split('\t');
                let key = parts.next().unwrap_or_default().to_string();
                let vals = parts.map(unesc).collect();
                if let Some(c) = cur.as_mut() {
                    c.push((key, vals));
                }
            }
        }
    }
    records
}

fn field<'a>(r: &'a Record, key: &str) -> Option<&'a str> {
    r.iter().find(|(k, _)| k == key).map(|(_, v)| v[0].as_str())
}

fn fields<'a>(r: &'a Record, key: &str) -> Vec<&'a str> {
    r.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v[0].as_str())
        .collect()
}

#[test]
fn filters_match_fail2ban() {
    let root = f2b_root();
    let records = run_python("filters", &root, &[]);
    assert!(records.len() > 150, "too few cases: {}", records.len());
    let mut ok = 0;
    let mut both_err = 0;
    let mut failures = Vec::new();
    for r in &records {
        let basedir = field(r, "basedir").unwrap();
        let name = field(r, "name").unwrap();
        let opts: Vec<(String, String)> = r
            .iter()
            .filter(|(k, _)| k == "opt")
            .map(|(_, v)| (v[0].clone(), v[1].clone()))
            .collect();
        let label = format!("{name} {opts:?} ({basedir})");
        let ours = read_filter(Path::new(basedir), name, &opts);
        match (field(r, "error"), ours) {
            (Some(_), Err(_)) => both_err += 1,
            (Some(e), Ok(_)) => failures.push(format!("{label}: python error {e}, ours ok")),
            (None, Err(e)) => failures.push(format!("{label}: ours error {e}")),
            (None, Ok(f)) => {
                let mut diffs = Vec::new();
                let cmp = |what: &str, a: Option<&str>, b: Option<&str>, d: &mut Vec<String>| {
                    if a != b {
                        d.push(format!("{what}: python {a:?} ours {b:?}"));
                    }
                };
                cmp(
                    "prefregex",
                    field(r, "prefregex"),
                    f.prefregex.as_deref(),
                    &mut diffs,
                );
                cmp(
                    "datepattern",
                    field(r, "datepattern"),
                    f.datepattern.as_deref(),
                    &mut diffs,
                );
                cmp(
                    "journalmatch",
                    field(r, "journalmatch"),
                    f.journalmatch.as_deref(),
                    &mut diffs,
                );
                let ml = f.maxlines.map(|m| m.to_string());
                cmp("maxlines", field(r, "maxlines"), ml.as_deref(), &mut diffs);
                if fields(r, "failregex") != f.failregex {
                    diffs.push(format!(
                        "failregex: python {:?} ours {:?}",
                        fields(r, "failregex"),
                        f.failregex
                    ));
                }
                if fields(r, "ignoreregex") != f.ignoreregex {
                    diffs.push(format!(
                        "ignoreregex: python {:?} ours {:?}",
                        fields(r, "ignoreregex"),
                        f.ignoreregex
                    ));
                }
                if diffs.is_empty() {
                    ok += 1;
                } else {
                    failures.push(format!("{label}: {}", diffs.join("; ")));
                }
            }
        }
    }
    eprintln!(
        "filter differential: {} cases, {ok} identical, {both_err} rejected by both, {} mismatches",
        records.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
}

fn action_opts(a: &ferroban_config::ActionDef) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = a.params.iter().cloned().collect();
    for (k, v) in [
        ("actionstart", &a.actionstart),
        ("actionstop", &a.actionstop),
        ("actionflush", &a.actionflush),
        ("actionreload", &a.actionreload),
        ("actioncheck", &a.actioncheck),
        ("actionrepair", &a.actionrepair),
        ("actionban", &a.actionban),
        ("actionprolong", &a.actionprolong),
        ("actionreban", &a.actionreban),
        ("actionunban", &a.actionunban),
    ] {
        if let Some(v) = v {
            m.insert(k.to_string(), v.clone());
        }
    }
    for (k, v) in [
        ("actionstart_on_demand", a.actionstart_on_demand),
        ("actionrepair_on_unban", a.actionrepair_on_unban),
        ("norestored", a.norestored),
    ] {
        if let Some(v) = v {
            m.insert(k.to_string(), if v { "True" } else { "False" }.into());
        }
    }
    m
}

#[test]
fn actions_match_fail2ban() {
    let root = f2b_root();
    let etc = root.join("etc/fail2ban");
    let records = run_python("actions", &etc, &[]);
    assert!(records.len() > 100, "too few cases: {}", records.len());
    let mut ok = 0;
    let mut failures = Vec::new();
    for r in &records {
        let name = field(r, "name").unwrap();
        let opts: Vec<(String, String)> = r
            .iter()
            .filter(|(k, _)| k == "opt")
            .map(|(_, v)| (v[0].clone(), v[1].clone()))
            .collect();
        let ours = ferroban_config::read_action(&etc, name, "TEST", &opts);
        match (field(r, "error"), ours) {
            (Some(_), Err(_)) => ok += 1,
            (Some(e), Ok(_)) => failures.push(format!("{name}: python error {e}, ours ok")),
            (None, Err(e)) => failures.push(format!("{name} {opts:?}: ours error {e}")),
            (None, Ok(a)) => {
                let py: BTreeMap<String, String> = r
                    .iter()
                    .filter(|(k, _)| k == "aopt")
                    .map(|(_, v)| (v[0].clone(), v[1].clone()))
                    .collect();
                let ours = action_opts(&a);
                if field(r, "action") != Some(a.name.as_str()) || py != ours {
                    let diff: Vec<String> = py
                        .keys()
                        .chain(ours.keys())
                        .filter(|k| py.get(*k) != ours.get(*k))
                        .map(|k| format!("{k}: python {:?} ours {:?}", py.get(k), ours.get(k)))
                        .collect();
                    failures.push(format!("{name} {opts:?}: {} / {}", a.name, diff.join("; ")));
                } else {
                    ok += 1;
                }
            }
        }
    }
    eprintln!(
        "action differential: {} cases, {ok} identical, {} mismatches",
        records.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
}

const JAIL_LOCAL: &str = r#"
[DEFAULT]
banaction = nftables-multiport
banaction_allports = nftables-allports
bantime.increment = true
bantime.factor = 2
bantime.maxtime = 5w
ignoreip = 127.0.0.1/8 ::1 192.0.2.0/24
destemail = admin@example.org

[sshd]
enabled = true
mode = aggressive
port = %(known/port)s,2222
action = %(action_mwl)s

[nginx-http-auth]
enabled = true
action = %(action_)s
         %(action_abuseipdb)s[abuseipdb_apikey="k", abuseipdb_category="18"]

[recidive]
enabled = true

[postfix]
enabled = true
mode = ddos
backend = systemd

[asterisk]
enabled = true

[named-refused]
enabled = true

[sshd-custom]
enabled = true
filter = sshd[mode=ddos, logtype=journal]
logpath = /var/log/custom.log tail
          /var/log/custom-*.log
bantime = 1h
findtime = 30m
maxretry = 2
action = iptables-ipset-proto6[name=custom, bantime="%(bantime)s"]
         dummy
         smtp.py[host="localhost:25", dest="root"]
"#;

/// The reference tree with a jail.local and a jail.d/*.local (symlinks to the reference files).
fn tree_with_local(etc: &Path) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferroban-config-diff-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("jail.d")).unwrap();
    for e in std::fs::read_dir(etc).unwrap().flatten() {
        if e.file_name() != "jail.d" {
            std::os::unix::fs::symlink(e.path(), dir.join(e.file_name())).unwrap();
        }
    }
    for e in std::fs::read_dir(etc.join("jail.d")).unwrap().flatten() {
        std::os::unix::fs::symlink(e.path(), dir.join("jail.d").join(e.file_name())).unwrap();
    }
    std::fs::write(dir.join("jail.local"), JAIL_LOCAL).unwrap();
    std::fs::write(
        dir.join("jail.d/zz-test.local"),
        "[nginx-http-auth]\nmaxretry = 1\n[recidive]\nbantime = %(known/bantime)s\n",
    )
    .unwrap();
    dir
}

#[test]
fn jails_match_fail2ban() {
    let root = f2b_root();
    let etc = root.join("etc/fail2ban");
    compare_jails(&etc, true, 80);
}

#[test]
fn jails_with_local_overrides_match_fail2ban() {
    let root = f2b_root();
    let dir = tree_with_local(&root.join("etc/fail2ban"));
    compare_jails(&dir, false, 7);
    let _ = std::fs::remove_dir_all(&dir);
}

fn compare_jails(etc: &Path, force: bool, min_jails: usize) {
    let records = run_python("jails", etc, &[if force { "force" } else { "noforce" }]);
    let version = field(&records[0], "version").unwrap().to_string();
    let loader = Loader::new(ConfigSource::dir(etc));
    let opts = JailsOptions {
        force_enable: force,
        version,
        confpath: None,
    };
    let ours = read_jails_with(&loader, &opts).expect("jail.conf reads");
    let by_name: BTreeMap<&str, &ferroban_config::JailDef> =
        ours.jails.iter().map(|j| (j.name.as_str(), j)).collect();
    let mut failures = Vec::new();
    let mut compared = 0;
    let mut actions_compared = 0;
    for r in &records[1..] {
        let name = field(r, "jail").unwrap();
        if let Some(e) = field(r, "error") {
            if by_name.contains_key(name) {
                failures.push(format!("{name}: python error {e}, ours ok"));
            }
            continue;
        }
        let Some(j) = by_name.get(name) else {
            let ours_err = ours
                .errors
                .iter()
                .find(|e| e.jail == name)
                .map(|e| e.to_string());
            failures.push(format!("{name}: missing in ours ({ours_err:?})"));
            continue;
        };
        compared += 1;
        let opt = |k: &str| {
            r.iter()
                .find(|(key, v)| key == "opt" && v[0] == k)
                .map(|(_, v)| v[1].clone())
        };
        let our_logpath: Vec<String> = j
            .logpath
            .iter()
            .map(|l| {
                if l.tail {
                    format!("{} tail", l.path)
                } else {
                    l.path.clone()
                }
            })
            .collect();
        let py_logpath: Vec<String> = opt("logpath")
            .map(|v| {
                v.split('\n')
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if our_logpath != py_logpath {
            failures.push(format!(
                "{name}: logpath python {py_logpath:?} ours {our_logpath:?}"
            ));
        }
        if opt("action").as_deref() != Some(j.action_raw.as_str()) {
            failures.push(format!(
                "{name}: action python {:?} ours {:?}",
                opt("action"),
                j.action_raw
            ));
        }
        if opt("backend").as_deref() != Some(j.backend.as_str()) {
            failures.push(format!("{name}: backend differs"));
        }
        let dur = |k: &str| opt(k).map(|v| ferroban_config::parse_duration(&v).unwrap());
        if dur("bantime") != j.bantime || dur("findtime") != j.findtime {
            failures.push(format!("{name}: bantime/findtime differ"));
        }
        if opt("maxretry").map(|v| v.parse::<u32>().unwrap()) != j.maxretry {
            failures.push(format!("{name}: maxretry differs"));
        }
        let py_ignoreip: Vec<String> = opt("ignoreip")
            .map(|v| ferroban_config::refs::split_words(&v))
            .unwrap_or_default();
        if py_ignoreip != j.ignoreip {
            failures.push(format!(
                "{name}: ignoreip python {py_ignoreip:?} ours {:?}",
                j.ignoreip
            ));
        }
        let py_py: Vec<String> = r
            .iter()
            .filter(|(k, _)| k == "pyaction")
            .map(|(_, v)| v[0].clone())
            .collect();
        let our_py: Vec<String> = j
            .actions
            .iter()
            .filter(|a| matches!(a.kind, ferroban_config::ActionKind::Python { .. }))
            .map(|a| a.name.clone())
            .collect();
        if py_py != our_py {
            failures.push(format!("{name}: python actions {py_py:?} ours {our_py:?}"));
        }
        // Actions: names, commands and parameters.
        let py_actions = fields(r, "action");
        let our_actions: Vec<&str> = j
            .actions
            .iter()
            .filter(|a| matches!(a.kind, ferroban_config::ActionKind::Command))
            .map(|a| a.name.as_str())
            .collect();
        if py_actions != our_actions {
            failures.push(format!(
                "{name}: actions python {py_actions:?} ours {our_actions:?}"
            ));
            continue;
        }
        for a in j
            .actions
            .iter()
            .filter(|a| matches!(a.kind, ferroban_config::ActionKind::Command))
        {
            let ours_opts = action_opts(a);
            let py_opts: BTreeMap<String, String> = r
                .iter()
                .filter(|(k, v)| k == "aopt" && v[0] == a.name)
                .map(|(_, v)| (v[1].clone(), v[2].clone()))
                .collect();
            if py_opts != ours_opts {
                let diff: Vec<String> = py_opts
                    .keys()
                    .chain(ours_opts.keys())
                    .filter(|k| py_opts.get(*k) != ours_opts.get(*k))
                    .map(|k| {
                        format!(
                            "{k}: python {:?} ours {:?}",
                            py_opts.get(k),
                            ours_opts.get(k)
                        )
                    })
                    .collect();
                failures.push(format!("{name}/{}: {}", a.name, diff.join("; ")));
            }
            actions_compared += 1;
        }
        let f = j.filter_def.as_ref();
        let ours_fail: Vec<&str> = f
            .map(|f| f.failregex.iter().map(String::as_str).collect())
            .unwrap_or_default();
        if fields(r, "failregex") != ours_fail {
            failures.push(format!("{name}: failregex differs"));
        }
    }
    eprintln!(
        "jail differential: {} python jails, {compared} compared, {actions_compared} actions compared, {} mismatches; ours: {} jails, {} errors",
        records.len() - 1,
        failures.len(),
        ours.jails.len(),
        ours.errors.len()
    );
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
    assert!(compared >= min_jails, "only {compared} jails compared");
}
