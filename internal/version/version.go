// Package version holds what `reconciler version` prints: the release, the git
// commit the binary was built from, and the Go toolchain. The Makefile sets
// Version and Commit with -ldflags; a plain `go build` falls back to the VCS
// stamp Go embeds, so a binary never claims a commit it was not built from.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set with -ldflags "-X reconciler.dev/reconciler/internal/version.Version=...".
var (
	Version = "dev"
	Commit  = ""
)

// Info is the build identity of this binary.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the build identity, reading the VCS stamp when -ldflags set none.
func Get() Info {
	commit := Commit
	if commit == "" {
		commit = "unknown"
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					commit = s.Value
				}
			}
		}
	}
	return Info{
		Version:   Version,
		Commit:    commit,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
}

func (i Info) String() string {
	return fmt.Sprintf("reconciler %s (commit %s, %s %s)", i.Version, i.Commit, i.GoVersion, i.Platform)
}
