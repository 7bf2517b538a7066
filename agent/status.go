package agent

import (
	"encoding/json"
	"sync"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/autoscale"
	"reconciler.dev/reconciler/controllers/engine"
	"reconciler.dev/reconciler/controllers/failure"
	"reconciler.dev/reconciler/controllers/monitor"
	"reconciler.dev/reconciler/desired/source"
)

// Status is what /status serves and `reconciler status` prints. It is the
// agent's one report of itself, written by the agent alone (statusStore) on
// every path of a pass, so it tells the truth after errors too.
type Status struct {
	Host           string              `json:"host"`
	Phase          string              `json:"phase"` // starting, fetching, planning, applying, idle, stopping
	Revision       *RevisionStatus     `json:"revision,omitempty"`
	FailedRevision *FailedRevision     `json:"failedRevision,omitempty"`
	Source         SourceStatus        `json:"source"`
	Maintenance    *engine.Maintenance `json:"maintenance,omitempty"`
	LastPass       *PassSummary        `json:"lastPass,omitempty"`
	Passes         []PassSummary       `json:"passes"` // the most recent first
	Drift          []Drift             `json:"drift"`
	Autoscale      []autoscale.Status  `json:"autoscale,omitempty"` // the latest decision per autoscaled service
	Failures       []failure.Status    `json:"failures,omitempty"`  // per service with an onFailure policy or a failure: what fired, when
	Objects        []ObjectStatus      `json:"objects"`
	Conditions     []Condition         `json:"conditions"`
	Events         []Event             `json:"events"` // the most recent last
	// Monitor says how resource collection goes (absent when it is off).
	Monitor *MonitorStatus `json:"monitor,omitempty"`
}

// RevisionStatus is the revision in force.
type RevisionStatus struct {
	ID      string    `json:"id"`
	Ref     string    `json:"ref,omitempty"`
	Author  string    `json:"author,omitempty"`
	Message string    `json:"message,omitempty"`
	Time    time.Time `json:"time,omitzero"`
	Since   time.Time `json:"since"` // when the agent took it into force
}

func revisionStatus(r source.Revision, since time.Time) *RevisionStatus {
	return &RevisionStatus{ID: r.ID, Ref: r.Ref, Author: r.Author, Message: r.Message, Time: r.Time, Since: since}
}

// FailedRevision is the newest revision that could not be applied, and why.
type FailedRevision struct {
	ID      string     `json:"id"`
	Message string     `json:"message,omitempty"` // its commit message
	Reason  string     `json:"reason"`
	Errors  []v1.Error `json:"errors,omitempty"` // each with file:line:col
	At      time.Time  `json:"at"`

	// Cause is the reason as a word (the reason label of the refusal
	// metrics): invalid, unreadable, unsigned, untrusted-key,
	// bad-signature, not-descendant, unverifiable.
	Cause string `json:"cause,omitempty"`
	// Commit is the commit a trust check refused (under
	// --verify-signatures strict it may lie below ID); Key, the key that
	// signed it (SSH SHA256 fingerprint, OpenPGP fingerprint or key id).
	Commit string `json:"commit,omitempty"`
	Key    string `json:"key,omitempty"`
}

// SourceStatus says how fetching goes.
type SourceStatus struct {
	URL          string    `json:"url"`
	LastFetch    time.Time `json:"lastFetch,omitzero"` // last successful ref lookup
	LastError    string    `json:"lastError,omitempty"`
	Failing      bool      `json:"failing"`
	FailingSince time.Time `json:"failingSince,omitzero"`
}

// PassSummary is one pass: its transaction id, what it did and how it ended.
type PassSummary struct {
	ID       string          `json:"id"`
	Revision string          `json:"revision,omitempty"`
	Trigger  string          `json:"trigger"` // startup, interval, webhook, retry
	Start    time.Time       `json:"start"`
	End      time.Time       `json:"end,omitzero"`
	Result   string          `json:"result"` // in-sync, converged, failed, error, abandoned
	Error    string          `json:"error,omitempty"`
	Actions  []ActionOutcome `json:"actions"`
	Stages   []StageTiming   `json:"stages,omitempty"`
}

// ActionOutcome is one planned action and what became of it.
type ActionOutcome struct {
	controllers.Action
	Pass     string `json:"pass"`     // the pass (transaction) that planned it
	Revision string `json:"revision"` // the revision that pass enforced
	Outcome  string `json:"outcome"`  // applied, reported, failed, blocked, skipped
	Error    string `json:"error,omitempty"`
}

