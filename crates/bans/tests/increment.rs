//! bantime.increment: every option, against values computed by Python with fail2ban's formulas.

use ferroban_bans::{
    BanHistory, BanRecord, BanTimeIncrement, BanTimePolicy, DEFAULT_FORMULA, IncrementOptions,
    RandomSource, Scope, SplitMix64, Store, StoreOptions,
};

/// Never random: returns the same number.
struct Fixed(f64);
impl RandomSource for Fixed {
    fn next_f64(&mut self) -> f64 {
        self.0
    }
}

fn inc(f: impl FnOnce(&mut IncrementOptions)) -> BanTimeIncrement {
    let mut o = IncrementOptions::default();
    f(&mut o);
    BanTimeIncrement::from_options(&o).expect("valid options")
}

#[test]
fn default_formula_for_counts_0_to_25() {
    let i = inc(|_| {});
    assert_eq!(i.formula().source(), DEFAULT_FORMULA);
    for count in 0..=25u64 {
        let expected = 600.0 * f64::from(1u32 << count.min(20));
        assert_eq!(
            i.evaluate(600.0, count, &mut Fixed(0.0)),
            Ok(expected),
            "count {count}"
        );
    }
    // The same formula written out explicitly gives the same values.
    let explicit = inc(|o| o.formula = Some(DEFAULT_FORMULA.into()));
    for count in 0..=25u64 {
        assert_eq!(
            explicit.evaluate(600.0, count, &mut Fixed(0.0)),
            i.evaluate(600.0, count, &mut Fixed(0.0))
        );
    }
}

#[test]
fn default_formula_with_a_factor_never_goes_below_bantime() {
    // Python: max(ban.Time, eval(formula)) with banFactor = eval("2.0 / 2.885385").
    let i = inc(|o| o.factor = Some("2.0 / 2.885385".into()));
    assert_eq!(i.factor(), 0.6931484013398559);
    let expected = [
        (0, 600.0),
        (1, 831.7780816078271),
        (2, 1663.5561632156541),
        (3, 3327.1123264313082),
        (5, 13308.449305725233),
        (20, 436091266.85000443),
        (25, 436091266.85000443),
    ];
    for (count, want) in expected {
        assert_eq!(
            i.evaluate(600.0, count, &mut Fixed(0.0)),
            Ok(want),
            "count {count}"
        );
    }
}

#[test]
fn documented_example_formula_is_exact() {
    let formula = "ban.Time * math.exp(float(ban.Count+1)*banFactor)/math.exp(1*banFactor)";
    let i = inc(|o| {
        o.formula = Some(formula.into());
        o.factor = Some("2.0 / 2.885385".into());
    });
    // Python 3: 600 * math.exp(float(c+1)*f)/math.exp(1*f), f = 2.0 / 2.885385.
    let python = [
        600.0,
        1200.0014649367868,
        2400.0058597507245,
        4800.017579262904,
        9600.046878063022,
        19200.11719522909,
        38400.28126872149,
        76800.65629408408,
        153601.50010167938,
        307203.37523083866,
        614407.5005175527,
        1228816.5011486888,
        2457636.002528206,
        4915278.005525388,
        9830568.012003392,
        19661160.025941323,
        39322368.05581033,
        78644832.11959319,
        157289856.25536564,
        314580096.54355913,
        629160961.1537118,
        1258323458.442483,
        2516649989.1588407,
        5033306122.8729315,
        10066624534.871347,
        20133273648.023743,
    ];
    for (count, want) in python.iter().enumerate() {
        assert_eq!(
            i.evaluate(600.0, count as u64, &mut Fixed(0.0)),
            Ok(*want),
            "count {count}"
        );
    }
    // Factor 1.
    let i = inc(|o| o.formula = Some(formula.into()));
    assert_eq!(i.evaluate(600.0, 3, &mut Fixed(0.0)), Ok(12051.3221539126));
}

