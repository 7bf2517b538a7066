package engine

import (
	"errors"
	"fmt"
	"sort"

	"github.com/hashicorp/go-multierror"

	"reconciler.dev/reconciler/controllers"
)

// Code says what became of one planned action, as gitops-engine's
// ResultCode does per resource.
type Code string

// The outcome codes.
const (
	// CodeApplied: the driver carried the action out.
	CodeApplied Code = "applied"
	// CodeReported: drift only reported (report-only, missing,
	// unsupported); never carried out.
	CodeReported Code = "reported"
	// CodeFailed: the action, or its subject's wait for readiness or drain,
	// failed.
	CodeFailed Code = "failed"
	// CodeBlocked: not carried out because something it depends on failed
	// (Err is a *BlockedError).
	CodeBlocked Code = "blocked"
	// CodeSkipped: not carried out, and nothing failed: the pass was
	// abandoned or ended before it.
	CodeSkipped Code = "skipped"
)

// Outcome is what became of one planned action.
type Outcome struct {
	Action controllers.Action
	Code   Code
	// Attempted is true when the action was sent to its driver, whether or
	// not the call succeeded.
	Attempted bool
	// Health is the subject's health as last observed in the pass (zero
	// when it does not exist).
	Health controllers.Health
	// Err is why the subject failed or was blocked (also for an applied
	// action whose subject then never became ready), or nil.
	Err error
}

// ErrBlocked is matched (errors.Is) by every *BlockedError.
var ErrBlocked = errors.New("blocked by a dependency")

// BlockedError says an object was not changed because one it depends on
// (a dependency going up, a dependent going down, a maintenance unit)
// failed in the same pass.
type BlockedError struct {
	Subject string // the object not changed
	By      string // the subject that blocks it
	Reason  string // "its dependency factory-broker is not ready"
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("%s: not changed: %s", e.Subject, e.Reason)
}

// Is makes errors.Is(err, ErrBlocked) true.
func (e *BlockedError) Is(target error) bool { return target == ErrBlocked }

// Result is what a pass did.
type Result struct {
	Plan *Plan
	// Outcomes holds one outcome per planned action, in the plan's order.
	Outcomes []Outcome
	Applied  []controllers.Action // carried out without error
	// Triggered are the services that triggers (onStart, onExit) ran in
	// the pass, in the order they ran.
	Triggered []controllers.TriggerRun
	Reported  []controllers.Action // drift only reported (report-only, missing, unsupported)
	// Failures holds every subject that failed, was blocked, or did not
	// become ready, with why.
	Failures map[string]error
	// Live is the latest observation of every target: the plan's, updated
	// by each look taken while waiting, so it shows the pass's outcome.
	Live map[string]controllers.Live
	// Health is every existing target's health judged from Live, by
	// subject.
	Health map[string]controllers.Health
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
	// go-multierror is kept here: its "N errors occurred" list, one bullet
	// a subject, is what apply prints and a failed pass reports, and reads
	// better than bare joined lines when many subjects fail.
	var errs *multierror.Error
	for _, s := range subjects {
		errs = multierror.Append(errs, r.Failures[s])
	}
	return errs
}

// actionKey names one action within a plan.
type actionKey struct {
	subject, field string
	op             controllers.Op
}

func keyOf(a controllers.Action) actionKey { return actionKey{a.Subject, a.Field, a.Op} }

// health judges every existing target from live, by subject.
func (e *Engine) health(targets []controllers.Target, live map[string]controllers.Live) map[string]controllers.Health {
	out := make(map[string]controllers.Health, len(targets))
	for _, t := range targets {
		l, ok := live[t.Subject()]
		if d := e.Drivers[t.Driver]; d != nil && ok && l.Exists {
			out[t.Subject()] = d.Health(t, l)
		}
	}
	return out
}

// outcomes works out, at the end of a pass, what became of every action.
func (p *pass) outcomes() []Outcome {
	applied := make(map[actionKey]bool, len(p.res.Applied))
	for _, a := range p.res.Applied {
		applied[keyOf(a)] = true
	}
	out := make([]Outcome, 0, len(p.plan.Actions))
	for _, a := range p.plan.Actions {
		o := Outcome{Action: a, Attempted: p.attempted[keyOf(a)], Health: p.res.Health[a.Subject], Err: p.failures[a.Subject]}
		switch {
		case applied[keyOf(a)]:
			o.Code = CodeApplied
		case a.Reportable():
			o.Code = CodeReported
		case errors.Is(o.Err, ErrBlocked):
			o.Code = CodeBlocked
		case o.Err != nil:
			o.Code = CodeFailed
		default:
			o.Code = CodeSkipped
		}
		out = append(out, o)
	}
	return out
}
