package agent

import (
	"errors"
	"time"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/controllers"
)

// schedule decides, after each pass, how long the agent waits for the next
// one when nothing triggers it, and what that pass's trigger is. It is
// pure: Run keeps one and tells it of every pass.
type schedule struct {
	backoff time.Duration // the last retry wait; 0 after a pass that did not fail
	first   bool          // the next interval wait is the first since start
	// due is when the next pass that fetches (interval or retry) is due,
	// and dueTrigger its trigger; zero before the first pass.
	due        time.Time
	dueTrigger string
}

// after is told that a pass with trigger ended at now with err, and
// returns the wait for the next pass and its trigger (r in [0, 1) for
// NextWait's jitter). A pass that failed is retried after 1s, 2s, 4s ...
// capped at the interval; a terminal error (a driver not wired in) is not
// retried sooner than the interval: nothing changes until the host's
// configuration does. A drift pass does not look at git (Agent.pass): the
// pass that does keeps its time, so drift however frequent never holds off
// the poll of git.
func (s *schedule) after(trigger string, err error, now time.Time, interval time.Duration, r float64) (time.Duration, string) {
	var wait time.Duration
	next := names.TriggerInterval
	switch {
	case err != nil && !errors.Is(err, controllers.ErrTerminal):
		s.backoff = min(max(2*s.backoff, time.Second), interval)
		wait, next = s.backoff, names.TriggerRetry
	case trigger == names.TriggerDriftEvent && !s.due.IsZero():
		s.backoff = 0
		wait, next = max(s.due.Sub(now), 0), s.dueTrigger
	default:
		s.backoff = 0
		wait = NextWait(interval, s.first, r)
		s.first = false
	}
	s.due, s.dueTrigger = now.Add(wait), next
	return wait, next
}
