package swarm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"

	"github.com/docker/docker/api/types/swarm"

	"reconciler.dev/reconciler/controllers"
)

// maxSequenceRetries bounds re-reads after "update out of sequence" (someone
// else updated the service between our read and our write).
const maxSequenceRetries = 3

// Apply sends one ServiceUpdate for the action, built on the spec and
// version read in this pass, with the value its Plan put in the action's
// Steps (never parsed back from the text shown). A concurrent update makes
// Swarm answer "update out of sequence": the driver then re-reads the service and, if the field
// still differs, tries again.
func (d *Driver) Apply(ctx context.Context, a controllers.Action, t controllers.Target, l controllers.Live) error {
	svc, ok := l.Raw.(*Service)
	if !ok {
		return fmt.Errorf("%s: no live service observed", a.Subject)
	}
	read, err := svc.FullSpec()
	if err != nil {
		return fmt.Errorf("%s: %w", a.Subject, err)
	}
	version := svc.Version
	for attempt := 0; ; attempt++ {
		spec := read
		changed, err := setField(&spec, a)
		if err != nil {
			return fmt.Errorf("%s: %w", a.Subject, err)
		}
		if !changed {
			return nil // someone else already made it so
		}
		if err := d.stillLeader(ctx); err != nil {
			return fmt.Errorf("%s: update %s to %s: %w", a.Subject, a.Field, a.To, err)
		}
		// The update is sent whole or not at all: shutting down does not cut
		// a request in flight (its own timeout still bounds it).
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.timeout())
		undo := d.wroteField(t.Name, a, spec)
		d.Count.Add("update")
		resp, err := d.API.ServiceUpdate(cctx, svc.ID, version, spec, swarm.ServiceUpdateOptions{})
		cancel()
		if err != nil {
			undo()
		}
		if err == nil {
			for _, w := range resp.Warnings {
				controllers.Logger(ctx).Warn("swarm update warning", "subject", a.Subject, "warning", w)
			}
			return nil
		}
		d.roles.forget()
		if attempt >= maxSequenceRetries || ctx.Err() != nil {
			return fmt.Errorf("%s: update %s to %s: %w", a.Subject, a.Field, a.To, err)
		}
		// Was the update out of sequence? Swarm says so only in text (an
		// HTTP 500 the client types as errdefs Internal, like every other
		// daemon failure), so the driver judges it from state instead: it
		// re-reads the service, and only a version that moved since the
		// read this update was built on means someone else wrote in
		// between. Any other failure is returned as it came.
		cctx, cancel = context.WithTimeout(ctx, d.timeout())
		d.Count.Add("inspect")
		fresh, _, ierr := d.API.ServiceInspectWithRaw(cctx, svc.ID, swarm.ServiceInspectOptions{})
		cancel()
		if ierr != nil || fresh.Version.Index == version.Index {
			return fmt.Errorf("%s: update %s to %s: %w", a.Subject, a.Field, a.To, err)
		}
		read, version = fresh.Spec, fresh.Version
	}
}

// setField writes the action's field into spec; false when it already holds.
func setField(spec *swarm.ServiceSpec, a controllers.Action) (bool, error) {
	switch a.Field {
	case "replicas":
		if spec.Mode.Replicated == nil {
			return false, errors.New("service is not replicated")
		}
		step, ok := a.Steps.(replicasStep)
		if !ok {
			return false, errors.New("replicas: the action was not planned by the swarm driver (no steps)")
		}
		n := uint64(step)
		if r := spec.Mode.Replicated.Replicas; r != nil && *r == n {
			return false, nil
		}
		spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &n}
		return true, nil
	case controllers.FieldFailing:
		// The failure policy's restart: a forced update replaces every task,
		// as `docker service update --force` does.
		if a.Op != controllers.OpRestart {
			break
		}
		spec.TaskTemplate.ForceUpdate++
		return true, nil
	case "restartOn":
		// A forced update with a rolling order, one task at a time: Swarm
		// replaces each task and waits until the new one runs (healthy,
		// when the image has a health check) before the next, as
		// `docker service update --force --update-parallelism 1` does. The
		// value goes on the service label in the same update.
		v, ok := a.Steps.(restartStep)
		if !ok || a.Op != controllers.OpRestart {
			return false, errors.New("restartOn: the action was not planned by the swarm driver (no steps)")
		}
		if spec.Labels[LabelRestartOn] == string(v) {
			return false, nil
		}
		labels := maps.Clone(spec.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels[LabelRestartOn] = string(v)
		spec.Labels = labels
		uc := swarm.UpdateConfig{}
		if spec.UpdateConfig != nil {
			uc = *spec.UpdateConfig
		}
		uc.Parallelism = 1
		spec.UpdateConfig = &uc
		spec.TaskTemplate.ForceUpdate++
		return true, nil
	case "image":
		cs := spec.TaskTemplate.ContainerSpec
		if cs == nil {
			return false, errors.New("service has no container spec")
		}
		img, ok := a.Steps.(imageStep)
		if !ok {
			return false, errors.New("image: the action was not planned by the swarm driver (no steps)")
		}
		if sameImage(cs.Image, string(img)) {
			return false, nil
		}
		c := *cs
		c.Image = string(img)
		spec.TaskTemplate.ContainerSpec = &c
		return true, nil
	}
	return false, fmt.Errorf("field %q is not owned by the swarm driver", a.Field)
}

// wroteField records the owned value an update is about to write, so the
// event stream can tell the driver's own update from drift (watch.go).
func (d *Driver) wroteField(name string, a controllers.Action, spec swarm.ServiceSpec) (undo func()) {
	switch a.Field {
	case "replicas":
		if r := spec.Mode.Replicated; r != nil && r.Replicas != nil {
			return d.wrote(name, "replicas", strconv.FormatUint(*r.Replicas, 10))
		}
	case "image":
		if cs := spec.TaskTemplate.ContainerSpec; cs != nil {
			return d.wrote(name, "image", cs.Image)
		}
	}
	return func() {}
}
