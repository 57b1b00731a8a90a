//! Driver for bench/firewall.sh: restores N bans with ferroban's nftables backend inside a network
//! namespace and prints how long it took.
//!
//! ```text
//! firewall_restore --netns NS | --in-netns  --count N --mode reconcile|ban|single [--jail NAME]
//! ```
//! `--netns NS` runs every `nft` under `ip netns exec NS`; `--in-netns` runs `nft` directly and is
//! meant for `ip netns exec NS firewall_restore ...` (it refuses to run in its parent's network
//! namespace: started from a shell on the host, it would change the host's firewall).
//! - `reconcile`: start-up restore (lists the jail's sets, writes the difference in one `nft -f`);
//! - `ban`: one `ban()` call with all N bans (one `nft -f`);
//! - `ban-compat`: the same without `start`'s probe, i.e. as on a kernel that does not update the
//!   timeout of an element added again (each element written as add + delete + add);
//! - `single`: N `ban()` calls of one address each, reporting the median and p99 of a call.
//!
//! Bans are IPv4 addresses 10.x.y.z with 1 day to go. Prints one line of `key=value` pairs; after
//! the timed part it lists the set and reports how many elements are present.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use anyhow::{Context, bail};
use ferroban::firewall::{Ban, JailRule, NftBackend, NftOptions, Runner};
use ferroban::ip::HostId;

fn main() -> anyhow::Result<()> {
    let mut netns = None;
    let mut count: usize = 10_000;
    let mut mode = "reconcile".to_string();
    let mut jail = "bench".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--netns" => netns = Some(Some(value()?)),
            "--in-netns" => netns = Some(None),
            "--count" => count = value()?.parse().context("--count")?,
            "--mode" => mode = value()?,
            "--jail" => jail = value()?,
            other => bail!("unknown argument {other:?} (see the source's header)"),
        }
    }
    let runner = match netns
        .context("--netns NS or --in-netns is required (the benchmark never runs on the host)")?
    {
        Some(ns) => Runner::with_prefix(["ip", "netns", "exec", ns.as_str()]),
        None => {
            let own = std::fs::read_link("/proc/self/ns/net")?;
            let ppid = std::os::unix::process::parent_id();
            let parent = std::fs::read_link(format!("/proc/{ppid}/ns/net"))
                .context("reading the parent's network namespace")?;
            if own == parent {
                bail!(
                    "--in-netns: running in the parent's network namespace ({own:?}), not in one \
                     made for the benchmark (use `ip netns exec NS ...`); refusing"
                );
            }
            Runner::new()
        }
    };
    let fw = NftBackend::new(
        JailRule::new(&jail, "multiport", "ssh", "tcp", "reject")?,
        NftOptions {
            probe_readd: mode != "ban-compat",
            ..NftOptions::default()
        },
        runner,
    );
    let bans: Vec<Ban> = (0..count as u32)
        .map(|i| {
            (
                HostId::Addr(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i))),
                Some(86_400.0),
            )
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        fw.start().await?;
        fw.runner().clear_history();
        let t = Instant::now();
        let mut extra = String::new();
        match mode.as_str() {
            "reconcile" => {
                fw.reconcile(&bans).await?;
            }
            "ban" | "ban-compat" => {
                fw.ban(&bans).await?;
            }
            "single" => {
                let mut lat = Vec::with_capacity(bans.len());
                for b in &bans {
                    let t = Instant::now();
                    fw.ban(std::slice::from_ref(b)).await?;
                    lat.push(t.elapsed().as_secs_f64());
                }
                lat.sort_by(f64::total_cmp);
                let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
                extra = format!(
                    " median_ms={:.2} p99_ms={:.2}",
                    pct(0.5) * 1e3,
                    pct(0.99) * 1e3
                );
            }
            other => bail!("unknown --mode {other:?}"),
        }
        let secs = t.elapsed().as_secs_f64();
        let history = fw.runner().history();
        let writes = history.iter().filter(|a| a[..2] == ["nft", "-f"]).count();
        let present = fw.elements().await?.len();
        println!(
            "mode={mode} count={count} seconds={secs:.3} invocations={} writes={writes} present={present} readd_sets_timeout={:?}{extra}",
            history.len(),
            fw.readd_sets_timeout()
        );
        anyhow::Ok(())
    })
}
