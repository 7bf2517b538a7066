package engine

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/drivertest"
)

// The agent builds its status from outcomes alone, so each code must come
// from what happened, with typed errors behind it.
func TestApplyOutcomes(t *testing.T) {
	sw := drivertest.New(v1.DriverSwarm)
	for _, s := range []string{"swarm/a", "swarm/b", "swarm/c"} {
		sw.Service(s, 0)
	}
	sw.FailOn("swarm/a", errors.New("daemon says no"))
	b := svc("b", 1)
	b.DependsOn = []string{"a"}
	e, _ := newTestEngine(sw)
	plan, res := e.planApply(t, spec(false, []v1.Service{svc("a", 1), b, svc("c", 1), svc("ghost", 1)}))
	if len(res.Outcomes) != len(plan.Actions) {
		t.Fatalf("%d outcomes for %d actions", len(res.Outcomes), len(plan.Actions))
	}
	want := map[string]struct {
		code      Code
		attempted bool
	}{
		"swarm/a":     {CodeFailed, true},
		"swarm/b":     {CodeBlocked, false},
		"swarm/c":     {CodeApplied, true},
		"swarm/ghost": {CodeReported, false},
	}
	for _, o := range res.Outcomes {
		w, ok := want[o.Action.Subject]
		if !ok {
			t.Errorf("unexpected outcome %+v", o)
			continue
		}
		if o.Code != w.code || o.Attempted != w.attempted {
			t.Errorf("%s: code %s attempted %v, want %s %v (err %v)", o.Action.Subject, o.Code, o.Attempted, w.code, w.attempted, o.Err)
		}
	}
	var be *BlockedError
	if err := res.Failures["swarm/b"]; !errors.As(err, &be) || be.By != "swarm/a" || !errors.Is(err, ErrBlocked) {
		t.Errorf("swarm/b: %v, want a BlockedError by swarm/a", err)
	}
	if errors.Is(res.Failures["swarm/a"], ErrBlocked) {
		t.Errorf("a failed call counts as blocked: %v", res.Failures["swarm/a"])
	}
	if h := res.Health["swarm/c"]; !h.Ready {
		t.Errorf("swarm/c health %+v, want ready", h)
	}
	if got := len(sw.Applied()); got != 2 {
		t.Errorf("%d actions sent, want a's and c's: %+v", got, sw.Applied())
	}
	if _, ok := res.Health["swarm/ghost"]; ok {
		t.Error("a missing object has a health")
	}
}

func TestPlanWithoutDriverIsTerminal(t *testing.T) {
	e, _ := newTestEngine(newMem(v1.DriverSwarm, 0))
	s := svc("u", 1)
	s.Driver = v1.DriverSystemd
	_, err := e.Plan(context.Background(), spec(false, []v1.Service{s}))
	if !errors.Is(err, controllers.ErrTerminal) {
		t.Fatalf("plan error %v is not terminal", err)
	}
}

// loggingDriver notes the logger its Apply calls were given.
type loggingDriver struct {
	*drivertest.Fake
	got []*slog.Logger
}

func (d *loggingDriver) Apply(ctx context.Context, a controllers.Action, t controllers.Target, l controllers.Live) error {
	d.got = append(d.got, controllers.Logger(ctx))
	return d.Fake.Apply(ctx, a, t, l)
}

// The pass's logger reaches the drivers through the context: one Engine
// serves every pass unchanged.
func TestScopeLoggerReachesDrivers(t *testing.T) {
	d := &loggingDriver{Fake: drivertest.New(v1.DriverSwarm)}
	e := &Engine{Drivers: map[v1.Driver]controllers.Driver{v1.DriverSwarm: d}, PollInterval: time.Millisecond}
	for _, pass := range []string{"p1", "p2"} {
		log := slog.New(slog.DiscardHandler).With("pass", pass)
		ctx := WithScope(context.Background(), Scope{Log: log})
		d.Service("swarm/a", 0)
		plan, err := e.Plan(ctx, spec(false, []v1.Service{svc("a", 1)}))
		if err != nil {
			t.Fatal(err)
		}
		if res := e.Apply(ctx, plan); res.Err() != nil {
			t.Fatal(res.Err())
		}
		if n := len(d.got); n == 0 {
			t.Fatalf("%s: nothing applied", pass)
		} else if d.got[n-1] != log {
			t.Errorf("%s: the driver got logger %p, want the pass's %p", pass, d.got[n-1], log)
		}
	}
}
