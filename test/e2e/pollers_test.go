//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	amqp "github.com/rabbitmq/amqp091-go"
)

// Seed 001: N copies of a poller. The same replica counts are taken through
// the same sequence on every driver.
var pollerSequence = []int{1, 5, 2, 0, 3}

// hostDoc is a one-service Host document.
func hostDoc(host, service string) string {
	return hostDocWith(host, "", service)
}

// hostDocWith is a Host document with specExtra (lines under spec, before
// services) and the service list entries.
func hostDocWith(host, specExtra, services string) string {
	return fmt.Sprintf("apiVersion: reconciler.dev/v1\nkind: Host\nmetadata:\n  name: %s\nspec:\n%s  services:\n%s", host, specExtra, services)
}

func TestPollerCountsSwarm(t *testing.T) {
	cli0, name := newOwnService(t, "usm-poller-swarm", 1)
	repo := newGitRepo(t, "pollers-swarm")
	src := repo.sourceArgs("sat-swarm")
	ctx := ctxT(t, 5*time.Minute)
	for _, n := range pollerSequence {
		repo.Commit(fmt.Sprintf("%d pollers", n), map[string]string{"host.yaml": hostDoc("sat-swarm",
			fmt.Sprintf("    - {name: %s, replicas: %d, stopTimeout: 5s}\n", name, n))})
		cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, fmt.Sprintf("apply %d replicas", n))
		list, err := cli0.ServiceList(ctx, swarm.ServiceListOptions{Status: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list {
			if s.Spec.Name == name && (s.ServiceStatus.RunningTasks != uint64(n) || *s.Spec.Mode.Replicated.Replicas != uint64(n)) {
				t.Fatalf("after apply of %d: spec %d, running %d", n, *s.Spec.Mode.Replicated.Replicas, s.ServiceStatus.RunningTasks)
			}
		}
	}
	dp, _, env := counted(t)
	cli(t, env, append([]string{"apply"}, src...)...).mustCode(t, 0, "apply with nothing to change")
	if dp.Mutating() != 0 {
		t.Errorf("a converged apply wrote to Docker: %v", dp.Counts())
	}
}

// activeInstances lists the numbers of the template's active instances,
// as systemctl inside the container reports them.
func activeInstances(t testing.TB, template string) []int {
	t.Helper()
	prefix := strings.TrimSuffix(template, ".service")
	out := inSystemd(t, "systemctl", "list-units", "--plain", "--no-legend", "--state=active", prefix+"*.service")
	var nums []int
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(f[0], prefix), ".service"))
		if err == nil {
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	return nums
}

func seq(n int) []int {
	out := []int{}
	for i := 1; i <= n; i++ {
		out = append(out, i)
	}
	return out
}

// stopPollers stops every usm-poller instance, so a test starts clean.
func stopPollers(t testing.TB) {
	t.Helper()
	_, _ = inSystemdTry(t, "sh", "-c", "systemctl stop 'usm-poller@*.service'; systemctl reset-failed 'usm-poller@*' 2>/dev/null; true")
}

// holdPollers takes the usm-poller template for the test: locked, every
// instance stopped now and at the end.
func holdPollers(t testing.TB) {
	t.Helper()
	lockTestbed(t, "usm-poller")
	stopPollers(t)
	t.Cleanup(func() { stopPollers(t) })
}

// pollerQueue holds the pollers (holdPollers) and names a fresh queue,
// deleted at the end.
func pollerQueue(t testing.TB, prefix string) string {
	t.Helper()
	holdPollers(t)
	queue := uniqueName(prefix)
	t.Cleanup(func() { deleteQueue(testbed(t).AMQPURL, queue) })
	return queue
}

