package callcount

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
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

// sockDir is a short temporary directory: unix socket paths are limited to
// about 100 bytes, and t.TempDir() can be longer.
func sockDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func sockPath(t *testing.T, name string) string {
	return filepath.Join(sockDir(t), name)
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

// startProxy opens a proxy of upstream on a socket named name in the
// test's folder, closed (and the close checked) at the end of the test.
func startProxy[P interface{ Close() error }](t *testing.T, name, upstream string, open func(socket, upstream string) (P, error)) P {
	t.Helper()
	p, err := open(sockPath(t, name), upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}
