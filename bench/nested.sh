#!/usr/bin/env bash
# bench/nested.sh [-base COMMIT] -- COMMAND... runs benchmarks that need KVM on a machine
# without it, in tools/nested-kvm.sh's nested guest: it builds pith and pith-kernel from
# the worktree into the guest's /pb/new (and COMMIT's into /pb/base, for a before/after
# in one run), bench/density and bench/apps/httphello (static) into /pb, and runs each
# COMMAND there ($B stands for /pb); bench/containerd is /pb/containerd-bench, and
# containerd, runc and crictl go in where this machine has them (nested-kvm.sh -c). One
# nested run at a time on a machine: it waits on /tmp/nested.lock. NESTED_MEM (default
# 8G) sizes the guest: an idle unikernel takes about 20 MiB of it. Example (docs/lifecycle.md, "The idle cost of a unikernel"):
#   bench/nested.sh -base HEAD~1 -- 'mount -t debugfs none /sys/kernel/debug' \
#     '$B/density -bin $B/base -server $B/httphello -n 50 -detail' \
#     '$B/density -bin $B/new -server $B/httphello -n 50 -detail -native=false'
set -euo pipefail
base=
[ "${1:-}" = -base ] && { base=$2; shift 2; }
[ "${1:-}" = -- ] && shift
cd "$(dirname "$0")/.."
stage=$(mktemp -d /tmp/pith-bench-nested.XXXXXX)
trap 'rm -rf "$stage"' EXIT
export CGO_ENABLED=0
build() { # build SRC DEST: pith and its kernel, as the Makefile builds them
	(cd "$1" && go build -o "$2/pith" ./cmd/pith &&
		GOOS=linux GOARCH=amd64 go build -trimpath -ldflags='-E=github.com/pithvm/pith/guest/tier0.start -T=0x7e0000401000' -o "$2/pith-kernel" ./guest/cmd/pith-kernel)
}
build "$PWD" "$stage/bin/new"
if [ -n "$base" ]; then
	mkdir "$stage/src"
	git archive "$base" | tar -x -C "$stage/src"
	build "$stage/src" "$stage/bin/base"
fi
go build -o "$stage/bin/new/containerd-shim-pith-v2" ./cmd/containerd-shim-pith-v2
go build -o "$stage/bin/density" ./bench/density
go build -o "$stage/bin/containerd-bench" ./bench/containerd
go build -o "$stage/bin/hello" ./bench/hello
go build -o "$stage/bin/httphello" ./bench/apps/httphello
cmds=()
for c in "$@"; do cmds+=("${c//\$B//pb}"); done
flock /tmp/nested.lock env NESTED_CMD_TIMEOUT=${NESTED_CMD_TIMEOUT:-1200} NESTED_TIMEOUT=${NESTED_TIMEOUT:-1800} \
	NESTED_MEM=${NESTED_MEM:-8G} tools/nested-kvm.sh -c -f "$stage/bin:/pb" -- "${cmds[@]}"
