package compose

import (
	"context"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"

	"reconciler.dev/reconciler/controllers"
)

// Uptime. The container list carries a container's creation and a Status
// text ("Up 5 minutes"), not its start: State.StartedAt needs an inspect.
// So the driver inspects a running container once, when it first sees it
// running, and keeps the start for as long as every observation lists it
// running (startTimes); an idle pass inspects nothing. A container seen not
// running is forgotten, so its next start is read again. What this misses:
// a container Docker restarted (its restart policy) between two
// observations that both list it running keeps the start read before.

// startTimes is the start of each container the driver saw running, by
// container ID, kept across passes. Safe for concurrent use.
type startTimes struct {
	mu sync.Mutex
	m  map[string]time.Time
}

// fillSince sets Since and ReplicasSince of every service in live (and of
// every selector member) from the starts of its running containers,
// inspecting those it has not seen running before. list is the container
// list live was made of: a container it does not list running is
// forgotten. An inspect that fails leaves that container's start unknown
// for this pass (uptime is never worth failing a pass for) and is tried
// again at the next.
func (d *Driver) fillSince(ctx context.Context, live map[string]controllers.Live, list []container.Summary) {
	st := &d.starts
	running := make(map[string]bool, len(list))
	for _, c := range list {
		if c.State == container.StateRunning {
			running[c.ID] = true
		}
	}
	each := func(f func(l *controllers.Live)) {
		for k, l := range live {
			f(&l)
			for i := range l.Members {
				f(&l.Members[i].Live)
			}
			live[k] = l
		}
	}
	st.mu.Lock()
	for id := range st.m {
		if !running[id] {
			delete(st.m, id)
		}
	}
	var unread []string
	each(func(l *controllers.Live) {
		sl, _ := l.Raw.(serviceLive)
		for _, r := range sl.Replicas {
			if _, known := st.m[r.ID]; r.running() && running[r.ID] && !known {
				unread = append(unread, r.ID)
			}
		}
	})
	st.mu.Unlock()
	read := map[string]time.Time{}
	for _, id := range unread {
		if _, done := read[id]; done {
			continue
		}
		at, err := d.startedAt(ctx, id)
		if err != nil {
			controllers.Logger(ctx).Debug("compose: a container's start time is unknown", "container", id, "err", err)
			continue
		}
		read[id] = at
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.m == nil {
		st.m = map[string]time.Time{}
	}
	for id, at := range read {
		st.m[id] = at
	}
	each(func(l *controllers.Live) { *l = withSince(*l, st.m) })
}

// startedAt inspects one container for its State.StartedAt.
func (d *Driver) startedAt(ctx context.Context, id string) (time.Time, error) {
	cctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	d.Count.Add("inspect")
	c, err := d.API.ContainerInspect(cctx, id)
	if err != nil {
		return time.Time{}, err
	}
	if c.ContainerJSONBase == nil || c.State == nil {
		return time.Time{}, nil
	}
	at, err := time.Parse(time.RFC3339Nano, c.State.StartedAt)
	if err != nil || at.Year() <= 1 {
		return time.Time{}, err
	}
	return at.UTC(), nil
}

// withSince is l with the starts of its running containers, by container
// name ("usm-poller-1"), and the earliest of them as Since. It is pure.
func withSince(l controllers.Live, starts map[string]time.Time) controllers.Live {
	sl, ok := l.Raw.(serviceLive)
	if !ok {
		return l
	}
	var since map[string]time.Time
	for _, r := range sl.Replicas {
		if at, known := starts[r.ID]; known && r.running() && !at.IsZero() {
			if since == nil {
				since = map[string]time.Time{}
			}
			since[r.Name] = at
		}
	}
	l.ReplicasSince, l.Since = since, controllers.EarliestSince(since)
	return l
}
