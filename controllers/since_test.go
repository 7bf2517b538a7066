package controllers

import (
	"testing"
	"time"
)

func TestEarliestSince(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   map[string]time.Time
		want time.Time
	}{
		{"none", nil, time.Time{}},
		{"zero ignored", map[string]time.Time{"a": {}, "b": t0}, t0},
		{"earliest", map[string]time.Time{"a": t0.Add(time.Hour), "b": t0, "c": t0.Add(time.Minute)}, t0},
	}
	for _, tc := range tests {
		if got := EarliestSince(tc.in); !got.Equal(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
