package filetree

import (
	"maps"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteRead: what Write wrote, Read reads back by slash path; an empty
// content removes a file, and removing one that is not there is no error.
func TestWriteRead(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{"hosts/a.yaml": "kind: Host\n", "defaults/x/b.yaml": "b\n", "top": "t"}
	if err := Write(root, files); err != nil {
		t.Fatal(err)
	}
	if got, err := Read(root); err != nil || !maps.Equal(got, files) {
		t.Fatalf("Read = %v, %v; want %v", got, err, files)
	}
	if err := Write(root, map[string]string{"top": "", "never/there": ""}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "top")); !os.IsNotExist(err) {
		t.Errorf("top after an empty write: %v, want it removed", err)
	}
	if got, err := Read(root); err != nil || len(got) != 2 {
		t.Errorf("Read after the removal = %v, %v; want the two files left", got, err)
	}
}
