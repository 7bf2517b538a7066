package agent

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/engine"
	"reconciler.dev/reconciler/desired"
	"reconciler.dev/reconciler/desired/source"
	"reconciler.dev/reconciler/desired/trust"
	"reconciler.dev/reconciler/forge"
	"reconciler.dev/reconciler/internal/logctx"
	"reconciler.dev/reconciler/notify"
)

// fetch looks the source up and, when it moved to a revision not judged yet,
// judges and validates it (one desired.Resolver, as the one-shot commands
// use). A valid one becomes the revision in force, written to the state dir
// before anything of it is applied; an invalid or refused one is recorded as
// failed and never applied. Any failure here leaves the revision in force as
// it was: the pass goes on enforcing it.
func (a *Agent) fetch(ctx context.Context, p *passRun) {
	a.mu.Lock()
	good := a.good
	a.mu.Unlock()
	base := ""
	if good != nil {
		base = good.Revision.ID
	}
	now := time.Now()
	end := a.calls.begin(daemonGit, "fetch", stuckAfter(min(a.cfg.GitTimeout, a.cfg.FetchTimeout)))
	// The source's own lines name the revision fetched, so they get the
	// logger that carries the pass id only.
	r, err := a.resolver.Resolve(logctx.With(ctx, p.base), desired.ResolveOptions{Base: base, Fetched: func(art source.Artifact) bool {
		now = time.Now()
		return a.fetched(p, good, art, now)
	}})
	end(ctx, gitErr(err))
	if r.Verdict.Fetches > 0 {
		a.metrics.historyFetches.Add(float64(r.Verdict.Fetches))
	}
	art := r.Artifact
	var fe *desired.FetchError
	var ue *desired.UncheckedError
	switch {
	case errors.As(err, &fe):
		if ctx.Err() == nil {
			a.sourceFailed(p, fe.Err, time.Now())
		}
		return
	case errors.As(err, &ue):
		if ctx.Err() == nil {
			a.judgeFailed(p, art, ue.Err, now) // trust.go
		}
		return
	}
	if r.Judged {
		a.judged(p, r, err, now) // trust.go
	}
	if err != nil {
		a.refuse(p, art.Revision.ID, art.Revision.Message, err, now)
		return
	}
	if r.Snapshot == nil {
		return // judged already (fetched)
	}
	snap := r.Snapshot
	next := &GoodRevision{Revision: art.Revision, Host: a.cfg.Host, Labels: snap.Effective.Labels, Spec: snap.Effective.Spec, Since: now}
	a.mu.Lock()
	prev, prevSince, prevReverted := a.good, a.state.HealthySince, a.state.Reverted
	a.good = next
	a.state.HealthySince, a.state.Reverted = time.Time{}, ""
	err = a.saveLocked()
	if err != nil {
		// A revision that cannot be recorded is not applied: after a crash
		// the agent would otherwise go back to the older one half way.
		a.good = prev
		a.state.HealthySince, a.state.Reverted = prevSince, prevReverted
	}
	a.mu.Unlock()
	if err != nil {
		p.base.Error("cannot record the new revision in the state dir; it is not applied yet", "revision", source.Short(art.Revision.ID), "err", err)
		a.event(status.Event{Pass: p.id, Revision: source.Short(art.Revision.ID), Type: names.EventStateError, Message: err.Error()})
		a.status.update(func(s *status.Status) {
			setCondition(s, status.Condition{Type: names.ConditionStateWritable, Status: false, Reason: names.ReasonWriteFailed, Message: err.Error()}, now)
		})
		return
	}
	a.status.update(func(s *status.Status) {
		s.Revision = revisionStatus(art.Revision, now)
		s.Labels = next.Labels
		s.FailedRevision = nil
		setCondition(s, status.Condition{Type: names.ConditionStateWritable, Status: true, Reason: names.ReasonWritten}, now)
	})
	a.metrics.failedRevision.Reset()
	a.metrics.setRevision(art.Revision)
	a.event(status.Event{Pass: p.id, Revision: source.Short(art.Revision.ID), Type: names.EventRevision, Message: "in force: " + art.Revision.Message})
	a.cfg.Notify.Resolve(notify.EventRevisionRefused, "", art.Revision.ID, p.id, "a revision is in force")
	p.base.Info("new revision in force", "revision", source.Short(art.Revision.ID), "message", art.Revision.Message)
}

