package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"sync"
	"time"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/autoscale"
	"reconciler.dev/reconciler/controllers/engine"
	"reconciler.dev/reconciler/controllers/failure"
	"reconciler.dev/reconciler/controllers/monitor"
	"reconciler.dev/reconciler/desired"
	"reconciler.dev/reconciler/desired/source"
	"reconciler.dev/reconciler/desired/trust"
	"reconciler.dev/reconciler/forge"
	"reconciler.dev/reconciler/notify"
)

// Config is what `reconciler run` hands the agent.
type Config struct {
	Source   source.Source
	Host     string
	Engine   *engine.Engine
	StateDir string
	// Interval between passes when nothing triggers one (jittered by ±10%;
	// the first wait since start by ±50%, see NextWait).
	Interval time.Duration
	// Listen is the address of the HTTP endpoints ("" serves nothing).
	Listen            string
	WebhookSecretFile string
	// WebhookGitLabTokenFile holds the X-Gitlab-Token GitLab sends, when it
	// is not the webhook secret itself.
	WebhookGitLabTokenFile string
	// TokenFile holds the bearer token the read endpoints want (see
	// server.go); required when Listen is not loopback.
	TokenFile string
	// WebhookListen, when set, serves /webhook on an address of its own,
	// and Listen no longer does.
	WebhookListen string
	// AllowedHosts are Host header names a loopback listener accepts
	// besides localhost, loopback addresses and its own address.
	AllowedHosts []string
	// MaxSubscribers bounds the /events streams open at once (default
	// DefaultMaxSubscribers).
	MaxSubscribers int
	Log            *slog.Logger
	// FetchTimeout bounds one look at the source (default: Interval, at
	// most 60s).
	FetchTimeout time.Duration
	// Autoscaler, when set, sizes autoscaled services; its memory is kept
	// in the state dir so a restart does not reset cooldowns.
	Autoscaler *autoscale.Autoscaler
	// Reach is what a revision may reach on this host (exec probes,
	// service dirs, sockets, secret files): a revision needing more is
	// refused whole, and a revision in force from the state dir that needs
	// more (the limits were narrowed since) is not enforced. The zero
	// value means v1.DefaultReach.
	Reach v1.Reach
	// Trust is what a new revision must satisfy before it is even parsed:
	// signatures, and that it descends from the revision in force
	// (anti-rollback). Nil checks nothing.
	Trust *trust.Policy
	// Limits bound parsing and validating a revision (zero fields: the
	// defaults); the source's own Options.Limits bound reading it.
	Limits v1.Limits
	// Monitor, when set, collects the resource figures of the declared
	// services at most every MonitorInterval (default 30s), apart from
	// passes: /status objects[].resources, reconciler_service_* metrics and
	// "resources" events on /events.
	Monitor         *monitor.Collector
	MonitorInterval time.Duration
	// Forge, when set, receives a commit status (context reconciler/<host>)
	// for every revision judged: pending while a pass applies it, success
	// when converged and ready, failure with the reason. Run runs it.
	Forge *forge.Reporter
	// StatusURL is the target URL of those statuses (the agent's page).
	StatusURL string
	// CallTimeout is what bounds each call to a daemon (the drivers'
	// --call-timeout, default 30s) and GitTimeout each git network
	// operation (--git-timeout, default 30s): a call in flight for half
	// of its timeout is reported in /status stuck (calls.go).
	CallTimeout, GitTimeout time.Duration
	// Notify, when set, hears the host's conditions (refused revision,
	// failed pass, drift left, maintenance, failure policy gave up). Run
	// runs it.
	Notify *notify.Notifier
	// HealthyWithin bounds how long a new revision may take to reach
	// converged and ready before it is quarantined and the last healthy
	// revision goes back in force (quarantine.go); <= 0 never quarantines.
	HealthyWithin time.Duration
}

// Agent is a running reconciler.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	status  *statusStore
	metrics *metrics
	trigger chan string
	// idle returns the garbage of work done outside passes (release.go).
	idle releaser

	mu                sync.Mutex // guards state, good, planned and driftSinceChanged
	state             *State
	good              *GoodRevision
	driftSinceChanged bool
	// planned is the spec the last plan of the revision plannedRev was
	// made of, selectors expanded: the resource monitor samples what the
	// selectors matched too.
	planned    *v1.HostSpec
	plannedRev string
	// targets are those of the last pass that planned, for the drift
	// watch (taken by Run).
	targets []controllers.Target

	ready     bool // a pass completed since start and the last one did not fail
	readyMu   sync.Mutex
	passCount int

	mon monitorState // the last resource figures (monitor.go)

	// failures keeps the failure policies' memory (see failure.go).
	failures *failure.Policies

	// resolver fetches, judges and loads new revisions (pass.go).
	resolver *desired.Resolver
	hookOnce sync.Once
	hook     *webhook // one for every listener, so replays and refusals count once
	// calls keeps the calls to daemons and the git server in flight, for
	// /status stuck (calls.go).
	calls *callWatch
}

