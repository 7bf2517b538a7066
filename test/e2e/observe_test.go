//go:build e2e

package e2e

// Observability (issue 10, seed 002): resource figures checked against
// what /proc says of the very processes, the event stream of a maintenance
// flip, one pass shown whole by `reconciler status --pass`, and `reconciler
// export` committed back giving a plan with no drift.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"reconciler.dev/reconciler/api/status"
	"reconciler.dev/reconciler/controllers/monitor"
)

// ---------------------------------------------------------------------------
// What /proc says, read the way a person would: /proc/PID/status, the fd
// folder, and ss inside the process's network namespace.

// procTruth is what /proc says of a set of processes (and their children).
type procTruth struct {
	pids                             []int
	rss, vms                         uint64
	cpuTicks                         uint64
	processes, threads, files, conns int
}

// statusField reads one "Key:  value kB" line of /proc/PID/status.
func statusField(status, key string) (uint64, bool) {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				return 0, false
			}
			n, err := strconv.ParseUint(f[0], 10, 64)
			if len(f) > 1 && f[1] == "kB" {
				n *= 1024
			}
			return n, err == nil
		}
	}
	return 0, false
}

// hostPIDs lists the ids of every process on the host, from /proc.
func hostPIDs() []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// descendants returns pid and every process below it, from the PPid lines
// of every process on the host.
func descendants(t *testing.T, pid int) []int {
	t.Helper()
	children := map[int][]int{}
	for _, p := range hostPIDs() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		if pp, ok := statusField(string(b), "PPid"); ok {
			children[int(pp)] = append(children[int(pp)], p)
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// establishedOf counts the ESTABLISHED TCP sockets ss lists for pid, in
// its network namespace.
func establishedOf(t *testing.T, pid int) int {
	t.Helper()
	out, err := execOut("nsenter", "-t", strconv.Itoa(pid), "-n", "ss", "-Htnp", "state", "established")
	if err != nil {
		t.Fatalf("ss in the network namespace of %d: %v\n%s", pid, err, out)
	}
	n := 0
	for _, line := range strings.Split(out, "\n") {
		n += strings.Count(line, fmt.Sprintf("pid=%d,", pid))
	}
	return n
}

func readTruth(t *testing.T, roots []int) procTruth {
	t.Helper()
	tr := procTruth{pids: roots}
	for _, root := range roots {
		for _, pid := range descendants(t, root) {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if err != nil {
				t.Fatalf("pid %d: %v", pid, err)
			}
			s := string(b)
			rss, _ := statusField(s, "VmRSS")
			vms, _ := statusField(s, "VmSize")
			threads, _ := statusField(s, "Threads")
			fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
			if err != nil {
				t.Fatal(err)
			}
			_, cpu := procRSSAndCPU(t, pid)
			tr.rss += rss
			tr.vms += vms
			tr.cpuTicks += uint64(cpu / (10 * time.Millisecond))
			tr.processes++
			tr.threads += int(threads)
			tr.files += len(fds)
			tr.conns += establishedOf(t, pid)
		}
	}
	return tr
}

// near says whether got is within frac of want, or between two readings.
func near(got, a, b float64, frac float64) bool {
	lo, hi := math.Min(a, b), math.Max(a, b)
	return got >= lo*(1-frac) && got <= hi*(1+frac)
}

// countNear: the same for counts, which must match one reading exactly or
// lie within 10% of them.
func countNear(got, a, b int) bool {
	return got == a || got == b || near(float64(got), float64(a), float64(b), 0.10)
}

// checkFigures compares the agent's figures of one service with /proc read
// just before and just after they were collected.
func checkFigures(t *testing.T, what string, r *monitor.Resources, before, after procTruth) {
	t.Helper()
	t.Logf("%s: agent %s rss %d vms %d cpu %.2fs procs %d threads %d files %d conns %d (pids %v); /proc before rss %d threads %d files %d conns %d, after rss %d threads %d files %d conns %d",
		what, r.Source, r.RSSBytes, r.VMSBytes, r.CPUSeconds, r.Processes, r.Threads, r.OpenFiles, r.Connections, r.PIDs,
		before.rss, before.threads, before.files, before.conns, after.rss, after.threads, after.files, after.conns)
	if r.Processes != after.processes && r.Processes != before.processes {
		t.Errorf("%s: %d processes, /proc has %d", what, r.Processes, after.processes)
	}
	if !near(float64(r.RSSBytes), float64(before.rss), float64(after.rss), 0.10) {
		t.Errorf("%s: RSS %d, /proc says %d then %d (more than 10%% apart)", what, r.RSSBytes, before.rss, after.rss)
	}
	if !near(float64(r.VMSBytes), float64(before.vms), float64(after.vms), 0.10) {
		t.Errorf("%s: VMS %d, /proc says %d then %d", what, r.VMSBytes, before.vms, after.vms)
	}
	if !countNear(r.Threads, before.threads, after.threads) {
		t.Errorf("%s: %d threads, /proc says %d then %d", what, r.Threads, before.threads, after.threads)
	}
	if !countNear(r.OpenFiles, before.files, after.files) {
		t.Errorf("%s: %d open files, /proc says %d then %d", what, r.OpenFiles, before.files, after.files)
	}
	if r.Connections != before.conns && r.Connections != after.conns {
		t.Errorf("%s: %d connections, ss says %d then %d", what, r.Connections, before.conns, after.conns)
	}
	// CPU in clock ticks: at least what the processes used before (a
	// cgroup's figure counts exited processes too), and, read from /proc,
	// no more than after (one tick of slack each way).
	cpu := r.CPUSeconds * 100
	if cpu < float64(before.cpuTicks)-1 || (r.Source == "proc" && cpu > float64(after.cpuTicks)+1) {
		t.Errorf("%s: CPU %.2fs, /proc says %.2fs then %.2fs", what, r.CPUSeconds, float64(before.cpuTicks)/100, float64(after.cpuTicks)/100)
	}
}

// hostPIDOfSystemdUnit finds the host pid of a unit's main process in the
// testbed's systemd container: systemctl names it in the container's PID
// namespace; the host process whose NSpid ends with it, in that namespace,
// is the one.
func hostPIDOfSystemdUnit(t *testing.T, unit string) int {
	t.Helper()
	tb := testbed(t)
	nspid, err := strconv.Atoi(inSystemd(t, "systemctl", "show", "-p", "MainPID", "--value", unit))
	if err != nil || nspid == 0 {
		t.Fatalf("%s has no main pid: %v", unit, err)
	}
	init, err := execOut("docker", "inspect", "-f", "{{.State.Pid}}", tb.SystemdContainer)
	if err != nil {
		t.Fatal(init, err)
	}
	ns, err := os.Readlink("/proc/" + init + "/ns/pid")
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range hostPIDs() {
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); l != ns {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "NSpid:"); ok {
				f := strings.Fields(v)
				if len(f) > 1 && f[len(f)-1] == strconv.Itoa(nspid) {
					return pid
				}
			}
		}
	}
	t.Fatalf("no host process is pid %d of %s's namespace", nspid, unit)
	return 0
}

