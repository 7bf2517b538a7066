// Package version holds what `reconciler version` prints: the release, the git
// commit the binary was built from, when it was built, and the Go toolchain.
// The Makefile (make build, make dist) sets Version, Commit and Date with
// -ldflags; a plain `go build` falls back to the VCS stamp Go embeds, so a
// binary never claims a commit or a date it was not built from.
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
	Date    = "" // RFC 3339, UTC
)

// Info is the build identity of this binary.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildDate string `json:"buildDate"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the build identity, reading the VCS stamp for what -ldflags
// did not set (the commit, and its time standing in for the build date).
func Get() Info {
	commit, date := Commit, Date
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && commit == "":
				commit = s.Value
			case s.Key == "vcs.time" && date == "":
				date = s.Value
			}
		}
	}
	if commit == "" {
		commit = "unknown"
	}
	if date == "" {
		date = "unknown"
	}
	return Info{
		Version:   Version,
		Commit:    commit,
		BuildDate: date,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
}

func (i Info) String() string {
	return fmt.Sprintf("reconciler %s (commit %s, built %s, %s %s)", i.Version, i.Commit, i.BuildDate, i.GoVersion, i.Platform)
}
