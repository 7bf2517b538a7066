//go:build e2e

package e2e

// The fault-injection suite (make test-faults, part of make test): the agent
// keeps working through every fault a host sees, and loses nothing.

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"reconciler.dev/reconciler/agent"
)

// restartTestbed brings every stopped part of the testbed back (idempotent).
func restartTestbed(t testing.TB) {
	t.Helper()
	out, err := exec.Command(filepath.Join(repoRoot(), "hack", "testbed"), "up").CombinedOutput()
	if err != nil {
		t.Fatalf("hack/testbed up: %v\n%s", err, out)
	}
}

// killDockerd kills the testbed's dockerd outright (SIGKILL), the way a
// crash or an OOM kill would, and waits until it is gone.
func killDockerd(t testing.TB) {
	t.Helper()
	b, err := os.ReadFile("/var/run/docker.pid")
	if err != nil {
		t.Fatalf("no dockerd pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
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

func TestFaultDockerdKilledMidFlip(t *testing.T) {
	holdDaemons(t, true) // it kills or restarts a daemon other test processes use
	f, a := slowFactoryProxyAgent(t)

	f.setMaintenance(true)
	// Mid-flip: the timer is down and a scale-down has been sent.
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
	f.expectLive(ctxT(t, time.Minute), time.Minute, fpAll(0))
	expectTimerState(t, "disabled", "inactive")
	cli(t, nil, append([]string{"plan"}, f.source()...)...).mustCode(t, 0, "plan after dockerd came back")
	// In order: in the pass that scaled the broker down, each dependent
	// that pass scaled down too was seen drained first (a later pass that
	// found them already stopped has nothing of theirs to wait for).
	var brokerDown agent.Event
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
	f.expectLive(ctxT(t, time.Minute), time.Minute, fpAll(0))
	expectTimerState(t, "disabled", "inactive")

	// And the other way, after the restart: the agent talks to the new bus.
	f.setMaintenance(false)
	awaitConverged(t, a, fpHead(f), 3*time.Minute)
	f.expectLive(ctxT(t, time.Minute), time.Minute, fpAll(1))
	expectTimerState(t, "enabled", "active")
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
	f.expectLive(ctxT(t, time.Minute), 10*time.Second, fpAll(1))
	expectTimerState(t, "enabled", "active")

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
			if err := os.WriteFile(file, garble(b), 0o600); err != nil {
				t.Fatal(err)
			}
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
				_ = exec.Command("docker", "exec", testbed(t).SystemdContainer, "systemctl", "disable", "--now", fpTimer).Run()
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
