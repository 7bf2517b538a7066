package agent

import (
	"sync"
	"time"

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

// EventFailurePolicy is the type of the events failure policies fire. Their
// Field says what fired (failure.ActFailing, ActRestart, ActGaveUp,
// ActStart, ActStop, ActCleared).
const EventFailurePolicy = "failure-policy"

// failurePass implements engine.Failures for one pass.
type failurePass struct {
	a *Agent
	p *passRun

	mu        sync.Mutex
	attempted map[string]bool // subjects whose restart the engine sent
}

func newFailurePass(a *Agent, p *passRun) *failurePass {
	return &failurePass{a: a, p: p, attempted: map[string]bool{}}
}

// Standbys implements engine.Failures.
func (f *failurePass) Standbys() map[string]string { return f.a.failures.Standbys() }

// Decide implements engine.Failures.
func (f *failurePass) Decide(in []failure.Input) failure.Decision {
	d := f.a.failures.Decide(f.p.id, in)
	for _, ev := range d.Events {
		f.a.failureEvent(f.p, ev)
	}
	f.a.status.update(func(s *Status) { s.Failures = f.a.failures.Statuses() })
	return d
}

// saw notes the engine's steps: which restarts it sent.
func (f *failurePass) saw(ev engine.Event) {
	if ev.Type == "action" && ev.Field == controllers.FieldFailing && ev.Message == string(controllers.OpRestart) {
		f.mu.Lock()
		f.attempted[ev.Subject] = true
		f.mu.Unlock()
	}
}

// applied counts the restarts the pass sent, carried out or not: a restart
// whose call failed counts too, so a restart that keeps failing cannot
// storm either. One planned but never sent (blocked, abandoned) does not.
func (f *failurePass) applied(plan *engine.Plan, res *engine.Result) {
	if res == nil {
		return
	}
	done := map[string]bool{}
	for _, act := range res.Applied {
		if act.Op == controllers.OpRestart && act.Field == controllers.FieldFailing {
			done[act.Subject] = true
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	counted := false
	for _, act := range plan.Actions {
		if act.Op != controllers.OpRestart || act.Field != controllers.FieldFailing || !f.attempted[act.Subject] {
			continue
		}
		var err error
		if !done[act.Subject] {
			err = res.Failures[act.Subject]
		}
		f.a.failureEvent(f.p, f.a.failures.Restarted(f.p.id, act.Name, err))
		counted = true
	}
	if counted {
		f.a.status.update(func(s *Status) { s.Failures = f.a.failures.Statuses() })
	}
}

// failureEvent records what a failure policy fired as an event of the pass.
func (a *Agent) failureEvent(p *passRun, ev failure.Event) {
	t := ev.Time
	if t.IsZero() {
		t = time.Now()
	}
	a.event(Event{Time: t, Pass: p.id, Revision: p.rev, Type: EventFailurePolicy, Subject: ev.Subject,
		Field: ev.Action, Message: ev.Message})
	switch ev.Action {
	case failure.ActFailing, failure.ActGaveUp:
		p.log.Warn("failure policy", "subject", ev.Subject, "fired", ev.Action, "message", ev.Message)
	default:
		p.log.Info("failure policy", "subject", ev.Subject, "fired", ev.Action, "message", ev.Message)
	}
}
