package supervisor

import (
	"fmt"

	"reconciler.dev/reconciler/controllers"
)

// Health is pure. A group is ready when exactly its first N processes are
// RUNNING and every other one is STOPPED, EXITED or FATAL; it is drained
// when nothing beyond the first N is running, starting, backing off or
// still stopping. The reason names the first process that is not where it
// should be.
func Health(t controllers.Target, l controllers.Live) controllers.Health {
	if !l.Exists {
		return controllers.Health{Reason: fmt.Sprintf("program %s missing from supervisord at %s", t.Service.Program, t.Service.Socket)}
	}
	gl, _ := l.Raw.(groupLive)
	if int(t.Replicas) > len(gl.Procs) {
		// Nothing is changed for such a target, so nothing beyond the group
		// can be running: it is drained, and never ready.
		return controllers.Health{Drained: true, Reason: tooMany(t, gl)}
	}
	h := controllers.Health{Ready: true, Drained: true}
	var first string
	for i, p := range gl.Procs {
		if i < int(t.Replicas) {
			if p.State != stateRunning {
				h.Ready = false
				if first == "" {
					first = p.Name + " " + p.State
				}
			}
			continue
		}
		if !down(p.State) {
			h.Ready = false
			if first == "" {
				first = p.Name + " " + p.State
			}
		}
		if Started(p.State) || p.State == stateStopping {
			h.Drained = false
		}
	}
	h.Reason = fmt.Sprintf("%d/%d running", l.Running, t.Replicas)
	if first != "" {
		h.Reason += ", " + first
	}
	return h
}
