package engine

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

func selLive(name string, members ...controllers.Member) map[string]controllers.Live {
	t := controllers.Target{Kind: controllers.KindSelector, Name: name, Driver: v1.DriverSwarm}
	return map[string]controllers.Live{t.Subject(): {Exists: true, Members: members}}
}

func member(name string, started int) controllers.Member {
	return controllers.Member{Name: name, Started: time.Unix(int64(started), 0)}
}

func TestExpand(t *testing.T) {
	broker := v1.Service{Name: "factory-broker", Driver: v1.DriverSwarm, Replicas: v1.Ptr[int32](1)}
	modules := v1.Service{Name: "modules", Driver: v1.DriverSwarm, Replicas: v1.Ptr[int32](1), DependsOn: []string{"factory-broker"},
		Maintenance: v1.MaintenanceStop, Select: &v1.ServiceSelector{Namespace: "fp"}}
	proxy := v1.Service{Name: "factory-proxy", Driver: v1.DriverSwarm, Replicas: v1.Ptr[int32](2), DependsOn: []string{"factory-broker"}}
	gateway := v1.Service{Name: "gateway", Driver: v1.DriverSwarm, Replicas: v1.Ptr[int32](1), DependsOn: []string{"modules"}}
	tests := []struct {
		name     string
		services []v1.Service
		live     map[string]controllers.Live
		want     map[string][]string // service -> dependsOn, for every entry of the result
		matched  []string
		named    []string
	}{{
		name:     "members in start order, chained, after the selector's dependencies",
		services: []v1.Service{broker, modules},
		live:     selLive("modules", member("ref-c", 30), member("ref-a", 10), member("ref-b", 20)),
		want: map[string][]string{"factory-broker": nil, "ref-a": {"factory-broker"}, "ref-b": {"factory-broker", "ref-a"},
			"ref-c": {"factory-broker", "ref-b"}},
		matched: []string{"ref-a", "ref-b", "ref-c"},
	}, {
		name:     "a service declared by name keeps its own entry",
		services: []v1.Service{broker, proxy, modules},
		live:     selLive("modules", member("factory-broker", 1), member("factory-proxy", 2), member("ref-a", 3)),
		want:     map[string][]string{"factory-broker": nil, "factory-proxy": {"factory-broker"}, "ref-a": {"factory-broker"}},
		matched:  []string{"ref-a"},
		named:    []string{"factory-broker", "factory-proxy"},
	}, {
		name:     "depending on a selector is depending on every member",
		services: []v1.Service{broker, modules, gateway},
		live:     selLive("modules", member("ref-a", 1), member("ref-b", 2)),
		want: map[string][]string{"factory-broker": nil, "gateway": {"ref-a", "ref-b"}, "ref-a": {"factory-broker"},
			"ref-b": {"factory-broker", "ref-a"}},
		matched: []string{"ref-a", "ref-b"},
	}, {
		name:     "a selector that matches nothing: its dependents depend on nothing of it",
		services: []v1.Service{broker, modules, gateway},
		live:     selLive("modules"),
		want:     map[string][]string{"factory-broker": nil, "gateway": {}},
		matched:  []string{},
	}, {
		name:     "ties in start order go by name",
		services: []v1.Service{broker, modules},
		live:     selLive("modules", member("ref-b", 5), member("ref-a", 5)),
		want:     map[string][]string{"factory-broker": nil, "ref-a": {"factory-broker"}, "ref-b": {"factory-broker", "ref-a"}},
		matched:  []string{"ref-a", "ref-b"},
	}, {
		name:     "a member never started (zero) comes after those that were",
		services: []v1.Service{broker, modules},
		live:     selLive("modules", controllers.Member{Name: "ref-a"}, member("ref-b", 5)),
		want:     map[string][]string{"factory-broker": nil, "ref-b": {"factory-broker"}, "ref-a": {"factory-broker", "ref-b"}},
		matched:  []string{"ref-b", "ref-a"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := &v1.HostSpec{Services: tc.services}
			before := len(spec.Services)
			got, sels := Expand(spec, tc.live)
			if len(spec.Services) != before || spec.Services[len(spec.Services)-1].Name != tc.services[len(tc.services)-1].Name {
				t.Fatal("Expand changed its input")
			}
			deps := map[string][]string{}
			for _, s := range got.Services {
				if s.Select != nil {
					t.Errorf("selector %s left in the result", s.Name)
				}
				deps[s.Name] = s.DependsOn
				if s.Name != "factory-broker" && s.Name != "factory-proxy" && s.Name != "gateway" && *s.Replicas != 1 {
					t.Errorf("%s: replicas %d, want the selector's 1", s.Name, *s.Replicas)
				}
			}
			for k, v := range tc.want {
				if len(v) == 0 && len(deps[k]) == 0 {
					continue
				}
				if !reflect.DeepEqual(deps[k], v) {
					t.Errorf("%s dependsOn %v, want %v", k, deps[k], v)
				}
			}
			if len(deps) != len(tc.want) {
				t.Errorf("entries %v, want %v", deps, tc.want)
			}
			if len(sels) != 1 || !reflect.DeepEqual(sels[0].Matched, tc.matched) || !reflect.DeepEqual(sels[0].Named, tc.named) {
				t.Errorf("selections %+v, want matched %v named %v", sels, tc.matched, tc.named)
			}
		})
	}
}

