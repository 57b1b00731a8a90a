#!/usr/bin/env bash
# ferroban regex vs fail2ban-regex, side by side, in one run.
#
#   bench/regex.sh [N]            # N log lines, default 1000000
#
# Generates (once, deterministically) an N-line nginx access log in bench/out/,
# builds ferroban in release mode, then runs both tools on two cases with the
# SAME arguments:
#
#   botsearch  -c $FERROBAN_F2B_ROOT/etc/fail2ban LOG nginx-botsearch
#              (Debian's filter; target: ferroban >= 30x faster)
#   guide      LOG '^<HOST> -.* "(GET|POST).* HTTP/.*" (404|403)'
#              (the guide's own failregex; target: ferroban >= 200x faster)
#
# Each run is bounded by `timeout` and measured with /usr/bin/time -v (peak
# RSS) and bash's EPOCHREALTIME (wall time, microseconds). The `Lines:`
# summary of each run is extracted and a table is printed. Exit status:
#   0  every run succeeded and both tools printed identical `Lines:` summaries
#   1  a run failed or timed out, or the summaries differ
#   (with BENCH_ENFORCE_TARGETS=1, also 1 when a speed target is not met)
#
# Knobs (environment):
#   FERROBAN_F2B_ROOT      fail2ban reference root (default /tmp/f2b/root;
#                          fetched if missing, see scripts/f2b-env.sh)
#   BENCH_TOOLS            tools to run: "fail2ban ferroban" (default),
#                          "fail2ban" or "ferroban"
#   BENCH_CASES            cases to run: "botsearch guide" (default)
#   BENCH_TIMEOUT          seconds allowed per run (default 1800)
#   BENCH_ENFORCE_TARGETS  1: fail when a ratio is below its target
#   CARGO_TARGET_DIR       where cargo builds (default ./target)
#
# fail2ban-regex is run with its defaults: that is its fastest mode already.
# (--print-no-missed, --no-check-all and -r change nothing measurable: missed
# lines are kept only up to maxlines+1 = 21, and no DNS is involved for IPs.)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

lines="${1:-1000000}"
if ! [[ "$lines" =~ ^[1-9][0-9]*$ ]]; then
	echo "usage: bench/regex.sh [N]   (N = number of log lines, > 0)" >&2
	exit 2
fi
tools="${BENCH_TOOLS:-fail2ban ferroban}"
cases="${BENCH_CASES:-botsearch guide}"
run_timeout="${BENCH_TIMEOUT:-1800}"
guide_regex='^<HOST> -.* "(GET|POST).* HTTP/.*" (404|403)'

say() { printf 'bench: %s\n' "$*" >&2; }

for t in $tools; do
	[[ "$t" == fail2ban || "$t" == ferroban ]] || {
		say "BENCH_TOOLS: unknown tool '$t' (fail2ban, ferroban)"
		exit 2
	}
done
for c in $cases; do
	[[ "$c" == botsearch || "$c" == guide ]] || {
		say "BENCH_CASES: unknown case '$c' (botsearch, guide)"
		exit 2
	}
done

# shellcheck source=scripts/f2b-env.sh
source "$repo/scripts/f2b-env.sh"

if [[ ! -x /usr/bin/time ]]; then
	if [[ "$(id -u)" -eq 0 ]]; then
		say "installing the 'time' package (/usr/bin/time)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q time </dev/null >&2 ||
			{ apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q time </dev/null >&2; }
	else
		say "/usr/bin/time missing: run 'sudo apt-get install time'"
		exit 1
	fi
fi

out="$repo/bench/out"
runs="$out/runs-$lines"
mkdir -p "$runs"
log="$out/nginx-access-$lines.log"

# --- the log ---------------------------------------------------------------
if [[ ! -s "$log" || "$repo/bench/gen-nginx-log.py" -nt "$log" ]]; then
	say "generating $lines lines into ${log#"$repo"/}"
	python3 "$repo/bench/gen-nginx-log.py" "$lines" -o "$log.tmp"
	mv "$log.tmp" "$log"
