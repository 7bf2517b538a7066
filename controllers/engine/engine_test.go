package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/drivertest"
)

// memDriver is an in-memory stand-in for a driver, used only to test the
// engine's own logic: ordering, waiting, blocking and failure collection.
// Replicas change at once; running tasks follow after `lag` observations.
type memDriver struct {
	name v1.Driver
	lag  int

	mu      sync.Mutex
	want    map[string]int32 // what Apply set
	running map[string]int32
	seen    map[string]int // observations since the last change
	units   map[string]bool
	absent  map[string]bool
	failOn  map[string]error
	// convergedBy, when set, is every service's Live.ConvergedBy: the
	// driver of a swarm manager that is not the leader.
	convergedBy string
}

func newMem(name v1.Driver, lag int) *memDriver {
	return &memDriver{name: name, lag: lag, want: map[string]int32{}, running: map[string]int32{},
		seen: map[string]int{}, units: map[string]bool{}, absent: map[string]bool{}, failOn: map[string]error{}}
}

func (m *memDriver) Name() v1.Driver { return m.name }

func (m *memDriver) Observe(_ context.Context, ts []controllers.Target) (map[string]controllers.Live, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]controllers.Live{}
	for _, t := range ts {
		s := t.Subject()
		if m.absent[s] {
			out[s] = controllers.Live{}
			continue
		}
		if t.Kind == controllers.KindUnit {
			on := m.units[s]
			out[s] = controllers.Live{Exists: true, Enabled: &on, Active: &on}
			continue
		}
		m.seen[s]++
		if m.seen[s] > m.lag {
			m.running[s] = m.want[s]
		}
		out[s] = controllers.Live{Exists: true, Replicas: m.want[s], Running: m.running[s], ConvergedBy: m.convergedBy}
	}
	return out, nil
}

func (m *memDriver) Plan(ts []controllers.Target, live map[string]controllers.Live) []controllers.Action {
	var out []controllers.Action
	for _, t := range ts {
		l := live[t.Subject()]
		a := controllers.Action{Subject: t.Subject(), Kind: t.Kind, Name: t.Name, Driver: m.name}
		switch {
		case !l.Exists:
			a.Op, a.Field = controllers.OpMissing, "replicas"
			out = append(out, a)
		case t.Kind == controllers.KindUnit:
			if t.Active != nil && *t.Active != *l.Active {
				a.Field, a.Op = "active", controllers.OpStart
				if !*t.Active {
					a.Op = controllers.OpStop
				}
				out = append(out, a)
			}
		case l.Replicas != t.Replicas:
			a.Field, a.From, a.To, a.Op = "replicas", fmt.Sprint(l.Replicas), fmt.Sprint(t.Replicas), controllers.OpScaleUp
			if t.Replicas < l.Replicas {
				a.Op = controllers.OpScaleDown
			}
			out = append(out, a)
		}
	}
	return out
}

func (m *memDriver) Apply(_ context.Context, a controllers.Action, t controllers.Target, _ controllers.Live) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failOn[a.Subject]; err != nil {
		return fmt.Errorf("%s: %w", a.Subject, err)
	}
	if t.Kind == controllers.KindUnit {
		m.units[a.Subject] = a.Op == controllers.OpStart
		return nil
	}
	n, _ := strconv.Atoi(a.To)
	m.want[a.Subject] = int32(n)
	m.seen[a.Subject] = 0
	return nil
}

func (m *memDriver) Health(t controllers.Target, l controllers.Live) controllers.Health {
	if !l.Exists {
		return controllers.Health{Reason: "missing"}
	}
	if t.Kind == controllers.KindUnit {
		ok := t.Active == nil || *t.Active == *l.Active
		return controllers.Health{Ready: ok, Drained: ok}
	}
	return controllers.Health{
		Ready:   l.Replicas == t.Replicas && l.Running == t.Replicas,
		Drained: l.Running <= t.Replicas,
		Reason:  fmt.Sprintf("%d/%d running", l.Running, t.Replicas),
	}
}

func (m *memDriver) set(subject string, n int32) {
	m.want[subject], m.running[subject] = n, n
}

// recorder keeps the engine's events in order.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) add(e Event) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() }

// steps lists "type subject" of the events of the given types.
func (r *recorder) steps(types ...string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		for _, t := range types {
			if e.Type == t {
				out = append(out, e.Type+" "+e.Subject)
			}
		}
	}
	return out
}