// hostPIDsOfSwarmService asks Docker for the main process of every running
// task of a service.
func hostPIDsOfSwarmService(t *testing.T, name string) []int {
	t.Helper()
	cli := dockerClient(t)
	ctx := ctxT(t, 30*time.Second)
	list, err := cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", "com.docker.swarm.service.name="+name), filters.Arg("status", "running"))})
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, c := range list {
		info, err := cli.ContainerInspect(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, info.State.Pid)
	}
	sort.Ints(pids)
	return pids
}

var svstatPIDRE = regexp.MustCompile(`: up \(pid (\d+)\)`)

// hostPIDOfDaemontools asks svstat.
func hostPIDOfDaemontools(t *testing.T, dir string) int {
	t.Helper()
	out, _ := execOut("svstat", dir)
	m := svstatPIDRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("svstat %s: %s", dir, out)
	}
	pid, _ := strconv.Atoi(m[1])
	return pid
}

// resourcesOf returns one object's figures from /status.
func resourcesOf(st status.Status, subject string) *monitor.Resources {
	for _, o := range st.Objects {
		if o.Subject == subject {
			return o.Resources
		}
	}
	return nil
}

// TestObserveResourceFigures runs a systemd template instance and a
// daemontools service that each hold a RabbitMQ connection, and a Swarm
// service, under an agent collecting every second, and checks each
// service's figures against /proc read just before and just after a
// collection: RSS and VMS within 10%, threads and open files exactly or
// within 10%, connections exactly (as ss counts them), CPU between the two
// readings. It also checks /metrics and `reconciler status` show them, and
// logs what collections cost.
func TestObserveResourceFigures(t *testing.T) {
	tb := testbed(t)
	queue := pollerQueue(t, "obs-queue")
	setPollerEnv(t, tb.AMQPURL, queue, 0)

	_, swarmName := newOwnService(t, "obs-swarm", 1)

	dtName := uniqueName("obs-dt")
	dirs := dtInstall(t, dtDaemontools, tb.SvscanDir, map[string]string{
		dtName: fmt.Sprintf("#!/bin/sh\nexec env WORKER_AMQP_URL=%s WORKER_QUEUE=%s %s %s\n", tb.AMQPURL, queue, tb.WorkerBin, dtName),
	}, nil)
	dtDir := dirs[dtName]

	const host = "obs-01"
	repo := newGitRepo(t, "observe")
	rev := repo.Commit("three services", map[string]string{"host.yaml": hostDoc(host, fmt.Sprintf(
		"    - {name: %s, replicas: 1}\n"+
			"    - {name: usm-poller, driver: systemd, unit: usm-poller@.service, replicas: 1}\n"+
			"    - {name: %s, driver: daemontools, dir: %s, replicas: 1}\n", swarmName, dtName, dtDir))})
	a := startAgent(t, agentConfig{Source: repo.HTTPURL, Host: host, Interval: "2s",
		Args: []string{"--monitor-interval", "1s"}})
	awaitConverged(t, a, rev, 2*time.Minute)

	subjects := map[string]func() []int{
		"swarm/" + swarmName:    func() []int { return hostPIDsOfSwarmService(t, swarmName) },
		"systemd/usm-poller":    func() []int { return []int{hostPIDOfSystemdUnit(t, "usm-poller@1.service")} },
		"daemontools/" + dtName: func() []int { return []int{hostPIDOfDaemontools(t, dtDir)} },
	}
	// Every service runs and holds what it should before we compare: the
	// two consumers are connected (ss sees it).
	eventually(t, 60*time.Second, "the consumers connected and every service sampled", func() error {
		st, err := tryAgentStatus(a.Addr)
		if err != nil {
			return err
		}
		for s, pids := range subjects {
			r := resourcesOf(st, s)
			if r == nil || r.Processes == 0 {
				return fmt.Errorf("%s not sampled yet: %+v", s, r)
			}
			if strings.HasPrefix(s, "swarm/") {
				continue
			}
			if n := establishedOf(t, pids()[0]); n != 1 {
				return fmt.Errorf("%s holds %d connections, want its one to RabbitMQ", s, n)
			}
		}
		return nil
	})

	names := make([]string, 0, len(subjects))
	for s := range subjects {
		names = append(names, s)
	}
	sort.Strings(names)
	for _, s := range names {
		pids := subjects[s]()
		before := readTruth(t, pids)
		readAt := time.Now()
		var r *monitor.Resources
		eventually(t, 15*time.Second, "a collection after reading /proc for "+s, func() error {
			st, err := tryAgentStatus(a.Addr)
			if err != nil {
				return err
			}
			if r = resourcesOf(st, s); r == nil || !r.At.After(readAt) {
				return fmt.Errorf("last figures %+v", r)
			}
			return nil
		})
		after := readTruth(t, pids)
		if r.Replicas != len(pids) {
			t.Errorf("%s: %d replicas sampled, %d run", s, r.Replicas, len(pids))
		}
		checkFigures(t, s, r, before, after)
	}

	// The same figures in /metrics, labelled by service.
	m := agentMetrics(t, a.Addr)
	st := statusOf(t, a.Addr)
	for _, s := range names {
		name := s[strings.Index(s, "/")+1:]
		r := resourcesOf(st, s)
		got, ok := m[fmt.Sprintf(`reconciler_service_memory_bytes{service=%q}`, name)]
		if !ok || !near(got, float64(r.RSSBytes), float64(r.RSSBytes), 0.10) {
			t.Errorf("reconciler_service_memory_bytes of %s: %v (present %v), /status %d", name, got, ok, r.RSSBytes)
		}
		for _, metric := range []string{"reconciler_service_cpu_seconds_total", "reconciler_service_virtual_memory_bytes",
			"reconciler_service_processes", "reconciler_service_threads", "reconciler_service_open_files", "reconciler_service_connections"} {
			if _, ok := m[fmt.Sprintf(`%s{service=%q}`, metric, name)]; !ok {
				t.Errorf("no %s for %s", metric, name)
			}
		}
	}
	// And in `reconciler status`.
	out := cli(t, nil, "status", "--listen", a.Addr).mustCode(t, 0, "reconciler status")
	for _, s := range names {
		if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(s) + `\s+1\s+\d`).MatchString(out.Stdout) {
			t.Errorf("reconciler status shows no figures for %s:\n%s", s, out.Stdout)
		}
	}

	// What collections cost: the agent's own account of the last one, and
	// the CPU over ten of them.
	c0, cpu0 := m["reconciler_monitor_collections_total"], m["reconciler_monitor_cpu_seconds_total"]
	calls0 := sumPrefix(m, `reconciler_api_calls_total{driver="monitor"`)
	time.Sleep(10500 * time.Millisecond)
	m = agentMetrics(t, a.Addr)
	n := m["reconciler_monitor_collections_total"] - c0
	st = statusOf(t, a.Addr)
	last := st.Monitor.Last
	t.Logf("cost per collection (3 services: 1 swarm task, 1 systemd unit, 1 daemontools service): last one took %.2f ms, %.2f ms CPU, calls %v, %d /proc reads; over %v collections: %.2f ms CPU and %.1f API calls each",
		last.TookSeconds*1000, last.CPUSeconds*1000, last.Calls, last.ProcReads, n,
		(m["reconciler_monitor_cpu_seconds_total"]-cpu0)/n*1000, (sumPrefix(m, `reconciler_api_calls_total{driver="monitor"`)-calls0)/n)
	if n < 5 {
		t.Errorf("%v collections in 10.5s at --monitor-interval 1s", n)
	}
	// One list per driver, one properties call per unit; one stats call
	// per container, or none: an engine whose stats come back empty (this
	// testbed's) is asked again every tenth collection only.
	want := map[string]int{"docker-list": 1, "systemd-list-units": 1, "systemd-properties": 1}
	for verb, w := range want {
		if last.Calls[verb] != w {
			t.Errorf("last collection: %d %s calls, want %d (all: %v)", last.Calls[verb], verb, w, last.Calls)
		}
	}
	if n := last.Calls["docker-stats"]; n > 1 {
		t.Errorf("last collection: %d stats calls for one container", n)
	}
	if len(last.Errors) > 0 {
		t.Errorf("collection errors: %v", last.Errors)
	}
}

