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

func TestTriggers(t *testing.T) {
	tests := []struct {
		name     string
		services []v1.Service
		failing  []string
		want     []string // the order things ran in
		runs     []string // the trigger runs recorded: "step name by"
		failed   []string
	}{{
		name: "a chain of three one-shots by onExit",
		services: []v1.Service{
			oneShot("t1", 1, &v1.ExitTrigger{Start: []string{"t2"}}, nil),
			oneShot("t2", 0, &v1.ExitTrigger{Start: []string{"t3"}}, nil),
			oneShot("t3", 0, nil, nil),
		},
		want: []string{"t1", "t2", "t3"},
		runs: []string{"1 t2 onExit of t1 (exited 0 (success))", "2 t3 onExit of t2 (exited 0 (success))"},
	}, {
		name: "a failure stops the chain that waits for success",
		services: []v1.Service{
			oneShot("t1", 1, &v1.ExitTrigger{Start: []string{"t2"}}, nil),
			oneShot("t2", 0, &v1.ExitTrigger{Start: []string{"t3"}}, nil),
			oneShot("t3", 0, nil, nil),
		},
		failing: []string{"t2"},
		want:    []string{"t1", "t2"},
		runs:    []string{"1 t2 onExit of t1 (exited 0 (success))"},
		failed:  []string{"systemd/t2"},
	}, {
		name: "on: failure runs the clean-up; on success it does not",
		services: []v1.Service{
			oneShot("t1", 1, &v1.ExitTrigger{Start: []string{"cleanup"}, On: v1.ExitFailure}, nil),
			oneShot("cleanup", 0, nil, nil),
		},
		failing: []string{"t1"},
		want:    []string{"t1", "cleanup"},
		runs:    []string{"1 cleanup onExit of t1 (exited 1 (exit-code))"},
		failed:  []string{"systemd/t1"},
	}, {
		name: "on: failure, and it succeeded",
		services: []v1.Service{
			oneShot("t1", 1, &v1.ExitTrigger{Start: []string{"cleanup"}, On: v1.ExitFailure}, nil),
			oneShot("cleanup", 0, nil, nil),
		},
		want: []string{"t1"},
	}, {
		name: "onStart runs its list in order, each with its own triggers first",
		services: []v1.Service{
			oneShot("t1", 1, nil, &v1.StartTrigger{Start: []string{"a", "b"}}),
			oneShot("a", 0, &v1.ExitTrigger{Start: []string{"a2"}, On: v1.ExitAny}, nil),
			oneShot("a2", 0, nil, nil),
			oneShot("b", 0, nil, nil),
		},
		want: []string{"a", "a2", "b"}, // t1 itself has no onExit: started through Apply, not Run
		runs: []string{"1 a onStart of t1", "2 a2 onExit of a (exited 0 (success))", "3 b onStart of t1"},
	}, {
		name: "a service that the pass does not start fires nothing",
		services: []v1.Service{
			oneShot("t1", 0, &v1.ExitTrigger{Start: []string{"t2"}}, nil),
			oneShot("t2", 0, nil, nil),
		},
	}}
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
