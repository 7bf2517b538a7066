//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"

	"reconciler.dev/reconciler/api/status"
	"reconciler.dev/reconciler/controllers/compose"
)

// The chain's units (hack/testbed.d/units): one-shots that log their start
// and end to taskLog inside the systemd container.
var taskUnits = []string{"reconciler-test-task-1.service", "reconciler-test-task-2.service", "reconciler-test-task-3.service"}

const taskLog = "/run/reconciler-test-tasks.log"

const tasksHost = `apiVersion: reconciler.dev/v1
kind: Host
metadata: {name: tasks-01}
spec:
  services:
    # The head: declared running; a Type=oneshot with RemainAfterExit.
    - name: task-1
      driver: systemd
      unit: reconciler-test-task-1.service
      replicas: 1
      onExit: {start: [task-2]}
    # Run only by triggers: declared 0, so after their run nothing differs.
    - name: task-2
      driver: systemd
      unit: reconciler-test-task-2.service
      replicas: 0
      onExit: {start: [task-3], on: success}
    - name: task-3
      driver: systemd
      unit: reconciler-test-task-3.service
      replicas: 0
`

// Seed 002's one-shot tasks that call each other on exit: a pass that
// starts task-1 runs task-2 when it exited well, then task-3, in that order,
// all under the pass's id, each step in the pass record and the events.
func TestTriggersRunAChainOfOneShotUnitsInOnePass(t *testing.T) {
	lockTestbed(t, "systemd-tasks")
	for _, u := range taskUnits {
		if out, err := inSystemdTry(t, "systemctl", "cat", u); err != nil {
			t.Fatalf("the testbed has no unit %s (hack/testbed up installs hack/testbed.d/units): %s", u, out)
		}
	}
	reset := func() {
		inSystemd(t, "systemctl", "stop", taskUnits[0], taskUnits[1], taskUnits[2])
		inSystemd(t, "rm", "-f", taskLog)
	}
	reset()
	t.Cleanup(reset)
	repo := newGitRepo(t, "tasks")
	rev := repo.Commit("a chain of three one-shot tasks", map[string]string{"hosts/tasks-01.yaml": tasksHost})
	st := chainPass(t, repo.FileURL, "tasks-01", rev, 60*time.Second)
	checkChain(t, st, "systemd/task-1", []chainStep{
		{"systemd/task-2", "task-2", "onExit of task-1 (exited 0 (success))", "exited 0 (success)"},
		{"systemd/task-3", "task-3", "onExit of task-2 (exited 0 (success))", "exited 0 (success)"},
	})
	checkTaskLog(t, taskLog, inSystemd(t, "cat", taskLog), "task-1", "task-2", "task-3")

	// Level-based: a later plan finds nothing to do (task-1 stays active
	// after its exit, the others are declared 0), so nothing runs again.
	planAfterChain(t, repo.FileURL, "tasks-01", t.TempDir())
}

// chainPass starts an agent on source for host, its passes a minute apart,
// and waits until its first pass converged on rev: the pass that runs the
// chain. It returns the /status that showed it.
func chainPass(t *testing.T, source, host, rev string, within time.Duration) status.Status {
	t.Helper()
	start := time.Now()
	a := startAgent(t, agentConfig{Source: source, Host: host, Interval: "1m"})
	st := awaitConverged(t, a, rev, within)
	t.Logf("first pass converged %s after the agent started", time.Since(start).Round(time.Millisecond))
	return st
}

// planAfterChain checks that the chain is level-based: once it ran, every
// service is as declared, so a plan finds nothing to do and runs nothing.
func planAfterChain(t *testing.T, source, host, cacheDir string) {
	t.Helper()
	r := cli(t, nil, "plan", "--source", source, "--host", host, "--cache-dir", cacheDir)
	r.mustCode(t, 0, fmt.Sprintf("plan after the chain ran:\n%s", r.Stdout))
}

// chainStep is one service a trigger ran, as the pass record shows it.
type chainStep struct{ subject, name, by, outcome string }

