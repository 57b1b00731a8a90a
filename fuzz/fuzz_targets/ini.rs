//! fail2ban's INI dialect with interpolation and includes, through the readers the daemon uses:
//! jails (with their filters and actions), a filter, an action, the global `fail2ban.conf`.
//!
//! Input: NUL-separated file contents, in this order: `jail.conf`, `jail.local`,
//! `filter.d/f.conf`, `filter.d/f.local`, `action.d/a.conf`, `paths-common.conf`,
//! `jail.d/x.conf`, `fail2ban.conf`, `filter.d/common.conf`. All files live in an in-memory
//! root, so includes (`before = ../../etc/passwd`) never reach the disk.

#![no_main]

mod common;

use std::collections::BTreeMap;

use ferroban_config::jail::JailsOptions;
use ferroban_config::{ConfigSource, Loader, Root};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 9] = [
    "jail.conf",
    "jail.local",
    "filter.d/f.conf",
    "filter.d/f.local",
    "action.d/a.conf",
    "paths-common.conf",
    "jail.d/x.conf",
    "fail2ban.conf",
    "filter.d/common.conf",
];

fuzz_target!(|data: &[u8]| {
    let parts = common::parts(data);
    let mut files = BTreeMap::new();
    for (name, text) in NAMES.iter().zip(parts.iter()) {
        // Each file through the bare parser too (errors name file and line).
        if let Err(e) = ferroban_config::ini::parse(name, text) {
            let _ = e.to_string();
        }
        files.insert(name.to_string(), text.clone());
    }
    let source = ConfigSource::new().with(Root::Memory {
        label: "fuzz".into(),
        files,
    });
    let loader = Loader::new(source);
    if let Ok(jails) = ferroban_config::read_jails_with(&loader, &JailsOptions { force_enable: true, ..JailsOptions::default() }) {
        let _ = format!("{jails:?}");
    }
    let _ = ferroban_config::read_filter_with(&loader, "f", &[], None);
    let _ = ferroban_config::read_filter_with(&loader, "f", &[], Some("systemd"));
    let _ = ferroban_config::read_action_with(
        &loader,
        "a",
        "j",
        &[("port".into(), "22".into())],
        &Default::default(),
    );
    let _ = ferroban_config::read_global_with(&loader);
    // References as written in `action = ` / `filter = ` values.
    for p in &parts {
        for r in ferroban_config::split_references(p) {
            let _ = ferroban_config::parse_reference(&r);
        }
    }
});
