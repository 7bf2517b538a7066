package daemontools

import (
	"maps"
	"strings"
	"testing"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/drivertest"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// declare is a daemontools service as the YAML would declare it, with
// defaults applied.
func declare(name string, replicas int32, opts ...func(*v1.Service)) v1.Service {
	s := v1.Service{Name: name, Driver: v1.DriverDaemontools, Replicas: v1.Ptr(replicas)}
	for _, o := range opts {
		o(&s)
	}
	spec := &v1.HostSpec{Services: []v1.Service{s}}
	v1.SetDefaults(spec)
	return spec.Services[0]
}

func once(s *v1.Service)                   { s.Once = v1.Ptr(true) }
func keep(s *v1.Service)                   { s.OnNotReady = v1.OnNotReadyKeep }
func report(s *v1.Service)                 { s.Drift = v1.DriftReport }
func restartOn(v string) func(*v1.Service) { return func(s *v1.Service) { s.RestartOn = v } }

// target is the pass's target for a declared service, as the engine makes
// it (no maintenance).
func target(s v1.Service) controllers.Target {
	m := controllers.Enforce
	if s.Drift == v1.DriftReport {
		m = controllers.ReportOnly
	}
	return controllers.Target{Kind: controllers.KindService, Name: s.Name, Driver: s.Driver,
		Service: &s, Replicas: *s.Replicas, Mode: m}
}

// Status records as supervise and runsv write them.
func dtUp(pid int) Status       { return Status{Changed: now.Add(-time.Hour), PID: pid, Want: 'u'} }
func dtDown() Status            { return Status{Changed: now.Add(-time.Hour), Want: 'd'} }
func dtStopping(pid int) Status { return Status{Changed: now.Add(-time.Hour), PID: pid, Want: 'd'} }
func dtOnce(pid int) Status     { return Status{Changed: now.Add(-time.Hour), PID: pid, Want: 0} }
func dtPaused(pid int) Status   { s := dtUp(pid); s.Paused = true; return s }
func rnUp(pid int) Status {
	return Status{Runit: true, Changed: now.Add(-time.Hour), PID: pid, Want: 'u', RunState: RunStateRun}
}
func rnDown() Status               { return Status{Runit: true, Changed: now.Add(-time.Hour), Want: 'd'} }
func rnOnceRunning(pid int) Status { s := rnUp(pid); s.Want = 'd'; return s }
func rnStopping(pid int) Status    { s := rnOnceRunning(pid); s.Term = true; return s }
func rnFinishing(pid int) Status   { s := rnDown(); s.PID, s.RunState = pid, RunStateFinish; return s }

// folder is what Observe reads of one folder whose supervise runs.
type folder struct{ sl Folder }

func supervised(st Status) folder {
	return folder{Folder{Dir: "/service/x", Supervised: true, HasStatus: true, Status: st}}
}

func unsupervised() folder {
	return folder{Folder{Dir: "/service/x", SuperviseErr: "open /service/x/supervise/ok: no such device or address",
		HasStatus: true, Status: dtDown()}}
}

func (f folder) down() folder   { f.sl.DownFile = true; return f }
func (f folder) marked() folder { f.sl.OnceMark = true; return f }
func (f folder) looping(n int) folder {
	f.sl.Watched, f.sl.CrashLooping, f.sl.Restarts = true, true, n
	return f
}
func (f folder) recorded(v string) folder {
	f.sl.RestartOn, f.sl.HasRestartOn = v, true
	return f
}

func liveFor(t controllers.Target, f *folder) map[string]controllers.Live {
	if f == nil {
		return map[string]controllers.Live{t.Subject(): liveOf(&Folder{Dir: Dir(t)}, false, now)}
	}
	sl := f.sl
	sl.Dir = Dir(t)
	return map[string]controllers.Live{t.Subject(): liveOf(&sl, true, now)}
}

func ptr(f folder) *folder { return &f }

func act(name, field, from, to string, op controllers.Op) controllers.Action {
	return drivertest.Service(v1.DriverDaemontools, name, field, from, to, op)
}

// removeDown and writeDown are the actions on name's down file that come
// before a start (svc -u) and before a stop (svc -d), so that a reboot
// keeps what was declared.
func removeDown(name string) controllers.Action {
	return act(name, "downfile", "present", "absent", controllers.OpEnable)
}

func writeDown(name string) controllers.Action {
	return act(name, "downfile", "absent", "present", controllers.OpDisable)
}

// scale is the action on name's replicas (0 or 1; "1 (once)" for svc -o).
func scale(name, from, to string, op controllers.Op) controllers.Action {
	return act(name, "replicas", from, to, op)
}

func TestPlan(t *testing.T) {
	const hash1, hash2 = "sha256:1111", "sha256:2222"
	cases := []struct {
		name string
		svc  v1.Service
		live *folder // nil: the folder does not exist
		want []controllers.Action
	}{
		{"up and up: nothing", declare("squid", 1), ptr(supervised(dtUp(10))), nil},
		{"down and down: nothing", declare("mldonkey", 0), ptr(supervised(dtDown()).down()), nil},
		// What Run leaves for a trigger chain (run.go): nothing to do next pass.
		{"a chain's once head after its run: nothing", declare("task-1", 1, once), ptr(supervised(dtOnce(0)).down()), nil},
		{"runit: a chain's once head after its run (mark): nothing", declare("task-1", 1, once), ptr(supervised(rnDown()).down().marked()), nil},
		{"a once task run by a trigger, sent down after: nothing", declare("task-2", 0, once), ptr(supervised(dtDown()).down()), nil},
		{"runit: a once task run by a trigger (no mark): nothing", declare("task-2", 0, once), ptr(supervised(rnDown()).down()), nil},
		{"start: down file removed first, then svc -u", declare("slapd", 1), ptr(supervised(dtDown()).down()),
			[]controllers.Action{removeDown("slapd"), scale("slapd", "0", "1", controllers.OpScaleUp)}},
		{"stop: down file first, then svc -d", declare("mldonkey", 0), ptr(supervised(dtUp(10))),
			[]controllers.Action{writeDown("mldonkey"), scale("mldonkey", "1", "0", controllers.OpScaleDown)}},
		{"sent down and still stopping: no second svc -d", declare("mldonkey", 0), ptr(supervised(dtStopping(10)).down()), nil},
		{"down by hand, up in git: svc -u (down file already right)", declare("squid", 1), ptr(supervised(dtDown())),
			[]controllers.Action{scale("squid", "0", "1", controllers.OpScaleUp)}},
		{"up and running, but a stray down file: only the file", declare("squid", 1), ptr(supervised(dtUp(10)).down()),
			[]controllers.Action{removeDown("squid")}},
		{"down, but the down file is gone: only the file", declare("mldonkey", 0), ptr(supervised(dtDown())),
			[]controllers.Action{writeDown("mldonkey")}},
		{"once, down (after a reboot): svc -o", declare("cache-warmup", 1, once), ptr(supervised(dtDown()).down()),
			[]controllers.Action{scale("cache-warmup", "0", "1 (once)", controllers.OpScaleUp)}},
		{"once, running once: nothing", declare("cache-warmup", 1, once), ptr(supervised(dtOnce(20)).down()), nil},
		{"once, ran and exited: not started again", declare("cache-warmup", 1, once), ptr(supervised(dtOnce(0)).down()), nil},
		{"once, but supervise restarts it (no down file at boot): down file, then svc -o", declare("cache-warmup", 1, once), ptr(supervised(dtUp(20))),
			[]controllers.Action{writeDown("cache-warmup"), scale("cache-warmup", "1", "1 (once)", controllers.OpScaleUp)}},
		{"once ran, now declared down: svc -d so the record says down", declare("cache-warmup", 0, once), ptr(supervised(dtOnce(0)).down()),
			[]controllers.Action{scale("cache-warmup", "1 (once)", "0", controllers.OpScaleDown)}},
		{"runit once running (want d, no TERM pending): nothing", declare("cache-warmup", 1, once), ptr(supervised(rnOnceRunning(20)).down()), nil},
		{"runit once finished, marked by the driver: nothing", declare("cache-warmup", 1, once), ptr(supervised(rnDown()).down().marked()), nil},
		{"runit down, no once mark: sv once", declare("cache-warmup", 1, once), ptr(supervised(rnDown()).down()),
			[]controllers.Action{scale("cache-warmup", "0", "1 (once)", controllers.OpScaleUp)}},
		{"runit stopping (TERM pending) is not once", declare("mldonkey", 0), ptr(supervised(rnStopping(20)).down()), nil},
		{"runit up to down", declare("slapd", 0), ptr(supervised(rnUp(20))),
			[]controllers.Action{writeDown("slapd"), scale("slapd", "1", "0", controllers.OpScaleDown)}},
		{"runit up and up: nothing", declare("slapd", 1), ptr(supervised(rnUp(20))), nil},
		{"restartOn changed while up: restart", declare("squid", 1, restartOn(hash2)), ptr(supervised(dtUp(10)).recorded(hash1)),
			[]controllers.Action{act("squid", "restartOn", hash1, hash2, controllers.OpRestart)}},
		{"restartOn as recorded: nothing", declare("squid", 1, restartOn(hash2)), ptr(supervised(dtUp(10)).recorded(hash2)), nil},
		{"restartOn never recorded (adopted service): restart once", declare("squid", 1, restartOn(hash2)), ptr(supervised(dtUp(10))),
			[]controllers.Action{act("squid", "restartOn", "(none)", hash2, controllers.OpRestart)}},
		{"restartOn changed while down and declared up: a start, no restart", declare("squid", 1, restartOn(hash2)), ptr(supervised(dtDown()).recorded(hash1)),
			[]controllers.Action{scale("squid", "0", "1", controllers.OpScaleUp)}},
		{"restartOn changed while down and declared down: nothing (svcrestart: only if it runs)", declare("squid", 0, restartOn(hash2)), ptr(supervised(dtDown()).down().recorded(hash1)), nil},
		{"restartOn changed while supervise restarts it (not running): not now", declare("squid", 1, restartOn(hash2)), ptr(supervised(Status{Changed: now, Want: 'u'}).recorded(hash1)), nil},
		{"restartOn on a once service: never a restart", declare("cache-warmup", 1, once, restartOn(hash2)), ptr(supervised(dtOnce(30)).down().recorded(hash1)), nil},
		{"paused by hand: continue", declare("squid", 1), ptr(supervised(dtPaused(10))),
			[]controllers.Action{act("squid", "paused", "true", "false", controllers.OpStart)}},
		{"paused and declared down: just down", declare("squid", 0), ptr(supervised(dtPaused(10)).down()),
			[]controllers.Action{scale("squid", "1", "0", controllers.OpScaleDown)}},
		{"missing folder", declare("slapd", 1), nil, []controllers.Action{scale("slapd", "absent", "1", controllers.OpMissing)}},
		{"missing folder declared down", declare("mldonkey", 0), nil, []controllers.Action{scale("mldonkey", "absent", "0", controllers.OpMissing)}},
		{"no supervise, declared up: a start (that will fail clearly)", declare("slapd", 1), ptr(unsupervised()),
			[]controllers.Action{scale("slapd", "unknown (no supervise)", "1", controllers.OpScaleUp)}},
		{"no supervise, declared down, down file in place: nothing to send", declare("mldonkey", 0), ptr(unsupervised().down()), nil},
		{"crash-looping but wanted up: nothing to send (health says not ready)", declare("slapd", 1), ptr(supervised(dtUp(10)).looping(3)), nil},
		{"report-only: the same actions, reported", declare("mldonkey", 0, report), ptr(supervised(dtUp(10))),
			[]controllers.Action{drivertest.ReportOnly(writeDown("mldonkey")), drivertest.ReportOnly(scale("mldonkey", "1", "0", controllers.OpScaleDown))}},
		{"report-only restart", declare("squid", 1, report, restartOn(hash2)), ptr(supervised(dtUp(10)).recorded(hash1)),
			[]controllers.Action{drivertest.ReportOnly(act("squid", "restartOn", hash1, hash2, controllers.OpRestart))}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg := target(tc.svc)
			drivertest.CheckActions(t, Plan([]controllers.Target{tg}, liveFor(tg, tc.live)), tc.want)
		})
	}
}

