#!/usr/bin/env bash
# Prepares the compose fleet (docker-compose.yml at the repository's root):
#   bin/  the static programs the images are built FROM scratch with:
#         steward (built here), nats-server and jaeger (scripts/build-tools.sh),
#         busybox and bash (Debian's busybox-static and bash-static)
#   run/  the fleet's keys, the servers' authorization and TLS certificates,
#         made once and kept (remove the folder for new ones)
# Run from anywhere; make compose-up runs it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"

mkdir -p bin
tools="$("$root/scripts/build-tools.sh" nats-server jaeger | tail -n 1)"
cp "$tools/nats-server" bin/nats-server
cp "$tools/jaeger" bin/jaeger
for pair in busybox:busybox-static bash:bash-static; do
	prog="${pair%%:*}" pkg="${pair#*:}"
	src="/bin/$prog"; [ "$prog" = bash ] && src=/bin/bash-static
	if [ ! -x "$src" ]; then
		echo "setup: $src missing: apt-get install $pkg" >&2
		exit 1
	fi
	cp "$src" "bin/$prog"
done
(cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/stewardfleet/steward/internal/cli.Version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)" -o "$here/bin/steward" ./cmd/steward)
steward="$here/bin/steward"

# Keys: one per node and fleet, made once. ship3 is a node of two fleets
# (the hub's, through the leaf node, and its site's), with a key for each.
if [ ! -f run/ca.pem ]; then
	rm -rf run
	mkdir -p run/keys/hub run/keys/site-hub run/keys/site run/nats
	"$steward" keys new central ship1 ship2 --dir run/keys/hub > run/hub-trusted-keys.tmp
	"$steward" keys new ship3 --dir run/keys/site-hub >> run/hub-trusted-keys.tmp
	"$steward" keys new site1 ship3 --dir run/keys/site > run/site-trusted-keys
	# The hub's servers: central may do anything, each ship its own work only.
	"$steward" broker authorization --dir run/keys/hub --senders central --format nats-server -o run/nats/hub-users.conf
	# ship3's login on the leaf node: the same rights, in the hub's domain.
	"$steward" broker authorization --dir run/keys/site-hub --senders central --domain hub --format nats-server -o run/nats/site-hub-users.conf
	"$steward" broker authorization --dir run/keys/site --senders site1 --format nats-server -o run/nats/site-users.conf
	# The uplink's password, shared by the hub's servers and the leaf node.
	password="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
	printf 'user: site1\npassword: "%s"\n' "$password" > run/nats/leaf-user.conf
	{
		printf 'remotes: [ { account: HUB, urls: ['
		printf '"tls://site1:%s@nats%d:7422", ' "$password" 1 "$password" 2 "$password" 3
		printf '], tls: { ca_file: "/etc/nats/run/tls/ca.pem" } } ]\n'
	} > run/nats/uplink.conf
	chmod 600 run/nats/leaf-user.conf run/nats/uplink.conf
	mv run/hub-trusted-keys.tmp run/hub-trusted-keys
	# TLS: a CA of the fleet's own, and one certificate for every NATS
	# server (clients and leaf node connections are encrypted; the
	# cluster's routes stay on the hub's private network).
	mkdir -p run/nats/tls
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj "/CN=steward compose fleet CA" \
		-keyout run/ca-key.pem -out run/nats/tls/ca.pem 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=steward compose NATS" \
		-keyout run/nats/tls/server-key.pem -out run/server.csr 2>/dev/null
	printf 'subjectAltName=DNS:nats1,DNS:nats2,DNS:nats3,DNS:site1-nats,DNS:localhost\nextendedKeyUsage=serverAuth\n' > run/server-ext.cnf
	openssl x509 -req -in run/server.csr -CA run/nats/tls/ca.pem -CAkey run/ca-key.pem -CAcreateserial -CAserial run/ca.srl \
		-days 3650 -extfile run/server-ext.cnf -out run/nats/tls/server.pem 2>/dev/null
	rm -f run/server.csr run/server-ext.cnf run/ca.srl
	chmod 600 run/ca-key.pem run/nats/tls/server-key.pem
	# Last: run/ca.pem marks a finished setup.
	cp run/nats/tls/ca.pem run/ca.pem
fi
echo "compose fleet ready: $here/bin, $here/run"
