package compose

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"golang.org/x/sync/errgroup"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

// Apply carries out one action on the containers observed in this pass:
// the Steps its Plan worked out (which containers to stop, which numbers to
// bring up), nothing computed again.
//
// A scale-down stops the started containers numbered beyond the target one
// at a time from the highest number, each stop graceful (SIGTERM, or the
// container's stop signal, then up to the service's stopTimeout before
// Docker kills it) and waited for, then removes it. The service's
// lowest-numbered container is never removed, only stopped: it is the
// template a later scale-up is made from (see the package doc).
//
// A scale-up brings up the missing numbers, lowest first: a stopped
// container of that number is reused; otherwise a new container is created
// from the lowest-numbered one's configuration, named
// <project>-<service>-<n> as Compose v2 names it. Once every number has its
// container they are started together (at most Concurrency at once), as
// Compose starts them.
//
// Calls that change state are sent whole even when the pass is being
// abandoned; the driver stops between containers.
func (d *Driver) Apply(ctx context.Context, a controllers.Action, t controllers.Target, l controllers.Live) error {
	sl, ok := l.Raw.(serviceLive)
	if !ok || len(sl.Replicas) == 0 {
		return fmt.Errorf("%s: no containers of compose service %s/%s observed", a.Subject, t.Service.Project, t.Name)
	}
	switch steps := a.Steps.(type) {
	case stopSteps:
		if a.Op == controllers.OpScaleDown {
			return d.scaleDown(ctx, a.Subject, sl, steps, stopTimeout(t.Service))
		}
	case startSteps:
		if a.Op == controllers.OpScaleUp {
			return d.scaleUp(ctx, a.Subject, sl, steps, overrideOf(t.Service))
		}
	case recreateSteps:
		if a.Op == controllers.OpSetImage || a.Op == controllers.OpRestart {
			return d.recreate(ctx, a.Subject, t, sl, steps)
		}
	}
	switch a.Op {
	case controllers.OpScaleDown, controllers.OpScaleUp, controllers.OpSetImage:
		return fmt.Errorf("%s: %s was not planned by the compose driver (no steps)", a.Subject, a.Op)
	case controllers.OpRestart:
		if a.Field == controllers.FieldFailing {
			return d.restartFailing(ctx, a.Subject, failingReplicas(t, sl), stopTimeout(t.Service))
		}
	}
	return fmt.Errorf("%s: the compose driver cannot %s", a.Subject, a.Op)
}

// stopTimeout is the grace a replica gets on scale-down (v1 defaults it).
func stopTimeout(svc *v1.Service) time.Duration {
	if svc == nil || svc.StopTimeout == nil {
		return v1.DefaultStopTimeout
	}
	return svc.StopTimeout.Duration
}

func (d *Driver) scaleDown(ctx context.Context, subject string, sl serviceLive, toStop []replica, grace time.Duration) error {
	keep, _ := sl.lowest()
	for _, r := range toStop {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: abandoned before stopping %s: %w", subject, r.Name, err)
		}
		gone, err := d.stop(ctx, subject, r, grace)
		if err != nil {
			return err
		}
		if gone || r.ID == keep.ID {
			continue
		}
		if err := d.remove(ctx, subject, r.ID, r.Name, false); err != nil {
			return err
		}
	}
	return nil
}

// restartFailing is the failure policy's restart: each failing container
// is restarted (stopped gracefully if it runs, then started), one after
// another.
func (d *Driver) restartFailing(ctx context.Context, subject string, failing []replica, grace time.Duration) error {
	secs := int(math.Ceil(grace.Seconds()))
	for _, r := range failing {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace+d.timeout())
		d.Count.Add("restart")
		err := d.API.ContainerRestart(cctx, r.ID, container.StopOptions{Timeout: &secs})
		cancel()
		if err != nil {
			return fmt.Errorf("%s: restart %s: %w", subject, r.Name, err)
		}
	}
	return nil
}

// stop stops one container gracefully and waits until it has exited. gone
// is true when the container no longer exists (removed by someone else).
func (d *Driver) stop(ctx context.Context, subject string, r replica, grace time.Duration) (gone bool, err error) {
	secs := int(math.Ceil(grace.Seconds()))
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace+d.timeout())
	defer cancel()
	d.Count.Add("stop")
	err = d.API.ContainerStop(cctx, r.ID, container.StopOptions{Timeout: &secs})
	switch {
	case err == nil:
		return false, nil
	case cerrdefs.IsNotFound(err):
		return true, nil
	}
	return false, fmt.Errorf("%s: stop %s: %w", subject, r.Name, err)
}

