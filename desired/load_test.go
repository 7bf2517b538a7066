package desired

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/internal/filetree"
)

func mapFS(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for k, v := range files {
		m[k] = &fstest.MapFile{Data: []byte(v)}
	}
	return m
}

const plantDefaults = `apiVersion: reconciler.dev/v1
kind: Defaults
metadata: {name: plant-a}
spec:
  hosts: ["fp-*"]
  maintenance: {enabled: true, reason: plant shutdown}
  services:
    - {name: factory-broker, replicas: 2}
`

const roleDefaults = `apiVersion: reconciler.dev/v1
kind: Defaults
metadata: {name: proxies}
spec:
  selector: {matchLabels: {role: factory-proxy}}
  drift: report
  services:
    - {name: factory-broker, replicas: 3, maintenance: keep}
`

const fp01 = `apiVersion: reconciler.dev/v1
kind: Host
metadata:
  name: fp-01
  labels: {role: factory-proxy}
spec:
  services:
    - name: factory-broker
      replicas: 1
    - name: factory-proxy
      replicas: 1
      dependsOn: [factory-broker]
`

func TestEffectiveMergesDefaultsInPathOrderThenHost(t *testing.T) {
	repo, err := Load(mapFS(map[string]string{
		"00-defaults/plant.yaml": plantDefaults,
		"01-defaults/role.yml":   roleDefaults,
		"hosts/fp-01.yaml":       fp01,
		"README.md":              "not yaml: ignored",
		".hidden/x.yaml":         "garbage: [",
	}), "repo")
	if err != nil {
		t.Fatal(err)
	}
	if errs := repo.Validate(); len(errs) > 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	eff, errs := repo.Effective("fp-01")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	s := eff.Spec
	if on, _ := s.Maintenance.ActiveAt(timeNow()); !on || s.Maintenance.Reason != "plant shutdown" {
		t.Errorf("maintenance = %+v", s.Maintenance)
	}
	if s.Drift != v1.DriftReport {
		t.Errorf("drift = %q, want report from the role Defaults", s.Drift)
	}
	b := s.Services[0]
	if b.Name != "factory-broker" || *b.Replicas != 1 || b.Maintenance != v1.MaintenanceKeep || b.Drift != v1.DriftReport {
		t.Errorf("broker = %+v", b)
	}
	if len(s.Services) != 2 || s.Services[1].Name != "factory-proxy" {
		t.Errorf("services = %+v", s.Services)
	}
	want := []string{
		"repo/00-defaults/plant.yaml (Defaults plant-a)",
		"repo/01-defaults/role.yml (Defaults proxies)",
		"repo/hosts/fp-01.yaml (Host fp-01)",
	}
	if !reflect.DeepEqual(eff.Sources, want) {
		t.Errorf("sources = %q", eff.Sources)
	}
	for idx, where := range map[string]string{
		"spec.maintenance.reason":       "repo/00-defaults/plant.yaml:6:40",
		"spec.drift":                    "repo/01-defaults/role.yml:6:10",
		"spec.services[0].replicas":     "repo/hosts/fp-01.yaml:9:17",
		"spec.services[0].maintenance":  "repo/01-defaults/role.yml:8:56",
		"spec.services[1].dependsOn[0]": "repo/hosts/fp-01.yaml:12:19",
	} {
		if got := eff.Origins.Locate(idx).String(); got != where {
			t.Errorf("origin of %s = %s, want %s", idx, got, where)
		}
	}
}

func TestSelects(t *testing.T) {
	d := func(hosts []string, labels map[string]string) *v1.Defaults {
		var sel *v1.LabelSelector
		if labels != nil {
			sel = &v1.LabelSelector{MatchLabels: labels}
		}
		return &v1.Defaults{Spec: v1.DefaultsSpec{Hosts: hosts, Selector: sel}}
	}
	cases := []struct {
		d      *v1.Defaults
		host   string
		labels map[string]string
		want   bool
	}{
		{d([]string{"fp-*"}, nil), "fp-01", nil, true},
		{d([]string{"fp-*"}, nil), "sat-01", nil, false},
		{d([]string{"sat-0[1-3]", "fp-01"}, nil), "fp-01", nil, true},
		{d(nil, map[string]string{"site": "a"}), "x", map[string]string{"site": "a", "role": "r"}, true},
		{d(nil, map[string]string{"site": "a"}), "x", map[string]string{"site": "b"}, false},
		// Both given: both must match.
		{d([]string{"fp-*"}, map[string]string{"site": "a"}), "fp-01", map[string]string{"site": "b"}, false},
		{d([]string{"fp-*"}, map[string]string{"site": "a"}), "fp-01", map[string]string{"site": "a"}, true},
		{d(nil, nil), "fp-01", nil, false},
	}
	for i, c := range cases {
		if got := Selects(c.d, c.host, c.labels); got != c.want {
			t.Errorf("case %d: Selects = %v, want %v", i, got, c.want)
		}
	}
}

