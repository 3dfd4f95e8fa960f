#!/usr/bin/env bash
# make demo: a fleet of three steward nodes on this machine, as separate
# processes — central (with the embedded broker), ship1 and ship2 — then the
# example messages sent from central, the results printed, and everything
# stopped again. State is kept in demo/run/ for a look afterwards.
#
# With DEMO_CONSOLE=1 (make console-demo) central also serves the fleet
# console on 127.0.0.1:$CONSOLE_PORT (8090), and the fleet keeps running
# until Ctrl-C: ship2 goes offline for 30 s every 2 minutes, to watch.
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

CONSOLE="${DEMO_CONSOLE:-}"
central_flags=(--broker-listen "127.0.0.1:$PORT")
if [ -n "$CONSOLE" ]; then
	CONSOLE_PORT="${CONSOLE_PORT:-8090}"
	while port_in_use "$CONSOLE_PORT"; do CONSOLE_PORT=$((CONSOLE_PORT + 1)); done
	central_flags+=(--console "127.0.0.1:$CONSOLE_PORT")
fi
echo "== starting central with the embedded broker on 127.0.0.1:$PORT"
start central "${central_flags[@]}"
wait_for "central" test -S "$RUN/central/tmp/steward.sock"
echo "== starting ship1 and ship2"
start ship1 --broker-address "nats://127.0.0.1:$PORT" --labels role=web
start ship2 --broker-address "nats://127.0.0.1:$PORT" --labels role=db
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

if [ -n "$CONSOLE" ]; then
	echo
	echo "== the console: http://127.0.0.1:$CONSOLE_PORT/   (Ctrl-C stops the fleet)"
	echo "   ship2 goes offline for 30 s every 2 minutes; send to ship1,ship2 from the Send view"
	ship2=${pids[2]}
	while true; do
		sleep 90
		echo "-- ship2 stops for 30 s"
		kill -TERM "$ship2" 2>/dev/null || true
		wait "$ship2" 2>/dev/null || true
		sleep 30
		echo "-- ship2 starts again"
		start ship2
		ship2=${pids[-1]}
	done
fi

