#!/usr/bin/env bash
# nested-kvm.sh: run commands against hardware KVM on any x86-64 Linux machine, /dev/kvm
# or not. It boots a Debian kernel in QEMU under TCG (software emulation, no host KVM
# needed) on an AMD CPU model with SVM and nested paging, loads that kernel's kvm and
# kvm_amd modules, and runs each COMMAND in the guest with busybox sh: pith there drives
# AMD-V, the path most users' hosts take, whatever this machine has.
#
# Usage: tools/nested-kvm.sh [-c] [-f HOSTPATH[:GUESTPATH]]... [--] COMMAND...
#   -f   copies a file or directory into the guest (at the same path unless GUESTPATH).
#        Host binaries must be static: the guest has busybox and nothing else.
#   -c   copies this machine's containerd, ctr, crictl, containerd-shim-runc-v2, runc and
#        docker-registry (those on PATH) into the guest's /bin, CNI's bridge, host-local and loopback
#        plugins (/usr/lib/cni), and the shared libraries they link.
# Each command runs from /, framed on stdout by "=== NESTED COMMAND n"
# and "=== NESTED RESULT n: rc=R in Ss". The script exits 0 when every command did, 1 when
# one failed, 2 when the guest could not be made or booted.
#
# Everything comes from Debian's packages: qemu-system-x86, busybox-static, cpio, xz-utils
# (installed if missing, as root) and the kernel, a linux-image package fetched with
# apt-get download and extracted with dpkg-deb into the cache (PITH_CACHE, default
# ~/.cache/pith), kept between runs. Settings (environment):
#   NESTED_KERNEL   linux-image package; default Debian 12's current one (the
#                   linux-image-amd64 dependency), whose KVM lacks TSC-deadline in
#                   KVM_GET_SUPPORTED_CPUID (Linux before 6.13): the regression test for
#                   pith's CPUID set-up
#   NESTED_MEM=4G NESTED_CPUS=1    the guest's memory and CPUs. With 2, the guest kernel
#                   locked up in about half the runs of the end-to-end suite (soft
#                   lockups on both CPUs in pith's vCPU threads, under QEMU 7.2's emulated
#                   SVM): pith's own 2-vCPU tests run on one CPU there instead
#   NESTED_TIMEOUT=3000            seconds before the whole run is stopped
#   NESTED_CMD_TIMEOUT=1200        seconds before one command is stopped, after its
#                   processes' states and kernel stacks are printed (and the kernel's
#                   list of blocked tasks, sysrq w), so a hang names where it is
#   NESTED_APPEND                  more guest kernel parameters
#   NESTED_KICK=0.2                seconds between the key presses that recover an
#                   interrupt QEMU lost (below)
#   NESTED_MONITOR                 QEMU's monitor (-monitor), e.g. unix:/tmp/qmon,server,nowait:
#                   where the guest kernel itself stops answering, `info registers`
#                   there (with NESTED_APPEND=nokaslr and the kernel's System.map in the
#                   cache) says where its CPU is
set -euo pipefail

files=()
containerd=0
while [ $# -gt 0 ]; do
	case $1 in
	-f) files+=("$2"); shift 2 ;;
	-c) containerd=1; shift ;;
	--) shift; break ;;
	-*) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 2 ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 2; }

die() { echo "nested-kvm: $*" >&2; exit 2; }
[ "$(uname -m)" = x86_64 ] || die "needs an x86-64 machine"
cache=${PITH_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/pith}/nested-kvm
mkdir -p "$cache"

# --- what the host needs --------------------------------------------------------------
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v cpio >/dev/null || need+=(cpio)
command -v xz >/dev/null || need+=(xz-utils)
[ -x /bin/busybox ] || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || die "install the Debian packages ${need[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null || die "apt-get install ${need[*]} failed"
fi

# --- the kernel -----------------------------------------------------------------------
kpkg=${NESTED_KERNEL:-}
if [ -z "$kpkg" ]; then
	resolve() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}'; }
	kpkg=$(resolve)
	if [ -z "$kpkg" ]; then
		apt-get update -qq || true
		kpkg=$(resolve)
	fi
	if [ -z "$kpkg" ]; then # no package lists: take the newest kernel already fetched
		kpkg=$(ls "$cache/kernels" 2>/dev/null | sort -V | tail -n1)
		kpkg=${kpkg:+linux-image-$kpkg}
	fi
	[ -n "$kpkg" ] || die "cannot tell which Debian kernel to use: set NESTED_KERNEL=linux-image-... or run apt-get update"
