// Command gitserver is the testbed's http git server: bare repositories below
// -root served over smart HTTP on a loopback address, with per-repository
// request counters at /_stats?repo=NAME.git.
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"time"

	"reconciler.dev/reconciler/internal/gitserver"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8418", "loopback address to serve on")
	root := flag.String("root", "/var/lib/reconciler-testbed/git", "folder of bare repositories")
	flag.Parse()

	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		log.Fatalf("-listen %q: %v", *listen, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		log.Fatalf("-listen %q: the testbed only serves on a loopback address", *listen)
	}
	srv := &http.Server{
		Addr:              *listen,
		Handler:           gitserver.New(*root),
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.Printf("serving %s on http://%s", *root, *listen)
	log.Fatal(srv.ListenAndServe())
}
