package v1

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const hostHeader = "apiVersion: reconciler.dev/v1\nkind: Host\nmetadata:\n  name: fp-01\n"

func TestParseFileDecodesBothForms(t *testing.T) {
	src := hostHeader + `spec:
  maintenance: true
  services:
    - name: factory-broker
      replicas: 1
      ready: {tcp: "127.0.0.1:1883", timeout: 60s}
  units:
    - name: abb-factory-proxy-housekeeping.timer
      enabled: true
      active: false
---
apiVersion: reconciler.dev/v1
kind: Defaults
metadata: {name: plant-a}
spec:
  hosts: ["fp-*"]
  maintenance: {enabled: true, until: "2026-12-01T06:00:00Z", reason: switch firmware}
`
	docs, errs := ParseFile("a.yaml", []byte(src))
	if len(errs) != 0 {
		t.Fatalf("errors: %v", errs)
	}
	if len(docs) != 2 {
		t.Fatalf("got %d documents, want 2", len(docs))
	}
	h := docs[0].Host
	if h == nil || h.Metadata.Name != "fp-01" {
		t.Fatalf("first document = %+v", docs[0])
	}
	if m := h.Spec.Maintenance; m == nil || m.Enabled == nil || !*m.Enabled || m.Until != nil {
		t.Errorf("short form maintenance = %+v", m)
	}
	svc := h.Spec.Services[0]
	if *svc.Replicas != 1 || svc.Ready.TCP != "127.0.0.1:1883" || svc.Ready.Timeout.Duration != time.Minute {
		t.Errorf("service = %+v, ready = %+v", svc, svc.Ready)
	}
	u := h.Spec.Units[0]
	if !*u.Enabled || *u.Active {
		t.Errorf("unit = %+v", u)
	}
	d := docs[1].Defaults
	if d == nil || d.Spec.Hosts[0] != "fp-*" {
		t.Fatalf("second document = %+v", docs[1])
	}
	m := d.Spec.Maintenance
	want := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	if !*m.Enabled || !m.Until.Equal(want) || m.Reason != "switch firmware" {
		t.Errorf("long form maintenance = %+v", m)
	}
	// Positions count lines across the whole multi-document file.
	if got := docs[1].Pos; got.Line != 16 || got.Col != 1 {
		t.Errorf("second document starts at %v, want line 16", got)
	}
	if got := docs[1].PosOf("spec.hosts[0]"); got.Line != 20 || got.Col != 11 {
		t.Errorf("spec.hosts[0] at %v, want 20:11", got)
	}
	if got := docs[0].PosOf("spec.services[0].replicas"); got.Line != 9 || got.Col != 17 {
		t.Errorf("replicas at %v, want 9:17", got)
	}
	// A path with no value of its own resolves to its nearest parent.
	if got := docs[0].PosOf("spec.services[0].dependsOn"); got.Line != 8 {
		t.Errorf("missing field resolves to %v, want the service at line 8", got)
	}
}

func TestParseFileStringsKeepTheirText(t *testing.T) {
	src := hostHeader + `spec:
  services:
    - name: 1.10
      driver: daemontools
      replicas: 1
      restartOn: 42
`
	docs, errs := ParseFile("a.yaml", []byte(src))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	s := docs[0].Host.Spec.Services[0]
	if s.Name != "1.10" || s.RestartOn != "42" {
		t.Errorf("name %q restartOn %q, want the literal text", s.Name, s.RestartOn)
	}
}

