package swarm

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"

	"reconciler.dev/reconciler/controllers"
)

// clusterAPI is one node's dockerd as the role code sees it: /info says
// whether it is a manager and how many there are, the node list which
// manager leads. It also answers the service calls, counting them.
type clusterAPI struct {
	API
	node     string // this node's id
	manager  bool
	managers int
	leader   string // the leader's id
	svc      swarm.Service

	taskList []swarm.Task
	// unknown: the nodes whose status is unknown (not re-registered with
	// a new leader); the others are ready.
	unknown map[string]bool

	infos, nodeLists, lists, updates, tasks int
}

func (f *clusterAPI) Info(context.Context) (system.Info, error) {
	f.infos++
	return system.Info{Swarm: swarm.Info{
		NodeID: f.node, LocalNodeState: swarm.LocalNodeStateActive,
		ControlAvailable: f.manager, Managers: f.managers,
	}}, nil
}

func (f *clusterAPI) NodeList(context.Context, swarm.NodeListOptions) ([]swarm.Node, error) {
	f.nodeLists++
	var out []swarm.Node
	for _, id := range []string{"n1", "n2", "n3"} {
		st := swarm.NodeStateReady
		if f.unknown[id] {
			st = swarm.NodeStateUnknown
		}
		out = append(out, swarm.Node{ID: id, Description: swarm.NodeDescription{Hostname: "host-" + id},
			ManagerStatus: &swarm.ManagerStatus{Leader: id == f.leader}, Status: swarm.NodeStatus{State: st}})
	}
	return out, nil
}

func (f *clusterAPI) ListServices(context.Context, swarm.ServiceListOptions) ([]Service, error) {
	f.lists++
	return listed(f.svc), nil
}

func (f *clusterAPI) ServiceUpdate(context.Context, string, swarm.Version, swarm.ServiceSpec, swarm.ServiceUpdateOptions) (swarm.ServiceUpdateResponse, error) {
	f.updates++
	return swarm.ServiceUpdateResponse{}, nil
}

func newClusterDriver(f *clusterAPI) *Driver { return &Driver{API: f, Cluster: f} }

// Every role, from what the node's own dockerd says: who writes, who only
// observes (and names the leader), and that a worker lists nothing.
func TestRoleDecidesWhoWrites(t *testing.T) {
	ts := targets(declare("factory-proxy", 0, ""))
	cases := []struct {
		name      string
		api       clusterAPI
		kind      RoleKind
		convBy    string
		lists     int
		wantPlans int
	}{
		{"one-node swarm", clusterAPI{node: "n1", manager: true, managers: 1}, RoleSingle, "", 1, 1},
		{"leader of three", clusterAPI{node: "n1", manager: true, managers: 3, leader: "n1"}, RoleLeader, "", 1, 1},
		{"follower", clusterAPI{node: "n2", manager: true, managers: 3, leader: "n1"}, RoleFollower, "the leader's agent on host-n1", 1, 1},
		{"no leader", clusterAPI{node: "n2", manager: true, managers: 3}, RoleFollower, "the leader's agent (the swarm has no leader now)", 1, 1},
		// In an election /info cannot count the managers (its store query
		// fails without a leader) and says 0: not a one-node swarm.
		{"electing, /info counts no managers", clusterAPI{node: "n2", manager: true, managers: 0}, RoleFollower, "the leader's agent (the swarm has no leader now)", 1, 1},
		{"elected, /info counted no managers", clusterAPI{node: "n2", manager: true, managers: 0, leader: "n2"}, RoleLeader, "", 1, 1},
		{"worker", clusterAPI{node: "n4", managers: 3}, RoleWorker, "the leader's agent (this node is a worker: it cannot read services)", 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := c.api
			f.svc = service("factory-proxy", 1, 1, "local/proxy:1")
			d := newClusterDriver(&f)
			r, err := d.Role(context.Background())
			if err != nil || r.Kind != c.kind {
				t.Fatalf("role %+v, %v; want %s", r, err, c.kind)
			}
			if got := r.Kind.Writes(); got != (c.kind == RoleSingle || c.kind == RoleLeader) {
				t.Errorf("Writes() = %v", got)
			}
			live, err := d.Observe(context.Background(), ts)
			if err != nil {
				t.Fatal(err)
			}
			l := live[ts[0].Subject()]
			if l.ConvergedBy != c.convBy {
				t.Errorf("ConvergedBy %q, want %q", l.ConvergedBy, c.convBy)
			}
			if f.lists != c.lists {
				t.Errorf("%d service lists, want %d", f.lists, c.lists)
			}
			if got := len(d.Plan(ts, live)); got != c.wantPlans {
				t.Errorf("%d actions planned, want %d", got, c.wantPlans)
			}
			if h := d.Health(ts[0], l); c.kind == RoleWorker && (h.Ready || h.Reason == "") {
				t.Errorf("a worker's health %+v, want not ready with a reason", h)
			}
		})
	}
}

