package compose

import (
	"fmt"
	"strings"

	"reconciler.dev/reconciler/controllers"
)

// Health is pure. A service is drained when no container numbered beyond
// its target is started (running, restarting or paused), and ready when it
// is drained and every container numbered 1..N is running: "3 running" is
// not enough when they are 1, 2 and 5.
func Health(t controllers.Target, l controllers.Live) controllers.Health {
	if !l.Exists {
		return controllers.Health{Reason: "no containers: docker compose up the project once"}
	}
	sl, _ := l.Raw.(serviceLive)
	toStop, _ := changes(t, l)
	want := int(t.Replicas)
	running := map[int]bool{}
	for _, r := range sl.Replicas {
		if r.running() {
			running[r.Number] = true
		}
	}
	var notRunning []int
	for n := 1; n <= want; n++ {
		if !running[n] {
			notRunning = append(notRunning, n)
		}
	}
	var why []string
	if len(notRunning) > 0 {
		why = append(why, "not running: "+numbers(notRunning))
	}
	if len(toStop) > 0 {
		var extra []int
		for _, r := range toStop {
			extra = append(extra, r.Number)
		}
		why = append(why, "still up beyond "+fmt.Sprint(want)+": "+numbers(extra))
	}
	reason := fmt.Sprintf("%d/%d running", l.Running, t.Replicas)
	if len(why) > 0 {
		reason += " (" + strings.Join(why, "; ") + ")"
	}
	h := controllers.Health{Drained: len(toStop) == 0, Reason: reason}
	h.Ready = h.Drained && len(notRunning) == 0
	return h
}
