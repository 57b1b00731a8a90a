use super::*;

/// `pickle.dumps(['set','sshd','banip','1.2.3.4', 5, True, None, 1.5], 5)` as fail2ban's
/// client (Python 3.11) writes it.
const CLIENT: &[u8] = b"\x80\x05\x951\x00\x00\x00\x00\x00\x00\x00]\x94(\x8c\x03set\x94\x8c\x04sshd\x94\x8c\x05banip\x94\x8c\x071.2.3.4\x94K\x05\x88NG?\xf8\x00\x00\x00\x00\x00\x00e.";

/// `pickle.dumps((1, UnknownJailException('x')), 5)`: what fail2ban's server answers.
const SERVER_ERROR: &[u8] = b"\x80\x05\x95<\x00\x00\x00\x00\x00\x00\x00K\x01\x8c\x13fail2ban.exceptions\x94\x8c\x14UnknownJailException\x94\x93\x94\x8c\x01x\x94\x85\x94R\x94\x86\x94.";

fn s(x: &str) -> PyVal {
    PyVal::Str(x.into())
}

#[test]
fn decodes_what_fail2bans_client_sends() {
    assert_eq!(
        decode(CLIENT, Accept::Commands).unwrap(),
        PyVal::List(vec![
            s("set"),
            s("sshd"),
            s("banip"),
            s("1.2.3.4"),
            PyVal::Int(5),
            PyVal::Bool(true),
            PyVal::None,
            PyVal::Float(1.5)
        ])
    );
}

#[test]
fn decodes_a_servers_exception_only_as_data_and_only_for_replies() {
    assert_eq!(
        decode(SERVER_ERROR, Accept::Replies).unwrap(),
        PyVal::Tuple(vec![
            PyVal::Int(1),
            PyVal::Object {
                module: "fail2ban.exceptions".into(),
                name: "UnknownJailException".into(),
                args: vec![s("x")]
            }
        ])
    );
    let e = decode(SERVER_ERROR, Accept::Commands).unwrap_err();
    assert!(
        e.0.contains("fail2ban.exceptions.UnknownJailException"),
        "{e}"
    );
}

#[test]
fn round_trips_through_the_encoder() {
    let v = PyVal::Tuple(vec![
        PyVal::Int(0),
        PyVal::List(vec![
            PyVal::Tuple(vec![s("Number of jail"), PyVal::Int(2)]),
            PyVal::Tuple(vec![s("Jail list"), s("a, b")]),
            PyVal::Dict(vec![(s("k"), PyVal::List(vec![]))]),
            PyVal::Set(vec![PyVal::Int(-7)]),
            PyVal::Int(i64::MIN),
            PyVal::Int(1 << 40),
            PyVal::Float(-0.25),
            PyVal::Bytes(b"\x00\xff".to_vec()),
            PyVal::Str("é ü \u{1F600}".into()),
            PyVal::None,
            PyVal::Bool(false),
        ]),
        PyVal::Object {
            module: "builtins".into(),
            name: "Exception".into(),
            args: vec![s("Invalid command")],
        },
    ]);
    assert_eq!(decode(&encode(&v), Accept::Replies).unwrap(), v);
    let cmd = PyVal::List(vec![s("status"), s("sshd")]);
    assert_eq!(decode(&encode(&cmd), Accept::Commands).unwrap(), cmd);
}

#[test]
fn shared_references_see_later_appends_like_python() {
    // l = []; memo l; [l, l] where l gets 1 appended after memoization.
    let p = b"\x80\x04](]\x94h\x00K\x01ae.";
    // outer list: MARK, inner list memoized as 0, GET 0, then append 1 to the top (the GET
    // result: same list), APPENDS both into the outer list.
    assert_eq!(
        decode(p, Accept::Commands).unwrap(),
        PyVal::List(vec![
            PyVal::List(vec![PyVal::Int(1)]),
            PyVal::List(vec![PyVal::Int(1)])
        ])
    );
}

