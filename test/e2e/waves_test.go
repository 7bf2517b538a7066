//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"reconciler.dev/reconciler/agent"
	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/fleet"
)

// wvHost is one host of the waves test: its agent and its own two systemd
// units (no two agents write the same object).
type wvHost struct {
	name, wave  string
	main, extra string // unit names without .service
	a           *agentProc
}

// wvDoc is a host's document: its wave label, main at 1 or 0, and extra.
func wvDoc(h wvHost, mainReplicas int, bad string) string {
	doc := fmt.Sprintf(`apiVersion: reconciler.dev/v1
kind: Host
metadata:
  name: %s
  labels: {reconciler.dev/wave: %s}
spec:
  services:
    - name: %s
      driver: systemd
      replicas: %d
`, h.name, h.wave, h.main, mainReplicas)
	// extra is declared in every revision (the agent owns fields, never
	// deletes what git does not name): stopped, or, in the bad one,
	// started with a probe that never passes.
	if bad == "" {
		doc += fmt.Sprintf("    - name: %s\n      driver: systemd\n      replicas: 0\n", h.extra)
	} else {
		doc += fmt.Sprintf("    - name: %s\n      driver: systemd\n      replicas: 1\n      ready: {tcp: %q, timeout: 1s}\n", h.extra, bad)
	}
	return doc
}

