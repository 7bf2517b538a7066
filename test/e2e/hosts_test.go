//go:build e2e

package e2e

// Many hosts for real: five test hosts (hack/testbed hosts up 5), each a
// network namespace with its own dockerd, in one swarm of 3 managers and 2
// workers, an agent on every host talking to its own dockerd through a
// counting proxy. Swarm services are cluster objects, written only by the
// agent on the Raft leader; the compose project on each host is node-scoped,
// converged by that host's own agent.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
	"reconciler.dev/reconciler/controllers/compose"
	"reconciler.dev/reconciler/internal/callcount"
	"reconciler.dev/reconciler/internal/socktest"
)

// testHost is one host of `hack/testbed hosts`.
type testHost struct {
	Name   string // rtb-hN: its swarm node's host name, and --host of its agent
	Addr   string // its address on the hosts' bridge
	Docker string // unix:// socket of its dockerd
	Netns  string // /run/netns/rtb-hN
	Run    string // the folder of its dockerd's pid file
	cli    *client.Client
	proxy  *callcount.DockerProxy
	agent  *agentProc
}

// testHosts brings up (idempotently) n test hosts and returns them, with a
// Docker client on each host's own dockerd, and the hosts' git URL.
func testHosts(t *testing.T, n int) ([]*testHost, string) {
	t.Helper()
	testbed(t)
	lockTestbed(t, "hosts")
	t0 := time.Now()
	if out, err := hackTestbed("hosts", "up", fmt.Sprint(n)); err != nil {
		t.Fatalf("hack/testbed hosts up %d: %v\n%s", n, err, out)
	}
	t.Logf("hack/testbed hosts up %d: %s", n, time.Since(t0).Round(time.Millisecond))
	out, err := exec.Command(testbedScript(), "hosts", "env").Output() // stdout alone: the variables
	if err != nil {
		t.Fatalf("hack/testbed hosts env: %v", err)
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "="); ok {
			env[k] = strings.Trim(v, `"`)
		}
	}
	hostNames, addrs, socks := strings.Fields(env["TESTBED_HOSTS"]), strings.Fields(env["TESTBED_HOSTS_ADDRS"]), strings.Fields(env["TESTBED_HOSTS_DOCKER"])
	if len(hostNames) != n || len(addrs) != n || len(socks) != n || env["TESTBED_HOSTS_GIT_HTTP_URL"] == "" {
		t.Fatalf("hack/testbed hosts env does not describe %d hosts:\n%s", n, out)
	}
	var hosts []*testHost
	for i := range hostNames {
		h := &testHost{Name: hostNames[i], Addr: addrs[i], Docker: socks[i], Netns: filepath.Join(env["TESTBED_HOSTS_NETNS_DIR"], hostNames[i]),
			Run: filepath.Join(env["TESTBED_HOSTS_RUN"], strings.TrimPrefix(hostNames[i], "rtb-"))}
		h.cli, err = client.NewClientWithOpts(client.WithHost(h.Docker), client.WithAPIVersionNegotiation())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.cli.Close() })
		hosts = append(hosts, h)
	}
	return hosts, env["TESTBED_HOSTS_GIT_HTTP_URL"]
}

// composeContainers creates, stopped, the container of each compose
// service of project on the host's own dockerd (as docker-compose names and
// labels them), removed when the test ends: the node-scoped objects of the
// hosts' tests.
func (h *testHost) composeContainers(ctx context.Context, t *testing.T, project string, services ...string) {
	t.Helper()
	tb := testbed(t)
	for _, svc := range services {
		name := compose.ContainerName(project, svc, 1)
		_, err := h.cli.ContainerCreate(ctx, &container.Config{
			Image: "local/worker:1",
			Labels: map[string]string{compose.LabelProject: project, compose.LabelService: svc, compose.LabelNumber: "1",
				compose.LabelOneoff: "False", tb.Label: "1", "com.docker.compose.version": "2.29.1"},
		}, &container.HostConfig{NetworkMode: "none"}, nil, nil, name)
		if err != nil {
			t.Fatalf("%s: creating %s: %v", h.Name, name, err)
		}
		t.Cleanup(func() {
			cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = h.cli.ContainerRemove(cctx, name, container.RemoveOptions{Force: true})
		})
	}
}

