//go:build e2e

package e2e

// Drift seen when it happens: with --interval 30s, a manual change to a
// managed service or timer is put right from the daemon's own event stream
// (Docker /events, systemd's JobRemoved), not on the next interval; and a
// stream cut by a dockerd restart mid-wait costs the wait its speed only.

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"reconciler.dev/reconciler/agent"
	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/controllers/failure"
)

// driftBound is the bound the e2e tests hold a revert to: about ten times
// the goal (2 s), for a 2-core machine shared by many tests. The figures
// they print are the daemons' own records, not the test's clock.
const driftBound = 20 * time.Second

// scaleByHand sets a service's replicas as `docker service scale` does.
func (f *fpFixture) scaleByHand(name string, n uint64) time.Time {
	f.t.Helper()
	return scaleByHand(f.t, f.docker, name, n)
}

// scaleByHand sets the replicas of the Swarm service name (or ID) as an
// operator's `docker service scale` does, and returns when it did.
func scaleByHand(t testing.TB, docker *client.Client, name string, n uint64) time.Time {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	s, _, err := docker.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatalf("inspect %s: %v", name, err)
	}
	s.Spec.Mode.Replicated.Replicas = &n
	if _, err := docker.ServiceUpdate(ctx, s.ID, s.Version, s.Spec, swarm.ServiceUpdateOptions{}); err != nil {
		t.Fatalf("scaling %s by hand: %v", name, err)
	}
	return time.Now()
}

// scaleReverted finds in Docker's own service events the update that scaled
// service from want to n and the first after it that scaled it from n back
// to want, and returns when Docker made each.
func (el *eventLog) scaleReverted(service string, n, want int) (manual, back time.Time, ok bool) {
	el.mu.Lock()
	defer el.mu.Unlock()
	for _, m := range el.events {
		a := m.Actor.Attributes
		if m.Type != events.ServiceEventType || m.Action != events.ActionUpdate || a["name"] != service {
			continue
		}
		at := time.Unix(0, m.TimeNano)
		switch {
		case manual.IsZero() && a["replicas.old"] == fmt.Sprint(want) && a["replicas.new"] == fmt.Sprint(n):
			manual = at
		case !manual.IsZero() && a["replicas.old"] == fmt.Sprint(n) && a["replicas.new"] == fmt.Sprint(want):
			return manual, at, true
		}
	}
	return manual, time.Time{}, false
}

// unitProperty reads one property of a unit over D-Bus.
func unitProperty(t *testing.T, conn *sddbus.Conn, unit, prop string) any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := conn.GetUnitPropertyContext(ctx, unit, prop)
	if err != nil {
		t.Fatalf("%s %s over D-Bus: %v", unit, prop, err)
	}
	return p.Value.Value()
}

// unitStamp reads a unit's timestamp property (InactiveEnterTimestamp,
// ActiveEnterTimestamp: microseconds since the epoch, systemd's own record
// of the transition) over D-Bus.
func unitStamp(t *testing.T, conn *sddbus.Conn, unit, prop string) time.Time {
	t.Helper()
	us, ok := unitProperty(t, conn, unit, prop).(uint64)
	if !ok || us == 0 {
		t.Fatalf("%s %s = %v, want a time", unit, prop, unitProperty(t, conn, unit, prop))
	}
	return time.UnixMicro(int64(us))
}

