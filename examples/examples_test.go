package examples_test

// The examples are documentation for users and fixtures for tests. These
// tests load them exactly the way `reconciler validate examples/<name>` does
// (run from the repository root), so what the READMEs promise is what the
// loader says.

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/desired"
)

// validExamples are the seed scenarios; each must load without any error.
var validExamples = []string{"factory-proxy", "factory-proxy-stack", "usm-poller-satellite", "daemontools-services"}

// wantInvalid is every error examples/invalid must produce, exactly, in the
// order Validate returns them (file, line, column). Each file plants one kind
// of mistake, so each file appears once (16 names a host twice, on purpose).
var wantInvalid = []string{
	// The flow list opened on line 10 is never closed.
	`examples/invalid/01-yaml-syntax.yaml:10:7: YAML syntax error: did not find expected ',' or ']'`,
	`examples/invalid/02-unknown-field.yaml:12:7: spec.services[factory-proxy]: unknown field "dependson" (did you mean "dependsOn"?)`,
	// Only the wrong type: the value is written, so "replicas is required"
	// would be a follow-on error, not a second mistake.
	`examples/invalid/03-wrong-type.yaml:9:17: spec.services[factory-broker].replicas: expected an integer, got a string ("one")`,
	`examples/invalid/04-duplicate-name.yaml:12:13: spec.services[factory-proxy].name: duplicate service name "factory-proxy" (first declared at examples/invalid/04-duplicate-name.yaml:8:7)`,
	`examples/invalid/05-same-unit-two-services.yaml:13:7: spec.services[poller-extra]: systemd unit usm-poller@.service is already declared by spec.services[poller] (examples/invalid/05-same-unit-two-services.yaml:9:7)`,
	`examples/invalid/06-unit-also-a-service.yaml:17:7: spec.units[abb-factory-proxy-housekeeping.service]: systemd unit abb-factory-proxy-housekeeping.service is already declared by spec.services[housekeeping] (examples/invalid/06-unit-also-a-service.yaml:9:7)`,
	`examples/invalid/07-depends-on-unknown.yaml:12:19: spec.services[factory-proxy].dependsOn[0]: unknown service "factory-brokr"`,
	`examples/invalid/08-depends-on-cycle.yaml:10:18: spec.services[svc-a].dependsOn: dependency cycle: svc-a -> svc-b -> svc-c -> svc-a`,
	`examples/invalid/09-negative-replicas.yaml:9:17: spec.services[factory-proxy].replicas: must not be negative (got -1)`,
	// At the autoscale: key (line 11) the message is about, not at the first
	// key inside the block (amqp, line 12), which has nothing to do with it.
	`examples/invalid/10-autoscale-min-gt-max.yaml:11:7: spec.services[usm-poller].autoscale: min 15 is greater than max 2`,
	`examples/invalid/11-replicas-outside-bounds.yaml:11:17: spec.services[usm-poller].replicas: 20 is outside autoscale bounds [2, 15]`,
	`examples/invalid/12-bad-duration.yaml:10:20: spec.services[factory-proxy].stopTimeout: invalid duration "10sec" (use Go syntax like 60s, 2m, 1h30m)`,
	`examples/invalid/13-plain-unit-replicas.yaml:10:13: spec.services[usm-poller].unit: "usm-poller.service" is not a template unit (name@.service), so it runs at most 1 replica, not 3`,
	`examples/invalid/14-template-unit-in-units.yaml:8:13: spec.units[usm-poller@.service].name: "usm-poller@.service" is a template unit; declare instances as a service with driver: systemd and replicas`,
	`examples/invalid/15-bad-host-name.yaml:5:9: metadata.name: "inv_bad_host" is not a valid host name (RFC 1123: letters, digits and '-', dot-separated labels of 1-63 characters)`,
	`examples/invalid/16-two-hosts-same-name.yaml:14:9: metadata.name: host "inv-twice" is already declared at examples/invalid/16-two-hosts-same-name.yaml:5:9`,
	`examples/invalid/17-unknown-kind.yaml:3:7: kind: unknown kind "Hosts" (want Host or Defaults)`,
	`examples/invalid/18-wrong-api-version.yaml:2:13: apiVersion: must be "reconciler.dev/v1", not "reconciler.dev/v1beta1"`,
	`examples/invalid/19-bad-maintenance.yaml:8:16: spec.maintenance: expected true, false or {enabled, until, reason}, got a string ("yes")`,
}

// load loads examples/<dir> as `reconciler validate examples/<dir>` does.
func load(t *testing.T, dir string) *desired.Repo {
	t.Helper()
	repo, err := desired.Load(os.DirFS(dir), "examples/"+dir)
	if err != nil {
		t.Fatalf("loading %s: %v", dir, err)
	}
	if repo.Files == 0 {
		t.Fatalf("examples/%s has no YAML files", dir)
	}
	return repo
}

func messages(errs v1.ErrorList) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}

