// Package engine turns a host's effective desired state into one ordered
// plan across drivers and carries it out. It knows drivers only through the
// controllers.Driver interface.
//
// A pass has two phases. Down first: units tied to maintenance are stopped
// and disabled, then services shrink in reverse dependsOn order, each stage
// drained before the next. Then up: services grow in dependsOn order, each
// stage ready (and its probe passing) before the next, and the units come
// back last. Objects in one stage are actuated concurrently, bounded. A stage
// that fails blocks what depends on it for this pass; every failure is
// collected and reported with its subject.
//
// A pass reports as data, never as text to be parsed: Apply returns one
// Outcome per planned action (applied, reported, failed, blocked, skipped;
// whether it was sent; the subject's health; why it failed), and typed
// errors: a *BlockedError (errors.Is ErrBlocked) for an object held back by
// one it depends on, controllers.ErrTerminal for what retrying will not
// mend. What belongs to one pass (its logger, progress, failure policies)
// comes in the context (WithScope); the Engine itself holds only what lasts.
//
// The files follow the verbs: types.go (the Engine, Scope, Plan, Event),
// plan.go, observe.go, apply.go (stages), wait.go (readiness, drains,
// probes, not-ready handling), result.go (outcomes and errors), with
// order.go and targets.go for stages and targets.
//
// The engine is level-based: every pass plans from observed live state, never
// from what it did before, so an agent killed mid-pass converges on restart
// in the same order.
package engine