// remove removes a container, as Compose does on scale-down: its anonymous
// volumes stay unless force (a dead container replaced in place).
func (d *Driver) remove(ctx context.Context, subject, id, name string, force bool) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.timeout())
	defer cancel()
	d.Count.Add("remove")
	err := d.API.ContainerRemove(cctx, id, container.RemoveOptions{Force: force})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("%s: remove %s: %w", subject, name, err)
	}
	return nil
}

func (d *Driver) scaleUp(ctx context.Context, subject string, sl serviceLive, toStart []int, over override) error {
	// First every missing number gets a container, in order (stopped ones
	// are reused), then they are started together, as Compose starts them:
	// on a busy host a start takes seconds, mostly in the daemon.
	type pending struct{ id, name string }
	var queue []pending
	var tmpl *container.InspectResponse
	var errs []error
	for _, n := range toStart {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("%s: abandoned before bringing up number %d: %w", subject, n, err))
			break
		}
		if r, ok := sl.stopped(n); ok {
			if r.State != container.StateDead {
				queue = append(queue, pending{r.ID, r.Name})
				continue
			}
			// A dead container cannot be started; it holds the name.
			if err := d.remove(ctx, subject, r.ID, r.Name, true); err != nil {
				errs = append(errs, err)
				break
			}
		}
		if tmpl == nil {
			from, _ := sl.lowest()
			t, err := d.inspect(ctx, subject, from)
			if err != nil {
				errs = append(errs, err)
				break
			}
			tmpl = &t
		}
		spec, err := replicaSpec(*tmpl, sl.Project, sl.Service, n, over)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", subject, err))
			break
		}
		id, err := d.create(ctx, subject, spec)
		if err != nil {
			errs = append(errs, err)
			break
		}
		queue = append(queue, pending{id, spec.Name})
	}
	// What was made is started even when making the rest failed: the
	// pass then reports the failure with as much as possible running.
	startErrs := make([]error, len(queue))
	var g errgroup.Group
	g.SetLimit(d.concurrency()) // Go waits for a slot, so starts begin in number order
	for i, p := range queue {
		g.Go(func() error {
			startErrs[i] = d.start(ctx, subject, p.id, p.name)
			return nil // every start's error is kept, not only the first
		})
	}
	g.Wait()
	return errors.Join(append(errs, startErrs...)...)
}

// stopped returns a container numbered n that is not started, if any.
func (s serviceLive) stopped(n int) (replica, bool) {
	for _, r := range s.Replicas {
		if r.Number == n && !r.started() {
			return r, true
		}
	}
	return replica{}, false
}

func (d *Driver) inspect(ctx context.Context, subject string, r replica) (container.InspectResponse, error) {
	cctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	d.Count.Add("inspect")
	c, err := d.API.ContainerInspect(cctx, r.ID)
	if err != nil {
		return c, fmt.Errorf("%s: inspect the template %s: %w", subject, r.Name, err)
	}
	return c, nil
}

// create creates a replica and joins its other networks. A container that
// could not join them all is removed again: started, it would run cut off.
func (d *Driver) create(ctx context.Context, subject string, s spec) (string, error) {
	send := context.WithoutCancel(ctx)
	cctx, cancel := context.WithTimeout(send, d.timeout())
	d.Count.Add("create")
	resp, err := d.API.ContainerCreate(cctx, s.Config, s.HostConfig, s.Networking, nil, s.Name)
	cancel()
	if err != nil {
		return "", fmt.Errorf("%s: create %s: %w", subject, s.Name, err)
	}
	for _, ep := range s.Connect {
		cctx, cancel := context.WithTimeout(send, d.timeout())
		d.Count.Add("connect")
		err := d.API.NetworkConnect(cctx, ep.Network, resp.ID, ep.Settings)
		cancel()
		if err != nil {
			err = fmt.Errorf("%s: connect %s to network %s: %w", subject, s.Name, ep.Network, err)
			if rerr := d.remove(ctx, subject, resp.ID, s.Name, true); rerr != nil {
				err = errors.Join(err, rerr)
			}
			return "", err
		}
	}
	return resp.ID, nil
}

func (d *Driver) start(ctx context.Context, subject, id, name string) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.timeout())
	defer cancel()
	d.Count.Add("start")
	if err := d.API.ContainerStart(cctx, id, container.StartOptions{}); err != nil {
		return fmt.Errorf("%s: start %s: %w", subject, name, err)
	}
	return nil
}

