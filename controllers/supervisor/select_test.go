package supervisor

import (
	"context"
	"strings"
	"testing"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/drivertest"
	"reconciler.dev/reconciler/controllers/engine"
	"reconciler.dev/reconciler/controllers/engine/enginetest"
)

func TestProgramOf(t *testing.T) {
	for name, want := range map[string]string{
		"usm-poller_01": "usm-poller", // process_name=%(program_name)s_%(process_num)02d
		"poller-2":      "poller",
		"poller.10":     "poller",
		"broker":        "broker", // numprocs=1 takes the program's name
		"worker2":       "worker2",
		"sat-7":         "sat", // documented: reads as a process of program sat
		"_01":           "_01",
		"01":            "01",
		"a_":            "a_",
		"":              "",
	} {
		if got := ProgramOf(name); got != want {
			t.Errorf("ProgramOf(%q) = %q, want %q", name, got, want)
		}
	}
}

// factory is a [group:factory] joining broker (numprocs 1), module
// (numprocs 2) and late, which has never been started, as getAllProcessInfo
// lists them; plus a program group of its own, usm-poller.
func factory(broker, module1, module2, late string) map[string][]Process {
	return map[string][]Process{sock: append([]Process{
		{Name: "broker", Group: "factory", State: broker, Start: 100},
		{Name: "late", Group: "factory", State: late},
		{Name: "module_01", Group: "factory", Num: 1, State: module1, Start: 200},
		{Name: "module_02", Group: "factory", Num: 2, State: module2, Start: 300},
	}, group("usm-poller", R)...)}
}

func factorySelector(n int32) v1.Service {
	return v1.Service{Name: "factory-programs", Driver: v1.DriverSupervisor, Socket: sock, Replicas: v1.Ptr(n),
		Maintenance: v1.MaintenanceStop, Select: &v1.ServiceSelector{Group: "factory"}}
}

// planSelected plans spec as the engine does, from one observation of
// procs: selectors listed with the named targets, expanded, planned and put
// in stage order.
func planSelected(t *testing.T, spec v1.HostSpec, procs map[string][]Process) ([]controllers.Selection, []controllers.Action) {
	t.Helper()
	spec.Services = append([]v1.Service(nil), spec.Services...)
	v1.SetDefaults(&spec)
	m := engine.MaintenanceAt(&spec, enginetest.Now)
	observe := func(ts []controllers.Target) map[string]controllers.Live {
		live := liveFrom(ts, procs)
		for _, sel := range ts {
			if sel.Kind != controllers.KindSelector {
				continue
			}
			l, members := selectGroup(sel, procs[sel.Service.Socket])
			ml := liveFrom(members, procs)
			for i := range l.Members {
				l.Members[i].Live = ml[members[i].Subject()]
			}
			live[sel.Subject()] = l
		}
		return live
	}
	live := observe(append(engine.Targets(&spec, m, nil), engine.SelectorTargets(&spec)...))
	expanded, sels := engine.Expand(&spec, live)
	ts := engine.Targets(expanded, m, nil)
	live = observe(ts) // as a wait observes: the members as plain targets
	var out []controllers.Action
	for _, st := range engine.Order(ts, Plan(ts, live)) {
		for _, a := range st.Actions {
			a.Phase = "" // the stage is what orders
			out = append(out, a)
		}
	}
	return sels, out
}

// at is a in stage n of its pass.
func at(n int, a controllers.Action) controllers.Action { a.Stage = n; return a }

// staged puts each action in a stage of its own, in order from stage 1.
func staged(as ...controllers.Action) []controllers.Action {
	for i := range as {
		as[i].Stage = i + 1
	}
	return as
}

func TestPlanGroupSelector(t *testing.T) {
	maint := func(s v1.HostSpec) v1.HostSpec { s.Maintenance = &v1.Maintenance{Enabled: v1.Ptr(true)}; return s }
	cases := []struct {
		name    string
		spec    v1.HostSpec
		procs   map[string][]Process
		matched []string // in start order
		named   []string
		want    []controllers.Action // in stage order
	}{{
		name:    "in sync: the first process of every program runs; one never started comes last",
		spec:    services(factorySelector(1)),
		procs:   factory(R, R, S, R),
		matched: []string{"broker", "module", "late"},
	}, {
		name:    "up: in start order, a program never started last",
		spec:    services(factorySelector(2)),
		procs:   factory(S, S, S, S),
		matched: []string{"broker", "module", "late"},
		want: staged(action("broker", "numprocs=1", "2", controllers.OpUnsupported), action("module", "0", "2", controllers.OpScaleUp),
			action("late", "numprocs=1", "2", controllers.OpUnsupported)),
	}, {
		name:    "maintenance stops everything selected, newest first",
		spec:    maint(services(factorySelector(1))),
		procs:   factory(R, R, R, R),
		matched: []string{"broker", "module", "late"},
		want: staged(action("late", "1", "0", controllers.OpScaleDown), action("module", "2", "0", controllers.OpScaleDown),
			action("broker", "1", "0", controllers.OpScaleDown)),
	}, {
		name: "an entry naming a program overrides the selector for it, by name or by GROUP:PROGRAM",
		spec: maint(services(factorySelector(1),
			v1.Service{Name: "broker", Driver: v1.DriverSupervisor, Socket: sock, Program: "factory:broker", Replicas: v1.Ptr[int32](1), Maintenance: v1.MaintenanceKeep},
			v1.Service{Name: "the-module", Driver: v1.DriverSupervisor, Socket: sock, Program: "factory:module", Replicas: v1.Ptr[int32](2)})),
		procs:   factory(R, R, S, R),
		matched: []string{"late"},
		named:   []string{"broker", "module"},
		want: []controllers.Action{
			at(1, action("late", "1", "0", controllers.OpScaleDown)),
			at(1, action("the-module", "1", "0", controllers.OpScaleDown)),
		},
	}, {
		name: "an entry declaring the whole group leaves the selector nothing",
		spec: services(factorySelector(1),
			v1.Service{Name: "factory", Driver: v1.DriverSupervisor, Socket: sock, Replicas: v1.Ptr[int32](4)}),
		procs:   factory(R, R, S, R),
		named:   []string{"broker", "module", "late"},
		matched: []string{},
		want:    []controllers.Action{at(1, action("factory", "3", "4", controllers.OpScaleUp))},
	}, {
		name:    "a group supervisord does not know matches nothing",
		spec:    services(factorySelector(1)),
		procs:   map[string][]Process{sock: group("usm-poller", R)},
		matched: []string{},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sels, got := planSelected(t, tc.spec, tc.procs)
			if len(sels) != 1 || strings.Join(sels[0].Matched, ",") != strings.Join(tc.matched, ",") ||
				strings.Join(sels[0].Named, ",") != strings.Join(tc.named, ",") || sels[0].Select != "group=factory" {
				t.Errorf("selections %+v, want matched %v named %v", sels, tc.matched, tc.named)
			}
			drivertest.CheckActions(t, got, tc.want)
		})
	}
}

