#!/usr/bin/env bash
# The project's test command (`make test`; .ci/run calls it). It installs what the tests
# need, checks formatting and vet, and runs every test, uncached: the end-to-end tests
# build and boot the kernel, which go test's cache cannot see.
#
# The end-to-end tests (test/e2e) run on this machine's /dev/kvm where it works, and on
# every machine also inside tools/nested-kvm.sh's guest: Debian 12's kernel with KVM on
# an emulated AMD CPU, the hardware path most users' hosts take (and, on a machine
# without /dev/kvm, the only one there is). PITH_NESTED=0 skips the nested run where
# /dev/kvm works (a quick local run; CI never sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

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
need gcc gcc
need musl-gcc musl-tools # a program linked against musl, Alpine's C library, with its dynamic linker
[ -x /bin/busybox ] || need busybox busybox-static
# The image tests' peers: a registry (the CNCF distribution server) and a client no one
# here wrote.
need docker-registry docker-registry
need skopeo skopeo
# The shim's peers: Debian's containerd (its ctr drives it), CNI's plugins for pods, and
# crictl (cri-tools, which Debian lacks), built once from the Go module proxy into the cache.
need containerd containerd
[ -x /usr/lib/cni/bridge ] || need /usr/lib/cni/bridge containernetworking-plugins
crictl_version=v1.37.0
crictl_dir=${PITH_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/pith}/crictl-$crictl_version
if [ ! -x "$crictl_dir/crictl" ]; then
	CGO_ENABLED=0 GOBIN="$crictl_dir" go install "sigs.k8s.io/cri-tools/cmd/crictl@$crictl_version"
fi
export PATH=$crictl_dir:$PATH
# And a current containerd 2.x, built the same way: the shim's tests run against both.
containerd2_version=v2.4.2
containerd2_dir=${PITH_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/pith}/containerd-$containerd2_version
if [ ! -x "$containerd2_dir/containerd" ] || [ ! -x "$containerd2_dir/ctr" ]; then
	CGO_ENABLED=0 GOBIN="$containerd2_dir" go install -tags no_btrfs,no_devmapper,no_zfs \
		"github.com/containerd/containerd/v2/cmd/containerd@$containerd2_version" \
		"github.com/containerd/containerd/v2/cmd/ctr@$containerd2_version"
fi

# The dynamic programs' tests run a Debian 12 tree's programs (debootstrap, once, into the
# cache): the nested guest gets a copy.
debian=$(tools/debian-rootfs.sh)

unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi
go vet ./...

kvm=0
if [ -c /dev/kvm ] && { : <>/dev/kvm; } 2>/dev/null; then
	kvm=1
fi
nested=1
[ "$kvm" = 1 ] && [ "${PITH_NESTED:-1}" = 0 ] && nested=0

# One package at a time: the end-to-end tests boot VMs and check timing behaviour (a
# ticker keeps ticking under a CPU-bound goroutine), which a parallel build would starve.
SECONDS=0
if [ "$kvm" = 1 ]; then
	go test -count=1 -p 1 ./...
else
	echo "tools/test.sh: no usable /dev/kvm here: the end-to-end tests run in the nested guest only"
	go test -count=1 -p 1 $(go list ./... | grep -v '/test/e2e$')
	# The end-to-end tests of refusals that come before KVM is opened run here too.
	go test -count=1 -run '^(TestBadKernelIsRefused|TestBadFlagsAreRefused|TestRunRefusesWhatItCannotRun|TestImageRefusals|TestRootfsRefusals|TestContainerdRefusals)$' ./test/e2e
fi
echo "tools/test.sh: go test on this machine took ${SECONDS}s"
[ "$nested" = 1 ] || exit 0

# The nested run: pith, its kernel and the tests' programs are built here (the guest has
# no Go or gcc), the repository's files go in at the same path (the tests read them).
SECONDS=0
stage=$(mktemp -d "${TMPDIR:-/tmp}/pith-nested.XXXXXX")
trap 'rm -rf "$stage"' EXIT
go run ./test/testenv/prebuild "$stage/bin"
CGO_ENABLED=0 go test -c -o "$stage/bin/e2e.test" ./test/e2e # static: the nested guest has no dynamic loader
mkdir -p "$stage/repo"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
		[ -f "$f" ] && mkdir -p "$stage/repo/$(dirname "$f")" && cp -p "$f" "$stage/repo/$f"
	done
