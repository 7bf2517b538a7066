package source

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"reconciler.dev/reconciler/internal/filetree"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := filetree.Write(dir, files); err != nil {
		t.Fatal(err)
	}
}

func TestDirSource(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"hosts/fp-01.yaml":  "kind: Host\n",
		"defaults.yaml":     "kind: Defaults\n",
		".git/HEAD":         "ref: refs/heads/main\n",
		"hosts/.git/config": "ignored\n",
	})
	s := mustOpen(t, Options{URL: dir})
	if s.String() != dir {
		t.Errorf("String() = %q, want %q", s.String(), dir)
	}
	a, changed := mustFetch(t, s)
	if !changed {
		t.Error("first Fetch: changed=false")
	}
	id := a.Revision.ID
	if !strings.HasPrefix(id, "local:") || len(id) != len("local:")+12 || a.Revision.Ref != "" || a.Revision.Author != "" {
		t.Errorf("Revision = %+v", a.Revision)
	}
	want := map[string]string{"hosts/fp-01.yaml": "kind: Host\n", "defaults.yaml": "kind: Defaults\n"}
	wantFiles(t, a.FS, want) // .git skipped
	if err := fstest.TestFS(a.FS, "hosts/fp-01.yaml", "defaults.yaml"); err != nil {
		t.Fatal(err)
	}

	if a2, changed := mustFetch(t, s); changed || a2.Revision.ID != id {
		t.Errorf("nothing edited: changed=%v id=%s (was %s)", changed, a2.Revision.ID, id)
	}

	// Same bytes, other name: a different revision.
	os.Rename(filepath.Join(dir, "defaults.yaml"), filepath.Join(dir, "defaults2.yaml"))
	a3, changed := mustFetch(t, s)
	if !changed || a3.Revision.ID == id {
		t.Errorf("after a rename: changed=%v id=%s", changed, a3.Revision.ID)
	}

	// An edit changes the hash; the artifact handed out before stays as it was.
	writeFiles(t, dir, map[string]string{"hosts/fp-01.yaml": "kind: Host\nspec: {}\n"})
	a4, changed := mustFetch(t, s)
	if !changed || a4.Revision.ID == a3.Revision.ID {
		t.Errorf("after an edit: changed=%v id=%s", changed, a4.Revision.ID)
	}
	if b, _ := fs.ReadFile(a3.FS, "hosts/fp-01.yaml"); string(b) != "kind: Host\n" {
		t.Errorf("earlier snapshot changed: %q", b)
	}
	if l, err := s.Last(ctxT(t)); err != nil || l.Revision.ID != a4.Revision.ID {
		t.Errorf("Last = %v, %v", l.Revision.ID, err)
	}

	// Editing back gives back the first hash (content, not time).
	writeFiles(t, dir, map[string]string{"hosts/fp-01.yaml": "kind: Host\n"})
	os.Rename(filepath.Join(dir, "defaults2.yaml"), filepath.Join(dir, "defaults.yaml"))
	if a5, _ := mustFetch(t, s); a5.Revision.ID != id {
		t.Errorf("same content again: id %s, want %s", a5.Revision.ID, id)
	}
}

func TestDirSourcePath(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"hosts/a.yaml": "a\n", "other/b.yaml": "b\n"})
	os.Symlink("a.yaml", filepath.Join(dir, "hosts", "link.yaml"))
	s := mustOpen(t, Options{URL: dir, Path: "hosts"})
	a, _ := mustFetch(t, s)
	wantFiles(t, a.FS, map[string]string{"a.yaml": "a\n", "link.yaml": "a\n"})

	s2 := mustOpen(t, Options{URL: dir, Path: "nope"})
	if _, _, err := s2.Fetch(ctxT(t)); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown path: %v", err)
	}
}
