#!/bin/sh
# Builds gVisor's runsc for bench/run's gVisor peer into bench/.cache/runsc from the Go
# module proxy (gVisor has no Debian package). It must be static: a cgo build's sandbox
# fails to re-exec itself after pivot_root (../shared/HOST.md).
set -e
cd "$(dirname "$0")"
version=v0.0.0-20260905035102-160fafc42237 # gVisor's go branch, 2026-09-05
mkdir -p .cache
out=$(pwd)/.cache/runsc
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
go mod init runsc-build >/dev/null 2>&1
go get "gvisor.dev/gvisor/runsc@$version"
CGO_ENABLED=0 go build -trimpath -o "$out" gvisor.dev/gvisor/runsc
"$out" --version | head -1
