#!/usr/bin/env bash
# debian-rootfs.sh: prints the path of a Debian 12 root file system for the tests of
# dynamically linked programs (test/e2e/dynamic_test.go), made once into the cache
# (PITH_CACHE, default ~/.cache/pith) with debootstrap --variant=minbase, python3 and
# Python's own test suite: glibc, coreutils, dash, findutils, tar, python3 with its
# standard library and tests. Documentation, locales and apt's package lists are left
# out (~140 MB): the nested guest of tools/nested-kvm.sh holds the tree in memory. Needs root (debootstrap)
# and Debian's mirror (PITH_DEBIAN_MIRROR, default deb.debian.org); installs debootstrap
# if missing. All but the path goes to stderr.
set -euo pipefail
cache=${PITH_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/pith}
dir=$cache/debian-12-python # named for what it holds: a new list, a new name
if [ ! -f "$dir/.pith-complete" ]; then
	[ "$(id -u)" = 0 ] || { echo "debian-rootfs: debootstrap needs root" >&2; exit 1; }
	if ! command -v debootstrap >/dev/null; then
		apt-get install -y -qq debootstrap >&2 || { apt-get update -qq >&2 && apt-get install -y -qq debootstrap >&2; }
	fi
	rm -rf "$dir.tmp" "$dir"
	mkdir -p "$cache"
	echo "debian-rootfs: debootstrap --variant=minbase bookworm into $dir (about a minute)" >&2
	debootstrap --variant=minbase --include=python3,libpython3.11-testsuite bookworm "$dir.tmp" \
		"${PITH_DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$cache/debian-rootfs.log" 2>&1 ||
		{ tail -n 20 "$cache/debian-rootfs.log" >&2; echo "debian-rootfs: debootstrap failed (log: $cache/debian-rootfs.log)" >&2; exit 1; }
	rm -rf "$dir.tmp"/usr/share/{doc,man,info,locale} "$dir.tmp"/var/cache/apt/* "$dir.tmp"/var/lib/apt/lists/*
	touch "$dir.tmp/.pith-complete"
	mv "$dir.tmp" "$dir"
fi
echo "$dir"