// wvUnits installs a worker unit per name in the systemd container, all in
// one exec and one daemon-reload (one per unit costs seconds each on a
// loaded testbed), and removes them when the test ends.
func wvUnits(t *testing.T, units []string) {
	t.Helper()
	var install, remove strings.Builder
	for _, u := range units {
		fmt.Fprintf(&install, "printf '[Unit]\\nDescription=reconciler e2e waves %[1]s\\n[Service]\\nEnvironment=WORKER_NAME=%[1]s\\nExecStart=/usr/local/bin/worker\\n' > /etc/systemd/system/%[1]s.service\n", u)
		fmt.Fprintf(&remove, "systemctl stop %[1]s.service; rm -f /etc/systemd/system/%[1]s.service\n", u)
	}
	install.WriteString("systemctl daemon-reload\n")
	remove.WriteString("systemctl daemon-reload\n")
	if out, err := inSystemdTry(t, "sh", "-c", install.String()); err != nil {
		t.Fatalf("installing the waves' units: %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = inSystemdTry(t, "sh", "-c", remove.String()) })
}

// unitEverActive says whether systemd ever started a unit (its journal's
// account, whoever asked; an inactive unit's own timestamps go when systemd
// unloads it).
func unitEverActive(t *testing.T, unit string) bool { return unitStarts(t, unit) > 0 }

// TestWavesRollout: five agents on this host, each converging systemd units
// of its own, in three waves (1 canary, 2, then 2) whose branches
// `reconciler fleet promote`, run every second as a timer would, moves.
// A good revision reaches each wave only after every host of the wave
// before it was converged and ready for the soak time; a bad one (a probe
// that never passes) stops at the canary, is reverted and quarantined there,
// the rollout halts naming the canary, and no other host ever applies it
// (systemd never saw their extra unit active).
func TestWavesRollout(t *testing.T) {
	const soak = 3 * time.Second
	waves := []string{"canary", "second", "rest"}
	var hosts []*wvHost
	for i, w := range []string{"canary", "second", "second", "rest", "rest"} {
		h := &wvHost{name: fmt.Sprintf("wv-%d", i+1), wave: w, main: uniqueName(fmt.Sprintf("wv%d-main", i+1)), extra: uniqueName(fmt.Sprintf("wv%d-extra", i+1))}
		hosts = append(hosts, h)
	}
	var units []string
	for _, h := range hosts {
		units = append(units, h.main, h.extra)
	}
	wvUnits(t, units)
	repo := newGitRepo(t, "waves")
	docs := func(main int, bad string) map[string]string {
		files := map[string]string{}
		for _, h := range hosts {
			files["hosts/"+h.name+".yaml"] = wvDoc(*h, main, bad)
		}
		return files
	}
	r0 := repo.Commit("r0: main stopped everywhere", docs(0, ""))
	for _, w := range waves { // the bootstrap: every wave's branch at r0
		run(t, repo.WorkTree, "git", "push", "-q", "origin", "HEAD:refs/heads/rollout/"+w)
	}
	var addrs []string
	for _, h := range hosts {
		h.a = startAgent(t, agentConfig{Source: repo.FileURL, Host: h.name, Interval: "1s",
			Args: []string{"--ref", "rollout/" + h.wave, "--healthy-within", "4s", "--monitor-interval", "0"}})
		addrs = append(addrs, h.a.Addr)
	}
	for _, h := range hosts {
		awaitConverged(t, h.a, r0, 60*time.Second)
	}
	promoteArgs := []string{"fleet", "promote", "--agents", strings.Join(addrs, ","), "--source", repo.FileURL,
		"--waves", strings.Join(waves, ","), "--soak", soak.String(), "--timeout", "3s"}

	promoteUntil := func(what string, within time.Duration, done func(ro fleet.Rollout, code int) bool) (map[string]time.Time, fleet.Rollout, Run) {
		t.Helper()
		return wvPromoteUntil(t, promoteArgs, what, within, done)
	}

	// The good revision: main started everywhere, wave by wave.
	r1 := repo.Commit("r1: main started", docs(1, ""))
	start := time.Now()
	moved, ro, _ := promoteUntil("r1 rolled out", 120*time.Second, func(ro fleet.Rollout, code int) bool {
		if code != 0 {
			t.Fatalf("rollout of r1 halted: %+v", ro.Waves)
		}
		return ro.Done && ro.Revision == r1
	})
	// Each wave began only after every host of the wave before it was
	// healthy on r1 for the soak time (the hosts' own healthySince).
	var sts []agent.Status
	var hostWave []string
	for _, h := range hosts {
		sts = append(sts, statusOf(t, h.a.Addr))
		hostWave = append(hostWave, h.wave)
		if unitActive(t, h.main+".service") != "active" {
			t.Errorf("%s: %s is %s", h.name, h.main, unitActive(t, h.main+".service"))
		}
	}
	healthy := wvHealthySince(t, r1, sts, hostWave)
	timings := wvWaveTimings(t, waves, moved, healthy, soak, start)
	t.Logf("good revision %s in 3 waves (soak %s): %s; done +%s", shortRev(r1), soak, strings.Join(timings, "; "),
		ro.At.Sub(start).Round(100*time.Millisecond))

	// The bad revision: the canary takes it, its probe never passes, the
	// canary quarantines it and goes back to r1; promote halts there.
	canary := hosts[0]
	r2 := repo.Commit("r2: extra units with a probe that never passes", docs(1, freePort(t)))
	badStart := time.Now()
	haltedAt := wvPromoteHalted(t, promoteArgs, canary.name, 60*time.Second)
	st := statusOf(t, canary.a.Addr)
	if st.QuarantinedRevision == nil || st.QuarantinedRevision.ID != r2 || st.Revision.ID != r1 {
		t.Errorf("canary: quarantined %+v, in force %+v", st.QuarantinedRevision, st.Revision)
	}
	awaitConverged(t, canary.a, r1, 30*time.Second)
	if unitActive(t, canary.extra+".service") == "active" {
		t.Errorf("the canary's extra unit still runs after the revert")
	}
	if !unitEverActive(t, canary.extra+".service") {
		t.Errorf("the canary never applied r2 (its extra unit never ran)")
	}
	for _, h := range hosts[1:] {
		if unitEverActive(t, h.extra+".service") {
			t.Errorf("%s applied r2: systemd saw %s active", h.name, h.extra)
		}
		if s := statusOf(t, h.a.Addr); s.Revision == nil || s.Revision.ID != r1 || hasRevisionEvent(s, r2) {
			t.Errorf("%s: revision %+v", h.name, s.Revision)
		}
	}
	t.Logf("bad revision %s: halted at the canary +%s after its commit; quarantined at %s (+%s)", shortRev(r2),
		haltedAt.Sub(badStart).Round(100*time.Millisecond), st.QuarantinedRevision.At.Format("15:04:05.000"),
		st.QuarantinedRevision.At.Sub(badStart).Round(100*time.Millisecond))

	// fleet status shows each host's wave, revision and rollout state.
	fs := cli(t, nil, "fleet", "status", "--agents", strings.Join(addrs, ","), "--source", repo.FileURL,
		"--waves", strings.Join(waves, ","), "--soak", soak.String())
	if !strings.Contains(fs.Stdout, "HALTED at wave canary: host "+canary.name) || !strings.Contains(fs.Stdout, "WAVE") {
		t.Errorf("fleet status:\n%s", fs.Stdout)
	}
	t.Logf("fleet status:\n%s", fs.Stdout)
}

func hasRevisionEvent(st agent.Status, rev string) bool {
	for _, ev := range st.Events {
		if ev.Type == names.EventRevision && ev.Revision == shortRev(rev) {
			return true
		}
	}
	return false
}

// wvPromoteUntil runs `reconciler promote promoteArgs -o json` every second
// until done says so, and returns when each wave's branch moved (by
// promote's own report), the last report and its run.
func wvPromoteUntil(t *testing.T, promoteArgs []string, what string, within time.Duration, done func(ro fleet.Rollout, code int) bool) (map[string]time.Time, fleet.Rollout, Run) {
	t.Helper()
	moved := map[string]time.Time{}
	deadline := time.Now().Add(within)
	for {
		r := cli(t, nil, append(promoteArgs, "-o", "json")...)
		if r.Code == 1 {
			t.Fatalf("%s: promote failed:\n%s\n%s", what, r.Stdout, r.Stderr)
		}
		var ro fleet.Rollout
		if err := json.Unmarshal([]byte(r.Stdout), &ro); err != nil {
			t.Fatalf("%s: promote -o json: %v\n%s", what, err, r.Stdout)
		}
		for _, w := range ro.Waves {
			if w.Promote != nil {
				moved[w.Name] = time.Now()
			}
		}
		if done(ro, r.Code) {
			return moved, ro, r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last promote (exit %d):\n%s", what, within, r.Code, r.Stdout)
		}
		time.Sleep(time.Second)
	}
}

// wvWaveTimings checks that each wave was promoted only after every host of
// the wave before it was healthy (healthy: wave -> when its last host became
// healthy) for the soak time, and says when each wave was promoted and
// healthy, counted from start.
func wvWaveTimings(t *testing.T, waves []string, moved, healthy map[string]time.Time, soak time.Duration, start time.Time) []string {
	t.Helper()
	var timings []string
	for i, w := range waves {
		if moved[w].IsZero() {
			t.Fatalf("wave %s was never promoted: %v", w, moved)
		}
		if i > 0 {
			prev := waves[i-1]
			if gate := healthy[prev].Add(soak); moved[w].Before(gate) {
				t.Errorf("wave %s promoted at %s, before wave %s was healthy for %s (at %s)", w,
					moved[w].Format("15:04:05.000"), prev, soak, gate.Format("15:04:05.000"))
			}
		}
		timings = append(timings, fmt.Sprintf("%s promoted +%s, healthy +%s", w,
			moved[w].Sub(start).Round(100*time.Millisecond), healthy[w].Sub(start).Round(100*time.Millisecond)))
	}
	return timings
}

// wvHealthySince checks that every host (sts[i], of wave hostWave[i]) runs
// rev healthy, and returns, per wave, when its last host became healthy on
// it (the hosts' own healthySince): what promote had to wait the soak time
// after.
func wvHealthySince(t *testing.T, rev string, sts []agent.Status, hostWave []string) map[string]time.Time {
	t.Helper()
	healthy := map[string]time.Time{}
	for i, st := range sts {
		if st.Revision == nil || st.Revision.ID != rev || st.Revision.HealthySince.IsZero() {
			t.Fatalf("%s: revision %+v after the rollout", st.Host, st.Revision)
		}
		if hs := st.Revision.HealthySince; hs.After(healthy[hostWave[i]]) {
			healthy[hostWave[i]] = hs
		}
	}
	return healthy
}

// wvPromoteHalted runs promote every second until the rollout halts at the
// canary (exit 2), checks that canary halted it, then runs it a few more
// times past the soak time, none of which may move a branch. It returns
// when the halt was first seen.
func wvPromoteHalted(t *testing.T, promoteArgs []string, canary string, within time.Duration) time.Time {
	t.Helper()
	_, halted, _ := wvPromoteUntil(t, promoteArgs, "the bad revision halted at the canary", within, func(ro fleet.Rollout, code int) bool {
		return code == 2 && ro.Halted
	})
	haltedAt := time.Now()
	cw := halted.Waves[0]
	var canaryState fleet.HostState
	for _, h := range cw.Hosts {
		if h.Host == canary {
			canaryState = h.State
		}
	}
	if cw.State != fleet.WaveHalted || cw.Halt == nil || cw.Halt.Host != canary || canaryState != fleet.HostHalted {
		t.Errorf("canary wave %+v: want halted by %s", cw, canary)
	}
	var hr Run
	for range 4 {
		hr = cli(t, nil, promoteArgs...).mustCode(t, 2, "promote while halted")
		if strings.Contains(hr.Stderr, "promoted") {
			t.Errorf("promote moved a branch while halted:\n%s", hr.Stderr)
		}
		time.Sleep(time.Second)
	}
	t.Logf("promote while halted:\n%s", hr.Stdout)
	return haltedAt
}
