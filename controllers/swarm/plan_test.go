package swarm

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/swarm"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/drivertest"
	"reconciler.dev/reconciler/controllers/engine/enginetest"
)

// targets builds the pass's targets from declared services the way the
// engine does.
var targets = enginetest.ServiceTargets

// declare is a swarm service as the YAML would declare it; image "" leaves
// the image to the stack.
func declare(name string, replicas int32, image string) v1.Service {
	return v1.Service{Name: name, Replicas: v1.Ptr(replicas), Image: image}
}

// service is a replicated service as ServiceList (with Status) returns it.
func service(name string, replicas, running uint64, image string) swarm.Service {
	return swarm.Service{
		ID: "id-" + name,
		Spec: swarm.ServiceSpec{
			Annotations:  swarm.Annotations{Name: name},
			Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
			TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image}},
		},
		ServiceStatus: &swarm.ServiceStatus{RunningTasks: running, DesiredTasks: replicas},
	}
}

// global is a global service: it runs one task per node and has no count.
func global(name string, running uint64, image string) swarm.Service {
	s := service(name, 0, running, image)
	s.Spec.Mode = swarm.ServiceMode{Global: &swarm.GlobalService{}}
	return s
}

// updatingService marks a rolling update in progress.
func updatingService(s swarm.Service) swarm.Service {
	s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateUpdating}
	return s
}

// action is the expected action on swarm service name.
func action(name, field, from, to string, op controllers.Op) controllers.Action {
	return drivertest.Service(v1.DriverSwarm, name, field, from, to, op)
}

