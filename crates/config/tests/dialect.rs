//! Unit tests of the configuration dialect and the typed readers, on small inline trees.

use std::collections::BTreeMap;
use std::path::Path;

use ferroban_config::{
    ActionKind, ConfigError, ConfigSource, JailsOptions, Loader, LogLevel, Root, read_filter,
    read_filter_with, read_global_with, read_jails_with,
};

fn root(label: &str, files: &[(&str, &str)]) -> Root {
    Root::Memory {
        label: label.to_string(),
        files: files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn mem(files: &[(&str, &str)]) -> Loader {
    Loader::new(ConfigSource::new().with(root("mem", files)))
}

fn o(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn set(loader: &Loader, name: &str) -> ferroban_config::IniSet {
    loader.read_named(name).unwrap().unwrap()
}

#[test]
fn read_order_conf_d_local() {
    let l = mem(&[
        ("x.conf", "[s]\nv = conf\na = 1\n"),
        ("x.d/b.conf", "[s]\nv = d-b\n"),
        ("x.d/a.conf", "[s]\nv = d-a\n"),
        ("x.local", "[s]\nv = local\nb = 2\n"),
        ("x.d/z.local", "[s]\nv = d-local\n"),
        ("x.d/.hidden.conf", "[s]\nv = hidden\n"),
    ]);
    let s = set(&l, "x");
    assert_eq!(
        s.files,
        vec![
            "mem/x.conf",
            "mem/x.d/a.conf",
            "mem/x.d/b.conf",
            "mem/x.local",
            "mem/x.d/z.local"
        ]
    );
    assert_eq!(s.get("s", "v", None).unwrap().unwrap(), "d-local");
    assert_eq!(s.get("s", "a", None).unwrap().unwrap(), "1");
    assert_eq!(s.get("s", "b", None).unwrap().unwrap(), "2");
}

#[test]
fn includes_before_after_and_local_companions() {
    let l = mem(&[
        (
            "f.d/x.conf",
            "[INCLUDES]\nbefore = common.conf\n          other.conf\nafter = post.conf\n[s]\nv = x\n",
        ),
        (
            "f.d/common.conf",
            "[INCLUDES]\nbefore = x.conf\n[s]\nv = common\nc = 1\n",
        ),
        ("f.d/common.local", "[s]\nv = common-local\n"),
        ("f.d/other.conf", "[DEFAULT]\nd = default\n"),
        ("f.d/post.conf", "[s]\np = post\n"),
    ]);
    let s = set(&l, "f.d/x");
    assert_eq!(
        s.files,
        vec![
            "mem/f.d/common.conf",
            "mem/f.d/common.local",
            "mem/f.d/other.conf",
            "mem/f.d/x.conf",
            "mem/f.d/post.conf"
        ]
    );
    assert_eq!(s.get("s", "v", None).unwrap().unwrap(), "x");
    assert_eq!(s.get("s", "c", None).unwrap().unwrap(), "1");
    assert_eq!(s.get("s", "d", None).unwrap().unwrap(), "default");
    assert_eq!(s.get("s", "p", None).unwrap().unwrap(), "post");
}

#[test]
fn default_name_cross_section_and_percent() {
    let l = mem(&[(
        "x.conf",
        "[DEFAULT]\nport = 1\nlabel = %(__name__)s:%(port)s\n[a]\nport = 2\nown = %(label)s\n\
         [b]\nfrom_a = %(a/port)s\nfrom_def = %(default/port)s\nmissing_in_a = %(a/label)s\npct = 100%%\n",
    )]);
    let s = set(&l, "x");
    assert_eq!(s.get("a", "own", None).unwrap().unwrap(), "a:2");
    assert_eq!(s.get("b", "label", None).unwrap().unwrap(), "b:1");
    assert_eq!(s.get("b", "from_a", None).unwrap().unwrap(), "2");
    assert_eq!(s.get("b", "from_def", None).unwrap().unwrap(), "1");
    // Falls back to [DEFAULT], interpolated in the reading section.
    assert_eq!(s.get("b", "missing_in_a", None).unwrap().unwrap(), "b:1");
    assert_eq!(s.get("b", "pct", None).unwrap().unwrap(), "100%");
}

#[test]
fn known_values_before_override() {
    let l = mem(&[
        ("jail.conf", "[DEFAULT]\nchain = INPUT\n[j]\nport = ssh\n"),
        (
            "jail.local",
            "[j]\nport = %(known/port)s,2222\nchain = %(known/chain)s-x\n",
        ),
    ]);
    let s = set(&l, "jail");
    assert_eq!(s.get("j", "port", None).unwrap().unwrap(), "ssh,2222");
    // Not overridden before: falls back to [DEFAULT].
    assert_eq!(s.get("j", "chain", None).unwrap().unwrap(), "INPUT-x");
}

#[test]
fn interpolation_loop_is_named_with_chain() {
    let l = mem(&[("x.conf", "[s]\na = x %(b)s\nb = %(c)s\nc = %(a)s\n")]);
    let s = set(&l, "x");
    match s.get("s", "a", None) {
        Err(ConfigError::InterpolationLoop {
            section,
            option,
            chain,
        }) => {
            assert_eq!(section, "s");
            assert_eq!(option, "a");
            assert_eq!(chain, vec!["a", "b", "c", "a"]);
        }
        other => panic!("expected loop, got {other:?}"),
    }
    let msg = s.get("s", "a", None).unwrap_err().to_string();
    assert!(msg.contains("a -> b -> c -> a"), "{msg}");
}

#[test]
fn interpolation_missing_and_syntax_errors() {
    let l = mem(&[("x.conf", "[s]\na = %(nope)s\nb = 5%\nc = %(x)d\n")]);
    let s = set(&l, "x");
    let e = s.get("s", "a", None).unwrap_err().to_string();
    assert!(e.contains("nope") && e.contains("mem/x.conf:2"), "{e}");
    assert!(matches!(
        s.get("s", "b", None),
        Err(ConfigError::InterpolationSyntax { .. })
    ));
    assert!(matches!(
        s.get("s", "c", None),
        Err(ConfigError::InterpolationSyntax { .. })
    ));
}

#[test]
fn syntax_error_names_file_and_line() {
    let l = mem(&[("jail.conf", "[DEFAULT]\nbantime = 10m\n\n[sshd]\nenabled\n")]);
    let e = read_jails_with(&l, &JailsOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("mem/jail.conf:5:"), "{e}");
}

#[test]
fn conditional_init_sections() {
    let l = mem(&[
        ("jail.conf", "[j]\nenabled = true\naction = act\n"),
        (
            "action.d/act.conf",
            "[Definition]\nactionban = <cmd> -I <ip> -j <blocktype>\n[Init]\nblocktype = REJECT\ncmd = iptables\n\
             [Init?family=inet6]\nblocktype = DROP6\ncmd = ip6tables\n",
        ),
    ]);
    let cfg = read_jails_with(&l, &JailsOptions::default()).unwrap();
    assert!(cfg.errors.is_empty(), "{:?}", cfg.errors);
    let a = &cfg.jails[0].actions[0];
    // Conditional names are not substituted by the reader, they are passed on.
    assert_eq!(a.actionban.as_deref(), Some("<cmd> -I <ip> -j <blocktype>"));
    assert_eq!(a.param("blocktype"), Some("REJECT"));
    assert_eq!(a.param("blocktype?family=inet6"), Some("DROP6"));
    assert_eq!(a.param("cmd?family=inet6"), Some("ip6tables"));
}

const JAIL_CONF: &str = "\
[INCLUDES]
before = paths-test.conf

[DEFAULT]
bantime = 10m
findtime = 1d12h
maxretry = 5
banaction = fw
port = 0:65535
protocol = tcp
chain = INPUT
action_ = %(banaction)s[port=\"%(port)s\", protocol=\"%(protocol)s\",
            chain=\"%(chain)s\"]
action_mw = %(action_)s
            mail[name=%(__name__)s, dest=\"root@localhost\"]
action = %(action_)s
ignoreip = 127.0.0.1/8 ::1
mode = normal
filter = %(__name__)s[mode=%(mode)s]

[sshd]
port = ssh
logpath = %(sshd_log)s
          /var/log/other*.log tail
action = %(action_mw)s

[web]
enabled = true
filter = demo[mode=aggressive]
logpath = /var/log/web.log
bantime = -1
maxretry = 3
bantime.increment = true
bantime.maxtime = 1w
action = %(action_)s[name=%(__name__)s-tcp, protocol=\"tcp\"]
         %(action_)s[name=%(__name__)s-udp, protocol=\"udp\"]

[broken-action]
enabled = true
filter = demo
action = nosuchaction

[broken-filter]
enabled = true
filter = nosuchfilter

[broken-loop]
enabled = true
filter = demo
logpath = %(logpath)s

[disabled]
enabled = false
filter = nosuchfilter
";

fn jail_tree() -> Vec<(&'static str, &'static str)> {
    vec![
        ("jail.conf", JAIL_CONF),
        (
            "paths-test.conf",
            "[DEFAULT]\nsshd_log = /var/log/auth.log\n",
        ),
        (
            "jail.local",
            "[sshd]\nenabled = true\nport = %(known/port)s,2222\n",
        ),
        (
            "filter.d/sshd.conf",
            "[Init]\nmode = normal\n[Definition]\nfailregex = ^fail <mode> <HOST>$\n",
        ),
        (
            "filter.d/demo.conf",
            "[Definition]\nfailregex = ^demo <HOST>$\n            ^<mode> <HOST>$\nmaxlines = 2\n",
        ),
        (
            "action.d/fw.conf",
            "[Definition]\nactionstart = fw create f2b-<name> <port> <protocol>\nactionban = fw add f2b-<name> <ip> <chain>\n\
             actionstart_on_demand = false\n[Init]\nchain = DEFAULT\ntimeout = 60\n",
        ),
        (
            "action.d/mail.conf",
            "[Definition]\nactionban = mail -s '<name>: <ip>' <dest> <<< '<matches>'\n",
        ),
    ]
}

#[test]
fn jails_typed_with_broken_jails_reported() {
    let l = mem(&jail_tree());
    let cfg = read_jails_with(&l, &JailsOptions::default()).unwrap();
    let names: Vec<&str> = cfg.jails.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, vec!["sshd", "web"]);
    assert_eq!(cfg.disabled, vec!["disabled"]);
    let errs: BTreeMap<&str, String> = cfg
        .errors
        .iter()
        .map(|e| (e.jail.as_str(), e.to_string()))
        .collect();
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(
        errs["broken-action"].contains("action 'nosuchaction' not found"),
        "{errs:?}"
    );
    assert!(
        errs["broken-action"].contains("mem/action.d/nosuchaction.conf"),
        "{errs:?}"
    );
    assert!(
        errs["broken-action"].contains("mem/action.d/nosuchaction.local"),
        "{errs:?}"
    );
    assert!(
        errs["broken-filter"].contains("filter 'nosuchfilter' not found"),
        "{errs:?}"
    );
    assert!(
        errs["broken-filter"].contains("mem/filter.d/nosuchfilter.conf"),
        "{errs:?}"
    );
    assert!(
        errs["broken-loop"].contains("logpath -> logpath"),
        "{errs:?}"
    );

    let sshd = &cfg.jails[0];
    assert!(sshd.enabled);
    assert_eq!(sshd.backend, "auto");
    assert_eq!(sshd.port.as_deref(), Some("ssh,2222"));
    assert_eq!(sshd.bantime, Some(600.0));
    assert_eq!(sshd.findtime, Some(129600.0));
    assert_eq!(sshd.maxretry, Some(5));
    assert_eq!(sshd.ignoreip, vec!["127.0.0.1/8", "::1"]);
    assert_eq!(sshd.logpath.len(), 2);
    assert_eq!(sshd.logpath[0].path, "/var/log/auth.log");
    assert!(!sshd.logpath[0].tail);
    assert_eq!(sshd.logpath[1].path, "/var/log/other*.log");
    assert!(sshd.logpath[1].tail);
    let f = sshd.filter.as_ref().unwrap();
    assert_eq!(
        (f.name.as_str(), f.opts.clone()),
        ("sshd", o(&[("mode", "normal")]))
    );
    assert_eq!(
        sshd.filter_def.as_ref().unwrap().failregex,
        vec!["^fail normal <HOST>$"]
    );
    // The jail can see the filter's values as known/...
    assert_eq!(sshd.actions.len(), 2);
    let fw = &sshd.actions[0];
    assert_eq!(fw.name, "fw");
    assert_eq!(fw.file, "fw");
    assert_eq!(
        fw.actionstart.as_deref(),
        Some("fw create f2b-sshd ssh,2222 tcp")
    );
    assert_eq!(fw.actionban.as_deref(), Some("fw add f2b-sshd <ip> INPUT"));
    assert_eq!(fw.actionstart_on_demand, Some(false));
    assert_eq!(fw.timeout, Some(60.0));
    assert_eq!(fw.param("name"), Some("sshd"));
    assert_eq!(fw.param("port"), Some("ssh,2222"));
    assert_eq!(fw.param("chain"), Some("INPUT"));
    let mail = &sshd.actions[1];
    assert_eq!(mail.name, "mail");
    assert_eq!(
        mail.actionban.as_deref(),
        Some("mail -s 'sshd: <ip>' root@localhost <<< '<matches>'")
    );

    let web = &cfg.jails[1];
    assert_eq!(web.bantime, Some(-1.0));
    assert_eq!(web.maxretry, Some(3));
    assert_eq!(web.bantime_increment.increment, Some(true));
    assert_eq!(web.bantime_increment.maxtime, Some(604800.0));
    let fd = web.filter_def.as_ref().unwrap();
    assert_eq!(fd.failregex, vec!["^demo <HOST>$", "^aggressive <HOST>$"]);
    assert_eq!(fd.maxlines, Some(2));
    let names: Vec<&str> = web.actions.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, vec!["fw-tcp", "fw-udp"]);
    assert_eq!(web.actions[0].param("name"), Some("web-tcp"));
    assert_eq!(web.actions[1].param("protocol"), Some("udp"));
    assert_eq!(
        web.actions[1].actionstart.as_deref(),
        Some("fw create f2b-web-udp 0:65535 udp")
    );
    assert_eq!(web.value("banaction"), Some("fw"));
}

#[test]
fn known_filter_values_in_jail_and_jail_overrides() {
    let mut tree = jail_tree();
    tree.push((
        "jail.d/extra.local",
        "[web]\nfailregex = %(known/failregex)s\n            ^extra <HOST>$\nmaxlines = 7\n",
    ));
    let cfg = read_jails_with(&mem(&tree), &JailsOptions::default()).unwrap();
    let web = cfg.jails.iter().find(|j| j.name == "web").unwrap();
    let fd = web.filter_def.as_ref().unwrap();
    assert_eq!(
        fd.failregex,
        vec!["^demo <HOST>$", "^aggressive <HOST>$", "^extra <HOST>$"]
    );
    assert_eq!(fd.maxlines, Some(7));
}

#[test]
fn invalid_typed_value_skips_the_jail() {
    let mut tree = jail_tree();
    tree.push(("jail.d/bad.conf", "[web]\nbantime = ten minutes\n"));
    let cfg = read_jails_with(&mem(&tree), &JailsOptions::default()).unwrap();
    assert!(cfg.jails.iter().all(|j| j.name != "web"));
    let e = cfg
        .errors
        .iter()
        .find(|e| e.jail == "web")
        .unwrap()
        .to_string();
    assert!(e.contains("bantime"), "{e}");
}

#[test]
fn python_actions_keep_their_options() {
    let l = mem(&[(
        "jail.conf",
        "[j]\nenabled = true\naction = smtp.py[host=\"h:25\", actname=mailer]\n",
    )]);
    let cfg = read_jails_with(&l, &JailsOptions::default()).unwrap();
    let a = &cfg.jails[0].actions[0];
    assert_eq!(a.name, "mailer");
    assert!(matches!(&a.kind, ActionKind::Python { path } if path == "mem/action.d/smtp.py"));
    assert_eq!(a.params, o(&[("host", "h:25")]));
}

#[test]
fn layered_roots_override_file_by_file() {
    let base = root("embedded", &jail_tree());
    let user = root(
        "etc",
        &[
            (
                "filter.d/demo.conf",
                "[Definition]\nfailregex = ^user <HOST>$\n",
            ),
            ("jail.d/mine.conf", "[web]\nmaxretry = 9\n"),
        ],
    );
    let l = Loader::new(ConfigSource::new().with(base).with(user));
    let cfg = read_jails_with(&l, &JailsOptions::default()).unwrap();
    let web = cfg.jails.iter().find(|j| j.name == "web").unwrap();
    assert_eq!(web.maxretry, Some(9));
    assert_eq!(
        web.filter_def.as_ref().unwrap().failregex,
        vec!["^user <HOST>$"]
    );
    assert!(
        cfg.files
            .iter()
            .any(|f| f.to_str() == Some("etc/jail.d/mine.conf"))
    );
    assert!(
        cfg.files
            .iter()
            .any(|f| f.to_str() == Some("embedded/jail.conf"))
    );
}

#[test]
fn filter_from_fixture_directory() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/basic");
    let f = read_filter(&dir, "demo", &[]).unwrap();
    let files: Vec<String> = f
        .files
        .iter()
        .map(|p| p.strip_prefix(&dir).unwrap().display().to_string())
        .collect();
    assert_eq!(
        files,
        vec![
            "filter.d/common.conf",
            "filter.d/common-after.conf",
            "filter.d/demo.conf",
            "filter.d/demo.d/10-extra.conf",
            "filter.d/demo.local"
        ]
    );
    assert_eq!(
        f.prefregex.as_deref(),
        Some(r"^\s*\S+ demod(?:\[\d+\])?:\s+<F-CONTENT>.+</F-CONTENT>$")
    );
    assert_eq!(
        f.failregex,
        vec!["^bad password from <HOST>$", "^bad password from <HOST>$"]
    );
    assert_eq!(f.ignoreregex, vec!["^ignored <HOST>$", "^also ignored$"]);
    assert_eq!(f.maxlines, Some(1));
    assert_eq!(f.datepattern.as_deref(), Some("{^LN-BEG}%Y-%m-%d"));
    assert_eq!(
        f.journalmatch.as_deref(),
        Some("_SYSTEMD_UNIT=demo.service")
    );
    assert_eq!(f.value("mode"), Some("normal"));
    assert_eq!(f.value("late"), Some("yes"));

    let f = read_filter(
        &dir,
        "demo",
        &o(&[("mode", "aggressive"), ("maxlines", "3")]),
    )
    .unwrap();
    assert_eq!(
        f.failregex,
        vec!["^bad password from <HOST>$", "^unknown user from <HOST>$"]
    );
    assert_eq!(f.maxlines, Some(3));
    assert_eq!(f.value("mode"), Some("aggressive"));

    // A path to a file is read explicitly (with its includes).
    let path = dir.join("filter.d/demo.conf");
    let f = read_filter(&dir, path.to_str().unwrap(), &[]).unwrap();
    assert!(f.ignoreregex.contains(&"^ignored <HOST>$".to_string()));
    assert_eq!(f.journalmatch, None);
}

#[test]
fn unknown_filter_names_paths_tried() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/basic");
    let e = read_filter(&dir, "nope", &[]).unwrap_err().to_string();
    assert!(e.contains("filter 'nope' not found"), "{e}");
    assert!(
        e.contains("filter.d/nope.conf") && e.contains("filter.d/nope.local"),
        "{e}"
    );
    assert!(e.contains("filter.d/nope.d/*.conf"), "{e}");
}

#[test]
fn logtype_follows_backend() {
    let l = mem(&[(
        "filter.d/f.conf",
        "[Init]\nlogtype = file\n[Definition]\n_file = F\n_journal = J\nfailregex = <_<logtype>> <HOST>\n",
    )]);
    let f = read_filter_with(&l, "f", &[], Some("systemd")).unwrap();
    assert_eq!(f.failregex, vec!["J <HOST>"]);
    let f = read_filter_with(&l, "f", &[], Some("auto")).unwrap();
    assert_eq!(f.failregex, vec!["F <HOST>"]);
    let f = read_filter_with(&l, "f", &[], None).unwrap();
    assert_eq!(f.failregex, vec!["F <HOST>"]);
}

#[test]
fn tag_loop_is_an_error() {
    let l = mem(&[(
        "filter.d/f.conf",
        "[Definition]\nfailregex = <a>\na = <b>\nb = <a>\n",
    )]);
    let e = read_filter_with(&l, "f", &[], None).unwrap_err();
    assert!(matches!(e, ConfigError::TagLoop { .. }), "{e}");
}

#[test]
fn global_settings() {
    let l = mem(&[
        (
            "fail2ban.conf",
            "[Definition]\nloglevel = INFO\nlogtarget = /var/log/fail2ban.log\nsocket = /run/f2b.sock\n\
             dbfile = /var/lib/fail2ban/fail2ban.sqlite3\ndbpurgeage = 1d\n[Thread]\nstacksize = 0\n",
        ),
        ("fail2ban.d/a.conf", "[Definition]\ndbmaxmatches = 10\n"),
        (
            "fail2ban.local",
            "[Definition]\nloglevel = debug\ndbpurgeage = 2d12h\n",
        ),
    ]);
    let g = read_global_with(&l).unwrap();
    assert_eq!(g.loglevel, LogLevel::Named("DEBUG".into()));
    assert_eq!(g.socket, Path::new("/run/f2b.sock"));
    assert_eq!(g.pidfile, Path::new("/var/run/fail2ban/fail2ban.pid"));
    assert_eq!(g.dbmaxmatches, Some(10));
    assert_eq!(g.dbpurgeage, 216000.0);
    assert_eq!(g.stacksize, Some(0));
    assert_eq!(g.files.len(), 3);

    let bad = mem(&[("fail2ban.conf", "[Definition]\nloglevel = LOUD\n")]);
    let e = read_global_with(&bad).unwrap_err().to_string();
    assert!(e.contains("loglevel") && e.contains("LOUD"), "{e}");
    let bad = mem(&[(
        "fail2ban.conf",
        "[Definition]\nloglevel = 5\ndbpurgeage = soon\n",
    )]);
    assert!(
        read_global_with(&bad)
            .unwrap_err()
            .to_string()
            .contains("dbpurgeage")
    );
}

#[test]
fn global_settings_of_reference_tree() {
    let root = std::env::var("FERROBAN_F2B_ROOT").unwrap_or_else(|_| "/tmp/f2b/root".into());
    let dir = Path::new(&root).join("etc/fail2ban");
    assert!(
        dir.join("fail2ban.conf").is_file(),
        "fail2ban reference tree not found at {root} (set FERROBAN_F2B_ROOT)"
    );
    let g = ferroban_config::read_global(&dir).unwrap();
    assert_eq!(g.loglevel, LogLevel::Named("INFO".into()));
    assert_eq!(g.logtarget, "/var/log/fail2ban.log");
    assert_eq!(g.socket, Path::new("/var/run/fail2ban/fail2ban.sock"));
    assert_eq!(g.dbfile, "/var/lib/fail2ban/fail2ban.sqlite3");
    assert_eq!(g.dbpurgeage, 86400.0);
    assert_eq!(g.dbmaxmatches, Some(10));
}

#[test]
fn stock_action_reads_with_jail_name() {
    let root = std::env::var("FERROBAN_F2B_ROOT").unwrap_or_else(|_| "/tmp/f2b/root".into());
    let dir = Path::new(&root).join("etc/fail2ban");
    assert!(
        dir.is_dir(),
        "fail2ban reference tree not found at {root} (set FERROBAN_F2B_ROOT)"
    );
    let a =
        ferroban_config::read_action(&dir, "iptables-multiport", "TEST", &o(&[("port", "ssh")]))
            .unwrap();
    assert_eq!(a.name, "iptables-multiport");
    assert!(a.actionstart.as_deref().unwrap().contains("f2b-TEST"));
    assert!(a.actionstart.as_deref().unwrap().contains("--dports ssh"));
    assert_eq!(a.param("name"), Some("TEST"));
    assert_eq!(
        a.param("iptables?family=inet6"),
        Some("ip6tables <lockingopt>")
    );
    let e = ferroban_config::read_action(&dir, "nope", "TEST", &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("action.d/nope.conf"), "{e}");
}
