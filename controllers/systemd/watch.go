package systemd

import (
	"context"
	"fmt"
	"sync"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"

	"reconciler.dev/reconciler/controllers"
)

// The driver's signal stream: a bus connection of its own, subscribed
// (Manager.Subscribe: systemd sends unit signals only while a client is
// subscribed) with match rules for what the driver manages, not for
// everything:
//   - JobRemoved on the manager: a start, stop or restart job finished, for
//     any unit (filtered here to the managed ones). A job this process did
//     not queue is drift: a `systemctl stop` by hand.
//   - UnitFilesChanged on the manager: a unit file was enabled or disabled;
//     drift unless this process just did it.
//   - PropertiesChanged on each managed unit's object path (and instances
//     1..N of a template): ActiveState moving, which is what waits wait for;
//     and, for a service whose failure policy acts, a unit entering failed
//     or auto-restart (a crash) is drift too (controllers.WakesOnCrash).

const (
	busName     = "org.freedesktop.systemd1"
	managerPath = dbus.ObjectPath("/org/freedesktop/systemd1")
	managerIfc  = "org.freedesktop.systemd1.Manager"
	propsIfc    = "org.freedesktop.DBus.Properties"
)

// unitPath is a unit's object path on the bus.
func unitPath(unit string) dbus.ObjectPath {
	return dbus.ObjectPath("/org/freedesktop/systemd1/unit/" + sd.PathBusEscape(unit))
}

// watch is the driver's stream and what it judges signals by.
type watch struct {
	feed controllers.Feed
	mu   sync.Mutex
	// units maps every followed unit name to its target's subject; paths
	// the object paths matched, to their unit names.
	units     map[string]string
	templates map[string]string // "x@.service" -> subject
	// crash are the subjects whose units failing on their own is drift
	// (controllers.WakesOnCrash).
	crash   map[string]bool
	paths   map[dbus.ObjectPath]string
	matched map[dbus.ObjectPath]bool // PropertiesChanged rules on the bus now
	conn    *dbus.Conn
	ownJobs map[uint32]bool
	// calls counts, by unit, the job calls of this process not answered
	// yet: only while one is, can a JobRemoved of a job not known as ours
	// still be ours.
	calls    map[string]int
	pending  map[uint32]pendingJob
	ownFiles time.Time // when this process last enabled or disabled a unit file
	follow   controllers.Follower
	// jobs counts the finished jobs of each followed unit, whoever queued
	// them: a unit's start kept for its uptime is read again after one.
	jobs map[string]uint64
}

func newWatch() *watch {
	return &watch{ownJobs: map[uint32]bool{}, calls: map[string]int{}, pending: map[uint32]pendingJob{}, matched: map[dbus.ObjectPath]bool{},
		units: map[string]string{}, templates: map[string]string{}, paths: map[dbus.ObjectPath]string{}, crash: map[string]bool{}}
}

// Watch follows the targets' units on the bus (see above).
func (d *Driver) Watch(targets []controllers.Target) *controllers.Feed {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if d.w == nil {
		d.w = newWatch()
	}
	w := d.w
	w.mu.Lock()
	w.units, w.templates, w.paths = map[string]string{}, map[string]string{}, map[dbus.ObjectPath]string{}
	w.crash = map[string]bool{}
	for _, t := range targets {
		if controllers.WakesOnCrash(t) {
			w.crash[t.Subject()] = true
		}
		unit := unitName(t)
		if _, ok := templatePrefix(unit); ok {
			w.templates[unit] = t.Subject()
			for n := 1; n <= int(t.Replicas); n++ {
				w.paths[unitPath(instanceName(unit, n))] = instanceName(unit, n)
			}
			continue
		}
		w.units[unit] = t.Subject()
		w.paths[unitPath(unit)] = unit
	}
	if len(targets) > 0 {
		w.follow.Start(func(ctx context.Context) { d.follow(ctx, w) })
	}
	w.mu.Unlock()
	w.follow.Retarget()
	return &w.feed
}

// closeWatch stops the signal stream.
func (d *Driver) closeWatch() {
	d.wmu.Lock()
	w := d.w
	d.wmu.Unlock()
	if w != nil {
		w.follow.Stop()
	}
}

