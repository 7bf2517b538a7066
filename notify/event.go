package notify

import (
	"time"

	"reconciler.dev/reconciler/api/names"
)

// Event types: each is a condition that fires and later resolves. The two
// that are also events of /status are spelled by api/names.
const (
	EventRevisionRefused = names.EventRevisionRefused // resolves when a revision is in force again
	EventPassFailed      = "pass-failed"              // resolves after a good pass
	EventDriftLeft       = "drift-left"               // a pass left differences; resolves when none are left
	EventMaintenance     = "maintenance"              // fires when entered, resolves when left
	EventGaveUp          = "failure-gave-up"          // per subject; resolves when the service recovers
	// EventQuarantined fires when a revision is quarantined (its subject is
	// the revision) and resolves when an operator releases it.
	EventQuarantined = names.EventQuarantined
)

var eventTypes = []string{EventRevisionRefused, EventPassFailed, EventDriftLeft, EventMaintenance, EventGaveUp, EventQuarantined}

func knownEvent(t string) bool {
	for _, e := range eventTypes {
		if e == t {
			return true
		}
	}
	return false
}

// Event is one notification.
type Event struct {
	Type string `json:"type"`
	// Firing is true while the condition holds; false resolves it.
	Firing   bool      `json:"firing"`
	Host     string    `json:"host"`
	Revision string    `json:"revision,omitempty"`
	Pass     string    `json:"pass,omitempty"`
	Subject  string    `json:"subject,omitempty"`
	Message  string    `json:"message,omitempty"`
	Time     time.Time `json:"time"`
	// StartsAt is when the condition began firing (kept on its resolution).
	StartsAt time.Time `json:"startsAt"`
}

// key names one condition of one host.
func (e Event) key() string { return e.Type + "\x00" + e.Subject }

func (e Event) state() string {
	if e.Firing {
		return "firing"
	}
	return "resolved"
}
