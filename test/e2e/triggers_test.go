//go:build e2e

package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"reconciler.dev/reconciler/agent"
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
	start := time.Now()
	a := startAgent(t, agentConfig{Source: repo.FileURL, Host: "tasks-01", Interval: "1m"})
	st := awaitConverged(t, a, rev, 60*time.Second)
	t.Logf("first pass converged %s after the agent started", time.Since(start).Round(time.Millisecond))
	checkChain(t, st, "systemd/task-1", []chainStep{
		{"systemd/task-2", "task-2", "onExit of task-1 (exited 0 (success))", "exited 0 (success)"},
		{"systemd/task-3", "task-3", "onExit of task-2 (exited 0 (success))", "exited 0 (success)"},
	})
	checkTaskLog(t, taskLog, inSystemd(t, "cat", taskLog), "task-1", "task-2", "task-3")

	// Level-based: a later plan finds nothing to do (task-1 stays active
	// after its exit, the others are declared 0), so nothing runs again.
	r := cli(t, nil, "plan", "--source", repo.FileURL, "--host", "tasks-01", "--cache-dir", t.TempDir())
	r.mustCode(t, 0, fmt.Sprintf("plan after the chain ran:\n%s", r.Stdout))
}

// chainStep is one service a trigger ran, as the pass record shows it.
type chainStep struct{ subject, name, by, outcome string }

// checkChain checks the converged pass of a trigger chain: the plan
// applied the start of head, then the triggers ran steps, in order, each
// succeeding, in the pass record (lastPass.triggers) and in the events,
// all under the pass's id.
func checkChain(t *testing.T, st agent.Status, head string, steps []chainStep) {
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
