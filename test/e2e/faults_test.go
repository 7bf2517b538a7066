//go:build e2e

package e2e

// The fault-injection suite (make test-faults, part of make test): the agent
// keeps working through every fault a host sees, and loses nothing.

import (
	"bufio"
	crand "crypto/rand"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"

	"reconciler.dev/reconciler/agent"
	"reconciler.dev/reconciler/api/status"
	"reconciler.dev/reconciler/desired/source"
	"reconciler.dev/reconciler/internal/gitserver"
	"reconciler.dev/reconciler/internal/syncbuf"
)

// restartTestbed brings every stopped part of the testbed back (idempotent).
func restartTestbed(t testing.TB) {
	t.Helper()
	if out, err := hackTestbed("up"); err != nil {
		t.Fatalf("hack/testbed up: %v\n%s", err, out)
	}
}

// killDockerd kills the testbed's dockerd outright (SIGKILL), the way a
// crash or an OOM kill would, and waits until it is gone.
func killDockerd(t testing.TB) {
	t.Helper()
	pid := dockerdPID(t)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("killing dockerd %d: %v", pid, err)
	}
	eventually(t, 30*time.Second, "dockerd gone", func() error {
		if err := syscall.Kill(pid, 0); err == nil {
			if st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); !strings.Contains(string(st), ") Z ") {
				return fmt.Errorf("pid %d still alive", pid)
			}
		}
		return nil
	})
	t.Cleanup(func() { restartTestbed(t) }) // whatever happens, leave it up
}

