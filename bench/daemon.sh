#!/usr/bin/env bash
# The daemons side by side, in one run: fail2ban-server 1.0.2 and `ferroban server` under the same
# guide jails, measured the same way. Not a test: it prints a Markdown table.
#
#   bench/daemon.sh
#
# For each daemon (one after the other, never both at once, so they do not share the 2 cores),
# bench/daemon/run.py writes a scratch configuration (a copy of the reference's etc/fail2ban plus
# jail.local with sshd, nginx-404, nginx-botsearch, nginx-bad-request, nginx-badbots (the stock
# apache-badbots filter), nginx-noscript, nginx-http-auth, nginx-limit-req and a load jail; the
# guide's nginx-404 and nginx-noscript filters; an action that appends `<ip> <unix time in ns>` to a
# file), starts the server in the foreground, and measures
#   * VmRSS/VmHWM after start, after the bans, after the load;
#   * ban latency, append -> action ran: BENCH_BANS bans per jail (maxretry = 1, distinct addresses,
#     one line at a time, BENCH_GAP s apart), for nginx-404 (access.log, five jails read it) and sshd;
#   * sustained lines/s: BENCH_LINES lines appended as fast as possible, until the daemon's log shows
#     the Found of the last one: (a) ordinary 200 lines through the five access.log jails, (b) failure
#     lines into one jail whose maxretry is never reached (every line a Found).
# No firewall is involved (the action only writes a file), and no traffic is sent: log lines with
# documentation addresses are written to files.
#
# A daemon that cannot run (ferroban before its server lands: not built, or `server` not
# available) gets its error in its column; the other is still measured. Exit status 0 when the
# fail2ban column was measured, 1 otherwise.
#
# Knobs (environment):
#   FERROBAN_BIN          the ferroban binary (default $CARGO_TARGET_DIR/release/ferroban, or
#                         target/release/ferroban, which is first brought up to date with
#                         `cargo build --release -p ferroban`; BENCH_BUILD=0 skips that)
#   BENCH_DAEMONS         "fail2ban ferroban" (default), or one of them
#   BENCH_BANS            bans per latency series, 100..250 (default 100)
#   BENCH_GAP             seconds between latency lines (default 0.02)
#   BENCH_LINES           lines per throughput run (default 20000)
#   BENCH_TIMEOUT         seconds allowed per throughput run (default 240)
#   BENCH_OUT             where the JSON and scratch dirs go (default bench/out/daemon)
#   FERROBAN_F2B_ROOT, FERROBAN_F2B_PYTHON   the reference (see scripts/f2b-env.sh); its interpreter
#                         should have python3-pyinotify, as a Debian install does (else fail2ban polls
#                         once a second, and the latency shows it)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

say() { printf 'bench: %s\n' "$*" >&2; }

# shellcheck source=scripts/f2b-env.sh
source "$repo/scripts/f2b-env.sh"

daemons="${BENCH_DAEMONS:-fail2ban ferroban}"
bans="${BENCH_BANS:-100}"
gap="${BENCH_GAP:-0.02}"
lines="${BENCH_LINES:-20000}"
per_run_timeout="${BENCH_TIMEOUT:-240}"
out="${BENCH_OUT:-$repo/bench/out/daemon}"
default_bin="${CARGO_TARGET_DIR:-$repo/target}/release/ferroban"
bin="${FERROBAN_BIN:-$default_bin}"

for d in $daemons; do
	[[ "$d" == fail2ban || "$d" == ferroban ]] || {
		say "BENCH_DAEMONS: unknown daemon '$d' (fail2ban, ferroban)"
		exit 2
	}
done

mkdir -p "$out"
rm -f "$out/fail2ban.json" "$out/ferroban.json"
if "$FERROBAN_F2B_PYTHON" -c 'import pyinotify' 2>/dev/null; then
	backend="pyinotify"
else
	backend="polling (no python3-pyinotify for $FERROBAN_F2B_PYTHON)"
	say "warning: fail2ban will poll its logs once a second: $backend"
fi

if [[ " $daemons " == *" ferroban "* && "$bin" == "$default_bin" && "${BENCH_BUILD:-1}" == 1 ]]; then
	say "building ferroban (release)"
	if ! cargo build --release -p ferroban >&2; then
		say "cargo build failed; the ferroban column will say so"
	fi
fi

for d in $daemons; do
	say "measuring $d (up to ~$((2 * per_run_timeout + 120)) s)"
	json="$out/$d.json"
	args=(--flavour "$d" --workdir "$out/$d.work" --bans "$bans" --gap "$gap" --lines "$lines"
		--timeout "$per_run_timeout" --f2b-root "$FERROBAN_F2B_ROOT" --python "$FERROBAN_F2B_PYTHON")
	if [[ "$d" == ferroban ]]; then
		if [[ ! -x "$bin" ]]; then
			printf '{"flavour": "ferroban", "error": "no binary at %s (cargo build --release -p ferroban, or set FERROBAN_BIN)"}\n' \
				"$bin" >"$json"
			say "ferroban: no binary at $bin"
			continue
		fi
		args+=(--bin "$bin")
	fi
	# The runner bounds every wait itself; timeout(1) is the backstop.
	if ! timeout $((2 * per_run_timeout + 300)) python3 bench/daemon/run.py "${args[@]}" >"$json"; then
		printf '{"flavour": "%s", "error": "bench/daemon/run.py failed or timed out"}\n' "$d" >"$json"
	fi
	if python3 -c 'import json,sys; e=json.load(open(sys.argv[1])).get("error"); sys.exit(1 if e else 0)' "$json"; then
		say "$d: measured"
	else
		say "$d: could not be measured (see its column)"
	fi
done

python3 bench/daemon/report.py --backend "$backend" --lines "$lines" --bans "$bans" \
	"$out/fail2ban.json" "$out/ferroban.json"
say "raw figures: $out/{fail2ban,ferroban}.json"
[[ " $daemons " != *" fail2ban "* ]] ||
	python3 -c 'import json,sys; sys.exit(1 if json.load(open(sys.argv[1])).get("error") else 0)' "$out/fail2ban.json"
