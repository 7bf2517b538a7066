package failure

import (
	"fmt"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

// Input is one declared service as a pass observed it.
type Input struct {
	Name    string
	Subject string
	// Policy is the declared onFailure; nil is report.
	Policy *v1.FailurePolicy
	// Replicas is the count the pass wants running (maintenance and
	// standbys already applied). At 0 nothing can be failing.
	Replicas int32
	// Maintained is true when maintenance holds the service at 0: as a
	// standby it stays down.
	Maintained bool
	// ReportOnly is true for a service whose drift mode is report: its
	// policy never restarts it.
	ReportOnly bool
	// Exists, Failing and Ready are what the driver observed: the object
	// exists, why it is failing ("" when it is not), and whether it is
	// ready against its target.
	Exists  bool
	Failing string
	Ready   bool
}

// Memory is what is remembered of one service's failure between passes, and
// across agent restarts (the agent's state dir).
type Memory struct {
	Subject string `json:"subject,omitempty"`
	Policy  string `json:"policy,omitempty"`
	// Failing is true from the pass that saw the failure until the service
	// is seen running as declared again; Since and Reason say when it began
	// and what the last pass saw.
	Failing bool      `json:"failing,omitempty"`
	Since   time.Time `json:"since,omitzero"`
	Reason  string    `json:"reason,omitempty"`
	// Restarts are the restarts carried out within the policy's window.
	Restarts []time.Time `json:"restarts,omitempty"`
	// GaveUp is when the policy reached its limit (zero: it has not), and
	// RetryAfter when the window has room for a restart again.
	GaveUp     time.Time `json:"gaveUp,omitzero"`
	RetryAfter time.Time `json:"retryAfter,omitzero"`
	// Standby are the services started for this failure.
	Standby []string `json:"standby,omitempty"`
	// Fired is what the policy did, the most recent last.
	Fired []Fired `json:"fired,omitempty"`
}

// Fired is one thing a failure policy did or saw, in the pass (transaction)
// it happened in.
type Fired struct {
	Time    time.Time `json:"time"`
	Pass    string    `json:"pass,omitempty"`
	Action  string    `json:"action"` // one of the Act* constants
	Message string    `json:"message"`
}

// What a policy fires.
const (
	ActFailing = "failing"   // the service was seen failing
	ActRestart = "restart"   // a restart was carried out (or failed)
	ActGaveUp  = "gave-up"   // the restart limit was reached
	ActStart   = "start"     // a standby counts as desired
	ActStop    = "stop"      // a standby is back to its declared count
	ActCleared = "recovered" // the service runs as declared again
)

// maxFired is how many fired records are kept per service.
const maxFired = 10

// Event is one record fired for one service.
type Event struct {
	Service string
	Subject string
	Fired
}

// Decision is what the policies do in one pass.
type Decision struct {
	// Modes says, per failing service, what the plan does with what is
	// failing of it.
	Modes map[string]controllers.FailureMode
	// Standbys are the services that count as desired with at least one
	// replica, and why.
	Standbys map[string]string
	// Events are what fired in this pass, in order.
	Events []Event
}

// Decide works out what the policies do in a pass from what the pass
// observed and what mem remembers, and updates mem (keyed by service name;
// services no longer declared are dropped). Restarts are counted when they
// are carried out (Restarted), not here. It does no I/O.
func Decide(now time.Time, pass string, in []Input, mem map[string]*Memory) Decision {
	d := Decision{Modes: map[string]controllers.FailureMode{}, Standbys: map[string]string{}}
	fire := func(svc Input, m *Memory, action, format string, args ...any) {
		f := Fired{Time: now, Pass: pass, Action: action, Message: fmt.Sprintf(format, args...)}
		m.Fired = appendFired(m.Fired, f)
		d.Events = append(d.Events, Event{Service: svc.Name, Subject: svc.Subject, Fired: f})
	}
	declared := map[string]Input{}
	for _, s := range in {
		declared[s.Name] = s
	}
	for name := range mem {
		if _, ok := declared[name]; !ok {
			delete(mem, name)
		}
	}
	for _, s := range in {
		m := mem[s.Name]
		if m == nil {
			m = &Memory{}
			mem[s.Name] = m
		}
		m.Subject, m.Policy = s.Subject, s.Policy.String()
		prune(m, s.Policy, now)
		failingNow := s.Exists && s.Replicas > 0 && s.Failing != ""
		switch {
		case failingNow:
			if !m.Failing {
				m.Failing, m.Since = true, now
				fire(s, m, ActFailing, "failing: %s (onFailure: %s%s)", s.Failing, m.Policy, reportOnlyNote(s))
			}
			m.Reason = s.Failing
		case m.Failing && (s.Replicas == 0 || !s.Exists || s.Ready):
			why := "runs as declared again"
			switch {
			case !s.Exists:
				why = "no longer exists"
			case s.Replicas == 0:
				why = "is wanted at 0 replicas"
			}
			m.Failing, m.Since, m.Reason = false, time.Time{}, ""
			m.GaveUp, m.RetryAfter = time.Time{}, time.Time{}
			fire(s, m, ActCleared, "failure cleared: %s %s", s.Name, why)
		}
		switch r := restartOf(s.Policy); {
		case failingNow && r != nil && !s.ReportOnly:
			limit := int(*r.Limit)
			if len(m.Restarts) < limit {
				d.Modes[s.Name] = controllers.FailureRestart
				m.GaveUp, m.RetryAfter = time.Time{}, time.Time{}
				break
			}
			d.Modes[s.Name] = controllers.FailureGaveUp
			if m.GaveUp.IsZero() {
				m.GaveUp = now
				m.RetryAfter = m.Restarts[0].Add(r.Window.Duration)
				fire(s, m, ActGaveUp, "gave up: %d restarts within %s, the limit; %s stays as it is and is reported until %s",
					len(m.Restarts), r.Window.Duration, s.Name, m.RetryAfter.UTC().Format(time.RFC3339))
			}
		case m.Failing:
			d.Modes[s.Name] = controllers.FailureReport
		}
	}
	// Standbys: named by a failing service's policy, for as long as it is
	// remembered failing.
	for _, s := range in {
		m := mem[s.Name]
		var want []string
		if m.Failing && s.Policy != nil {
			for _, name := range s.Policy.Start {
				if _, ok := declared[name]; !ok || name == s.Name {
					continue // validation rejects these; never act on them
				}
				want = append(want, name)
				if d.Standbys[name] != "" {
					d.Standbys[name] += ", "
				}
				d.Standbys[name] += s.Name + " is failing"
			}
		}
		for _, name := range want {
			if !contains(m.Standby, name) {
				note := ""
				if declared[name].Maintained {
					note = " (maintenance holds it at 0 for now)"
				}
				fire(s, m, ActStart, "standby %s counts as desired while %s is failing%s", name, s.Name, note)
			}
		}
		for _, name := range m.Standby {
			if !contains(want, name) {
				fire(s, m, ActStop, "standby %s back to its declared count: %s is no longer failing", name, s.Name)
			}
		}
		m.Standby = want
	}
	// What needs remembering: a policy that acts, a failure, restarts
	// still in their window. Quiet services without one are forgotten.
	for _, s := range in {
		if m := mem[s.Name]; s.Policy.ReportOnly() && !m.Failing && len(m.Restarts) == 0 {
			delete(mem, s.Name)
		}
	}
	return d
}

// Restarted records a restart carried out (err nil) or attempted (err not
// nil: it counts too, so a restart that keeps failing cannot storm) in the
// pass, and returns what it fired.
func Restarted(now time.Time, pass string, s Input, m *Memory, err error) Event {
	m.Restarts = append(m.Restarts, now)
	n, of := len(m.Restarts), "?"
	window := ""
	if r := restartOf(s.Policy); r != nil {
		of = fmt.Sprint(*r.Limit)
		window = " within " + r.Window.Duration.String()
	}
	f := Fired{Time: now, Pass: pass, Action: ActRestart}
	if err != nil {
		f.Message = fmt.Sprintf("restart %d of %s%s failed: %v", n, of, window, err)
	} else {
		f.Message = fmt.Sprintf("restarted %s (%d of %s%s): %s", s.Name, n, of, window, m.Reason)
	}
	m.Fired = appendFired(m.Fired, f)
	return Event{Service: s.Name, Subject: s.Subject, Fired: f}
}

// restartOf is the service's restart policy, if it has a usable one.
func restartOf(p *v1.FailurePolicy) *v1.RestartPolicy {
	if p == nil || p.Restart == nil || p.Restart.Limit == nil || p.Restart.Window == nil || *p.Restart.Limit < 1 {
		return nil
	}
	return p.Restart
}

// prune drops the restarts that left the window (all of them when the
// service has no restart policy any more).
func prune(m *Memory, p *v1.FailurePolicy, now time.Time) {
	r := restartOf(p)
	kept := m.Restarts[:0]
	for _, t := range m.Restarts {
		if r != nil && now.Sub(t) < r.Window.Duration {
			kept = append(kept, t)
		}
	}
	m.Restarts = kept
	if len(kept) == 0 {
		m.Restarts = nil
	}
}

func reportOnlyNote(s Input) string {
	if s.ReportOnly && restartOf(s.Policy) != nil {
		return "; drift: report, so it is not restarted"
	}
	return ""
}

func appendFired(list []Fired, f Fired) []Fired {
	list = append(list, f)
	if n := len(list); n > maxFired {
		list = append([]Fired(nil), list[n-maxFired:]...)
	}
	return list
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
