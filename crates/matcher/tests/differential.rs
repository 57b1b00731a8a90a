//! Differential acceptance test: ferroban-matcher against Python's `re` on
//! every stock fail2ban regex and the fail2ban sample logs.
//!
//! `tests/f2b_oracle.py` imports fail2ban from `$FERROBAN_F2B_ROOT` (default
//! `/tmp/f2b/root`), resolves every filter (with the option variants the
//! samples use), expands the regexes with fail2ban's own `Regex` class, runs
//! `re.search` and prints the results as JSON. This test compiles the same
//! regexes (from the unexpanded patterns, with our own tag expansion) and
//! requires 100% agreement: match or not, span, every named group, and
//! fail2ban's `getGroups()` (alt_/tuple_ handling).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use ferroban_matcher::{GroupValue, Prefilter, Regex, RegexOptions, UseDns};
use serde_json::{Map, Value};

fn f2b_root() -> String {
    let root = std::env::var("FERROBAN_F2B_ROOT").unwrap_or_else(|_| "/tmp/f2b/root".to_string());
    let pkg = Path::new(&root).join("usr/lib/python3/dist-packages/fail2ban");
    assert!(
        pkg.is_dir(),
        "fail2ban reference not found: {} does not exist. Set FERROBAN_F2B_ROOT to an extracted \
         fail2ban 1.0.2 tree (containing etc/fail2ban and usr/lib/python3/dist-packages/fail2ban).",
        pkg.display()
    );
    root
}

fn oracle() -> Value {
    let root = f2b_root();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/f2b_oracle.py");
    let out = Command::new("python3")
        .arg(&script)
        .env("FERROBAN_F2B_ROOT", &root)
        .env(
            "PYTHONPATH",
            Path::new(&root).join("usr/lib/python3/dist-packages"),
        )
        .output()
        .expect("python3 must be installed to run the differential test");
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("oracle output is JSON")
}

fn groups_json(g: Vec<(ferroban_matcher::Name, GroupValue)>) -> Map<String, Value> {
    g.into_iter()
        .map(|(k, v)| {
            let v = match v {
                GroupValue::None => Value::Null,
                GroupValue::Str(s) => Value::String(s.to_string()),
                GroupValue::Tuple(t) => Value::Array(
                    t.into_iter()
                        .map(|x| x.map_or(Value::Null, Value::String))
                        .collect(),
                ),
            };
            (k.to_string(), v)
        })
        .collect()
}

