package supervisor

import (
	"maps"
	"testing"
	"time"
)

func TestRunningSince(t *testing.T) {
	tests := []struct {
		name  string
		procs []Process
		want  map[string]time.Time
	}{
		{"none", nil, nil},
		{"running ones with a start", []Process{
			{Name: "p_00", Group: "p", State: stateRunning, Start: 1764650000},
			{Name: "p_01", Group: "p", State: "STOPPED", Start: 1764640000},
			{Name: "p_02", Group: "p", State: stateRunning},
		}, map[string]time.Time{"p:p_00": time.Unix(1764650000, 0)}},
	}
	for _, tc := range tests {
		if got := runningSince(tc.procs); !maps.EqualFunc(got, tc.want, time.Time.Equal) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
