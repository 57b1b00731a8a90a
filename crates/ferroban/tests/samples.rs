//! Acceptance: fail2ban 1.0.2's annotated sample logs against its own filters, read by ferroban.
//!
//! The reference tree is read at test time from `FERROBAN_F2B_ROOT` (default `/tmp/f2b/root`,
//! filled by `scripts/f2b-env.sh`); nothing of it is committed.

use std::path::PathBuf;

use ferroban::testfilters::{self, TestFiltersOptions};

fn reference_root() -> PathBuf {
    let root = PathBuf::from(
        std::env::var("FERROBAN_F2B_ROOT").unwrap_or_else(|_| "/tmp/f2b/root".into()),
    );
    assert!(
        root.join("etc/fail2ban/filter.d").is_dir(),
        "fail2ban 1.0.2 reference not found at {} (set FERROBAN_F2B_ROOT or run scripts/f2b-env.sh)",
        root.display()
    );
    root
}

fn tests_dir(root: &std::path::Path) -> PathBuf {
    root.join("usr/lib/python3/dist-packages/fail2ban/tests")
}

/// Every stock filter with its samples; the known failures are listed so that a new one fails.
#[test]
fn stock_filters_pass_their_samples() {
    let root = reference_root();
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
/// (`../../../../../../../config/filter.d/common.conf`), which does not exist in the installed
/// package; the test lays them out in a scratch tree where that path resolves to the stock file.
#[test]
fn test_config_filters_pass_their_samples() {
    let root = reference_root();
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
