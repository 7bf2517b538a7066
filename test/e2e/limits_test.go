//go:build e2e

package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"reconciler.dev/reconciler/api/status"
)

// TestTrustLimitsRefuseExecProbe: an agent at its default limits (no
// --allow-exec-probes) refuses a commit that adds an exec probe, whole: the
// unit the same commit would stop stays active, the probe's command never
// runs, /status names the flag that would allow it, and the revision in
// force stays. The same commit is accepted by `plan --allow-exec-probes`.
func TestTrustLimitsRefuseExecProbe(t *testing.T) {
	unit := trustUnit(t)
	repo := newGitRepo(t, "trust-limits")
	g1 := repo.Commit("unit up", map[string]string{"hosts/" + trustHost + ".yaml": trustDoc(unit, true)})
	// A limit flag of the test's own: the helpers then add none of the
	// testbed's, so the agent runs at its defaults.
	a := startAgent(t, agentConfig{Source: repo.HTTPURL, Host: trustHost, Interval: "1s",
		Args: []string{"--daemontools-root", "/service"}})
	awaitConverged(t, a, g1, time.Minute)

	marker := filepath.Join(t.TempDir(), "probe-ran")
	bad := trustDoc(unit, false) + fmt.Sprintf(`  services:
    - name: %s
      driver: daemontools
      dir: /service/%s
      replicas: 0
      ready: {exec: [sh, -c, "touch %s"]}
`, uniqueName("probe"), uniqueName("never"), marker)
	c2 := repo.Commit("unit down, with an exec probe", map[string]string{"hosts/" + trustHost + ".yaml": bad})
	st := awaitRefusal(t, a, c2, g1, shortRev(c2)+" refused, and a pass enforced "+shortRev(g1)+" after it")
	fr := st.FailedRevision
	if fr.Cause != "invalid" || len(fr.Errors) != 1 || fr.Errors[0].Path == "" ||
		!strings.HasSuffix(fr.Errors[0].Path, ".ready.exec") || !strings.Contains(fr.Errors[0].Msg, "--allow-exec-probes") {
		t.Errorf("the refusal does not name the field and the flag: cause %q, errors %+v", fr.Cause, fr.Errors)
	}
	if st.Revision == nil || st.Revision.ID != g1 {
		t.Errorf("revision in force %+v, want %s", st.Revision, shortRev(g1))
	}
	if got := trustUnitState(t, unit); got != "active" {
		t.Errorf("after the refused commit: %s is %s, want active (refused whole)", unit, got)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the probe's command ran: %v", err)
	}
	plan := cli(t, nil, "plan", "--source", repo.HTTPURL, "--host", trustHost, "--cache-dir", t.TempDir(), "--daemontools-root", "/service")
	plan.mustCode(t, 1, "plan of the exec probe without --allow-exec-probes")
	if !strings.Contains(plan.Stderr, "--allow-exec-probes") {
		t.Errorf("plan's refusal does not name the flag:\n%s", plan.Stderr)
	}
	cli(t, nil, "plan", "--source", repo.HTTPURL, "--host", trustHost, "--cache-dir", t.TempDir(), "--daemontools-root", "/service", "--allow-exec-probes").
		mustCode(t, 2, "plan of the exec probe with --allow-exec-probes (drift: the unit would stop)")
}

// TestTrustEndpointToken: with --token-file the read endpoints answer 401
// without the token and 200 with it, /healthz stays open, `reconciler
// status --token-file` reads it, and a webhook on its own listener
// (--webhook-listen) triggers a pass while --listen no longer takes it.
func TestTrustEndpointToken(t *testing.T) {
	unit := trustUnit(t)
	repo := newGitRepo(t, "trust-token")
	g1 := repo.Commit("unit up", map[string]string{"hosts/" + trustHost + ".yaml": trustDoc(unit, true)})
	token := "e2e-token-" + uniqueName("tok")
	tokenFile := writeSecret(t, "token", token+"\n")
	secret, secretFile := newWebhookSecret(t)
	hookAddr := freePort(t)
	a := startAgent(t, agentConfig{Source: repo.HTTPURL, Host: trustHost, Interval: "1h",
		Args: []string{"--token-file", tokenFile, "--webhook-secret-file", secretFile, "--webhook-listen", hookAddr}})

	withToken := func(path, tok string) (int, []byte) {
		var header []string
		if tok != "" {
			header = []string{"Authorization", "Bearer " + tok}
		}
		ans, err := httpCall(5*time.Second, http.MethodGet, "http://"+a.Addr+path, nil, header...)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return ans.Code, ans.Body
	}
	status := func() status.Status {
		var st status.Status
		code, b := withToken("/status", token)
		if code != http.StatusOK {
			t.Fatalf("/status with the token: %d %s", code, b)
		}
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	eventually(t, time.Minute, "first pass with "+shortRev(g1), func() error {
		if st := status(); st.LastPass == nil || st.LastPass.Revision != g1 {
			return fmt.Errorf("last pass %+v", st.LastPass)
		}
		return nil
	})
	for _, p := range []string{"/status", "/metrics", "/", "/passes/last", "/events"} {
		if code, _ := withToken(p, ""); code != http.StatusUnauthorized {
			t.Errorf("%s without the token: %d, want 401", p, code)
		}
		if code, _ := withToken(p, "wrong-token-of-some-length"); code != http.StatusUnauthorized {
			t.Errorf("%s with a wrong token: %d, want 401", p, code)
		}
	}
	if code, _ := withToken("/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz without the token: %d, want 200", code)
	}
	cli(t, nil, "status", "--listen", a.Addr).mustCode(t, 1, "status without --token-file")
	out := cli(t, nil, "status", "--listen", a.Addr, "--token-file", tokenFile).mustCode(t, 0, "status --token-file")
	if !strings.Contains(out.Stdout, shortRev(g1)) {
		t.Errorf("status does not show %s:\n%s", shortRev(g1), out.Stdout)
	}

	g2 := repo.Commit("unit down", map[string]string{"hosts/" + trustHost + ".yaml": trustDoc(unit, false)})
	body := pushEventBody(g2)
	if code := postAgentWebhook(t, a.Addr, body, hubSignature(secret, body)); code == http.StatusAccepted {
		t.Errorf("--listen took the webhook (%d) although --webhook-listen serves it", code)
	}
	if code := postAgentWebhook(t, hookAddr, body, hubSignature(secret, body)); code != http.StatusAccepted {
		t.Fatalf("webhook on --webhook-listen: %d, want 202", code)
	}
	eventually(t, 30*time.Second, "the webhook's pass applies "+shortRev(g2), func() error {
		if st := status(); st.LastPass == nil || st.LastPass.Revision != g2 || st.LastPass.Trigger != "webhook" {
			return fmt.Errorf("last pass %+v", st.LastPass)
		}
		return nil
	})
	if got := trustUnitState(t, unit); got != "inactive" {
		t.Errorf("after the webhook's pass: %s is %s, want inactive", unit, got)
	}
}
