#!/usr/bin/env bash
# Restoring bans into nftables, side by side in one run: ferroban's native nftables backend
# (crate::firewall::NftBackend, driven by crates/ferroban/examples/firewall_restore.rs) and the
# commands fail2ban 1.0.2's `nftables` action runs (action.d/nftables.conf of the reference:
# `actionstart` once, then `actionban` = one `nft add element ...` through /bin/sh per ban, which is
# how fail2ban restores its bans at start). Not a test: it prints a Markdown table.
#
#   bench/firewall.sh
#
# Everything runs in a network namespace made for the run and deleted at exit; the host's firewall
# is never touched. Between measurements the namespace's ruleset is flushed. Each measurement
# restores N IPv4 addresses (10.x.y.z) with 1 day to go:
#   ferroban reconcile  the start-up path: list the jail's sets, write the difference, one `nft -f`
#   ferroban ban()      one ban() call with all N (one `nft -f`; a plain `add element` when start()
#                       found that the kernel sets the timeout of an element added again)
#   ferroban ban() compat  the same as on a kernel that does not: each element add+delete+add
#   fail2ban nftables   N x `/bin/sh -c "nft add element inet f2b-table addr-set-bench { IP }"`
#                       (the shell and nft only: fail2ban's own Python work per ban comes on top)
# and checks afterwards that all N are in the kernel. A second table gives the latency of one ban
# (median and p99 over BENCH_SINGLE bans): a ban() call of one address vs one actionban command.
# Both sides run inside the namespace (`ip netns exec NS` once around the driver or the loop).
#
# Knobs (environment):
#   BENCH_SIZES       restore sizes (default "10000 100000")
#   BENCH_F2B_MAX     largest size run for fail2ban (default 100000; 100,000 bans take ~10-20 min)
#   BENCH_SINGLE      bans in the latency series (default 200)
#   CARGO_TARGET_DIR  where the example is built (default target/)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
sizes=(${BENCH_SIZES:-10000 100000})
f2b_max="${BENCH_F2B_MAX:-100000}"
single="${BENCH_SINGLE:-200}"

if [[ "$(id -u)" -ne 0 ]]; then
	echo "bench/firewall.sh: needs root (it creates a network namespace)" >&2
	exit 1
fi
for p in ip nft; do
	command -v "$p" >/dev/null || {
		echo "bench/firewall.sh: needs $p (see .ci/run's apt list)" >&2
		exit 1
	}
done

echo "bench/firewall.sh: building the driver (cargo build --release --example firewall_restore)" >&2
cargo build -q --release -p ferroban --example firewall_restore
bin="${CARGO_TARGET_DIR:-$repo/target}/release/examples/firewall_restore"

ns="fb-fwbench-$$"
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -f "$ips"; }
ips="$(mktemp)"
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
in_ns() { ip netns exec "$ns" "$@"; }

count_elements() { # table set -> number of elements
	in_ns nft -j list set inet "$1" "$2" |
		python3 -c 'import json,sys; d=json.load(sys.stdin)["nftables"]; print(sum(len(i["set"].get("elem",[])) for i in d if "set" in i))'
}

# fail2ban's actionstart for name=bench, port=ssh, protocol=tcp, rendered.
f2b_start() {
	in_ns sh -c '
nft add table inet f2b-table
nft -- add chain inet f2b-table f2b-chain \{ type filter hook input priority -1 \; \}
nft add set inet f2b-table addr-set-bench \{ type ipv4_addr\; \}
for proto in $(echo "tcp" | sed "s/,/ /g"); do
nft add rule inet f2b-table f2b-chain $proto dport \{ $(echo "ssh" | sed s/:/-/g) \} ip saddr @addr-set-bench reject
done'
}

# One actionban per line of $ips, each through /bin/sh as fail2ban runs it. Prints seconds.
f2b_restore() {
	in_ns bash -c '
start=$EPOCHREALTIME
while read -r ip; do
	/bin/sh -c "nft add element inet f2b-table addr-set-bench \{ $ip \}" || exit 1
done < "$1"
end=$EPOCHREALTIME
python3 -c "print(f\"{$end - $start:.3f}\")"' _ "$ips"
}

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

rows=()
for n in "${sizes[@]}"; do
	python3 -c "
for i in range($n):
    print(f'10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}')" >"$ips"
	for mode in reconcile ban ban-compat; do
		in_ns nft flush ruleset
		out="$(in_ns "$bin" --in-netns --count "$n" --mode "$mode")"
		echo "  ferroban $mode $n: $out" >&2
		[[ "$(field present "$out")" == "$n" ]] || {
			echo "bench/firewall.sh: ferroban $mode: not all $n present: $out" >&2
			exit 1
		}
		rows+=("| $n | ferroban \`$mode\` (re-add sets timeout: $(field readd_sets_timeout "$out")) | $(field seconds "$out") | $(field invocations "$out") (\`nft -f\`: $(field writes "$out")) |")
	done
	in_ns nft flush ruleset
	if ((n <= f2b_max)); then
		f2b_start
		secs="$(f2b_restore)"
		present="$(count_elements f2b-table addr-set-bench)"
		echo "  fail2ban nftables $n: ${secs} s, present=$present" >&2
		[[ "$present" == "$n" ]] || {
			echo "bench/firewall.sh: fail2ban: $present of $n present" >&2
			exit 1
		}
		rows+=("| $n | fail2ban 1.0.2 \`nftables\` (\`actionban\` per ban) | $secs | $n (\`nft\`: $n) |")
	else
		rows+=("| $n | fail2ban 1.0.2 \`nftables\` | not run (BENCH_F2B_MAX=$f2b_max) | |")
	fi
done

# Latency of one ban.
in_ns nft flush ruleset
out="$(in_ns "$bin" --in-netns --count "$single" --mode single)"
echo "  ferroban single: $out" >&2
fb_lat="$(field median_ms "$out") | $(field p99_ms "$out")"
in_ns nft flush ruleset
f2b_start
head -n "$single" "$ips" >"$ips.single"
f2b_lat="$(in_ns bash -c '
lat=()
while read -r ip; do
	t=$EPOCHREALTIME
	/bin/sh -c "nft add element inet f2b-table addr-set-bench \{ $ip \}" || exit 1
	lat+=("$t $EPOCHREALTIME")
done < "$1"
printf "%s\n" "${lat[@]}" | python3 -c "
import sys
l = sorted(float(b) - float(a) for a, b in (x.split() for x in sys.stdin))
p = lambda q: l[round((len(l) - 1) * q)] * 1e3
print(f\"{p(0.5):.2f} | {p(0.99):.2f}\")"' _ "$ips.single")"
rm -f "$ips.single"

echo
echo "Restoring N bans into nftables (one network namespace, $(nproc) cores, $(nft --version | head -1), kernel $(uname -r))"
echo
echo "| N | how | seconds | processes run |"
echo "| --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
echo
echo "One ban, $single bans (milliseconds)"
echo
echo "| how | median | p99 |"
echo "| --- | --- | --- |"
echo "| ferroban \`ban()\` of one address | $fb_lat |"
echo "| fail2ban \`actionban\` command (sh + nft) | $f2b_lat |"
