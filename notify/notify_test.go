package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// recorder is a real HTTP server that keeps every body and header.
type recorder struct {
	mu     sync.Mutex
	bodies [][]byte
	sigs   []string
	paths  []string
	got    chan struct{}
}

func newRecorder(t *testing.T) (*recorder, *httptest.Server) {
	r := &recorder{got: make(chan struct{}, 100)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, b)
		r.sigs = append(r.sigs, req.Header.Get(SignatureHeader))
		r.paths = append(r.paths, req.URL.Path)
		r.mu.Unlock()
		r.got <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *recorder) wait(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-r.got:
		case <-time.After(5 * time.Second):
			t.Fatalf("got %d of %d notifications", i, n)
		}
	}
}

func TestSignMatchesHMAC(t *testing.T) {
	body := []byte(`{"type":"pass-failed"}`)
	m := hmac.New(sha256.New, []byte("s3cret"))
	m.Write(body)
	if got, want := Sign([]byte("s3cret"), body), "sha256="+hex.EncodeToString(m.Sum(nil)); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestPayloads(t *testing.T) {
	at := time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC)
	e := Event{Type: EventPassFailed, Firing: true, Host: "web1", Revision: "abc123", Pass: "p7", Message: "failed at stage 1, svc:x: boom", Time: at, StartsAt: at}

	b, err := slackBody(e)
	if err != nil {
		t.Fatal(err)
	}
	var sl map[string]string
	if err := json.Unmarshal(b, &sl); err != nil {
		t.Fatal(err)
	}
	if want := "[FIRING] web1: pass-failed (revision abc123, pass p7): failed at stage 1, svc:x: boom"; sl["text"] != want || len(sl) != 1 {
		t.Errorf("slack body %s, want only text %q", b, want)
	}

	b, err = webhookBody(e)
	if err != nil {
		t.Fatal(err)
	}
	var wh map[string]any
	if err := json.Unmarshal(b, &wh); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"type": "pass-failed", "state": "firing", "host": "web1", "revision": "abc123", "pass": "p7", "firing": true} {
		if wh[k] != v {
			t.Errorf("webhook body %s: %s = %v, want %v", b, k, wh[k], v)
		}
	}

	var alerts []struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		StartsAt    time.Time         `json:"startsAt"`
		EndsAt      time.Time         `json:"endsAt"`
	}
	b, _ = alertmanagerBody(e)
	if err := json.Unmarshal(b, &alerts); err != nil || len(alerts) != 1 {
		t.Fatalf("alertmanager body %s: %v", b, err)
	}
	a := alerts[0]
	if a.Labels["alertname"] != "ReconcilerPassFailed" || a.Labels["host"] != "web1" || a.Annotations["revision"] != "abc123" || a.Annotations["pass"] != "p7" {
		t.Errorf("alert %+v", a)
	}
	if !a.StartsAt.Equal(at) || !a.EndsAt.After(at.Add(30*time.Minute)) {
		t.Errorf("firing alert starts %v ends %v; want start %v, end well after", a.StartsAt, a.EndsAt, at)
	}
	r := e
	r.Firing, r.Time = false, at.Add(time.Minute)
	b, _ = alertmanagerBody(r)
	_ = json.Unmarshal(b, &alerts)
	if !alerts[0].EndsAt.Equal(r.Time) || !alerts[0].StartsAt.Equal(at) {
		t.Errorf("resolved alert %s: want endsAt %v and the original startsAt", b, r.Time)
	}
}

func newNotifier(t *testing.T, targets ...TargetConfig) *Notifier {
	n := New("web1", &Config{Targets: targets}, nil)
	n.MinBackoff, n.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return n
}

func TestWebhookSignedAndDeduplicated(t *testing.T) {
	rec, srv := newRecorder(t)
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("k3y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := newNotifier(t, TargetConfig{Name: "hook", Kind: KindWebhook, URL: srv.URL, SecretFile: secret})
	n.Fire(EventPassFailed, "", "abc", "p1", "boom")
	n.Fire(EventPassFailed, "", "abc", "p2", "boom") // same condition, same revision: dropped
	n.Resolve(EventDriftLeft, "", "abc", "p2", "")   // never fired: dropped
	n.Resolve(EventPassFailed, "", "abc", "p3", "ok")
	n.Resolve(EventPassFailed, "", "abc", "p4", "ok") // already resolved: dropped
	rec.wait(t, 2)
	time.Sleep(100 * time.Millisecond)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.bodies) != 2 {
		t.Fatalf("sent %d notifications, want 2 (fired, resolved): %q", len(rec.bodies), rec.bodies)
	}
	for i, b := range rec.bodies {
		if rec.sigs[i] != Sign([]byte("k3y"), b) {
			t.Errorf("notification %d signature %q does not verify with the key (newline trimmed)", i, rec.sigs[i])
		}
	}
	var first, second Event
	_ = json.Unmarshal(rec.bodies[0], &first)
	_ = json.Unmarshal(rec.bodies[1], &second)
	if !first.Firing || first.Pass != "p1" || second.Firing || second.Pass != "p3" || !second.StartsAt.Equal(first.StartsAt) {
		t.Errorf("sent %+v then %+v; want p1 firing then p3 resolved with the same startsAt", first, second)
	}
}

