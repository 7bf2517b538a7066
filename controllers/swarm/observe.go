package swarm

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"reconciler.dev/reconciler/controllers"
)

// API is the part of the Docker client this driver uses. The real client
// implements it; unit tests of pure logic never need it.
type API interface {
	ServiceList(ctx context.Context, options swarm.ServiceListOptions) ([]swarm.Service, error)
	ServiceInspectWithRaw(ctx context.Context, serviceID string, opts swarm.ServiceInspectOptions) (swarm.Service, []byte, error)
	ServiceUpdate(ctx context.Context, serviceID string, version swarm.Version, service swarm.ServiceSpec, options swarm.ServiceUpdateOptions) (swarm.ServiceUpdateResponse, error)
}

// Driver manages Swarm service replicas and images.
type Driver struct {
	API API
	// CallTimeout bounds every Docker API call (default 30s).
	CallTimeout time.Duration
	// Count, when set, is told of every API call ("list", "update",
	// "inspect"), for metrics.
	Count func(verb string)
}

func (d *Driver) count(verb string) {
	if d.Count != nil {
		d.Count(verb)
	}
}

// nameFilterLimit is the most names sent as list filters; beyond it the
// whole list is cheaper than a huge query string.
const nameFilterLimit = 50

func (d *Driver) timeout() time.Duration {
	if d.CallTimeout > 0 {
		return d.CallTimeout
	}
	return 30 * time.Second
}

// Observe lists the declared services, with their task counts, in one call.
func (d *Driver) Observe(ctx context.Context, targets []controllers.Target) (map[string]controllers.Live, error) {
	opts := swarm.ServiceListOptions{Status: true}
	if len(targets) <= nameFilterLimit {
		args := filters.NewArgs()
		for _, t := range targets {
			args.Add("name", t.Name)
		}
		opts.Filters = args
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	d.count("list")
	list, err := d.API.ServiceList(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("listing services: %w", err)
	}
	return liveFromList(targets, list), nil
}

// liveFromList pairs declared services with listed ones by exact name (the
// API's name filter matches prefixes).
func liveFromList(targets []controllers.Target, list []swarm.Service) map[string]controllers.Live {
	byName := make(map[string]swarm.Service, len(list))
	for _, s := range list {
		byName[s.Spec.Name] = s
	}
	out := make(map[string]controllers.Live, len(targets))
	for _, t := range targets {
		s, ok := byName[t.Name]
		if !ok {
			out[t.Subject()] = controllers.Live{State: "missing"}
			continue
		}
		out[t.Subject()] = liveOf(s)
	}
	return out
}

func liveOf(s swarm.Service) controllers.Live {
	l := controllers.Live{Exists: true, Raw: s}
	if s.Spec.Mode.Replicated != nil && s.Spec.Mode.Replicated.Replicas != nil {
		l.Replicas = int32(*s.Spec.Mode.Replicated.Replicas)
	}
	if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
		l.Image = cs.Image
	}
	if s.ServiceStatus != nil {
		l.Running = int32(s.ServiceStatus.RunningTasks)
	}
	l.State = fmt.Sprintf("%d/%d running", l.Running, l.Replicas)
	if updating(s) {
		l.State += ", updating"
	}
	if s.Spec.Mode.Replicated == nil {
		l.State = "not replicated"
	}
	return l
}

// updating is true while a rolling update is still in progress.
func updating(s swarm.Service) bool {
	if s.UpdateStatus == nil {
		return false
	}
	switch s.UpdateStatus.State {
	case swarm.UpdateStateUpdating, swarm.UpdateStateRollbackStarted:
		return true
	}
	return false
}

// sameImage compares a declared image with the live one. The Docker client
// writes every image into a service spec in familiar, tagged form ("nginx"
// becomes "nginx:latest", "docker.io/library/nginx:1" becomes "nginx:1"), and
// may pin it to a digest ("img:tag@sha256:..."): the tag is what git owns, so
// a declared image without a digest ignores the live one.
func sameImage(live, declared string) bool {
	if live == declared {
		return true
	}
	live, declared = clientImage(live), clientImage(declared)
	if !strings.Contains(declared, "@") {
		if i := strings.Index(live, "@"); i >= 0 {
			live = live[:i]
		}
	}
	return live == declared
}

// clientImage is an image as the Docker client writes it into a service
// spec; a reference that does not parse is left as it is.
func clientImage(image string) string {
	ref, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return image
	}
	return reference.FamiliarString(reference.TagNameOnly(ref))
}
