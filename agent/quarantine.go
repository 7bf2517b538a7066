package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
	"reconciler.dev/reconciler/controllers/engine"
	"reconciler.dev/reconciler/desired/source"
	"reconciler.dev/reconciler/forge"
	"reconciler.dev/reconciler/notify"
)

// A revision that validates can still break the host: a probe that never
// passes, tasks that crash. With --healthy-within set, a new revision is on
// trial from the moment it comes into force until a pass of it ends
// converged and ready. A trial that outlasts the bound quarantines the
// revision: the last revision that was healthy goes back into force, through
// the same ordered pass as any other, and the quarantined one is never tried
// again; a newer commit is tried normally. Only a revision that has been
// healthy on this host is ever gone back to, so a revert cannot land on
// something worse; a revision that was healthy and fails later (a daemon
// down, a node full) is "degraded", not reverted: the fault is the host's,
// not the commit's. Everything here lives in the state dir, so a restart
// neither restarts a trial nor forgets a quarantine.

// QuarantinedRevision is the wire type of /status quarantinedRevision.
type QuarantinedRevision = status.QuarantinedRevision

// Verdict is what a pass's end says of the revision in force.
type Verdict string

const (
	// VerdictHealthy: the pass ended converged and ready.
	VerdictHealthy Verdict = "healthy"
	// VerdictOnTrial: not healthy yet, and the bound has not passed.
	VerdictOnTrial Verdict = "on-trial"
	// VerdictDegraded: the revision was healthy before and fails now.
	VerdictDegraded Verdict = "degraded"
	// VerdictQuarantine: past the bound, never healthy: revert.
	VerdictQuarantine Verdict = "quarantine"
	// VerdictNoFallback: past the bound, but no healthy revision to go
	// back to (the host's first revision): it stays in force.
	VerdictNoFallback Verdict = "no-fallback"
	// VerdictUnjudged: nothing to judge (gating off, the pass abandoned,
	// no revision in force).
	VerdictUnjudged Verdict = "unjudged"
)

// Trial is what Judge decides from.
type Trial struct {
	InForce string // the revision the pass enforced
	Healthy string // the last revision that was healthy on this host, "" none
	// Since is when InForce came into force; Now, when the pass ended.
	Since, Now time.Time
	// Within is the bound (<= 0: no gating, a revision is never judged
	// unhealthy).
	Within time.Duration
	OK     bool // the pass ended converged (or in sync) and ready
	// Abandoned: the pass was cut short (shutdown): it proves nothing.
	Abandoned bool
}

// Judge is the health gate, a pure function of the trial.
func Judge(t Trial) Verdict {
	switch {
	case t.InForce == "" || t.Abandoned:
		return VerdictUnjudged
	case t.OK:
		return VerdictHealthy
	case t.InForce == t.Healthy:
		return VerdictDegraded
	case t.Within <= 0 || t.Now.Sub(t.Since) < t.Within:
		return VerdictOnTrial
	case t.Healthy == "":
		return VerdictNoFallback
	default:
		return VerdictQuarantine
	}
}

// ErrNotQuarantined says a release named no quarantined revision.
var ErrNotQuarantined = errors.New("no quarantined revision by that id")

// ErrAmbiguous says a release named a prefix of several revisions.
var ErrAmbiguous = errors.New("the id prefix names several quarantined revisions")

// failingObject names the object that made the pass fail, and why: of the
// subjects that failed, the first by name that failed itself rather than
// being blocked by another; with none, the pass's own error.
func failingObject(failures map[string]error, passErr string) (subject, reason string) {
	var own, blocked []string
	for s, err := range failures {
		if errors.Is(err, engine.ErrBlocked) {
			blocked = append(blocked, s)
		} else {
			own = append(own, s)
		}
	}
	slices.Sort(own)
	slices.Sort(blocked)
	for _, list := range [][]string{own, blocked} {
		if len(list) > 0 {
			// The error names its subject already; the quarantine names
			// it apart.
			return list[0], strings.TrimPrefix(failures[list[0]].Error(), list[0]+": ")
		}
	}
	return "", passErr
}

// isQuarantined says whether id is held in quarantine.
func (a *Agent) isQuarantined(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.ContainsFunc(a.state.Quarantined, func(q QuarantinedRevision) bool { return q.ID == id })
}

