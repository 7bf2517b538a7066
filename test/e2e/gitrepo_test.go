//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"reconciler.dev/reconciler/internal/filetree"
)

// GitRepo is a bare repository on the testbed's git server plus a work tree
// a test commits to, the way an operator would.
type GitRepo struct {
	Name     string // NAME.git
	Bare     string // path of the bare repository
	FileURL  string
	HTTPURL  string
	WorkTree string
	t        testing.TB
}

// newGitRepo makes an empty bare repository on the testbed's git server and a
// work tree cloned from it; both are removed when the test ends.
func newGitRepo(t testing.TB, prefix string) *GitRepo {
	t.Helper()
	tb := testbed(t)
	name := uniqueName(prefix) + ".git"
	r := &GitRepo{
		Name:     name,
		Bare:     filepath.Join(tb.GitRoot, name),
		FileURL:  tb.GitFileURL + "/" + name,
		HTTPURL:  tb.GitHTTPURL + "/" + name,
		WorkTree: t.TempDir(),
		t:        t,
	}
	run(t, "", "git", "init", "-q", "--bare", "-b", "main", r.Bare)
	t.Cleanup(func() { os.RemoveAll(r.Bare) })
	run(t, r.WorkTree, "git", "init", "-q", "-b", "main")
	run(t, r.WorkTree, "git", "remote", "add", "origin", r.FileURL)
	return r
}

// sourceArgs are the flags of plan and apply that read host's desired
// state from the repository over HTTP, with a cache of the test's own.
func (r *GitRepo) sourceArgs(host string) []string {
	return []string{"--source", r.HTTPURL, "--host", host, "--cache-dir", r.t.TempDir()}
}

// sourceDir writes files (path -> content) into a new folder of the test
// and returns it: desired state read from a plain folder, with no git.
func sourceDir(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := filetree.Write(dir, files); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Commit writes files (path -> content; empty content deletes), commits them
// with msg, pushes to main, and returns the new commit id.
func (r *GitRepo) Commit(msg string, files map[string]string) string {
	r.t.Helper()
	if err := filetree.Write(r.WorkTree, files); err != nil {
		r.t.Fatal(err)
	}
	run(r.t, r.WorkTree, "git", "add", "-A")
	run(r.t, r.WorkTree, "git", "commit", "-q", "--allow-empty", "-m", msg)
	run(r.t, r.WorkTree, "git", "push", "-q", "-f", "origin", "HEAD:main")
	return strings.TrimSpace(run(r.t, r.WorkTree, "git", "rev-parse", "HEAD"))
}
