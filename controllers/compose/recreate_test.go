package compose

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/drivertest"
)

// onImage is c created from image img, made with restartOn value ro ("" none).
func onImage(c container.Summary, img, ro string) container.Summary {
	c.Image = img
	if ro != "" {
		c.Labels[LabelRestartOn] = ro
	}
	return c
}

func withImage(s v1.Service, img, ro string) v1.Service {
	s.Image, s.RestartOn = img, ro
	return s
}

func TestPlanRecreate(t *testing.T) {
	w1, w2 := "local/worker:1", "local/worker:2"
	svc := func(n int32, img, ro string) []v1.Service {
		return []v1.Service{withImage(declare("usm", "poller", n), img, ro)}
	}
	field := func(f, from, to string, op controllers.Op) controllers.Action {
		return drivertest.Service(v1.DriverCompose, "poller", f, from, to, op)
	}
	cases := []struct {
		name     string
		services []v1.Service
		live     []container.Summary
		want     []controllers.Action
	}{
		{"on the declared image: nothing", svc(2, w1, ""),
			[]container.Summary{onImage(poller(1, running), w1, ""), onImage(poller(2, running), w1, "")}, nil},
		{"image moved: every running replica on the old one", svc(2, w2, ""),
			[]container.Summary{onImage(poller(1, running), w1, ""), onImage(poller(2, running), w2, "")},
			[]controllers.Action{field("image", w1, w2, controllers.OpSetImage)}},
		{"a stopped replica beyond the count is not recreated", svc(1, w2, ""),
			[]container.Summary{onImage(poller(1, running), w2, ""), onImage(poller(2, exited), w1, "")}, nil},
		{"restartOn changed: a restartOn action", svc(2, "", "b"),
			[]container.Summary{onImage(poller(1, running), w1, "a"), onImage(poller(2, running), w1, "")},
			[]controllers.Action{field("restartOn", "(none),a", "b", controllers.OpRestart)}},
		{"restartOn and image: one image action does both", svc(2, w2, "b"),
			[]container.Summary{onImage(poller(1, running), w1, "b"), onImage(poller(2, running), w2, "a")},
			[]controllers.Action{field("image", w1, w2, controllers.OpSetImage)}},
		{"restartOn: a replica that does not run is not restarted", svc(2, "", "b"),
			[]container.Summary{onImage(poller(1, running), w1, "b"), onImage(poller(2, exited), w1, "a")},
			[]controllers.Action{action("poller", "1", "2", controllers.OpScaleUp)}},
		{"scale-up and image together", svc(2, w2, ""), []container.Summary{onImage(poller(1, running), w1, "")},
			[]controllers.Action{
				action("poller", "1", "2", controllers.OpScaleUp),
				field("image", w1, w2, controllers.OpSetImage),
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := targets(tc.services...)
			got := Plan(ts, liveFromList(ts, tc.live))
			drivertest.CheckActions(t, got, tc.want)
			for _, a := range got {
				if a.Op == controllers.OpScaleUp {
					continue
				}
				if _, ok := a.Steps.(recreateSteps); !ok {
					t.Errorf("%s carries %T, want recreateSteps", a, a.Steps)
				}
			}
		})
	}
}

// readyTemplate is the template as inspected once it has run for a minute.
func readyTemplate(name string) container.InspectResponse {
	c := template(name)
	c.State = &container.State{Status: container.StateRunning, Running: true,
		StartedAt: time.Now().Add(-time.Minute).Format(time.RFC3339Nano)}
	return c
}

func TestApplyRecreate(t *testing.T) {
	svc := withImage(declare("usm", "poller", 2), "local/worker:2", "")
	live := []container.Summary{onImage(poller(1, running), "local/worker:1", ""), onImage(poller(2, running), "local/worker:1", "")}
	run := func(fail map[string]error) (*recorder, error) {
		rec := &recorder{fail: fail, tmpl: readyTemplate("usm-poller-1")}
		return rec, applyWith(&Driver{API: rec, CallTimeout: time.Second, MinReady: time.Millisecond, PollInterval: time.Millisecond}, svc, live)
	}
	t.Run("one at a time, the old removed once the new is ready", func(t *testing.T) {
		rec, err := run(nil)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			"inspect id-usm-poller-1", "stop id-usm-poller-1 10s", "rename id-usm-poller-1 id-usm-polle_usm-poller-1",
			"create usm-poller-1", "start id-usm-poller-1", "inspect id-usm-poller-1", "remove id-usm-poller-1",
			"inspect id-usm-poller-2", "stop id-usm-poller-2 10s", "rename id-usm-poller-2 id-usm-polle_usm-poller-2",
			"create usm-poller-2", "start id-usm-poller-2", "inspect id-usm-poller-2", "remove id-usm-poller-2",
		}
		if !reflect.DeepEqual(rec.calls, want) {
			t.Errorf("calls\n got  %q\n want %q", rec.calls, want)
		}
		for _, s := range rec.created {
			if s.Config.Image != "local/worker:2" || s.Config.Labels[LabelNumber] == "1" && s.Name != "usm-poller-1" {
				t.Errorf("created %s on %s", s.Name, s.Config.Image)
			}
		}
	})
	t.Run("a new one that fails to start: the old one is put back, the rollout stops", func(t *testing.T) {
		boom := errors.New("boom")
		rec, err := run(map[string]error{"start id-usm-poller-1": boom})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want boom", err)
		}
		// The fake names the new container like the old one: its id is
		// id-usm-poller-1 too.
		want := []string{
			"inspect id-usm-poller-1", "stop id-usm-poller-1 10s", "rename id-usm-poller-1 id-usm-polle_usm-poller-1",
			"create usm-poller-1", "start id-usm-poller-1",
			"remove id-usm-poller-1 force", "rename id-usm-poller-1 usm-poller-1", "start id-usm-poller-1",
		}
		if !reflect.DeepEqual(rec.calls, want) {
			t.Errorf("calls\n got  %q\n want %q", rec.calls, want)
		}
	})
}

func TestContainerReady(t *testing.T) {
	now := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	at := func(ago time.Duration, running bool, health container.HealthStatus) container.InspectResponse {
		c := template("x")
		c.State = &container.State{Running: running, Status: "running", StartedAt: now.Add(-ago).Format(time.RFC3339Nano)}
		if !running {
			c.State.Status, c.State.ExitCode = "exited", 1
		}
		if health != "" {
			c.State.Health = &container.Health{Status: health}
		}
		return c
	}
	cases := []struct {
		name string
		c    container.InspectResponse
		want bool
	}{
		{"running long enough", at(2*time.Second, true, ""), true},
		{"just started", at(100*time.Millisecond, true, ""), false},
		{"exited", at(time.Minute, false, ""), false},
		{"healthy", at(time.Minute, true, container.Healthy), true},
		{"health starting", at(time.Minute, true, container.Starting), false},
		{"no state", template("x"), false},
	}
	for _, tc := range cases {
		if got, why := containerReady(tc.c, now, time.Second); got != tc.want {
			t.Errorf("%s: ready %v (%s), want %v", tc.name, got, why, tc.want)
		}
	}
}
