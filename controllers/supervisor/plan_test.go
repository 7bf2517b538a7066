package supervisor

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/drivertest"
	"reconciler.dev/reconciler/controllers/engine/enginetest"
)

const sock = "/run/reconciler-testbed/supervisor.sock"

// targets builds the pass's targets the way the engine does
// (enginetest.Targets).
func targets(spec v1.HostSpec) []controllers.Target { return enginetest.Targets(spec) }

func services(ss ...v1.Service) v1.HostSpec { return v1.HostSpec{Services: ss} }

// poller is the seed's usm-poller program on the testbed's socket.
func poller(n int32) v1.Service {
	return v1.Service{Name: "usm-poller", Driver: v1.DriverSupervisor, Socket: sock, Replicas: v1.Ptr(n)}
}

// group lists program's processes program_01, _02, ... in the given states,
// as getAllProcessInfo would; started ones get a pid.
func group(program string, states ...string) []Process {
	var out []Process
	for i, st := range states {
		p := Process{
			Name: fmt.Sprintf("%s_%02d", program, i+1), Group: program, Num: i + 1, State: st,
		}
		if Started(st) || st == stateStopping {
			p.PID = 1000 + i + 1
		}
		out = append(out, p)
	}
	return out
}

// pollers is the usm-poller group (numprocs = len(states)) on sock.
func pollers(states ...string) map[string][]Process {
	return map[string][]Process{sock: group("usm-poller", states...)}
}

// states repeats one state n times.
func states(st string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = st
	}
	return out
}

// mix is the first states, then STOPPED up to numprocs 15.
func mix(first ...string) []string {
	return append(first, states(stateStopped, 15-len(first))...)
}

const (
	R  = stateRunning
	S  = stateStopped
	ST = stateStarting
	B  = stateBackoff
	SP = stateStopping
	E  = stateExited
	F  = stateFatal
)

// action is the expected replicas action on supervisor service name.
var action = drivertest.ReplicasOf(v1.DriverSupervisor)

// TestPlanPoller plans usm-poller declared with n replicas against its
// group of 15 whose first processes are in the states first, the rest
// stopped.
func TestPlanPoller(t *testing.T) {
	scale := func(from, to string, op controllers.Op) []controllers.Action {
		return []controllers.Action{action("usm-poller", from, to, op)}
	}
	cases := []struct {
		name  string
		n     int32
		first []string
		want  []controllers.Action
	}{
		{"in sync: first 3 running, the rest stopped, exited or fatal", 3, []string{R, R, R, E, F}, nil},
		{"in sync while the first N are still starting or backing off", 3, []string{R, ST, B}, nil},
		{"1 -> 5", 5, []string{R}, scale("1", "5", controllers.OpScaleUp)},
		{"5 -> 2", 2, []string{R, R, R, R, R}, scale("5", "2", controllers.OpScaleDown)},
		{"to 0 stops starting and backing-off processes too", 0, []string{R, ST, B, F}, scale("3", "0", controllers.OpScaleDown)},
		{"0 -> 3 from a group with failed processes", 3, []string{F, S, E}, scale("0", "3", controllers.OpScaleUp)},
		{"the right count of the wrong processes", 2, []string{R, S, R}, append(scale("2", "1", controllers.OpScaleDown), scale("1", "2", controllers.OpScaleUp)...)},
		{"a fatal process among the first N is started again", 3, []string{R, F, R}, scale("2", "3", controllers.OpScaleUp)},
		{"a process beyond N already stopping is left to finish", 2, []string{R, R, SP}, nil},
		{"a process among the first N still stopping is to be started", 2, []string{R, SP}, scale("1", "2", controllers.OpScaleUp)},
		{"all numprocs", 15, []string{R, R}, scale("2", "15", controllers.OpScaleUp)},
		{"more replicas than numprocs is unsupported, naming both, and nothing else", 20, []string{R, R}, scale("numprocs=15", "20", controllers.OpUnsupported)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := targets(services(poller(tc.n)))
			drivertest.CheckActions(t, Plan(ts, liveFrom(ts, pollers(mix(tc.first...)...))), tc.want)
		})
	}
}