func TestPlan(t *testing.T) {
	const digest = "@sha256:9b7f3c0aa1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c"
	cases := []struct {
		name     string
		services []v1.Service
		live     []swarm.Service
		want     []controllers.Action
	}{
		{"in sync", []v1.Service{declare("factory-proxy", 2, ""), declare("factory-broker", 1, "broker:3")},
			[]swarm.Service{service("factory-proxy", 2, 2, "proxy:1"), service("factory-broker", 1, 1, "broker:3")}, nil},
		{"in sync while tasks are still starting: the spec count is what is owned", []v1.Service{declare("factory-proxy", 3, "")},
			[]swarm.Service{service("factory-proxy", 3, 1, "proxy:1")}, nil},
		{"scale up", []v1.Service{declare("factory-proxy", 3, "")}, []swarm.Service{service("factory-proxy", 1, 1, "proxy:1")},
			[]controllers.Action{action("factory-proxy", "replicas", "1", "3", controllers.OpScaleUp)}},
		{"scale down", []v1.Service{declare("factory-proxy", 1, "")}, []swarm.Service{service("factory-proxy", 4, 4, "proxy:1")},
			[]controllers.Action{action("factory-proxy", "replicas", "4", "1", controllers.OpScaleDown)}},
		{"to 0", []v1.Service{declare("factory-proxy", 0, "")}, []swarm.Service{service("factory-proxy", 2, 2, "proxy:1")},
			[]controllers.Action{action("factory-proxy", "replicas", "2", "0", controllers.OpScaleDown)}},
		{"missing service is reported, never created", []v1.Service{declare("factory-proxy", 1, "proxy:1")}, nil,
			[]controllers.Action{action("factory-proxy", "replicas", "absent", "1", controllers.OpMissing)}},
		{"a service that only shares a prefix does not count", []v1.Service{declare("factory-proxy", 1, "")},
			[]swarm.Service{service("factory-proxy-2", 1, 1, "proxy:1")},
			[]controllers.Action{action("factory-proxy", "replicas", "absent", "1", controllers.OpMissing)}},
		{"global service has no count to own", []v1.Service{declare("node-exporter", 1, "exporter:2")},
			[]swarm.Service{global("node-exporter", 1, "exporter:1")},
			[]controllers.Action{action("node-exporter", "replicas", "global", "1", controllers.OpUnsupported)}},
		{"declared image differs", []v1.Service{declare("factory-proxy", 1, "proxy:2")},
			[]swarm.Service{service("factory-proxy", 1, 1, "proxy:1")},
			[]controllers.Action{action("factory-proxy", "image", "proxy:1", "proxy:2", controllers.OpSetImage)}},
		{"declared image differs from a pinned one", []v1.Service{declare("factory-proxy", 1, "proxy:2")},
			[]swarm.Service{service("factory-proxy", 1, 1, "proxy:1"+digest)},
			[]controllers.Action{action("factory-proxy", "image", "proxy:1"+digest, "proxy:2", controllers.OpSetImage)}},
		{"same image pinned to a digest live is equal", []v1.Service{declare("factory-proxy", 1, "img:1")},
			[]swarm.Service{service("factory-proxy", 1, 1, "img:1"+digest)}, nil},
		{"same image on a registry with a port, pinned, is equal",
			[]v1.Service{declare("factory-proxy", 1, "registry.local:5000/img:1")},
			[]swarm.Service{service("factory-proxy", 1, 1, "registry.local:5000/img:1"+digest)}, nil},
		{
			// The Docker client writes images tagged and in familiar form
			// ("nginx" becomes "nginx:latest") before Swarm sees them.
			name:     "untagged declared image equals the live latest tag, pinned",
			services: []v1.Service{declare("factory-proxy", 1, "nginx")},
			live:     []swarm.Service{service("factory-proxy", 1, 1, "nginx:latest"+digest)},
		},
		{"fully qualified declared image equals its familiar live form",
			[]v1.Service{declare("factory-proxy", 1, "docker.io/library/nginx:1.25")},
			[]swarm.Service{service("factory-proxy", 1, 1, "nginx:1.25")}, nil},
		{"untagged declared image differs from another live tag", []v1.Service{declare("factory-proxy", 1, "nginx")},
			[]swarm.Service{service("factory-proxy", 1, 1, "nginx:1.25"+digest)},
			[]controllers.Action{action("factory-proxy", "image", "nginx:1.25"+digest, "nginx", controllers.OpSetImage)}},
		{"declared digest must match exactly", []v1.Service{declare("factory-proxy", 1, "img:1@sha256:aaaa")},
			[]swarm.Service{service("factory-proxy", 1, 1, "img:1"+digest)},
			[]controllers.Action{action("factory-proxy", "image", "img:1"+digest, "img:1@sha256:aaaa", controllers.OpSetImage)}},
		{"no image declared: the stack's image stays", []v1.Service{declare("factory-proxy", 1, "")},
			[]swarm.Service{service("factory-proxy", 1, 1, "something-else:9")}, nil},
		{"replicas and image differ: replicas first", []v1.Service{declare("factory-proxy", 2, "proxy:2")},
			[]swarm.Service{service("factory-proxy", 1, 1, "proxy:1")},
			[]controllers.Action{
				action("factory-proxy", "replicas", "1", "2", controllers.OpScaleUp),
				action("factory-proxy", "image", "proxy:1", "proxy:2", controllers.OpSetImage),
			}},
		{"report-only mode is carried on the action",
			[]v1.Service{
				{Name: "reference-BL", Replicas: v1.Ptr[int32](1), Image: "bl:2", Drift: v1.DriftReport},
				declare("factory-proxy", 1, ""),
			},
			[]swarm.Service{service("reference-BL", 0, 0, "bl:1"), service("factory-proxy", 0, 0, "proxy:1")},
			[]controllers.Action{
				drivertest.ReportOnly(action("reference-BL", "replicas", "0", "1", controllers.OpScaleUp)),
				drivertest.ReportOnly(action("reference-BL", "image", "bl:1", "bl:2", controllers.OpSetImage)),
				action("factory-proxy", "replicas", "0", "1", controllers.OpScaleUp),
			}},
		{"several targets keep target order, whatever the list order",
			[]v1.Service{
				declare("factory-broker", 1, ""),
				declare("factory-proxy", 0, ""),
				declare("reference-BL", 3, ""),
				declare("in-sync", 1, ""),
				declare("gone", 1, ""),
			},
			[]swarm.Service{
				service("reference-BL", 1, 1, "bl:1"),
				service("in-sync", 1, 1, "x:1"),
				service("factory-proxy", 1, 1, "proxy:1"),
				service("factory-broker", 0, 0, "broker:1"),
			},
			[]controllers.Action{
				action("factory-broker", "replicas", "0", "1", controllers.OpScaleUp),
				action("factory-proxy", "replicas", "1", "0", controllers.OpScaleDown),
				action("reference-BL", "replicas", "1", "3", controllers.OpScaleUp),
				action("gone", "replicas", "absent", "1", controllers.OpMissing),
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := targets(tc.services...)
			drivertest.CheckActions(t, Plan(ts, liveFromList(ts, listed(tc.live...))), tc.want)
		})
	}
}

