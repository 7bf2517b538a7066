package desired

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
)

// BenchmarkLoad1000 loads, validates and merges one host declaring 1,000
// swarm services: the work a `reconciler plan` or an agent pass does on a
// new revision before it looks at anything live (make bench scenario 3).
func BenchmarkLoad1000(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("apiVersion: reconciler.dev/v1\nkind: Host\nmetadata:\n  name: bench-01\nspec:\n  services:\n")
	for i := range 1000 {
		fmt.Fprintf(&sb, "    - name: bench-svc-%04d\n      replicas: 0\n", i)
	}
	sb.WriteString("  units:\n    - name: systemd-journald.service\n      active: true\n")
	fsys := fstest.MapFS{"hosts/bench-01.yaml": {Data: []byte(sb.String())}}
	b.ReportAllocs()
	for b.Loop() {
		r, err := Load(fsys, "repo")
		if err != nil {
			b.Fatal(err)
		}
		if _, errs := r.Effective("bench-01"); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
}
