package swarm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"

	"reconciler.dev/reconciler/controllers"
)

// ClusterAPI is the part of the Docker client that tells a driver where its
// node stands in the swarm: /info (this node's id, whether it is a manager,
// how many managers there are) and the managers' list (which one is the
// Raft leader).
type ClusterAPI interface {
	Info(ctx context.Context) (system.Info, error)
	NodeList(ctx context.Context, options swarm.NodeListOptions) ([]swarm.Node, error)
}

// RoleKind is this node's place in the swarm, as far as writing services is
// concerned.
type RoleKind string

// The roles. Swarm services are cluster objects: on a swarm with more than
// one manager exactly one agent writes them, the one on the Raft leader.
const (
	// RoleSingle: the only manager (a one-node swarm, or no other manager),
	// hence the leader; the agent converges services as it always did.
	RoleSingle RoleKind = "single-manager"
	// RoleLeader: the Raft leader of a swarm with several managers.
	RoleLeader RoleKind = "leader"
	// RoleFollower: a manager that is not the leader: it observes and
	// reports the services, and never writes them.
	RoleFollower RoleKind = "follower"
	// RoleWorker: a worker cannot read services at all.
	RoleWorker RoleKind = "worker"
)

// Writes is true for the roles whose agent converges swarm services.
func (k RoleKind) Writes() bool { return k == RoleSingle || k == RoleLeader }

// Role is what this node's own dockerd says of it.
type Role struct {
	Kind     RoleKind
	NodeID   string
	Managers int
	// Leader is the host name of the leader's node ("" when a worker, which
	// cannot read the node list, or when the swarm has no leader).
	Leader string
}

// ErrNotLeader is returned (wrapped, with the subject) by an update this
// node is no longer entitled to send: leadership moved between the plan and
// the write.
var ErrNotLeader = errors.New("this node is no longer the swarm's leader")

// roleCache remembers the role of a single manager: the only manager is the
// leader for as long as it stays the only one, and leadership can move only
// by an election, which a manager joining does not start; the node would
// have to fail or be demoted first, and every call of the driver that fails
// forgets the role. So a one-node swarm pays one /info per agent, not per
// pass. Any other role is read again on every plan.
//
// It also remembers since when this node has been the leader, as this
// agent saw it (leaderSince): the first read that found it leading after
// one that did not, or after a failed call (a failure may hide a lost and
// regained leadership, so the time is taken again: later is the safe side).
type roleCache struct {
	mu          sync.Mutex
	role        Role
	valid       bool
	leaderSince time.Time
}

func (c *roleCache) get() (Role, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.role, c.valid
}

func (c *roleCache) set(r Role, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case r.Kind != RoleLeader:
		c.leaderSince = time.Time{}
	case c.role.Kind != RoleLeader || c.leaderSince.IsZero():
		c.leaderSince = now
	}
	c.role, c.valid = r, r.Kind == RoleSingle
}

func (c *roleCache) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.valid = false
	c.leaderSince = time.Time{}
}

// since is since when this node has led, as far as this agent saw (zero
// when it does not lead).
func (c *roleCache) since() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leaderSince
}

// last is the role read last, cached or not, and whether one was read.
func (c *roleCache) last() (Role, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.role, c.role.Kind != ""
}

// Role reads this node's role from its own dockerd: /info, and for a
// manager among several, the managers' list (one call each). Without a
// ClusterAPI every node counts as a single manager.
func (d *Driver) Role(ctx context.Context) (Role, error) {
	if d.Cluster == nil {
		return Role{Kind: RoleSingle}, nil
	}
	if r, ok := d.roles.get(); ok {
		return r, nil
	}
	r, err := d.readRole(ctx)
	if err != nil {
		d.roles.forget()
		return Role{}, err
	}
	d.roles.set(r, d.Now.Time())
	return r, nil
}

// observeRole is the role an Observe works with: read again for a plan; a
// wait (which only looks at the services a plan made it wait for) keeps
// the last one read, so waiting costs no calls more than it did.
func (d *Driver) observeRole(ctx context.Context) (Role, error) {
	if r, ok := d.roles.last(); ok && controllers.Waiting(ctx) {
		return r, nil
	}
	return d.Role(ctx)
}

// stillLeader checks, right before a write, that this node may still send
// it: a leader among several managers reads its role again (leadership may
// have moved since the plan); a single manager's stands.
func (d *Driver) stillLeader(ctx context.Context) error {
	r, ok := d.roles.last()
	if d.Cluster == nil || !ok || r.Kind == RoleSingle {
		return nil
	}
	fresh, err := d.readRole(ctx)
	if err != nil {
		return err
	}
	d.roles.set(fresh, d.Now.Time())
	if !fresh.Kind.Writes() {
		return fmt.Errorf("%w (%s)", ErrNotLeader, fresh.ConvergedBy())
	}
	return nil
}

func (d *Driver) readRole(ctx context.Context) (Role, error) {
	cctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	d.Count.Add("info")
	info, err := d.Cluster.Info(cctx)
	if err != nil {
		return Role{}, fmt.Errorf("reading the swarm role (/info): %w", err)
	}
	sw := info.Swarm
	r := Role{NodeID: sw.NodeID, Managers: sw.Managers}
	switch {
	case sw.LocalNodeState != swarm.LocalNodeStateActive:
		// Not in a swarm (or not yet): the service calls say why.
		r.Kind = RoleSingle
		return r, nil
	case !sw.ControlAvailable:
		r.Kind = RoleWorker
		return r, nil
	case sw.Managers == 1:
		// Only a count of one: while a swarm elects a leader, a manager's
		// /info cannot read its store and counts 0 managers. Taken for a
		// one-node swarm (and cached), a follower's agent wrote through a
		// 28 s election without the leader's drain checks
		// (TestHostsLeaderFailover); 0 is read from the managers' list.
		r.Kind = RoleSingle
		return r, nil
	}
	args := filters.NewArgs()
	args.Add("role", "manager")
	d.Count.Add("nodes")
	nodes, err := d.Cluster.NodeList(cctx, swarm.NodeListOptions{Filters: args})
	if err != nil {
		return Role{}, fmt.Errorf("reading the swarm's managers: %w", err)
	}
	r.Kind = RoleFollower
	for _, n := range nodes {
		if n.ManagerStatus == nil || !n.ManagerStatus.Leader {
			continue
		}
		r.Leader = n.Description.Hostname
		if n.ID == sw.NodeID {
			r.Kind = RoleLeader
		}
	}
	return r, nil
}

// ConvergedBy says who converges the services when this node does not.
func (r Role) ConvergedBy() string {
	switch r.Kind {
	case RoleFollower:
		if r.Leader == "" {
			return "the leader's agent (the swarm has no leader now)"
		}
		return "the leader's agent on " + r.Leader
	case RoleWorker:
		return "the leader's agent (this node is a worker: it cannot read services)"
	}
	return ""
}

// DetailConvergedBy is the detail (in /status objects[].details) of a
// service this agent only observes: who converges it.
const DetailConvergedBy = "convergedBy"

// unreadable is the Raw of a service a worker's agent cannot read.
type unreadable struct{}