func TestPollerCountsSystemdTemplate(t *testing.T) {
	holdPollers(t)
	repo := newGitRepo(t, "pollers-systemd")
	src := repo.sourceArgs("sat-systemd")
	svc := "    - {name: usm-poller, driver: systemd, unit: usm-poller@.service, replicas: %d%s}\n"
	for _, n := range pollerSequence {
		repo.Commit(fmt.Sprintf("%d pollers", n), map[string]string{"host.yaml": hostDoc("sat-systemd", fmt.Sprintf(svc, n, ""))})
		cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, fmt.Sprintf("apply %d replicas", n))
		if got := activeInstances(t, "usm-poller@.service"); fmt.Sprint(got) != fmt.Sprint(seq(n)) {
			t.Fatalf("after apply of %d: active instances %v, want %v", n, got, seq(n))
		}
	}
	_, bp, env := counted(t)
	cli(t, env, append([]string{"apply"}, src...)...).mustCode(t, 0, "apply with nothing to change")
	if bp.Mutating() != 0 {
		t.Errorf("a converged apply wrote to systemd: %v", bp.Counts())
	}

	// An instance started by hand is drift: reported, then stopped.
	inSystemd(t, "systemctl", "start", "usm-poller@7.service")
	p := cli(t, nil, append([]string{"plan"}, src...)...).mustCode(t, 2, "plan with an extra instance")
	if !strings.Contains(p.Stdout, "scale-down") {
		t.Errorf("plan does not show the extra instance:\n%s", p.Stdout)
	}
	cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "apply reverting the extra instance")
	if got := activeInstances(t, "usm-poller@.service"); fmt.Sprint(got) != fmt.Sprint(seq(3)) {
		t.Errorf("after reverting: %v", got)
	}
	// With drift: report it stays.
	repo.Commit("report only", map[string]string{"host.yaml": hostDoc("sat-systemd", fmt.Sprintf(svc, 3, ", drift: report"))})
	inSystemd(t, "systemctl", "start", "usm-poller@7.service")
	p = cli(t, nil, append([]string{"plan"}, src...)...).mustCode(t, 2, "plan with drift: report")
	if !strings.Contains(p.Stdout, "report-only (scale-down)") {
		t.Errorf("plan does not report the extra instance as report-only:\n%s", p.Stdout)
	}
	cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "apply with drift: report")
	if got := activeInstances(t, "usm-poller@.service"); fmt.Sprint(got) != fmt.Sprint([]int{1, 2, 3, 7}) {
		t.Errorf("drift: report changed the instances: %v", got)
	}
}

// amqpPublish publishes n persistent messages to a durable queue.
func amqpPublish(t testing.TB, url, queue string, n int) {
	t.Helper()
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Fatalf("AMQP dial: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, n))
	for i := 0; i < n; i++ {
		err := ch.PublishWithContext(ctxT(t, 10*time.Second), "", queue, false, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent, Body: []byte(fmt.Sprintf(`{"job":%d}`, i)),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		if c := <-confirms; !c.Ack {
			t.Fatalf("message %d not confirmed", c.DeliveryTag)
		}
	}
}

// queueReady returns the ready messages of a queue.
func queueReady(url, queue string) (int, error) {
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, err
	}
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	return q.Messages, err
}

func deleteQueue(url, queue string) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return
	}
	defer conn.Close()
	if ch, err := conn.Channel(); err == nil {
		ch.QueueDelete(queue, false, false, false)
	}
}

// rabbitmqStop and rabbitmqStart stop and restart the testbed's broker.
func rabbitmqStop(t testing.TB) {
	t.Helper()
	if out, err := execOut("rabbitmqctl", "stop"); err != nil {
		t.Fatalf("rabbitmqctl stop: %v\n%s", err, out)
	}
	eventually(t, 30*time.Second, "RabbitMQ stopped", func() error {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:5672", time.Second); err == nil {
			c.Close()
			return fmt.Errorf("still listening")
		}
		return nil
	})
}

func rabbitmqStart(t testing.TB) {
	t.Helper()
	if out, err := hackTestbed("up"); err != nil {
		t.Fatalf("hack/testbed up (restarting RabbitMQ): %v\n%s", err, out)
	}
}

// setPollerEnv makes the usm-poller@ instances consume queue (the
// EnvironmentFile of the testbed's template unit).
func setPollerEnv(t testing.TB, url, queue string, delay time.Duration) {
	t.Helper()
	inSystemdFile(t, "/etc/default/usm-poller", fmt.Sprintf("WORKER_AMQP_URL=%s\nWORKER_QUEUE=%s\nWORKER_MSG_DELAY=%s\n", url, queue, delay))
	t.Cleanup(func() { inSystemd(t, "rm", "-f", "/etc/default/usm-poller") })
}

type scaleSample struct {
	at      time.Time
	desired int32
	ready   int
	err     string
}

