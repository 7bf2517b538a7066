package swarm

import (
	"testing"

	"github.com/docker/docker/api/types/swarm"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/drivertest"
)

func withRestartOn(s v1.Service, v string) v1.Service {
	s.RestartOn = v
	return s
}

func labelled(s swarm.Service, v string) swarm.Service {
	s.Spec.Labels = map[string]string{LabelRestartOn: v}
	return s
}

func TestPlanRestartOn(t *testing.T) {
	cases := []struct {
		name string
		svc  v1.Service
		live swarm.Service
		want []controllers.Action
	}{
		{"applied", withRestartOn(declare("p", 2, ""), "v1"), labelled(service("p", 2, 2, "p:1"), "v1"), nil},
		{"no label yet", withRestartOn(declare("p", 2, ""), "v1"), service("p", 2, 2, "p:1"),
			[]controllers.Action{action("p", "restartOn", "(none)", "v1", controllers.OpRestart)}},
		{"changed", withRestartOn(declare("p", 2, ""), "v2"), labelled(service("p", 2, 2, "p:1"), "v1"),
			[]controllers.Action{action("p", "restartOn", "v1", "v2", controllers.OpRestart)}},
		{"at 0 nothing runs: not restarted", withRestartOn(declare("p", 0, ""), "v2"), labelled(service("p", 0, 0, "p:1"), "v1"), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := targets(tc.svc)
			drivertest.CheckActions(t, Plan(ts, liveFromList(ts, listed(tc.live))), tc.want)
		})
	}
}

func TestSetFieldRestartOn(t *testing.T) {
	s := labelled(service("p", 2, 2, "p:1"), "v1")
	s.Spec.UpdateConfig = &swarm.UpdateConfig{Parallelism: 3, Order: swarm.UpdateOrderStartFirst}
	ts := targets(withRestartOn(declare("p", 2, ""), "v2"))
	acts := Plan(ts, liveFromList(ts, listed(s)))
	if len(acts) != 1 {
		t.Fatalf("plan %v", acts)
	}
	spec := s.Spec
	changed, err := setField(&spec, acts[0])
	if err != nil || !changed {
		t.Fatalf("changed %v err %v", changed, err)
	}
	if spec.Labels[LabelRestartOn] != "v2" || spec.TaskTemplate.ForceUpdate != 1 || spec.UpdateConfig.Parallelism != 1 ||
		spec.UpdateConfig.Order != swarm.UpdateOrderStartFirst {
		t.Errorf("spec labels %v force %d update %+v", spec.Labels, spec.TaskTemplate.ForceUpdate, spec.UpdateConfig)
	}
	if s.Spec.Labels[LabelRestartOn] != "v1" {
		t.Error("the observed spec's labels were changed in place")
	}
	if changed, _ := setField(&spec, acts[0]); changed {
		t.Error("a second write of the same value changed the spec")
	}
}