#[test]
fn multipliers_index_by_count_and_repeat_the_last() {
    let i = inc(|o| o.multipliers = Some("1 5 30 60 300 720 1440 2880".into()));
    let want = [
        60.0, 300.0, 1800.0, 3600.0, 18000.0, 43200.0, 86400.0, 172800.0, 172800.0, 172800.0,
    ];
    for (count, w) in want.iter().enumerate() {
        assert_eq!(
            i.evaluate(60.0, count as u64, &mut Fixed(0.0)),
            Ok(*w),
            "count {count}"
        );
    }
    // The factor multiplies; the formula is ignored; there is no max(bantime, …) floor.
    let i = inc(|o| {
        o.multipliers = Some(" 0 2 ".into());
        o.factor = Some("1.5".into());
        o.formula = Some("ban.Time * 1000".into());
    });
    assert_eq!(i.multipliers(), [0, 2]);
    assert_eq!(i.evaluate(600.0, 0, &mut Fixed(0.0)), Ok(0.0));
    assert_eq!(i.evaluate(600.0, 7, &mut Fixed(0.0)), Ok(1800.0));
}

#[test]
fn maxtime_caps_and_rndtime_adds_after_the_cap() {
    let i = inc(|o| o.maxtime = Some(5.0 * 3600.0));
    assert_eq!(i.evaluate(600.0, 3, &mut Fixed(0.0)), Ok(4800.0));
    assert_eq!(i.evaluate(600.0, 10, &mut Fixed(0.0)), Ok(18000.0));
    let i = inc(|o| {
        o.maxtime = Some(18000.0);
        o.rndtime = Some(100.0);
    });
    assert_eq!(i.evaluate(600.0, 10, &mut Fixed(0.25)), Ok(18025.0));
    // Seeded: reproducible, and within [cap, cap + rndtime).
    let a: Vec<_> = {
        let mut r = SplitMix64::new(7);
        (0..20)
            .map(|_| i.evaluate(600.0, 10, &mut r).unwrap())
            .collect()
    };
    let b: Vec<_> = {
        let mut r = SplitMix64::new(7);
        (0..20)
            .map(|_| i.evaluate(600.0, 10, &mut r).unwrap())
            .collect()
    };
    assert_eq!(a, b);
    assert!(a.iter().all(|t| (18000.0..18100.0).contains(t)), "{a:?}");
    assert!(a.windows(2).any(|w| w[0] != w[1]), "random values vary");
}

#[test]
fn formula_errors_fall_back_to_bantime_like_fail2ban() {
    let policy = BanTimePolicy {
        bantime: 600.0,
        increment: Some(inc(|o| {
            o.formula = Some("ban.Time * math.exp(ban.Count * 1000)".into())
        })),
    };
    let h = BanHistory {
        count: 2,
        last_banned_at: 0.0,
        bantime: 600.0,
    };
    assert!(policy.decide(10.0, Some(&h), &mut Fixed(0.0)).is_err());
    let (d, err) = policy.decide_or_base(10.0, Some(&h), &mut Fixed(0.0));
    assert_eq!((d.bantime, d.ban_count), (600.0, 3));
    assert!(err.unwrap().to_string().contains("math.exp"));
}

