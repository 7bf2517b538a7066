package v1

import (
	"reflect"
	"strings"
	"testing"
)

// TestValidateRefusesPathsAndGlobs: names that would match many objects and
// paths that walk elsewhere are invalid whatever the agent's limits.
func TestValidateRefusesPathsAndGlobs(t *testing.T) {
	cases := []specCase{
		{"unit with ../", `
  services:
    - {name: a, driver: systemd, unit: ../../etc/x.service, replicas: 1}`,
			[]string{`x.yaml:7:40: spec.services[a].unit: "../../etc/x.service" is not a single unit name: it must not contain ".."`}},
		{"unit glob", `
  services:
    - {name: a, driver: systemd, unit: "usm-*.service", replicas: 1}
  units:
    - {name: "*.timer", active: false}`,
			[]string{
				`x.yaml:7:40: spec.services[a].unit: "usm-*.service" is not a single unit name: glob characters (* ? [ ]) match more than one`,
				`x.yaml:9:14: spec.units[*.timer].name: "*.timer" is not a single unit name: glob characters (* ? [ ]) match more than one`,
			}},
		{"unit with a slash", `
  units:
    - {name: "a/b.timer", active: false}`,
			[]string{`x.yaml:7:14: spec.units[a/b.timer].name: "a/b.timer" is not a single unit name: it must not contain '/', spaces or control characters`}},
		{"program glob", `
  services:
    - {name: a, driver: supervisor, program: "usm:*", replicas: 1}`,
			[]string{`x.yaml:7:46: spec.services[a].program: "usm:*" is not a single program name: glob characters (* ? [ ]) match more than one`}},
		{"dir walks out", `
  services:
    - {name: a, driver: daemontools, dir: /service/../etc, replicas: 1}`,
			[]string{`x.yaml:7:43: spec.services[a].dir: "/service/../etc" must not contain "." or ".." elements`}},
		{"relative dir", `
  services:
    - {name: a, driver: daemontools, dir: service/a, replicas: 1}`,
			[]string{`x.yaml:7:43: spec.services[a].dir: must be an absolute path, not "service/a"`}},
		{"relative socket", `
  services:
    - {name: a, driver: supervisor, socket: run/s.sock, replicas: 1}`,
			[]string{`x.yaml:7:45: spec.services[a].socket: must be an absolute path, not "run/s.sock"`}},
		{"urlFile walks out", `
  services:
    - name: p
      driver: systemd
      unit: p@.service
      autoscale: {amqp: {urlFile: /etc/reconciler/../shadow, queue: q}, min: 1, max: 2}`,
			[]string{`x.yaml:10:35: spec.services[p].autoscale.amqp.urlFile: "/etc/reconciler/../shadow" must not contain "." or ".." elements`}},
		{"relative urlFile", `
  services:
    - name: p
      driver: systemd
      unit: p@.service
      autoscale: {amqp: {urlFile: amqp-url, queue: q}, min: 1, max: 2}`,
			[]string{`x.yaml:10:35: spec.services[p].autoscale.amqp.urlFile: must be an absolute path, not "amqp-url"`}},
	}
	runSpecCases(t, cases)
}

// reachOf parses a valid Host and checks its effective state against lim.
func reachOf(t *testing.T, spec string, lim Reach) []string {
	t.Helper()
	docs, errs := ParseFile("x.yaml", []byte(hostHeader+"spec:"+spec+"\n"))
	if len(errs) > 0 || len(docs) != 1 {
		t.Fatalf("parse: %v", errs)
	}
	var s HostSpec
	origins := Origins{}
	Merge(&s, docs[0].Spec(), docs[0].PosOf, origins)
	SetDefaults(&s)
	if errs := ValidateEffective(&s, origins.Locate, false); len(errs) > 0 {
		t.Fatalf("the case must be valid: %v", errs)
	}
	var out []string
	for _, e := range CheckReach(&s, origins.Locate, lim).Sorted() {
		out = append(out, e.Error())
	}
	return out
}

func TestCheckReach(t *testing.T) {
	const all = `
  services:
    - {name: web, replicas: 1, ready: {exec: [sh, -c, "id"]}}
    - {name: slapd, driver: daemontools, replicas: 1}
    - {name: etc, driver: daemontools, dir: /etc/cron.d, replicas: 1}
    - {name: rsv, driver: supervisor, replicas: 1}
    - {name: other, driver: supervisor, socket: /tmp/evil.sock, replicas: 1}
    - name: poller
      driver: systemd
      unit: p@.service
      autoscale: {amqp: {urlFile: /root/.ssh/id_rsa, queue: q}, min: 1, max: 2}`
	t.Run("defaults", func(t *testing.T) {
		got := reachOf(t, all, DefaultReach())
		want := []string{
			`x.yaml:7:46: spec.services[web].ready.exec: exec probes are off on this host (they run any command as the agent's user); the agent allows them with --allow-exec-probes`,
			`x.yaml:9:45: spec.services[etc].dir: "/etc/cron.d" is not under an allowed service root (/service, /etc/service, /var/service); the agent allows more roots with --daemontools-root`,
			`x.yaml:11:49: spec.services[other].socket: "/tmp/evil.sock" is not an allowed supervisord socket (/var/run/supervisor.sock, /run/supervisor.sock); the agent allows more with --allowed-supervisor-sockets`,
			`x.yaml:15:35: spec.services[poller].autoscale.amqp.urlFile: "/root/.ssh/id_rsa" is not under a secrets folder (/etc/reconciler); the agent allows more with --secrets-dir`,
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("errors:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
		}
	})
	t.Run("allowed by the flags", func(t *testing.T) {
		lim := Reach{AllowExecProbes: true, DaemontoolsRoots: []string{"/service", "/etc/cron.d/"},
			SupervisorSockets: []string{"/var/run/supervisor.sock", "/tmp/"}, SecretsDirs: []string{"/root"}}
		// A root allows what lies below it, not itself.
		if got := reachOf(t, all, lim); len(got) != 1 || !strings.Contains(got[0], `"/etc/cron.d" is not under an allowed service root`) {
			t.Errorf("got %q, want only the dir that is the root itself refused", got)
		}
	})
	t.Run("prefix is not a folder", func(t *testing.T) {
		lim := DefaultReach()
		lim.AllowExecProbes = true
		got := reachOf(t, `
  services:
    - {name: a, driver: daemontools, dir: /servicex/a, replicas: 1}
    - {name: b, driver: supervisor, socket: /var/run/supervisor.sock.evil, replicas: 1}
    - name: p
      driver: systemd
      unit: p@.service
      autoscale: {amqp: {urlFile: /etc/reconcilerx/u, queue: q}, min: 1, max: 2}`, lim)
		if len(got) != 3 {
			t.Errorf("want 3 refusals (a folder name is not a string prefix), got %q", got)
		}
	})
	t.Run("empty lists allow nothing", func(t *testing.T) {
		got := reachOf(t, `
  services:
    - {name: slapd, driver: daemontools, replicas: 1}`, Reach{})
		if len(got) != 1 || !strings.Contains(got[0], "(none)") {
			t.Errorf("got %q", got)
		}
	})
}
