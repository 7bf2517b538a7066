// Command gitserver is the testbed's http git server: bare repositories below
// -root served over smart HTTP on a loopback address, with per-repository
// request counters at /_stats?repo=NAME.git.
//
// -test-net allows one more range besides loopback: the test hosts' network
// (hack/testbed hosts), whose addresses exist only inside network namespaces
// the testbed makes, where a second instance serves the same repositories.
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
	testNet := flag.String("test-net", "", "a CIDR (the test hosts' network, inside the testbed's namespaces) also allowed for -listen")
	flag.Parse()

	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		log.Fatalf("-listen %q: %v", *listen, err)
	}
	ip := net.ParseIP(host)
	var allowed *net.IPNet
	if *testNet != "" {
		if _, allowed, err = net.ParseCIDR(*testNet); err != nil {
			log.Fatalf("-test-net %q: %v", *testNet, err)
		}
	}
	if ip == nil || !(ip.IsLoopback() || allowed != nil && allowed.Contains(ip)) {
		log.Fatalf("-listen %q: the testbed only serves on a loopback address (or one in -test-net)", *listen)
	}
	srv := &http.Server{
		Addr:              *listen,
		Handler:           gitserver.New(*root),
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.Printf("serving %s on http://%s", *root, *listen)
	log.Fatal(srv.ListenAndServe())
}
