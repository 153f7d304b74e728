#!/bin/bash
# Where a net/http request's host CPU goes under wrk: runs bench/apps/httphello under
# `pith run --timing -p`, loads it with `wrk -t2 -c16 -d10s` (apt-get install wrk), and
# prints the host's CPU split and each pith thread's user and system ticks, time run and
# time waiting for a CPU (/proc/PID/task/TID/schedstat), then pith's --timing lines.
# Extra arguments are environment for pith: PITH_KERNEL=... to compare kernels (run them
# interleaved: this host's figures move by a third from one minute to the next),
# PITH_GUESTPROFILE=FILE for a profile of the guest (docs/architecture.md, "Profiles").
#
#	make && bench/net-threads.sh [VAR=VALUE...]
set -e
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
CGO_ENABLED=0 go build -o "$dir/hello" ./bench/apps/httphello
port=$((20000 + RANDOM % 10000))
env "$@" "${PITH:-bin/pith}" run --timing -p 127.0.0.1:$port:8080 "$dir/hello" >"$dir/out" 2>"$dir/err" &
pid=$!
for _ in $(seq 100); do curl -s "localhost:$port/" >/dev/null && break; sleep 0.1; done
snap() {
	for t in /proc/$pid/task/*; do
		echo "$(basename "$t") $(awk '{print $14, $15}' "$t/stat") $(cat "$t/schedstat")"
	done
	head -1 /proc/stat
}
snap >"$dir/before"
wrk -t2 -c16 -d10s --latency "http://127.0.0.1:$port/" | grep -E 'Requests/sec|[0-9]%'
snap >"$dir/after"
kill -INT $pid
wait $pid || true
python3 - "$dir/before" "$dir/after" <<'PY'
import sys
def read(path):
    d = {}
    for line in open(path):
        p = line.split()
        d[p[0]] = list(map(int, p[1:]))
    return d
b, a = read(sys.argv[1]), read(sys.argv[2])
cpu = [x - y for x, y in zip(a['cpu'], b['cpu'])]
total = sum(cpu[:8])
print("host: user %.0f%%, system %.0f%%, idle %.0f%%" % (100*cpu[0]/total, 100*cpu[2]/total, 100*cpu[3]/total))
rows = []
for tid, v in a.items():
    if tid == 'cpu' or tid not in b:
        continue
    w = b[tid]
    if v[0] + v[1] - w[0] - w[1] > 5:
        rows.append((v[0]-w[0], v[1]-w[1], (v[2]-w[2])/1e9, (v[3]-w[3])/1e9, v[4]-w[4], tid))
for u, s, ran, waited, slices, tid in sorted(rows, key=lambda r: -(r[0]+r[1])):
    print("  thread %s: user %d, system %d ticks; ran %.2f s, waited for a CPU %.2f s, %d slices" % (tid, u, s, ran, waited, slices))
PY
grep '^pith:' "$dir/err"
