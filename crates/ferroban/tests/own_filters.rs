//! ferroban's own configuration tree (`config/` at the repository root): its filters pass
//! their annotated samples (`config/samples/`), every filter has samples, the default jails
//! resolve, and each filter that has a namesake in fail2ban 1.0.2 passes at least 95% of
//! fail2ban's sample cases for it in the default mode.
//!
//! fail2ban's samples are read at test time from `FERROBAN_F2B_ROOT` (default
//! `/tmp/f2b/root`, filled by `scripts/f2b-env.sh`); nothing of them is committed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ferroban::testfilters::{self, CaseFailure, Report, TestFiltersOptions};
use ferroban_config::{ConfigSource, JailsOptions, Loader, Root, read_jails_with};
use ferroban_testkit::f2b_root;
use serde_json::Value;

/// Filters of ours that fail2ban 1.0.2 also has, with the sample files fail2ban reads for
/// them (the first one names the filter; the others are pulled in by `# addFILE:`).
const F2B_NAMESAKES: [(&str, &[&str]); 5] = [
    ("sshd", &["sshd", "sshd-journal"]),
    ("nginx-http-auth", &["nginx-http-auth"]),
    ("nginx-botsearch", &["nginx-botsearch"]),
    ("nginx-limit-req", &["nginx-limit-req"]),
    ("recidive", &["recidive"]),
];

/// The jails of `config/jail.conf`: the guide's set.
const JAILS: [&str; 13] = [
    "fastapi",
    "nginx-404",
    "nginx-4xx",
    "nginx-badbots",
    "nginx-botsearch",
    "nginx-forbidden",
    "nginx-http-auth",
    "nginx-limit-req",
    "nginx-noscript",
    "nginx-sslerror",
    "recidive",
    "sshd",
    "ufw",
];

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config")
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferroban-own-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Names of `config/filter.d/*.conf` that are filters (not `*common.conf`).
fn own_filters() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(config_dir().join("filter.d"))
        .expect("list config/filter.d")
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let stem = n.strip_suffix(".conf")?;
            (!n.ends_with("common.conf")).then(|| stem.to_string())
        })
        .collect();
    names.sort();
    names
}

fn is_no_samples(f: &CaseFailure) -> bool {
    f.got.starts_with("regex has no samples")
}

#[test]
fn own_filters_pass_their_samples() {
    let filters = own_filters();
    let expected: Vec<&str> = vec![
        "fastapi-auth",
        "nginx-404",
        "nginx-4xx",
        "nginx-badbots",
        "nginx-botsearch",
        "nginx-forbidden",
        "nginx-http-auth",
        "nginx-limit-req",
        "nginx-noscript",
        "nginx-sslerror",
        "recidive",
        "sshd",
        "ufw",
    ];
    assert_eq!(
        filters, expected,
        "config/filter.d holds the library's filters"
    );
    for name in &filters {
        assert!(
            config_dir().join("samples").join(name).is_file(),
            "filter {name} has no sample log config/samples/{name}"
        );
    }
    let report = testfilters::run(&TestFiltersOptions {
        config_dir: config_dir(),
        samples_dir: config_dir().join("samples"),
        filters: Vec::new(),
    })
    .expect("run samples");
    eprintln!("{}", report.render());
    for name in &filters {
        let (passed, failed) = report.per_filter.get(name).copied().unwrap_or_default();
        eprintln!("{name}: {passed} passed, {failed} failed");
        assert!(
            passed >= 8,
            "filter {name}: only {passed} sample cases ran; every filter needs matching lines, near misses and injection attempts"
        );
    }
    assert!(
        report.failures.is_empty(),
        "{} failures:\n{}",
        report.failures.len(),
        report.render()
    );
}

/// Rewrites fail2ban's `# filterOptions:` lines so that only the default mode runs: entries
/// with another `mode` are dropped, and a block left without entries is skipped.
fn default_mode_only(text: &str) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let rest = body.trim_start_matches('#').trim_start();
        let Some(json) = rest.strip_prefix("filterOptions:") else {
            out.push_str(line);
            continue;
        };
        let parsed: Value = serde_json::from_str(json).expect("filterOptions JSON");
        let entries = match parsed {
            Value::Array(a) => a,
            other => vec![other],
        };
        let kept: Vec<Value> = entries
            .into_iter()
            .filter(|e| e.get("mode").is_none_or(|m| m == "normal"))
            .collect();
        let kept = if kept.is_empty() {
            // An always-false condition: the runner skips the block.
            vec![serde_json::json!({"test.condition": "name == '-'"})]
        } else {
            kept
        };
        out.push_str(&format!("# filterOptions: {}\n", Value::Array(kept)));
    }
    out
}

/// Sample cases of a report, without the "regex has no samples" entries (our filters have
/// lines fail2ban's samples do not show; our own samples cover those).
fn cases(report: &Report) -> (usize, Vec<&CaseFailure>) {
    let failed: Vec<&CaseFailure> = report
        .failures
        .iter()
        .filter(|f| !is_no_samples(f))
        .collect();
    (report.passed + failed.len(), failed)
}

/// fail2ban's sample logs in the reference (ferroban_testkit's `f2b_root`, which fails the test
/// when the reference is missing).
fn f2b_logs() -> PathBuf {
    f2b_root().join("usr/lib/python3/dist-packages/fail2ban/tests/files/logs")
}

