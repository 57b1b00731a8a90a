#!/usr/bin/env bash
# ferroban vs its fastest peer (fail2ban-rs 1.5.4) and fail2ban-regex, side by side, in one run.
#
#   bench/peer.sh [N]          # N lines per log, default 1000000
#
# Installs fail2ban-rs 1.5.4 with `cargo install --locked fail2ban-rs --version 1.5.4` into
# bench/out/peer/root (pinned; once), builds ferroban (release), generates two logs with the
# repository's deterministic generators (bench/gen-auth-log.py, bench/gen-nginx-log.py) and runs
# three cases, the tools interleaved (ferroban, peer, ferroban, peer, ...), 5 timed runs each
# after one untimed warm-up; the median wall time is reported:
#
#   sshd       ferroban regex -c $F2B/etc/fail2ban LOG sshd   (fail2ban 1.0.2's filter, normal mode)
#              fail2ban-rs dry-run with its built-in sshd jail (`gen-config sshd`)
#   guide404   ferroban regex LOG '^<HOST> -.* "(GET|POST).* HTTP/.*" (404|403)'
#              fail2ban-rs dry-run with a jail of that one regex (date_format = "common")
#   botsearch  ferroban regex -c $F2B/etc/fail2ban LOG nginx-botsearch
#              fail2ban-rs dry-run with its built-in nginx-botsearch jail (`gen-config`)
#
# fail2ban-regex 1.0.2 runs once per case on the same log (bounded by BENCH_F2B_TIMEOUT): its
# count is the reference ferroban's must equal, and its time gives the botsearch ratio. The
# peer's filters are its own (narrower than fail2ban's), so its counts differ; they are printed.
#
# Knobs: BENCH_RUNS (5), BENCH_CASES ("sshd guide404 botsearch"), BENCH_F2B (1: run
# fail2ban-regex), BENCH_F2B_CASES (the cases it runs for, default all; its guide404 run takes
# minutes: the date moves on every line), BENCH_F2B_TIMEOUT (600 s), FERROBAN_BIN (skip the build), FERROBAN_F2B_ROOT.
# Output: a Markdown table on stdout, raw figures in bench/out/peer/.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
lines="${1:-1000000}"
runs="${BENCH_RUNS:-5}"
cases="${BENCH_CASES:-sshd guide404 botsearch}"
f2b_timeout="${BENCH_F2B_TIMEOUT:-600}"
out="$repo/bench/out/peer"
mkdir -p "$out/cfg"
say() { printf 'bench: %s\n' "$*" >&2; }

# shellcheck source=scripts/f2b-env.sh
source "$repo/scripts/f2b-env.sh"
f2b_python="$("$FERROBAN_F2B_PYTHON" -c 'import sys; print(sys.executable)')"

# --- the peer, pinned --------------------------------------------------------------------
peer="$out/root/bin/fail2ban-rs"
if [[ ! -x "$peer" ]] || [[ "$("$peer" --version)" != "fail2ban-rs 1.5.4" ]]; then
	say "installing fail2ban-rs 1.5.4 into ${out#"$repo"/}/root"
	cargo install --locked fail2ban-rs --version 1.5.4 --root "$out/root" >&2
fi
peer_cfg() { # CASE -> config path
	local c="$out/cfg/$1.toml"
	{
		printf '[global]\n\n'
		case "$1" in
		sshd) "$peer" gen-config sshd ;;
		botsearch) "$peer" gen-config nginx-botsearch ;;
		guide404)
			printf '[jail.guide404]\nlog_path = "/var/log/nginx/access.log"\ndate_format = "common"\n'
			printf "filter = ['%s']\n" "$guide_regex"
			;;
		esac
	} >"$c"
	echo "$c"
}
guide_regex='^<HOST> -.* "(GET|POST).* HTTP/.*" (404|403)'

# --- ferroban ------------------------------------------------------------------------------
ferroban="${FERROBAN_BIN:-}"
if [[ -z "$ferroban" ]]; then
	say "building ferroban (release)"
	cargo build --release -p ferroban --bin ferroban >&2
	ferroban="${CARGO_TARGET_DIR:-$repo/target}/release/ferroban"
fi

# --- logs ----------------------------------------------------------------------------------
auth="$repo/bench/out/auth-$lines.log"
nginx="$repo/bench/out/nginx-access-$lines.log"
[[ -s "$auth" && "$auth" -nt bench/gen-auth-log.py ]] || python3 bench/gen-auth-log.py "$lines" -o "$auth"
[[ -s "$nginx" && "$nginx" -nt bench/gen-nginx-log.py ]] || python3 bench/gen-nginx-log.py "$lines" -o "$nginx"
cat "$auth" "$nginx" >/dev/null

