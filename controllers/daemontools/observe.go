package daemontools

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

// Files in a service folder that this driver reads or writes.
const (
	downFile      = "down"                   // supervise does not start the service when it starts
	restartOnFile = ".reconciler-restart-on" // the restartOn value last applied
	onceFile      = ".reconciler-once"       // runit: a once start was made (sv once leaves want 'd')
)

// Crash-loop watching; see the package doc.
const (
	defaultWatchFor    = 2500 * time.Millisecond
	defaultSampleEvery = 100 * time.Millisecond
	// settledAfter is the uptime after which a service no longer counts as
	// starting. daemontools' supervise sleeps 1 s after every start, so a
	// service that dies at once still shows its pid for about a second.
	settledAfter = 1500 * time.Millisecond
	// loopDeaths is how many young deaths within one watch make a loop.
	loopDeaths = 2
)

// Driver manages services under daemontools' supervise or runit's runsv.
// Its zero value is ready to use.
type Driver struct {
	// Now is the clock uptimes are measured against (default time.Now).
	Now controllers.Clock
	// WatchFor bounds how long one Observe watches services that may be
	// crash-looping, and SampleEvery is how often it re-reads their status
	// (defaults 2.5 s and 100 ms).
	WatchFor, SampleEvery time.Duration
	// Count, when set, is told of every command sent to a control FIFO
	// ("u", "d", "o", "t", "c", "k"), for metrics.
	Count controllers.Counter
	// RunTimeout bounds how long Run waits for a once run to end (default
	// 2 minutes); the run itself carries on under supervise.
	RunTimeout time.Duration

	mu sync.Mutex
	// started says, per service folder, whether the last up-phase action
	// this driver applied there was a start (u, o) or restart (t), rather
	// than removing a down file or continuing a paused service. NotReady
	// undoes only starts.
	started map[string]bool
}

// Folder is what was read of one service folder: Live.Raw of the driver's
// observation, and what export reads (ReadFolder, ReadSvscan), so both
// judge a folder alike.
type Folder struct {
	Dir string
	// Supervised is true when a supervise (or runsv) process holds the
	// folder's supervise/ok FIFO open for reading, as svok checks.
	Supervised bool
	// SuperviseErr says why Supervised is false.
	SuperviseErr string
	// HasStatus is true when the status record was read and parsed;
	// StatusErr says why not.
	HasStatus bool
	Status    Status
	StatusErr string
	// DownFile is true when DIR/down exists.
	DownFile bool
	// RestartOn is the value recorded in DIR/.reconciler-restart-on;
	// HasRestartOn is false when there is no record.
	RestartOn    string
	HasRestartOn bool
	// OnceMark is true when DIR/.reconciler-once exists (runit).
	OnceMark bool
	// CrashLooping is true when the service died young repeatedly while
	// Observe watched it; Restarts counts the new pids it saw meanwhile.
	CrashLooping bool
	Restarts     int
	// Watched is true when the service was watched for a crash loop.
	Watched bool
}

// Observe reads every declared service folder: the status record, whether a
// supervise runs, the down file and the driver's own records. It runs no
// commands. Services that may be crash-looping are then watched together
// for a moment; see the package doc.
func (d *Driver) Observe(ctx context.Context, targets []controllers.Target) (map[string]controllers.Live, error) {
	obs := make([]*Folder, len(targets))
	exists := make([]bool, len(targets))
	for i, t := range targets {
		obs[i], exists[i] = readService(Dir(t))
	}
	d.watchCrashLoops(ctx, obs, exists)
	now := d.Now.Time()
	out := make(map[string]controllers.Live, len(targets))
	for i, t := range targets {
		out[t.Subject()] = liveOf(obs[i], exists[i], now)
	}
	return out, nil
}

// serviceDir is the folder supervise watches for a target.
func Dir(t controllers.Target) string {
	if t.Service != nil && t.Service.Dir != "" {
		return filepath.Clean(t.Service.Dir)
	}
	return filepath.Join("/service", t.Name)
}

// ReadFolder reads the service folder dir as Observe does, without
// watching for a crash loop. exists is false when the folder is absent.
func ReadFolder(dir string) (f Folder, exists bool) {
	sl, exists := readService(dir)
	return *sl, exists
}

