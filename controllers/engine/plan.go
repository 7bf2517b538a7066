package engine

import (
	"context"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/failure"
)

// Plan observes every driver with targets (concurrently, one driver's
// failure reported with its name) and plans the pass. It changes nothing.
//
// The failure policies, when the pass has any, come from ctx (WithScope).
func (e *Engine) Plan(ctx context.Context, spec *v1.HostSpec) (*Plan, error) {
	m := MaintenanceAt(spec, e.now())
	fs := scopeOf(ctx).Failures
	var standbys map[string]string
	if fs != nil {
		standbys = fs.Standbys()
	}
	sized := sizes{}
	targets := Targets(spec, m, e.counts(ctx, nil, sized, standbys))
	sels := SelectorTargets(spec)
	live, err := e.observe(ctx, append(targets, sels...))
	if err != nil {
		return nil, err
	}
	var selections []controllers.Selection
	if len(sels) > 0 {
		// The selectors' members come from the same observation: a driver
		// lists once, whatever it has to match.
		spec, selections = Expand(spec, live)
		for _, st := range sels {
			for _, mb := range live[st.Subject()].Members {
				mt := controllers.Target{Kind: controllers.KindService, Name: mb.Name, Driver: st.Driver}
				if _, declared := live[mt.Subject()]; !declared {
					live[mt.Subject()] = mb.Live
				}
			}
			delete(live, st.Subject())
		}
		targets = Targets(spec, m, e.counts(ctx, nil, sized, standbys))
	}
	if e.Sizer != nil {
		// Autoscaled counts depend on what runs now (cooldowns count from
		// the live size), so they are decided after observing.
		targets = Targets(spec, m, e.counts(ctx, live, sized, standbys))
	}
	observedOnly(targets, live)
	var restarts []controllers.Action
	health := e.health(targets, live)
	if fs != nil {
		targets, restarts = e.decideFailures(ctx, fs, spec, m, targets, live, health, sized, standbys)
		observedOnly(targets, live)
	}
	var actions []controllers.Action
	groups := byDriver(targets)
	for _, drv := range e.driversFor(groups) {
		ts := groups[drv.Name()]
		bySubject := make(map[string]int, len(ts))
		for i, t := range ts {
			bySubject[t.Subject()] = i
		}
		for _, a := range drv.Plan(ts, live) {
			i, ok := bySubject[a.Subject]
			if ok && (ts[i].Mode == controllers.ReportOnly || ts[i].Mode == controllers.Observed) {
				a.Mode = ts[i].Mode
			}
			if a.Mode == "" {
				a.Mode = controllers.Enforce
			}
			if ok {
				a.Note = ts[i].Note
			}
			actions = append(actions, a)
		}
	}
	actions = append(actions, restarts...)
	stages := Order(targets, actions)
	actions = actions[:0]
	for _, st := range stages {
		actions = append(actions, st.Actions...)
	}
	if fs != nil {
		health = e.health(targets, live) // standbys raised change their targets
	}
	return &Plan{Maintenance: m, Targets: targets, Live: live, Health: health, Actions: actions, Stages: stages,
		Selectors: selections, Spec: spec}, nil
}

// observedOnly puts the targets another node's agent converges (a swarm
// service seen from a manager that is not the leader, or from a worker)
// in mode Observed, with a note naming who converges them: they are
// reported, never written, and never waited for (every wait and failure
// policy looks only at enforced targets).
func observedOnly(targets []controllers.Target, live map[string]controllers.Live) {
	for i := range targets {
		t := &targets[i]
		if by := live[t.Subject()].ConvergedBy; by != "" {
			t.Mode = controllers.Observed
			t.Note = "observed; converged by " + by
		}
	}
}

// sizes are the autoscaled counts decided in one plan, by service name: a
// service is sized once per plan, however often its targets are worked out.
type sizes map[string]struct {
	n    int32
	note string
}