// dockerdPID is the testbed's dockerd.
func dockerdPID(t testing.TB) int {
	t.Helper()
	b, err := os.ReadFile("/var/run/docker.pid")
	if err != nil {
		t.Fatalf("no dockerd pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// slowFactoryProxyAgent deploys the factory-proxy example with services
// that take 3 s to stop, so a fault can land in the middle of a flip, and
// an agent (interval 1s) that has converged it.
func slowFactoryProxyAgent(t *testing.T) (*fpFixture, *agentProc) {
	f := deployFactoryProxy(t)
	slowStopServices(t, f, 3*time.Second)
	a := startAgent(t, agentConfig{Source: f.repo.HTTPURL, Interval: "1s"})
	awaitConverged(t, a, fpHead(f), 60*time.Second)
	return f, a
}

// awaitFlipUnderway waits until a maintenance flip is mid-way: the timer is
// down and the scale-downs of factory-proxy and reference-BL have been sent.
func awaitFlipUnderway(t testing.TB, f *fpFixture) {
	t.Helper()
	eventually(t, 60*time.Second, "the flip under way", func() error {
		if en, act := timerState(t); en != "disabled" || act != "inactive" {
			return fmt.Errorf("timer %s/%s", en, act)
		}
		for _, s := range []string{"factory-proxy", "reference-BL"} {
			if f.specReplicas(s) != 0 {
				return fmt.Errorf("%s not scaled down yet", s)
			}
		}
		return nil
	})
}

func TestFaultDockerdKilledMidFlip(t *testing.T) {
	holdDaemons(t, true) // it kills or restarts a daemon other test processes use
	f, a := slowFactoryProxyAgent(t)

	f.setMaintenance(true)
	// Mid-flip: the timer is down and a scale-down has been sent.
	awaitFlipUnderway(t, f)
	killDockerd(t)
	killed := time.Now()
	// The agent keeps trying and says why: the pass under way keeps waiting
	// for the drain, observing with backoff, and reports Docker unreachable
	// (or, were its wait to run out, the pass fails and is retried).
	// (60 s: a call to a dockerd that dies mid-request may take its call
	// timeout to fail.)
	eventually(t, 60*time.Second, "the agent reports Docker unreachable", func() error {
		st := statusOf(t, a.Addr)
		for _, e := range st.Events {
			if e.Time.After(killed) && (e.Type == "waiting" || e.Type == "failed") && strings.Contains(e.Message, "observe swarm") {
				return nil
			}
		}
		if p := st.LastPass; p != nil && p.Start.After(killed) && p.Result == "error" {
			return nil
		}
		var since []string
		for _, e := range st.Events {
			if e.Time.After(killed.Add(-2 * time.Second)) {
				since = append(since, fmt.Sprintf("%s %s %s %q", e.Time.Format("15:04:05.000"), e.Type, e.Subject, e.Message))
			}
		}
		return fmt.Errorf("no event or pass says Docker is unreachable (killed at %s); phase %s, events since:\n%s", killed.Format("15:04:05.000"), st.Phase, strings.Join(since, "\n"))
	})
	restartTestbed(t)
	// Back: it converges, nothing left half-done.
	head := fpHead(f)
	st := awaitConverged(t, a, head, 3*time.Minute)
	f.expectMaintenance(ctxT(t, time.Minute), time.Minute, true)
	cli(t, nil, append([]string{"plan"}, f.source()...)...).mustCode(t, 0, "plan after dockerd came back")
	// In order: in the pass that scaled the broker down, each dependent
	// that pass scaled down too was seen drained first (a later pass that
	// found them already stopped has nothing of theirs to wait for).
	var brokerDown status.Event
	for _, e := range st.Events {
		if e.Type == "action" && e.Subject == "swarm/factory-broker" && e.To == "0" {
			brokerDown = e
		}
	}
	if brokerDown.Pass == "" {
		t.Fatalf("no scale-down of factory-broker among the events: %+v", st.Events)
	}
	for _, s := range []string{"swarm/factory-proxy", "swarm/reference-BL"} {
		var scaled, drained time.Time
		for _, e := range st.Events {
			if e.Pass != brokerDown.Pass || e.Subject != s {
				continue
			}
			switch e.Type {
			case "action":
				scaled = e.Time
			case "drained":
				drained = e.Time
			}
		}
		if !scaled.IsZero() && (drained.IsZero() || drained.After(brokerDown.Time)) {
			t.Errorf("pass %s scaled factory-broker down at %s, %s (scaled down at %s) drained at %v", brokerDown.Pass,
				brokerDown.Time.Format(time.StampMilli), s, scaled.Format(time.StampMilli), drained)
		}
	}
}

func TestFaultSystemdRestartedMidPass(t *testing.T) {
	holdDaemons(t, true) // it kills or restarts a daemon other test processes use
	f, a := slowFactoryProxyAgent(t)

	f.setMaintenance(true)
	eventually(t, 60*time.Second, "the timer stopped by the pass", func() error {
		if _, act := timerState(t); act != "inactive" {
			return fmt.Errorf("timer %s", act)
		}
		return nil
	})
	// The bus goes away mid-pass (services still stopping) and comes back.
	tb := testbed(t)
	run(t, "", "docker", "restart", "-t", "5", tb.SystemdContainer)
	restartTestbed(t)
	awaitConverged(t, a, fpHead(f), 3*time.Minute)
	f.expectMaintenance(ctxT(t, time.Minute), time.Minute, true)

	// And the other way, after the restart: the agent talks to the new bus.
	f.setMaintenance(false)
	awaitConverged(t, a, fpHead(f), 3*time.Minute)
	f.expectMaintenance(ctxT(t, time.Minute), time.Minute, false)
}

func TestFaultStateDirFull(t *testing.T) {
	f := deployFactoryProxy(t)
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mounting a small tmpfs: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	state := filepath.Join(dir, "state")
	a := startAgent(t, agentConfig{Source: f.repo.HTTPURL, Interval: "1s", StateDir: state,
		Args: []string{"--cache-dir", t.TempDir()}})
	good := fpHead(f)
	awaitConverged(t, a, good, 60*time.Second)

	// Fill the filesystem, then commit: the new revision cannot be recorded,
	// so it is not applied, and the status says why.
	filler := filepath.Join(dir, "filler")
	_ = exec.Command("dd", "if=/dev/zero", "of="+filler, "bs=4k").Run() // runs until ENOSPC
	next := f.setMaintenance(true)
	eventually(t, 60*time.Second, "the status says the state cannot be written", func() error {
		st := statusOf(t, a.Addr)
		if !conditionIs(st, "StateWritable", false) {
			return fmt.Errorf("conditions %+v", st.Conditions)
		}
		if st.Revision == nil || st.Revision.ID != good {
			return fmt.Errorf("revision in force %+v, want %s still", st.Revision, shortRev(good))
		}
		return nil
	})
	// Live state is as the good revision says: nothing was half applied.
	f.expectMaintenance(ctxT(t, time.Minute), 10*time.Second, false)

	// Space returns: the next pass records and applies it.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	awaitConverged(t, a, next, 2*time.Minute)
	f.expectLive(ctxT(t, time.Minute), time.Minute, fpAll(0))
	if st := statusOf(t, a.Addr); !conditionIs(st, "StateWritable", true) {
		t.Errorf("StateWritable still false: %+v", st.Conditions)
	}
}

func TestFaultCorruptStateAtStart(t *testing.T) {
	f := deployFactoryProxy(t)
	good := fpHead(f)
	for name, garble := range map[string]func([]byte) []byte{
		"truncated": func(b []byte) []byte { return b[:len(b)/2] },
		"garbled": func(b []byte) []byte {
			c := append([]byte(nil), b...)
			for i := 40; i < len(c); i += 97 {
				c[i] ^= 0x5a
			}
			return c
		},
	} {
		t.Run(name, func(t *testing.T) {
			state := t.TempDir()
			a := startAgent(t, agentConfig{Source: f.repo.HTTPURL, Interval: "1s", StateDir: state})
			awaitConverged(t, a, good, 60*time.Second)
			a.stop()
			file := filepath.Join(state, "state.json")
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, file, garble(b), 0o600)
			// Someone scaled by hand meanwhile: the new agent must still
			// put it right, from git, not from the broken file.
			run(t, "", "docker", "service", "scale", "-d", "factory-proxy=2")
			b2 := startAgent(t, agentConfig{Source: f.repo.HTTPURL, Interval: "1s", StateDir: state})
			st := awaitConverged(t, b2, good, 60*time.Second)
			if !hasEventType(st, "state-corrupt") {
				t.Errorf("the corrupt state file was not reported: events %+v", st.Events)
			}
			f.expectLive(ctxT(t, time.Minute), time.Minute, fpAll(1))
			if _, err := agent.LoadState(state); err != nil {
				t.Errorf("the state file was not rebuilt: %v", err)
			}
		})
	}
}

// TestFaultSoak throws random commits (scales, maintenance flips, bad YAML),
// random manual drift and random dockerd and systemd restarts at a running
// agent for about two minutes (SOAK=30m for longer). At the end the live
// state is what the last good revision says, every bad revision was refused,
// and the agent's memory did not grow.
func TestFaultSoak(t *testing.T) {
	holdDaemons(t, true) // it kills or restarts a daemon other test processes use
	length := 2 * time.Minute
	if s := os.Getenv("SOAK"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("SOAK=%q: %v", s, err)
		}
		length = d
	}
	f := deployFactoryProxy(t)
	a := startAgent(t, agentConfig{Source: f.repo.HTTPURL, Interval: "1s"})
	awaitConverged(t, a, fpHead(f), 60*time.Second)
	startRSS, _ := procRSSAndCPU(t, a.pid())

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	t.Logf("soak seed time %s, length %s", time.Now().Format(time.RFC3339), length)
	counts := map[string]int{}
	var bad []string
	good := fpHead(f)
	lastGoodFile := f.files[fpFile]
	deadline := time.Now().Add(length)
	for time.Now().Before(deadline) {
		switch op := rng.IntN(10); {
		case op < 3: // a good commit: replicas and maintenance
			n := rng.IntN(3)
			on := rng.IntN(3) == 0
			doc := withReplicas(withMaintenance(lastGoodFile, on), "reference-BL", n)
			good = f.edit(fmt.Sprintf("soak: BL=%d maintenance=%v", n, on), func(string) string { return doc })
			lastGoodFile = doc
			counts["good commit"]++
		case op < 5: // a bad commit
			kinds := []func(string) string{
				func(s string) string { return s + "  services: [\n" },                                       // syntax
				func(s string) string { return strings.Replace(s, "spec:\n", "spec:\n  colour: blue\n", 1) }, // unknown field
				func(s string) string { return strings.Replace(s, "replicas: 1\n", "replicas: -1\n", 1) },    // negative
			}
			k := rng.IntN(len(kinds))
			rev := f.edit(fmt.Sprintf("soak: bad %d", k), func(string) string { return kinds[k](lastGoodFile) })
			bad = append(bad, rev)
			f.files[fpFile] = lastGoodFile
			counts["bad commit"]++
			// It is the head now: the agent must look at it and refuse it
			// (a pass under way finishes first, hence the long deadline).
			eventually(t, 2*time.Minute, "bad revision "+shortRev(rev)+" refused", func() error {
				st := statusOf(t, a.Addr)
				if st.FailedRevision == nil || st.FailedRevision.ID != rev {
					return fmt.Errorf("failed revision %+v", st.FailedRevision)
				}
				return nil
			})
			counts["bad commit refused"]++
		case op < 8: // manual drift
			svc := fpServices[rng.IntN(len(fpServices))]
			_ = exec.Command("docker", "service", "scale", "-d", svc+"="+strconv.Itoa(rng.IntN(3))).Run()
			if rng.IntN(2) == 0 {
				_, _ = inSystemdTry(t, "systemctl", "disable", "--now", fpTimer)
			}
			counts["manual drift"]++
		case op < 9:
			killDockerd(t)
			restartTestbed(t)
			counts["dockerd killed"]++
		default:
			_ = exec.Command("docker", "restart", "-t", "2", testbed(t).SystemdContainer).Run()
			restartTestbed(t)
			counts["systemd restarted"]++
		}
		time.Sleep(time.Duration(500+rng.IntN(2500)) * time.Millisecond)
	}
	// Settle: the last good revision is in force and the host matches it.
	f.files[fpFile] = lastGoodFile
	final := f.edit("soak: final", func(string) string { return lastGoodFile })
	st := awaitConverged(t, a, final, 3*time.Minute)
	cli(t, nil, append([]string{"plan"}, f.source()...)...).mustCode(t, 0, "plan after the soak")
	// Every bad revision was refused, never applied.
	for _, p := range st.Passes {
		for _, b := range bad {
			if p.Revision == b {
				t.Errorf("pass %s applied the bad revision %s", p.ID, shortRev(b))
			}
		}
	}
	if counts["bad commit refused"] != counts["bad commit"] {
		t.Errorf("%d bad commits, %d refused", counts["bad commit"], counts["bad commit refused"])
	}
	endRSS, cpu := procRSSAndCPU(t, a.pid())
	t.Logf("soak: %v; RSS %d -> %d KiB; CPU %s; last good %s", counts, startRSS, endRSS, cpu, shortRev(good))
	// Memory: after Go's heap settles, RSS stays within a small margin.
	if endRSS > startRSS+16*1024 {
		t.Errorf("RSS grew from %d to %d KiB", startRSS, endRSS)
	}
}

// ---------------------------------------------------------------------------
// Hangs: a daemon that freezes instead of dying. Each test freezes one part
// five times, each time for longer than every call timeout the agent has
// (shortened by flags, so a freeze lasts seconds), and asserts: /healthz
// answers throughout, /status says which daemon is stuck within one call
// timeout of the call that waits, the agent's RSS and goroutines stay flat,
// and after the thaw the host converges without a step repeated or skipped
// (judged from Docker's events and systemd's journal).

const (
	hangCallTimeout = 2 * time.Second // --call-timeout of the agents below
	hangFreezes     = 5
)

// hangAgentArgs shortens the agent's call timeouts.
func hangAgentArgs(gitTimeout time.Duration) []string {
	return []string{"--call-timeout", hangCallTimeout.String(), "--git-timeout", gitTimeout.String()}
}

// hangFigures are the agent's RSS and goroutines, before the first freeze
// and after each thaw.
type hangFigures struct {
	t          *testing.T
	a          *agentProc
	rssKB      []int
	goroutines []int
}

// startHangAgent starts an agent on the factory-proxy fixture, following
// src with calls that time out after callTimeout, waits for it to
// converge, then starts watching Docker's events and sampling its figures.
func startHangAgent(t *testing.T, f *fpFixture, src string, callTimeout time.Duration) (*agentProc, *eventLog, *hangFigures) {
	t.Helper()
	a := startAgent(t, agentConfig{Source: src, Interval: "1s", Args: hangAgentArgs(callTimeout)})
	awaitConverged(t, a, fpHead(f), 60*time.Second)
	return a, watchDockerEvents(t, f.docker), newHangFigures(t, a)
}

func newHangFigures(t *testing.T, a *agentProc) *hangFigures {
	h := &hangFigures{t: t, a: a}
	h.sample("before the first freeze")
	return h
}

// sample records the agent's RSS and the fewest goroutines it ran over a
// second (a pass in flight adds a few for a moment).
func (h *hangFigures) sample(label string) {
	h.t.Helper()
	least := -1
	for range 10 {
		n := int(agentMetrics(h.t, h.a.Addr)["go_goroutines"])
		if least < 0 || n < least {
			least = n
		}
		time.Sleep(100 * time.Millisecond)
	}
	rss, _ := procRSSAndCPU(h.t, h.a.pid())
	h.rssKB = append(h.rssKB, rss)
	h.goroutines = append(h.goroutines, least)
	h.t.Logf("%s: agent RSS %d KiB, goroutines %d", label, rss, least)
}

// check asserts the figures stayed flat: after the last thaw, within a
// small margin of before the first freeze.
func (h *hangFigures) check() {
	h.t.Helper()
	h.t.Logf("across %d freezes: RSS KiB %v, goroutines %v", hangFreezes, h.rssKB, h.goroutines)
	first, last := 0, len(h.rssKB)-1
	if h.goroutines[last] > h.goroutines[first]+8 {
		h.t.Errorf("goroutines grew from %d to %d across the freezes: %v", h.goroutines[first], h.goroutines[last], h.goroutines)
	}
	if h.rssKB[last] > h.rssKB[first]+16*1024 {
		h.t.Errorf("RSS grew from %d to %d KiB across the freezes: %v", h.rssKB[first], h.rssKB[last], h.rssKB)
	}
}

// freezeProcess stops pid with SIGSTOP; the test's end sends SIGCONT
// whatever happens, so nothing stays frozen.
func freezeProcess(t *testing.T, pid int) time.Time {
	t.Helper()
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP to %d: %v", pid, err)
	}
	return time.Now()
}

