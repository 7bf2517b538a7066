package swarm

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"reconciler.dev/reconciler/controllers"
)

// localAPI is the part of the Docker client that shows this node's own
// containers. The real client has it; a driver whose API lacks it waits for
// the manager's view alone.
type localAPI interface {
	NodeList(ctx context.Context, options swarm.NodeListOptions) ([]swarm.Node, error)
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
}

// nodeCheckEvery is how long the answer to "is this swarm one node?" is
// trusted before it is asked again.
const nodeCheckEvery = time.Minute

// singleNode remembers whether the swarm is this node alone.
type singleNode struct {
	mu     sync.Mutex
	at     time.Time
	single bool
}

// localDrains lowers the running count of services being drained to what
// this node's container list says, on a one-node swarm, while a pass waits
// (controllers.Waiting). The manager counts a task as running until the
// node has reported its container's exit, and that report arrives about
// half a second after the container died (make bench, scenario 1: the
// container's die event at +1.2 s after the scale-down, the manager's
// count at 0 at +1.8 s). The container list is the node's own truth, so a
// dependency waiting for its dependents to stop goes down that much
// sooner. Only lower: a count is never raised, so readiness is never
// claimed early, and on a swarm of several nodes (whose other containers
// this daemon cannot see) nothing changes. One NodeList a minute and one
// ContainerList per wait step with something to drain; any error leaves
// the manager's view as it is.
func (d *Driver) localDrains(ctx context.Context, targets []controllers.Target, live map[string]controllers.Live) {
	la, ok := d.API.(localAPI)
	if !ok {
		return
	}
	var draining []controllers.Target
	for _, t := range targets {
		if l := live[t.Subject()]; l.Exists && l.Running > t.Replicas {
			draining = append(draining, t)
		}
	}
	if len(draining) == 0 || !d.isSingleNode(ctx, la) {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	d.count("containers")
	cs, err := la.ContainerList(cctx, container.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", "com.docker.swarm.service.id"),
		filters.Arg("status", "running"),
	)})
	if err != nil {
		return
	}
	LowerToLocal(draining, live, cs)
}

// LowerToLocal is the pure part of localDrains: each draining service's
// running count becomes the number of its running containers in cs, when
// that is lower.
func LowerToLocal(draining []controllers.Target, live map[string]controllers.Live, cs []container.Summary) {
	running := map[string]int32{}
	for _, c := range cs {
		if c.State == "running" {
			running[c.Labels["com.docker.swarm.service.id"]]++
		}
	}
	for _, t := range draining {
		l := live[t.Subject()]
		s, ok := l.Raw.(swarm.Service)
		if !ok {
			continue
		}
		if n := running[s.ID]; n < l.Running {
			l.Details = withDetail(l.Details, "containers", fmt.Sprintf("%d running on this node; the manager still counts %d", n, l.Running))
			l.Running = n
			l.State = fmt.Sprintf("%d/%d running", l.Running, l.Replicas)
			live[t.Subject()] = l
		}
	}
}

func (d *Driver) isSingleNode(ctx context.Context, la localAPI) bool {
	d.nodes.mu.Lock()
	defer d.nodes.mu.Unlock()
	if !d.nodes.at.IsZero() && time.Since(d.nodes.at) < nodeCheckEvery {
		return d.nodes.single
	}
	cctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	d.count("nodes")
	nodes, err := la.NodeList(cctx, swarm.NodeListOptions{})
	if err != nil {
		return false // not remembered: asked again next time
	}
	d.nodes.at, d.nodes.single = time.Now(), len(nodes) == 1
	return d.nodes.single
}
