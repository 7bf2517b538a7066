// Package drivertest holds what the tests of drivers, the engine and the
// agent share, so that each driver's tests say only what is particular to
// it:
//
//   - fake.go: Fake, an in-memory driver that keeps each object's state,
//     plans and applies on it and records what it was sent (the engine's
//     and the agent's table tests never import a real driver).
//   - plan.go: the actions a plan test expects (Service, Replicas,
//     ReplicasOf, Unit, ReportOnly) and CheckActions, which compares a
//     plan with them the way every driver's plan_test.go used to, each
//     with its own copy.
//   - restarton.go: the record, the restart action and the check of the
//     instances restarted that the restartOn plan tests of systemd and
//     supervisor share.
//
// It is imported by tests only; nothing in the program depends on it.
package drivertest