fi
kver=${kpkg#linux-image-}
kdir=$cache/kernels/$kver
vmlinuz=$kdir/boot/vmlinuz-$kver
mods=$kdir/lib/modules/$kver
if [ ! -f "$vmlinuz" ] || [ ! -d "$mods/kernel" ]; then
	mkdir -p "$cache/kernels"
	dl=$(mktemp -d "$cache/download.XXXXXX")
	(cd "$dl" && apt-get download "$kpkg" >/dev/null 2>&1) ||
		{ rm -rf "$dl"; die "apt-get download $kpkg failed (apt-get update first?)"; }
	rm -rf "$kdir.new" && mkdir -p "$kdir.new"
	dpkg-deb -x "$dl"/*.deb "$kdir.new" && rm -rf "$dl" "$kdir" && mv "$kdir.new" "$kdir"
	[ -f "$vmlinuz" ] && [ -d "$mods/kernel" ] || die "$kpkg has no boot/vmlinuz-$kver or modules"
fi

# --- the guest's initramfs ------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/nested-kvm.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,proc,sys,dev,tmp,root,modules}
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
	[ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
# kvm_amd and what it needs, dependencies first (each module's own modinfo names them:
# the package has no modules.dep, which depmod makes at install).
n=0
loaded=" "
load() { # load MODULE-NAME
	local name=$1 path dep
	case $loaded in *" $name "*) return ;; esac
	path=$(find "$mods/kernel" -name "$name.ko*" -o -name "${name//_/-}.ko*" | head -n1)
	[ -n "$path" ] || die "$kpkg has no module $name"
	for dep in $(decompress "$path" | tr '\0' '\n' | sed -n 's/^depends=//p' | tr , ' '); do
		load "$dep"
	done
	n=$((n + 1))
	decompress "$path" >"$root/modules/$(printf %02d $n)-$name.ko"
	loaded="$loaded$name "
}
decompress() {
	case $1 in
	*.xz) xz -dc "$1" ;;
	*.zst) zstd -qdc "$1" ;;
	*.gz) gzip -dc "$1" ;;
	*) cat "$1" ;;
	esac
}
load kvm_amd
load tun    # pith run --net tap: (test/e2e makes taps and a bridge in a network namespace)
load bridge
# A pod's network under containerd's CRI: CNI's veth pair, and the tc redirects that join
# it to the unikernel's tap (host/shim/network.go).
load veth
load sch_ingress
load cls_u32
load act_mirred
if [ "$containerd" = 1 ]; then
	bins=()
	for b in containerd ctr crictl containerd-shim-runc-v2 runc docker-registry; do
		p=$(command -v $b) || continue
		bins+=("$p")
		files+=("$p:/bin/$b")
	done
	for p in bridge host-local loopback; do
		[ -x "/usr/lib/cni/$p" ] && bins+=("/usr/lib/cni/$p") && files+=("/usr/lib/cni/$p")
	done
	for l in $(for b in "${bins[@]}"; do ldd "$b" 2>/dev/null || true; done | awk '/=> \// {print $3} /^\t\// {print $1}' | sort -u); do
		files+=("$(readlink -f "$l"):$l")
	done
fi
for f in ${files[@]+"${files[@]}"}; do
	src=${f%%:*} dst=${f#*:}
	[ "$f" = "$src" ] && dst=$src
	[ -e "$src" ] || die "-f $src: no such file"
	mkdir -p "$root$(dirname "$dst")"
	rm -rf "$root$dst"
	cp -a "$src" "$root$dst"
done
i=0
for c in "$@"; do
	i=$((i + 1))
	printf '%s\n' "$c" >"$root/command.$i"
done
echo "${NESTED_CMD_TIMEOUT:-1200}" >"$root/command-timeout"
cat >"$root/init" <<'EOF'
#!/bin/sh
export PATH=/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t cgroup2 cgroup2 /sys/fs/cgroup # containers' cgroups (containerd-shim-pith-v2)
mkdir -p /dev/pts # pseudo-terminals (ctr run -t)
mount -t devpts -o ptmxmode=0666 devpts /dev/pts
[ -e /dev/ptmx ] || ln -s pts/ptmx /dev/ptmx
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
ip link set lo up # native runs the end-to-end tests compare with use the loopback network
# A host's /etc/hosts as most have one: pith's DNS answers the guest from it.
mkdir -p /etc
printf '127.0.0.1 localhost\n::1 localhost\n192.0.2.10 pith-hosts-entry.test\n' >/etc/hosts
echo "=== NESTED: Linux $(uname -r), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
for m in /modules/*; do
	insmod "$m" || echo "=== NESTED: insmod $m failed"
done
if [ ! -c /dev/kvm ]; then
	echo "=== NESTED: no /dev/kvm: $(dmesg | grep -i -e kvm -e svm | tail -n 3)"
	poweroff -f
fi
echo "=== NESTED: clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource); $(dmesg | grep -i -m3 -e 'tsc.*unstable' -e 'tsc: Refined' -e 'tsc: Detected' | tr '\n' ';')"
echo "=== NESTED: /dev/kvm from kvm_amd, nested paging $(cat /sys/module/kvm_amd/parameters/npt)"
CMD_TIMEOUT=$(cat /command-timeout)
i=1
while [ -f /command.$i ]; do
	echo "=== NESTED COMMAND $i: $(cat /command.$i)"
	t0=$(cut -d' ' -f1 /proc/uptime)
	# Each command in a session of its own, so that one that hangs can be described and
	# stopped with everything it started, and the run goes on to report it. Started in the
	# background by a shell without job control, it has SIGINT and SIGQUIT ignored, and
	# so do the programs it starts unless they reset them (test/e2e's terminal tests do:
	# an interactive dash that inherits SIGINT ignored never answers Ctrl-C).
	(cd / && exec setsid sh /command.$i) </dev/null 2>&1 &
	pid=$!
	(
		sleep "$CMD_TIMEOUT"
		kill -0 "$pid" 2>/dev/null || exit 0
		echo "=== NESTED: command $i still running after ${CMD_TIMEOUT}s; its processes and their kernel stacks:"
		for p in /proc/[0-9]*; do
			[ "$(cut -d' ' -f6 "$p/stat" 2>/dev/null)" = "$pid" ] || continue
			echo "--- pid ${p#/proc/}: $(tr '\0' ' ' <"$p/cmdline" | cut -c1-200)"
			for t in "$p"/task/*; do
				echo "  tid ${t##*/} state $(cut -d' ' -f3 "$t/stat") wchan $(cat "$t/wchan" 2>/dev/null)"
				sed 's/^/    /' "$t/stack" 2>/dev/null
			done
		done
		echo w >/proc/sysrq-trigger
		dmesg | grep -A1000 -m1 'sysrq: Show Blocked State' | head -n 200
		kill -KILL "-$pid"
	) &
	watchdog=$!
	wait "$pid"
	rc=$?
	kill "$watchdog" 2>/dev/null
	t1=$(cut -d' ' -f1 /proc/uptime)
	echo "=== NESTED RESULT $i: rc=$rc in $(awk "BEGIN{printf \"%.1f\", $t1-$t0}")s"
	i=$((i + 1))
