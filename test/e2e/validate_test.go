//go:build e2e

package e2e

import (
	"strings"
	"testing"
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
