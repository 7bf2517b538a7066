package drivertest

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

// Service is the enforced action a plan test expects on the service name
// of driver d.
func Service(d v1.Driver, name, field, from, to string, op controllers.Op) controllers.Action {
	return controllers.Action{
		Subject: string(d) + "/" + name, Kind: controllers.KindService, Name: name, Driver: d,
		Field: field, From: from, To: to, Op: op, Mode: controllers.Enforce,
	}
}

// Replicas is Service on the field "replicas", the one most plans change.
func Replicas(d v1.Driver, name, from, to string, op controllers.Op) controllers.Action {
	return Service(d, name, "replicas", from, to, op)
}

// ReplicasOf is Replicas for driver d, for the plan tests of one driver:
// each names its own once (var action = ReplicasOf(...)).
func ReplicasOf(d v1.Driver) func(name, from, to string, op controllers.Op) controllers.Action {
	return func(name, from, to string, op controllers.Op) controllers.Action {
		return Replicas(d, name, from, to, op)
	}
}

// Unit is the enforced action a plan test expects on the systemd unit name.
func Unit(name, field, from, to string, op controllers.Op) controllers.Action {
	return controllers.Action{
		Subject: "unit/" + name, Kind: controllers.KindUnit, Name: name, Driver: v1.DriverSystemd,
		Field: field, From: from, To: to, Op: op, Mode: controllers.Enforce,
	}
}

// ReportOnly is a with the mode of a target under drift: report.
func ReportOnly(a controllers.Action) controllers.Action {
	a.Mode = controllers.ReportOnly
	return a
}

// CheckActions fails t when the plan got is not want, action by action and
// in order; nil and empty are equal. The Steps of got are left out of the
// comparison: they are the driver's own, checked by its apply tests, and a
// plan table says what an operator sees.
func CheckActions(t testing.TB, got, want []controllers.Action) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	shown := make([]controllers.Action, len(got))
	for i, a := range got {
		a.Steps = nil
		shown[i] = a
	}
	if reflect.DeepEqual(shown, want) {
		return
	}
	t.Errorf("plan differs\ngot:%s\nwant:%s", List(shown), List(want))
}

// List writes actions one a line, every field named, for failure messages.
func List(as []controllers.Action) string {
	var b strings.Builder
	for _, a := range as {
		fmt.Fprintf(&b, "\n  %+v", a)
	}
	return b.String()
}
