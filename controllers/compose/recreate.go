package compose

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

// LabelRestartOn is the label a container carries with the restartOn value
// it was made with. A container's labels are fixed when it is created, so
// the value a replica runs with is known from the replica itself (level,
// not a memory of past passes): a restartOn change is carried out by
// recreating each running replica with the new value on it, one at a time,
// the same rollout as an image change. A restart in place could not be told
// apart afterwards from one that was never done.
const LabelRestartOn = "dev.reconciler.restart-on"

// ErrNotReady says a recreated container did not become ready in time.
var ErrNotReady = errors.New("not ready")

// recreateSteps are the Steps of an image or restartOn action: the running
// replicas to recreate, in the order they are recreated (lowest number
// first).
type recreateSteps []replica

// The fields of the actions that recreate replicas.
const (
	fieldImage     = "image"
	fieldRestartOn = "restartOn"
)

// noValue stands for a replica made without any restartOn value.
const noValue = "(none)"

// recreateActions is the part of a plan that recreates running replicas
// numbered 1..N: on the declared image when one runs another (an image
// action, which also carries a restartOn change), else with the declared
// restartOn value when one was made with another. Containers that do not
// run are left alone ("nothing restarted that is not running"); those a
// scale-up makes get both from the start. It is pure.
func recreateActions(t controllers.Target, sl serviceLive, base controllers.Action) []controllers.Action {
	img, ro := t.Service.Image, t.Service.RestartOn
	var steps recreateSteps
	var oldImages, oldValues []string
	for _, r := range sl.Replicas {
		if !r.running() || r.Number > int(t.Replicas) {
			continue
		}
		byImage := img != "" && r.Image != img
		byValue := ro != "" && r.RestartOn != ro
		if byImage {
			oldImages = append(oldImages, r.Image)
		}
		if byValue {
			oldValues = append(oldValues, cmp.Or(r.RestartOn, noValue))
		}
		if byImage || byValue {
			steps = append(steps, r)
		}
	}
	var a controllers.Action
	switch {
	case len(oldImages) > 0:
		a = base.Set(fieldImage, distinct(oldImages), img, controllers.OpSetImage)
	case len(oldValues) > 0:
		a = base.Set(fieldRestartOn, distinct(oldValues), ro, controllers.OpRestart)
	default:
		return nil
	}
	a.Steps = steps
	return []controllers.Action{a}
}

// distinct joins the values, each once, sorted.
func distinct(vs []string) string {
	vs = slices.Clone(vs)
	slices.Sort(vs)
	return strings.Join(slices.Compact(vs), ",")
}

// override is what a new container takes from the target rather than from
// the container it is made from: the declared image and restartOn value
// ("" keeps the template's).
type override struct{ Image, RestartOn string }

func overrideOf(svc *v1.Service) override {
	if svc == nil {
		return override{}
	}
	return override{Image: svc.Image, RestartOn: svc.RestartOn}
}

// apply sets the override on a container configuration.
func (o override) apply(cfg *container.Config) {
	if o.Image != "" {
		cfg.Image = o.Image
	}
	if o.RestartOn != "" {
		cfg.Labels[LabelRestartOn] = o.RestartOn
	}
}

// recreate replaces each replica of steps, one at a time, as Compose
// recreates a container: the old one is stopped gracefully and renamed
// aside, the new one is created under its name and number from the old
// one's own configuration (with the declared image and restartOn value) and
// started; the old one is removed only once the new one is ready (running,
// healthy when its image has a health check, and up for MinReady). So at
// most one replica is down at a time, never fewer than N-1 ready. A new
// container that is not ready within the ready timeout is removed and the
// old one is put back (renamed and started again), and the rollout stops
// there with an error naming both. Anonymous volumes are not carried over
// to the new container (Compose carries them; the pollers have none).
func (d *Driver) recreate(ctx context.Context, subject string, t controllers.Target, sl serviceLive, steps recreateSteps) error {
	over := overrideOf(t.Service)
	grace := stopTimeout(t.Service)
	for _, old := range steps {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: abandoned before recreating %s: %w", subject, old.Name, err)
		}
		if err := d.recreateOne(ctx, subject, sl, old, over, grace, readyTimeout(t.Service)); err != nil {
			return err
		}
	}
	return nil
}