// spec is everything needed to create one replica.
type spec struct {
	Name       string
	Config     *container.Config
	HostConfig *container.HostConfig
	Networking *network.NetworkingConfig
	// Connect are the networks joined after create, in name order: engines
	// before API 1.44 take only one network in the create call.
	Connect []endpoint
}

type endpoint struct {
	Network  string // the network's name (its ID when known)
	Settings *network.EndpointSettings
}

// ContainerName is the name Compose v2 gives replica n of a service.
func ContainerName(project, service string, n int) string {
	return project + "-" + service + "-" + strconv.Itoa(n)
}

// ReplicaName is the name replica n gets when made from the container
// named tmpl: in the style the project's compose client named it, so one
// project's containers read alike. docker-compose 1.x names them
// <project>_<service>_<n>; Compose v2 (the default) <project>-<service>-<n>.
// Either client finds them by their labels, not their names.
func ReplicaName(tmpl, project, service string, n int) string {
	if strings.HasPrefix(tmpl, project+"_"+service+"_") {
		return project + "_" + service + "_" + strconv.Itoa(n)
	}
	return ContainerName(project, service, n)
}

// replicaSpec derives replica n from the template's inspected configuration:
// the same config, host config and networks, with the container number
// label set to n, and with what belongs to the template container alone
// left out (its generated hostname, MAC and IP addresses, the aliases that
// name it), and the declared image and restartOn value, when set, instead of
// the template's. It is pure.
func replicaSpec(tmpl container.InspectResponse, project, service string, n int, over override) (spec, error) {
	if tmpl.ContainerJSONBase == nil || tmpl.Config == nil || tmpl.HostConfig == nil {
		return spec{}, errors.New("template container has no configuration")
	}
	tmplName := trimSlash(tmpl.Name)
	name := ReplicaName(tmplName, project, service, n)
	short := tmpl.ID
	if len(short) > 12 {
		short = short[:12]
	}

	cfg := *tmpl.Config
	cfg.Labels = maps.Clone(tmpl.Config.Labels)
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	cfg.Labels[LabelProject] = project
	cfg.Labels[LabelService] = service
	cfg.Labels[LabelNumber] = strconv.Itoa(n)
	delete(cfg.Labels, labelReplace)
	over.apply(&cfg)
	cfg.Env = slices.Clone(tmpl.Config.Env)
	if cfg.Hostname == short {
		cfg.Hostname = "" // Docker's default: the new container's own id
	}
	cfg.MacAddress = "" //nolint:staticcheck // one MAC address per container
	hc := *tmpl.HostConfig

	s := spec{Name: name, Config: &cfg, HostConfig: &hc}
	mode := hc.NetworkMode
	if mode.IsHost() || mode.IsNone() || mode.IsContainer() || tmpl.NetworkSettings == nil {
		return s, nil // the network stack is not the container's own
	}
	nets := tmpl.NetworkSettings.Networks
	names := slices.Sorted(maps.Keys(nets))
	primary := ""
	if _, ok := nets[string(mode)]; ok {
		primary = string(mode)
	} else if len(names) > 0 {
		primary = names[0]
	}
	for _, net := range names {
		ep := nets[net]
		if ep == nil {
			ep = &network.EndpointSettings{}
		}
		es := &network.EndpointSettings{
			Links:      slices.Clone(ep.Links),
			DriverOpts: maps.Clone(ep.DriverOpts),
			GwPriority: ep.GwPriority,
		}
		// The default bridge takes no aliases.
		if net != network.NetworkBridge {
			es.Aliases = aliases(ep.Aliases, tmplName, tmpl.ID, short, name)
		}
		if net == primary {
			s.Networking = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{net: es}}
			continue
		}
		target := net
		if ep.NetworkID != "" {
			target = ep.NetworkID
		}
		s.Connect = append(s.Connect, endpoint{Network: target, Settings: es})
	}
	return s, nil
}

// aliases are the template's network aliases for a new replica: those that
// name the template container (its name, id or short id) are replaced by
// the replica's name, once; the rest (the service name, declared aliases)
// are kept.
func aliases(tmplAliases []string, tmplName, id, short, name string) []string {
	var out []string
	named := false
	for _, a := range tmplAliases {
		if a == tmplName || a == id || a == short {
			if !named {
				out = append(out, name)
				named = true
			}
			continue
		}
		out = append(out, a)
	}
	return out
}

func trimSlash(s string) string {
	if len(s) > 0 && s[0] == '/' {
		return s[1:]
	}
	return s
}
