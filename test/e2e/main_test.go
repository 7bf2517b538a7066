//go:build e2e

package e2e

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"reconciler.dev/reconciler/internal/gitserver"
)

// The test binary doubles as the git server a test runs inside a network
// namespace of its own (nsenter --net=... <this binary>, with these
// variables set): the testbed's git server only serves on loopback, and a
// namespace's loopback is out of the host's reach.
const (
	netnsGitListenEnv = "E2E_NETNS_GIT_LISTEN" // address to serve on, inside the namespace
	netnsGitRootEnv   = "E2E_NETNS_GIT_ROOT"   // folder of bare repositories
	// midPackLine is what it prints on stdout once a pack it sends is
	// under way, so a test can cut the link mid-fetch.
	midPackLine = "mid-pack"
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(netnsGitListenEnv); addr != "" {
		serveThrottledGit(addr, os.Getenv(netnsGitRootEnv))
		return
	}
	os.Exit(m.Run())
}

// serveThrottledGit serves the bare repositories below root over smart
// HTTP, sending upload-pack answers at 640 KiB/s, so that a fetch of a
// pack of a megabyte lasts long enough to be cut in the middle.
func serveThrottledGit(addr, root string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatalf("git server in the namespace: %v", err)
	}
	git := gitserver.New(root)
	var announce sync.Mutex
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
			w = &throttledWriter{ResponseWriter: w, announce: &announce}
		}
		git.ServeHTTP(w, r)
	})
	fmt.Println("serving", root, "on", addr)
	log.Fatal((&http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}).Serve(ln))
}

// throttledWriter writes 32 KiB every 50 ms, flushing each piece, and
// prints midPackLine once 64 KiB of one answer are out (ref listings are
// far smaller: only packs reach it).
type throttledWriter struct {
	http.ResponseWriter
	announce *sync.Mutex
	n        int
	told     bool
}

const (
	throttleChunk = 32 << 10
	throttlePause = 50 * time.Millisecond
	midPackAt     = 64 << 10
)

func (w *throttledWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		room := throttleChunk - w.n%throttleChunk
		piece := p[:min(room, len(p))]
		n, err := w.ResponseWriter.Write(piece)
		written += n
		w.n += n
		if err != nil {
			return written, err
		}
		if fl, ok := w.ResponseWriter.(http.Flusher); ok {
			fl.Flush()
		}
		p = p[n:]
		if !w.told && w.n >= midPackAt {
			w.told = true
			w.announce.Lock()
			fmt.Println(midPackLine)
			w.announce.Unlock()
		}
		if w.n%throttleChunk == 0 {
			time.Sleep(throttlePause)
		}
	}
	return written, nil
}

func (w *throttledWriter) Flush() {
	if fl, ok := w.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
}