#[test]
fn fail2ban_samples_pass_our_namesake_filters() {
    let logs = f2b_logs();
    let mut rates: BTreeMap<&str, (usize, usize, usize, usize)> = BTreeMap::new();
    let mut below = Vec::new();
    for (name, files) in F2B_NAMESAKES {
        let all_dir = scratch(&format!("{name}-all"));
        let default_dir = scratch(&format!("{name}-default"));
        for f in files {
            let text = std::fs::read_to_string(logs.join(f))
                .unwrap_or_else(|e| panic!("read fail2ban sample {f}: {e}"));
            std::fs::write(all_dir.join(f), &text).expect("write scratch sample");
            std::fs::write(default_dir.join(f), default_mode_only(&text))
                .expect("write scratch sample");
        }
        let run = |dir: &Path| {
            testfilters::run(&TestFiltersOptions {
                config_dir: config_dir(),
                samples_dir: dir.to_path_buf(),
                filters: vec![name.to_string()],
            })
            .expect("run samples")
        };
        let default_report = run(&default_dir);
        let all_report = run(&all_dir);
        let _ = std::fs::remove_dir_all(&all_dir);
        let _ = std::fs::remove_dir_all(&default_dir);
        let (total, failed) = cases(&default_report);
        let (all_total, _) = cases(&all_report);
        for f in &failed {
            eprintln!(
                "{name} (default mode) FAIL {} [{}]\n  expected: {}\n  got:      {}",
                f.location, f.variant, f.expected, f.got
            );
        }
        rates.insert(
            name,
            (default_report.passed, total, all_report.passed, all_total),
        );
        assert!(total >= 4, "{name}: only {total} default-mode cases ran");
        if (default_report.passed as f64) < 0.95 * total as f64 {
            below.push(name);
        }
    }
    for (name, (passed, total, all_passed, all_total)) in &rates {
        eprintln!(
            "fail2ban 1.0.2 samples vs our {name}: default mode {passed}/{total} ({:.1}%), all modes {all_passed}/{all_total} ({:.1}%)",
            100.0 * *passed as f64 / *total as f64,
            100.0 * *all_passed as f64 / *all_total as f64,
        );
    }
    assert!(
        below.is_empty(),
        "below 95% of fail2ban's default-mode cases: {below:?}"
    );
}

#[test]
fn default_mode_rewrite_keeps_only_default_entries() {
    let text = "# filterOptions: [{}, {\"mode\": \"aggressive\"}]\nline\n\
                # filterOptions: [{\"mode\": \"ddos\"}]\n\
                ## filterOptions: {\"mode\": \"normal\", \"logtype\": \"journal\"}\n";
    let out = default_mode_only(text);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "# filterOptions: [{}]");
    assert_eq!(lines[1], "line");
    assert_eq!(
        lines[2],
        "# filterOptions: [{\"test.condition\":\"name == '-'\"}]"
    );
    assert_eq!(
        lines[3],
        "# filterOptions: [{\"logtype\":\"journal\",\"mode\":\"normal\"}]"
    );
}

/// Every default jail resolves when enabled: its filter loads and its log paths are
/// interpolated from the paths files. The firewall action is provided by the test (the
/// native action is not a file of this tree).
#[test]
fn default_jails_resolve() {
    let mut action = BTreeMap::new();
    action.insert(
        "action.d/ferroban-nftables.conf".to_string(),
        "[Definition]\nactionban = true\nactionunban = true\n[Init]\ntype = multiport\n"
            .to_string(),
    );
    let source = ConfigSource::dir(config_dir()).with(Root::Memory {
        label: "test-actions".into(),
        files: action,
    });
    let cfg = read_jails_with(
        &Loader::new(source),
        &JailsOptions {
            force_enable: true,
            ..JailsOptions::default()
        },
    )
    .expect("read config/jail.conf");
    let errors: Vec<String> = cfg.errors.iter().map(ToString::to_string).collect();
    assert!(errors.is_empty(), "jails skipped: {errors:#?}");
    let mut names: Vec<&str> = cfg.jails.iter().map(|j| j.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, JAILS);
    for j in &cfg.jails {
        let def = j
            .filter_def
            .as_ref()
            .unwrap_or_else(|| panic!("jail {} has no filter", j.name));
        assert!(!def.failregex.is_empty(), "jail {}: no failregex", j.name);
        assert!(!j.logpath.is_empty(), "jail {}: no logpath", j.name);
        for p in &j.logpath {
            assert!(
                p.path.starts_with("/var/log/") && !p.path.contains("%("),
                "jail {}: logpath {:?}",
                j.name,
                p.path
            );
        }
        assert!(!j.actions.is_empty(), "jail {}: no action", j.name);
    }
    let sshd = cfg.jails.iter().find(|j| j.name == "sshd").expect("sshd");
    assert_eq!(sshd.logpath[0].path, "/var/log/auth.log");
    let fastapi = cfg
        .jails
        .iter()
        .find(|j| j.name == "fastapi")
        .expect("fastapi");
    assert_eq!(
        fastapi.filter.as_ref().map(|f| f.name.as_str()),
        Some("fastapi-auth")
    );
}
