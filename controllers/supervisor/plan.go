package supervisor

import (
	"fmt"
	"strconv"

	"reconciler.dev/reconciler/controllers"
)

// Plan returns what differs for each target. A program missing from
// supervisord is reported (missing), as is a count above the group's
// numprocs (unsupported, naming both numbers; nothing is changed then). A
// group running the wrong processes gets a scale-down (stop the extras) and
// a scale-up (start the missing ones among the first N). It is pure.
func Plan(targets []controllers.Target, live map[string]controllers.Live) []controllers.Action {
	return controllers.PlanEach(targets, live, planGroup)
}

func planGroup(t controllers.Target, l controllers.Live, base controllers.Action) []controllers.Action {
	want := strconv.Itoa(int(t.Replicas))
	gl, _ := l.Raw.(groupLive)
	switch {
	case !l.Exists:
		return []controllers.Action{base.Set("replicas", "absent", want, controllers.OpMissing)}
	case int(t.Replicas) > len(gl.Procs):
		return []controllers.Action{base.Set("replicas", fmt.Sprintf("numprocs=%d", len(gl.Procs)), want, controllers.OpUnsupported)}
	}
	toStop, toStart := changes(t, gl)
	return append(controllers.ScaleActions(base, int(l.Replicas), toStop, toStart), restartActions(t, gl, base)...)
}

// stopSteps are the Steps of a scale-down: the processes to stop, in the
// order they are stopped; startSteps those of a scale-up, in start order.
type (
	stopSteps  []Process
	startSteps []Process
)

// tooMany is the reason a target cannot be met: more replicas than the
// group has processes.
func tooMany(t controllers.Target, gl groupLive) string {
	return fmt.Sprintf("%d replicas wanted, but program %s has numprocs=%d (declare numprocs as the most that may run)",
		t.Replicas, gl.Program, len(gl.Procs))
}

// changes returns the processes to stop (highest first: started ones beyond
// the first N) and to start (lowest first: the first N that are not
// started) so that exactly the first N run. A process beyond N that is
// already STOPPING is left to finish.
func changes(t controllers.Target, gl groupLive) (toStop stopSteps, toStart startSteps) {
	n := min(int(t.Replicas), len(gl.Procs))
	for i := len(gl.Procs) - 1; i >= n; i-- {
		if Started(gl.Procs[i].State) {
			toStop = append(toStop, gl.Procs[i])
		}
	}
	for _, p := range gl.Procs[:n] {
		// A FATAL process is the failure policy's when it restarts it or
		// gave up: the plan does not start it behind its back.
		if !Started(p.State) && !(t.Failure.Holds() && p.State == stateFatal) {
			toStart = append(toStart, p)
		}
	}
	return toStop, toStart
}
