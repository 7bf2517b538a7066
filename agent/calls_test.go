package agent

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

func TestStuckCalls(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	call := func(daemon, what string, start int, after time.Duration) watchedCall {
		return watchedCall{daemon: daemon, call: what, start: at(start), after: after}
	}
	for _, tc := range []struct {
		name     string
		inflight []watchedCall
		failing  map[string]timedOut
		now      int
		want     []StuckCall
	}{
		{name: "nothing", now: 10},
		{name: "a call within its allowance is not stuck", now: 10,
			inflight: []watchedCall{call("docker", "observe swarm", 9, 2*time.Second)}},
		{name: "a call past its allowance is", now: 12,
			inflight: []watchedCall{call("docker", "observe swarm", 9, 2*time.Second)},
			want:     []StuckCall{{Daemon: "docker", Call: "observe swarm", Since: at(9)}}},
		{name: "the oldest call of a daemon names it", now: 20,
			inflight: []watchedCall{
				call("docker", "observe compose", 15, 2*time.Second),
				call("docker", "observe swarm", 12, 2*time.Second),
				call("systemd", "observe systemd", 19, 2*time.Second),
			},
			want: []StuckCall{{Daemon: "docker", Call: "observe swarm", Since: at(12)}}},
		{name: "timed-out calls keep the daemon stuck between calls", now: 30,
			failing: map[string]timedOut{"git": {call: "fetch", since: at(20), n: 2}},
			want:    []StuckCall{{Daemon: "git", Call: "fetch", Since: at(20), TimedOut: 2}}},
		{name: "a timed-out run is older than the call in flight", now: 30,
			failing:  map[string]timedOut{"docker": {call: "observe swarm", since: at(20), n: 1}},
			inflight: []watchedCall{call("docker", "apply swarm/x replicas", 25, 2*time.Second)},
			want:     []StuckCall{{Daemon: "docker", Call: "observe swarm", Since: at(20), TimedOut: 1}}},
		{name: "sorted by daemon", now: 30,
			failing:  map[string]timedOut{"systemd": {call: "observe systemd", since: at(20), n: 1}},
			inflight: []watchedCall{call("docker", "observe swarm", 25, 2*time.Second)},
			want: []StuckCall{
				{Daemon: "docker", Call: "observe swarm", Since: at(25)},
				{Daemon: "systemd", Call: "observe systemd", Since: at(20), TimedOut: 1},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := stuckCalls(tc.inflight, tc.failing, at(tc.now)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestCallWatchTimeoutsAndRecovery(t *testing.T) {
	w := newCallWatch()
	ctx := context.Background()
	timeout := fmt.Errorf("listing services: %w", context.DeadlineExceeded)

	w.begin("docker", "observe swarm", time.Hour)(ctx, timeout)
	w.begin("docker", "observe swarm", time.Hour)(ctx, timeout)
	got := w.stuck(time.Now())
	if len(got) != 1 || got[0].Daemon != "docker" || got[0].TimedOut != 2 {
		t.Fatalf("after two timeouts: %+v", got)
	}
	// A refusal (the daemon is down, not frozen) is no timeout, and does
	// not clear the run either.
	w.begin("docker", "observe swarm", time.Hour)(ctx, errors.New("connection refused"))
	if got := w.stuck(time.Now()); len(got) != 1 || got[0].TimedOut != 2 {
		t.Fatalf("after a refusal: %+v", got)
	}
	// The agent stopping is no timeout of the daemon's.
	stopped, cancel := context.WithCancel(ctx)
	cancel()
	w.begin("systemd", "observe systemd", time.Hour)(stopped, context.DeadlineExceeded)
	if got := w.stuck(time.Now()); len(got) != 1 {
		t.Fatalf("a call cut by the agent stopping counted: %+v", got)
	}
	// An answer clears it.
	w.begin("docker", "observe compose", time.Hour)(ctx, nil)
	if got := w.stuck(time.Now()); len(got) != 0 {
		t.Fatalf("after an answer: %+v", got)
	}
	// A call that failed after its whole timeout ran out of time, whatever
	// its error says (a client that does not wrap the context's error).
	end := w.begin("git", "fetch", 0)
	end(ctx, errors.New("read: i/o timeout"))
	if got := w.stuck(time.Now()); len(got) != 1 || got[0].Daemon != "git" {
		t.Fatalf("a call failed after its timeout: %+v", got)
	}
	// In flight: nothing is left behind once calls end.
	w.begin("docker", "observe swarm", 0)(ctx, nil)
	w.begin("git", "fetch", 0)(ctx, nil)
	if len(w.inflight) != 0 || len(w.failing) != 0 {
		t.Fatalf("left behind: %+v %+v", w.inflight, w.failing)
	}
}

// blockingDriver is a driver whose Observe gets no answer, the way a call
// to a frozen daemon does, until its own call timeout.
type blockingDriver struct {
	controllers.Driver
	timeout time.Duration
}

func (blockingDriver) Name() v1.Driver { return v1.DriverSwarm }

func (d blockingDriver) Observe(ctx context.Context, _ []controllers.Target) (map[string]controllers.Live, error) {
	cctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	<-cctx.Done()
	return nil, fmt.Errorf("listing services: %w", cctx.Err())
}

func TestWatchedDriverReportsAStuckObserve(t *testing.T) {
	w := newCallWatch()
	drivers := watchDrivers(map[v1.Driver]controllers.Driver{v1.DriverSwarm: blockingDriver{timeout: 100 * time.Millisecond}}, w, 20*time.Millisecond)
	done := make(chan error, 1)
	go func() {
		_, err := drivers[v1.DriverSwarm].Observe(context.Background(), nil)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	got := w.stuck(time.Now())
	if len(got) != 1 || got[0].Daemon != "docker" || got[0].Call != "observe swarm" || got[0].TimedOut != 0 {
		t.Fatalf("in flight: %+v", got)
	}
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Observe: %v", err)
	}
	if got := w.stuck(time.Now()); len(got) != 1 || got[0].TimedOut != 1 {
		t.Fatalf("after the timeout: %+v", got)
	}
	if _, ok := drivers[v1.DriverSwarm].(controllers.NotReadyHandler); ok {
		t.Errorf("a driver without NotReady gained one")
	}
}

// slowRunner runs a one-shot until released.
type slowRunner struct {
	blockingDriver
	started, release chan struct{}
}

func (d slowRunner) Run(context.Context, controllers.Target) (controllers.RunResult, error) {
	close(d.started)
	<-d.release
	return controllers.RunResult{Exited: true, Succeeded: true, Detail: "exited 0"}, nil
}

// A one-shot that runs for longer than a call may take (a compose one-off,
// a daemontools once run) does not make its daemon look stuck.
func TestWatchedRunOfAOneShotIsNotStuck(t *testing.T) {
	w := newCallWatch()
	run := slowRunner{started: make(chan struct{}), release: make(chan struct{})}
	drivers := watchDrivers(map[v1.Driver]controllers.Driver{v1.DriverCompose: run}, w, 20*time.Millisecond)
	done := make(chan error, 1)
	go func() {
		_, err := drivers[v1.DriverCompose].(controllers.Runner).Run(context.Background(), controllers.Target{Name: "migrate", Driver: v1.DriverCompose})
		done <- err
	}()
	<-run.started
	time.Sleep(60 * time.Millisecond) // three times the call allowance
	if got := w.stuck(time.Now()); len(got) != 0 {
		t.Errorf("a one-shot running is reported stuck: %+v", got)
	}
	close(run.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestStuckMetric(t *testing.T) {
	w := newCallWatch()
	reg := prometheus.NewRegistry()
	reg.MustRegister(stuckMetrics{w})
	series := func() int {
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, f := range fams {
			if f.GetName() == "reconciler_daemon_stuck_seconds" {
				n += len(f.GetMetric())
			}
		}
		return n
	}
	if n := series(); n != 0 {
		t.Fatalf("every daemon answers: %d series", n)
	}
	w.begin("docker", "observe swarm", time.Hour)(context.Background(), context.DeadlineExceeded)
	if n := series(); n != 1 {
		t.Fatalf("docker stuck: %d series", n)
	}
}
