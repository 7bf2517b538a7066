//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"reconciler.dev/reconciler/internal/filetree"
)

// TestValidateFromGit: `reconciler validate --source` judges a revision on
// the testbed's git server, over http and file://, and follows the ref.
func TestValidateFromGit(t *testing.T) {
	repo := newGitRepo(t, "validate")
	files := readExample(t, "factory-proxy")
	repo.Commit("factory proxy", files)
	for _, url := range []string{repo.HTTPURL, repo.FileURL} {
		r := cli(t, nil, "validate", "--source", url, "--cache-dir", t.TempDir()).mustCode(t, 0, "validate "+url)
		if strings.TrimSpace(r.Stdout) != "1 hosts, 3 services, 1 units: valid" {
			t.Errorf("validate %s: %q", url, r.Stdout)
		}
	}
	// The ref moves to a broken revision: validate says where, exit 1.
	cache := t.TempDir()
	cli(t, nil, "validate", "--source", repo.HTTPURL, "--cache-dir", cache).mustCode(t, 0, "validate the good revision")
	broken := strings.Replace(files[fpFile], "      replicas: 1\n      dependsOn: [factory-broker]\n", "      replicas: 1\n      dependsOn: [factory-brokr]\n", 1)
	repo.Commit("typo", map[string]string{fpFile: broken})
	r := cli(t, nil, "validate", "--source", repo.HTTPURL, "--cache-dir", cache).mustCode(t, 1, "validate the broken revision")
	want := `hosts/fp-01.yaml:17:19: spec.services[factory-proxy].dependsOn[0]: unknown service "factory-brokr"`
	if strings.TrimSpace(r.Stdout) != want {
		t.Errorf("validate output:\n%s\nwant:\n%s", r.Stdout, want)
	}
	// --path narrows to a folder; positions stay repository paths.
	r = cli(t, nil, "validate", "--source", repo.FileURL, "--path", "hosts", "--cache-dir", t.TempDir()).mustCode(t, 1, "validate --path")
	if !strings.HasPrefix(strings.TrimSpace(r.Stdout), "hosts/fp-01.yaml:17:19: ") {
		t.Errorf("validate --path output:\n%s", r.Stdout)
	}
}

// TestValidateRefusesOverBoundBeforeReading: a small push holding a large
// file under --path (16 MiB of zeros, a few tens of kB packed) is refused
// by the per-file bound, over file:// and http, in about the time a valid
// revision takes: the size comes from the object header, not from reading
// it. The refusal names the bound, the size and, over file://, the file
// (over http the pack's object headers are checked before go-git indexes
// the pack, and a pack does not say which path an object sits at).
func TestValidateRefusesOverBoundBeforeReading(t *testing.T) {
	repo := newGitRepo(t, "bounds")
	files := readExample(t, "factory-proxy")
	files["hosts/zeros.yaml"] = strings.Repeat("\x00", 16<<20)
	repo.Commit("a large file", files)
	for url, what := range map[string]string{repo.FileURL: "file hosts/zeros.yaml", repo.HTTPURL: "an object of the pack received (blob)"} {
		r := cli(t, nil, "validate", "--source", url, "--cache-dir", t.TempDir()).mustCode(t, 1, "validate "+url)
		for _, want := range []string{what, "16.0 MiB", "--max-file-bytes"} {
			if !strings.Contains(r.Stderr, want) {
				t.Errorf("validate %s: stderr %q does not say %q", url, r.Stderr, want)
			}
		}
		t.Logf("%s refused in %s", url, r.Took)
		if r.Took > 10*time.Second {
			t.Errorf("validate %s took %s", url, r.Took)
		}
		// Raised, the bound lets it through to the parser (which then
		// judges the zeros).
		r = cli(t, nil, "validate", "--source", url, "--cache-dir", t.TempDir(), "--max-file-bytes", "32MiB")
		if strings.Contains(r.Stderr, "--max-file-bytes") {
			t.Errorf("validate %s --max-file-bytes 32MiB: %s", url, r.Stderr)
		}
	}
}

// TestValidateFolderConfined: a folder is read like a git tree: a link to a
// secret outside it is refused and nothing of the secret is printed; a FIFO
// named p.yaml is refused at once, never opened blocking.
func TestValidateFolderConfined(t *testing.T) {
	outside := t.TempDir()
	secret := "tok_E2E_SECRET_0123456789abcdef"
	writeFile(t, filepath.Join(outside, "token"), secret, 0o600)
	dir := t.TempDir()
	if err := filetree.Write(dir, readExample(t, "factory-proxy")); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "t.yaml")
	if err := os.Symlink(filepath.Join(outside, "token"), link); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"validate", dir}, {"validate", link}, {"plan", "--source", dir, "--host", "fp-01"}} {
		r := cli(t, nil, args...)
		if r.Code != 1 || !strings.Contains(r.Stderr, "symbolic link leads out of the folder") {
			t.Errorf("%v: exit %d, stderr %q", args, r.Code, r.Stderr)
		}
		if strings.Contains(r.Stdout+r.Stderr, "tok_") {
			t.Errorf("%v printed the secret: %s%s", args, r.Stdout, r.Stderr)
		}
	}
	os.Remove(link)
	if err := syscall.Mkfifo(filepath.Join(dir, "p.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := cli(t, nil, "validate", dir).mustCode(t, 1, "validate with a FIFO")
	if !strings.Contains(r.Stderr, "p.yaml: a named pipe (FIFO)") || r.Took > 5*time.Second {
		t.Errorf("FIFO: took %s, stderr %q", r.Took, r.Stderr)
	}
}
