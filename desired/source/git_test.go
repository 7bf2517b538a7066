package source

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

func TestFetchFileRepoRevisionAndChanges(t *testing.T) {
	r := newWorkRepo(t)
	c1 := r.commit("first\n\nbody text", map[string]string{
		"hosts/fp-01.yaml": "kind: Host\n",
		"defaults.yaml":    "kind: Defaults\n",
	})
	cache := t.TempDir()
	s := mustOpen(t, Options{URL: r.url(), CacheDir: cache})

	a, changed := mustFetch(t, s)
	if !changed {
		t.Error("first Fetch: changed=false")
	}
	want := Revision{ID: c1.String(), Ref: "refs/heads/main", Author: "Op Erator <op@example.com>", Message: "first"}
	got := a.Revision
	if got.ID != want.ID || got.Ref != want.Ref || got.Author != want.Author || got.Message != want.Message {
		t.Errorf("Revision = %+v, want %+v", got, want)
	}
	if got.Time.IsZero() {
		t.Error("Revision.Time is zero")
	}
	wantFiles(t, a.FS, map[string]string{"hosts/fp-01.yaml": "kind: Host\n", "defaults.yaml": "kind: Defaults\n"})

	if a2, changed := mustFetch(t, s); changed || a2.Revision.ID != c1.String() {
		t.Errorf("unchanged Fetch: changed=%v id=%s", changed, a2.Revision.ID)
	}

	c2 := r.commit("second", map[string]string{"hosts/fp-01.yaml": "kind: Host\nspec: {}\n", "defaults.yaml": ""})
	a3, changed := mustFetch(t, s)
	if !changed || a3.Revision.ID != c2.String() {
		t.Fatalf("after a commit: changed=%v id=%s, want %s", changed, a3.Revision.ID, c2)
	}
	wantFiles(t, a3.FS, map[string]string{"hosts/fp-01.yaml": "kind: Host\nspec: {}\n"})
	// The earlier artifact is still the earlier tree.
	if f := files(t, a.FS); f["defaults.yaml"] != "kind: Defaults\n" {
		t.Errorf("old artifact changed: %v", f)
	}

	// A restarted agent (new Source, same cache) knows the commit.
	s2 := mustOpen(t, Options{URL: r.url(), CacheDir: cache})
	if a4, changed := mustFetch(t, s2); changed || a4.Revision.ID != c2.String() {
		t.Errorf("after restart: changed=%v id=%s", changed, a4.Revision.ID)
	}
}

func TestLastWithoutRemote(t *testing.T) {
	r := newWorkRepo(t)
	c1 := r.commit("first", map[string]string{"a.yaml": "a: 1\n"})
	cache := t.TempDir()
	s := mustOpen(t, Options{URL: r.url(), CacheDir: cache})

	if _, err := s.Last(ctxT(t)); !errors.Is(err, ErrNoRevision) {
		t.Fatalf("Last before any Fetch: %v, want ErrNoRevision", err)
	}
	mustFetch(t, s)

	// The remote disappears.
	if err := os.RemoveAll(r.dir); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.Fetch(ctxT(t))
	if err == nil || !strings.Contains(err.Error(), r.url()) {
		t.Fatalf("Fetch with the remote gone: %v, want an error naming %s", err, r.url())
	}
	for _, src := range []Source{s, mustOpen(t, Options{URL: r.url(), CacheDir: cache})} {
		a, err := src.Last(ctxT(t))
		if err != nil {
			t.Fatalf("Last: %v", err)
		}
		if a.Revision.ID != c1.String() || a.Revision.Ref != "refs/heads/main" || a.Revision.Message != "first" {
			t.Errorf("Last = %+v", a.Revision)
		}
		if b, err := fs.ReadFile(a.FS, "a.yaml"); err != nil || string(b) != "a: 1\n" {
			t.Errorf("a.yaml = %q, %v", b, err)
		}
	}
}