// New prepares an agent; Run starts it.
func New(cfg Config) (*Agent, error) {
	if cfg.Source == nil || cfg.Engine == nil || cfg.Host == "" {
		return nil, errors.New("agent: source, engine and host are required")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("agent: --state-dir is required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = min(max(cfg.Interval, 10*time.Second), 60*time.Second)
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.GitTimeout <= 0 {
		cfg.GitTimeout = source.DefaultTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Reach.IsZero() {
		cfg.Reach = v1.DefaultReach() // a stock host's, not "nothing allowed"
	}
	a := &Agent{
		cfg:      cfg,
		log:      cfg.Log,
		status:   newStatusStore(cfg.Host, cfg.Source.String()),
		metrics:  newMetrics(),
		trigger:  make(chan string, 1),
		idle:     releaser{kick: make(chan struct{}, 1), quiet: time.Second, free: release},
		failures: failure.New(),
		resolver: &desired.Resolver{Source: cfg.Source, Host: cfg.Host, Trust: cfg.Trust, Timeout: cfg.FetchTimeout, Limits: cfg.Limits, Reach: &cfg.Reach},
		calls:    newCallWatch(),
	}
	a.metrics.reg.MustRegister(resourceMetrics{a}, stuckMetrics{a.calls})
	a.metrics.host.WithLabelValues(cfg.Host).Set(1)
	if as := cfg.Autoscaler; as != nil {
		eng := *cfg.Engine
		eng.Sizer = as
		a.cfg.Engine = &eng
		last := map[string]int32{}
		as.OnDecision = func(ctx context.Context, st autoscale.Status) {
			a.metrics.autoscaleDesired.WithLabelValues(st.Service).Set(float64(st.Desired))
			a.metrics.autoscaleReady.WithLabelValues(st.Service, st.Queue).Set(float64(st.Ready))
			a.metrics.autoscaleConsumers.WithLabelValues(st.Service, st.Queue).Set(float64(st.Consumers))
			if st.Error != "" {
				a.metrics.autoscaleErrors.WithLabelValues(st.Service).Inc()
			}
			if prev, ok := last[st.Service]; !ok || prev != st.Desired {
				id, rev := "", ""
				if p := passOf(ctx); p != nil {
					id, rev = p.id, p.rev
				}
				a.event(status.Event{Type: names.EventAutoscale, Pass: id, Revision: rev, Subject: st.Service, From: fmtCount(prev, ok), To: fmtCount(st.Desired, true),
					Message: fmt.Sprintf("%s (queue %s: %d ready, %d consumers)", st.Reason, st.Queue, st.Ready, st.Consumers)})
			}
			last[st.Service] = st.Desired
			a.status.update(func(s *status.Status) {
				s.Autoscale = as.Statuses()
			})
		}
	}
	// Every driver call is watched, so /status can say which daemon does
	// not answer while the call still waits (the drivers bound it).
	eng := *a.cfg.Engine
	eng.Drivers = watchDrivers(eng.Drivers, a.calls, stuckAfter(cfg.CallTimeout))
	a.cfg.Engine = &eng
	return a, nil
}

func fmtCount(n int32, ok bool) string {
	if !ok {
		return ""
	}
	return fmt.Sprint(n)
}

// Trigger asks for a pass as soon as the current one ends. Bursts coalesce:
// while one pass is pending, more triggers add nothing.
func (a *Agent) Trigger(reason string) {
	select {
	case a.trigger <- reason:
	default:
	}
}

// Run starts the agent and blocks until ctx ends (SIGTERM): the pass in
// flight finishes its current action or is abandoned between actions, the
// state is written, and Run returns nil.
func (a *Agent) Run(ctx context.Context) error {
	a.loadState()
	var srvErr chan error
	if a.cfg.Listen != "" || a.cfg.WebhookListen != "" {
		srv, err := a.serve()
		if err != nil {
			return err
		}
		srvErr = srv.errc
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			srv.shutdown(sctx)
		}()
	}
	go a.idle.run(ctx)
	if a.cfg.Monitor != nil {
		go a.monitorLoop(ctx)
	}
	if a.cfg.Forge != nil {
		go a.cfg.Forge.Run(ctx)
	}
	if a.cfg.Notify != nil {
		go a.cfg.Notify.Run(ctx)
	}
	a.log.Info("agent started", "pass", "-", "revision", a.goodID(), "host", a.cfg.Host,
		"source", a.cfg.Source.String(), "interval", a.cfg.Interval.String(), "listen", a.cfg.Listen)

	trigger := names.TriggerStartup
	backoff := time.Duration(0)
	first := true // the next interval wait is the first since start
	// Drift seen when it happens: the drivers' event streams say when
	// someone else changes what the pass's targets own, and a pass follows
	// (debounced), the same level-based pass as any other.
	drift := make(chan struct{}, 1)
	stopDrift := func() {}
	defer func() { stopDrift() }()
	var lastDrift time.Time
	for {
		err := a.pass(ctx, trigger)
		if ctx.Err() != nil {
			break
		}
		if ts := a.takeTargets(); ts != nil {
			stopDrift()
			stopDrift = a.cfg.Engine.WatchDrift(ts, drift)
		}
		if trigger == names.TriggerDriftEvent {
			lastDrift = time.Now()
		}
		wait := NextWait(a.cfg.Interval, first, mathrand.Float64())
		if err != nil && !errors.Is(err, controllers.ErrTerminal) {
			// Back off on errors: 1s, 2s, 4s ... capped at the interval. A
			// terminal error (a driver not wired in) is not retried sooner
			// than the interval: nothing changes until the host's
			// configuration does.
			backoff = min(max(2*backoff, time.Second), a.cfg.Interval)
			wait = backoff
			trigger = names.TriggerRetry
		} else {
			backoff = 0
			trigger = names.TriggerInterval
			first = false
		}
		a.status.update(func(s *status.Status) { s.Phase = "idle" })
		release()
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case reason := <-a.trigger:
			trigger = reason
		case <-drift:
			if a.driftSettle(ctx, lastDrift) {
				trigger = names.TriggerDriftEvent
			}
		case <-timer.C:
		case err := <-srvErr:
			timer.Stop()
			return fmt.Errorf("http server: %w", err)
		}
		timer.Stop()
		if ctx.Err() != nil {
			break
		}
	}
	a.status.update(func(s *status.Status) { s.Phase = "stopping" })
	a.mu.Lock()
	err := a.saveLocked()
	a.mu.Unlock()
	if err != nil {
		a.log.Error("writing state on shutdown", "pass", "-", "revision", a.goodID(), "err", err)
	}
	a.log.Info("agent stopped", "pass", "-", "revision", a.goodID())
	return nil
}

// Drift passes: a burst of events (a scale's update and its containers, a
// unit's job and properties) gathers for driftDebounce before the pass, and
// drift passes start at least driftMinGap apart, so a unit that systemd
// restarts over and over does not keep the agent in passes.
const (
	driftDebounce = 250 * time.Millisecond
	driftMinGap   = time.Second
)

// driftSettle waits out the debounce (and the gap since the last drift
// pass, lastDrift); false when ctx ended meanwhile.
func (a *Agent) driftSettle(ctx context.Context, lastDrift time.Time) bool {
	wait := max(driftDebounce, driftMinGap-time.Since(lastDrift))
	select {
	case <-ctx.Done():
		return false
	case <-time.After(wait):
		return true
	}
}

// takeTargets returns the targets of the last pass that planned, once.
func (a *Agent) takeTargets() []controllers.Target {
	a.mu.Lock()
	defer a.mu.Unlock()
	ts := a.targets
	a.targets = nil
	return ts
}

// NextWait is how long the agent waits for its next pass when nothing
// triggers one, for a random r in [0, 1). The first wait since start is
// spread over a whole interval (0.5 to 1.5 times it), later ones vary by
// ±10%. Agents restarted together (a fleet-wide upgrade) then poll the git
// server evenly from their second poll on: the phases are uniform over one
// interval, and later jitter keeps them so. With ±10% alone, the second
// polls of agents started together fall in a fifth of an interval, five
// times the mean load, and stay bunched for many intervals (hack/bench
// scenario 7, docs/BENCHMARKS.md "The git server's side of a fleet"). The
// startup pass itself is not delayed: a restarted agent looks at git at
// once.
func NextWait(d time.Duration, first bool, r float64) time.Duration {
	if first {
		return time.Duration(float64(d) * (0.5 + r))
	}
	return time.Duration(float64(d) * (0.9 + 0.2*r))
}

func newPassID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}

