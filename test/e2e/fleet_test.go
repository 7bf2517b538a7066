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

	r := cli(t, nil, "fleet", "status", "--agents", list).mustCode(t, 0, "fleet status, all converged")
	for _, h := range hosts {
		if !regexp.MustCompile(`(?m)^` + h + `\s+127\.0\.0\.1:\d+\s+` + rev[:12] + `\s+yes\s+off\s+0\s+.*\s+yes$`).MatchString(r.Stdout) {
			t.Errorf("no converged row for %s:\n%s", h, r.Stdout)
		}
	}
	if !strings.Contains(r.Stdout, "3 of 3 agents converged on "+rev[:12]) {
		t.Errorf("summary line:\n%s", r.Stdout)
	}

	// A newer commit that only two agents have seen yet would also be
	// "not converged"; here one agent is simply gone.
	agents[1].stop()
	r = cli(t, nil, "fleet", "status", "--agents", list, "--timeout", "2s").mustCode(t, 2, "fleet status, one agent stopped")
	if !regexp.MustCompile(`(?m)^\?\s+` + regexp.QuoteMeta(agents[1].Addr) + `\s+-\s+no\s+-\s+0\s+-\s+no: .*connection refused`).MatchString(r.Stdout) {
		t.Errorf("the stopped agent is not shown as unreachable:\n%s", r.Stdout)
	}
	if !strings.Contains(r.Stdout, "2 of 3 agents converged") {
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
