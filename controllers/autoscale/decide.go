package autoscale

import (
	"fmt"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
)

// Memory is what the rule remembers of one service between passes.
type Memory struct {
	// Current is the count last decided (or, at first, what ran).
	Current int32 `json:"current"`
	// LastChange is when Current last changed.
	LastChange time.Time `json:"lastChange,omitzero"`
	// BelowSince is when the queue went below the threshold for Current,
	// zero while it is not below.
	BelowSince time.Time `json:"belowSince,omitzero"`
}

// Reading is one look at the queue.
type Reading struct {
	Ready     int
	Consumers int
	Err       error
}

// Decision is the rule's answer and why.
type Decision struct {
	Desired int32
	Want    int32 // clamp(ceil(ready/mpr), min, max), before cooldown
	Reason  string
}

// Bounds are a service's autoscale settings, defaults applied.
type Bounds struct {
	Min, Max, PerReplica, MaxStepDown int32
	Cooldown                          time.Duration
}

// BoundsOf reads the bounds of a defaulted service.
func BoundsOf(a *v1.Autoscale) Bounds {
	b := Bounds{Min: 0, Max: 1, PerReplica: v1.DefaultMessagesPerReplica, MaxStepDown: v1.DefaultMaxStepDown, Cooldown: v1.DefaultCooldown}
	if a.Min != nil {
		b.Min = *a.Min
	}
	if a.Max != nil {
		b.Max = *a.Max
	}
	if a.MessagesPerReplica != nil && *a.MessagesPerReplica > 0 {
		b.PerReplica = *a.MessagesPerReplica
	}
	if a.MaxStepDown != nil && *a.MaxStepDown > 0 {
		b.MaxStepDown = *a.MaxStepDown
	}
	if a.Cooldown != nil {
		b.Cooldown = a.Cooldown.Duration
	}
	return b
}

func clamp(n, lo, hi int32) int32 { return max(lo, min(n, hi)) }

// Decide applies the rule to one reading and returns the decision and the
// memory to keep. It is pure.
func Decide(b Bounds, mem Memory, r Reading, now time.Time) (Decision, Memory) {
	cur := clamp(mem.Current, b.Min, b.Max)
	if r.Err != nil {
		mem.BelowSince = time.Time{}
		if cur != mem.Current {
			mem.LastChange = now
		}
		mem.Current = cur
		return Decision{Desired: cur, Want: cur, Reason: fmt.Sprintf("queue unreadable, holding %d: %v", cur, r.Err)}, mem
	}
	ready := int32(min(r.Ready, 1<<30))
	want := clamp((ready+b.PerReplica-1)/b.PerReplica, b.Min, b.Max)
	d := Decision{Want: want}
	switch {
	case want > cur:
		d.Desired, d.Reason = want, fmt.Sprintf("scale up: %d ready needs %d", r.Ready, want)
		mem.LastChange, mem.BelowSince = now, time.Time{}
	case want == cur:
		d.Desired, d.Reason = cur, "steady"
		mem.BelowSince = time.Time{}
	default:
		if mem.BelowSince.IsZero() {
			mem.BelowSince = now
		}
		waited := now.Sub(mem.BelowSince)
		sinceChange := now.Sub(mem.LastChange)
		if waited >= b.Cooldown && (mem.LastChange.IsZero() || sinceChange >= b.Cooldown) {
			step := min(b.MaxStepDown, cur-want)
			d.Desired = cur - step
			d.Reason = fmt.Sprintf("scale down by %d after %s below %d", step, waited.Round(time.Second), cur*b.PerReplica)
			mem.LastChange, mem.BelowSince = now, now
		} else {
			d.Desired = cur
			left := b.Cooldown - min(waited, sinceChange)
			if mem.LastChange.IsZero() {
				left = b.Cooldown - waited
			}
			d.Reason = fmt.Sprintf("cooldown: %d would do, stepping down in %s", want, left.Round(time.Second))
		}
	}
	if d.Desired != mem.Current {
		mem.LastChange = now // includes a count moved by new bounds in git
	}
	mem.Current = d.Desired
	return d, mem
}
