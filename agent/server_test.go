package agent

import (
	"bufio"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
)

const testToken = "tok-0123456789abcdef-rest"

// serverAgent is an agent with only what the endpoints need.
func serverAgent(cfg Config) *Agent {
	a := &Agent{cfg: cfg, log: slog.New(slog.DiscardHandler), status: newStatusStore("h", "src"),
		metrics: newMetrics(), trigger: make(chan string, 1)}
	return a
}

// expectCode reports the request what when its answer's code is not want.
func expectCode(t *testing.T, what string, code, want int) {
	t.Helper()
	if code != want {
		t.Errorf("%s: %d, want %d", what, code, want)
	}
}

func get(h http.Handler, path, host, token string) int {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if host != "" {
		req.Host = host
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return answer(h, req).Code
}

func TestCheckEndpoints(t *testing.T) {
	token := secretFile(t, testToken)
	short := secretFile(t, "8-bytes!")
	cases := []struct {
		name string
		cfg  Config
		want string // "" for no error
	}{
		{"loopback, nothing else", Config{Listen: "127.0.0.1:9440"}, ""},
		{"localhost", Config{Listen: "localhost:9440"}, ""},
		{"non-loopback without a token", Config{Listen: "10.213.9.1:9440"}, "need --token-file"},
		{"all addresses without a token", Config{Listen: ":9440"}, "need --token-file"},
		{"non-loopback with a token", Config{Listen: "10.213.9.1:9440", TokenFile: token}, ""},
		{"a short token", Config{Listen: "10.213.9.1:9440", TokenFile: short}, "holds 8 bytes; at least 16"},
		{"a missing token file", Config{Listen: "127.0.0.1:9440", TokenFile: "/nonexistent/token"}, "--token-file /nonexistent/token"},
		{"a webhook secret of 8 bytes", Config{Listen: "127.0.0.1:9440", WebhookSecretFile: short}, "--webhook-secret-file " + short + " holds 8 bytes"},
		{"an empty webhook secret", Config{Listen: "127.0.0.1:9440", WebhookSecretFile: secretFile(t, "")}, "holds 0 bytes"},
		{"webhook listener without a secret", Config{Listen: "127.0.0.1:9440", WebhookListen: "10.213.9.1:9441"}, "--webhook-listen \"10.213.9.1:9441\" needs --webhook-secret-file"},
		{"webhook listener with a secret", Config{Listen: "127.0.0.1:9440", WebhookListen: "10.213.9.1:9441", WebhookSecretFile: token}, ""},
	}
	for _, c := range cases {
		err := serverAgent(c.cfg).checkEndpoints()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "8-bytes!") {
			t.Errorf("%s: the error quotes the secret: %v", c.name, err)
		}
	}
	if err := serverAgent(Config{WebhookSecretFile: short}).checkEndpoints(); !errors.Is(err, errShortSecret) {
		t.Errorf("short secret: %v, want errShortSecret", err)
	}
}

var readPaths = []string{"/status", "/events", "/passes/x", "/metrics", "/", "/static/status.css"}

func TestReadEndpointsNeedTheToken(t *testing.T) {
	h := serverAgent(Config{Listen: "10.213.9.1:9440", TokenFile: secretFile(t, testToken)}).Handler()
	for _, p := range readPaths {
		if code := get(h, p, "10.213.9.1:9440", ""); code != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d, want 401", p, code)
		}
		if code := get(h, p, "10.213.9.1:9440", "not-the-token-but-long"); code != http.StatusUnauthorized {
			t.Errorf("%s with a wrong token: %d, want 401", p, code)
		}
	}
	// Off loopback the Host is not checked: the token is what counts.
	expectCode(t, "/status with the token", get(h, "/status", "agent.example.com", testToken), http.StatusOK)
	expectCode(t, "/passes/none with the token", get(h, "/passes/none", "agent.example.com", testToken), http.StatusNotFound)
	expectCode(t, "/healthz without a token (it stays open)", get(h, "/healthz", "", ""), http.StatusOK)
	expectCode(t, "/readyz without a token (open, not ready yet)", get(h, "/readyz", "", ""), http.StatusServiceUnavailable)
}

