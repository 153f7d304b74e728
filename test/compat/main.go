// Command compat runs standard-library packages' tests natively and inside pith, and prints
// package, native result, pith result and the time ratio; with -md it writes the table as
// Markdown (docs/compat.md). Each package's test binary is built once (go test -c) and run
// in the package's directory, natively and with `pith run -m 4g -v GOROOT --`, which is
// what `go test -exec 'pith run -m 4g -v GOROOT --'` does.
//
//	make && go run ./test/compat [-md docs/compat.md] [-pkgs a,b]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// packages are the standard-library packages in the table: ones whose tests need no
// network, no subprocesses and no cgo, across the library.
var packages = []string{
	"archive/tar", "archive/zip", "bufio", "bytes", "cmp", "compress/bzip2", "compress/flate",
	"compress/gzip", "compress/lzw", "compress/zlib", "container/heap", "container/list",
	"container/ring", "context", "crypto/aes", "crypto/cipher", "crypto/des", "crypto/ecdsa",
	"crypto/ed25519", "crypto/hmac", "crypto/md5", "crypto/rand", "crypto/rsa", "crypto/sha1",
	"crypto/sha256", "crypto/sha512", "crypto/subtle", "encoding/ascii85", "encoding/base32",
	"encoding/base64", "encoding/binary", "encoding/csv", "encoding/hex", "encoding/json",
	"encoding/pem", "encoding/xml", "errors", "flag", "fmt", "hash/adler32", "hash/crc32",
	"hash/crc64", "hash/fnv", "hash/maphash", "html", "html/template", "image", "image/color",
	"image/draw", "image/gif", "image/jpeg", "image/png", "io", "io/fs", "iter", "maps",
	"math", "math/big", "math/bits", "math/cmplx", "math/rand", "math/rand/v2", "mime",
	"mime/quotedprintable", "path", "path/filepath", "regexp", "regexp/syntax", "slices",
	"sort", "strconv", "strings", "sync", "sync/atomic", "text/scanner", "text/tabwriter",
	"text/template", "time", "unicode", "unicode/utf16", "unicode/utf8", "unique",
	// The network's, on the guest's loopback and the monitor's user-mode network.
	"crypto/tls", "log/syslog", "net", "net/http", "net/http/cookiejar", "net/http/httptest",
	"net/http/httptrace", "net/http/httputil", "net/mail", "net/netip", "net/rpc",
	"net/rpc/jsonrpc", "net/smtp", "net/textproto", "net/url",
}

type result struct {
	pkg            string
	native, inside string
	tn, ti         time.Duration
	detail         string
}

