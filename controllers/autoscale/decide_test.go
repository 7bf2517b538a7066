package autoscale

import (
	"errors"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	b := Bounds{Min: 2, Max: 15, PerReplica: 50, MaxStepDown: 1, Cooldown: 2 * time.Minute}
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	type step struct {
		at      time.Duration
		ready   int
		err     error
		desired int32
	}
	cases := []struct {
		name  string
		b     Bounds
		start Memory
		steps []step
	}{
		{"scale up at once, clamped to max", b, Memory{Current: 2}, []step{
			{0, 340, nil, 7}, {time.Second, 10000, nil, 15}, {2 * time.Second, 10000, nil, 15},
		}},
		{"never below min", b, Memory{Current: 2}, []step{{0, 0, nil, 2}, {time.Hour, 0, nil, 2}}},
		{"down only after a cooldown below the threshold, one step per cooldown", b, Memory{Current: 7, LastChange: t0}, []step{
			{0, 0, nil, 7},                 // below from now on
			{time.Minute, 0, nil, 7},       // cooling down
			{2 * time.Minute, 0, nil, 6},   // one step
			{3 * time.Minute, 0, nil, 6},   // next step needs another cooldown
			{4 * time.Minute, 0, nil, 5},   // and gets it
			{4*time.Minute + 1, 0, nil, 5}, // not twice in a row
		}},
		{"a burst during the cooldown restarts it", b, Memory{Current: 5, LastChange: t0}, []step{
			{0, 0, nil, 5},
			{time.Minute, 250, nil, 5}, // back at the threshold: not below
			{2 * time.Minute, 0, nil, 5},
			{3 * time.Minute, 0, nil, 5},
			{4 * time.Minute, 0, nil, 4},
		}},
		{"bigger steps down when allowed", Bounds{Min: 1, Max: 20, PerReplica: 10, MaxStepDown: 5, Cooldown: time.Minute}, Memory{Current: 20, LastChange: t0}, []step{
			{0, 30, nil, 20}, {time.Minute, 30, nil, 15}, {2 * time.Minute, 30, nil, 10}, {3 * time.Minute, 30, nil, 5}, {4 * time.Minute, 30, nil, 3},
		}},
		{"unreadable queue holds, never to zero", b, Memory{Current: 7, LastChange: t0}, []step{
			{0, 0, errors.New("connection refused"), 7}, {time.Hour, 0, errors.New("connection refused"), 7},
		}},
		{"unreadable queue holds within bounds", b, Memory{Current: 40}, []step{{0, 0, errors.New("down"), 15}}},
		{"bounds raised in git lift the count at once", Bounds{Min: 4, Max: 15, PerReplica: 50, MaxStepDown: 1, Cooldown: time.Minute}, Memory{Current: 2}, []step{{0, 0, nil, 4}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mem := c.start
			for i, s := range c.steps {
				var d Decision
				d, mem = Decide(c.b, mem, Reading{Ready: s.ready, Err: s.err}, at(s.at))
				if d.Desired != s.desired {
					t.Fatalf("step %d (t+%s, %d ready): desired %d, want %d (%s)", i, s.at, s.ready, d.Desired, s.desired, d.Reason)
				}
				if d.Desired < c.b.Min || d.Desired > c.b.Max {
					t.Fatalf("step %d: %d outside [%d,%d]", i, d.Desired, c.b.Min, c.b.Max)
				}
			}
		})
	}
}

// FuzzDecide: whatever the readings and times, the count stays within
// bounds and never moves down twice within a cooldown.
func FuzzDecide(f *testing.F) {
	f.Add(int32(2), int32(15), int32(50), int32(1), int64(120), []byte{0, 10, 200, 3, 0, 0, 0})
	f.Fuzz(func(t *testing.T, lo, hi, per, step int32, cool int64, readings []byte) {
		if lo < 0 || hi < 1 || lo > hi || per < 1 || step < 1 || cool < 0 || cool > 1e6 {
			return
		}
		b := Bounds{Min: lo, Max: hi, PerReplica: per, MaxStepDown: step, Cooldown: time.Duration(cool) * time.Second}
		mem := Memory{Current: lo}
		now := time.Unix(0, 0)
		var lastDown time.Time
		for i, r := range readings {
			now = now.Add(time.Duration(r) * time.Second)
			prev := mem.Current
			var read Reading
			if r%7 == 3 {
				read.Err = errors.New("x")
			} else {
				read.Ready = int(r) * 37
			}
			var d Decision
			d, mem = Decide(b, mem, read, now)
			if d.Desired < lo || d.Desired > hi {
				t.Fatalf("reading %d: %d outside [%d,%d]", i, d.Desired, lo, hi)
			}
			if d.Desired < prev && prev <= hi {
				if !lastDown.IsZero() && now.Sub(lastDown) < b.Cooldown {
					t.Fatalf("reading %d: stepped down %s after the last step, cooldown %s", i, now.Sub(lastDown), b.Cooldown)
				}
				if prev-d.Desired > step {
					t.Fatalf("reading %d: stepped down by %d > %d", i, prev-d.Desired, step)
				}
				lastDown = now
			}
		}
	})
}