// judgeRevision applies the health gate at the end of a pass.
func (a *Agent) judgeRevision(p *passRun, ok bool, now time.Time) {
	if a.state == nil {
		return
	}
	a.mu.Lock()
	good := a.good
	if good == nil || good.Revision.ID != p.summary.Revision {
		a.mu.Unlock()
		return
	}
	healthy := ""
	if h := a.state.Healthy; h != nil {
		healthy = h.Revision.ID
	}
	v := Judge(Trial{InForce: good.Revision.ID, Healthy: healthy, Since: good.Since, Now: now,
		Within: a.cfg.HealthyWithin, OK: ok, Abandoned: p.summary.Result == names.ResultAbandoned})
	var (
		dirty, proven bool
		back          *GoodRevision
		q             QuarantinedRevision
		saveErr       error
	)
	switch v {
	case VerdictHealthy:
		if healthy != good.Revision.ID {
			g := *good
			a.state.Healthy, proven, dirty = &g, true, true
		}
		if a.state.HealthySince.IsZero() {
			a.state.HealthySince, dirty = now, true
		}
	case VerdictQuarantine:
		subject, reason := failingObject(p.failures, p.summary.Error)
		q = QuarantinedRevision{ID: good.Revision.ID, Message: good.Revision.Message, Subject: subject, Reason: reason,
			Since: good.Since, At: now, Within: a.cfg.HealthyWithin.String(), RevertedTo: healthy}
		a.state.Quarantined = append(a.state.Quarantined, q)
		b := *a.state.Healthy
		b.Since = now
		back = &b
		a.good = back
		a.state.HealthySince, a.state.Reverted, dirty = time.Time{}, q.ID, true
	case VerdictUnjudged:
	default:
		if !a.state.HealthySince.IsZero() {
			a.state.HealthySince, dirty = time.Time{}, true
		}
	}
	if dirty {
		// A quarantine that cannot be written still reverts: going back
		// to a healthy revision matters more than remembering why; after a
		// crash the trial, its start kept, ends the same way at once.
		saveErr = a.saveLocked()
	}
	since, reverted, list := a.state.HealthySince, a.state.Reverted, slices.Clone(a.state.Quarantined)
	a.mu.Unlock()
	if saveErr != nil {
		p.log.Error("writing the revision's health to the state dir", "err", saveErr)
	}
	a.status.update(func(s *status.Status) {
		if s.Revision != nil {
			s.Revision.HealthySince = since
		}
		cond := status.Condition{Type: names.ConditionRevisionHealthy, Status: v == VerdictHealthy}
		switch v {
		case VerdictHealthy:
			cond.Reason = names.ReasonProven
		case VerdictOnTrial:
			cond.Reason = names.ReasonOnTrial
			cond.Message = fmt.Sprintf("not converged and ready yet; quarantined if not within %s of %s", a.cfg.HealthyWithin, good.Since.UTC().Format(time.RFC3339))
			if a.cfg.HealthyWithin <= 0 {
				cond.Message = "not converged and ready yet (no --healthy-within: never quarantined)"
			}
		case VerdictDegraded:
			cond.Reason, cond.Message = names.ReasonDegraded, "this revision was healthy before; a failure now is not the commit's: it is not reverted"
		case VerdictNoFallback:
			cond.Reason, cond.Message = names.ReasonNoFallback, "not healthy within "+a.cfg.HealthyWithin.String()+", but no revision was ever healthy on this host to go back to: it stays in force"
		case VerdictQuarantine:
			cond.Reason, cond.Message = names.ReasonReverted, fmt.Sprintf("revision %s quarantined: %s", source.Short(q.ID), q.Describe())
		default:
			return
		}
		setCondition(s, cond, now)
		if back != nil {
			s.Revision = revisionStatus(back.Revision, now)
			s.Revision.Reverted = reverted
			s.Labels = back.Labels
			s.QuarantinedRevision = &q
			s.Quarantined = list
		}
	})
	if proven {
		a.event(status.Event{Time: now, Pass: p.id, Revision: p.rev, Type: names.EventRevisionHealthy, Message: "converged and ready"})
		p.log.Info("revision healthy", "took", now.Sub(good.Since).Round(time.Millisecond).String())
	}
	if back == nil {
		return
	}
	a.setQuarantineMetrics(list)
	a.metrics.reverts.Inc()
	a.metrics.setRevision(back.Revision)
	msg := q.Describe()
	a.event(status.Event{Time: now, Pass: p.id, Revision: p.rev, Type: names.EventQuarantined, Subject: q.Subject, Message: msg})
	a.event(status.Event{Time: now, Pass: p.id, Revision: source.Short(back.Revision.ID), Type: names.EventReverted, From: source.Short(q.ID), To: source.Short(back.Revision.ID),
		Message: "the last healthy revision is back in force: " + back.Revision.Message})
	a.postStatus(q.ID, forge.StateFailure, "quarantined: "+msg)
	a.cfg.Notify.Fire(notify.EventQuarantined, q.ID, q.ID, p.id, "quarantined; "+source.Short(back.Revision.ID)+" is back in force: "+msg)
	p.log.Error("revision quarantined; the last healthy revision goes back in force", "quarantined", source.Short(q.ID),
		"reverted-to", source.Short(back.Revision.ID), "subject", q.Subject, "reason", q.Reason, "within", q.Within)
	// The healthy revision is enforced at once, not after the backoff.
	a.Trigger("revert")
}

