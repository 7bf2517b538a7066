package supervisor

import (
	"testing"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/drivertest"
)

func TestPlanRestartOn(t *testing.T) {
	since := drivertest.RestartSince
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
	cases := []struct {
		name  string
		value string
		seen  string // the value recorded, "" for none
		procs []Process
		want  []controllers.Action
		steps []string
	}{
		{"no restartOn", "", "", started([]string{R, R, R}, -9, -9, -9), nil, nil},
		{"no record: every running one", "v1", "", started([]string{R, R, R}, -9, -9, -9),
			[]controllers.Action{drivertest.Restart(v1.DriverSupervisor, "usm-poller", "(none)", "v1")}, []string{"usm-poller_01", "usm-poller_02", "usm-poller_03"}},
		{"value changed: only what runs, within the count", "v2", "v1", started([]string{R, E, R, R}, -9, -9, -9, -9),
			[]controllers.Action{drivertest.Replicas(v1.DriverSupervisor, "usm-poller", "3", "2", controllers.OpScaleDown),
				drivertest.Replicas(v1.DriverSupervisor, "usm-poller", "2", "3", controllers.OpScaleUp), drivertest.Restart(v1.DriverSupervisor, "usm-poller", "v1", "v2")}, []string{"usm-poller_01", "usm-poller_03"}},
		{"applied: those started since are done", "v2", "v2", started([]string{R, R, R}, 0, 5, 9), nil, nil},
		{"cut short: those started before", "v2", "v2", started([]string{R, R, R}, 1, -1, -5),
			[]controllers.Action{drivertest.Restart(v1.DriverSupervisor, "usm-poller", "v2 (part)", "v2")}, []string{"usm-poller_02", "usm-poller_03"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svc := poller(3)
			svc.RestartOn = tc.value
			ts := targets(services(svc))
			live := liveFrom(ts, map[string][]Process{sock: tc.procs})
			l := live[ts[0].Subject()]
			gl := l.Raw.(groupLive)
			gl.RestartOn = drivertest.Recorded(tc.seen)
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
			drivertest.CheckSteps(t, steps, tc.steps)
		})
	}
}
