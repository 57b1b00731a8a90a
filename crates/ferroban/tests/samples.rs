//! Acceptance: fail2ban 1.0.2's annotated sample logs against its own filters, read by ferroban;
//! and the same for fail2ban 1.1.0 and 1.1.1 (their newer filters and samples).
//!
//! The reference trees are read at test time from `FERROBAN_F2B_ROOT` (default `/tmp/f2b/root`,
//! filled by `scripts/f2b-env.sh`) and `FERROBAN_F2B_NEWER` (default `/tmp/f2b/newer`, filled by
//! `scripts/f2b-newer.sh`); nothing of them is committed.

use std::path::{Path, PathBuf};

use ferroban::testfilters::{self, TestFiltersOptions};
use ferroban_testkit::f2b_root;

fn tests_dir(root: &Path) -> PathBuf {
    root.join("usr/lib/python3/dist-packages/fail2ban/tests")
}

/// Every stock filter of the tree at `root` against its own samples.
fn stock_report(root: &Path) -> testfilters::Report {
    testfilters::run(&TestFiltersOptions {
        config_dir: root.join("etc/fail2ban"),
        samples_dir: tests_dir(root).join("files/logs"),
        filters: Vec::new(),
    })
    .unwrap_or_else(|e| panic!("run the samples of {}: {e}", root.display()))
}

/// Every stock filter with its samples; the known failures are listed so that a new one fails.
#[test]
fn stock_filters_pass_their_samples() {
    let report = stock_report(&f2b_root());
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

/// fail2ban's own test filters (`zzz-*`) of the tree at `root` with their samples.
///
/// They include `common.conf` through a path relative to fail2ban's source tree
/// (`../../../../../../../config/filter.d/common.conf` in 1.0.2, `../../../../config/...` in
/// 1.1), which does not exist in the installed package; they are laid out in a scratch tree
/// where both paths resolve to the stock file.
fn zzz_report(root: &Path, tag: &str) -> testfilters::Report {
    let scratch = std::env::temp_dir().join(format!("ferroban-zzz-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let cfg = scratch.join("1/2/3/4/5/6");
    std::fs::create_dir_all(cfg.join("filter.d")).expect("scratch tree");
    // 1.0.2 goes up seven levels, 1.1 four: the stock file at both places.
    for common in [
        scratch.join("config/filter.d"),
        scratch.join("1/2/3/config/filter.d"),
    ] {
        std::fs::create_dir_all(&common).expect("scratch tree");
        std::fs::copy(
            root.join("etc/fail2ban/filter.d/common.conf"),
            common.join("common.conf"),
        )
        .expect("copy common.conf");
    }
    let mut filters = Vec::new();
    for e in std::fs::read_dir(tests_dir(root).join("config/filter.d"))
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
        "fail2ban ships two zzz-* test filters in {}: {filters:?}",
        root.display()
    );
    let report = testfilters::run(&TestFiltersOptions {
        config_dir: cfg,
        samples_dir: tests_dir(root).join("files/logs"),
        filters,
    })
    .expect("run samples");
    let _ = std::fs::remove_dir_all(&scratch);
    report
}

/// fail2ban's own test filters (`zzz-*`) with their samples.
#[test]
fn test_config_filters_pass_their_samples() {
    let report = zzz_report(&f2b_root(), "1.0.2");
    eprintln!("{}", report.render());
    assert!(report.passed >= 200, "{}", report.render());
    assert!(report.failures.is_empty(), "{}", report.render());
}

/// fail2ban 1.1.0's and 1.1.1's stock filters (their newer syntax and options included)
/// against their own, newer, sample logs, and their `zzz-*` test filters: every case passes,
/// as 1.0.2's do.
#[test]
fn newer_releases_pass_their_samples() {
    for version in ["1.1.0", "1.1.1"] {
        let root = ferroban_testkit::f2b_newer_root(version);
        let stock = stock_report(&root);
        let total = stock.passed + stock.failures.len();
        eprintln!("fail2ban {version} stock filters: {}", stock.render());
        // 1.1.0 ships 1425 cases, 1.1.1 1563: more than 1.0.2's 1381
        assert!(total > 1381, "fail2ban {version}: only {total} cases");
        assert!(
            stock.failures.is_empty(),
            "fail2ban {version}: {} failures of {total} cases:\n{}",
            stock.failures.len(),
            stock.render()
        );
        let zzz = zzz_report(&root, version);
        eprintln!("fail2ban {version} zzz-* filters: {}", zzz.render());
        assert!(zzz.passed >= 200, "fail2ban {version}: {}", zzz.render());
        assert!(
            zzz.failures.is_empty(),
            "fail2ban {version}: {}",
            zzz.render()
        );
    }
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
