package engine

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"

	"reconciler.dev/reconciler/api/names"
	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

// pass is the state of one Apply.
type pass struct {
	e        *Engine
	plan     *Plan
	graph    *graph
	targets  map[string]controllers.Target // by subject
	byName   map[string]controllers.Target // services by name
	mu       sync.Mutex
	failures map[string]error
	ready    map[string]bool // services verified ready in this pass
	drained  map[string]bool // subjects seen drained in this pass
	started  map[string]bool // subjects this pass scaled up or started
	// attempted holds the actions sent to their driver, carried out or
	// not; guarded by mu.
	attempted map[actionKey]bool
	// runs are what Run did for subjects started as one-shots (those with
	// onExit), and ran the services triggers ran; guarded by mu.
	runs  map[string]controllers.RunResult
	ran   map[string]bool
	scope Scope
	res   *Result
	// feeds are the event streams of the drivers that have one (watch.go).
	feeds map[v1.Driver]*controllers.Feed
}

func (p *pass) emit(ev Event) {
	ev.Time = p.e.now()
	if p.scope.Progress != nil {
		p.scope.Progress(ev)
	}
}

// Apply carries out a plan, stage by stage. It returns when every stage has
// run, been blocked, or failed; the Result says which. ctx cancellation
// abandons the pass between actions: an action already sent is never cut off
// half way (drivers send each as one call). The pass's logger and progress
// come from ctx (WithScope).
func (e *Engine) Apply(ctx context.Context, plan *Plan) *Result {
	p := &pass{
		e: e, plan: plan, graph: newGraph(plan.Targets), scope: scopeOf(ctx), attempted: map[actionKey]bool{},
		runs: map[string]controllers.RunResult{}, ran: map[string]bool{},
		targets: map[string]controllers.Target{}, byName: map[string]controllers.Target{},
		failures: map[string]error{}, ready: map[string]bool{}, drained: map[string]bool{}, started: map[string]bool{},
		res:   &Result{Plan: plan, Live: make(map[string]controllers.Live, len(plan.Live))},
		feeds: e.watch(plan.Targets),
	}
	for k, v := range plan.Live {
		p.res.Live[k] = v
	}
	for _, t := range plan.Targets {
		p.targets[t.Subject()] = t
		if t.Kind == controllers.KindService {
			p.byName[t.Name] = t
		}
	}
	for _, st := range plan.Stages {
		if ctx.Err() != nil {
			p.fail("pass", fmt.Errorf("pass abandoned before stage %d: %w", st.Number, ctx.Err()))
			break
		}
		p.runStage(ctx, st)
	}
	if ctx.Err() == nil {
		p.verifyAll(ctx)
	}
	p.res.Failures = p.failures
	p.res.Health = e.health(plan.Targets, p.res.Live)
	p.res.Outcomes = p.outcomes()
	return p.res
}

func (p *pass) fail(subject string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, seen := p.failures[subject]; !seen {
		p.failures[subject] = err
	}
}

func (p *pass) failed(subject string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, f := p.failures[subject]
	return f
}

// blockedBy returns what keeps an action from running in this pass, or nil.
func (p *pass) blockedBy(a controllers.Action) *BlockedError {
	blocked := func(by, format string, args ...any) *BlockedError {
		return &BlockedError{Subject: a.Subject, By: by, Reason: fmt.Sprintf(format, args...)}
	}
	t := p.targets[a.Subject]
	switch {
	case a.Kind == controllers.KindService && a.Phase == controllers.PhaseDown:
		// Never shrink a service while something that depends on it failed
		// to drain, nor while maintenance units could not be stopped.
		for _, dep := range p.graph.reach(a.Name, p.graph.dependents) {
			if s := p.byName[dep].Subject(); p.failed(s) {
				return blocked(s, "its dependent %s did not drain", dep)
			}
		}
		for _, tt := range p.plan.Targets { // in declaration order: stable messages
			if tt.Kind == controllers.KindUnit && tt.Barrier && p.failed(tt.Subject()) {
				return blocked(tt.Subject(), "unit %s could not be stopped first", tt.Name)
			}
		}
	case a.Kind == controllers.KindService:
		for _, dep := range p.graph.reach(a.Name, p.graph.deps) {
			if s := p.byName[dep].Subject(); p.failed(s) {
				return blocked(s, "its dependency %s is not ready", dep)
			}
		}
	case a.Phase == controllers.PhaseUp && t.Barrier:
		// Units tied to maintenance come back only after every service did.
		for _, tt := range p.plan.Targets {
			if tt.Kind == controllers.KindService && p.failed(tt.Subject()) {
				return blocked(tt.Subject(), "service %s did not come up", tt.Name)
			}
		}
	}
	return nil
}

