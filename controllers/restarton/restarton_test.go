package restarton

import (
	"reflect"
	"testing"
	"time"

	"reconciler.dev/reconciler/controllers"
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

// TestPlan: the due replicas, in the order given, are the steps of one
// restart action, in the driver's own Steps type; nothing due, no action.
func TestPlan(t *testing.T) {
	type steps []string
	since := time.Date(2026, 12, 2, 4, 0, 1, 0, time.UTC)
	started := map[string]time.Time{"b": since.Add(-time.Second), "c": since.Add(time.Second), "a": since.Add(-time.Hour)}
	at := func(r string) time.Time { return started[r] }
	base := controllers.Action{Subject: "supervisor/x", Name: "x"}
	rec := Seen{Record: Record{Value: "v2", Since: since}, Has: true}
	got := Plan(base, rec, "v2", steps{"b", "c", "a"}, at)
	if len(got) != 1 || got[0].Field != Field || got[0].From != "v2 (part)" || got[0].To != "v2" || got[0].Op != controllers.OpRestart ||
		!reflect.DeepEqual(got[0].Steps, steps{"b", "a"}) {
		t.Errorf("cut short: %+v, want one restart of b then a", got)
	}
	if got := Plan(base, rec, "v2", steps{"c"}, at); got != nil {
		t.Errorf("nothing due: %+v, want no action", got)
	}
	if got := Plan(base, Seen{}, "", steps{"a"}, at); got != nil {
		t.Errorf("no value declared: %+v, want no action", got)
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
