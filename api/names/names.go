package names

// Event types. The engine raises the first group while it applies a plan
// (controllers/engine); the agent raises the rest. An event's Type is one
// of these.
const (
	EventStage    = "stage"    // a stage begins; Message is "phase: title"
	EventAction   = "action"   // an action is sent to its driver; Message is its op
	EventApplied  = "applied"  // the driver carried it out
	EventWaiting  = "waiting"  // waiting for readiness or a drain; Message says for what
	EventReady    = "ready"    // the object is ready (and its probe passed)
	EventDrained  = "drained"  // nothing runs beyond the target any more
	EventFailed   = "failed"   // an action or a wait failed
	EventBlocked  = "blocked"  // not changed: something it depends on failed
	EventReported = "reported" // drift only reported

	EventPassStarted      = "pass-started"
	EventPassFinished     = "pass-finished" // Message is the pass's result
	EventRevision         = "revision"      // a new revision is in force
	EventRevisionRefused  = "revision-refused"
	EventRevisionTrusted  = "revision-trusted"
	EventTrustCheckFailed = "trust-check-failed"
	EventSourceFailed     = "source-failed"
	EventSourceRecovered  = "source-recovered"
	EventStateError       = "state-error"
	EventStateCorrupt     = "state-corrupt"
	EventResumed          = "resumed" // a pass interrupted by a restart is re-planned
	EventAutoscale        = "autoscale"
	EventWebhook          = "webhook"
	EventResources        = "resources" // figures of one service (only on /events)
	EventDrift            = "drift"
	// EventFailurePolicy is what failure policies fire; Field says what
	// (failure.ActFailing, ActRestart, ActGaveUp, ActStart, ActStop,
	// ActCleared).
	EventFailurePolicy = "failure-policy"
	// EventRevisionHealthy: the revision in force reached converged and
	// ready for the first time (it is the one a later revert goes back to).
	EventRevisionHealthy = "revision-healthy"
	// EventQuarantined: a revision did not become healthy within
	// --healthy-within; Subject is the failing object.
	EventQuarantined = "revision-quarantined"
	// EventReverted: the last healthy revision is back in force.
	EventReverted = "revision-reverted"
	// EventQuarantineReleased: an operator released a quarantine.
	EventQuarantineReleased = "quarantine-released"
	// EventTrigger is a service run by another's onStart or onExit in a
	// pass; Message says which trigger and what the run did.
	EventTrigger = "trigger"
)

// EventTypes lists every event type, for clients that subscribe by type
// (the status page's script).
var EventTypes = []string{
	EventStage, EventAction, EventApplied, EventWaiting, EventReady, EventDrained, EventFailed, EventBlocked, EventReported,
	EventPassStarted, EventPassFinished, EventRevision, EventRevisionRefused, EventRevisionTrusted, EventTrustCheckFailed,
	EventSourceFailed, EventSourceRecovered, EventStateError, EventStateCorrupt, EventResumed, EventAutoscale, EventWebhook,
	EventResources, EventDrift, EventFailurePolicy,
	EventRevisionHealthy, EventQuarantined, EventReverted, EventQuarantineReleased, EventTrigger,
}

// Pass triggers (PassSummary.Trigger): what started a pass.
const (
	TriggerStartup  = "startup"  // the agent started
	TriggerInterval = "interval" // the interval passed
	TriggerWebhook  = "webhook"  // a push notification
	TriggerRetry    = "retry"    // the last pass failed; backing off
	// TriggerDriftEvent: a daemon's event stream (Docker /events, systemd's
	// signals) said someone else changed what the reconciler owns.
	TriggerDriftEvent = "drift-event"
)

// Condition types.
const (
	ConditionReady           = "Ready"     // the last pass succeeded
	ConditionConverged       = "Converged" // the host runs as declared
	ConditionSourceAvailable = "SourceAvailable"
	ConditionMaintenance     = "Maintenance"
	ConditionTrustChecked    = "TrustChecked"
	ConditionStateWritable   = "StateWritable"
	// ConditionRevisionHealthy: the revision in force has reached converged
	// and ready (Reason RevisionProven, OnTrial, Degraded, Reverted,
	// NoFallback).
	ConditionRevisionHealthy = "RevisionHealthy"
)

// Condition reasons.
const (
	ReasonFetched       = "Fetched"
	ReasonFetchFailed   = "FetchFailed"
	ReasonWritten       = "Written"
	ReasonWriteFailed   = "WriteFailed"
	ReasonOn            = "On"
	ReasonOff           = "Off"
	ReasonExpired       = "Expired"
	ReasonPassSucceeded = "PassSucceeded"
	ReasonPassFailed    = "PassFailed"
	ReasonInSync        = "InSync"
	ReasonNotConverged  = "NotConverged"
	ReasonJudged        = "Judged"
	ReasonCheckFailed   = "CheckFailed"
	ReasonProven        = "Proven"     // the revision in force reached converged and ready
	ReasonOnTrial       = "OnTrial"    // not yet, and still within --healthy-within
	ReasonDegraded      = "Degraded"   // it was healthy before and fails now: not reverted
	ReasonReverted      = "Reverted"   // a revision was quarantined; the last healthy one is back
	ReasonNoFallback    = "NoFallback" // past the bound, but no healthy revision to go back to
)

// Pass results (PassSummary.Result).
const (
	ResultInSync    = "in-sync"
	ResultConverged = "converged"
	ResultFailed    = "failed"
	ResultError     = "error"
	ResultAbandoned = "abandoned"
)

// Drift actions (Drift.Action) besides the action modes (report-only) and
// the report-only ops (missing, unsupported), which are spelled as they are
// in controllers.
const (
	DriftReverted = "reverted"
	DriftFailed   = "failed"
	DriftBlocked  = "blocked"
	DriftPending  = "pending"
	// DriftObserved: a cluster object (a swarm service) that another
	// node's agent converges, the Raft leader's; this agent only reports
	// it. It is also the mode of such actions (controllers.Observed).
	DriftObserved = "observed"
)
