//! The Debian package (issue 5, deliverable 5): `scripts/test-deb.sh` builds it with cargo-deb,
//! inspects it, unpacks it, and runs the installed files in private namespaces (the unit's
//! ExecStart/ExecReload/ExecStop lines verbatim, logrotate, the fail2ban-names switch, the guide's
//! configuration). See the script's header for every step.
//!
//! The guide's configuration is the one tests/guide.rs runs (`ferroban_testkit::guide`'s
//! `JAIL_LOCAL` and `CUSTOM_CONF`, the one copy): written to a temp dir and given to the script as
//! FERROBAN_GUIDE_DIR.
//!
//! SLOW (about a minute when the release binary is already built; minutes more the first time
//! cargo-deb has to be installed). Needs root (namespaces, overlay mounts), dpkg-deb and unshare;
//! CI runs it as root.
//!
//! Which binary is packaged: in a release run (`scripts/test.sh`), the `target/release/ferroban`
//! this test suite was built with (`cargo deb --no-build`, through FERROBAN_DEB_NO_BUILD=1), so
//! no second release build runs and the binary other tests are executing is never rewritten. In
//! a debug run, `cargo deb` builds the release binary itself, in the same target directory.

use ferroban_testkit::guide::{CUSTOM_CONF, JAIL_LOCAL};
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ferroban");

/// Writes the guide's jail.local and jail.d/custom.conf into a fresh directory.
fn guide_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferroban-deb-guide-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("jail.d")).expect("guide dir");
    std::fs::write(dir.join("jail.local"), JAIL_LOCAL).expect("jail.local");
    std::fs::write(dir.join("jail.d/custom.conf"), CUSTOM_CONF).expect("custom.conf");
    dir
}

#[test]
fn deb_package_builds_and_its_installed_files_work() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = repo.join("scripts/test-deb.sh");
    // BIN is <target dir>/<profile>/ferroban.
    let profile_dir = Path::new(BIN)
        .parent()
        .unwrap_or_else(|| panic!("{BIN} has no parent directory"));
    let target_dir = profile_dir
        .parent()
        .unwrap_or_else(|| panic!("{} has no parent directory", profile_dir.display()));
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let guide = guide_dir();
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(&repo)
        .env("CARGO_TARGET_DIR", target_dir)
        .env("FERROBAN_DEB_NO_BUILD", if release { "1" } else { "0" })
        .env("FERROBAN_GUIDE_DIR", &guide)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let _ = std::fs::remove_dir_all(&guide);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        script.display(),
        out.status
    );
    assert!(
        stdout.contains("checks passed") && !stdout.contains("SKIPPED: the guide"),
        "{} exited 0 without its closing line:\n{stdout}\n{stderr}",
        script.display()
    );
    print!("{stdout}");
}
