package v1

import (
	"reflect"
	"strings"
	"testing"
)

// validateSource parses one file and validates each document on its own and
// the first Host's state merged from it alone, as the loader would.
// specCase is a Host's spec (YAML under "spec:", indented by two spaces)
// and the errors validation must report for it, in order.
type specCase struct {
	name string
	spec string
	want []string
}

// runSpecCases validates each case's Host as a subtest and compares the
// errors it reports.
func runSpecCases(t *testing.T, cases []specCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := validateSource(t, hostHeader+"spec:"+tc.spec+"\n")
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("errors:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tc.want, "\n      "))
			}
		})
	}
}

func validateSource(t *testing.T, src string) []string {
	t.Helper()
	docs, errs := ParseFile("x.yaml", []byte(src))
	all := append(ErrorList(nil), errs...)
	for _, d := range docs {
		all = append(all, ValidateDocument(d)...)
		if d.Host != nil {
			var spec HostSpec
			origins := Origins{}
			Merge(&spec, d.Spec(), d.PosOf, origins)
			SetDefaults(&spec)
			all = append(all, ValidateEffective(&spec, origins.Locate, d.Invalid || len(errs) > 0)...)
		}
	}
	var out []string
	for _, e := range all.Sorted() {
		out = append(out, e.Error())
	}
	return out
}

func TestValidateErrors(t *testing.T) {
	cases := []specCase{
		{"valid", `
  services:
    - {name: broker, replicas: 1}
    - {name: proxy, replicas: 1, dependsOn: [broker], ready: {tcp: "127.0.0.1:1883"}}
    - name: poller
      driver: systemd
      unit: usm-poller@.service
      autoscale: {amqp: {urlFile: /etc/r/amqp, queue: q}, min: 2, max: 15}
  units:
    - {name: a.timer, enabled: true, active: true}`, nil},
		{"duplicate service name", `
  services:
    - {name: a, replicas: 1}
    - {name: a, replicas: 2}`,
			[]string{`x.yaml:8:14: spec.services[a].name: duplicate service name "a" (first declared at x.yaml:7:7)`}},
		{"duplicate unit name", `
  units:
    - {name: a.timer, enabled: true}
    - {name: a.timer, active: true}`,
			[]string{`x.yaml:8:14: spec.units[a.timer].name: duplicate unit name "a.timer" (first declared at x.yaml:7:7)`}},
		{"same unit declared twice", `
  services:
    - {name: p1, driver: systemd, unit: usm-poller@.service, replicas: 2}
    - {name: p2, driver: systemd, unit: usm-poller@.service, replicas: 2}`,
			[]string{`x.yaml:8:7: spec.services[p2]: systemd unit usm-poller@.service is already declared by spec.services[p1] (x.yaml:7:7)`}},
		{"instance of a template a service manages", `
  services:
    - {name: p, driver: systemd, unit: usm-poller@.service, replicas: 2}
  units:
    - {name: usm-poller@3.service, active: true}`,
			[]string{`x.yaml:9:7: spec.units[usm-poller@3.service]: systemd unit usm-poller@3.service is an instance of usm-poller@.service, whose instances spec.services[p] manages (x.yaml:7:7)`}},
		{"same daemontools folder spelt twice", `
  services:
    - {name: a, driver: daemontools, dir: /service/x/, replicas: 1}
    - {name: b, driver: daemontools, dir: /service/x, replicas: 1}`,
			[]string{`x.yaml:8:7: spec.services[b]: daemontools service /service/x is already declared by spec.services[a] (x.yaml:7:7)`}},
		{"unit both a service and a unit", `
  services:
    - {name: hk, driver: systemd, unit: hk.service, replicas: 1}
  units:
    - {name: hk.service, enabled: true}`,
			[]string{`x.yaml:9:7: spec.units[hk.service]: systemd unit hk.service is already declared by spec.services[hk] (x.yaml:7:7)`}},
		{"unknown dependency", `
  services:
    - {name: a, replicas: 1, dependsOn: [b]}`,
			[]string{`x.yaml:7:42: spec.services[a].dependsOn[0]: unknown service "b"`}},
		{"cycle of three", `
  services:
    - {name: a, replicas: 1, dependsOn: [c]}
    - {name: b, replicas: 1, dependsOn: [a]}
    - {name: c, replicas: 1, dependsOn: [b]}`,
			[]string{`x.yaml:7:41: spec.services[a].dependsOn: dependency cycle: a -> c -> b -> a`}},
		{"self dependency", `
  services:
    - {name: a, replicas: 1, dependsOn: [a]}`,
			[]string{`x.yaml:7:42: spec.services[a].dependsOn[0]: service "a" depends on itself`}},
		{"negative replicas", `
  services:
    - {name: a, replicas: -1}`,
			[]string{`x.yaml:7:27: spec.services[a].replicas: must not be negative (got -1)`}},
		{"missing replicas", `
  services:
    - {name: a}`,
			[]string{`x.yaml:7:7: spec.services[a]: replicas is required (or autoscale)`}},
		{"min greater than max", `
  services:
    - {name: a, autoscale: {amqp: {urlFile: /f, queue: q}, min: 5, max: 2}}`,
			[]string{`x.yaml:7:28: spec.services[a].autoscale: min 5 is greater than max 2`}},
		{"replicas outside bounds", `
  services:
    - {name: a, replicas: 20, autoscale: {amqp: {urlFile: /f, queue: q}, min: 2, max: 15}}`,
			[]string{`x.yaml:7:27: spec.services[a].replicas: 20 is outside autoscale bounds [2, 15]`}},
		{"autoscale without queue", `
  services:
    - {name: a, autoscale: {min: 1, max: 2}}`,
			[]string{`x.yaml:7:28: spec.services[a].autoscale.amqp: needs urlFile and queue`}},
		{"plain unit with several replicas", `
  services:
    - {name: p, driver: systemd, unit: usm-poller.service, replicas: 5}`,
			[]string{`x.yaml:7:40: spec.services[p].unit: "usm-poller.service" is not a template unit (name@.service), so it runs at most 1 replica, not 5`}},
		{"default unit with several replicas", `
  services:
    - {name: p, driver: systemd, replicas: 5}`,
			[]string{`x.yaml:7:7: spec.services[p].unit: "p.service" is not a template unit (name@.service), so it runs at most 1 replica, not 5`}},
		{"template under units", `
  units:
    - {name: usm-poller@.service, enabled: true}`,
			[]string{`x.yaml:7:14: spec.units[usm-poller@.service].name: "usm-poller@.service" is a template unit; declare instances as a service with driver: systemd and replicas`}},
		{"not a unit name", `
  units:
    - {name: housekeeping, enabled: true}`,
			[]string{`x.yaml:7:14: spec.units[housekeeping].name: "housekeeping" is not a unit name (want a suffix such as .service or .timer)`}},
		{"daemontools counts to one", `
  services:
    - {name: d, driver: daemontools, replicas: 2}`,
			[]string{`x.yaml:7:48: spec.services[d].replicas: a daemontools service is up (1) or down (0), not 2`}},
		{"field of another driver", `
  services:
    - {name: s, replicas: 1, unit: s.service}`,
			[]string{`x.yaml:7:36: spec.services[s].unit: applies to driver systemd, not swarm`}},
		{"compose needs a project", `
  services:
    - {name: c, driver: compose, replicas: 1}`,
			[]string{`x.yaml:7:7: spec.services[c].project: is required for driver compose`}},
		{"unknown enums", `
  drift: maybe
  services:
    - {name: a, driver: swarn, replicas: 1, maintenance: pause, onNotReady: wait}`,
			[]string{
				`x.yaml:6:10: spec.drift: unknown drift mode "maybe" (want enforce or report)`,
				`x.yaml:8:25: spec.services[a].driver: unknown driver "swarn" (want one of swarm, systemd, compose, supervisor, daemontools)`,
				`x.yaml:8:58: spec.services[a].maintenance: unknown maintenance policy "pause" (want stop or keep)`,
				`x.yaml:8:77: spec.services[a].onNotReady: unknown value "wait" (want down or keep)`,
			}},
		{"probes", `
  services:
    - {name: a, replicas: 1, ready: {tcp: "127.0.0.1", http: "ftp://x"}}
    - {name: b, replicas: 1, ready: {timeout: 5s}}
    - {name: c, replicas: 1, ready: {exec: []}}`,
			[]string{
				`x.yaml:7:37: spec.services[a].ready: needs exactly one of tcp, http and exec (got 2)`,
				`x.yaml:7:43: spec.services[a].ready.tcp: "127.0.0.1" is not host:port`,
				`x.yaml:7:62: spec.services[a].ready.http: "ftp://x" is not an http:// or https:// URL`,
				`x.yaml:8:37: spec.services[b].ready: needs exactly one of tcp, http and exec (got 0)`,
				`x.yaml:9:44: spec.services[c].ready.exec: needs a command`,
			}},
		{"bad service name", `
  services:
    - {name: "my service", replicas: 1}`,
			[]string{`x.yaml:7:14: spec.services[my service].name: "my service" is not a valid service name (letters, digits, '_', '.', '@' and '-', starting with a letter or digit)`}},
	}
	runSpecCases(t, cases)
}