// In maintenance, members stop newest first, then the broker; leaving it,
// they come up oldest first after the broker.
func TestExpandOrdersMaintenance(t *testing.T) {
	spec := &v1.HostSpec{Services: []v1.Service{
		{Name: "factory-broker", Driver: v1.DriverSwarm, Replicas: v1.Ptr[int32](1), Maintenance: v1.MaintenanceStop},
		{Name: "modules", Driver: v1.DriverSwarm, Replicas: v1.Ptr[int32](1), DependsOn: []string{"factory-broker"},
			Maintenance: v1.MaintenanceStop, Select: &v1.ServiceSelector{Names: []string{"ref-*"}}},
	}}
	ex, _ := Expand(spec, selLive("modules", member("ref-old", 1), member("ref-new", 2)))
	for _, tc := range []struct {
		maint bool
		from  int32
		want  []string
	}{{true, 1, []string{"ref-new", "ref-old", "factory-broker"}}, {false, 0, []string{"factory-broker", "ref-old", "ref-new"}}} {
		targets := Targets(ex, Maintenance{Active: tc.maint}, nil)
		var actions []controllers.Action
		for _, tg := range targets {
			op := controllers.OpScaleUp
			if tc.maint {
				op = controllers.OpScaleDown
			}
			actions = append(actions, controllers.Action{Subject: tg.Subject(), Kind: tg.Kind, Name: tg.Name, Driver: tg.Driver, Field: "replicas", Op: op})
		}
		var got []string
		for _, st := range Order(targets, actions) {
			if len(st.Actions) != 1 {
				t.Fatalf("stage %d has %d actions, want one each", st.Number, len(st.Actions))
			}
			got = append(got, st.Actions[0].Name)
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("maintenance %v: order %v, want %v", tc.maint, got, tc.want)
		}
	}
}

func TestSelectorTargetsAndTargetsSkipSelectors(t *testing.T) {
	spec := &v1.HostSpec{Services: []v1.Service{
		{Name: "a", Driver: v1.DriverSwarm, Replicas: v1.Ptr[int32](1)},
		{Name: "sel", Driver: v1.DriverSwarm, Replicas: v1.Ptr[int32](1), Select: &v1.ServiceSelector{Namespace: "x"}},
	}}
	st := SelectorTargets(spec)
	if len(st) != 1 || st[0].Kind != controllers.KindSelector || st[0].Subject() != "select/swarm/sel" {
		t.Fatalf("selector targets %+v", st)
	}
	if ts := Targets(spec, Maintenance{}, nil); len(ts) != 1 || ts[0].Name != "a" {
		t.Fatalf("targets %+v, want only a", ts)
	}
}

// selDriver is memDriver that also lists what selectors match: the
// services in members, as its one observation.
type selDriver struct {
	*memDriver
	members []controllers.Member
}

func (s *selDriver) Observe(ctx context.Context, ts []controllers.Target) (map[string]controllers.Live, error) {
	var named []controllers.Target
	out := map[string]controllers.Live{}
	for _, t := range ts {
		if t.Kind == controllers.KindSelector {
			var ms []controllers.Member
			for _, m := range s.members {
				mt := controllers.Target{Kind: controllers.KindService, Name: m.Name, Driver: s.name}
				l, _ := s.memDriver.Observe(ctx, []controllers.Target{mt})
				m.Live = l[mt.Subject()]
				ms = append(ms, m)
			}
			out[t.Subject()] = controllers.Live{Exists: true, Members: ms}
			continue
		}
		named = append(named, t)
	}
	l, err := s.memDriver.Observe(ctx, named)
	for k, v := range l {
		out[k] = v
	}
	return out, err
}

// A pass in maintenance: the selector's members are planned and applied
// like named services, newest first, and the plan says what it matched.
func TestPlanAndApplyWithASelector(t *testing.T) {
	d := &selDriver{memDriver: newMem(v1.DriverSwarm, 1), members: []controllers.Member{
		member("factory-broker", 1), member("ref-old", 2), member("ref-new", 3)}}
	for _, s := range []string{"swarm/factory-broker", "swarm/ref-old", "swarm/ref-new"} {
		d.set(s, 1)
	}
	e, rec := newTestEngine(d)
	spec := &v1.HostSpec{Maintenance: &v1.Maintenance{Enabled: v1.Ptr(true)}, Services: []v1.Service{
		{Name: "factory-broker", Driver: v1.DriverSwarm, Replicas: v1.Ptr[int32](1), Maintenance: v1.MaintenanceStop},
		{Name: "modules", Driver: v1.DriverSwarm, Replicas: v1.Ptr[int32](1), DependsOn: []string{"factory-broker"},
			Maintenance: v1.MaintenanceStop, Select: &v1.ServiceSelector{Namespace: "fp"}},
	}}
	v1.SetDefaults(spec)
	plan, err := e.Plan(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Selectors) != 1 || strings.Join(plan.Selectors[0].Matched, ",") != "ref-old,ref-new" ||
		strings.Join(plan.Selectors[0].Named, ",") != "factory-broker" || plan.Selectors[0].Select != "namespace=fp" {
		t.Fatalf("selectors %+v", plan.Selectors)
	}
	if _, left := plan.Live["select/swarm/modules"]; left {
		t.Error("the selector's own observation is left in the plan's live state")
	}
	res := e.Apply(context.Background(), plan)
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	got := rec.steps("action")
	want := []string{"action swarm/ref-new", "action swarm/ref-old", "action swarm/factory-broker"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("actions %v, want %v", got, want)
	}
}
