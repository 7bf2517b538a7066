package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/engine"
)

// maxPassEvents bounds the events kept for one pass; beyond it a pass's
// detail says how many it dropped.
const maxPassEvents = 500

// passLog keeps the events of the passes /status lists, by pass id, so a
// pass can be shown whole even after the recent-events ring moved on.
type passLog struct {
	events  map[string][]status.Event
	dropped map[string]int
}

// recordPassEvent files an event under its pass. The caller holds s.mu.
// Passes that dropped out of the last maxPasses are forgotten.
func (s *statusStore) recordPassEvent(ev status.Event) {
	if ev.Pass == "" {
		return
	}
	l := &s.passLog
	if l.events == nil {
		l.events, l.dropped = map[string][]status.Event{}, map[string]int{}
	}
	if len(l.events[ev.Pass]) >= maxPassEvents {
		l.dropped[ev.Pass]++
	} else {
		l.events[ev.Pass] = append(l.events[ev.Pass], ev)
	}
	if len(l.events) <= maxPasses+1 {
		return
	}
	keep := map[string]bool{ev.Pass: true}
	for _, p := range s.st.Passes {
		keep[p.ID] = true
	}
	for id := range l.events {
		if !keep[id] {
			delete(l.events, id)
			delete(l.dropped, id)
		}
	}
}

// publish hands an event to the subscribers of /events without keeping
// it in the status: resource samples, which would otherwise push the
// passes' events out of the recent ones.
func (s *statusStore) publish(ev status.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

var errNoPass = errors.New("no such pass")

// passDetail returns one of the passes /status lists: by id, by a prefix
// of one id, or "last".
func (s *statusStore) passDetail(id string) (status.PassDetail, error) {
	s.mu.Lock()
	var found []status.PassSummary
	for _, p := range s.st.Passes {
		if p.ID == id || (id == "last" && len(found) == 0) {
			found = []status.PassSummary{p}
			break
		}
		if id != "" && strings.HasPrefix(p.ID, id) {
			found = append(found, p)
		}
	}
	var d status.PassDetail
	var b []byte
	var err error
	if len(found) == 1 {
		d = status.PassDetail{Pass: found[0], Events: s.passLog.events[found[0].ID], EventsDropped: s.passLog.dropped[found[0].ID]}
		b, err = json.Marshal(d) // a deep copy, made under the lock
	}
	s.mu.Unlock()
	switch {
	case len(found) == 0:
		return d, fmt.Errorf("%w: %q is not among the last %d passes", errNoPass, id, maxPasses)
	case len(found) > 1:
		return d, fmt.Errorf("%w: %q names %d passes; give more of the id", errNoPass, id, len(found))
	case err != nil:
		return d, err
	}
	var out status.PassDetail
	if err := json.Unmarshal(b, &out); err != nil {
		return d, err
	}
	if out.Events == nil {
		out.Events = []status.Event{}
	}
	return out, nil
}

// servePass serves /passes/{id}: one pass with its events, 404 when it is
// not among the passes /status lists.
func (a *Agent) servePass(w http.ResponseWriter, r *http.Request) {
	d, err := a.status.passDetail(r.PathValue("id"))
	if errors.Is(err, errNoPass) {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(d)
}

// driftEvents raises one "drift" event per difference the plan found,
// before anything is done about it: the live and desired values, and what
// the pass will do ("scale-down", or "report-only (scale-down)").
func (a *Agent) driftEvents(p *passRun, plan *engine.Plan) {
	for _, act := range plan.Actions {
		what := string(act.Op)
		if act.Mode == controllers.ReportOnly || act.Mode == controllers.Observed {
			what = string(act.Mode) + " (" + what + ")"
		}
		a.event(status.Event{Pass: p.id, Revision: p.rev, Type: names.EventDrift, Subject: act.Subject, Field: act.Field,
			From: act.From, To: act.To, Message: what})
	}
}