// sumPrefix sums the series whose text starts with prefix.
func sumPrefix(m map[string]float64, prefix string) float64 {
	var sum float64
	for series, v := range m {
		if strings.HasPrefix(series, prefix) {
			sum += v
		}
	}
	return sum
}

// ---------------------------------------------------------------------------
// The event stream

// sseClient follows /events and keeps every event it receives, in order.
type sseClient struct {
	mu     sync.Mutex
	events []status.Event
	errs   []string
	cancel context.CancelFunc
	done   chan struct{}
}

// followEvents subscribes to the agent's /events (types: the ?type= filter,
// "" for all) and returns once the subscription is live: the agent writes a
// comment line right after subscribing.
func followEvents(t *testing.T, addr, types string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	u := "http://" + addr + "/events"
	if types != "" {
		u += "?type=" + types
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("/events: %d %s", resp.StatusCode, ct)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, ":") {
		t.Fatalf("/events opened with %q %v", line, err)
	}
	c := &sseClient{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer resp.Body.Close()
		var name, data string
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				if err != io.EOF && ctx.Err() == nil {
					c.fail("reading /events: %v", err)
				}
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case strings.HasPrefix(line, ":"): // a comment: keepalive
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data += strings.TrimPrefix(line, "data: ")
			case line == "":
				if data != "" {
					var ev status.Event
					if err := json.Unmarshal([]byte(data), &ev); err != nil {
						c.fail("event %q: %v", data, err)
					} else if ev.Type != name {
						c.fail("event named %q carries type %q", name, ev.Type)
					}
					c.mu.Lock()
					c.events = append(c.events, ev)
					c.mu.Unlock()
				}
				name, data = "", ""
			default:
				c.fail("unexpected line %q", line)
			}
		}
	}()
	t.Cleanup(c.stop)
	return c
}