func TestValidateMetadata(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string
	}{
		{"invalid host name", "apiVersion: reconciler.dev/v1\nkind: Host\nmetadata: {name: fp_01}\nspec: {}\n",
			[]string{`x.yaml:3:18: metadata.name: "fp_01" is not a valid host name (RFC 1123: letters, digits and '-', dot-separated labels of 1-63 characters)`}},
		{"missing host name", "apiVersion: reconciler.dev/v1\nkind: Host\nmetadata: {}\nspec: {}\n",
			[]string{`x.yaml:3:11: metadata.name: is required: the host name this document applies to`}},
		{"defaults selecting nothing", "apiVersion: reconciler.dev/v1\nkind: Defaults\nmetadata: {name: d}\nspec: {maintenance: true}\n",
			[]string{`x.yaml:4:7: spec: selects no host: give spec.hosts (globs on host names) and/or spec.selector`}},
		{"bad glob and empty selector", "apiVersion: reconciler.dev/v1\nkind: Defaults\nmetadata: {name: d}\nspec: {hosts: [\"fp-[\"], selector: {}}\n",
			[]string{
				`x.yaml:4:16: spec.hosts[0]: invalid host glob "fp-["`,
				`x.yaml:4:35: spec.selector: matchLabels is empty; to select every host use hosts: ["*"]`,
			}},
		{"defaults with labels", "apiVersion: reconciler.dev/v1\nkind: Defaults\nmetadata: {name: d, labels: {a: b}}\nspec: {hosts: [\"*\"]}\n",
			[]string{`x.yaml:3:29: metadata.labels: Defaults have no labels; select hosts with spec.hosts or spec.selector`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := validateSource(t, tc.src)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("errors:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tc.want, "\n      "))
			}
		})
	}
}

func TestIsTemplateUnit(t *testing.T) {
	for name, want := range map[string]bool{
		"usm-poller@.service":  true,
		"usm-poller@1.service": false,
		"usm-poller.service":   false,
		"a@b@.service":         true,
		"@":                    false,
	} {
		if got := IsTemplateUnit(name); got != want {
			t.Errorf("IsTemplateUnit(%q) = %v, want %v", name, got, want)
		}
	}
}