func TestNewRevisionFiresAgain(t *testing.T) {
	rec, srv := newRecorder(t)
	n := newNotifier(t, TargetConfig{Kind: KindSlack, URL: srv.URL})
	n.Fire(EventRevisionRefused, "", "aaa", "p1", "bad")
	n.Fire(EventRevisionRefused, "", "bbb", "p2", "bad too")
	rec.wait(t, 2)
}

func TestAlertmanagerPath(t *testing.T) {
	rec, srv := newRecorder(t)
	n := newNotifier(t, TargetConfig{Kind: KindAlertmanager, URL: srv.URL + "/"})
	n.Fire(EventGaveUp, "svc:api", "abc", "p1", "gave up")
	rec.wait(t, 1)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.paths[0] != "/api/v2/alerts" {
		t.Errorf("posted to %s, want /api/v2/alerts", rec.paths[0])
	}
}

// A target that is down: Notify returns at once however many events come,
// the queue stays within its bound and counts what it dropped, and once the
// target is up the newest events arrive.
func TestDownTargetNeverBlocks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused
	n := New("web1", &Config{Targets: []TargetConfig{{Name: "down", Kind: KindSlack, URL: "http://" + addr}}}, nil)
	n.Queue, n.MinBackoff, n.MaxBackoff = 4, 20*time.Millisecond, 40*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	start := time.Now()
	for i := 0; i < 10; i++ {
		n.Fire(EventGaveUp, "svc:"+string(rune('a'+i)), "abc", "p1", "gave up")
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("10 notifications to a target that is down took %v", took)
	}
	time.Sleep(150 * time.Millisecond)
	st := n.Stats()[0]
	if st.Dropped != 6 || st.Queued != 4 || st.Failed == 0 || st.Sent != 0 {
		t.Fatalf("stats %+v; want 6 dropped, 4 queued, some failed, none sent", st)
	}

	rec := &recorder{got: make(chan struct{}, 100)}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		rec.mu.Lock()
		rec.bodies = append(rec.bodies, b)
		rec.mu.Unlock()
		rec.got <- struct{}{}
	})}
	go srv.Serve(ln)
	defer srv.Close()
	rec.wait(t, 4)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var last map[string]string
	_ = json.Unmarshal(rec.bodies[3], &last)
	if want := "[FIRING] web1: failure-gave-up svc:j (revision abc, pass p1): gave up"; last["text"] != want {
		t.Errorf("last text %q, want %q (the newest kept)", last["text"], want)
	}
}

func TestRejectedIsNotRetried(t *testing.T) {
	var calls sync.WaitGroup
	calls.Add(2)
	count := 0
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		count++
		mu.Unlock()
		w.WriteHeader(http.StatusBadRequest)
		calls.Done()
	}))
	defer srv.Close()
	n := newNotifier(t, TargetConfig{Kind: KindSlack, URL: srv.URL})
	n.Fire(EventPassFailed, "", "a", "p1", "x")
	n.Fire(EventDriftLeft, "", "a", "p1", "y")
	calls.Wait()
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if count != 2 {
		t.Errorf("%d posts for 2 rejected notifications; a 4xx must not be retried", count)
	}
}

func TestParse(t *testing.T) {
	c, err := Parse([]byte(`
targets:
  - kind: alertmanager
    url: http://127.0.0.1:9393
  - name: ops
    kind: webhook
    url: https://ops.example/hook
    secretFile: /etc/reconciler/notify-secret
    events: [pass-failed, maintenance]
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Targets) != 2 || c.Targets[0].Name != "alertmanager" || c.Targets[1].Events[1] != "maintenance" {
		t.Errorf("parsed %+v", c)
	}
	if _, err := Parse([]byte(`{"targets":[{"kind":"slack","url":"https://hooks.slack.com/x"}]}`)); err != nil {
		t.Errorf("JSON form: %v", err)
	}
	for name, bad := range map[string]string{
		"empty":          ``,
		"unknown kind":   `targets: [{kind: email, url: "http://x"}]`,
		"webhook secret": `targets: [{kind: webhook, url: "http://x"}]`,
		"bad url":        `targets: [{kind: slack, url: "ftp://x"}]`,
		"unknown field":  `targets: [{kind: slack, url: "http://x", secret: y}]`,
		"unknown event":  `targets: [{kind: slack, url: "http://x", events: [pass-ok]}]`,
	} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`targets: [{kind: alertmanager, url: "http://127.0.0.1:9393"}]`))
	f.Add([]byte(`{"targets":[{"kind":"webhook","url":"https://x/y","secretFile":"/s","events":["pass-failed"]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		for _, tc := range c.Targets {
			if tc.Name == "" || tc.URL == "" {
				t.Fatalf("accepted target without name or url: %+v", tc)
			}
		}
	})
}

// A condition that keeps firing is re-sent to Alertmanager (whose alert
// would otherwise end), never to chat.
func TestRefreshOnlyAlertmanager(t *testing.T) {
	am, amSrv := newRecorder(t)
	chat, chatSrv := newRecorder(t)
	n := New("web1", &Config{Targets: []TargetConfig{{Kind: KindAlertmanager, URL: amSrv.URL}, {Kind: KindSlack, URL: chatSrv.URL}}}, nil)
	n.Refresh = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	n.Fire(EventMaintenance, "", "abc", "p1", "maintenance entered")
	am.wait(t, 3)
	chat.wait(t, 1)
	time.Sleep(150 * time.Millisecond)
	chat.mu.Lock()
	defer chat.mu.Unlock()
	if len(chat.bodies) != 1 {
		t.Errorf("chat heard the condition %d times, want once", len(chat.bodies))
	}
}
