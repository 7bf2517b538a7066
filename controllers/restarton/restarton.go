package restarton

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"reconciler.dev/reconciler/controllers"
)

// Field is the field of a restartOn action.
const Field = "restartOn"

// Record is the restartOn value last applied to a service, and since when:
// every replica started before Since runs with an older value.
type Record struct {
	Value string    `json:"value"`
	Since time.Time `json:"since"`
}

// None stands for no value applied yet, where a plan shows the live value.
const None = "(none)"

// Store keeps the records in a folder. The zero Store (no Dir) keeps
// nothing: Load finds no record and Save fails, naming the missing folder.
type Store struct {
	Dir string
}

// ErrNoDir says the store has no folder to keep records in.
var ErrNoDir = errors.New("no folder for restartOn records (--state-dir)")

func (s *Store) path(subject string) string {
	return filepath.Join(s.Dir, url.PathEscape(subject)+".json")
}

// Load returns the record of subject; ok is false when there is none.
func (s *Store) Load(subject string) (r Record, ok bool, err error) {
	if s == nil || s.Dir == "" {
		return Record{}, false, nil
	}
	b, err := os.ReadFile(s.path(subject))
	if errors.Is(err, os.ErrNotExist) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("%s: reading its restartOn record: %w", subject, err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, false, fmt.Errorf("%s: restartOn record %s: %w", subject, s.path(subject), err)
	}
	return r, true, nil
}

// Save writes the record of subject whole (a temporary file, renamed).
func (s *Store) Save(subject string, r Record) error {
	if s == nil || s.Dir == "" {
		return fmt.Errorf("%s: %w", subject, ErrNoDir)
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return fmt.Errorf("%s: restartOn records: %w", subject, err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("%s: %w", subject, err)
	}
	tmp, err := os.CreateTemp(s.Dir, ".record-*")
	if err != nil {
		return fmt.Errorf("%s: restartOn record: %w", subject, err)
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("%s: writing its restartOn record: %w", subject, err)
	}
	if err := os.Rename(tmp.Name(), s.path(subject)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("%s: writing its restartOn record: %w", subject, err)
	}
	return nil
}

// Seen is what a driver observed of a service's record, for its pure plan.
type Seen struct {
	Record Record
	Has    bool
}

// Due says whether a replica running since started must be restarted for
// the declared value: always when the record is missing or holds another
// value (the change is not applied yet), else when it started before the
// record's Since (a rolling restart cut short). It is pure.
func (s Seen) Due(value string, started time.Time) bool {
	if value == "" {
		return false
	}
	if !s.Has || s.Record.Value != value {
		return true
	}
	return started.Before(s.Record.Since)
}

// From is the live value a plan shows: the recorded value, None without a
// record, and for a rolling restart cut short the value "(part)".
func (s Seen) From(value string) string {
	switch {
	case !s.Has:
		return None
	case s.Record.Value == value:
		return value + " (part)"
	}
	return s.Record.Value
}

// Plan is the restartOn part of a service's plan on a driver that keeps a
// record: of the replicas running now (in the order they are to be
// restarted, as far as the declared count goes), those Due for value are
// the Steps of one OpRestart action on Field, from what seen shows (From)
// to value; no action when no value is declared or nothing is due. started
// tells a replica's start time. S is the driver's own Steps type, the one
// its Apply asserts. It is pure.
func Plan[S ~[]R, R any](base controllers.Action, seen Seen, value string, running S, started func(R) time.Time) []controllers.Action {
	if value == "" {
		return nil
	}
	var steps S
	for _, r := range running {
		if seen.Due(value, started(r)) {
			steps = append(steps, r)
		}
	}
	if len(steps) == 0 {
		return nil
	}
	a := base.Set(Field, seen.From(value), value, controllers.OpRestart)
	a.Steps = steps
	return []controllers.Action{a}
}

// Next is the record to save before a rolling restart to value begins at
// now: the one seen when it already holds the value (carrying on a restart
// cut short keeps its Since), else a new one whose Since is the next whole
// second, as start times are told in whole seconds (supervisord's): the
// caller waits until Since (Wait) before it starts anything, so whatever
// started before the record is due and whatever starts after is not.
func (s Seen) Next(value string, now time.Time) (Record, bool) {
	if s.Has && s.Record.Value == value {
		return s.Record, false
	}
	return Record{Value: value, Since: now.Truncate(time.Second).Add(time.Second)}, true
}

// Wait waits until the record's Since has come (at most a second after
// Next made it), or ctx is done.
func Wait(ctx context.Context, r Record) error {
	select {
	case <-time.After(time.Until(r.Since)):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Begin records value for subject, since the next whole second, unless
// seen already holds it, and waits for that second: replicas started or
// restarted from then on run with the value, those started before are due.
// Drivers call it before they start or restart anything of a service that
// declares restartOn ("" records nothing).
func (s *Store) Begin(ctx context.Context, subject string, seen Seen, value string) error {
	if value == "" {
		return nil
	}
	rec, changed := seen.Next(value, time.Now())
	if !changed {
		return nil
	}
	if err := s.Save(subject, rec); err != nil {
		return err
	}
	if err := Wait(ctx, rec); err != nil {
		return fmt.Errorf("%s: abandoned before starting anything: %w", subject, err)
	}
	return nil
}
