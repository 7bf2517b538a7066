package agent

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sign(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func newTestWebhook(t testing.TB, secret string) (*webhook, *int) {
	t.Helper()
	file := ""
	if secret != "" {
		file = filepath.Join(t.TempDir(), "secret")
		if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	return &webhook{secretFile: file, trigger: func(string) { n++ }, onEvent: func(string) {}}, &n
}

func post(h http.Handler, body, sig, delivery string) int {
	req := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(body))
	if sig != "" {
		req.Header.Set("X-Hub-Signature-256", sig)
	}
	if delivery != "" {
		req.Header.Set("X-GitHub-Delivery", delivery)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

func TestWebhook(t *testing.T) {
	const body = `{"ref":"refs/heads/main"}`
	h, n := newTestWebhook(t, testSecret)
	cases := []struct {
		name, body, sig, delivery string
		code, passes              int
	}{
		{"good signature", body, sign(testSecret, body), "d1", http.StatusAccepted, 1},
		{"replayed delivery", body, sign(testSecret, body), "d1", http.StatusOK, 1},
		{"new delivery", body, sign(testSecret, body), "d2", http.StatusAccepted, 2},
		{"wrong secret", body, sign("guess", body), "d3", http.StatusUnauthorized, 2},
		{"body changed", body + " ", sign(testSecret, body), "d4", http.StatusUnauthorized, 2},
		{"no signature", body, "", "d5", http.StatusUnauthorized, 2},
		{"not hex", body, "sha256=zz", "d6", http.StatusUnauthorized, 2},
		{"sha1 form", body, "sha1=" + strings.Repeat("0", 40), "d7", http.StatusUnauthorized, 2},
		{"too large", strings.Repeat("x", maxWebhookBody+1), "", "", http.StatusRequestEntityTooLarge, 2},
	}
	for _, c := range cases {
		if code := post(h, c.body, c.sig, c.delivery); code != c.code || *n != c.passes {
			t.Errorf("%s: code %d passes %d, want %d and %d", c.name, code, *n, c.code, c.passes)
		}
	}
	if code := post(&webhook{}, body, sign("", body), ""); code != http.StatusUnauthorized {
		t.Errorf("without a configured secret: %d, want 401", code)
	}
	req := httptest.NewRequest(http.MethodGet, "/webhook", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", rec.Code)
	}
}

func TestTriggerCoalesces(t *testing.T) {
	a := &Agent{trigger: make(chan string, 1)}
	for i := 0; i < 10; i++ {
		a.Trigger("webhook")
	}
	if len(a.trigger) != 1 {
		t.Errorf("%d passes pending after a burst, want 1", len(a.trigger))
	}
}

// FuzzWebhook: arbitrary bodies, signatures and delivery ids never panic
// the handler; a pass is triggered exactly when the signature is the body's
// HMAC, answered 202, and the same delivery sent again triggers nothing.
// The fuzzer cannot forge an HMAC, so signed asks it to sign the body
// itself. Each input gets a new handler: inputs are run more than once.
func FuzzWebhook(f *testing.F) {
	f.Add([]byte(`{"ref":"refs/heads/main"}`), "sha256=00", false, "")
	f.Add([]byte(`{"ref":"refs/heads/main"}`), "", true, "d-1")
	f.Add([]byte{}, "", false, "")
	proto, _ := newTestWebhook(f, fuzzSecret)
	f.Fuzz(func(t *testing.T, body []byte, sig string, signed bool, delivery string) {
		n := 0
		h := &webhook{secretFile: proto.secretFile, trigger: func(string) { n++ }, onEvent: func(string) {}}
		if signed {
			sig = sign(fuzzSecret, string(body))
		}
		send := func() int { return post(h, string(body), sig, delivery) }
		code := send()
		good := sig == sign(fuzzSecret, string(body)) && len(body) <= maxWebhookBody
		switch {
		case n > 0 && !good:
			t.Fatalf("triggered by signature %q (code %d)", sig, code)
		case good && (n != 1 || code != http.StatusAccepted):
			t.Fatalf("a signed delivery: %d passes, code %d, want 1 and 202", n, code)
		}
		if code = send(); good && delivery != "" && n != 1 {
			t.Fatalf("delivery %q sent again triggered a pass (code %d)", delivery, code)
		}
	})
}

const (
	testSecret = "s3cret-of-24-bytes-long!"
	fuzzSecret = "k-is-sixteen-byt"
)
