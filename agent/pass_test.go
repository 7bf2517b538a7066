package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/drivertest"
	"reconciler.dev/reconciler/controllers/engine"
	"reconciler.dev/reconciler/desired/source"
)

// memSource is a source whose head the test commits to.
type memSource struct {
	mu      sync.Mutex
	art     source.Artifact
	last    string
	err     error
	fetches int
	hist    func(source.HistoryRequest) (source.History, error) // nil: no history (a plain folder)
}

func (s *memSource) Fetch(context.Context) (source.Artifact, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fetches++
	if s.err != nil {
		return source.Artifact{}, false, s.err
	}
	if s.art.FS == nil {
		return source.Artifact{}, false, errors.New("nothing committed")
	}
	changed := s.art.Revision.ID != s.last
	s.last = s.art.Revision.ID
	return s.art, changed, nil
}

func (s *memSource) Last(context.Context) (source.Artifact, error) { return s.art, nil }
func (s *memSource) String() string                                { return "mem://desired" }

// commit makes doc (the host's spec, YAML indented under spec:) the head.
func (s *memSource) commit(id, spec string) {
	doc := "apiVersion: reconciler.dev/v1\nkind: Host\nmetadata:\n  name: h1\nspec:\n" + spec
	s.mu.Lock()
	defer s.mu.Unlock()
	s.art = source.Artifact{Revision: source.Revision{ID: id, Message: "commit " + id}, FS: fstest.MapFS{"hosts/h1.yaml": {Data: []byte(doc)}}}
}

func (s *memSource) fail(err error) { s.mu.Lock(); s.err = err; s.mu.Unlock() }

// passHost is an agent on a fake host: fake swarm and systemd drivers, a
// memory source, a real state dir.
type passHost struct {
	src *memSource
	sw  *drivertest.Fake
	sd  *drivertest.Fake
	eng *engine.Engine
	dir string
	a   *Agent
}

func newPassHost(t *testing.T) *passHost {
	h := &passHost{src: &memSource{}, sw: drivertest.New(v1.DriverSwarm), sd: drivertest.New(v1.DriverSystemd), dir: t.TempDir()}
	h.eng = &engine.Engine{Drivers: map[v1.Driver]controllers.Driver{v1.DriverSwarm: h.sw, v1.DriverSystemd: h.sd},
		PollInterval: time.Millisecond, ReadyTimeout: 200 * time.Millisecond, DrainSlack: 200 * time.Millisecond}
	h.restart(t)
	return h
}

