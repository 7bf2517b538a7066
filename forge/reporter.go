package forge

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// maxRemembered bounds the memory of statuses posted.
const maxRemembered = 256

// Poster sends one status; *Client is the real one.
type Poster interface {
	Post(ctx context.Context, s Status) error
}

// Reporter posts the statuses of one host without ever blocking its caller.
type Reporter struct {
	Poster Poster
	Log    *slog.Logger
	// MinInterval spaces posts (default 1s): a flapping host must not use
	// up the forge's rate limit.
	MinInterval time.Duration
	// OnResult, when set, hears every post's outcome (metrics, events).
	OnResult func(s Status, err error)

	mu sync.Mutex
	// want is the newest status not yet posted per commit and context, in
	// the order they were first set.
	want    map[string]Status
	order   []string
	posted  map[string]Status // by commit and context: the last one the forge took
	wake    chan struct{}
	started bool
}

// Set records s as the status to post and returns at once. A status equal
// to the last one posted for its commit and context is dropped; one not yet
// posted is replaced by s (only the newest matters to a reviewer).
func (r *Reporter) Set(s Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initLocked()
	k := key(s)
	if p, ok := r.posted[k]; ok && p == s {
		delete(r.want, k)
		return
	}
	if _, ok := r.want[k]; !ok {
		r.order = append(r.order, k)
	}
	r.want[k] = s
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func key(s Status) string { return s.SHA + " " + s.Context }

func (r *Reporter) initLocked() {
	if r.posted == nil {
		r.posted = map[string]Status{}
		r.want = map[string]Status{}
		r.wake = make(chan struct{}, 1)
	}
}

// next is the oldest status waiting.
func (r *Reporter) next() (Status, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.order) > 0 {
		if s, ok := r.want[r.order[0]]; ok {
			return s, true
		}
		r.order = r.order[1:]
	}
	return Status{}, false
}

// Run posts until ctx ends.
func (r *Reporter) Run(ctx context.Context) {
	r.mu.Lock()
	r.initLocked()
	wake := r.wake
	r.mu.Unlock()
	gap := r.MinInterval
	if gap <= 0 {
		gap = time.Second
	}
	backoff := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		}
		for {
			s, ok := r.next()
			if !ok {
				break
			}
			pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			err := r.Poster.Post(pctx, s)
			cancel()
			if r.OnResult != nil {
				r.OnResult(s, err)
			}
			r.mu.Lock()
			switch {
			case err == nil || errors.Is(err, ErrRejected):
				// Taken, or refused for good: do not resend it.
				if err == nil {
					if len(r.posted) >= maxRemembered {
						clear(r.posted) // old commits: at worst one repeated post
					}
					r.posted[key(s)] = s
				}
				if w, ok := r.want[key(s)]; ok && w == s {
					delete(r.want, key(s))
				}
				backoff = 0
			default:
				backoff = min(max(2*backoff, gap), 2*time.Minute)
			}
			r.mu.Unlock()
			if err != nil && r.Log != nil {
				r.Log.Warn("commit status not posted; the pass is not affected", "context", s.Context, "state", s.State, "sha", s.SHA, "err", err)
			}
			wait := gap
			if backoff > 0 {
				wait = backoff
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}
}
