package agent

import (
	"context"
	"testing"

	"reconciler.dev/reconciler/api/names"
)

// TestDriftPassDoesNotFetch: a drift-event pass puts drift back to the
// revision in force without looking at git; a new commit waits for the
// next pass that fetches.
func TestDriftPassDoesNotFetch(t *testing.T) {
	h := newPassHost(t)
	h.src.commit("r1", twoServices)
	h.sw.Service("swarm/a", 0)
	h.sw.Service("swarm/b", 0)
	if sum, err := h.pass(); err != nil || sum.Result != names.ResultConverged {
		t.Fatalf("first pass: %+v, %v", sum, err)
	}
	h.src.commit("r2", "  services:\n    - name: a\n      replicas: 3\n    - name: b\n      replicas: 1\n")
	h.sw.Service("swarm/a", 5) // by hand
	h.src.mu.Lock()
	fetches := h.src.fetches
	h.src.mu.Unlock()

	if err := h.a.pass(context.Background(), names.TriggerDriftEvent); err != nil {
		t.Fatalf("drift pass: %v", err)
	}
	h.src.mu.Lock()
	after := h.src.fetches
	h.src.mu.Unlock()
	if after != fetches {
		t.Errorf("the drift pass fetched %d time(s)", after-fetches)
	}
	sum := *h.a.Status().LastPass
	if sum.Trigger != names.TriggerDriftEvent || sum.Revision != "r1" || h.sw.Get("swarm/a").Replicas != 2 {
		t.Errorf("drift pass %+v left a at %d; want r1's 2 enforced", sum, h.sw.Get("swarm/a").Replicas)
	}

	if sum, err := h.pass(); err != nil || sum.Revision != "r2" || h.sw.Get("swarm/a").Replicas != 3 {
		t.Errorf("the next pass: %+v, %v, a at %d; want r2 fetched and applied (3)", sum, err, h.sw.Get("swarm/a").Replicas)
	}
}
