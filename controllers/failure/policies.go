package failure

import (
	"sort"
	"sync"
	"time"
)

// Policies keeps the failure policies' memory between passes. The agent
// has one; it is safe for concurrent use.
type Policies struct {
	// Now is the clock (default time.Now).
	Now func() time.Time

	mu    sync.Mutex
	mem   map[string]*Memory
	last  map[string]Input // the services of the last pass, by name
	order []string         // their names, in declaration order
	dirty bool
}

// New returns policies with nothing remembered.
func New() *Policies {
	return &Policies{mem: map[string]*Memory{}, last: map[string]Input{}}
}

func (p *Policies) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Standbys returns the services that count as desired because of failures
// remembered from earlier passes, and why: a pass raises them before it
// observes, so each standby is observed (and judged failing or not)
// against the count it will be asked to run.
func (p *Policies) Standbys() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]string{}
	names := make([]string, 0, len(p.mem))
	for name := range p.mem {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		m := p.mem[name]
		if !m.Failing {
			continue
		}
		for _, s := range m.Standby {
			if out[s] != "" {
				out[s] += ", "
			}
			out[s] += name + " is failing"
		}
	}
	return out
}

// Decide runs Decide on the memory, for the pass.
func (p *Policies) Decide(pass string, in []Input) Decision {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := Decide(p.now(), pass, in, p.mem)
	p.last = make(map[string]Input, len(in))
	p.order = p.order[:0]
	for _, s := range in {
		p.last[s.Name] = s
		p.order = append(p.order, s.Name)
	}
	if len(d.Events) > 0 {
		p.dirty = true
	}
	return d
}

// Restarted records the restart of a service that the pass carried out
// (err nil) or attempted (err not nil), and returns what it fired.
func (p *Policies) Restarted(pass, service string, err error) Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.mem[service]
	if m == nil {
		m = &Memory{}
		p.mem[service] = m
	}
	p.dirty = true
	return Restarted(p.now(), pass, p.last[service], m, err)
}

// Dirty says whether the memory changed since the last call, so the agent
// writes its state only then.
func (p *Policies) Dirty() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.dirty
	p.dirty = false
	return d
}

// Memory returns a copy of the memory, for the state file.
func (p *Policies) Memory() map[string]Memory {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.mem) == 0 {
		return nil
	}
	out := make(map[string]Memory, len(p.mem))
	for k, m := range p.mem {
		out[k] = copyMemory(m)
	}
	return out
}

// Restore replaces the memory with one read from the state file.
func (p *Policies) Restore(mem map[string]Memory) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mem = make(map[string]*Memory, len(mem))
	for k, m := range mem {
		c := copyMemory(&m)
		p.mem[k] = &c
	}
}

func copyMemory(m *Memory) Memory {
	c := *m
	c.Restarts = append([]time.Time(nil), m.Restarts...)
	c.Standby = append([]string(nil), m.Standby...)
	c.Fired = append([]Fired(nil), m.Fired...)
	return c
}

// Status is one service's failure policy in /status: what it is, whether
// the service is failing, and what the policy did and when.
type Status struct {
	Service string `json:"service"`
	Subject string `json:"subject"`
	Policy  string `json:"policy"` // "restart 3 per 1m0s, start standby", "report"
	Failing bool   `json:"failing"`
	Reason  string `json:"reason,omitempty"`
	// Since is when the failure was first seen.
	Since *time.Time `json:"since,omitempty"`
	// Restarts are the restarts made within the current window.
	Restarts []time.Time `json:"restarts,omitempty"`
	// GaveUp is set once the restart limit was reached, until the window
	// has room again (RetryAfter) or the failure clears.
	GaveUp     *time.Time `json:"gaveUp,omitempty"`
	RetryAfter *time.Time `json:"retryAfter,omitempty"`
	// Standby are the services counted as desired because of this failure.
	Standby []string `json:"standby,omitempty"`
	// Fired is what the policy did, with the pass it did it in, the most
	// recent last.
	Fired []Fired `json:"fired"`
}

// Statuses returns the status of every service that has a policy beyond
// report, is failing, or has something on record, in declaration order.
func (p *Policies) Statuses() []Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Status
	for _, name := range p.order {
		m := p.mem[name]
		if m == nil {
			continue
		}
		st := Status{Service: name, Subject: m.Subject, Policy: m.Policy, Failing: m.Failing, Reason: m.Reason,
			Restarts: append([]time.Time(nil), m.Restarts...), Standby: append([]string(nil), m.Standby...),
			Fired: append([]Fired{}, m.Fired...)}
		if m.Failing {
			st.Since = timePtr(m.Since)
		}
		if !m.GaveUp.IsZero() {
			st.GaveUp, st.RetryAfter = timePtr(m.GaveUp), timePtr(m.RetryAfter)
		}
		out = append(out, st)
	}
	return out
}

func timePtr(t time.Time) *time.Time { return &t }
