#!/usr/bin/env bash
# Builds Jaeger v2's single binary (all-in-one: collector, memory storage,
# query UI and HTTP API) for the end-to-end trace test in test/e2e.
#
#   scripts/build-jaeger.sh            # -> tools/jaeger/jaeger
#   STEWARD_JAEGER=$PWD/tools/jaeger/jaeger go test ./test/e2e -run Jaeger
#
# `go install` refuses the package (its go.mod has replace directives), so it
# is built from a scratch module that records it as a tool. Needs network for
# the modules, about 2 GiB of disk and several minutes. The output folder is
# gitignored; the binary is never committed.
set -euo pipefail
cd "$(dirname "$0")/.."
version="${JAEGER_VERSION:-v1.76.0}"
out="${JAEGER_OUT:-$PWD/tools/jaeger}"
mkdir -p "$out"
scratch="$out/module"
rm -rf "$scratch"
mkdir -p "$scratch"
cd "$scratch"
export GOFLAGS=-mod=mod
go mod init steward.local/jaegerbuild >/dev/null 2>&1
go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@${version}"
go build -o "$out/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger
echo "built $out/jaeger ($version)"