fi
log_sha="$(sha256sum "$log" | cut -c1-16)"
head -n 1000 "$log" >"$out/warmup.log"

# --- ferroban --------------------------------------------------------------
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
ferroban="$target_dir/release/ferroban"
if [[ " $tools " == *" ferroban "* ]]; then
	say "building ferroban (release)"
	timeout -k 30 "$run_timeout" cargo build --release -p ferroban --bin ferroban >&2
fi

# --- runners ---------------------------------------------------------------
# The measured process is the tool itself (no wrapper shell, no pyenv shim).
python_exe="$("$FERROBAN_F2B_PYTHON" -c 'import sys; print(sys.executable)')"
tool_cmd() { # TOOL -> sets the array `cmd`
	case "$1" in
	fail2ban)
		cmd=(env "PYTHONPATH=$FERROBAN_F2B_ROOT/usr/lib/python3/dist-packages"
			"$python_exe" "$FERROBAN_F2B_ROOT/usr/bin/fail2ban-regex")
		;;
	ferroban) cmd=("$ferroban" regex) ;;
	*)
		say "unknown tool: $1"
		return 1
		;;
	esac
}

case_args() { # CASE LOGFILE -> the shared arguments, one per line
	case "$1" in
	botsearch) printf '%s\n' -c "$FERROBAN_F2B_ROOT/etc/fail2ban" "$2" nginx-botsearch ;;
	guide) printf '%s\n' "$2" "$guide_regex" ;;
	*)
		say "unknown case: $1"
		return 1
		;;
	esac
}

# Untimed warm-up on 1000 lines: byte-compiles fail2ban's Python modules,
# loads both programs into the page cache, and fails fast if a tool is broken.
for tool in $tools; do
	for c in $cases; do
		mapfile -t args < <(case_args "$c" "$out/warmup.log")
		tool_cmd "$tool"
		if ! timeout -k 10 300 "${cmd[@]}" "${args[@]}" >"$runs/warmup-$tool-$c.out" 2>&1; then
			say "warm-up of $tool on case $c failed; its output:"
			tail -n 20 "$runs/warmup-$tool-$c.out" >&2
			exit 1
		fi
	done
done
cat "$log" >/dev/null # page cache
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

results="$runs/results.tsv"
printf 'tool\tcase\tstatus\tseconds\trss_kb\tsummary\n' >"$results"
for c in $cases; do
	mapfile -t args < <(case_args "$c" "$log")
	for tool in $tools; do
		base="$runs/$tool-$c"
		say "running $tool on case $c ($lines lines, timeout ${run_timeout}s)"
		tool_cmd "$tool"
		t0="$EPOCHREALTIME"
		status=0
		timeout -k 30 "$run_timeout" /usr/bin/time -v -o "$base.time" \
			"${cmd[@]}" "${args[@]}" >"$base.out" 2>"$base.err" || status=$?
		t1="$EPOCHREALTIME"
		secs="$(python3 -c 'import sys; print("%.3f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$t0" "$t1")"
		rss="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$base.time" 2>/dev/null || true)"
		summary="$(grep -m1 '^Lines:' "$base.out" || true)"
		if ((status == 124 || status == 137)); then
			state="timeout"
		elif ((status != 0)); then
			state="exit-$status"
		else
			state="ok"
		fi
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$c" "$state" "$secs" "${rss:-}" "$summary" >>"$results"
	done
done

facts="$runs/facts.txt"
{
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), nproc $(nproc)"
	echo "load average before the runs: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "kernel: $(uname -r)"
	echo "python: $python_exe ($("$python_exe" --version 2>&1))"
	echo "fail2ban-regex: $(f2b_regex --version 2>&1 | head -n1)"
	echo "ferroban: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
	echo "log: ${log#"$repo"/}, $lines lines, $(stat -c %s "$log" | awk '{printf "%.1f", $1 / 1048576}') MB, sha256 $log_sha..."
} >"$facts"

python3 "$repo/bench/report.py" "$results" "$facts" "$runs/report.md"
