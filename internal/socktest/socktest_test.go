package socktest

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDirIsShortAndRemoved(t *testing.T) {
	var dir string
	t.Run("a test with a long name that would make its TempDir too long for a socket", func(t *testing.T) {
		dir = Dir(t)
		if p := filepath.Join(dir, "agent.sock"); len(p) > 100 {
			t.Errorf("%s: %d bytes, more than a socket path may have", p, len(p))
		}
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Fatalf("Dir: %v", err)
		}
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s is still there after the test ended (%v)", dir, err)
	}
}
