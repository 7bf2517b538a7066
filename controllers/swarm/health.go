package swarm

import (
	"fmt"

	"github.com/docker/docker/api/types/swarm"

	"reconciler.dev/reconciler/controllers"
)

// Health is the pure readiness check; see Driver.Health.
func Health(t controllers.Target, l controllers.Live) controllers.Health {
	if !l.Exists {
		return controllers.Health{Reason: "service missing"}
	}
	h := controllers.Health{
		Drained: l.Running <= t.Replicas,
		Reason:  fmt.Sprintf("%d/%d running", l.Running, t.Replicas),
	}
	ready := l.Replicas == t.Replicas && l.Running == t.Replicas
	if img := t.Service.Image; img != "" && !sameImage(l.Image, img) {
		ready = false
		h.Reason += ", image " + l.Image
	}
	if s, ok := l.Raw.(swarm.Service); ok && updating(s) {
		ready = false
		h.Reason += ", update in progress"
	}
	h.Ready = ready
	return h
}
