package notify

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of a Notifier.
const (
	DefaultQueue      = 64
	DefaultRefresh    = 20 * time.Minute // < alertTTL: a firing alert stays open
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 2 * time.Minute
)

// Notifier deduplicates a host's conditions and hands each change to every
// target's queue. Notify never blocks.
type Notifier struct {
	Host string
	Log  *slog.Logger
	// Refresh re-sends to Alertmanager a condition still firing after this
	// long, so it does not close the alert (default DefaultRefresh).
	Refresh time.Duration
	// Queue bounds each target's queue (default DefaultQueue).
	Queue int
	// MinBackoff and MaxBackoff space retries of a target that is down.
	MinBackoff, MaxBackoff time.Duration

	mu      sync.Mutex
	targets []*target
	// firing holds the conditions firing now, by key: the event last sent.
	firing map[string]Event
}

type target struct {
	s       sender
	events  map[string]bool // nil: all
	mu      sync.Mutex
	queue   []Event
	wake    chan struct{}
	dropped atomic.Int64
	sent    atomic.Int64
	failed  atomic.Int64
}

// New builds a Notifier for host over the targets of c.
func New(host string, c *Config, log *slog.Logger) *Notifier {
	n := &Notifier{Host: host, Log: log, firing: map[string]Event{}}
	for _, tc := range c.Targets {
		t := &target{s: sender{cfg: tc, client: &http.Client{Timeout: 15 * time.Second}}, wake: make(chan struct{}, 1)}
		if len(tc.Events) > 0 {
			t.events = map[string]bool{}
			for _, e := range tc.Events {
				t.events[e] = true
			}
		}
		n.targets = append(n.targets, t)
	}
	return n
}

// Fire says the condition typ (of subject, if any) holds. A condition
// already firing for the same revision is not sent again until Refresh.
func (n *Notifier) Fire(typ, subject, revision, pass, message string) {
	n.notify(Event{Type: typ, Firing: true, Subject: subject, Revision: revision, Pass: pass, Message: message})
}

// Resolve says the condition typ (of subject) no longer holds; it is sent
// only if the condition was firing.
func (n *Notifier) Resolve(typ, subject, revision, pass, message string) {
	n.notify(Event{Type: typ, Subject: subject, Revision: revision, Pass: pass, Message: message})
}

func (n *Notifier) notify(e Event) {
	if n == nil {
		return
	}
	e.Host, e.Time = n.Host, time.Now()
	n.mu.Lock()
	if n.firing == nil {
		n.firing = map[string]Event{}
	}
	prev, was := n.firing[e.key()]
	switch {
	case e.Firing && was && prev.Revision == e.Revision:
		n.mu.Unlock()
		return
	case !e.Firing && !was:
		n.mu.Unlock()
		return
	}
	e.StartsAt = e.Time
	if was {
		e.StartsAt = prev.StartsAt
	}
	if e.Firing {
		n.firing[e.key()] = e
	} else {
		delete(n.firing, e.key())
	}
	n.mu.Unlock()
	for _, t := range n.targets {
		if t.events == nil || t.events[e.Type] {
			n.enqueue(t, e)
		}
	}
}

func (n *Notifier) enqueue(t *target, e Event) {
	bound := n.Queue
	if bound <= 0 {
		bound = DefaultQueue
	}
	t.mu.Lock()
	if len(t.queue) >= bound {
		t.queue = t.queue[1:]
		t.dropped.Add(1)
		if n.Log != nil {
			n.Log.Warn("notification queue full; the oldest is dropped", "target", t.s.cfg.Name)
		}
	}
	t.queue = append(t.queue, e)
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// Stats are one target's counters.
type Stats struct {
	Name                  string
	Sent, Failed, Dropped int64
	Queued                int
}

// Stats reports every target's counters.
func (n *Notifier) Stats() []Stats {
	out := make([]Stats, 0, len(n.targets))
	for _, t := range n.targets {
		t.mu.Lock()
		q := len(t.queue)
		t.mu.Unlock()
		out = append(out, Stats{Name: t.s.cfg.Name, Sent: t.sent.Load(), Failed: t.failed.Load(), Dropped: t.dropped.Load(), Queued: q})
	}
	return out
}

// refresh re-sends to Alertmanager targets every condition still firing
// that was last sent more than Refresh ago: Alertmanager closes an alert at
// its endsAt, and a condition may hold for hours with nothing new to say.
// Chat and webhook targets hear a condition once.
func (n *Notifier) refresh(now time.Time) {
	every := n.Refresh
	if every <= 0 {
		every = DefaultRefresh
	}
	n.mu.Lock()
	var due []Event
	for k, e := range n.firing {
		if now.Sub(e.Time) >= every {
			e.Time = now
			n.firing[k] = e
			due = append(due, e)
		}
	}
	n.mu.Unlock()
	for _, e := range due {
		for _, t := range n.targets {
			if t.s.cfg.Kind == KindAlertmanager && (t.events == nil || t.events[e.Type]) {
				n.enqueue(t, e)
			}
		}
	}
}

// Run sends until ctx ends, one goroutine per target.
func (n *Notifier) Run(ctx context.Context) {
	every := n.Refresh
	if every <= 0 {
		every = DefaultRefresh
	}
	go func() {
		tick := time.NewTicker(max(every/10, 10*time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				n.refresh(now)
			}
		}
	}()
	var wg sync.WaitGroup
	for _, t := range n.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.run(ctx, t)
		}()
	}
	wg.Wait()
}

func (n *Notifier) run(ctx context.Context, t *target) {
	lo, hi := n.MinBackoff, n.MaxBackoff
	if lo <= 0 {
		lo = DefaultMinBackoff
	}
	if hi <= 0 {
		hi = DefaultMaxBackoff
	}
	backoff := time.Duration(0)
	for {
		t.mu.Lock()
		empty := len(t.queue) == 0
		var e Event
		if !empty {
			e = t.queue[0]
		}
		t.mu.Unlock()
		if empty {
			select {
			case <-ctx.Done():
				return
			case <-t.wake:
			}
			continue
		}
		err := t.s.send(ctx, e)
		if ctx.Err() != nil {
			return
		}
		if err == nil || errors.Is(err, ErrRejected) {
			t.mu.Lock()
			// The head may have been dropped meanwhile; drop it only if it
			// is still the one sent.
			if len(t.queue) > 0 && t.queue[0].Time.Equal(e.Time) && t.queue[0].key() == e.key() {
				t.queue = t.queue[1:]
			}
			t.mu.Unlock()
			backoff = 0
			if err == nil {
				t.sent.Add(1)
				continue
			}
		}
		t.failed.Add(1)
		if n.Log != nil {
			n.Log.Warn("notification not sent; the pass is not affected", "target", t.s.cfg.Name, "event", e.Type, "state", e.state(), "err", err)
		}
		if errors.Is(err, ErrRejected) {
			continue
		}
		backoff = min(max(2*backoff, lo), hi)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}
