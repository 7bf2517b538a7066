package callcount

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"reconciler.dev/reconciler/internal/socktest"
)

// noLeaks fails the test if, once every later cleanup has run, more
// goroutines are alive than when it was called. Call it first.
func noLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Errorf("goroutines: %d after, %d before:\n%s", runtime.NumGoroutine(), before, buf[:n])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func sockPath(t *testing.T, name string) string {
	return filepath.Join(socktest.Dir(t), name)
}

// unixClient is an HTTP client for a unix socket that asks for nothing the
// caller did not: no compression.
func unixClient(t *testing.T, socket string) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableCompression: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// openProxy opens a proxy of upstream on a socket named name in the test's
// folder; closing it is the caller's (the tests of Close).
func openProxy[P any](t *testing.T, name, upstream string, open func(socket, upstream string) (P, error)) P {
	t.Helper()
	p, err := open(sockPath(t, name), upstream)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startProxy opens a proxy as openProxy does, closed (and the close
// checked) at the end of the test.
func startProxy[P interface{ Close() error }](t *testing.T, name, upstream string, open func(socket, upstream string) (P, error)) P {
	t.Helper()
	p := openProxy(t, name, upstream, open)
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// closedForGood fails the test unless the closed proxy p left no socket
// behind and takes a second Close without error.
func closedForGood(t *testing.T, p interface {
	Close() error
	Socket() string
}) {
	t.Helper()
	if _, err := os.Stat(p.Socket()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket still there after Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// concurrently runs do(0) to do(n-1) at once and fails the test with the
// errors they return, once all have ended: the proxies must count right
// under concurrent clients, which the race detector watches.
func concurrently(t *testing.T, n int, do func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			if err := do(i); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// closeWithin closes p and fails the test unless Close returns nil within
// 5 s: a connection or stream still open must not hold Close up.
func closeWithin(t *testing.T, p interface{ Close() error }) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5 s")
	}
}
