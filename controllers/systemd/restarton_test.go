package systemd

import (
	"testing"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/drivertest"
)

func TestPlanRestartOn(t *testing.T) {
	since := drivertest.RestartSince
	inst := map[int]string{1: "active", 2: "active", 3: "inactive", 4: "active"}
	cases := []struct {
		name    string
		value   string
		seen    string // the value recorded, "" for none
		started map[string]time.Time
		want    []controllers.Action
		steps   restartSteps
	}{
		{"no restartOn", "", "", nil, nil, nil},
		{"changed: the active instances wanted, in order", "v2", "v1", nil,
			[]controllers.Action{drivertest.Restart(v1.DriverSystemd, "usm-poller", "v1", "v2")}, restartSteps{"usm-poller@1.service", "usm-poller@2.service"}},
		{"applied", "v2", "v2", map[string]time.Time{"usm-poller@1.service": since, "usm-poller@2.service": since.Add(time.Second)}, nil, nil},
		{"cut short", "v2", "v2", map[string]time.Time{"usm-poller@1.service": since.Add(time.Second), "usm-poller@2.service": since.Add(-time.Second)},
			[]controllers.Action{drivertest.Restart(v1.DriverSystemd, "usm-poller", "v2 (part)", "v2")}, restartSteps{"usm-poller@2.service"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svc := v1.Service{Name: "usm-poller", Driver: v1.DriverSystemd, Unit: "usm-poller@.service", Replicas: v1.Ptr(int32(3)), RestartOn: tc.value}
			ts := targets(v1.HostSpec{Services: []v1.Service{svc}})
			l := controllers.Live{Exists: true, Replicas: 3, Running: 3, Raw: templateLive{Template: "usm-poller@.service", Instances: inst,
				Restart: restartSeen{Seen: drivertest.Recorded(tc.seen), Started: tc.started}}}
			// 1, 2 and 4 run; 3 does not: the plan scales as well.
			got := planService(ts[0].Base(), ts[0], l)
			var rs []controllers.Action
			var steps restartSteps
			for _, a := range got {
				if a.Field == "restartOn" {
					rs = append(rs, a)
					steps = a.Steps.(restartSteps)
				}
			}
			drivertest.CheckActions(t, rs, tc.want)
			drivertest.CheckSteps(t, steps, tc.steps)
		})
	}
}
