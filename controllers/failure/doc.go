// Package failure carries out the services' failure policies (onFailure),
// the declarative form of seed 002's on_fail triggers ("on_fail: restart
// ts000", "call another task service"): what the agent does while a service
// it manages is failing.
//
// Failing is each driver's own verdict from what it observes anyway
// (controllers.Live.Failing): swarm tasks failing over and over, a systemd
// unit or instance in failed, a supervisord process in FATAL or BACKOFF, a
// daemontools service crash-looping, a compose container restarting or
// exited with an error. A service counts as failing only while its target
// wants replicas: one declared (or held by maintenance) at 0 never is.
//
// The policies:
//
//   - report (the default, also with no onFailure): the failure is an event
//     and stays in the status until the service runs as declared again.
//     The plan treats the failing objects as any other object.
//   - restart {limit, window}: the failing objects are restarted, at most
//     limit times within any window (a sliding window; the restart times
//     are remembered in the agent's state dir, so an agent restart does not
//     reset them). At the limit the policy gives up and says so, until the
//     oldest restart leaves the window. While it holds, the plan never
//     starts the failing objects itself: every restart the agent makes of
//     them is one the limit counts.
//   - start [names]: the named services (standbys, typically declared with
//     replicas 0) count as desired, with at least 1 replica (their declared
//     count if higher), from the pass that first sees the failure until the
//     failing service is seen running as declared again (ready, nothing
//     failing, or declared 0).
//
// The policies never fight the declared state: they never change a
// declared replica count, start a service declared 0 only as a standby
// during a failure (and not while maintenance holds it at 0), and never
// restart a service whose drift mode is report.
//
// decide.go is the pure rule, table-tested: from what a pass observed and
// what is remembered, what happens now. policies.go keeps the memory
// between passes, counts the restarts that were carried out, and builds
// the status.
package failure