func thawProcess(t *testing.T, pid int) time.Time {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT to %d: %v", pid, err)
	}
	return time.Now()
}

// awaitStuck waits until /status names daemon as stuck and returns the
// entry and when it was seen.
func awaitStuck(t *testing.T, a *agentProc, daemon string, within time.Duration) (agent.StuckCall, time.Time) {
	t.Helper()
	var got agent.StuckCall
	eventually(t, within, "/status stuck names "+daemon, func() error {
		st, err := tryAgentStatus(a.Addr)
		if err != nil {
			return err
		}
		for _, s := range st.Stuck {
			if s.Daemon == daemon {
				got = s
				return nil
			}
		}
		return fmt.Errorf("stuck %+v, phase %s", st.Stuck, st.Phase)
	})
	seen := time.Now()
	series := `reconciler_daemon_stuck_seconds{daemon="` + daemon + `"}`
	if v, ok := agentMetrics(t, a.Addr)[series]; !ok || v <= 0 {
		t.Errorf("/status says %s is stuck, /metrics has %s = %v (present %v)", daemon, series, v, ok)
	}
	return got, seen
}

// hangOutcome checks and prints what one freeze showed.
type hangOutcome struct {
	what                          string
	timeout                       time.Duration // of the call that waits
	frozen, seen, thawed, settled time.Time
	stuck                         agent.StuckCall
	healthz                       *readyzWatch
}

