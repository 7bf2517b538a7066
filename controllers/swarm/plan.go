package swarm

import (
	"strconv"

	"reconciler.dev/reconciler/controllers"
)

// replicasStep is the Steps of a replicas action: the count to write;
// imageStep that of an image action: the image to write.
// restartStep that of a restartOn action: the value to record.
type (
	replicasStep uint64
	imageStep    string
	restartStep  string
)

// LabelRestartOn is the service label that holds the restartOn value last
// applied, written by the same update that restarts the tasks: Swarm keeps
// it, so the value is known from the service itself.
const LabelRestartOn = "dev.reconciler.restart-on"

// Plan compares each declared service with its live state and returns the
// actions that differ: replicas, image where one is declared, and a
// restart where the declared restartOn value is not the one on the service
// (LabelRestartOn) and it runs tasks (a service at 0 is not restarted). It
// is pure.
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
	if ro := t.Service.RestartOn; ro != "" && t.Replicas > 0 && l.Replicas > 0 {
		var labels map[string]string
		if svc, ok := l.Raw.(*Service); ok {
			labels = svc.Spec.Labels
		}
		if live, ok := labels[LabelRestartOn]; live != ro {
			if !ok {
				live = "(none)"
			}
			a := base.Set("restartOn", live, ro, controllers.OpRestart)
			a.Steps = restartStep(ro)
			out = append(out, a)
		}
	}
	return out
}

func replicated(l controllers.Live) bool {
	s, ok := l.Raw.(*Service)
	return !ok || s.Spec.Mode.Replicated != nil
}
