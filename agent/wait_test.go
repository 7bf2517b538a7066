package agent

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestNextWaitSpreadsARestartedFleet: 10,000 agents started in the same
// second poll again spread evenly: their second polls, and their third,
// land in every second of a 30s interval about as often (no second above
// 1.25 times the mean), where ±10% alone puts the second polls in 6
// seconds of the 30 (5 times the mean).
func TestNextWaitSpreadsARestartedFleet(t *testing.T) {
	const agents, interval = 10_000, 30 * time.Second
	r := rand.New(rand.NewPCG(1, 2))
	peak := func(spread bool) float64 {
		var perSecond, perThird [30]int
		for range agents {
			second := NextWait(interval, spread, r.Float64())
			third := second + NextWait(interval, false, r.Float64())
			perSecond[int(second/time.Second)%30]++
			if spread {
				perThird[int(third/time.Second)%30]++
			}
		}
		m := 0
		for i, n := range perSecond {
			m = max(m, n, perThird[i])
		}
		return float64(m) / (agents / 30.0)
	}
	if p := peak(true); p > 1.25 {
		t.Errorf("with the first wait spread: the busiest second has %.2f times the mean", p)
	}
	if p := peak(false); p < 4 {
		t.Errorf("±10%% alone: the busiest second has %.2f times the mean; the test no longer shows the herd", p)
	}
	for range 1000 {
		x := r.Float64()
		if w := NextWait(interval, false, x); w < 27*time.Second || w > 33*time.Second {
			t.Fatalf("a later wait of %s for r=%v, want 27s..33s", w, x)
		}
		if w := NextWait(interval, true, x); w < 15*time.Second || w > 45*time.Second {
			t.Fatalf("the first wait of %s for r=%v, want 15s..45s", w, x)
		}
	}
}
