package systemd

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"

	"reconciler.dev/reconciler/controllers"
)

// startsAPI answers the two list calls with files and units, and property
// calls with each unit's start, counting them.
type startsAPI struct {
	API
	files []sd.UnitFile
	units []sd.UnitStatus
	start map[string]time.Time // unit -> its start; absent: the call fails
	props []string             // "unit interface" of every property call
}

func (a *startsAPI) Connected() bool { return true }
func (a *startsAPI) ListUnitFilesByPatternsContext(context.Context, []string, []string) ([]sd.UnitFile, error) {
	return a.files, nil
}
func (a *startsAPI) ListUnitsByPatternsContext(context.Context, []string, []string) ([]sd.UnitStatus, error) {
	return a.units, nil
}
func (a *startsAPI) GetUnitTypePropertiesContext(_ context.Context, unit, ifc string) (map[string]any, error) {
	a.props = append(a.props, unit+" "+ifc)
	at, ok := a.start[unit]
	if !ok {
		return nil, errors.New("no such unit")
	}
	us := uint64(at.UnixMicro())
	if ifc == "Service" {
		return map[string]any{"ExecMainStartTimestamp": us}, nil
	}
	return map[string]any{"ActiveEnterTimestamp": us}, nil
}

// A unit's start is read once when it is first seen active; an idle pass
// reads nothing; a change of state, or a job of the unit finished (the
// signal stream), has it read again; an inactive unit shows none.
func TestObserveReadsStartsOnce(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 123456000, time.UTC)
	api := &startsAPI{
		files: []sd.UnitFile{pollerFile, file("/lib/systemd/system/x.timer", "enabled")},
		units: append(pollers("active", "active", "inactive"), loaded("x.timer", "active", "waiting")),
		start: map[string]time.Time{"usm-poller@1.service": t0, "usm-poller@2.service": t0.Add(time.Minute), "x.timer": t0.Add(-time.Hour)},
	}
	d := &Driver{Bus: &Bus{Connect: func(context.Context) (API, error) { return api, nil }}, StartTimes: true}
	ts := targets(services(poller(2)))
	ts = append(ts, targets(units(unit("x.timer", nil, yes)))...)
	observe := func() map[string]controllers.Live {
		t.Helper()
		live, err := d.Observe(context.Background(), ts)
		if err != nil {
			t.Fatal(err)
		}
		return live
	}
	live := observe()
	p, timer := live["systemd/usm-poller"], live["unit/x.timer"]
	want := map[string]time.Time{"usm-poller@1.service": t0, "usm-poller@2.service": t0.Add(time.Minute)}
	if !maps.EqualFunc(p.ReplicasSince, want, time.Time.Equal) || !p.Since.Equal(t0) || !timer.Since.Equal(t0.Add(-time.Hour)) {
		t.Fatalf("poller since %v %v, timer %v", p.Since, p.ReplicasSince, timer.Since)
	}
	if len(api.props) != 3 || !sameStrings(api.props, []string{"usm-poller@1.service Service", "usm-poller@2.service Service", "x.timer Unit"}) {
		t.Fatalf("first pass read %v", api.props)
	}
	api.props = nil
	if live = observe(); len(api.props) != 0 || !live["systemd/usm-poller"].Since.Equal(t0) {
		t.Fatalf("an idle pass read %v", api.props)
	}

	// @1 goes inactive and comes back later: read again, once.
	api.units[0] = loaded("usm-poller@1.service", "inactive", "dead")
	if live = observe(); len(api.props) != 0 || !live["systemd/usm-poller"].Since.Equal(t0.Add(time.Minute)) {
		t.Fatalf("@1 inactive: read %v, since %v", api.props, live["systemd/usm-poller"].Since)
	}
	api.units[0] = loaded("usm-poller@1.service", "active", "running")
	api.start["usm-poller@1.service"] = t0.Add(2 * time.Hour)
	if live = observe(); !sameStrings(api.props, []string{"usm-poller@1.service Service"}) ||
		!live["systemd/usm-poller"].ReplicasSince["usm-poller@1.service"].Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("@1 active again: read %v, %v", api.props, live["systemd/usm-poller"].ReplicasSince)
	}

	// A restart between two passes that both list @2 active: the stream's
	// JobRemoved for it has the start read again.
	api.props = nil
	d.w = &watch{jobs: map[string]uint64{"usm-poller@2.service": 1}}
	api.start["usm-poller@2.service"] = t0.Add(3 * time.Hour)
	if live = observe(); !sameStrings(api.props, []string{"usm-poller@2.service Service"}) ||
		!live["systemd/usm-poller"].ReplicasSince["usm-poller@2.service"].Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("after a job: read %v, %v", api.props, live["systemd/usm-poller"].ReplicasSince)
	}

	// A call that fails: unknown now, made again at the next pass.
	api.props = nil
	d.w.jobs["x.timer"] = 1
	delete(api.start, "x.timer")
	if live = observe(); len(api.props) != 1 || !live["unit/x.timer"].Since.IsZero() {
		t.Fatalf("failed call: read %v, since %v", api.props, live["unit/x.timer"].Since)
	}
	if observe(); len(api.props) != 2 {
		t.Fatalf("the failed call is not made again: %v", api.props)
	}

	// Without StartTimes (a one-shot plan): no call, no uptime.
	api.props = nil
	d = &Driver{Bus: &Bus{Connect: func(context.Context) (API, error) { return api, nil }}}
	if live = observe(); len(api.props) != 0 || !live["systemd/usm-poller"].Since.IsZero() {
		t.Fatalf("StartTimes off: read %v", api.props)
	}
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// The signal stream counts the finished jobs of the units it follows, and
// of those only.
func TestWatchCountsJobs(t *testing.T) {
	w := &watch{units: map[string]string{"a.service": "systemd/a"}, ownJobs: map[uint32]bool{7: true}}
	job := func(id uint32, unit string) *dbus.Signal {
		return &dbus.Signal{Name: managerIfc + ".JobRemoved", Body: []any{id, dbus.ObjectPath("/org/freedesktop/systemd1/job/1"), unit, "done"}}
	}
	w.handle(job(7, "a.service"))
	w.handle(job(8, "b.service"))
	d := &Driver{w: w}
	if d.jobsOf("a.service") != 1 || d.jobsOf("b.service") != 0 {
		t.Errorf("jobs %v, want one of a.service", w.jobs)
	}
}