func TestTreeFS(t *testing.T) {
	r := newWorkRepo(t)
	r.commit("tree", map[string]string{
		"README.md":                  "top\n",
		"hosts/fp-01.yaml":           "kind: Host\n",
		"hosts/plant-a/fp-02.yaml":   "kind: Host\n",
		"hosts/plant-a.yaml":         "name sorts before the folder in git\n",
		"hosts/plant-a/nested/x.txt": "x\n",
	})
	r.symlink("fp-01.yaml", "hosts/alias.yaml")
	r.symlink("../README.md", "hosts/up.md")
	r.symlink("../../etc/passwd", "hosts/escape")
	c := r.commit("links", nil)

	s := mustOpen(t, Options{URL: r.url(), CacheDir: t.TempDir(), Path: "hosts"})
	a, _ := mustFetch(t, s)
	if a.Revision.ID != c.String() {
		t.Fatalf("id %s, want %s", a.Revision.ID, c)
	}
	fsys := a.FS
	for _, iface := range []string{"ReadDirFS", "StatFS", "ReadFileFS"} {
		var ok bool
		switch iface {
		case "ReadDirFS":
			_, ok = fsys.(fs.ReadDirFS)
		case "StatFS":
			_, ok = fsys.(fs.StatFS)
		case "ReadFileFS":
			_, ok = fsys.(fs.ReadFileFS)
		}
		if !ok {
			t.Errorf("FS does not implement fs.%s", iface)
		}
	}

	// The standard checks: every listed file opens, reads, stats alike.
	// The links out of the tree are hidden from it: they cannot open.
	if err := fstest.TestFS(fs.FS(skipFS{fsys, map[string]bool{"escape": true, "up.md": true}}), "fp-01.yaml", "plant-a/fp-02.yaml", "plant-a.yaml", "plant-a/nested/x.txt", "alias.yaml"); err != nil {
		t.Fatal(err)
	}

	ents, err := fs.ReadDir(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "alias.yaml escape fp-01.yaml plant-a plant-a.yaml up.md" {
		t.Errorf("ReadDir(.) = %s", got)
	}

	if b, err := fs.ReadFile(fsys, "alias.yaml"); err != nil || string(b) != "kind: Host\n" {
		t.Errorf("symlink alias.yaml = %q, %v", b, err)
	}
	if _, err := fs.ReadFile(fsys, "up.md"); err == nil {
		t.Error("a symlink above the narrowed root opened")
	}
	if _, err := fs.ReadFile(fsys, "escape"); err == nil {
		t.Error("a symlink outside the tree opened")
	}
	if _, err := fs.ReadFile(fsys, "README.md"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file outside Path: %v, want not exist", err)
	}
	if _, err := fs.ReadFile(fsys, "../README.md"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("../README.md: %v, want invalid", err)
	}
	st, err := fs.Stat(fsys, "plant-a/fp-02.yaml")
	if err != nil || st.Size() != int64(len("kind: Host\n")) || st.IsDir() || st.Mode().Perm()&0o222 != 0 {
		t.Errorf("Stat = %v, %v", st, err)
	}

	// Concurrent readers (run with -race).
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				if b, err := fs.ReadFile(fsys, "plant-a/nested/x.txt"); err != nil || string(b) != "x\n" {
					t.Errorf("concurrent read: %q %v", b, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// skipFS hides names from fstest, which insists that every listed entry
// opens; a link pointing out of the tree deliberately does not.
type skipFS struct {
	fs.FS
	skip map[string]bool
}

func (s skipFS) Open(name string) (fs.File, error) {
	if s.skip[name] {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	f, err := s.FS.Open(name)
	if err != nil || name != "." {
		return f, err
	}
	return skipDir{f.(fs.ReadDirFile), s.skip}, nil
}

type skipDir struct {
	fs.ReadDirFile
	skip map[string]bool
}

func (d skipDir) ReadDir(n int) ([]fs.DirEntry, error) {
	es, err := d.ReadDirFile.ReadDir(n)
	out := es[:0]
	for _, e := range es {
		if !d.skip[e.Name()] {
			out = append(out, e)
		}
	}
	if n > 0 && len(out) == 0 && err == nil {
		return d.ReadDir(n)
	}
	return out, err
}

func TestUnknownPathKeepsLastGood(t *testing.T) {
	r := newWorkRepo(t)
	c1 := r.commit("one", map[string]string{"hosts/a.yaml": "a\n"})
	cache := t.TempDir()
	s := mustOpen(t, Options{URL: r.url(), CacheDir: cache, Path: "hosts"})
	mustFetch(t, s)

	r.commit("move", map[string]string{"hosts/a.yaml": "", "other/a.yaml": "a\n"})
	_, _, err := s.Fetch(ctxT(t))
	if err == nil || !strings.Contains(err.Error(), `"hosts"`) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Fetch with Path gone: %v, want an fs.ErrNotExist error naming \"hosts\"", err)
	}
	a, err := s.Last(ctxT(t))
	if err != nil || a.Revision.ID != c1.String() {
		t.Fatalf("Last = %v, %v; want the last good %s", a.Revision.ID, err, c1)
	}

	s2 := mustOpen(t, Options{URL: r.url(), CacheDir: t.TempDir(), Path: "nope/deeper"})
	if _, _, err := s2.Fetch(ctxT(t)); err == nil || !strings.Contains(err.Error(), `"nope/deeper"`) {
		t.Fatalf("Fetch unknown path: %v", err)
	}
	s3 := mustOpen(t, Options{URL: r.url(), CacheDir: t.TempDir(), Path: "other/a.yaml"})
	if _, _, err := s3.Fetch(ctxT(t)); err == nil || !strings.Contains(err.Error(), "not a folder") {
		t.Fatalf("Fetch with Path a file: %v", err)
	}
}

func TestTagsBranchesAndPinnedCommits(t *testing.T) {
	r := newWorkRepo(t)
	c1 := r.commit("one", map[string]string{"v.yaml": "1\n"})
	if _, err := r.repo.CreateTag("v1", c1, &git.CreateTagOptions{
		Message: "release 1", Tagger: &object.Signature{Name: "t", Email: "t@example.com"},
	}); err != nil {
		t.Fatal(err)
	}
	r.setRef("refs/tags/light", c1)
	c2 := r.commit("two", map[string]string{"v.yaml": "2\n"})
	r.setRef("refs/heads/dev", c1)
	r.setRef("refs/tags/both", c1)
	r.setRef("refs/heads/both", c2)

	for _, tc := range []struct {
		ref, id, resolved string
	}{
		{"", c2.String(), "refs/heads/main"},
		{"main", c2.String(), "refs/heads/main"},
		{"dev", c1.String(), "refs/heads/dev"},
		{"v1", c1.String(), "refs/tags/v1"},
		{"refs/tags/v1", c1.String(), "refs/tags/v1"},
		{"light", c1.String(), "refs/tags/light"},
		{"refs/heads/both", c2.String(), "refs/heads/both"},
		{c1.String(), c1.String(), c1.String()},
	} {
		s := mustOpen(t, Options{URL: r.url(), Ref: tc.ref, CacheDir: t.TempDir()})
		a, _ := mustFetch(t, s)
		if a.Revision.ID != tc.id || a.Revision.Ref != tc.resolved {
			t.Errorf("Ref %q: got %s from %s, want %s from %s", tc.ref, a.Revision.ID, a.Revision.Ref, tc.id, tc.resolved)
		}
	}
	for _, tc := range []struct{ ref, msg string }{
		{"both", "ambiguous"},
		{"nope", `"nope" not found`},
		{"refs/heads/nope", "not found"},
		{strings.Repeat("ab", 20), "not on the remote"},
	} {
		s := mustOpen(t, Options{URL: r.url(), Ref: tc.ref, CacheDir: t.TempDir()})
		if _, _, err := s.Fetch(ctxT(t)); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Ref %q: %v, want an error with %q", tc.ref, err, tc.msg)
		}
	}

	// A pinned commit, once cached, needs no remote at all.
	cache := t.TempDir()
	s := mustOpen(t, Options{URL: r.url(), Ref: c1.String(), CacheDir: cache})
	mustFetch(t, s)
	if err := os.RemoveAll(r.dir); err != nil {
		t.Fatal(err)
	}
	if a, changed := mustFetch(t, s); changed || a.Revision.ID != c1.String() {
		t.Errorf("pinned, remote gone: changed=%v id=%s", changed, a.Revision.ID)
	}
}

func TestForcePushFetchesNewCommit(t *testing.T) {
	r := newWorkRepo(t)
	c1 := r.commit("one", map[string]string{"a.yaml": "1\n"})
	r.commit("two", map[string]string{"a.yaml": "2\n"})
	s := mustOpen(t, Options{URL: r.url(), CacheDir: t.TempDir()})
	mustFetch(t, s)

	// Rewrite history: main now points at a sibling of "two".
	wt, _ := r.repo.Worktree()
	if err := wt.Checkout(&git.CheckoutOptions{Hash: c1, Force: true}); err != nil {
		t.Fatal(err)
	}
	c3 := r.commit("rewritten", map[string]string{"a.yaml": "3\n"})
	r.setRef("refs/heads/main", c3)
	if err := r.repo.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, "refs/heads/main")); err != nil {
		t.Fatal(err)
	}

	a, changed := mustFetch(t, s)
	if !changed || a.Revision.ID != c3.String() {
		t.Fatalf("after force push: changed=%v id=%s, want %s", changed, a.Revision.ID, c3)
	}
	if b, _ := fs.ReadFile(a.FS, "a.yaml"); string(b) != "3\n" {
		t.Errorf("a.yaml = %q", b)
	}
}

