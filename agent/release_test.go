package agent

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// A burst of reads gives one release, once the burst is over; reads after
// it give another.
func TestReleaserReleasesOnceABurstIsOver(t *testing.T) {
	var n atomic.Int32
	r := &releaser{kick: make(chan struct{}, 1), quiet: 200 * time.Millisecond, free: func() { n.Add(1) }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.run(ctx)
	h := r.after(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) }))
	burst := func() {
		for range 20 {
			getPath(h, "/status")
		}
	}
	waitFor := func(want int32) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for n.Load() < want {
			if time.Now().After(deadline) {
				t.Fatalf("%d releases, want %d", n.Load(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	burst()
	if got := n.Load(); got != 0 {
		t.Errorf("%d releases during the burst, want none before it is quiet", got)
	}
	waitFor(1)
	time.Sleep(3 * r.quiet) // nothing more was asked: no second release
	if got := n.Load(); got != 1 {
		t.Errorf("%d releases after one burst, want 1", got)
	}
	burst()
	waitFor(2)
}
