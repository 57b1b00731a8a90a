//! What the engine's integration tests share: a jail read from a scratch configuration.

use ferroban_engine::jail::Jail;

/// Jail `test` with filter `FAIL from <HOST>`, no action, and `options` (one per line), read
/// from a scratch tree (`tag` names it) that is removed again.
pub fn test_jail(tag: &str, options: &str) -> Jail {
    let dir = std::env::temp_dir().join(format!("ferroban-engine-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("filter.d")).unwrap();
    std::fs::write(
        dir.join("filter.d/test.conf"),
        "[Definition]\nfailregex = ^FAIL from <HOST>$\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("jail.conf"),
        format!(
            "[test]\nenabled = true\nfilter = test\nlogpath = /nonexistent/test.log\naction =\n{options}\n"
        ),
    )
    .unwrap();
    let cfg = ferroban_config::read_jails(&dir).unwrap();
    assert!(cfg.errors.is_empty(), "{:?}", cfg.errors);
    let def = cfg.jails.into_iter().next().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    Jail::new(def).unwrap()
}
