package engine

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

// runDriver is memDriver that runs one-shots: Run records the order and
// says each exited, well unless failing names it. A one-shot ends where it
// started: its declared count says whether it stays "up" after its exit.
type runDriver struct {
	*memDriver
	rmu     sync.Mutex
	order   []string
	failing map[string]bool
}

func (r *runDriver) Run(_ context.Context, t controllers.Target) (controllers.RunResult, error) {
	r.rmu.Lock()
	r.order = append(r.order, t.Name)
	r.rmu.Unlock()
	r.mu.Lock()
	r.want[t.Subject()], r.seen[t.Subject()] = t.Replicas, 0 // the head stays up (RemainAfterExit); the rest end at 0
	r.mu.Unlock()
	if r.failing[t.Name] {
		return controllers.RunResult{Exited: true, Detail: "exited 1 (exit-code)"}, nil
	}
	return controllers.RunResult{Exited: true, Succeeded: true, Detail: "exited 0 (success)"}, nil
}

func oneShot(name string, replicas int32, onExit *v1.ExitTrigger, onStart *v1.StartTrigger) v1.Service {
	return v1.Service{Name: name, Driver: v1.DriverSystemd, Unit: name + ".service", Replicas: v1.Ptr(replicas), OnExit: onExit, OnStart: onStart}
}

// exits is the onExit trigger that starts next after an exit that on
// names ("": success, the default).
func exits(on v1.ExitCondition, next string) *v1.ExitTrigger {
	return &v1.ExitTrigger{Start: []string{next}, On: on}
}

func TestTriggers(t *testing.T) {
	// chain is t1, then t2 and t3, each started by the exit of the one
	// before it; cleanup is t1 with a clean-up started when it fails.
	chain := func() []v1.Service {
		return []v1.Service{oneShot("t1", 1, exits("", "t2"), nil), oneShot("t2", 0, exits("", "t3"), nil), oneShot("t3", 0, nil, nil)}
	}
	cleanup := func() []v1.Service {
		return []v1.Service{oneShot("t1", 1, exits(v1.ExitFailure, "cleanup"), nil), oneShot("cleanup", 0, nil, nil)}
	}
	tests := []struct {
		name     string
		services []v1.Service
		failing  []string
		want     []string // the order things ran in
		runs     []string // the trigger runs recorded: "step name by"
		failed   []string
	}{
		{"a chain of three one-shots by onExit", chain(), nil, []string{"t1", "t2", "t3"},
			[]string{"1 t2 onExit of t1 (exited 0 (success))", "2 t3 onExit of t2 (exited 0 (success))"}, nil},
		{"a failure stops the chain that waits for success", chain(), []string{"t2"}, []string{"t1", "t2"},
			[]string{"1 t2 onExit of t1 (exited 0 (success))"}, []string{"systemd/t2"}},
		{"on: failure runs the clean-up; on success it does not", cleanup(), []string{"t1"}, []string{"t1", "cleanup"},
			[]string{"1 cleanup onExit of t1 (exited 1 (exit-code))"}, []string{"systemd/t1"}},
		{"on: failure, and it succeeded", cleanup(), nil, []string{"t1"}, nil, nil},
		{
			name: "onStart runs its list in order, each with its own triggers first",
			services: []v1.Service{
				oneShot("t1", 1, nil, &v1.StartTrigger{Start: []string{"a", "b"}}),
				oneShot("a", 0, exits(v1.ExitAny, "a2"), nil),
				oneShot("a2", 0, nil, nil),
				oneShot("b", 0, nil, nil),
			},
			want: []string{"a", "a2", "b"}, // t1 itself has no onExit: started through Apply, not Run
			runs: []string{"1 a onStart of t1", "2 a2 onExit of a (exited 0 (success))", "3 b onStart of t1"},
		},
		{"a service that the pass does not start fires nothing",
			[]v1.Service{oneShot("t1", 0, exits("", "t2"), nil), oneShot("t2", 0, nil, nil)}, nil, nil, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &runDriver{memDriver: newMem(v1.DriverSystemd, 0), failing: map[string]bool{}}
			for _, f := range tc.failing {
				d.failing[f] = true
			}
			e, rec := newTestEngine(d)
			spec := &v1.HostSpec{Services: tc.services}
			_, res := e.planApply(t, spec)
			if strings.Join(d.order, ",") != strings.Join(tc.want, ",") {
				t.Errorf("ran %v, want %v", d.order, tc.want)
			}
			var runs []string
			for _, r := range res.Triggered {
				runs = append(runs, strings.Join([]string{itoa(r.Step), r.Name, r.By}, " "))
			}
			if strings.Join(runs, "\n") != strings.Join(tc.runs, "\n") {
				t.Errorf("trigger runs:\n%s\nwant:\n%s", strings.Join(runs, "\n"), strings.Join(tc.runs, "\n"))
			}
			var failed []string
			for s, err := range res.Failures {
				failed = append(failed, s)
				if !errors.Is(err, ErrExited) {
					t.Errorf("%s failed with %v, want ErrExited", s, err)
				}
			}
			if strings.Join(failed, ",") != strings.Join(tc.failed, ",") {
				t.Errorf("failures %v, want %v", res.Failures, tc.failed)
			}
			// Each run raises a "trigger" event as it begins, and a second
			// one when it went well (a "failed" one otherwise).
			if n, want := len(rec.steps("trigger")), len(tc.runs)+succeeded(res); n != want {
				t.Errorf("%d trigger events, want %d: %v", n, want, rec.steps("trigger"))
			}
		})
	}
}

func succeeded(res *Result) int {
	n := 0
	for _, r := range res.Triggered {
		if r.Succeeded {
			n++
		}
	}
	return n
}

func itoa(n int) string { return string(rune('0' + n)) }