func (a *Agent) goodID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.good == nil {
		return ""
	}
	return source.Short(a.good.Revision.ID)
}

// goodRef is the full ref of the revision in force ("refs/heads/main"),
// "" before the first one: the ref the webhook accepts pushes to.
func (a *Agent) goodRef() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.good == nil {
		return ""
	}
	return a.good.Revision.Ref
}

// loadState restores the revision in force from --state-dir. A corrupt file
// is reported and ignored: the agent rebuilds from git rather than trust it.
func (a *Agent) loadState() {
	st, err := LoadState(a.cfg.StateDir)
	if err != nil {
		a.log.Error("state file unusable, rebuilding from git", "pass", "-", "revision", "", "err", err)
		a.event(status.Event{Type: names.EventStateCorrupt, Message: err.Error()})
		st = &State{}
	}
	if st.DriftSince == nil {
		st.DriftSince = map[string]time.Time{}
	}
	if g := st.Good; g != nil {
		if errs := v1.CheckReach(&g.Spec, func(string) v1.Pos { return v1.Pos{File: "revision " + source.Short(g.Revision.ID) + " (state dir)"} }, a.cfg.Reach); len(errs) > 0 {
			msg := fmt.Sprintf("the revision in force needs more than this agent's limits allow; it is not enforced until a revision within them arrives:\n%s", errs.Error())
			a.log.Error(msg, "pass", "-", "revision", source.Short(g.Revision.ID))
			a.event(status.Event{Type: names.EventRevisionRefused, Revision: source.Short(g.Revision.ID), Message: msg})
			st.Good = nil
		}
	}
	a.mu.Lock()
	a.state = st
	a.good = st.Good
	a.mu.Unlock()
	if a.cfg.Autoscaler != nil && st.Autoscale != nil {
		a.cfg.Autoscaler.Restore(st.Autoscale)
	}
	a.failures.Restore(st.Failures)
	if st.InProgress != nil {
		msg := fmt.Sprintf("previous pass %s (revision %s, %d actions in %d stages, started %s) was interrupted; re-planning from live state",
			st.InProgress.ID, source.Short(st.InProgress.Revision), st.InProgress.Actions, st.InProgress.Stages, st.InProgress.Started.Format(time.RFC3339))
		a.log.Warn(msg, "pass", st.InProgress.ID, "revision", source.Short(st.InProgress.Revision))
		a.event(status.Event{Type: names.EventResumed, Pass: st.InProgress.ID, Revision: source.Short(st.InProgress.Revision), Message: msg})
	}
	if len(st.Quarantined) > 0 {
		q := st.Quarantined[len(st.Quarantined)-1]
		a.status.update(func(s *status.Status) { s.Quarantined, s.QuarantinedRevision = st.Quarantined, &q })
		a.setQuarantineMetrics(st.Quarantined)
	}
	if st.Good != nil {
		a.status.update(func(s *status.Status) {
			s.Revision = revisionStatus(st.Good.Revision, st.Good.Since)
			s.Revision.HealthySince, s.Revision.Reverted = st.HealthySince, st.Reverted
			s.Labels = st.Good.Labels
		})
		a.metrics.setRevision(st.Good.Revision)
	}
}