func (c *sseClient) fail(format string, args ...any) {
	c.mu.Lock()
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
	c.mu.Unlock()
}

func (c *sseClient) stop() {
	c.cancel()
	<-c.done
}

// of returns the events of one pass received so far.
func (c *sseClient) of(pass string) []status.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []status.Event
	for _, ev := range c.events {
		if ev.Pass == pass {
			out = append(out, ev)
		}
	}
	return out
}

func evLine(ev status.Event) string {
	return strings.TrimSpace(fmt.Sprintf("%s %s %s %s->%s %s", ev.Type, ev.Subject, ev.Field, ev.From, ev.To, ev.Message))
}

func evLines(evs []status.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		b.WriteString(ev.Time.Format("15:04:05.000") + " " + evLine(ev) + "\n")
	}
	return b.String()
}

// indexOf finds the first event of a type (and subject, if given).
func indexOf(evs []status.Event, typ, subject string) int {
	for i, ev := range evs {
		if ev.Type == typ && (subject == "" || ev.Subject == subject) {
			return i
		}
	}
	return -1
}

// flipPass returns the pass that carried out rev (the one with actions).
func flipPass(t *testing.T, st status.Status, rev string) status.PassSummary {
	t.Helper()
	for _, p := range st.Passes {
		if p.Revision == rev && len(p.Actions) > 0 {
			return p
		}
	}
	t.Fatalf("no pass with actions enforced %s: %+v", shortRev(rev), st.Passes)
	return status.PassSummary{}
}

