#!/bin/sh
# Fetches Debian's kernel for bench/run's QEMU peer into bench/.cache/boot, unpacked from
# the package (nothing is installed), and installs QEMU if it is missing.
set -e
cd "$(dirname "$0")"
command -v qemu-system-x86_64 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends qemu-system-x86
pkg=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: \(linux-image-[^ ]*\)/\1/p' | head -1)
mkdir -p .cache && cd .cache
apt-get download "$pkg"
dpkg-deb --fsys-tarfile "$pkg"_*.deb | tar -x --wildcards './boot/vmlinuz-*'
rm -f "$pkg"_*.deb
ls boot/vmlinuz-*
