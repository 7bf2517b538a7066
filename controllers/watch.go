package controllers

import (
	"context"
	"sync"
	"time"
)

// Watcher is implemented by drivers whose daemon says when what they manage
// changes (Docker's /events, systemd's signals on the bus). The engine's
// waits wake on the feed instead of polling on a timer, and the agent starts
// a pass when the feed reports drift. A driver without one is polled, as is
// a driver whose feed is not live: a lost stream costs speed, never
// correctness.
type Watcher interface {
	// Watch has the driver follow its daemon's events about the objects
	// of targets (its own targets, all of them: a later call with other
	// targets changes what is followed) from now until the driver is
	// closed, and returns the feed at once. The feed is not live until the
	// stream is; the driver re-establishes a stream that breaks, with
	// backoff.
	Watch(targets []Target) *Feed
}

// Unwrapper is implemented by drivers that wrap another (the agent's call
// watch), so optional interfaces of the driver inside stay reachable.
type Unwrapper interface{ Unwrap() Driver }

// WatcherOf returns the Watcher of d, looking through wrappers.
func WatcherOf(d Driver) (Watcher, bool) {
	for d != nil {
		if w, ok := d.(Watcher); ok {
			return w, true
		}
		u, ok := d.(Unwrapper)
		if !ok {
			break
		}
		d = u.Unwrap()
	}
	return nil, false
}

// Feed is one daemon's event stream as its readers see it: which subjects
// changed (by Target.Subject), whether a change was drift (made by someone
// other than this process, to a field or state the reconciler owns), and
// whether the stream is live. Subscribers get a non-blocking send on their
// channel, so a burst of events costs them one wake-up. The zero Feed is
// ready to use and not live.
type Feed struct {
	mu      sync.Mutex
	live    bool
	wasLive bool // live at some time before
	seq     uint64
	last    map[string]uint64 // subject -> seq of its last change
	subs    map[*feedSub]struct{}
}

type feedSub struct {
	ch        chan<- struct{}
	subjects  map[string]bool // nil: every subject
	driftOnly bool
}

// Subscribe sends on ch (without blocking: give it a buffer of one) on every
// change to one of subjects (nil: any), or only on drift when driftOnly, and
// whenever the stream goes live (events may have been missed while it was
// down). cancel ends the subscription.
func (f *Feed) Subscribe(ch chan<- struct{}, subjects []string, driftOnly bool) (cancel func()) {
	s := &feedSub{ch: ch, driftOnly: driftOnly}
	if subjects != nil {
		s.subjects = make(map[string]bool, len(subjects))
		for _, x := range subjects {
			s.subjects[x] = true
		}
	}
	f.mu.Lock()
	if f.subs == nil {
		f.subs = map[*feedSub]struct{}{}
	}
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		delete(f.subs, s)
		f.mu.Unlock()
	}
}

// Live says whether the stream is up: while it is not, readers poll.
func (f *Feed) Live() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.live
}

// Mark returns the feed's position now, for ChangedSince.
func (f *Feed) Mark() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seq
}

// ChangedSince says whether one of subjects changed after mark, or the
// stream was not live at some point since (it cannot say then).
func (f *Feed) ChangedSince(mark uint64, subjects []string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.live || f.last[""] > mark {
		return true
	}
	for _, s := range subjects {
		if f.last[s] > mark {
			return true
		}
	}
	return false
}

// SetLive records that the stream went up or down. Coming back up wakes
// every subscriber, drift ones included: what happened while it was down
// is unknown.
func (f *Feed) SetLive(live bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	was, back := f.live, f.wasLive
	f.live = live
	f.wasLive = f.wasLive || live
	f.seq++
	if f.last == nil {
		f.last = map[string]uint64{}
	}
	f.last[""] = f.seq // "" stands for every subject
	if live && !was {
		for s := range f.subs {
			// Drift readers are woken only when the stream comes back:
			// its first start follows a pass that has just looked.
			if back || !s.driftOnly {
				notify(s.ch)
			}
		}
	}
}

// Changed records a change to subject ("": to any of them), told by the
// daemon; drift says it was not this process's own doing.
func (f *Feed) Changed(subject string, drift bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	if f.last == nil {
		f.last = map[string]uint64{}
	}
	f.last[subject] = f.seq
	for s := range f.subs {
		if (s.subjects == nil || subject == "" || s.subjects[subject]) && (drift || !s.driftOnly) {
			notify(s.ch)
		}
	}
}

func notify(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Backoff is the wait before the next attempt to re-establish a broken
// stream: 250 ms doubling up to 10 s; a stream that stayed up a while
// starts again from the shortest.
func Backoff(prev time.Duration, upFor time.Duration) time.Duration {
	if upFor > 30*time.Second || prev <= 0 {
		return 250 * time.Millisecond
	}
	return min(2*prev, 10*time.Second)
}

// Follower is a driver's one stream-following goroutine: started once (the
// first Watch with something to follow), stopped and waited for by Stop
// when the driver closes. Both drivers with a stream (swarm's /events,
// systemd's signals) keep one. The zero Follower is ready to use.
type Follower struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	retgt  chan struct{}
}

// Retarget tells the goroutine that what it follows changed (a Watch with
// other targets), so it re-subscribes; several calls before it looks are
// one.
func (f *Follower) Retarget() {
	select {
	case f.retargets() <- struct{}{}:
	default:
	}
}

// Retargets is what the goroutine waits on for Retarget.
func (f *Follower) Retargets() <-chan struct{} { return f.retargets() }

func (f *Follower) retargets() chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.retgt == nil {
		f.retgt = make(chan struct{}, 1)
	}
	return f.retgt
}

// Start runs follow in its own goroutine unless it was started before, and
// says whether this call started it. follow returns when its context ends.
func (f *Follower) Start(follow func(context.Context)) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done != nil {
		return false
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		follow(ctx)
	}(f.done)
	return true
}

// Stop ends the goroutine Start started, if any, and waits until it has.
func (f *Follower) Stop() {
	f.mu.Lock()
	cancel, done := f.cancel, f.done
	f.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