#[test]
fn policy_decides_count_and_restored_flag() {
    let policy = BanTimePolicy {
        bantime: 600.0,
        increment: Some(inc(|_| {})),
    };
    let mut r = Fixed(0.0);
    // First ban: base time, count 1.
    let d = policy.decide(100.0, None, &mut r).unwrap();
    assert_eq!(
        (d.bantime, d.ban_count, d.already_recorded),
        (600.0, 1, false)
    );
    // Banned twice before: 600 * 2^2, recorded as the third ban.
    let h = BanHistory {
        count: 2,
        last_banned_at: 50.0,
        bantime: 1200.0,
    };
    let d = policy.decide(100.0, Some(&h), &mut r).unwrap();
    assert_eq!(
        (d.bantime, d.ban_count, d.already_recorded),
        (2400.0, 3, false)
    );
    // A failure not newer than the last ban was already recorded (log re-read after restart).
    assert!(
        policy
            .decide(50.0, Some(&h), &mut r)
            .unwrap()
            .already_recorded
    );
    // History with count 0 keeps the base time.
    let h0 = BanHistory {
        count: 0,
        last_banned_at: 0.0,
        bantime: 600.0,
    };
    assert_eq!(
        policy.decide(100.0, Some(&h0), &mut r).unwrap().bantime,
        600.0
    );
    // Permanent bantime is never incremented; without increment history is ignored.
    let perm = BanTimePolicy {
        bantime: -1.0,
        increment: Some(inc(|_| {})),
    };
    let d = perm.decide(100.0, Some(&h), &mut r).unwrap();
    assert_eq!((d.bantime, d.ban_count), (-1.0, 1));
    let fixed = BanTimePolicy::fixed(600.0);
    assert_eq!(
        fixed.decide(100.0, Some(&h), &mut r).unwrap().bantime,
        600.0
    );
    // Restore caps.
    assert_eq!(fixed.max_bantime(), Some(600.0));
    assert_eq!(BanTimePolicy::fixed(-1.0).max_bantime(), None);
    assert_eq!(policy.max_bantime(), None);
    let capped = BanTimePolicy {
        bantime: 600.0,
        increment: Some(inc(|o| o.maxtime = Some(7200.0))),
    };
    assert_eq!(capped.max_bantime(), Some(7200.0));
}

fn record(store: &mut Store, jail: &str, id: &str, at: f64, count: u64) {
    store
        .record_ban(&BanRecord {
            jail,
            id,
            banned_at: at,
            bantime: 600.0,
            ban_count: count,
            matches: &[],
            failures: 3,
        })
        .unwrap();
}

#[test]
fn overalljails_counts_bans_in_every_jail_through_the_store() {
    let mut store = Store::open_in_memory(StoreOptions::default()).unwrap();
    record(&mut store, "sshd", "1.2.3.4", 1000.0, 1);
    record(&mut store, "sshd", "1.2.3.4", 2000.0, 2);
    record(&mut store, "nginx", "1.2.3.4", 3000.0, 1);
    record(&mut store, "nginx", "5.6.7.8", 3000.0, 1);

    let per_jail = BanTimePolicy {
        bantime: 600.0,
        increment: Some(inc(|_| {})),
    };
    let overall = BanTimePolicy {
        bantime: 600.0,
        increment: Some(inc(|o| o.overalljails = true)),
    };
    let mut r = Fixed(0.0);

    let scope = per_jail.increment.as_ref().unwrap().scope("nginx");
    assert_eq!(scope, Scope::Jail("nginx"));
    let h = store.ban_count("1.2.3.4", scope, None).unwrap().unwrap();
    assert_eq!((h.count, h.last_banned_at), (1, 3000.0));
    assert_eq!(
        per_jail.decide(4000.0, Some(&h), &mut r).unwrap().bantime,
        1200.0
    );

    let scope = overall.increment.as_ref().unwrap().scope("nginx");
    assert_eq!(scope, Scope::All);
    let h = store.ban_count("1.2.3.4", scope, None).unwrap().unwrap();
    assert_eq!((h.count, h.last_banned_at, h.bantime), (3, 3000.0, 1200.0));
    let d = overall.decide(4000.0, Some(&h), &mut r).unwrap();
    assert_eq!((d.bantime, d.ban_count), (4800.0, 4));

    // `since` limits the history to recent bans.
    let h = store
        .ban_count("1.2.3.4", Scope::All, Some(2500.0))
        .unwrap()
        .unwrap();
    assert_eq!(h.count, 1);
    assert_eq!(store.ban_count("9.9.9.9", Scope::All, None).unwrap(), None);
    assert_eq!(
        store
            .ban_count("1.2.3.4", Scope::Jail("other"), None)
            .unwrap(),
        None
    );
}
