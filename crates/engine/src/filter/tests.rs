use super::*;

const NOW: f64 = 1_700_000_000.0; // 2023-11-14 22:13:20 UTC

fn opts() -> FilterOptions {
    FilterOptions {
        use_dns: UseDns::Raw,
        return_raw_host: true,
        check_find_time: false,
        default_timezone: Some(jiff::tz::TimeZone::UTC),
        ..FilterOptions::default()
    }
}

fn filter(fail: &[&str], ignore: &[&str], max_lines: usize, o: FilterOptions) -> Filter {
    let fail: Vec<String> = fail.iter().map(|s| s.to_string()).collect();
    let ignore: Vec<String> = ignore.iter().map(|s| s.to_string()).collect();
    Filter::from_parts(None, &fail, &ignore, max_lines, None, o).expect("filter builds")
}

fn ids(r: &LineResult) -> Vec<String> {
    r.failures
        .iter()
        .map(|f| f.id.as_ref().map(ToString::to_string).unwrap_or_default())
        .collect()
}

#[test]
fn date_is_cut_out_before_matching_and_parsed() {
    let mut f = filter(&[r"^ login failed from <HOST>$"], &[], 1, opts());
    let r = f.process_line("2023-11-14 22:00:00 login failed from 192.0.2.7", NOW);
    assert_eq!(ids(&r), vec!["192.0.2.7"]);
    assert_eq!(r.failures[0].time, Some(1_699_999_200.0));
    assert_eq!(r.failures[0].data.attempts(), 1);
    let missed = f.process_line("2023-11-14 22:00:01 login ok from 192.0.2.7", NOW);
    assert!(missed.failures.is_empty());
}

#[test]
fn ipv6_and_mapped_addresses_are_normalised() {
    let mut f = filter(&[r"^ bad from <HOST>$"], &[], 1, opts());
    let r = f.process_line("2023-11-14 22:00:00 bad from 2001:DB8:0:0::1", NOW);
    assert_eq!(ids(&r), vec!["2001:db8::1"]);
    let r = f.process_line("2023-11-14 22:00:00 bad from ::ffff:198.51.100.3", NOW);
    assert_eq!(ids(&r), vec!["198.51.100.3"]);
}

#[test]
fn ignoreregex_drops_a_match_and_is_reported() {
    let mut f = filter(&[r"^ bad from <HOST>"], &[r"trusted"], 1, opts());
    let r = f.process_line("2023-11-14 22:00:00 bad from 192.0.2.1 trusted", NOW);
    assert!(r.failures.is_empty());
    assert_eq!(r.ignored, vec![0]);
}

#[test]
fn first_regex_wins_unless_all_are_checked() {
    let pats = [r"^ bad (\w+) from <HOST>$", r"^ bad user from <HOST>$"];
    let mut first = filter(&pats, &[], 1, opts());
    let r = first.process_line("2023-11-14 22:00:00 bad user from 192.0.2.1", NOW);
    assert_eq!(r.failures.len(), 1);
    let mut all = filter(
        &pats,
        &[],
        1,
        FilterOptions {
            check_all_regex: true,
            ..opts()
        },
    );
    let r = all.process_line("2023-11-14 22:00:00 bad user from 192.0.2.1", NOW);
    assert_eq!(
        r.failures.iter().map(|f| f.regex_index).collect::<Vec<_>>(),
        vec![0, 1]
    );
}

#[test]
fn fid_other_than_host_keeps_the_address_aside() {
    let mut f = filter(&[r"^ user <F-ID>\S+</F-ID> from <HOST>$"], &[], 1, opts());
    let r = f.process_line("2023-11-14 22:00:00 user alice from 192.0.2.9", NOW);
    assert_eq!(ids(&r), vec!["alice"]);
    assert_eq!(
        r.failures[0]
            .data
            .ip
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("192.0.2.9")
    );
}

#[test]
fn cidr_capture_makes_a_network_id() {
    let mut f = filter(&[r"^ block <ADDR>/<CIDR>$"], &[], 1, opts());
    let r = f.process_line("2023-11-14 22:00:00 block 192.0.2.77/24", NOW);
    assert_eq!(ids(&r), vec!["192.0.2.0/24"]);
}

#[test]
fn dateless_line_takes_the_last_date_within_a_minute() {
    let mut f = filter(&[r"^\s*bad from <HOST>$"], &[], 1, opts());
    f.process_line("2023-11-14 22:13:00 something else", NOW);
    let r = f.process_line("bad from 192.0.2.5", NOW);
    assert_eq!(r.failures[0].time, Some(1_699_999_980.0));
    assert!(r.no_date);
}

