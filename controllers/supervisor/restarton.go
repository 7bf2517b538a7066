package supervisor

import (
	"context"
	"fmt"
	"time"

	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/restarton"
)

// restartSteps are the Steps of a restartOn action: the RUNNING processes
// among the first N to restart, in order, one at a time.
type restartSteps []Process

// restartActions is the restartOn part of a plan: when the declared value
// is not the one recorded (or a rolling restart was cut short), every
// RUNNING process of the first N started before the value was applied is
// restarted; supervisord has no room for a value of ours, so the record is
// the driver's own (package restarton), judged against each process's
// start time. Processes that do not run are not restarted. It is pure.
func restartActions(t controllers.Target, gl groupLive, base controllers.Action) []controllers.Action {
	var running restartSteps
	for _, p := range gl.Procs[:min(int(t.Replicas), len(gl.Procs))] {
		if p.State == stateRunning {
			running = append(running, p)
		}
	}
	return restarton.Plan(base, gl.RestartOn, t.Service.RestartOn, running, func(p Process) time.Time { return time.Unix(p.Start, 0) })
}

// rollingRestart records the value first (so a restart cut short carries on
// at the next pass, and one started after it is not restarted again), then
// restarts each process as `supervisorctl restart` does, one at a time:
// stopped gracefully and waited for, then started with wait, so supervisord
// answers once the process is RUNNING (past its startsecs) before the next
// one is touched. A process that does not come up fails the rollout there.
func (d *Driver) rollingRestart(ctx context.Context, subject string, t controllers.Target, gl groupLive, steps restartSteps) error {
	if err := d.record(ctx, subject, t, gl); err != nil {
		return err
	}
	return each(ctx, subject, "restarting", steps, func(p Process) error {
		if err := d.stop(ctx, subject, t, gl.Socket, p); err != nil {
			return err
		}
		_, err := d.call(context.WithoutCancel(ctx), gl.Socket, d.callTimeout(), "startProcess", p.namespec(), true)
		if err != nil && !IsFault(err, FaultAlreadyStarted) {
			return fmt.Errorf("%s: restart %s (restartOn %s): start: %w", subject, p.namespec(), t.Service.RestartOn, err)
		}
		return nil
	})
}

// record records the declared restartOn value before processes are
// started or restarted (restarton.Store.Begin).
func (d *Driver) record(ctx context.Context, subject string, t controllers.Target, gl groupLive) error {
	return d.Records.Begin(ctx, subject, gl.RestartOn, t.Service.RestartOn)
}

// loadRecords reads the restartOn record of every target that declares a
// value into its live state.
func (d *Driver) loadRecords(targets []controllers.Target, live map[string]controllers.Live) error {
	for _, t := range targets {
		if t.Service.RestartOn == "" {
			continue
		}
		l, ok := live[t.Subject()]
		gl, isGroup := l.Raw.(groupLive)
		if !ok || !isGroup {
			continue
		}
		rec, has, err := d.Records.Load(t.Subject())
		if err != nil {
			return err
		}
		gl.RestartOn = restarton.Seen{Record: rec, Has: has}
		l.Raw = gl
		live[t.Subject()] = l
	}
	return nil
}
