package monitor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzProcParsers feeds arbitrary bytes to every parser of this package for
// what /proc and Docker's stats endpoint say (stat, statm and net/tcp are
// procfs's, fuzzed by that project): none may panic, and what they accept
// must be consistent with the input (only positive pids as children,
// sockets only from socket links).
func FuzzProcParsers(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("17 18 19 \n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, pid := range ParseChildren(b) {
			if pid <= 0 {
				t.Errorf("ParseChildren(%q) gave pid %d", b, pid)
			}
		}
		_, _, _ = ParseDockerStats(b) // must not panic on anything Docker could send
		if n, ok := SocketInode(string(b)); ok && !strings.HasPrefix(string(b), "socket:[") {
			t.Errorf("SocketInode(%q) = %d from a link that is no socket", b, n)
		}
	})
}
