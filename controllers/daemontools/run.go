package daemontools

import (
	"context"
	"fmt"
	"time"

	"reconciler.dev/reconciler/controllers"
)

// defaultRunTimeout bounds how long Run waits for a once service to end,
// as the systemd driver bounds the start job of a Type=oneshot unit.
const defaultRunTimeout = 2 * time.Minute

// runPoll is how often Run re-reads the status record while it waits.
const runPoll = 50 * time.Millisecond

// Run runs a once service one time, for a trigger (onStart, onExit) or for
// the plan's start of a once service that has onExit, and returns when the
// run has ended: svc -o (sv once), then the status record is read until it
// shows the run over. supervise changes the record's time only when the
// service starts or stops, so "no process, and a time other than before
// the command" means a run started and ended since, however short it was
// (runit also shows it down at once; daemontools keeps the pid a second).
// A service that already runs is not started a second time: the end of
// that run is waited for.
//
// Neither daemontools nor runit records how a run ended (the record holds
// a pid, a time and what supervise wants), so a run that ended counts as
// succeeded, with "status not recorded" in its detail; validation takes
// only on: any for a daemontools onExit for that reason.
//
// Afterwards the service is as declared, so the next pass finds nothing
// to do: declared replicas 1 (a chain's head), the record says once (under
// runit with the once mark, as a plan's once start leaves it); declared 0
// (run only by triggers), svc -d, so supervise wants it down (nothing runs
// by then, so nothing is signalled); runit already says down after sv
// once, and gets no mark.
func (d *Driver) Run(ctx context.Context, t controllers.Target) (controllers.RunResult, error) {
	subject := t.Subject()
	if t.Service == nil || t.Service.Once == nil || !*t.Service.Once {
		return controllers.RunResult{}, fmt.Errorf("%s: not a once service: %w", subject, controllers.ErrCannotRun)
	}
	dir := Dir(t)
	before, exists := readService(dir)
	switch {
	case !exists:
		return controllers.RunResult{}, fmt.Errorf("%s: no service folder %s", subject, dir)
	case !before.Supervised:
		return controllers.RunResult{}, fmt.Errorf("%s: no supervise running for %s: %s", subject, dir, before.SuperviseErr)
	case !before.HasStatus:
		return controllers.RunResult{}, fmt.Errorf("%s: reading the status of %s: %s", subject, dir, before.StatusErr)
	}
	if err := d.send(dir, 'o'); err != nil {
		return controllers.RunResult{}, fmt.Errorf("%s: %w", subject, err)
	}
	head := t.Replicas > 0
	if before.Status.Runit {
		var err error
		if head {
			err = writeFile(dir, onceFile, "")
		} else {
			err = removeFile(dir, onceFile)
		}
		if err != nil {
			return controllers.RunResult{}, fmt.Errorf("%s: started once, but: %w", subject, err)
		}
	}
	timeout := d.RunTimeout
	if timeout <= 0 {
		timeout = defaultRunTimeout
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(runPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return controllers.RunResult{}, fmt.Errorf("%s: stopped waiting for the once run to end (supervise carries it on): %w", subject, ctx.Err())
		case <-deadline.C:
			return controllers.RunResult{}, fmt.Errorf("%s: the once run did not end within %s (it still runs under supervise)", subject, timeout)
		case <-tick.C:
		}
		st, err := ReadStatusFile(dir)
		if err != nil || !RunEnded(before.Status, st) {
			continue
		}
		if !head && !st.Runit {
			if err := d.send(dir, 'd'); err != nil {
				return controllers.RunResult{}, fmt.Errorf("%s: the once run ended, but: %w", subject, err)
			}
		}
		return controllers.RunResult{Exited: true, Succeeded: true, Detail: "exited (status not recorded)"}, nil
	}
}

// RunEnded says whether the record now shows a run that started or was
// running when the record before was read and has ended since: nothing
// runs (runit: not even ./finish) and the record's time has moved, which
// supervise does only when the service starts or stops. It is pure.
func RunEnded(before, now Status) bool {
	if now.Changed.Equal(before.Changed) || now.PID != 0 {
		return false
	}
	return !now.Runit || now.RunState == RunStateDown
}
