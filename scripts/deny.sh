#!/usr/bin/env bash
# cargo-deny over the workspace with deny.toml: licences, bans (duplicates are warnings),
# sources (crates.io only), and RustSec advisories (plus yanked crates).
#
#   scripts/deny.sh
#
# Advisories need the RustSec database, cloned from github.com:
# - fetched: `cargo deny check` (everything);
# - not fetched, but github.com answers: the fetch failed for another reason; its output is
#   printed and this fails (exit 1): nothing is skipped quietly;
# - not fetched because github.com cannot be reached (a machine without access to it):
#   with a database fetched earlier (cargo-deny's cache, ~/.cargo/advisory-dbs), advisories are
#   checked offline against it, its date said; without one, licences, bans and sources are
#   checked and "ADVISORIES NOT CHECKED" is said in capitals, with the fetch's own error. Exit 0
#   then (a machine's lack of network is not a defect of the tree), unless
#   FERROBAN_DENY_REQUIRE_ADVISORIES=1. When FERROBAN_CI_NOTICES names a file, the skip is also
#   appended to it, so the caller (.ci/run) repeats it in its closing lines.
# cargo-deny is installed with `cargo install --locked cargo-deny` when missing.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

db_url="https://github.com/RustSec/advisory-db"

if ! cargo deny --version >/dev/null 2>&1; then
	echo "deny.sh: cargo-deny not found; installing it with cargo install" >&2
	cargo install --locked cargo-deny
fi

notice() { # MESSAGE: to stderr, and to the caller's notice file when there is one
	echo "deny.sh: $1" >&2
	if [[ -n "${FERROBAN_CI_NOTICES:-}" ]]; then
		echo "scripts/deny.sh: $1" >>"$FERROBAN_CI_NOTICES"
	fi
}

fetch_log="$(mktemp)"
trap 'rm -f "$fetch_log"' EXIT
if timeout -k 10 300 cargo deny fetch db >"$fetch_log" 2>&1; then
	echo "deny.sh: advisory database fetched; cargo deny check (advisories, bans, licenses, sources)"
	exec cargo deny check
fi

# Why did the fetch fail? Only an unreachable github.com excuses the skip.
if timeout -k 5 30 git ls-remote --exit-code "$db_url" HEAD >/dev/null 2>&1; then
	echo "deny.sh: the advisory database could not be fetched although $db_url answers:" >&2
	cat "$fetch_log" >&2
	exit 1
fi
why="$(grep -m1 'fatal:' "$fetch_log" || grep -m1 -E 'error|ERROR' "$fetch_log" || tail -n 1 "$fetch_log")"

cached="$(find "${CARGO_HOME:-$HOME/.cargo}/advisory-dbs" -mindepth 2 -maxdepth 2 -name .git \
	-printf '%h\n' 2>/dev/null | head -n 1 || true)"
if [[ -n "$cached" ]]; then
	age="$(git -C "$cached" log -1 --format=%cs 2>/dev/null || echo unknown)"
	notice "ADVISORIES CHECKED AGAINST A CACHED DATABASE of $age ($cached): $db_url unreachable ($why)"
	exec cargo deny --offline check
fi

notice "ADVISORIES NOT CHECKED: the RustSec database could not be fetched and none is cached ($db_url unreachable: $why); licenses, bans and sources checked only"
if [[ "${FERROBAN_DENY_REQUIRE_ADVISORIES:-0}" == 1 ]]; then
	echo "deny.sh: FERROBAN_DENY_REQUIRE_ADVISORIES=1: failing" >&2
	exit 1
fi
exec cargo deny check licenses bans sources
