package agent

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/engine"
	"reconciler.dev/reconciler/controllers/failure"
)

func restartAction(name string) controllers.Action {
	return controllers.Action{Subject: "systemd/" + name, Kind: controllers.KindService, Name: name, Driver: v1.DriverSystemd,
		Field: controllers.FieldFailing, Op: controllers.OpRestart, Mode: controllers.Enforce}
}

// A pass's failure events carry its id; only restarts the engine sent are
// counted, failed ones too; the memory survives the state file.
func TestFailurePassEventsAndCounting(t *testing.T) {
	a := &Agent{status: newStatusStore("h", "src"), failures: failure.New(), log: slog.New(slog.DiscardHandler)}
	p := &passRun{id: "20261122T120000-abcd", rev: "abc123", log: a.log}
	fp := newFailurePass(a, p)
	pol := &v1.FailurePolicy{Restart: &v1.RestartPolicy{Limit: v1.Ptr[int32](3), Window: v1.NewDuration(time.Minute)}}
	in := []failure.Input{
		{Name: "x", Subject: "systemd/x", Policy: pol, Replicas: 1, Exists: true, Failing: "x.service failed"},
		{Name: "y", Subject: "systemd/y", Policy: pol, Replicas: 1, Exists: true, Failing: "y.service failed"},
		{Name: "z", Subject: "systemd/z", Policy: pol, Replicas: 1, Exists: true, Failing: "z.service failed"},
	}
	d := fp.Decide(in)
	if d.Modes["x"] != controllers.FailureRestart {
		t.Fatalf("modes %v", d.Modes)
	}
	// The engine sent x's restart (applied) and z's (its call failed); y's
	// was blocked and never sent.
	res := &engine.Result{Outcomes: []engine.Outcome{
		{Action: restartAction("x"), Code: engine.CodeApplied, Attempted: true},
		{Action: restartAction("y"), Code: engine.CodeBlocked, Err: &engine.BlockedError{Subject: "systemd/y", By: "systemd/w", Reason: "its dependency w is not ready"}},
		{Action: restartAction("z"), Code: engine.CodeFailed, Attempted: true, Err: errors.New("job failed")},
	}}
	fp.applied(res)

	st := a.Status()
	var fired []string
	for _, ev := range st.Events {
		if ev.Type != EventFailurePolicy {
			continue
		}
		if ev.Pass != p.id || ev.Revision != p.rev {
			t.Errorf("event %+v does not carry the pass %s and revision %s", ev, p.id, p.rev)
		}
		fired = append(fired, ev.Subject+" "+ev.Field)
	}
	want := "systemd/x failing,systemd/y failing,systemd/z failing,systemd/x restart,systemd/z restart"
	if got := strings.Join(fired, ","); got != want {
		t.Errorf("fired %s\nwant  %s", got, want)
	}
	restarts := map[string]int{}
	for _, f := range st.Failures {
		restarts[f.Service] = len(f.Restarts)
	}
	if restarts["x"] != 1 || restarts["y"] != 0 || restarts["z"] != 1 {
		t.Errorf("restarts counted %v, want x 1, y 0, z 1", restarts)
	}

	// The state file keeps the memory.
	dir := t.TempDir()
	if err := SaveState(dir, &State{Failures: a.failures.Memory()}); err != nil {
		t.Fatal(err)
	}
	back, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m := back.Failures["x"]; len(m.Restarts) != 1 || !m.Failing || len(m.Fired) != 2 || m.Fired[1].Pass != p.id {
		t.Errorf("x's memory after the state file: %+v", m)
	}
}
