//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"reconciler.dev/reconciler/controllers/compose"
	"reconciler.dev/reconciler/internal/callcount"
)

// The seed 001 runbook: "change the number of replicas to 5 and start the
// containers in the background: docker compose up -d". Here the project is
// brought up once by a real compose client (Debian's docker-compose 1.29,
// which hack/testbed installs), and from then on the count is a commit.
// After every reconciler action the tests ask docker-compose itself: `ps`
// must agree, and `up -d` with the same count must recreate nothing.

const (
	composeService = "poller"
	composeHost    = "sat-7"
	// composeStopDelay is how long a poller keeps "finishing its tasks"
	// after SIGTERM (the seed's poller takes up to about 5 s).
	composeStopDelay = 2 * time.Second
)

// composeFile is the project's compose file, as seed 001 writes it.
const composeFile = `version: "2.4"
services:
  poller:
    image: local/worker:1
    restart: unless-stopped
    stop_grace_period: 10s
    environment:
      WORKER_STOP_DELAY: %s
      USM_POLLER_SATELLITE_ID: "7"
`

// composeProject is a Compose project with one service, poller, brought up
// by `docker-compose -p NAME -f FILE up -d`: a network <project>_default and
// a container <project>_poller_1. The image carries the testbed's label;
// everything is removed when the test ends.
type composeProject struct {
	t       *testing.T
	docker  *client.Client
	name    string
	network string
	file    string // the compose file
	repo    *GitRepo
	cache   string
}

func newComposeProject(t *testing.T) *composeProject {
	t.Helper()
	testbed(t)
	dir := t.TempDir()
	p := &composeProject{t: t, docker: dockerClient(t), name: uniqueName("cmp"), cache: t.TempDir(),
		file: filepath.Join(dir, "compose.yaml")}
	p.network = p.name + "_default"
	writeFile(t, p.file, fmt.Appendf(nil, composeFile, composeStopDelay), 0o644)
	t.Cleanup(p.remove)
	p.compose("up", "-d")
	p.repo = newGitRepo(t, "compose")
	return p
}

// compose runs docker-compose on the project (against the testbed's
// dockerd: DOCKER_HOST is in the environment) and returns its output.
func (p *composeProject) compose(args ...string) string {
	p.t.Helper()
	return run(p.t, filepath.Dir(p.file), "docker-compose", append([]string{"--no-ansi", "-p", p.name, "-f", p.file}, args...)...)
}

// composeName is the name docker-compose 1.29 gives container n; the
// driver names the replicas it makes in the same style.
func (p *composeProject) composeName(n int) string {
	return compose.ReplicaName(p.name+"_"+composeService+"_1", p.name, composeService, n)
}

// composeAgrees fails the test unless docker-compose sees what the
// reconciler made of the project: `docker-compose ps` lists containers 1..n
// up (and at 0 only the kept #1, exited), and `docker-compose up -d
// --scale poller=n` creates, recreates, starts and removes nothing: the
// containers are the same ones afterwards. At 0 the `up` is left out:
// docker-compose would remove the kept #1, which the driver needs as the
// template of the next scale-up (see the compose package doc).
func (p *composeProject) composeAgrees(n int) {
	p.t.Helper()
	var up, other []string
	for _, line := range strings.Split(p.compose("ps"), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasPrefix(f[0], p.name) {
			continue
		}
		if slices.Contains(f[2:], "Up") {
			up = append(up, f[0])
		} else {
			other = append(other, f[0])
		}
	}
	var want, wantOther []string
	for i := 1; i <= n; i++ {
		want = append(want, p.composeName(i))
	}
	if n == 0 {
		wantOther = []string{p.composeName(1)}
	}
	sort.Strings(up)
	sort.Strings(want)
	if !slices.Equal(up, want) || !slices.Equal(other, wantOther) {
		p.t.Fatalf("docker-compose ps at %d: up %v, not up %v; want up %v, not up %v", n, up, other, want, wantOther)
	}
	if n == 0 {
		return
	}
	before := p.replicas()
	out := p.compose("up", "-d", "--scale", fmt.Sprintf("%s=%d", composeService, n))
	for _, verb := range []string{"Creating", "Recreating", "Starting", "Stopping", "Removing"} {
		if strings.Contains(out, verb) {
			p.t.Errorf("docker-compose up -d --scale %s=%d changed the project (%s):\n%s", composeService, n, verb, out)
		}
	}
	if after := p.replicas(); !slices.Equal(after, before) {
		p.t.Errorf("docker-compose up -d --scale %s=%d: containers %v, before %v", composeService, n, after, before)
	}
}

