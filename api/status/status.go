package status

import (
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/autoscale"
	"reconciler.dev/reconciler/controllers/failure"
	"reconciler.dev/reconciler/controllers/monitor"
)

// Status is what /status serves and `reconciler status` prints. It is the
// agent's one report of itself, written by the agent alone (statusStore) on
// every path of a pass, so it tells the truth after errors too.
type Status struct {
	Host           string          `json:"host"`
	Phase          string          `json:"phase"` // starting, fetching, planning, applying, idle, stopping
	Revision       *RevisionStatus `json:"revision,omitempty"`
	FailedRevision *FailedRevision `json:"failedRevision,omitempty"`
	// QuarantinedRevision is the newest revision quarantined: it validated
	// but did not become converged and ready within --healthy-within, so
	// the last healthy revision went back in force and it is never tried
	// again (until released). Quarantined lists every one still held.
	QuarantinedRevision *QuarantinedRevision  `json:"quarantinedRevision,omitempty"`
	Quarantined         []QuarantinedRevision `json:"quarantined,omitempty"`
	// Labels are the host's labels in the revision in force (a rollout
	// wave is one of them; see `reconciler fleet promote`).
	Labels      map[string]string        `json:"labels,omitempty"`
	Source      SourceStatus             `json:"source"`
	Maintenance *controllers.Maintenance `json:"maintenance,omitempty"`
	LastPass    *PassSummary             `json:"lastPass,omitempty"`
	Passes      []PassSummary            `json:"passes"` // the most recent first
	Drift       []Drift                  `json:"drift"`
	Autoscale   []autoscale.Status       `json:"autoscale,omitempty"` // the latest decision per autoscaled service
	Failures    []failure.Status         `json:"failures,omitempty"`  // per service with an onFailure policy or a failure: what fired, when
	Objects     []ObjectStatus           `json:"objects"`
	// Selectors are what each selector entry (select:) matched in the
	// latest plan; the services it matched are in objects too.
	Selectors  []controllers.Selection `json:"selectors,omitempty"`
	Conditions []Condition             `json:"conditions"`
	Events     []Event                 `json:"events"` // the most recent last
	// Monitor says how resource collection goes (absent when it is off).
	Monitor *MonitorStatus `json:"monitor,omitempty"`
	// Stuck lists the daemons that do not answer (a call in flight for
	// half its timeout, or calls that ran out of time with none answered
	// since), with the oldest call waiting and since when; absent when
	// every daemon answers.
	Stuck []StuckCall `json:"stuck,omitempty"`
}

// StuckCall is a daemon that does not answer: a call to it in flight for
// longer than half its timeout, or calls that ran out of time with none
// answered since (/status stuck, one entry per daemon).
type StuckCall struct {
	// Daemon is what the call talks to: docker, systemd (over D-Bus),
	// supervisord, daemontools, git.
	Daemon string `json:"daemon"`
	// Call is the oldest call without an answer: "observe swarm", "apply
	// swarm/factory-proxy replicas", "fetch".
	Call string `json:"call"`
	// Since is when that call was made.
	Since time.Time `json:"since"`
	// TimedOut counts the calls to the daemon that ran out of time since
	// it last answered one.
	TimedOut int `json:"timedOut"`
}

// RevisionStatus is the revision in force.
type RevisionStatus struct {
	ID      string    `json:"id"`
	Ref     string    `json:"ref,omitempty"`
	Author  string    `json:"author,omitempty"`
	Message string    `json:"message,omitempty"`
	Time    time.Time `json:"time,omitzero"`
	Since   time.Time `json:"since"` // when the agent took it into force
	// HealthySince is when the passes of this revision began to end
	// converged and ready without a failure since (zero while they do
	// not): what a rollout's soak time is measured from.
	HealthySince time.Time `json:"healthySince,omitzero"`
	// Reverted names the revision quarantined when this one came back
	// into force in its place.
	Reverted string `json:"reverted,omitempty"`
}

// Describe says why the revision was quarantined, in one line.
func (q QuarantinedRevision) Describe() string {
	msg := "not converged and ready within " + q.Within
	if q.Subject != "" {
		msg += "; " + q.Subject
	}
	if q.Reason != "" {
		msg += ": " + q.Reason
	}
	return msg
}

// QuarantinedRevision is a revision that did not become healthy in time.
type QuarantinedRevision struct {
	ID      string `json:"id"`
	Message string `json:"message,omitempty"`
	// Subject is the object that failed last ("swarm/web"; empty when the
	// pass failed as a whole) and Reason why.
	Subject string `json:"subject,omitempty"`
	Reason  string `json:"reason"`
	// Since is when the revision came into force, At when it was
	// quarantined, Within the bound it was given.
	Since  time.Time `json:"since"`
	At     time.Time `json:"at"`
	Within string    `json:"within"`
	// RevertedTo is the healthy revision put back in force.
	RevertedTo string `json:"revertedTo"`
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
	// Triggers are the services run by triggers (onStart, onExit) in the
	// pass, in order.
	Triggers []controllers.TriggerRun `json:"triggers,omitempty"`
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
	// Since is since when the object has run (its earliest running
	// replica), as its driver observed it; absent when it does not run or
	// the driver does not tell (see the README's Uptime).
	Since time.Time `json:"since,omitzero"`
	// ReplicasSince is since when each running replica has run, by the
	// driver's name of it, where the driver tells.
	ReplicasSince map[string]time.Time `json:"replicasSince,omitempty"`
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

// MonitorStatus says how resource collection goes: how often, how many so
// far, and what the last one cost.
type MonitorStatus struct {
	Interval    string        `json:"interval"`
	Collections int           `json:"collections"`
	Last        *monitor.Cost `json:"last,omitempty"`
}

// PassDetail is one pass with every event it raised: what
// `reconciler status --pass ID` shows, served at /passes/{id}.
type PassDetail struct {
	Pass          PassSummary `json:"pass"`
	Events        []Event     `json:"events"`
	EventsDropped int         `json:"eventsDropped,omitempty"`
}
