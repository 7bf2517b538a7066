package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"reconciler.dev/reconciler/api/status"
)

// DefaultConcurrency is how many agents `fleet status` asks at once: enough
// that 1,000 agents answering in 50 ms each take about half a second, few
// enough that the asking host keeps file descriptors and the agents' network
// is not hit by a thousand connections in the same millisecond.
const DefaultConcurrency = 100

// Asker asks agents for their /status: at most Concurrency at once (default
// DefaultConcurrency), each within Timeout (a deadline per agent, so one
// that hangs costs one slot for Timeout, never the whole view), sending
// Token as a bearer token when it is not empty (agents off loopback want one).
type Asker struct {
	Timeout     time.Duration
	Token       string
	Concurrency int
}

// Collect asks every agent and returns each one's answer, by address.
func (q Asker) Collect(ctx context.Context, agents []string) map[string]Answer {
	n := q.Concurrency
	if n <= 0 {
		n = DefaultConcurrency
	}
	n = min(n, len(agents))
	work := make(chan string)
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := make(map[string]Answer, len(agents))
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range work {
				st, err := fetch(ctx, a, q.Timeout, q.Token)
				mu.Lock()
				out[a] = Answer{Status: st, Err: err}
				mu.Unlock()
			}
		}()
	}
	for _, a := range agents {
		work <- a
	}
	close(work)
	wg.Wait()
	return out
}

func fetch(ctx context.Context, addr string, timeout time.Duration, token string) (*status.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	raw, code, err := status.Get(ctx, addr, "/status", token)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("/status: %d %s", code, http.StatusText(code))
	}
	var st status.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("/status: %w", err)
	}
	return &st, nil
}
