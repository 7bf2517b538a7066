// Package controllers holds the contract between the engine and the drivers
// (types.go: Target, Live, Action, Health, the Driver interface; errors.go:
// ErrTerminal; log.go: the pass logger a driver finds in its context;
// maintenance.go: the maintenance state of a pass; watch.go: the optional
// Watcher a driver with an event stream implements, and its Feed), what
// every driver would
// otherwise write again (kit.go: Counter, Clock, PlanEach, ScaleActions,
// Target.Base, Action.Set) and, below it, one package per part of the work
// of a pass.
//
// The drivers, one package each (swarm, systemd, compose, supervisor,
// daemontools), are split the same way: observe (read live state in a
// constant number of calls through a narrow interface), plan (a pure
// function of desired and live state, whose actions carry the Steps apply
// will run), apply (carry out those steps, errors wrapped with their
// subject) and health (a pure readiness check). Each driver also exports
// the typed reader of its live state (supervisor.ReadProcesses,
// daemontools.ReadFolder, systemd's Bus and Started, ...), which export
// and monitor use instead of decoding the same answers again. Drivers know
// nothing of each other.
//
// Around them:
//   - engine orders the drivers' plans into stages (dependsOn, maintenance)
//     and runs them, waiting for readiness and drains; it knows drivers
//     only through the Driver interface.
//   - probe runs readiness probes (tcp, http, exec).
//   - autoscale sizes services from a queue's depth (AMQP).
//   - failure decides the onFailure policies from what a pass observed.
//   - monitor collects resource figures (RSS, CPU, descriptors,
//     connections) of every declared service.
//   - export writes what runs on a host as a Host document.
//   - drivertest holds what the tests of drivers, engine and agent share.
package controllers