// fetched records that the source answered, and says whether the revision
// it names still needs judging: not when it is the one in force, nor one
// refused already (until a new commit).
func (a *Agent) fetched(p *passRun, good *GoodRevision, art source.Artifact, now time.Time) bool {
	a.metrics.sourceUp.Set(1)
	a.metrics.sourceLastFetch.Set(float64(now.Unix()))
	var wasFailing bool
	var failedID string
	a.status.update(func(s *status.Status) {
		wasFailing = s.Source.Failing
		s.Source.Failing, s.Source.LastError, s.Source.LastFetch = false, "", now
		s.Source.FailingSince = time.Time{}
		setCondition(s, status.Condition{Type: names.ConditionSourceAvailable, Status: true, Reason: names.ReasonFetched}, now)
		if s.FailedRevision != nil {
			failedID = s.FailedRevision.ID
		}
	})
	if wasFailing {
		a.event(status.Event{Pass: p.id, Revision: a.goodID(), Type: names.EventSourceRecovered, Message: a.cfg.Source.String()})
		p.base.Info("source reachable again", "revision", source.Short(art.Revision.ID))
	}
	if good != nil && art.Revision.ID == good.Revision.ID {
		if failedID != "" {
			// The head is a good revision again (a revert): nothing is refused.
			a.status.update(func(s *status.Status) { s.FailedRevision = nil })
			a.metrics.failedRevision.Reset()
		}
		return false
	}
	if a.isQuarantined(art.Revision.ID) {
		return false // never tried again until released
	}
	return art.Revision.ID != failedID
}

func (a *Agent) sourceFailed(p *passRun, err error, now time.Time) {
	a.metrics.sourceErrors.Inc()
	a.metrics.sourceUp.Set(0)
	var newly bool
	a.status.update(func(s *status.Status) {
		newly = !s.Source.Failing
		if newly {
			s.Source.FailingSince = now
		}
		s.Source.Failing, s.Source.LastError = true, err.Error()
		setCondition(s, status.Condition{Type: names.ConditionSourceAvailable, Status: false, Reason: names.ReasonFetchFailed, Message: err.Error()}, now)
	})
	if newly {
		a.event(status.Event{Pass: p.id, Revision: a.goodID(), Type: names.EventSourceFailed, Message: err.Error()})
	}
	p.base.Warn("source unavailable; enforcing the revision in force", "revision", a.goodID(), "err", err)
}

// refuse records a revision that will not be applied, and why.
func (a *Agent) refuse(p *passRun, id, message string, err error, now time.Time) {
	fr := &status.FailedRevision{ID: id, Message: message, Reason: err.Error(), At: now}
	reason := "invalid"
	var ie *desired.InvalidError
	var tr *trust.Refusal
	if errors.As(err, &ie) {
		fr.Reason = fmt.Sprintf("%d error(s) in the desired state", len(ie.Errors))
		for _, e := range ie.Errors {
			fr.Errors = append(fr.Errors, *e)
		}
	} else if errors.As(err, &tr) {
		reason, fr.Commit, fr.Key = tr.Reason, tr.Commit, tr.Key
	} else if errors.Is(err, source.ErrLimit) {
		reason = "over-limit"
	} else {
		reason = "unreadable"
	}
	fr.Cause = reason
	a.metrics.refusals.WithLabelValues(reason).Inc()
	a.status.update(func(s *status.Status) { s.FailedRevision = fr })
	a.metrics.failedRevision.Reset()
	a.metrics.failedRevision.WithLabelValues(id, reason).Set(1)
	a.event(status.Event{Pass: p.id, Revision: source.Short(id), Type: names.EventRevisionRefused, Message: err.Error()})
	a.cfg.Notify.Fire(notify.EventRevisionRefused, "", id, p.id, refusedDescription(err))
	a.postStatus(id, forge.StateFailure, refusedDescription(err))
	p.base.Error("revision refused; the revision in force stays", "revision", a.goodID(), "refused", source.Short(id), "err", err)
}

// engineEvent turns an engine step into an event of this pass.
func (a *Agent) engineEvent(p *passRun, ev engine.Event) {
	if ev.Type == names.EventStage {
		now := ev.Time
		if n := len(p.summary.Stages); n > 0 && p.summary.Stages[n-1].End.IsZero() {
			p.summary.Stages[n-1].End = now
		}
		p.summary.Stages = append(p.summary.Stages, status.StageTiming{Number: ev.Stage, Title: ev.Message, Start: now})
	}
	if ev.Stage == 0 && (ev.Type == names.EventReady || ev.Type == names.EventWaiting) {
		return // the final readiness check of every object: not news
	}
	a.event(status.Event{Time: ev.Time, Pass: p.id, Revision: p.rev, Type: ev.Type, Subject: ev.Subject,
		Field: ev.Field, From: ev.From, To: ev.To, Message: ev.Message})
}

