//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"

	"reconciler.dev/reconciler/agent"
	"reconciler.dev/reconciler/controllers/compose"
	"reconciler.dev/reconciler/fleet"
)

// wvhDoc is a test host's document for the waves on the hosts: its wave
// label and a compose project on its own dockerd (node-scoped: swarm
// services are written by the leader's agent alone, so they are no one
// host's), main at mainReplicas, and extra stopped or, in the bad revision,
// started with a probe that never passes.
func wvhDoc(host, wave, project string, mainReplicas int, bad string) string {
	doc := fmt.Sprintf(`apiVersion: reconciler.dev/v1
kind: Host
metadata:
  name: %s
  labels: {reconciler.dev/wave: %s}
spec:
  services:
    - name: main
      driver: compose
      project: %s
      replicas: %d
      stopTimeout: 2s
`, host, wave, project, mainReplicas)
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
	r0 := repo.Commit("r0: main stopped everywhere", docs(0, ""))
	for _, w := range waves { // the bootstrap: every wave's branch at r0
		run(t, repo.WorkTree, "git", "push", "-q", "origin", "HEAD:refs/heads/rollout/"+w)
	}
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
	promoteArgs := []string{"fleet", "promote", "--agents", strings.Join(addrs, ","), "--token-file", tokenFile,
		"--source", repo.FileURL, "--waves", strings.Join(waves, ","), "--soak", soak.String(), "--timeout", "3s"}

	// The good revision: main started on every host, wave by wave.
	r1 := repo.Commit("r1: main started", docs(1, ""))
	start := time.Now()
	moved, ro, _ := wvPromoteUntil(t, promoteArgs, "r1 rolled out", 60*time.Second, func(ro fleet.Rollout, code int) bool {
		if code != 0 {
			t.Fatalf("rollout of r1 halted: %+v", ro.Waves)
		}
		return ro.Done && ro.Revision == r1
	})
	var sts []agent.Status
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
	timings := wvWaveTimings(t, waves, moved, healthy, soak, start)
	t.Logf("good revision %s in 3 waves on 5 hosts (soak %s): %s; done +%s", shortRev(r1), soak, strings.Join(timings, "; "),
		ro.At.Sub(start).Round(100*time.Millisecond))

	// The bad revision: the canary takes it, its probe never passes, the
	// canary quarantines it and goes back to r1; promote halts there.
	canary := all[0]
	r2 := repo.Commit("r2: extra with a probe that never passes", docs(1, freePort(t)))
	badStart := time.Now()
	haltedAt := wvPromoteHalted(t, promoteArgs, canary.Name, 45*time.Second)
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
