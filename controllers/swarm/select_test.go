package swarm

import (
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

func svcNamed(name string, labels map[string]string) swarm.Service {
	one := uint64(1)
	return swarm.Service{ID: "id-" + name, Spec: swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: labels},
		Mode:        swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}},
	}}
}

func TestMatches(t *testing.T) {
	fp := map[string]string{stackNamespace: "fp", "tier": "module"}
	tests := []struct {
		name string
		sel  v1.ServiceSelector
		svc  swarm.Service
		want bool
	}{
		{"namespace", v1.ServiceSelector{Namespace: "fp"}, svcNamed("ref-BL", fp), true},
		{"other namespace", v1.ServiceSelector{Namespace: "other"}, svcNamed("ref-BL", fp), false},
		{"no labels at all", v1.ServiceSelector{Namespace: "fp"}, svcNamed("ref-BL", nil), false},
		{"labels all carried", v1.ServiceSelector{Labels: map[string]string{"tier": "module"}}, svcNamed("x", fp), true},
		{"a label differs", v1.ServiceSelector{Labels: map[string]string{"tier": "broker"}}, svcNamed("x", fp), false},
		{"a label missing", v1.ServiceSelector{Labels: map[string]string{"tier": "module", "site": "a"}}, svcNamed("x", fp), false},
		{"one glob of several", v1.ServiceSelector{Names: []string{"nope-*", "ref-*"}}, svcNamed("ref-BL", nil), true},
		{"no glob", v1.ServiceSelector{Names: []string{"nope-*"}}, svcNamed("ref-BL", nil), false},
		{"every criterion must hold", v1.ServiceSelector{Namespace: "fp", Names: []string{"nope-*"}}, svcNamed("ref-BL", fp), false},
	}
	for _, tc := range tests {
		if got := Matches(&tc.sel, one(tc.svc)); got != tc.want {
			t.Errorf("%s: Matches = %v, want %v", tc.name, got, tc.want)
		}
	}
	if Matches(nil, one(svcNamed("x", fp))) {
		t.Error("a nil selector matches")
	}
}

func TestSelectMembersFromTheOneList(t *testing.T) {
	sel := controllers.Target{Kind: controllers.KindSelector, Name: "modules", Driver: v1.DriverSwarm,
		Service: &v1.Service{Name: "modules", Select: &v1.ServiceSelector{Names: []string{"ref-*"}}}}
	named := controllers.Target{Kind: controllers.KindService, Name: "ref-A", Driver: v1.DriverSwarm}
	a, b := svcNamed("ref-A", nil), svcNamed("ref-B", nil)
	b.CreatedAt = time.Unix(100, 0)
	list := []swarm.Service{a, b, svcNamed("broker", nil)}
	live := liveFromList([]controllers.Target{named}, listed(list...))
	members := selectMembers([]controllers.Target{sel}, listed(list...), live)
	ms := live[sel.Subject()].Members
	if len(ms) != 2 || ms[0].Name != "ref-A" || ms[1].Name != "ref-B" || !ms[1].Started.Equal(b.CreatedAt) || !ms[1].Live.Exists {
		t.Fatalf("members %+v", ms)
	}
	// ref-A is declared by name: observed once, as itself; only ref-B is
	// looked at as a member.
	if len(members) != 1 || members[0].Name != "ref-B" || members[0].Note != "modules" {
		t.Fatalf("member targets %+v", members)
	}
}
