package engine

import (
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

// Waits wake on the drivers' event streams (controllers.Watcher) instead of
// polling on a timer: a stage's wait reads live state once when the daemon
// says one of the objects it waits for changed, and again shortly after
// when that read did not settle it yet (Docker tells a container's death
// before Swarm counts its task out). While a stream is not live the wait
// polls as it always did, so a lost stream costs speed, never correctness;
// and a wait never goes longer than watchSafety without a read.
const (
	// watchSettle is how long a wait lets a burst of events gather before
	// it reads: one read for a service's update and its containers.
	watchSettle = 20 * time.Millisecond
	// watchStartSettle is watchSettle for a wait on services coming up:
	// the time Swarm takes from a container's start to counting its task
	// running (see settleFor), so one read sees it.
	watchStartSettle = 300 * time.Millisecond
	// watchRecheck is when a wait reads again after an event-driven read
	// that did not settle it, while no further event comes; each further
	// read without an event waits twice as long, up to watchSafety.
	watchRecheck = 150 * time.Millisecond
	// watchSafety bounds how long a wait on a live stream goes without a
	// read.
	watchSafety = 2 * time.Second
)

// watch starts (or retargets) the event streams of the drivers that have
// one, for the targets, and returns their feeds by driver.
func (e *Engine) watch(targets []controllers.Target) map[v1.Driver]*controllers.Feed {
	out := map[v1.Driver]*controllers.Feed{}
	for name, ts := range byDriver(targets) {
		if w, ok := controllers.WatcherOf(e.Drivers[name]); ok {
			out[name] = w.Watch(ts)
		}
	}
	return out
}

// WatchDrift has the drivers follow the targets (the pass's) and tells ch,
// without blocking, whenever one of their streams reports drift (a change
// made by someone else to what the targets own) or comes back after a
// break. cancel ends it. Drivers without a stream never tell: their drift
// is found by the next pass.
func (e *Engine) WatchDrift(targets []controllers.Target, ch chan<- struct{}) (cancel func()) {
	var cancels []func()
	for _, f := range e.watch(targets) {
		cancels = append(cancels, f.Subscribe(ch, nil, true))
	}
	return func() {
		for _, c := range cancels {
			c()
		}
	}
}

// marks are the feeds' positions when a stage's actions were sent.
type marks map[*controllers.Feed]uint64

func markAll(feeds map[v1.Driver]*controllers.Feed) marks {
	m := marks{}
	for _, f := range feeds {
		m[f] = f.Mark()
	}
	return m
}
