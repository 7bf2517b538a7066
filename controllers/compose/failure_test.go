package compose

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	"reconciler.dev/reconciler/controllers"
)

func exitedWith(n int, status string) container.Summary {
	c := poller(n, exited)
	c.Status = status
	return c
}

func TestExitCode(t *testing.T) {
	for status, want := range map[string]int{
		"Exited (1) 5 seconds ago": 1, "Exited (0) 2 hours ago": 0, "Exited (137) 1 second ago": 137,
		"Up 3 minutes": -1, "Restarting (1) 2 seconds ago": -1, "": -1, "Exited (x)": -1,
	} {
		if got := exitCode(status); got != want {
			t.Errorf("exitCode(%q) = %d, want %d", status, got, want)
		}
	}
}

func TestFailingContainers(t *testing.T) {
	ts := targets(declare("usm", "poller", 4))
	list := []container.Summary{
		exitedWith(1, "Exited (1) 5 seconds ago"),  // failing
		poller(2, restarting),                      // failing: Docker's restart loop
		exitedWith(3, "Exited (143) 1 minute ago"), // stopped by us or docker stop
		exitedWith(4, "Exited (0) 1 minute ago"),   // ended well
		exitedWith(5, "Exited (2) 1 minute ago"),   // beyond 4: not wanted
	}
	l := liveFromList(ts, list)[ts[0].Subject()]
	if want := "usm-poller-1 exited 1, usm-poller-2 restarting"; l.Failing != want || l.Details["failing"] != want {
		t.Errorf("failing %q (details %v), want %q", l.Failing, l.Details, want)
	}
	for _, mode := range []controllers.FailureMode{"", controllers.FailureReport, controllers.FailureRestart, controllers.FailureGaveUp} {
		tg := ts[0]
		tg.Failure = mode
		_, toStart := changes(tg, l)
		want := startSteps{1, 3, 4} // 2 is restarting: started already
		if mode.Holds() {
			want = startSteps{3, 4}
		}
		if !reflect.DeepEqual(toStart, want) {
			t.Errorf("mode %q: to start %v, want %v", mode, toStart, want)
		}
	}
	rec := &recorder{}
	d := &Driver{API: rec}
	tg := ts[0]
	tg.Failure = controllers.FailureRestart
	a := controllers.Action{Subject: tg.Subject(), Field: controllers.FieldFailing, Op: controllers.OpRestart}
	if err := d.Apply(context.Background(), a, tg, l); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rec.calls, "; "); got != "restart id-usm-poller-1 10s; restart id-usm-poller-2 10s" {
		t.Errorf("calls %q", got)
	}
}
