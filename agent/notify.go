package agent

import (
	"fmt"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
	"reconciler.dev/reconciler/controllers/failure"
	"reconciler.dev/reconciler/notify"
)

// Notifications: the conditions of this host, decided from the typed
// events and pass results (never from their text), handed to the Notifier,
// which deduplicates and queues them: a target never holds up a pass.

// notifyEvent turns the events that open or close a condition into
// notifications. (A refused revision and a revision in force are notified
// where they are decided, in refuse and fetch, with the full commit id.)
func (a *Agent) notifyEvent(ev status.Event) {
	n := a.cfg.Notify
	if n == nil {
		return
	}
	switch ev.Type {
	case names.EventFailurePolicy:
		switch ev.Field {
		case failure.ActGaveUp:
			n.Fire(notify.EventGaveUp, ev.Subject, ev.Revision, ev.Pass, ev.Message)
		case failure.ActCleared:
			n.Resolve(notify.EventGaveUp, ev.Subject, ev.Revision, ev.Pass, ev.Message)
		}
	}
}

// passNotify fires or resolves the pass-failed and drift-left conditions
// from a finished pass's result.
func (a *Agent) passNotify(p *passRun) {
	n := a.cfg.Notify
	if n == nil {
		return
	}
	rev := p.summary.Revision
	switch p.summary.Result {
	case names.ResultAbandoned:
		return
	case names.ResultInSync, names.ResultConverged:
		n.Resolve(notify.EventPassFailed, "", rev, p.id, "pass "+p.summary.Result)
	default:
		msg := p.statusNote
		if msg == "" {
			msg = "failed: " + p.summary.Error
		}
		n.Fire(notify.EventPassFailed, "", rev, p.id, msg)
	}
	if p.driftLeft > 0 {
		n.Fire(notify.EventDriftLeft, "", rev, p.id, fmt.Sprintf("%d difference(s) left after the pass", p.driftLeft))
	} else if p.summary.Result != names.ResultError {
		// A pass that errored before planning says nothing about drift.
		n.Resolve(notify.EventDriftLeft, "", rev, p.id, "no difference left")
	}
}

// maintenanceNotify fires when the host enters maintenance and resolves
// when it leaves.
func (a *Agent) maintenanceNotify(p *passRun, was, is bool, reason string) {
	n := a.cfg.Notify
	if n == nil || was == is {
		return // the Notifier keeps a held condition alive itself
	}
	if is {
		n.Fire(notify.EventMaintenance, "", p.rev, p.id, "maintenance entered: "+reason)
	} else {
		n.Resolve(notify.EventMaintenance, "", p.rev, p.id, "maintenance left")
	}
}
