package v1

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestParseOnFailureBothForms(t *testing.T) {
	src := hostHeader + `spec:
  services:
    - name: poller
      driver: systemd
      replicas: 1
      onFailure: {restart: {limit: 3, window: 1m}, start: [standby]}
    - name: standby
      driver: systemd
      replicas: 0
      onFailure: report
    - name: plain
      replicas: 1
`
	docs, errs := ParseFile("x.yaml", []byte(src))
	if len(errs) > 0 || len(docs) != 1 {
		t.Fatalf("errors: %v", errs)
	}
	sv := docs[0].Host.Spec.Services
	want := &FailurePolicy{Restart: &RestartPolicy{Limit: Ptr[int32](3), Window: NewDuration(time.Minute)}, Start: []string{"standby"}}
	if !reflect.DeepEqual(sv[0].OnFailure, want) {
		t.Errorf("long form = %+v", sv[0].OnFailure)
	}
	if p := sv[1].OnFailure; p == nil || !p.ReportOnly() || p.String() != "report" {
		t.Errorf("short form = %+v", p)
	}
	if p := sv[2].OnFailure; p != nil || !p.ReportOnly() || p.String() != "report" {
		t.Errorf("left out = %+v, want nil, which reports", p)
	}
	if s := sv[0].OnFailure.String(); s != "restart 3 per 1m0s, start standby" {
		t.Errorf("String() = %q", s)
	}
}

// The state dir keeps the effective spec as JSON: both forms round-trip.
func TestOnFailureJSONRoundTrip(t *testing.T) {
	for _, p := range []*FailurePolicy{
		{},
		{Restart: &RestartPolicy{Limit: Ptr[int32](2), Window: NewDuration(90 * time.Second)}},
		{Start: []string{"a", "b"}},
	} {
		b, err := json.Marshal(Service{Name: "s", OnFailure: p})
		if err != nil {
			t.Fatal(err)
		}
		var back Service
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(back.OnFailure, p) {
			t.Errorf("%s came back as %+v, want %+v", b, back.OnFailure, p)
		}
	}
	var p FailurePolicy
	if err := json.Unmarshal([]byte(`"restart"`), &p); err == nil {
		t.Error(`"restart" accepted as a short form`)
	}
	if err := json.Unmarshal([]byte(`{"restart": {"limit": 1, "window": "1m"}, "stop": []}`), &p); err == nil {
		t.Error("unknown field accepted")
	}
}

func TestValidateOnFailure(t *testing.T) {
	cases := []specCase{
		{"valid", `
  services:
    - {name: a, replicas: 1, onFailure: {restart: {limit: 3, window: 1m}, start: [b]}}
    - {name: b, replicas: 0, onFailure: report}
    - {name: c, replicas: 1, onFailure: {start: [b]}}`, nil},
		{"limit below 1 and window 0", `
  services:
    - {name: a, replicas: 1, onFailure: {restart: {limit: 0, window: 0s}}}`,
			[]string{
				`x.yaml:7:59: spec.services[a].onFailure.restart.limit: must be at least 1 (got 0)`,
				`x.yaml:7:70: spec.services[a].onFailure.restart.window: must be longer than 0`,
			}},
		{"restart without limit or window", `
  services:
    - {name: a, replicas: 1, onFailure: {restart: {}}}`,
			[]string{
				`x.yaml:7:51: spec.services[a].onFailure.restart: needs limit (the most restarts per window)`,
				`x.yaml:7:51: spec.services[a].onFailure.restart: needs window (a duration such as 1m)`,
			}},
		{"window not a duration", `
  services:
    - {name: a, replicas: 1, onFailure: {restart: {limit: 1, window: soon}}}`,
			[]string{`x.yaml:7:70: spec.services[a].onFailure.restart.window: invalid duration "soon" (use Go syntax like 60s, 2m, 1h30m)`}},
		{"unknown short form", `
  services:
    - {name: a, replicas: 1, onFailure: restart}`,
			[]string{`x.yaml:7:41: spec.services[a].onFailure: unknown value "restart" (want report or {restart, start})`}},
		{"start: itself, twice, unknown", `
  services:
    - {name: a, replicas: 1, onFailure: {start: [a, b, b, ghost]}}
    - {name: b, replicas: 0}`,
			[]string{
				`x.yaml:7:50: spec.services[a].onFailure.start[0]: service "a" cannot start itself; use restart`,
				`x.yaml:7:56: spec.services[a].onFailure.start[2]: "b" is listed twice`,
				`x.yaml:7:59: spec.services[a].onFailure.start[3]: unknown service "ghost"`,
			}},
		{"start cycle", `
  services:
    - {name: a, replicas: 1, onFailure: {start: [b]}}
    - {name: b, replicas: 0, onFailure: {start: [c]}}
    - {name: c, replicas: 0, onFailure: {start: [a]}}`,
			[]string{`x.yaml:7:49: spec.services[a].onFailure.start: onFailure start cycle: a -> b -> c -> a`}},
	}
	runSpecCases(t, cases)
}

// A Host's onFailure replaces a Defaults' whole: `report` switches a
// policy off, and a start list does not inherit a restart.
func TestMergeReplacesOnFailureWhole(t *testing.T) {
	base := HostSpec{Services: []Service{
		{Name: "a", OnFailure: &FailurePolicy{Restart: &RestartPolicy{Limit: Ptr[int32](3), Window: NewDuration(time.Minute)}}},
		{Name: "b", OnFailure: &FailurePolicy{Restart: &RestartPolicy{Limit: Ptr[int32](3), Window: NewDuration(time.Minute)}}},
		{Name: "c", OnFailure: &FailurePolicy{Start: []string{"a"}}},
	}}
	over := HostSpec{Services: []Service{
		{Name: "a", OnFailure: &FailurePolicy{}},
		{Name: "b", OnFailure: &FailurePolicy{Start: []string{"c"}}},
		{Name: "c"},
	}}
	var got HostSpec
	loc := func(string) Pos { return Pos{} }
	Merge(&got, &base, loc, Origins{})
	Merge(&got, &over, loc, Origins{})
	if p := got.Services[0].OnFailure; p == nil || !p.ReportOnly() {
		t.Errorf("a: %+v, want report", p)
	}
	if p := got.Services[1].OnFailure; p.Restart != nil || !reflect.DeepEqual(p.Start, []string{"c"}) {
		t.Errorf("b: %+v, want start [c] alone", p)
	}
	if p := got.Services[2].OnFailure; p == nil || !reflect.DeepEqual(p.Start, []string{"a"}) {
		t.Errorf("c: %+v, want the Defaults' policy kept", p)
	}
}
