package systemd

import (
	"context"
	"fmt"
	"sync"
	"time"

	"reconciler.dev/reconciler/controllers"
)

// Apply carries out one action, with the Steps its Plan worked out for a
// scale (the instances to stop or start): enable/disable (then reload systemd), or
// start/stop with the job's result checked. A template scale-down stops one
// instance at a time from the highest number, each stop waiting until the
// instance has exited (its TimeoutStopSec is the graceful stop timeout); a
// scale-up starts the missing instances at once and waits for every job.
func (d *Driver) Apply(ctx context.Context, a controllers.Action, t controllers.Target, l controllers.Live) error {
	api, err := d.api(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", a.Subject, err)
	}
	// Calls that change state are sent whole even when the pass is being
	// abandoned (shutdown); only waiting for their outcome can be cut short.
	send := context.WithoutCancel(ctx)
	switch a.Op {
	case controllers.OpEnable:
		return d.unitFile(send, api, a.Subject, "enable", func(ctx context.Context) error {
			_, _, err := api.EnableUnitFilesContext(ctx, []string{t.Name}, false, false)
			return err
		})
	case controllers.OpDisable:
		return d.unitFile(send, api, a.Subject, "disable", func(ctx context.Context) error {
			_, err := api.DisableUnitFilesContext(ctx, []string{t.Name}, false)
			return err
		})
	case controllers.OpRestart:
		if steps, ok := a.Steps.(restartSteps); ok && a.Field == fieldRestartOn {
			return d.rollingRestart(ctx, api, a.Subject, t, l, steps)
		}
		if a.Field != controllers.FieldFailing {
			break
		}
		// The failure policy: RestartUnit on each failing unit or instance,
		// one after another, each job's result checked.
		units, _ := failingUnits(t, l)
		if len(units) == 0 {
			return nil // nothing is failing any more
		}
		for _, u := range units {
			if err := d.job(ctx, api, a.Subject, "restart", u); err != nil {
				return err
			}
		}
		return nil
	case controllers.OpStart:
		return d.job(ctx, api, a.Subject, "start", t.Name)
	case controllers.OpStop:
		return d.job(ctx, api, a.Subject, "stop", t.Name)
	case controllers.OpScaleDown:
		toStop, ok := a.Steps.(stopSteps)
		if !ok {
			return fmt.Errorf("%s: %s was not planned by the systemd driver (no steps)", a.Subject, a.Op)
		}
		for _, u := range toStop {
			if err := d.job(ctx, api, a.Subject, "stop", u); err != nil {
				return err
			}
		}
		return nil
	case controllers.OpScaleUp:
		toStart, ok := a.Steps.(startSteps)
		if !ok {
			return fmt.Errorf("%s: %s was not planned by the systemd driver (no steps)", a.Subject, a.Op)
		}
		if err := d.record(ctx, a.Subject, t, l); err != nil {
			return err
		}
		var wg sync.WaitGroup
		errs := make([]error, len(toStart))
		for i, u := range toStart {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = d.job(ctx, api, a.Subject, "start", u)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("%s: the systemd driver cannot %s", a.Subject, a.Op)
}

// unitFile enables or disables a unit file (change), then reloads systemd
// so it sees the change, within one call timeout.
func (d *Driver) unitFile(ctx context.Context, api API, subject, verb string, change func(context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, d.callTimeout())
	defer cancel()
	d.Count.Add(verb)
	d.ownFileChange() // the UnitFilesChanged that follows is not drift (watch.go)
	if err := change(cctx); err != nil {
		return fmt.Errorf("%s: %s: %w", subject, verb, err)
	}
	d.Count.Add("reload")
	if err := api.ReloadContext(cctx); err != nil {
		return fmt.Errorf("%s: reload after %s: %w", subject, verb, err)
	}
	return nil
}

// job starts or stops a unit and waits for the job's result: systemd says
// "done" only when the unit got where it was sent.
func (d *Driver) job(ctx context.Context, api API, subject, verb, unit string) error {
	ch := make(chan string, 1) // buffered: go-systemd must never block on us
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.callTimeout())
	var err error
	var id int
	d.Count.Add(verb)
	switch verb {
	case "start":
		id, err = api.StartUnitContext(cctx, unit, "replace", ch)
	case "restart":
		id, err = api.RestartUnitContext(cctx, unit, "replace", ch)
	default:
		id, err = api.StopUnitContext(cctx, unit, "replace", ch)
	}
	cancel()
	d.ownJob(id) // its JobRemoved is not drift (watch.go)
	if err != nil {
		return fmt.Errorf("%s: %s %s: %w", subject, verb, unit, err)
	}
	// The job runs in systemd whatever we do; waiting for its result can be
	// abandoned (shutdown) without leaving anything half done.
	select {
	case res := <-ch:
		if res != "done" {
			return fmt.Errorf("%s: %s %s: job finished with result %q", subject, verb, unit, res)
		}
		return nil
	case <-time.After(d.jobTimeout()):
		return fmt.Errorf("%s: %s %s: job did not finish within %s", subject, verb, unit, d.jobTimeout())
	case <-ctx.Done():
		return fmt.Errorf("%s: %s %s: stopped waiting for the job (systemd carries it on): %w", subject, verb, unit, ctx.Err())
	}
}