// counts returns the replicas function of Targets: autoscaled counts (once
// live is known) and standbys raised to at least one replica.
func (e *Engine) counts(ctx context.Context, live map[string]controllers.Live, sized sizes, standbys map[string]string) func(*v1.Service) (int32, string, bool) {
	return func(svc *v1.Service) (int32, string, bool) {
		n, note, ok := int32(0), "", false
		if svc.Replicas != nil {
			n = *svc.Replicas
		}
		if svc.Autoscale != nil && e.Sizer != nil && live != nil {
			r, done := sized[svc.Name]
			if !done {
				r.n, r.note = e.Sizer.Size(ctx, svc, live[string(svc.Driver)+"/"+svc.Name])
				sized[svc.Name] = r
			}
			n, note, ok = r.n, r.note, true
		}
		if why, standby := standbys[svc.Name]; standby && n < 1 {
			n, note, ok = 1, "standby: "+why, true
		}
		return n, note, ok
	}
}

// decideFailures hands what was observed to the failure policies and
// applies their decision: standbys raised, each failing service's mode, and
// an OpRestart action on the field "failing" for each service to restart.
// Standbys raised only now were observed at their declared count: that
// observation stands for this pass (they are about to start anyway).
func (e *Engine) decideFailures(ctx context.Context, fs Failures, spec *v1.HostSpec, m Maintenance, targets []controllers.Target,
	live map[string]controllers.Live, health map[string]controllers.Health, sized sizes, standbys map[string]string) ([]controllers.Target, []controllers.Action) {
	in := make([]failure.Input, 0, len(spec.Services))
	for _, t := range targets {
		if t.Kind != controllers.KindService {
			continue
		}
		l, h := live[t.Subject()], health[t.Subject()]
		in = append(in, failure.Input{
			Name: t.Name, Subject: t.Subject(), Policy: t.Service.OnFailure, Replicas: t.Replicas,
			Maintained: m.Active && t.Service.Maintenance == v1.MaintenanceStop,
			ReportOnly: t.Mode != controllers.Enforce,
			Exists:     l.Exists, Failing: l.Failing, Ready: h.Ready,
		})
	}
	dec := fs.Decide(in)
	if !sameKeys(dec.Standbys, standbys) {
		targets = Targets(spec, m, e.counts(ctx, live, sized, dec.Standbys))
	}
	var restarts []controllers.Action
	for i := range targets {
		t := &targets[i]
		if t.Kind != controllers.KindService {
			continue
		}
		t.Failure = dec.Modes[t.Name]
		if t.Failure == controllers.FailureRestart && t.Mode == controllers.Enforce {
			restarts = append(restarts, controllers.Action{
				Subject: t.Subject(), Kind: t.Kind, Name: t.Name, Driver: t.Driver,
				Field: controllers.FieldFailing, From: live[t.Subject()].Failing, To: "restarted",
				Op: controllers.OpRestart, Mode: controllers.Enforce, Note: "onFailure: " + t.Service.OnFailure.String(),
			})
		}
	}
	return targets, restarts
}

func sameKeys(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}

// driversFor returns the drivers that have targets, in a fixed order.
func (e *Engine) driversFor(groups map[v1.Driver][]controllers.Target) []controllers.Driver {
	var out []controllers.Driver
	for _, name := range v1.Drivers {
		if len(groups[name]) > 0 {
			if d := e.Drivers[name]; d != nil {
				out = append(out, d)
			}
		}
	}
	return out
}

// byDriver groups the targets by driver, in their order. Plans and
// observations take each driver's group from it, in one walk over the
// targets: a pass at 1000 services used to copy the whole list once per
// driver name and per lookup (hack/bench, scenario 3).
func byDriver(targets []controllers.Target) map[v1.Driver][]controllers.Target {
	n := map[v1.Driver]int{}
	for _, t := range targets {
		n[t.Driver]++
	}
	out := make(map[v1.Driver][]controllers.Target, len(n))
	for _, t := range targets {
		if out[t.Driver] == nil {
			out[t.Driver] = make([]controllers.Target, 0, n[t.Driver])
		}
		out[t.Driver] = append(out[t.Driver], t)
	}
	return out
}
