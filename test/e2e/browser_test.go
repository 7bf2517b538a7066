//go:build e2e

package e2e

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A small W3C WebDriver client for headless Chromium driven by chromedriver,
// both from Debian's packages (no browser download). Tests use it to look at
// the status page the way a person would.

type browser struct {
	t       testing.TB
	base    string // chromedriver's URL
	session string
}

// newBrowser starts chromedriver and a headless Chromium session; both end
// with the test.
func newBrowser(t testing.TB) *browser {
	t.Helper()
	for _, bin := range []string{"/usr/bin/chromium", "/usr/bin/chromedriver"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is missing: hack/testbed up installs Debian's chromium and chromium-driver", bin)
		}
	}
	addr := freePort(t.(*testing.T))
	port := addr[strings.LastIndex(addr, ":")+1:]
	cmd := exec.Command("/usr/bin/chromedriver", "--port="+port, "--allowed-ips=127.0.0.1")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("chromedriver: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	b := &browser{t: t, base: "http://" + addr}
	eventually(t, 15*time.Second, "chromedriver answers", func() error {
		var st struct {
			Value struct{ Ready bool } `json:"value"`
		}
		if err := b.call(http.MethodGet, "/status", nil, &st); err != nil {
			return err
		}
		if !st.Value.Ready {
			return fmt.Errorf("not ready")
		}
		return nil
	})
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{
			"binary": "/usr/bin/chromium",
			// As this machine's docs advise: no sandbox as root, and no
			// background networking (nothing beyond loopback is reachable).
			"args": []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
				"--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update",
				"--disable-sync", "--user-data-dir=" + t.TempDir(), "--window-size=1280,1400"},
		},
	}}}
	var sess struct {
		Value struct {
			SessionID string `json:"sessionId"`
		} `json:"value"`
	}
	if err := b.call(http.MethodPost, "/session", caps, &sess); err != nil {
		t.Fatalf("starting headless chromium: %v\n%s", err, logs.String())
	}
	b.session = sess.Value.SessionID
	t.Cleanup(func() { _ = b.call(http.MethodDelete, "/session/"+b.session, nil, nil) })
	return b
}

// call sends one WebDriver command; out, when not nil, gets the JSON answer.
func (b *browser) call(method, path string, body, out any) error {
	a, err := httpCall(60*time.Second, method, b.base+path, body, "Content-Type", "application/json")
	if err != nil {
		return err
	}
	if a.Code >= 300 {
		return fmt.Errorf("webdriver %s %s: %s %s", method, path, a.Status, a.Body)
	}
	if out != nil {
		return a.decode(out)
	}
	return nil
}

func (b *browser) open(url string) {
	b.t.Helper()
	if err := b.call(http.MethodPost, "/session/"+b.session+"/url", map[string]string{"url": url}, nil); err != nil {
		b.t.Fatal(err)
	}
}

// exec runs a script in the page and returns its result.
func (b *browser) exec(script string, args ...any) any {
	b.t.Helper()
	if args == nil {
		args = []any{}
	}
	var out struct {
		Value any `json:"value"`
	}
	if err := b.call(http.MethodPost, "/session/"+b.session+"/execute/sync", map[string]any{"script": script, "args": args}, &out); err != nil {
		b.t.Fatal(err)
	}
	return out.Value
}

// text returns the visible text of the first element matching a CSS
// selector, or "" when there is none.
func (b *browser) text(selector string) string {
	b.t.Helper()
	v, _ := b.exec(`var e = document.querySelector(arguments[0]); return e ? e.innerText : "";`, selector).(string)
	return v
}

// screenshot saves a PNG of the page and returns its path.
func (b *browser) screenshot(path string) string {
	b.t.Helper()
	var out struct {
		Value string `json:"value"`
	}
	if err := b.call(http.MethodGet, "/session/"+b.session+"/screenshot", nil, &out); err != nil {
		b.t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(out.Value)
	if err != nil {
		b.t.Fatal(err)
	}
	writeFile(b.t, path, png, 0o644)
	b.t.Logf("screenshot: %s", path)
	return path
}

// resize sets the browser window's size in CSS pixels.
func (b *browser) resize(width, height int) {
	b.t.Helper()
	if err := b.call(http.MethodPost, "/session/"+b.session+"/window/rect", map[string]int{"width": width, "height": height}, nil); err != nil {
		b.t.Fatal(err)
	}
}