// swarmLeader asks the managers' dockerds, in turn, which node leads (Raft's
// word: the leader's node state may still be unknown right after an
// election, until its own swarm agent registered with it).
func swarmLeader(ctx context.Context, hosts []*testHost) (string, error) {
	var last error
	for _, h := range hosts {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		nodes, err := h.cli.NodeList(cctx, swarm.NodeListOptions{})
		cancel()
		if err != nil {
			last = err
			continue
		}
		for _, n := range nodes {
			if n.ManagerStatus != nil && n.ManagerStatus.Leader {
				return n.Description.Hostname, nil
			}
		}
		last = fmt.Errorf("%s knows no leader", h.Name)
	}
	return "", last
}

// hostStatus reads an agent's /status with the bearer token.
func hostStatus(addr, token string) (status.Status, error) {
	var st status.Status
	a, err := httpCall(5*time.Second, http.MethodGet, "http://"+addr+"/status", nil, "Authorization", "Bearer "+token)
	if err != nil {
		return st, err
	}
	if a.Code != http.StatusOK {
		return st, fmt.Errorf("/status: %s: %s", a.Status, a.Body)
	}
	return st, a.decode(&st)
}

// hostsDoc is the fleet's desired state: one Defaults for every test host
// with the cluster's services (in dependsOn order, the seed's shape) and a
// node-scoped compose project that lives on each host.
func hostsDoc(svc [3]string, project string, maintenance bool) string {
	return fmt.Sprintf(`apiVersion: reconciler.dev/v1
kind: Defaults
metadata:
  name: test-hosts
spec:
  hosts: ["rtb-h*"]
  maintenance: %v
  services:
    - name: %[2]s
      replicas: 1
    - name: %[3]s
      replicas: 1
      dependsOn: [%[2]s]
    - name: %[4]s
      replicas: 1
      dependsOn: [%[2]s]
    - name: local
      driver: compose
      project: %[5]s
      replicas: 1
      stopTimeout: 5s
`, maintenance, svc[0], svc[1], svc[2], project)
}

// hostsEvents watches Docker's events on several dockerds at once (service
// and node events on managers, container events where tasks run); merged
// gives them as one log.
type hostsEvents []*eventLog

// eventHost is the attribute merged adds to every event: the host whose
// dockerd reported it.
const eventHost = "rtb.host"

func watchHostsEvents(t *testing.T, hosts []*testHost) hostsEvents {
	t.Helper()
	var out hostsEvents
	for _, h := range hosts {
		el := watchDockerEvents(t, h.cli, events.NodeEventType)
		el.host = h.Name
		out = append(out, el)
	}
	return out
}

// merged is every host's events so far, in one log (not watching), each
// event naming its host (eventHost).
func (hs hostsEvents) merged() *eventLog {
	all := &eventLog{}
	for _, el := range hs {
		el.mu.Lock()
		for _, m := range el.events {
			a := make(map[string]string, len(m.Actor.Attributes)+1)
			for k, v := range m.Actor.Attributes {
				a[k] = v
			}
			a[eventHost] = el.host
			m.Actor.Attributes = a
			all.events = append(all.events, m)
		}
		el.mu.Unlock()
	}
	sort.SliceStable(all.events, func(i, j int) bool { return all.events[i].TimeNano < all.events[j].TimeNano })
	return all
}

// replicaUpdates returns the times a service's replica count was changed
// in [from, to], from Docker's service events (those that carry
// replicas.old/new: a new leader re-announces every service with an update
// event of its own, without them), each change counted once though every
// manager's dockerd reports it.
func (el *eventLog) replicaUpdates(service string, from, to time.Time) []string {
	el.mu.Lock()
	defer el.mu.Unlock()
	type change struct {
		at       time.Time
		old, new string
	}
	var all []change
	for _, m := range el.events {
		a := m.Actor.Attributes
		ts := time.Unix(0, m.TimeNano)
		if m.Type != events.ServiceEventType || m.Action != events.ActionUpdate || a["name"] != service || a["replicas.new"] == "" ||
			ts.Before(from) || ts.After(to) {
			continue
		}
		all = append(all, change{ts, a["replicas.old"], a["replicas.new"]})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].at.Before(all[j].at) })
	var out []string
	var last change
	for _, c := range all {
		if len(out) > 0 && c.old == last.old && c.new == last.new && c.at.Sub(last.at) < time.Second {
			continue
		}
		last = c
		out = append(out, fmt.Sprintf("%s %s->%s", c.at.Format("15:04:05.000"), c.old, c.new))
	}
	return out
}

