package systemd

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"

	"reconciler.dev/reconciler/controllers"
)

// API is the part of go-systemd's D-Bus connection this driver uses.
type API interface {
	ListUnitsByPatternsContext(ctx context.Context, states, patterns []string) ([]sd.UnitStatus, error)
	ListUnitFilesByPatternsContext(ctx context.Context, states, patterns []string) ([]sd.UnitFile, error)
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
	// Connect opens a connection to the system bus (DBUS_SYSTEM_BUS_ADDRESS
	// is honoured by the default). The driver reconnects whenever the bus
	// went away, e.g. when systemd restarted.
	Connect func(ctx context.Context) (API, error)
	// CallTimeout bounds every D-Bus call; JobTimeout bounds waiting for a
	// start or stop job to finish (defaults 30s and 2m).
	CallTimeout, JobTimeout time.Duration
	// Count, when set, is told of every D-Bus call ("list-unit-files",
	// "list-units", "start", "stop", "restart", "enable", "disable",
	// "reload"), for metrics.
	Count func(verb string)

	mu   sync.Mutex
	conn API
}

// New returns a driver on the system bus.
func New() *Driver {
	return &Driver{Connect: func(ctx context.Context) (API, error) {
		c, err := sd.NewSystemConnectionContext(ctx)
		if err != nil {
			return nil, err
		}
		return c, nil
	}}
}

func (d *Driver) callTimeout() time.Duration {
	if d.CallTimeout > 0 {
		return d.CallTimeout
	}
	return 30 * time.Second
}

func (d *Driver) jobTimeout() time.Duration {
	if d.JobTimeout > 0 {
		return d.JobTimeout
	}
	return 2 * time.Minute
}

func (d *Driver) count(verb string) {
	if d.Count != nil {
		d.Count(verb)
	}
}

// api returns a live connection, reconnecting if the last one died.
func (d *Driver) api(ctx context.Context) (API, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn != nil && d.conn.Connected() {
		return d.conn, nil
	}
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
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
		c, err := d.Connect(context.WithoutCancel(ctx))
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("connecting to the system bus: %w", r.err)
		}
		d.conn = r.c
		return r.c, nil
	case <-time.After(d.callTimeout()):
		go func() { // close it if it ever arrives
			if r := <-done; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, fmt.Errorf("connecting to the system bus: no answer within %s", d.callTimeout())
	case <-ctx.Done():
		go func() {
			if r := <-done; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, fmt.Errorf("connecting to the system bus: %w", ctx.Err())
	}
}

// Close closes the bus connection.
func (d *Driver) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
}

// templateLive is what a template service's Live.Raw holds: the state of
// every instance that systemd has loaded, by instance number.
type templateLive struct {
	Template  string
	Instances map[int]string // instance number -> ActiveState
	Sub       map[int]string // instance number -> SubState
}

// unitLive is what a unit's Live.Raw holds.
type unitLive struct {
	FileState   string // enabled, disabled, static, masked, ...
	ActiveState string
	SubState    string
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
	d.count("list-unit-files")
	files, err := api.ListUnitFilesByPatternsContext(cctx, nil, filePatterns)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("listing unit files: %w", err)
	}
	cctx, cancel = context.WithTimeout(ctx, d.callTimeout())
	d.count("list-units")
	units, err := api.ListUnitsByPatternsContext(cctx, nil, unitPatterns)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("listing units: %w", err)
	}
	return liveFrom(targets, files, units), nil
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
				if started(st) {
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
		en := enabled(state)
		l.Enabled = &en
		act := started(ul.ActiveState)
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

// instanceNumber parses the N of "x@N.service"; instances that are not
// numbers are not replicas and are left alone.
func instanceNumber(name, prefix, ext string) (int, bool) {
	if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, ext) {
		return 0, false
	}
	n, err := strconv.Atoi(name[len(prefix) : len(name)-len(ext)])
	if err != nil || n < 1 || strconv.Itoa(n) != name[len(prefix):len(name)-len(ext)] {
		return 0, false
	}
	return n, true
}

func instanceName(template string, n int) string {
	prefix, _ := templatePrefix(template)
	return prefix + strconv.Itoa(n) + filepath.Ext(template)
}

// started is true for units that are up or on their way up.
func started(activeState string) bool {
	switch activeState {
	case "active", "activating", "reloading":
		return true
	}
	return false
}

func enabled(fileState string) bool {
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
