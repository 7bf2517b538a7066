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
	cli0 := dockerClient(t)
	name := uniqueName("uptime-swarm")
	ownService(t, cli0, name, 1)
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
	out := strings.TrimSpace(inSystemd(t, "systemctl", "show", "-p", "ExecMainStartTimestamp", "--timestamp=us+utc", "usm-poller@1.service"))
	want, err := time.Parse("Mon 2006-01-02 15:04:05.000000 MST", strings.TrimPrefix(out, "ExecMainStartTimestamp="))
	if err != nil {
		t.Fatalf("systemctl show: %q: %v", out, err)
	}
	if !sdSince.Equal(want) || !sdReplicas["usm-poller@1.service"].Equal(want) {
		t.Errorf("%s since %v (replicas %v), systemd says usm-poller@1 started %v", sdSubj, sdSince, sdReplicas, want)
	}
	if sdSince.Before(start.Add(-time.Second)) {
		t.Errorf("%s since %v, before the agent started it (%v)", sdSubj, sdSince, start)
	}
	out = cli(t, nil, "status", "--listen", a.Addr).mustCode(t, 0, "reconciler status").Stdout
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
	_, metrics, err := agentGet(a.Addr, "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for series, want := range map[string]int64{
		fmt.Sprintf(`reconciler_service_started_timestamp_seconds{driver="swarm",service=%q} `, name): svc.CreatedAt.Unix(),
		`reconciler_service_started_timestamp_seconds{driver="systemd",service="usm-poller"} `:        want.Unix(),
	} {
		_, v, found := strings.Cut(string(metrics), "\n"+series)
		v, _, _ = strings.Cut(v, "\n")
		got, err := strconv.ParseFloat(v, 64)
		if !found || err != nil || int64(got) != want {
			t.Errorf("/metrics %s= %q (%v), want %d", series, v, err, want)
		}
	}
}