case_log() { case "$1" in sshd) echo "$auth" ;; *) echo "$nginx" ;; esac; }
ferro_cmd() { # CASE LOG
	case "$1" in
	sshd) cmd=("$ferroban" regex -c "$FERROBAN_F2B_ROOT/etc/fail2ban" "$2" sshd) ;;
	botsearch) cmd=("$ferroban" regex -c "$FERROBAN_F2B_ROOT/etc/fail2ban" "$2" nginx-botsearch) ;;
	guide404) cmd=("$ferroban" regex "$2" "$guide_regex") ;;
	esac
}
f2b_cmd() { # CASE LOG
	cmd=(env "PYTHONPATH=$FERROBAN_F2B_ROOT/usr/lib/python3/dist-packages" "$f2b_python"
		"$FERROBAN_F2B_ROOT/usr/bin/fail2ban-regex")
	case "$1" in
	sshd) cmd+=(-c "$FERROBAN_F2B_ROOT/etc/fail2ban" "$2" sshd) ;;
	botsearch) cmd+=(-c "$FERROBAN_F2B_ROOT/etc/fail2ban" "$2" nginx-botsearch) ;;
	guide404) cmd+=("$2" "$guide_regex") ;;
	esac
}
timed() { # OUTFILE CMD... -> prints seconds
	local t0 t1
	t0="$EPOCHREALTIME"
	"${@:2}" >"$1" 2>&1
	t1="$EPOCHREALTIME"
	python3 -c 'import sys; print("%.3f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$t0" "$t1"
}
median() { python3 -c 'import statistics, sys; print("%.3f" % statistics.median(map(float, sys.argv[1:])))' "$@"; }
matched() { sed -n 's/^Lines: .* \([0-9]*\) matched.*/\1/p' "$1" | head -n1; }

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
printf '| case | tool | median wall s (%s runs) | all runs | count |\n| --- | --- | ---: | --- | --- |\n' "$runs"
status=0
for c in $cases; do
	log="$(case_log "$c")"
	pc="$(peer_cfg "$c")"
	ferro_cmd "$c" "$log"
	fcmd=("${cmd[@]}")
	pcmd=("$peer" -c "$pc" dry-run "$log")
	"${fcmd[@]}" >"$out/$c-ferroban.out" 2>&1 # warm-up
	"${pcmd[@]}" >"$out/$c-peer.out" 2>&1
	ft=()
	pt=()
	for ((i = 0; i < runs; i++)); do
		ft+=("$(timed "$out/$c-ferroban.out" "${fcmd[@]}")")
		pt+=("$(timed "$out/$c-peer.out" "${pcmd[@]}")")
	done
	fcount="$(matched "$out/$c-ferroban.out")"
	pcount="$(sed -n 's/^ *Matches: *//p' "$out/$c-peer.out" | head -n1)"
	f2b_line="not run"
	if [[ "${BENCH_F2B:-1}" == 1 && " ${BENCH_F2B_CASES:-$cases} " == *" $c "* ]]; then
		f2b_cmd "$c" "$log"
		if ft2="$(timed "$out/$c-fail2ban.out" timeout -k 10 "$f2b_timeout" "${cmd[@]}")"; then
			rcount="$(matched "$out/$c-fail2ban.out")"
			same="DIFFERENT"
			[[ "$rcount" == "$fcount" ]] && same="same as ferroban"
			[[ "$rcount" == "$fcount" ]] || status=1
			f2b_line="$ft2 s, $rcount matched ($same)"
			printf '| %s | fail2ban-regex 1.0.2 | %s | 1 run | %s matched (%s) |\n' "$c" "$ft2" "$rcount" "$same"
		else
			printf '| %s | fail2ban-regex 1.0.2 | timeout/failed | | |\n' "$c"
		fi
	fi
	fm="$(median "${ft[@]}")"
	pm="$(median "${pt[@]}")"
	printf '| %s | ferroban regex | %s | %s | %s matched |\n' "$c" "$fm" "${ft[*]}" "$fcount"
	printf '| %s | fail2ban-rs 1.5.4 dry-run | %s | %s | %s matches |\n' "$c" "$pm" "${pt[*]}" "$pcount"
	ratio="$(python3 -c 'import sys; print("%.2f" % (float(sys.argv[2]) / float(sys.argv[1])))' "$fm" "$pm")"
	say "$c: ferroban $fm s, fail2ban-rs $pm s (ferroban ${ratio}x the peer's speed); fail2ban-regex: $f2b_line"
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$fm" "$pm" "$fcount" "$pcount" "$f2b_line" >>"$out/results.tsv"
done
printf '\nload average before: %s, after: %s; %s lines per log; ferroban %s\n' \
	"$load_before" "$(cut -d' ' -f1-3 /proc/loadavg)" "$lines" "$(git -C "$repo" rev-parse --short HEAD)"
exit "$status"