// TestObserveMaintenanceFlipEvents follows /events, unfiltered and with
// ?type=, while maintenance is committed on the factory-proxy example, and
// checks the flip arrives whole and in order: pass-started first, the
// drift found, then stage by stage the timer stopped and disabled before
// any service shrinks, the broker only after the proxy and the module
// drained, pass-finished last; every event naming the pass and its
// revision; the same sequence /passes/{id} kept; the filtered stream the
// same events of those types. Then `reconciler status --pass` shows that
// pass: actions with outcomes, stage timings, events.
func TestObserveMaintenanceFlipEvents(t *testing.T) {
	f := deployFactoryProxy(t)
	a := startAgent(t, agentConfig{Source: f.repo.HTTPURL, Interval: "1s"})
	awaitConverged(t, a, fpHead(f), time.Minute)

	all := followEvents(t, a.Addr, "")
	const filter = "pass-started,stage,action,pass-finished"
	filtered := followEvents(t, a.Addr, filter)
	rev := f.setMaintenance(true)
	st := awaitConverged(t, a, rev, 2*time.Minute)
	p := flipPass(t, st, rev)
	eventually(t, 10*time.Second, "pass-finished of the flip on both streams", func() error {
		for _, c := range []*sseClient{all, filtered} {
			evs := c.of(p.ID)
			if len(evs) == 0 || evs[len(evs)-1].Type != "pass-finished" {
				return fmt.Errorf("%d events so far", len(evs))
			}
		}
		return nil
	})
	all.stop()
	filtered.stop()
	for _, c := range []*sseClient{all, filtered} {
		for _, e := range c.errs {
			t.Error(e)
		}
	}

	evs := all.of(p.ID)
	t.Logf("the flip, pass %s, as /events delivered it:\n%s", p.ID, evLines(evs))
	// The pass opens with its fetch (the new revision judged and taken
	// into force), then pass-started; it closes with pass-finished.
	start := indexOf(evs, "pass-started", "")
	if start < 1 || evs[len(evs)-1].Type != "pass-finished" || evs[len(evs)-1].Message != "converged" {
		t.Errorf("the pass does not open with its revision, then pass-started, and close with pass-finished converged")
	}
	for _, ev := range evs[:max(start, 0)] {
		if !strings.HasPrefix(ev.Type, "revision") && !strings.HasPrefix(ev.Type, "source-") {
			t.Errorf("%s comes before pass-started", evLine(ev))
		}
	}
	for _, ev := range evs {
		if ev.Revision != shortRev(rev) {
			t.Errorf("event %s carries revision %q, want %q", evLine(ev), ev.Revision, shortRev(rev))
		}
	}
	// Drift found next, one event per field the plan changes.
	for i := start + 1; i < start+1+len(p.Actions) && i < len(evs); i++ {
		if evs[i].Type != "drift" {
			t.Errorf("event %d is %s, want drift (one per action right after pass-started)", i, evLine(evs[i]))
		}
	}
	// The stages in the order the pass ran them.
	var stages []string
	for _, ev := range evs {
		if ev.Type == "stage" {
			stages = append(stages, ev.Message)
		}
	}
	var wantStages []string
	for _, s := range p.Stages {
		wantStages = append(wantStages, s.Title)
	}
	if fmt.Sprint(stages) != fmt.Sprint(wantStages) || len(stages) < 3 {
		t.Errorf("stage events %q, the pass ran %q", stages, wantStages)
	}
	// Each action after its stage began; the runbook's order.
	unit := "unit/" + fpTimer
	order := []struct{ before, after [2]string }{
		{[2]string{"stage", ""}, [2]string{"action", unit}},
		{[2]string{"action", unit}, [2]string{"action", "swarm/factory-proxy"}},
		{[2]string{"action", unit}, [2]string{"action", "swarm/reference-BL"}},
		{[2]string{"drained", "swarm/factory-proxy"}, [2]string{"action", "swarm/factory-broker"}},
		{[2]string{"drained", "swarm/reference-BL"}, [2]string{"action", "swarm/factory-broker"}},
		{[2]string{"action", "swarm/factory-broker"}, [2]string{"drained", "swarm/factory-broker"}},
	}
	for _, o := range order {
		i, j := indexOf(evs, o.before[0], o.before[1]), indexOf(evs, o.after[0], o.after[1])
		if i < 0 || j < 0 || i >= j {
			t.Errorf("%v (event %d) should come before %v (event %d)", o.before, i, o.after, j)
		}
	}
	// Two actions on the timer (stop, then disable), one per service.
	var acts []string
	for _, ev := range evs {
		if ev.Type == "action" {
			acts = append(acts, ev.Subject+" "+ev.Field+" "+ev.Message)
		}
	}
	if len(acts) != 5 || acts[0] != unit+" active stop" || acts[1] != unit+" enabled disable" {
		t.Errorf("actions %q", acts)
	}
	// The stream is the pass's record, event for event.
	code, body, err := agentGet(a.Addr, "/passes/"+p.ID)
	if err != nil || code != 200 {
		t.Fatalf("/passes/%s: %d %v", p.ID, code, err)
	}
	var d status.PassDetail
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	if got, want := evLines(evs), evLines(d.Events); got != want {
		t.Errorf("/events delivered:\n%s/passes/%s kept:\n%s", got, p.ID, want)
	}
	// The filtered stream: exactly the events of those types, same order.
	var want []status.Event
	keep := map[string]bool{}
	for _, typ := range strings.Split(filter, ",") {
		keep[typ] = true
	}
	for _, ev := range evs {
		if keep[ev.Type] {
			want = append(want, ev)
		}
	}
	if got := filtered.of(p.ID); evLines(got) != evLines(want) {
		t.Errorf("?type=%s delivered:\n%swant:\n%s", filter, evLines(got), evLines(want))
	}
	filtered.mu.Lock()
	for _, ev := range filtered.events {
		if !keep[ev.Type] {
			t.Errorf("?type=%s delivered a %s event", filter, ev.Type)
		}
	}
	filtered.mu.Unlock()

	// reconciler status --pass ID shows that pass.
	out := cli(t, nil, "status", "--listen", a.Addr, "--pass", p.ID).mustCode(t, 0, "status --pass")
	t.Logf("reconciler status --pass %s:\n%s", p.ID, out.Stdout)
	for _, want := range []string{
		"pass:      " + p.ID,
		"revision:  " + rev,
		"result:    converged",
		"stages:",
		"actions:",
		fmt.Sprintf("events:    %d", len(d.Events)),
	} {
		if !strings.Contains(out.Stdout, want) {
			t.Errorf("status --pass lacks %q", want)
		}
	}
	for _, re := range []string{
		`(?m)^  \d+\s+` + regexp.QuoteMeta(unit) + `\s+active\s+true\s+false\s+stop\s+applied\s*$`,
		`(?m)^  \d+\s+` + regexp.QuoteMeta(unit) + `\s+enabled\s+true\s+false\s+disable\s+applied\s*$`,
		`(?m)^  \d+\s+swarm/factory-proxy\s+replicas\s+1\s+0\s+scale-down\s+applied\s*$`,
		`(?m)^  \d+\s+swarm/reference-BL\s+replicas\s+1\s+0\s+scale-down\s+applied\s*$`,
		`(?m)^  \d+\s+swarm/factory-broker\s+replicas\s+1\s+0\s+scale-down\s+applied\s*$`,
		`(?m)^  \+\d+\.\d{3}s\s+pass-started\s`,
		`(?m)^  \+\d+\.\d{3}s\s+pass-finished\s+converged$`,
	} {
		if !regexp.MustCompile(re).MatchString(out.Stdout) {
			t.Errorf("status --pass does not match %s", re)
		}
	}
	for _, s := range p.Stages {
		if !strings.Contains(out.Stdout, s.Title) {
			t.Errorf("status --pass lacks stage %q", s.Title)
		}
	}
	// A prefix of the id works, -o json is the pass and its events, an
	// unknown id is an error.
	js := cli(t, nil, "status", "--listen", a.Addr, "--pass", p.ID[:len(p.ID)-2], "-o", "json").mustCode(t, 0, "status --pass PREFIX -o json")
	var dj status.PassDetail
	if err := json.Unmarshal([]byte(js.Stdout), &dj); err != nil || dj.Pass.ID != p.ID || len(dj.Events) != len(d.Events) || len(dj.Pass.Actions) != 5 {
		t.Errorf("status --pass -o json: %v %+v", err, dj.Pass)
	}
	for _, act := range dj.Pass.Actions {
		if act.Pass != p.ID || act.Revision != shortRev(rev) || act.Outcome != "applied" {
			t.Errorf("action %s: pass %q revision %q outcome %q", act.String(), act.Pass, act.Revision, act.Outcome)
		}
	}
	bad := cli(t, nil, "status", "--listen", a.Addr, "--pass", "19700101T000000-00000000")
	if bad.Code != 1 || !strings.Contains(bad.Stderr, "not among the last 20 passes") {
		t.Errorf("status --pass of an unknown pass: exit %d\n%s", bad.Code, bad.Stderr)
	}
}

