package engine

import (
	"context"
	"fmt"
	"iter"
	"sort"
	"time"

	"reconciler.dev/reconciler/api/names"
	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/probe"
)

// awaitDependencies makes sure the dependencies of services about to grow
// are ready, including ones that had nothing to do in this pass.
func (p *pass) awaitDependencies(ctx context.Context, st Stage, subjects []string) {
	for subj, t := range p.services(subjects) {
		var deps []string
		for _, d := range p.graph.deps[t.Name] {
			dt := p.byName[d]
			if !p.ready[d] && dt.Replicas > 0 && !p.failed(dt.Subject()) {
				deps = append(deps, dt.Subject())
			}
		}
		if len(deps) > 0 {
			p.await(ctx, st.Number, deps, controllers.PhaseUp, nil)
		}
		for _, d := range p.graph.deps[t.Name] {
			if s := p.byName[d].Subject(); p.failed(s) {
				p.block(st, subj, s, fmt.Sprintf("its dependency %s is not ready", d), "dependency "+d+" not ready")
				break
			}
		}
	}
}

// services yields the subjects that are services, with their targets: only
// services have dependencies and dependents to wait for.
func (p *pass) services(subjects []string) iter.Seq2[string, controllers.Target] {
	return func(yield func(string, controllers.Target) bool) {
		for _, subj := range subjects {
			if t := p.targets[subj]; t.Kind == controllers.KindService && !yield(subj, t) {
				return
			}
		}
	}
}

// block fails subj because by did not get where subj needed it to be
// (reason, for the result), and tells the progress stream (message).
func (p *pass) block(st Stage, subj, by, reason, message string) {
	p.fail(subj, &BlockedError{Subject: subj, By: by, Reason: reason})
	p.emit(Event{Type: names.EventBlocked, Stage: st.Number, Subject: subj, Message: message})
}

func (p *pass) isDrained(subject string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.drained[subject]
}

// awaitDependents makes sure the dependents of services about to shrink
// are drained, including ones that have nothing to do in this pass: an
// earlier pass (or an agent killed mid-pass) sent their scale-down and
// their tasks may still be stopping. A dependent that does not drain blocks
// the service, as one that failed to drain in this pass does.
func (p *pass) awaitDependents(ctx context.Context, st Stage, subjects []string) {
	for subj, t := range p.services(subjects) {
		var wait []string
		for _, d := range p.graph.reach(t.Name, p.graph.dependents) {
			dt := p.byName[d]
			if dt.Mode != controllers.Enforce || p.failed(dt.Subject()) || p.isDrained(dt.Subject()) {
				continue
			}
			if l, ok := p.plan.Live[dt.Subject()]; ok && l.Exists && p.e.Drivers[dt.Driver].Health(dt, l).Drained {
				continue
			}
			wait = append(wait, dt.Subject())
		}
		if len(wait) > 0 {
			p.await(ctx, st.Number, wait, controllers.PhaseDown, nil)
		}
		for _, s := range wait {
			if p.failed(s) {
				name := p.targets[s].Name
				p.block(st, subj, s, fmt.Sprintf("its dependent %s did not drain", name), "dependent "+name+" did not drain")
				break
			}
		}
	}
}

// awaitServicesUp makes sure every enforced service is ready before units
// tied to maintenance come back, including services this pass did not
// touch: an earlier pass (or an agent killed mid-pass) may have scaled them
// up, and they may still be starting. One that does not become ready
// fails, which blocks the units (blockedBy).
func (p *pass) awaitServicesUp(ctx context.Context, stage int) {
	changed := map[string]bool{}
	for _, a := range p.plan.Actions {
		changed[a.Subject] = true
	}
	var wait []string
	for _, t := range p.plan.Targets {
		s := t.Subject()
		if t.Kind != controllers.KindService || t.Mode != controllers.Enforce || p.failed(s) || p.ready[t.Name] {
			continue
		}
		l, ok := p.plan.Live[s]
		if ok && !l.Exists {
			continue // reported as missing
		}
		if ok && !changed[s] && p.e.Drivers[t.Driver].Health(t, l).Ready {
			continue
		}
		wait = append(wait, s)
	}
	sort.Strings(wait)
	p.await(ctx, stage, wait, controllers.PhaseUp, nil)
}