func (o hangOutcome) check(t *testing.T, st status.Status) {
	t.Helper()
	polls, bad := o.healthz.stop()
	t.Logf("%s: /status stuck %s %q after %s (%s after that call was made; %d calls timed out by then); /healthz %d polls, slowest %s; thawed after %s; converged %s after the thaw",
		o.what, o.stuck.Daemon, o.stuck.Call, o.seen.Sub(o.frozen).Round(time.Millisecond), o.seen.Sub(o.stuck.Since).Round(time.Millisecond),
		o.stuck.TimedOut, polls, o.healthz.slowest.Round(time.Millisecond), o.thawed.Sub(o.frozen).Round(time.Millisecond),
		o.settled.Sub(o.thawed).Round(time.Millisecond))
	if len(bad) > 0 {
		t.Errorf("%s: /healthz did not answer 200 (%d of %d polls):\n%s", o.what, len(bad), polls, strings.Join(bad, "\n"))
	}
	// One call timeout from the call that waits (the status says so at
	// half of it), plus the poll's own step.
	if d := o.seen.Sub(o.stuck.Since); d > o.timeout+time.Second {
		t.Errorf("%s: /status said %s was stuck %s after the call was made, want within its timeout (%s)", o.what, o.stuck.Daemon, d, o.timeout)
	}
	for _, s := range st.Stuck {
		if s.Daemon == o.stuck.Daemon {
			t.Errorf("%s: converged, yet /status still says %s is stuck: %+v", o.what, s.Daemon, s)
		}
	}
}