#[test]
fn catch_up_drops_lines_older_than_findtime() {
    let mut f = filter(
        &[r"^ bad from <HOST>$"],
        &[],
        1,
        FilterOptions {
            check_find_time: true,
            find_time: 600.0,
            ..opts()
        },
    );
    f.in_operation = false;
    let old = f.process_line("2023-11-14 21:00:00 bad from 192.0.2.5", NOW);
    assert!(old.too_old && old.failures.is_empty());
    let recent = f.process_line("2023-11-14 22:10:00 bad from 192.0.2.5", NOW);
    assert_eq!(ids(&recent), vec!["192.0.2.5"]);
}

#[test]
fn in_operation_odd_dates_become_now() {
    let mut f = filter(
        &[r"^ bad from <HOST>$"],
        &[],
        1,
        FilterOptions {
            check_find_time: true,
            ..opts()
        },
    );
    let r = f.process_line("2020-01-01 00:00:00 bad from 192.0.2.5", NOW);
    assert_eq!(r.failures[0].time, Some(NOW));
}

/// A connection id ties a no-failure line that names the address to a later failure line.
#[test]
fn multi_line_failure_id_merges_matches() {
    let pats = [
        r"^ conn <F-MLFID>\d+</F-MLFID>: <F-NOFAIL>open</F-NOFAIL> from <HOST>$",
        r"^ conn <F-MLFID>\d+</F-MLFID>: auth failed for <F-USER>\S+</F-USER>$",
        r"^ conn <F-MLFID>\d+</F-MLFID>: <F-MLFFORGET>closed</F-MLFFORGET>$",
    ];
    let mut f = filter(&pats, &[], 1, opts());
    let r = f.process_line("2023-11-14 22:00:00 conn 7: open from 192.0.2.44", NOW);
    assert!(r.failures.is_empty(), "nofail lines are held back");
    let r = f.process_line("2023-11-14 22:00:01 conn 7: auth failed for root", NOW);
    assert_eq!(ids(&r), vec!["192.0.2.44"]);
    assert_eq!(
        r.failures[0].data.attempts(),
        2,
        "the open line travels with the failure"
    );
    assert_eq!(r.failures[0].data.get_str("user"), Some("root"));
    let r = f.process_line("2023-11-14 22:00:02 conn 7: auth failed for admin", NOW);
    assert_eq!(ids(&r), vec!["192.0.2.44"]);
    assert_eq!(r.failures[0].data.attempts(), 1);
    assert_eq!(r.failures[0].data.users.as_ref().map(Vec::len), Some(2));
    f.process_line("2023-11-14 22:00:03 conn 7: closed", NOW);
    let r = f.process_line("2023-11-14 22:00:04 conn 7: auth failed for root", NOW);
    assert!(
        r.failures.is_empty(),
        "a forgotten connection has no address: pending, dropped"
    );
}

#[test]
fn a_held_failure_keeps_its_data_while_its_connection_changes() {
    // The cache and the result share a failure's data: a result still held when the next
    // line of its connection merges keeps what it had (the cache copies before it changes).
    let pats = [
        r"^ conn <F-MLFID>\d+</F-MLFID>: <F-NOFAIL>open</F-NOFAIL> from <HOST>$",
        r"^ conn <F-MLFID>\d+</F-MLFID>: auth failed for <F-USER>\S+</F-USER>$",
    ];
    let mut o = opts();
    o.check_all_regex = true;
    let mut f = filter(&pats, &[], 1, o);
    let first = f.process_line("2023-11-14 22:00:00 conn 7: open from 192.0.2.44", NOW);
    assert_eq!(
        first.failures.len(),
        1,
        "check-all reports the nofail match"
    );
    let second = f.process_line("2023-11-14 22:00:01 conn 7: auth failed for root", NOW);
    let third = f.process_line("2023-11-14 22:00:02 conn 7: auth failed for admin", NOW);
    assert!(first.failures[0].is_nofail());
    let held = &first.failures[0].data;
    assert_eq!(held.get_str("user"), None);
    assert_eq!(held.users, None);
    let s = &second.failures[0].data;
    assert_eq!(s.get_str("user"), Some("root"));
    assert_eq!(s.users.as_ref().map(Vec::len), Some(1));
    assert_eq!(
        s.attempts(),
        2,
        "the open line travels with the first failure"
    );
    let t = &third.failures[0].data;
    assert_eq!(t.get_str("user"), Some("admin"));
    assert_eq!(t.users.as_ref().map(Vec::len), Some(2));
    assert_eq!(t.attempts(), 1);
    // and what was held did not change the cache's copy
    drop((first, second));
    let fourth = f.process_line("2023-11-14 22:00:03 conn 7: auth failed for bob", NOW);
    let d = &fourth.failures[0].data;
    assert_eq!(d.users.as_ref().map(Vec::len), Some(3));
    assert_eq!(ids(&fourth), vec!["192.0.2.44"]);
}