// saveLocked writes the state; the caller holds a.mu.
func (a *Agent) saveLocked() error {
	a.state.Good = a.good
	a.state.Failures = a.failures.Memory()
	if a.cfg.Autoscaler != nil {
		a.state.Autoscale = a.cfg.Autoscaler.Memory()
	}
	return SaveState(a.cfg.StateDir, a.state)
}

func (a *Agent) event(ev status.Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	a.status.event(ev)
	a.notifyEvent(ev)
}

// passRun is one pass in progress.
type passRun struct {
	id      string
	trigger string
	start   time.Time
	// base carries the pass id only, for lines that name a revision
	// themselves (fetching: the one fetched, refused or in force); log
	// carries the pass id and the revision the pass enforces, so every
	// line of a pass has each key exactly once.
	base    *slog.Logger
	log     *slog.Logger
	rev     string
	summary status.PassSummary
	// statusNote is the commit status description of a failed pass.
	statusNote string
	// driftLeft counts the differences the pass did not put right.
	driftLeft int
	// failures are the subjects the pass left failed or blocked, with why
	// (what a quarantine names).
	failures map[string]error
}

type passKey struct{}

// withPass returns ctx carrying the pass, for parts that raise events of
// it without being handed it (autoscale decisions made while planning).
func withPass(ctx context.Context, p *passRun) context.Context {
	return context.WithValue(ctx, passKey{}, p)
}