// settleReferenceBL waits, after a git fault, for the commit id that set
// reference-BL to n replicas, and checks it was applied once: one update of
// reference-BL since the fault, none of the other services.
func (o *hangOutcome) settleReferenceBL(t *testing.T, a *agentProc, f *fpFixture, ev *eventLog, id string, n int) {
	t.Helper()
	st := awaitConverged(t, a, id, time.Minute)
	o.settled = time.Now()
	o.check(t, st)
	want := fpAll(1)
	want["reference-BL"] = n
	f.expectLive(ctxT(t, time.Minute), time.Minute, want)
	expectUpdates(t, ev, o.what, o.frozen, time.Now(), map[string]int{"reference-BL": 1, "factory-proxy": 0, "factory-broker": 0})
}

// sleepUntil sleeps until at.
func sleepUntil(at time.Time) { time.Sleep(time.Until(at)) }

// serviceEvents returns the times of a service's Docker events of one
// action (its own for "update", its containers' otherwise) in [from, to].
func (el *eventLog) serviceEvents(service, action string, from, to time.Time) []time.Time {
	el.mu.Lock()
	defer el.mu.Unlock()
	var at []time.Time
	for _, m := range el.events {
		name := m.Actor.Attributes["com.docker.swarm.service.name"]
		if m.Type == events.ServiceEventType {
			name = m.Actor.Attributes["name"]
		}
		ts := time.Unix(0, m.TimeNano)
		if name == service && m.Action == events.Action(action) && !ts.Before(from) && !ts.After(to) {
			at = append(at, ts)
		}
	}
	return at
}

// expectUpdates asserts each service got exactly its number of Docker
// updates in [from, to]: nothing repeated, nothing skipped.
func expectUpdates(t *testing.T, el *eventLog, what string, from, to time.Time, want map[string]int) {
	t.Helper()
	for svc, n := range want {
		if got := el.serviceEvents(svc, "update", from, to); len(got) != n {
			t.Errorf("%s: Docker updated %s %d times, want %d:\n%s", what, svc, len(got), n, el.summary())
		}
	}
}

// expectDrainOrder asserts, from Docker's events in [from, to], that the
// broker was scaled down only after the last container of each of its
// dependents died.
func expectDrainOrder(t *testing.T, el *eventLog, what string, from, to time.Time) {
	t.Helper()
	up := el.serviceEvents("factory-broker", "update", from, to)
	if len(up) == 0 {
		t.Errorf("%s: no update of the broker:\n%s", what, el.summary())
		return
	}
	for _, dep := range []string{"factory-proxy", "reference-BL"} {
		died := el.serviceEvents(dep, "die", from, to)
		if len(died) == 0 {
			t.Errorf("%s: no container of %s died:\n%s", what, dep, el.summary())
			continue
		}
		if last := died[len(died)-1]; !last.Before(up[0]) {
			t.Errorf("%s: %s's last container died at %s, after the broker was scaled down at %s", what, dep,
				last.Format("15:04:05.000"), up[0].Format("15:04:05.000"))
		}
	}
}