// A one-node swarm pays one /info per driver, not per pass; a manager
// among several reads its role at every plan, but not while waiting.
func TestRoleIsCachedOnlyForASingleManager(t *testing.T) {
	ts := targets(declare("factory-proxy", 0, ""))
	ctx := context.Background()
	single := &clusterAPI{node: "n1", manager: true, managers: 1, svc: service("factory-proxy", 1, 1, "x")}
	d := newClusterDriver(single)
	for range 3 {
		if _, err := d.Observe(ctx, ts); err != nil {
			t.Fatal(err)
		}
	}
	if single.infos != 1 || single.nodeLists != 0 {
		t.Errorf("one-node swarm: %d /info and %d node lists for 3 plans, want 1 and 0", single.infos, single.nodeLists)
	}
	multi := &clusterAPI{node: "n2", manager: true, managers: 3, leader: "n1", svc: service("factory-proxy", 1, 1, "x")}
	d = newClusterDriver(multi)
	for range 3 {
		if _, err := d.Observe(ctx, ts); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Observe(controllers.WithWaiting(ctx), ts); err != nil {
		t.Fatal(err)
	}
	if multi.infos != 3 || multi.nodeLists != 3 {
		t.Errorf("three managers: %d /info and %d node lists for 3 plans and a wait, want 3 and 3", multi.infos, multi.nodeLists)
	}
}

// Leadership that moved between the plan and the write stops the write:
// the update is not sent, and the error says why (errors.Is ErrNotLeader).
func TestApplyRefusesOnceLeadershipMoved(t *testing.T) {
	ctx := context.Background()
	f := &clusterAPI{node: "n1", manager: true, managers: 3, leader: "n1", svc: service("factory-proxy", 1, 1, "x")}
	d := newClusterDriver(f)
	ts := targets(declare("factory-proxy", 0, ""))
	live, err := d.Observe(ctx, ts)
	if err != nil {
		t.Fatal(err)
	}
	plan := d.Plan(ts, live)
	if len(plan) != 1 {
		t.Fatalf("plan %v, want one scale-down", plan)
	}
	f.leader = "n2"
	err = d.Apply(ctx, plan[0], ts[0], live[ts[0].Subject()])
	if !errors.Is(err, ErrNotLeader) {
		t.Fatalf("Apply after losing leadership: %v, want ErrNotLeader", err)
	}
	if f.updates != 0 {
		t.Errorf("%d updates sent by a node that is no longer the leader", f.updates)
	}
	f.leader = "n1"
	if err := d.Apply(ctx, plan[0], ts[0], live[ts[0].Subject()]); err != nil || f.updates != 1 {
		t.Errorf("Apply as the leader: %v, %d updates", err, f.updates)
	}
}

func (f *clusterAPI) TaskList(context.Context, swarm.TaskListOptions) ([]swarm.Task, error) {
	f.tasks++
	return f.taskList, nil
}

// On a swarm of several nodes, a service scaled down whose task still runs
// on its node is not drained, whatever the manager's running count says
// (it leaves out tasks whose desired state is shutdown); a one-node swarm
// reads no tasks for it.
func TestDrainCountsTasksStillRunningOnTheirNodes(t *testing.T) {
	ctx := context.Background()
	ts := targets(declare("factory-proxy", 0, ""))
	svc := service("factory-proxy", 0, 0, "x")
	svc.UpdatedAt = time.Now().Add(-10 * time.Second)
	stopping := swarm.Task{ServiceID: svc.ID, DesiredState: swarm.TaskStateShutdown, Status: swarm.TaskStatus{State: swarm.TaskStateRunning}}
	gone := swarm.Task{ServiceID: svc.ID, DesiredState: swarm.TaskStateShutdown, Status: swarm.TaskStatus{State: swarm.TaskStateShutdown}}

	leader := &clusterAPI{node: "n1", manager: true, managers: 3, leader: "n1", svc: svc, taskList: []swarm.Task{stopping, gone}}
	d := newClusterDriver(leader)
	// Its node has led for a minute (a leader of seconds holds every drain
	// of a service changed lately: see TestSettling).
	d.Now = func() time.Time { return time.Now().Add(-time.Minute) }
	if _, err := d.Role(ctx); err != nil {
		t.Fatal(err)
	}
	d.Now = nil
	live, err := d.Observe(controllers.WithWaiting(ctx), ts)
	if err != nil {
		t.Fatal(err)
	}
	l := live[ts[0].Subject()]
	if h := d.Health(ts[0], l); h.Drained || l.Running != 1 {
		t.Errorf("leader of three: running %d, health %+v; want 1 running, not drained", l.Running, h)
	}
	leader.taskList = []swarm.Task{gone}
	live, _ = d.Observe(controllers.WithWaiting(ctx), ts)
	if h := d.Health(ts[0], live[ts[0].Subject()]); !h.Drained {
		t.Errorf("leader of three, the task stopped: %+v, want drained", h)
	}
	// Right after an election: a node not yet re-registered with the new
	// leader, whose tasks the leader's store may have stale or not at all.
	leader.unknown = map[string]bool{"n3": true}
	leader.taskList = nil
	live, _ = d.Observe(controllers.WithWaiting(ctx), ts)
	if h := d.Health(ts[0], live[ts[0].Subject()]); h.Drained || !strings.Contains(h.Reason, "host-n3") {
		t.Errorf("leader of three, node n3 unknown: %+v, want not drained, naming host-n3", h)
	}
	leader.unknown = nil
	live, _ = d.Observe(controllers.WithWaiting(ctx), ts)
	if h := d.Health(ts[0], live[ts[0].Subject()]); !h.Drained {
		t.Errorf("leader of three, n3 ready again: %+v, want drained", h)
	}

	single := &clusterAPI{node: "n1", manager: true, managers: 1, svc: svc, taskList: []swarm.Task{stopping}}
	d = newClusterDriver(single)
	if _, err := d.Observe(ctx, ts); err != nil {
		t.Fatal(err)
	}
	if single.tasks != 0 {
		t.Errorf("a one-node swarm read the tasks %d times", single.tasks)
	}
}

func TestUnsettledNodes(t *testing.T) {
	node := func(name string, st swarm.NodeState) swarm.Node {
		return swarm.Node{ID: "id-" + name, Description: swarm.NodeDescription{Hostname: name}, Status: swarm.NodeStatus{State: st}}
	}
	for _, c := range []struct {
		name  string
		nodes []swarm.Node
		want  []string
	}{
		{"all ready", []swarm.Node{node("a", swarm.NodeStateReady), node("b", swarm.NodeStateReady)}, nil},
		{"a down node has no running tasks", []swarm.Node{node("a", swarm.NodeStateReady), node("b", swarm.NodeStateDown)}, nil},
		{"unknown after an election", []swarm.Node{node("b", swarm.NodeStateUnknown), node("a", swarm.NodeStateReady)}, []string{"b (unknown)"}},
		{"a manager Raft finds unreachable is as down", []swarm.Node{{ID: "m", Description: swarm.NodeDescription{Hostname: "m"},
			Status: swarm.NodeStatus{State: swarm.NodeStateUnknown}, ManagerStatus: &swarm.ManagerStatus{Reachability: swarm.ReachabilityUnreachable}}}, nil},
		{"a reachable manager not re-registered", []swarm.Node{{ID: "m", Description: swarm.NodeDescription{Hostname: "m"},
			Status: swarm.NodeStatus{State: swarm.NodeStateUnknown}, ManagerStatus: &swarm.ManagerStatus{Reachability: swarm.ReachabilityReachable}}}, []string{"m (unknown)"}},
		{"disconnected, no host name", []swarm.Node{{ID: "x", Status: swarm.NodeStatus{State: swarm.NodeStateDisconnected}}, node("a", swarm.NodeStateUnknown)}, []string{"a (unknown)", "x (disconnected)"}},
	} {
		if got := unsettledNodes(c.nodes); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestMayRun(t *testing.T) {
	task := func(desired, state swarm.TaskState) swarm.Task {
		return swarm.Task{DesiredState: desired, Status: swarm.TaskStatus{State: state}}
	}
	for _, c := range []struct {
		name  string
		tasks []swarm.Task
		want  int32
	}{
		{"none", nil, 0},
		{"running, to run", []swarm.Task{task(swarm.TaskStateRunning, swarm.TaskStateRunning)}, 1},
		{"running, told to stop", []swarm.Task{task(swarm.TaskStateShutdown, swarm.TaskStateRunning), task(swarm.TaskStateRemove, swarm.TaskStateRunning)}, 2},
		{"starting, told to stop: its container may run", []swarm.Task{task(swarm.TaskStateRemove, swarm.TaskStateStarting), task(swarm.TaskStateShutdown, swarm.TaskStateAssigned)}, 2},
		{"starting, to run: not yet running", []swarm.Task{task(swarm.TaskStateRunning, swarm.TaskStateStarting)}, 0},
		{"ended", []swarm.Task{task(swarm.TaskStateRemove, swarm.TaskStateShutdown), task(swarm.TaskStateShutdown, swarm.TaskStateComplete), task(swarm.TaskStateShutdown, swarm.TaskStateFailed)}, 0},
		{"never placed", []swarm.Task{task(swarm.TaskStateRemove, swarm.TaskStatePending)}, 0},
	} {
		if got := mayRun(c.tasks); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

func TestSettling(t *testing.T) {
	now := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	grace := 5 * time.Second
	changed := func(ago time.Duration) swarm.Service {
		return swarm.Service{Meta: swarm.Meta{UpdatedAt: now.Add(-ago)},
			Spec: swarm.ServiceSpec{TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{StopGracePeriod: &grace}}}}
	}
	svc := changed(20 * time.Second)
	node := func(name string, st swarm.NodeState, ago time.Duration) swarm.Node {
		return swarm.Node{ID: "id-" + name, Meta: swarm.Meta{UpdatedAt: now.Add(-ago)},
			Description: swarm.NodeDescription{Hostname: name}, Status: swarm.NodeStatus{State: st}}
	}
	noGrace := svc
	noGrace.Spec.TaskTemplate.ContainerSpec = &swarm.ContainerSpec{}
	long := now.Add(-time.Hour) // led for long
	for _, c := range []struct {
		name        string
		svc         swarm.Service
		nodes       []swarm.Node
		leaderSince time.Time
		want        []string
	}{
		{"every session older than the change", svc, []swarm.Node{node("a", swarm.NodeStateReady, time.Minute)}, long, nil},
		// Told the stop by assignLag after registering, done by the grace
		// period after that.
		{"registered after the change, 2 s ago", svc, []swarm.Node{node("a", swarm.NodeStateReady, 2*time.Second), node("b", swarm.NodeStateReady, time.Hour)}, long, []string{"a (8s left)"}},
		{"registered after the change, 9 s ago", svc, []swarm.Node{node("a", swarm.NodeStateReady, 9*time.Second)}, long, []string{"a (1s left)"}},
		{"registered after the change, past the lag and the grace period", svc, []swarm.Node{node("a", swarm.NodeStateReady, 11*time.Second)}, long, nil},
		{"dockerd's default grace period", noGrace, []swarm.Node{node("a", swarm.NodeStateReady, 11*time.Second)}, long, []string{"a (4s left)"}},
		{"down nodes are unsettledNodes' business", svc, []swarm.Node{node("a", swarm.NodeStateDown, time.Second)}, long, nil},
		// A failover measured: the worker registered with the new leader
		// after the change, was told the stop 2.1 s later and its container
		// died 5.3 s after it registered. The grace period from the node's
		// update let go at 5 s: only the store's stopping task held the
		// drain, and a failing run had none (the broker went down 250 ms
		// before that container died).
		{"told the stop 2.2 s into the session, died at 5.3 s", svc, []swarm.Node{node("a", swarm.NodeStateReady, 5300*time.Millisecond)}, long, []string{"a (4.7s left)"}},
		{"changed 6 s into a session: the grace period from the change", changed(3 * time.Second),
			[]swarm.Node{node("a", swarm.NodeStateReady, 9*time.Second)}, long, []string{"a (2s left)"}},
		{"changed once the session had settled", changed(time.Second),
			[]swarm.Node{node("a", swarm.NodeStateReady, 11*time.Second)}, long, nil},
		// A node list read before the new leader's dispatcher marked the
		// nodes unknown shows the old leader's sessions as ready.
		{"the old leader's sessions: held from the election as this agent saw it", svc,
			[]swarm.Node{node("a", swarm.NodeStateReady, time.Hour)}, now.Add(-time.Second), []string{"a (9s left)"}},
		{"led past the lag and the grace period, old sessions", svc, []swarm.Node{node("a", swarm.NodeStateReady, time.Hour)}, now.Add(-11 * time.Second), nil},
	} {
		if got := settling(c.nodes, one(c.svc), c.leaderSince, now); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestLeaderSince(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	var c roleCache
	steps := []struct {
		kind   RoleKind // "" forgets (a failed call)
		at     time.Duration
		want   time.Duration
		leader bool
	}{
		{RoleFollower, 0, 0, false},
		{RoleLeader, time.Second, time.Second, true},
		{RoleLeader, 5 * time.Second, time.Second, true}, // still the same leadership
		{"", 6 * time.Second, 0, false},                  // a failure may hide a lost one
		{RoleLeader, 7 * time.Second, 7 * time.Second, true},
		{RoleFollower, 8 * time.Second, 0, false},
		{RoleLeader, 9 * time.Second, 9 * time.Second, true},
	}
	for i, s := range steps {
		if s.kind == "" {
			c.forget()
		} else {
			c.set(Role{Kind: s.kind}, t0.Add(s.at))
		}
		got := c.since()
		if s.leader != !got.IsZero() || (s.leader && !got.Equal(t0.Add(s.want))) {
			t.Errorf("step %d (%s at %s): leader since %v, want %s", i, s.kind, s.at, got, s.want)
		}
	}
}
