package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/drivertest"
)

// simAgents serves simulated agents' /status, one listener each, all from
// one server: the subject of these tests is the client (fleet status), not
// the agent. body(i) is agent i's answer; nil means it accepts and never
// answers.
func simAgents(t *testing.T, n int, body func(i int) []byte) []string {
	t.Helper()
	srv := &http.Server{ConnContext: func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, simIndex{}, c.(simConn).i)
	}, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := body(r.Context().Value(simIndex{}).(int))
		if b == nil {
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})}
	addrs := make([]string, n)
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = ln.Addr().String()
		go func() { _ = srv.Serve(simListener{ln, i}) }()
	}
	t.Cleanup(func() { _ = srv.Close() })
	return addrs
}

// simIndex keys a request's context with the index of the listener (the
// agent) it came in on.
type simIndex struct{}

type simListener struct {
	net.Listener
	i int
}

type simConn struct {
	net.Conn
	i int
}

func (l simListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return simConn{c, l.i}, nil
}

func simStatus(host, rev string, at time.Time, drift int) status.Status {
	ok := drift == 0
	st := status.Status{
		Host:        host,
		Revision:    &status.RevisionStatus{ID: rev, Time: at},
		Maintenance: &controllers.Maintenance{},
		LastPass:    &status.PassSummary{Result: names.ResultInSync, End: time.Now().Add(-3 * time.Second)},
		Drift:       []status.Drift{},
		Conditions:  []status.Condition{{Type: names.ConditionReady, Status: true}, {Type: names.ConditionConverged, Status: ok}},
	}
	for range drift {
		st.Drift = append(st.Drift, status.Drift{Subject: "swarm/web", Field: "replicas", Action: "report-only"})
	}
	return st
}

// TestFleetStatusThousandAgents: `fleet status` against 1,000 status
// endpoints (990 converged, 4 drifted, 3 on an older revision, 2 refusing
// connections, 1 that never answers) prints the summary line first and the
// 10 exceptions, counts the rest, and takes well under 10 s: the agent that
// hangs costs its --timeout (5s) once, in one of --concurrency slots.
func TestFleetStatusThousandAgents(t *testing.T) {
	const n = 1000
	newRev, oldRev := strings.Repeat("b", 40), strings.Repeat("a", 40)
	t1 := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	mustJSON := func(st status.Status) []byte {
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	bodies := make([][]byte, n)
	for i := range n {
		host := fmt.Sprintf("host-%04d", i)
		switch {
		case i%250 == 7: // 4 drifted
			bodies[i] = mustJSON(simStatus(host, newRev, t1, 2))
		case i%333 == 11: // 3 on the older revision
			bodies[i] = mustJSON(simStatus(host, oldRev, t1.Add(-time.Hour), 0))
		case i == 600: // hangs
		default:
			bodies[i] = mustJSON(simStatus(host, newRev, t1, 0))
		}
	}
	addrs := simAgents(t, n, func(i int) []byte { return bodies[i] })
	refused := []int{500, 900}
	for _, i := range refused {
		addrs[i] = drivertest.ClosedAddr(t)
	}
	list := filepath.Join(t.TempDir(), "agents")
	if err := os.WriteFile(list, []byte(strings.Join(addrs, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	root := newRootCommand()
	root.SetArgs([]string{"fleet", "status", "--agents", list})
	root.SetOut(&out)
	start := time.Now()
	err := root.ExecuteContext(context.Background())
	took := time.Since(start)
	t.Logf("fleet status against %d agents took %s (default --concurrency); output:\n%s", n, took.Round(time.Millisecond), out.String())
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 {
		t.Errorf("exit: %v, want exit status 2 (not converged)", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := "990 of 1000 agents converged on bbbbbbbbbbbb: 4 drifted, 3 on another revision, 3 unreachable"
	if lines[0] != want {
		t.Errorf("first line %q, want %q", lines[0], want)
	}
	if len(lines) != 1+1+10+1 {
		t.Errorf("%d lines, want the summary, a header, 10 exceptions and the count of the rest", len(lines))
	}
	if !regexp.MustCompile(`(?m)^\? +` + regexp.QuoteMeta(addrs[600]) + ` .*no: .*deadline exceeded$`).MatchString(out.String()) {
		t.Errorf("the agent that hangs (%s) is not shown as timed out", addrs[600])
	}
	if !strings.Contains(out.String(), "(990 converged agents not listed; --all lists every agent)") {
		t.Errorf("the converged agents are not counted")
	}
	// A generous bound: the machine is shared. Measured figures are in
	// README ("Fleet status at scale").
	if took > 60*time.Second {
		t.Errorf("took %s, want well under a minute (10s on a quiet machine)", took)
	}

	// --all lists every agent.
	out.Reset()
	root = newRootCommand()
	root.SetArgs([]string{"fleet", "status", "--agents", list, "--all", "--concurrency", "50"})
	root.SetOut(&out)
	_ = root.ExecuteContext(context.Background())
	if got := strings.Count(out.String(), "\n"); got != 1+1+n {
		t.Errorf("--all: %d lines, want %d", got, 2+n)
	}
}
