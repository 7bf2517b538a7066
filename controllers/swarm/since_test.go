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
		if got := specSince(tc.s); !got.Equal(tc.want) {
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
		if got := tasksSince(s, tc.tasks); !maps.EqualFunc(got, tc.want, time.Time.Equal) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
