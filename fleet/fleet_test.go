package fleet

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
	"reconciler.dev/reconciler/controllers/engine"
)

func hostStatus(host, rev string, at time.Time, ok bool, drift ...status.Drift) *status.Status {
	return &status.Status{
		Host:        host,
		Revision:    &status.RevisionStatus{ID: rev, Time: at},
		Maintenance: &engine.Maintenance{Active: host == "fp-02"},
		LastPass:    &status.PassSummary{Result: map[bool]string{true: "in-sync", false: "failed"}[ok], End: at},
		Drift:       drift,
		Conditions:  []status.Condition{{Type: names.ConditionReady, Status: ok}, {Type: names.ConditionConverged, Status: ok}},
	}
}

func TestSummarize(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	old, newer := strings.Repeat("a", 40), strings.Repeat("b", 40)
	agents := []string{"a:1", "b:1", "c:1"}
	cases := []struct {
		name      string
		answers   map[string]Answer
		revision  string
		converged bool
		want      map[string][3]bool // agent -> reachable, inSync, onRevision
	}{
		{"all on the newest", map[string]Answer{
			"a:1": {Status: hostStatus("fp-01", newer, t0, true)},
			"b:1": {Status: hostStatus("fp-02", newer, t0, true)},
			"c:1": {Status: hostStatus("fp-03", newer, t0, true)},
		}, "", true, map[string][3]bool{"a:1": {true, true, true}, "b:1": {true, true, true}, "c:1": {true, true, true}}},
		{"one behind, newest by commit time", map[string]Answer{
			"a:1": {Status: hostStatus("fp-01", newer, t0.Add(time.Minute), true)},
			"b:1": {Status: hostStatus("fp-02", old, t0, true)},
			"c:1": {Status: hostStatus("fp-03", newer, t0.Add(time.Minute), true)},
		}, "", false, map[string][3]bool{"a:1": {true, true, true}, "b:1": {true, true, false}, "c:1": {true, true, true}}},
		{"one unreachable", map[string]Answer{
			"a:1": {Status: hostStatus("fp-01", newer, t0, true)},
			"b:1": {Err: errors.New("connection refused")},
			"c:1": {Status: hostStatus("fp-03", newer, t0, true)},
		}, "", false, map[string][3]bool{"a:1": {true, true, true}, "b:1": {false, false, false}, "c:1": {true, true, true}}},
		{"drift left means not in sync", map[string]Answer{
			"a:1": {Status: hostStatus("fp-01", newer, t0, true, status.Drift{Action: "report-only"})},
			"b:1": {Status: hostStatus("fp-02", newer, t0, true, status.Drift{Action: "reverted"})},
			"c:1": {Status: hostStatus("fp-03", newer, t0, false)},
		}, "", false, map[string][3]bool{"a:1": {true, false, true}, "b:1": {true, true, true}, "c:1": {true, false, true}}},
		{"judged against a given prefix", map[string]Answer{
			"a:1": {Status: hostStatus("fp-01", newer, t0, true)},
			"b:1": {Status: hostStatus("fp-02", newer, t0, true)},
			"c:1": {Status: hostStatus("fp-03", newer, t0, true)},
		}, "aaaa", false, map[string][3]bool{"a:1": {true, true, false}, "b:1": {true, true, false}, "c:1": {true, true, false}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep := Summarize(agents, c.answers, c.revision, t0.Add(time.Hour))
			if rep.Converged != c.converged {
				t.Errorf("converged = %v, want %v", rep.Converged, c.converged)
			}
			got := map[string][3]bool{}
			for _, h := range rep.Hosts {
				got[h.Agent] = [3]bool{h.Reachable, h.InSync, h.OnRevision}
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("hosts %v, want %v", got, c.want)
			}
		})
	}
}

func TestParseAgents(t *testing.T) {
	file := filepath.Join(t.TempDir(), "agents")
	os.WriteFile(file, []byte("# plant a\nfp-01:9440\nfp-02:9440, fp-03:9440\n\n"), 0o644)
	for arg, want := range map[string][]string{
		"a:9440,b:9440": {"a:9440", "b:9440"},
		file:            {"fp-01:9440", "fp-02:9440", "fp-03:9440"},
	} {
		got, err := ParseAgents(arg)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseAgents(%q) = %v, %v", arg, got, err)
		}
	}
	if _, err := ParseAgents(" , "); err == nil {
		t.Error("an empty list is accepted")
	}
}

func TestPageEscapes(t *testing.T) {
	rep := Summarize([]string{"x:1"}, map[string]Answer{"x:1": {Status: hostStatus("<script>alert(1)</script>", "c", time.Now(), true)}}, "", time.Now())
	var b strings.Builder
	if err := WritePage(&b, rep, true); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<script>alert") || !strings.Contains(b.String(), "&lt;script&gt;") {
		t.Errorf("a host name is not escaped:\n%s", b.String())
	}
}

