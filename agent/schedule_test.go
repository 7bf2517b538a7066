package agent

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/controllers"
)

// TestSchedule: each case is a run of passes (trigger, seconds after the
// agent started that it ended, whether it failed) and the wait and trigger
// the schedule gives after each, with interval 30s and r = 0.5 (waits of
// exactly 30s).
func TestSchedule(t *testing.T) {
	const interval = 30 * time.Second
	failed := errors.New("a pass failed")
	terminal := fmt.Errorf("no driver: %w", controllers.ErrTerminal)
	type pass struct {
		trigger string
		at      float64 // seconds since start
		err     error
		wait    float64 // seconds
		next    string
	}
	for _, c := range []struct {
		name   string
		passes []pass
	}{
		{"intervals", []pass{
			{names.TriggerStartup, 1, nil, 30, names.TriggerInterval},
			{names.TriggerInterval, 31, nil, 30, names.TriggerInterval},
		}},
		{"retries back off, then the interval", []pass{
			{names.TriggerStartup, 1, failed, 1, names.TriggerRetry},
			{names.TriggerRetry, 2, failed, 2, names.TriggerRetry},
			{names.TriggerRetry, 4, failed, 4, names.TriggerRetry},
			{names.TriggerRetry, 8, nil, 30, names.TriggerInterval},
			{names.TriggerInterval, 38, failed, 1, names.TriggerRetry},
		}},
		{"a terminal error waits the interval", []pass{
			{names.TriggerStartup, 1, terminal, 30, names.TriggerInterval},
		}},
		{"drift passes keep the poll's time", []pass{
			{names.TriggerStartup, 1, nil, 30, names.TriggerInterval},
			{names.TriggerDriftEvent, 11, nil, 20, names.TriggerInterval},
			{names.TriggerDriftEvent, 12.5, nil, 18.5, names.TriggerInterval},
			{names.TriggerDriftEvent, 40, nil, 0, names.TriggerInterval}, // the poll is overdue
			{names.TriggerInterval, 41, nil, 30, names.TriggerInterval},
		}},
		{"a drift pass keeps a retry due", []pass{
			{names.TriggerStartup, 1, failed, 1, names.TriggerRetry},
			{names.TriggerRetry, 2, failed, 2, names.TriggerRetry},
			{names.TriggerDriftEvent, 3, nil, 1, names.TriggerRetry},
		}},
		{"a drift pass that fails is retried", []pass{
			{names.TriggerStartup, 1, nil, 30, names.TriggerInterval},
			{names.TriggerDriftEvent, 5, failed, 1, names.TriggerRetry},
			{names.TriggerRetry, 6, nil, 30, names.TriggerInterval},
		}},
		{"a webhook pass sets the poll anew", []pass{
			{names.TriggerStartup, 1, nil, 30, names.TriggerInterval},
			{names.TriggerWebhook, 10, nil, 30, names.TriggerInterval},
			{names.TriggerDriftEvent, 20, nil, 20, names.TriggerInterval},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Unix(1_000_000, 0)
			s := schedule{first: true}
			for i, p := range c.passes {
				at := start.Add(time.Duration(p.at * float64(time.Second)))
				wait, next := s.after(p.trigger, p.err, at, interval, 0.5)
				if want := time.Duration(p.wait * float64(time.Second)); wait != want || next != p.next {
					t.Errorf("after pass %d (%s at %gs, err %v): wait %s, next %s; want %s, %s", i+1, p.trigger, p.at, p.err, wait, next, want, p.next)
				}
			}
		})
	}
}