// remove removes every container of the project and its network.
func (p *composeProject) remove() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := p.docker.ContainerList(ctx, p.listOpts())
	if err != nil {
		p.t.Errorf("cleanup: listing %s: %v", p.name, err)
	}
	for _, c := range list {
		if err := p.docker.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
			p.t.Errorf("cleanup: removing %v: %v", c.Names, err)
		}
	}
	_ = p.docker.NetworkRemove(ctx, p.network)
}

// listOpts lists every container of the project, running or not, with
// each of labels ("key=value") as well, if any.
func (p *composeProject) listOpts(labels ...string) container.ListOptions {
	f := filters.NewArgs(filters.Arg("label", compose.LabelProject+"="+p.name))
	for _, l := range labels {
		f.Add("label", l)
	}
	return container.ListOptions{All: true, Filters: f}
}

// hostDoc is the desired state: the project's poller with replicas, and
// extra lines under spec.
func (p *composeProject) hostDoc(replicas int, specExtra string) string {
	return hostDocWith(composeHost, specExtra, fmt.Sprintf(`    - name: %s
      driver: compose
      project: %s
      replicas: %d
      stopTimeout: 10s
`, composeService, p.name, replicas))
}

// commit commits the host document with the given count.
func (p *composeProject) commit(replicas int, specExtra string) {
	p.repo.Commit(fmt.Sprintf("poller replicas: %d", replicas), map[string]string{"hosts/sat-7.yaml": p.hostDoc(replicas, specExtra)})
}

// reconciler runs a reconciler command against the project's repository
// over http, with env added.
func (p *composeProject) reconciler(env []string, verb string) Run {
	p.t.Helper()
	return cli(p.t, env, verb, "--source", p.repo.HTTPURL, "--host", composeHost, "--cache-dir", p.cache)
}

// composeReplica is one container of the project, as Docker reports it.
type composeReplica struct {
	Number int
	ID     string
	Name   string
	State  string
}

