package agent

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"reconciler.dev/reconciler/api/status"
	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/desired"
)

// A daemon that freezes (SIGSTOP, a bus daemon that stops reading, a git
// server that accepts and never answers, a cut link) does not fail calls:
// it leaves them without an answer until their timeout. Every call is
// bounded (--call-timeout, --git-timeout), so a pass never hangs; what is
// kept here is what /status says about it meanwhile: which daemon does not
// answer, which call waits, and since when, before that call runs out of
// time and for as long as none of its calls is answered.

// StuckCall is /status stuck: a daemon that does not answer (api/status).
type StuckCall = status.StuckCall

// DefaultCallTimeout bounds each call to a daemon when Config.CallTimeout
// (--call-timeout) is not set; it is the drivers' own default.
const DefaultCallTimeout = 30 * time.Second

// The daemons of calls that are not a driver's.
const daemonGit = "git"

// gitErr is what of a Resolve error the git server decided: its answer,
// or the lack of one (fetching, or deepening history to judge); nil when
// it answered and the revision was judged or loaded, good or not.
func gitErr(err error) error {
	var fe *desired.FetchError
	if errors.As(err, &fe) {
		return fe.Err
	}
	var ue *desired.UncheckedError
	if errors.As(err, &ue) {
		return ue.Err
	}
	return nil
}

// stuckAfter is how long a call bounded by timeout may wait for an answer
// before it is reported: half its timeout, so /status says what is stuck
// before the call fails.
func stuckAfter(timeout time.Duration) time.Duration { return timeout / 2 }

// daemonOf names what a driver's calls talk to.
func daemonOf(d v1.Driver) string {
	switch d {
	case v1.DriverSwarm, v1.DriverCompose:
		return "docker"
	case v1.DriverSupervisor:
		return "supervisord"
	}
	return string(d) // systemd, daemontools
}

// callWatch keeps the calls in flight and the daemons whose last calls ran
// out of time. Calls are told to it by begin and end; stuck reads it.
type callWatch struct {
	mu       sync.Mutex
	seq      uint64
	inflight map[uint64]watchedCall
	failing  map[string]timedOut // by daemon
}

type watchedCall struct {
	daemon, call string
	start        time.Time
	// after is how long the call may take before it counts as stuck.
	after time.Duration
}

// timedOut is a daemon's run of calls that ran out of time.
type timedOut struct {
	call  string    // the first of them
	since time.Time // when it was made
	n     int
}

func newCallWatch() *callWatch {
	return &callWatch{inflight: map[uint64]watchedCall{}, failing: map[string]timedOut{}}
}

// begin records a call made now; the returned func records its end, given
// the context the call was made with. A call that ran out of time (a
// deadline exceeded, or an error after twice its allowance: its whole
// timeout) while ctx lives marks the daemon as not answering; any call of
// the daemon that succeeds clears it.
func (w *callWatch) begin(daemon, call string, after time.Duration) func(ctx context.Context, err error) {
	if w == nil { // an Agent not made by New (unit tests) watches nothing
		return func(context.Context, error) {}
	}
	start := time.Now()
	w.mu.Lock()
	w.seq++
	id := w.seq
	w.inflight[id] = watchedCall{daemon: daemon, call: call, start: start, after: after}
	w.mu.Unlock()
	return func(ctx context.Context, err error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.inflight, id)
		switch {
		case err == nil:
			delete(w.failing, daemon)
		case ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || time.Since(start) >= 2*after):
			f, ok := w.failing[daemon]
			if !ok {
				f = timedOut{call: call, since: start}
			}
			f.n++
			w.failing[daemon] = f
		}
	}
}

// stuck returns the daemons that do not answer, at now.
func (w *callWatch) stuck(now time.Time) []StuckCall {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	calls := make([]watchedCall, 0, len(w.inflight))
	for _, c := range w.inflight {
		calls = append(calls, c)
	}
	return stuckCalls(calls, w.failing, now)
}

// stuckCalls is the pure part of stuck: one entry per daemon with a call in
// flight past its allowance or a run of timed-out calls, naming the oldest
// call without an answer; sorted by daemon.
func stuckCalls(inflight []watchedCall, failing map[string]timedOut, now time.Time) []StuckCall {
	by := map[string]*StuckCall{}
	for d, f := range failing {
		by[d] = &StuckCall{Daemon: d, Call: f.call, Since: f.since, TimedOut: f.n}
	}
	for _, c := range inflight {
		if now.Sub(c.start) < c.after {
			continue
		}
		s, ok := by[c.daemon]
		if !ok {
			by[c.daemon] = &StuckCall{Daemon: c.daemon, Call: c.call, Since: c.start}
			continue
		}
		if c.start.Before(s.Since) {
			s.Call, s.Since = c.call, c.start
		}
	}
	if len(by) == 0 {
		return nil // /status leaves stuck out when every daemon answers
	}
	out := make([]StuckCall, 0, len(by))
	for _, s := range by {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Daemon < out[j].Daemon })
	return out
}

