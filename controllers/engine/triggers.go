package engine

import (
	"context"
	"errors"
	"fmt"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/controllers"
)

// Triggers: a service with onStart or onExit runs other declared services
// once, in the same pass (so under the same pass id), when the pass started
// it. A service with onExit is a one-shot: the pass starts it through its
// driver's Run, which returns when it has exited, so the exit is known
// without a look at a state that has already moved on. The services a
// trigger names run one after another, each only once the one before it
// has started (or, a one-shot, exited) well; a service runs at most once a
// pass (validation refuses trigger cycles anyway).

// ErrExited is what a one-shot that ran and exited with a failure fails
// its step with; test with errors.Is.
var ErrExited = errors.New("one-shot exited with a failure")

// applyOne carries out one action: through Run for the start of a
// one-shot with onExit, so its exit is seen; through Apply otherwise.
func (p *pass) applyOne(ctx context.Context, drv controllers.Driver, a controllers.Action, t controllers.Target) error {
	r, runner := drv.(controllers.Runner)
	if !runner || t.Service == nil || t.Service.OnExit == nil || (a.Op != controllers.OpScaleUp && a.Op != controllers.OpStart) {
		return drv.Apply(ctx, a, t, p.plan.Live[t.Subject()])
	}
	res, err := r.Run(ctx, t)
	if errors.Is(err, controllers.ErrCannotRun) {
		return drv.Apply(ctx, a, t, p.plan.Live[t.Subject()])
	}
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.runs[t.Subject()] = res
	p.ran[t.Name] = true
	p.mu.Unlock()
	if res.Exited && !res.Succeeded {
		return fmt.Errorf("%s: %s: %w", t.Subject(), res.Detail, ErrExited)
	}
	return nil
}

// fireTriggers runs the triggers of the services a stage started, in the
// order of subjects.
func (p *pass) fireTriggers(ctx context.Context, stage int, subjects []string) {
	for _, subj := range subjects {
		t := p.targets[subj]
		p.mu.Lock()
		res, ran := p.runs[subj]
		started := p.started[subj]
		p.mu.Unlock()
		if !ran && started {
			res = controllers.RunResult{Succeeded: true, Detail: "started"}
		}
		if ran || started {
			p.triggersOf(ctx, stage, t, res)
		}
	}
}

// triggersOf runs what t's triggers name, given what t's run did.
func (p *pass) triggersOf(ctx context.Context, stage int, t controllers.Target, res controllers.RunResult) {
	svc := t.Service
	if svc == nil {
		return
	}
	if tr := svc.OnExit; tr != nil && res.Exited && tr.On.Matches(res.Succeeded) {
		p.runChain(ctx, stage, tr.Start, fmt.Sprintf("onExit of %s (%s)", t.Name, res.Detail))
	}
	if tr := svc.OnStart; tr != nil && res.Succeeded && !p.failed(t.Subject()) {
		p.runChain(ctx, stage, tr.Start, "onStart of "+t.Name)
	}
}

// runChain runs the named services in order, each with its own triggers
// before the next, and stops at the first that does not start or exits
// with a failure.
func (p *pass) runChain(ctx context.Context, stage int, services []string, by string) {
	for _, name := range services {
		if ctx.Err() != nil {
			return
		}
		t, ok := p.byName[name]
		if !ok {
			p.fail("trigger", fmt.Errorf("%s: service %q is not declared", by, name))
			return
		}
		p.mu.Lock()
		again := p.ran[name]
		p.ran[name] = true
		p.mu.Unlock()
		if again {
			p.scope.Log.Info("trigger skipped: already ran in this pass", "subject", t.Subject(), "by", by)
			continue
		}
		run := controllers.TriggerRun{Subject: t.Subject(), Name: name, By: by, Start: p.e.now()}
		p.emit(Event{Type: names.EventTrigger, Stage: stage, Subject: t.Subject(), Field: "run", Message: by + ": run"})
		res, err := p.runOnce(ctx, t)
		run.End = p.e.now()
		switch {
		case err != nil:
			run.Outcome = err.Error()
		case res.Exited && !res.Succeeded:
			run.Outcome = res.Detail
			err = fmt.Errorf("%s: run by %s: %s: %w", t.Subject(), by, res.Detail, ErrExited)
		default:
			run.Outcome, run.Succeeded = res.Detail, true
		}
		p.mu.Lock()
		run.Step = len(p.res.Triggered) + 1
		p.res.Triggered = append(p.res.Triggered, run)
		p.mu.Unlock()
		p.scope.Log.Info("trigger", "step", run.Step, "subject", t.Subject(), "by", by, "outcome", run.Outcome)
		if err != nil {
			p.fail(t.Subject(), err)
			p.emit(Event{Type: names.EventFailed, Stage: stage, Subject: t.Subject(), Message: err.Error()})
		} else {
			p.emit(Event{Type: names.EventTrigger, Stage: stage, Subject: t.Subject(), Field: "run", To: res.Detail, Message: by + ": " + res.Detail})
		}
		if err == nil || errors.Is(err, ErrExited) {
			p.triggersOf(ctx, stage, t, res)
		}
		if err != nil {
			return
		}
	}
}

// runOnce runs a service through its driver's Run.
func (p *pass) runOnce(ctx context.Context, t controllers.Target) (controllers.RunResult, error) {
	drv := p.e.Drivers[t.Driver]
	r, ok := drv.(controllers.Runner)
	if !ok {
		return controllers.RunResult{}, fmt.Errorf("%s: driver %s: %w", t.Subject(), t.Driver, controllers.ErrCannotRun)
	}
	return r.Run(ctx, t)
}