else
	cp -a . "$stage/repo"
fi
echo "tools/test.sh: built for the nested guest in ${SECONDS}s"
bin=/pith-test
run="PITH_TEST_BIN=$bin PITH_KERNEL=$bin/pith-kernel"
# Everything in the nested guest runs on QEMU's emulated CPU, where a body streams out of
# a guest at about 3 MB/s: 32 MiB there instead of TestRunPublishesPorts's 1 GiB.
e2e_env="PITH_TEST_STREAM_BYTES=33554432"
# The Debian kernel's KVM lacks TSC-deadline in KVM_GET_SUPPORTED_CPUID: each of these
# hung there before pith set the CPUID bit itself.
# A suite that hangs dumps its goroutines after 15 minutes (its run takes about 4); a
# command still running after 20 has its processes' kernel stacks printed and is stopped;
# the whole guest is stopped after 40, well inside CI's limit.
# The Debian programs' tests run in a command of their own, after the rest.
# TestPythonTestSuite is not among them here: in the nested guest (QEMU's emulated CPU,
# natively and inside pith) its 30 modules took over 15 minutes; it runs where /dev/kvm
# works (go test ./... above), or by hand: docs/compat.md.
debian_tests='^(TestDebianPrograms|TestProcFiles|TestSharedLibrariesComeFromThePageCache|TestTerminal|TestTerminalModesPutBack|TestStdinSharedWithStartedPrograms|TestForksOnTwoVCPUsUnderHostLoad)$'
status=0
NESTED_CMD_TIMEOUT=1200 NESTED_TIMEOUT=${NESTED_TIMEOUT:-2400} tools/nested-kvm.sh -c -f "$containerd2_dir:/containerd2" -f "$stage/bin:$bin" -f "$stage/repo:$root" -f "$(readlink -f /bin/true):/bin/true" -f "$debian:/debian" -- \
	"$bin/pith doctor" \
	"$run $bin/pith selftest" \
	"$run $bin/pith selftest --cpus 2" \
	"$run $bin/pith selftest --x86-standard" \
	"cd $root/test/e2e && $e2e_env $run $bin/e2e.test -test.count=1 -test.v -test.timeout=15m -test.skip '$debian_tests|^TestPythonTestSuite$'" \
	"cd $root/test/e2e && PITH_TEST_DEBIAN=/debian $run $bin/e2e.test -test.count=1 -test.v -test.timeout=15m -test.run '$debian_tests'" \
	"export PATH=/containerd2:\$PATH && containerd --version && cd $root/test/e2e && $run $bin/e2e.test -test.count=1 -test.v -test.run '^(TestContainerd|TestCRI)' -test.timeout=10m" >"$stage/console" 2>&1 || status=$?
grep -v -e '^=== RUN' -e '^=== PAUSE' -e '^=== CONT' -e '^    --- PASS' "$stage/console" | tr -d '\r'
echo "tools/test.sh: the nested guest took ${SECONDS}s"
if [ "$status" != 0 ]; then
	# CI keeps only the end of a log: each failed command's last lines go last.
	tr -d '\r' <"$stage/console" | awk '
		/^=== NESTED COMMAND / { n = 0; cmd = $0; next }
		/^=== NESTED RESULT / { if ($0 !~ /: rc=0 /) { print "--- failed: " cmd; for (i = (n > 40 ? n - 40 : 0); i < n; i++) print out[i]; print $0 } n = 0; next }
		!/^=== (RUN|PAUSE|CONT)/ && !/^    --- PASS/ { out[n++] = $0 }'
	echo "FAIL: the end-to-end tests on hardware KVM (nested, Debian 12's kernel)" >&2
	exit 1
fi
passed=$(grep -c -e '^--- PASS' "$stage/console" || true)
echo "the end-to-end tests on hardware KVM (nested, Debian 12's kernel):"
echo "e2e: $passed passed, 0 failed (the containerd tests twice: Debian's containerd, then $containerd2_version)"