// jobCall is called before this process queues a job on unit; the func it
// returns, called with the job's id once the call has returned (0: it
// failed), records the job as this process's own, so its JobRemoved is not
// drift. The JobRemoved may come first (it comes on the stream's own
// connection): a JobRemoved of a job not known as ours, on a unit with a
// call of ours in flight, waits for that call's answer; with none in
// flight the job cannot be ours and is drift at once.
func (d *Driver) jobCall(unit string) (queued func(id int)) {
	d.wmu.Lock()
	w := d.w
	d.wmu.Unlock()
	if w == nil {
		return func(int) {}
	}
	w.mu.Lock()
	w.calls[unit]++
	w.mu.Unlock()
	return func(id int) { w.answered(unit, id) }
}

// pendingJob is a JobRemoved heard while a call of ours on its unit was in
// flight: whose it is is known when the call is answered.
type pendingJob struct{ unit, subject string }

// answered records the answer to a job call on unit (id 0: no job queued),
// and settles the JobRemoved signals that waited for it.
func (w *watch) answered(unit string, id int) {
	w.mu.Lock()
	if w.calls[unit]--; w.calls[unit] <= 0 {
		delete(w.calls, unit)
	}
	if id > 0 {
		if _, heard := w.pending[uint32(id)]; heard {
			delete(w.pending, uint32(id)) // ours, finished before we knew its id
		} else {
			if len(w.ownJobs) > 1024 { // signals lost: forget, rather than grow
				w.ownJobs = map[uint32]bool{}
			}
			w.ownJobs[uint32(id)] = true
		}
	}
	var drift []string
	if w.calls[unit] == 0 {
		for jid, p := range w.pending {
			if p.unit == unit {
				drift = append(drift, p.subject)
				delete(w.pending, jid)
			}
		}
	}
	w.mu.Unlock()
	for _, subj := range drift {
		w.feed.Changed(subj, true)
	}
}

// ownFileChange records that this process enabled or disabled a unit file.
func (d *Driver) ownFileChange() {
	d.wmu.Lock()
	w := d.w
	d.wmu.Unlock()
	if w == nil {
		return
	}
	w.mu.Lock()
	w.ownFiles = time.Now()
	w.mu.Unlock()
}

func (d *Driver) connectSignals(ctx context.Context) (*dbus.Conn, error) {
	if d.Signals != nil {
		return d.Signals(ctx)
	}
	return dbus.ConnectSystemBus(dbus.WithContext(ctx))
}

// follow keeps a subscribed connection until ctx ends, reconnecting with
// backoff when it goes away (systemd or the bus restarted).
func (d *Driver) follow(ctx context.Context, w *watch) {
	log := controllers.Logger(ctx)
	defer w.feed.SetLive(false)
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		up := time.Now()
		err := d.subscribed(ctx, w)
		w.feed.SetLive(false)
		if ctx.Err() != nil {
			return
		}
		backoff = controllers.Backoff(backoff, time.Since(up))
		log.Debug("systemd signal stream down; waits poll meanwhile", "err", err, "retry", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
	}
}

// subscribed runs one connection: match rules, Subscribe, then signals
// until the connection closes.
func (d *Driver) subscribed(ctx context.Context, w *watch) error {
	conn, err := d.connectSignals(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch := make(chan *dbus.Signal, 64)
	conn.Signal(ch)
	for _, member := range []string{"JobRemoved", "UnitFilesChanged"} {
		if err := conn.AddMatchSignalContext(ctx, dbus.WithMatchSender(busName), dbus.WithMatchObjectPath(managerPath),
			dbus.WithMatchInterface(managerIfc), dbus.WithMatchMember(member)); err != nil {
			return fmt.Errorf("match %s: %w", member, err)
		}
	}
	w.mu.Lock()
	w.conn, w.matched = conn, map[dbus.ObjectPath]bool{}
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.conn = nil
		w.mu.Unlock()
	}()
	if err := w.rematch(ctx); err != nil {
		return err
	}
	d.Count.Add("subscribe")
	if call := conn.Object(busName, managerPath).CallWithContext(ctx, managerIfc+".Subscribe", 0); call.Err != nil {
		return fmt.Errorf("subscribe: %w", call.Err)
	}
	w.feed.SetLive(true)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.follow.Retargets():
			if err := w.rematch(ctx); err != nil {
				return err
			}
		case s, ok := <-ch:
			if !ok {
				return fmt.Errorf("the bus connection closed")
			}
			w.handle(s)
		}
	}
}