// await waits until every subject is ready (up) or drained (down), by
// observing, then runs the ready probes of services that declare one. It
// reads when the drivers' streams say something changed (watch.go), or on
// a timer while they are not live. since, when set, are the feeds'
// positions when the subjects' actions were sent: if their streams are
// live and said nothing since, the first read is skipped (nothing can have
// changed yet).
func (p *pass) await(ctx context.Context, stage int, subjects []string, phase controllers.Phase, since marks) {
	if len(subjects) == 0 {
		return
	}
	e := p.e
	// The feeds of the drivers waited on, and one channel they all wake.
	feeds := map[*controllers.Feed]bool{}
	subjByFeed := map[*controllers.Feed][]string{}
	for _, s := range subjects {
		if f := p.feeds[p.targets[s].Driver]; f != nil {
			feeds[f] = true
			subjByFeed[f] = append(subjByFeed[f], s)
		}
	}
	wake := make(chan struct{}, 1)
	for f := range feeds {
		defer f.Subscribe(wake, subjByFeed[f], false)()
	}
	// streaming is true when every subject's driver has a live stream.
	streaming := func() bool {
		for _, s := range subjects {
			f := p.feeds[p.targets[s].Driver]
			if f == nil || !f.Live() {
				return false
			}
		}
		return true
	}
	skipRead := since != nil && streaming()
	if skipRead {
		for f, m := range since {
			if feeds[f] && f.ChangedSince(m, subjByFeed[f]) {
				skipRead = false
			}
		}
	}
	rechecks := 0 // reads since the last wake-up, each waiting twice as long
	// Most drains and starts end within a few seconds, so the first
	// seconds of a wait look every 100 ms (a stage waited on ends that much
	// sooner, and the next one starts), then every 250 ms.
	interval, fast := e.PollInterval, time.Time{}
	if interval <= 0 {
		interval, fast = 250*time.Millisecond, time.Now().Add(3*time.Second)
	}
	step := func() time.Duration {
		if time.Now().Before(fast) {
			return 100 * time.Millisecond
		}
		return interval
	}
	pending := map[string]time.Time{} // subject -> deadline
	for _, s := range subjects {
		if !p.failed(s) {
			pending[s] = time.Now().Add(p.waitTimeout(p.targets[s], phase))
		}
	}
	lastReason := map[string]string{}
	// While observing fails (the daemon behind a driver is down or
	// restarting), the wait goes on until the deadline, as it would for a
	// slow drain, but looks again less and less often (up to 5 s): a dockerd
	// that is coming back is not hammered, and once it answers the wait
	// resumes where it was, without a step repeated or skipped.
	const maxBackoff = 5 * time.Second
	sleep := interval
	for len(pending) > 0 {
		if skipRead {
			skipRead = false
			waitWake(ctx, wake, watchSafety, settleFor(phase))
			continue
		}
		var ts []controllers.Target
		for s := range pending {
			ts = append(ts, p.targets[s])
		}
		live, err := e.observe(controllers.WithWaiting(ctx), ts)
		if err == nil {
			p.mu.Lock()
			for s, l := range live {
				p.res.Live[s] = l
			}
			p.mu.Unlock()
		}
		for s, deadline := range pending {
			t := p.targets[s]
			var h controllers.Health
			if err == nil {
				h = e.Drivers[t.Driver].Health(t, live[s])
			} else {
				h.Reason = err.Error()
			}
			done := (phase == controllers.PhaseUp && h.Ready) || (phase == controllers.PhaseDown && h.Drained)
			if done {
				delete(pending, s)
				if phase == controllers.PhaseUp {
					p.probe(ctx, stage, t)
				} else {
					p.mu.Lock()
					p.drained[s] = true
					p.mu.Unlock()
					p.emit(Event{Type: names.EventDrained, Stage: stage, Subject: s})
				}
				continue
			}
			if phase == controllers.PhaseUp && err == nil && t.Failure != "" && live[s].Failing != "" {
				// A service its failure policy handles is judged at once:
				// waiting out the ready timeout would only delay the report
				// (and the next restart or standby).
				delete(pending, s)
				cause := "failing: " + live[s].Failing
				if t.Failure == controllers.FailureGaveUp {
					cause += " (onFailure gave up: its restart limit is reached)"
				}
				p.fail(s, p.notReady(ctx, t, fmt.Errorf("%s: %s", s, cause)))
				p.emit(Event{Type: names.EventFailed, Stage: stage, Subject: s, Message: cause})
				continue
			}
			if ctx.Err() != nil || time.Now().After(deadline) {
				delete(pending, s)
				want := "ready"
				if phase == controllers.PhaseDown {
					want = "drained"
				}
				cause := fmt.Sprintf("not %s within %s: %s", want, p.waitTimeout(t, phase), h.Reason)
				if ctx.Err() != nil {
					cause = fmt.Sprintf("abandoned while waiting to be %s: %s", want, h.Reason)
				}
				err := fmt.Errorf("%s: %s", s, cause)
				if phase == controllers.PhaseUp && ctx.Err() == nil {
					err = p.notReady(ctx, t, err)
				}
				p.fail(s, err)
				p.emit(Event{Type: names.EventFailed, Stage: stage, Subject: s, Message: cause})
				continue
			}
			if h.Reason != lastReason[s] {
				lastReason[s] = h.Reason
				p.emit(Event{Type: names.EventWaiting, Stage: stage, Subject: s, Message: h.Reason})
			}
		}
		if len(pending) == 0 {
			return
		}
		if err == nil && streaming() {
			// Read again on the next event; soon anyway after one that
			// did not settle it, and within watchSafety at the latest.
			within := min(watchRecheck<<rechecks, watchSafety)
			rechecks++
			if waitWake(ctx, wake, within, settleFor(phase)) {
				rechecks = 0
			}
			continue
		}
		if err != nil {
			sleep = min(2*sleep, maxBackoff)
		} else {
			sleep = step()
		}
		select {
		case <-ctx.Done():
		case <-time.After(sleep):
		}
	}
}

