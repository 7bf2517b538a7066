package engine

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

// svc declares a swarm service for tests.
func svc(name string, replicas int32, deps ...string) v1.Service {
	return v1.Service{Name: name, Replicas: v1.Ptr(replicas), DependsOn: deps}
}

func spec(m bool, services []v1.Service, units ...v1.Unit) *v1.HostSpec {
	s := &v1.HostSpec{Maintenance: &v1.Maintenance{Enabled: v1.Ptr(m)}, Services: services, Units: units}
	v1.SetDefaults(s)
	return s
}

var housekeeping = v1.Unit{Name: "hk.timer", Enabled: v1.Ptr(true), Active: v1.Ptr(true), Maintenance: v1.MaintenanceStop}

func factoryProxy() []v1.Service {
	return []v1.Service{svc("broker", 1), svc("proxy", 1, "broker"), svc("bl", 1, "broker")}
}

// scaleActions is what a driver would plan: every service whose live count
// differs from its target, and unit fields that differ.
func scaleActions(targets []controllers.Target, live map[string]int32, unitsOn bool) []controllers.Action {
	var out []controllers.Action
	for _, t := range targets {
		a := controllers.Action{Subject: t.Subject(), Kind: t.Kind, Name: t.Name, Driver: t.Driver, Mode: t.Mode}
		if t.Kind == controllers.KindUnit {
			if t.Active != nil && *t.Active != unitsOn {
				a.Field, a.Op = "active", map[bool]controllers.Op{true: controllers.OpStart, false: controllers.OpStop}[*t.Active]
				out = append(out, a)
			}
			continue
		}
		l := live[t.Name]
		if l == t.Replicas {
			continue
		}
		a.Field, a.From, a.To = "replicas", fmt.Sprint(l), fmt.Sprint(t.Replicas)
		a.Op = controllers.OpScaleUp
		if t.Replicas < l {
			a.Op = controllers.OpScaleDown
		}
		out = append(out, a)
	}
	return out
}

// stageString renders stages as "1 down: unit/hk.timer | 2 down: swarm/a swarm/b".
func stageString(stages []Stage) string {
	var parts []string
	for _, st := range stages {
		var subj []string
		for _, a := range st.Actions {
			if a.Stage != st.Number {
				return fmt.Sprintf("action %s has stage %d inside stage %d", a.Subject, a.Stage, st.Number)
			}
			subj = append(subj, a.Subject)
		}
		parts = append(parts, fmt.Sprintf("%d %s: %s", st.Number, st.Phase, strings.Join(subj, " ")))
	}
	return strings.Join(parts, " | ")
}