func TestPlan(t *testing.T) {
	cases := []struct {
		name  string
		spec  v1.HostSpec
		procs map[string][]Process
		want  []controllers.Action
	}{
		{
			name:  "missing program",
			spec:  services(poller(2)),
			procs: map[string][]Process{sock: group("other", R, R)},
			want:  []controllers.Action{action("usm-poller", "absent", "2", controllers.OpMissing)},
		},
		{
			name: "missing program, even at 0",
			spec: services(poller(0)),
			want: []controllers.Action{action("usm-poller", "absent", "0", controllers.OpMissing)},
		},
		{
			name:  "report-only is carried on every action",
			spec:  v1.HostSpec{Drift: v1.DriftReport, Services: []v1.Service{poller(2)}},
			procs: pollers(mix(R, S, R)...),
			want: []controllers.Action{
				drivertest.ReportOnly(action("usm-poller", "2", "1", controllers.OpScaleDown)),
				drivertest.ReportOnly(action("usm-poller", "1", "2", controllers.OpScaleUp)),
			},
		},
		{
			name: "program defaults to the service name; programs on other sockets do not count",
			spec: services(
				v1.Service{Name: "a", Driver: v1.DriverSupervisor, Socket: sock, Replicas: v1.Ptr[int32](1)},
				v1.Service{Name: "b", Driver: v1.DriverSupervisor, Socket: "/other.sock", Program: "a", Replicas: v1.Ptr[int32](2)},
			),
			procs: map[string][]Process{
				sock:          group("a", R, R),
				"/other.sock": group("a", S, S),
			},
			want: []controllers.Action{
				action("a", "2", "1", controllers.OpScaleDown),
				action("b", "0", "2", controllers.OpScaleUp),
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := targets(tc.spec)
			drivertest.CheckActions(t, Plan(ts, liveFrom(ts, tc.procs)), tc.want)
		})
	}
}

func TestChanges(t *testing.T) {
	names := func(ps []Process) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.namespec())
		}
		return out
	}
	cases := []struct {
		name            string
		replicas        int32
		procs           map[string][]Process
		toStop, toStart []string
	}{
		{
			name:     "stops highest first, starts lowest first",
			replicas: 4,
			procs:    pollers(R, S, E, F, R, ST, SP, B, S),
			toStop:   []string{"usm-poller:usm-poller_08", "usm-poller:usm-poller_06", "usm-poller:usm-poller_05"},
			toStart:  []string{"usm-poller:usm-poller_02", "usm-poller:usm-poller_03", "usm-poller:usm-poller_04"},
		},
		{
			name:     "all to 0",
			replicas: 0,
			procs:    pollers(R, R, B),
			toStop:   []string{"usm-poller:usm-poller_03", "usm-poller:usm-poller_02", "usm-poller:usm-poller_01"},
		},
		{
			name:     "numeric order, not the order of the names",
			replicas: 2,
			procs: map[string][]Process{sock: {
				{Name: "w-10", Group: "w", Num: 10, State: R},
				{Name: "w-9", Group: "w", Num: 9, State: R},
				{Name: "w-1", Group: "w", Num: 1, State: S},
			}},
			toStop:  []string{"w:w-10"},
			toStart: []string{"w:w-1"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			program := "usm-poller"
			if tc.procs[sock][0].Group == "w" {
				program = "w"
			}
			ts := targets(services(v1.Service{Name: program, Driver: v1.DriverSupervisor, Socket: sock, Replicas: v1.Ptr(tc.replicas)}))
			gl := liveFrom(ts, tc.procs)[ts[0].Subject()].Raw.(groupLive)
			toStop, toStart := changes(ts[0], gl)
			if got, got2 := names(toStop), names(toStart); !reflect.DeepEqual(got, tc.toStop) || !reflect.DeepEqual(got2, tc.toStart) {
				t.Errorf("changes = stop %q, start %q; want stop %q, start %q", got, got2, tc.toStop, tc.toStart)
			}
		})
	}
}

func TestProcessNumber(t *testing.T) {
	for name, want := range map[string]int{
		"usm-poller_01": 1, "usm-poller_15": 15, "w-10": 10, "w9x": 9, "a1b22": 22,
		"usm-poller": 0, "x_000": 0, "x_99999999999999999999": 1e9,
	} {
		if got := ProcessNumber(name); got != want {
			t.Errorf("ProcessNumber(%q) = %d, want %d", name, got, want)
		}
	}
}