// awaitRevert waits until cond holds. When it first did is not a figure:
// each look takes a call (tens of ms, more under load); the figures come
// from the daemons' own records.
func awaitRevert(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reverted within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// driftPassAfter finds a pass triggered by drift-event started after since.
func driftPassAfter(st agent.Status, since time.Time) (agent.PassSummary, bool) {
	for _, p := range st.Passes {
		if p.Trigger == names.TriggerDriftEvent && p.Start.After(since) {
			return p, true
		}
	}
	return agent.PassSummary{}, false
}

// passPhases tells where a pass's time went, from the agent's own events:
// the fetch (its start to its pass-started event) and when each action was
// sent.
func passPhases(st agent.Status, p agent.PassSummary) string {
	var b strings.Builder
	for _, e := range st.Events {
		if e.Pass != p.ID {
			continue
		}
		switch e.Type {
		case names.EventPassStarted:
			fmt.Fprintf(&b, "pass-started (after the fetch: none in a drift pass) at +%s", e.Time.Sub(p.Start).Round(time.Millisecond))
		case names.EventAction:
			fmt.Fprintf(&b, ", %s sent at +%s", e.Subject, e.Time.Sub(p.Start).Round(time.Millisecond))
		}
	}
	return b.String()
}

// awaitDriftPass waits until a drift-event pass started after since has
// finished, and returns it.
func awaitDriftPass(t *testing.T, a *agentProc, since time.Time) agent.PassSummary {
	t.Helper()
	var p agent.PassSummary
	eventually(t, 10*time.Second, "a finished pass with trigger "+names.TriggerDriftEvent, func() error {
		var ok bool
		if p, ok = driftPassAfter(statusOf(t, a.Addr), since); !ok {
			return fmt.Errorf("none after %s", since.Format("15:04:05.000"))
		}
		return nil
	})
	return p
}

func TestEventsDriftRevertedAtOnce(t *testing.T) {
	f := deployFactoryProxy(t)
	bus := systemdConn(t)
	a := startAgent(t, agentConfig{Source: f.repo.HTTPURL, Interval: "30s"})
	awaitConverged(t, a, fpHead(f), time.Minute)
	expectTimerState(t, "enabled", "active")
	time.Sleep(500 * time.Millisecond) // the streams are up once the first pass has run
	ev := watchDockerEvents(t, f.docker)

	// A manual `docker service scale factory-proxy=3`, timed by Docker's own
	// service events: the update to 3 and the one back to 1.
	f.scaleByHand("factory-proxy", 3)
	awaitRevert(t, "factory-proxy scaled to 3 by hand", driftBound, func() bool { return f.specReplicas("factory-proxy") == 1 })
	var scaled, back time.Time
	eventually(t, 10*time.Second, "Docker's events of the scale to 3 and back to 1", func() error {
		var ok bool
		if scaled, back, ok = ev.scaleReverted("factory-proxy", 3, 1); !ok {
			return fmt.Errorf("not both among:\n%s", ev.summary())
		}
		return nil
	})
	swarmRevert := back.Sub(scaled)
	p := awaitDriftPass(t, a, scaled)
	t.Logf("FIGURE swarm: manual scale of factory-proxy to 3 at %s, back to 1 at %s (Docker's events): reverted in %s (interval 30s; goal < 2s); the drift-event pass started %s after the scale and took %s",
		scaled.Format("15:04:05.000"), back.Format("15:04:05.000"), swarmRevert.Round(time.Millisecond),
		p.Start.Sub(scaled).Round(time.Millisecond), p.End.Sub(p.Start).Round(time.Millisecond))
	t.Logf("the swarm drift pass: %s", passPhases(statusOf(t, a.Addr), p))
	if swarmRevert <= 0 || swarmRevert > driftBound {
		t.Errorf("manual scale reverted in %s, want within %s", swarmRevert, driftBound)
	}
	if len(p.Actions) != 1 || p.Actions[0].Subject != "swarm/factory-proxy" {
		t.Errorf("the drift pass did %+v, want the one scale of swarm/factory-proxy", p.Actions)
	}
	f.expectLive(ctxT(t, time.Minute), 30*time.Second, fpAll(1))
	// Drift passes start at least 1 s apart (agent.driftMinGap): the stop
	// comes after that, so its figure is its own path's alone.
	time.Sleep(time.Until(p.Start.Add(time.Second)))

	// A manual `systemctl stop` of the housekeeping timer, timed by
	// systemd's own records: the timer's InactiveEnterTimestamp (the stop)
	// and ActiveEnterTimestamp (the agent's start).
	inSystemd(t, "systemctl", "stop", fpTimer)
	awaitRevert(t, "timer stopped by hand", driftBound, func() bool { return unitProperty(t, bus, fpTimer, "ActiveState") == "active" })
	stopped, started := unitStamp(t, bus, fpTimer, "InactiveEnterTimestamp"), unitStamp(t, bus, fpTimer, "ActiveEnterTimestamp")
	unitRevert := started.Sub(stopped)
	tp := awaitDriftPass(t, a, stopped)
	t.Logf("FIGURE systemd: manual stop of %s at %s, active again at %s (systemd's timestamps): reverted in %s (interval 30s; goal < 2s); the drift-event pass started %s after the stop and took %s",
		fpTimer, stopped.Format("15:04:05.000000"), started.Format("15:04:05.000000"), unitRevert.Round(time.Millisecond),
		tp.Start.Sub(stopped).Round(time.Millisecond), tp.End.Sub(tp.Start).Round(time.Millisecond))
	t.Logf("the systemd drift pass: %s", passPhases(statusOf(t, a.Addr), tp))
	if unitRevert <= 0 || unitRevert > driftBound {
		t.Errorf("manual stop reverted in %s, want within %s", unitRevert, driftBound)
	}
	if len(tp.Actions) != 1 || tp.Actions[0].Subject != "unit/"+fpTimer {
		t.Errorf("the drift pass did %+v, want the one start of unit/%s", tp.Actions, fpTimer)
	}

	// Nothing else: the agent's own writes raised no drift pass.
	time.Sleep(2 * time.Second)
	n := 0
	for _, p := range statusOf(t, a.Addr).Passes {
		if p.Trigger == names.TriggerDriftEvent {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d drift-event passes, want 2 (one per manual change): %+v", n, statusOf(t, a.Addr).Passes)
	}
}

// awaitRestartPass waits until /status holds a failure-policy restart of
// subject, and returns the status and the pass that restarted.
func awaitRestartPass(t *testing.T, a *agentProc, subject string) (agent.Status, agent.PassSummary) {
	t.Helper()
	var st agent.Status
	var pass agent.PassSummary
	eventually(t, 10*time.Second, "the policy's restart of "+subject+" in /status", func() error {
		var err error
		if st, err = tryAgentStatus(a.Addr); err != nil {
			return err
		}
		for _, ev := range policyEvents(st, subject) {
			if ev.Field != failure.ActRestart {
				continue
			}
			for _, p := range st.Passes {
				if p.ID == ev.Pass {
					pass = p
					return nil
				}
			}
		}
		return fmt.Errorf("events so far:%s", describeEvents(policyEvents(st, subject)))
	})
	return st, pass
}

// expectCrashPass checks that a crash's restart came in a drift-event pass,
// took after the crash, within driftBound.
func expectCrashPass(t *testing.T, pass agent.PassSummary, took time.Duration) {
	t.Helper()
	if pass.Trigger != names.TriggerDriftEvent {
		t.Errorf("the restart came in pass %s with trigger %q, want %s", pass.ID, pass.Trigger, names.TriggerDriftEvent)
	}
	if took <= 0 || took > driftBound {
		t.Errorf("restarted %s after the crash, want within %s", took, driftBound)
	}
}

// TestEventsCrashWakesFailurePolicy: with --interval 30s, a managed unit
// that fails on its own (its process killed: no job, nobody's doing) is
// restarted by its failure policy from the signal stream, in a drift-event
// pass, not with the interval; timed by systemd's own records (the unit's
// InactiveEnterTimestamp when it failed, ActiveEnterTimestamp when the
// policy's restart brought it back).
func TestEventsCrashWakesFailurePolicy(t *testing.T) {
	name := uniqueName("fx-crash")
	unit := fxUnit(t, name, "WORKER_FAIL_START=0\n")
	bus := systemdConn(t)
	src := fxSource(t, fmt.Sprintf(`    - name: %s
      driver: systemd
      replicas: 1
      onFailure: {restart: {limit: 3, window: 10m}}
`, name))
	a := startAgent(t, agentConfig{Source: src, Host: fxHost, Interval: "30s"})
	eventually(t, time.Minute, unit+" started by the agent's first pass", func() error {
		st, err := tryAgentStatus(a.Addr)
		if err != nil {
			return err
		}
		if lp := st.LastPass; lp == nil || lp.Result != "converged" {
			return fmt.Errorf("last pass %+v", lp)
		}
		if s := unitProperty(t, bus, unit, "ActiveState"); s != "active" {
			return fmt.Errorf("%s is %v", unit, s)
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond) // the streams are up once the first pass has run

	// The crash: its process killed, as by the OOM killer.
	up := unitStamp(t, bus, unit, "ActiveEnterTimestamp")
	inSystemd(t, "systemctl", "kill", "--signal=KILL", unit)
	awaitRevert(t, unit+" crashed", driftBound, func() bool {
		return unitProperty(t, bus, unit, "ActiveState") == "active" && unitStamp(t, bus, unit, "ActiveEnterTimestamp").After(up)
	})
	failed, back := unitStamp(t, bus, unit, "InactiveEnterTimestamp"), unitStamp(t, bus, unit, "ActiveEnterTimestamp")
	if !failed.After(up) {
		t.Fatalf("%s: InactiveEnterTimestamp %s not after its start at %s: it never went down", unit, failed, up)
	}
	took := back.Sub(failed)

	st, pass := awaitRestartPass(t, a, "systemd/"+name)
	t.Logf("FIGURE crash: %s failed at %s, active again at %s (systemd's timestamps): restarted by its policy in %s (interval 30s); the pass (trigger %s) started %s after the crash",
		unit, failed.Format("15:04:05.000000"), back.Format("15:04:05.000000"), took.Round(time.Millisecond), pass.Trigger, pass.Start.Sub(failed).Round(time.Millisecond))
	expectCrashPass(t, pass, took)
	if f, _ := failureOf(st, name); len(f.Restarts) != 1 {
		t.Errorf("failure status %+v, want the one restart counted", f)
	}
}

// TestEventsSwarmCrashWakesFailurePolicy: with --interval 30s, a swarm
// service whose task's container dies with an error (SIGQUIT: the Go worker
// exits 2) twice is failing (2 failed tasks), and the second death wakes
// the pass whose policy forces an update; timed by Docker's own records
// (the die event, the service's UpdatedAt after the forced update).
func TestEventsSwarmCrashWakesFailurePolicy(t *testing.T) {
	docker := dockerClient(t)
	name := uniqueName("fx-swarm-crash")
	createService(t, docker, name, 1)
	t.Cleanup(func() { removeServices(t, docker, []string{name}) })
	src := fxSource(t, fmt.Sprintf("    - {name: %s, replicas: 1, onFailure: {restart: {limit: 2, window: 10m}}}\n", name))
	a := startAgent(t, agentConfig{Source: src, Host: fxHost, Interval: "30s"})
	ev := watchDockerEvents(t, docker)
	// crash kills the task's running container with SIGQUIT once one runs,
	// and returns when Docker said it died.
	killed := map[string]bool{}
	crash := func(n int) time.Time {
		var id string
		eventually(t, 30*time.Second, fmt.Sprintf("a running container of %s (crash %d)", name, n), func() error {
			cs, err := docker.ContainerList(ctxT(t, 10*time.Second), container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", "com.docker.swarm.service.name="+name))})
			if err != nil {
				return err
			}
			for _, c := range cs {
				if c.State == container.StateRunning && !killed[c.ID] {
					id = c.ID
					killed[id] = true
					return nil
				}
			}
			return fmt.Errorf("none runs (%d listed)", len(cs))
		})
		if err := docker.ContainerKill(ctxT(t, 10*time.Second), id, "QUIT"); err != nil {
			t.Fatalf("killing %s: %v", id, err)
		}
		var died time.Time
		eventually(t, 10*time.Second, "Docker's die event of "+id, func() error {
			dies := ev.serviceEvents(name, string(events.ActionDie), time.Time{}, time.Now().Add(time.Minute))
			if len(dies) < n {
				return fmt.Errorf("%d die events", len(dies))
			}
			died = dies[n-1]
			return nil
		})
		return died
	}
	eventually(t, time.Minute, "the agent's first pass", func() error {
		st, err := tryAgentStatus(a.Addr)
		if err != nil {
			return err
		}
		if lp := st.LastPass; lp == nil || (lp.Result != "converged" && lp.Result != "in-sync") {
			return fmt.Errorf("last pass %+v", lp)
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond) // the streams are up once the first pass has run
	crash(1)
	died := crash(2)
	var restarted time.Time
	eventually(t, driftBound, "the policy's forced update of "+name, func() error {
		svc, _, err := docker.ServiceInspectWithRaw(ctxT(t, 10*time.Second), name, swarm.ServiceInspectOptions{})
		if err != nil {
			return err
		}
		if svc.Spec.TaskTemplate.ForceUpdate == 0 {
			return fmt.Errorf("ForceUpdate %d", svc.Spec.TaskTemplate.ForceUpdate)
		}
		restarted = svc.UpdatedAt
		return nil
	})
	took := restarted.Sub(died)
	_, pass := awaitRestartPass(t, a, "swarm/"+name)
	t.Logf("FIGURE swarm crash: %s's task died (second time) at %s, forced update at %s (Docker's die event, UpdatedAt): in %s (interval 30s); the pass (trigger %s) started %s after the death",
		name, died.Format("15:04:05.000"), restarted.Format("15:04:05.000"), took.Round(time.Millisecond), pass.Trigger, pass.Start.Sub(died).Round(time.Millisecond))
	expectCrashPass(t, pass, took)
}

// TestFaultDockerEventStreamCutMidWait restarts dockerd while a pass waits
// for factory-proxy and reference-BL to drain (each takes 3 s to stop):
// the stream breaks, the wait goes on by polling and finishes, the broker
// goes down after its dependents drained, and the stream comes back (a
// manual scale afterwards is reverted by a drift-event pass, with
// --interval 30s).
func TestFaultDockerEventStreamCutMidWait(t *testing.T) {
	holdDaemons(t, true) // it restarts dockerd, which every test uses
	f := deployFactoryProxy(t)
	slowStopServices(t, f, 3*time.Second)
	secret, secretFile := newWebhookSecret(t)
	a := startAgent(t, agentConfig{Source: f.repo.HTTPURL, Interval: "30s", Args: []string{"--webhook-secret-file", secretFile, "--log-level", "debug"}})
	awaitConverged(t, a, fpHead(f), time.Minute)

	id := f.setMaintenance(true)
	if code := postAgentWebhook(t, a.Addr, pushEventBody(id), hubSignature(secret, pushEventBody(id))); code != http.StatusAccepted {
		t.Fatalf("POST /webhook: %d, want 202", code)
	}
	eventually(t, 30*time.Second, "the drain of factory-proxy and reference-BL under way", func() error {
		for _, s := range []string{"factory-proxy", "reference-BL"} {
			if f.specReplicas(s) != 0 {
				return fmt.Errorf("%s not scaled down yet", s)
			}
		}
		return nil
	})
	start := time.Now()
	killDockerd(t)
	restartTestbed(t)
	t.Logf("dockerd restarted in %s", time.Since(start).Round(100*time.Millisecond))
	st := awaitConverged(t, a, id, 2*time.Minute)
	f.expectLive(ctxT(t, time.Minute), time.Minute, fpAll(0))
	log := a.stderr.String()
	if !strings.Contains(log, "docker event stream broke") {
		t.Errorf("the agent never said its Docker event stream broke:\n%s", lastLines(log, 40))
	}
	// The broker went down only after its dependents drained.
	var brokerDown, proxyDrained time.Time
	for _, e := range st.Events {
		if e.Type == "action" && e.Subject == "swarm/factory-broker" && e.To == "0" {
			brokerDown = e.Time
		}
		if e.Type == "drained" && e.Subject == "swarm/factory-proxy" && proxyDrained.IsZero() {
			proxyDrained = e.Time
		}
	}
	if brokerDown.IsZero() || proxyDrained.IsZero() || brokerDown.Before(proxyDrained) {
		t.Errorf("broker down at %v, factory-proxy drained at %v: want drained first", brokerDown, proxyDrained)
	}
	// The stream is back: a manual scale is reverted by a drift-event pass
	// (tried again every few seconds while the stream reconnects).
	deadline := time.Now().Add(45 * time.Second)
	for {
		scaled := f.scaleByHand("reference-BL", 2)
		var p agent.PassSummary
		var ok bool
		for time.Since(scaled) < 4*time.Second {
			if p, ok = driftPassAfter(statusOf(t, a.Addr), scaled); ok && f.specReplicas("reference-BL") == 0 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if ok && f.specReplicas("reference-BL") == 0 {
			t.Logf("stream back: manual scale reverted by pass %s, %s after it", p.ID, time.Since(scaled).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Docker event stream never came back: a manual scale is not reverted by a drift-event pass:\n%s", lastLines(a.stderr.String(), 40))
		}
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