#[test]
fn multi_line_buffer_matches_across_lines() {
    let mut f = filter(
        &[r"^ user (?P<user>\S+) tried$\n^ denied for <HOST>$"],
        &[],
        2,
        opts(),
    );
    assert!(
        f.process_line("2023-11-14 22:00:00 user bob tried", NOW)
            .failures
            .is_empty()
    );
    let r = f.process_line("2023-11-14 22:00:01 denied for 192.0.2.8", NOW);
    assert_eq!(ids(&r), vec!["192.0.2.8"]);
    assert_eq!(r.failures[0].data.attempts(), 2);
    // The matched lines leave the buffer: the next line alone does not match again.
    assert!(
        f.process_line("2023-11-14 22:00:02 unrelated", NOW)
            .failures
            .is_empty()
    );
}

#[test]
fn missing_failure_id_is_an_error() {
    let e =
        Filter::from_parts(None, &["^no id here$".to_string()], &[], 1, None, opts()).unwrap_err();
    assert!(e.to_string().contains("no failure-id group"), "{e}");
}

#[test]
fn prefilter_fast_path_agrees_with_the_full_path() {
    // Many regexes (prefilter on) and check_all_regex, against lines that do and don't match.
    let pats = [
        r"^ a from <HOST>$",
        r"^ b from <HOST>$",
        r"^ c user \S+ from <HOST>$",
        r"^ d <HOST> refused$",
    ];
    let lines = [
        "2023-11-14 22:00:00 a from 192.0.2.1",
        "2023-11-14 22:00:00 b from 192.0.2.2",
        "2023-11-14 22:00:00 c user x from 192.0.2.3",
        "2023-11-14 22:00:00 d 192.0.2.4 refused",
        "2023-11-14 22:00:00 e from 192.0.2.5",
        "2023-11-14 22:00:00 nothing",
    ];
    let mut fast = filter(&pats, &[], 1, opts());
    let mut full = filter(&pats, &[], 1, opts());
    full.prefilter = std::sync::OnceLock::from(None);
    for l in lines {
        assert_eq!(
            ids(&fast.process_line(l, NOW)),
            ids(&full.process_line(l, NOW)),
            "{l}"
        );
    }
}

#[test]
fn prefregex_content_fast_path_agrees_with_the_full_path() {
    // sshd's shape: prefregex with <F-MLFID> and <F-CONTENT>, failregexes on the content,
    // multi-line ids (nofail, mlfforget); the fast path (content screened without copies)
    // against the full path (every prefregex match processed).
    let pref = r"^<F-MLFID>\S+ sshd\[\d+\]:</F-MLFID> (?:error: )?<F-CONTENT>.+</F-CONTENT>$";
    let pats = [
        r"^Failed password for <F-USER>\S+</F-USER> from <HOST>$",
        r"^<F-NOFAIL>Connection from</F-NOFAIL> <HOST>",
        r"^<F-MLFFORGET>Disconnected</F-MLFFORGET> from <HOST>$",
    ];
    let lines = [
        "2023-11-14 22:00:00 h sshd[1]: Connection from 192.0.2.1",
        "2023-11-14 22:00:00 h sshd[1]: Failed password for root from 192.0.2.1",
        "2023-11-14 22:00:00 h sshd[2]: session opened for user bob",
        "2023-11-14 22:00:00 h sshd[1]: error: Failed password for x from 192.0.2.1",
        "2023-11-14 22:00:00 h cron[3]: Failed password for root from 192.0.2.9",
        "2023-11-14 22:00:00 h sshd[1]: Disconnected from 192.0.2.1",
        "2023-11-14 22:00:00 h sshd[4]: ",
        "2023-11-14 22:00:00 h sshd[4]: Failed password for root from 192.0.2.4",
    ];
    for check_all in [false, true] {
        let o = FilterOptions {
            check_all_regex: check_all,
            ..opts()
        };
        let build = || {
            Filter::from_parts(
                Some(pref),
                &pats.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                &[],
                1,
                None,
                o.clone(),
            )
            .unwrap()
        };
        let mut fast = build();
        let mut full = build();
        full.content_group = None;
        for l in lines {
            let a = fast.process_line(l, NOW);
            let b = full.process_line(l, NOW);
            assert_eq!(ids(&a), ids(&b), "{l}");
            assert_eq!(a.prefregex_matched, b.prefregex_matched, "{l}");
            let nofail =
                |r: &LineResult| r.failures.iter().map(|f| f.is_nofail()).collect::<Vec<_>>();
            assert_eq!(nofail(&a), nofail(&b), "{l}");
        }
    }
}

