package swarm

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"reconciler.dev/reconciler/controllers"
)

// The driver's event stream: one GET /events per process, filtered to the
// managed services and their containers. Docker Engine 20.10 (API 1.41)
// raises no task events; what it does raise, and what the stream asks for:
//   - service create, update, remove (an update carries replicas.new and
//     image.new when those fields changed: a manual `docker service scale`
//     shows as replicas.new);
//   - container start and die, labelled com.docker.swarm.service.name: a
//     task's container starting or stopping, which is when the service's
//     running count can change.
//
// The `service` filter matches service names, and (by prefix) the names of
// their containers ("NAME.1.TASKID"); what it matches beyond the managed
// names is dropped here.

// EventStream opens Docker's /events with the given filters and returns its
// body once the daemon has answered: from then on no event is missed.
type EventStream func(ctx context.Context, f filters.Args) (io.ReadCloser, error)

// DockerEvents is the EventStream of a Docker client: the client's own
// transport, so DOCKER_HOST and API version negotiation hold as for every
// other call. (client.Events gives no sign of when the daemon answered.)
func DockerEvents(c *Client) EventStream {
	return func(ctx context.Context, f filters.Args) (io.ReadCloser, error) {
		q, err := filters.ToJSON(f)
		if err != nil {
			return nil, err
		}
		resp, err := c.get(ctx, "/events", url.Values{"filters": {q}})
		if err != nil {
			return nil, err
		}
		return resp.Body, nil
	}
}

// watch is the driver's stream and what it knows to judge events by.
type watch struct {
	feed controllers.Feed
	mu   sync.Mutex
	// names are the managed services, with whether git owns their image.
	names map[string]bool
	// open are the names the stream's filter covers.
	open map[string]bool
	// own is the last value this process wrote, by "name/field": an update
	// event that carries it is the driver's own doing, not drift.
	own    map[string]string
	follow controllers.Follower
}

// Watch follows the targets' services on Docker's /events (see above). It
// needs d.Events; without it the feed is never live and waits poll.
func (d *Driver) Watch(targets []controllers.Target) *controllers.Feed {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if d.w == nil {
		d.w = &watch{names: map[string]bool{}, open: map[string]bool{}, own: map[string]string{}}
	}
	w := d.w
	w.mu.Lock()
	w.names = map[string]bool{}
	for _, t := range targets {
		w.names[t.Name] = t.Service != nil && t.Service.Image != ""
	}
	grow := false
	for n := range w.names {
		if !w.open[n] {
			grow = true
		}
	}
	start := d.Events != nil && len(w.names) > 0 && w.follow.Start(func(ctx context.Context) { d.follow(ctx, w) })
	w.mu.Unlock()
	if grow && !start {
		w.follow.Retarget()
	}
	return &w.feed
}

// watching is the driver's stream, nil before the first Watch.
func (d *Driver) watching() *watch {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	return d.w
}

// Close stops the event stream.
func (d *Driver) Close() {
	if w := d.watching(); w != nil {
		w.follow.Stop()
	}
}

// wrote records a value the driver is about to write (see watch.own);
// undo puts the previous one back when the write failed.
func (d *Driver) wrote(name, field, value string) (undo func()) {
	w := d.watching()
	if w == nil {
		return func() {}
	}
	k := name + "/" + field
	w.mu.Lock()
	prev, had := w.own[k]
	w.own[k] = value
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if had {
			w.own[k] = prev
		} else {
			delete(w.own, k)
		}
	}
}

// stream is one open /events request.
type stream struct {
	body io.ReadCloser
	dead chan error
}