// watchedDriver is a driver whose Observe and Apply calls are told to a
// callWatch. Plan and Health are the driver's own (pure).
type watchedDriver struct {
	controllers.Driver
	w      *callWatch
	daemon string
	after  time.Duration
}

// watchedNotReady is a watchedDriver of a driver that acts on failed starts.
type watchedNotReady struct {
	watchedDriver
	h controllers.NotReadyHandler
}

// watchDrivers returns the drivers with their calls watched, in a new map
// (the caller's engine keeps its own).
func watchDrivers(drivers map[v1.Driver]controllers.Driver, w *callWatch, after time.Duration) map[v1.Driver]controllers.Driver {
	out := make(map[v1.Driver]controllers.Driver, len(drivers))
	for name, d := range drivers {
		wd := watchedDriver{Driver: d, w: w, daemon: daemonOf(name), after: after}
		if h, ok := d.(controllers.NotReadyHandler); ok {
			out[name] = &watchedNotReady{watchedDriver: wd, h: h}
			continue
		}
		out[name] = &wd
	}
	return out
}

// Unwrap is the driver watched, so its optional interfaces (its event
// stream: controllers.WatcherOf) stay reachable.
func (d *watchedDriver) Unwrap() controllers.Driver { return d.Driver }

func (d *watchedDriver) Observe(ctx context.Context, targets []controllers.Target) (map[string]controllers.Live, error) {
	end := d.w.begin(d.daemon, "observe "+string(d.Name()), d.after)
	live, err := d.Driver.Observe(ctx, targets)
	end(ctx, err)
	return live, err
}

func (d *watchedDriver) Apply(ctx context.Context, a controllers.Action, t controllers.Target, l controllers.Live) error {
	end := d.w.begin(d.daemon, "apply "+a.Subject+" "+a.Field, d.allowance(t))
	err := d.Driver.Apply(ctx, a, t, l)
	end(ctx, err)
	return err
}

// Run runs a service once through the driver's Run (watched as Apply is),
// or returns controllers.ErrCannotRun when the driver has none.
func (d *watchedDriver) Run(ctx context.Context, t controllers.Target) (controllers.RunResult, error) {
	r, ok := d.Driver.(controllers.Runner)
	if !ok {
		return controllers.RunResult{}, fmt.Errorf("%s: %w", t.Subject(), controllers.ErrCannotRun)
	}
	// A run lasts as long as the one-shot does: the drivers wait up to
	// runAllowance for it to end, and a daemon is not stuck meanwhile.
	end := d.w.begin(d.daemon, "run "+t.Subject(), d.allowance(t)+runAllowance)
	res, err := r.Run(ctx, t)
	end(ctx, err)
	return res, err
}

func (d *watchedNotReady) NotReady(ctx context.Context, t controllers.Target, cause error) (string, error) {
	end := d.w.begin(d.daemon, "not-ready "+t.Subject(), d.allowance(t))
	did, err := d.h.NotReady(ctx, t, cause)
	end(ctx, err)
	return did, err
}

// allowance is how long an action may take before it counts as stuck: a
// stop may wait for the object's graceful stop first.
// runAllowance is how long the drivers wait, by default, for a one-shot
// run (a systemd start job, a daemontools once run, a compose one-off) to
// end.
const runAllowance = 2 * time.Minute

func (d *watchedDriver) allowance(t controllers.Target) time.Duration {
	if t.Service != nil {
		return d.after + t.Service.StopTimeout.Duration
	}
	return d.after
}

// descStuck is the metric of /status stuck, for alerts: a daemon that does
// not answer, with how long its oldest call has waited.
var descStuck = prometheus.NewDesc("reconciler_daemon_stuck_seconds",
	"How long the oldest call to a daemon that does not answer (docker, systemd, supervisord, git) has waited; absent while it answers.",
	[]string{"daemon"}, nil)

// stuckMetrics exports /status stuck at scrape time.
type stuckMetrics struct{ w *callWatch }

func (m stuckMetrics) Describe(ch chan<- *prometheus.Desc) { ch <- descStuck }

func (m stuckMetrics) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	for _, s := range m.w.stuck(now) {
		ch <- prometheus.MustNewConstMetric(descStuck, prometheus.GaugeValue, now.Sub(s.Since).Seconds(), s.Daemon)
	}
}
