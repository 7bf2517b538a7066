package swarm

import (
	"strconv"

	"github.com/docker/docker/api/types/swarm"

	"reconciler.dev/reconciler/controllers"
)

// Plan compares each declared service with its live state and returns the
// actions that differ: replicas, and image where one is declared. It is pure.
func Plan(targets []controllers.Target, live map[string]controllers.Live) []controllers.Action {
	var out []controllers.Action
	for _, t := range targets {
		l := live[t.Subject()]
		base := t.Base()
		want := strconv.Itoa(int(t.Replicas))
		switch {
		case !l.Exists:
			a := base
			a.Field, a.From, a.To, a.Op = "replicas", "absent", want, controllers.OpMissing
			out = append(out, a)
			continue
		case !replicated(l):
			a := base
			a.Field, a.From, a.To, a.Op = "replicas", "global", want, controllers.OpUnsupported
			out = append(out, a)
			continue
		}
		if l.Replicas != t.Replicas {
			a := base
			a.Field, a.From, a.To = "replicas", strconv.Itoa(int(l.Replicas)), want
			a.Op, a.Steps = controllers.OpScaleUp, replicasStep(t.Replicas)
			if t.Replicas < l.Replicas {
				a.Op = controllers.OpScaleDown
			}
			out = append(out, a)
		}
		if img := t.Service.Image; img != "" && !sameImage(l.Image, img) {
			a := base
			a.Field, a.From, a.To, a.Op = "image", l.Image, img, controllers.OpSetImage
			a.Steps = imageStep(img)
			out = append(out, a)
		}
	}
	return out
}

// replicasStep is the Steps of a replicas action: the count to write;
// imageStep that of an image action: the image to write.
type (
	replicasStep uint64
	imageStep    string
)

func replicated(l controllers.Live) bool {
	s, ok := l.Raw.(swarm.Service)
	return !ok || s.Spec.Mode.Replicated != nil
}