// testEngine runs every Plan and Apply in a pass scope whose progress the
// recorder keeps, with the failure policies set on it.
type testEngine struct {
	*Engine
	rec      *recorder
	Failures Failures
}

func (e *testEngine) scope(ctx context.Context) context.Context {
	return WithScope(ctx, Scope{Progress: e.rec.add, Failures: e.Failures})
}

func (e *testEngine) Plan(ctx context.Context, spec *v1.HostSpec) (*Plan, error) {
	return e.Engine.Plan(e.scope(ctx), spec)
}

func (e *testEngine) Apply(ctx context.Context, plan *Plan) *Result {
	return e.Engine.Apply(e.scope(ctx), plan)
}

// planApply plans spec and applies the plan, as one pass does; a plan
// error fails the test.
func (e *testEngine) planApply(t *testing.T, spec *v1.HostSpec) (*Plan, *Result) {
	t.Helper()
	plan, err := e.Plan(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return plan, e.Apply(context.Background(), plan)
}

// converge plans spec and applies the plan, as planApply does, and fails t
// unless the pass converged without an error.
func (e *testEngine) converge(t *testing.T, spec *v1.HostSpec) {
	t.Helper()
	if _, res := e.planApply(t, spec); res.Err() != nil || !res.Converged() {
		t.Fatalf("not converged: %v", res.Err())
	}
}

// applyOnly plans spec, fails t unless the plan is one action, on subject,
// and applies it: the tests of what an earlier pass left behind start
// from a host where all else is done.
func (e *testEngine) applyOnly(t *testing.T, spec *v1.HostSpec, subject string) {
	t.Helper()
	plan, err := e.Plan(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Actions) != 1 || plan.Actions[0].Subject != subject {
		t.Fatalf("plan %v, want only %s", plan.Actions, subject)
	}
	if res := e.Apply(context.Background(), plan); res.Err() != nil {
		t.Fatal(res.Err())
	}
}

func newTestEngine(drivers ...controllers.Driver) (*testEngine, *recorder) {
	rec := &recorder{}
	e := &Engine{Drivers: map[v1.Driver]controllers.Driver{}, PollInterval: time.Millisecond}
	for _, d := range drivers {
		e.Drivers[d.Name()] = d
	}
	return &testEngine{Engine: e, rec: rec}, rec
}

func index(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func TestApplyEnterMaintenanceDrainsInOrder(t *testing.T) {
	sw := newMem(v1.DriverSwarm, 3)
	sd := newMem(v1.DriverSystemd, 0)
	for _, s := range []string{"swarm/broker", "swarm/proxy", "swarm/bl"} {
		sw.set(s, 1)
	}
	sd.units["unit/hk.timer"] = true
	e, rec := newTestEngine(sw, sd)
	e.converge(t, spec(true, factoryProxy(), housekeeping))
	steps := rec.steps("applied", "drained")
	// The timer is stopped before any service is touched; the broker is
	// scaled down only after both its dependents drained.
	hk := index(steps, "applied unit/hk.timer")
	for _, s := range []string{"applied swarm/proxy", "applied swarm/bl", "applied swarm/broker"} {
		if i := index(steps, s); i < 0 || i < hk {
			t.Errorf("%s at %d, before the timer stop at %d: %v", s, i, hk, steps)
		}
	}
	broker := index(steps, "applied swarm/broker")
	for _, s := range []string{"drained swarm/proxy", "drained swarm/bl"} {
		if i := index(steps, s); i < 0 || i > broker {
			t.Errorf("%s at %d, after the broker was scaled down at %d: %v", s, i, broker, steps)
		}
	}
}

// On a swarm manager that is not the leader, entering maintenance stops the
// node's own timer, and only reports the cluster's services (mode observed,
// with who converges them): none is written, none waited for.
func TestApplyObservedServicesAreNotWritten(t *testing.T) {
	sw := newMem(v1.DriverSwarm, 1<<30) // a wait for a drain would never end
	sw.convergedBy = "the leader's agent on node-1"
	sd := newMem(v1.DriverSystemd, 0)
	for _, s := range []string{"swarm/broker", "swarm/proxy", "swarm/bl"} {
		sw.set(s, 1)
	}
	sd.units["unit/hk.timer"] = true
	e, _ := newTestEngine(sw, sd)
	plan, err := e.Plan(context.Background(), spec(true, factoryProxy(), housekeeping))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range plan.Actions {
		if a.Kind == controllers.KindService && (a.Mode != controllers.Observed || !a.Reportable() ||
			a.Note != "observed; converged by the leader's agent on node-1") {
			t.Errorf("%s: mode %s, note %q; want observed, naming the leader", a, a.Mode, a.Note)
		}
	}
	res := e.Apply(context.Background(), plan)
	if err := res.Err(); err != nil || !res.Converged() {
		t.Fatalf("not converged: %v", err)
	}
	for _, s := range []string{"swarm/broker", "swarm/proxy", "swarm/bl"} {
		if sw.want[s] != 1 {
			t.Errorf("%s written by a follower: %d", s, sw.want[s])
		}
	}
	if sd.units["unit/hk.timer"] {
		t.Error("the node's own timer was not stopped")
	}
	if len(res.Reported) != 3 {
		t.Errorf("reported %v, want the 3 services", res.Reported)
	}
}

func TestApplyLeaveMaintenanceWaitsForReadyAndStartsUnitsLast(t *testing.T) {
	sw := newMem(v1.DriverSwarm, 3)
	sd := newMem(v1.DriverSystemd, 0)
	e, rec := newTestEngine(sw, sd)
	e.converge(t, spec(false, factoryProxy(), housekeeping))
	steps := rec.steps("applied", "ready")
	brokerReady := index(steps, "ready swarm/broker")
	for _, s := range []string{"applied swarm/proxy", "applied swarm/bl"} {
		if i := index(steps, s); i < brokerReady {
			t.Errorf("%s at %d before the broker was ready at %d: %v", s, i, brokerReady, steps)
		}
	}
	hk := index(steps, "applied unit/hk.timer")
	for _, s := range []string{"ready swarm/proxy", "ready swarm/bl"} {
		if i := index(steps, s); i < 0 || i > hk {
			t.Errorf("%s at %d, after the timer started at %d: %v", s, i, hk, steps)
		}
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) string { return drivertest.ClosedAddr(t) }

func TestApplyFailedProbeBlocksDependents(t *testing.T) {
	sw := newMem(v1.DriverSwarm, 0)
	sd := newMem(v1.DriverSystemd, 0)
	services := factoryProxy()
	services[0].Ready = &v1.Probe{TCP: closedPort(t), Timeout: v1.NewDuration(300 * time.Millisecond), Interval: v1.NewDuration(50 * time.Millisecond)}
	services = append(services, svc("independent", 1))
	e, _ := newTestEngine(sw, sd)
	_, res := e.planApply(t, spec(false, services, housekeeping))
	if res.Converged() {
		t.Fatal("converged although the broker's probe never passes")
	}
	msg := res.Err().Error()
	for _, want := range []string{
		"swarm/broker: ready probe failed: tcp " + services[0].Ready.TCP + " did not pass within 300ms",
		"swarm/proxy: not changed: its dependency broker is not ready",
		"swarm/bl: not changed: its dependency broker is not ready",
		"unit/hk.timer: not changed: service broker did not come up",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if got := sw.want["swarm/proxy"]; got != 0 {
		t.Errorf("proxy was scaled to %d although its dependency failed", got)
	}
	if got := sw.want["swarm/independent"]; got != 1 {
		t.Errorf("an independent service was held back by another's failure (replicas %d)", got)
	}
	if sd.units["unit/hk.timer"] {
		t.Error("the maintenance timer started although a service did not come up")
	}
}

func TestApplyCollectsEveryFailure(t *testing.T) {
	sw := newMem(v1.DriverSwarm, 0)
	sw.failOn["swarm/a"] = errors.New("daemon says no")
	sw.failOn["swarm/b"] = errors.New("also no")
	e, _ := newTestEngine(sw)
	_, res := e.planApply(t, spec(false, []v1.Service{svc("a", 1), svc("b", 1), svc("c", 1)}))
	msg := res.Err().Error()
	if !strings.Contains(msg, "swarm/a: daemon says no") || !strings.Contains(msg, "swarm/b: also no") {
		t.Errorf("one failure hid another:\n%s", msg)
	}
	if sw.want["swarm/c"] != 1 {
		t.Error("a healthy service in the same stage was not applied")
	}
}

func TestApplyReportOnlyAndMissing(t *testing.T) {
	sw := newMem(v1.DriverSwarm, 0)
	sw.set("swarm/watched", 3)
	sw.absent["swarm/ghost"] = true
	services := []v1.Service{
		{Name: "watched", Replicas: v1.Ptr[int32](1), Drift: v1.DriftReport},
		svc("ghost", 1),
		svc("fine", 2),
	}
	e, _ := newTestEngine(sw)
	plan, err := e.Plan(context.Background(), spec(false, services))
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]string{}
	for _, a := range plan.Actions {
		modes[a.Subject] = string(a.Op) + "/" + string(a.Mode)
	}
	want := map[string]string{"swarm/watched": "scale-down/report-only", "swarm/ghost": "missing/enforce", "swarm/fine": "scale-up/enforce"}
	if fmt.Sprint(modes) != fmt.Sprint(want) {
		t.Errorf("plan modes %v, want %v", modes, want)
	}
	res := e.Apply(context.Background(), plan)
	if sw.want["swarm/watched"] != 3 {
		t.Error("a report-only service was changed")
	}
	if sw.want["swarm/fine"] != 2 {
		t.Error("a missing service stopped the rest of the plan")
	}
	if res.Converged() {
		t.Error("converged with a declared service missing")
	}
	if len(res.Reported) != 2 {
		t.Errorf("reported %v", res.Reported)
	}
}

func TestApplyDrainTimeoutBlocksDependencies(t *testing.T) {
	sw := newMem(v1.DriverSwarm, 1<<30) // tasks never stop
	for _, s := range []string{"swarm/broker", "swarm/proxy", "swarm/bl"} {
		sw.set(s, 1)
	}
	services := factoryProxy()
	for i := range services {
		services[i].StopTimeout = v1.NewDuration(time.Millisecond)
	}
	e, _ := newTestEngine(sw)
	e.DrainSlack = 100 * time.Millisecond
	_, res := e.planApply(t, spec(true, services))
	if got := sw.want["swarm/broker"]; got != 1 {
		t.Errorf("broker scaled to %d while its dependents had not drained", got)
	}
	if msg := res.Err().Error(); !strings.Contains(msg, "swarm/broker: not changed: its dependent") {
		t.Errorf("error: %s", msg)
	}
}

// TestApplyWaitsForDrainsStartedByAnEarlierPass: an agent killed mid-flip
// left the dependents scaled to 0 but still stopping. The next pass plans
// only the broker, and must still not touch it until they drained.
func TestApplyWaitsForDrainsStartedByAnEarlierPass(t *testing.T) {
	sw := newMem(v1.DriverSwarm, 5) // tasks stop 5 observations after the update
	sw.set("swarm/broker", 1)
	for _, s := range []string{"swarm/proxy", "swarm/bl"} {
		sw.want[s], sw.running[s] = 0, 1 // scaled down, still running
	}
	e, rec := newTestEngine(sw)
	e.applyOnly(t, spec(true, factoryProxy()), "swarm/broker")
	steps := rec.steps("applied", "drained")
	broker := index(steps, "applied swarm/broker")
	for _, s := range []string{"drained swarm/proxy", "drained swarm/bl"} {
		if i := index(steps, s); i < 0 || i > broker {
			t.Errorf("%s at %d, after the broker was scaled down at %d: %v", s, i, broker, steps)
		}
	}
}

// TestApplyUnitsWaitForServicesStartedByAnEarlierPass: leaving maintenance,
// the services were scaled up by a killed pass and are still starting; the
// timer must not come back before they run.
func TestApplyUnitsWaitForServicesStartedByAnEarlierPass(t *testing.T) {
	sw := newMem(v1.DriverSwarm, 5)
	sd := newMem(v1.DriverSystemd, 0)
	for _, s := range []string{"swarm/broker", "swarm/proxy", "swarm/bl"} {
		sw.want[s], sw.running[s] = 1, 0 // scaled up, not running yet
	}
	e, rec := newTestEngine(sw, sd)
	e.applyOnly(t, spec(false, factoryProxy(), housekeeping), "unit/hk.timer")
	steps := rec.steps("applied", "ready")
	timer := index(steps, "applied unit/hk.timer")
	for _, s := range []string{"ready swarm/broker", "ready swarm/proxy", "ready swarm/bl"} {
		if i := index(steps, s); i < 0 || i > timer {
			t.Errorf("%s at %d, after the timer started at %d: %v", s, i, timer, steps)
		}
	}
}