#[test]
fn hostile_globals_and_calls_are_refused() {
    let cases: &[&[u8]] = &[
        // protocol 0: os.system('touch /tmp/pwned')
        b"cos\nsystem\n(S'touch /tmp/pwned'\ntR.",
        // protocol 4: STACK_GLOBAL + REDUCE
        b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x04true\x85R.",
        // builtins.eval / subprocess inside a list
        b"\x80\x02](cbuiltins\neval\nX\x04\x00\x00\x001+1\x85Re.",
        // INST and OBJ opcodes
        b"(S'ls'\nios\nsystem\n.",
        b"(cos\nsystem\nS'ls'\no.",
        // NEWOBJ of a global class
        b"\x80\x02csubprocess\nPopen\n)\x81.",
        // persistent id, extension registry
        b"\x80\x02Pfoo\n.",
        b"\x80\x02\x82\x01.",
        // a dict and a set (fail2ban's client never sends them)
        b"\x80\x04}.",
        b"\x80\x04\x8f.",
    ];
    for p in cases {
        let e = decode(p, Accept::Commands).unwrap_err();
        assert!(e.0.starts_with("refused"), "{p:?}: {e}");
    }
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    // 1,000,000 nested tuples: ) then TUPLE1 repeated.
    let mut p = vec![0x80, 4, b')'];
    p.extend(std::iter::repeat_n(0x85u8, 1_000_000));
    p.push(b'.');
    assert!(
        decode(&p, Accept::Commands)
            .unwrap_err()
            .0
            .contains("deeper")
    );
    // 1,000,000 nested lists through MARK/APPENDS.
    let mut p = vec![0x80, 4];
    for _ in 0..1_000_000 {
        p.extend_from_slice(b"](");
    }
    p.push(b'.');
    assert!(
        decode(&p, Accept::Commands)
            .unwrap_err()
            .0
            .contains("deeper")
    );
    // 100,000 lists nested through APPEND and memo references, without marks: each new list is
    // appended into the previous one, then fetched back from the memo to receive the next.
    let mut p = vec![0x80, 4, b']', b'r', 0xff, 0xff, 0xff, 0xff, b']'];
    for i in 0..100_000u32 {
        p.push(b'r');
        p.extend_from_slice(&i.to_le_bytes());
        p.extend_from_slice(b"a0j");
        p.extend_from_slice(&i.to_le_bytes());
        p.push(b']');
    }
    p.extend_from_slice(b"a0j\xff\xff\xff\xff.");
    let e = decode(&p, Accept::Commands).unwrap_err();
    assert!(e.0.contains("deeper"), "{e}");
    // A list that contains itself.
    let e = decode(b"\x80\x04]\x94h\x00a.", Accept::Commands).unwrap_err();
    assert!(e.0.contains("deeper"), "{e}");
}

#[test]
fn memo_fan_out_is_bounded() {
    // L0 = [1]; Ln = [Ln-1, Ln-1] for 40 levels: 2^40 values when expanded.
    let mut p = vec![0x80, 4, b']', b'K', 1, b'a', b'q', 0];
    for i in 1..=40u8 {
        p.extend_from_slice(&[b']', b'(', b'h', i - 1, b'h', i - 1, b'e', b'q', i]);
        // keep only the newest on the stack: pop the previous one below it
    }
    p.push(b'.');
    let e = decode(&p, Accept::Commands).unwrap_err();
    assert!(
        e.0.contains("left on the stack") || e.0.contains("more than") || e.0.contains("deeper"),
        "{e}"
    );
    // The same with the stack kept clean (POP after each memo): refused by depth or size.
    let mut p = vec![0x80, 4, b']', b'K', 1, b'a', b'q', 0, b'0'];
    for i in 1..=25u8 {
        p.extend_from_slice(&[b']', b'(', b'h', i - 1, b'h', i - 1, b'e', b'q', i, b'0']);
    }
    p.extend_from_slice(&[b'h', 25, b'.']);
    let e = decode(&p, Accept::Commands).unwrap_err();
    assert!(e.0.contains("more than"), "{e}");
}