// ReadSvscan reads every service folder of an svscan (or runsvdir) folder
// with ReadFolder, in name order; folders whose names start with a dot are
// hidden from svscan and skipped.
func ReadSvscan(root string) ([]Folder, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var out []Folder
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if f, exists := ReadFolder(filepath.Join(root, e.Name())); exists {
			out = append(out, f)
		}
	}
	return out, nil
}

// readService reads one folder. exists is false when the folder is absent.
func readService(dir string) (sl *Folder, exists bool) {
	sl = &Folder{Dir: dir}
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		if err == nil {
			sl.StatusErr = dir + " is not a folder"
		} else if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			sl.StatusErr = err.Error()
			return sl, true // there, but unreadable: not "missing"
		}
		return sl, false
	}
	if err := superviseRunning(dir); err != nil {
		sl.SuperviseErr = err.Error()
	} else {
		sl.Supervised = true
	}
	readStatus(sl)
	if _, err := os.Lstat(filepath.Join(dir, downFile)); err == nil {
		sl.DownFile = true
	}
	if b, err := readSmall(filepath.Join(dir, restartOnFile)); err == nil {
		sl.RestartOn, sl.HasRestartOn = strings.TrimSuffix(string(b), "\n"), true
	}
	if _, err := os.Lstat(filepath.Join(dir, onceFile)); err == nil {
		sl.OnceMark = true
	}
	return sl, true
}

func readStatus(sl *Folder) {
	st, err := ReadStatusFile(sl.Dir)
	if err != nil {
		sl.HasStatus, sl.StatusErr = false, err.Error()
		return
	}
	sl.HasStatus, sl.Status, sl.StatusErr = true, st, ""
}

// superviseRunning checks, as svok does, that a process holds the folder's
// supervise/ok FIFO open for reading: opening it for writing without
// blocking fails with ENXIO when nobody does.
func superviseRunning(dir string) error {
	fd, err := openFIFO(filepath.Join(dir, "supervise", "ok"))
	if err != nil {
		return err
	}
	return syscall.Close(fd)
}

