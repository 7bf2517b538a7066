package main

import (
	"testing"

	"github.com/spf13/cobra"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"8MiB": 8 << 20, "512KiB": 512 << 10, "1GiB": 1 << 30, "64M": 64 << 20, "1048576": 1 << 20, "10k": 10 << 10, " 2 MiB ": 2 << 20} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "8XB", "MiB", "99999999999GiB"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
}

// Every bound has a flag, read from RECONCILER_<FLAG> too.
func TestLimitFlagsFromEnv(t *testing.T) {
	var lf limitFlags
	cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	lf.register(cmd.Flags())
	t.Setenv("RECONCILER_MAX_FILE_BYTES", "16MiB")
	t.Setenv("RECONCILER_MAX_ERRORS", "7")
	t.Setenv("RECONCILER_MAX_PARSE_TIME", "2s")
	if err := flagsFromEnv(cmd); err != nil {
		t.Fatal(err)
	}
	if lf.src.MaxFileBytes != 16<<20 || lf.parse.MaxErrors != 7 || lf.parse.MaxTime.String() != "2s" {
		t.Errorf("limits %+v %+v", lf.src, lf.parse)
	}
	for _, name := range []string{"max-file-bytes", "max-revision-bytes", "max-ref-lines", "max-ref-bytes", "max-shallow-lines", "max-pack-bytes", "max-yaml-nodes", "max-documents", "max-services", "max-errors", "max-parse-time"} {
		if cmd.Flags().Lookup(name) == nil {
			t.Errorf("no flag --%s", name)
		}
	}
}
