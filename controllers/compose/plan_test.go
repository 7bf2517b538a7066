package compose

import (
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/drivertest"
	"reconciler.dev/reconciler/controllers/engine/enginetest"
)

// targets builds the pass's targets from declared services the way the
// engine does.
var targets = enginetest.ServiceTargets

// declare is a compose service as the YAML would declare it.
func declare(project, name string, replicas int32) v1.Service {
	return v1.Service{Name: name, Driver: v1.DriverCompose, Project: project, Replicas: v1.Ptr(replicas)}
}

// ctr is a container as ContainerList returns it, with the labels compose
// puts on replica n of project/service.
func ctr(project, service string, n int, state container.ContainerState) container.Summary {
	name := ContainerName(project, service, n)
	return container.Summary{
		ID:    "id-" + name,
		Names: []string{"/" + name},
		State: state,
		Labels: map[string]string{
			LabelProject: project, LabelService: service, LabelNumber: strconv.Itoa(n),
			LabelOneoff: "False", "com.docker.compose.config-hash": "c0ffee",
		},
	}
}

// poller is container n of usm/poller.
func poller(n int, state container.ContainerState) container.Summary {
	return ctr("usm", "poller", n, state)
}

// pollers are containers of usm/poller in state, numbered ns.
func pollers(state container.ContainerState, ns ...int) []container.Summary {
	var out []container.Summary
	for _, n := range ns {
		out = append(out, poller(n, state))
	}
	return out
}

const (
	running    = container.StateRunning
	exited     = container.StateExited
	created    = container.StateCreated
	restarting = container.StateRestarting
	paused     = container.StatePaused
)

