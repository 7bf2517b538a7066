package restarton

import (
	"testing"
	"time"
)

func TestDue(t *testing.T) {
	since := time.Date(2026, 12, 2, 4, 0, 1, 0, time.UTC)
	rec := Seen{Record: Record{Value: "v2", Since: since}, Has: true}
	cases := []struct {
		name    string
		seen    Seen
		value   string
		started time.Time
		want    bool
		from    string
	}{
		{"no value declared", Seen{}, "", since, false, None},
		{"no record", Seen{}, "v2", since.Add(time.Hour), true, None},
		{"another value recorded", Seen{Record: Record{Value: "v1", Since: since}, Has: true}, "v2", since.Add(time.Hour), true, "v1"},
		{"started before the change: cut short", rec, "v2", since.Add(-time.Second), true, "v2 (part)"},
		{"started at its second", rec, "v2", since, false, "v2 (part)"},
		{"started after", rec, "v2", since.Add(time.Second), false, "v2 (part)"},
	}
	for _, tc := range cases {
		if got := tc.seen.Due(tc.value, tc.started); got != tc.want {
			t.Errorf("%s: due %v, want %v", tc.name, got, tc.want)
		}
		if got := tc.seen.From(tc.value); tc.value != "" && got != tc.from {
			t.Errorf("%s: from %q, want %q", tc.name, got, tc.from)
		}
	}
}

func TestStore(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	if _, ok, err := s.Load("supervisor/a"); ok || err != nil {
		t.Fatalf("empty store: ok %v err %v", ok, err)
	}
	want := Record{Value: "v1", Since: time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)}
	if err := s.Save("supervisor/a", want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Load("supervisor/a")
	if err != nil || !ok || got.Value != want.Value || !got.Since.Equal(want.Since) {
		t.Fatalf("load: %+v %v %v", got, ok, err)
	}
	if err := (&Store{}).Save("x", want); err == nil {
		t.Error("a store without a folder saved")
	}
	next, changed := (Seen{Record: got, Has: true}).Next("v1", time.Now())
	if changed || !next.Since.Equal(want.Since) {
		t.Errorf("next of the same value: %+v %v", next, changed)
	}
	now := time.Date(2026, 12, 2, 4, 0, 0, 300, time.UTC)
	if next, changed := (Seen{Record: got, Has: true}).Next("v2", now); !changed || !next.Since.Equal(now.Truncate(time.Second).Add(time.Second)) {
		t.Errorf("next of another value: %+v %v, want since the next whole second", next, changed)
	}
}