func main() {
	md := flag.String("md", "", "also write the table as Markdown to this file")
	pkgs := flag.String("pkgs", "", "comma-separated packages instead of the built-in list")
	bin := flag.String("bin", "bin", "directory holding pith and pith-kernel")
	timeout := flag.Duration("timeout", 5*time.Minute, "go test -timeout for each run")
	short := flag.Bool("short", false, "run the tests with -test.short")
	prebuilt := flag.String("prebuilt", "", "directory of test binaries built by -build-only (a machine with no Go: the nested guest)")
	buildOnly := flag.String("build-only", "", "only build the test binaries into this directory")
	gorootFlag := flag.String("goroot", "", "the Go tree holding the packages' sources (default: go env GOROOT)")
	machine := flag.String("machine", "the development machine (2 cores, kvm-pvm)", "where the table was made, for -md")
	flag.Parse()
	list := packages
	if *pkgs != "" {
		list = strings.Split(*pkgs, ",")
	}
	if *buildOnly != "" {
		for _, p := range list {
			if out, err := buildTest(p, testBinary(*buildOnly, p)); err != nil {
				fmt.Printf("%s: %v\n%s", p, err, out)
			}
		}
		return
	}
	pith, err := filepath.Abs(filepath.Join(*bin, "pith"))
	if err != nil {
		fatal(err)
	}
	if _, err := os.Stat(pith); err != nil {
		fatal(fmt.Errorf("%s: build it first with make", pith))
	}
	goroot := *gorootFlag
	if goroot == "" {
		goroot = strings.TrimSpace(output("go", "env", "GOROOT"))
	}
	work, err := os.MkdirTemp("", "pith-compat-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(work)
	if *prebuilt != "" {
		work = *prebuilt
	}
	var results []result
	fmt.Printf("%-24s %-7s %-7s %s\n", "package", "native", "pith", "time ratio")
	for _, p := range list {
		r := result{pkg: p}
		bin := testBinary(work, p)
		if *prebuilt == "" {
			if out, err := buildTest(p, bin); err != nil {
				r.native, r.inside, r.detail = "build", "build", string(out)
				results = append(results, r)
				continue
			}
		}
		dir := filepath.Join(goroot, "src", p)
		testArgs := []string{"-test.timeout", timeout.String()}
		if *short {
			testArgs = append(testArgs, "-test.short")
		}
		r.native, r.tn, _ = runTest(dir, bin, testArgs...)
		r.inside, r.ti, r.detail = runTest(dir, pith, append([]string{"run", "-m", "4g", "-v", goroot, "--", bin}, testArgs...)...)
		results = append(results, r)
		fmt.Printf("%-24s %-7s %-7s %.1fx\n", p, r.native, r.inside, float64(r.ti)/float64(r.tn))
	}
	passN, passI := 0, 0
	for _, r := range results {
		if r.native == "ok" {
			passN++
			if r.inside == "ok" {
				passI++
			}
		}
	}
	fmt.Printf("\n%d of %d packages that pass natively pass inside pith (%.0f%%)\n", passI, passN, 100*float64(passI)/float64(max(passN, 1)))
	if *md != "" {
		writeMarkdown(*md, *machine, *short, results, passI, passN)
	}
}

func testBinary(dir, pkg string) string {
	return filepath.Join(dir, strings.ReplaceAll(pkg, "/", "_")+".test")
}

// buildTest builds pkg's test binary, static (CGO_ENABLED=0), as pith runs it.
func buildTest(pkg, out string) ([]byte, error) {
	build := exec.Command("go", "test", "-c", "-o", out, pkg)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	return build.CombinedOutput()
}

// runTest runs a test binary in dir and reports ok/FAIL, the wall time and, on failure,
// the last lines of its output.
func runTest(dir, prog string, args ...string) (string, time.Duration, string) {
	c := exec.Command(prog, args...)
	c.Dir = dir
	t0 := time.Now()
	out, err := c.CombinedOutput()
	d := time.Since(t0)
	if err != nil {
		// The lines that say what failed, then the last few.
		var keep []string
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		for _, l := range lines {
			if len(keep) < 10 && (strings.HasPrefix(l, "--- FAIL") || strings.HasPrefix(l, "panic:") ||
				strings.Contains(l, "pith:") || strings.Contains(l, "_test.go:")) {
				keep = append(keep, l)
			}
		}
		keep = append(keep, lines[max(0, len(lines)-4):]...)
		return "FAIL", d, strings.Join(keep, "\n")
	}
	return "ok", d, ""
}

func output(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		fatal(err)
	}
	return string(out)
}

func writeMarkdown(path, machine string, short bool, results []result, passI, passN int) {
	var b strings.Builder
	fmt.Fprintf(&b, "# Standard-library tests inside pith\n\n")
	fmt.Fprintf(&b, "Generated by `go run ./test/compat -md docs/compat.md` on %s: each package's tests run natively\n", time.Now().UTC().Format("2006-01-02"))
	mode := ""
	if short {
		mode = " with -test.short"
	}
	fmt.Fprintf(&b, "and with `pith run -m 4g -v $GOROOT --` (one vCPU; what `go test -exec` runs)%s, in the package's\n", mode)
	fmt.Fprintf(&b, "directory, on %s. The time ratio compares the test\nbinary's wall time inside pith with its native wall time.\n\n", machine)
	fmt.Fprintf(&b, "**%d of %d packages that pass natively pass inside pith (%.0f%%).**\n\n", passI, passN, 100*float64(passI)/float64(max(passN, 1)))
	fmt.Fprintf(&b, "| package | native | pith | time ratio |\n|---|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | %s | %.1fx |\n", r.pkg, r.native, r.inside, float64(r.ti)/float64(r.tn))
	}
	var failures []result
	for _, r := range results {
		if r.native == "ok" && r.inside != "ok" {
			failures = append(failures, r)
		}
	}
	if len(failures) > 0 {
		fmt.Fprintf(&b, "\n## Failures, explained\n\n")
		for _, r := range failures {
			fmt.Fprintf(&b, "### %s\n\n%s\n\n```\n%s\n```\n\n", r.pkg, explain(r.detail), r.detail)
		}
	}
	// The sections written by hand (other programs than Go's tests) stay.
	if old, err := os.ReadFile(path); err == nil {
		if i := strings.Index(string(old), handWritten); i >= 0 {
			b.WriteString(string(old[i:]))
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		fatal(err)
	}
}

// handWritten starts the part of docs/compat.md that -md keeps as it is.
const handWritten = "\n# Programs of distributions"

// explain names the reason for a failure from its output.
func explain(out string) string {
	switch {
	case strings.Contains(out, "address family not supported"):
		return "The tests use a socket family pith does not serve (AF_UNIX, AF_NETLINK)."
	case strings.Contains(out, "fork/exec") || strings.Contains(out, "subprocess"):
		return "A program the tests start (each runs as a unikernel of its own) failed: see the output."
	case strings.Contains(out, "out of memory"):
		return "The guest ran out of memory."
	}
	return "Not classified: see the output."
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "compat:", err)
	os.Exit(1)
}
