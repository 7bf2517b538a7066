package monitor

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzProcParsers feeds arbitrary bytes to every parser of what /proc and
// Docker's stats endpoint say: none may panic, and what they accept must be
// consistent with the input (the command between the first '(' and the last
// ')', only positive pids as children, no inode 0, sockets only from
// socket links).
func FuzzProcParsers(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("4242 (a) b) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22\n"))
	f.Add([]byte("123 456 7 0 0 0 0\n"))
	f.Add([]byte("17 18 19 \n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if st, err := ParseStat(b); err == nil {
			// The command is everything between the first '(' and the
			// last ')', whatever it holds.
			open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
			if st.Comm != string(b[open+1:end]) {
				t.Errorf("ParseStat(%q): comm %q", b, st.Comm)
			}
		}
		if _, _, err := ParseStatm(b); err == nil && len(bytes.Fields(b)) < 2 {
			t.Errorf("ParseStatm(%q) accepted fewer than 2 fields", b)
		}
		for _, pid := range ParseChildren(b) {
			if pid <= 0 {
				t.Errorf("ParseChildren(%q) gave pid %d", b, pid)
			}
		}
		into := map[uint64]bool{}
		if err := ParseNetTCP(b, into); err == nil {
			for inode := range into {
				if inode == 0 {
					t.Errorf("ParseNetTCP(%q) counted inode 0", b)
				}
			}
		}
		_, _, _ = ParseDockerStats(b) // must not panic on anything Docker could send
		if n, ok := SocketInode(string(b)); ok && !strings.HasPrefix(string(b), "socket:[") {
			t.Errorf("SocketInode(%q) = %d from a link that is no socket", b, n)
		}
	})
}