// TestCacheAsksOncePerTTL: page views within the TTL share one report.
func TestCacheAsksOncePerTTL(t *testing.T) {
	n := 0
	c := &Cache{TTL: 5 * time.Second, Collect: func(context.Context) (Report, error) {
		n++
		return Report{Revision: fmt.Sprint(n)}, nil
	}}
	t0 := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 10; i++ {
		rep, err := c.Report(context.Background(), t0.Add(time.Duration(i)*400*time.Millisecond))
		if err != nil || rep.Revision != "1" {
			t.Fatalf("view %d: %+v %v", i, rep, err)
		}
	}
	if rep, _ := c.Report(context.Background(), t0.Add(5*time.Second)); rep.Revision != "2" || n != 2 {
		t.Errorf("after the TTL: report %q, %d collections, want a second one", rep.Revision, n)
	}
}

// TestSummaryCounts: each host is counted in one state, the first that
// holds (unreachable, other revision, drifted, converged), and Exceptions
// lists all but the converged.
func TestSummaryCounts(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	newer, old := strings.Repeat("b", 40), strings.Repeat("a", 40)
	agents := []string{"a:1", "b:1", "c:1", "d:1", "e:1"}
	rep := Summarize(agents, map[string]Answer{
		"a:1": {Status: hostStatus("fp-01", newer, t0, true)},
		"b:1": {Status: hostStatus("fp-02", newer, t0, true, status.Drift{Action: "report-only"})},
		"c:1": {Status: hostStatus("fp-03", old, t0.Add(-time.Hour), true, status.Drift{Action: "report-only"})},
		"d:1": {Err: errors.New("connection refused")},
		"e:1": {Status: hostStatus("fp-05", newer, t0, true)},
	}, "", t0)
	want := Counts{Agents: 5, Converged: 2, Drifted: 1, OtherRevision: 1, Unreachable: 1}
	if rep.Summary != want {
		t.Errorf("counts %+v, want %+v", rep.Summary, want)
	}
	states := map[string]string{}
	for _, h := range rep.Hosts {
		states[h.Agent] = h.State
	}
	if w := map[string]string{"a:1": StateConverged, "b:1": StateDrifted, "c:1": StateOtherRevision, "d:1": StateUnreachable, "e:1": StateConverged}; !reflect.DeepEqual(states, w) {
		t.Errorf("states %v, want %v", states, w)
	}
	if got := SummaryLine(rep); got != "2 of 5 agents converged on bbbbbbbbbbbb: 1 drifted, 1 on another revision, 1 unreachable" {
		t.Errorf("summary line %q", got)
	}
	if ex := Exceptions(rep, false); len(ex) != 3 {
		t.Errorf("exceptions %d, want 3", len(ex))
	}
	if ex := Exceptions(rep, true); len(ex) != 5 {
		t.Errorf("all %d, want 5", len(ex))
	}
	// Up to ListEveryUpTo agents the page lists every one.
	var b strings.Builder
	if err := WritePage(&b, rep, false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "not listed") || !strings.Contains(b.String(), "fp-01") {
		t.Errorf("a small fleet's page is not listed whole:\n%s", b.String())
	}
	// Beyond it, only the exceptions are, and the rest counted.
	big := rep
	big.Hosts = nil
	for len(big.Hosts) <= ListEveryUpTo {
		big.Hosts = append(big.Hosts, rep.Hosts...)
	}
	b.Reset()
	if err := WritePage(&b, big, false); err != nil {
		t.Fatal(err)
	}
	if conv := len(big.Hosts) - len(Exceptions(big, false)); !strings.Contains(b.String(), fmt.Sprintf("%d converged agents not listed", conv)) || strings.Contains(b.String(), "fp-01") {
		t.Errorf("the page lists converged hosts or does not count them:\n%s", b.String())
	}
}

// TestAskerBoundsConcurrency: never more than Concurrency requests at once.
func TestAskerBoundsConcurrency(t *testing.T) {
	var mu sync.Mutex
	in, peak := 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		in++
		peak = max(peak, in)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		in--
		mu.Unlock()
		_, _ = w.Write([]byte(`{"host":"h"}`))
	}))
	defer srv.Close()
	// One server, many "agents": the same address with different paths
	// would be one agent, so each gets its own URL query.
	var agents []string
	for i := range 40 {
		agents = append(agents, fmt.Sprintf("%s/?agent=%d#", srv.URL, i))
	}
	got := Asker{Timeout: 5 * time.Second, Concurrency: 4}.Collect(context.Background(), agents)
	if len(got) != 40 {
		t.Fatalf("%d answers, want 40", len(got))
	}
	for a, ans := range got {
		if ans.Err != nil {
			t.Fatalf("%s: %v", a, ans.Err)
		}
	}
	if peak > 4 || peak < 2 {
		t.Errorf("peak concurrency %d, want 2..4", peak)
	}
}
