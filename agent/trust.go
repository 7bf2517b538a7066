package agent

import (
	"fmt"
	"time"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
	"reconciler.dev/reconciler/desired"
	"reconciler.dev/reconciler/desired/source"
	"reconciler.dev/reconciler/desired/trust"
)

// The resolver (desired.Resolver, set up in New from Config.Trust) applies
// the trust policy to a revision the agent has not judged yet, before any
// of its files is parsed: its signatures (--verify-signatures) and that it
// descends from the revision in force (anti-rollback, unless
// --allow-history-rewrite). This file records what it found.
//
// A verdict against the revision (a trust.Refusal) refuses it like an
// invalid one: the revision in force stays, /status failedRevision names
// the commit, the reason and the key, reconciler_revision_refusals_total
// counts it, and a revision-refused event is raised. It is not judged again
// until the ref moves. A failure to judge (git unreachable while deepening
// the history, a key file unreadable) is no verdict: the revision in force
// stays, the TrustChecked condition turns false (with one
// trust-check-failed event), and the next pass tries again.
//
// It costs nothing on an unchanged poll (fetch returns before it), and
// usually nothing beyond the cache: see source.Historian.

// judgeFailed records a trust check that reached no verdict.
func (a *Agent) judgeFailed(p *passRun, art source.Artifact, err error, now time.Time) {
	// Not a verdict: tried again at the next pass. The condition (and one
	// event when it turns false) says so without flapping the source's own
	// state, which the ref lookup just set.
	a.metrics.sourceErrors.Inc()
	msg := fmt.Sprintf("revision %s could not be judged, the revision in force stays: %v", source.Short(art.Revision.ID), err)
	var newly bool
	a.status.update(func(s *status.Status) {
		newly = true
		for _, c := range s.Conditions {
			if c.Type == names.ConditionTrustChecked && !c.Status {
				newly = false
			}
		}
		setCondition(s, status.Condition{Type: names.ConditionTrustChecked, Status: false, Reason: names.ReasonCheckFailed, Message: msg}, now)
	})
	if newly {
		a.event(status.Event{Pass: p.id, Revision: source.Short(art.Revision.ID), Type: names.EventTrustCheckFailed, Message: msg})
	}
	p.base.Warn("revision could not be judged; enforcing the revision in force", "revision", a.goodID(), "judged", source.Short(art.Revision.ID), "err", err)
}

// judged records a verdict of the trust policy; err is the resolution's
// error (a refusal, or what loading the trusted revision found).
func (a *Agent) judged(p *passRun, r *desired.Resolution, err error, now time.Time) {
	a.status.update(func(s *status.Status) {
		setCondition(s, status.Condition{Type: names.ConditionTrustChecked, Status: true, Reason: names.ReasonJudged}, now)
	})
	if trust.IsRefusal(err) {
		return // refused: the caller records it
	}
	if s := r.Verdict.Summary(); s != "" {
		id := source.Short(r.Artifact.Revision.ID)
		p.base.Info("revision trusted", "revision", id, "verdict", s, "history_fetches", r.Verdict.Fetches)
		a.event(status.Event{Pass: p.id, Revision: id, Type: names.EventRevisionTrusted, Message: s})
	}
}