done
echo "=== NESTED: done"
poweroff -f
EOF
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz"

# --- boot -----------------------------------------------------------------------------
# tsc=reliable: TCG's TSC is the host's, the same on every vCPU, but the guest kernel's
# boot-time sync check sees warps between its unevenly emulated CPUs and marks it
# unstable; KVM then stops each nested vCPU's TSC while its thread is descheduled, and
# pith's guest sees time go back between vCPUs and its timers fire late (measured: a
# 2-vCPU selftest failed "monotonic", and L1 itself later panicked).
log=$work/console
echo "=== nested-kvm: Linux $kver under QEMU TCG (-cpu EPYC,+svm,+npt), initramfs $(du -h "$work/initrd.gz" | cut -f1)"
# QEMU 7.2's TCG can lose an interrupt pending in the nested kernel's local APIC (IRR set,
# the CPU not told): measured with its monitor during a wedge, the timer's vector 236 sat
# in IRR while the CPU ran a pith guest that made no exits (it stayed in the guest for
# good) or sat in HLT (QEMU idle); the guest kernel's own timeouts never fired. Any new
# interrupt makes QEMU look at the APIC again and takes the lost one: a shift key press
# through a second monitor every NESTED_KICK seconds (0.2; the keyboard's tty has no
# reader) keeps a lost interrupt from stopping the nested kernel for longer than that.
kick=$work/kick
mkfifo "$kick.in" "$kick.out"
(while sleep "${NESTED_KICK:-0.2}"; do echo "sendkey shift" || exit 0; done) 2>/dev/null >"$kick.in" &
kicker=$!
cat "$kick.out" >/dev/null &
drain=$!
start=$(date +%s)
set +e
timeout "${NESTED_TIMEOUT:-3000}" qemu-system-x86_64 \
	-accel tcg,thread=multi -cpu EPYC,+svm,+npt -m "${NESTED_MEM:-4G}" -smp "${NESTED_CPUS:-1}" \
	-nographic -no-reboot -nodefaults -serial stdio -monitor "${NESTED_MONITOR:-none}" \
	-chardev pipe,id=kick,path="$kick" -mon chardev=kick,mode=readline \
	-kernel "$vmlinuz" -initrd "$work/initrd.gz" \
	-append "console=ttyS0 panic=-1 loglevel=4 rdinit=/init tsc=reliable ${NESTED_APPEND:-}" </dev/null \
	2> >(grep -v "TCG doesn't support requested feature" >&2) | tee "$log"
qemu=${PIPESTATUS[0]}
kill "$kicker" "$drain" 2>/dev/null
set -e
echo "=== nested-kvm: QEMU ran $(($(date +%s) - start))s (exit $qemu)"
[ "$qemu" = 124 ] && { echo "nested-kvm: stopped after ${NESTED_TIMEOUT:-3000}s" >&2; exit 1; }
ran=$(grep -c '^=== NESTED RESULT ' "$log" || true)
[ "$ran" = $# ] || { echo "nested-kvm: the guest ran $ran of $# commands" >&2; exit 2; }
failed=$(grep '^=== NESTED RESULT ' "$log" | grep -vc ': rc=0 ' || true)
[ "$failed" = 0 ] || { echo "nested-kvm: $failed of $# commands failed" >&2; exit 1; }
