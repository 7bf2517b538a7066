package systemd

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/restarton"
)

// API is the part of go-systemd's D-Bus connection the driver, export and
// the resource monitor use (the monitor reads unit properties); *dbus.Conn
// implements it.
type API interface {
	ListUnitsByPatternsContext(ctx context.Context, states, patterns []string) ([]sd.UnitStatus, error)
	ListUnitFilesByPatternsContext(ctx context.Context, states, patterns []string) ([]sd.UnitFile, error)
	GetUnitTypePropertiesContext(ctx context.Context, unit, unitType string) (map[string]any, error)
	StartUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error)
	StopUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error)
	RestartUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error)
	EnableUnitFilesContext(ctx context.Context, files []string, runtime, force bool) (bool, []sd.EnableUnitFileChange, error)
	DisableUnitFilesContext(ctx context.Context, files []string, runtime bool) ([]sd.DisableUnitFileChange, error)
	ReloadContext(ctx context.Context) error
	Connected() bool
	Close()
}

// Driver manages systemd units and template instances.
type Driver struct {
	// Bus is the connection to the system bus (nil: one of its own, on
	// DBUS_SYSTEM_BUS_ADDRESS). cmd hands the driver, export and the
	// monitor one Bus, so a process keeps one connection.
	Bus *Bus
	// CallTimeout bounds every D-Bus call; JobTimeout bounds waiting for a
	// start or stop job to finish (defaults 30s and 2m).
	CallTimeout, JobTimeout time.Duration
	// Count, when set, is told of every D-Bus call ("list-unit-files",
	// "list-units", "properties", "start", "stop", "restart", "enable", "disable",
	// "reload"), for metrics.
	Count controllers.Counter
	// Records keeps the restartOn value last applied to each service (see
	// package restarton). nil keeps none: a restartOn change then fails,
	// saying so.
	Records *restarton.Store
	// Signals opens the bus connection of the signal stream (watch.go;
	// default: a system bus connection of its own).
	Signals func(ctx context.Context) (*dbus.Conn, error)
	// StartTimes has Observe tell since when each active unit has run
	// (Live.Since, ReplicasSince), reading a unit's start once when it is
	// first seen active and again only after its state or a job changed
	// (since.go). The agent sets it for its status; a one-shot plan or
	// apply shows no uptime and leaves it off.
	StartTimes bool

	starts unitStarts

	once sync.Once
	wmu  sync.Mutex
	w    *watch
}

// New returns a driver on bus (nil: a connection of its own).
func New(bus *Bus) *Driver { return &Driver{Bus: bus} }

// Bus is a connection to the system bus, made on first use and made again
// whenever it went away (systemd restarted). Its zero value connects to
// the system bus (DBUS_SYSTEM_BUS_ADDRESS is honoured); it is safe for
// concurrent use.
type Bus struct {
	// Connect opens a connection (default: go-systemd's system connection).
	Connect func(ctx context.Context) (API, error)
	// DialTimeout bounds waiting for a connection (default 30s).
	DialTimeout time.Duration

	mu   sync.Mutex
	conn API
}

func (d *Driver) callTimeout() time.Duration { return cmp.Or(d.CallTimeout, 30*time.Second) }

func (d *Driver) jobTimeout() time.Duration { return cmp.Or(d.JobTimeout, 2*time.Minute) }

// api returns the bus's live connection.
func (d *Driver) api(ctx context.Context) (API, error) {
	d.once.Do(func() {
		if d.Bus == nil {
			d.Bus = &Bus{}
		}
	})
	return d.Bus.Conn(ctx)
}

func (b *Bus) dialTimeout() time.Duration {
	if b.DialTimeout > 0 {
		return b.DialTimeout
	}
	return 30 * time.Second
}

func systemConnection(ctx context.Context) (API, error) {
	c, err := sd.NewSystemConnectionContext(ctx)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Conn returns a live connection, reconnecting if the last one died.
func (b *Bus) Conn(ctx context.Context) (API, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn != nil && b.conn.Connected() {
		return b.conn, nil
	}
	if b.conn != nil {
		b.conn.Close()
		b.conn = nil
	}
	connect := b.Connect
	if connect == nil {
		connect = systemConnection
	}
	// The connection lives as long as the context it was made with (godbus
	// closes it when that context ends), so it gets one of its own; the
	// dial is bounded by waiting for it here instead.
	type result struct {
		c   API
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := connect(context.WithoutCancel(ctx))
		done <- result{c, err}
	}()
	closeLate := func() {
		go func() { // close it if it ever arrives
			if r := <-done; r.c != nil {
				r.c.Close()
			}
		}()
	}
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("connecting to the system bus: %w", r.err)
		}
		b.conn = r.c
		return r.c, nil
	case <-time.After(b.dialTimeout()):
		closeLate()
		return nil, fmt.Errorf("connecting to the system bus: no answer within %s", b.dialTimeout())
	case <-ctx.Done():
		closeLate()
		return nil, fmt.Errorf("connecting to the system bus: %w", ctx.Err())
	}
}

