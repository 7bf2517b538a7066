//go:build e2e

package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
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
		if out, err := execOut("docker", "exec", testbed(t).SystemdContainer, "systemctl", "cat", u); err != nil {
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
	lp := st.LastPass

	// The pass record: task-1 started by the plan, then task-2 and task-3
	// run by triggers, in order.
	applied := false
	for _, act := range lp.Actions {
		if act.Subject == "systemd/task-1" && act.Outcome == "applied" && act.Pass == lp.ID {
			applied = true
		}
	}
	if !applied {
		t.Fatalf("pass %s did not apply the start of task-1: %+v", lp.ID, lp.Actions)
	}
	if len(lp.Triggers) != 2 {
		t.Fatalf("pass %s ran %d services by triggers, want 2 (task-2, task-3): %+v", lp.ID, len(lp.Triggers), lp.Triggers)
	}
	for i, want := range []struct{ name, by string }{
		{"task-2", "onExit of task-1 (exited 0 (success))"},
		{"task-3", "onExit of task-2 (exited 0 (success))"},
	} {
		tr := lp.Triggers[i]
		if tr.Step != i+1 || tr.Name != want.name || tr.By != want.by || !tr.Succeeded || tr.Outcome != "exited 0 (success)" {
			t.Errorf("trigger step %d: %+v, want %s run by %q, exited 0", i+1, tr, want.name, want.by)
		}
	}
	t.Logf("pass %s triggers: %+v", lp.ID, lp.Triggers)

	// The events: every step under the same pass id.
	var steps []string
	for _, ev := range st.Events {
		if ev.Pass != lp.ID {
			continue
		}
		switch {
		case ev.Type == "action" && ev.Subject == "systemd/task-1":
			steps = append(steps, "start task-1")
		case ev.Type == "trigger" && ev.To != "":
			steps = append(steps, ev.Subject+": "+ev.Message)
		}
	}
	want := []string{
		"start task-1",
		"systemd/task-2: onExit of task-1 (exited 0 (success)): exited 0 (success)",
		"systemd/task-3: onExit of task-2 (exited 0 (success)): exited 0 (success)",
	}
	if strings.Join(steps, "\n") != strings.Join(want, "\n") {
		t.Errorf("events of pass %s:\n%s\nwant:\n%s", lp.ID, strings.Join(steps, "\n"), strings.Join(want, "\n"))
	}

	// The units' own log: each ran once, each after the one before ended.
	lines := strings.Split(strings.TrimSpace(inSystemd(t, "cat", taskLog)), "\n")
	var order []string
	var last float64
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 3 {
			t.Fatalf("odd line in %s: %q", taskLog, l)
		}
		at, err := strconv.ParseFloat(f[2], 64)
		if err != nil || at < last {
			t.Fatalf("%s is not in time order at %q:\n%s", taskLog, l, strings.Join(lines, "\n"))
		}
		last = at
		order = append(order, f[0]+" "+f[1])
	}
	if got := strings.Join(order, ", "); got != "task-1 start, task-1 end, task-2 start, task-2 end, task-3 start, task-3 end" {
		t.Fatalf("the tasks ran as: %s", got)
	}
	first, _ := strconv.ParseFloat(strings.Fields(lines[0])[2], 64)
	t.Logf("chain ran in %.2fs (task-1 start to task-3 end)", last-first)

	// Level-based: a later plan finds nothing to do (task-1 stays active
	// after its exit, the others are declared 0), so nothing runs again.
	r := cli(t, nil, "plan", "--source", repo.FileURL, "--host", "tasks-01", "--cache-dir", t.TempDir())
	r.mustCode(t, 0, fmt.Sprintf("plan after the chain ran:\n%s", r.Stdout))
}
