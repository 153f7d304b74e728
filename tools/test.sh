#!/usr/bin/env bash
# The project's test command (`make test`; .ci/run calls it). It installs what the tests
# need, checks formatting and vet, and runs every test, uncached: the end-to-end tests
# build and boot the kernel, which go test's cache cannot see.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { # need COMMAND DEBIAN-PACKAGE
	command -v "$1" >/dev/null && return
	if [ "$(id -u)" != 0 ]; then
		echo "tools/test.sh: $1 is missing; install the Debian package $2" >&2
		exit 1
	fi
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
need strace strace
need make make
[ -x /bin/busybox ] || need busybox busybox-static

unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi
go vet ./...
# One package at a time: the end-to-end tests boot VMs and check timing behaviour (a
# ticker keeps ticking under a CPU-bound goroutine), which a parallel build would starve.
go test -count=1 -p 1 ./...
