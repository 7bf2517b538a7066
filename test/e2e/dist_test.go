//go:build e2e

package e2e

// What `make dist` ships, built once per test run by hack/dist itself (amd64
// only, to keep make test short): the static binary, two .debs of the same
// code (a second, higher version for the upgrade test) and the image.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The release the tests build. The image tag is fixed (not per process), so
// runs leave at most one image behind; the stack test removes it.
const (
	distVersion        = "1.0.0-e2e.1"
	distUpgradeVersion = "1.0.0-e2e.2"
)

// distBuild is what hack/dist wrote for one version.
type distBuild struct {
	Version string
	Dir     string
	Binary  string // reconciler_VERSION_linux_amd64
	Deb     string // reconciler_DEBVERSION_amd64.deb
	Image   string // reconciler:VERSION, in the testbed's docker ("" if not built)
}

var (
	distOnce sync.Once
	distMain distBuild
	distNext distBuild
	distErr  error
)

// dist returns the two builds: the first with its image, the second (the
// upgrade) a .deb only.
func dist(t testing.TB) (first, upgrade distBuild) {
	t.Helper()
	testbed(t)
	distOnce.Do(func() {
		root, err := os.MkdirTemp("", "reconciler-e2e-dist")
		if err != nil {
			distErr = err
			return
		}
		if distMain, distErr = runDist(filepath.Join(root, "1"), distVersion, true); distErr != nil {
			return
		}
		distNext, distErr = runDist(filepath.Join(root, "2"), distUpgradeVersion, false)
	})
	if distErr != nil {
		t.Fatalf("hack/dist: %v", distErr)
	}
	return distMain, distNext
}

func runDist(dir, version string, image bool) (distBuild, error) {
	b := distBuild{Version: version, Dir: dir,
		Binary: filepath.Join(dir, "reconciler_"+version+"_linux_amd64")}
	cmd := exec.Command(filepath.Join(repoRoot(), "hack", "dist"))
	cmd.Dir = repoRoot()
	img := "0"
	if image {
		img = "1"
		b.Image = "reconciler:" + version
	}
	cmd.Env = append(os.Environ(), "DIST_DIR="+dir, "DIST_ARCHES=amd64", "DIST_IMAGE="+img, "VERSION="+version)
	if out, err := cmd.CombinedOutput(); err != nil {
		return b, fmt.Errorf("VERSION=%s: %w\n%s", version, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*_amd64.deb"))
	if len(debs) != 1 {
		return b, fmt.Errorf("VERSION=%s: want one .deb in %s, found %v", version, dir, debs)
	}
	b.Deb = debs[0]
	return b, nil
}