// recordPlan puts what the plan observed into the status.
func (a *Agent) recordPlan(p *passRun, plan *engine.Plan) {
	m := plan.Maintenance
	if m.Active {
		a.metrics.maintenance.Set(1)
	} else {
		a.metrics.maintenance.Set(0)
	}
	differs := map[string]bool{}
	for _, act := range plan.Actions {
		differs[act.Subject] = true
	}
	objects := a.objects(plan.Targets, plan.Live, plan.Health, differs)
	now := time.Now()
	wasMaintenance := false
	a.status.update(func(s *status.Status) {
		wasMaintenance = s.Maintenance != nil && s.Maintenance.Active
		s.Maintenance = &m
		s.Objects = objects
		s.Selectors = plan.Selectors
		msg := ""
		if m.Expired {
			msg = "the declared maintenance window expired"
		}
		if m.Reason != "" {
			msg = strings.TrimPrefix(msg+"; reason: "+m.Reason, "; ")
		}
		reason := names.ReasonOff
		if m.Active {
			reason = names.ReasonOn
		} else if m.Expired {
			reason = names.ReasonExpired
		}
		setCondition(s, status.Condition{Type: names.ConditionMaintenance, Status: m.Active, Reason: reason, Message: msg}, now)
	})
	a.maintenanceNotify(p, wasMaintenance, m.Active, m.Reason)
	a.driftEvents(p, plan)
}

// objects describes every target as last observed, with the health the
// engine judged of it; differs names the subjects that still differ from git.
func (a *Agent) objects(targets []controllers.Target, live map[string]controllers.Live, health map[string]controllers.Health, differs map[string]bool) []status.ObjectStatus {
	out := make([]status.ObjectStatus, 0, len(targets))
	for _, t := range targets {
		l := live[t.Subject()]
		out = append(out, status.ObjectStatus{
			Subject: t.Subject(), Kind: string(t.Kind), Name: t.Name, Driver: string(t.Driver),
			Desired: describeTarget(t), Live: describeLive(t, l), Mode: string(t.Mode), InSync: !differs[t.Subject()],
			Ready:     l.Exists && health[t.Subject()].Ready,
			Details:   l.Details,
			Resources: a.resourcesOf(t.Subject()),
			Since:     l.Since, ReplicasSince: l.ReplicasSince,
		})
	}
	a.metrics.setStarted(out)
	return out
}

func describeTarget(t controllers.Target) string {
	if t.Kind == controllers.KindService {
		return "replicas " + strconv.Itoa(int(t.Replicas))
	}
	var parts []string
	if t.Enabled != nil {
		parts = append(parts, "enabled "+strconv.FormatBool(*t.Enabled))
	}
	if t.Active != nil {
		parts = append(parts, "active "+strconv.FormatBool(*t.Active))
	}
	if len(parts) == 0 {
		return "not managed"
	}
	return strings.Join(parts, ", ")
}

func describeLive(t controllers.Target, l controllers.Live) string {
	if !l.Exists {
		return "missing"
	}
	if t.Kind == controllers.KindService {
		return fmt.Sprintf("replicas %d (%s)", l.Replicas, l.State)
	}
	return l.State
}