func TestAutoscaleFromRabbitMQ(t *testing.T) {
	tb := testbed(t)
	queue := pollerQueue(t, "usm_poller-sat")
	amqpPublish(t, tb.AMQPURL, queue, 0) // declare it
	setPollerEnv(t, tb.AMQPURL, queue, 150*time.Millisecond)
	urlFile := writeSecret(t, "amqp-url", tb.AMQPURL+"\n")
	const (
		min, max = 1, 6
		per      = 20
		cooldown = 4 * time.Second
	)
	repo := newGitRepo(t, "autoscale")
	repo.Commit("autoscaled pollers", map[string]string{"host.yaml": hostDoc("sat-auto", fmt.Sprintf(
		"    - name: usm-poller\n      driver: systemd\n      unit: usm-poller@.service\n      replicas: %d\n"+
			"      autoscale: {amqp: {urlFile: %s, queue: %s}, min: %d, max: %d, messagesPerReplica: %d, cooldown: %s}\n",
		min, urlFile, queue, min, max, per, cooldown))})
	ag := startAgent(t, agentConfig{Source: repo.HTTPURL, Host: "sat-auto", Interval: "1s",
		StartWithin: 20 * time.Second, StopWithin: 15 * time.Second})

	var history []scaleSample // sampled by the test's own goroutine alone
	sample := func() scaleSample {
		st := statusOf(t, ag.Addr)
		s := scaleSample{at: time.Now()}
		for _, a := range st.Autoscale {
			s.desired, s.ready, s.err = a.Desired, a.Ready, a.Error
		}
		history = append(history, s)
		return s
	}
	eventually(t, 30*time.Second, "the minimum runs", func() error {
		if got := activeInstances(t, "usm-poller@.service"); fmt.Sprint(got) != fmt.Sprint(seq(min)) {
			return fmt.Errorf("instances %v", got)
		}
		return nil
	})

	// A backlog: the count rises to the bound it needs at once.
	amqpPublish(t, tb.AMQPURL, queue, 400)
	eventually(t, 30*time.Second, "scaled up to max", func() error {
		if s := sample(); s.desired != max {
			return fmt.Errorf("desired %d (ready %d)", s.desired, s.ready)
		}
		if got := activeInstances(t, "usm-poller@.service"); fmt.Sprint(got) != fmt.Sprint(seq(max)) {
			return fmt.Errorf("instances %v", got)
		}
		return nil
	})

	// RabbitMQ goes away: the count holds and the status says why.
	rabbitmqStop(t)
	stopped := time.Now()
	eventually(t, 30*time.Second, "status says the queue is unreadable", func() error {
		if s := sample(); s.err == "" {
			return fmt.Errorf("no error in the autoscale status")
		}
		return nil
	})
	for time.Since(stopped) < 2*cooldown {
		if s := sample(); s.desired != max {
			t.Fatalf("with RabbitMQ down the count moved to %d", s.desired)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if got := activeInstances(t, "usm-poller@.service"); fmt.Sprint(got) != fmt.Sprint(seq(max)) {
		t.Fatalf("with RabbitMQ down the instances changed: %v", got)
	}
	rabbitmqStart(t)

	// The pollers drain the queue; the count steps back to min, one step
	// per cooldown.
	eventually(t, 3*time.Minute, "queue drained and back at min", func() error {
		s := sample()
		ready, err := queueReady(tb.AMQPURL, queue)
		if err != nil {
			return err
		}
		if ready != 0 || s.desired != min {
			return fmt.Errorf("queue %d ready, desired %d", ready, s.desired)
		}
		if got := activeInstances(t, "usm-poller@.service"); fmt.Sprint(got) != fmt.Sprint(seq(min)) {
			return fmt.Errorf("instances %v", got)
		}
		return nil
	})

	// The recorded history: within bounds, and every step down at least a
	// cooldown after the previous change.
	var steps []string
	var lastChange time.Time
	prev := int32(-1)
	for _, s := range history {
		if s.desired < min || s.desired > max {
			t.Errorf("desired %d outside [%d,%d] at %s", s.desired, min, max, s.at.Format("15:04:05.000"))
		}
		if prev >= 0 && s.desired != prev {
			steps = append(steps, fmt.Sprintf("%s %d->%d", s.at.Format("15:04:05.000"), prev, s.desired))
			if s.desired < prev && !lastChange.IsZero() && s.at.Sub(lastChange) < cooldown-time.Second {
				t.Errorf("stepped down %d->%d only %s after the last change (cooldown %s)", prev, s.desired, s.at.Sub(lastChange), cooldown)
			}
			if s.desired < prev-1 {
				t.Errorf("stepped down by %d at once, maxStepDown is 1", prev-s.desired)
			}
			lastChange = s.at
		}
		prev = s.desired
	}
	t.Logf("autoscale history: %s", strings.Join(steps, ", "))
	// The agent's own events carry every change with its pass.
	var events []string
	for _, e := range statusOf(t, ag.Addr).Events {
		if e.Type == "autoscale" {
			events = append(events, e.From+"->"+e.To)
		}
	}
	t.Logf("autoscale events: %v", events)
}

// TestExampleUsmPollerSatellite runs examples/usm-poller-satellite under
// `reconciler run` as a satellite host would: the AMQP URL in
// /etc/reconciler/amqp-url, pollers consuming usm_poller-sat-7, and a
// backlog that needs ceil(340/50) = 7 of them.
func TestExampleUsmPollerSatellite(t *testing.T) {
	tb := testbed(t)
	holdPollers(t)
	const queue = "usm_poller-sat-7"
	deleteQueue(tb.AMQPURL, queue)
	t.Cleanup(func() { deleteQueue(tb.AMQPURL, queue) })
	amqpPublish(t, tb.AMQPURL, queue, 0)
	// Slow pollers: the backlog must still be there when the count is read.
	setPollerEnv(t, tb.AMQPURL, queue, 2*time.Second)
	if err := os.MkdirAll("/etc/reconciler", 0o755); err != nil {
		t.Fatal(err)
	}
	urlFile := "/etc/reconciler/amqp-url"
	if _, err := os.Stat(urlFile); err == nil {
		t.Fatalf("%s exists already; this test writes its own and would overwrite it", urlFile)
	}
	writeFile(t, urlFile, tb.AMQPURL+"\n", 0o600)
	t.Cleanup(func() { os.Remove(urlFile) })

	repo := newGitRepo(t, "usm-poller-satellite")
	repo.Commit("satellites, as in examples/", readExample(t, "usm-poller-satellite"))
	ag := startAgent(t, agentConfig{Source: repo.HTTPURL, Host: "sat-07", Interval: "1s",
		StartWithin: 20 * time.Second, StopWithin: 15 * time.Second})
	eventually(t, 30*time.Second, "the example's minimum of 2 pollers", func() error {
		if got := activeInstances(t, "usm-poller@.service"); fmt.Sprint(got) != fmt.Sprint(seq(2)) {
			return fmt.Errorf("instances %v", got)
		}
		return nil
	})
	amqpPublish(t, tb.AMQPURL, queue, 340)
	eventually(t, 30*time.Second, "7 pollers for 340 ready messages", func() error {
		st := statusOf(t, ag.Addr)
		if len(st.Autoscale) != 1 || st.Autoscale[0].Desired != 7 {
			return fmt.Errorf("autoscale status %+v", st.Autoscale)
		}
		if got := activeInstances(t, "usm-poller@.service"); fmt.Sprint(got) != fmt.Sprint(seq(7)) {
			return fmt.Errorf("instances %v", got)
		}
		return nil
	})
	st := statusOf(t, ag.Addr)
	a := st.Autoscale[0]
	if a.Service != "systemd/usm-poller" || a.Queue != queue || a.Min != 2 || a.Max != 15 {
		t.Errorf("autoscale status %+v", a)
	}
	if !conditionIs(st, "Ready", true) {
		t.Errorf("agent not ready: %+v", st.Conditions)
	}
}

// TestSystemdRestartOn: a restartOn change restarts the active usm-poller@
// instances one at a time (each restart job done before the next, so their
// new start times ascend by number), and a second apply restarts nothing.
func TestSystemdRestartOn(t *testing.T) {
	lockTestbed(t, "usm-poller")
	stopPollers(t)
	t.Cleanup(func() { stopPollers(t) })
	repo := newGitRepo(t, "pollers-systemd-restart-on")
	src := []string{"--source", repo.HTTPURL, "--host", "sat-systemd", "--cache-dir", t.TempDir(), "--state-dir", t.TempDir()}
	commit := func(v string) {
		repo.Commit("restartOn "+v, map[string]string{"host.yaml": hostDoc("sat-systemd",
			"    - {name: usm-poller, driver: systemd, unit: usm-poller@.service, replicas: 3, restartOn: "+v+"}\n")})
	}
	// mainPIDs are the instances' main pids and start times (µs).
	mainPIDs := func() (pids, starts []string) {
		for n := 1; n <= 3; n++ {
			out := inSystemd(t, "systemctl", "show", "-p", "MainPID", "-p", "ExecMainStartTimestampMonotonic", fmt.Sprintf("usm-poller@%d.service", n))
			for _, line := range strings.Split(out, "\n") {
				k, v, _ := strings.Cut(line, "=")
				switch k {
				case "MainPID":
					pids = append(pids, v)
				case "ExecMainStartTimestampMonotonic":
					starts = append(starts, v)
				}
			}
		}
		return pids, starts
	}
	commit("v1")
	cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "apply 3 instances at v1")
	before, _ := mainPIDs()
	cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "second apply at v1")
	if again, _ := mainPIDs(); !slices.Equal(again, before) {
		t.Fatalf("a second apply at v1 restarted instances: pids %v, before %v", again, before)
	}
	commit("v2")
	r := cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "apply restartOn v2")
	after, starts := mainPIDs()
	t.Logf("restartOn v2 took %s; pids %v -> %v; start times %v", r.Took.Round(time.Millisecond), before, after, starts)
	for i := range after {
		if after[i] == before[i] {
			t.Errorf("usm-poller@%d was not restarted (pid %s)", i+1, after[i])
		}
		if i > 0 {
			a, _ := strconv.ParseInt(starts[i-1], 10, 64)
			b, _ := strconv.ParseInt(starts[i], 10, 64)
			if b <= a {
				t.Errorf("usm-poller@%d started (%d) before @%d (%d): not in order", i+1, b, i, a)
			}
		}
	}
	if got := activeInstances(t, "usm-poller@.service"); fmt.Sprint(got) != fmt.Sprint(seq(3)) {
		t.Errorf("active instances %v, want 1-3", got)
	}
	cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "second apply at v2")
	if again, _ := mainPIDs(); !slices.Equal(again, after) {
		t.Errorf("a second apply at v2 restarted again: pids %v, before %v", again, after)
	}
}

