package agent

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"reconciler.dev/reconciler/api/status"
	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers/autoscale"
	"reconciler.dev/reconciler/controllers/failure"
	"reconciler.dev/reconciler/desired/source"
)

// State is what the agent keeps in --state-dir across restarts.
type State struct {
	// Good is the revision in force: the newest one that validated. It is
	// written before it is applied.
	Good *GoodRevision `json:"good,omitempty"`
	// InProgress is the pass that was running; a pass that ends clears it,
	// so one found at start-up was interrupted.
	InProgress *PassRecord `json:"inProgress,omitempty"`
	// DriftSince remembers when each drift was first seen ("subject field").
	DriftSince map[string]time.Time `json:"driftSince,omitempty"`
	// Autoscale is what the autoscaler remembers per service (cooldowns).
	Autoscale map[string]autoscale.Memory `json:"autoscale,omitempty"`
	// Failures is what the failure policies remember per service (restarts
	// within their window, failures, standbys started).
	Failures map[string]failure.Memory `json:"failures,omitempty"`
	// Healthy is the last revision whose pass ended converged and ready:
	// what a quarantine goes back to (quarantine.go).
	Healthy *GoodRevision `json:"healthy,omitempty"`
	// HealthySince is when the passes of the revision in force began to
	// end healthy without a failure since; zero while they do not.
	HealthySince time.Time `json:"healthySince,omitzero"`
	// Reverted names the revision quarantined when the one in force came
	// back in its place.
	Reverted string `json:"reverted,omitempty"`
	// Quarantined are the revisions that did not become healthy in time,
	// never tried again until an operator releases them.
	Quarantined []status.QuarantinedRevision `json:"quarantined,omitempty"`
}

// GoodRevision is a validated revision and the host's effective state in it,
// enough to enforce it with no access to git.
type GoodRevision struct {
	Revision source.Revision   `json:"revision"`
	Host     string            `json:"host"`
	Labels   map[string]string `json:"labels,omitempty"`
	Spec     v1.HostSpec       `json:"spec"`
	Since    time.Time         `json:"since"`
}

// PassRecord is the record of a pass in progress.
type PassRecord struct {
	ID       string    `json:"id"`
	Revision string    `json:"revision"`
	Started  time.Time `json:"started"`
	Actions  int       `json:"actions"`
	Stages   int       `json:"stages"`
}

// stateFile is the envelope on disk: the state and a checksum over it, so a
// truncated or garbled file is detected and never trusted.
type stateFile struct {
	Version int             `json:"version"`
	SHA256  string          `json:"sha256"`
	State   json.RawMessage `json:"state"`
}

const stateVersion = 1

// ErrCorruptState says the state file exists but cannot be trusted.
var ErrCorruptState = errors.New("state file is corrupt")

func statePath(dir string) string { return filepath.Join(dir, "state.json") }

// LoadState reads the state. A missing file is an empty state; a corrupt one
// is ErrCorruptState (the caller rebuilds from git).
func LoadState(dir string) (*State, error) {
	b, err := os.ReadFile(statePath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return &State{}, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeState(b)
}

func decodeState(b []byte) (*State, error) {
	var f stateFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptState, err)
	}
	if f.Version != stateVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrCorruptState, f.Version, stateVersion)
	}
	// The checksum covers the compact form: the file is indented for people.
	var compact bytes.Buffer
	if err := json.Compact(&compact, f.State); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptState, err)
	}
	sum := sha256.Sum256(compact.Bytes())
	if hex.EncodeToString(sum[:]) != f.SHA256 {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorruptState)
	}
	var st State
	if err := json.Unmarshal(f.State, &st); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptState, err)
	}
	return &st, nil
}

func encodeState(st *State) ([]byte, error) {
	body, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	return json.MarshalIndent(stateFile{Version: stateVersion, SHA256: hex.EncodeToString(sum[:]), State: body}, "", "  ")
}

// SaveState writes the state atomically: a temporary file, fsync, rename,
// fsync of the folder. A crash leaves either the old file or the new one.
func SaveState(dir string, st *State) error {
	b, err := encodeState(st)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".state-*.tmp")
	if err != nil {
		return fmt.Errorf("writing state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("writing state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing state: %w", err)
	}
	if err := os.Rename(tmp.Name(), statePath(dir)); err != nil {
		return fmt.Errorf("writing state: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
