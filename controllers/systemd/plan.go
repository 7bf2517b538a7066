package systemd

import (
	"strconv"

	"reconciler.dev/reconciler/controllers"
)

// Plan returns what differs for each target. For units: stop before
// disable, enable before start (the runbook's order). For services: a
// template service that runs the wrong instances gets a scale-down (stop the
// extras) and a scale-up (start the missing ones). It is pure.
func Plan(targets []controllers.Target, live map[string]controllers.Live) []controllers.Action {
	return controllers.PlanEach(targets, live, planTarget)
}

func planTarget(t controllers.Target, l controllers.Live, base controllers.Action) []controllers.Action {
	switch {
	case !l.Exists && t.Kind == controllers.KindUnit:
		return []controllers.Action{base.Set("unit", "absent", "present", controllers.OpMissing)}
	case !l.Exists:
		return []controllers.Action{base.Set("replicas", "absent", strconv.Itoa(int(t.Replicas)), controllers.OpMissing)}
	case t.Kind == controllers.KindUnit:
		return planUnit(base, t, l)
	}
	return planService(base, t, l)
}

func planUnit(base controllers.Action, t controllers.Target, l controllers.Live) []controllers.Action {
	var out []controllers.Action
	add := func(field string, from, to bool, op controllers.Op) {
		a := base
		a.Field, a.From, a.To, a.Op = field, strconv.FormatBool(from), strconv.FormatBool(to), op
		out = append(out, a)
	}
	ul, _ := l.Raw.(unitLive)
	wantEnabled := t.Enabled != nil && *l.Enabled != *t.Enabled
	wantActive := t.Active != nil && *l.Active != *t.Active
	if wantEnabled && *t.Enabled && !canEnable(ul.FileState) {
		a := base
		a.Field, a.From, a.To, a.Op = "enabled", ul.FileState, "true", controllers.OpUnsupported
		out = append(out, a)
		wantEnabled = false
	}
	if wantActive && !*t.Active {
		add("active", true, false, controllers.OpStop)
	}
	if wantEnabled && !*t.Enabled {
		add("enabled", true, false, controllers.OpDisable)
	}
	if wantEnabled && *t.Enabled {
		add("enabled", false, true, controllers.OpEnable)
	}
	if wantActive && *t.Active {
		add("active", false, true, controllers.OpStart)
	}
	return out
}

// canEnable is false for unit files that cannot be enabled (masked; static
// units have no [Install] section).
func canEnable(fileState string) bool {
	switch fileState {
	case "masked", "masked-runtime", "static":
		return false
	}
	return true
}

// stopSteps are the Steps of a scale-down: the units to stop, in the order
// they are stopped; startSteps those of a scale-up, started together.
type (
	stopSteps  []string
	startSteps []string
)

// instanceChanges returns the units to stop (highest first) and to start
// (lowest first) so that exactly the target's instances run: x@1..x@N for a
// template, the unit itself for replicas 1 of a plain unit.
func instanceChanges(t controllers.Target, l controllers.Live) (toStop stopSteps, toStart startSteps) {
	// Failing units are the failure policy's when it restarts them or gave
	// up: the plan does not start them behind its back.
	held := map[string]bool{}
	if t.Failure.Holds() {
		units, _ := failingUnits(t, l)
		for _, u := range units {
			held[u] = true
		}
	}
	if tl, ok := l.Raw.(templateLive); ok {
		for _, n := range sortedInstances(tl.Instances) {
			if n > int(t.Replicas) && Started(tl.Instances[n]) {
				toStop = append(stopSteps{instanceName(tl.Template, n)}, toStop...)
			}
		}
		for n := 1; n <= int(t.Replicas); n++ {
			if u := instanceName(tl.Template, n); !Started(tl.Instances[n]) && !held[u] {
				toStart = append(toStart, u)
			}
		}
		return toStop, toStart
	}
	unit := t.Service.Unit
	switch {
	case t.Replicas == 0 && l.Replicas > 0:
		toStop = stopSteps{unit}
	case t.Replicas > 0 && l.Replicas == 0 && !held[unit]:
		toStart = startSteps{unit}
	}
	return toStop, toStart
}

// planService scales a template (or a plain unit as 0 or 1) to the
// target's instances.
func planService(base controllers.Action, t controllers.Target, l controllers.Live) []controllers.Action {
	toStop, toStart := instanceChanges(t, l)
	return append(controllers.ScaleActions(base, int(l.Replicas), toStop, toStart), restartActions(base, t, l)...)
}
