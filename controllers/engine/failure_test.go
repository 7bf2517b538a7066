package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/failure"
)

// failingDriver is memDriver whose services listed in failing are observed
// failing; it records the restarts it is asked for, which change nothing.
// memDriver's lock guards its fields too.
type failingDriver struct {
	*memDriver
	failing  map[string]string
	restarts []string
}

func (f *failingDriver) Observe(ctx context.Context, ts []controllers.Target) (map[string]controllers.Live, error) {
	live, err := f.memDriver.Observe(ctx, ts)
	f.mu.Lock()
	defer f.mu.Unlock()
	for s, why := range f.failing {
		if l, ok := live[s]; ok {
			l.Failing, l.Running = why, 0
			live[s] = l
		}
	}
	return live, err
}

func (f *failingDriver) Apply(ctx context.Context, a controllers.Action, t controllers.Target, l controllers.Live) error {
	if a.Op == controllers.OpRestart && a.Field == controllers.FieldFailing {
		f.mu.Lock()
		f.restarts = append(f.restarts, a.Subject)
		f.mu.Unlock()
		return nil
	}
	return f.memDriver.Apply(ctx, a, t, l)
}

// onePass is the policies as a pass of the agent hands them to the engine.
type onePass struct{ *failure.Policies }

func (p onePass) Decide(in []failure.Input) failure.Decision { return p.Policies.Decide("pass", in) }

// failingSetup: x should run 1 replica and runs none, failing; standby is
// declared at 0.
func failingSetup(policy *v1.FailurePolicy, drift v1.DriftMode) (*failingDriver, *v1.HostSpec) {
	d := &failingDriver{memDriver: newMem(v1.DriverSwarm, 0), failing: map[string]string{"swarm/x": "2 tasks failed"}}
	d.want["swarm/x"] = 1 // the spec asks for 1, nothing runs
	x := svc("x", 1)
	x.OnFailure, x.Drift = policy, drift
	return d, spec(false, []v1.Service{x, svc("standby", 0)})
}

func actionsOf(p *Plan) []string {
	var out []string
	for _, a := range p.Actions {
		out = append(out, a.Subject+" "+a.Field+" "+string(a.Op)+" "+string(a.Mode))
	}
	return out
}

