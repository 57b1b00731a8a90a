#!/usr/bin/env bash
# cargo-deny over the workspace with deny.toml: licences, bans (duplicates are warnings),
# sources (crates.io only), and RustSec advisories (plus yanked crates).
#
#   scripts/deny.sh
#
# Advisories need the RustSec database, cloned from github.com. When it cannot be fetched (a
# machine without access to github.com), this says so in capitals and checks licences, bans
# and sources only; FERROBAN_DENY_REQUIRE_ADVISORIES=1 makes that an error instead.
# cargo-deny is installed with `cargo install --locked cargo-deny` when missing.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

if ! cargo deny --version >/dev/null 2>&1; then
	echo "deny.sh: cargo-deny not found; installing it with cargo install" >&2
	cargo install --locked cargo-deny
fi

if cargo deny fetch db >/dev/null 2>&1; then
	echo "deny.sh: cargo deny check (advisories, bans, licenses, sources)"
	exec cargo deny check
fi
echo "deny.sh: ADVISORIES NOT CHECKED: the RustSec advisory database could not be fetched" >&2
echo "deny.sh: (github.com unreachable from here); checking licenses, bans and sources only" >&2
if [[ "${FERROBAN_DENY_REQUIRE_ADVISORIES:-0}" == 1 ]]; then
	exit 1
fi
exec cargo deny check licenses bans sources