// replicaUpdateTime is the time of the first replicaUpdates entry.
func replicaUpdateTime(s string) time.Time {
	at, _ := time.Parse("15:04:05.000", strings.Fields(s)[0])
	now := time.Now().UTC()
	return time.Date(now.Year(), now.Month(), now.Day(), at.Hour(), at.Minute(), at.Second(), at.Nanosecond(), time.UTC)
}

// hostsCluster is the set-up both hosts tests share: five hosts, the
// cluster's three services (broker <- proxy, bl dependsOn broker; their
// tasks on the workers only, so stopping a manager's dockerd stops no task;
// proxy and BL take 3 s to stop), a compose project on every host, an agent
// on each behind a counting Docker proxy, all on the first revision (in
// maintenance).
type hostsCluster struct {
	hosts, managers []*testHost
	byName          map[string]*testHost
	leader          *testHost
	leaderName      string
	svc             [3]string
	project         string
	repo            *GitRepo
	token           string
	addrs           []string
	tb              Testbed
	ctx             context.Context
	began           time.Time
	setup           time.Duration
}

const (
	hostsInterval = 2 * time.Second
	// hostsStopGrace is the services' stop grace period.
	hostsStopGrace = 5 * time.Second
	// hostsAssignLag is the swarm driver's allowance for a node to act on
	// its assignments after registering with a new leader (assignLag).
	hostsAssignLag = 5 * time.Second
)

func newHostsCluster(t *testing.T) *hostsCluster {
	const interval = hostsInterval
	began := time.Now()
	hosts, gitURL := testHosts(t, 5)
	ctx := ctxT(t, 3*time.Minute)
	managers := hosts[:3]

	leaderName, err := swarmLeader(ctx, managers)
	if err != nil {
		t.Fatalf("no swarm leader: %v", err)
	}
	byName := map[string]*testHost{}
	for _, h := range hosts {
		byName[h.Name] = h
	}
	leader := byName[leaderName]
	t.Logf("swarm leader at start: %s", leaderName)

	tb := testbed(t)
	pfx := uniqueName("mh")
	svc := [3]string{pfx + "-broker", pfx + "-proxy", pfx + "-bl"}
	for i, name := range svc {
		zero := uint64(0)
		grace := hostsStopGrace
		var env []string
		if i > 0 {
			env = []string{"WORKER_STOP_DELAY=3s"}
		}
		_, err := leader.cli.ServiceCreate(ctx, swarm.ServiceSpec{
			Annotations: swarm.Annotations{Name: name, Labels: map[string]string{tb.Label: "1"}},
			TaskTemplate: swarm.TaskSpec{
				ContainerSpec: &swarm.ContainerSpec{Image: "local/worker:1", StopGracePeriod: &grace, Env: env},
				Networks:      []swarm.NetworkAttachmentConfig{{Target: "host"}},
				Placement:     &swarm.Placement{Constraints: []string{"node.role==worker"}},
			},
			Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &zero}},
		}, swarm.ServiceCreateOptions{})
		if err != nil {
			t.Fatalf("creating %s: %v", name, err)
		}
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, h := range managers {
			for _, name := range svc {
				_ = h.cli.ServiceRemove(cctx, name)
			}
		}
	})
	// A compose project on every host, brought up once and stopped (a
	// compose project at 0 keeps its container): node-scoped.
	project := uniqueName("mhc")
	for _, h := range hosts {
		h.composeContainers(ctx, t, project, "local")
	}

	repo := newGitRepo(t, "hosts")
	repo.Commit("test hosts, in maintenance", map[string]string{"defaults.yaml": hostsDoc(svc, project, true)})
	// The agents listen on their hosts' addresses, with the token the
	// testbed's Prometheus sends (it scrapes them there).
	var addrs []string
	for _, h := range hosts {
		addrs = append(addrs, h.Addr+":9440")
	}
	tokenFile := promTargets(t, addrs, map[string]string{"site": "test-hosts"})
	tb2, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tb2))
	sockDir := socktest.Dir(t)
	for _, h := range hosts {
		h.proxy, err = callcount.NewDockerProxy(filepath.Join(sockDir, h.Name+".sock"), strings.TrimPrefix(h.Docker, "unix://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.proxy.Close() })
		h.agent = startAgent(t, agentConfig{
			Source: gitURL + "/" + repo.Name, Host: h.Name, Interval: interval.String(),
			Listen: h.Addr + ":9440", Wrap: []string{"nsenter", "--net=" + h.Netns},
			Env:  []string{"DOCKER_HOST=" + h.proxy.Host()},
			Args: []string{"--token-file", tokenFile},
		})
	}
	head := strings.TrimSpace(run(t, repo.WorkTree, "git", "rev-parse", "HEAD"))
	eventually(t, 60*time.Second, "every agent on the first revision", func() error {
		for _, h := range hosts {
			st, err := hostStatus(h.agent.Addr, token)
			if err != nil {
				return fmt.Errorf("%s: %w", h.Name, err)
			}
			if st.Revision == nil || st.Revision.ID != head || len(st.Passes) == 0 {
				return fmt.Errorf("%s: not yet on %s", h.Name, head[:8])
			}
		}
		return nil
	})
	setup := time.Since(began)

	return &hostsCluster{hosts: hosts, managers: managers, byName: byName, leader: leader, leaderName: leaderName,
		svc: svc, project: project, repo: repo, token: token, addrs: addrs, tb: tb, ctx: ctx, began: began, setup: setup}
}

// leaveMaintenance commits maintenance: false and waits for the services
// up and every host's compose container running; the proxies' counts then
// hold that flip's calls only.
func (c *hostsCluster) leaveMaintenance(t *testing.T) time.Duration {
	hosts, svc, project, leader, ctx, repo := c.hosts, c.svc, c.project, c.leader, c.ctx, c.repo
	for _, h := range hosts {
		h.proxy.Reset()
	}
	upAt := time.Now()
	repo.Commit("leave maintenance", map[string]string{"defaults.yaml": hostsDoc(svc, project, false)})
	eventually(t, 60*time.Second, "the services' tasks and every host's container running", func() error {
		for _, name := range svc {
			s, _, err := leader.cli.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
			if err != nil {
				return err
			}
			if r := s.Spec.Mode.Replicated.Replicas; r == nil || *r != 1 {
				return fmt.Errorf("%s not scaled up yet", name)
			}
			// The task running, not only asked for: a flip judged from
			// its container's events needs a container that started.
			tasks, err := leader.cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(
				filters.Arg("service", name), filters.Arg("desired-state", "running"))})
			if err != nil {
				return err
			}
			if len(tasks) != 1 || tasks[0].Status.State != swarm.TaskStateRunning {
				return fmt.Errorf("%s: its task is not running yet", name)
			}
		}
		for _, h := range hosts {
			c, err := h.cli.ContainerInspect(ctx, compose.ContainerName(project, "local", 1))
			if err != nil {
				return err
			}
			if !c.State.Running {
				return fmt.Errorf("%s: its compose container is not running", h.Name)
			}
		}
		return nil
	})
	return time.Since(upAt)
}

