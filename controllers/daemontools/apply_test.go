package daemontools

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

// fakeSupervise is a service folder laid out as supervise keeps it: the
// control and ok FIFOs (held open for reading while "running") and the
// status record. Tests read the commands written to control.
type fakeSupervise struct {
	t       *testing.T
	dir     string
	control int // read end, or -1
	ok      int
}

func newFolder(t *testing.T, running bool) *fakeSupervise {
	t.Helper()
	f := &fakeSupervise{t: t, dir: filepath.Join(t.TempDir(), "svc"), control: -1, ok: -1}
	if err := os.MkdirAll(filepath.Join(f.dir, "supervise"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"control", "ok"} {
		if err := syscall.Mkfifo(filepath.Join(f.dir, "supervise", name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if running {
		f.control = f.openRead("control")
		f.ok = f.openRead("ok")
		t.Cleanup(func() { syscall.Close(f.control); syscall.Close(f.ok) })
	}
	return f
}

func (f *fakeSupervise) openRead(name string) int {
	fd, err := syscall.Open(filepath.Join(f.dir, "supervise", name), syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	return fd
}

func (f *fakeSupervise) setStatus(st Status) {
	f.t.Helper()
	p := filepath.Join(f.dir, "supervise", "status")
	if err := os.WriteFile(p+".new", st.Bytes(), 0o644); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Rename(p+".new", p); err != nil { // as supervise does: atomically
		f.t.Fatal(err)
	}
}

// commands returns what was written to control since the last call.
func (f *fakeSupervise) commands() string {
	buf := make([]byte, 64)
	n, err := syscall.Read(f.control, buf)
	if err != nil && !errors.Is(err, syscall.EAGAIN) {
		f.t.Fatal(err)
	}
	if n < 0 {
		n = 0
	}
	return string(buf[:n])
}

func (f *fakeSupervise) exists(name string) bool {
	_, err := os.Stat(filepath.Join(f.dir, name))
	return err == nil
}

func (f *fakeSupervise) target(s v1.Service) controllers.Target {
	s.Dir = f.dir
	return target(s)
}

func TestControlWithoutSuperviseFailsAtOnce(t *testing.T) {
	stale := newFolder(t, false) // supervise/ left behind by a supervise that died
	bare := filepath.Join(t.TempDir(), "never-supervised")
	if err := os.Mkdir(bare, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{stale.dir, bare} {
		start := time.Now()
		err := Control(dir, 'u')
		took := time.Since(start)
		if err == nil || !strings.Contains(err.Error(), "no supervise running for "+dir+": ") {
			t.Errorf("Control(%s) = %v, want a 'no supervise running for %s' error", dir, err, dir)
		}
		if took > 100*time.Millisecond {
			t.Errorf("Control(%s) took %s", dir, took)
		}
	}
	if !errors.Is(Control(stale.dir, 'u'), syscall.ENXIO) {
		t.Errorf("a FIFO with no reader should give ENXIO")
	}
}

func TestControlWritesOneByte(t *testing.T) {
	f := newFolder(t, true)
	for _, c := range []byte("udotck") {
		if err := Control(f.dir, c); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.commands(); got != "udotck" {
		t.Errorf("commands = %q", got)
	}
}

func TestControlRefusesAFileThatIsNoFIFO(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "supervise"), 0o755)
	p := filepath.Join(dir, "supervise", "control")
	os.WriteFile(p, nil, 0o600)
	if err := Control(dir, 'u'); err == nil || !strings.Contains(err.Error(), "not a FIFO") {
		t.Errorf("Control = %v, want 'not a FIFO'", err)
	}
	if b, _ := os.ReadFile(p); len(b) != 0 {
		t.Errorf("wrote %q into a regular file", b)
	}
}

func TestObserveReadsTheFolder(t *testing.T) {
	f := newFolder(t, true)
	changed := time.Now().Add(-42 * time.Second)
	f.setStatus(Status{Runit: true, Changed: changed, PID: 321, Want: 'u', RunState: RunStateRun})
	os.WriteFile(filepath.Join(f.dir, "down"), nil, 0o644)
	os.WriteFile(filepath.Join(f.dir, restartOnFile), []byte("sha256:abc\n"), 0o644)
	stale := newFolder(t, false)
	stale.setStatus(Status{Changed: changed, PID: 99, Want: 'u'})

	up, gone, dead := f.target(declare("a", 1)), target(declare("b", 1)), stale.target(declare("c", 1))
	gone.Service.Dir = filepath.Join(t.TempDir(), "nothing-here")
	live, err := (&Driver{}).Observe(context.Background(), []controllers.Target{up, gone, dead})
	if err != nil {
		t.Fatal(err)
	}
	l := live[up.Subject()]
	sl := l.Raw.(Folder)
	if !l.Exists || !sl.Supervised || l.Running != 1 || l.Replicas != 1 || !sl.DownFile || sl.RestartOn != "sha256:abc" || !sl.Status.Runit {
		t.Errorf("live = %+v, raw %+v", l, sl)
	}
	if l.Details["uptime"] != "42s" || l.Details["pid"] != "321" || l.Details["normally"] != "down" {
		t.Errorf("details = %v", l.Details)
	}
	if live[gone.Subject()].Exists {
		t.Errorf("a folder that does not exist observed as existing")
	}
	d := live[dead.Subject()]
	if !d.Exists || d.Raw.(Folder).Supervised || d.Running != 0 || d.State != "no supervise running" {
		t.Errorf("stale folder: %+v", d)
	}
	if h := Health(dead, d); h.Ready || !strings.Contains(h.Reason, "no supervise running for "+stale.dir) {
		t.Errorf("stale folder health: %+v", h)
	}
}

// loop plays a crash-looping service in the status record: a new pid every
// period, each starting now.
func loop(ctx context.Context, f *fakeSupervise, period time.Duration) {
	pid := 1000
	for {
		pid++
		f.setStatus(Status{Changed: time.Now(), PID: pid, Want: 'u'})
		select {
		case <-ctx.Done():
			return
		case <-time.After(period):
		}
	}
}

func TestObserveFindsACrashLoop(t *testing.T) {
	looping, healthy, settled := newFolder(t, true), newFolder(t, true), newFolder(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go loop(ctx, looping, 300*time.Millisecond)
	healthy.setStatus(Status{Changed: time.Now().Add(-time.Second), PID: 50, Want: 'u'})
	settled.setStatus(Status{Changed: time.Now().Add(-time.Hour), PID: 60, Want: 'u'})
	time.Sleep(50 * time.Millisecond)

	ts := []controllers.Target{looping.target(declare("l", 1)), healthy.target(declare("h", 1)), settled.target(declare("s", 1))}
	start := time.Now()
	live, err := (&Driver{SampleEvery: 20 * time.Millisecond}).Observe(ctx, ts)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	l := live[ts[0].Subject()]
	if l.Details["crash-looping"] != "true" || atoi(l.Details["restarts"]) < 2 {
		t.Errorf("looping service: %s %v", l.State, l.Details)
	}
	if h := Health(ts[0], l); h.Ready || !strings.Contains(h.Reason, "crash-looping") {
		t.Errorf("looping service health: %+v", h)
	}
	h := live[ts[1].Subject()]
	if h.Details["crash-looping"] != "" || h.Details["restarts"] != "0" || !Health(ts[1], h).Ready {
		t.Errorf("healthy young service: %s %v", h.State, h.Details)
	}
	if s := live[ts[2].Subject()]; s.Details["restarts"] != "" {
		t.Errorf("a settled service was watched: %v", s.Details)
	}
	if took > defaultWatchFor+500*time.Millisecond {
		t.Errorf("Observe took %s", took)
	}
}

func TestObserveNothingToWatchIsQuick(t *testing.T) {
	f := newFolder(t, true)
	f.setStatus(Status{Changed: time.Now().Add(-time.Minute), PID: 7, Want: 'u'})
	start := time.Now()
	if _, err := (&Driver{}).Observe(context.Background(), []controllers.Target{f.target(declare("x", 1))}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 50*time.Millisecond {
		t.Errorf("Observe of a settled service took %s", took)
	}
}

func TestApplyStartRecordsAndNotReadyUndoes(t *testing.T) {
	f := newFolder(t, true)
	f.setStatus(Status{Changed: time.Now(), Want: 'd'})
	os.WriteFile(filepath.Join(f.dir, "down"), nil, 0o644)
	d := &Driver{}
	tg := f.target(declare("slapd", 1, restartOn("v1")))
	live, _ := d.Observe(context.Background(), []controllers.Target{tg})
	plan := Plan([]controllers.Target{tg}, live)
	for _, a := range plan {
		if err := d.Apply(context.Background(), a, tg, live[tg.Subject()]); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.commands(); got != "u" || f.exists("down") {
		t.Fatalf("start sent %q, down file there: %v", got, f.exists("down"))
	}
	if b, _ := os.ReadFile(filepath.Join(f.dir, restartOnFile)); string(b) != "v1\n" {
		t.Errorf("restartOn record = %q", b)
	}
	if _, err := d.NotReady(context.Background(), tg, errors.New("probe failed")); err != nil {
		t.Fatal(err)
	}
	if got := f.commands(); got != "d" || !f.exists("down") {
		t.Errorf("NotReady sent %q, down file there: %v", got, f.exists("down"))
	}
	// Only once per start.
	if did, err := d.NotReady(context.Background(), tg, errors.New("again")); err != nil || did != "" || f.commands() != "" {
		t.Errorf("second NotReady acted")
	}
}

func TestNotReadyLeavesWhatItDidNotStart(t *testing.T) {
	f := newFolder(t, true)
	f.setStatus(Status{Changed: time.Now().Add(-time.Hour), PID: 5, Want: 'u'})
	os.WriteFile(filepath.Join(f.dir, "down"), nil, 0o644)
	d := &Driver{}
	tg := f.target(declare("squid", 1))
	// A start in an earlier pass, then a pass that only removes a stray
	// down file: a failing probe must not take the running service down.
	d.setStarted(f.dir, true)
	live, _ := d.Observe(context.Background(), []controllers.Target{tg})
	plan := Plan([]controllers.Target{tg}, live)
	if len(plan) != 1 || plan[0].Field != fieldDownFile {
		t.Fatalf("plan = %v", plan)
	}
	if err := d.Apply(context.Background(), plan[0], tg, live[tg.Subject()]); err != nil {
		t.Fatal(err)
	}
	if _, err := d.NotReady(context.Background(), tg, errors.New("probe failed")); err != nil {
		t.Fatal(err)
	}
	if got := f.commands(); got != "" || f.exists("down") {
		t.Errorf("sent %q, down file there: %v", got, f.exists("down"))
	}

	// onNotReady: keep leaves a fresh start up.
	kt := f.target(declare("squid", 1, keep))
	d.setStarted(f.dir, true)
	if _, err := d.NotReady(context.Background(), kt, errors.New("probe failed")); err != nil || f.commands() != "" || f.exists("down") {
		t.Errorf("keep: NotReady acted")
	}
}

func TestApplyStopKillsAfterStopTimeout(t *testing.T) {
	f := newFolder(t, true)
	f.setStatus(Status{Changed: time.Now().Add(-time.Hour), PID: 5, Want: 'u'})
	tg := f.target(declare("mldonkey", 0, func(s *v1.Service) { s.StopTimeout = v1.NewDuration(300 * time.Millisecond) }))
	a := act("mldonkey", fieldReplicas, "1", "0", controllers.OpScaleDown)
	start := time.Now()
	if err := (&Driver{}).Apply(context.Background(), a, tg, controllers.Live{}); err != nil {
		t.Fatal(err)
	}
	if got, took := f.commands(), time.Since(start); got != "dk" || took < 300*time.Millisecond {
		t.Errorf("sent %q after %s, want d, then k after the stop timeout", got, took)
	}
	// A service that exits in time is not killed.
	f.setStatus(Status{Changed: time.Now(), Want: 'd'})
	if err := (&Driver{}).Apply(context.Background(), a, tg, controllers.Live{}); err != nil {
		t.Fatal(err)
	}
	if got := f.commands(); got != "d" {
		t.Errorf("sent %q, want d", got)
	}
}

func TestApplyRestartAndOnce(t *testing.T) {
	f := newFolder(t, true)
	f.setStatus(Status{Runit: true, Changed: time.Now().Add(-time.Hour), PID: 5, Want: 'u', RunState: RunStateRun})
	d := &Driver{}
	tg := f.target(declare("squid", 1, restartOn("v2")))
	live, _ := d.Observe(context.Background(), []controllers.Target{tg})
	plan := Plan([]controllers.Target{tg}, live)
	if len(plan) != 1 || plan[0].Op != controllers.OpRestart {
		t.Fatalf("plan = %v", plan)
	}
	if err := d.Apply(context.Background(), plan[0], tg, live[tg.Subject()]); err != nil {
		t.Fatal(err)
	}
	if got := f.commands(); got != "t" {
		t.Errorf("restart sent %q", got)
	}
	live, _ = d.Observe(context.Background(), []controllers.Target{tg})
	if p := Plan([]controllers.Target{tg}, live); len(p) != 0 {
		t.Errorf("after the restart the plan is %v", p)
	}

	// runit: sv once, and the mark that tells a finished once from a down.
	f.setStatus(Status{Runit: true, Changed: time.Now().Add(-time.Hour), Want: 'd'})
	os.WriteFile(filepath.Join(f.dir, "down"), nil, 0o644)
	ot := f.target(declare("cache-warmup", 1, once))
	live, _ = d.Observe(context.Background(), []controllers.Target{ot})
	plan = Plan([]controllers.Target{ot}, live)
	if len(plan) != 1 || plan[0].To != "1 (once)" {
		t.Fatalf("plan = %v", plan)
	}
	if err := d.Apply(context.Background(), plan[0], ot, live[ot.Subject()]); err != nil {
		t.Fatal(err)
	}
	if got := f.commands(); got != "o" || !f.exists(onceFile) {
		t.Errorf("once sent %q, mark %v", got, f.exists(onceFile))
	}
	live, _ = d.Observe(context.Background(), []controllers.Target{ot})
	if p := Plan([]controllers.Target{ot}, live); len(p) != 0 {
		t.Errorf("a finished once service is planned again: %v", p)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