// Close closes the connection.
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn != nil {
		b.conn.Close()
		b.conn = nil
	}
}

// Close closes the driver's bus connection and its signal stream.
func (d *Driver) Close() {
	d.closeWatch()
	if d.Bus != nil {
		d.Bus.Close()
	}
}

// templateLive is what a template service's Live.Raw holds: the state of
// every instance that systemd has loaded, by instance number.
type templateLive struct {
	Template  string
	Instances map[int]string // instance number -> ActiveState
	Sub       map[int]string // instance number -> SubState
	Restart   restartSeen    // services that declare restartOn
}

// unitLive is what a unit's Live.Raw holds.
type unitLive struct {
	FileState   string // enabled, disabled, static, masked, ...
	ActiveState string
	SubState    string
	Restart     restartSeen // services that declare restartOn
}

// Observe reads every target in two calls: the unit files (existence and
// enablement) and the loaded units (active state, template instances).
func (d *Driver) Observe(ctx context.Context, targets []controllers.Target) (map[string]controllers.Live, error) {
	api, err := d.api(ctx)
	if err != nil {
		return nil, err
	}
	var filePatterns, unitPatterns []string
	for _, t := range targets {
		unit := unitName(t)
		filePatterns = append(filePatterns, unit)
		if prefix, ok := templatePrefix(unit); ok {
			unitPatterns = append(unitPatterns, prefix+"*"+filepath.Ext(unit))
		} else {
			unitPatterns = append(unitPatterns, unit)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, d.callTimeout())
	d.Count.Add("list-unit-files")
	files, err := api.ListUnitFilesByPatternsContext(cctx, nil, filePatterns)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("listing unit files: %w", err)
	}
	cctx, cancel = context.WithTimeout(ctx, d.callTimeout())
	d.Count.Add("list-units")
	units, err := api.ListUnitsByPatternsContext(cctx, nil, unitPatterns)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("listing units: %w", err)
	}
	live := liveFrom(targets, files, units)
	if err := d.readRestart(ctx, api, targets, live); err != nil {
		return nil, err
	}
	if d.StartTimes {
		d.fillSince(ctx, api, targets, live)
	}
	return live, nil
}

// liveFrom pairs targets with what the two list calls returned. It is pure.
func liveFrom(targets []controllers.Target, files []sd.UnitFile, units []sd.UnitStatus) map[string]controllers.Live {
	fileState := map[string]string{}
	for _, f := range files {
		fileState[filepath.Base(f.Path)] = f.Type
	}
	loaded := map[string]sd.UnitStatus{}
	for _, u := range units {
		loaded[u.Name] = u
	}
	out := map[string]controllers.Live{}
	for _, t := range targets {
		unit := unitName(t)
		state, hasFile := fileState[unit]
		if prefix, ok := templatePrefix(unit); ok {
			tl := templateLive{Template: unit, Instances: map[int]string{}, Sub: map[int]string{}}
			for name, u := range loaded {
				if n, ok := instanceNumber(name, prefix, filepath.Ext(unit)); ok && u.LoadState != "not-found" {
					tl.Instances[n] = u.ActiveState
					tl.Sub[n] = u.SubState
				}
			}
			l := controllers.Live{Exists: hasFile, Raw: tl}
			for _, st := range tl.Instances {
				if Started(st) {
					l.Replicas++
				}
				if st == "active" {
					l.Running++
				}
			}
			l.State = fmt.Sprintf("%d/%d active", l.Running, l.Replicas)
			setFailing(&l, t)
			out[t.Subject()] = l
			continue
		}
		u, isLoaded := loaded[unit]
		if isLoaded && u.LoadState == "not-found" {
			isLoaded = false
		}
		ul := unitLive{FileState: state, ActiveState: "inactive"}
		if isLoaded {
			ul.ActiveState, ul.SubState = u.ActiveState, u.SubState
		}
		l := controllers.Live{Exists: hasFile || isLoaded, Raw: ul}
		en := Enabled(state)
		l.Enabled = &en
		act := Started(ul.ActiveState)
		l.Active = &act
		if act {
			l.Replicas = 1
		}
		if ul.ActiveState == "active" {
			l.Running = 1
		}
		l.State = ul.ActiveState
		if ul.SubState != "" {
			l.State += " (" + ul.SubState + ")"
		}
		if state != "" {
			l.State += ", " + state
		}
		if t.Kind == controllers.KindService {
			setFailing(&l, t)
		}
		out[t.Subject()] = l
	}
	return out
}

