#!/bin/sh
# A site machine that is a node of two fleets: the hub's (through the leaf
# node, in the hub's JetStream domain) and its site's own. Each fleet gets
# its own steward process, folders and key; both stop on SIGTERM.
set -u
node="$1"
common="--hello-interval 10s --otlp-endpoint jaeger:4318 --policy-file /etc/steward/policy.json --root-ca-path /etc/steward/ca.pem"
steward node run --node-name "$node" --broker-address tls://site1-nats:4222 --broker-domain hub \
	--nkey-seed-file "/etc/steward/site-hub/$node.nk" --trusted-keys /etc/steward/hub-trusted-keys \
	--labels site=site1 --config-folder hub/etc --data-folder hub/data --socket-folder hub/tmp $common &
hub=$!
steward node run --node-name "$node" --central-node-name site1 --broker-address tls://site1-nats:4222 \
	--nkey-seed-file "/etc/steward/site/$node.nk" --trusted-keys /etc/steward/site-trusted-keys \
	--labels site=site1 --config-folder site/etc --data-folder site/data --socket-folder site/tmp $common &
site=$!
trap 'kill -TERM $hub $site' TERM INT
wait
wait
