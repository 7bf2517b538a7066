package desired

import (
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
)

func hostWith(extra string) string {
	return "apiVersion: reconciler.dev/v1\nkind: Host\nmetadata: {name: fp-01}\nspec:\n" + extra
}

func loadLimited(t *testing.T, files map[string]string, lim v1.Limits) (*Repo, v1.ErrorList) {
	t.Helper()
	r, err := LoadLimited(mapFS(files), "", lim)
	if err != nil {
		t.Fatal(err)
	}
	return r, r.Validate()
}

func wantBound(t *testing.T, r *Repo, errs v1.ErrorList, bound, file string) {
	t.Helper()
	if r.Valid() || r.Over() == nil || len(errs) == 0 {
		t.Fatalf("not refused over %s: %v", bound, errs)
	}
	if first := errs[0]; !strings.Contains(first.Msg, "--"+bound) || first.Pos.File != file {
		t.Fatalf("first error %v, want the bound %s at %s", first, bound, file)
	}
}

func TestUnknownKeysCountAsNodes(t *testing.T) {
	var b strings.Builder
	for i := range 300 {
		fmt.Fprintf(&b, "  junk%d: {a: 1, b: [1, 2, 3]}\n", i)
	}
	r, errs := loadLimited(t, map[string]string{"x.yaml": hostWith(b.String())}, v1.Limits{MaxNodes: 500, MaxErrors: 10})
	wantBound(t, r, errs, v1.BoundNodes, "x.yaml")
	last := errs[len(errs)-1]
	if len(errs) != 12 || !strings.Contains(last.Msg, "more error(s)") || !strings.Contains(last.Msg, "--"+v1.BoundErrors) {
		t.Errorf("%d errors, last %v; want the bound, 10 errors and one 'and N more'", len(errs), last)
	}
}

func TestErrorListCapped(t *testing.T) {
	var b strings.Builder
	for i := range 500 {
		fmt.Fprintf(&b, "  junk%d: 1\n", i)
	}
	r, errs := loadLimited(t, map[string]string{"x.yaml": hostWith(b.String())}, v1.Limits{})
	if r.Valid() || r.Over() != nil {
		t.Fatalf("valid=%v over=%v", r.Valid(), r.Over())
	}
	if len(errs) != 101 || errs.Total() != 500 || !strings.Contains(errs[100].Error(), "and 400 more error(s)") {
		t.Errorf("%d errors (total %d), last %v", len(errs), errs.Total(), errs[len(errs)-1])
	}
	// The "and N more" stays last when the list is sorted again.
	if s := append(errs, &v1.Error{Pos: v1.Pos{File: "a.yaml", Line: 1}, Msg: "m"}).Sorted(); !strings.Contains(s[len(s)-1].Msg, "more error(s)") {
		t.Errorf("sorted: last is %v", s[len(s)-1])
	}
}

func TestDocumentServiceAndTimeBounds(t *testing.T) {
	docs := strings.Repeat(hostWith("  drift: report\n")+"---\n", 5)
	r, errs := loadLimited(t, map[string]string{"a.yaml": hostWith(""), "d.yaml": docs}, v1.Limits{MaxDocuments: 3})
	wantBound(t, r, errs, v1.BoundDocuments, "d.yaml")

	var b strings.Builder
	b.WriteString("  services:\n")
	for i := range 20 {
		fmt.Fprintf(&b, "    - {name: s%d, replicas: 1}\n", i)
	}
	r, errs = loadLimited(t, map[string]string{"s.yaml": hostWith(b.String())}, v1.Limits{MaxServices: 10})
	wantBound(t, r, errs, v1.BoundServices, "s.yaml")

	r, errs = loadLimited(t, map[string]string{"s.yaml": hostWith(b.String())}, v1.Limits{MaxTime: time.Nanosecond})
	wantBound(t, r, errs, v1.BoundTime, "s.yaml")
}

func TestCycleReportedOncePerComponent(t *testing.T) {
	const n = 2000
	var b strings.Builder
	b.WriteString("  services:\n")
	for i := range n {
		fmt.Fprintf(&b, "    - {name: s%d, replicas: 1, dependsOn: [s%d, s%d]}\n", i, (i+1)%n, (i+n-1)%n)
	}
	// Two more services in a cycle of their own.
	b.WriteString("    - {name: p, replicas: 1, dependsOn: [q]}\n    - {name: q, replicas: 1, dependsOn: [p]}\n")
	start := time.Now()
	// The time bound is not what this is about (and the race detector on a
	// busy machine is slow).
	_, errs := loadLimited(t, map[string]string{"c.yaml": hostWith(b.String())}, v1.Limits{MaxTime: 10 * time.Minute})
	if len(errs) != 2 {
		t.Fatalf("%d errors, want one per strongly connected component: %v", len(errs), errs)
	}
	if got := errs[0].Error(); got != "c.yaml:6:42: spec.services[s0].dependsOn: dependency cycle: s0 -> s1 -> s0 (one cycle of 2000 services that all depend on each other)" {
		t.Errorf("got %s", got)
	}
	if got := errs[1].Msg; got != "dependency cycle: p -> q -> p" {
		t.Errorf("got %s", got)
	}
	if len(errs.Error()) > 1024 {
		t.Errorf("%d bytes of error text", len(errs.Error()))
	}
	t.Logf("%d services judged in %s", n+2, time.Since(start))
}

func TestSyntaxErrorLocatorIsNotQuadratic(t *testing.T) {
	var b strings.Builder
	b.WriteString("  services:\n")
	for i := 0; b.Len() < 1<<20; i++ {
		fmt.Fprintf(&b, "    - name: s%d\n      restartOn: %q\n      replicas: 1\n", i, strings.Repeat("x", 1500))
	}
	b.WriteString("   - name: bad\n")
	doc := hostWith(b.String())
	lines := strings.Count(doc, "\n")
	start := time.Now()
	_, errs := loadLimited(t, map[string]string{"e.yaml": doc}, v1.Limits{MaxTime: 10 * time.Minute})
	took := time.Since(start)
	if len(errs) != 1 || errs[0].Pos.Line != lines {
		t.Fatalf("errors %v, want one at line %d", errs, lines)
	}
	t.Logf("%d bytes, %d lines: judged in %s", len(doc), lines, took)
	// Measured against one load of the file whose mistake is at its end
	// (the same parser cost, whatever -race and the machine's load do):
	// re-parsing every prefix, as the locator did, costs about a thousand
	// times that; bisection a few dozen at most.
	fixed := strings.Replace(doc, "   - name: bad\n", "    - name: bad\n", 1)
	start = time.Now()
	loadLimited(t, map[string]string{"e.yaml": fixed}, v1.Limits{MaxTime: 10 * time.Minute})
	one := time.Since(start)
	t.Logf("one load of the corrected file: %s; ratio %.1f", one, float64(took)/float64(one))
	if took > 60*one {
		t.Errorf("took %s, %.0f times one load", took, float64(took)/float64(one))
	}
}