// damage is one way a cache folder gets broken.
type damage struct {
	name string
	do   func(t *testing.T, dir string)
}

var damages = []damage{
	{"garbage in every file", func(t *testing.T, dir string) {
		eachFile(t, dir, func(p string, size int64) {
			os.WriteFile(p, []byte(strings.Repeat("\xde\xad", int(size/2)+1)), 0o644)
		})
	}},
	{"truncated packs", func(t *testing.T, dir string) {
		eachFile(t, dir, func(p string, size int64) {
			if strings.Contains(p, string(filepath.Separator)+"pack"+string(filepath.Separator)) {
				os.Truncate(p, size/2)
			}
		})
	}},
	{"garbled pack bytes", func(t *testing.T, dir string) {
		eachFile(t, dir, func(p string, size int64) {
			if strings.HasSuffix(p, ".pack") && size > 40 {
				f, _ := os.OpenFile(p, os.O_RDWR, 0)
				f.WriteAt([]byte("garbage!garbage!"), size/2)
				f.Close()
			}
		})
	}},
	{"missing objects", func(t *testing.T, dir string) {
		eachFile(t, dir, func(p string, size int64) {
			if strings.Contains(p, string(filepath.Separator)+"objects"+string(filepath.Separator)) {
				os.Remove(p)
			}
		})
	}},
	{"state names a commit the cache lacks", func(t *testing.T, dir string) {
		eachFile(t, dir, func(p string, size int64) {
			if filepath.Base(p) == "state.json" {
				b, _ := os.ReadFile(p)
				var s = string(b)
				i := strings.Index(s, `"commit": "`) + len(`"commit": "`)
				os.WriteFile(p, []byte(s[:i]+strings.Repeat("0", 39)+"1"+s[i+40:]), 0o644)
			}
		})
	}},
	{"truncated state", func(t *testing.T, dir string) {
		eachFile(t, dir, func(p string, size int64) {
			if filepath.Base(p) == "state.json" {
				os.Truncate(p, size/3)
			}
		})
	}},
}