func TestEffectiveErrors(t *testing.T) {
	repo, err := Load(mapFS(map[string]string{
		"a.yaml": fp01,
		"b.yaml": fp01,
		"c.yaml": plantDefaults,
	}), "")
	if err != nil {
		t.Fatal(err)
	}
	_, errs := repo.Effective("fp-01")
	want := `b.yaml:4:9: metadata.name: host "fp-01" is already declared at a.yaml:4:9`
	if len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("two Hosts: %v, want %s", errs, want)
	}
	if got := repo.Validate(); len(got) != 1 || got[0].Error() != want {
		t.Errorf("Validate = %v", got)
	}
	// A host only Defaults select still has a state; one nothing selects fails.
	if eff, errs := repo.Effective("fp-99"); len(errs) > 0 || *eff.Spec.Services[0].Replicas != 2 {
		t.Errorf("fp-99: %v %+v", errs, eff)
	}
	_, errs = repo.Effective("db-01")
	if len(errs) != 1 || !strings.Contains(errs[0].Msg, `no Host document for host "db-01" and no Defaults select it`) {
		t.Errorf("db-01: %v", errs)
	}
}

func TestEffectiveValidatesAcrossDocuments(t *testing.T) {
	// replicas from the Host, bounds from Defaults: only the merged state is wrong.
	repo, err := Load(mapFS(map[string]string{
		"d.yaml": `apiVersion: reconciler.dev/v1
kind: Defaults
metadata: {name: sats}
spec:
  hosts: ["sat-*"]
  services:
    - name: poller
      driver: systemd
      unit: usm-poller@.service
      autoscale: {amqp: {urlFile: /etc/amqp, queue: q}, min: 2, max: 4}
`,
		"h.yaml": `apiVersion: reconciler.dev/v1
kind: Host
metadata: {name: sat-07}
spec:
  services:
    - {name: poller, replicas: 9, dependsOn: [broker]}
`,
	}), "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range repo.Validate() {
		got = append(got, e.Error())
	}
	want := []string{
		`h.yaml:6:32: spec.services[poller].replicas: 9 is outside autoscale bounds [2, 4]`,
		`h.yaml:6:47: spec.services[poller].dependsOn[0]: unknown service "broker"`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n got %q\nwant %q", got, want)
	}
	if repo.Valid() != true {
		t.Error("per-document checks passed, so Load recorded no errors")
	}
}

func TestInvalidRepoIsNotValid(t *testing.T) {
	repo, err := Load(mapFS(map[string]string{"a.yaml": fp01, "b.yaml": "apiVersion: x\n"}), "")
	if err != nil {
		t.Fatal(err)
	}
	if repo.Valid() {
		t.Error("a repo with a broken file counts as valid")
	}
}

// FuzzLoad feeds arbitrary bytes to the loader and validator, seeded with
// every file under examples/: they must never panic, and whatever they accept
// must merge and validate without panicking either.
func FuzzLoad(f *testing.F) {
	examples, err := filetree.Read("../examples")
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range slices.Sorted(maps.Keys(examples)) {
		if strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml") {
			f.Add([]byte(examples[p]))
		}
	}
	f.Add([]byte(plantDefaults))
	f.Add([]byte(fp01 + "---\n" + roleDefaults))
	// Triggers and selectors, with the YAML 1.1 booleans that must stay text.
	f.Add([]byte("apiVersion: reconciler.dev/v1\nkind: Host\nmetadata: {name: n}\nspec:\n  services:\n" +
		"    - {name: a, driver: systemd, replicas: 1, onExit: {start: [b], on: any}}\n" +
		"    - {name: b, driver: systemd, replicas: 0, onStart: {start: [a]}}\n" +
		"    - {name: m, replicas: 1, select: {namespace: y, labels: {on: off}, names: [\"x*\"]}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		repo, err := Load(mapFS(map[string]string{"x.yaml": string(data), "h.yaml": fp01}), "")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range repo.Validate() {
			if e.Pos.File == "" && !strings.HasPrefix(e.Msg, "no Host document") {
				t.Errorf("error without a position: %v", e)
			}
		}
		for _, h := range append(repo.Hosts(), "fp-01", "other") {
			repo.Effective(h)
		}
	})
}
