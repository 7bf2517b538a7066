package source

import (
	"context"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// workRepo is a real git repository in a temporary folder, written with
// go-git the way an operator's commits would land.
type workRepo struct {
	t    testing.TB
	dir  string
	repo *git.Repository
	n    int
}

func newWorkRepo(t testing.TB) *workRepo {
	t.Helper()
	dir := t.TempDir()
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &workRepo{t: t, dir: dir, repo: repo}
}

func (r *workRepo) url() string { return "file://" + r.dir }

// commit writes files (path -> content; "" deletes), commits them on the
// checked-out branch and returns the commit.
func (r *workRepo) commit(msg string, files map[string]string) plumbing.Hash {
	r.t.Helper()
	return r.commitWithParents(msg, files)
}

// commitWithParents commits as commit does; given parents (a merge, or a
// commit on a side line), the commit has those and main moves to it.
func (r *workRepo) commitWithParents(msg string, files map[string]string, parents ...plumbing.Hash) plumbing.Hash {
	r.t.Helper()
	wt, err := r.repo.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		full := filepath.Join(r.dir, p)
		if files[p] == "" {
			if _, err := wt.Remove(p); err != nil {
				r.t.Fatalf("remove %s: %v", p, err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(files[p]), 0o644); err != nil {
			r.t.Fatal(err)
		}
		if _, err := wt.Add(p); err != nil {
			r.t.Fatalf("add %s: %v", p, err)
		}
	}
	r.n++
	h, err := wt.Commit(msg, &git.CommitOptions{
		AllowEmptyCommits: true, Parents: parents,
		Author: &object.Signature{
			Name: "Op Erator", Email: "op@example.com",
			When: time.Date(2026, 1, 2, 3, 4, r.n, 0, time.UTC),
		},
	})
	if err != nil {
		r.t.Fatal(err)
	}
	if len(parents) > 0 {
		r.setRef("refs/heads/main", h)
	}
	return h
}

func (r *workRepo) symlink(target, link string) {
	r.t.Helper()
	if err := os.Symlink(target, filepath.Join(r.dir, link)); err != nil {
		r.t.Fatal(err)
	}
	wt, _ := r.repo.Worktree()
	if _, err := wt.Add(link); err != nil {
		r.t.Fatal(err)
	}
}

func (r *workRepo) setRef(name string, h plumbing.Hash) {
	r.t.Helper()
	if err := r.repo.Storer.SetReference(plumbing.NewHashReference(plumbing.ReferenceName(name), h)); err != nil {
		r.t.Fatal(err)
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustOpen(t testing.TB, o Options) Source {
	t.Helper()
	s, err := Open(o)
	if err != nil {
		t.Fatalf("Open(%+v): %v", o, err)
	}
	return s
}

func mustFetch(t testing.TB, s Source) (Artifact, bool) {
	t.Helper()
	a, changed, err := s.Fetch(ctxT(t))
	if err != nil {
		t.Fatalf("Fetch %s: %v", s, err)
	}
	return a, changed
}

// files lists every regular file of fsys with its content.
func files(t testing.TB, fsys fs.FS) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			b, err := fs.ReadFile(fsys, p)
			if err != nil {
				return err
			}
			out[p] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	return out
}

// wantFiles fails the test (and goes on) unless fsys holds exactly want.
func wantFiles(t testing.TB, fsys fs.FS, want map[string]string) {
	t.Helper()
	if got := files(t, fsys); !maps.Equal(got, want) {
		t.Errorf("files = %v, want %v", got, want)
	}
}
