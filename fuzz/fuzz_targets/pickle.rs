//! fail2ban's own framing on the control socket (issue 11): a restricted pickle ending in
//! `<F2B_END_COMMAND>`, as fail2ban-client sends it (and as a fail2ban server answers the
//! ferroban client). Decoded as a request and as a reply; whatever decodes must survive its own
//! encoding (the value encoded and decoded again is the same value), and a request frame turns
//! into command words or the close message, never a panic.

#![no_main]

use ferroban::control::f2bwire;
use ferroban::control::pickle::{self, Accept};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for accept in [Accept::Commands, Accept::Replies] {
        if let Ok(v) = pickle::decode(data, accept) {
            let again = match pickle::decode(&pickle::encode(&v), Accept::Replies) {
                Ok(again) => again,
                // Memo references are expanded on decoding and the encoder does not memoize:
                // a value near the size limit may re-encode past it (found by this target with
                // a 4 KB memo fan-out expanding to ~1M values). That refusal is the limit
                // working; any other refusal of our own encoding is a defect.
                Err(e) if e.0.contains(&format!("more than {}", pickle::MAX_NODES)) => continue,
                Err(e) => panic!("{v:?} does not decode after encoding: {e:?}"),
            };
            // NaN is not equal to itself: compare the encodings then.
            if again != v {
                assert_eq!(pickle::encode(&again), pickle::encode(&v), "{v:?} vs {again:?}");
            }
            let _ = v.to_json();
            let _ = v.as_text();
        }
    }
    let _ = f2bwire::decode_request(data);
});
