package v1

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Duration is a time.Duration written the Go way: "60s", "2m", "1h30m".
type Duration struct{ time.Duration }

// NewDuration returns a pointer to d, for literals.
func NewDuration(d time.Duration) *Duration { return &Duration{d} }

// ParseDuration reads a duration, with a message an operator can act on.
func ParseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use Go syntax like 60s, 2m, 1h30m)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	return d, nil
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.Duration.String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	v, err := unmarshalString(b, "a duration must be a string like 60s", ParseDuration)
	if err == nil {
		d.Duration = v
	}
	return err
}

// unmarshalString reads a scalar written as a JSON string with parse, its
// Parse function; notString is the message when b is not a string.
func unmarshalString[T any](b []byte, notString string, parse func(string) (T, error)) (T, error) {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var zero T
		return zero, errors.New(notString)
	}
	return parse(s)
}

// Time is an RFC 3339 time, for maintenance windows.
type Time struct{ time.Time }

// ParseTime reads an RFC 3339 time, with a message an operator can act on.
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid time %q (use RFC 3339, like 2026-12-01T06:00:00Z)", s)
	}
	return t, nil
}

func (t Time) MarshalJSON() ([]byte, error) { return json.Marshal(t.Time.UTC().Format(time.RFC3339)) }

func (t *Time) UnmarshalJSON(b []byte) error {
	v, err := unmarshalString(b, "a time must be an RFC 3339 string", ParseTime)
	if err == nil {
		t.Time = v
	}
	return err
}

// maintenanceLong has Maintenance's fields without its methods, so decoding
// the long form does not recurse.
type maintenanceLong Maintenance

// UnmarshalJSON accepts the short form (true/false) and the long form.
func (m *Maintenance) UnmarshalJSON(b []byte) error {
	var on bool
	if err := json.Unmarshal(b, &on); err == nil {
		*m = Maintenance{Enabled: &on}
		return nil
	}
	var long maintenanceLong
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&long); err != nil {
		return fmt.Errorf("maintenance must be true, false or {enabled, until, reason}: %w", err)
	}
	*m = Maintenance(long)
	return nil
}

// MarshalJSON writes the short form when nothing but enabled is set.
func (m Maintenance) MarshalJSON() ([]byte, error) {
	if m.Until == nil && m.Reason == "" && m.Enabled != nil {
		return json.Marshal(*m.Enabled)
	}
	return json.Marshal(maintenanceLong(m))
}

// ActiveAt says whether maintenance is on at now, and whether a window that
// was on has expired (enabled, with until in the past).
func (m *Maintenance) ActiveAt(now time.Time) (on, expired bool) {
	if m == nil || m.Enabled == nil || !*m.Enabled {
		return false, false
	}
	if m.Until != nil && !now.Before(m.Until.Time) {
		return false, true
	}
	return true, false
}

// Ptr returns a pointer to v, for literals in code and tests.
func Ptr[T any](v T) *T { return &v }

// FailureReport is the short form of onFailure: only report the failure.
const FailureReport = "report"

// failurePolicyLong has FailurePolicy's fields without its methods, so
// decoding the long form does not recurse.
type failurePolicyLong FailurePolicy

// UnmarshalJSON accepts the short form ("report") and the long form.
func (f *FailurePolicy) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if s != FailureReport {
			return fmt.Errorf("onFailure must be %q or {restart, start}, not %q", FailureReport, s)
		}
		*f = FailurePolicy{}
		return nil
	}
	var long failurePolicyLong
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&long); err != nil {
		return fmt.Errorf("onFailure must be %q or {restart, start}: %w", FailureReport, err)
	}
	*f = FailurePolicy(long)
	return nil
}

// MarshalJSON writes the short form when the policy only reports.
func (f FailurePolicy) MarshalJSON() ([]byte, error) {
	if f.ReportOnly() {
		return json.Marshal(FailureReport)
	}
	return json.Marshal(failurePolicyLong(f))
}

// ReportOnly is true for a policy that does nothing but report (and for no
// policy at all: report is the default).
func (f *FailurePolicy) ReportOnly() bool {
	return f == nil || f.Restart == nil && len(f.Start) == 0
}

// String says what a policy does, for the status: "restart 3 per 1m0s,
// start standby", "report".
func (f *FailurePolicy) String() string {
	if f.ReportOnly() {
		return FailureReport
	}
	var parts []string
	if r := f.Restart; r != nil {
		limit, window := "?", "?"
		if r.Limit != nil {
			limit = fmt.Sprint(*r.Limit)
		}
		if r.Window != nil {
			window = r.Window.Duration.String()
		}
		parts = append(parts, "restart "+limit+" per "+window)
	}
	if len(f.Start) > 0 {
		parts = append(parts, "start "+strings.Join(f.Start, ", "))
	}
	return strings.Join(parts, ", ")
}
