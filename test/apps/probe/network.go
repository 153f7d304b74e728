package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// loopback: TCP and UDP over 127.0.0.1 and ::1, a dual-stack listener, an HTTP server
// and client, and a megabyte echoed, with no network outside the program.
func loopback() {
	for _, network := range []string{"tcp4", "tcp6"} {
		addr := map[string]string{"tcp4": "127.0.0.1:0", "tcp6": "[::1]:0"}[network]
		ln, err := net.Listen(network, addr)
		if err != nil {
			fmt.Println(network, "listen:", err)
			continue
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { io.Copy(c, c); c.Close() }()
			}
		}()
		c, err := net.Dial(network, ln.Addr().String())
		if err != nil {
			fmt.Println(network, "dial:", err)
			ln.Close()
			continue
		}
		sent := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
		go func() { c.Write(sent); c.(*net.TCPConn).CloseWrite() }()
		got, err := io.ReadAll(c)
		fmt.Println(network, "echoed", len(got), "bytes, same:", bytes.Equal(got, sent), err)
		fmt.Println(network, "peer is the listener:", c.RemoteAddr().String() == ln.Addr().String())
		c.Close()
		ln.Close()
	}

	// A wildcard listener takes IPv4 and IPv6 connections (an AF_INET6 socket, V6ONLY off).
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		fmt.Println("dual-stack listen:", err)
	} else {
		port := ln.(*net.TCPListener).Addr().(*net.TCPAddr).Port
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello %s", r.URL.Path)
		}))
		for _, host := range []string{"127.0.0.1", "[::1]"} {
			resp, err := http.Get(fmt.Sprintf("http://%s:%d/from%s", host, port, host))
			if err != nil {
				fmt.Println("http get:", err)
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			fmt.Println("http", resp.StatusCode, string(body))
		}
		ln.Close()
	}

	for _, network := range []string{"udp4", "udp6"} {
		addr := map[string]string{"udp4": "127.0.0.1:0", "udp6": "[::1]:0"}[network]
		pc, err := net.ListenPacket(network, addr)
		if err != nil {
			fmt.Println(network, "listen:", err)
			continue
		}
		go func() {
			buf := make([]byte, 2048)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				pc.WriteTo(bytes.ToUpper(buf[:n]), from)
			}
		}()
		c, err := net.Dial(network, pc.LocalAddr().String())
		if err != nil {
			fmt.Println(network, "dial:", err)
			pc.Close()
			continue
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		for _, m := range []string{"ping", "datagram two"} {
			c.Write([]byte(m))
			buf := make([]byte, 2048)
			n, err := c.Read(buf)
			fmt.Printf("%s %q %v\n", network, buf[:n], err)
		}
		c.Close()
		pc.Close()
	}
}

// neterrors: what a refused connection, an address in use and an unsupported family
// answer.
func neterrors() {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		fmt.Println("listen:", err)
		return
	}
	addr := ln.Addr().String()
	_, err = net.Listen("tcp4", addr)
	fmt.Println("listen twice: address in use:", errors.Is(err, syscall.EADDRINUSE))
	ln.Close()
	time.Sleep(10 * time.Millisecond)
	_, err = net.Dial("tcp4", addr)
	fmt.Println("dial a closed port: refused:", errors.Is(err, syscall.ECONNREFUSED))
	_, err = net.Dial("tcp4", "127.0.0.1:0")
	fmt.Println("dial port 0: refused:", errors.Is(err, syscall.ECONNREFUSED))
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, syscall.IPPROTO_UDP)
	fmt.Println("TCP with UDP's protocol:", fd, err)
	var buf [4]byte
	_, _, err = syscall.Recvfrom(0, buf[:], 0)
	fmt.Println("recvfrom on a file that is no socket:", err)
}

// serve answers HTTP on port 8080 of every address until a request for /quit:
// /stream/N sends N bytes and their SHA-256 in the X-Sha256 trailer, any other path
// "hello PATH". It also echoes UDP datagrams on port 8081, "echo: " before each. A test
// reaches both through published ports.
func serve() {
	ln, err := net.Listen("tcp", ":8080")
	if err != nil {
		fmt.Println("listen:", err)
		os.Exit(1)
	}
	pc, err := net.ListenPacket("udp", ":8081")
	if err != nil {
		fmt.Println("listen udp:", err)
		os.Exit(1)
	}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte("echo: "), buf[:n]...), from)
		}
	}()
	quit := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if size, ok := strings.CutPrefix(r.URL.Path, "/stream/"); ok {
			n, err := strconv.ParseInt(size, 10, 64)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			stream(w, n)
			fmt.Println("streamed", n)
			return
		}
		fmt.Fprintf(w, "hello %s", r.URL.Path)
		fmt.Println("served", r.URL.Path)
		if r.URL.Path == "/quit" {
			close(quit)
		}
	})}
	go srv.Serve(ln)
	<-quit
	srv.Shutdown(context.Background())
	pc.Close()
}