// checkChain checks the converged pass of a trigger chain: the plan
// applied the start of head, then the triggers ran steps, in order, each
// succeeding, in the pass record (lastPass.triggers) and in the events,
// all under the pass's id.
func checkChain(t *testing.T, st status.Status, head string, steps []chainStep) {
	t.Helper()
	lp := st.LastPass
	applied := false
	for _, act := range lp.Actions {
		if act.Subject == head && act.Outcome == "applied" && act.Pass == lp.ID {
			applied = true
		}
	}
	if !applied {
		t.Fatalf("pass %s did not apply the start of %s: %+v", lp.ID, head, lp.Actions)
	}
	if len(lp.Triggers) != len(steps) {
		t.Fatalf("pass %s ran %d services by triggers, want %d: %+v", lp.ID, len(lp.Triggers), len(steps), lp.Triggers)
	}
	want := []string{"start " + head}
	for i, w := range steps {
		tr := lp.Triggers[i]
		if tr.Step != i+1 || tr.Subject != w.subject || tr.Name != w.name || tr.By != w.by || !tr.Succeeded || tr.Outcome != w.outcome {
			t.Errorf("trigger step %d: %+v, want %s run by %q, %s", i+1, tr, w.name, w.by, w.outcome)
		}
		want = append(want, w.subject+": "+w.by+": "+w.outcome)
	}
	t.Logf("pass %s triggers: %+v", lp.ID, lp.Triggers)
	var got []string
	for _, ev := range st.Events {
		if ev.Pass != lp.ID {
			continue
		}
		switch {
		case ev.Type == "action" && ev.Subject == head:
			got = append(got, "start "+head)
		case ev.Type == "trigger" && ev.To != "":
			got = append(got, ev.Subject+": "+ev.Message)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events of pass %s:\n%s\nwant:\n%s", lp.ID, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// checkTaskLog checks the tasks' own log (lines "NAME start|end
// SECONDS"): each task ran once, each after the one before it ended.
func checkTaskLog(t *testing.T, path, log string, tasks ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(log), "\n")
	var order []string
	var last float64
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 3 {
			t.Fatalf("odd line in %s: %q", path, l)
		}
		at, err := strconv.ParseFloat(f[2], 64)
		if err != nil || at < last {
			t.Fatalf("%s is not in time order at %q:\n%s", path, l, strings.Join(lines, "\n"))
		}
		last = at
		order = append(order, f[0]+" "+f[1])
	}
	var want []string
	for _, task := range tasks {
		want = append(want, task+" start", task+" end")
	}
	if got := strings.Join(order, ", "); got != strings.Join(want, ", ") {
		t.Fatalf("the tasks ran as: %s", got)
	}
	first, _ := strconv.ParseFloat(strings.Fields(lines[0])[2], 64)
	t.Logf("chain ran in %.2fs (%s start to %s end)", last-first, tasks[0], tasks[len(tasks)-1])
}

// The chains of issue 21 on the other one-shot kinds: daemontools once
// services (svc -o, their end read from supervise/status) and compose
// one-off containers (docker-compose run, through the Docker API).

const dtTasksHost = "dt-tasks-01"

// dtTaskRun is a once service's run script: it logs its start and end (as
// the systemd task units do) and takes a second between them.
func dtTaskRun(name, log string) string {
	return fmt.Sprintf("#!/bin/sh\necho %[1]s start $(date +%%s.%%N) >> %[2]s\nsleep 1\necho %[1]s end $(date +%%s.%%N) >> %[2]s\n", name, log)
}

// Seed 002's chain under daemontools: three once services, task-1 declared
// run (once: true, replicas: 1), task-2 and task-3 run only by onExit (on:
// any: supervise records no exit status). One pass of the agent runs all
// three in order under its pass id; afterwards each is as declared, so a
// plan finds nothing to do.
func TestTriggersRunAChainOfDaemontoolsOnceServicesInOnePass(t *testing.T) {
	dtTaskChain(t, dtDaemontools)
}

// The same chain under runit (runsvdir, sv once).
func TestTriggersRunAChainOfRunitOnceServicesInOnePass(t *testing.T) {
	dtTaskChain(t, dtRunit)
}

func dtTaskChain(t *testing.T, kind dtKind) {
	tb := testbed(t)
	root := tb.SvscanDir
	if kind == dtRunit {
		lockTestbed(t, "runit-tasks")
		root = tb.RunitDir
	} else {
		lockTestbed(t, "daemontools-tasks")
		dtEnsureSvscan(t)
	}
	logDir := t.TempDir()
	if err := os.Chmod(logDir, 0o777); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(logDir, "tasks.log")
	tasks := []string{"task-1", "task-2", "task-3"}
	runs, down := map[string]string{}, map[string]bool{}
	for _, task := range tasks {
		runs["reconciler-"+task] = dtTaskRun(task, log)
		down["reconciler-"+task] = true // packaged stopped
	}
	dirs := dtInstall(t, kind, root, runs, down)
	host := fmt.Sprintf(`apiVersion: reconciler.dev/v1
kind: Host
metadata: {name: %s}
spec:
  services:
    - {name: task-1, driver: daemontools, dir: %s, once: true, replicas: 1, onExit: {start: [task-2], on: any}}
    - {name: task-2, driver: daemontools, dir: %s, once: true, replicas: 0, onExit: {start: [task-3], on: any}}
    - {name: task-3, driver: daemontools, dir: %s, once: true, replicas: 0}
`, dtTasksHost, dirs["reconciler-task-1"], dirs["reconciler-task-2"], dirs["reconciler-task-3"])
	repo := newGitRepo(t, "dt-tasks")
	rev := repo.Commit("a chain of three once services", map[string]string{"hosts/" + dtTasksHost + ".yaml": host})
	st := chainPass(t, repo.FileURL, dtTasksHost, rev, 90*time.Second)
	const ended = "exited (status not recorded)"
	checkChain(t, st, "daemontools/task-1", []chainStep{
		{"daemontools/task-2", "task-2", "onExit of task-1 (" + ended + ")", ended},
		{"daemontools/task-3", "task-3", "onExit of task-2 (" + ended + ")", ended},
	})
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatalf("the tasks left no log: %v", err)
	}
	checkTaskLog(t, log, string(b), tasks...)

	// svstat (sv status): all three down. The record says once for the
	// head under daemontools (svc -o, not restarted), down under runit
	// (sv once writes d) with the driver's once mark; down for the two run
	// only by triggers, with no mark.
	for _, task := range tasks {
		dir := dirs["reconciler-"+task]
		if err := dtIsDown(kind, dir); err != nil {
			t.Errorf("%s: %v", task, err)
		}
		head := task == "task-1"
		want := byte('d')
		if head && kind == dtDaemontools {
			want = 0
		}
		if rec := dtMustRecord(t, dir); rec.Want != want {
			t.Errorf("%s: supervise wants %q, want %q (%s)", task, rec.Want, want, dtTool(kind, dir))
		}
		_, err := os.Stat(filepath.Join(dir, ".reconciler-once"))
		if mark := err == nil; mark != (head && kind == dtRunit) {
			t.Errorf("%s: once mark present %v", task, mark)
		}
	}
	planAfterChain(t, repo.FileURL, dtTasksHost, t.TempDir())
}