// TestParseErrors asserts the exact message and position of every error the
// parser reports.
func TestParseErrors(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want []string
	}{
		{"syntax error", hostHeader + "spec:\n  services:\n    - name: a\n     replicas: 1\n",
			[]string{`x.yaml:8:6: YAML syntax error: did not find expected '-' indicator`}},
		{"syntax error in a later document", hostHeader + "---\n" + hostHeader + "spec: {services: [}\n",
			[]string{`x.yaml:10:1: YAML syntax error: did not find expected node content`}},
		{"not a mapping", "- a\n- b\n",
			[]string{`x.yaml:1:1: a document must be a mapping with apiVersion, kind, metadata and spec, not a list`}},
		{"missing kind", "apiVersion: reconciler.dev/v1\nmetadata: {name: a}\n",
			[]string{`x.yaml:1:1: kind is required (Host or Defaults)`}},
		{"unknown kind", "apiVersion: reconciler.dev/v1\nkind: Hots\n",
			[]string{`x.yaml:2:7: kind: unknown kind "Hots" (want Host or Defaults)`}},
		{"wrong apiVersion", "apiVersion: reconciler.dev/v2\nkind: Host\nmetadata: {name: a}\n",
			[]string{`x.yaml:1:13: apiVersion: must be "reconciler.dev/v1", not "reconciler.dev/v2"`}},
		{"unknown field with suggestion", hostHeader + "spec:\n  services:\n    - name: a\n      replica: 1\n",
			[]string{`x.yaml:8:7: spec.services[a]: unknown field "replica" (did you mean "replicas"?)`}},
		{"unknown field far from any", hostHeader + "spec:\n  colour: blue\n",
			[]string{`x.yaml:6:3: spec: unknown field "colour"`}},
		{"unknown top-level field", hostHeader + "status: {}\n",
			[]string{`x.yaml:5:1: unknown field "status"`}},
		{"integer as string", hostHeader + "spec:\n  services:\n    - name: a\n      replicas: \"3\"\n",
			[]string{`x.yaml:8:17: spec.services[a].replicas: expected an integer, got a string ("3")`}},
		{"list as scalar", hostHeader + "spec:\n  services: a\n",
			[]string{`x.yaml:6:13: spec.services: expected a list, got a string ("a")`}},
		{"mapping as scalar", hostHeader + "spec:\n  services:\n    - a\n",
			[]string{`x.yaml:7:7: spec.services[0]: expected a mapping, got a string ("a")`}},
		{"boolean as yes", hostHeader + "spec:\n  units:\n    - name: a.timer\n      enabled: yes\n",
			[]string{`x.yaml:8:16: spec.units[a.timer].enabled: expected true or false, got a string ("yes")`}},
		{"bad maintenance", hostHeader + "spec:\n  maintenance: soon\n",
			[]string{`x.yaml:6:16: spec.maintenance: expected true, false or {enabled, until, reason}, got a string ("soon")`}},
		{"bad maintenance field", hostHeader + "spec:\n  maintenance: {enabled: true, why: x}\n",
			[]string{`x.yaml:6:32: spec.maintenance: unknown field "why"`}},
		{"bad until", hostHeader + "spec:\n  maintenance: {enabled: true, until: tomorrow}\n",
			[]string{`x.yaml:6:39: spec.maintenance.until: invalid time "tomorrow" (use RFC 3339, like 2026-12-01T06:00:00Z)`}},
		{"bad duration", hostHeader + "spec:\n  services:\n    - name: a\n      replicas: 1\n      stopTimeout: 10 seconds\n",
			[]string{`x.yaml:9:20: spec.services[a].stopTimeout: invalid duration "10 seconds" (use Go syntax like 60s, 2m, 1h30m)`}},
		{"duration without unit", hostHeader + "spec:\n  services:\n    - name: a\n      replicas: 1\n      stopTimeout: 10\n",
			[]string{`x.yaml:9:20: spec.services[a].stopTimeout: expected a duration like 60s, got an integer (10)`}},
		{"duplicate key", hostHeader + "spec:\n  services:\n    - name: a\n      replicas: 1\n      replicas: 2\n",
			[]string{`x.yaml:9:7: spec.services[a]: key "replicas" appears twice (first at line 8)`}},
		{"out of range", hostHeader + "spec:\n  services:\n    - name: a\n      replicas: 99999999999\n",
			[]string{`x.yaml:8:17: spec.services[a].replicas: integer 99999999999 is out of range`}},
		{"empty list item", hostHeader + "spec:\n  services:\n    -\n",
			[]string{`x.yaml:7:6: spec.services[0]: empty list item`}},
		{"merge key", hostHeader + "spec:\n  services:\n    - &a {name: a, replicas: 1}\n    - <<: *a\n      name: b\n",
			[]string{`x.yaml:8:7: spec.services[b]: YAML merge keys (<<) are not supported; write the fields out`}},
		{"several errors in one document", hostHeader + "spec:\n  drift: [3]\n  services:\n    - name: a\n      replicas: x\n      image: [a]\n",
			[]string{
				`x.yaml:6:10: spec.drift: expected a string, got a list`,
				`x.yaml:9:17: spec.services[a].replicas: expected an integer, got a string ("x")`,
				`x.yaml:10:14: spec.services[a].image: expected a string, got a list`,
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := ParseFile("x.yaml", []byte(tc.src))
			var got []string
			for _, e := range errs.Sorted() {
				got = append(got, e.Error())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("errors:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tc.want, "\n      "))
			}
		})
	}
}

func TestParseKeepsWhatItCanOfAnInvalidDocument(t *testing.T) {
	src := hostHeader + "spec:\n  services:\n    - name: a\n      replicas: x\n    - name: b\n      replicas: 2\n"
	docs, errs := ParseFile("x.yaml", []byte(src))
	if len(errs) != 1 || len(docs) != 1 {
		t.Fatalf("docs %d errs %v", len(docs), errs)
	}
	d := docs[0]
	if !d.Invalid {
		t.Error("document with an error is not marked Invalid")
	}
	svcs := d.Host.Spec.Services
	if len(svcs) != 2 || svcs[0].Replicas != nil || *svcs[1].Replicas != 2 {
		t.Errorf("services = %+v", svcs)
	}
}

func TestMaintenanceActiveAt(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	on, off := true, false
	cases := []struct {
		m           *Maintenance
		on, expired bool
	}{
		{nil, false, false},
		{&Maintenance{Enabled: &off}, false, false},
		{&Maintenance{Enabled: &on}, true, false},
		{&Maintenance{Enabled: &on, Until: &Time{now.Add(time.Hour)}}, true, false},
		{&Maintenance{Enabled: &on, Until: &Time{now}}, false, true},
		{&Maintenance{Enabled: &off, Until: &Time{now.Add(-time.Hour)}}, false, false},
	}
	for i, c := range cases {
		on, expired := c.m.ActiveAt(now)
		if on != c.on || expired != c.expired {
			t.Errorf("case %d: ActiveAt = %v,%v want %v,%v", i, on, expired, c.on, c.expired)
		}
	}
}
