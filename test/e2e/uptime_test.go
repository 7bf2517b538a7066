//go:build e2e

package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

// TestUptimeInStatus: an agent shows since when a swarm service and a
// systemd template's instance have run, in /status, the page and
// /metrics. The swarm service's is its creation (no update since); the
// systemd instance's is read with its restartOn record, as systemd tells.
func TestUptimeInStatus(t *testing.T) {
	lockTestbed(t, "usm-poller")
	stopPollers(t)
	t.Cleanup(func() { stopPollers(t) })
	cli0, name := newOwnService(t, "uptime-swarm", 1)
	ctx := ctxT(t, 2*time.Minute)
	svc, _, err := cli0.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	repo := newGitRepo(t, "uptime")
	repo.Commit("uptime", map[string]string{"host.yaml": hostDoc("sat-uptime",
		fmt.Sprintf("    - {name: %s, replicas: 1, stopTimeout: 5s}\n", name)+
			"    - {name: usm-poller, driver: systemd, unit: usm-poller@.service, replicas: 1, restartOn: v1}\n")})
	start := time.Now()
	a := startAgent(t, agentConfig{Source: repo.HTTPURL, Host: "sat-uptime"})
	swarmSubj, sdSubj := "swarm/"+name, "systemd/usm-poller"
	var swarmSince, sdSince time.Time
	var sdReplicas map[string]time.Time
	eventually(t, 60*time.Second, "since of both services in /status", func() error {
		st, err := tryAgentStatus(a.Addr)
		if err != nil {
			return err
		}
		swarmSince, sdSince = time.Time{}, time.Time{}
		for _, o := range st.Objects {
			switch o.Subject {
			case swarmSubj:
				swarmSince = o.Since
			case sdSubj:
				sdSince, sdReplicas = o.Since, o.ReplicasSince
			}
		}
		if swarmSince.IsZero() || sdSince.IsZero() {
			return fmt.Errorf("since: %s %v, %s %v; objects %+v", swarmSubj, swarmSince, sdSubj, sdSince, st.Objects)
		}
		return nil
	})
	t.Logf("since in /status after %s: %s %s, %s %s %v", time.Since(start).Round(time.Millisecond),
		swarmSubj, swarmSince.Format(time.RFC3339Nano), sdSubj, sdSince.Format(time.RFC3339Nano), sdReplicas)
	if !swarmSince.Equal(svc.CreatedAt) {
		t.Errorf("%s since %v, want its creation %v", swarmSubj, swarmSince, svc.CreatedAt)
	}
	// systemd's own word for the instance's start, to the microsecond.
	want := systemdStart(t, "usm-poller@1.service")
	if !sdSince.Equal(want) || !sdReplicas["usm-poller@1.service"].Equal(want) {
		t.Errorf("%s since %v (replicas %v), systemd says usm-poller@1 started %v", sdSubj, sdSince, sdReplicas, want)
	}
	if sdSince.Before(start.Add(-time.Second)) {
		t.Errorf("%s since %v, before the agent started it (%v)", sdSubj, sdSince, start)
	}
	out := cli(t, nil, "status", "--listen", a.Addr).mustCode(t, 0, "reconciler status").Stdout
	for _, w := range []string{`uptime:`, regexp.QuoteMeta(swarmSubj) + ` +` + swarmSince.UTC().Format(time.RFC3339),
		regexp.QuoteMeta(sdSubj) + ` +` + want.UTC().Format(time.RFC3339) + ` +\S+ +usm-poller@1\.service `} {
		if !regexp.MustCompile(w).MatchString(out) {
			t.Errorf("reconciler status does not show %q:\n%s", w, out)
		}
	}
	_, page, err := agentGet(a.Addr, "/")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(page), "up since"); n < 2 {
		t.Errorf("the page shows %d \"up since\", want 2", n)
	}
	expectStarted(t, a.Addr, map[[2]string]int64{{"swarm", name}: svc.CreatedAt.Unix(), {"systemd", "usm-poller"}: want.Unix()})
}

// expectStarted checks reconciler_service_started_timestamp_seconds of
// each {driver, service} in the agent's /metrics.
func expectStarted(t *testing.T, addr string, want map[[2]string]int64) {
	t.Helper()
	_, metrics, err := agentGet(addr, "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for ds, at := range want {
		series := fmt.Sprintf(`reconciler_service_started_timestamp_seconds{driver=%q,service=%q} `, ds[0], ds[1])
		_, v, found := strings.Cut(string(metrics), "\n"+series)
		v, _, _ = strings.Cut(v, "\n")
		got, err := strconv.ParseFloat(v, 64)
		if !found || err != nil || int64(got) != at {
			t.Errorf("/metrics %s= %q (%v), want %d", series, v, err, at)
		}
	}
}

