//! A blocklist imported with Debian's own `fail2ban-client` 1.0.2 (fail2ban's pickled framing on
//! ferroban's socket): `set <jail> banip` with 5,000 addresses in one request, about 80 KiB
//! pickled, more than the 64 KiB other requests may be. Then `unbanip` of all of them.
//!
//! Needs the fail2ban reference (scripts/f2b-env.sh); no firewall (an action that does nothing).

use ferroban_testkit::{Tree, f2b_command, f2b_root};

const BIN: &str = env!("CARGO_BIN_EXE_ferroban");

fn f2b_client(t: &Tree, args: &[String]) -> (i32, String) {
    let out = f2b_command("fail2ban-client")
        .arg("-c")
        .arg(f2b_root().join("etc/fail2ban"))
        .arg("-s")
        .arg(t.path("ferroban.sock"))
        .args(args)
        .output()
        .expect("run fail2ban-client");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn fail2ban_client_bans_and_unbans_5000_addresses_in_one_request() {
    let mut t = Tree::new(BIN, "f2bbulk", "ban", "INFO");
    t.write_web_jail("^<HOST> -.* 404", "bantime = 1h\n");
    t.spawn();
    t.wait_jail("web");
    let ips: Vec<String> = (0..5000u32)
        .map(|i| format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255))
        .collect();
    let words = |cmd: &str| -> Vec<String> {
        ["set", "web", cmd]
            .iter()
            .map(|w| w.to_string())
            .chain(ips.iter().cloned())
            .collect()
    };
    let (code, out) = f2b_client(&t, &words("banip"));
    assert_eq!(code, 0, "{}", &out[..out.len().min(2000)]);
    assert_eq!(out.trim(), "5000");
    let status = t.ok(&["status", "web"]);
    assert!(status.contains("Currently banned:\t5000"), "{status}");
    let (code, out) = f2b_client(&t, &words("unbanip"));
    assert_eq!(code, 0, "{}", &out[..out.len().min(2000)]);
    assert_eq!(out.trim(), "5000");
    let status = t.ok(&["status", "web"]);
    assert!(status.contains("Currently banned:\t0"), "{status}");
}
