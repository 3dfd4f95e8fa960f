#!/usr/bin/env bash
# make demo: a fleet of three steward nodes on this machine, as separate
# processes — central (with the embedded broker), ship1 and ship2 — then the
# example messages sent from central, the results printed, and everything
# stopped again. State is kept in demo/run/ for a look afterwards.
set -euo pipefail

BIN=$(realpath "${1:-bin/steward}")
ROOT=$(pwd)
RUN="$ROOT/demo/run"
PORT="${DEMO_PORT:-4222}"

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
while port_in_use "$PORT"; do PORT=$((PORT + 1)); done

rm -rf "$RUN"
mkdir -p "$RUN"
pids=()
stop_all() {
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT

# start NAME FLAGS…: runs a node in demo/run/NAME with its own config,
# data and socket folders; its log goes to demo/run/NAME/node.log.
start() {
	local name=$1
	shift
	mkdir -p "$RUN/$name"
	(cd "$RUN/$name" && CONFIG_FOLDER=./etc exec "$BIN" node run --node-name "$name" --hello-interval 2s "$@" >node.log 2>&1) &
	pids+=($!)
}

# as NAME COMMAND…: runs a steward client command with NAME's configuration.
as() {
	local name=$1
	shift
	(cd "$RUN/$name" && CONFIG_FOLDER=./etc "$BIN" "$@")
}

wait_for() { # wait_for WHAT COMMAND…: polls for up to 30 s
	local what=$1
	shift
	for _ in $(seq 1 150); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.2
	done
	echo "demo: timed out waiting for $what; logs are in $RUN/*/node.log" >&2
	exit 1
}

echo "== starting central with the embedded broker on 127.0.0.1:$PORT"
start central --broker-listen "127.0.0.1:$PORT"
wait_for "central" test -S "$RUN/central/tmp/steward.sock"
echo "== starting ship1 and ship2"
start ship1 --broker-address "nats://127.0.0.1:$PORT"
start ship2 --broker-address "nats://127.0.0.1:$PORT"
online() { [ "$(as central nodes | grep -c ' online ')" = 3 ]; }
wait_for "three nodes online" online
as central nodes
echo

for f in hostinfo-two-nodes ping-fleet failing-command; do
	echo "== steward send --wait -f examples/$f.json"
	as central send --wait -f "$ROOT/examples/$f.json" 2>/dev/null || true
	echo
done

echo "== reply files on central (demo/run/central/data)"
(cd "$RUN/central/data" && find . -path ./.steward -prune -o -type f -print | sort | while read -r f; do
	echo "--- $f"
	cat "$f"
done)
