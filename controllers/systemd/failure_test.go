package systemd

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"

	sd "github.com/coreos/go-systemd/v22/dbus"

	"reconciler.dev/reconciler/controllers"
)

func TestFailingUnits(t *testing.T) {
	cases := []struct {
		name    string
		target  controllers.Target
		units   []sd.UnitStatus
		failing string
	}{
		{"plain unit failed", targets(services(plain("x", 1)))[0],
			[]sd.UnitStatus{loaded("x.service", "failed", "failed")}, "x.service failed"},
		{"plain unit restarting after a failure", targets(services(plain("x", 1)))[0],
			[]sd.UnitStatus{loaded("x.service", "activating", "auto-restart")}, "x.service restarting after a failure (auto-restart)"},
		{"plain unit failed but declared 0: not failing", targets(services(plain("x", 0)))[0],
			[]sd.UnitStatus{loaded("x.service", "failed", "failed")}, ""},
		{"instances beyond the target are not failing", targets(services(poller(2)))[0],
			pollers("active", "failed", "failed"), "usm-poller@2.service failed"},
		{"healthy", targets(services(poller(2)))[0], pollers("active", "activating"), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := []sd.UnitFile{pollerFile, file("/etc/systemd/system/x.service", "static")}
			l := liveFrom([]controllers.Target{tc.target}, files, tc.units)[tc.target.Subject()]
			if l.Failing != tc.failing || l.Details["failing"] != tc.failing {
				t.Errorf("failing %q (details %v), want %q", l.Failing, l.Details, tc.failing)
			}
		})
	}
}

// While the failure policy restarts a failing unit or gave up, the plan
// leaves it alone; other instances are planned as usual.
func TestPlanLeavesFailingUnitsToThePolicy(t *testing.T) {
	for _, mode := range []controllers.FailureMode{"", controllers.FailureReport, controllers.FailureRestart, controllers.FailureGaveUp} {
		ts := targets(services(poller(3), plain("x", 1)))
		for i := range ts {
			ts[i].Failure = mode
		}
		units := append(pollers("active", "failed"), loaded("x.service", "failed", "failed"))
		live := liveFrom(ts, []sd.UnitFile{pollerFile, file("/etc/systemd/system/x.service", "static")}, units)
		var got []string
		for _, a := range Plan(ts, live) {
			got = append(got, a.Subject+" "+a.From+"->"+a.To)
		}
		want := []string{"systemd/usm-poller 1->3", "systemd/x 0->1"}
		if mode.Holds() {
			want = []string{"systemd/usm-poller 1->2"} // only @3, never started
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("mode %q: plan %q, want %q", mode, got, want)
		}
	}
}

// restartAPI records restart jobs; each finishes "done".
type restartAPI struct {
	API
	mu    sync.Mutex
	calls []string
}

func (r *restartAPI) Connected() bool { return true }

func (r *restartAPI) RestartUnitContext(_ context.Context, name, mode string, ch chan<- string) (int, error) {
	r.mu.Lock()
	r.calls = append(r.calls, "restart "+name+" "+mode)
	r.mu.Unlock()
	ch <- "done"
	return 1, nil
}

func TestApplyRestartsEachFailingUnit(t *testing.T) {
	api := &restartAPI{}
	d := &Driver{Bus: &Bus{Connect: func(context.Context) (API, error) { return api, nil }}}
	ts := targets(services(poller(3)))
	ts[0].Failure = controllers.FailureRestart
	live := liveFrom(ts, []sd.UnitFile{pollerFile}, pollers("failed", "active", "activating"))
	l := live[ts[0].Subject()]
	a := controllers.Action{Subject: ts[0].Subject(), Field: controllers.FieldFailing, Op: controllers.OpRestart}
	if err := d.Apply(context.Background(), a, ts[0], l); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(api.calls, "; "); got != "restart usm-poller@1.service replace" {
		t.Errorf("calls %q", got)
	}
}
