//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// amAlert is what Alertmanager's GET /api/v2/alerts says of one alert.
type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

// alertsOf lists the alerts Alertmanager holds for host (active only, as
// its API serves them by default: a resolved alert is gone from the list).
func alertsOf(t testing.TB, base, host string) ([]amAlert, error) {
	q := url.Values{"filter": {fmt.Sprintf("host=%q", host)}}
	a, err := httpCall(10*time.Second, http.MethodGet, base+"/api/v2/alerts?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	if a.Code != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v2/alerts: %s", a.Status)
	}
	var out []amAlert
	return out, a.decode(&out)
}

// TestNotifyAlertmanagerFailedPassThenResolved: a commit whose daemontools
// service has no supervise fails its pass; the agent's pass-failed alert is
// then in Debian's Alertmanager (read back through its API v2) with the
// host, revision and pass; the next commit, which declares nothing, passes
// and the alert is resolved (no longer active).
func TestNotifyAlertmanagerFailedPassThenResolved(t *testing.T) {
	tb := testbed(t)
	if tb.AlertmanagerURL == "" {
		t.Fatal("TESTBED_ALERTMANAGER_URL is not set: run hack/testbed up (it starts prometheus-alertmanager)")
	}
	host := uniqueName("notify")
	never := filepath.Join(t.TempDir(), "never-supervised")
	if err := os.MkdirAll(never, 0o755); err != nil {
		t.Fatal(err)
	}
	notifyFile := filepath.Join(t.TempDir(), "notify.yaml")
	writeFile(t, notifyFile, fmt.Sprintf("targets:\n  - kind: alertmanager\n    url: %s\n", tb.AlertmanagerURL), 0o644)
	repo := newGitRepo(t, "notify")
	bad := repo.Commit("a service with no supervise", map[string]string{"hosts/" + host + ".yaml": fmt.Sprintf(`apiVersion: reconciler.dev/v1
kind: Host
metadata: {name: %s}
spec:
  services:
    - {name: never, driver: daemontools, replicas: 1, dir: %s}
`, host, never)})

	a := startAgent(t, agentConfig{Source: repo.FileURL, Host: host, Interval: "1s", Args: []string{"--notify-file", notifyFile}})
	var fired amAlert
	eventually(t, 30*time.Second, "a pass-failed alert for "+host+" in Alertmanager", func() error {
		alerts, err := alertsOf(t, tb.AlertmanagerURL, host)
		if err != nil {
			return err
		}
		for _, al := range alerts {
			if al.Labels["alertname"] == "ReconcilerPassFailed" && al.Status.State == "active" {
				fired = al
				return nil
			}
		}
		return fmt.Errorf("alerts: %+v", alerts)
	})
	t.Logf("firing: labels %v annotations %v starts %s ends %s", fired.Labels, fired.Annotations, fired.StartsAt, fired.EndsAt)
	if fired.Annotations["revision"] != bad {
		t.Errorf("alert revision %q, want %s", fired.Annotations["revision"], bad)
	}
	if fired.Annotations["pass"] == "" {
		t.Errorf("alert names no pass: %v", fired.Annotations)
	}
	if st := statusOf(t, a.Addr); st.LastPass == nil || st.LastPass.Result == "converged" || st.LastPass.Result == "in-sync" {
		t.Errorf("the last pass did not fail: %+v", st.LastPass)
	}

	good := repo.Commit("nothing declared", map[string]string{"hosts/" + host + ".yaml": fmt.Sprintf(`apiVersion: reconciler.dev/v1
kind: Host
metadata: {name: %s}
spec:
  services: []
`, host)})
	awaitConverged(t, a, good, 60*time.Second)
	eventually(t, 30*time.Second, "the pass-failed alert of "+host+" resolved", func() error {
		alerts, err := alertsOf(t, tb.AlertmanagerURL, host)
		if err != nil {
			return err
		}
		for _, al := range alerts {
			if al.Labels["alertname"] == "ReconcilerPassFailed" {
				return fmt.Errorf("still listed: %+v", al)
			}
		}
		return nil
	})
}
