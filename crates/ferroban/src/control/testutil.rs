//! Test helpers shared by the control modules' tests.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

/// A fresh directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(pub PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "ferroban-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `status sshd` value of proto's example.
pub(crate) fn jail_status() -> Value {
    json!([
        [
            "Filter",
            [
                ["Currently failed", 0],
                ["Total failed", 5],
                ["File list", ["/var/log/nginx/access.log"]]
            ]
        ],
        [
            "Actions",
            [
                ["Currently banned", 1],
                ["Total banned", 1],
                ["Banned IP list", ["198.51.100.7"]]
            ]
        ]
    ])
}

/// The fail2ban 1.0.2 reference tree (`$FERROBAN_F2B_ROOT`, default `/tmp/f2b/root`); fails
/// the test when `needed` (a path inside it) is missing.
pub(crate) fn f2b_root(needed: &str) -> PathBuf {
    let root = PathBuf::from(
        std::env::var("FERROBAN_F2B_ROOT").unwrap_or_else(|_| "/tmp/f2b/root".to_string()),
    );
    assert!(
        root.join(needed).is_file(),
        "fail2ban reference not found at {} (set FERROBAN_F2B_ROOT to an unpacked fail2ban 1.0.2 \
         tree, see scripts/f2b-env.sh)",
        root.display()
    );
    root
}

/// The interpreter that runs the reference (`$FERROBAN_F2B_PYTHON`, default `python3`).
pub(crate) fn python() -> String {
    std::env::var("FERROBAN_F2B_PYTHON").unwrap_or_else(|_| "python3".into())
}
