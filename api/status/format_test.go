package status

import (
	"testing"
	"time"
)

func TestBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 12_900_000: "12.3 MiB", 3 << 30: "3.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestAgo(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		t    time.Time
		want string
	}{
		{time.Time{}, "never"},
		{now.Add(3 * time.Second), "just now"},
		{now.Add(-1400 * time.Millisecond), "1s ago"},
		{now.Add(-90 * time.Second), "2m0s ago"},
		{now.Add(-5 * time.Hour), "5h0m0s ago"},
		{now.Add(-72 * time.Hour), "2026-11-30"},
	} {
		if got := Ago(c.t, now); got != c.want {
			t.Errorf("Ago(now%+v) = %q, want %q", c.t.Sub(now), got, c.want)
		}
	}
}
