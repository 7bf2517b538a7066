package systemd

import (
	"fmt"

	"reconciler.dev/reconciler/controllers"
)

// Health is pure. A unit is ready when every declared field holds (active
// meaning ActiveState "active"), drained when a unit meant to be inactive no
// longer runs. A service is ready when exactly its instances are active, and
// drained when nothing beyond them is still started.
func Health(t controllers.Target, l controllers.Live) controllers.Health {
	if !l.Exists {
		return controllers.Health{Reason: "unit missing"}
	}
	if t.Kind == controllers.KindUnit {
		ul, _ := l.Raw.(unitLive)
		h := controllers.Health{Ready: true, Drained: true, Reason: l.State}
		// Enabling a unit that cannot be enabled (static, masked) is
		// reported by Plan as unsupported, so it is not waited for either.
		if t.Enabled != nil && *l.Enabled != *t.Enabled && (!*t.Enabled || canEnable(ul.FileState)) {
			h.Ready = false
		}
		if t.Active != nil {
			if *t.Active && ul.ActiveState != "active" {
				h.Ready = false
			}
			if !*t.Active && ul.ActiveState != "inactive" && ul.ActiveState != "failed" {
				h.Ready, h.Drained = false, false
			}
		}
		return h
	}
	toStop, toStart := instanceChanges(t, l)
	h := controllers.Health{Reason: fmt.Sprintf("%d/%d active", l.Running, t.Replicas)}
	h.Drained = len(toStop) == 0 && !stopping(l)
	h.Ready = h.Drained && len(toStart) == 0 && l.Running == t.Replicas
	return h
}

// stopping is true while any instance of a template is still deactivating.
func stopping(l controllers.Live) bool {
	if tl, ok := l.Raw.(templateLive); ok {
		for _, st := range tl.Instances {
			if st == "deactivating" {
				return true
			}
		}
		return false
	}
	ul, _ := l.Raw.(unitLive)
	return ul.ActiveState == "deactivating"
}
