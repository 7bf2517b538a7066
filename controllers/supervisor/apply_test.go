package supervisor

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

// fakeSupervisord keeps process states in memory and answers the four calls
// the driver makes over a real unix socket, as supervisord 4.2 does:
// startProcess without wait spawns and returns (the process is STARTING,
// then RUNNING after startDelay); stopProcess with wait returns once the
// process is STOPPED, stopDelay after the call.
type fakeSupervisord struct {
	*fakeServer
	stopDelay, startDelay time.Duration

	mu    sync.Mutex
	procs []Process // in getAllProcessInfo order
	calls []fakeCall
	// badName makes calls naming this process answer BAD_NAME.
	badName string
}

// fakeCall is one call the fake received, with when it was answered.
type fakeCall struct {
	Method   string
	Args     []any
	Received time.Time
	Answered time.Time
}

func newFakeSupervisord(t *testing.T, procs ...[]Process) *fakeSupervisord {
	f := &fakeSupervisord{}
	for _, ps := range procs {
		f.procs = append(f.procs, ps...)
	}
	f.fakeServer = serveUnix(t, f.serve)
	return f
}

func (f *fakeSupervisord) find(namespec string) *Process {
	for i := range f.procs {
		if f.procs[i].namespec() == namespec && namespec != f.badName {
			return &f.procs[i]
		}
	}
	return nil
}

func (f *fakeSupervisord) setState(namespec, state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.find(namespec); p != nil {
		p.State = state
		if state == stateStopped || state == stateExited || state == stateFatal {
			p.PID = 0
		}
	}
}

func (f *fakeSupervisord) info(p Process) map[string]any {
	return map[string]any{
		"name": p.Name, "group": p.Group, "statename": p.State, "pid": int64(p.PID),
		"start": p.Start, "stop": int64(0), "exitstatus": int64(0), "description": "",
	}
}

func (f *fakeSupervisord) serve(w http.ResponseWriter, r *http.Request, c methodCall) {
	call := fakeCall{Method: strings.TrimPrefix(c.MethodName, "supervisor."), Args: c.args(), Received: time.Now()}
	defer func() {
		call.Answered = time.Now()
		f.mu.Lock()
		f.calls = append(f.calls, call)
		f.mu.Unlock()
	}()
	name, _ := firstArg(call.Args)
	f.mu.Lock()
	p := f.find(name)
	switch call.Method {
	case "getAllProcessInfo":
		var list []any
		for _, p := range f.procs {
			list = append(list, f.info(p))
		}
		f.mu.Unlock()
		w.Write(responseXML(list))
		return
	case "getProcessInfo", "startProcess", "stopProcess":
		if p == nil {
			f.mu.Unlock()
			w.Write(faultXML(FaultBadName, "BAD_NAME: "+name))
			return
		}
	default:
		f.mu.Unlock()
		w.Write(faultXML(FaultUnknownMethod, "UNKNOWN_METHOD"))
		return
	}
	switch call.Method {
	case "getProcessInfo":
		info := f.info(*p)
		f.mu.Unlock()
		w.Write(responseXML(info))
	case "startProcess":
		if Started(p.State) {
			f.mu.Unlock()
			w.Write(faultXML(FaultAlreadyStarted, "ALREADY_STARTED: "+name))
			return
		}
		p.State, p.PID = stateStarting, 4242
		f.mu.Unlock()
		time.AfterFunc(f.startDelay, func() { f.setState(name, stateRunning) })
		w.Write(responseXML(true))
	case "stopProcess":
		if !Started(p.State) {
			f.mu.Unlock()
			w.Write(faultXML(FaultNotRunning, "NOT_RUNNING: "+name))
			return
		}
		p.State = stateStopping
		f.mu.Unlock()
		select {
		case <-time.After(f.stopDelay):
			f.setState(name, stateStopped)
			w.Write(responseXML(true))
		case <-r.Context().Done():
			// The caller stopped waiting; the stop goes on.
			time.AfterFunc(f.stopDelay, func() { f.setState(name, stateStopped) })
		}
	}
}

func firstArg(args []any) (string, bool) {
	if len(args) == 0 {
		return "", false
	}
	s, ok := args[0].(string)
	return s, ok
}

