//go:build e2e

package e2e

// Docker's own account of what happened while a test acted: its event
// stream, recorded, so that order and timing are asserted from Docker, not
// from the reconciler's logs.

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
)

// eventLog records a dockerd's events while a test acts.
type eventLog struct {
	mu     sync.Mutex
	since  time.Time // the first moment recorded
	events []events.Message
	cancel context.CancelFunc
	done   chan struct{}
	host   string // the dockerd's host, when a test watches several
}

// recordDockerEvents records every event of cli that args lets through,
// from now until stop or the end of the test. It returns once the
// subscription is live.
func recordDockerEvents(t testing.TB, cli *client.Client, args filters.Args) *eventLog {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	el := &eventLog{since: time.Now(), cancel: cancel, done: make(chan struct{})}
	msgs, errs := cli.Events(ctx, events.ListOptions{Since: strconv.FormatInt(el.since.Unix(), 10), Filters: args})
	go func() {
		defer close(el.done)
		for {
			select {
			case m := <-msgs:
				if m.TimeNano >= el.since.UnixNano() { // Since counts in whole seconds
					el.mu.Lock()
					el.events = append(el.events, m)
					el.mu.Unlock()
				}
			case <-errs:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	// The subscription is live once Docker answers; a ping after it orders it.
	if _, err := cli.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(el.stop)
	return el
}

// watchDockerEvents records a dockerd's container and service events
// always; extra names more types (node: the swarm's leader changes and
// node states).
func watchDockerEvents(t testing.TB, cli *client.Client, extra ...events.Type) *eventLog {
	t.Helper()
	args := filters.NewArgs(filters.Arg("type", "container"), filters.Arg("type", "service"))
	for _, ty := range extra {
		args.Add("type", string(ty))
	}
	return recordDockerEvents(t, cli, args)
}

// stop ends the recording; it returns once nothing more is recorded.
func (el *eventLog) stop() {
	el.cancel()
	<-el.done
}
