//! Acceptance: fail2ban 1.0.2's annotated sample logs against its own filters, read by ferroban.
//!
//! The reference tree is read at test time from `FERROBAN_F2B_ROOT` (default `/tmp/f2b/root`,
//! filled by `scripts/f2b-env.sh`); nothing of it is committed.

use std::path::PathBuf;

use ferroban::testfilters::{self, TestFiltersOptions};
use ferroban_testkit::f2b_root;

fn tests_dir(root: &std::path::Path) -> PathBuf {
    root.join("usr/lib/python3/dist-packages/fail2ban/tests")
}

/// Every stock filter with its samples; the known failures are listed so that a new one fails.
#[test]
fn stock_filters_pass_their_samples() {
    let root = f2b_root();
    let report = testfilters::run(&TestFiltersOptions {
        config_dir: root.join("etc/fail2ban"),
        samples_dir: tests_dir(&root).join("files/logs"),
        filters: Vec::new(),
    })
    .expect("run samples");
    let total = report.passed + report.failures.len();
    eprintln!("{}", report.render());
    assert!(total >= 1000, "expected at least 1000 cases, got {total}");
    assert!(
        report.failures.is_empty(),
        "{} failures of {total} cases:\n{}",
        report.failures.len(),
        report.render()
    );
}

/// fail2ban's own test filters (`zzz-*`) with their samples.
///
/// They include `common.conf` through a path relative to fail2ban's source tree
/// (`../../../../../../../config/filter.d/common.conf` in 1.0.2, `../../../../config/...` in
/// 1.1), which does not exist in the installed package; the test lays them out in a scratch tree
/// where both paths resolve to the stock file.
#[test]
fn test_config_filters_pass_their_samples() {
    let root = f2b_root();
    let scratch = std::env::temp_dir().join(format!("ferroban-zzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let common = scratch.join("config/filter.d");
    let cfg = scratch.join("1/2/3/4/5/6");
    std::fs::create_dir_all(&common).expect("scratch tree");
    std::fs::create_dir_all(cfg.join("filter.d")).expect("scratch tree");
    std::fs::copy(
        root.join("etc/fail2ban/filter.d/common.conf"),
        common.join("common.conf"),
    )
    .expect("copy common.conf");
    // fail2ban 1.1 goes up four levels instead of seven (`../../../../config/filter.d/...`):
    // the stock file there too, so the same layout serves both.
    let common11 = scratch.join("1/2/3/config/filter.d");
    std::fs::create_dir_all(&common11).expect("scratch tree");
    std::fs::copy(
        root.join("etc/fail2ban/filter.d/common.conf"),
        common11.join("common.conf"),
    )
    .expect("copy common.conf");
    let mut filters = Vec::new();
    for e in std::fs::read_dir(tests_dir(&root).join("config/filter.d"))
        .expect("list test filters")
        .flatten()
    {
        let n = e.file_name().to_string_lossy().into_owned();
        if let Some(stem) = n.strip_prefix("zzz-").and_then(|_| n.strip_suffix(".conf")) {
            std::fs::copy(e.path(), cfg.join("filter.d").join(&n)).expect("copy test filter");
            filters.push(stem.to_string());
        }
    }
    filters.sort();
    assert_eq!(
        filters.len(),
        2,
        "fail2ban 1.0.2 ships two zzz-* test filters: {filters:?}"
    );
    let report = testfilters::run(&TestFiltersOptions {
        config_dir: cfg,
        samples_dir: tests_dir(&root).join("files/logs"),
        filters,
    })
    .expect("run samples");
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!("{}", report.render());
    assert!(report.passed >= 200, "{}", report.render());
    assert!(report.failures.is_empty(), "{}", report.render());
}

/// The `ferroban test-filters` command itself, as a user runs it, on the stock tree.
#[test]
fn test_filters_command_reports_all_passed() {
    let root = f2b_root();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferroban"))
        .arg("test-filters")
        .arg("-c")
        .arg(root.join("etc/fail2ban"))
        .args([
            "-f",
            "sshd",
            "-f",
            "nginx-botsearch",
            "-f",
            "nginx-http-auth",
        ])
        .arg(tests_dir(&root).join("files/logs"))
        .output()
        .expect("run ferroban test-filters");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(out.status.success(), "exit {:?}: {stdout}", out.status);
    let passed: usize = last
        .strip_suffix(" passed, 0 failed")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected closing line: {last:?}"));
    assert!(passed > 150, "{last}");
}

/// A failing case is reported with its location and a non-zero exit.
#[test]
fn test_filters_command_reports_a_failing_case() {
    let dir = std::env::temp_dir().join(format!("ferroban-tf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("cfg/filter.d")).expect("scratch");
    std::fs::create_dir_all(dir.join("logs")).expect("scratch");
    std::fs::write(
        dir.join("cfg/filter.d/demo.conf"),
        "[Definition]\nfailregex = ^ login failed from <HOST>$\n",
    )
    .expect("filter");
    std::fs::write(
        dir.join("logs/demo"),
        "# failJSON: { \"time\": \"2005-08-14T11:00:00\", \"match\": true , \"host\": \"192.0.2.1\" }\n\
         2005-08-14 11:00:00 login failed from 192.0.2.1\n\
         # failJSON: { \"match\": true , \"host\": \"192.0.2.2\" }\n\
         2005-08-14 11:00:01 login refused from 192.0.2.2\n",
    )
    .expect("samples");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferroban"))
        .args(["test-filters", "-c"])
        .arg(dir.join("cfg"))
        .arg(dir.join("logs"))
        .output()
        .expect("run ferroban test-filters");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("logs/demo:4"), "{stdout}");
    assert!(
        stdout.trim_end().ends_with("1 passed, 1 failed"),
        "{stdout}"
    );
}

/// The README's first command works without any configuration tree: ferroban's embedded
/// `sshd` filter (or, on a machine with /etc/fail2ban, that tree's).
#[test]
fn readme_first_command_runs_without_configuration() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(repo.join("README.md")).expect("README.md");
    let first = readme
        .lines()
        .find(|l| l.starts_with("cargo run"))
        .expect("first command");
    assert_eq!(
        first, "cargo run --release -- regex examples/sshd-sample.log sshd",
        "keep this test in step with the README"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferroban"))
        .current_dir(&repo)
        .args(["regex", "examples/sshd-sample.log", "sshd"])
        .output()
        .expect("run ferroban regex");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let lines = stdout
        .lines()
        .find(|l| l.starts_with("Lines: 33 lines, "))
        .unwrap_or_else(|| panic!("no Lines: summary:\n{stdout}"));
    let matched: usize = lines
        .split(", ")
        .find_map(|p| p.strip_suffix(" matched"))
        .and_then(|n| n.parse().ok())
        .expect("matched count");
    // The sample holds 8 failed-password lines and other failures (invalid users, ...).
    assert!(matched >= 8, "{lines}");
    // Without /etc/fail2ban the embedded filter is the one used (alone, or under /etc/ferroban,
    // which the package test may have installed meanwhile on a CI machine).
    if !std::path::Path::new("/etc/fail2ban/filter.d/sshd.conf").exists() {
        assert!(
            stdout.contains("basedir: the embedded defaults")
                || stdout.contains("(over the embedded defaults)"),
            "{stdout}"
        );
    }
}