func join(lists ...[]container.Summary) []container.Summary {
	var out []container.Summary
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// action is the expected replicas action on compose service name.
var action = drivertest.ReplicasOf(v1.DriverCompose)

func TestPlan(t *testing.T) {
	cases := []struct {
		name     string
		services []v1.Service
		live     []container.Summary
		want     []controllers.Action
	}{
		{"in sync", []v1.Service{declare("usm", "poller", 5)}, pollers(running, 1, 2, 3, 4, 5), nil},
		{"1 -> 5", []v1.Service{declare("usm", "poller", 5)}, pollers(running, 1),
			[]controllers.Action{action("poller", "1", "5", controllers.OpScaleUp)}},
		{"5 -> 2", []v1.Service{declare("usm", "poller", 2)}, pollers(running, 1, 2, 3, 4, 5),
			[]controllers.Action{action("poller", "5", "2", controllers.OpScaleDown)}},
		{"2 -> 0", []v1.Service{declare("usm", "poller", 0)}, pollers(running, 1, 2),
			[]controllers.Action{action("poller", "2", "0", controllers.OpScaleDown)}},
		{"at 0 the kept template is not drift", []v1.Service{declare("usm", "poller", 0)}, pollers(exited, 1), nil},
		{"0 -> 3 from the kept template", []v1.Service{declare("usm", "poller", 3)}, pollers(exited, 1),
			[]controllers.Action{action("poller", "0", "3", controllers.OpScaleUp)}},
		{"no container at all is missing, never created", []v1.Service{declare("usm", "poller", 3)}, nil,
			[]controllers.Action{action("poller", "absent", "3", controllers.OpMissing)}},
		{"no container at all is missing at 0 too", []v1.Service{declare("usm", "poller", 0)}, nil,
			[]controllers.Action{action("poller", "absent", "0", controllers.OpMissing)}},
		{"the same service name in another project does not count", []v1.Service{declare("usm", "poller", 1)},
			[]container.Summary{ctr("other", "poller", 1, running), ctr("usm", "poller-2", 1, running)},
			[]controllers.Action{action("poller", "absent", "1", controllers.OpMissing)}},
		{
			name:     "one-off containers (docker compose run) are not replicas",
			services: []v1.Service{declare("usm", "poller", 1)},
			live: join(pollers(running, 1), func() []container.Summary {
				c := poller(2, running)
				c.Labels[LabelOneoff] = "True"
				return []container.Summary{c}
			}()),
		},
		{
			name:     "a container without a number is not a replica",
			services: []v1.Service{declare("usm", "poller", 1)},
			live: join(pollers(running, 1), func() []container.Summary {
				c := poller(7, running)
				delete(c.Labels, LabelNumber)
				return []container.Summary{c}
			}()),
		},
		{"a container removed by hand leaves a gap, filled by a scale-up", []v1.Service{declare("usm", "poller", 5)},
			pollers(running, 1, 2, 4, 5), []controllers.Action{action("poller", "4", "5", controllers.OpScaleUp)}},
		{"right count, wrong numbers: the extra goes, the gap is filled", []v1.Service{declare("usm", "poller", 3)},
			pollers(running, 1, 2, 4),
			[]controllers.Action{
				action("poller", "3", "2", controllers.OpScaleDown),
				action("poller", "2", "3", controllers.OpScaleUp),
			}},
		{"only higher numbers left: they go, 1..N come", []v1.Service{declare("usm", "poller", 2)}, pollers(running, 3, 4),
			[]controllers.Action{
				action("poller", "2", "0", controllers.OpScaleDown),
				action("poller", "0", "2", controllers.OpScaleUp),
			}},
		{"a stopped container within the count is brought up", []v1.Service{declare("usm", "poller", 3)},
			join(pollers(running, 1, 3), pollers(exited, 2)),
			[]controllers.Action{action("poller", "2", "3", controllers.OpScaleUp)}},
		{"a container created but never started counts as not started", []v1.Service{declare("usm", "poller", 2)},
			join(pollers(running, 1), pollers(created, 2)),
			[]controllers.Action{action("poller", "1", "2", controllers.OpScaleUp)}},
		{"stopped containers beyond the count run nothing: not drift", []v1.Service{declare("usm", "poller", 2)},
			join(pollers(running, 1, 2), pollers(exited, 3, 4)), nil},
		{"restarting and paused containers hold their places", []v1.Service{declare("usm", "poller", 3)},
			join(pollers(running, 1), pollers(restarting, 2), pollers(paused, 3)), nil},
		{"a restarting container beyond the count is scaled down", []v1.Service{declare("usm", "poller", 1)},
			join(pollers(running, 1), pollers(restarting, 2)),
			[]controllers.Action{action("poller", "2", "1", controllers.OpScaleDown)}},
		{"report-only mode is carried on the action",
			[]v1.Service{
				{Name: "poller", Driver: v1.DriverCompose, Project: "usm", Replicas: v1.Ptr[int32](5), Drift: v1.DriftReport},
			},
			pollers(running, 1, 2, 4, 5),
			[]controllers.Action{drivertest.ReportOnly(action("poller", "4", "5", controllers.OpScaleUp))}},
		{"several services keep target order, whatever the list order",
			[]v1.Service{
				declare("usm", "poller", 3),
				declare("usm", "broker", 1),
				declare("sat", "poller-b", 0),
				declare("sat", "gone", 1),
			},
			join([]container.Summary{ctr("sat", "poller-b", 2, running), ctr("usm", "broker", 1, running)}, pollers(running, 1), []container.Summary{ctr("sat", "poller-b", 1, running)}),
			[]controllers.Action{
				action("poller", "1", "3", controllers.OpScaleUp),
				action("poller-b", "2", "0", controllers.OpScaleDown),
				action("gone", "absent", "1", controllers.OpMissing),
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := targets(tc.services...)
			drivertest.CheckActions(t, Plan(ts, liveFromList(ts, tc.live)), tc.want)
		})
	}
}

func TestHealth(t *testing.T) {
	cases := []struct {
		name    string
		replica int32
		live    []container.Summary
		ready   bool
		drained bool
		reason  string // a part of the reason
	}{
		{
			name: "ready", replica: 3, live: pollers(running, 1, 2, 3),
			ready: true, drained: true, reason: "3/3 running",
		},
		{
			name: "scaling up, some not created yet", replica: 5, live: pollers(running, 1, 2),
			ready: false, drained: true, reason: "not running: 3-5",
		},
		{
			name: "created but not yet running", replica: 2, live: join(pollers(running, 1), pollers(created, 2)),
			ready: false, drained: true, reason: "not running: 2",
		},
		{
			name: "restarting within the count is not ready", replica: 2, live: join(pollers(running, 1), pollers(restarting, 2)),
			ready: false, drained: true, reason: "1/2 running",
		},
		{
			name: "right count, wrong numbers", replica: 3, live: pollers(running, 1, 2, 5),
			ready: false, drained: false, reason: "not running: 3; still up beyond 3: 5",
		},
		{
			name: "scaling down, extras still up", replica: 2, live: pollers(running, 1, 2, 3, 4),
			ready: false, drained: false, reason: "still up beyond 2: 3-4",
		},
		{
			name: "scaled down, extras stopped and kept", replica: 2, live: join(pollers(running, 1, 2), pollers(exited, 3)),
			ready: true, drained: true, reason: "2/2 running",
		},
		{
			name: "at 0 with the template kept", replica: 0, live: pollers(exited, 1),
			ready: true, drained: true, reason: "0/0 running",
		},
		{
			name: "to 0, the last one still stopping", replica: 0, live: pollers(running, 1),
			ready: false, drained: false, reason: "still up beyond 0: 1",
		},
		{
			name: "missing", replica: 1, live: []container.Summary{ctr("usm", "other", 1, running)},
			ready: false, drained: false, reason: "docker compose up the project once",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := targets(declare("usm", "poller", tc.replica))
			h := Health(ts[0], liveFromList(ts, tc.live)[ts[0].Subject()])
			if h.Ready != tc.ready || h.Drained != tc.drained || !strings.Contains(h.Reason, tc.reason) {
				t.Errorf("Health = %+v, want ready %v, drained %v, reason containing %q", h, tc.ready, tc.drained, tc.reason)
			}
		})
	}
}