// replicas asks Docker for the poller's containers, by number.
func (p *composeProject) replicas() []composeReplica {
	p.t.Helper()
	list, err := p.docker.ContainerList(ctxT(p.t, 30*time.Second), p.listOpts())
	if err != nil {
		p.t.Fatalf("listing %s: %v", p.name, err)
	}
	var out []composeReplica
	for _, c := range list {
		if c.Labels[compose.LabelService] != composeService {
			continue
		}
		n, _ := strconv.Atoi(c.Labels[compose.LabelNumber])
		out = append(out, composeReplica{Number: n, ID: c.ID, Name: strings.TrimPrefix(c.Names[0], "/"), State: string(c.State)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out
}

func (p *composeProject) replica(n int) (composeReplica, bool) {
	for _, r := range p.replicas() {
		if r.Number == n {
			return r, true
		}
	}
	return composeReplica{}, false
}

// checkRunning fails the test unless exactly the containers numbered
// 1..n run, each named as compose v2 names it, and none other exists except
// (at 0) the kept, stopped #1.
func (p *composeProject) checkRunning(n int) {
	p.t.Helper()
	var running, other []string
	for _, r := range p.replicas() {
		if want := p.composeName(r.Number); r.Name != want {
			p.t.Errorf("container number %d is named %s, want %s", r.Number, r.Name, want)
		}
		if r.State == container.StateRunning {
			running = append(running, strconv.Itoa(r.Number))
		} else {
			other = append(other, fmt.Sprintf("%d:%s", r.Number, r.State))
		}
	}
	var want []string
	for i := 1; i <= n; i++ {
		want = append(want, strconv.Itoa(i))
	}
	var wantOther []string
	if n == 0 {
		wantOther = []string{"1:exited"}
	}
	if !slices.Equal(running, want) || !slices.Equal(other, wantOther) {
		p.t.Fatalf("replicas %d: running %v and otherwise %v, want running %v and otherwise %v", n, running, other, want, wantOther)
	}
}

// countedDocker starts a counting proxy in front of the Docker socket and
// returns it with the environment that points the reconciler at it.
func countedDocker(t *testing.T) (*callcount.DockerProxy, []string) {
	t.Helper()
	tb := testbed(t)
	sock := filepath.Join(t.TempDir(), "docker.sock")
	dp, err := callcount.NewDockerProxy(sock, strings.TrimPrefix(tb.DockerHost, "unix://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dp.Close() })
	return dp, []string{"DOCKER_HOST=unix://" + sock}
}

func TestComposeScaleByCommits(t *testing.T) {
	p := newComposeProject(t)
	dp, counted := countedDocker(t)
	tmpl, ok := p.replica(1)
	if !ok {
		t.Fatal("the project's first container is gone")
	}

	// Each step: commit the count, apply, and Docker runs exactly 1..N; then
	// a second apply with nothing to change reads once and writes nothing.
	step := func(n int, check func(ev *composeEvents)) {
		t.Helper()
		p.commit(n, "")
		ev := p.watchEvents()
		r := p.reconciler(nil, "apply").mustCode(t, 0, fmt.Sprintf("apply replicas: %d", n))
		t.Logf("replicas %d converged in %s:\n%s", n, r.Took.Round(time.Millisecond), r.Stderr)
		p.checkRunning(n)
		p.composeAgrees(n)
		if check != nil {
			check(ev)
		}
		ev.stop()

		dp.Reset()
		p.reconciler(counted, "apply").mustCode(t, 0, fmt.Sprintf("second apply at replicas: %d", n))
		if m := dp.Mutating(); m != 0 {
			t.Errorf("second apply at %d made %d mutating Docker calls: %v", n, m, dp.Counts())
		}
		if lists := dp.Counts()["GET /containers/json"]; lists != 1 {
			t.Errorf("second apply at %d listed containers %d times, want once: %v", n, lists, dp.Counts())
		}
		p.checkRunning(n)
		p.reconciler(nil, "plan").mustCode(t, 0, fmt.Sprintf("plan at replicas: %d", n))
	}

	step(1, nil)
	step(5, func(ev *composeEvents) {
		t.Logf("scale-up events:\n%s", ev.summary())
		// New replicas were made from #1: its configuration, their own
		// number, name, hostname and network alias.
		for n := 2; n <= 5; n++ {
			r, _ := p.replica(n)
			c, err := p.docker.ContainerInspect(ctxT(t, 10*time.Second), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(c.Config.Env, "WORKER_STOP_DELAY="+composeStopDelay.String()) || c.Config.Image != "local/worker:1" {
				t.Errorf("%s: env %v image %s, want the template's", r.Name, c.Config.Env, c.Config.Image)
			}
			for _, k := range []string{"com.docker.compose.config-hash", compose.LabelOneoff, "com.docker.compose.project.config_files", "com.docker.compose.version"} {
				if got, want := c.Config.Labels[k], tmplLabel(t, p, tmpl.ID, k); got != want {
					t.Errorf("%s: label %s = %q, want the template's %q", r.Name, k, got, want)
				}
			}
			if c.Config.Hostname != c.ID[:12] {
				t.Errorf("%s: hostname %q, want its own id", r.Name, c.Config.Hostname)
			}
			if c.HostConfig.RestartPolicy.Name != container.RestartPolicyUnlessStopped {
				t.Errorf("%s: restart policy %q", r.Name, c.HostConfig.RestartPolicy.Name)
			}
			ep := c.NetworkSettings.Networks[p.network]
			if ep == nil || !slices.Contains(ep.Aliases, composeService) || !slices.Contains(ep.Aliases, r.Name) {
				t.Errorf("%s: on %s with %+v, want aliases %s and %s", r.Name, p.network, ep, composeService, r.Name)
			}
		}
	})
	step(2, func(ev *composeEvents) {
		// Graceful, one at a time, from the highest: each replica got
		// SIGTERM, finished its tasks (composeStopDelay) and exited 0, and
		// was removed before the next one was signalled.
		ev.checkStopOrder(t, []int{5, 4, 3}, true)
	})
	step(0, func(ev *composeEvents) {
		ev.checkStopOrder(t, []int{2, 1}, false)
	})
	if r, _ := p.replica(1); r.ID != tmpl.ID {
		t.Errorf("at 0 the kept container is %s, not the original #1 %s", r.ID, tmpl.ID)
	}
	step(3, nil)
	if r, _ := p.replica(1); r.ID != tmpl.ID {
		t.Errorf("from 0, #1 was recreated (%s) instead of started again (%s)", r.ID, tmpl.ID)
	}
}

func tmplLabel(t *testing.T, p *composeProject, id, key string) string {
	t.Helper()
	c, err := p.docker.ContainerInspect(ctxT(t, 10*time.Second), id)
	if err != nil {
		t.Fatal(err)
	}
	return c.Config.Labels[key]
}

func TestComposeManualDriftRevertedOrReported(t *testing.T) {
	p := newComposeProject(t)
	p.commit(3, "")
	p.reconciler(nil, "apply").mustCode(t, 0, "first apply")
	p.checkRunning(3)

	// An operator removes #2 by hand.
	gone, _ := p.replica(2)
	run(t, "", "docker", "rm", "-f", gone.Name)
	pl := p.reconciler(nil, "plan").mustCode(t, 2, "plan with a container removed by hand")
	row := regexp.MustCompile(`(?m)^\d+\s+up\s+service\s+poller\s+replicas\s+2\s+3\s+scale-up(\s|$)`)
	if !row.MatchString(pl.Stdout) {
		t.Errorf("plan does not show %s:\n%s", row, pl.Stdout)
	}
	p.reconciler(nil, "apply").mustCode(t, 0, "apply reverting the drift")
	p.checkRunning(3)
	p.composeAgrees(3)
	if back, _ := p.replica(2); back.ID == gone.ID {
		t.Errorf("#2 has the removed container's id")
	}

	// With drift: report, the same change is reported and left alone.
	p.commit(3, "  drift: report\n")
	gone, _ = p.replica(3)
	run(t, "", "docker", "rm", "-f", gone.Name)
	pl = p.reconciler(nil, "plan").mustCode(t, 2, "plan with drift: report")
	row = regexp.MustCompile(`(?m)^\d+\s+up\s+service\s+poller\s+replicas\s+2\s+3\s+report-only \(scale-up\)(\s|$)`)
	if !row.MatchString(pl.Stdout) {
		t.Errorf("plan does not show %s:\n%s", row, pl.Stdout)
	}
	dp, counted := countedDocker(t)
	r := p.reconciler(counted, "apply").mustCode(t, 0, "apply with drift: report")
	if !strings.Contains(r.Stderr, "drift compose/poller: replicas 2 -> 3 (scale-up, report-only)") {
		t.Errorf("apply does not report the drift:\n%s", r.Stderr)
	}
	if m := dp.Mutating(); m != 0 {
		t.Errorf("apply with drift: report made %d mutating Docker calls: %v", m, dp.Counts())
	}
	p.checkRunning(2)
	p.composeAgrees(2)
}

func TestComposeServiceWithoutContainersIsMissing(t *testing.T) {
	p := newComposeProject(t)
	p.repo.Commit("a service compose never brought up", map[string]string{"hosts/sat-7.yaml": strings.Replace(
		p.hostDoc(2, ""), "name: "+composeService, "name: never-up", 1)})
	pl := p.reconciler(nil, "plan").mustCode(t, 2, "plan of a service without containers")
	row := regexp.MustCompile(`(?m)^\d+\s+up\s+service\s+never-up\s+replicas\s+absent\s+2\s+missing(\s|$)`)
	if !row.MatchString(pl.Stdout) {
		t.Errorf("plan does not show %s:\n%s", row, pl.Stdout)
	}
	dp, counted := countedDocker(t)
	p.reconciler(counted, "apply").mustCode(t, 1, "apply of a service without containers")
	if m := dp.Mutating(); m != 0 {
		t.Errorf("apply made %d mutating Docker calls for a missing service: %v", m, dp.Counts())
	}
	p.checkRunning(1) // the project's own poller is not touched
	p.composeAgrees(1)
}

// composeEvents records Docker's container events of one project while a
// step runs, so stop order and timing come from Docker itself.
type composeEvents struct{ *eventLog }

func (p *composeProject) watchEvents() *composeEvents {
	p.t.Helper()
	return &composeEvents{recordDockerEvents(p.t, p.docker, filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)), filters.Arg("label", compose.LabelProject+"="+p.name)))}
}

// at returns the first event with action of container number n.
func (ev *composeEvents) at(n int, action events.Action) (events.Message, bool) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	for _, m := range ev.events {
		if m.Action == action && m.Actor.Attributes[compose.LabelNumber] == strconv.Itoa(n) {
			return m, true
		}
	}
	return events.Message{}, false
}

func (ev *composeEvents) summary() string {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	var lines []string
	for _, m := range ev.events {
		lines = append(lines, fmt.Sprintf("%s %-8s #%s %s", time.Unix(0, m.TimeNano).Format("15:04:05.000"), m.Action,
			m.Actor.Attributes[compose.LabelNumber], m.Actor.Attributes["exitCode"]))
	}
	return strings.Join(lines, "\n")
}

// checkStopOrder checks that the containers numbered order were stopped in
// that order, one at a time: each got its stop signal only after the one
// before had been removed, and each exited 0 after at least composeStopDelay, not killed.
// The last is removed too unless removeLast is false (scaling to 0 keeps it).
func (ev *composeEvents) checkStopOrder(t *testing.T, order []int, removeLast bool) {
	t.Helper()
	when := func(m events.Message) time.Time { return time.Unix(0, m.TimeNano) }
	eventually(t, 10*time.Second, "Docker reports every stop", func() error {
		for _, n := range order {
			if _, ok := ev.at(n, events.ActionDie); !ok {
				return fmt.Errorf("no die event for #%d yet:\n%s", n, ev.summary())
			}
		}
		return nil
	})
	var prevDone time.Time
	for i, n := range order {
		kill, okK := ev.at(n, events.ActionKill)
		die, _ := ev.at(n, events.ActionDie)
		destroy, okD := ev.at(n, events.ActionDestroy)
		last := i == len(order)-1
		switch {
		case !okK:
			t.Errorf("#%d got no stop signal:\n%s", n, ev.summary())
			continue
		case kill.Actor.Attributes["signal"] != "15":
			t.Errorf("#%d got signal %s, want SIGTERM (15)", n, kill.Actor.Attributes["signal"])
		case die.Actor.Attributes["exitCode"] != "0":
			t.Errorf("#%d exited %s, want 0 (it finished its tasks, nobody killed it)", n, die.Actor.Attributes["exitCode"])
		}
		if took := when(die).Sub(when(kill)); took < composeStopDelay-100*time.Millisecond {
			t.Errorf("#%d exited %s after SIGTERM, before its %s stop delay", n, took, composeStopDelay)
		}
		if !prevDone.IsZero() && !when(kill).After(prevDone) {
			t.Errorf("#%d was signalled at %s, before the previous one was gone at %s:\n%s",
				n, when(kill).Format("15:04:05.000"), prevDone.Format("15:04:05.000"), ev.summary())
		}
		if removeLast || !last {
			if !okD {
				t.Errorf("#%d was not removed:\n%s", n, ev.summary())
				continue
			}
			prevDone = when(destroy)
		} else {
			if okD {
				t.Errorf("#%d, the last one, was removed; it must be kept stopped:\n%s", n, ev.summary())
			}
			prevDone = when(die)
		}
	}
	t.Logf("stop order:\n%s", ev.summary())
}

// commitService commits the host document with the given count and extra
// lines under the poller's entry.
func (p *composeProject) commitService(replicas int, serviceExtra string) {
	doc := p.hostDoc(replicas, "") + serviceExtra
	p.repo.Commit(fmt.Sprintf("poller replicas: %d %s", replicas, strings.TrimSpace(serviceExtra)), map[string]string{"hosts/sat-7.yaml": doc})
}

// background calls f over and over, interval apart, until stopped (or
// the test ends); stop returns once the last call has.
type background struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (p *composeProject) every(interval time.Duration, f func(ctx context.Context)) *background {
	ctx, cancel := context.WithCancel(context.Background())
	b := &background{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		for ctx.Err() == nil {
			f(ctx)
			select {
			case <-ctx.Done():
			case <-time.After(interval):
			}
		}
	}()
	p.t.Cleanup(b.stop)
	return b
}

func (b *background) stop() {
	b.cancel()
	<-b.done
}

// readySampler counts, every 50ms while a step runs, the poller
// containers numbered 1..n that run, and keeps the fewest seen.
type readySampler struct {
	*background
	mu     sync.Mutex
	fewest int
	counts []int
}

func (p *composeProject) sampleReady(n int) *readySampler {
	s := &readySampler{fewest: n + 1}
	s.background = p.every(50*time.Millisecond, func(ctx context.Context) {
		list, err := p.docker.ContainerList(ctx, p.listOpts())
		if err != nil {
			return
		}
		running := 0
		for _, c := range list {
			num, _ := strconv.Atoi(c.Labels[compose.LabelNumber])
			if c.Labels[compose.LabelService] == composeService && num >= 1 && num <= n && c.State == container.StateRunning {
				running++
			}
		}
		s.mu.Lock()
		s.fewest = min(s.fewest, running)
		if len(s.counts) == 0 || s.counts[len(s.counts)-1] != running {
			s.counts = append(s.counts, running)
		}
		s.mu.Unlock()
	})
	return s
}

// TestComposeImageRolling is seed 001's upgrade as a commit: the poller
// project moves from local/worker:1 to local/worker:2 one container at a
// time, never fewer than N-1 running, each new one ready before the next
// old one goes; docker-compose agrees afterwards. (A restartOn change rolls
// through the same code; its plan and sequence are unit-tested, to keep
// this test short.)
func TestComposeImageRolling(t *testing.T) {
	const n = 3
	p := newComposeProject(t)
	p.commit(n, "")
	p.reconciler(nil, "apply").mustCode(t, 0, "apply replicas: 3")
	p.checkRunning(n)
	p.composeAgrees(n)

	roll := func(what, extra string, check func(c container.InspectResponse) error) {
		t.Helper()
		before := p.replicas()
		p.commitService(n, extra)
		pl := p.reconciler(nil, "plan").mustCode(t, 2, "plan of "+what)
		t.Logf("plan of %s:\n%s", what, pl.Stdout)
		ev := p.watchEvents()
		s := p.sampleReady(n)
		r := p.reconciler(nil, "apply").mustCode(t, 0, "apply of "+what)
		s.stop()
		ev.stop()
		t.Logf("%s took %s; running counts seen: %v\n%s", what, r.Took.Round(time.Millisecond), s.counts, ev.summary())
		if s.fewest < n-1 {
			t.Errorf("%s: only %d of %d ran at one time (counts %v), want at least %d", what, s.fewest, n, s.counts, n-1)
		}
		if s.fewest > n-1 {
			t.Errorf("%s: never fewer than %d ran (counts %v): nothing was recreated?", what, s.fewest, s.counts)
		}
		p.checkRunning(n)
		after := p.replicas()
		for i, r := range after {
			if r.ID == before[i].ID {
				t.Errorf("%s: #%d was not recreated", what, r.Number)
			}
			c, err := p.docker.ContainerInspect(ctxT(t, 10*time.Second), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if err := check(c); err != nil {
				t.Errorf("%s: #%d: %v", what, r.Number, err)
			}
		}
		// One at a time: each new container started only after the one
		// before it was removed, by number.
		var prevDestroy time.Time
		for i := 1; i <= n; i++ {
			start, ok1 := ev.atID(after[i-1].ID, events.ActionStart)
			destroy, ok2 := ev.atID(before[i-1].ID, events.ActionDestroy)
			if !ok1 || !ok2 {
				t.Errorf("%s: #%d: no start of the new or no destroy of the old:\n%s", what, i, ev.summary())
				continue
			}
			if !prevDestroy.IsZero() && time.Unix(0, start.TimeNano).Before(prevDestroy) {
				t.Errorf("%s: #%d started before #%d's old container was removed", what, i, i-1)
			}
			if destroy.TimeNano < start.TimeNano {
				t.Errorf("%s: #%d's old container was removed before the new one started", what, i)
			}
			prevDestroy = time.Unix(0, destroy.TimeNano)
		}
		p.composeAgrees(n)
		p.reconciler(nil, "plan").mustCode(t, 0, "plan after "+what)
	}
	roll("image local/worker:2", "      image: local/worker:2\n", func(c container.InspectResponse) error {
		if c.Config.Image != "local/worker:2" {
			return fmt.Errorf("image %s", c.Config.Image)
		}
		return nil
	})
}

// atID returns the first event with action of the container id.
func (ev *composeEvents) atID(id string, action events.Action) (events.Message, bool) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	for _, m := range ev.events {
		if m.Action == action && m.Actor.ID == id {
			return m, true
		}
	}
	return events.Message{}, false
}
