package agent

import (
	"context"
	"fmt"
	"time"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/desired/source"
	"reconciler.dev/reconciler/desired/trust"
)

// judge applies the trust policy to a revision the agent has not judged
// yet, before any of its files is parsed: its signatures (--verify-signatures)
// and that it descends from the revision in force (anti-rollback, unless
// --allow-history-rewrite). It reports whether the revision may go on to
// validation.
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
func (a *Agent) judge(ctx context.Context, p *passRun, good *GoodRevision, art source.Artifact, now time.Time) bool {
	pol := a.cfg.Trust
	if pol == nil {
		return true
	}
	base := ""
	if good != nil {
		base = good.Revision.ID
	}
	jctx, cancel := context.WithTimeout(ctx, a.cfg.FetchTimeout)
	v, err := pol.Check(jctx, a.cfg.Source, base, art.Revision)
	cancel()
	if v.Fetches > 0 {
		a.metrics.historyFetches.Add(float64(v.Fetches))
	}
	if err != nil && !trust.IsRefusal(err) {
		if ctx.Err() != nil {
			return false
		}
		// Not a verdict: tried again at the next pass. The condition (and
		// one event when it turns false) says so without flapping the
		// source's own state, which the ref lookup just set.
		a.metrics.sourceErrors.Inc()
		msg := fmt.Sprintf("revision %s could not be judged, the revision in force stays: %v", shortRev(art.Revision.ID), err)
		var newly bool
		a.status.update(func(s *Status) {
			newly = true
			for _, c := range s.Conditions {
				if c.Type == names.ConditionTrustChecked && !c.Status {
					newly = false
				}
			}
			setCondition(s, Condition{Type: names.ConditionTrustChecked, Status: false, Reason: names.ReasonCheckFailed, Message: msg}, now)
		})
		if newly {
			a.event(Event{Pass: p.id, Revision: shortRev(art.Revision.ID), Type: names.EventTrustCheckFailed, Message: msg})
		}
		p.base.Warn("revision could not be judged; enforcing the revision in force", "revision", a.goodID(), "judged", shortRev(art.Revision.ID), "err", err)
		return false
	}
	a.status.update(func(s *Status) {
		setCondition(s, Condition{Type: names.ConditionTrustChecked, Status: true, Reason: names.ReasonJudged}, now)
	})
	if err != nil {
		a.refuse(p, art.Revision.ID, art.Revision.Message, err, now)
		return false
	}
	if s := v.Summary(); s != "" {
		p.base.Info("revision trusted", "revision", shortRev(art.Revision.ID), "verdict", s, "history_fetches", v.Fetches)
		a.event(Event{Pass: p.id, Revision: shortRev(art.Revision.ID), Type: names.EventRevisionTrusted, Message: s})
	}
	return true
}