#[test]
fn agrees_with_python_on_every_stock_regex_and_sample() {
    let t0 = Instant::now();
    let data = oracle();
    let t_oracle = t0.elapsed();
    let mut disagreements: Vec<String> = Vec::new();

    let specs = data["regexes"].as_array().expect("regexes");
    let mut compiled: Vec<Option<Regex>> = Vec::with_capacity(specs.len());
    for spec in specs {
        let pattern = spec["pattern"].as_str().unwrap_or_default();
        let opts = RegexOptions {
            multiline: spec["multiline"].as_bool().unwrap_or(false),
            use_dns: if spec["usedns"] == "no" {
                UseDns::No
            } else {
                UseDns::Warn
            },
        };
        let ours = Regex::new(pattern, &opts);
        let py_ok = spec["ok"].as_bool().unwrap_or(false);
        match (&ours, py_ok) {
            (Ok(_), false) => disagreements.push(format!(
                "compiles here, Python refuses: {pattern:?}: {}",
                spec["error"]
            )),
            (Err(e), true) => disagreements.push(format!("Python compiles, we refuse: {e}")),
            _ => {}
        }
        compiled.push(ours.ok());
    }

    // One prefilter over every regex: it must never rule out a regex Python matches.
    let present: Vec<usize> = (0..compiled.len())
        .filter(|&i| compiled[i].is_some())
        .collect();
    let refs: Vec<&Regex> = present
        .iter()
        .filter_map(|&i| compiled[i].as_ref())
        .collect();
    let prefilter = Prefilter::new(&refs);
    let mut slot = vec![usize::MAX; compiled.len()];
    for (k, &i) in present.iter().enumerate() {
        slot[i] = k;
    }
    // A prefilter per regex takes the few-regexes path (screen, then each regex's required sets).
    let single: Vec<Option<Prefilter>> = compiled
        .iter()
        .map(|r| r.as_ref().map(|r| Prefilter::new(&[r])))
        .collect();
    let mut single_cand = Vec::new();
    let mut cand = Vec::new();
    let mut ruled_out = 0usize;
    let mut last_hay = "";

    let searches = data["searches"].as_array().expect("searches");
    let mut matched = 0usize;
    let mut linear_checked = 0usize;
    let t1 = Instant::now();
    for s in searches {
        let rid = s["r"].as_u64().unwrap_or(0) as usize;
        let hay = s["h"].as_str().unwrap_or_default();
        let Some(re) = compiled[rid].as_ref() else {
            continue;
        };
        let expected = &s["m"];
        // The linear-time path (long haystacks, exhausted budget) must agree with PCRE2's.
        if let Some(linear) = re.search_linear(hay) {
            linear_checked += 1;
            let a = linear.map(|c| (c.start(), c.end(), c.groupdict()));
            let b = re.search(hay).map(|c| (c.start(), c.end(), c.groupdict()));
            if a != b {
                disagreements.push(format!(
                    "linear path {a:?} vs PCRE2 {b:?}: regex {:?} on {hay:?}",
                    specs[rid]["pattern"]
                ));
            }
        }
        let ours = re.search(hay);
        if hay != last_hay {
            prefilter.candidates(hay, &mut cand);
            last_hay = hay;
        }
        if !cand[slot[rid]] {
            ruled_out += 1;
            if !expected.is_null() {
                disagreements.push(format!(
                    "prefilter ruled out a matching regex {:?} on {hay:?}",
                    specs[rid]["pattern"]
                ));
            }
        }
        if let Some(p) = &single[rid] {
            p.candidates(hay, &mut single_cand);
            if !single_cand[0] && !expected.is_null() {
                disagreements.push(format!(
                    "single-regex prefilter ruled out a matching regex {:?} on {hay:?}",
                    specs[rid]["pattern"]
                ));
            }
        }
        let ctx = || format!("regex {:?} on {:?}", specs[rid]["pattern"], hay);
        if re.is_match(hay) != ours.is_some() {
            disagreements.push(format!("is_match and search disagree: {}", ctx()));
        }
        match (ours, expected.is_null()) {
            (None, true) => {}
            (None, false) => disagreements.push(format!("Python matches, we do not: {}", ctx())),
            (Some(c), true) => disagreements.push(format!(
                "we match {:?}, Python does not: {}",
                c.as_str(),
                ctx()
            )),
            (Some(c), false) => {
                matched += 1;
                let span = [c.start() as u64, c.end() as u64];
                let py_span: Vec<u64> = expected["span"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_u64).collect())
                    .unwrap_or_default();
                if py_span != span {
                    disagreements.push(format!("span {span:?} vs Python {py_span:?}: {}", ctx()));
                }
                let py_groups = expected["groups"].as_object().cloned().unwrap_or_default();
                let names: Vec<&str> = re.group_names().collect();
                if names.len() != py_groups.len() {
                    disagreements.push(format!(
                        "group names {names:?} vs Python {:?}: {}",
                        py_groups.keys().collect::<Vec<_>>(),
                        ctx()
                    ));
                }
                for (name, py) in &py_groups {
                    let ours = c.span(name).map(|(a, b)| vec![a as u64, b as u64]);
                    let py: Option<Vec<u64>> = py
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_u64).collect());
                    if ours != py {
                        disagreements.push(format!(
                            "group {name}: {ours:?} vs Python {py:?}: {}",
                            ctx()
                        ));
                    }
                }
                let f2b = expected["f2b"].as_object().cloned().unwrap_or_default();
                let ours = groups_json(c.groups());
                if ours != f2b {
                    disagreements.push(format!("getGroups {ours:?} vs Python {f2b:?}: {}", ctx()));
                }
            }
        }
    }
    let t_ours = t1.elapsed();
    let distinct: std::collections::HashSet<&str> =
        specs.iter().filter_map(|s| s["pattern"].as_str()).collect();
    eprintln!(
        "differential: {} regexes ({} distinct patterns; {} compiled), {} searches compared \
         ({} matches, {} ruled out by the prefilter, {} also run on the linear path), {} disagreements; oracle {:.2?}, ferroban searches {:.2?}",
        specs.len(),
        distinct.len(),
        compiled.iter().filter(|c| c.is_some()).count(),
        searches.len(),
        matched,
        ruled_out,
        linear_checked,
        disagreements.len(),
        t_oracle,
        t_ours
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements with Python, first ones:\n{}",
        disagreements.len(),
        disagreements
            .iter()
            .take(25)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