func TestPlanPhases(t *testing.T) {
	// Creating the down file stops a start at boot: it belongs with the
	// stops. Removing it belongs with the starts.
	for op, phase := range map[controllers.Op]controllers.Phase{
		controllers.OpDisable:   controllers.PhaseDown,
		controllers.OpScaleDown: controllers.PhaseDown,
		controllers.OpEnable:    controllers.PhaseUp,
		controllers.OpScaleUp:   controllers.PhaseUp,
		controllers.OpRestart:   controllers.PhaseUp,
		controllers.OpStart:     controllers.PhaseUp,
	} {
		if op.Phase() != phase {
			t.Errorf("%s is in phase %s, want %s", op, op.Phase(), phase)
		}
	}
}

func TestHealth(t *testing.T) {
	cases := []struct {
		name           string
		svc            v1.Service
		live           *folder
		ready, drained bool
		reason         string
	}{
		{name: "up", svc: declare("s", 1), live: ptr(supervised(dtUp(1))), ready: true, drained: true},
		{name: "runit up", svc: declare("s", 1), live: ptr(supervised(rnUp(1))), ready: true, drained: true},
		{name: "up but paused", svc: declare("s", 1), live: ptr(supervised(dtPaused(1))), drained: true},
		{name: "up but crash-looping", svc: declare("s", 1), live: ptr(supervised(dtUp(1)).looping(2)), drained: true, reason: "crash-looping (2 restarts)"},
		{name: "wanted up, not running yet", svc: declare("s", 1), live: ptr(supervised(Status{Changed: now, Want: 'u'})), drained: true},
		{name: "running once, declared up", svc: declare("s", 1), live: ptr(supervised(dtOnce(3))), drained: true},
		{name: "runit finishing, declared up", svc: declare("s", 1), live: ptr(supervised(rnFinishing(4))), drained: true},
		{name: "down", svc: declare("s", 0), live: ptr(supervised(dtDown()).down()), ready: true, drained: true},
		{name: "runit down", svc: declare("s", 0), live: ptr(supervised(rnDown()).down()), ready: true, drained: true},
		{name: "stopping", svc: declare("s", 0), live: ptr(supervised(dtStopping(5)).down())},
		{name: "runit stopping", svc: declare("s", 0), live: ptr(supervised(rnStopping(5)).down())},
		{name: "runit ./finish still runs", svc: declare("s", 0), live: ptr(supervised(rnFinishing(6)).down())},
		{name: "once finished, declared down: drained, not yet down", svc: declare("s", 0), live: ptr(supervised(dtOnce(0)).down()), drained: true},
		{name: "once running", svc: declare("s", 1, once), live: ptr(supervised(dtOnce(7)).down()), ready: true, drained: true},
		{name: "once finished", svc: declare("s", 1, once), live: ptr(supervised(dtOnce(0)).down()), ready: true, drained: true},
		{name: "runit once finished (marked)", svc: declare("s", 1, once), live: ptr(supervised(rnDown()).down().marked()), ready: true, drained: true},
		{name: "once declared, supervise wants it up", svc: declare("s", 1, once), live: ptr(supervised(dtUp(8))), drained: true},
		{
			name: "no supervise, declared up", svc: declare("s", 1), live: ptr(unsupervised()), drained: true,
			reason: "no supervise running for /service/s: open /service/s/supervise/ok: no such device or address",
		},
		{name: "no supervise, declared down", svc: declare("s", 0), live: ptr(unsupervised()), ready: true, drained: true},
		{name: "missing", svc: declare("s", 1), reason: "service folder missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg := target(tc.svc)
			l := liveFor(tg, tc.live)[tg.Subject()]
			if tc.live != nil && !tc.live.sl.Supervised {
				sl := l.Raw.(Folder)
				sl.SuperviseErr = strings.ReplaceAll(sl.SuperviseErr, "/service/x", "/service/s")
				l.Raw = sl
			}
			h := Health(tg, l)
			if h.Ready != tc.ready || h.Drained != tc.drained {
				t.Errorf("Health = %+v, want ready %v, drained %v", h, tc.ready, tc.drained)
			}
			if tc.reason != "" && !strings.Contains(h.Reason, tc.reason) {
				t.Errorf("Reason = %q, want it to contain %q", h.Reason, tc.reason)
			}
		})
	}
}