func TestLiveFromList(t *testing.T) {
	ts := targets(declare("usm", "poller", 3), declare("usm", "absent", 1))
	got := liveFromList(ts, join(
		pollers(running, 5, 1), pollers(exited, 4), pollers(restarting, 2),
		[]container.Summary{ctr("usm", "broker", 1, running)},
	))
	p := got["compose/poller"]
	if !p.Exists || p.Replicas != 3 || p.Running != 2 || p.State != "2/3 running" {
		t.Errorf("poller live = %+v, want exists, 3 started, 2 running", p)
	}
	// Number 2 is in Docker's restart loop: failing (4 is beyond the 3 wanted).
	wantDetails := map[string]string{"project": "usm", "running": "1,5", "not running": "2,4", "failing": "usm-poller-2 restarting"}
	if p.Failing != "usm-poller-2 restarting" {
		t.Errorf("failing = %q", p.Failing)
	}
	if !reflect.DeepEqual(p.Details, wantDetails) {
		t.Errorf("details = %v, want %v", p.Details, wantDetails)
	}
	sl := p.Raw.(serviceLive)
	var order []int
	for _, r := range sl.Replicas {
		order = append(order, r.Number)
	}
	if !reflect.DeepEqual(order, []int{1, 2, 4, 5}) || sl.Replicas[0].Name != "usm-poller-1" {
		t.Errorf("replicas in order %v (first %q), want 1,2,4,5 named usm-poller-N", order, sl.Replicas[0].Name)
	}
	if a := got["compose/absent"]; a.Exists || !strings.Contains(a.State, "missing") {
		t.Errorf("absent service live = %+v, want missing", a)
	}
	if len(got) != 2 {
		t.Errorf("got %d entries, want 2: %v", len(got), got)
	}
}

func TestNumbers(t *testing.T) {
	for _, tc := range []struct {
		in   []int
		want string
	}{
		{nil, "none"},
		{[]int{1}, "1"},
		{[]int{3, 1, 2}, "1-3"},
		{[]int{1, 2, 4, 5, 7}, "1-2,4-5,7"},
		{[]int{2, 2, 3}, "2-3"},
	} {
		if got := numbers(tc.in); got != tc.want {
			t.Errorf("numbers(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
