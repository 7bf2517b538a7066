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
//     1..N of a template): ActiveState moving, which is what waits wait for.

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
	paths     map[dbus.ObjectPath]string
	matched   map[dbus.ObjectPath]bool // PropertiesChanged rules on the bus now
	conn      *dbus.Conn
	ownJobs   map[uint32]bool
	ownFiles  time.Time // when this process last enabled or disabled a unit file
	follow    controllers.Follower
	// jobs counts the finished jobs of each followed unit, whoever queued
	// them: a unit's start kept for its uptime is read again after one.
	jobs map[string]uint64
}

// Watch follows the targets' units on the bus (see above).
func (d *Driver) Watch(targets []controllers.Target) *controllers.Feed {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if d.w == nil {
		d.w = &watch{ownJobs: map[uint32]bool{}, matched: map[dbus.ObjectPath]bool{}}
	}
	w := d.w
	w.mu.Lock()
	w.units, w.templates, w.paths = map[string]string{}, map[string]string{}, map[dbus.ObjectPath]string{}
	for _, t := range targets {
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

// ownJob records a job this process queued, so its JobRemoved is not drift.
func (d *Driver) ownJob(id int) {
	d.wmu.Lock()
	w := d.w
	d.wmu.Unlock()
	if w == nil || id <= 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.ownJobs) > 1024 { // signals lost: forget, rather than grow
		w.ownJobs = map[uint32]bool{}
	}
	w.ownJobs[uint32(id)] = true
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

// jobGrace is how long a JobRemoved of a job not known as ours waits for
// the reply to the call that queued it (another connection: the signal may
// come first) before it counts as drift.
const jobGrace = 200 * time.Millisecond

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
		w.mu.Unlock()
		if subj == "" {
			return
		}
		w.feed.Changed(subj, false)
		if !own {
			time.AfterFunc(jobGrace, func() {
				w.mu.Lock()
				own := w.ownJobs[id]
				delete(w.ownJobs, id)
				w.mu.Unlock()
				if !own {
					w.feed.Changed(subj, true)
				}
			})
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
		w.mu.Unlock()
		if subj != "" {
			w.feed.Changed(subj, false)
		}
	}
}