// waitWake waits for a wake-up (then lets the burst settle, see settleFor)
// or for within to pass; true when woken. Wake-ups that come while it
// settles are taken with it: the read that follows sees them, so they
// must not start another read at once.
func waitWake(ctx context.Context, wake <-chan struct{}, within, settle time.Duration) bool {
	t := time.NewTimer(within)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return false
	case <-wake:
	}
	select {
	case <-ctx.Done():
	case <-time.After(settle):
	}
	select {
	case <-wake:
	default:
	}
	return true
}

// settleFor is how long a wait lets events gather before it reads. A wait
// for services to come up is woken by their containers starting, but Swarm
// counts a task running only once its node has reported it (the dispatcher
// batches those reports), a few hundred milliseconds later: a read at once
// would still see it not running, and the next container of the stage
// would wake another. A drain's count drops as soon as the scale-down is
// in, so it reads after a short settle. It is pure.
func settleFor(phase controllers.Phase) time.Duration {
	if phase == controllers.PhaseUp {
		return watchStartSettle
	}
	return watchSettle
}

// probe runs a service's ready probe after its replicas run.
func (p *pass) probe(ctx context.Context, stage int, t controllers.Target) {
	s := t.Subject()
	if t.Kind == controllers.KindService && t.Service.Ready != nil && t.Replicas > 0 {
		p.emit(Event{Type: names.EventWaiting, Stage: stage, Subject: s, Message: "probe " + probe.Describe(t.Service.Ready)})
		if err := probe.Wait(ctx, t.Service.Ready); err != nil {
			err = fmt.Errorf("%s: ready probe failed: %w", s, err)
			p.fail(s, p.notReady(ctx, t, err))
			p.emit(Event{Type: names.EventFailed, Stage: stage, Subject: s, Message: err.Error()})
			return
		}
	}
	if t.Kind == controllers.KindService {
		p.mu.Lock()
		p.ready[t.Name] = true
		p.mu.Unlock()
	}
	p.emit(Event{Type: names.EventReady, Stage: stage, Subject: s})
}

