package drivertest

import (
	"testing"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/restarton"
)

// RestartSince is when the restartOn plan tests say a value was recorded:
// what started at or after it has been restarted for that value.
var RestartSince = time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)

// Recorded is what a driver keeps of the restartOn value v, recorded at
// RestartSince; "" is no record at all, as before a first restart.
func Recorded(v string) restarton.Seen {
	if v == "" {
		return restarton.Seen{}
	}
	return restarton.Seen{Record: restarton.Record{Value: v, Since: RestartSince}, Has: true}
}

// Restart is the restart a restartOn plan test expects on the service name
// of driver d, from the value recorded to the one declared.
func Restart(d v1.Driver, name, from, to string) controllers.Action {
	return Service(d, name, "restartOn", from, to, controllers.OpRestart)
}

// CheckSteps fails t when the instances a restart goes through are not
// want in count, first and last: the drivers that restart one instance at
// a time (systemd, supervisor) must begin and end where the plan says.
func CheckSteps(t testing.TB, got, want []string) {
	t.Helper()
	if len(got) != len(want) || len(got) > 0 && (got[0] != want[0] || got[len(got)-1] != want[len(want)-1]) {
		t.Errorf("steps %v, want %v", got, want)
	}
}