// failingUnit is true for a unit systemd gave up on (failed) or is
// restarting after a failure (Restart=, sub-state auto-restart).
func failingUnit(activeState, subState string) bool {
	return activeState == "failed" || subState == "auto-restart"
}

// failingUnits returns the units of a service that are failing, among those
// its target wants running (instances 1..N of a template; the unit itself
// for replicas 1), with why, in instance order.
func failingUnits(t controllers.Target, l controllers.Live) (units, why []string) {
	word := func(active, sub string) string {
		if active == "failed" {
			return "failed"
		}
		return "restarting after a failure (auto-restart)"
	}
	switch raw := l.Raw.(type) {
	case templateLive:
		for _, n := range sortedInstances(raw.Instances) {
			if n <= int(t.Replicas) && failingUnit(raw.Instances[n], raw.Sub[n]) {
				u := instanceName(raw.Template, n)
				units = append(units, u)
				why = append(why, u+" "+word(raw.Instances[n], raw.Sub[n]))
			}
		}
	case unitLive:
		if t.Replicas > 0 && failingUnit(raw.ActiveState, raw.SubState) {
			units = []string{t.Service.Unit}
			why = []string{t.Service.Unit + " " + word(raw.ActiveState, raw.SubState)}
		}
	}
	return units, why
}

// setFailing records what is failing of a service in l.
func setFailing(l *controllers.Live, t controllers.Target) {
	if !l.Exists || t.Service == nil {
		return
	}
	if _, why := failingUnits(t, *l); len(why) > 0 {
		l.Failing = strings.Join(why, ", ")
		if l.Details == nil {
			l.Details = map[string]string{}
		}
		l.Details["failing"] = l.Failing
	}
}

// unitName is the unit a target manages.
func unitName(t controllers.Target) string {
	if t.Kind == controllers.KindUnit {
		return t.Name
	}
	return t.Service.Unit
}

// templatePrefix returns "x@" for a template unit "x@.service".
func templatePrefix(unit string) (string, bool) {
	i := strings.LastIndex(unit, "@.")
	if i < 0 {
		return "", false
	}
	return unit[:i+1], true
}

// instanceNumber parses the N of "x@N.service" for the template prefix
// "x@" and extension ".service".
func instanceNumber(name, prefix, ext string) (int, bool) {
	tmpl, n, ok := InstanceOf(name)
	return n, ok && tmpl == prefix+ext
}

// InstanceOf splits "x@3.service" into its template "x@.service" and 3.
// Instances that are not numbers (x@foo, x@03) are not replicas and are
// left alone: ok is false.
func InstanceOf(name string) (template string, n int, ok bool) {
	at := strings.LastIndex(name, "@")
	dot := strings.LastIndex(name, ".")
	if at <= 0 || dot < at+2 {
		return "", 0, false
	}
	num := name[at+1 : dot]
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || strconv.Itoa(n) != num {
		return "", 0, false
	}
	return name[:at+1] + name[dot:], n, true
}

func instanceName(template string, n int) string {
	prefix, _ := templatePrefix(template)
	return prefix + strconv.Itoa(n) + filepath.Ext(template)
}

// Started is true for units that are up or on their way up: what the
// driver counts as a running replica, and export as an active unit.
func Started(activeState string) bool {
	switch activeState {
	case "active", "activating", "reloading":
		return true
	}
	return false
}

// Enabled is true for unit files that are enabled.
func Enabled(fileState string) bool {
	return fileState == "enabled" || fileState == "enabled-runtime"
}

// sortedInstances returns instance numbers in ascending order.
func sortedInstances(m map[int]string) []int {
	out := make([]int, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

// Name, Plan and Health make a Driver a controllers.Driver: Plan and Health
// are this package's pure functions.
func (d *Driver) Name() v1.Driver { return v1.DriverSystemd }
func (d *Driver) Plan(ts []controllers.Target, l map[string]controllers.Live) []controllers.Action {
	return Plan(ts, l)
}
func (d *Driver) Health(t controllers.Target, l controllers.Live) controllers.Health {
	return Health(t, l)
}
