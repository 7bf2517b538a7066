package compose

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

// startsAPI lists containers and answers inspects with their start,
// counting the inspects.
type startsAPI struct {
	*recorder
	list     []container.Summary
	started  map[string]string // container ID -> State.StartedAt
	inspects []string
}

func (a *startsAPI) ContainerList(context.Context, container.ListOptions) ([]container.Summary, error) {
	return a.list, nil
}

func (a *startsAPI) ContainerInspect(_ context.Context, id string) (container.InspectResponse, error) {
	a.inspects = append(a.inspects, id)
	at, ok := a.started[id]
	if !ok {
		return container.InspectResponse{}, errors.New("no such container")
	}
	return container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{ID: id, State: &container.State{StartedAt: at}}}, nil
}

// A running container is inspected once, when first seen running; passes
// that list it running again inspect nothing; one seen stopped is read
// again once it runs again; an inspect that fails is tried again.
func TestObserveReadsStartsOnce(t *testing.T) {
	c1 := composeContainer("usm", "poller", "1", 10, false)
	c2 := composeContainer("usm", "poller", "2", 10, false)
	other := composeContainer("other", "web", "1", 10, false) // not declared: never inspected
	api := &startsAPI{recorder: &recorder{}, list: []container.Summary{c1, c2, other}, started: map[string]string{
		c1.ID: "2026-12-02T10:00:00.123456789Z", c2.ID: "2026-12-02T11:00:00Z", other.ID: "2026-12-02T09:00:00Z"}}
	d := &Driver{API: api, StartTimes: true}
	ts := []controllers.Target{{Kind: controllers.KindService, Name: "poller", Driver: v1.DriverCompose, Replicas: 2,
		Service: &v1.Service{Name: "poller", Driver: v1.DriverCompose, Project: "usm", Replicas: v1.Ptr[int32](2)}}}
	observe := func() controllers.Live {
		t.Helper()
		live, err := d.Observe(context.Background(), ts)
		if err != nil {
			t.Fatal(err)
		}
		return live["compose/poller"]
	}
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339Nano, s); return v }
	l := observe()
	want := map[string]time.Time{"usm_poller_1": at(api.started[c1.ID]), "usm_poller_2": at(api.started[c2.ID])}
	if !maps.EqualFunc(l.ReplicasSince, want, time.Time.Equal) || !l.Since.Equal(want["usm_poller_1"]) {
		t.Fatalf("since %v, replicas %v; want %v", l.Since, l.ReplicasSince, want)
	}
	if len(api.inspects) != 2 {
		t.Fatalf("first pass inspected %v, want the two declared containers", api.inspects)
	}
	api.inspects = nil
	if l = observe(); len(api.inspects) != 0 || !l.Since.Equal(want["usm_poller_1"]) {
		t.Fatalf("an idle pass inspected %v (since %v)", api.inspects, l.Since)
	}

	// Container 1 stops, then runs again from a later start.
	api.list[0].State = container.StateExited
	if l = observe(); len(api.inspects) != 0 || !l.Since.Equal(want["usm_poller_2"]) || len(l.ReplicasSince) != 1 {
		t.Fatalf("with 1 stopped: inspected %v, since %v %v", api.inspects, l.Since, l.ReplicasSince)
	}
	api.list[0].State = container.StateRunning
	api.started[c1.ID] = "2026-12-02T12:00:00Z"
	if l = observe(); len(api.inspects) != 1 || !l.ReplicasSince["usm_poller_1"].Equal(at("2026-12-02T12:00:00Z")) {
		t.Fatalf("running again: inspected %v, replicas %v", api.inspects, l.ReplicasSince)
	}

	// An inspect that fails: the start is unknown, and read at the next pass.
	api.inspects = nil
	c3 := composeContainer("usm", "poller", "3", 10, false)
	api.list = append(api.list, c3)
	if l = observe(); len(api.inspects) != 1 || len(l.ReplicasSince) != 2 {
		t.Fatalf("failed inspect: inspected %v, replicas %v", api.inspects, l.ReplicasSince)
	}
	api.started[c3.ID] = "2026-12-02T13:00:00Z"
	if l = observe(); len(api.inspects) != 2 || len(l.ReplicasSince) != 3 {
		t.Fatalf("after a failed inspect: inspected %v, replicas %v", api.inspects, l.ReplicasSince)
	}

	// Without StartTimes (a one-shot plan): no inspect, no uptime.
	api.inspects = nil
	d = &Driver{API: api}
	if l = observe(); len(api.inspects) != 0 || !l.Since.IsZero() {
		t.Fatalf("StartTimes off: inspected %v, since %v", api.inspects, l.Since)
	}
}