// TestFaultHangDockerdFrozenMidFlip freezes dockerd (SIGSTOP) in the middle
// of entering maintenance, the timer down and the dependents' scale-down
// sent, for 2.5 call timeouts, then thaws it; five times.
func TestFaultHangDockerdFrozenMidFlip(t *testing.T) {
	holdDaemons(t, true) // it freezes a daemon other test processes use
	f := deployFactoryProxy(t)
	slowStopServices(t, f, 3*time.Second)
	a, ev, figs := startHangAgent(t, f, f.repo.HTTPURL, source.DefaultTimeout)
	pid := dockerdPID(t)
	const freezeFor = 5 * hangCallTimeout / 2
	for i := 1; i <= hangFreezes; i++ {
		what := fmt.Sprintf("freeze %d of dockerd", i)
		start := time.Now()
		id := f.setMaintenance(true)
		awaitFlipUnderway(t, f)
		o := hangOutcome{what: what, timeout: hangCallTimeout, frozen: freezeProcess(t, pid), healthz: watchEndpoint(a.Addr, "/healthz")}
		o.stuck, o.seen = awaitStuck(t, a, "docker", 2*freezeFor)
		sleepUntil(o.frozen.Add(freezeFor))
		o.thawed = thawProcess(t, pid)
		st := awaitConverged(t, a, id, 2*time.Minute)
		o.settled = time.Now()
		o.check(t, st)
		f.expectMaintenance(ctxT(t, time.Minute), time.Minute, true)
		end := time.Now()
		expectUpdates(t, ev, what, start, end, fpAll(1))
		expectDrainOrder(t, ev, what, start, end)

		start = time.Now()
		id = f.setMaintenance(false)
		awaitConverged(t, a, id, time.Minute)
		f.expectMaintenance(ctxT(t, time.Minute), time.Minute, false)
		expectUpdates(t, ev, what+", leaving maintenance", start, time.Now(), fpAll(1))
		figs.sample("after " + what)
	}
	figs.check()
}

// busDaemonPID is the host PID of the dbus-daemon inside the testbed's
// systemd container: the process in the container's PID namespace named
// dbus-daemon.
func busDaemonPID(t *testing.T) int {
	t.Helper()
	init := run(t, "", "docker", "inspect", "-f", "{{.State.Pid}}", testbed(t).SystemdContainer)
	ns, err := os.Readlink("/proc/" + init + "/ns/pid")
	if err != nil {
		t.Fatalf("the systemd container's PID namespace: %v", err)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		comm, err := os.ReadFile(p + "/comm")
		if err != nil || strings.TrimSpace(string(comm)) != "dbus-daemon" {
			continue
		}
		if pns, err := os.Readlink(p + "/ns/pid"); err == nil && pns == ns {
			pid, _ := strconv.Atoi(filepath.Base(p))
			return pid
		}
	}
	t.Fatalf("no dbus-daemon runs in the container %s", testbed(t).SystemdContainer)
	return 0
}

// TestFaultHangSystemBusFrozenMidPass freezes the bus daemon of the
// testbed's systemd container while a pass leaves maintenance (the broker
// scaled up, the timer, last of the pass, still down), for 2.5 call
// timeouts at least and until a call has run out of time, then thaws it;
// five times. The timer comes back once, after every service.
func TestFaultHangSystemBusFrozenMidPass(t *testing.T) {
	holdDaemons(t, true) // it freezes a daemon other test processes use
	f := deployFactoryProxy(t)
	a, ev, figs := startHangAgent(t, f, f.repo.HTTPURL, source.DefaultTimeout)
	const freezeFor = 5 * hangCallTimeout / 2
	for i := 1; i <= hangFreezes; i++ {
		what := fmt.Sprintf("freeze %d of the system bus", i)
		id := f.setMaintenance(true)
		awaitConverged(t, a, id, time.Minute)
		f.expectMaintenance(ctxT(t, time.Minute), time.Minute, true)

		start := time.Now()
		id = f.setMaintenance(false)
		eventually(t, 30*time.Second, "the broker scaled up", func() error {
			if n := f.specReplicas("factory-broker"); n != 1 {
				return fmt.Errorf("broker at %d", n)
			}
			return nil
		})
		pid := busDaemonPID(t)
		o := hangOutcome{what: what, timeout: hangCallTimeout, frozen: freezeProcess(t, pid), healthz: watchEndpoint(a.Addr, "/healthz")}
		en, act := timerState(t) // systemctl speaks to systemd directly, not over the frozen bus
		o.stuck, o.seen = awaitStuck(t, a, "systemd", 30*time.Second)
		sleepUntil(o.frozen.Add(freezeFor))
		sleepUntil(o.seen.Add(hangCallTimeout)) // a call ran out of time
		o.thawed = thawProcess(t, pid)
		st := awaitConverged(t, a, id, 2*time.Minute)
		o.settled = time.Now()
		t.Logf("%s: the timer was %s/%s at the freeze", what, en, act)
		o.check(t, st)
		f.expectMaintenance(ctxT(t, time.Minute), time.Minute, false)
		expectUpdates(t, ev, what, start, time.Now(), fpAll(1))
		// From systemd's journal: the timer started once, after every
		// service's container.
		starts := timerJobsAfter(t, "start", start)
		if len(starts) != 1 {
			t.Errorf("%s: %d start jobs of the timer, want 1: %v", what, len(starts), starts)
		}
		for _, svc := range fpServices {
			up := ev.serviceEvents(svc, "start", start, time.Now())
			if len(up) == 0 {
				t.Errorf("%s: no container of %s started:\n%s", what, svc, ev.summary())
				continue
			}
			if len(starts) > 0 && !starts[0].After(up[len(up)-1]) {
				t.Errorf("%s: the timer started at %s, before %s's container at %s", what,
					starts[0].Format("15:04:05.000"), svc, up[len(up)-1].Format("15:04:05.000"))
			}
		}
		figs.sample("after " + what)
	}
	figs.check()
}

