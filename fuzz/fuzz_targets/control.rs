//! The control protocol as the server and the client read it: a request line (JSON, version,
//! argv) and a response line, then the client's rendering of any response value for any
//! command (fail2ban-client's layout). A request that parses must survive its own encoding.
//!
//! fail2ban's pickle framing (issue 11) has its own target: `pickle`.

#![no_main]

use ferroban::control::beautify;
use ferroban::control::proto::{Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = Request::parse(data) {
        let line = req.to_line();
        assert_eq!(Request::parse(line.as_bytes()).as_ref(), Ok(&req), "{line:?}");
        // The server's reply to it, as the client renders any value.
        if let Ok(Ok(value)) = Response::parse(data) {
            let _ = beautify::render(&req.argv, &value);
        }
    }
    if let Ok(Ok(value)) = Response::parse(data) {
        for argv in [
            &["status"][..],
            &["status", "sshd"],
            &["status", "--all", "long"],
            &["banned"],
            &["get", "sshd", "banip", "--with-time"],
            &["get", "sshd", "logpath"],
            &["get", "sshd", "actions"],
            &["get", "sshd", "ignoreip"],
            &["stats"],
            &["ping"],
        ] {
            let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
            let _ = beautify::render(&argv, &value);
        }
        let _ = ferroban::control::pyrepr::repr(&value);
    }
});