// TestHostsLeaderWrites: five hosts, an agent on each.
//
//  1. maintenance: false is committed: the broker, then proxy and BL, come
//     up; every ServiceUpdate reaching any dockerd comes from the leader's
//     agent; every host's own compose container is started by its own
//     agent; the followers report the services as observed (naming the
//     leader), the workers as not readable.
//  2. rtb-h5 gets a compose project it does not have: the testbed's
//     Prometheus fires ReconcilerDrift for it and `fleet status
//     --prometheus` names it.
func TestHostsLeaderWrites(t *testing.T) {
	c := newHostsCluster(t)
	hosts, leader, leaderName, token, repo, project, addrs, tb := c.hosts, c.leader, c.leaderName, c.token, c.repo, c.project, c.addrs, c.tb
	upTook := c.leaveMaintenance(t)
	for _, h := range hosts {
		updates := h.proxy.Counts()["POST /services/{id}/update"]
		switch {
		case h == leader && updates != 3:
			t.Errorf("the leader's agent (%s) sent %d service updates, want 3: %v", h.Name, updates, h.proxy.Counts())
		case h != leader && updates != 0:
			t.Errorf("%s's agent, not the leader's, sent %d service updates: %v", h.Name, updates, h.proxy.Counts())
		}
		if n := h.proxy.Counts()["POST /containers/{id}/start"]; n != 1 {
			t.Errorf("%s's agent started its compose container %d times, want 1: %v", h.Name, n, h.proxy.Counts())
		}
	}
	for _, h := range hosts[3:] {
		if n := h.proxy.Counts()["GET /services"]; n != 0 {
			t.Errorf("worker %s's agent listed services %d times: %v", h.Name, n, h.proxy.Counts())
		}
	}
	// What each agent says of the cluster's services.
	eventually(t, 10*time.Second, "every agent's view of the services", func() error {
		for _, h := range hosts {
			st, err := hostStatus(h.agent.Addr, token)
			if err != nil {
				return err
			}
			for _, o := range st.Objects {
				if o.Driver != "swarm" {
					continue
				}
				want, by := "enforce", ""
				switch {
				case h.Name == leaderName:
				case h == hosts[3] || h == hosts[4]:
					want, by = names.DriftObserved, "the leader's agent (this node is a worker: it cannot read services)"
				default:
					want, by = names.DriftObserved, "the leader's agent on "+leaderName
				}
				if o.Mode != want || o.Details["convergedBy"] != by {
					return fmt.Errorf("%s: %s mode %q convergedBy %q, want %q %q", h.Name, o.Name, o.Mode, o.Details["convergedBy"], want, by)
				}
			}
		}
		return nil
	})
	for _, h := range hosts {
		if st, err := hostStatus(h.agent.Addr, token); err == nil && len(st.Passes) > 0 {
			if r := st.Passes[0].Result; r == names.ResultFailed || r == names.ResultError {
				t.Errorf("%s: the last pass %s: %s", h.Name, r, st.Passes[0].Error)
			}
		}
	}

	// A drifted host, seen by Prometheus: rtb-h5 gets a compose project
	// that does not exist (drift "missing", left after every pass); the
	// rules' ReconcilerDrift fires for its instance and `fleet status
	// --prometheus` names it.
	h5 := hosts[4]
	driftAt := time.Now()
	repo.Commit("rtb-h5: a project it does not have", map[string]string{"hosts/rtb-h5.yaml": fmt.Sprintf(`apiVersion: reconciler.dev/v1
kind: Host
metadata:
  name: rtb-h5
spec:
  services:
    - name: absent
      driver: compose
      project: %s-absent
      replicas: 1
`, project)})
	alert := awaitPromAlert(t, "ReconcilerDrift", h5.Addr+":9440", 60*time.Second)
	t.Logf("ReconcilerDrift firing for %s %s after the commit: %v", h5.Name, time.Since(driftAt).Round(time.Millisecond), alert.Labels)
	pr := cli(t, nil, "fleet", "status", "--prometheus", tb.PrometheusURL, "--agents", strings.Join(addrs, ","))
	t.Logf("fleet status --prometheus (exit %d):\n%s%s", pr.Code, pr.Stdout, pr.Stderr)
	if pr.Code != 2 || !regexp.MustCompile(`(?m)^rtb-h5\s+`+regexp.QuoteMeta(h5.Addr+":9440")+`\s+\S+\s+no\s`).MatchString(pr.Stdout) {
		t.Errorf("fleet status --prometheus: exit %d, want 2 and a drifted row for rtb-h5", pr.Code)
	}
	t.Logf("timings: setup (hosts, services, 5 agents converged) %s; leave maintenance %s; whole test %s",
		c.setup.Round(time.Millisecond), upTook.Round(time.Millisecond), time.Since(c.began).Round(time.Millisecond))
}