// silentGit is an http git server over the testbed's bare repositories
// that a test can make go silent: it still accepts connections, and
// answers nothing on them (nor on the connections it kept alive) until
// told to answer again.
type silentGit struct {
	addr   string
	silent atomic.Bool
	srv    *http.Server
	mu     sync.Mutex
	held   map[net.Conn]bool
	conns  chan net.Conn
	ln     net.Listener
}

func startSilentGit(t *testing.T, root string) *silentGit {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &silentGit{addr: ln.Addr().String(), held: map[net.Conn]bool{}, ln: ln}
	git := gitserver.New(root)
	g.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.silent.Load() {
			<-r.Context().Done() // a request on a kept-alive connection: no answer either
			return
		}
		git.ServeHTTP(w, r)
	})}
	go g.srv.Serve(silentListener{g})
	t.Cleanup(func() {
		g.srv.Close()
		g.mu.Lock()
		defer g.mu.Unlock()
		for c := range g.held {
			c.Close()
		}
	})
	return g
}

func (g *silentGit) url(repo string) string { return "http://" + g.addr + "/" + repo }

// silentListener hands the http server the connections accepted while the
// server answers, and holds the others: read and never answered.
type silentListener struct{ g *silentGit }

func (l silentListener) Accept() (net.Conn, error) {
	for {
		c, err := l.g.ln.Accept()
		if err != nil || !l.g.silent.Load() {
			return c, err
		}
		l.g.mu.Lock()
		l.g.held[c] = true
		l.g.mu.Unlock()
		go func() {
			_, _ = io.Copy(io.Discard, c) // until the client gives up
			c.Close()
			l.g.mu.Lock()
			delete(l.g.held, c)
			l.g.mu.Unlock()
		}()
	}
}

func (l silentListener) Close() error   { return l.g.ln.Close() }
func (l silentListener) Addr() net.Addr { return l.g.ln.Addr() }

// TestFaultHangGitServerSilent makes the git server accept connections and
// never answer, five times, each time for 2.5 git timeouts, with a commit
// made meanwhile: each commit is applied once it answers again, once.
func TestFaultHangGitServerSilent(t *testing.T) {
	f := deployFactoryProxy(t)
	g := startSilentGit(t, filepath.Dir(f.repo.Bare))
	const gitTimeout = 2 * time.Second
	a, ev, figs := startHangAgent(t, f, g.url(f.repo.Name), gitTimeout)
	const silentFor = 5 * gitTimeout / 2
	for i := 1; i <= hangFreezes; i++ {
		what := fmt.Sprintf("silence %d of the git server", i)
		g.silent.Store(true)
		o := hangOutcome{what: what, timeout: gitTimeout, frozen: time.Now(), healthz: watchEndpoint(a.Addr, "/healthz")}
		n := 1 + i%2
		id := f.edit(fmt.Sprintf("reference-BL: %d", n), func(s string) string { return withReplicas(s, "reference-BL", n) })
		o.stuck, o.seen = awaitStuck(t, a, "git", 2*silentFor)
		sleepUntil(o.frozen.Add(silentFor))
		if st := statusOf(t, a.Addr); st.Revision == nil || st.Revision.ID == id || !st.Source.Failing {
			t.Fatalf("%s: with the git server silent, revision in force %+v, source %+v", what, st.Revision, st.Source)
		}
		g.silent.Store(false)
		o.thawed = time.Now()
		o.settleReferenceBL(t, a, f, ev, id, n)
		figs.sample("after " + what)
	}
	figs.check()
}

// netnsGit is a git server in a network namespace of the test's own,
// reached over a veth pair: 10.213.5.1 on the host, 10.213.5.2 inside.
type netnsGit struct {
	ns, hostLink, nsLink string
	addr                 string
	midPack              chan struct{} // a line each time a pack is under way
}

const (
	netnsHostAddr = "10.213.5.1"
	netnsGitAddr  = "10.213.5.2"
	netnsNet      = "10.213.5.0/24"
)

