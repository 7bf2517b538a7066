package failure

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func restartPolicy(limit int32, window time.Duration, start ...string) *v1.FailurePolicy {
	return &v1.FailurePolicy{Restart: &v1.RestartPolicy{Limit: v1.Ptr(limit), Window: v1.NewDuration(window)}, Start: start}
}

func startPolicy(start ...string) *v1.FailurePolicy { return &v1.FailurePolicy{Start: start} }

// svc is a healthy service at 1 replica with a policy; the options change it.
func svc(name string, p *v1.FailurePolicy, opts ...func(*Input)) Input {
	in := Input{Name: name, Subject: "systemd/" + name, Policy: p, Replicas: 1, Exists: true, Ready: true}
	for _, o := range opts {
		o(&in)
	}
	return in
}

func failing(why string) func(*Input) {
	return func(in *Input) { in.Failing, in.Ready = why, false }
}

func notReady(in *Input)   { in.Ready = false }
func reportOnly(in *Input) { in.ReportOnly = true }
func maintained(in *Input) { in.Maintained, in.Replicas = true, 0 }
func replicas(n int32) func(*Input) {
	return func(in *Input) { in.Replicas = n }
}

// step is one pass: what it observed, and what the policies must do.
type step struct {
	at  time.Duration // since t0
	in  []Input
	ran []string // services whose restart the pass then carried out

	modes    map[string]controllers.FailureMode
	standbys []string // names
	fired    []string // "service action", in order
}

func runSteps(t *testing.T, steps []step) map[string]*Memory {
	t.Helper()
	mem := map[string]*Memory{}
	for i, st := range steps {
		now := t0.Add(st.at)
		pass := "pass-" + string(rune('a'+i))
		d := Decide(now, pass, st.in, mem)
		var fired []string
		for _, ev := range d.Events {
			fired = append(fired, ev.Service+" "+ev.Action)
			if ev.Pass != pass || !ev.Time.Equal(now) {
				t.Errorf("step %d: event %+v not stamped with pass %s at %s", i, ev, pass, now)
			}
		}
		for _, name := range st.ran {
			var in Input
			for _, s := range st.in {
				if s.Name == name {
					in = s
				}
			}
			ev := Restarted(now, pass, in, mem[name], nil)
			fired = append(fired, ev.Service+" "+ev.Action)
		}
		modes := d.Modes
		if len(modes) == 0 {
			modes = nil
		}
		if !reflect.DeepEqual(modes, st.modes) {
			t.Errorf("step %d (+%s): modes %v, want %v", i, st.at, modes, st.modes)
		}
		var standbys []string
		for name := range d.Standbys {
			standbys = append(standbys, name)
		}
		if len(standbys) > 1 {
			t.Fatalf("tests use one standby at most")
		}
		if !reflect.DeepEqual(standbys, st.standbys) {
			t.Errorf("step %d (+%s): standbys %v, want %v", i, st.at, d.Standbys, st.standbys)
		}
		if !reflect.DeepEqual(fired, st.fired) {
			t.Errorf("step %d (+%s): fired %q, want %q", i, st.at, fired, st.fired)
		}
	}
	return mem
}

type (
	modes = map[string]controllers.FailureMode
)

const (
	restart = controllers.FailureRestart
	gaveUp  = controllers.FailureGaveUp
	report  = controllers.FailureReport
)

