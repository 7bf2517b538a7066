package supervisor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"reconciler.dev/reconciler/controllers"
)

// Apply carries out one action on a group: the Steps its Plan worked out
// from the processes observed in this pass. A scale-down stops the started processes beyond the first N one
// at a time from the highest, each stop waiting until the process has exited
// (stopProcess with wait, bounded by the service's stopTimeout plus
// StopSlack). A scale-up starts the missing ones among the first N in order,
// lowest first, without waiting for each to be RUNNING: the engine waits for
// readiness by observing. ALREADY_STARTED and NOT_RUNNING mean someone made
// it so already, and are not errors.
func (d *Driver) Apply(ctx context.Context, a controllers.Action, t controllers.Target, l controllers.Live) error {
	gl, ok := l.Raw.(groupLive)
	if !ok || !l.Exists {
		return fmt.Errorf("%s: no live program observed", a.Subject)
	}
	if int(t.Replicas) > len(gl.Procs) {
		return fmt.Errorf("%s: %s", a.Subject, tooMany(t, gl))
	}
	if a.Op == controllers.OpRestart && a.Field == controllers.FieldFailing {
		return d.restartFailing(ctx, a.Subject, t, gl)
	}
	switch steps := a.Steps.(type) {
	case stopSteps:
		if a.Op == controllers.OpScaleDown {
			return each(ctx, a.Subject, "stopping", steps, func(p Process) error { return d.stop(ctx, a.Subject, t, gl.Socket, p) })
		}
	case startSteps:
		if a.Op == controllers.OpScaleUp {
			if err := d.record(ctx, a.Subject, t, gl); err != nil {
				return err
			}
			return each(ctx, a.Subject, "starting", steps, func(p Process) error { return d.start(ctx, a.Subject, t, gl.Socket, p) })
		}
	case restartSteps:
		if a.Op == controllers.OpRestart {
			return d.rollingRestart(ctx, a.Subject, t, gl, steps)
		}
	}
	if a.Op == controllers.OpScaleDown || a.Op == controllers.OpScaleUp {
		return fmt.Errorf("%s: %s was not planned by the supervisor driver (no steps)", a.Subject, a.Op)
	}
	return fmt.Errorf("%s: the supervisor driver cannot %s", a.Subject, a.Op)
}

// each does do to every process in order, and stops between two of them
// when the pass is abandoned.
func each(ctx context.Context, subject, doing string, ps []Process, do func(Process) error) error {
	for _, p := range ps {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: abandoned before %s %s: %w", subject, doing, p.namespec(), err)
		}
		if err := do(p); err != nil {
			return err
		}
	}
	return nil
}

// restartFailing is the failure policy's restart: each failing process is
// stopped (one in BACKOFF; a FATAL one has no process) and started again,
// one after another.
func (d *Driver) restartFailing(ctx context.Context, subject string, t controllers.Target, gl groupLive) error {
	for _, p := range failingProcs(t, gl) {
		if p.State == stateBackoff {
			if err := d.stop(ctx, subject, t, gl.Socket, p); err != nil {
				return err
			}
			p.State = stateStopped
		}
		if err := d.start(ctx, subject, t, gl.Socket, p); err != nil {
			return err
		}
	}
	return nil
}

// stopBound is how long one process may take to exit.
func (d *Driver) stopBound(t controllers.Target) time.Duration {
	var timeout time.Duration
	if t.Service != nil && t.Service.StopTimeout != nil {
		timeout = t.Service.StopTimeout.Duration
	}
	return timeout + d.stopSlack()
}

// stop stops one process and returns once it has exited. Cancelling ctx
// cuts the wait short; supervisord carries the stop on regardless.
func (d *Driver) stop(ctx context.Context, subject string, t controllers.Target, socket string, p Process) error {
	bound := d.stopBound(t)
	_, err := d.call(ctx, socket, bound, "stopProcess", p.namespec(), true)
	switch {
	case err == nil:
		return nil
	case IsFault(err, FaultNotRunning):
		// Not running (any more): if someone else's stop is still under
		// way, it has not exited yet; wait for it as for our own.
		return d.awaitExit(ctx, subject, socket, p, bound)
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return fmt.Errorf("%s: stop %s: not exited within %s (supervisord goes on stopping it; its stopwaitsecs decides when it is killed)",
			subject, p.namespec(), bound)
	}
	return fmt.Errorf("%s: stop %s: %w", subject, p.namespec(), err)
}

// start starts one process without waiting for it to be RUNNING. One that
// is still stopping is first waited for: supervisord would not start it.
func (d *Driver) start(ctx context.Context, subject string, t controllers.Target, socket string, p Process) error {
	if p.State == stateStopping {
		if err := d.awaitExit(ctx, subject, socket, p, d.stopBound(t)); err != nil {
			return err
		}
	}
	// The call is sent whole even when the pass is being abandoned; it
	// returns as soon as supervisord has spawned the process.
	_, err := d.call(context.WithoutCancel(ctx), socket, d.callTimeout(), "startProcess", p.namespec(), false)
	if err == nil || IsFault(err, FaultAlreadyStarted) {
		return nil
	}
	return fmt.Errorf("%s: start %s: %w", subject, p.namespec(), err)
}

// awaitExit polls one process until it is no longer STOPPING.
func (d *Driver) awaitExit(ctx context.Context, subject, socket string, p Process, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		v, err := d.call(ctx, socket, d.callTimeout(), "getProcessInfo", p.namespec())
		if err != nil {
			return fmt.Errorf("%s: waiting for %s to exit: %w", subject, p.namespec(), err)
		}
		cur, err := parseProcess(v)
		if err != nil {
			return fmt.Errorf("%s: waiting for %s to exit: getProcessInfo: %w", subject, p.namespec(), err)
		}
		if cur.State != stateStopping {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s still STOPPING after %s", subject, p.namespec(), bound)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: stopped waiting for %s to exit (supervisord carries on): %w", subject, p.namespec(), ctx.Err())
		case <-time.After(d.pollInterval()):
		}
	}
}