// restart starts a new agent on the same state dir, as after a crash.
func (h *passHost) restart(t *testing.T) {
	a, err := New(Config{Source: h.src, Host: "h1", Engine: h.eng, StateDir: h.dir, Interval: time.Minute,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	a.loadState()
	h.a = a
}

func (h *passHost) pass() (status.PassSummary, error) {
	err := h.a.pass(context.Background(), "test")
	st := h.a.Status()
	if st.LastPass == nil {
		return status.PassSummary{}, errors.New("no last pass in the status")
	}
	return *st.LastPass, err
}

func (h *passHost) state(t *testing.T) *State {
	t.Helper()
	st, err := LoadState(h.dir)
	if err != nil {
		t.Fatalf("state dir: %v", err)
	}
	return st
}

func outcomeOf(sum status.PassSummary, subject string) string {
	for _, o := range sum.Actions {
		if o.Subject == subject {
			return o.Outcome
		}
	}
	return "none"
}

func driftOf(st status.Status, subject string) *status.Drift {
	for i := range st.Drift {
		if st.Drift[i].Subject == subject {
			return &st.Drift[i]
		}
	}
	return nil
}

const twoServices = `  services:
    - name: a
      replicas: 2
    - name: b
      replicas: 1
      dependsOn: [a]
`

// The pass's transaction logic, scenario by scenario: each step commits
// (or not), changes the host (or not), runs one pass and checks what the
// status, the state dir and the drivers say afterwards.
func TestPass(t *testing.T) {
	type step struct {
		commit  string // "id\nspec" to commit first, "" for none
		setup   func(h *passHost)
		restart bool // a new agent on the same state dir before the pass
		result  string
		check   func(t *testing.T, h *passHost, sum status.PassSummary)
		// terminal: the pass's error is terminal (not retried before the
		// interval), as a missing driver's is.
		terminal bool
	}
	commit := func(id, spec string) string { return id + "\n" + spec }
	cases := []struct {
		name  string
		steps []step
	}{
		{"refused revision keeps the one in force", []step{
			{commit: commit("r1", twoServices), setup: func(h *passHost) { h.sw.Service("swarm/a", 0); h.sw.Service("swarm/b", 0) },
				result: names.ResultConverged,
				check: func(t *testing.T, h *passHost, _ status.PassSummary) {
					if h.sw.Get("swarm/a").Replicas != 2 || h.sw.Get("swarm/b").Replicas != 1 {
						t.Errorf("not converged: a %+v b %+v", h.sw.Get("swarm/a"), h.sw.Get("swarm/b"))
					}
				}},
			{commit: commit("r2", "  services:\n    - name: a\n      replicas: -1\n"),
				setup:  func(h *passHost) { h.sw.Service("swarm/a", 5) }, // manual drift: still enforced
				result: names.ResultConverged,
				check: func(t *testing.T, h *passHost, sum status.PassSummary) {
					st := h.a.Status()
					if st.FailedRevision == nil || st.FailedRevision.ID != "r2" || st.FailedRevision.Cause != "invalid" || len(st.FailedRevision.Errors) == 0 {
						t.Errorf("failedRevision %+v", st.FailedRevision)
					}
					if st.Revision == nil || st.Revision.ID != "r1" || sum.Revision != "r1" {
						t.Errorf("revision in force %+v, pass enforced %q; want r1", st.Revision, sum.Revision)
					}
					if h.sw.Get("swarm/a").Replicas != 2 {
						t.Errorf("r1 not enforced: a %+v", h.sw.Get("swarm/a"))
					}
					if g := h.state(t).Good; g == nil || g.Revision.ID != "r1" {
						t.Errorf("state dir holds %+v, want r1", g)
					}
					if countEvents(st, names.EventRevisionRefused) != 1 {
						t.Errorf("events %+v", st.Events)
					}
				}},
			{result: names.ResultInSync, // judged already: not refused again
				check: func(t *testing.T, h *passHost, _ status.PassSummary) {
					if n := countEvents(h.a.Status(), names.EventRevisionRefused); n != 1 {
						t.Errorf("%d refusals of one revision", n)
					}
				}},
		}},
		{"drift since survives an agent restart", []step{
			{commit: commit("r1", "  services:\n    - name: a\n      replicas: 2\n      drift: report\n"),
				setup: func(h *passHost) { h.sw.Service("swarm/a", 1) }, result: names.ResultConverged,
				check: func(t *testing.T, h *passHost, sum status.PassSummary) {
					d := driftOf(h.a.Status(), "swarm/a")
					if d == nil || d.Action != string(controllers.ReportOnly) || outcomeOf(sum, "swarm/a") != string(engine.CodeReported) {
						t.Fatalf("drift %+v, outcome %s", d, outcomeOf(sum, "swarm/a"))
					}
					h.src.mu.Lock()
					h.src.art.Revision.Time = d.Since // the test's note of when it began
					h.src.mu.Unlock()
				}},
			{restart: true, result: names.ResultConverged,
				check: func(t *testing.T, h *passHost, _ status.PassSummary) {
					d := driftOf(h.a.Status(), "swarm/a")
					h.src.mu.Lock()
					first := h.src.art.Revision.Time
					h.src.mu.Unlock()
					if d == nil || !d.Since.Equal(first) {
						t.Errorf("after a restart the drift is %+v, want since %s", d, first)
					}
					if h.sw.Get("swarm/a").Replicas != 1 {
						t.Error("report-only drift was reverted")
					}
				}},
			{setup: func(h *passHost) { h.sw.Service("swarm/a", 2) }, result: names.ResultInSync,
				check: func(t *testing.T, h *passHost, _ status.PassSummary) {
					if len(h.a.Status().Drift) != 0 || len(h.state(t).DriftSince) != 0 {
						t.Errorf("drift gone, but status %+v, state %+v", h.a.Status().Drift, h.state(t).DriftSince)
					}
				}},
		}},
		{"state and status are written on every path", []step{
			{setup: func(h *passHost) { h.src.fail(errors.New("git down")) }, result: names.ResultError,
				check: func(t *testing.T, h *passHost, sum status.PassSummary) {
					st := h.a.Status()
					if conditionStatus(st, names.ConditionSourceAvailable) != "false" || conditionStatus(st, names.ConditionReady) != "false" || sum.Error == "" {
						t.Errorf("conditions %+v, summary %+v", st.Conditions, sum)
					}
				}},
			{commit: commit("r1", "  services:\n    - name: a\n      replicas: 1\n    - name: u\n      driver: daemontools\n      replicas: 1\n"),
				setup:  func(h *passHost) { h.src.fail(nil); h.sw.Service("swarm/a", 1) },
				result: names.ResultError, terminal: true, // no daemontools driver: the plan fails
				check: func(t *testing.T, h *passHost, sum status.PassSummary) {
					if g := h.state(t).Good; g == nil || g.Revision.ID != "r1" {
						t.Errorf("the revision in force was not written before planning: %+v", g)
					}
					if sum.Error == "" || sum.Revision != "r1" {
						t.Errorf("summary %+v", sum)
					}
				}},
			{commit: commit("r2", "  services:\n    - name: a\n      replicas: 3\n"),
				setup:  func(h *passHost) { h.sw.FailOn("swarm/a", errors.New("daemon says no")) },
				result: names.ResultFailed,
				check: func(t *testing.T, h *passHost, sum status.PassSummary) {
					st := h.state(t)
					if st.InProgress != nil || st.Good == nil || st.Good.Revision.ID != "r2" {
						t.Errorf("after a failed pass the state is %+v", st)
					}
					if outcomeOf(sum, "swarm/a") != string(engine.CodeFailed) || conditionStatus(h.a.Status(), names.ConditionConverged) != "false" {
						t.Errorf("summary %+v", sum)
					}
				}},
			{setup: func(h *passHost) { h.sw.FailOn("swarm/a", nil); h.sw.PanicOnPlan("swarm/a", true) },
				result: names.ResultError,
				check: func(t *testing.T, h *passHost, sum status.PassSummary) {
					if sum.Error == "" || h.a.Ready() {
						t.Errorf("a panic: summary %+v, ready %v", sum, h.a.Ready())
					}
				}},
			{setup: func(h *passHost) { h.sw.PanicOnPlan("swarm/a", false) }, result: names.ResultConverged,
				check: func(t *testing.T, h *passHost, _ status.PassSummary) {
					if !h.a.Ready() || h.state(t).InProgress != nil || len(h.a.Status().Passes) != 5 {
						t.Errorf("ready %v, state %+v, passes %d", h.a.Ready(), h.state(t), len(h.a.Status().Passes))
					}
				}},
		}},
		{"a blocked dependent is reported blocked", []step{
			{commit: commit("r1", twoServices),
				setup: func(h *passHost) {
					h.sw.Service("swarm/a", 0)
					h.sw.Service("swarm/b", 0)
					h.sw.FailOn("swarm/a", errors.New("no room"))
				},
				result: names.ResultFailed,
				check: func(t *testing.T, h *passHost, sum status.PassSummary) {
					st := h.a.Status()
					if outcomeOf(sum, "swarm/a") != string(engine.CodeFailed) || outcomeOf(sum, "swarm/b") != string(engine.CodeBlocked) {
						t.Errorf("outcomes %+v", sum.Actions)
					}
					if d := driftOf(st, "swarm/b"); d == nil || d.Action != names.DriftBlocked {
						t.Errorf("drift of b %+v", d)
					}
					if d := driftOf(st, "swarm/a"); d == nil || d.Action != names.DriftFailed {
						t.Errorf("drift of a %+v", d)
					}
					if countEvents(st, names.EventBlocked) != 1 || h.sw.Get("swarm/b").Replicas != 0 {
						t.Errorf("b changed or no blocked event: %+v", h.sw.Get("swarm/b"))
					}
				}},
		}},
		{"a failure policy's restarts are counted from outcomes", []step{
			{commit: commit("r1", "  services:\n    - name: x\n      replicas: 1\n      onFailure:\n        restart: {limit: 2, window: 1h}\n"),
				setup: func(h *passHost) {
					h.sw.Set("swarm/x", drivertest.Object{Exists: true, Replicas: 1, Running: 1, Failing: "task exited 1", StillFailing: true})
				},
				result: names.ResultFailed,
				check:  restartsAre(1, 1)},
			{result: names.ResultFailed, check: restartsAre(2, 2)},
			{result: names.ResultFailed, check: restartsAre(2, 2)}, // the limit: gave up, nothing sent
			{setup: func(h *passHost) { h.sw.FailOn("swarm/x", errors.New("gone")) }, restart: true,
				result: names.ResultFailed, check: restartsAre(2, 2)}, // the memory survives a restart
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newPassHost(t)
			for i, s := range c.steps {
				if s.commit != "" {
					id, spec, _ := strings.Cut(s.commit, "\n")
					h.src.commit(id, spec)
				}
				if s.setup != nil {
					s.setup(h)
				}
				if s.restart {
					h.restart(t)
				}
				sum, err := h.pass()
				if sum.Result != s.result {
					t.Fatalf("step %d: result %q (%v), want %q; actions %+v", i, sum.Result, err, s.result, sum.Actions)
				}
				if (err == nil) != (s.result == names.ResultConverged || s.result == names.ResultInSync) {
					t.Errorf("step %d: error %v with result %s", i, err, sum.Result)
				}
				if errors.Is(err, controllers.ErrTerminal) != s.terminal {
					t.Errorf("step %d: error %v terminal %v, want %v", i, err, errors.Is(err, controllers.ErrTerminal), s.terminal)
				}
				if s.check != nil {
					t.Run(fmt.Sprintf("step %d", i), func(t *testing.T) { s.check(t, h, sum) })
				}
			}
		})
	}
}

// restartsAre checks the restarts a failure policy counted (in the status
// and the state dir) against the restarts the driver was sent.
func restartsAre(counted, sent int) func(t *testing.T, h *passHost, sum status.PassSummary) {
	return func(t *testing.T, h *passHost, sum status.PassSummary) {
		n := 0
		for _, a := range h.sw.Applied() {
			if a.Op == controllers.OpRestart && a.Field == controllers.FieldFailing {
				n++
			}
		}
		if n != sent {
			t.Errorf("%d restarts sent, want %d", n, sent)
		}
		got := -1
		for _, f := range h.a.Status().Failures {
			if f.Service == "x" {
				got = len(f.Restarts)
			}
		}
		if got != counted {
			t.Errorf("restarts counted %d, want %d (%+v)", got, counted, h.a.Status().Failures)
		}
		if m := h.state(t).Failures["x"]; len(m.Restarts) != counted {
			t.Errorf("state dir counts %d restarts, want %d", len(m.Restarts), counted)
		}
	}
}