func TestHealth(t *testing.T) {
	cases := []struct {
		name    string
		service v1.Service
		live    swarm.Service
		ready   bool
		drained bool
		reason  string // a part of the reason
	}{
		{"ready", declare("factory-proxy", 2, ""), service("factory-proxy", 2, 2, "proxy:1"), true, true, "2/2 running"},
		{"not ready while tasks are starting", declare("factory-proxy", 3, ""), service("factory-proxy", 3, 1, "proxy:1"), false, true, "1/3 running"},
		{"not ready before the spec was scaled", declare("factory-proxy", 3, ""), service("factory-proxy", 1, 1, "proxy:1"), false, true, "1/3 running"},
		{"scaled down, extra tasks still running: not drained", declare("factory-proxy", 1, ""), service("factory-proxy", 1, 3, "proxy:1"), false, false, "3/1 running"},
		{"scaled to 0, tasks still running: not drained", declare("factory-proxy", 0, ""), service("factory-proxy", 0, 2, "proxy:1"), false, false, "2/0 running"},
		{"at 0, drained", declare("factory-proxy", 0, ""), service("factory-proxy", 0, 0, "proxy:1"), true, true, "0/0 running"},
		{"update in progress", declare("factory-proxy", 2, "proxy:2"), updatingService(service("factory-proxy", 2, 2, "proxy:2")), false, true, "update in progress"},
		{"declared image not yet live", declare("factory-proxy", 1, "proxy:2"), service("factory-proxy", 1, 1, "proxy:1"), false, true, "image proxy:1"},
		{"declared image live, pinned to a digest", declare("factory-proxy", 1, "proxy:2"), service("factory-proxy", 1, 1, "proxy:2@sha256:abcd"), true, true, ""},
		{"untagged declared image live as latest", declare("factory-proxy", 1, "nginx"), service("factory-proxy", 1, 1, "nginx:latest"), true, true, ""},
		{"missing", declare("factory-proxy", 1, ""), service("factory-proxy-2", 1, 1, "proxy:1"), false, false, "service missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := targets(tc.service)
			h := Health(ts[0], liveFromList(ts, listed(tc.live))[ts[0].Subject()])
			if h.Ready != tc.ready || h.Drained != tc.drained || !strings.Contains(h.Reason, tc.reason) {
				t.Errorf("Health = %+v, want ready %v, drained %v, reason containing %q", h, tc.ready, tc.drained, tc.reason)
			}
		})
	}
}

func TestLiveFromList(t *testing.T) {
	proxy := service("factory-proxy", 3, 2, "proxy:1@sha256:abcd")
	proxy2 := service("factory-proxy-2", 5, 5, "proxy:9")
	upd := updatingService(service("factory-broker", 1, 1, "broker:2"))
	glob := global("node-exporter", 4, "exporter:1")
	ts := targets(declare("factory-proxy", 3, ""), declare("factory-broker", 1, ""),
		declare("node-exporter", 1, ""), declare("reference-BL", 1, ""))

	got := liveFromList(ts, listed(proxy, proxy2, glob, upd, service("reference-BL-2", 1, 1, "bl:1")))
	want := map[string]controllers.Live{
		"swarm/factory-proxy": {
			Exists: true, Replicas: 3, Running: 2, Image: "proxy:1@sha256:abcd", State: "2/3 running", Raw: one(proxy),
		},
		"swarm/factory-broker": {
			Exists: true, Replicas: 1, Running: 1, Image: "broker:2", State: "1/1 running, updating", Raw: one(upd),
		},
		"swarm/node-exporter": {
			Exists: true, Replicas: 0, Running: 4, Image: "exporter:1", State: "not replicated", Raw: one(glob),
		},
		"swarm/reference-BL": {State: "missing"},
	}
	if !reflect.DeepEqual(got, want) {
		for k := range want {
			if !reflect.DeepEqual(got[k], want[k]) {
				t.Errorf("%s:\n got  %+v\n want %+v", k, got[k], want[k])
			}
		}
		if len(got) != len(want) {
			t.Errorf("got %d entries, want %d: %v", len(got), len(want), got)
		}
	}
}

// listed is what ListServices makes of services Docker would list: each one
// written as the API writes it and read back by the driver's own decoder.
func listed(ss ...swarm.Service) []Service {
	out := make([]Service, 0, len(ss))
	for _, s := range ss {
		out = append(out, *one(s))
	}
	return out
}

// one is a single service as the driver reads it (see listed).
func one(s swarm.Service) *Service {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	got, err := ParseService(b)
	if err != nil {
		panic(err)
	}
	return &got
}
