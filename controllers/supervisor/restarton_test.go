package supervisor

import (
	"testing"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/drivertest"
	"reconciler.dev/reconciler/controllers/restarton"
)

func TestPlanRestartOn(t *testing.T) {
	since := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	// started returns the group with process i started at starts[i]
	// (unix seconds relative to since).
	started := func(sts []string, starts ...int64) []Process {
		ps := group("usm-poller", sts...)
		for i := range ps {
			if i < len(starts) {
				ps[i].Start = since.Unix() + starts[i]
			}
		}
		return ps
	}
	rec := func(v string) restarton.Seen {
		return restarton.Seen{Record: restarton.Record{Value: v, Since: since}, Has: true}
	}
	restart := func(from, to string) controllers.Action {
		return drivertest.Service(v1.DriverSupervisor, "usm-poller", "restartOn", from, to, controllers.OpRestart)
	}
	cases := []struct {
		name  string
		value string
		seen  restarton.Seen
		procs []Process
		want  []controllers.Action
		steps []string
	}{
		{"no restartOn", "", restarton.Seen{}, started([]string{R, R, R}, -9, -9, -9), nil, nil},
		{"no record: every running one", "v1", restarton.Seen{}, started([]string{R, R, R}, -9, -9, -9),
			[]controllers.Action{restart("(none)", "v1")}, []string{"usm-poller_01", "usm-poller_02", "usm-poller_03"}},
		{"value changed: only what runs, within the count", "v2", rec("v1"), started([]string{R, E, R, R}, -9, -9, -9, -9),
			[]controllers.Action{drivertest.Replicas(v1.DriverSupervisor, "usm-poller", "3", "2", controllers.OpScaleDown),
				drivertest.Replicas(v1.DriverSupervisor, "usm-poller", "2", "3", controllers.OpScaleUp), restart("v1", "v2")}, []string{"usm-poller_01", "usm-poller_03"}},
		{"applied: those started since are done", "v2", rec("v2"), started([]string{R, R, R}, 0, 5, 9), nil, nil},
		{"cut short: those started before", "v2", rec("v2"), started([]string{R, R, R}, 1, -1, -5),
			[]controllers.Action{restart("v2 (part)", "v2")}, []string{"usm-poller_02", "usm-poller_03"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svc := poller(3)
			svc.RestartOn = tc.value
			ts := targets(services(svc))
			live := liveFrom(ts, map[string][]Process{sock: tc.procs})
			l := live[ts[0].Subject()]
			gl := l.Raw.(groupLive)
			gl.RestartOn = tc.seen
			l.Raw = gl
			live[ts[0].Subject()] = l
			got := Plan(ts, live)
			drivertest.CheckActions(t, got, tc.want)
			var steps []string
			for _, a := range got {
				if s, ok := a.Steps.(restartSteps); ok {
					for _, p := range s {
						steps = append(steps, p.Name)
					}
				}
			}
			if len(steps) != len(tc.steps) || len(steps) > 0 && steps[0] != tc.steps[0] || len(steps) > 1 && steps[len(steps)-1] != tc.steps[len(tc.steps)-1] {
				t.Errorf("steps %v, want %v", steps, tc.steps)
			}
		})
	}
}
