// Command httphello is the network benchmarks' server (bench/net): net/http on -addr,
// answering "hello" at /, N bytes at /bytes/N, the length of a POSTed body at /sink, and
// ending at /quit.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
)

func main() {
	addr := flag.String("addr", ":8080", "address to listen on")
	flag.Parse()
	block := make([]byte, 256<<10)
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	})
	http.HandleFunc("/bytes/", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/bytes/"), 10, 64)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		for n > 0 {
			k, err := w.Write(block[:min(n, int64(len(block)))])
			if err != nil {
				return
			}
			n -= int64(k)
		}
	})
	http.HandleFunc("/sink", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintln(w, n)
	})
	http.HandleFunc("/quit", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "bye")
		w.(http.Flusher).Flush()
		go os.Exit(0)
	})
	if err := http.ListenAndServe(*addr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "httphello:", err)
		os.Exit(1)
	}
}
