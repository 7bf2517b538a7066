package agent

import (
	"encoding/json"
	"sync"
	"time"

	"reconciler.dev/reconciler/api/status"
	"reconciler.dev/reconciler/desired/source"
)

const (
	maxEvents = 200
	maxPasses = 20
)

func revisionStatus(r source.Revision, since time.Time) *status.RevisionStatus {
	return &status.RevisionStatus{ID: r.ID, Ref: r.Ref, Author: r.Author, Message: r.Message, Time: r.Time, Since: since}
}

// statusStore holds the status; the agent writes it, handlers read copies.
type statusStore struct {
	mu   sync.Mutex
	st   status.Status
	subs map[chan status.Event]struct{}
	// passLog keeps the events of each pass /status lists (passes.go).
	passLog passLog
}

func newStatusStore(host, url string) *statusStore {
	return &statusStore{
		st:   status.Status{Host: host, Phase: "starting", Source: status.SourceStatus{URL: url}, Passes: []status.PassSummary{}, Drift: []status.Drift{}, Objects: []status.ObjectStatus{}, Conditions: []status.Condition{}, Events: []status.Event{}},
		subs: map[chan status.Event]struct{}{},
	}
}

func (s *statusStore) update(fn func(*status.Status)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.st)
}

// snapshot returns a deep copy, safe to serialise while the agent works.
func (s *statusStore) snapshot() status.Status {
	s.mu.Lock()
	b, err := json.Marshal(s.st)
	s.mu.Unlock()
	var out status.Status
	if err == nil {
		_ = json.Unmarshal(b, &out)
	}
	return out
}

// event records an event and hands it to every subscriber that keeps up.
func (s *statusStore) event(ev status.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Events = append(s.st.Events, ev)
	s.recordPassEvent(ev)
	if n := len(s.st.Events); n > maxEvents {
		s.st.Events = append([]status.Event(nil), s.st.Events[n-maxEvents:]...)
	}
	for ch := range s.subs {
		select {
		case ch <- ev:
		default: // a slow subscriber misses events rather than stall the agent
		}
	}
}

func (s *statusStore) subscribe() (chan status.Event, func()) {
	ch, cancel, _ := s.trySubscribe(0)
	return ch, cancel
}

// trySubscribe subscribes unless limit (> 0) subscribers are there already:
// each holds a connection and a 256-event buffer.
func (s *statusStore) trySubscribe(limit int) (chan status.Event, func(), bool) {
	ch := make(chan status.Event, 256)
	s.mu.Lock()
	if limit > 0 && len(s.subs) >= limit {
		s.mu.Unlock()
		return nil, nil, false
	}
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}, true
}

// setCondition sets a condition, keeping its Since when the status holds.
func setCondition(st *status.Status, c status.Condition, now time.Time) {
	for i := range st.Conditions {
		if st.Conditions[i].Type == c.Type {
			if st.Conditions[i].Status == c.Status {
				c.Since = st.Conditions[i].Since
			} else {
				c.Since = now
			}
			st.Conditions[i] = c
			return
		}
	}
	c.Since = now
	st.Conditions = append(st.Conditions, c)
}