#[test]
fn huge_announced_lengths_allocate_nothing() {
    let cases: &[&[u8]] = &[
        b"\x80\x04X\xff\xff\xff\xff",
        b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\x7f",
        b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\xff",
        b"\x80\x04B\xff\xff\xff\x7fabc",
        b"\x80\x04\x8b\xff\xff\xff\x7f",
        b"\x80\x04\x8a\xff",
    ];
    for p in cases {
        let e = decode(p, Accept::Commands).unwrap_err();
        assert!(
            e.0.contains("announces") || e.0.contains("wider") || e.0.contains("truncated"),
            "{p:?}: {e}"
        );
    }
}

#[test]
fn every_truncation_and_random_input_is_an_error_not_a_panic() {
    for n in 0..CLIENT.len() {
        assert!(
            decode(&CLIENT[..n], Accept::Commands).is_err(),
            "cut at {n}"
        );
    }
    for n in 0..SERVER_ERROR.len() {
        assert!(
            decode(&SERVER_ERROR[..n], Accept::Replies).is_err(),
            "cut at {n}"
        );
    }
    // Data after STOP, STOP with leftovers.
    assert!(decode(b"\x80\x04N.N", Accept::Commands).is_err());
    assert!(decode(b"\x80\x04NN.", Accept::Commands).is_err());
    assert!(decode(b"", Accept::Commands).is_err());
    // A cheap deterministic generator: every byte sequence is refused or decoded, no panic.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        let len = (x % 64) as usize;
        let mut p = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Bias towards real opcodes.
            let ops = b"\x80\x95.(012NJKM\x8a\x8bGIL\x8cX\x8dCB)\x85\x86\x87t]lae}dsu\x8f\x90\x94qrhjcR\x93b";
            p.push(if x.is_multiple_of(3) {
                (x >> 8) as u8
            } else {
                ops[(x >> 16) as usize % ops.len()]
            });
        }
        let _ = decode(&p, Accept::Commands);
        let _ = decode(&p, Accept::Replies);
    }
}

#[test]
fn json_conversions() {
    let j = serde_json::json!({"a": [1, 2.5, null, true, "x"]});
    assert_eq!(PyVal::from_json(&j).to_json(), j);
    assert_eq!(PyVal::Float(1.0).as_text(), "1.0");
    assert_eq!(PyVal::Bool(true).as_text(), "True");
}

/// Found by the pickle fuzzer: 32 tuples around a bare global decode (a reply), but the value
/// re-encoded (the global as a call without arguments) was refused as nesting too deep. A call
/// without arguments now nests as deep as the global it calls.
#[test]
fn a_global_at_the_depth_limit_survives_its_own_encoding() {
    let mut p = b"\x80\x04cmod\nname\n".to_vec();
    p.extend(std::iter::repeat_n(0x85, MAX_DEPTH)); // TUPLE1
    p.push(b'.');
    let v = decode(&p, Accept::Replies).expect("32 tuples around a global");
    let again = decode(&encode(&v), Accept::Replies).expect("the same value re-encoded");
    assert_eq!(again, v);
    // One tuple more is refused either way.
    let mut deeper = p.clone();
    deeper.insert(deeper.len() - 1, 0x85);
    assert!(decode(&deeper, Accept::Replies).is_err());
    // The fuzzer's own input.
    let crash = [
        0x63, 0x0a, 0x65, 0x01, 0x47, 0x05, 0x0a, 0x85, 0x85, 0x85, 0x85, 0x85, 0x85, 0x85, 0x85,
        0x85, 0x85, 0x85, 0x85, 0x85, 0x85, 0x85, 0x85, 0x85, 0x85, 0x85, 0x85, 0x85, 0x71, 0x94,
        0x85, 0x85, 0x85, 0x85, 0x85, 0x85, 0x85, 0x85, 0x85, 0x85, 0x85, 0x71, 0x94, 0x94, 0x94,
        0x94, 0x71, 0x0a, 0x2e,
    ];
    if let Ok(v) = decode(&crash, Accept::Replies) {
        assert_eq!(decode(&encode(&v), Accept::Replies).unwrap(), v);
    }
}