// notReady lets the driver act on a start that never became ready, and
// returns the failure to record (with what the driver did about it).
func (p *pass) notReady(ctx context.Context, t controllers.Target, cause error) error {
	h, ok := p.e.Drivers[t.Driver].(controllers.NotReadyHandler)
	p.mu.Lock()
	started := p.started[t.Subject()]
	p.mu.Unlock()
	// Only a start made by this pass is undone: a service that was already
	// up and merely looks unwell is not taken down by a readiness check.
	if !ok || !started || t.Kind != controllers.KindService || t.Mode != controllers.Enforce {
		return cause
	}
	did, err := h.NotReady(ctx, t, cause)
	if err != nil {
		return fmt.Errorf("%w; and then: %v", cause, err)
	}
	if did != "" {
		return fmt.Errorf("%w; %s", cause, did)
	}
	return cause
}

// waitTimeout is how long an object may take to become ready or drained.
func (p *pass) waitTimeout(t controllers.Target, phase controllers.Phase) time.Duration {
	ready, slack := p.e.ReadyTimeout, p.e.DrainSlack
	if ready <= 0 {
		ready = v1.DefaultProbeTimeout
	}
	if slack <= 0 {
		slack = 30 * time.Second
	}
	if t.Kind == controllers.KindUnit {
		return ready
	}
	if phase == controllers.PhaseDown {
		// Every replica may use its full stop timeout: a scale-down of a
		// template or group stops them one by one.
		n := int32(1)
		if l, ok := p.plan.Live[t.Subject()]; ok && l.Replicas > t.Replicas {
			n = l.Replicas - t.Replicas
		}
		return time.Duration(n)*t.Service.StopTimeout.Duration + slack
	}
	return ready
}

// verifyAll checks, after the last stage, that every enforced object with
// nothing left to do is ready too: apply succeeds only on a host that runs as
// declared, not merely one that was sent the right commands.
//
// Objects the plan did not touch are judged first from the observation the
// plan was made from, so a pass with nothing to do reads each driver once;
// only those not ready then are observed again (they may be starting).
func (p *pass) verifyAll(ctx context.Context) {
	changed, reported := map[string]bool{}, map[string]bool{}
	for _, a := range p.plan.Actions {
		changed[a.Subject] = true
		if a.Reportable() {
			reported[a.Subject] = true // missing, unsupported, report-only: said already
		}
	}
	var up []string
	for _, t := range p.plan.Targets {
		s := t.Subject()
		if t.Mode != controllers.Enforce || p.failed(s) || reported[s] || p.ready[t.Name] && t.Kind == controllers.KindService {
			continue
		}
		l, ok := p.plan.Live[s]
		if ok && !l.Exists {
			continue // reported as missing already
		}
		if ok && !changed[s] && p.e.Drivers[t.Driver].Health(t, l).Ready {
			p.probe(ctx, 0, t)
			continue
		}
		// One this pass saw drained is judged from that read: a read
		// again would say the same (its drift would be the next pass's).
		p.mu.Lock()
		seen, drained := p.res.Live[s], p.drained[s]
		p.mu.Unlock()
		if drained && p.e.Drivers[t.Driver].Health(t, seen).Ready {
			p.probe(ctx, 0, t)
			continue
		}
		up = append(up, s)
	}
	sort.Strings(up)
	p.await(ctx, 0, up, controllers.PhaseUp, nil)
}