func eachFile(t *testing.T, dir string, f func(p string, size int64)) {
	t.Helper()
	var n int
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			info, _ := d.Info()
			f(p, info.Size())
			n++
		}
		return nil
	})
	if n == 0 {
		t.Fatalf("no files in %s", dir)
	}
}

func TestCorruptCacheIsRebuilt(t *testing.T) {
	r := newWorkRepo(t)
	r.commit("one", map[string]string{"a.yaml": "1\n", "sub/b.yaml": strings.Repeat("b", 5000)})
	c2 := r.commit("two", map[string]string{"a.yaml": "2\n"})
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			cache := t.TempDir()
			s := mustOpen(t, Options{URL: r.url(), CacheDir: cache})
			mustFetch(t, s)
			d.do(t, cache)

			// Last never hands out a damaged tree (and never panics).
			if a, err := s.Last(ctxT(t)); err == nil {
				if f := files(t, a.FS); f["a.yaml"] != "2\n" {
					t.Fatalf("Last after damage gave %v", f)
				}
			} else if !errors.Is(err, ErrNoRevision) {
				t.Fatalf("Last after damage: %v, want ErrNoRevision", err)
			}

			for _, src := range []Source{s, mustOpen(t, Options{URL: r.url(), CacheDir: cache})} {
				a, _, err := src.Fetch(ctxT(t))
				if err != nil {
					t.Fatalf("Fetch after damage: %v", err)
				}
				if a.Revision.ID != c2.String() {
					t.Fatalf("id %s, want %s", a.Revision.ID, c2)
				}
				if f := files(t, a.FS); f["a.yaml"] != "2\n" || len(f["sub/b.yaml"]) != 5000 {
					t.Fatalf("files after rebuild = %v", f)
				}
			}
			if _, err := s.Last(ctxT(t)); err != nil {
				t.Fatalf("Last after rebuild: %v", err)
			}
		})
	}
}

func TestFetchHonoursContext(t *testing.T) {
	r := newWorkRepo(t)
	r.commit("one", map[string]string{"a.yaml": "1\n"})
	s := mustOpen(t, Options{URL: r.url(), CacheDir: t.TempDir()})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Fetch(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Fetch with a cancelled context: %v", err)
	}
}
