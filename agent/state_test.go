package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/desired/source"
)

func sampleState() *State {
	return &State{
		Good: &GoodRevision{
			Revision: source.Revision{ID: strings.Repeat("ab", 20), Ref: "refs/heads/main", Message: "maintenance on"},
			Host:     "fp-01",
			Spec: v1.HostSpec{
				Maintenance: &v1.Maintenance{Enabled: v1.Ptr(true)},
				Services:    []v1.Service{{Name: "broker", Replicas: v1.Ptr[int32](1), StopTimeout: v1.NewDuration(10 * time.Second)}},
			},
			Since: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC),
		},
		InProgress: &PassRecord{ID: "p1", Revision: "abc", Actions: 5, Stages: 3},
		DriftSince: map[string]time.Time{"swarm/broker replicas": time.Date(2026, 11, 22, 11, 0, 0, 0, time.UTC)},
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if err := SaveState(dir, sampleState()); err != nil {
		t.Fatal(err)
	}
	got, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Good.Revision.ID != sampleState().Good.Revision.ID || *got.Good.Spec.Services[0].Replicas != 1 ||
		got.Good.Spec.Services[0].StopTimeout.Duration != 10*time.Second || got.InProgress.Actions != 5 ||
		!got.DriftSince["swarm/broker replicas"].Equal(sampleState().DriftSince["swarm/broker replicas"]) {
		t.Errorf("round trip lost data: %+v", got)
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("state dir holds %d entries, want only state.json", len(entries))
	}
}

func TestStateMissingIsEmpty(t *testing.T) {
	st, err := LoadState(t.TempDir())
	if err != nil || st.Good != nil {
		t.Errorf("missing state: %+v, %v", st, err)
	}
}

func TestStateCorruptionDetected(t *testing.T) {
	good, err := encodeState(sampleState())
	if err != nil {
		t.Fatal(err)
	}
	flipped := []byte(string(good))
	i := strings.Index(string(flipped), "maintenance on")
	flipped[i] = 'M' // still valid JSON, wrong checksum
	cases := map[string][]byte{
		"truncated":     good[:len(good)/2],
		"empty":         {},
		"garbage":       []byte("\x00\x01not json"),
		"flipped":       flipped,
		"wrong version": []byte(strings.Replace(string(good), `"version": 1`, `"version": 9`, 1)),
		"unknown field": []byte(strings.Replace(string(good), `"version": 1`, `"version": 1, "x": 2`, 1)),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "state.json"), b, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadState(dir); !errors.Is(err, ErrCorruptState) {
				t.Errorf("LoadState = %v, want ErrCorruptState", err)
			}
		})
	}
}

// FuzzStateFile: the loader never panics and never accepts a file that was
// not written by SaveState (checksum), whatever the bytes.
func FuzzStateFile(f *testing.F) {
	good, _ := encodeState(sampleState())
	f.Add(good)
	f.Add([]byte(`{"version":1,"sha256":"","state":{}}`))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeState(b)
		if err != nil {
			return
		}
		again, err := encodeState(st)
		if err != nil {
			t.Fatalf("accepted state does not encode: %v", err)
		}
		if _, err := decodeState(again); err != nil {
			t.Fatalf("accepted state does not round-trip: %v", err)
		}
	})
}
