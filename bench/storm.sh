#!/usr/bin/env bash
# Ban storms side by side (ferroban vs fail2ban-server 1.0.2 with its nftables action), each in a
# network namespace made for the run and deleted after it: see bench/storm.py for the runs and knobs.
#
#   sudo bench/storm.sh
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
[[ "$(id -u)" -eq 0 ]] || { echo "bench/storm.sh: needs root (network namespaces)" >&2; exit 1; }
for p in ip nft python3; do
	command -v "$p" >/dev/null || { echo "bench/storm.sh: needs $p" >&2; exit 1; }
done
if [[ -z "${FERROBAN_BIN:-}" && "${BENCH_BUILD:-1}" != 0 ]]; then
	echo "bench/storm.sh: cargo build --release -p ferroban" >&2
	cargo build -q --release -p ferroban
fi
# shellcheck source=scripts/f2b-env.sh
source "$repo/scripts/f2b-env.sh"
export FERROBAN_F2B_ROOT
exec python3 "$repo/bench/storm.py" "$@"
