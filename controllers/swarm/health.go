package swarm

import (
	"fmt"

	"reconciler.dev/reconciler/controllers"
)

// Health is pure. A service is drained when no more tasks run than its
// target and no node's tasks are unknown to the leader (DetailUnsettled), and ready when its spec and its running tasks both equal the
// target, with the declared image and no update in progress (Swarm's own
// rollout still replacing tasks, or about to: DetailRollout).
func Health(t controllers.Target, l controllers.Live) controllers.Health {
	h := controllers.Health{Reason: "service missing"}
	if _, ok := l.Raw.(unreadable); ok {
		return controllers.Health{Reason: l.State}
	}
	if !l.Exists {
		return h
	}
	h = controllers.Health{
		Drained: l.Running <= t.Replicas && l.Details[DetailUnsettled] == "",
		Reason:  fmt.Sprintf("%d/%d running", l.Running, t.Replicas),
	}
	if u := l.Details[DetailUnsettled]; u != "" {
		h.Reason += ", nodes " + u
	}
	ready := l.Replicas == t.Replicas && l.Running == t.Replicas
	if img := t.Service.Image; img != "" && !sameImage(l.Image, img) {
		ready = false
		h.Reason += ", image " + l.Image
	}
	if s, ok := l.Raw.(*Service); ok && (updating(s) || l.Details[DetailRollout] != "") {
		ready = false
		h.Reason += ", update in progress"
	}
	h.Ready = ready
	return h
}