// rematch adds and removes PropertiesChanged rules to follow w.paths.
func (w *watch) rematch(ctx context.Context) error {
	w.mu.Lock()
	conn := w.conn
	var add, del []dbus.ObjectPath
	for p := range w.paths {
		if !w.matched[p] {
			add = append(add, p)
		}
	}
	for p := range w.matched {
		if _, ok := w.paths[p]; !ok {
			del = append(del, p)
		}
	}
	w.mu.Unlock()
	if conn == nil {
		return nil
	}
	rule := func(p dbus.ObjectPath) []dbus.MatchOption {
		return []dbus.MatchOption{dbus.WithMatchSender(busName), dbus.WithMatchObjectPath(p),
			dbus.WithMatchInterface(propsIfc), dbus.WithMatchMember("PropertiesChanged")}
	}
	for _, p := range add {
		if err := conn.AddMatchSignalContext(ctx, rule(p)...); err != nil {
			return fmt.Errorf("match %s: %w", p, err)
		}
		w.mu.Lock()
		w.matched[p] = true
		w.mu.Unlock()
	}
	for _, p := range del {
		_ = conn.RemoveMatchSignalContext(ctx, rule(p)...)
		w.mu.Lock()
		delete(w.matched, p)
		w.mu.Unlock()
	}
	return nil
}

// subjectOf is the subject of the target that manages unit, or "".
func (w *watch) subjectOf(unit string) string {
	if s, ok := w.units[unit]; ok {
		return s
	}
	if tmpl, _, ok := InstanceOf(unit); ok {
		return w.templates[tmpl]
	}
	return ""
}

// ownGrace is how long after this process enabled or disabled a unit file
// a UnitFilesChanged is taken for its own.
const ownGrace = 2 * time.Second

// handle tells the feed about one signal.
func (w *watch) handle(s *dbus.Signal) {
	switch {
	case s.Name == managerIfc+".JobRemoved" && len(s.Body) >= 4:
		id, _ := s.Body[0].(uint32)
		unit, _ := s.Body[2].(string)
		w.mu.Lock()
		subj := w.subjectOf(unit)
		own := w.ownJobs[id]
		delete(w.ownJobs, id)
		if subj != "" {
			if w.jobs == nil || len(w.jobs) >= maxUnitStarts {
				w.jobs = map[string]uint64{}
			}
			w.jobs[unit]++
		}
		inFlight := w.calls[unit] > 0
		if subj != "" && !own && inFlight {
			w.pending[id] = pendingJob{unit: unit, subject: subj} // answered settles it
		}
		w.mu.Unlock()
		if subj != "" {
			w.feed.Changed(subj, !own && !inFlight)
		}
	case s.Name == managerIfc+".UnitFilesChanged":
		w.mu.Lock()
		own := time.Since(w.ownFiles) < ownGrace
		w.mu.Unlock()
		w.feed.Changed("", !own)
	case s.Name == propsIfc+".PropertiesChanged":
		w.mu.Lock()
		unit := w.paths[s.Path]
		subj := w.subjectOf(unit)
		crash := w.crash[subj] && crashed(s.Body)
		w.mu.Unlock()
		if subj != "" {
			w.feed.Changed(subj, crash)
		}
	}
}

// unitIfc is the interface of a unit's generic properties.
const unitIfc = "org.freedesktop.systemd1.Unit"

// crashed says whether a PropertiesChanged body (interface, changed,
// invalidated) tells a unit entering failed, or auto-restart (systemd
// restarting it after it died, its Restart=): what the failure policies
// call failing. No job of anyone's is behind it. It is pure.
func crashed(body []any) bool {
	if len(body) < 2 {
		return false
	}
	ifc, _ := body[0].(string)
	changed, _ := body[1].(map[string]dbus.Variant)
	if ifc != unitIfc {
		return false
	}
	active, _ := changed["ActiveState"].Value().(string)
	sub, _ := changed["SubState"].Value().(string)
	return active == "failed" || sub == "auto-restart"
}
