package swarm

import (
	"context"
	"errors"
	"fmt"
	"strings"

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
	svc, ok := l.Raw.(swarm.Service)
	if !ok {
		return fmt.Errorf("%s: no live service observed", a.Subject)
	}
	for attempt := 0; ; attempt++ {
		spec := svc.Spec
		changed, err := setField(&spec, a)
		if err != nil {
			return fmt.Errorf("%s: %w", a.Subject, err)
		}
		if !changed {
			return nil // someone else already made it so
		}
		// The update is sent whole or not at all: shutting down does not cut
		// a request in flight (its own timeout still bounds it).
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.timeout())
		d.Count.Add("update")
		resp, err := d.API.ServiceUpdate(cctx, svc.ID, svc.Version, spec, swarm.ServiceUpdateOptions{})
		cancel()
		if err == nil {
			for _, w := range resp.Warnings {
				controllers.Logger(ctx).Warn("swarm update warning", "subject", a.Subject, "warning", w)
			}
			return nil
		}
		if !outOfSequence(err) || attempt >= maxSequenceRetries || ctx.Err() != nil {
			return fmt.Errorf("%s: update %s to %s: %w", a.Subject, a.Field, a.To, err)
		}
		cctx, cancel = context.WithTimeout(ctx, d.timeout())
		d.Count.Add("inspect")
		svc, _, err = d.API.ServiceInspectWithRaw(cctx, svc.ID, swarm.ServiceInspectOptions{})
		cancel()
		if err != nil {
			return fmt.Errorf("%s: re-read after out-of-sequence update: %w", a.Subject, err)
		}
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

// outOfSequence is true for Swarm's answer to an update made on a stale
// version. Its text is the only signal there is: a stale update tried on
// the testbed's engine (20.10) comes back as "rpc error: code = Unknown
// desc = update out of sequence", an HTTP 500 that the client types only
// as errdefs Internal, which every other daemon failure shares.
func outOfSequence(err error) bool {
	return err != nil && strings.Contains(err.Error(), "update out of sequence")
}
