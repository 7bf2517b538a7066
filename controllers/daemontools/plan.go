package daemontools

import (
	"reconciler.dev/reconciler/controllers"
)

// mode is what supervise is told to keep a service: up, once or down.
type mode string

const (
	modeUp      mode = "up"
	modeOnce    mode = "once"
	modeDown    mode = "down"
	modeUnknown mode = "unknown" // no supervise, or no readable status
)

// The fields this driver plans.
const (
	fieldReplicas  = "replicas"
	fieldDownFile  = "downfile"
	fieldPaused    = "paused"
	fieldRestartOn = "restartOn"
)

// desiredMode is what a target asks for.
func desiredMode(t controllers.Target) mode {
	switch {
	case t.Replicas <= 0:
		return modeDown
	case t.Service != nil && t.Service.Once != nil && *t.Service.Once:
		return modeOnce
	}
	return modeUp
}

// liveMode is what supervise keeps the service at. daemontools records a
// once start itself (want 0); runit writes want 'd' for sv once, so a once
// service runit still runs (without a TERM pending) or that the driver
// marked as started once counts as once.
func liveMode(sl *Folder) mode {
	if !sl.Supervised || !sl.HasStatus {
		return modeUnknown
	}
	st := sl.Status
	switch {
	case st.Want == 'u':
		return modeUp
	case st.Want == 0:
		return modeOnce
	case st.Runit && (st.Running() && !st.Term || sl.OnceMark):
		return modeOnce
	}
	return modeDown
}

// replicasValue shows a mode as the replicas field's value.
func replicasValue(m mode) string {
	switch m {
	case modeUp:
		return "1"
	case modeOnce:
		return "1 (once)"
	case modeDown:
		return "0"
	}
	return "unknown"
}

func presence(b bool) string {
	if b {
		return "present"
	}
	return "absent"
}

// Plan returns what differs for each service, in the order Apply must
// carry it out within one subject: the down file first (so a reboot in
// between already finds the new state), then the state (svc -u, -o or
// -d), then continuing a paused service, then a restartOn restart. It is
// pure.
//
//   - A missing folder is drift of kind missing (never created).
//   - A service sent down that still runs is left to drain: no second -d.
//   - With no supervise running, a service declared up gets a start that
//     fails at once with a clear error; one declared down needs nothing
//     sent (only its down file is kept in line).
func Plan(targets []controllers.Target, live map[string]controllers.Live) []controllers.Action {
	return controllers.PlanEach(targets, live, planService)
}

func planService(t controllers.Target, l controllers.Live, base controllers.Action) (out []controllers.Action) {
	add := func(field, from, to string, op controllers.Op) {
		out = append(out, base.Set(field, from, to, op))
	}
	want := desiredMode(t)
	if !l.Exists {
		add(fieldReplicas, "absent", replicasValue(want), controllers.OpMissing)
		return out
	}
	sl, _ := l.Raw.(Folder)
	have := liveMode(&sl)

	if wantDown := want != modeUp; sl.DownFile != wantDown {
		op := controllers.OpEnable
		if wantDown {
			op = controllers.OpDisable
		}
		add(fieldDownFile, presence(sl.DownFile), presence(wantDown), op)
	}

	from := replicasValue(have)
	if !sl.Supervised {
		from = "unknown (no supervise)"
	}
	starting := false
	switch {
	case want == modeDown && (have == modeUp || have == modeOnce):
		// A once service is sent down too, running or not: then the
		// record (and runit's once mark) says down, not once.
		add(fieldReplicas, from, replicasValue(want), controllers.OpScaleDown)
	case want != modeDown && have != want:
		add(fieldReplicas, from, replicasValue(want), controllers.OpScaleUp)
		out[len(out)-1].Steps = want // svc -u or svc -o
		starting = true
	}
	if starting || want == modeDown {
		return out
	}
	if sl.Status.Running() && sl.Status.Paused {
		add(fieldPaused, "true", "false", controllers.OpStart)
	}
	if ro := t.Service.RestartOn; ro != "" && want == modeUp && sl.Status.Running() &&
		(!sl.HasRestartOn || sl.RestartOn != ro) {
		from := sl.RestartOn
		if !sl.HasRestartOn {
			from = "(none)"
		}
		add(fieldRestartOn, from, ro, controllers.OpRestart)
	}
	return out
}
