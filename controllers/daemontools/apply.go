package daemontools

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

// Apply carries out one action:
//
//   - downfile: create DIR/down (disable) or remove it (enable).
//   - replicas up: svc -u, or svc -o for a once service (under runit also
//     the once mark); the restartOn value is recorded, since the service
//     now starts with it.
//   - replicas down: svc -d, then wait up to the service's stopTimeout for
//     it to exit and send KILL (svc -k) if it has not; the engine then waits
//     until it is drained.
//   - paused: svc -c.
//   - restartOn: svc -t (supervise starts it again, as it wants it up),
//     then record the value.
//
// It does not wait for readiness; the engine does, by observing.
func (d *Driver) Apply(ctx context.Context, a controllers.Action, t controllers.Target, l controllers.Live) error {
	dir := Dir(t)
	sl, _ := l.Raw.(Folder)
	wrap := func(err error) error {
		if err == nil {
			return nil
		}
		return fmt.Errorf("%s: %w", a.Subject, err)
	}
	switch {
	case a.Field == fieldDownFile && a.Op == controllers.OpDisable:
		return wrap(writeDownFile(dir))
	case a.Field == fieldDownFile && a.Op == controllers.OpEnable:
		d.setStarted(dir, false)
		return wrap(removeFile(dir, downFile))
	case a.Field == fieldReplicas && a.Op == controllers.OpScaleUp:
		m, ok := a.Steps.(mode)
		if !ok {
			return wrap(errors.New("the start was not planned by the daemontools driver (no steps)"))
		}
		return wrap(d.start(dir, m, t, sl))
	case a.Field == fieldReplicas && a.Op == controllers.OpScaleDown:
		return wrap(d.stop(ctx, dir, t))
	case a.Field == fieldPaused && a.Op == controllers.OpStart:
		d.setStarted(dir, false)
		return wrap(d.send(dir, 'c'))
	case a.Field == controllers.FieldFailing && a.Op == controllers.OpRestart:
		// The failure policy's restart: svc -t, as for restartOn. It is not
		// a start of ours: a restart that does not help is reported, never
		// taken down by onNotReady.
		d.setStarted(dir, false)
		return wrap(d.send(dir, 't'))
	case a.Field == fieldRestartOn && a.Op == controllers.OpRestart:
		if err := d.send(dir, 't'); err != nil {
			return wrap(err)
		}
		d.setStarted(dir, true)
		if err := writeRestartOn(dir, t.Service.RestartOn); err != nil {
			return wrap(fmt.Errorf("restarted, but recording restartOn: %w", err))
		}
		return nil
	}
	return wrap(fmt.Errorf("the daemontools driver cannot %s %s", a.Op, a.Field))
}

// start sends up (or once, as the plan's mode says) and records what the
// service now starts with.
func (d *Driver) start(dir string, m mode, t controllers.Target, sl Folder) error {
	once := m == modeOnce
	cmd := byte('u')
	if once {
		cmd = 'o'
	}
	if err := d.send(dir, cmd); err != nil {
		return err
	}
	d.setStarted(dir, true)
	var err error
	if once && sl.HasStatus && sl.Status.Runit {
		err = writeFile(dir, onceFile, "")
	} else if !once {
		err = removeFile(dir, onceFile)
	}
	if err != nil {
		return fmt.Errorf("started, but: %w", err)
	}
	if ro := t.Service.RestartOn; ro != "" && !once {
		if err := writeRestartOn(dir, ro); err != nil {
			return fmt.Errorf("started, but recording restartOn: %w", err)
		}
	}
	return nil
}

// stop sends down and gives the service its stopTimeout to exit on TERM
// before it is sent KILL.
func (d *Driver) stop(ctx context.Context, dir string, t controllers.Target) error {
	if err := d.send(dir, 'd'); err != nil {
		return err
	}
	if err := removeFile(dir, onceFile); err != nil {
		return err
	}
	grace := v1.DefaultStopTimeout
	if t.Service != nil && t.Service.StopTimeout != nil {
		grace = t.Service.StopTimeout.Duration
	}
	deadline := time.Now().Add(grace)
	for {
		sl := &Folder{Dir: dir}
		readStatus(sl)
		if sl.HasStatus && sl.Status.PID == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			// The stop carries on in supervise; only waiting is cut short.
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	return d.send(dir, 'k')
}

// NotReady brings a service this driver started in this pass down again
// when it never became ready (onNotReady: down, the default), as the
// runbook's start scripts did: the down file, then svc -d. With
// onNotReady: keep it is left as it is. A service whose only change was
// its down file or a continue was not started by us and is left alone.
func (d *Driver) NotReady(ctx context.Context, t controllers.Target, cause error) (string, error) {
	dir := Dir(t)
	d.mu.Lock()
	started := d.started[dir]
	delete(d.started, dir)
	d.mu.Unlock()
	if !started || t.Service == nil || t.Service.OnNotReady == v1.OnNotReadyKeep {
		return "", nil
	}
	if err := writeDownFile(dir); err != nil {
		return "", fmt.Errorf("%s: bringing it down again (onNotReady: down): %w", t.Subject(), err)
	}
	if err := d.send(dir, 'd'); err != nil {
		return "", fmt.Errorf("%s: bringing it down again (onNotReady: down): %w", t.Subject(), err)
	}
	_ = removeFile(dir, onceFile)
	return "brought down again (onNotReady: down)", nil
}

func (d *Driver) setStarted(dir string, started bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started == nil {
		d.started = map[string]bool{}
	}
	d.started[dir] = started
}

// send writes a one-byte command to DIR/supervise/control, as svc does. The
// FIFO is opened without blocking: with no supervise reading it the open
// fails at once.
func (d *Driver) send(dir string, cmd byte) error {
	d.Count.Add(string(cmd))
	return Control(dir, cmd)
}

// Control writes one command byte (u, d, o, t, c, k, ...) to the control
// FIFO of the service folder dir. It never blocks: a folder whose
// supervise is not running fails at once, with "no supervise running for
// DIR" in the error.
func Control(dir string, cmd byte) error {
	path := filepath.Join(dir, "supervise", "control")
	fd, err := openFIFO(path)
	if err != nil {
		if errors.Is(err, syscall.ENXIO) || errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("no supervise running for %s: %w", dir, err)
		}
		return fmt.Errorf("svc -%c %s: %w", cmd, dir, err)
	}
	defer syscall.Close(fd)
	for {
		n, err := syscall.Write(fd, []byte{cmd})
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return fmt.Errorf("svc -%c %s: supervise is not reading its control FIFO (full)", cmd, dir)
		case err != nil:
			return fmt.Errorf("svc -%c %s: write %s: %w", cmd, dir, path, err)
		case n != 1:
			return fmt.Errorf("svc -%c %s: write %s: nothing written", cmd, dir, path)
		}
		return nil
	}
}

// writeRestartOn records the restartOn value the service now runs with.
func writeRestartOn(dir, value string) error {
	return writeFile(dir, restartOnFile, value+"\n")
}

// writeFile replaces DIR/name atomically (a temporary file renamed over it).
func writeFile(dir, name, content string) error {
	tmp, err := os.CreateTemp(dir, name+".tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

func removeFile(dir, name string) error {
	if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", name, err)
	}
	return nil
}
