package agent

import (
	"time"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/engine"
	"reconciler.dev/reconciler/controllers/failure"
)

// The failure policies (onFailure) of one pass: the engine asks them what to
// do with what it observed (engine.Failures); what they fire, and every
// restart the pass carries out, becomes an event of the pass, with its id
// (the transaction id) and revision. The policies' memory (restarts within
// their window, failures, standbys) is written to the state dir with the
// rest of the state, so an agent restart resets no limit.

// EventFailurePolicy is the type of the events failure policies fire
// (names.EventFailurePolicy).
const EventFailurePolicy = names.EventFailurePolicy

// failurePass implements engine.Failures for one pass.
type failurePass struct {
	a *Agent
	p *passRun
}

func newFailurePass(a *Agent, p *passRun) *failurePass {
	return &failurePass{a: a, p: p}
}

// Standbys implements engine.Failures.
func (f *failurePass) Standbys() map[string]string { return f.a.failures.Standbys() }

// Decide implements engine.Failures.
func (f *failurePass) Decide(in []failure.Input) failure.Decision {
	d := f.a.failures.Decide(f.p.id, in)
	for _, ev := range d.Events {
		f.a.failureEvent(f.p, ev)
	}
	f.a.status.update(func(s *status.Status) { s.Failures = f.a.failures.Statuses() })
	return d
}

// applied counts the restarts the pass sent (their outcome says so),
// carried out or not: a restart whose call failed counts too, so a restart
// that keeps failing cannot storm either. One planned but never sent
// (blocked, abandoned) does not.
func (f *failurePass) applied(res *engine.Result) {
	if res == nil {
		return
	}
	counted := false
	for _, o := range res.Outcomes {
		act := o.Action
		if act.Op != controllers.OpRestart || act.Field != controllers.FieldFailing || !o.Attempted {
			continue
		}
		var err error
		if o.Code != engine.CodeApplied {
			err = o.Err
		}
		f.a.failureEvent(f.p, f.a.failures.Restarted(f.p.id, act.Name, err))
		counted = true
	}
	if counted {
		f.a.status.update(func(s *status.Status) { s.Failures = f.a.failures.Statuses() })
	}
}

// failureEvent records what a failure policy fired as an event of the pass.
func (a *Agent) failureEvent(p *passRun, ev failure.Event) {
	t := ev.Time
	if t.IsZero() {
		t = time.Now()
	}
	a.event(status.Event{Time: t, Pass: p.id, Revision: p.rev, Type: EventFailurePolicy, Subject: ev.Subject,
		Field: ev.Action, Message: ev.Message})
	switch ev.Action {
	case failure.ActFailing, failure.ActGaveUp:
		p.log.Warn("failure policy", "subject", ev.Subject, "fired", ev.Action, "message", ev.Message)
	default:
		p.log.Info("failure policy", "subject", ev.Subject, "fired", ev.Action, "message", ev.Message)
	}
}