func passOf(ctx context.Context) *passRun {
	p, _ := ctx.Value(passKey{}).(*passRun)
	return p
}

// pass runs one pass end to end. Its error decides the backoff; the status
// is written on every path.
func (a *Agent) pass(ctx context.Context, trigger string) (err error) {
	p := &passRun{id: newPassID(), trigger: trigger, start: time.Now()}
	p.base = a.log.With("pass", p.id)
	p.log = p.base.With("revision", a.goodID()) // "" before the first revision
	p.summary = status.PassSummary{ID: p.id, Trigger: trigger, Start: p.start, Actions: []status.ActionOutcome{}}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("pass panicked: %v", r)
			p.summary.Result, p.summary.Error = names.ResultError, err.Error()
			p.log.Error("pass panicked", "panic", r)
		}
		a.finish(p, err)
	}()

	a.status.update(func(s *status.Status) { s.Phase = "fetching" })
	a.fetch(ctx, p)

	a.mu.Lock()
	good := a.good
	a.mu.Unlock()
	if good == nil {
		p.summary.Result = names.ResultError
		p.summary.Error = "no valid revision to enforce yet"
		return errors.New(p.summary.Error)
	}
	p.rev = source.Short(good.Revision.ID)
	p.summary.Revision = good.Revision.ID
	p.log = p.base.With("revision", p.rev)
	a.event(status.Event{Pass: p.id, Revision: p.rev, Type: names.EventPassStarted, Message: "trigger: " + trigger})

	a.status.update(func(s *status.Status) { s.Phase = "planning" })
	// What belongs to this pass travels with its context; the engine is
	// shared by every pass and never changed.
	eng := a.cfg.Engine
	fp := newFailurePass(a, p)
	ctx = engine.WithScope(withPass(ctx, p), engine.Scope{
		Log: p.log, Failures: fp, Progress: func(ev engine.Event) { a.engineEvent(p, ev) },
	})
	plan, err := eng.Plan(ctx, &good.Spec)
	if err != nil {
		p.summary.Result, p.summary.Error = names.ResultError, err.Error()
		p.log.Error("plan failed", "err", err)
		return err
	}
	a.recordPlan(p, plan)
	a.mu.Lock()
	a.planned, a.plannedRev = plan.Spec, good.Revision.ID
	a.targets = plan.Targets
	a.mu.Unlock()

	enforce := 0
	for _, act := range plan.Actions {
		if !act.Reportable() {
			enforce++
		}
	}
	if enforce > 0 {
		a.mu.Lock()
		a.state.InProgress = &PassRecord{ID: p.id, Revision: good.Revision.ID, Started: p.start, Actions: len(plan.Actions), Stages: len(plan.Stages)}
		if err := a.saveLocked(); err != nil {
			p.log.Error("recording the pass in progress", "err", err)
		}
		a.mu.Unlock()
	}
	if enforce > 0 {
		a.postStatus(good.Revision.ID, forge.StatePending, fmt.Sprintf("applying %d change(s) in %d stage(s)", enforce, len(plan.Stages)))
	}
	a.status.update(func(s *status.Status) { s.Phase = "applying" })
	res := eng.Apply(ctx, plan)
	fp.applied(res)
	a.recordResult(p, res)
	p.failures = res.Failures

	a.mu.Lock()
	if ctx.Err() == nil || a.state.InProgress == nil {
		a.state.InProgress = nil
	}
	if failuresChanged := a.failures.Dirty(); enforce > 0 || a.driftSinceChanged || failuresChanged {
		if err := a.saveLocked(); err != nil {
			p.log.Error("writing state", "err", err)
		}
		a.driftSinceChanged = false
	}
	a.mu.Unlock()

	switch {
	case ctx.Err() != nil:
		p.summary.Result = names.ResultAbandoned
		return ctx.Err()
	case res.Err() != nil:
		p.summary.Result, p.summary.Error = names.ResultFailed, res.Err().Error()
		p.statusNote = failureDescription(plan, res)
		return res.Err()
	case !res.Converged():
		p.summary.Result, p.summary.Error = names.ResultFailed, "declared objects are missing"
		return errors.New(p.summary.Error)
	case len(plan.Actions) == 0:
		p.summary.Result = names.ResultInSync
	default:
		p.summary.Result = names.ResultConverged
	}
	return nil
}
