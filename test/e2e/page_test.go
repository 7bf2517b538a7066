//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPageInABrowser looks at the agent's status page in headless Chromium:
// the revision in force; a service scaled by hand shown as drift; the same
// row turning "in sync" without a reload once the agent reverts it; a
// refused revision with its file:line. Screenshots of the three states are
// saved in the test's temporary folder, or in $SCREENSHOT_DIR to keep them
// (UPDATE_SCREENSHOTS=1 also writes the first to docs/status-page.png, the
// README's picture).
func TestPageInABrowser(t *testing.T) {
	f := deployFactoryProxy(t)
	secret, secretFile := newWebhookSecret(t)
	a := startAgent(t, agentConfig{Source: f.repo.HTTPURL, Interval: "1h",
		Args: []string{"--webhook-secret-file", secretFile, "--monitor-interval", "2s"}})
	rev := fpHead(f)
	awaitConverged(t, a, rev, 60*time.Second)
	shots := t.TempDir()
	if d := os.Getenv("SCREENSHOT_DIR"); d != "" {
		shots = d // keep them after the test
	}
	b := newBrowser(t)
	page := "http://" + a.Addr + "/"

	push := func() {
		t.Helper()
		if code := postAgentWebhook(t, a.Addr, pushEventBody(fpHead(f)), hubSignature(secret, pushEventBody(fpHead(f)))); code != 202 {
			t.Fatalf("webhook: %d", code)
		}
	}
	wait := func(what string, cond func() error) {
		t.Helper()
		eventually(t, 60*time.Second, what, cond)
	}

	// 1. The revision in force, everything in sync.
	b.open(page)
	wait("the page shows the revision", func() error {
		if got := b.text("#revision"); !strings.Contains(got, rev[:12]) {
			return fmt.Errorf("#revision: %q", got)
		}
		if got := b.text("#verdict"); got != "in sync" {
			return fmt.Errorf("#verdict: %q", got)
		}
		return nil
	})
	wait("the page shows resource figures (it updates itself)", func() error {
		if got := b.text(`tr[data-subject="swarm/factory-broker"] td.resources`); !strings.Contains(got, "RSS ") || !strings.Contains(got, "proc") {
			return fmt.Errorf("resources cell: %q", got)
		}
		return nil
	})
	first := b.screenshot(filepath.Join(shots, "1-in-sync.png"))
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		data, _ := os.ReadFile(first)
		writeFile(t, filepath.Join(repoRoot(), "docs", "status-page.png"), data, 0o644)
	}

	// On a phone: nothing wider than the screen but the table, which scrolls
	// inside its own box.
	b.resize(390, 844)
	if w := b.exec(`return document.documentElement.scrollWidth <= window.innerWidth + 1;`); w != true {
		t.Errorf("the page is wider than a phone's screen")
	}
	b.screenshot(filepath.Join(shots, "1-phone.png"))
	b.resize(1280, 1400)

	// 2. Scaled by hand while the service is report-only: the page shows the
	// drift (the live value, the desired value, since when).
	f.edit("report factory-proxy only", func(s string) string {
		return strings.Replace(s, "    - name: factory-proxy\n      replicas: 1\n", "    - name: factory-proxy\n      replicas: 1\n      drift: report\n", 1)
	})
	// The report-only revision goes in force first: a scale by hand before
	// it would be reverted at once by a drift pass of the enforcing one.
	push()
	head := fpHead(f)
	wait("the page shows the report-only revision", func() error {
		if got := b.text("#revision"); !strings.Contains(got, head[:12]) {
			return fmt.Errorf("revision on the page: %q, want %s", got, head[:12])
		}
		return nil
	})
	run(t, "", "docker", "service", "scale", "-d", "factory-proxy=3")
	wait("the page shows the drift (it updates itself)", func() error {
		row := b.text(`tr[data-subject="swarm/factory-proxy"]`)
		if !strings.Contains(row, "replicas 3 → 1") || !strings.Contains(row, "report-only") {
			return fmt.Errorf("row: %q", row)
		}
		return nil
	})
	b.screenshot(filepath.Join(shots, "2-drift.png"))

	// 3. Enforced again: the agent reverts it, and the row turns "in sync"
	// with no reload (the marker set in the page survives).
	b.exec(`window.__noReload = "still here"; return null;`)
	f.edit("enforce factory-proxy", func(s string) string { return strings.Replace(s, "      drift: report\n", "", 1) })
	push()
	wait("the row turns in sync without a reload", func() error {
		row := b.text(`tr[data-subject="swarm/factory-proxy"]`)
		if !strings.Contains(row, "in sync") {
			return fmt.Errorf("row: %q", row)
		}
		if m, _ := b.exec(`return window.__noReload || "";`).(string); m != "still here" {
			return fmt.Errorf("the page was reloaded")
		}
		return nil
	})
	if n := f.specReplicas("factory-proxy"); n != 1 {
		t.Errorf("factory-proxy asks for %d replicas after the agent reverted it", n)
	}

	// 4. A refused revision, with its file:line, and everything from git
	// shown as text: a commit message and a field name that are markup.
	f.files[fpFile] = strings.Replace(f.files[fpFile], "spec:\n", "spec:\n  <script>window.__xss=2</script>: 1\n", 1)
	good := fpHead(f)
	bad := f.repo.Commit("<script>window.__xss=3</script> a bad commit", map[string]string{fpFile: f.files[fpFile]})
	push()
	wait("the page shows the refused revision", func() error {
		got := b.text("#refused")
		if !strings.Contains(got, bad[:12]) || !strings.Contains(got, "hosts/fp-01.yaml:") {
			return fmt.Errorf("#refused: %q", got)
		}
		return nil
	})
	refused := b.text("#refused")
	line := lineOfText(f.files[fpFile], "<script>window.__xss=2</script>")
	if !strings.Contains(refused, fmt.Sprintf("hosts/fp-01.yaml:%d:3", line)) {
		t.Errorf("the refused revision does not point at line %d:\n%s", line, refused)
	}
	if !strings.Contains(refused, "<script>window.__xss=3</script>") || !strings.Contains(refused, `unknown field "<script>window.__xss=2</script>"`) {
		t.Errorf("markup from git is not shown as text:\n%s", refused)
	}
	if x := b.exec(`return window.__xss === undefined ? "none" : String(window.__xss);`); x != "none" {
		t.Errorf("markup from git ran in the page: window.__xss = %v", x)
	}
	b.screenshot(filepath.Join(shots, "3-refused.png"))

	// Without JavaScript the same facts are in the HTML as served.
	_, html, err := agentGet(a.Addr, "/")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{good[:12], bad[:12], "&lt;script&gt;window.__xss=3&lt;/script&gt;"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("the served HTML lacks %q", want)
		}
	}
	if strings.Contains(string(html), "<script>window.__xss") {
		t.Error("the served HTML carries markup from git unescaped")
	}
}