// log returns the calls received so far, skipping reads unless all.
func (f *fakeSupervisord) log(all bool) []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeCall
	for _, c := range f.calls {
		if all || c.Method == "startProcess" || c.Method == "stopProcess" {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeSupervisord) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

// describeCalls is "stopProcess usm-poller:usm-poller_05 true, ...".
func describeCalls(cs []fakeCall) string {
	var parts []string
	for _, c := range cs {
		s := c.Method
		for _, a := range c.Args {
			s += fmt.Sprintf(" %v", a)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// converge plans and applies like the engine does (down actions, then up),
// from one observation, and returns the fresh live state afterwards.
func converge(t *testing.T, d *Driver, ts []controllers.Target) map[string]controllers.Live {
	t.Helper()
	ctx := context.Background()
	live, err := d.Observe(ctx, ts)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range Plan(ts, live) {
		tg := ts[0]
		for _, x := range ts {
			if x.Subject() == a.Subject {
				tg = x
			}
		}
		if err := d.Apply(ctx, a, tg, live[a.Subject]); err != nil {
			t.Fatalf("apply %s: %v", a, err)
		}
	}
	live, err = d.Observe(ctx, ts)
	if err != nil {
		t.Fatal(err)
	}
	return live
}

// fakePoller is the usm-poller service on the fake's socket.
func fakePoller(f *fakeSupervisord, n int32, stopTimeout time.Duration) []controllers.Target {
	svc := poller(n)
	svc.Socket = f.socket
	svc.StopTimeout = v1.NewDuration(stopTimeout)
	return targets(services(svc))
}

func TestApplyScaleDownOneAtATimeFromTheHighest(t *testing.T) {
	f := newFakeSupervisord(t, group("usm-poller", mix(R, R, R, R, R)...))
	f.stopDelay = 150 * time.Millisecond
	d := &Driver{}
	ts := fakePoller(f, 2, time.Second)
	live := converge(t, d, ts)

	calls := f.log(false)
	want := "stopProcess usm-poller:usm-poller_05 true, stopProcess usm-poller:usm-poller_04 true, stopProcess usm-poller:usm-poller_03 true"
	if got := describeCalls(calls); got != want {
		t.Fatalf("calls: %s\nwant:  %s", got, want)
	}
	for i := 1; i < len(calls); i++ {
		if calls[i].Received.Before(calls[i-1].Answered) {
			t.Errorf("%s sent before %s had exited", describeCalls(calls[i:i+1]), describeCalls(calls[i-1:i]))
		}
	}
	if h := Health(ts[0], live[ts[0].Subject()]); !h.Ready || !h.Drained {
		t.Errorf("health after the scale-down: %+v", h)
	}
}

func TestApplyScaleUpInOrder(t *testing.T) {
	f := newFakeSupervisord(t, group("usm-poller", mix(R, S, F, S, S)...))
	d := &Driver{}
	ts := fakePoller(f, 5, time.Second)
	converge(t, d, ts)
	want := "startProcess usm-poller:usm-poller_02 false, startProcess usm-poller:usm-poller_03 false, " +
		"startProcess usm-poller:usm-poller_04 false, startProcess usm-poller:usm-poller_05 false"
	if got := describeCalls(f.log(false)); got != want {
		t.Fatalf("calls: %s\nwant:  %s", got, want)
	}
	// Apply does not wait for RUNNING; the engine observes until ready.
	var l controllers.Live
	deadline := time.Now().Add(5 * time.Second)
	for {
		live, err := d.Observe(context.Background(), ts)
		if err != nil {
			t.Fatal(err)
		}
		l = live[ts[0].Subject()]
		if Health(ts[0], l).Ready || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if h := Health(ts[0], l); !h.Ready {
		t.Fatalf("not ready: %+v", h)
	}

	// Nothing to change: no call but the one observation.
	f.reset()
	converge(t, d, ts)
	if got := describeCalls(f.log(true)); got != "getAllProcessInfo, getAllProcessInfo" {
		t.Errorf("in sync, calls: %s (want the two observations only)", got)
	}
}

// The wrong processes: the extra goes first, then the missing one starts.
func TestApplyWrongProcesses(t *testing.T) {
	f := newFakeSupervisord(t, group("usm-poller", mix(R, S, R)...))
	d := &Driver{}
	converge(t, d, fakePoller(f, 2, time.Second))
	want := "stopProcess usm-poller:usm-poller_03 true, startProcess usm-poller:usm-poller_02 false"
	if got := describeCalls(f.log(false)); got != want {
		t.Fatalf("calls: %s\nwant:  %s", got, want)
	}
}

// Someone else got there first: ALREADY_STARTED and NOT_RUNNING are not
// errors, and a process someone else is stopping is waited for.
func TestApplyAlreadySo(t *testing.T) {
	f := newFakeSupervisord(t, group("usm-poller", mix(R, S, R, R)...))
	d := &Driver{PollInterval: 10 * time.Millisecond}
	ts := fakePoller(f, 2, time.Second)
	live, err := d.Observe(context.Background(), ts)
	if err != nil {
		t.Fatal(err)
	}
	l := live[ts[0].Subject()]
	// Between observing and acting: _02 was started by hand, _04 stopped,
	// and _03 is being stopped by someone else.
	f.setState("usm-poller:usm-poller_02", stateRunning)
	f.setState("usm-poller:usm-poller_04", stateStopped)
	f.setState("usm-poller:usm-poller_03", stateStopping)
	time.AfterFunc(200*time.Millisecond, func() { f.setState("usm-poller:usm-poller_03", stateStopped) })
	start := time.Now()
	for _, a := range Plan(ts, live) {
		if err := d.Apply(context.Background(), a, ts[0], l); err != nil {
			t.Fatalf("apply %s: %v", a, err)
		}
	}
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Errorf("scale-down returned after %s, before _03 had exited", took)
	}
	live, _ = d.Observe(context.Background(), ts)
	if h := Health(ts[0], live[ts[0].Subject()]); !h.Ready {
		t.Errorf("not ready: %+v", h)
	}
}

func TestApplyStopBounded(t *testing.T) {
	f := newFakeSupervisord(t, group("usm-poller", mix(R, R)...))
	f.stopDelay = 10 * time.Second
	d := &Driver{StopSlack: 100 * time.Millisecond}
	ts := fakePoller(f, 1, 200*time.Millisecond)
	live, err := d.Observe(context.Background(), ts)
	if err != nil {
		t.Fatal(err)
	}
	a := Plan(ts, live)[0]
	start := time.Now()
	err = d.Apply(context.Background(), a, ts[0], live[a.Subject])
	if err == nil || !strings.Contains(err.Error(), "supervisor/usm-poller: stop usm-poller:usm-poller_02: not exited within 300ms") {
		t.Errorf("err = %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("gave up after %s", took)
	}

	// Abandoning the pass cuts the wait short too.
	f.setState("usm-poller:usm-poller_02", stateRunning)
	d.StopSlack = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	if err := d.Apply(ctx, a, ts[0], live[a.Subject]); err == nil || time.Since(start) > 3*time.Second {
		t.Errorf("abandoned stop: %v after %s", err, time.Since(start))
	}
}

func TestApplyErrorsNameSubjectAndProcess(t *testing.T) {
	f := newFakeSupervisord(t, group("usm-poller", mix(R)...))
	f.badName = "usm-poller:usm-poller_02"
	d := &Driver{}
	ts := fakePoller(f, 3, time.Second)
	live, err := d.Observe(context.Background(), ts)
	if err != nil {
		t.Fatal(err)
	}
	a := Plan(ts, live)[0]
	err = d.Apply(context.Background(), a, ts[0], live[a.Subject])
	if err == nil || !strings.Contains(err.Error(), "supervisor/usm-poller: start usm-poller:usm-poller_02: fault 10: BAD_NAME") {
		t.Errorf("err = %v", err)
	}
	// Nothing after the failure is started.
	if got := describeCalls(f.log(false)); got != "startProcess usm-poller:usm-poller_02 false" {
		t.Errorf("calls: %s", got)
	}

	tooMany := fakePoller(f, 16, time.Second)
	err = d.Apply(context.Background(), a, tooMany[0], live[a.Subject])
	if err == nil || !strings.Contains(err.Error(), "16 replicas wanted, but program usm-poller has numprocs=15") {
		t.Errorf("err = %v", err)
	}
}

// Observe makes one getAllProcessInfo per socket, whatever the number of
// services, and an unreachable socket is named in the error.
func TestObserveOneCallPerSocket(t *testing.T) {
	f1 := newFakeSupervisord(t, group("a", R, S), group("b", S))
	f2 := newFakeSupervisord(t, group("a", S, S, S))
	counted := map[string]int{}
	d := &Driver{Count: func(verb string) { counted[verb]++ }}
	svc := func(name, program, socket string, n int32) v1.Service {
		return v1.Service{Name: name, Driver: v1.DriverSupervisor, Program: program, Socket: socket, Replicas: v1.Ptr(n)}
	}
	ts := targets(services(
		svc("a1", "a", f1.socket, 1), svc("b1", "b", f1.socket, 1), svc("c1", "c", f1.socket, 0),
		svc("a2", "a", f2.socket, 3),
	))
	live, err := d.Observe(context.Background(), ts)
	if err != nil {
		t.Fatal(err)
	}
	if len(f1.log(true)) != 1 || len(f2.log(true)) != 1 || counted["getAllProcessInfo"] != 2 || len(counted) != 1 {
		t.Errorf("calls: %s | %s; counted %v", describeCalls(f1.log(true)), describeCalls(f2.log(true)), counted)
	}
	if !live["supervisor/a1"].Exists || live["supervisor/a1"].Replicas != 1 || live["supervisor/b1"].Replicas != 0 ||
		live["supervisor/c1"].Exists || live["supervisor/a2"].Replicas != 0 || live["supervisor/a2"].Raw.(groupLive).Socket != f2.socket {
		t.Errorf("live = %+v", live)
	}

	f2.srv.Close()
	_, err = d.Observe(context.Background(), ts)
	if err == nil || !strings.Contains(err.Error(), "supervisord at "+f2.socket+": getAllProcessInfo") {
		t.Errorf("err = %v", err)
	}
}
