package compose

import (
	"strconv"

	"reconciler.dev/reconciler/controllers"
)

// Plan returns what differs for each declared service, so that exactly the
// containers numbered 1..N run: started containers numbered beyond N get a
// scale-down (stop and remove them, highest first), numbers 1..N without a
// started container get a scale-up (start the stopped container of that
// number, or create it from the template). A service with gaps in its
// numbering may need both. Running replicas on another image than the
// declared one, or made with another restartOn value, are recreated one at
// a time (recreateActions). A service with no container at all is missing:
// there is nothing to make new replicas from. It is pure.
func Plan(targets []controllers.Target, live map[string]controllers.Live) []controllers.Action {
	return controllers.PlanEach(targets, live, planService)
}

func planService(t controllers.Target, l controllers.Live, base controllers.Action) []controllers.Action {
	if !l.Exists {
		return []controllers.Action{base.Set("replicas", "absent", strconv.Itoa(int(t.Replicas)), controllers.OpMissing)}
	}
	toStop, toStart := changes(t, l)
	sl, _ := l.Raw.(serviceLive)
	return append(controllers.ScaleActions(base, int(l.Replicas), toStop, toStart), recreateActions(t, sl, base)...)
}

// stopSteps are the Steps of a scale-down: the containers to stop, in the
// order they are stopped. startSteps are those of a scale-up: the numbers
// to bring up, in order.
type (
	stopSteps  []replica
	startSteps []int
)

// changes returns the started containers numbered beyond the target, highest
// number first (the order they are stopped in), and the numbers 1..N that
// have no started container, lowest first (the order they are brought up).
func changes(t controllers.Target, l controllers.Live) (toStop stopSteps, toStart startSteps) {
	sl, _ := l.Raw.(serviceLive)
	want := int(t.Replicas)
	up := map[int]bool{}
	for _, r := range sl.Replicas {
		switch {
		case !r.started():
		case r.Number > want:
			toStop = append(stopSteps{r}, toStop...) // Replicas ascend: prepend
		default:
			up[r.Number] = true
		}
	}
	// Failing containers are the failure policy's when it restarts them or
	// gave up: the plan does not start them behind its back.
	held := map[int]bool{}
	if t.Failure.Holds() {
		for _, r := range failingReplicas(t, sl) {
			held[r.Number] = true
		}
	}
	for n := 1; n <= want; n++ {
		if !up[n] && !held[n] {
			toStart = append(toStart, n)
		}
	}
	return toStop, toStart
}