// composeTasksFile is a project with a long-running api and three tasks,
// each a shell that runs for a while and exits 0, on the testbed's Debian
// image (the worker image has no shell).
const composeTasksFile = `version: "2.4"
services:
  api:
    image: local/worker:1
    restart: unless-stopped
  task-1:
    image: %[1]s
    command: ["/bin/sh", "-c", "echo task-1 runs; sleep 2"]
  task-2:
    image: %[1]s
    command: ["/bin/sh", "-c", "echo task-2 runs; sleep 2"]
  task-3:
    image: %[1]s
    command: ["/bin/sh", "-c", "echo task-3 runs; sleep 2"]
`

// composeSeen collects the one-off containers `docker-compose ps` lists
// while it is polled.
type composeSeen struct {
	*background
	mu    sync.Mutex
	names map[string]bool
}

// watchComposePS runs `docker-compose ps` over and over until stopped, and
// keeps the names of the project's one-offs it listed.
func (p *composeProject) watchComposePS() *composeSeen {
	w := &composeSeen{names: map[string]bool{}}
	w.background = p.every(100*time.Millisecond, func(ctx context.Context) {
		out, _ := exec.CommandContext(ctx, "docker-compose", "--no-ansi", "-p", p.name, "-f", p.file, "ps").Output()
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 && strings.Contains(f[0], "_run_") {
				w.mu.Lock()
				w.names[f[0]] = true
				w.mu.Unlock()
			}
		}
	})
	return w
}

