//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The testbed's Prometheus (hack/testbed prometheus_up) scrapes the job of
// examples/deploy/prometheus/ every second from the file_sd target files in
// Testbed.PrometheusTargetsDir, evaluates the example's rules every second
// (each `for:` cut to 2s), and sends the token of Testbed.PrometheusTokenFile
// to every agent. Tests add agents with promTargets and wait for alerts with
// awaitPromAlert; these work the same for agents on loopback and for agents
// in the test hosts' namespaces, whose addresses Prometheus reaches too.

// promTargets writes a target file naming addrs (host:port of agents'
// --listen) with labels, so Prometheus scrapes them within about a second,
// and removes it when the test ends. Agents whose --listen is not loopback
// must run with --token-file set to the file it returns (the token
// Prometheus sends); agents on loopback without one ignore the header.
func promTargets(t testing.TB, addrs []string, labels map[string]string) (tokenFile string) {
	t.Helper()
	tb := testbed(t)
	if tb.PrometheusTargetsDir == "" || tb.PrometheusTokenFile == "" {
		t.Fatal("TESTBED_PROMETHEUS_TARGETS_DIR or TESTBED_PROMETHEUS_TOKEN_FILE is not set: run hack/testbed up (it starts Prometheus)")
	}
	if labels == nil {
		labels = map[string]string{}
	}
	b, err := json.Marshal([]map[string]any{{"targets": addrs, "labels": labels}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(tb.PrometheusTargetsDir, uniqueName(strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))+".json")
	writeFileWhole(t, path, string(b), 0o644)
	t.Cleanup(func() { _ = os.Remove(path) })
	return tb.PrometheusTokenFile
}

// promGet asks the testbed's Prometheus API for path?query and decodes its
// "data" into out.
func promGet(timeout time.Duration, base, path string, query url.Values, out any) error {
	u := strings.TrimRight(base, "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	a, err := httpCall(timeout, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := a.decode(&env); err != nil {
		return fmt.Errorf("%s: %d: %w", u, a.Code, err)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s", u, env.Error)
	}
	return json.Unmarshal(env.Data, out)
}

// promAlert is one alert of /api/v1/alerts.
type promAlert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"` // pending or firing
}

// awaitPromAlert waits until Prometheus reports alert name firing for
// instance (an agent's address as written by promTargets) and returns it.
func awaitPromAlert(t testing.TB, name, instance string, within time.Duration) promAlert {
	t.Helper()
	tb := testbed(t)
	var got promAlert
	eventually(t, within, fmt.Sprintf("Prometheus alert %s firing for %s", name, instance), func() error {
		var data struct {
			Alerts []promAlert `json:"alerts"`
		}
		if err := promGet(5*time.Second, tb.PrometheusURL, "/api/v1/alerts", nil, &data); err != nil {
			return err
		}
		var seen []string
		for _, a := range data.Alerts {
			if a.Labels["alertname"] == name && a.Labels["instance"] == instance {
				if a.State == "firing" {
					got = a
					return nil
				}
				seen = append(seen, a.State)
			}
		}
		return fmt.Errorf("not firing (states seen for it: %v; %d alerts in all)", seen, len(data.Alerts))
	})
	return got
}

// awaitPromUp waits until Prometheus has scraped every addr successfully.
func awaitPromUp(t testing.TB, addrs []string, within time.Duration) {
	t.Helper()
	tb := testbed(t)
	eventually(t, within, "Prometheus scraping "+strings.Join(addrs, ", "), func() error {
		var data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		}
		if err := promGet(5*time.Second, tb.PrometheusURL, "/api/v1/query", url.Values{"query": {`up{job="reconciler"}`}}, &data); err != nil {
			return err
		}
		up := map[string]bool{}
		for _, r := range data.Result {
			up[r.Metric["instance"]] = r.Value[1] == "1"
		}
		for _, a := range addrs {
			if !up[a] {
				return fmt.Errorf("%s not up yet", a)
			}
		}
		return nil
	})
}

// TestPrometheusConfig: promtool accepts the example's rules and config and
// the testbed's (the same job and rules, targets from files), and the
// testbed's Prometheus has loaded the example's five rules.
func TestPrometheusConfig(t *testing.T) {
	tb := testbed(t)
	example := filepath.Join(repoRoot(), "examples", "deploy", "prometheus")
	cfgDir := filepath.Dir(tb.PrometheusTargetsDir)
	for _, args := range [][]string{
		{"check", "rules", filepath.Join(example, "reconciler-alerts.yml")},
		{"check", "config", filepath.Join(example, "prometheus.yml")},
		{"check", "rules", filepath.Join(cfgDir, "reconciler-alerts.yml")},
		{"check", "config", filepath.Join(cfgDir, "prometheus.yml")},
	} {
		if out, err := execOut("promtool", args...); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	var rules struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Name string `json:"name"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := promGet(10*time.Second, tb.PrometheusURL, "/api/v1/rules", nil, &rules); err != nil {
		t.Fatalf("Prometheus rules: %v", err)
	}
	var loaded []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			loaded = append(loaded, r.Name)
		}
	}
	for _, want := range []string{"ReconcilerDrift", "ReconcilerSourceStale", "ReconcilerRevisionRefused", "ReconcilerPassesFailing", "ReconcilerStopped"} {
		if !strings.Contains(strings.Join(loaded, " "), want) {
			t.Errorf("the testbed's Prometheus has not loaded rule %s (loaded: %v)", want, loaded)
		}
	}
}