// TestHostsLeaderFailover: five hosts, an agent on each, the services'
// tasks running. maintenance: true is committed; once the leader's agent
// sent its first scale-down, it is killed and its dockerd stopped: a new
// leader is elected, and its agent scales the broker down after proxy and
// BL drained, each service updated once in all (Docker's events). Judged
// from Docker's events on the surviving dockerds: the election (the new
// leader's dispatcher marking every node unknown), each replica change,
// each dependent's container dying; the order is judged once every
// dependent's container stopped. Printed: kill -> election -> the new
// leader's first write, and the drain -> the broker.
func TestHostsLeaderFailover(t *testing.T) {
	const interval = hostsInterval
	c := newHostsCluster(t)
	hosts, managers, leader, leaderName, byName, ctx, repo, project, svc := c.hosts, c.managers, c.leader, c.leaderName, c.byName, c.ctx, c.repo, c.project, c.svc
	upTook := c.leaveMaintenance(t)

	watch := watchHostsEvents(t, append(append([]*testHost{}, hosts[3:]...), managersBut(managers, leader)...))
	for _, h := range hosts {
		h.proxy.Reset()
	}
	inAt := time.Now()
	repo.Commit("enter maintenance", map[string]string{"defaults.yaml": hostsDoc(svc, project, true)})
	first := awaitFirstMutatingKey(t, leader.proxy, "POST /services/{id}/update", inAt, 30*time.Second)
	leader.agent.kill()
	killedAt := time.Now()
	t.Cleanup(func() {
		// `hosts up` starts the stopped dockerd again and it rejoins.
		if out, err := hackTestbed("hosts", "up", "5"); err != nil {
			t.Logf("restarting the hosts: %v\n%s", err, out)
		}
	})
	stopDockerd(t, leader)
	stoppedAt := time.Now()
	t.Logf("the leader's (%s) agent's first scale-down at %s; agent killed %s later, its dockerd stopped %s after that",
		leaderName, first.Time.Format("15:04:05.000"), killedAt.Sub(first.Time).Round(time.Millisecond), stoppedAt.Sub(killedAt).Round(time.Millisecond))
	rest := managersBut(managers, leader)
	var newLeader *testHost
	eventually(t, 60*time.Second, "a new swarm leader", func() error {
		name, err := swarmLeader(ctx, rest)
		if err != nil {
			return err
		}
		if name == leaderName {
			return fmt.Errorf("%s still leads", name)
		}
		newLeader = byName[name]
		return nil
	})
	// The election, from Docker's events: a new leader's dispatcher marks
	// every node unknown the moment it takes over (its own node too, which
	// is ready again only once its own swarm agent registered with it: a
	// leader judged by its node's state is seen seconds, on a loaded
	// machine half a minute, after it was elected).
	var electedAt time.Time
	eventually(t, 10*time.Second, "the new leader's dispatcher marking the nodes unknown (Docker's node events)", func() error {
		electedAt = watch.merged().nodesUnknownAfter(killedAt)
		if electedAt.IsZero() {
			return fmt.Errorf("no node event ready->unknown since %s", killedAt.Format("15:04:05.000"))
		}
		return nil
	})
	// The drain, from the workers' dockerds: every container of the
	// dependents stopped (waited for before judging, so a broker scaled
	// down too early shows as such, not as a container that never died).
	eventually(t, 60*time.Second, "every container of the dependents stopped", func() error {
		for _, h := range hosts[3:] {
			for _, dep := range svc[1:] {
				cs, err := h.cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", "com.docker.swarm.service.name="+dep))})
				if err != nil {
					return fmt.Errorf("%s: %w", h.Name, err)
				}
				if len(cs) > 0 {
					return fmt.Errorf("%s: %s still runs %d container(s)", h.Name, dep, len(cs))
				}
			}
		}
		return nil
	})
	var brokerDown time.Time
	eventually(t, 60*time.Second, "the broker scaled down by the new leader's agent", func() error {
		s, _, err := newLeader.cli.ServiceInspectWithRaw(ctx, svc[0], swarm.ServiceInspectOptions{})
		if err != nil {
			return err
		}
		if r := s.Spec.Mode.Replicated.Replicas; r == nil || *r != 0 {
			return fmt.Errorf("broker at %d", *r)
		}
		brokerDown = time.Now()
		return nil
	})
	// Each service updated once in all, the broker after its dependents'
	// last containers died; and the new leader's proxy carried the broker's.
	time.Sleep(time.Second) // the events of the last update
	from, to := inAt, time.Now()
	el := watch.merged()
	var brokerAt time.Time
	var order []string // the flip's stages, from Docker's events
	for _, name := range svc {
		ups := el.replicaUpdates(name, from, to)
		if len(ups) != 1 {
			t.Errorf("%s's replicas changed %d times in the flip, want once (Docker's events): %v\n%s", name, len(ups), ups, el.summary())
			continue
		}
		order = append(order, ups[0]+" "+name)
		if name == svc[0] {
			brokerAt = replicaUpdateTime(ups[0])
		}
	}
	var lastDie time.Time
	for _, dep := range svc[1:] {
		died := el.serviceEvents(dep, "die", from, to)
		if len(died) == 0 {
			t.Errorf("no container of %s died:\n%s", dep, el.summary())
			continue
		}
		last := died[len(died)-1]
		order = append(order, fmt.Sprintf("%s %s's container died", last.Format("15:04:05.000"), dep))
		if last.After(lastDie) {
			lastDie = last
		}
		if !brokerAt.IsZero() && !last.Before(brokerAt) {
			tasks, _ := newLeader.cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", dep))})
			var ts []string
			for _, task := range tasks {
				ts = append(ts, fmt.Sprintf("%s desired %s state %s at %s", task.ID[:8], task.DesiredState, task.Status.State, task.Status.Timestamp.Format("15:04:05.000")))
			}
			t.Errorf("%s's last container died at %s, after the broker was scaled down at %s; its tasks: %v\n%s", dep,
				last.Format("15:04:05.000"), brokerAt.Format("15:04:05.000"), ts, el.summary())
		}
	}
	sort.Strings(order)
	t.Logf("stage order (Docker's events): %s", strings.Join(order, "; "))
	var flip []string // the services' events and the nodes' state changes
	for _, l := range strings.Split(el.summary(), "\n") {
		if strings.Contains(l, svc[0][:strings.LastIndex(svc[0], "-")]) || strings.Contains(l, " node ") && strings.Contains(l, "->") && !strings.Contains(l, " -> ") {
			flip = append(flip, l)
		}
	}
	t.Logf("Docker's events in the flip (each once per dockerd that reported it):\n%s", strings.Join(flip, "\n"))
	newFirst, ok := firstCallSince(newLeader.proxy, "POST /services/{id}/update", killedAt)
	if !ok {
		t.Errorf("the new leader's agent (%s) sent no service update: %v", newLeader.Name, newLeader.proxy.Counts())
	}
	total := 0
	for _, h := range hosts {
		n := h.proxy.Counts()["POST /services/{id}/update"]
		total += n
		// Raft may elect twice (a leader that lost its quorum's vote
		// again): then another manager's agent wrote while it led.
		if n > 0 && h != leader && h != newLeader && elections(el, killedAt) < 2 {
			t.Errorf("%s's agent, never the leader, sent %d service updates", h.Name, n)
		}
	}
	t.Logf("elections since the kill (Docker's node events): %d", elections(el, killedAt))
	// Docker's events above judge "once per service"; the proxies count
	// calls as they arrive, so an update the old leader's agent had in
	// flight when it was killed is counted though its dockerd dropped it
	// with the connection. Every such call was sent before the kill.
	for _, c := range leader.proxy.Log() {
		if c.Key == "POST /services/{id}/update" && c.Time.After(killedAt) {
			t.Errorf("the old leader's proxy saw a service update at %s, after its agent was killed at %s",
				c.Time.Format("15:04:05.000"), killedAt.Format("15:04:05.000"))
		}
	}
	var said []string // the new leader's agent's actions and complaints since the kill
	for _, l := range strings.Split(newLeader.agent.stderr.String(), "\n") {
		if (strings.Contains(l, "msg=action") || strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR")) && strings.Contains(l, "subject=swarm/") {
			said = append(said, l)
		}
	}
	t.Logf("the new leader's (%s) agent on the services:\n%s", newLeader.Name, strings.Join(said, "\n"))
	t.Logf("service updates through the proxies in the flip: %d (old leader %s: %d, new leader %s: %d)", total,
		leader.Name, leader.proxy.Counts()["POST /services/{id}/update"], newLeader.Name, newLeader.proxy.Counts()["POST /services/{id}/update"])
	// The goals: the new leader's agent writes within one interval of the
	// election, and scales the broker down within one interval of the
	// drain (plus what a worker whose session with the new leader is young
	// holds it for: the assignment lag allowed and the stop grace period,
	// controllers/swarm settling). Asserted: ten times the interval, and
	// the hold.
	ready := electedAt // when the broker may go: the election and the drain
	if lastDie.After(ready) {
		ready = lastDie
	}
	if ok {
		// Its first write is a dependent's scale-down the old leader's
		// agent did not get to, due at the election; or, when the old one
		// sent both, the broker's, due once drained.
		due, what := ready, "the election and the drain"
		for _, dep := range svc[1:] {
			if ups := el.replicaUpdates(dep, electedAt, to); len(ups) > 0 {
				due, what = electedAt, "the election"
			}
		}
		if late := newFirst.Time.Sub(due); late > 10*interval {
			t.Errorf("the new leader's agent wrote first %s after %s, want within %s (goal: one interval, %s)", late, what, 10*interval, interval)
		}
		t.Logf("the new leader's agent's first write %s after %s", newFirst.Time.Sub(due).Round(time.Millisecond), what)
	}
	if !brokerAt.IsZero() && !lastDie.IsZero() {
		if late, within := brokerAt.Sub(ready), 10*interval+hostsAssignLag+hostsStopGrace; late > within {
			t.Errorf("the broker was scaled down %s after the election and the drain, want within %s (goal: the interval, %s, the assignment lag allowed, %s, and the stop grace period, %s)", late, within, interval, hostsAssignLag, hostsStopGrace)
		}
		t.Logf("failover: agent killed -> new leader elected %s (Swarm; dockerd stopped %s after the kill); -> its agent's first write %s (election -> first write %s); last dependent died %s after the kill; -> broker scaled down %s after the kill (%s after the drain)",
			electedAt.Sub(killedAt).Round(time.Millisecond), stoppedAt.Sub(killedAt).Round(time.Millisecond),
			newFirst.Time.Sub(killedAt).Round(time.Millisecond), newFirst.Time.Sub(electedAt).Round(time.Millisecond),
			lastDie.Sub(killedAt).Round(time.Millisecond), brokerAt.Sub(killedAt).Round(time.Millisecond), brokerAt.Sub(ready).Round(time.Millisecond))
	}
	// Node-scoped: every surviving host's own agent stopped its container.
	eventually(t, 30*time.Second, "every surviving host's compose container stopped", func() error {
		for _, h := range hosts {
			if h == leader {
				continue
			}
			c, err := h.cli.ContainerInspect(ctx, compose.ContainerName(project, "local", 1))
			if err != nil {
				return err
			}
			if c.State.Running {
				return fmt.Errorf("%s: still running", h.Name)
			}
		}
		return nil
	})
	t.Logf("timings: setup (hosts, services, 5 agents converged) %s; leave maintenance %s; enter maintenance with failover %s; whole test %s",
		c.setup.Round(time.Millisecond), upTook.Round(time.Millisecond), brokerDown.Sub(inAt).Round(time.Millisecond), time.Since(c.began).Round(time.Millisecond))
}

