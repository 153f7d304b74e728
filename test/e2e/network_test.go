package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pithvm/pith/test/testenv"
)

// freePort is a TCP port on 127.0.0.1 nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// streamBytes is the size of the body TestRunPublishesPorts streams out of the guest: 1
// GiB, or PITH_TEST_STREAM_BYTES (tools/test.sh's nested run, on an emulated CPU, sets
// less).
func streamBytes(t *testing.T) int64 {
	if v := os.Getenv("PITH_TEST_STREAM_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			t.Fatalf("PITH_TEST_STREAM_BYTES=%s: not a size in bytes", v)
		}
		return n
	}
	return 1 << 30
}

// A server in the guest answers on the host through -p, with no root: HTTP (a 1 GiB body
// among its answers, checked against the checksum the guest sent) and UDP.
func TestRunPublishesPorts(t *testing.T) {
	testenv.RequireKVM(t)
	pith, kernel := testenv.Build(t)
	probe := testenv.Program(t, "probe")
	port, udpPort := freePort(t), freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, pith, "run", "--timing", "-p", fmt.Sprintf("127.0.0.1:%d:8080", port),
		"-p", fmt.Sprintf("127.0.0.1:%d:8081/udp", udpPort), probe, "serve")
	c.Env = append(os.Environ(), "PITH_KERNEL="+kernel, "PITH_DEADLINE=180s")
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	c.WaitDelay = 10 * time.Second
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 150 * time.Second}
	get := func(path string) (*http.Response, string, error) {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, string(b), err
	}
	var resp *http.Response
	var body string
	var err error
	for start := time.Now(); time.Since(start) < 60*time.Second; time.Sleep(100 * time.Millisecond) {
		if resp, body, err = get("/hello"); err == nil {
			break
		}
	}
	if err != nil || body != "hello /hello" {
		c.Process.Kill()
		c.Wait()
		t.Fatalf("GET /hello through -p: %q, %v\nstdout: %s\nstderr: %s", body, err, stdout.String(), stderr.String())
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || resp.Header.Get("Content-Length") != "12" {
		t.Errorf("GET /hello: status %d, headers %v", resp.StatusCode, resp.Header)
	}

	u, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", udpPort))
	if err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, 100)
	var n int
	for try := 0; try < 5; try++ { // UDP may lose a datagram; five tries
		u.Write([]byte("ping"))
		u.SetReadDeadline(time.Now().Add(2 * time.Second))
		if n, err = u.Read(reply); err == nil {
			break
		}
	}
	u.Close()
	if string(reply[:n]) != "echo: ping" {
		t.Errorf("UDP through -p .../udp: %q, %v", reply[:n], err)
	}

	streamBytes := streamBytes(t)
	start := time.Now()
	resp, err = client.Get(fmt.Sprintf("http://127.0.0.1:%d/stream/%d", port, streamBytes))
	if err != nil {
		t.Fatalf("GET /stream: %v", err)
	}
	sum := sha256.New()
	got, err := io.Copy(sum, resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil || got != streamBytes || resp.Trailer.Get("X-Sha256") != hex.EncodeToString(sum.Sum(nil)) {
		t.Errorf("GET /stream/%d: %d bytes, %v; SHA-256 %x, the guest sent %q", streamBytes, got, err, sum.Sum(nil), resp.Trailer.Get("X-Sha256"))
	}
	t.Logf("%d MiB out of the guest through -p in %v (%.0f MB/s)", got>>20, took.Round(time.Millisecond), float64(got)/took.Seconds()/1e6)

	if _, body, err = get("/quit"); err != nil || body != "hello /quit" {
		t.Errorf("GET /quit: %q, %v", body, err)
	}
	if err := c.Wait(); err != nil {
		t.Fatalf("pith run -p: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "served /hello\n") || !strings.Contains(stderr.String(), "pith: network: ") {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	t.Logf("pith run --timing: %s", stderr.String())
	// The host ports are free as soon as pith run has returned.
	for _, network := range []string{"tcp", "udp"} {
		at := fmt.Sprintf("127.0.0.1:%d", map[string]int{"tcp": port, "udp": udpPort}[network])
		var l io.Closer
		if network == "tcp" {
			l, err = net.Listen(network, at)
		} else {
			l, err = net.ListenPacket(network, at)
		}
		if err != nil {
			t.Errorf("%s port %s after the guest ended: %v", network, at, err)
			continue
		}
		l.Close()
	}
}

// A program in the guest reaches the host's servers through the gateway, and a guest
// with --net none has no route there.
func TestRunReachesTheHost(t *testing.T) {
	testenv.RequireKVM(t)
	probe := testenv.Program(t, "probe")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "host saw %s", r.URL.Path)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	at := fmt.Sprintf("10.0.2.2:%d", ln.Addr().(*net.TCPAddr).Port)
	r := testenv.Pith(t, nil, "run", probe, "fetch", at)
	if r.Code != 0 || r.Stdout != "200 host saw /from-the-guest\n" {
		t.Errorf("fetch from the guest: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	r = testenv.Pith(t, nil, "run", "--net", "none", probe, "fetch", at)
	if r.Code != 0 || r.Stdout != "get failed; unreachable: true\n" {
		t.Errorf("fetch with --net none: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
}

// A host port already taken, or a -p that does not parse, is refused before the guest
// runs, in one line that names it.
func TestRunRefusesPortsItCannotPublish(t *testing.T) {
	testenv.RequireKVM(t)
	probe := testenv.Program(t, "probe")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().(*net.TCPAddr).Port
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-p", fmt.Sprintf("127.0.0.1:%d:80", busy)}, fmt.Sprintf("port %d is already in use", busy)},
		{[]string{"-p", "8080:80/sctp"}, "tcp or udp"},
		{[]string{"--net", "none", "-p", "80"}, "no ports to publish"},
		{[]string{"--net", "bridge"}, "pith knows user"},
	} {
		r := testenv.Pith(t, nil, append(append([]string{"run"}, tc.args...), probe, "args")...)
		if r.Code == 0 || r.Stdout != "" || !strings.Contains(r.Stderr, tc.want) || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
			t.Errorf("pith run %v: exit %d, stdout %q, stderr %q; want one line containing %q", tc.args, r.Code, r.Stdout, r.Stderr, tc.want)
		}
	}
}

// --hostname and --add-host name the guest and its peers as Docker's do: uname,
// /etc/hostname and /etc/hosts agree.
func TestRunNamesHosts(t *testing.T) {
	testenv.RequireKVM(t)
	probe := testenv.Program(t, "probe")
	r := testenv.Pith(t, nil, "run", "--hostname", "web1", "--add-host", "db:10.9.8.7", "--add-host", "v6db=fd00::7",
		"--add-host", "host.docker.internal:host-gateway", probe, "names", "web1", "db", "v6db", "host.docker.internal", "localhost")
	want := `hostname: web1 <nil>
/etc/hostname: "web1\n" <nil>
web1 [10.0.2.15] <nil>
db [10.9.8.7] <nil>
v6db [fd00::7] <nil>
host.docker.internal [10.0.2.2] <nil>
localhost [127.0.0.1 ::1] <nil>
`
	if r.Code != 0 || r.Stdout != want {
		t.Errorf("pith run --hostname --add-host: exit %d, stderr %q, stdout\n%s\nwant\n%s", r.Code, r.Stderr, r.Stdout, want)
	}
	host, _ := os.Hostname()
	r = testenv.Pith(t, nil, "run", "--net", "none", probe, "names", host)
	want = fmt.Sprintf("hostname: %s <nil>\n/etc/hostname: %q <nil>\n%s [127.0.1.1] <nil>\n", host, host+"\n", host)
	if r.Code != 0 || r.Stdout != want {
		t.Errorf("pith run --net none: exit %d, stderr %q, stdout\n%s\nwant\n%s", r.Code, r.Stderr, r.Stdout, want)
	}
	for _, tc := range []struct{ flag, want string }{
		{"--hostname=-bad", "--hostname -bad: a host name is"},
		{"--add-host=db", "give NAME:IP"},
		{"--add-host=db:nowhere", "not an IP address"},
	} {
		r := testenv.Pith(t, nil, "run", tc.flag, probe, "args")
		if r.Code == 0 || !strings.Contains(r.Stderr, tc.want) || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
			t.Errorf("pith run %s: exit %d, stderr %q; want one line containing %q", tc.flag, r.Code, r.Stderr, tc.want)
		}
	}
}

// A name in the host's /etc/hosts resolves inside through pith's DNS server, as the host
// resolves it (a loopback address becomes the gateway, which stands for the host's
// loopback); a name nobody knows does not.
func TestRunResolvesTheHostsNames(t *testing.T) {
	testenv.RequireKVM(t)
	probe := testenv.Program(t, "probe")
	hosts, err := os.ReadFile("/etc/hosts")
	if err != nil {
		t.Skipf("this host has no /etc/hosts: %v", err)
	}
	var name, ip string
	for _, line := range strings.Split(string(hosts), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.Contains(f[0], ":") || f[1] == "localhost" {
			continue
		}
		name, ip = f[1], f[0]
		if strings.HasPrefix(ip, "127.") {
			ip = "10.0.2.2"
		}
		break
	}
	if name == "" {
		t.Skip("the host's /etc/hosts names no IPv4 address but localhost's")
	}
	// Another host name keeps the name out of the guest's own /etc/hosts: the answer comes
	// from pith's DNS server.
	r := testenv.Pith(t, nil, "run", "--hostname", "guest", probe, "names", name, "nothing.invalid")
	want := fmt.Sprintf("%s [%s] <nil>\n", name, ip)
	if r.Code != 0 || !strings.Contains(r.Stdout, want) || !strings.Contains(r.Stdout, "nothing.invalid [] lookup nothing.invalid") {
		t.Errorf("pith run probe names %s: exit %d, stderr %q, stdout\n%s\nwant a line %q and a failed lookup of nothing.invalid", name, r.Code, r.Stderr, r.Stdout, want)
	}
}

// A C server (static, built by gcc) serves through -p on a dual-stack IPv6 socket.
func TestRunServesFromC(t *testing.T) {
	testenv.RequireKVM(t)
	pith, kernel := testenv.Build(t)
	cserve := testenv.Program(t, "cserve")
	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, pith, "run", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), cserve, "80")
	c.Env = append(os.Environ(), "PITH_KERNEL="+kernel, "PITH_DEADLINE=100s")
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	c.WaitDelay = 10 * time.Second
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) (string, error) {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	var body string
	var err error
	for start := time.Now(); time.Since(start) < 60*time.Second; time.Sleep(100 * time.Millisecond) {
		if body, err = get("/c"); err == nil {
			break
		}
	}
	if err != nil || body != "hello from C /c\n" {
		c.Process.Kill()
		c.Wait()
		t.Fatalf("GET /c through -p: %q, %v\nstdout: %s\nstderr: %s", body, err, stdout.String(), stderr.String())
	}
	if body, err = get("/quit"); err != nil || body != "hello from C /quit\n" {
		t.Errorf("GET /quit: %q, %v", body, err)
	}
	if err := c.Wait(); err != nil {
		t.Fatalf("pith run cserve: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	if stdout.String() != "listening on 80\nserved /c\nserved /quit\n" || stderr.Len() != 0 {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
}

// Two guests on one bridge, each on a tap of its own (--net tap:), in a network namespace
// the test makes: one serves, the other and the namespace itself reach it at its address,
// and it answers ping.
func TestRunOnABridge(t *testing.T) {
	testenv.RequireKVM(t)
	pith, kernel := testenv.Build(t)
	probe := testenv.Program(t, "probe")
	if os.Geteuid() != 0 {
		t.Skip("making taps and a bridge in a network namespace needs root")
	}
	for _, tool := range []string{"unshare", "ip", "brctl", "tunctl", "wget", "ping", "timeout"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is missing (busybox has it): %v", tool, err)
		}
	}
	script := `set -e
ip link set lo up
brctl addbr br0
tunctl -t tapa >/dev/null
tunctl -t tapb >/dev/null
brctl addif br0 tapa
brctl addif br0 tapb
ip link set tapa up
ip link set tapb up
ip link set br0 up
ip addr add 10.9.0.1/24 dev br0
"$PITH" run --net tap:tapa --ip 10.9.0.2/24 --gateway 10.9.0.1 "$PROBE" serve >"$OUT/a" 2>&1 &
a=$!
trap 'kill $a 2>/dev/null || true' EXIT
i=0
until timeout 5 wget -q -O - http://10.9.0.2:8080/from-the-namespace 2>/dev/null; do # a is up
	i=$((i + 1))
	[ $i -lt 600 ] || { echo "a never answered: $(cat "$OUT/a")"; exit 1; }
	sleep 0.1
done
echo
"$PITH" run --net tap:tapb --ip 10.9.0.3/24 --add-host a:10.9.0.2 "$PROBE" fetch a:8080 /from-b
ping -c 1 -W 5 10.9.0.2 >/dev/null && echo "ping answered"
"$PITH" run --net tap:tapb --ip 10.9.0.3/24 "$PROBE" fetch 10.9.0.2:8080 /quit
wait $a
echo "a: $(cat "$OUT/a")"
"$PITH" run --net tap:tapz --ip 10.9.0.4/24 "$PROBE" args 2>&1 || true
"$PITH" run --net tap:tapa "$PROBE" args 2>&1 || true
`
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, "unshare", "-n", "sh", "-c", script)
	c.Env = append(os.Environ(), "PITH="+pith, "PROBE="+probe, "OUT="+out, "PITH_KERNEL="+kernel, "PITH_DEADLINE=100s")
	c.WaitDelay = 10 * time.Second // a guest left running holds the output open
	got, err := c.CombinedOutput()
	want := `hello /from-the-namespace
200 hello /from-b
ping answered
200 hello /quit
a: served /from-the-namespace
served /from-b
served /quit
pith: --net tap:tapz: no such network device; create it first: ip tuntap add tapz mode tap user $(id -un)
pith: --net tap:tapa: give the guest's address on the tap's network: --ip ADDR/PREFIX (and --gateway IP to reach beyond it)
`
	if err != nil || string(got) != want {
		t.Errorf("two guests on a bridge: %v\n%s\nwant\n%s", err, got, want)
	}
}

// A program lists the guest's interfaces and addresses as on Linux (rtnetlink dumps,
// which Go's net.Interfaces reads): the loopback, and the NIC with the address the
// monitor gave it unless --net none.
func TestRunListsInterfaces(t *testing.T) {
	testenv.RequireKVM(t)
	probe := testenv.Program(t, "probe")
	const lo = "1 lo true up|loopback|running 0 127.0.0.1/8 ::1/128\n"
	r := testenv.Pith(t, nil, "run", probe, "interfaces")
	eth := regexp.MustCompile(`(?m)^2 eth0 true up\|broadcast\|multicast\|running 6 (\d+\.){3}\d+/\d+$`)
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, lo) || !eth.MatchString(r.Stdout) || !strings.HasSuffix(r.Stdout, "lo by index: true\n") {
		t.Errorf("exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	r = testenv.Pith(t, nil, "run", "--net", "none", probe, "interfaces")
	if want := lo + "lo by index: true\n"; r.Code != 0 || r.Stdout != want {
		t.Errorf("--net none: exit %d, stdout %q, stderr %q; want %q", r.Code, r.Stdout, r.Stderr, want)
	}
}
