package agent

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/controllers/engine"
	"reconciler.dev/reconciler/desired"
	"reconciler.dev/reconciler/desired/trust"
	"reconciler.dev/reconciler/forge"
)

// The forge loop: a commit status per host for the revisions the agent
// judges. Every call only hands the status to the Reporter, which posts it
// on its own goroutine: a forge that is slow or down never holds up a pass.

func (a *Agent) statusContext() string { return "reconciler/" + a.cfg.Host }

func (a *Agent) postStatus(sha string, state forge.State, desc string) {
	if a.cfg.Forge == nil || sha == "" || strings.HasPrefix(sha, "local:") {
		return // a plain folder has no commit to report on
	}
	a.cfg.Forge.Set(forge.Status{SHA: sha, State: state, Context: a.statusContext(), Description: desc, TargetURL: a.cfg.StatusURL})
}

// refusedDescription is why a revision is refused, led by the first
// position in it (file:line:col), which is what a reviewer clicks through to.
func refusedDescription(err error) string {
	var ie *desired.InvalidError
	var tr *trust.Refusal
	switch {
	case errors.As(err, &ie) && len(ie.Errors) > 0:
		d := "refused: " + ie.Errors[0].Error()
		if n := len(ie.Errors); n > 1 {
			d += fmt.Sprintf(" (+%d more)", n-1)
		}
		return d
	case errors.As(err, &tr):
		return "refused: " + tr.Reason + ": " + err.Error()
	}
	return "refused: " + err.Error()
}

// failureDescription names the failing stage and object of a pass, the
// first by stage then subject when several failed.
func failureDescription(plan *engine.Plan, res *engine.Result) string {
	stageOf := map[string]int{}
	for _, act := range plan.Actions {
		if _, ok := stageOf[act.Subject]; !ok {
			stageOf[act.Subject] = act.Stage
		}
	}
	subjects := make([]string, 0, len(res.Failures))
	for s := range res.Failures {
		subjects = append(subjects, s)
	}
	sort.Slice(subjects, func(i, j int) bool {
		if stageOf[subjects[i]] != stageOf[subjects[j]] {
			return stageOf[subjects[i]] < stageOf[subjects[j]]
		}
		return subjects[i] < subjects[j]
	})
	if len(subjects) == 0 {
		return "failed: declared objects are missing"
	}
	s := subjects[0]
	d := fmt.Sprintf("failed at stage %d, %s: %v", stageOf[s], s, res.Failures[s])
	if n := len(subjects); n > 1 {
		d += fmt.Sprintf(" (+%d more)", n-1)
	}
	return d
}

// passStatus is the status a finished pass leaves on the revision it
// enforced.
func (a *Agent) passStatus(p *passRun) {
	if p.summary.Revision == "" {
		return
	}
	switch p.summary.Result {
	case names.ResultInSync:
		a.postStatus(p.summary.Revision, forge.StateSuccess, "in sync and ready")
	case names.ResultConverged:
		a.postStatus(p.summary.Revision, forge.StateSuccess, "converged and ready")
	case names.ResultAbandoned:
	default:
		d := p.statusNote
		if d == "" {
			d = "failed: " + p.summary.Error
		}
		a.postStatus(p.summary.Revision, forge.StateFailure, d)
	}
}
