package compose

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"reconciler.dev/reconciler/controllers"
)

// LabelSlug is the label docker-compose puts on a one-off container: the
// random id its name ends with (the first 12 characters).
const LabelSlug = "com.docker.compose.slug"

// defaultRunTimeout bounds how long Run waits for a one-off to exit, as
// the systemd driver bounds the start job of a Type=oneshot unit.
const defaultRunTimeout = 2 * time.Minute

func (d *Driver) runTimeout() time.Duration { return cmp.Or(d.RunTimeout, defaultRunTimeout) }

// Run runs a service once as a one-off container, as `docker-compose run
// --rm SERVICE` does, for a trigger (onStart, onExit): made from the
// configuration of the service's lowest-numbered container (the template
// a scale-up uses too; the driver has no compose file), started, waited
// for until it exits (the Docker API's wait, which gives the exit code),
// and removed with its anonymous volumes. The exit code decides success
// (0) or failure. What makes the container the compose client's own
// one-off is in oneOffSpec. A one-off still running when the wait is cut
// short (the pass abandoned, or RunTimeout passed) is stopped gracefully
// (the service's stopTimeout) and removed, as an interrupted
// `docker-compose run --rm` does.
func (d *Driver) Run(ctx context.Context, t controllers.Target) (controllers.RunResult, error) {
	subject := t.Subject()
	if t.Service == nil || t.Service.Project == "" || t.Kind == controllers.KindSelector {
		return controllers.RunResult{}, fmt.Errorf("%s: not one compose service: %w", subject, controllers.ErrCannotRun)
	}
	project := t.Service.Project
	lctx, cancel := context.WithTimeout(ctx, d.timeout())
	d.Count.Add("list")
	list, err := d.API.ContainerList(lctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", LabelProject+"="+project), filters.Arg("label", LabelService+"="+t.Name))})
	cancel()
	if err != nil {
		return controllers.RunResult{}, fmt.Errorf("%s: listing the containers of %s/%s: %w", subject, project, t.Name, err)
	}
	sl, _ := liveFromList([]controllers.Target{t}, list)[subject].Raw.(serviceLive)
	from, ok := sl.lowest()
	if !ok {
		return controllers.RunResult{}, fmt.Errorf("%s: no container of compose service %s/%s to make a one-off from (docker-compose up --no-start the project once)", subject, project, t.Name)
	}
	tmpl, err := d.inspect(ctx, subject, from)
	if err != nil {
		return controllers.RunResult{}, err
	}
	slug, err := newSlug()
	if err != nil {
		return controllers.RunResult{}, fmt.Errorf("%s: %w", subject, err)
	}
	s, err := oneOffSpec(tmpl, project, t.Name, slug, overrideOf(t.Service))
	if err != nil {
		return controllers.RunResult{}, fmt.Errorf("%s: %w", subject, err)
	}
	id, err := d.create(ctx, subject, s)
	if err != nil {
		return controllers.RunResult{}, err
	}
	if err := d.start(ctx, subject, id, s.Name); err != nil {
		return controllers.RunResult{}, errors.Join(err, d.removeOneOff(ctx, subject, id, s.Name))
	}
	code, waitErr := d.wait(ctx, id)
	if waitErr != nil {
		err := fmt.Errorf("%s: waiting for the one-off %s: %w", subject, s.Name, waitErr)
		if _, serr := d.stop(ctx, subject, replica{ID: id, Name: s.Name}, stopTimeout(t.Service)); serr != nil {
			err = errors.Join(err, serr)
		}
		return controllers.RunResult{}, errors.Join(err, d.removeOneOff(ctx, subject, id, s.Name))
	}
	res := controllers.RunResult{Exited: true, Succeeded: code == 0, Detail: fmt.Sprintf("exited %d", code)}
	if err := d.removeOneOff(ctx, subject, id, s.Name); err != nil {
		return controllers.RunResult{}, fmt.Errorf("%s (the one-off %s): %w", res.Detail, s.Name, err)
	}
	return res, nil
}

// wait waits, after its start, until the container no longer runs and
// returns its exit code. Waiting for "not-running" after the start cannot
// miss an exit: a container that has already exited answers at once.
func (d *Driver) wait(ctx context.Context, id string) (int64, error) {
	wctx, cancel := context.WithTimeout(ctx, d.runTimeout())
	defer cancel()
	d.Count.Add("wait")
	okC, errC := d.API.ContainerWait(wctx, id, container.WaitConditionNotRunning)
	select {
	case r := <-okC:
		if r.Error != nil && r.Error.Message != "" {
			return 0, errors.New(r.Error.Message)
		}
		return r.StatusCode, nil
	case err := <-errC:
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return 0, fmt.Errorf("did not exit within %s", d.runTimeout())
		}
		return 0, err
	}
}