// startNetnsGit makes the namespace and its link, and runs the git server
// (this test binary, TestMain) inside it with nsenter. Everything is
// removed when the test ends.
func startNetnsGit(t *testing.T, root string) *netnsGit {
	t.Helper()
	lockTestbed(t, "netns-"+netnsNet[:len(netnsNet)-3]) // one test process at a time uses the range
	if out, _ := execOut("ip", "-4", "route", "show", netnsNet); out != "" {
		t.Fatalf("the host already routes %s (%s): the test needs that range for a namespace of its own", netnsNet, out)
	}
	tag := strconv.Itoa(os.Getpid() % 100000)
	g := &netnsGit{ns: "reconciler-e2e-" + tag, hostLink: "rch" + tag, nsLink: "rcn" + tag,
		addr: netnsGitAddr + ":8418", midPack: make(chan struct{}, 16)}
	run(t, "", "ip", "netns", "add", g.ns)
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", g.ns).Run() // takes the veth pair with it
		_ = exec.Command("ip", "link", "del", g.hostLink).Run()
		_ = exec.Command("ip", "route", "del", "blackhole", netnsNet).Run()
	})
	run(t, "", "ip", "link", "add", g.hostLink, "type", "veth", "peer", "name", g.nsLink)
	run(t, "", "ip", "link", "set", g.nsLink, "netns", g.ns)
	run(t, "", "ip", "addr", "add", netnsHostAddr+"/24", "dev", g.hostLink)
	run(t, "", "ip", "link", "set", g.hostLink, "up")
	// Should the link's route ever go, packets for the range are dropped
	// here rather than sent out by the default route.
	run(t, "", "ip", "route", "add", "blackhole", netnsNet, "metric", "4242")
	run(t, "", "ip", "-n", g.ns, "addr", "add", netnsGitAddr+"/24", "dev", g.nsLink)
	run(t, "", "ip", "-n", g.ns, "link", "set", "lo", "up")
	run(t, "", "ip", "-n", g.ns, "link", "set", g.nsLink, "up")

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nsenter", "--net=/var/run/netns/"+g.ns, self)
	cmd.Env = append(os.Environ(), netnsGitListenEnv+"="+g.addr, netnsGitRootEnv+"="+root)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the git server in %s: %v", g.ns, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("git server in %s, stderr:\n%s", g.ns, stderr.String())
		}
	})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == midPackLine {
				select {
				case g.midPack <- struct{}{}:
				default:
				}
			}
		}
	}()
	eventually(t, 15*time.Second, "the git server in "+g.ns, func() error {
		c, err := net.DialTimeout("tcp", g.addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	return g
}

func (g *netnsGit) url(repo string) string { return "http://" + g.addr + "/" + repo }

// cut takes the link down from the namespace's end (the host's end keeps
// its route, so nothing for the range leaves by another way); restore
// brings it up again.
func (g *netnsGit) cut(t *testing.T) time.Time {
	t.Helper()
	run(t, "", "ip", "-n", g.ns, "link", "set", g.nsLink, "down")
	return time.Now()
}

func (g *netnsGit) restore(t *testing.T) time.Time {
	t.Helper()
	run(t, "", "ip", "-n", g.ns, "link", "set", g.nsLink, "up")
	return time.Now()
}

// TestFaultHangGitLinkCutMidFetch serves the repository from a network
// namespace and cuts its link while the agent fetches a commit's pack
// (a megabyte, sent at 640 KiB/s), for two git timeouts, then restores
// it; five times. Each commit is applied once the link is back, once.
func TestFaultHangGitLinkCutMidFetch(t *testing.T) {
	f := deployFactoryProxy(t)
	g := startNetnsGit(t, filepath.Dir(f.repo.Bare))
	const gitTimeout = 4 * time.Second
	a, ev, figs := startHangAgent(t, f, g.url(f.repo.Name), gitTimeout)
	blob := make([]byte, 1<<20)
	for i := 1; i <= hangFreezes; i++ {
		what := fmt.Sprintf("cut %d of the link to git", i)
		n := 1 + i%2
		f.files[fpFile] = withReplicas(f.files[fpFile], "reference-BL", n)
		_, _ = crand.Read(blob) // a pack that does not compress
		for len(g.midPack) > 0 {
			<-g.midPack
		}
		id := f.repo.Commit(fmt.Sprintf("reference-BL: %d, and a megabyte", n), map[string]string{fpFile: f.files[fpFile], "data/blob.bin": string(blob)})
		select {
		case <-g.midPack:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no fetch of the new commit's pack within 30s", what)
		}
		o := hangOutcome{what: what, timeout: gitTimeout, frozen: g.cut(t), healthz: watchEndpoint(a.Addr, "/healthz")}
		o.stuck, o.seen = awaitStuck(t, a, "git", 2*gitTimeout)
		sleepUntil(o.frozen.Add(2 * gitTimeout))
		if st := statusOf(t, a.Addr); st.Revision == nil || st.Revision.ID == id {
			t.Fatalf("%s: with the link cut, revision in force %+v", what, st.Revision)
		}
		o.thawed = g.restore(t)
		o.settleReferenceBL(t, a, f, ev, id, n)
		figs.sample("after " + what)
	}
	figs.check()
}
