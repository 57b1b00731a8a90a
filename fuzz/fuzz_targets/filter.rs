//! Filter definitions (`filter.d/*.conf`: prefregex, failregex, ignoreregex, datepattern,
//! maxlines, `<F-*>` groups, `[Init]`) compiled by the engine, then random log lines through
//! the whole per-line path (date, prefregex, failregex, captures, failure id).
//!
//! Input: the filter file (`filter.d/f.conf`), NUL, `filter.d/common.conf` (which stock filters
//! include), NUL, then log lines (one per `\n`, capped at 64 KiB as the source caps them). No host
//! name is ever resolved (the resolver answers nothing).

#![no_main]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use ferroban_config::{ConfigSource, Loader, Root};
use ferroban_engine::filter::{Filter, FilterOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut it = data.splitn(3, |b| *b == 0);
    let (Some(def_text), Some(common), Some(log)) = (it.next(), it.next(), it.next()) else {
        return;
    };
    let log = String::from_utf8_lossy(log);
    let mut files = BTreeMap::new();
    files.insert("filter.d/f.conf".to_string(), String::from_utf8_lossy(def_text).into_owned());
    files.insert("filter.d/common.conf".to_string(), String::from_utf8_lossy(common).into_owned());
    let loader = Loader::new(ConfigSource::new().with(Root::Memory {
        label: "fuzz".into(),
        files,
    }));
    let Ok(def) = ferroban_config::read_filter_with(&loader, "f", &[], Some("auto")) else {
        return;
    };
    let opts = FilterOptions {
        default_timezone: Some(jiff::tz::TimeZone::UTC),
        ..FilterOptions::default()
    };
    let Ok(mut filter) = Filter::new(&def, opts) else {
        return;
    };
    filter.set_resolver(Arc::new(|_: &str| Vec::new()));
    for line in common::lines(&log) {
        let r = filter.process_line(line, common::NOW);
        let _ = format!("{r:?}");
    }
});
