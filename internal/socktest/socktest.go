// Package socktest gives tests a folder for unix sockets. A socket's path
// is limited to about 100 bytes (sun_path), and t.TempDir() under a long
// test name is longer than that, so the tests that listen on unix sockets
// (internal/callcount, the supervisor driver, test/e2e) take a short
// folder from here instead.
package socktest

import (
	"os"
	"testing"
)

// Dir is a new short temporary folder ("/tmp/sock…"), removed with
// everything in it when the test ends.
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
