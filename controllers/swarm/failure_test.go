package swarm

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"reconciler.dev/reconciler/controllers"
)

func task(state swarm.TaskState, at time.Time, force uint64, image, err string) swarm.Task {
	return swarm.Task{
		ServiceID: "id-poller",
		Spec:      swarm.TaskSpec{ForceUpdate: force, ContainerSpec: &swarm.ContainerSpec{Image: image}},
		Status:    swarm.TaskStatus{State: state, Timestamp: at, Err: err},
	}
}

// failedTwice is two tasks of image that failed with err 3 s and 2 s
// before now.
func failedTwice(now time.Time, image, err string) []swarm.Task {
	return []swarm.Task{
		task(swarm.TaskStateFailed, now.Add(-3*time.Second), 0, image, err),
		task(swarm.TaskStateFailed, now.Add(-2*time.Second), 0, image, err),
	}
}

func TestFailingOf(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	svc := service("poller", 1, 0, "local/failing:1")
	forced := svc
	forced.Spec.TaskTemplate.ForceUpdate = 1
	paused := svc
	paused.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStatePaused, Message: "update paused due to failure or early termination of task x"}
	exit1 := "task: non-zero exit (1)"
	cases := []struct {
		name  string
		svc   swarm.Service
		tasks []swarm.Task
		want  string // "" or a part of the reason
	}{
		{"no tasks failed", svc, []swarm.Task{task(swarm.TaskStateStarting, now, 0, "local/failing:1", "")}, ""},
		{"one failure is not over and over", svc, []swarm.Task{task(swarm.TaskStateFailed, now, 0, "local/failing:1", exit1)}, ""},
		{"two recent failures", svc, []swarm.Task{
			task(swarm.TaskStateFailed, now.Add(-10*time.Second), 0, "local/failing:1", "first"),
			task(swarm.TaskStateRejected, now.Add(-2*time.Second), 0, "local/failing:1", exit1),
			task(swarm.TaskStateShutdown, now, 0, "local/failing:1", ""),
		}, "2 tasks failed in the last 5m0s (last: " + exit1 + ")"},
		{"failures long ago", svc, []swarm.Task{
			task(swarm.TaskStateFailed, now.Add(-10*time.Minute), 0, "local/failing:1", exit1),
			task(swarm.TaskStateFailed, now.Add(-9*time.Minute), 0, "local/failing:1", exit1),
		}, ""},
		{"failures of an image since replaced", service("poller", 1, 0, "local/worker:1"), failedTwice(now, "local/failing:1", exit1), ""},
		{"failures from before a forced restart", forced, failedTwice(now, "local/failing:1", exit1), ""},
		{"image pinned by digest live", service("poller", 1, 0, "local/failing:1@sha256:abc"), failedTwice(now, "local/failing:1@sha256:abc", exit1), "2 tasks failed"},
		{"update paused on a failure", paused, nil, "update paused: update paused due to failure"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := failingOf(one(tc.svc), tc.tasks, now)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("failingOf = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRestartForcesAnUpdate(t *testing.T) {
	spec := service("poller", 2, 0, "local/failing:1").Spec
	spec.TaskTemplate.ForceUpdate = 4
	a := action("poller", controllers.FieldFailing, "2 tasks failed", "restarted", controllers.OpRestart)
	changed, err := setField(&spec, a)
	if err != nil || !changed || spec.TaskTemplate.ForceUpdate != 5 || *spec.Mode.Replicated.Replicas != 2 {
		t.Errorf("changed %v, err %v, force %d, replicas %d", changed, err, spec.TaskTemplate.ForceUpdate, *spec.Mode.Replicated.Replicas)
	}
}

// fakeAPI answers ListServices and TaskList from fixed lists, counting calls.
type fakeAPI struct {
	API      // the rest panics: Observe must not call it
	services []swarm.Service
	tasks    []swarm.Task
	calls    []string
}

func (f *fakeAPI) ListServices(context.Context, swarm.ServiceListOptions) ([]Service, error) {
	f.calls = append(f.calls, "list")
	return listed(f.services...), nil
}

func (f *fakeAPI) TaskList(_ context.Context, o swarm.TaskListOptions) ([]swarm.Task, error) {
	f.calls = append(f.calls, "tasks "+strings.Join(o.Filters.Get("service"), ","))
	return f.tasks, nil
}

func TestObserveReadsTasksOnlyOfUnhealthyServices(t *testing.T) {
	now := time.Now()
	ts := targets(declare("ok", 2, ""), declare("poller", 1, ""), declare("idle", 0, ""))
	f := &fakeAPI{services: []swarm.Service{service("ok", 2, 2, "w:1"), service("idle", 0, 0, "w:1")}}
	d := &Driver{API: f}
	if _, err := d.Observe(context.Background(), ts); err != nil {
		t.Fatal(err)
	}
	if strings.Join(f.calls, "; ") != "list" {
		t.Errorf("healthy pass: calls %q, want one list", f.calls)
	}
	f.services = append(f.services, service("poller", 1, 0, "local/failing:1"))
	f.tasks = []swarm.Task{
		task(swarm.TaskStateFailed, now.Add(-2*time.Second), 0, "local/failing:1", "task: non-zero exit (1)"),
		task(swarm.TaskStateFailed, now.Add(-time.Second), 0, "local/failing:1", "task: non-zero exit (1)"),
	}
	f.calls = nil
	live, err := d.Observe(context.Background(), ts)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(f.calls, "; ") != "list; tasks id-poller" {
		t.Errorf("calls %q, want the list and one TaskList for the poller", f.calls)
	}
	l := live["swarm/poller"]
	if !strings.HasPrefix(l.Failing, "2 tasks failed") || l.Details["failing"] != l.Failing {
		t.Errorf("poller: failing %q, details %v", l.Failing, l.Details)
	}
	if live["swarm/ok"].Failing != "" {
		t.Errorf("ok failing: %q", live["swarm/ok"].Failing)
	}
}
