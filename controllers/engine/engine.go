package engine

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/failure"
	"reconciler.dev/reconciler/controllers/probe"
)

// Engine plans and applies passes across drivers.
type Engine struct {
	// Drivers by name. A target whose driver is not here fails the plan.
	Drivers map[v1.Driver]controllers.Driver
	// Concurrency bounds the actions running at once within a stage.
	Concurrency int
	// PollInterval is how often live state is observed while waiting.
	PollInterval time.Duration
	// Progress, when set, is told about every step as it happens.
	Progress func(Event)
	// Sizer, when set, decides the count of services that autoscale.
	Sizer Sizer
	// Failures, when set, carries out the services' failure policies
	// (onFailure) in every plan; see Failures. Without it, failing services
	// are planned as any other.
	Failures Failures
	// ReadyTimeout is how long an object without a probe may take to become
	// ready (default 60s); a probe's own timeout covers the probe.
	ReadyTimeout time.Duration
	// DrainSlack is added to the stop timeouts of a scale-down before the
	// wait for it to drain gives up (default 30s).
	DrainSlack time.Duration
	// Now is the clock, for maintenance windows.
	Now func() time.Time
	// Log receives structured logs; the caller adds the pass id and revision.
	Log *slog.Logger
}

// Event is one step of a pass, for progress output, logs and event streams.
type Event struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"` // stage, action, applied, waiting, ready, drained, failed, blocked, reported
	Stage   int       `json:"stage,omitempty"`
	Subject string    `json:"subject,omitempty"`
	Field   string    `json:"field,omitempty"`
	From    string    `json:"from,omitempty"`
	To      string    `json:"to,omitempty"`
	Message string    `json:"message,omitempty"`
}

// Plan is what a pass would do, computed from one observation.
type Plan struct {
	Maintenance Maintenance                 `json:"maintenance"`
	Targets     []controllers.Target        `json:"-"`
	Live        map[string]controllers.Live `json:"-"`
	Actions     []controllers.Action        `json:"actions"`
	Stages      []Stage                     `json:"-"`
}

// InSync is true when nothing differs, not even report-only drift.
func (p *Plan) InSync() bool { return len(p.Actions) == 0 }

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Engine) log() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (e *Engine) emit(ev Event) {
	ev.Time = e.now()
	if e.Progress != nil {
		e.Progress(ev)
	}
}

// Sizer decides replica counts git leaves open (autoscale: bounds only).
type Sizer interface {
	// Size returns the count for an autoscaled service, given what runs
	// now, and a note saying why.
	Size(ctx context.Context, svc *v1.Service, live controllers.Live) (int32, string)
}

// Failures carries out failure policies (controllers/failure keeps their
// memory). A plan asks it twice: which standbys count as desired before
// observing, then what the policies do given what was observed.
type Failures interface {
	// Standbys returns the services raised to at least one replica by
	// failures remembered from earlier passes, and why.
	Standbys() map[string]string
	// Decide is given every declared service as the pass observed it.
	Decide(in []failure.Input) failure.Decision
}