// TestSwarmRestartOn: a restartOn change is a forced rolling update, one
// task at a time, with the value on the service's label; a second apply
// restarts nothing.
func TestSwarmRestartOn(t *testing.T) {
	cli0, name := newOwnService(t, "usm-poller-swarm-ro", 2)
	repo := newGitRepo(t, "pollers-swarm-restart-on")
	src := repo.sourceArgs("sat-swarm")
	ctx := ctxT(t, 5*time.Minute)
	running := func() []string {
		tasks, err := cli0.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", name), filters.Arg("desired-state", "running"))})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, tk := range tasks {
			if tk.Status.State == swarm.TaskStateRunning {
				ids = append(ids, tk.ID)
			}
		}
		slices.Sort(ids)
		return ids
	}
	eventually(t, time.Minute, "2 tasks running", func() error {
		if n := len(running()); n != 2 {
			return fmt.Errorf("%d running", n)
		}
		return nil
	})
	before := running()
	repo.Commit("restartOn v2", map[string]string{"host.yaml": hostDoc("sat-swarm",
		fmt.Sprintf("    - {name: %s, replicas: 2, stopTimeout: 5s, restartOn: v2}\n", name))})
	pl := cli(t, nil, append([]string{"plan"}, src...)...).mustCode(t, 2, "plan restartOn v2")
	if !regexp.MustCompile(`restartOn\s+\(none\)\s+v2\s+restart`).MatchString(pl.Stdout) {
		t.Errorf("plan does not show the restart:\n%s", pl.Stdout)
	}
	r := cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "apply restartOn v2")
	after := running()
	s, _, err := cli0.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restartOn v2 took %s; tasks %v -> %v", r.Took.Round(time.Millisecond), before, after)
	if len(after) != 2 || slices.ContainsFunc(after, func(id string) bool { return slices.Contains(before, id) }) {
		t.Errorf("tasks %v after, %v before: want 2 new ones", after, before)
	}
	if s.Spec.Labels["dev.reconciler.restart-on"] != "v2" || s.Spec.UpdateConfig == nil || s.Spec.UpdateConfig.Parallelism != 1 {
		t.Errorf("service labels %v update config %+v", s.Spec.Labels, s.Spec.UpdateConfig)
	}
	dp, _, env := counted(t)
	cli(t, env, append([]string{"apply"}, src...)...).mustCode(t, 0, "second apply at v2")
	if dp.Mutating() != 0 {
		t.Errorf("a second apply at v2 wrote to Docker: %v", dp.Counts())
	}
}
