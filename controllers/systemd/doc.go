// Package systemd is the driver for systemd, over D-Bus. It manages units
// (enabled and active, each only when declared) and services with driver
// systemd: a template unit x@.service with replicas N means exactly the
// instances x@1..x@N are active, extras stopped from the highest number; a
// plain unit means 0 or 1.
//
// observe.go reads every declared unit in two calls per pass whatever their
// number (ListUnitFilesByPatterns for existence and enablement,
// ListUnitsByPatterns for active state, instances of templates included);
// plan.go is pure; apply.go enables/disables (then reloads) and starts/stops
// with the job result checked; health.go judges readiness.
package systemd
