#!/usr/bin/env bash
# Run every fuzz target (fuzz/, cargo-fuzz + libFuzzer) for SECONDS each.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      # default: 60 s, every target
#
# Knobs (environment):
#   FUZZ_JOBS=N        targets run N at a time (default 1; CI machines have 2 cores)
#   FUZZ_SANITIZER=S   cargo-fuzz sanitizer (default none: the targets are safe Rust whose C
#                      dependencies, PCRE2 and SQLite, are not instrumented by -Zsanitizer
#                      anyway; `none` builds faster and runs 2-3x more executions.
#                      Use address to check unsafe Rust.)
#   FUZZ_TIMEOUT=S     libFuzzer's per-input limit (default 10 s): an input that takes longer
#                      is a finding (a parser or matcher that is not linear in its input)
#   FUZZ_KEEP_CORPUS=1 keep fuzz/corpus/<target>/ from earlier runs (default: start from the
#                      seeds only, so a run shows what a clean checkout finds)
#
# 1. makes sure the fail2ban reference is there (scripts/f2b-env.sh): seeds are built from its
#    sample logs and configuration at run time (scripts/fuzz-seeds.py), never committed;
# 2. builds the fuzz workspace ONCE (nightly, `cargo +nightly fuzz build -O -a`: optimised,
#    with debug assertions and overflow checks);
# 3. runs each target for SECONDS; crashes, timeouts and out-of-memory inputs land in
#    fuzz/artifacts/<target>/; the log of each run is fuzz/logs/<target>.log;
# 4. prints one line per target: executions, executions/s, corpus size, verdict.
#    Exits 3 when any target found something (other failures: 1 or 2, or the build's code).
#
# Reproduce a finding: fuzz/target/x86_64-unknown-linux-gnu/release/<target> <artifact>
# (or `cargo +nightly fuzz run <target> <artifact>` from fuzz/).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

seconds="${1:-60}"
shift || true
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || ((seconds < 1)); then
	echo "fuzz.sh: SECONDS must be a positive whole number, got '$seconds'" >&2
	exit 2
fi
jobs="${FUZZ_JOBS:-1}"
sanitizer="${FUZZ_SANITIZER:-none}"
timeout="${FUZZ_TIMEOUT:-10}"

# shellcheck source=scripts/f2b-env.sh
source "$repo/scripts/f2b-env.sh"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
	echo "fuzz.sh: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
	exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
	echo "fuzz.sh: cargo-fuzz not found; installing it with cargo install" >&2
	cargo install --locked cargo-fuzz
fi
if ! command -v python3 >/dev/null; then
	echo "fuzz.sh: python3 is needed to build the seed corpora" >&2
	exit 1
fi

cd "$repo/fuzz"
all_targets=()
while IFS= read -r t; do all_targets+=("$t"); done < <(cargo fuzz list)
targets=("$@")
if ((${#targets[@]} == 0)); then
	targets=("${all_targets[@]}")
fi

echo "fuzz.sh: building ${#all_targets[@]} targets (sanitizer $sanitizer)"
cargo +nightly fuzz build -O -a -s "$sanitizer"
triple="$(rustc +nightly -vV | sed -n 's/^host: //p')"
bin_dir="$repo/fuzz/target/$triple/release"
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
	bin_dir="$CARGO_TARGET_DIR/$triple/release"
fi

seeds="$repo/fuzz/corpus/seeds"
rm -rf "$seeds"
python3 "$repo/scripts/fuzz-seeds.py" "$seeds"
mkdir -p "$repo/fuzz/logs"

run_one() {
	local t="$1" corpus="$repo/fuzz/corpus/$t" artifacts="$repo/fuzz/artifacts/$t"
	if [[ "${FUZZ_KEEP_CORPUS:-0}" != 1 ]]; then
		rm -rf "$corpus"
	fi
	rm -rf "$artifacts"
	mkdir -p "$corpus" "$artifacts" "$seeds/$t"
	# -rss_limit_mb: a target that needs more than 2 GiB on one input is a finding.
	"$bin_dir/$t" "$corpus" "$seeds/$t" \
		-max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb=2048 \
		-artifact_prefix="$artifacts/" -print_final_stats=1 \
		>"$repo/fuzz/logs/$t.log" 2>&1 || true
}

pids=()
for t in "${targets[@]}"; do
	if [[ ! -x "$bin_dir/$t" ]]; then
		echo "fuzz.sh: no target '$t' (targets: ${all_targets[*]})" >&2
		exit 2
	fi
	echo "fuzz.sh: $t for ${seconds}s"
	run_one "$t" &
	pids+=($!)
	if ((${#pids[@]} >= jobs)); then
		wait "${pids[0]}"
		pids=("${pids[@]:1}")
	fi
done
for p in "${pids[@]}"; do wait "$p"; done

found=0
printf '%-16s %14s %10s %8s  %s\n' target executions "exec/s" corpus verdict
for t in "${targets[@]}"; do
	log="$repo/fuzz/logs/$t.log"
	execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
	rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
	corpus="$(find "$repo/fuzz/corpus/$t" -type f | wc -l)"
	findings="$(find "$repo/fuzz/artifacts/$t" -type f | wc -l)"
	if ((findings > 0)) || [[ -z "$execs" ]]; then
		found=3
		verdict="FOUND $findings (fuzz/artifacts/$t/, log fuzz/logs/$t.log)"
		grep -m3 -E 'panicked|ERROR: libFuzzer|SUMMARY' "$log" | sed 's/^/    /' >&2 || true
		# The input itself, so that a finding on a throwaway CI machine can be reproduced:
		# `base64 -d > input; fuzz/target/<triple>/release/<target> input`.
		for a in "$repo/fuzz/artifacts/$t"/*; do
			[[ -f "$a" ]] || continue
			echo "    $(basename "$a") ($(stat -c %s "$a") bytes), base64:" >&2
			head -c 8192 "$a" | base64 -w 0 | sed 's/^/    /' >&2
			echo >&2
		done
	else
		verdict="nothing found"
	fi
	printf '%-16s %14s %10s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$corpus" "$verdict"
done
exit "$found"
