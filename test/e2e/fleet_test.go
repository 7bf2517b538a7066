//go:build e2e

package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestFleetStatus: three agents on 127.0.0.1 with different --host names,
// one of them stopped: the table says so and the exit status is 2; all three
// up and converged on the newest commit: exit 0.
func TestFleetStatus(t *testing.T) {
	repo := newGitRepo(t, "fleet")
	hosts := []string{"fleet-a", "fleet-b", "fleet-c"}
	files := map[string]string{}
	for _, h := range hosts {
		files["hosts/"+h+".yaml"] = fmt.Sprintf("apiVersion: reconciler.dev/v1\nkind: Host\nmetadata:\n  name: %s\nspec:\n  drift: enforce\n", h)
	}
	rev := repo.Commit("three hosts", files)
	var agents []*agentProc
	for _, h := range hosts {
		a := startAgent(t, agentConfig{Source: repo.HTTPURL, Host: h, Interval: "1s"})
		agents = append(agents, a)
	}
	var addrs []string
	for _, a := range agents {
		awaitConverged(t, a, rev, 30*time.Second)
		addrs = append(addrs, a.Addr)
	}
	list := strings.Join(addrs, ",")

	r := cli(t, nil, "fleet", "status", "--agents", list, "--all").mustCode(t, 0, "fleet status, all converged")
	for _, h := range hosts {
		if !regexp.MustCompile(`(?m)^` + h + `\s+127\.0\.0\.1:\d+\s+` + rev[:12] + `\s+yes\s+off\s+0\s+.*\s+yes$`).MatchString(r.Stdout) {
			t.Errorf("no converged row for %s:\n%s", h, r.Stdout)
		}
	}
	if !strings.HasPrefix(r.Stdout, "3 of 3 agents converged on "+rev[:12]+": 0 drifted, 0 on another revision, 0 unreachable\n") {
		t.Errorf("summary line:\n%s", r.Stdout)
	}
	// Without --all a fleet this small is still listed whole (up to
	// fleet.ListEveryUpTo agents); larger ones list only the exceptions
	// (TestFleetStatusThousandAgents).
	r = cli(t, nil, "fleet", "status", "--agents", list).mustCode(t, 0, "fleet status, all converged")
	for _, h := range hosts {
		if !regexp.MustCompile(`(?m)^`+h+`\s+127\.0\.0\.1:\d+\s+`+rev[:12]+`\s`).MatchString(r.Stdout) || strings.Contains(r.Stdout, "not listed") {
			t.Errorf("without --all, a small fleet is not listed whole (%s):\n%s", h, r.Stdout)
		}
	}

	// A newer commit that only two agents have seen yet would also be
	// "not converged"; here one agent is simply gone.
	agents[1].stop()
	r = cli(t, nil, "fleet", "status", "--agents", list, "--timeout", "2s").mustCode(t, 2, "fleet status, one agent stopped")
	if !regexp.MustCompile(`(?m)^\?\s+` + regexp.QuoteMeta(agents[1].Addr) + `\s+-\s+no\s+-\s+0\s+-\s+no: .*connection refused`).MatchString(r.Stdout) {
		t.Errorf("the stopped agent is not shown as unreachable:\n%s", r.Stdout)
	}
	if !strings.HasPrefix(r.Stdout, "2 of 3 agents converged on "+rev[:12]+": 0 drifted, 0 on another revision, 1 unreachable\n") {
		t.Errorf("summary line:\n%s", r.Stdout)
	}
	j := cli(t, nil, "fleet", "status", "--agents", list, "-o", "json").mustCode(t, 2, "fleet status -o json")
	if !strings.Contains(j.Stdout, `"converged": false`) || !strings.Contains(j.Stdout, `"reachable": false`) {
		t.Errorf("json:\n%s", j.Stdout)
	}
	// Judged against a revision nobody runs: not converged either.
	cli(t, nil, "fleet", "status", "--agents", addrs[0], "--revision", "0000000").mustCode(t, 2, "fleet status --revision")
	cli(t, nil, "fleet", "status", "--agents", addrs[0], "--revision", rev[:8]).mustCode(t, 0, "fleet status --revision prefix")
}

