package autoscale

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

// Status is one service's latest decision, for /status, plan and metrics.
type Status struct {
	Service    string    `json:"service"` // subject, e.g. systemd/usm-poller
	Queue      string    `json:"queue"`
	Ready      int       `json:"ready"`
	Consumers  int       `json:"consumers"`
	Desired    int32     `json:"desired"`
	Want       int32     `json:"want"` // what the backlog alone asks for, within bounds
	Min        int32     `json:"min"`
	Max        int32     `json:"max"`
	Reason     string    `json:"reason"`
	Error      string    `json:"error,omitempty"`
	LastChange time.Time `json:"lastChange,omitzero"`
	At         time.Time `json:"at"`
}

// Autoscaler decides autoscaled counts pass after pass; it implements the
// engine's Sizer.
type Autoscaler struct {
	Reader Reader
	Now    func() time.Time
	// OnDecision, when set, is told of every decision (metrics, events),
	// with the context of the Size call that made it (the pass's).
	OnDecision func(context.Context, Status)

	mu     sync.Mutex
	memory map[string]Memory
	status map[string]Status
}

// New returns an autoscaler reading queues with r.
func New(r Reader) *Autoscaler {
	return &Autoscaler{Reader: r, memory: map[string]Memory{}, status: map[string]Status{}}
}

func (a *Autoscaler) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// Size implements engine.Sizer. The first decision for a service starts from
// what runs (so a restarted agent does not undo an earlier scale-up at once),
// or from the declared starting count when nothing runs.
func (a *Autoscaler) Size(ctx context.Context, svc *v1.Service, live controllers.Live) (int32, string) {
	subject := string(svc.Driver) + "/" + svc.Name
	b := BoundsOf(svc.Autoscale)
	a.mu.Lock()
	mem, known := a.memory[subject]
	a.mu.Unlock()
	if !known {
		mem.Current = live.Replicas
		if !live.Exists || live.Replicas == 0 {
			if svc.Replicas != nil {
				mem.Current = *svc.Replicas
			}
		}
	}
	var r Reading
	queue := ""
	if q := svc.Autoscale.AMQP; q != nil {
		queue = q.Queue
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		r.Ready, r.Consumers, r.Err = a.Reader.Read(rctx, q.URLFile, q.Queue)
		cancel()
	} else {
		r.Err = fmt.Errorf("no queue declared")
	}
	now := a.now()
	d, mem := Decide(b, mem, r, now)
	st := Status{Service: subject, Queue: queue, Ready: r.Ready, Consumers: r.Consumers, Desired: d.Desired, Want: d.Want,
		Min: b.Min, Max: b.Max, Reason: d.Reason, LastChange: mem.LastChange, At: now}
	if r.Err != nil {
		st.Error = r.Err.Error()
	}
	a.mu.Lock()
	a.memory[subject] = mem
	a.status[subject] = st
	a.mu.Unlock()
	if a.OnDecision != nil {
		a.OnDecision(ctx, st)
	}
	note := fmt.Sprintf("autoscale: %d (queue %d ready / %d)", d.Desired, r.Ready, b.PerReplica)
	if r.Err != nil {
		note = fmt.Sprintf("autoscale: %d (holding: queue unreadable)", d.Desired)
	}
	return d.Desired, note
}

// Statuses returns the latest decision of every autoscaled service.
func (a *Autoscaler) Statuses() []Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Status, 0, len(a.status))
	for _, s := range a.status {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Service < out[j].Service })
	return out
}

// Memory returns what the autoscaler remembers, to keep across restarts.
func (a *Autoscaler) Memory() map[string]Memory {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]Memory, len(a.memory))
	for k, v := range a.memory {
		out[k] = v
	}
	return out
}

// Restore sets what an earlier run remembered.
func (a *Autoscaler) Restore(m map[string]Memory) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, v := range m {
		a.memory[k] = v
	}
}