func TestOrder(t *testing.T) {
	diamond := []v1.Service{svc("a", 1), svc("b", 1, "a"), svc("c", 1, "a"), svc("d", 1, "b", "c")}
	keep := factoryProxy()
	keep[2].Maintenance = v1.MaintenanceKeep
	chain := []v1.Service{svc("db", 2), svc("api", 3, "db"), svc("web", 1, "api"), svc("lone", 4)}
	cases := []struct {
		name    string
		spec    *v1.HostSpec
		live    map[string]int32
		unitsOn bool
		want    string
	}{
		{"enter maintenance: units first, then dependents before dependencies",
			spec(true, factoryProxy(), housekeeping), map[string]int32{"broker": 1, "proxy": 1, "bl": 1}, true,
			"1 down: unit/hk.timer | 2 down: swarm/bl swarm/proxy | 3 down: swarm/broker"},
		{"leave maintenance: dependencies first, units last",
			spec(false, factoryProxy(), housekeeping), map[string]int32{}, false,
			"1 up: swarm/broker | 2 up: swarm/bl swarm/proxy | 3 up: unit/hk.timer"},
		{"maintenance keep leaves a service running",
			spec(true, keep, housekeeping), map[string]int32{"broker": 1, "proxy": 1, "bl": 1}, true,
			"1 down: unit/hk.timer | 2 down: swarm/proxy | 3 down: swarm/broker"},
		{"diamond up", spec(false, diamond), map[string]int32{}, false,
			"1 up: swarm/a | 2 up: swarm/b swarm/c | 3 up: swarm/d"},
		{"diamond down", spec(true, diamond), map[string]int32{"a": 1, "b": 1, "c": 1, "d": 1}, false,
			"1 down: swarm/d | 2 down: swarm/b swarm/c | 3 down: swarm/a"},
		{"only the middle of a diamond changes", spec(false, diamond), map[string]int32{"a": 1, "b": 1, "c": 0, "d": 1}, false,
			"1 up: swarm/c"},
		{"mixed: shrink first, then grow in dependency order",
			spec(false, chain), map[string]int32{"db": 1, "api": 5, "web": 1, "lone": 4}, false,
			"1 down: swarm/api | 2 up: swarm/db"},
		{"independent services share a stage",
			spec(false, []v1.Service{svc("x", 1), svc("y", 1), svc("z", 1)}), map[string]int32{}, false,
			"1 up: swarm/x swarm/y swarm/z"},
		{"in sync", spec(false, factoryProxy(), housekeeping), map[string]int32{"broker": 1, "proxy": 1, "bl": 1}, true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			targets := Targets(tc.spec, MaintenanceAt(tc.spec, time.Now()), nil)
			got := stageString(Order(targets, scaleActions(targets, tc.live, tc.unitsOn)))
			if got != tc.want {
				t.Errorf("stages\n got: %s\nwant: %s", got, tc.want)
			}
		})
	}
}

func TestTargets(t *testing.T) {
	s := spec(true, []v1.Service{
		svc("stop-me", 3),
		{Name: "keep-me", Replicas: v1.Ptr[int32](2), Maintenance: v1.MaintenanceKeep, Drift: v1.DriftReport},
		{Name: "scaled", Replicas: v1.Ptr[int32](2), Maintenance: v1.MaintenanceKeep},
	}, housekeeping, v1.Unit{Name: "other.timer", Active: v1.Ptr(true), Maintenance: v1.MaintenanceKeep})
	auto := func(sv *v1.Service) (int32, string, bool) { return 7, "autoscale", sv.Name == "scaled" }
	got := Targets(s, MaintenanceAt(s, time.Now()), auto)
	type view struct {
		Subject  string
		Replicas int32
		Enabled  *bool
		Active   *bool
		Mode     controllers.Mode
		Barrier  bool
	}
	var views []view
	for _, t := range got {
		views = append(views, view{t.Subject(), t.Replicas, t.Enabled, t.Active, t.Mode, t.Barrier})
	}
	f, tr := v1.Ptr(false), v1.Ptr(true)
	want := []view{
		{"swarm/stop-me", 0, nil, nil, controllers.Enforce, false},
		{"swarm/keep-me", 2, nil, nil, controllers.ReportOnly, false},
		{"swarm/scaled", 7, nil, nil, controllers.Enforce, false},
		{"unit/hk.timer", 0, f, f, controllers.Enforce, true},
		{"unit/other.timer", 0, nil, tr, controllers.Enforce, false},
	}
	if !reflect.DeepEqual(views, want) {
		t.Errorf("targets\n got %+v\nwant %+v", views, want)
	}
}

func TestMaintenanceAtExpiredWindow(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	s := &v1.HostSpec{Maintenance: &v1.Maintenance{Enabled: v1.Ptr(true), Until: &v1.Time{Time: now.Add(-time.Minute)}, Reason: "fw"}}
	m := MaintenanceAt(s, now)
	if m.Active || !m.Expired || m.Reason != "fw" || m.Until == nil {
		t.Errorf("expired window: %+v", m)
	}
	targets := Targets(spec(false, factoryProxy()), m, nil)
	for _, tg := range targets {
		if tg.Replicas != 1 {
			t.Errorf("%s: expired maintenance still stops it (replicas %d)", tg.Subject(), tg.Replicas)
		}
	}
}