func TestDecide(t *testing.T) {
	p3 := restartPolicy(3, time.Minute)
	bad := failing("x.service failed")
	cases := []struct {
		name  string
		steps []step
	}{
		{"healthy: nothing fires, nothing is remembered", []step{
			{in: []Input{svc("x", p3)}},
			{at: time.Second, in: []Input{svc("x", nil)}},
		}},
		{"limit per window: three restarts, then give up until the oldest leaves the window", []step{
			{in: []Input{svc("x", p3, bad)}, ran: []string{"x"}, modes: modes{"x": restart}, fired: []string{"x failing", "x restart"}},
			{at: 2 * time.Second, in: []Input{svc("x", p3, bad)}, ran: []string{"x"}, modes: modes{"x": restart}, fired: []string{"x restart"}},
			{at: 4 * time.Second, in: []Input{svc("x", p3, bad)}, ran: []string{"x"}, modes: modes{"x": restart}, fired: []string{"x restart"}},
			{at: 6 * time.Second, in: []Input{svc("x", p3, bad)}, modes: modes{"x": gaveUp}, fired: []string{"x gave-up"}},
			// Given up: said once, held on every pass while the window is full.
			{at: 30 * time.Second, in: []Input{svc("x", p3, bad)}, modes: modes{"x": gaveUp}},
			{at: 59 * time.Second, in: []Input{svc("x", p3, bad)}, modes: modes{"x": gaveUp}},
			// The first restart left the window: one more is allowed.
			{at: 60 * time.Second, in: []Input{svc("x", p3, bad)}, ran: []string{"x"}, modes: modes{"x": restart}, fired: []string{"x restart"}},
			{at: 61 * time.Second, in: []Input{svc("x", p3, bad)}, modes: modes{"x": gaveUp}, fired: []string{"x gave-up"}},
		}},
		{"a restart not carried out (blocked) is not counted", []step{
			{in: []Input{svc("x", restartPolicy(1, time.Hour), bad)}, modes: modes{"x": restart}, fired: []string{"x failing"}},
			{at: time.Second, in: []Input{svc("x", restartPolicy(1, time.Hour), bad)}, ran: []string{"x"}, modes: modes{"x": restart}, fired: []string{"x restart"}},
			{at: 2 * time.Second, in: []Input{svc("x", restartPolicy(1, time.Hour), bad)}, modes: modes{"x": gaveUp}, fired: []string{"x gave-up"}},
		}},
		{"recovery clears the failure but not the restarts in the window", []step{
			{in: []Input{svc("x", restartPolicy(2, time.Minute), bad)}, ran: []string{"x"}, modes: modes{"x": restart}, fired: []string{"x failing", "x restart"}},
			// Not failing, not ready yet (starting): still remembered failing.
			{at: time.Second, in: []Input{svc("x", restartPolicy(2, time.Minute), notReady)}, modes: modes{"x": report}},
			{at: 2 * time.Second, in: []Input{svc("x", restartPolicy(2, time.Minute))}, fired: []string{"x recovered"}},
			// Fails again within the window: one restart left, not two.
			{at: 3 * time.Second, in: []Input{svc("x", restartPolicy(2, time.Minute), bad)}, ran: []string{"x"}, modes: modes{"x": restart}, fired: []string{"x failing", "x restart"}},
			{at: 4 * time.Second, in: []Input{svc("x", restartPolicy(2, time.Minute), bad)}, modes: modes{"x": gaveUp}, fired: []string{"x gave-up"}},
		}},
		{"report (the default): failing is said once and planned as usual", []step{
			{in: []Input{svc("x", nil, bad)}, modes: modes{"x": report}, fired: []string{"x failing"}},
			{at: time.Second, in: []Input{svc("x", nil, bad)}, modes: modes{"x": report}},
			{at: 2 * time.Second, in: []Input{svc("x", nil)}, fired: []string{"x recovered"}},
		}},
		{"standby desired while failing, back to its declared count when it clears", []step{
			{in: []Input{svc("x", startPolicy("standby")), svc("standby", nil, replicas(0))}},
			{at: time.Second, in: []Input{svc("x", startPolicy("standby"), bad), svc("standby", nil, replicas(0))},
				modes: modes{"x": report}, standbys: []string{"standby"}, fired: []string{"x failing", "x start"}},
			// The standby now runs (the engine raised it); x still failing.
			{at: 2 * time.Second, in: []Input{svc("x", startPolicy("standby"), bad), svc("standby", nil)},
				modes: modes{"x": report}, standbys: []string{"standby"}},
			// x runs but is not ready yet: the standby stays.
			{at: 3 * time.Second, in: []Input{svc("x", startPolicy("standby"), notReady), svc("standby", nil)},
				modes: modes{"x": report}, standbys: []string{"standby"}},
			{at: 4 * time.Second, in: []Input{svc("x", startPolicy("standby")), svc("standby", nil)},
				fired: []string{"x recovered", "x stop"}},
		}},
		{"restart and standby together; giving up keeps the standby", []step{
			{in: []Input{svc("x", restartPolicy(1, time.Minute, "standby"), bad), svc("standby", nil, replicas(0))}, ran: []string{"x"},
				modes: modes{"x": restart}, standbys: []string{"standby"}, fired: []string{"x failing", "x start", "x restart"}},
			{at: time.Second, in: []Input{svc("x", restartPolicy(1, time.Minute, "standby"), bad), svc("standby", nil)},
				modes: modes{"x": gaveUp}, standbys: []string{"standby"}, fired: []string{"x gave-up"}},
		}},
		{"never fights the declared state: report-only drift is never restarted", []step{
			{in: []Input{svc("x", p3, bad, reportOnly)}, modes: modes{"x": report}, fired: []string{"x failing"}},
			{at: time.Second, in: []Input{svc("x", p3, bad, reportOnly)}, modes: modes{"x": report}},
		}},
		{"never fights the declared state: a service wanted at 0 is not failing", []step{
			{in: []Input{svc("x", p3, bad, replicas(0))}},
			// Failing, then the operator commits replicas: 0: cleared, no restart.
			{at: time.Second, in: []Input{svc("x", p3, bad)}, ran: []string{"x"}, modes: modes{"x": restart}, fired: []string{"x failing", "x restart"}},
			{at: 2 * time.Second, in: []Input{svc("x", p3, bad, replicas(0))}, fired: []string{"x recovered"}},
		}},
		{"never fights the declared state: a missing service is not failing", []step{
			{in: []Input{svc("x", p3, bad, func(in *Input) { in.Exists = false })}},
		}},
		{"maintenance: a failure seen during it starts no standby's replicas (the engine keeps them at 0)", []step{
			{in: []Input{svc("x", startPolicy("standby"), bad), svc("standby", nil, maintained)},
				modes: modes{"x": report}, standbys: []string{"standby"}, fired: []string{"x failing", "x start"}},
		}},
		{"a start naming an undeclared service or itself does nothing", []step{
			{in: []Input{svc("x", startPolicy("ghost", "x"), bad)}, modes: modes{"x": report}, fired: []string{"x failing"}},
		}},
		{"a policy gone from git stops holding, and its window is forgotten", []step{
			{in: []Input{svc("x", restartPolicy(1, time.Hour), bad)}, ran: []string{"x"}, modes: modes{"x": restart}, fired: []string{"x failing", "x restart"}},
			{at: time.Second, in: []Input{svc("x", nil, bad)}, modes: modes{"x": report}},
			{at: 2 * time.Second, in: []Input{svc("x", restartPolicy(1, time.Hour), bad)}, modes: modes{"x": restart}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runSteps(t, tc.steps) })
	}
}

func TestDecideForgetsWhatIsNoLongerDeclared(t *testing.T) {
	mem := map[string]*Memory{}
	bad := failing("down")
	Decide(t0, "p1", []Input{svc("x", restartPolicy(3, time.Minute), bad), svc("y", nil, bad)}, mem)
	if len(mem) != 2 {
		t.Fatalf("memory %v", mem)
	}
	Decide(t0.Add(time.Second), "p2", []Input{svc("y", nil)}, mem)
	if len(mem) != 0 {
		t.Errorf("memory after x was removed from git and y recovered (report only): %v", mem)
	}
}

func TestGaveUpSaysWhenAndRestartedCountsFailures(t *testing.T) {
	mem := map[string]*Memory{}
	x := svc("x", restartPolicy(2, time.Minute), failing("x.service failed"))
	Decide(t0, "p1", []Input{x}, mem)
	ev := Restarted(t0, "p1", x, mem["x"], nil)
	if ev.Action != ActRestart || !strings.Contains(ev.Message, "1 of 2 within 1m0s") || !strings.Contains(ev.Message, "x.service failed") {
		t.Errorf("restart event %+v", ev)
	}
	ev = Restarted(t0.Add(10*time.Second), "p2", x, mem["x"], errors.New("job failed"))
	if !strings.Contains(ev.Message, "restart 2 of 2 within 1m0s failed: job failed") {
		t.Errorf("failed restart event %+v", ev)
	}
	d := Decide(t0.Add(20*time.Second), "p3", []Input{x}, mem)
	if d.Modes["x"] != gaveUp || len(d.Events) != 1 {
		t.Fatalf("decision %+v", d)
	}
	if m := mem["x"]; !m.RetryAfter.Equal(t0.Add(time.Minute)) || !m.GaveUp.Equal(t0.Add(20*time.Second)) {
		t.Errorf("gave up %s, retry after %s", m.GaveUp, m.RetryAfter)
	}
	if !strings.Contains(d.Events[0].Message, "2026-11-22T12:01:00Z") {
		t.Errorf("gave-up message %q does not say until when", d.Events[0].Message)
	}
}

func TestPoliciesStandbysAndMemoryRoundTrip(t *testing.T) {
	now := t0
	p := New()
	p.Now = func() time.Time { return now }
	in := []Input{svc("x", restartPolicy(3, time.Minute, "standby"), failing("down")), svc("standby", nil, replicas(0))}
	if got := p.Standbys(); len(got) != 0 {
		t.Fatalf("standbys before any failure: %v", got)
	}
	p.Decide("p1", in)
	p.Restarted("p1", "x", nil)
	if got := p.Standbys(); got["standby"] != "x is failing" || len(got) != 1 {
		t.Errorf("standbys: %v", got)
	}
	if !p.Dirty() || p.Dirty() {
		t.Errorf("Dirty should be true once after changes")
	}
	// An agent restart: the memory comes back from the state file.
	q := New()
	q.Now = func() time.Time { return now }
	q.Restore(p.Memory())
	now = now.Add(time.Second)
	q.Restarted("p2", "x", nil)
	now = now.Add(time.Second)
	q.Restarted("p3", "x", nil)
	now = now.Add(time.Second)
	d := q.Decide("p4", in)
	if d.Modes["x"] != gaveUp {
		t.Errorf("after 3 restarts, one before the agent restarted: mode %q, want gave-up", d.Modes["x"])
	}
	sts := q.Statuses()
	if len(sts) != 1 || sts[0].Service != "x" || sts[0].GaveUp == nil || len(sts[0].Restarts) != 3 ||
		sts[0].Policy != "restart 3 per 1m0s, start standby" || !sts[0].Failing || len(sts[0].Standby) != 1 {
		t.Errorf("statuses: %+v", sts)
	}
	if last := sts[0].Fired[len(sts[0].Fired)-1]; last.Action != ActGaveUp || last.Pass != "p4" {
		t.Errorf("last fired %+v", last)
	}
}