// diff says which wanted lines are missing and which got lines are extra.
func diff(t *testing.T, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("missing:    %s", w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			t.Errorf("unexpected: %s", g)
		}
	}
	if !t.Failed() {
		t.Errorf("same errors, different order:\ngot:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestValidExamples(t *testing.T) {
	for _, dir := range validExamples {
		t.Run(dir, func(t *testing.T) {
			repo := load(t, dir)
			if errs := repo.Validate(); len(errs) > 0 {
				t.Fatalf("examples/%s has errors:\n%v", dir, errs)
			}
			hosts := repo.Hosts()
			if len(hosts) == 0 {
				t.Fatalf("examples/%s declares no host", dir)
			}
			for _, h := range hosts {
				eff, errs := repo.Effective(h)
				if len(errs) > 0 {
					t.Fatalf("host %s: %v", h, errs)
				}
				if len(eff.Spec.Services)+len(eff.Spec.Units) == 0 {
					t.Errorf("host %s declares nothing", h)
				}
			}
		})
	}
}

// TestSatelliteDefaultsMerge holds what the usm-poller-satellite README says
// about the Defaults document: sat-08 takes urlFile, messagesPerReplica,
// cooldown and stopTimeout from it, keeps its own queue and bounds, and
// sat-07 keeps its own values.
func TestSatelliteDefaultsMerge(t *testing.T) {
	repo := load(t, "usm-poller-satellite")
	if got, want := repo.Hosts(), []string{"sat-07", "sat-08"}; !slices.Equal(got, want) {
		t.Fatalf("hosts = %v, want %v", got, want)
	}
	poller := func(host string) v1.Service {
		t.Helper()
		eff, errs := repo.Effective(host)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", host, errs)
		}
		if len(eff.Sources) != 2 {
			t.Errorf("%s merged from %v, want the Defaults and the Host", host, eff.Sources)
		}
		if len(eff.Spec.Services) != 1 || eff.Spec.Services[0].Name != "usm-poller" {
			t.Fatalf("%s services = %+v, want usm-poller only", host, eff.Spec.Services)
		}
		return eff.Spec.Services[0]
	}
	for _, c := range []struct {
		host, queue string
		driver      v1.Driver
	}{
		{"sat-07", "usm_poller-sat-7", v1.DriverSystemd},
		{"sat-08", "usm_poller-sat-8", v1.DriverSupervisor},
	} {
		s := poller(c.host)
		a := s.Autoscale
		if s.Driver != c.driver || *s.Replicas != 2 || a == nil || a.AMQP == nil {
			t.Fatalf("%s: %+v", c.host, s)
		}
		if a.AMQP.Queue != c.queue || a.AMQP.URLFile != "/etc/reconciler/amqp-url" {
			t.Errorf("%s amqp = %+v", c.host, *a.AMQP)
		}
		if *a.Min != 2 || *a.Max != 15 || *a.MessagesPerReplica != 50 || a.Cooldown.Duration != 2*time.Minute {
			t.Errorf("%s autoscale = min %d max %d per %d cooldown %s", c.host, *a.Min, *a.Max, *a.MessagesPerReplica, a.Cooldown)
		}
		if s.StopTimeout.Duration != 15*time.Second {
			t.Errorf("%s stopTimeout = %s, want 15s from the Defaults", c.host, s.StopTimeout)
		}
	}
	if s := poller("sat-07"); s.Unit != "usm-poller@.service" {
		t.Errorf("sat-07 unit = %q", s.Unit)
	}
	if s := poller("sat-08"); s.Program != "usm-poller" || s.Socket != "/run/reconciler-testbed/supervisor.sock" {
		t.Errorf("sat-08 program %q socket %q", s.Program, s.Socket)
	}
}

func TestInvalidExamples(t *testing.T) {
	repo := load(t, "invalid")
	diff(t, messages(repo.Validate()), wantInvalid)
}

// TestInvalidFilesStandAlone checks that the files do not interact: each one,
// validated alone, gives exactly its own lines of wantInvalid. It also keeps
// every file planting something, with a comment that says what.
func TestInvalidFilesStandAlone(t *testing.T) {
	files, err := filepath.Glob("invalid/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no files in examples/invalid: %v", err)
	}
	for _, f := range files {
		display := "examples/" + f
		t.Run(filepath.Base(f), func(t *testing.T) {
			if first := firstLine(t, f); !strings.HasPrefix(first, "# Planted error: ") {
				t.Errorf("first line %q does not name the planted error (# Planted error: ...)", first)
			}
			repo, err := desired.LoadFiles([]string{display}, func(string) ([]byte, error) { return os.ReadFile(f) })
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, w := range wantInvalid {
				if strings.HasPrefix(w, display+":") {
					want = append(want, w)
				}
			}
			if len(want) == 0 {
				t.Fatalf("wantInvalid has no line for %s", display)
			}
			diff(t, messages(repo.Validate()), want)
		})
	}
}

func TestExamplesHaveReadme(t *testing.T) {
	for _, dir := range append(slices.Clone(validExamples), "invalid") {
		if st, err := os.Stat(filepath.Join(dir, "README.md")); err != nil || st.Size() == 0 {
			t.Errorf("examples/%s has no README.md", dir)
		}
	}
}

func firstLine(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	return sc.Text()
}