func (w *composeSeen) seen() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for n := range w.names {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// A compose chain, made as docker-compose would run it: the project is
// created by `docker-compose up --no-start` (every service has its stopped
// container #1); a commit wants api running; the pass that starts it runs
// task-1 as a one-off by api's onStart, then task-2 and task-3 by onExit,
// each a container named and labelled as `docker-compose run` makes one,
// run to its end through the Docker API and removed before the next is
// made, all under one pass id. docker-compose ps lists the one-offs as the
// project's while they run, and none is left afterwards.
func TestTriggersRunAChainOfComposeOneOffsInOnePass(t *testing.T) {
	tb := testbed(t)
	dir := t.TempDir()
	p := &composeProject{t: t, docker: dockerClient(t), name: uniqueName("cmptasks"), cache: t.TempDir(),
		file: filepath.Join(dir, "compose.yaml")}
	p.network = p.name + "_default"
	writeFile(t, p.file, fmt.Appendf(nil, composeTasksFile, tb.SystemdImage), 0o644)
	t.Cleanup(p.remove)
	p.compose("up", "--no-start")
	p.repo = newGitRepo(t, "compose-tasks")
	var services strings.Builder
	fmt.Fprintf(&services, "    - {name: api, driver: compose, project: %s, replicas: 1, onStart: {start: [task-1]}}\n", p.name)
	fmt.Fprintf(&services, "    - {name: task-1, driver: compose, project: %s, replicas: 0, onExit: {start: [task-2]}}\n", p.name)
	fmt.Fprintf(&services, "    - {name: task-2, driver: compose, project: %s, replicas: 0, onExit: {start: [task-3], on: success}}\n", p.name)
	fmt.Fprintf(&services, "    - {name: task-3, driver: compose, project: %s, replicas: 0}\n", p.name)
	rev := p.repo.Commit("api up, and a chain of three one-offs", map[string]string{
		"hosts/" + composeHost + ".yaml": hostDocWith(composeHost, "", services.String())})

	ev := p.watchEvents()
	ps := p.watchComposePS()
	st := chainPass(t, p.repo.FileURL, composeHost, rev, 90*time.Second)
	ps.stop()
	checkChain(t, st, "compose/api", []chainStep{
		{"compose/task-1", "task-1", "onStart of api", "exited 0"},
		{"compose/task-2", "task-2", "onExit of task-1 (exited 0)", "exited 0"},
		{"compose/task-3", "task-3", "onExit of task-2 (exited 0)", "exited 0"},
	})

	// Docker's own account: each one-off created, started, exited 0 and
	// removed before the next one was created, named and labelled as
	// docker-compose 1.x names and labels its one-offs.
	nameRE := regexp.MustCompile(`^` + regexp.QuoteMeta(p.name) + `_(task-[123])_run_([0-9a-f]{12})$`)
	type life struct {
		name, slug string
		at         map[events.Action]time.Time
		exit       string
	}
	var lives []*life
	eventually(t, 10*time.Second, "Docker reports the end of every one-off", func() error {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		lives = nil
		byID := map[string]*life{}
		for _, m := range ev.events {
			attr := m.Actor.Attributes
			if attr[compose.LabelOneoff] != "True" {
				continue
			}
			l := byID[m.Actor.ID]
			if l == nil {
				l = &life{name: attr["name"], slug: attr[compose.LabelSlug], at: map[events.Action]time.Time{}}
				byID[m.Actor.ID] = l
				lives = append(lives, l)
			}
			if _, seen := l.at[m.Action]; !seen {
				l.at[m.Action] = time.Unix(0, m.TimeNano)
			}
			if m.Action == events.ActionDie {
				l.exit = attr["exitCode"]
			}
		}
		if len(lives) != 3 {
			return fmt.Errorf("%d one-offs seen, want 3", len(lives))
		}
		for _, l := range lives {
			if _, ok := l.at[events.ActionDestroy]; !ok {
				return fmt.Errorf("%s not removed yet", l.name)
			}
		}
		return nil
	})
	var prevGone time.Time
	for i, l := range lives {
		m := nameRE.FindStringSubmatch(l.name)
		if m == nil || m[1] != fmt.Sprintf("task-%d", i+1) || !strings.HasPrefix(l.slug, m[2]) || len(l.slug) != 64 {
			t.Errorf("one-off %d is %s with slug %q: want %s_task-%d_run_<first 12 of a 64-digit slug>", i+1, l.name, l.slug, p.name, i+1)
		}
		if l.exit != "0" {
			t.Errorf("%s exited %s, want 0", l.name, l.exit)
		}
		for _, act := range []events.Action{events.ActionCreate, events.ActionStart, events.ActionDie, events.ActionDestroy} {
			if _, ok := l.at[act]; !ok {
				t.Errorf("%s: no %s event", l.name, act)
			}
		}
		if !prevGone.IsZero() && !l.at[events.ActionCreate].After(prevGone) {
			t.Errorf("%s was created at %s, before the one before it was removed at %s", l.name,
				l.at[events.ActionCreate].Format("15:04:05.000"), prevGone.Format("15:04:05.000"))
		}
		prevGone = l.at[events.ActionDestroy]
		t.Logf("%s: started %s, exited %s after %s, removed %s", l.name, l.at[events.ActionStart].Format("15:04:05.000"), l.exit,
			l.at[events.ActionDie].Sub(l.at[events.ActionStart]).Round(time.Millisecond), l.at[events.ActionDestroy].Format("15:04:05.000"))
	}

	// The compose client's own view: it listed the one-offs while they ran
	// (as its own, under the names Docker reported), and none is left.
	seen := ps.seen()
	if len(seen) == 0 {
		t.Errorf("docker-compose ps never listed a one-off while the chain ran")
	}
	for _, n := range seen {
		if !slices.ContainsFunc(lives, func(l *life) bool { return l.name == n }) {
			t.Errorf("docker-compose ps listed %s, which is none of the chain's one-offs", n)
		}
	}
	t.Logf("docker-compose ps listed, while the chain ran: %v", seen)
	if out := p.compose("ps", "--all"); strings.Contains(out, "_run_") {
		t.Errorf("one-offs left after the chain:\n%s", out)
	}
	left, err := p.docker.ContainerList(ctxT(t, 30*time.Second), p.listOpts(compose.LabelOneoff+"=True"))
	if err != nil || len(left) != 0 {
		t.Errorf("one-off containers left: %d (%v)", len(left), err)
	}
	p.checkAPIUp()

	// Level-based: api runs as declared and the tasks are at 0, so a later
	// plan finds nothing to do and runs no chain.
	planAfterChain(t, p.repo.FileURL, composeHost, p.cache)
}

// checkAPIUp checks, with docker-compose, that api #1 is up and the tasks'
// own containers #1 were never started (their one-offs ran instead).
func (p *composeProject) checkAPIUp() {
	p.t.Helper()
	out := p.compose("ps")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasPrefix(f[0], p.name+"_") {
			continue
		}
		up := slices.Contains(f[2:], "Up")
		if isAPI := f[0] == p.name+"_api_1"; isAPI != up {
			p.t.Errorf("docker-compose ps: %s up=%v:\n%s", f[0], up, out)
		}
	}
}