func (a *Agent) setQuarantineMetrics(list []QuarantinedRevision) {
	a.metrics.quarantined.Reset()
	for _, q := range list {
		a.metrics.quarantined.WithLabelValues(q.ID, q.Subject).Set(1)
	}
}

// Release lets a quarantined revision (its id or a unique prefix) be tried
// again: when it is the head of the followed ref, the next pass takes it
// into force, on trial as any new revision. by says who asked, for the log.
func (a *Agent) Release(id, by string) (QuarantinedRevision, error) {
	if id == "" {
		return QuarantinedRevision{}, ErrNotQuarantined
	}
	a.mu.Lock()
	i, n := -1, 0
	for j, q := range a.state.Quarantined {
		if strings.HasPrefix(q.ID, id) {
			i, n = j, n+1
		}
	}
	if n == 0 {
		a.mu.Unlock()
		return QuarantinedRevision{}, fmt.Errorf("release %s: %w", id, ErrNotQuarantined)
	}
	if n > 1 {
		a.mu.Unlock()
		return QuarantinedRevision{}, fmt.Errorf("release %s: %w", id, ErrAmbiguous)
	}
	q := a.state.Quarantined[i]
	a.state.Quarantined = slices.Delete(slices.Clone(a.state.Quarantined), i, i+1)
	err := a.saveLocked()
	list := slices.Clone(a.state.Quarantined)
	a.mu.Unlock()
	if err != nil {
		a.log.Error("writing a released quarantine to the state dir", "pass", "-", "revision", a.goodID(), "err", err)
	}
	a.status.update(func(s *status.Status) {
		s.Quarantined = list
		if s.QuarantinedRevision != nil && s.QuarantinedRevision.ID == q.ID {
			s.QuarantinedRevision = nil
		}
	})
	a.setQuarantineMetrics(list)
	a.cfg.Notify.Resolve(notify.EventQuarantined, q.ID, q.ID, "", "released by "+by)
	a.event(status.Event{Type: names.EventQuarantineReleased, Revision: source.Short(q.ID), Subject: q.Subject, Message: "released by " + by})
	a.log.Warn("quarantine released: the revision will be tried again", "pass", "-", "revision", a.goodID(),
		"released", source.Short(q.ID), "by", by)
	a.Trigger("release")
	return q, nil
}

// ReleaseRequest is the body of POST /quarantine/release.
type ReleaseRequest struct {
	Revision string `json:"revision"` // an id or a unique prefix
	By       string `json:"by,omitempty"`
}

// serveRelease is POST /quarantine/release: behind the read endpoints'
// token and Host checks, and only with a JSON body, which a page of
// another origin cannot send without the browser asking first.
func (a *Agent) serveRelease(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		http.Error(w, "want Content-Type: application/json", http.StatusUnsupportedMediaType)
		return
	}
	var req ReleaseRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	by := r.RemoteAddr
	if req.By != "" {
		by = req.By + " from " + r.RemoteAddr
	}
	q, err := a.Release(req.Revision, by)
	switch {
	case errors.Is(err, ErrNotQuarantined):
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	case errors.Is(err, ErrAmbiguous):
		http.Error(w, err.Error(), http.StatusConflict)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(q)
}