func managersBut(managers []*testHost, but *testHost) []*testHost {
	var out []*testHost
	for _, h := range managers {
		if h != but {
			out = append(out, h)
		}
	}
	return out
}

// firstCallSince is the first call of key through p after since.
func firstCallSince(p *callcount.DockerProxy, key string, since time.Time) (callcount.Call, bool) {
	for _, c := range p.Log() {
		if c.Key == key && c.Time.After(since) {
			return c, true
		}
	}
	return callcount.Call{}, false
}

// nodesUnknownAfter is the time of the first node event ready->unknown
// after since: a new leader's dispatcher marks every node so when it takes
// over (swarmkit's markNodesUnknown), hence the election as Docker tells it.
func (el *eventLog) nodesUnknownAfter(since time.Time) time.Time {
	el.mu.Lock()
	defer el.mu.Unlock()
	var at time.Time
	for _, m := range el.events {
		a, ts := m.Actor.Attributes, time.Unix(0, m.TimeNano)
		if m.Type == events.NodeEventType && a["state.old"] == "ready" && a["state.new"] == "unknown" && ts.After(since) && (at.IsZero() || ts.Before(at)) {
			at = ts
		}
	}
	return at
}

// elections counts the new leaders' takeovers after since: the distinct
// batches of node events ready->unknown (one per takeover, each reported
// by every manager's dockerd).
func elections(el *eventLog, since time.Time) int {
	el.mu.Lock()
	defer el.mu.Unlock()
	seen := map[int64]bool{}
	for _, m := range el.events {
		a, ts := m.Actor.Attributes, time.Unix(0, m.TimeNano)
		if m.Type == events.NodeEventType && a["state.old"] == "ready" && a["state.new"] == "unknown" && ts.After(since) {
			seen[ts.Truncate(time.Second).Unix()] = true
		}
	}
	return len(seen)
}

// awaitFirstMutatingKey waits for the first call of key through p after
// since.
func awaitFirstMutatingKey(t *testing.T, p *callcount.DockerProxy, key string, since time.Time, within time.Duration) callcount.Call {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if c, ok := firstCallSince(p, key, since); ok {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", key, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stopDockerd stops a test host's dockerd (SIGTERM, as a host going down
// does) and waits until it is gone.
func stopDockerd(t *testing.T, h *testHost) {
	t.Helper()
	pidFile := filepath.Join(h.Run, "dockerd.pid")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the dockerd of %s: %v", h.Name, err)
	}
	var pid int
	fmt.Sscan(string(b), &pid)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM to the dockerd of %s (%d): %v", h.Name, pid, err)
	}
	eventually(t, 30*time.Second, "the dockerd of "+h.Name+" gone", func() error {
		if syscall.Kill(pid, 0) == nil {
			if st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); !strings.Contains(string(st), ") Z ") {
				return fmt.Errorf("still running")
			}
		}
		return nil
	})
}
