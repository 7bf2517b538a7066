package engine

import (
	"context"
	"testing"
	"time"

	"reconciler.dev/reconciler/controllers"
)

func TestSettleFor(t *testing.T) {
	for _, tc := range []struct {
		phase controllers.Phase
		want  time.Duration
	}{
		// A start is counted by Swarm only after its node reports it.
		{controllers.PhaseUp, watchStartSettle},
		// A drain's count drops with the scale-down itself.
		{controllers.PhaseDown, watchSettle},
	} {
		if got := settleFor(tc.phase); got != tc.want {
			t.Errorf("settleFor(%v) = %v, want %v", tc.phase, got, tc.want)
		}
	}
	if watchStartSettle >= watchSafety {
		t.Errorf("watchStartSettle %v must stay below watchSafety %v", watchStartSettle, watchSafety)
	}
}

// The wake-ups of one burst (a stage's containers starting) make one read:
// those that come while the wait settles do not wake it again.
func TestWaitWakeTakesTheBurst(t *testing.T) {
	ctx := context.Background()
	wake := make(chan struct{}, 1)
	wake <- struct{}{}
	settle := 300 * time.Millisecond
	go func() {
		time.Sleep(10 * time.Millisecond)
		wake <- struct{}{} // a second container of the stage
	}()
	if !waitWake(ctx, wake, time.Second, settle) {
		t.Fatal("waitWake with a wake-up pending returned false")
	}
	start := time.Now()
	if waitWake(ctx, wake, 30*time.Millisecond, settle) {
		t.Fatal("a wake-up of the burst already read woke the wait again")
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("the wait without a wake-up returned after %v, before its 30ms", d)
	}
}

func TestWaitWakeTimesOutAndEnds(t *testing.T) {
	wake := make(chan struct{}, 1)
	if waitWake(context.Background(), wake, 10*time.Millisecond, time.Millisecond) {
		t.Fatal("woken with no wake-up")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if waitWake(ctx, wake, time.Hour, time.Millisecond) {
		t.Fatal("woken by a cancelled context")
	}
}