func (d *Driver) recreateOne(ctx context.Context, subject string, sl serviceLive, old replica, over override, grace, within time.Duration) error {
	conf, err := d.inspect(ctx, subject, old)
	if err != nil {
		return err
	}
	s, err := replicaSpec(conf, sl.Project, sl.Service, old.Number, over)
	if err != nil {
		return fmt.Errorf("%s: %w", subject, err)
	}
	s.Name = old.Name // its own name, whatever style it was made in
	if gone, err := d.stop(ctx, subject, old, grace); err != nil {
		return err
	} else if gone {
		return fmt.Errorf("%s: %s was removed by someone else during its recreate", subject, old.Name)
	}
	aside := shortID(old.ID) + "_" + old.Name // as Compose renames it
	if err := d.rename(ctx, subject, old.ID, aside); err != nil {
		return errors.Join(err, d.start(ctx, subject, old.ID, old.Name))
	}
	putBack := func(cause error, newID string) error {
		errs := []error{cause}
		if newID != "" {
			errs = append(errs, d.remove(ctx, subject, newID, s.Name, true))
		}
		errs = append(errs, d.rename(ctx, subject, old.ID, old.Name), d.start(ctx, subject, old.ID, old.Name))
		return fmt.Errorf("%w (the old %s was put back)", errors.Join(errs...), old.Name)
	}
	id, err := d.create(ctx, subject, s)
	if err != nil {
		return putBack(err, "")
	}
	if err := d.start(ctx, subject, id, s.Name); err != nil {
		return putBack(err, id)
	}
	if err := d.awaitReady(ctx, subject, id, s.Name, within); err != nil {
		return putBack(err, id)
	}
	return d.remove(ctx, subject, old.ID, aside, false)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// readyTimeout is how long a recreated container may take to become ready:
// the service's probe timeout when it declares one, else the default.
func readyTimeout(svc *v1.Service) time.Duration {
	if svc != nil && svc.Ready != nil && svc.Ready.Timeout != nil {
		return svc.Ready.Timeout.Duration
	}
	return v1.DefaultProbeTimeout
}

func (d *Driver) minReady() time.Duration { return cmp.Or(d.MinReady, time.Second) }

func (d *Driver) poll() time.Duration { return cmp.Or(d.PollInterval, 200*time.Millisecond) }

// awaitReady waits until the container is ready (see containerReady), at
// most within.
func (d *Driver) awaitReady(ctx context.Context, subject, id, name string, within time.Duration) error {
	deadline := time.Now().Add(within)
	why := "not looked at"
	for {
		cctx, cancel := context.WithTimeout(ctx, d.timeout())
		d.Count.Add("inspect")
		c, err := d.API.ContainerInspect(cctx, id)
		cancel()
		if err != nil {
			return fmt.Errorf("%s: inspect the new %s: %w", subject, name, err)
		}
		var ok bool
		if ok, why = containerReady(c, time.Now(), d.minReady()); ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: the new %s is not ready within %s: %s: %w", subject, name, within, why, ErrNotReady)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: abandoned waiting for the new %s (%s): %w", subject, name, why, ctx.Err())
		case <-time.After(d.poll()):
		}
	}
}

// containerReady says whether an inspected container is ready: running,
// healthy when its image declares a health check, and running for at least
// minReady (so one that dies at once is not taken for ready), and if not,
// why. It is pure.
func containerReady(c container.InspectResponse, now time.Time, minReady time.Duration) (bool, string) {
	if c.ContainerJSONBase == nil || c.State == nil {
		return false, "no state"
	}
	st := c.State
	if !st.Running || st.Restarting {
		return false, fmt.Sprintf("%s (exit code %d)", st.Status, st.ExitCode)
	}
	if st.Health != nil && st.Health.Status != container.Healthy && st.Health.Status != container.NoHealthcheck {
		return false, "health " + string(st.Health.Status)
	}
	started, err := time.Parse(time.RFC3339Nano, st.StartedAt)
	if err != nil {
		return false, "start time unknown: " + st.StartedAt
	}
	if up := now.Sub(started); up < minReady {
		return false, fmt.Sprintf("up only %s", up.Round(time.Millisecond))
	}
	return true, ""
}

func (d *Driver) rename(ctx context.Context, subject, id, name string) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.timeout())
	defer cancel()
	d.Count.Add("rename")
	if err := d.API.ContainerRename(cctx, id, name); err != nil {
		return fmt.Errorf("%s: rename %s to %s: %w", subject, shortID(id), name, err)
	}
	return nil
}
