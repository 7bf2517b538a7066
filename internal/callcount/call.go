package callcount

import (
	"maps"
	"slices"
	"sync"
	"time"
)

// Kind sorts a counted call.
type Kind int

const (
	// KindRead is a call that only reads state.
	KindRead Kind = iota
	// KindMutating is a call that changes state (or may).
	KindMutating
	// KindHousekeeping is a D-Bus call the bus daemon answers itself (Hello,
	// AddMatch, ...): it is part of running a connection, not of talking to
	// systemd. Docker calls are never housekeeping.
	KindHousekeeping
)

func (k Kind) String() string {
	switch k {
	case KindRead:
		return "read"
	case KindMutating:
		return "mutating"
	case KindHousekeeping:
		return "housekeeping"
	}
	return "unknown"
}

// Call is one counted call as the proxy saw it.
type Call struct {
	// Time is when the call arrived at the proxy.
	Time time.Time
	// Conn numbers the client connection the call came on, from 1, in the
	// order the proxy accepted connections.
	Conn uint64
	// Key is what Counts counts: "POST /services/{id}/update" for Docker,
	// the member name ("StartUnit") for D-Bus.
	Key  string
	Kind Kind

	// Method is the HTTP method (Docker only).
	Method string
	// Path is the request path as sent, query excluded (Docker), or the
	// object path (D-Bus).
	Path string

	// Interface, Member, Destination and Serial are the D-Bus message's
	// header fields (D-Bus only; Interface and Destination may be empty).
	Interface   string
	Member      string
	Destination string
	Serial      uint32
}

// tally is the counting state both proxies share the shape of.
type tally struct {
	mu     sync.Mutex
	counts map[string]int
	log    []Call
	kinds  [3]int
}

func (t *tally) add(c Call) {
	t.mu.Lock()
	defer t.mu.Unlock()
	// Taken under the lock so that Log is in arrival order and its times
	// never go backwards.
	c.Time = time.Now()
	if t.counts == nil {
		t.counts = map[string]int{}
	}
	t.counts[c.Key]++
	t.log = append(t.log, c)
	if c.Kind >= 0 && int(c.Kind) < len(t.kinds) {
		t.kinds[c.Kind]++
	}
}

func (t *tally) snapshot() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := maps.Clone(t.counts)
	if m == nil {
		m = map[string]int{}
	}
	return m
}

func (t *tally) kind(k Kind) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.kinds[k]
}

func (t *tally) total() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.log)
}

func (t *tally) calls() []Call {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.log)
}

func (t *tally) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts = nil
	t.log = nil
	t.kinds = [3]int{}
}
