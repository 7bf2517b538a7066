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
// The engine is level-based: every pass plans from observed live state, never
// from what it did before, so an agent killed mid-pass converges on restart
// in the same order.
package engine