// systemdStart is systemd's own word for when unit's main process started
// (systemctl show), to the microsecond.
func systemdStart(t *testing.T, unit string) time.Time {
	t.Helper()
	out := strings.TrimSpace(inSystemd(t, "systemctl", "show", "-p", "ExecMainStartTimestamp", "--timestamp=us+utc", unit))
	at, err := time.Parse("Mon 2006-01-02 15:04:05.000000 MST", strings.TrimPrefix(out, "ExecMainStartTimestamp="))
	if err != nil {
		t.Fatalf("systemctl show %s: %q: %v", unit, out, err)
	}
	return at
}

// dockerStart is Docker's own word for when container started (docker
// inspect).
func dockerStart(t *testing.T, container string) time.Time {
	t.Helper()
	out := run(t, "", "docker", "inspect", "-f", "{{.State.StartedAt}}", container)
	at, err := time.Parse(time.RFC3339Nano, out)
	if err != nil {
		t.Fatalf("docker inspect %s: %q: %v", container, out, err)
	}
	return at
}

// TestUptimeComposeAndSystemd: the agent shows since when a compose
// container and a systemd instance without restartOn have run, as docker
// inspect and systemctl show tell, and follows a new start of each: the
// container stopped by hand and started again by the agent, the instance
// restarted by hand (a job the signal stream sees).
func TestUptimeComposeAndSystemd(t *testing.T) {
	lockTestbed(t, "usm-poller")
	stopPollers(t)
	t.Cleanup(func() { stopPollers(t) })
	p := newComposeProject(t)
	p.repo.Commit("uptime", map[string]string{"hosts/sat-7.yaml": hostDocWith(composeHost, "", fmt.Sprintf(`    - {name: %s, driver: compose, project: %s, replicas: 1, stopTimeout: 10s}
    - {name: usm-poller, driver: systemd, unit: usm-poller@.service, replicas: 1}
`, composeService, p.name))})
	a := startAgent(t, agentConfig{Source: p.repo.HTTPURL, Host: composeHost, Interval: "1s"})
	cSubj, sdSubj := "compose/"+composeService, "systemd/usm-poller"
	cName, unit := p.composeName(1), "usm-poller@1.service"
	// since waits until /status shows both starts as Docker and systemd
	// tell them (cond: which), and returns them.
	since := func(what string, cond func(c, sd time.Time) bool) (time.Time, time.Time) {
		t.Helper()
		var c, sd time.Time
		eventually(t, 60*time.Second, what, func() error {
			st, err := tryAgentStatus(a.Addr)
			if err != nil {
				return err
			}
			var cr, sdr map[string]time.Time
			for _, o := range st.Objects {
				switch o.Subject {
				case cSubj:
					c, cr = o.Since, o.ReplicasSince
				case sdSubj:
					sd, sdr = o.Since, o.ReplicasSince
				}
			}
			if c.IsZero() || sd.IsZero() || !cr[cName].Equal(c) || !sdr[unit].Equal(sd) || !cond(c, sd) {
				return fmt.Errorf("since: %s %v %v, %s %v %v", cSubj, c, cr, sdSubj, sd, sdr)
			}
			return nil
		})
		return c, sd
	}
	c0, sd0 := since("since of both in /status", func(c, sd time.Time) bool {
		return c.Equal(dockerStart(t, cName)) && sd.Equal(systemdStart(t, unit))
	})
	t.Logf("since: %s %s (docker inspect agrees), %s %s (systemctl show agrees)", cSubj, c0.Format(time.RFC3339Nano), sdSubj, sd0.Format(time.RFC3339Nano))
	expectStarted(t, a.Addr, map[[2]string]int64{{"compose", composeService}: c0.Unix(), {"systemd", "usm-poller"}: sd0.Unix()})

	// New starts: the container stopped by hand (the agent starts it again),
	// the instance restarted by hand.
	run(t, "", "docker", "stop", "-t", "10", cName)
	inSystemd(t, "systemctl", "restart", unit)
	c1, sd1 := since("the new starts in /status", func(c, sd time.Time) bool {
		return c.After(c0) && sd.After(sd0) && c.Equal(dockerStart(t, cName)) && sd.Equal(systemdStart(t, unit))
	})
	t.Logf("after docker stop and systemctl restart: %s %s, %s %s", cSubj, c1.Format(time.RFC3339Nano), sdSubj, sd1.Format(time.RFC3339Nano))
}
