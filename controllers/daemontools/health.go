package daemontools

import (
	"reconciler.dev/reconciler/controllers"
)

// Health is pure. A service declared up is ready when supervise wants it
// up, it runs, is not paused and is not crash-looping; one declared once
// when supervise runs it once (running or already finished); one declared
// down when supervise keeps it down and nothing runs. A service is drained
// when nothing runs beyond its target: for one declared down, no process
// (runit's ./finish included). The declared ready probe comes on top; the
// engine runs it.
func Health(t controllers.Target, l controllers.Live) controllers.Health {
	if !l.Exists {
		return controllers.Health{Reason: "service folder missing"}
	}
	sl, _ := l.Raw.(Folder)
	h := controllers.Health{Reason: l.State, Drained: true}
	want := desiredMode(t)
	if !sl.Supervised {
		h.Reason = "no supervise running for " + sl.Dir
		if sl.SuperviseErr != "" {
			h.Reason += ": " + sl.SuperviseErr
		}
		// Nothing can be running under a supervise that does not run.
		h.Ready = want == modeDown
		return h
	}
	if !sl.HasStatus {
		h.Drained = want != modeDown
		return h
	}
	st := sl.Status
	have := liveMode(&sl)
	switch want {
	case modeDown:
		h.Drained = st.PID == 0
		h.Ready = h.Drained && have == modeDown
	case modeOnce:
		h.Ready = have == modeOnce && !(st.Running() && st.Paused)
	default:
		h.Ready = have == modeUp && st.Running() && !st.Paused && !sl.CrashLooping
	}
	return h
}
