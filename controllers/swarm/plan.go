package swarm

import (
	"strconv"

	"github.com/docker/docker/api/types/swarm"

	"reconciler.dev/reconciler/controllers"
)

// replicasStep is the Steps of a replicas action: the count to write;
// imageStep that of an image action: the image to write.
type (
	replicasStep uint64
	imageStep    string
)

// Plan compares each declared service with its live state and returns the
// actions that differ: replicas, and image where one is declared. It is pure.
func Plan(targets []controllers.Target, live map[string]controllers.Live) []controllers.Action {
	return controllers.PlanEach(targets, live, planService)
}

func planService(t controllers.Target, l controllers.Live, base controllers.Action) []controllers.Action {
	if _, ok := l.Raw.(unreadable); ok {
		return nil // a worker's agent: the leader's agent converges it
	}
	want := strconv.Itoa(int(t.Replicas))
	switch {
	case !l.Exists:
		return []controllers.Action{base.Set("replicas", "absent", want, controllers.OpMissing)}
	case !replicated(l):
		return []controllers.Action{base.Set("replicas", "global", want, controllers.OpUnsupported)}
	}
	var out []controllers.Action
	if l.Replicas != t.Replicas {
		op := controllers.OpScaleUp
		if t.Replicas < l.Replicas {
			op = controllers.OpScaleDown
		}
		a := base.Set("replicas", strconv.Itoa(int(l.Replicas)), want, op)
		a.Steps = replicasStep(t.Replicas)
		out = append(out, a)
	}
	if img := t.Service.Image; img != "" && !sameImage(l.Image, img) {
		a := base.Set("image", l.Image, img, controllers.OpSetImage)
		a.Steps = imageStep(img)
		out = append(out, a)
	}
	return out
}

func replicated(l controllers.Live) bool {
	s, ok := l.Raw.(swarm.Service)
	return !ok || s.Spec.Mode.Replicated != nil
}