// follow keeps a stream open until ctx ends: reopened with backoff when it
// breaks (dockerd restarted), and reopened for a wider filter (the new one
// open before the old one closes, so nothing is missed) when managed names
// are added.
func (d *Driver) follow(ctx context.Context, w *watch) {
	log := controllers.Logger(ctx)
	var cur *stream
	defer func() {
		if cur != nil {
			cur.body.Close()
		}
		w.feed.SetLive(false)
	}()
	backoff, upSince := time.Duration(0), time.Time{}
	open := func() (*stream, error) {
		w.mu.Lock()
		names := make([]string, 0, len(w.names))
		for n := range w.names {
			names = append(names, n)
		}
		w.mu.Unlock()
		sort.Strings(names)
		f := filters.NewArgs(filters.Arg("type", string(events.ServiceEventType)), filters.Arg("type", string(events.ContainerEventType)))
		for _, a := range []events.Action{events.ActionCreate, events.ActionUpdate, events.ActionRemove, events.ActionStart, events.ActionDie} {
			f.Add("event", string(a))
		}
		for _, n := range names {
			f.Add("service", n)
		}
		d.Count.Add("events")
		body, err := d.Events(ctx, f)
		if err != nil {
			return nil, err
		}
		w.mu.Lock()
		w.open = map[string]bool{}
		for _, n := range names {
			w.open[n] = true
		}
		w.mu.Unlock()
		s := &stream{body: body, dead: make(chan error, 1)}
		go func() { s.dead <- d.read(body, w) }()
		return s, nil
	}
	for ctx.Err() == nil {
		if cur == nil {
			s, err := open()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				w.feed.SetLive(false)
				backoff = controllers.Backoff(backoff, 0)
				log.Debug("docker event stream not open; waits poll meanwhile", "err", err, "retry", backoff)
				select {
				case <-ctx.Done():
				case <-time.After(backoff):
				}
				continue
			}
			cur, upSince = s, time.Now()
			w.feed.SetLive(true)
		}
		select {
		case <-ctx.Done():
		case <-w.follow.Retargets():
			if s, err := open(); err == nil {
				cur.body.Close()
				cur = s
			}
		case err := <-cur.dead:
			cur.body.Close()
			cur = nil
			w.feed.SetLive(false)
			backoff = controllers.Backoff(backoff, time.Since(upSince))
			if ctx.Err() == nil {
				log.Info("docker event stream broke; waits poll until it is back", "err", err, "retry", backoff)
				select {
				case <-ctx.Done():
				case <-time.After(backoff):
				}
			}
		}
	}
}

// read decodes events until the stream ends.
func (d *Driver) read(body io.Reader, w *watch) error {
	dec := json.NewDecoder(body)
	for {
		var m events.Message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF // the daemon never ends the stream itself
			}
			return err
		}
		w.handle(m)
	}
}

// handle tells the feed about one event.
func (w *watch) handle(m events.Message) {
	w.mu.Lock()
	var name string
	switch m.Type {
	case events.ServiceEventType:
		name = m.Actor.Attributes["name"]
	case events.ContainerEventType:
		name = m.Actor.Attributes["com.docker.swarm.service.name"]
	}
	ownsImage, managed := w.names[name]
	drift := false
	if managed && m.Type == events.ServiceEventType {
		drift = serviceDrift(m, w.own[name+"/replicas"], w.own[name+"/image"], ownsImage)
	}
	w.mu.Unlock()
	if managed && m.Type == events.ServiceEventType && m.Action == events.ActionUpdate && !drift && ownScaleOnly(m) {
		// The driver's own scale: nothing a wait waits for changed yet
		// (the containers starting or stopping will say so).
		return
	}
	if managed {
		w.feed.Changed(controllers.Target{Kind: controllers.KindService, Driver: "swarm", Name: name}.Subject(), drift)
	}
}

// serviceDrift judges a service event: created or removed (a managed service
// appears or goes missing), or updated to a replica count or (when git owns
// it) an image other than what this process last wrote. Updates of other
// fields, and Swarm's own update-status changes, are not drift. It is pure.
func serviceDrift(m events.Message, ownReplicas, ownImage string, ownsImage bool) bool {
	switch m.Action {
	case events.ActionCreate, events.ActionRemove:
		return true
	case events.ActionUpdate:
		a := m.Actor.Attributes
		if r, ok := a["replicas.new"]; ok && r != ownReplicas {
			return true
		}
		if img, ok := a["image.new"]; ok && ownsImage && (ownImage == "" || !sameImage(img, ownImage)) {
			return true
		}
	}
	return false
}

// ownScaleOnly is true for an update event that says only that the replica
// count changed.
func ownScaleOnly(m events.Message) bool {
	for k := range m.Actor.Attributes {
		if k != "name" && k != "replicas.new" && k != "replicas.old" {
			return false
		}
	}
	return true
}