// StageTiming is when a stage of a pass ran.
type StageTiming struct {
	Number int       `json:"stage"`
	Title  string    `json:"title"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end,omitzero"`
}

// Drift is one field of one object that differs from git.
type Drift struct {
	Subject string    `json:"subject"`
	Kind    string    `json:"kind"`
	Name    string    `json:"name"`
	Field   string    `json:"field"`
	Live    string    `json:"live"`
	Desired string    `json:"desired"`
	Since   time.Time `json:"since"`
	Action  string    `json:"action"` // reverted, report-only, missing, unsupported, failed, blocked
	// Pass and Revision name the pass that last found it, and the revision
	// that pass enforced.
	Pass     string `json:"pass,omitempty"`
	Revision string `json:"revision,omitempty"`
}

// ObjectStatus is one declared object as last observed.
type ObjectStatus struct {
	Subject string `json:"subject"`
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Driver  string `json:"driver"`
	Desired string `json:"desired"`
	Live    string `json:"live"`
	Mode    string `json:"mode"`
	InSync  bool   `json:"inSync"`
	Ready   bool   `json:"ready"` // running as declared (the driver's health)
	// Details are what the driver knows beyond the state: pid, uptime,
	// crash-looping, resource figures.
	Details map[string]string `json:"details,omitempty"`
	// Resources are the service's last resource figures (services only;
	// collected every --monitor-interval, apart from passes).
	Resources *monitor.Resources `json:"resources,omitempty"`
}

// Condition is a Kubernetes-style condition: Ready, SourceAvailable,
// Converged, Maintenance.
type Condition struct {
	Type    string    `json:"type"`
	Status  bool      `json:"status"`
	Reason  string    `json:"reason,omitempty"`
	Message string    `json:"message,omitempty"`
	Since   time.Time `json:"since"`
}

// Event is one thing that happened, with the pass (transaction) it happened in.
type Event struct {
	Time     time.Time `json:"time"`
	Pass     string    `json:"pass,omitempty"`
	Revision string    `json:"revision,omitempty"`
	Type     string    `json:"type"`
	Subject  string    `json:"subject,omitempty"`
	Field    string    `json:"field,omitempty"`
	From     string    `json:"from,omitempty"`
	To       string    `json:"to,omitempty"`
	Message  string    `json:"message,omitempty"`
	// Resources are the figures of a "resources" event (one per service
	// per collection; sent to /events subscribers, not kept in /status).
	Resources *monitor.Resources `json:"resources,omitempty"`
}

const (
	maxEvents = 200
	maxPasses = 20
)

// statusStore holds the status; the agent writes it, handlers read copies.
type statusStore struct {
	mu   sync.Mutex
	st   Status
	subs map[chan Event]struct{}
	// passLog keeps the events of each pass /status lists (passes.go).
	passLog passLog
}

func newStatusStore(host, url string) *statusStore {
	return &statusStore{
		st:   Status{Host: host, Phase: "starting", Source: SourceStatus{URL: url}, Passes: []PassSummary{}, Drift: []Drift{}, Objects: []ObjectStatus{}, Conditions: []Condition{}, Events: []Event{}},
		subs: map[chan Event]struct{}{},
	}
}

func (s *statusStore) update(fn func(*Status)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.st)
}

// snapshot returns a deep copy, safe to serialise while the agent works.
func (s *statusStore) snapshot() Status {
	s.mu.Lock()
	b, err := json.Marshal(s.st)
	s.mu.Unlock()
	var out Status
	if err == nil {
		_ = json.Unmarshal(b, &out)
	}
	return out
}

// event records an event and hands it to every subscriber that keeps up.
func (s *statusStore) event(ev Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Events = append(s.st.Events, ev)
	s.recordPassEvent(ev)
	if n := len(s.st.Events); n > maxEvents {
		s.st.Events = append([]Event(nil), s.st.Events[n-maxEvents:]...)
	}
	for ch := range s.subs {
		select {
		case ch <- ev:
		default: // a slow subscriber misses events rather than stall the agent
		}
	}
}

func (s *statusStore) subscribe() (chan Event, func()) {
	ch := make(chan Event, 256)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}
}

// setCondition sets a condition, keeping its Since when the status holds.
func setCondition(st *Status, c Condition, now time.Time) {
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
