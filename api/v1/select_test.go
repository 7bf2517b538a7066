package v1

import (
	"reflect"
	"testing"
)

func TestValidateSelectorsAndTriggers(t *testing.T) {
	cases := []struct {
		name string
		spec string // YAML under "spec:", indented by two spaces
		want []string
	}{
		{"valid selectors and a trigger chain", `
  services:
    - {name: broker, replicas: 1}
    - {name: modules, replicas: 1, dependsOn: [broker], select: {namespace: fp, labels: {tier: module}, names: ["ref-*"]}}
    - {name: gateway, replicas: 1, dependsOn: [modules]}
    - {name: pollers, driver: compose, replicas: 2, select: {project: usm}}
    - {name: t1, driver: systemd, replicas: 1, onExit: {start: [t2]}}
    - {name: t2, driver: systemd, replicas: 0, onExit: {start: [t3], on: any}}
    - {name: t3, driver: systemd, replicas: 0, onStart: {start: [t4]}}
    - {name: t4, driver: systemd, replicas: 0}`, nil},
		{"a selector that selects nothing, a bad glob", `
  services:
    - {name: m, replicas: 1, select: {names: ["[x"]}}
    - {name: n, replicas: 1, select: {}}`, []string{
			`x.yaml:6:47: spec.services[m].select.names[0]: invalid name glob "[x"`,
			`x.yaml:7:38: spec.services[n].select: selects nothing: give namespace, labels or names (swarm), project (compose) or group (supervisor)`,
		}},
		{"criteria of another driver, and fields a selector cannot share", `
  services:
    - {name: m, replicas: 1, image: "x:1", select: {project: p}}
    - {name: c, driver: compose, replicas: 1, select: {namespace: fp}}
    - {name: u, driver: systemd, replicas: 1, select: {names: [a]}}`, []string{
			`x.yaml:6:37: spec.services[m].image: cannot be shared by the services a selector matches; declare the service by name`,
			`x.yaml:6:62: spec.services[m].select.project: selects on driver compose, not swarm`,
			`x.yaml:7:55: spec.services[c].select: needs project for driver compose (every service of that project)`,
			`x.yaml:7:67: spec.services[c].select.namespace: selects on driver swarm, not compose`,
			`x.yaml:8:55: spec.services[u].select: driver systemd cannot select services (swarm, compose and supervisor can)`,
		}},
		{"supervisor group selectors and GROUP:PROGRAM", `
  services:
    - {name: progs, driver: supervisor, replicas: 1, select: {group: factory}}
    - {name: broker, driver: supervisor, program: "factory:broker", replicas: 1}
    - {name: s1, driver: supervisor, replicas: 1, select: {project: p}}
    - {name: s2, driver: supervisor, replicas: 1, program: x, select: {group: "a:b"}}
    - {name: s3, driver: supervisor, replicas: 1, program: ":b"}
    - {name: s4, replicas: 1, select: {group: g}}`, []string{
			`x.yaml:8:59: spec.services[s1].select: needs group for driver supervisor (every program of that group)`,
			`x.yaml:8:69: spec.services[s1].select.project: selects on driver compose, not supervisor`,
			`x.yaml:9:60: spec.services[s2].program: cannot be shared by the services a selector matches; declare the service by name`,
			`x.yaml:9:79: spec.services[s2].select.group: "a:b" is not a group name: it must not contain ':'`,
			`x.yaml:10:60: spec.services[s3].program: ":b" is neither a program nor GROUP:PROGRAM`,
			`x.yaml:11:47: spec.services[s4].select.group: selects on driver supervisor, not swarm`,
		}},
		{"trigger cycle, unknown target, onExit on a long-running service", `
  services:
    - {name: a, driver: systemd, replicas: 1, onExit: {start: [b]}}
    - {name: b, driver: systemd, replicas: 0, onStart: {start: [a, nope]}}
    - {name: s, replicas: 1, onExit: {start: [a], on: sometimes}}
    - {name: sel, replicas: 1, select: {names: ["x*"]}}
    - {name: c, driver: systemd, replicas: 0, onExit: {start: [sel, c]}}
    - {name: p, driver: systemd, unit: p@.service, replicas: 2, onStart: {start: [s]}}`, []string{
			`x.yaml:6:7: spec.services[a]: trigger cycle (onStart/onExit): a -> b -> a`,
			`x.yaml:7:68: spec.services[b].onStart.start[1]: unknown service "nope"`,
			`x.yaml:8:38: spec.services[s].onExit: needs a one-shot service: driver swarm has no one-shot services (triggers run systemd units, daemontools once services and compose one-offs)`,
			`x.yaml:8:55: spec.services[s].onExit.on: unknown exit condition "sometimes" (want success, failure or any)`,
			`x.yaml:10:64: spec.services[c].onExit.start[0]: "sel" is a selector; a trigger starts one service`,
			`x.yaml:10:69: spec.services[c].onExit.start[1]: service "c" cannot trigger itself`,
			`x.yaml:11:83: spec.services[p].onStart.start[0]: "s" cannot be run by a trigger: driver swarm has no one-shot services (triggers run systemd units, daemontools once services and compose one-offs)`,
		}},
		{"valid daemontools and compose one-shot chains", `
  services:
    - {name: d1, driver: daemontools, once: true, replicas: 1, onExit: {start: [d2], on: any}}
    - {name: d2, driver: daemontools, once: true, replicas: 0, onExit: {start: [c1], on: any}}
    - {name: c1, driver: compose, project: p, replicas: 0, onExit: {start: [c2], on: failure}}
    - {name: c2, driver: compose, project: p, replicas: 0, onStart: {start: [u]}}
    - {name: u, driver: systemd, replicas: 0}`, nil},
		{"daemontools exits have no status; compose one-offs are declared at 0", `
  services:
    - {name: d1, driver: daemontools, once: true, replicas: 1, onExit: {start: [u]}}
    - {name: d2, driver: daemontools, once: true, replicas: 0, onExit: {start: [u], on: success}}
    - {name: d3, driver: daemontools, replicas: 0, onExit: {start: [u], on: any}}
    - {name: c1, driver: compose, project: p, replicas: 2, onExit: {start: [d3, c2]}}
    - {name: c2, driver: compose, project: p, replicas: 1}
    - {name: t, driver: systemd, unit: t@.service, replicas: 1, onExit: {start: [u]}}
    - {name: u, driver: systemd, replicas: 0}`, []string{
			`x.yaml:6:72: spec.services[d1].onExit: daemontools and runit record no exit status of a once service, so onExit cannot tell success from failure: write on: any (got the default, success)`,
			`x.yaml:7:89: spec.services[d2].onExit.on: daemontools and runit record no exit status of a once service, so onExit cannot tell success from failure: write on: any (got success)`,
			`x.yaml:8:60: spec.services[d3].onExit: needs a one-shot service: a daemontools service runs once (svc -o) only with once: true`,
			`x.yaml:9:68: spec.services[c1].onExit: needs a one-shot service: a compose service runs as a one-off container (docker-compose run) only when declared replicas: 0`,
			`x.yaml:9:77: spec.services[c1].onExit.start[0]: "d3" cannot be run by a trigger: a daemontools service runs once (svc -o) only with once: true`,
			`x.yaml:9:81: spec.services[c1].onExit.start[1]: "c2" cannot be run by a trigger: a compose service runs as a one-off container (docker-compose run) only when declared replicas: 0`,
			`x.yaml:11:73: spec.services[t].onExit: needs a one-shot service: systemd template t@.service runs instances, not one unit once`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := validateSource(t, "apiVersion: reconciler.dev/v1\nkind: Host\nmetadata: {name: h}\nspec:"+tc.spec+"\n")
			if !reflect.DeepEqual(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Errorf("got:\n%s\nwant:\n%s", join(got), join(tc.want))
			}
		})
	}
}

func join(ss []string) string {
	out := ""
	for _, s := range ss {
		out += "\t" + s + "\n"
	}
	return out
}

func TestExitConditionMatches(t *testing.T) {
	for _, tc := range []struct {
		c        ExitCondition
		ok, fail bool
	}{{"", true, false}, {ExitSuccess, true, false}, {ExitFailure, false, true}, {ExitAny, true, true}} {
		if tc.c.Matches(true) != tc.ok || tc.c.Matches(false) != tc.fail {
			t.Errorf("%q: success %v failure %v, want %v %v", tc.c, tc.c.Matches(true), tc.c.Matches(false), tc.ok, tc.fail)
		}
	}
}