// recordResult turns a pass's outcomes into drift, the pass's actions,
// metrics and the objects' status: from the engine's outcomes alone.
func (a *Agent) recordResult(p *passRun, res *engine.Result) {
	now := time.Now()
	p.summary.Triggers = res.Triggered
	a.mu.Lock()
	since := a.state.DriftSince
	seen := map[string]bool{}
	var drift []status.Drift
	a.metrics.drift.Reset()
	for _, o := range res.Outcomes {
		act := o.Action
		key := act.Subject + " " + act.Field
		seen[key] = true
		if _, ok := since[key]; !ok {
			since[key] = now
			a.driftSinceChanged = true
		}
		out := status.ActionOutcome{Action: act, Pass: p.id, Revision: p.rev, Outcome: string(o.Code)}
		var action string
		switch o.Code {
		case engine.CodeApplied:
			action = names.DriftReverted
		case engine.CodeReported:
			action = string(act.Mode)
			if act.Op == controllers.OpMissing || act.Op == controllers.OpUnsupported {
				action = string(act.Op)
			}
		case engine.CodeFailed:
			out.Error, action = o.Err.Error(), names.DriftFailed
		case engine.CodeBlocked:
			out.Error, action = o.Err.Error(), names.DriftBlocked
		default:
			action = names.DriftPending
		}
		p.summary.Actions = append(p.summary.Actions, out)
		drift = append(drift, status.Drift{Subject: act.Subject, Kind: string(act.Kind), Name: act.Name, Field: act.Field,
			Live: act.From, Desired: act.To, Since: since[key], Action: action, Pass: p.id, Revision: p.rev})
		if action != names.DriftReverted {
			a.metrics.drift.WithLabelValues(act.Subject, act.Field, action).Set(1)
		}
		a.metrics.actions.WithLabelValues(string(act.Op), out.Outcome).Inc()
	}
	for key := range since {
		if !seen[key] {
			delete(since, key)
			a.driftSinceChanged = true
		}
	}
	a.mu.Unlock()
	if drift == nil {
		drift = []status.Drift{}
	}
	// The objects as the pass left them: what it observed last, and only
	// what it did not put right still differs.
	unresolved := map[string]bool{}
	for _, d := range drift {
		if d.Action != names.DriftReverted {
			unresolved[d.Subject] = true
		}
	}
	objects := a.objects(res.Plan.Targets, res.Live, res.Health, unresolved)
	a.status.update(func(s *status.Status) { s.Drift, s.Objects = drift, objects })
	for _, d := range drift {
		if d.Action != names.DriftReverted {
			p.driftLeft++
		}
	}
}

// finish closes a pass: summary, metrics, readiness, conditions, log.
func (a *Agent) finish(p *passRun, err error) {
	end := time.Now()
	p.summary.End = end
	if n := len(p.summary.Stages); n > 0 && p.summary.Stages[n-1].End.IsZero() {
		p.summary.Stages[n-1].End = end
	}
	if p.summary.Result == "" {
		p.summary.Result = names.ResultError
		if err != nil {
			p.summary.Error = err.Error()
		}
	}
	res := p.summary.Result
	ok := res == names.ResultInSync || res == names.ResultConverged
	a.judgeRevision(p, ok, end)
	a.metrics.passes.WithLabelValues(res).Inc()
	a.metrics.passDuration.Observe(end.Sub(p.start).Seconds())
	a.metrics.lastPass.Set(float64(end.Unix()))
	if res != names.ResultAbandoned {
		a.metrics.lastResult.Reset()
		a.metrics.lastResult.WithLabelValues(res).Set(1)
		a.readyMu.Lock()
		a.ready = ok
		a.passCount++
		a.readyMu.Unlock()
	}
	a.status.update(func(s *status.Status) {
		sum := p.summary
		s.LastPass = &sum
		s.Passes = append([]status.PassSummary{sum}, s.Passes...)
		if len(s.Passes) > maxPasses {
			s.Passes = s.Passes[:maxPasses]
		}
		if res == names.ResultAbandoned {
			return
		}
		reason := names.ReasonPassSucceeded
		if !ok {
			reason = names.ReasonPassFailed
		}
		setCondition(s, status.Condition{Type: names.ConditionReady, Status: ok, Reason: reason, Message: p.summary.Error}, end)
		conv := status.Condition{Type: names.ConditionConverged, Status: ok, Reason: names.ReasonInSync}
		if !ok {
			conv.Reason, conv.Message = names.ReasonNotConverged, p.summary.Error
		}
		setCondition(s, conv, end)
	})
	a.event(status.Event{Time: end, Pass: p.id, Revision: p.rev, Type: names.EventPassFinished, Message: res})
	a.passStatus(p)
	a.passNotify(p)
	attrs := []any{"trigger", p.trigger, "result", res, "took", end.Sub(p.start).Round(time.Millisecond).String(), "actions", len(p.summary.Actions)}
	if ok {
		if len(p.summary.Actions) > 0 {
			p.log.Info("pass finished", attrs...)
		} else {
			p.log.Debug("pass finished", attrs...)
		}
	} else {
		p.log.Warn("pass finished", append(attrs, "err", p.summary.Error)...)
	}
}

// Ready reports what /readyz serves.
func (a *Agent) Ready() bool {
	a.readyMu.Lock()
	defer a.readyMu.Unlock()
	return a.passCount > 0 && a.ready
}

// Status returns a copy of the agent's status.
func (a *Agent) Status() status.Status {
	s := a.status.snapshot()
	s.Stuck = a.calls.stuck(time.Now())
	return s
}
