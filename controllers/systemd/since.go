package systemd

import (
	"context"
	"strings"
	"sync"
	"time"

	"reconciler.dev/reconciler/controllers"
)

// Uptime. The unit list carries a unit's active and sub state, not since
// when it is active: that takes a property call. So the driver reads a
// unit's start once, when it first sees it active, and keeps it for as
// long as the list shows the same state and no job for the unit finished
// in between (the signal stream's JobRemoved: every start, restart and
// automatic restart is a job); an idle pass reads nothing. The start is
// ExecMainStartTimestamp for a .service (when its main process started, as
// restartOn reads it) and ActiveEnterTimestamp for other units (a timer, a
// socket), both from one GetAll of the unit's properties. What this
// misses: a unit restarted between two observations that both list it in
// the same state while the signal stream is down.

// unitStarts is the start of each unit the driver saw active, by unit
// name, kept across passes. Safe for concurrent use.
type unitStarts struct {
	mu sync.Mutex
	m  map[string]unitStart
}

// unitStart is one unit's start and what it was read under.
type unitStart struct {
	State string // "active/running": the list's states when read
	Jobs  uint64 // jobs of the unit the signal stream had seen finish
	At    time.Time
}

// maxUnitStarts bounds what the driver keeps: units no longer declared are
// forgotten all at once past it.
const maxUnitStarts = 4096

// activeUnits are the units of a target that are active now, with their
// "active/sub" states: every active instance of a template, or the unit.
func activeUnits(t controllers.Target, l controllers.Live) map[string]string {
	out := map[string]string{}
	switch raw := l.Raw.(type) {
	case templateLive:
		for n, st := range raw.Instances {
			if st == "active" {
				out[instanceName(raw.Template, n)] = st + "/" + raw.Sub[n]
			}
		}
	case unitLive:
		if raw.ActiveState == "active" {
			out[unitName(t)] = raw.ActiveState + "/" + raw.SubState
		}
	}
	return out
}

// fillSince sets Since and ReplicasSince of every target in live from the
// starts of its active units: those restartOn read in this pass, those kept
// from before, and, for a unit newly active, in another state or with a
// job finished since, one property call. A call that fails leaves that
// unit's start unknown for this pass (uptime is never worth failing a pass
// for) and is made again at the next.
func (d *Driver) fillSince(ctx context.Context, api API, targets []controllers.Target, live map[string]controllers.Live) {
	st := &d.starts
	for _, t := range targets {
		l, ok := live[t.Subject()]
		if !ok || !l.Exists {
			continue
		}
		units := activeUnits(t, l)
		read := restartOf(l).Started
		since := map[string]time.Time{}
		for u, state := range units {
			jobs := d.jobsOf(u)
			st.mu.Lock()
			kept, known := st.m[u]
			st.mu.Unlock()
			at, fresh := read[u]
			switch {
			case fresh:
			case known && kept.State == state && kept.Jobs == jobs:
				at = kept.At
			default:
				var err error
				if at, err = d.unitStartedAt(ctx, api, u); err != nil {
					controllers.Logger(ctx).Debug("systemd: a unit's start time is unknown", "unit", u, "err", err)
					continue
				}
			}
			st.mu.Lock()
			if st.m == nil || len(st.m) >= maxUnitStarts {
				st.m = map[string]unitStart{}
			}
			st.m[u] = unitStart{State: state, Jobs: jobs, At: at}
			st.mu.Unlock()
			if !at.IsZero() {
				since[u] = at
			}
		}
		st.mu.Lock()
		if tl, ok := l.Raw.(templateLive); ok {
			for n := range tl.Instances {
				if u := instanceName(tl.Template, n); units[u] == "" {
					delete(st.m, u)
				}
			}
		} else if len(units) == 0 {
			delete(st.m, unitName(t))
		}
		st.mu.Unlock()
		if len(since) == 0 {
			l.ReplicasSince, l.Since = nil, time.Time{}
		} else {
			l.ReplicasSince, l.Since = since, controllers.EarliestSince(since)
		}
		live[t.Subject()] = l
	}
}

// unitStartedAt reads one unit's start (see above); zero when systemd has
// none.
func (d *Driver) unitStartedAt(ctx context.Context, api API, unit string) (time.Time, error) {
	ifc, prop := "Unit", "ActiveEnterTimestamp"
	if strings.HasSuffix(unit, ".service") {
		ifc, prop = "Service", "ExecMainStartTimestamp"
	}
	cctx, cancel := context.WithTimeout(ctx, d.callTimeout())
	defer cancel()
	d.Count.Add("properties")
	props, err := api.GetUnitTypePropertiesContext(cctx, unit, ifc)
	if err != nil {
		return time.Time{}, err
	}
	if us, ok := props[prop].(uint64); ok && us > 0 {
		return time.UnixMicro(int64(us)).UTC(), nil
	}
	return time.Time{}, nil
}

// jobsOf is how many jobs of unit the signal stream has seen finish (0
// without a stream).
func (d *Driver) jobsOf(unit string) uint64 {
	d.wmu.Lock()
	w := d.w
	d.wmu.Unlock()
	if w == nil {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.jobs[unit]
}