// openFIFO opens a FIFO for writing without ever blocking: with no reader
// it fails at once (ENXIO). It refuses anything that is not a FIFO.
func openFIFO(path string) (int, error) {
	var fd int
	var err error
	for {
		fd, err = syscall.Open(path, syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		syscall.Close(fd)
		return -1, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFIFO {
		syscall.Close(fd)
		return -1, &fs.PathError{Op: "open", Path: path, Err: errors.New("not a FIFO")}
	}
	return fd, nil
}

// watchCandidate is true for a service that wants up but is down or has
// only just started: it may be crash-looping.
func watchCandidate(sl *Folder, now time.Time) bool {
	if !sl.Supervised || !sl.HasStatus || !sl.Status.WantsUp() {
		return false
	}
	return !sl.Status.Running() || sl.Status.Uptime(now) < settledAfter
}

// watchCrashLoops re-reads the status record of every candidate until each
// has settled (up for settledAfter), died young loopDeaths times, or the
// watch ends. Only the status file is read; the last record read becomes
// the observed one.
func (d *Driver) watchCrashLoops(ctx context.Context, obs []*Folder, exists []bool) {
	type watch struct {
		sl          *Folder
		lastPID     int       // the running pid last seen, or 0
		lastChanged time.Time // the record's time last seen
		deaths      int       // deaths seen before settledAfter
		done        bool
	}
	now := d.Now.Time()
	var ws []*watch
	for i, sl := range obs {
		if exists[i] && watchCandidate(sl, now) {
			sl.Watched = true
			ws = append(ws, &watch{sl: sl, lastPID: runningPID(sl.Status), lastChanged: sl.Status.Changed})
		}
	}
	if len(ws) == 0 {
		return
	}
	watchFor, every := d.WatchFor, d.SampleEvery
	if watchFor <= 0 {
		watchFor = defaultWatchFor
	}
	if every <= 0 {
		every = defaultSampleEvery
	}
	deadline := time.Now().Add(watchFor)
	for pending := len(ws); pending > 0 && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		now := d.Now.Time()
		for _, w := range ws {
			if w.done {
				continue
			}
			readStatus(w.sl)
			if !w.sl.HasStatus {
				continue
			}
			st := w.sl.Status
			pid := runningPID(st)
			if !st.Changed.Equal(w.lastChanged) {
				young := st.Changed.Sub(w.lastChanged) < settledAfter
				switch {
				case pid == 0 && w.lastPID == 0:
					// Down, then down again with a new time: it started and
					// died between two reads (runit, which shows a dead
					// service as down at once).
					w.sl.Restarts++
					if young {
						w.deaths++
					}
				case pid != w.lastPID:
					// The pid we knew is gone. It died young if it had not
					// settled: daemontools shows a dead pid until supervise
					// reaps it, about a second after the start.
					if w.lastPID != 0 && young {
						w.deaths++
					}
					if pid != 0 {
						w.sl.Restarts++
					}
				}
				w.lastPID, w.lastChanged = pid, st.Changed
			}
			switch {
			case w.deaths >= loopDeaths:
				w.sl.CrashLooping = true
			case !st.WantsUp(), st.Running() && st.Uptime(now) >= settledAfter:
				// Sent down meanwhile, or settled: not looping.
			default:
				continue
			}
			w.done = true
			pending--
		}
	}
}

// runningPID is the pid of the service's run process, or 0.
func runningPID(st Status) int {
	if st.Running() {
		return st.PID
	}
	return 0
}

// liveOf turns a read folder into Live.
func liveOf(sl *Folder, exists bool, now time.Time) controllers.Live {
	l := controllers.Live{Exists: exists, Raw: *sl}
	if !exists {
		l.State = "missing: no folder " + sl.Dir
		return l
	}
	det := map[string]string{"dir": sl.Dir}
	l.Details = det
	if sl.DownFile {
		det["normally"] = "down"
	} else {
		det["normally"] = "up"
	}
	if sl.Supervised {
		det["supervise"] = "running"
	} else {
		det["supervise"] = "not running"
	}
	if !sl.HasStatus || !sl.Supervised {
		switch {
		case !sl.Supervised:
			l.State = "no supervise running"
		default:
			l.State = "status unknown: " + sl.StatusErr
		}
		det["state"] = "unknown"
		return l
	}
	st := sl.Status
	up := st.Running()
	if up {
		l.Running = 1
		// The record's label is when it came up: svstat's uptime.
		l.Since = st.Changed.UTC()
	}
	if st.WantsUp() || up {
		l.Replicas = 1
	}
	state := "down"
	switch {
	case up:
		state = "up"
	case st.Runit && st.RunState == RunStateFinish:
		state = "finishing"
	}
	uptime := st.Uptime(now).Truncate(time.Second)
	det["state"] = state
	det["uptime"] = uptime.String()
	det["since"] = st.Changed.UTC().Format(time.RFC3339)
	det["want"] = sl.Want()
	det["paused"] = strconv.FormatBool(st.Paused)
	if st.PID != 0 {
		det["pid"] = strconv.Itoa(st.PID)
	}
	if sl.Watched {
		det["restarts"] = strconv.Itoa(sl.Restarts)
	}
	// svstat's words: "up (pid 123) 5 seconds, normally down".
	var b strings.Builder
	b.WriteString(state)
	if st.PID != 0 {
		fmt.Fprintf(&b, " (pid %d)", st.PID)
	}
	fmt.Fprintf(&b, " %s", uptime)
	if up && sl.DownFile {
		b.WriteString(", normally down")
	}
	if !up && !sl.DownFile {
		b.WriteString(", normally up")
	}
	if up && st.Paused {
		b.WriteString(", paused")
	}
	switch w := sl.Want(); {
	case !up && w == "up":
		b.WriteString(", want up")
	case up && w == "down":
		b.WriteString(", want down")
	case w == "once":
		b.WriteString(", once")
	}
	if sl.CrashLooping {
		det["crash-looping"] = "true"
		fmt.Fprintf(&b, ", crash-looping (%d restarts)", sl.Restarts)
		l.Failing = fmt.Sprintf("crash-looping (%d restarts seen)", sl.Restarts)
		det["failing"] = l.Failing
	}
	l.State = b.String()
	return l
}

// Want names what supervise is told to keep the service at: up, once or
// down (also when there is no supervise or no status to tell).
func (sl *Folder) Want() string {
	switch mode := liveMode(sl); mode {
	case modeUp, modeOnce:
		return string(mode)
	}
	return "down"
}

// Name, Plan and Health make a Driver a controllers.Driver: Plan and Health
// are this package's pure functions.
func (d *Driver) Name() v1.Driver { return v1.DriverDaemontools }
func (d *Driver) Plan(ts []controllers.Target, l map[string]controllers.Live) []controllers.Action {
	return Plan(ts, l)
}
func (d *Driver) Health(t controllers.Target, l controllers.Live) controllers.Health {
	return Health(t, l)
}