// TestFleetStatusPrometheus: three agents on loopback, scraped by the
// testbed's Prometheus with the example's job and rules. A manual scale of
// a service one of them reports drift on (drift: report) fires the rules'
// ReconcilerDrift for that agent's instance, and `fleet status
// --prometheus` names that host as drifted, from Prometheus alone.
func TestFleetStatusPrometheus(t *testing.T) {
	tb := testbed(t)
	lockTestbed(t, "prom-drift")
	docker := dockerClient(t)
	const svc = "prom-drift"
	removeServices(t, docker, []string{svc})
	ownService(t, docker, svc, 1)

	repo := newGitRepo(t, "fleet-prom")
	hosts := []string{"prom-a", "prom-b", "prom-c"}
	files := map[string]string{}
	for _, h := range hosts {
		files["hosts/"+h+".yaml"] = fmt.Sprintf("apiVersion: reconciler.dev/v1\nkind: Host\nmetadata:\n  name: %s\nspec:\n  drift: report\n", h)
	}
	files["hosts/prom-b.yaml"] += "  services:\n    - name: " + svc + "\n      replicas: 1\n"
	rev := repo.Commit("three hosts, one with a service", files)
	var addrs []string
	var agents []*agentProc
	for _, h := range hosts {
		agents = append(agents, startAgent(t, agentConfig{Source: repo.HTTPURL, Host: h, Interval: "1s"}))
	}
	for _, a := range agents {
		awaitConverged(t, a, rev, 30*time.Second)
		addrs = append(addrs, a.Addr)
	}
	list := strings.Join(addrs, ",")
	start := time.Now()
	promTargets(t, addrs, map[string]string{"site": "testbed"})
	awaitPromUp(t, addrs, 30*time.Second)
	t.Logf("Prometheus scrapes the three agents %s after their targets file was written", time.Since(start).Round(time.Millisecond))

	eventually(t, 30*time.Second, "fleet status --prometheus: all converged", func() error {
		r := cli(t, nil, "fleet", "status", "--prometheus", tb.PrometheusURL, "--agents", list)
		if want := "3 of 3 agents converged on " + rev[:12] + ": 0 drifted"; r.Code != 0 || !strings.HasPrefix(r.Stdout, want) {
			return fmt.Errorf("exit %d, want 0 and %q:\n%s%s", r.Code, want, r.Stdout, r.Stderr)
		}
		return nil
	})

	// By hand, as an operator would: the agent reports, does not revert.
	scaled := scaleByHand(t, docker, svc, 2)
	alert := awaitPromAlert(t, "ReconcilerDrift", addrs[1], 60*time.Second)
	t.Logf("ReconcilerDrift firing for %s (%s) %s after the manual scale: %v", hosts[1], addrs[1], time.Since(scaled).Round(time.Millisecond), alert.Labels)

	r := cli(t, nil, "fleet", "status", "--prometheus", tb.PrometheusURL, "--agents", list).mustCode(t, 2, "fleet status --prometheus, one drifted")
	t.Logf("fleet status --prometheus:\n%s", r.Stdout)
	if want := "2 of 3 agents converged on " + rev[:12] + ": 1 drifted, 0 on another revision, 0 unreachable\n"; !strings.HasPrefix(r.Stdout, want) {
		t.Errorf("summary line: want %q:\n%s", want, r.Stdout)
	}
	if !regexp.MustCompile(`(?m)^prom-b\s+` + regexp.QuoteMeta(addrs[1]) + `\s+` + rev[:12] + `\s+no\s+off\s+1\s+.*\s+yes$`).MatchString(r.Stdout) {
		t.Errorf("no drifted row for prom-b:\n%s", r.Stdout)
	}
	// Three agents are a small fleet: listed whole (fleet.ListEveryUpTo).
	for i, h := range []string{"prom-a", "prom-c"} {
		if !regexp.MustCompile(`(?m)^` + h + `\s+` + regexp.QuoteMeta(addrs[2*i]) + `\s+` + rev[:12] + `\s+yes\s+off\s+0\s`).MatchString(r.Stdout) {
			t.Errorf("no converged row for %s in a small fleet:\n%s", h, r.Stdout)
		}
	}
	// The agents themselves agree.
	direct := cli(t, nil, "fleet", "status", "--agents", list).mustCode(t, 2, "fleet status, one drifted")
	if !strings.HasPrefix(direct.Stdout, "2 of 3 agents converged on "+rev[:12]+": 1 drifted") {
		t.Errorf("fleet status asking the agents:\n%s", direct.Stdout)
	}
	// An agent Prometheus does not scrape is unreachable to this view.
	agents[2].stop()
	eventually(t, 30*time.Second, "fleet status --prometheus: a stopped agent unreachable", func() error {
		r := cli(t, nil, "fleet", "status", "--prometheus", tb.PrometheusURL, "--agents", list)
		if !strings.Contains(r.Stdout, "1 unreachable") || !strings.Contains(r.Stdout, "up == 0") {
			return fmt.Errorf("exit %d:\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		return nil
	})
}