func TestPlanFailurePolicyRestartsAndStartsStandby(t *testing.T) {
	pol := &v1.FailurePolicy{Restart: &v1.RestartPolicy{Limit: v1.Ptr[int32](1), Window: v1.NewDuration(time.Hour)}, Start: []string{"standby"}}
	d, sp := failingSetup(pol, "")
	e, rec := newTestEngine(d)
	e.ReadyTimeout = 30 * time.Second
	policies := failure.New()
	e.Failures = onePass{policies}

	plan, err := e.Plan(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"swarm/standby replicas scale-up enforce", "swarm/x failing restart enforce"}
	if got := actionsOf(plan); strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Fatalf("actions %q, want %q", got, want)
	}
	for _, a := range plan.Actions {
		if a.Subject == "swarm/standby" && a.Note != "standby: x is failing" {
			t.Errorf("standby note %q", a.Note)
		}
	}
	start := time.Now()
	res := e.Apply(context.Background(), plan)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the pass waited %s for a service it saw failing", took)
	}
	if err := res.Failures["swarm/x"]; err == nil || !strings.Contains(err.Error(), "swarm/x: failing: 2 tasks failed") {
		t.Errorf("x's failure: %v", err)
	}
	if _, failed := res.Failures["swarm/standby"]; failed || d.want["swarm/standby"] != 1 {
		t.Errorf("standby not brought up: %v, want %d", res.Failures, d.want["swarm/standby"])
	}
	if strings.Join(d.restarts, ",") != "swarm/x" {
		t.Errorf("restarts %v", d.restarts)
	}
	if len(rec.steps("failed")) == 0 {
		t.Errorf("no failed event")
	}

	// The pass carried the restart out: the limit (1 per hour) is reached.
	policies.Restarted("p1", "x", nil)
	plan, err = e.Plan(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	if got := actionsOf(plan); len(got) != 0 {
		t.Errorf("after giving up: actions %q, want none (the standby runs already)", got)
	}
	for _, tg := range plan.Targets {
		if tg.Name == "x" && tg.Failure != controllers.FailureGaveUp {
			t.Errorf("x's failure mode %q", tg.Failure)
		}
		if tg.Name == "standby" && tg.Replicas != 1 {
			t.Errorf("standby wanted at %d while x fails", tg.Replicas)
		}
	}

	// x recovers: the standby goes back to its declared 0.
	d.mu.Lock()
	delete(d.failing, "swarm/x")
	d.mu.Unlock()
	d.set("swarm/x", 1)
	plan, err = e.Plan(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	if got := actionsOf(plan); strings.Join(got, "; ") != "swarm/standby replicas scale-down enforce" {
		t.Errorf("after recovery: actions %q", got)
	}
}

func TestPlanFailurePolicyNeverRestartsReportOnly(t *testing.T) {
	pol := &v1.FailurePolicy{Restart: &v1.RestartPolicy{Limit: v1.Ptr[int32](3), Window: v1.NewDuration(time.Minute)}}
	d, sp := failingSetup(pol, v1.DriftReport)
	e, _ := newTestEngine(d)
	e.Failures = onePass{failure.New()}
	plan, err := e.Plan(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	if got := actionsOf(plan); len(got) != 0 {
		t.Errorf("actions %q, want none: x's drift mode is report", got)
	}
	res := e.Apply(context.Background(), plan)
	if len(d.restarts) != 0 || res.Failures["swarm/x"] != nil {
		t.Errorf("restarts %v, failures %v", d.restarts, res.Failures)
	}
}

func TestPlanWithoutFailuresIsAsBefore(t *testing.T) {
	pol := &v1.FailurePolicy{Restart: &v1.RestartPolicy{Limit: v1.Ptr[int32](3), Window: v1.NewDuration(time.Minute)}, Start: []string{"standby"}}
	d, sp := failingSetup(pol, "")
	e, _ := newTestEngine(d) // no Failures: `reconciler plan` and `apply`
	plan, err := e.Plan(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	if got := actionsOf(plan); len(got) != 0 {
		t.Errorf("actions %q, want none", got)
	}
	for _, tg := range plan.Targets {
		if tg.Failure != "" {
			t.Errorf("%s: failure mode %q without policies", tg.Name, tg.Failure)
		}
	}
}

// countingSizer sizes every autoscaled service at 2 and counts its calls.
type countingSizer struct{ calls int }

func (c *countingSizer) Size(context.Context, *v1.Service, controllers.Live) (int32, string) {
	c.calls++
	return 2, "sized"
}

// A standby raised after observing re-works the targets out; an autoscaled
// service is still sized once per plan (sizing has memory and events).
func TestPlanSizesOnceWhenStandbysChange(t *testing.T) {
	d, sp := failingSetup(&v1.FailurePolicy{Start: []string{"standby"}}, "")
	sp.Services = append(sp.Services, v1.Service{Name: "scaled", Driver: v1.DriverSwarm, Replicas: v1.Ptr[int32](1),
		Autoscale: &v1.Autoscale{AMQP: &v1.AMQPQueue{URLFile: "/f", Queue: "q"}, Min: v1.Ptr[int32](1), Max: v1.Ptr[int32](3)}})
	v1.SetDefaults(sp)
	e, _ := newTestEngine(d)
	sizer := &countingSizer{}
	e.Sizer = sizer
	e.Failures = onePass{failure.New()}
	plan, err := e.Plan(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	if sizer.calls != 1 {
		t.Errorf("sized %d times in one plan", sizer.calls)
	}
	for _, tg := range plan.Targets {
		if (tg.Name == "scaled" && tg.Replicas != 2) || (tg.Name == "standby" && tg.Replicas != 1) {
			t.Errorf("%s wanted at %d", tg.Name, tg.Replicas)
		}
	}
}
