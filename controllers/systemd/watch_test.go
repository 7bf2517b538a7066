package systemd

import (
	"testing"

	"github.com/godbus/dbus/v5"
)

// jobRemoved is the signal systemd sends when job id on unit finished.
func jobRemoved(id uint32, unit string) *dbus.Signal {
	return &dbus.Signal{Name: managerIfc + ".JobRemoved", Path: managerPath,
		Body: []any{id, dbus.ObjectPath("/org/freedesktop/systemd1/job/1"), unit, "done"}}
}

// TestJobRemovedDrift: a finished job on a managed unit is drift unless this
// process queued it, whichever of the signal and the call's answer comes
// first; with no call of ours in flight it is drift at once.
func TestJobRemovedDrift(t *testing.T) {
	const unit, subj = "x.timer", "systemd/x.timer"
	for _, c := range []struct {
		name string
		// run returns whether drift was told before the call in flight
		// (if any) was answered.
		run       func(d *Driver, w *watch, drifted func() bool) (midway bool)
		want, mid bool
	}{
		{"by hand, nothing of ours in flight", func(d *Driver, w *watch, drifted func() bool) bool {
			w.handle(jobRemoved(7, unit))
			return drifted()
		}, true, true},
		{"ours, answered first", func(d *Driver, w *watch, drifted func() bool) bool {
			d.jobCall(unit)(7)
			w.handle(jobRemoved(7, unit))
			return drifted()
		}, false, false},
		{"ours, signal first", func(d *Driver, w *watch, drifted func() bool) bool {
			queued := d.jobCall(unit)
			w.handle(jobRemoved(7, unit))
			midway := drifted()
			queued(7)
			return midway
		}, false, false},
		{"by hand while a call of ours was in flight", func(d *Driver, w *watch, drifted func() bool) bool {
			queued := d.jobCall(unit)
			w.handle(jobRemoved(8, unit))
			midway := drifted()
			queued(7)
			return midway
		}, true, false},
		{"by hand while our call failed", func(d *Driver, w *watch, drifted func() bool) bool {
			queued := d.jobCall(unit)
			w.handle(jobRemoved(8, unit))
			midway := drifted()
			queued(0)
			return midway
		}, true, false},
		{"a unit not managed", func(d *Driver, w *watch, drifted func() bool) bool {
			w.handle(jobRemoved(7, "other.service"))
			return drifted()
		}, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWatch()
			w.units[unit] = subj
			d := &Driver{w: w}
			ch := make(chan struct{}, 1)
			defer w.feed.Subscribe(ch, nil, true)()
			drifted := func() bool {
				select {
				case <-ch:
					return true
				default:
					return false
				}
			}
			midway := c.run(d, w, drifted)
			if got := midway || drifted(); got != c.want || midway != c.mid {
				t.Errorf("drift %v (told before the answer: %v), want %v (%v)", got, midway, c.want, c.mid)
			}
			if len(w.pending) != 0 || len(w.calls) != 0 {
				t.Errorf("left behind: pending %v, calls %v", w.pending, w.calls)
			}
		})
	}
}

// propertiesChanged is the signal systemd sends when a unit's generic
// properties change.
func propertiesChanged(unit string, changed map[string]string) *dbus.Signal {
	props := map[string]dbus.Variant{}
	for k, v := range changed {
		props[k] = dbus.MakeVariant(v)
	}
	return &dbus.Signal{Name: propsIfc + ".PropertiesChanged", Path: unitPath(unit), Body: []any{unitIfc, props, []string{}}}
}

// TestCrashDrift: a managed unit entering failed or auto-restart is drift
// for a service that wakes on crashes, and a mere change for one that
// does not; other moves are never drift.
func TestCrashDrift(t *testing.T) {
	const unit, subj = "w.service", "systemd/w"
	for _, c := range []struct {
		name    string
		crash   bool
		changed map[string]string
		ifc     string
		want    bool
	}{
		{"failed", true, map[string]string{"ActiveState": "failed", "SubState": "failed"}, unitIfc, true},
		{"auto-restart", true, map[string]string{"ActiveState": "activating", "SubState": "auto-restart"}, unitIfc, true},
		{"stopped", true, map[string]string{"ActiveState": "inactive", "SubState": "dead"}, unitIfc, false},
		{"started", true, map[string]string{"ActiveState": "active", "SubState": "running"}, unitIfc, false},
		{"failed, no policy that acts", false, map[string]string{"ActiveState": "failed"}, unitIfc, false},
		{"another interface", true, map[string]string{"ActiveState": "failed"}, "org.freedesktop.systemd1.Service", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWatch()
			w.units[unit] = subj
			w.paths[unitPath(unit)] = unit
			w.crash[subj] = c.crash
			drift, waits := make(chan struct{}, 1), make(chan struct{}, 1)
			defer w.feed.Subscribe(drift, nil, true)()
			defer w.feed.Subscribe(waits, []string{subj}, false)()
			s := propertiesChanged(unit, c.changed)
			s.Body[0] = c.ifc
			w.handle(s)
			if got := len(drift) == 1; got != c.want {
				t.Errorf("drift %v, want %v", got, c.want)
			}
			if len(waits) != 1 {
				t.Errorf("the change was not told to the waits")
			}
		})
	}
}
