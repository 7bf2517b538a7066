package agent

import (
	"context"
	"net/http"
	"runtime/debug"
	"time"
)

// release hands the garbage of a burst of work back to the system before
// the agent waits. At 1,000 services a pass leaves some 4 MB (the plan, the
// live state, the service list decoded), a read of /status or /metrics,
// or a collection of resource figures, about as much; the Go runtime would
// keep those pages until its scavenger, paced at a fraction of a CPU, gets
// to them, and the next burst grows the heap's goal from there. One GC and
// a scavenge cost a few milliseconds at that size, for an RSS about a fifth
// lower whether the agent then waits 30 s or passes again after 1 s
// (hack/bench, scenarios 3 and 4; docs/BENCHMARKS.md). Before the service
// list was decoded one service at a time (swarm.DecodeServices) a pass left
// some 10 MB and faulting it in again cost twice the CPU of a pass, so only
// waits of 5 s or more released.
func release() { debug.FreeOSMemory() }

// releaser releases once the agent has been quiet for a while after work
// done outside a pass (the agent's loop releases after each pass itself):
// one release for a burst of requests, not one per request.
type releaser struct {
	kick  chan struct{} // buffered 1: a kick while one is pending is the same
	quiet time.Duration
	free  func() // release (New); tests count calls
}

// soon asks for a release once things are quiet; it never blocks.
func (r *releaser) soon() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// after serves h, then asks for a release.
func (r *releaser) after(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h.ServeHTTP(w, req)
		r.soon()
	})
}

// run releases r.quiet after the last kick, until ctx ends.
func (r *releaser) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		}
		timer := time.NewTimer(r.quiet)
	quiet:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-r.kick:
				timer.Reset(r.quiet)
			case <-timer.C:
				break quiet
			}
		}
		r.free()
	}
}
