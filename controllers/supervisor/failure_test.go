package supervisor

import (
	"context"
	"reflect"
	"testing"
	"time"

	"reconciler.dev/reconciler/controllers"
)

func TestFailingProcesses(t *testing.T) {
	cases := []struct {
		name    string
		n       int32
		states  []string
		failing string
	}{
		{"fatal and backoff among the first N", 3, mix(F, R, B, F), "usm-poller_01 FATAL, usm-poller_03 BACKOFF"},
		{"fatal beyond N is not failing", 1, mix(R, F), ""},
		{"starting is not failing", 2, mix(ST, R), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := targets(services(poller(tc.n)))
			l := liveFrom(ts, pollers(tc.states...))[ts[0].Subject()]
			if l.Failing != tc.failing || l.Details["failing"] != tc.failing {
				t.Errorf("failing %q (details %v), want %q", l.Failing, l.Details, tc.failing)
			}
		})
	}
}

// While the failure policy restarts a FATAL process or gave up, the plan
// does not start it; other missing processes are started as usual.
func TestPlanLeavesFatalToThePolicy(t *testing.T) {
	for _, mode := range []controllers.FailureMode{"", controllers.FailureReport, controllers.FailureRestart, controllers.FailureGaveUp} {
		ts := targets(services(poller(3)))
		ts[0].Failure = mode
		_, toStart := changes(ts[0], groupLive{Procs: group("usm-poller", mix(F, R, S)...)})
		var got []string
		for _, p := range toStart {
			got = append(got, p.Name)
		}
		want := []string{"usm-poller_01", "usm-poller_03"}
		if mode.Holds() {
			want = []string{"usm-poller_03"}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("mode %q: to start %q, want %q", mode, got, want)
		}
	}
}

func TestApplyRestartStopsAndStartsTheFailing(t *testing.T) {
	f := newFakeSupervisord(t, group("usm-poller", mix(F, R, B)...))
	d := &Driver{}
	ts := fakePoller(f, 3, time.Second)
	ts[0].Failure = controllers.FailureRestart
	live, err := d.Observe(context.Background(), ts)
	if err != nil {
		t.Fatal(err)
	}
	a := controllers.Action{Subject: ts[0].Subject(), Field: controllers.FieldFailing, Op: controllers.OpRestart}
	if err := d.Apply(context.Background(), a, ts[0], live[ts[0].Subject()]); err != nil {
		t.Fatal(err)
	}
	want := "startProcess usm-poller:usm-poller_01 false, stopProcess usm-poller:usm-poller_03 true, startProcess usm-poller:usm-poller_03 false"
	if got := describeCalls(f.log(false)); got != want {
		t.Errorf("calls: %s\nwant:  %s", got, want)
	}
}
