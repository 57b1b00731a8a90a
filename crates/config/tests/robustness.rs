//! No panics on arbitrary input: pseudo-random strings through every parser.

use std::collections::BTreeMap;

use ferroban_config::{
    ConfigSource, JailsOptions, Loader, Root, parse_duration, parse_reference, read_jails_with,
    split_references,
};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn text(&mut self, alphabet: &[&str], len: usize) -> String {
        (0..len)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize])
            .collect()
    }
}

const ALPHABET: &[&str] = &[
    "a",
    "b",
    "[",
    "]",
    "=",
    ":",
    ",",
    "\"",
    "'",
    "%",
    "(",
    ")",
    "s",
    "<",
    ">",
    "/",
    "\n",
    " ",
    "\t",
    ";",
    "#",
    "known/",
    "%(a)s",
    "%(b/a)s",
    "[a]",
    "[DEFAULT]",
    "[INCLUDES]",
    "before = ",
    "1",
    "d",
    "h",
    "-",
    "+",
    "*",
    ".",
    "é",
    "\u{feff}",
    "\\",
    "?",
    "[Init?x=y]",
];

#[test]
fn random_inputs_do_not_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..3000 {
        let len = (rng.next() % 60) as usize;
        let s = rng.text(ALPHABET, len);
        let _ = parse_reference(&s);
        let _ = split_references(&s);
        let _ = parse_duration(&s);
        if i % 10 == 0 {
            let jail = format!("[j]\nenabled = true\nfilter = f\naction = a\n{s}\n");
            let files: BTreeMap<String, String> = [
                ("jail.conf".to_string(), jail),
                ("filter.d/f.conf".to_string(), s.clone()),
                (
                    "action.d/a.conf".to_string(),
                    format!("[Definition]\nactionban = {s}\n"),
                ),
            ]
            .into_iter()
            .collect();
            let loader = Loader::new(ConfigSource::new().with(Root::Memory {
                label: "fuzz".into(),
                files,
            }));
            let _ = read_jails_with(&loader, &JailsOptions::default());
        }
    }
}

#[test]
fn include_cycles_terminate() {
    let files: BTreeMap<String, String> = [
        (
            "jail.conf",
            "[INCLUDES]\nbefore = a.conf\n[j]\nenabled = false\n",
        ),
        ("a.conf", "[INCLUDES]\nbefore = b.conf\nafter = jail.conf\n"),
        (
            "b.conf",
            "[INCLUDES]\nbefore = a.conf\n         jail.conf\n",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let loader = Loader::new(ConfigSource::new().with(Root::Memory {
        label: "m".into(),
        files,
    }));
    let cfg = read_jails_with(&loader, &JailsOptions::default()).unwrap();
    assert_eq!(cfg.disabled, vec!["j"]);
}

#[test]
fn long_reference_lists_are_fast() {
    let mut s = String::from("a[");
    for i in 0..200 {
        s.push_str(&format!("k{i}=\"v{i}\" "));
    }
    let t = std::time::Instant::now();
    let _ = split_references(&s);
    let _ = parse_reference(&s);
    assert!(t.elapsed().as_secs() < 2);
}
