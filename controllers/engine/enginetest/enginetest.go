// Package enginetest builds a pass's targets the way the engine does, for
// the plan tests of the drivers. It is apart from controllers/drivertest
// because the engine's own tests import drivertest, and this imports the
// engine. It is imported by tests only.
package enginetest

import (
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/engine"
)

// Now is the instant Targets evaluates maintenance windows at.
var Now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// Targets builds the pass's targets from spec the way the engine does:
// defaults applied (to copies: the caller's services and units are left
// as they are), maintenance evaluated at Now, no autoscaling.
func Targets(spec v1.HostSpec) []controllers.Target {
	spec.Services = append([]v1.Service(nil), spec.Services...)
	spec.Units = append([]v1.Unit(nil), spec.Units...)
	v1.SetDefaults(&spec)
	return engine.Targets(&spec, engine.MaintenanceAt(&spec, Now), nil)
}

// ServiceTargets is Targets of a spec that declares only services, the
// spec of most plan tests of the drivers that manage no units.
func ServiceTargets(services ...v1.Service) []controllers.Target {
	return Targets(v1.HostSpec{Services: services})
}
