//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
	"reconciler.dev/reconciler/controllers/compose"
	"reconciler.dev/reconciler/fleet"
)

// wvHost is one host of the waves test: its agent and its own two systemd
// units (no two agents write the same object).
type wvHost struct {
	name, wave  string
	main, extra string // unit names without .service
	a           *agentProc
}

// wvHostDoc is the start of a host's document, up to its services: its
// name and its wave label.
func wvHostDoc(host, wave string) string {
	return fmt.Sprintf(`apiVersion: reconciler.dev/v1
kind: Host
metadata:
  name: %s
  labels: {reconciler.dev/wave: %s}
spec:
  services:
`, host, wave)
}

// wvDoc is a host's document: its wave label, main at 1 or 0, and extra.
func wvDoc(h wvHost, mainReplicas int, bad string) string {
	doc := wvHostDoc(h.name, h.wave) + fmt.Sprintf(`    - name: %s
      driver: systemd
      replicas: %d
`, h.main, mainReplicas)
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
	rollout := &wvRollout{t: t, repo: repo, waves: waves, soak: soak}
	r0 := rollout.bootstrap(docs(0, ""))
	var addrs []string
	for _, h := range hosts {
		h.a = startAgent(t, agentConfig{Source: repo.FileURL, Host: h.name, Interval: "1s",
			Args: []string{"--ref", "rollout/" + h.wave, "--healthy-within", "4s", "--monitor-interval", "0"}})
		addrs = append(addrs, h.a.Addr)
	}
	for _, h := range hosts {
		awaitConverged(t, h.a, r0, 60*time.Second)
	}
	rollout.promoteArgs = []string{"fleet", "promote", "--agents", strings.Join(addrs, ","), "--source", repo.FileURL,
		"--waves", strings.Join(waves, ","), "--soak", soak.String(), "--timeout", "3s"}

	// The good revision: main started everywhere, wave by wave.
	r1, start, moved, ro := rollout.good(docs(1, ""), 120*time.Second)
	// Each wave began only after every host of the wave before it was
	// healthy on r1 for the soak time (the hosts' own healthySince).
	var sts []status.Status
	var hostWave []string
	for _, h := range hosts {
		sts = append(sts, statusOf(t, h.a.Addr))
		hostWave = append(hostWave, h.wave)
		if unitActive(t, h.main+".service") != "active" {
			t.Errorf("%s: %s is %s", h.name, h.main, unitActive(t, h.main+".service"))
		}
	}
	rollout.checkWaves("", r1, start, moved, ro, wvHealthySince(t, r1, sts, hostWave))

	// The bad revision: the canary takes it, its probe never passes, the
	// canary quarantines it and goes back to r1; promote halts there.
	canary := hosts[0]
	r2, badStart, haltedAt := rollout.bad("r2: extra units with a probe that never passes", docs(1, freePort(t)), canary.name, 60*time.Second)
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

// wvhDoc is a test host's document for the waves on the hosts: its wave
// label and a compose project on its own dockerd (node-scoped: swarm
// services are written by the leader's agent alone, so they are no one
// host's), main at mainReplicas, and extra stopped or, in the bad revision,
// started with a probe that never passes.
func wvhDoc(host, wave, project string, mainReplicas int, bad string) string {
	doc := wvHostDoc(host, wave) + fmt.Sprintf(`    - name: main
      driver: compose
      project: %s
      replicas: %d
      stopTimeout: 2s
`, project, mainReplicas)
	if bad == "" {
		return doc + fmt.Sprintf("    - name: extra\n      driver: compose\n      project: %s\n      replicas: 0\n      stopTimeout: 2s\n", project)
	}
	return doc + fmt.Sprintf("    - name: extra\n      driver: compose\n      project: %s\n      replicas: 1\n      stopTimeout: 2s\n      ready: {tcp: %q, timeout: 1s}\n", project, bad)
}

// containerEvents returns the times of a container's events with the given
// action (by its name), from Docker's events.
func (el *eventLog) containerEvents(name string, action events.Action) []time.Time {
	el.mu.Lock()
	defer el.mu.Unlock()
	var at []time.Time
	for _, m := range el.events {
		if m.Type == events.ContainerEventType && m.Action == action && m.Actor.Attributes["name"] == name {
			at = append(at, time.Unix(0, m.TimeNano))
		}
	}
	return at
}

// TestWavesRolloutHosts is TestWavesRollout on five test hosts (hack/testbed
// hosts up 5): one agent per host inside its network namespace, on its own
// dockerd, following the branch of its wave (1 canary, 2, then 2) from the
// hosts' git server; `reconciler fleet promote`, run every second from the
// root namespace as a timer would, reads their /status over the hosts'
// network and pushes the branches over file://. A good revision reaches
// each wave only after every host of the wave before it was converged and
// ready for the soak time; a bad one (a probe that never passes) stops at
// the canary, is reverted and quarantined there, the rollout halts naming
// the canary, and no other host ever applies it (no other dockerd ever
// started its extra container: each host's Docker events).
func TestWavesRolloutHosts(t *testing.T) {
	const soak = 3 * time.Second
	all, gitURL := testHosts(t, 5)
	began := time.Now() // after the wait for the lock and hosts up
	ctx := ctxT(t, 3*time.Minute)
	waves := []string{"canary", "second", "rest"}
	hostWave := []string{"canary", "second", "second", "rest", "rest"}

	// Every host's compose project, made once and stopped (a compose
	// project at 0 keeps its containers).
	project := uniqueName("wvh")
	mainC, extraC := compose.ContainerName(project, "main", 1), compose.ContainerName(project, "extra", 1)
	for _, h := range all {
		h.composeContainers(ctx, t, project, "main", "extra")
	}
	watch := watchHostsEvents(t, all)

	repo := newGitRepo(t, "waves-hosts")
	docs := func(main int, bad string) map[string]string {
		files := map[string]string{}
		for i, h := range all {
			files["hosts/"+h.Name+".yaml"] = wvhDoc(h.Name, hostWave[i], project, main, bad)
		}
		return files
	}
	rollout := &wvRollout{t: t, repo: repo, waves: waves, soak: soak}
	r0 := rollout.bootstrap(docs(0, ""))
	token := "waves-hosts-token-0123456789abcdef"
	tokenFile := writeSecret(t, "token", token)
	var addrs []string
	for i, h := range all {
		h.agent = startAgent(t, agentConfig{
			Source: gitURL + "/" + repo.Name, Host: h.Name, Interval: "1s",
			Listen: h.Addr + ":9440", Wrap: []string{"nsenter", "--net=" + h.Netns},
			Env: []string{"DOCKER_HOST=" + h.Docker},
			Args: []string{"--token-file", tokenFile, "--ref", "rollout/" + hostWave[i],
				"--healthy-within", "4s", "--monitor-interval", "0"},
		})
		addrs = append(addrs, h.agent.Addr)
	}
	// healthyOn is a host's /status once rev is in force, its last pass made
	// with it converged (or in sync) and the revision healthy.
	healthyOn := func(h *testHost, rev string) error {
		st, err := hostStatus(h.agent.Addr, token)
		if err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
		if st.Revision == nil || st.Revision.ID != rev || st.Revision.HealthySince.IsZero() {
			return fmt.Errorf("%s: revision in force %+v, want %s healthy", h.Name, st.Revision, shortRev(rev))
		}
		if lp := st.LastPass; lp == nil || lp.Revision != rev || (lp.Result != "converged" && lp.Result != "in-sync") {
			return fmt.Errorf("%s: last pass %+v", h.Name, lp)
		}
		return nil
	}
	eventually(t, 60*time.Second, "every host's agent healthy on r0", func() error {
		for _, h := range all {
			if err := healthyOn(h, r0); err != nil {
				return err
			}
		}
		return nil
	})
	setup := time.Since(began)
	rollout.promoteArgs = []string{"fleet", "promote", "--agents", strings.Join(addrs, ","), "--token-file", tokenFile,
		"--source", repo.FileURL, "--waves", strings.Join(waves, ","), "--soak", soak.String(), "--timeout", "3s"}

	// The good revision: main started on every host, wave by wave.
	r1, start, moved, ro := rollout.good(docs(1, ""), 60*time.Second)
	var sts []status.Status
	for _, h := range all {
		st, err := hostStatus(h.agent.Addr, token)
		if err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		sts = append(sts, st)
	}
	healthy := wvHealthySince(t, r1, sts, hostWave)
	for i, h := range all {
		if c, err := h.cli.ContainerInspect(ctx, mainC); err != nil || !c.State.Running {
			t.Errorf("%s: its main container is not running (%v)", h.Name, err)
		}
		// The host's own dockerd started its main container once, after
		// its wave was promoted.
		if starts := watch[i].containerEvents(mainC, events.ActionStart); len(starts) != 1 || starts[0].Before(moved[hostWave[i]].Add(-time.Second)) {
			t.Errorf("%s: main started at %v, its wave %s promoted at %s", h.Name, starts, hostWave[i], moved[hostWave[i]].Format("15:04:05.000"))
		}
	}
	rollout.checkWaves(" on 5 hosts", r1, start, moved, ro, healthy)

	// The bad revision: the canary takes it, its probe never passes, the
	// canary quarantines it and goes back to r1; promote halts there.
	canary := all[0]
	r2, badStart, haltedAt := rollout.bad("r2: extra with a probe that never passes", docs(1, freePort(t)), canary.Name, 45*time.Second)
	eventually(t, 20*time.Second, "the canary back on r1", func() error { return healthyOn(canary, r1) })
	st, err := hostStatus(canary.agent.Addr, token)
	if err != nil {
		t.Fatal(err)
	}
	if st.QuarantinedRevision == nil || st.QuarantinedRevision.ID != r2 {
		t.Fatalf("canary: quarantined %+v, want %s", st.QuarantinedRevision, shortRev(r2))
	}
	// From the canary's dockerd: extra started (r2 applied), then stopped
	// (the revert), main never stopped.
	time.Sleep(500 * time.Millisecond) // the events of the revert's stop
	starts, dies := watch[0].containerEvents(extraC, events.ActionStart), watch[0].containerEvents(extraC, events.ActionDie)
	if len(starts) != 1 || len(dies) != 1 || !dies[0].After(starts[0]) {
		t.Errorf("the canary's extra: started %v, died %v; want started once by r2, then stopped by the revert\n%s", starts, dies, watch[0].summary())
	}
	if c, err := canary.cli.ContainerInspect(ctx, extraC); err != nil || c.State.Running {
		t.Errorf("the canary's extra still runs after the revert (%v)", err)
	}
	if d := watch[0].containerEvents(mainC, events.ActionDie); len(d) != 0 {
		t.Errorf("the canary's main died during the bad revision: %v", d)
	}
	// No other host ever applied r2: no other dockerd started its extra.
	for i, h := range all[1:] {
		if s := watch[i+1].containerEvents(extraC, events.ActionStart); len(s) != 0 {
			t.Errorf("%s applied r2: its dockerd started %s at %v", h.Name, extraC, s)
		}
		s, err := hostStatus(h.agent.Addr, token)
		if err != nil {
			t.Fatal(err)
		}
		if s.Revision == nil || s.Revision.ID != r1 || hasRevisionEvent(s, r2) {
			t.Errorf("%s: revision %+v", h.Name, s.Revision)
		}
	}
	if len(starts) > 0 && len(dies) > 0 {
		t.Logf("bad revision %s: committed -> canary's extra started +%s -> quarantined +%s -> extra stopped (revert) +%s; promote halted at the canary +%s; no other host started it",
			shortRev(r2), starts[0].Sub(badStart).Round(100*time.Millisecond), st.QuarantinedRevision.At.Sub(badStart).Round(100*time.Millisecond),
			dies[0].Sub(badStart).Round(100*time.Millisecond), haltedAt.Sub(badStart).Round(100*time.Millisecond))
	}
	t.Logf("timings: setup after hosts up (containers, 5 agents healthy on r0) %s; good rollout %s; the test after hosts up %s",
		setup.Round(100*time.Millisecond), ro.At.Sub(start).Round(100*time.Millisecond), time.Since(began).Round(100*time.Millisecond))
}

func hasRevisionEvent(st status.Status, rev string) bool {
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

// wvRollout is one test's rollout of its repo over the waves' branches
// (rollout/<wave>), which `reconciler fleet promote promoteArgs` moves.
type wvRollout struct {
	t           *testing.T
	repo        *GitRepo
	waves       []string
	soak        time.Duration
	promoteArgs []string // set once the agents run
}

// bootstrap commits r0 (files) and points every wave's branch at it.
func (w *wvRollout) bootstrap(files map[string]string) string {
	w.t.Helper()
	r0 := w.repo.Commit("r0: main stopped everywhere", files)
	for _, wave := range w.waves {
		run(w.t, w.repo.WorkTree, "git", "push", "-q", "origin", "HEAD:refs/heads/rollout/"+wave)
	}
	return r0
}

// good commits the good revision r1 (files) and runs promote until r1 is
// rolled out to every wave, failing the test if the rollout halts. It
// returns r1, when it was committed, when each wave's branch moved and
// promote's last report.
func (w *wvRollout) good(files map[string]string, within time.Duration) (string, time.Time, map[string]time.Time, fleet.Rollout) {
	w.t.Helper()
	r1 := w.repo.Commit("r1: main started", files)
	start := time.Now()
	moved, ro, _ := wvPromoteUntil(w.t, w.promoteArgs, "r1 rolled out", within, func(ro fleet.Rollout, code int) bool {
		if code != 0 {
			w.t.Fatalf("rollout of r1 halted: %+v", ro.Waves)
		}
		return ro.Done && ro.Revision == r1
	})
	return r1, start, moved, ro
}

// checkWaves checks the good rollout's waves against the hosts' health
// (wvWaveTimings) and logs their timings; where says where the hosts are.
func (w *wvRollout) checkWaves(where, r1 string, start time.Time, moved map[string]time.Time, ro fleet.Rollout, healthy map[string]time.Time) {
	w.t.Helper()
	timings := wvWaveTimings(w.t, w.waves, moved, healthy, w.soak, start)
	w.t.Logf("good revision %s in %d waves%s (soak %s): %s; done +%s", shortRev(r1), len(w.waves), where, w.soak,
		strings.Join(timings, "; "), ro.At.Sub(start).Round(100*time.Millisecond))
}

// bad commits the bad revision r2 (msg, files) and runs promote until the
// rollout halts at canary (wvPromoteHalted). It returns r2, when it was
// committed and when the halt was first seen.
func (w *wvRollout) bad(msg string, files map[string]string, canary string, within time.Duration) (string, time.Time, time.Time) {
	w.t.Helper()
	r2 := w.repo.Commit(msg, files)
	badStart := time.Now()
	return r2, badStart, wvPromoteHalted(w.t, w.promoteArgs, canary, within)
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
func wvHealthySince(t *testing.T, rev string, sts []status.Status, hostWave []string) map[string]time.Time {
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