func (p *pass) runStage(ctx context.Context, st Stage) {
	p.emit(Event{Type: names.EventStage, Stage: st.Number, Message: fmt.Sprintf("%s: %s", st.Phase, st.Title)})
	if st.Phase == controllers.PhaseUp {
		for _, a := range st.Actions {
			if a.Kind == controllers.KindUnit && p.targets[a.Subject].Barrier && !a.Reportable() {
				p.awaitServicesUp(ctx, st.Number)
				break
			}
		}
	}
	// Group the stage's runnable actions by subject; a subject's actions run
	// in order, subjects run concurrently.
	var order []string
	bySubject := map[string][]controllers.Action{}
	for _, a := range st.Actions {
		if a.Reportable() {
			p.res.Reported = append(p.res.Reported, a)
			p.emit(Event{Type: names.EventReported, Stage: st.Number, Subject: a.Subject, Field: a.Field, From: a.From, To: a.To,
				Message: string(a.Op) + " (" + string(a.Mode) + ")"})
			continue
		}
		if p.failed(a.Subject) {
			continue
		}
		if b := p.blockedBy(a); b != nil {
			p.fail(a.Subject, b)
			p.emit(Event{Type: names.EventBlocked, Stage: st.Number, Subject: a.Subject, Message: b.Reason})
			continue
		}
		if _, ok := bySubject[a.Subject]; !ok {
			order = append(order, a.Subject)
		}
		bySubject[a.Subject] = append(bySubject[a.Subject], a)
	}
	if len(order) == 0 {
		return
	}
	if st.Phase == controllers.PhaseUp {
		p.awaitDependencies(ctx, st, order)
	} else {
		p.awaitDependents(ctx, st, order)
	}
	conc := p.e.Concurrency
	if conc <= 0 {
		conc = 4
	}
	since := markAll(p.feeds)
	// Go waits for one of conc slots, so subjects start in order.
	var g errgroup.Group
	g.SetLimit(conc)
	var applied []string
	var appliedMu sync.Mutex
	for _, subj := range order {
		if p.failed(subj) {
			continue
		}
		g.Go(func() error {
			t := p.targets[subj]
			drv := p.e.Drivers[t.Driver]
			for _, a := range bySubject[subj] {
				if ctx.Err() != nil {
					p.fail(subj, fmt.Errorf("%s: abandoned: %w", subj, ctx.Err()))
					return nil // its failure is recorded (p.fail), not returned
				}
				p.emit(Event{Type: names.EventAction, Stage: st.Number, Subject: subj, Field: a.Field, From: a.From, To: a.To, Message: string(a.Op)})
				p.scope.Log.Info("action", "stage", st.Number, "subject", subj, "field", a.Field, "from", a.From, "to", a.To, "op", a.Op)
				p.mu.Lock()
				p.attempted[keyOf(a)] = true
				p.mu.Unlock()
				if err := p.applyOne(ctx, drv, a, t); err != nil {
					p.fail(subj, err)
					p.emit(Event{Type: names.EventFailed, Stage: st.Number, Subject: subj, Message: err.Error()})
					p.scope.Log.Error("action failed", "subject", subj, "op", a.Op, "err", err)
					return nil // its failure is recorded (p.fail), not returned
				}
				appliedMu.Lock()
				p.res.Applied = append(p.res.Applied, a)
				appliedMu.Unlock()
				switch a.Op {
				case controllers.OpScaleUp, controllers.OpStart, controllers.OpRestart:
					p.mu.Lock()
					p.started[subj] = true
					p.mu.Unlock()
				}
				p.emit(Event{Type: names.EventApplied, Stage: st.Number, Subject: subj, Field: a.Field, To: a.To})
			}
			appliedMu.Lock()
			applied = append(applied, subj)
			appliedMu.Unlock()
			return nil
		})
	}
	g.Wait()
	sort.Strings(applied)
	p.await(ctx, st.Number, applied, st.Phase, since)
	if st.Phase == controllers.PhaseUp {
		p.fireTriggers(ctx, st.Number, order)
	}
}