func TestTokenRotatesWithoutRestart(t *testing.T) {
	f := secretFile(t, testToken)
	h := serverAgent(Config{Listen: "127.0.0.1:9440", TokenFile: f}).Handler()
	if code := get(h, "/status", "127.0.0.1:9440", testToken); code != http.StatusOK {
		t.Fatalf("old token: %d", code)
	}
	if err := os.WriteFile(f, []byte("a-new-token-16-bytes-or-more"), 0o600); err != nil {
		t.Fatal(err)
	}
	expectCode(t, "old token after rotation", get(h, "/status", "127.0.0.1:9440", testToken), http.StatusUnauthorized)
	expectCode(t, "new token", get(h, "/status", "127.0.0.1:9440", "a-new-token-16-bytes-or-more"), http.StatusOK)
	// A token file cut short later refuses everyone rather than accept a
	// guessable token.
	if err := os.WriteFile(f, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	expectCode(t, "short token", get(h, "/status", "127.0.0.1:9440", "short"), http.StatusUnauthorized)
}

func TestLoopbackRefusesForeignHosts(t *testing.T) {
	h := serverAgent(Config{Listen: "127.0.0.1:9440", AllowedHosts: []string{"Proxy.Internal"}}).Handler()
	for _, host := range []string{"127.0.0.1:9440", "localhost:9440", "LOCALHOST", "[::1]:9440", "127.0.0.2", "proxy.internal:80"} {
		for _, p := range readPaths[:2] {
			if p == "/events" {
				continue // streams: covered by TestEventsStream
			}
			if code := get(h, p, host, ""); code != http.StatusOK {
				t.Errorf("%s with Host %s: %d, want 200", p, host, code)
			}
		}
	}
	for _, host := range []string{"rebind.attacker.example", "rebind.attacker.example:9440", "127.0.0.1.nip.io", "10.0.0.1"} {
		for _, p := range readPaths {
			if code := get(h, p, host, ""); code != http.StatusForbidden {
				t.Errorf("%s with Host %s: %d, want 403", p, host, code)
			}
		}
		if code := get(h, "/healthz", host, ""); code != http.StatusOK {
			t.Errorf("/healthz with Host %s: %d, want 200 (it stays open)", host, code)
		}
	}
	// The webhook is judged by its HMAC, not its Host: a forge behind a
	// proxy keeps working.
	expectCode(t, "/webhook unsigned", post(h, "{}", "", ""), http.StatusUnauthorized)
}

func TestWebhookOnItsOwnListener(t *testing.T) {
	a := serverAgent(Config{Listen: "127.0.0.1:9440", WebhookListen: "127.0.0.1:9441", WebhookSecretFile: secretFile(t, testSecret)})
	body := `{"ref":"refs/heads/main"}`
	req := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(body))
	req.Host = "127.0.0.1:9440"
	req.Header.Set("X-Hub-Signature-256", sign(testSecret, body))
	if code := answer(a.Handler(), req).Code; code != http.StatusNotFound {
		t.Errorf("/webhook on --listen: %d, want 404 (served on --webhook-listen only)", code)
	}
	hook := a.WebhookHandler()
	expectCode(t, "/webhook on its listener", post(hook, body, sign(testSecret, body), "d1"), http.StatusAccepted)
	expectCode(t, "/status on the webhook listener", get(hook, "/status", "", ""), http.StatusNotFound)
	expectCode(t, "/healthz on the webhook listener", get(hook, "/healthz", "", ""), http.StatusOK)
}

// TestEventsStream runs /events on a real server with short timeouts: a
// stream outlives the read and write timeouts (the deadline moves on with
// each write), and streams beyond the cap are refused.
func TestEventsStream(t *testing.T) {
	defer func(r, w, k time.Duration) { readTimeout, writeTimeout, sseKeepalive = r, w, k }(readTimeout, writeTimeout, sseKeepalive)
	readTimeout, writeTimeout, sseKeepalive = 150*time.Millisecond, 150*time.Millisecond, 40*time.Millisecond
	a := serverAgent(Config{Listen: "127.0.0.1:0", MaxSubscribers: 2})
	srv := httptest.NewUnstartedServer(a.Handler())
	srv.Config = newServer(a.Handler())
	srv.Start()
	defer srv.Close()

	open := func() (*http.Response, error) { return http.Get(srv.URL + "/events") }
	r1, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Body.Close()
	r2, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Body.Close()
	if r1.StatusCode != 200 || r2.StatusCode != 200 {
		t.Fatalf("streams: %d %d", r1.StatusCode, r2.StatusCode)
	}
	r3, err := open()
	if err != nil {
		t.Fatal(err)
	}
	r3.Body.Close()
	if r3.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("third stream with a cap of 2: %d, want 503", r3.StatusCode)
	}

	var mu sync.Mutex
	var lines []string
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(r1.Body)
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
		}
		done <- sc.Err()
	}()
	time.Sleep(500 * time.Millisecond) // more than three timeouts
	a.event(status.Event{Type: names.EventRevision, Message: "in force"})
	deadline := time.Now().Add(2 * time.Second)
	for {
		mu.Lock()
		got := strings.Join(lines, "\n")
		mu.Unlock()
		if strings.Contains(got, "event: revision") {
			if n := strings.Count(got, ": keepalive"); n < 3 {
				t.Errorf("%d keepalives in 500 ms at 40 ms, want several:\n%s", n, got)
			}
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the stream ended after the timeouts (%v):\n%s", err, got)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event on the stream:\n%s", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWebhookRefusalsFoldAndLimit(t *testing.T) {
	var mu sync.Mutex
	var events []string
	counted := map[string]int{}
	h := &webhook{secretFile: secretFile(t, testSecret), foldWindow: 200 * time.Millisecond,
		trigger: func(string) {}, onEvent: func(m string) { mu.Lock(); events = append(events, m); mu.Unlock() },
		onRefused: func(r string) { mu.Lock(); counted[r]++; mu.Unlock() }}
	body := `{"ref":"refs/heads/main"}`
	codes := map[int]int{}
	for i := 0; i < 100; i++ {
		codes[post(h, body, sign("wrong-secret-xxxxxxxx", body), "")]++
	}
	if codes[http.StatusUnauthorized] != refusalBurst || codes[http.StatusTooManyRequests] != 100-refusalBurst {
		t.Errorf("answers %v, want %d x 401 then 429", codes, refusalBurst)
	}
	mu.Lock()
	if counted["unauthorized"] != refusalBurst || counted["limited"] != 100-refusalBurst {
		t.Errorf("refusals counted %v", counted)
	}
	if len(events) != 1 || events[0] != "webhook refused: X-Hub-Signature-256: signature mismatch" {
		t.Errorf("events during the flood: %q, want the first refusal only", events)
	}
	mu.Unlock()
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	if len(events) != 2 || !strings.HasPrefix(events[1], "webhook refused 29 more time(s) in 200ms") {
		t.Errorf("events after the window: %q, want one folding the other 29 refusals", events)
	}
	mu.Unlock()
	// The window over, a signed delivery goes through.
	expectCode(t, "signed delivery after the flood", post(h, body, sign(testSecret, body), ""), http.StatusAccepted)
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 2 {
		t.Errorf("a quiet window added events: %q", events)
	}
}