// Plan observes every driver with targets (concurrently, one driver's
// failure reported with its name) and plans the pass. It changes nothing.
func (e *Engine) Plan(ctx context.Context, spec *v1.HostSpec) (*Plan, error) {
	m := MaintenanceAt(spec, e.now())
	var standbys map[string]string
	if e.Failures != nil {
		standbys = e.Failures.Standbys()
	}
	sized := sizes{}
	targets := Targets(spec, m, e.counts(ctx, nil, sized, standbys))
	live, err := e.observe(ctx, targets)
	if err != nil {
		return nil, err
	}
	if e.Sizer != nil {
		// Autoscaled counts depend on what runs now (cooldowns count from
		// the live size), so they are decided after observing.
		targets = Targets(spec, m, e.counts(ctx, live, sized, standbys))
	}
	var restarts []controllers.Action
	if e.Failures != nil {
		targets, restarts = e.decideFailures(ctx, spec, m, targets, live, sized, standbys)
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
			if ok && ts[i].Mode == controllers.ReportOnly {
				a.Mode = controllers.ReportOnly
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
	return &Plan{Maintenance: m, Targets: targets, Live: live, Actions: actions, Stages: stages}, nil
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
func (e *Engine) decideFailures(ctx context.Context, spec *v1.HostSpec, m Maintenance, targets []controllers.Target,
	live map[string]controllers.Live, sized sizes, standbys map[string]string) ([]controllers.Target, []controllers.Action) {
	in := make([]failure.Input, 0, len(spec.Services))
	for _, t := range targets {
		if t.Kind != controllers.KindService {
			continue
		}
		l := live[t.Subject()]
		h := controllers.Health{}
		if d := e.Drivers[t.Driver]; d != nil && l.Exists {
			h = d.Health(t, l)
		}
		in = append(in, failure.Input{
			Name: t.Name, Subject: t.Subject(), Policy: t.Service.OnFailure, Replicas: t.Replicas,
			Maintained: m.Active && t.Service.Maintenance == v1.MaintenanceStop,
			ReportOnly: t.Mode == controllers.ReportOnly,
			Exists:     l.Exists, Failing: l.Failing, Ready: h.Ready,
		})
	}
	dec := e.Failures.Decide(in)
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

// observe reads live state from every driver the targets need, at once.
func (e *Engine) observe(ctx context.Context, targets []controllers.Target) (map[string]controllers.Live, error) {
	groups := byDriver(targets)
	var missing []string
	for _, name := range v1.Drivers {
		if len(groups[name]) > 0 && e.Drivers[name] == nil {
			missing = append(missing, string(name))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("no driver available for %v", missing)
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs *multierror.Error
		live = map[string]controllers.Live{}
	)
	for _, drv := range e.driversFor(groups) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := drv.Observe(ctx, groups[drv.Name()])
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = multierror.Append(errs, fmt.Errorf("observe %s: %w", drv.Name(), err))
				return
			}
			for k, v := range l {
				live[k] = v
			}
		}()
	}
	wg.Wait()
	return live, errs.ErrorOrNil()
}

// Result is what a pass did.
type Result struct {
	Plan     *Plan
	Applied  []controllers.Action // carried out without error
	Reported []controllers.Action // drift only reported (report-only, missing, unsupported)
	// Failures holds every subject that failed, was blocked, or did not
	// become ready, with why.
	Failures map[string]error
	// Live is the latest observation of every target: the plan's, updated
	// by each look taken while waiting, so it shows the pass's outcome.
	Live map[string]controllers.Live
}

// Converged is true when every enforced object reached its target and is
// ready, and nothing declared is missing.
func (r *Result) Converged() bool {
	if len(r.Failures) > 0 {
		return false
	}
	for _, a := range r.Reported {
		if a.Op == controllers.OpMissing || a.Op == controllers.OpUnsupported {
			return false
		}
	}
	return true
}

// Err joins every failure, sorted by subject, or nil.
func (r *Result) Err() error {
	if len(r.Failures) == 0 {
		return nil
	}
	subjects := make([]string, 0, len(r.Failures))
	for s := range r.Failures {
		subjects = append(subjects, s)
	}
	sort.Strings(subjects)
	var errs *multierror.Error
	for _, s := range subjects {
		errs = multierror.Append(errs, r.Failures[s])
	}
	return errs
}

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
	res      *Result
}

// Apply carries out a plan, stage by stage. It returns when every stage has
// run, been blocked, or failed; the Result says which. ctx cancellation
// abandons the pass between actions: an action already sent is never cut off
// half way (drivers send each as one call).
func (e *Engine) Apply(ctx context.Context, plan *Plan) *Result {
	p := &pass{
		e: e, plan: plan, graph: newGraph(plan.Targets),
		targets: map[string]controllers.Target{}, byName: map[string]controllers.Target{},
		failures: map[string]error{}, ready: map[string]bool{}, drained: map[string]bool{}, started: map[string]bool{},
		res: &Result{Plan: plan, Live: make(map[string]controllers.Live, len(plan.Live))},
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

// blockedBy returns why an action may not run in this pass, or "".
func (p *pass) blockedBy(a controllers.Action) string {
	t := p.targets[a.Subject]
	switch {
	case a.Kind == controllers.KindService && a.Phase == controllers.PhaseDown:
		// Never shrink a service while something that depends on it failed
		// to drain, nor while maintenance units could not be stopped.
		for _, dep := range p.graph.reach(a.Name, p.graph.dependents) {
			if s := p.byName[dep].Subject(); p.failed(s) {
				return fmt.Sprintf("its dependent %s did not drain", dep)
			}
		}
		for _, tt := range p.plan.Targets { // in declaration order: stable messages
			if tt.Kind == controllers.KindUnit && tt.Barrier && p.failed(tt.Subject()) {
				return fmt.Sprintf("unit %s could not be stopped first", tt.Name)
			}
		}
	case a.Kind == controllers.KindService:
		for _, dep := range p.graph.reach(a.Name, p.graph.deps) {
			if s := p.byName[dep].Subject(); p.failed(s) {
				return fmt.Sprintf("its dependency %s is not ready", dep)
			}
		}
	case a.Phase == controllers.PhaseUp && t.Barrier:
		// Units tied to maintenance come back only after every service did.
		for _, tt := range p.plan.Targets {
			if tt.Kind == controllers.KindService && p.failed(tt.Subject()) {
				return fmt.Sprintf("service %s did not come up", tt.Name)
			}
		}
	}
	return ""
}

func (p *pass) runStage(ctx context.Context, st Stage) {
	e := p.e
	e.emit(Event{Type: "stage", Stage: st.Number, Message: fmt.Sprintf("%s: %s", st.Phase, st.Title)})
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
			e.emit(Event{Type: "reported", Stage: st.Number, Subject: a.Subject, Field: a.Field, From: a.From, To: a.To,
				Message: string(a.Op) + " (" + string(a.Mode) + ")"})
			continue
		}
		if p.failed(a.Subject) {
			continue
		}
		if why := p.blockedBy(a); why != "" {
			p.fail(a.Subject, fmt.Errorf("%s: not changed: %s", a.Subject, why))
			e.emit(Event{Type: "blocked", Stage: st.Number, Subject: a.Subject, Message: why})
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
	conc := e.Concurrency
	if conc <= 0 {
		conc = 4
	}
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	var applied []string
	var appliedMu sync.Mutex
	for _, subj := range order {
		if p.failed(subj) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			t := p.targets[subj]
			drv := e.Drivers[t.Driver]
			for _, a := range bySubject[subj] {
				if ctx.Err() != nil {
					p.fail(subj, fmt.Errorf("%s: abandoned: %w", subj, ctx.Err()))
					return
				}
				e.emit(Event{Type: "action", Stage: st.Number, Subject: subj, Field: a.Field, From: a.From, To: a.To, Message: string(a.Op)})
				e.log().Info("action", "stage", st.Number, "subject", subj, "field", a.Field, "from", a.From, "to", a.To, "op", a.Op)
				if err := drv.Apply(ctx, a, t, p.plan.Live[subj]); err != nil {
					p.fail(subj, err)
					e.emit(Event{Type: "failed", Stage: st.Number, Subject: subj, Message: err.Error()})
					e.log().Error("action failed", "subject", subj, "op", a.Op, "err", err)
					return
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
				e.emit(Event{Type: "applied", Stage: st.Number, Subject: subj, Field: a.Field, To: a.To})
			}
			appliedMu.Lock()
			applied = append(applied, subj)
			appliedMu.Unlock()
		}()
	}
	wg.Wait()
	sort.Strings(applied)
	p.await(ctx, st.Number, applied, st.Phase)
}

// awaitDependencies makes sure the dependencies of services about to grow
// are ready, including ones that had nothing to do in this pass.
func (p *pass) awaitDependencies(ctx context.Context, st Stage, subjects []string) {
	for _, subj := range subjects {
		t := p.targets[subj]
		if t.Kind != controllers.KindService {
			continue
		}
		var deps []string
		for _, d := range p.graph.deps[t.Name] {
			dt := p.byName[d]
			if !p.ready[d] && dt.Replicas > 0 && !p.failed(dt.Subject()) {
				deps = append(deps, dt.Subject())
			}
		}
		if len(deps) > 0 {
			p.await(ctx, st.Number, deps, controllers.PhaseUp)
		}
		for _, d := range p.graph.deps[t.Name] {
			if s := p.byName[d].Subject(); p.failed(s) {
				p.fail(subj, fmt.Errorf("%s: not changed: its dependency %s is not ready", subj, d))
				p.e.emit(Event{Type: "blocked", Stage: st.Number, Subject: subj, Message: "dependency " + d + " not ready"})
				break
			}
		}
	}
}

func (p *pass) isDrained(subject string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.drained[subject]
}

// awaitDependents makes sure the dependents of services about to shrink
// are drained, including ones that have nothing to do in this pass: an
// earlier pass (or an agent killed mid-pass) sent their scale-down and
// their tasks may still be stopping. A dependent that does not drain blocks
// the service, as one that failed to drain in this pass does.
func (p *pass) awaitDependents(ctx context.Context, st Stage, subjects []string) {
	for _, subj := range subjects {
		t := p.targets[subj]
		if t.Kind != controllers.KindService {
			continue
		}
		var wait []string
		for _, d := range p.graph.reach(t.Name, p.graph.dependents) {
			dt := p.byName[d]
			if dt.Mode != controllers.Enforce || p.failed(dt.Subject()) || p.isDrained(dt.Subject()) {
				continue
			}
			if l, ok := p.plan.Live[dt.Subject()]; ok && l.Exists && p.e.Drivers[dt.Driver].Health(dt, l).Drained {
				continue
			}
			wait = append(wait, dt.Subject())
		}
		if len(wait) > 0 {
			p.await(ctx, st.Number, wait, controllers.PhaseDown)
		}
		for _, s := range wait {
			if p.failed(s) {
				p.fail(subj, fmt.Errorf("%s: not changed: its dependent %s did not drain", subj, p.targets[s].Name))
				p.e.emit(Event{Type: "blocked", Stage: st.Number, Subject: subj, Message: "dependent " + p.targets[s].Name + " did not drain"})
				break
			}
		}
	}
}

// awaitServicesUp makes sure every enforced service is ready before units
// tied to maintenance come back, including services this pass did not
// touch: an earlier pass (or an agent killed mid-pass) may have scaled them
// up, and they may still be starting. One that does not become ready
// fails, which blocks the units (blockedBy).
func (p *pass) awaitServicesUp(ctx context.Context, stage int) {
	changed := map[string]bool{}
	for _, a := range p.plan.Actions {
		changed[a.Subject] = true
	}
	var wait []string
	for _, t := range p.plan.Targets {
		s := t.Subject()
		if t.Kind != controllers.KindService || t.Mode != controllers.Enforce || p.failed(s) || p.ready[t.Name] {
			continue
		}
		l, ok := p.plan.Live[s]
		if ok && !l.Exists {
			continue // reported as missing
		}
		if ok && !changed[s] && p.e.Drivers[t.Driver].Health(t, l).Ready {
			continue
		}
		wait = append(wait, s)
	}
	sort.Strings(wait)
	p.await(ctx, stage, wait, controllers.PhaseUp)
}

// await waits until every subject is ready (up) or drained (down), by
// observing, then runs the ready probes of services that declare one.
func (p *pass) await(ctx context.Context, stage int, subjects []string, phase controllers.Phase) {
	if len(subjects) == 0 {
		return
	}
	e := p.e
	// Most drains and starts end within a few seconds, so the first
	// seconds of a wait look every 100 ms (a stage waited on ends that much
	// sooner, and the next one starts), then every 250 ms.
	interval, fast := e.PollInterval, time.Time{}
	if interval <= 0 {
		interval, fast = 250*time.Millisecond, time.Now().Add(3*time.Second)
	}
	step := func() time.Duration {
		if time.Now().Before(fast) {
			return 100 * time.Millisecond
		}
		return interval
	}
	pending := map[string]time.Time{} // subject -> deadline
	for _, s := range subjects {
		if !p.failed(s) {
			pending[s] = time.Now().Add(p.waitTimeout(p.targets[s], phase))
		}
	}
	lastReason := map[string]string{}
	// While observing fails (the daemon behind a driver is down or
	// restarting), the wait goes on until the deadline, as it would for a
	// slow drain, but looks again less and less often (up to 5 s): a dockerd
	// that is coming back is not hammered, and once it answers the wait
	// resumes where it was, without a step repeated or skipped.
	const maxBackoff = 5 * time.Second
	sleep := interval
	for len(pending) > 0 {
		var ts []controllers.Target
		for s := range pending {
			ts = append(ts, p.targets[s])
		}
		live, err := e.observe(controllers.WithWaiting(ctx), ts)
		if err == nil {
			p.mu.Lock()
			for s, l := range live {
				p.res.Live[s] = l
			}
			p.mu.Unlock()
		}
		for s, deadline := range pending {
			t := p.targets[s]
			var h controllers.Health
			if err == nil {
				h = e.Drivers[t.Driver].Health(t, live[s])
			} else {
				h.Reason = err.Error()
			}
			done := (phase == controllers.PhaseUp && h.Ready) || (phase == controllers.PhaseDown && h.Drained)
			if done {
				delete(pending, s)
				if phase == controllers.PhaseUp {
					p.probe(ctx, stage, t)
				} else {
					p.mu.Lock()
					p.drained[s] = true
					p.mu.Unlock()
					e.emit(Event{Type: "drained", Stage: stage, Subject: s})
				}
				continue
			}
			if phase == controllers.PhaseUp && err == nil && t.Failure != "" && live[s].Failing != "" {
				// A service its failure policy handles is judged at once:
				// waiting out the ready timeout would only delay the report
				// (and the next restart or standby).
				delete(pending, s)
				cause := "failing: " + live[s].Failing
				if t.Failure == controllers.FailureGaveUp {
					cause += " (onFailure gave up: its restart limit is reached)"
				}
				p.fail(s, p.notReady(ctx, t, fmt.Errorf("%s: %s", s, cause)))
				e.emit(Event{Type: "failed", Stage: stage, Subject: s, Message: cause})
				continue
			}
			if ctx.Err() != nil || time.Now().After(deadline) {
				delete(pending, s)
				want := "ready"
				if phase == controllers.PhaseDown {
					want = "drained"
				}
				cause := fmt.Sprintf("not %s within %s: %s", want, p.waitTimeout(t, phase), h.Reason)
				if ctx.Err() != nil {
					cause = fmt.Sprintf("abandoned while waiting to be %s: %s", want, h.Reason)
				}
				err := fmt.Errorf("%s: %s", s, cause)
				if phase == controllers.PhaseUp && ctx.Err() == nil {
					err = p.notReady(ctx, t, err)
				}
				p.fail(s, err)
				e.emit(Event{Type: "failed", Stage: stage, Subject: s, Message: cause})
				continue
			}
			if h.Reason != lastReason[s] {
				lastReason[s] = h.Reason
				e.emit(Event{Type: "waiting", Stage: stage, Subject: s, Message: h.Reason})
			}
		}
		if len(pending) == 0 {
			return
		}
		if err != nil {
			sleep = min(2*sleep, maxBackoff)
		} else {
			sleep = step()
		}
		select {
		case <-ctx.Done():
		case <-time.After(sleep):
		}
	}
}

// probe runs a service's ready probe after its replicas run.
func (p *pass) probe(ctx context.Context, stage int, t controllers.Target) {
	s := t.Subject()
	if t.Kind == controllers.KindService && t.Service.Ready != nil && t.Replicas > 0 {
		p.e.emit(Event{Type: "waiting", Stage: stage, Subject: s, Message: "probe " + probe.Describe(t.Service.Ready)})
		if err := probe.Wait(ctx, t.Service.Ready); err != nil {
			err = fmt.Errorf("%s: ready probe failed: %w", s, err)
			p.fail(s, p.notReady(ctx, t, err))
			p.e.emit(Event{Type: "failed", Stage: stage, Subject: s, Message: err.Error()})
			return
		}
	}
	if t.Kind == controllers.KindService {
		p.mu.Lock()
		p.ready[t.Name] = true
		p.mu.Unlock()
	}
	p.e.emit(Event{Type: "ready", Stage: stage, Subject: s})
}

// notReady lets the driver act on a start that never became ready, and
// returns the failure to record (with what the driver did about it).
func (p *pass) notReady(ctx context.Context, t controllers.Target, cause error) error {
	h, ok := p.e.Drivers[t.Driver].(controllers.NotReadyHandler)
	p.mu.Lock()
	started := p.started[t.Subject()]
	p.mu.Unlock()
	// Only a start made by this pass is undone: a service that was already
	// up and merely looks unwell is not taken down by a readiness check.
	if !ok || !started || t.Kind != controllers.KindService || t.Mode != controllers.Enforce {
		return cause
	}
	did, err := h.NotReady(ctx, t, cause)
	if err != nil {
		return fmt.Errorf("%w; and then: %v", cause, err)
	}
	if did != "" {
		return fmt.Errorf("%w; %s", cause, did)
	}
	return cause
}

// waitTimeout is how long an object may take to become ready or drained.
func (p *pass) waitTimeout(t controllers.Target, phase controllers.Phase) time.Duration {
	ready, slack := p.e.ReadyTimeout, p.e.DrainSlack
	if ready <= 0 {
		ready = v1.DefaultProbeTimeout
	}
	if slack <= 0 {
		slack = 30 * time.Second
	}
	if t.Kind == controllers.KindUnit {
		return ready
	}
	if phase == controllers.PhaseDown {
		// Every replica may use its full stop timeout: a scale-down of a
		// template or group stops them one by one.
		n := int32(1)
		if l, ok := p.plan.Live[t.Subject()]; ok && l.Replicas > t.Replicas {
			n = l.Replicas - t.Replicas
		}
		return time.Duration(n)*t.Service.StopTimeout.Duration + slack
	}
	return ready
}

// verifyAll checks, after the last stage, that every enforced object with
// nothing left to do is ready too: apply succeeds only on a host that runs as
// declared, not merely one that was sent the right commands.
//
// Objects the plan did not touch are judged first from the observation the
// plan was made from, so a pass with nothing to do reads each driver once;
// only those not ready then are observed again (they may be starting).
func (p *pass) verifyAll(ctx context.Context) {
	changed, reported := map[string]bool{}, map[string]bool{}
	for _, a := range p.plan.Actions {
		changed[a.Subject] = true
		if a.Reportable() {
			reported[a.Subject] = true // missing, unsupported, report-only: said already
		}
	}
	var up []string
	for _, t := range p.plan.Targets {
		s := t.Subject()
		if t.Mode != controllers.Enforce || p.failed(s) || reported[s] || p.ready[t.Name] && t.Kind == controllers.KindService {
			continue
		}
		l, ok := p.plan.Live[s]
		if ok && !l.Exists {
			continue // reported as missing already
		}
		if ok && !changed[s] && p.e.Drivers[t.Driver].Health(t, l).Ready {
			p.probe(ctx, 0, t)
			continue
		}
		up = append(up, s)
	}
	sort.Strings(up)
	p.await(ctx, 0, up, controllers.PhaseUp)
}