// stream writes n pseudo-random bytes and announces their SHA-256 in a trailer, so the
// client checks what arrived against what was sent.
func stream(w http.ResponseWriter, n int64) {
	w.Header().Set("Trailer", "X-Sha256")
	sum := sha256.New()
	block := make([]byte, 256<<10)
	rng := rand.NewChaCha8([32]byte{'p', 'i', 't', 'h'})
	for n > 0 {
		b := block[:min(n, int64(len(block)))]
		rng.Read(b)
		sum.Write(b)
		if _, err := w.Write(b); err != nil {
			return
		}
		n -= int64(len(b))
	}
	w.Header().Set("X-Sha256", hex.EncodeToString(sum.Sum(nil)))
}

// tlsLoopback: a crypto/tls server and client over loopback, with a certificate made
// here, print what they agreed on and exchanged.
func tlsLoopback() {
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		fmt.Println("key:", err)
		return
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "probe"},
		DNSNames:              []string{"probe.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		fmt.Println("certificate:", err)
		return
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		fmt.Println("listen:", err)
		return
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			fmt.Fprintf(c, "server got %q", line)
			c.Close()
		}
	}()
	for _, name := range []string{"wrong.test", "probe.test"} {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: name})
		if err != nil {
			var hostErr x509.HostnameError
			fmt.Println(name, "refused, wrong name:", errors.As(err, &hostErr))
			continue
		}
		fmt.Fprintf(c, "hello over TLS\n")
		reply, err := io.ReadAll(c)
		st := c.ConnectionState()
		fmt.Println(name, tls.VersionName(st.Version), st.PeerCertificates[0].Subject.CommonName, string(reply), err)
		c.Close()
	}
}

// fetch ADDR [PATH...] gets http://ADDR/PATH for each path (/from-the-guest if none)
// and prints the status and body.
func fetch() {
	c := &http.Client{Timeout: 20 * time.Second}
	paths := os.Args[3:]
	if len(paths) == 0 {
		paths = []string{"/from-the-guest"}
	}
	for _, path := range paths {
		resp, err := c.Get("http://" + os.Args[2] + path)
		if err != nil {
			var errno syscall.Errno
			fmt.Println("get failed; unreachable:", errors.As(err, &errno) && errno == syscall.ENETUNREACH)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, string(body))
	}
}

// names prints the host name as uname and /etc/hostname give it, then what each
// argument resolves to.
func names() {
	host, err := os.Hostname()
	fmt.Println("hostname:", host, err)
	file, err := os.ReadFile("/etc/hostname")
	fmt.Printf("/etc/hostname: %q %v\n", file, err)
	for _, name := range os.Args[2:] {
		addrs, err := net.LookupHost(name)
		fmt.Println(name, addrs, err)
	}
}

// interfaces lists the network interfaces and their addresses as Go's net package finds
// them (rtnetlink dumps), a line each, then looks the loopback up by name and index.
func interfaces() {
	ifs, err := net.Interfaces()
	if err != nil {
		fmt.Println("interfaces:", err)
		return
	}
	for _, i := range ifs {
		addrs, err := i.Addrs()
		if err != nil {
			fmt.Println(i.Name, "addresses:", err)
			continue
		}
		var as []string
		for _, a := range addrs {
			as = append(as, a.String())
		}
		fmt.Println(i.Index, i.Name, i.MTU > 0, i.Flags, len(i.HardwareAddr), strings.Join(as, " "))
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		fmt.Println("lo:", err)
		return
	}
	same, err := net.InterfaceByIndex(lo.Index)
	fmt.Println("lo by index:", err == nil && same.Name == "lo")
}

// sockopts sets and reads back the IP and TCP options a program's Dialer.Control
// typically sets: the unicast TTL and hop limit (with -1 for the default, and values out
// of range), and the keepalive timers and count.
func sockopts() {
	try := func(family, level, name int, set []int) {
		fd, err := syscall.Socket(family, syscall.SOCK_STREAM, 0)
		if err != nil {
			fmt.Println("socket:", err)
			return
		}
		defer syscall.Close(fd)
		v, err := syscall.GetsockoptInt(fd, level, name)
		fmt.Print(level, " ", name, ": ", v, " ", err)
		for _, x := range set {
			err := syscall.SetsockoptInt(fd, level, name, x)
			v, _ := syscall.GetsockoptInt(fd, level, name)
			fmt.Print("; set ", x, ": ", err, ", reads ", v)
		}
		fmt.Println()
	}
	try(syscall.AF_INET, syscall.IPPROTO_IP, syscall.IP_TTL, []int{7, -1, 0, 256})
	try(syscall.AF_INET6, syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS, []int{9, -1, 0, 300})
	try(syscall.AF_INET, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, []int{30})
	try(syscall.AF_INET, syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, []int{5})
	try(syscall.AF_INET, syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, []int{4})
}

// udpNoRoom reads a datagram into no room at all, which takes it whole (Linux answers 0),
// then reads the next one.
func udpNoRoom() {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		fmt.Println("listen:", err)
		return
	}
	defer c.Close()
	for _, m := range []string{"first", "second"} {
		if _, err := c.WriteTo([]byte(m), c.LocalAddr()); err != nil {
			fmt.Println("write:", err)
			return
		}
	}
	n, _, err := c.ReadFrom(nil)
	fmt.Println("no room:", n, err)
	b := make([]byte, 16)
	n, _, err = c.ReadFrom(b)
	fmt.Printf("next: %q %v\n", b[:n], err)
}