func TestHealth(t *testing.T) {
	cases := []struct {
		name           string
		replicas       int32
		procs          map[string][]Process
		ready, drained bool
		reason         string // a part of the reason
	}{
		{
			name: "ready: exactly the first 3 running", replicas: 3,
			procs: pollers(mix(R, R, R, E, F)...), ready: true, drained: true, reason: "3/3 running",
		},
		{
			name: "at 0, all stopped", replicas: 0,
			procs: pollers(mix(E, F)...), ready: true, drained: true, reason: "0/0 running",
		},
		{
			name: "not ready while one of the first N starts", replicas: 3,
			procs: pollers(mix(R, R, ST)...), ready: false, drained: true, reason: "usm-poller_03 STARTING",
		},
		{
			name: "not ready while one of the first N backs off", replicas: 2,
			procs: pollers(mix(B, R)...), ready: false, drained: true, reason: "usm-poller_01 BACKOFF",
		},
		{
			name: "not ready while one of the first N is fatal", replicas: 2,
			procs: pollers(mix(R, F)...), ready: false, drained: true, reason: "usm-poller_02 FATAL",
		},
		{
			name: "not drained while an extra runs", replicas: 2,
			procs: pollers(mix(R, R, R)...), ready: false, drained: false, reason: "usm-poller_03 RUNNING",
		},
		{
			name: "not drained while an extra is stopping", replicas: 2,
			procs: pollers(mix(R, R, SP)...), ready: false, drained: false, reason: "usm-poller_03 STOPPING",
		},
		{
			name: "not drained while an extra backs off", replicas: 0,
			procs: pollers(mix(B)...), ready: false, drained: false,
		},
		{
			name: "the right count of the wrong processes", replicas: 2,
			procs: pollers(mix(R, S, R)...), ready: false, drained: false, reason: "usm-poller_02 STOPPED",
		},
		{
			name: "an extra in an unknown state is not ready, but drained", replicas: 1,
			procs: pollers(mix(R, stateUnknown)...), ready: false, drained: true, reason: "usm-poller_02 UNKNOWN",
		},
		{
			name: "more replicas than numprocs: never ready, names both numbers", replicas: 20,
			procs: pollers(mix(R)...), ready: false, drained: true, reason: "20 replicas wanted, but program usm-poller has numprocs=15",
		},
		{
			name: "missing", replicas: 1,
			procs: map[string][]Process{sock: group("other", R)}, ready: false, drained: false,
			reason: "program usm-poller missing from supervisord at " + sock,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := targets(services(poller(tc.replicas)))
			h := Health(ts[0], liveFrom(ts, tc.procs)[ts[0].Subject()])
			if h.Ready != tc.ready || h.Drained != tc.drained || !strings.Contains(h.Reason, tc.reason) {
				t.Errorf("Health = %+v, want ready %v, drained %v, reason containing %q", h, tc.ready, tc.drained, tc.reason)
			}
		})
	}
}

// TestLiveFromCaptured reads answers captured from the testbed's supervisord
// (numprocs=15; usm-poller_01 RUNNING, _02 STARTING in one, a failing
// program's processes FATAL and BACKOFF in another) the way Observe does.
func TestLiveFromCaptured(t *testing.T) {
	read := func(name string) []Process {
		t.Helper()
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		v, err := DecodeResponse(data)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := ParseProcesses(v)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	ts := targets(services(poller(2), v1.Service{Name: "capture-fail", Driver: v1.DriverSupervisor, Socket: sock, Replicas: v1.Ptr[int32](1)}))

	live := liveFrom(ts, map[string][]Process{sock: read("getAllProcessInfo-mixed.xml")})
	l := live["supervisor/usm-poller"]
	if !l.Exists || l.Replicas != 2 || l.Running != 1 || l.State != "1/2 running, numprocs 15" {
		t.Errorf("usm-poller live = %+v", l)
	}
	if d := l.Details; d["numprocs"] != "15" || d["states"] != "1 RUNNING, 1 STARTING, 13 STOPPED" ||
		d["processes"] != "usm-poller_01 RUNNING, usm-poller_02 STARTING" ||
		!strings.HasPrefix(d["pids"], "usm-poller_01=") || !strings.Contains(d["pids"], " usm-poller_02=") {
		t.Errorf("usm-poller details = %q", d)
	}
	gl := l.Raw.(groupLive)
	for i, p := range gl.Procs {
		if want := fmt.Sprintf("usm-poller_%02d", i+1); p.Name != want || p.Num != i+1 || p.Group != "usm-poller" {
			t.Errorf("process %d = %+v, want %s", i, p, want)
		}
	}
	if p := gl.Procs[0]; p.PID <= 0 || p.Start <= 0 || p.Description == "" {
		t.Errorf("running process without pid, start or description: %+v", p)
	}
	if h := Health(ts[0], l); h.Ready || !h.Drained || h.Reason != "1/2 running, usm-poller_02 STARTING" {
		t.Errorf("health = %+v", h)
	}
	if m := live["supervisor/capture-fail"]; m.Exists {
		t.Errorf("capture-fail exists in the mixed capture: %+v", m)
	}

	// capture-fail has numprocs_start 0 (supervisord's default): its first
	// replica is capture-fail_0, STOPPED; _1 is FATAL and _2 in BACKOFF.
	live = liveFrom(ts, map[string][]Process{sock: read("getAllProcessInfo-fatal-backoff.xml")})
	l = live["supervisor/capture-fail"]
	if !l.Exists || l.Replicas != 1 || l.Running != 0 || l.Details["states"] != "1 STOPPED, 1 FATAL, 1 BACKOFF" ||
		l.Raw.(groupLive).Procs[0].Name != "capture-fail_0" {
		t.Errorf("capture-fail live = %+v", l)
	}
	drivertest.CheckActions(t, Plan(ts[1:], live), []controllers.Action{
		action("capture-fail", "1", "0", controllers.OpScaleDown),
		action("capture-fail", "0", "1", controllers.OpScaleUp),
	})
	if l := live["supervisor/usm-poller"]; !l.Exists || l.Replicas != 0 || l.Details["processes"] != "all STOPPED" || l.Details["pids"] != "" {
		t.Errorf("usm-poller live = %+v", l)
	}
}