// removeOneOff removes a one-off with its anonymous volumes, as
// `docker-compose run --rm` does, even when the pass is being abandoned.
func (d *Driver) removeOneOff(ctx context.Context, subject, id, name string) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.timeout())
	defer cancel()
	d.Count.Add("remove")
	if err := d.API.ContainerRemove(cctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
		return fmt.Errorf("%s: remove the one-off %s: %w", subject, name, err)
	}
	return nil
}

// newSlug is a one-off's random id as docker-compose makes one: 64 hex
// digits whose first 12 (the name's suffix) are not all decimal digits,
// so the suffix never reads as a container number.
func newSlug() (string, error) {
	b := make([]byte, 32)
	for {
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("a one-off id: %w", err)
		}
		s := hex.EncodeToString(b)
		if strings.Trim(s[:12], "0123456789") != "" {
			return s, nil
		}
	}
}

// OneOffName is the name of a one-off container whose slug is slug, in
// the style of the client that named the template tmpl (see ReplicaName):
// <project>_<service>_run_<slug[:12]> after docker-compose 1.x,
// <project>-<service>-run-<slug[:12]> after Compose v2.
func OneOffName(tmpl, project, service, slug string) string {
	short := slug[:min(12, len(slug))]
	if strings.HasPrefix(tmpl, project+"_"+service+"_") {
		return project + "_" + service + "_run_" + short
	}
	return project + "-" + service + "-run-" + short
}

// oneOffSpec derives a one-off container from the template's configuration
// as `docker-compose run SERVICE` makes one from the service: the labels of
// the project and service with com.docker.compose.oneoff=True and the
// slug, and no container number or config hash (docker-compose 1.x puts
// neither on a one-off; its ps lists the container among the project's
// one-offs, and up leaves it alone); no restart policy (it runs to its
// end); no published ports (run without --service-ports); no network
// aliases (run without --use-aliases), so the service's name still finds
// only its replicas. The declared image and restartOn apply as to a
// replica. It is pure.
func oneOffSpec(tmpl container.InspectResponse, project, service, slug string, over override) (spec, error) {
	s, err := replicaSpec(tmpl, project, service, 1, over)
	if err != nil {
		return spec{}, err
	}
	s.Name = OneOffName(trimSlash(tmpl.Name), project, service, slug)
	lb := s.Config.Labels
	delete(lb, LabelNumber)
	delete(lb, labelConfigHash)
	delete(lb, LabelRestartOn)
	lb[LabelOneoff] = "True"
	lb[LabelSlug] = slug
	hc := *s.HostConfig
	hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyDisabled}
	hc.PortBindings = nil
	hc.PublishAllPorts = false
	hc.AutoRemove = false // removed by Run, once the exit code is read
	s.HostConfig = &hc
	if s.Networking != nil {
		for _, es := range s.Networking.EndpointsConfig {
			es.Aliases = nil
		}
	}
	for _, ep := range s.Connect {
		ep.Settings.Aliases = nil
	}
	return s, nil
}
