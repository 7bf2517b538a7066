package systemd

import (
	"context"
	"fmt"
	"time"

	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/restarton"
)

// restartSteps are the Steps of a restartOn action: the active units or
// instances to restart, in order, one at a time.
type restartSteps []string

const fieldRestartOn = restarton.Field

// restartSeen is what Observe read for a service that declares restartOn:
// its record (package restarton: a unit reached over D-Bus takes no value
// of ours, and a drop-in would need the unit's file system) and, when the
// record holds the declared value, each running unit's start time
// (ExecMainStartTimestamp).
type restartSeen struct {
	Seen    restarton.Seen
	Started map[string]time.Time
}

// runningUnits are the units of the target that run and that it wants: the
// active instances 1..N of a template, or the plain unit when active and
// wanted.
func runningUnits(t controllers.Target, l controllers.Live) []string {
	switch raw := l.Raw.(type) {
	case templateLive:
		var out []string
		for n := 1; n <= int(t.Replicas); n++ {
			if raw.Instances[n] == "active" {
				out = append(out, instanceName(raw.Template, n))
			}
		}
		return out
	case unitLive:
		if t.Replicas > 0 && raw.ActiveState == "active" {
			return []string{t.Service.Unit}
		}
	}
	return nil
}

func restartOf(l controllers.Live) restartSeen {
	switch raw := l.Raw.(type) {
	case templateLive:
		return raw.Restart
	case unitLive:
		return raw.Restart
	}
	return restartSeen{}
}

// restartActions is the restartOn part of a service's plan: the running
// units started before the declared value was applied (all of them when
// the record holds another value or none) are restarted, one at a time;
// units that do not run are not. It is pure.
func restartActions(base controllers.Action, t controllers.Target, l controllers.Live) []controllers.Action {
	rs := restartOf(l)
	return restarton.Plan(base, rs.Seen, t.Service.RestartOn, restartSteps(runningUnits(t, l)), func(u string) time.Time { return rs.Started[u] })
}

// readRestart reads the record of every service that declares restartOn
// and, when it holds the declared value, the start time of each running
// unit: one property call per running unit, for these services only.
func (d *Driver) readRestart(ctx context.Context, api API, targets []controllers.Target, live map[string]controllers.Live) error {
	for _, t := range targets {
		if t.Kind != controllers.KindService || t.Service.RestartOn == "" {
			continue
		}
		l := live[t.Subject()]
		rec, has, err := d.Records.Load(t.Subject())
		if err != nil {
			return err
		}
		rs := restartSeen{Seen: restarton.Seen{Record: rec, Has: has}, Started: map[string]time.Time{}}
		if has && rec.Value == t.Service.RestartOn {
			for _, u := range runningUnits(t, l) {
				cctx, cancel := context.WithTimeout(ctx, d.callTimeout())
				d.Count.Add("properties")
				props, err := api.GetUnitTypePropertiesContext(cctx, u, "Service")
				cancel()
				if err != nil {
					return fmt.Errorf("%s: reading %s's start time: %w", t.Subject(), u, err)
				}
				if us, ok := props["ExecMainStartTimestamp"].(uint64); ok && us > 0 {
					rs.Started[u] = time.UnixMicro(int64(us)).UTC()
				}
			}
		}
		if len(rs.Started) > 0 {
			// Read anyway for restartOn: the units' uptime, for nothing more
			// (the uptime of other units: since.go, with StartTimes).
			l.ReplicasSince = rs.Started
			l.Since = controllers.EarliestSince(rs.Started)
		}
		switch raw := l.Raw.(type) {
		case templateLive:
			raw.Restart = rs
			l.Raw = raw
		case unitLive:
			raw.Restart = rs
			l.Raw = raw
		}
		live[t.Subject()] = l
	}
	return nil
}

// record records the declared restartOn value before units are started or
// restarted (restarton.Store.Begin).
func (d *Driver) record(ctx context.Context, subject string, t controllers.Target, l controllers.Live) error {
	if t.Service == nil {
		return nil
	}
	return d.Records.Begin(ctx, subject, restartOf(l).Seen, t.Service.RestartOn)
}

// rollingRestart restarts each unit, one at a time: systemd's restart job
// is done once the unit is up again (for Type=notify, once it said ready),
// and only then is the next one restarted.
func (d *Driver) rollingRestart(ctx context.Context, api API, subject string, t controllers.Target, l controllers.Live, steps restartSteps) error {
	if err := d.record(ctx, subject, t, l); err != nil {
		return err
	}
	for _, u := range steps {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: abandoned before restarting %s: %w", subject, u, err)
		}
		if err := d.job(ctx, api, subject, "restart", u); err != nil {
			return fmt.Errorf("%w (restartOn %s)", err, t.Service.RestartOn)
		}
	}
	return nil
}