#[test]
fn a_match_without_an_id_leaves_an_empty_buffer_to_the_later_regexes() {
    // fail2ban: the first regex matches, its id group does not take part (an error is logged),
    // and the buffer is replaced by the lines the match did not cover, none: the second regex
    // searches an empty haystack and finds nothing. With every regex checked the buffer stays.
    let pats = [
        r"^ bad(?: from <HOST>)? user",
        r"^ bad user from (?P<fid>\S+)",
    ];
    let line = "2023-11-14 22:00:00 bad user from somewhere";
    let mut first = filter(&pats, &[], 1, opts());
    assert!(first.process_line(line, NOW).failures.is_empty());
    let all = FilterOptions {
        check_all_regex: true,
        ..opts()
    };
    let mut every = filter(&pats, &[], 1, all);
    assert_eq!(ids(&every.process_line(line, NOW)), vec!["somewhere"]);
}

#[test]
fn a_host_only_the_prefregex_captured_survives_a_failregex_group_that_did_not_take_part() {
    // fail2ban 1.1.1's dovecot shape: the address sits in the prefregex (in the worker's
    // parentheses) and in an optional group of the failregex, absent from this line.
    let pref = r"^ (?:auth\((?:\S*,<ADDR>(?:,\S*)?)\): )?<F-CONTENT>.+</F-CONTENT>$";
    let fail = [r"^(?:[a-z]+\(\S*,<ADDR>(?:,\S*)?\): )?[Pp]assword mismatch".to_string()];
    let mut f = Filter::from_parts(Some(pref), &fail, &[], 1, None, opts()).expect("builds");
    let r = f.process_line(
        "2023-11-14 22:00:00 auth(info@example.com,192.0.2.110,sasl:login): Password mismatch",
        NOW,
    );
    assert_eq!(ids(&r), vec!["192.0.2.110"]);
    // the failregex's own address, when it took part, still wins
    let r = f.process_line(
        "2023-11-14 22:00:00 auth(a,192.0.2.1,b): sql(u,192.0.2.2): Password mismatch",
        NOW,
    );
    assert_eq!(ids(&r), vec!["192.0.2.2"]);
}

#[test]
fn the_first_regex_whose_gate_matches_but_not_itself_passes_to_the_next() {
    // Regex 0's gate cannot follow the back-reference, so it lets through a line the regex
    // does not match; the gate set's first candidate is then 0, and regex 1 must still win.
    // Regex 2 matches no line; regex 3 (a user name as id) comes last.
    let pats = [
        r"^ user (\w+) from <HOST> again \1$",
        r"^ user \w+ from <HOST> again",
        r"^ nothing from <HOST>$",
        r"^ user <F-ID>\w+</F-ID>",
    ];
    let o = || FilterOptions {
        check_all_regex: false,
        ..opts()
    };
    let mut f = filter(&pats, &[], 1, o());
    let lines = [
        (
            "2023-11-14 22:00:00 user bob from 192.0.2.1 again alice",
            Some(1),
        ),
        (
            "2023-11-14 22:00:01 user bob from 192.0.2.2 again bob",
            Some(0),
        ),
        ("2023-11-14 22:00:02 user bob", Some(3)),
        ("2023-11-14 22:00:03 no user from 192.0.2.3", None),
    ];
    for (line, want) in lines {
        let r = f.process_line(line, NOW);
        assert_eq!(r.failures.first().map(|x| x.regex_index), want, "{line}");
        // every regex checked: the first failure is the same regex's
        let mut all = filter(&pats, &[], 1, opts());
        let ra = all.process_line(line, NOW);
        let first_id = ra.failures.iter().find(|x| x.id.is_some());
        assert_eq!(
            first_id.map(|x| x.regex_index),
            want,
            "{line} (all checked)"
        );
    }
    assert!(
        gateset_of(&f.gateset, &f.failregex).is_some(),
        "the filter screens with a gate set"
    );
}
