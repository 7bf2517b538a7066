package swarm

import (
	"maps"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

func TestSpecSince(t *testing.T) {
	created := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	done := created.Add(3 * time.Hour)
	tests := []struct {
		name string
		s    swarm.Service
		want time.Time
	}{
		{"never updated", swarm.Service{Meta: swarm.Meta{CreatedAt: created}}, created},
		// A scale moves UpdatedAt and restarts nothing.
		{"scaled only", swarm.Service{Meta: swarm.Meta{CreatedAt: created, UpdatedAt: done}}, created},
		{"update completed", swarm.Service{Meta: swarm.Meta{CreatedAt: created}, UpdateStatus: &swarm.UpdateStatus{CompletedAt: &done}}, done},
		{"update in progress", swarm.Service{Meta: swarm.Meta{CreatedAt: created}, UpdateStatus: &swarm.UpdateStatus{State: swarm.UpdateStateUpdating}}, created},
	}
	for _, tc := range tests {
		if got := specSince(one(tc.s)); !got.Equal(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestTasksSince(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)
	s := swarm.Service{Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "web"},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "nginx:1"}}}}
	task := func(slot int, state swarm.TaskState, image string, at time.Time) swarm.Task {
		return swarm.Task{Slot: slot, Spec: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image}},
			Status: swarm.TaskStatus{State: state, Timestamp: at}}
	}
	tests := []struct {
		name  string
		tasks []swarm.Task
		want  map[string]time.Time
	}{
		{"none", nil, nil},
		{"running ones only", []swarm.Task{
			task(1, swarm.TaskStateRunning, "nginx:1", t0),
			task(2, swarm.TaskStateRunning, "nginx:1", t0.Add(time.Minute)),
			task(2, swarm.TaskStateFailed, "nginx:1", t0.Add(-time.Minute)),
		}, map[string]time.Time{"web.1": t0, "web.2": t0.Add(time.Minute)}},
		{"an old image's task is not counted", []swarm.Task{task(1, swarm.TaskStateRunning, "nginx:0", t0)}, nil},
	}
	for _, tc := range tests {
		if got := tasksSince(one(s), tc.tasks); !maps.EqualFunc(got, tc.want, time.Time.Equal) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRolloutPending(t *testing.T) {
	at := time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC)
	before, after := at.Add(-time.Minute), at.Add(200*time.Millisecond)
	two, zero := uint64(2), uint64(0)
	spec := func(force uint64, image string, replicas *uint64) swarm.ServiceSpec {
		return swarm.ServiceSpec{Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: replicas}},
			TaskTemplate: swarm.TaskSpec{ForceUpdate: force, ContainerSpec: &swarm.ContainerSpec{Image: image}}}
	}
	svc := func(prev, cur swarm.ServiceSpec, u *swarm.UpdateStatus) swarm.Service {
		return swarm.Service{Meta: swarm.Meta{UpdatedAt: at}, PreviousSpec: &prev, Spec: cur, UpdateStatus: u}
	}
	tests := []struct {
		name string
		s    swarm.Service
		now  time.Time
		want bool
	}{
		{"forced, no update status yet", svc(spec(0, "w:1", &two), spec(1, "w:1", &two), nil), after, true},
		{"forced, the previous update's status", svc(spec(0, "w:1", &two), spec(1, "w:1", &two),
			&swarm.UpdateStatus{State: swarm.UpdateStateCompleted, StartedAt: &before, CompletedAt: &before}), after, true},
		{"forced, the updater started", svc(spec(0, "w:1", &two), spec(1, "w:1", &two),
			&swarm.UpdateStatus{State: swarm.UpdateStateUpdating, StartedAt: &after}), after, false},
		{"new image", svc(spec(0, "w:1", &two), spec(0, "w:2", &two), nil), after, true},
		{"a scale replaces nothing", svc(spec(0, "w:1", &zero), spec(0, "w:1", &two), nil), after, false},
		{"at zero replicas nothing is replaced", svc(spec(0, "w:1", &zero), spec(1, "w:1", &zero), nil), after, false},
		{"the updater never started: bounded", svc(spec(0, "w:1", &two), spec(1, "w:1", &two), nil), at.Add(rolloutStart + time.Second), false},
		{"never updated", swarm.Service{Spec: spec(0, "w:1", &two)}, after, false},
	}
	for _, tc := range tests {
		if got := rolloutPending(one(tc.s), tc.now); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