func TestLiveDetails(t *testing.T) {
	tg := target(declare("slapd", 1))
	cases := []struct {
		name  string
		f     folder
		state string
		det   map[string]string
	}{
		{
			name:  "up, normally up",
			f:     supervised(Status{Changed: now.Add(-75 * time.Second), PID: 123, Want: 'u'}),
			state: "up (pid 123) 1m15s",
			det: map[string]string{"dir": "/service/slapd", "state": "up", "pid": "123", "uptime": "1m15s",
				"since": "2026-11-22T11:58:45Z", "want": "up", "normally": "up", "paused": "false", "supervise": "running"},
		},
		{
			name:  "down, normally up (svstat's words)",
			f:     supervised(Status{Changed: now.Add(-3 * time.Second), Want: 'd'}),
			state: "down 3s, normally up",
			det: map[string]string{"dir": "/service/slapd", "state": "down", "uptime": "3s",
				"since": "2026-11-22T11:59:57Z", "want": "down", "normally": "up", "paused": "false", "supervise": "running"},
		},
		{
			name:  "up, normally down, paused",
			f:     supervised(Status{Changed: now.Add(-time.Hour), PID: 9, Paused: true, Want: 'u'}).down(),
			state: "up (pid 9) 1h0m0s, normally down, paused",
		},
		{
			name:  "crash-looping",
			f:     supervised(Status{Changed: now.Add(-300 * time.Millisecond), PID: 77, Want: 'u'}).looping(3),
			state: "up (pid 77) 0s, crash-looping (3 restarts)",
			det: map[string]string{"dir": "/service/slapd", "state": "up", "pid": "77", "uptime": "0s",
				"since": "2026-11-22T11:59:59Z", "want": "up", "normally": "up", "paused": "false", "supervise": "running",
				"crash-looping": "true", "restarts": "3", "failing": "crash-looping (3 restarts seen)"},
		},
		{
			name:  "no supervise",
			f:     unsupervised(),
			state: "no supervise running",
			det:   map[string]string{"dir": "/service/slapd", "state": "unknown", "normally": "up", "supervise": "not running"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := liveFor(tg, &tc.f)[tg.Subject()]
			if l.State != tc.state {
				t.Errorf("State = %q, want %q", l.State, tc.state)
			}
			if tc.det != nil && !maps.Equal(l.Details, tc.det) {
				t.Errorf("Details = %v\nwant      %v", l.Details, tc.det)
			}
		})
	}
}
