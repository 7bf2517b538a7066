package swarm

import (
	"testing"

	"github.com/docker/docker/api/types/swarm"
)

// What Apply writes is what Plan put in the action's Steps: the count and
// the image, not a number parsed back from the text the plan shows.
func TestApplyWritesThePlannedSteps(t *testing.T) {
	svc := service("factory-proxy", 1, 1, "local/proxy:1")
	ts := targets(declare("factory-proxy", 3, "local/proxy:2"))
	plan := Plan(ts, liveFromList(ts, []swarm.Service{svc}))
	if len(plan) != 2 {
		t.Fatalf("plan %v, want replicas and image", plan)
	}
	spec := svc.Spec
	for _, a := range plan {
		a.To = "shown, not read" // Apply must not parse the display value
		if changed, err := setField(&spec, a); err != nil || !changed {
			t.Fatalf("%s: changed %v, err %v", a, changed, err)
		}
	}
	if got := *spec.Mode.Replicated.Replicas; got != 3 {
		t.Errorf("replicas %d, want 3", got)
	}
	if got := spec.TaskTemplate.ContainerSpec.Image; got != "local/proxy:2" {
		t.Errorf("image %q, want local/proxy:2", got)
	}
	a := plan[0]
	a.Steps = nil
	if _, err := setField(&spec, a); err == nil {
		t.Error("an action with no steps was applied")
	}
}