// ---------------------------------------------------------------------------
// export

// TestExportFactoryProxyPlanInSync converges the factory-proxy example,
// exports the live state narrowed to the example's services and timer,
// commits the document to a new repo and plans it: no drift, exit 0. The
// export is valid, stable (the same bytes twice, --select given either
// way), and an export of everything the testbed runs validates too.
func TestExportFactoryProxyPlanInSync(t *testing.T) {
	f := deployFactoryProxy(t)
	cli(t, nil, append([]string{"apply"}, f.source()...)...).mustCode(t, 0, "apply of the example")

	sel := "factory-broker,factory-proxy,reference-BL," + fpTimer
	r := cli(t, nil, "export", "--host", fpHost, "--select", sel).mustCode(t, 0, "export --select")
	t.Logf("reconciler export --host %s --select %s:\n%s%s", fpHost, sel, r.Stdout, r.Stderr)
	doc := r.Stdout
	for _, want := range []string{
		"apiVersion: reconciler.dev/v1\nkind: Host\nmetadata:\n  name: fp-01\n",
		"    - name: factory-broker\n      replicas: 1\n      image: local/worker:1\n",
		"    - name: factory-proxy\n      replicas: 1\n      image: local/worker:1\n",
		"    - name: reference-BL\n      replicas: 1\n      image: local/worker:1\n",
		"  units:\n    - name: " + fpTimer + "\n      enabled: true\n      active: true\n",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("the export lacks:\n%s", want)
		}
	}
	if n := strings.Count(doc, "- name: "); n != 4 {
		t.Errorf("%d objects exported, want the 4 selected", n)
	}
	// Stable: the same bytes again, with --select repeated instead.
	again := cli(t, nil, "export", "--host", fpHost, "--select", "factory-*", "--select", "reference-BL", "--select", "abb-*.timer").mustCode(t, 0, "export again")
	if again.Stdout != strings.Replace(doc, "# Selected: "+strings.ReplaceAll(sel, ",", ", "), "# Selected: factory-*, reference-BL, abb-*.timer", 1) {
		t.Errorf("a second export differs:\n%s", again.Stdout)
	}
	// Valid, as validate judges it.
	dir := sourceDir(t, map[string]string{"fp-01.yaml": doc})
	cli(t, nil, "validate", dir).mustCode(t, 0, "validate of the export")
	// Committed back, a plan finds nothing to do.
	repo := newGitRepo(t, "exported")
	repo.Commit("exported from fp-01", map[string]string{"hosts/fp-01.yaml": doc})
	p := cli(t, nil, "plan", "--source", repo.HTTPURL, "--host", fpHost, "--cache-dir", t.TempDir()).mustCode(t, 0, "plan of the export")
	if !strings.Contains(p.Stdout, "in sync: nothing to do") {
		t.Errorf("plan:\n%s", p.Stdout)
	}

	// Everything the testbed runs (other tests' services included) still
	// makes a valid document.
	tb := testbed(t)
	full := cli(t, nil, "export", "--host", fpHost, "--supervisor-socket", tb.SupervisorSocket, "--svscan-dir", tb.SvscanDir+","+tb.RunitDir, "--check=false")
	if full.Code != 0 {
		t.Fatalf("export of everything: exit %d\n%s", full.Code, full.Stderr)
	}
	writeFile(t, filepath.Join(dir, "fp-01.yaml"), full.Stdout, 0o644)
	cli(t, nil, "validate", dir).mustCode(t, 0, "validate of the full export")
	t.Logf("export of everything: %d services and units; stderr:\n%s", strings.Count(full.Stdout, "- name: "), full.Stderr)
}
