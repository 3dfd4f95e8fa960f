#!/usr/bin/env bash
# Builds the third-party programs the compose fleet and the trace test use,
# static (no cgo), from the Go module proxy, into a cache folder outside the
# checkout, so a second run (or a second clone) reuses them:
#
#   scripts/build-tools.sh               # nats-server and jaeger
#   scripts/build-tools.sh nats-server   # one of them
#
# It prints the folder, which then holds nats-server and jaeger (links to
# the versions built). Jaeger v2 takes about 6 minutes and 2 GiB of disk the
# first time: `go install` refuses its package (its go.mod has replace
# directives), so it is built from a scratch module that records it as a
# tool. Nothing built here is committed.
set -euo pipefail
tools="${STEWARD_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/steward-tools}"
nats_version="${NATS_SERVER_VERSION:-v2.15.2}"
jaeger_version="${JAEGER_VERSION:-v1.76.0}"
export CGO_ENABLED=0
mkdir -p "$tools"

build_nats() {
	local out="$tools/nats-server-$nats_version"
	[ -x "$out" ] && return
	local tmp
	tmp="$(mktemp -d)"
	GOBIN="$tmp" GOFLAGS=-mod=mod go install -trimpath -ldflags '-s -w' "github.com/nats-io/nats-server/v2@$nats_version"
	mv "$tmp/nats-server" "$out"
	rm -rf "$tmp"
}

build_jaeger() {
	local out="$tools/jaeger-$jaeger_version"
	[ -x "$out" ] && return
	local module="$tools/jaeger-module"
	rm -rf "$module"
	mkdir -p "$module"
	(
		cd "$module"
		export GOFLAGS=-mod=mod
		go mod init steward.local/jaegerbuild >/dev/null 2>&1
		go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$jaeger_version"
		go build -trimpath -ldflags '-s -w' -o "$out.tmp" github.com/jaegertracing/jaeger/cmd/jaeger
	)
	mv "$out.tmp" "$out"
	rm -rf "$module"
}

[ $# -gt 0 ] || set -- nats-server jaeger
for t in "$@"; do
	case "$t" in
	nats-server) build_nats && ln -sfn "nats-server-$nats_version" "$tools/nats-server" ;;
	jaeger) build_jaeger && ln -sfn "jaeger-$jaeger_version" "$tools/jaeger" ;;
	*) echo "build-tools: unknown tool $t (nats-server, jaeger)" >&2; exit 2 ;;
	esac
done
echo "$tools"