// A program's processes are its own: GROUP:PROGRAM sees neither the other
// programs of the group nor another group.
func TestLiveOfOneProgramOfAGroup(t *testing.T) {
	ts := targets(services(v1.Service{Name: "m", Driver: v1.DriverSupervisor, Socket: sock, Program: "factory:module", Replicas: v1.Ptr[int32](1)}))
	l := liveFrom(ts, factory(R, R, S, R))["supervisor/m"]
	gl := l.Raw.(groupLive)
	if !l.Exists || len(gl.Procs) != 2 || gl.Procs[0].Name != "module_01" || l.Replicas != 1 || l.Details["numprocs"] != "2" {
		t.Errorf("live %+v", l)
	}
	if h := Health(ts[0], l); !h.Ready {
		t.Errorf("health %+v, want ready", h)
	}
	ts = targets(services(v1.Service{Name: "x", Driver: v1.DriverSupervisor, Socket: sock, Program: "factory:nope", Replicas: v1.Ptr[int32](1)}))
	if l := liveFrom(ts, factory(R, R, S, R))["supervisor/x"]; l.Exists {
		t.Errorf("a program the group does not have exists: %+v", l)
	}
}

// Observe lists a group selector's programs from the one getAllProcessInfo
// it makes anyway, each with its own observation and start.
func TestObserveGroupSelector(t *testing.T) {
	procs := factory(R, R, S, S)[sock]
	f := newFakeSupervisord(t, procs)
	counted := map[string]int{}
	d := &Driver{Count: func(verb string) { counted[verb]++ }}
	sel := factorySelector(1)
	sel.Socket = f.socket
	spec := services(sel, v1.Service{Name: "usm-poller", Driver: v1.DriverSupervisor, Socket: f.socket, Replicas: v1.Ptr[int32](1)})
	v1.SetDefaults(&spec)
	ts := append(engine.Targets(&spec, engine.Maintenance{}, nil), engine.SelectorTargets(&spec)...)
	live, err := d.Observe(context.Background(), ts)
	if err != nil {
		t.Fatal(err)
	}
	if counted["getAllProcessInfo"] != 1 || len(counted) != 1 {
		t.Errorf("calls %v, want one getAllProcessInfo", counted)
	}
	l := live["select/supervisor/factory-programs"]
	got := map[string]controllers.Member{}
	for _, m := range l.Members {
		got[m.Name] = m
	}
	if len(got) != 3 || l.State != "3 matched" {
		t.Fatalf("members %+v", l.Members)
	}
	if m := got["module"]; m.Started.Unix() != 200 || m.Live.Replicas != 1 || m.Live.Raw.(groupLive).Program != "factory:module" {
		t.Errorf("module: %+v", m)
	}
	if m := got["late"]; !m.Started.IsZero() || m.Live.Replicas != 0 || !m.Live.Exists {
		t.Errorf("late: %+v, never started", m)
	}
	if !live["supervisor/usm-poller"].Exists {
		t.Errorf("the named service is not observed: %+v", live)
	}
}

// FuzzProgramOf: the program is the name, or the name less a separator and
// the number after it.
func FuzzProgramOf(f *testing.F) {
	for _, s := range []string{"usm-poller_01", "broker", "sat-7", "_01", "a_", "x.9.9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		prog := ProgramOf(name)
		if prog == name {
			return
		}
		rest, ok := strings.CutPrefix(name, prog)
		if !ok || prog == "" || len(rest) < 2 || !strings.ContainsRune("_-.", rune(rest[0])) || strings.Trim(rest[1:], "0123456789") != "" {
			t.Fatalf("ProgramOf(%q) = %q", name, prog)
		}
	})
}
