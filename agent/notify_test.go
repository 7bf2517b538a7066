package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"reconciler.dev/reconciler/notify"
)

// notifySink is a webhook target (a real HTTP server) keeping every event.
type notifySink struct {
	mu     sync.Mutex
	events []notify.Event
}

func (s *notifySink) got() []notify.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]notify.Event(nil), s.events...)
}

// The agent's conditions as a webhook target hears them: a refused
// revision fires and resolves when a revision is in force again; drift
// left by a report-only pass fires and resolves when none is left; each
// once, with host, revision and pass.
func TestNotifyConditions(t *testing.T) {
	sink := &notifySink{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e notify.Event
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &e); err != nil {
			t.Errorf("webhook body %s: %v", b, err)
		}
		sink.mu.Lock()
		sink.events = append(sink.events, e)
		sink.mu.Unlock()
	}))
	defer srv.Close()
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newPassHost(t)
	n := notify.New("h1", &notify.Config{Targets: []notify.TargetConfig{{Name: "t", Kind: notify.KindWebhook, URL: srv.URL, SecretFile: secret}}}, nil)
	h.a.cfg.Notify = n
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	report := "  services:\n    - name: a\n      replicas: 2\n      drift: report\n"
	h.src.commit("r1", report)
	h.sw.Service("swarm/a", 1)
	_, _ = h.pass() // drift left: fires
	h.src.commit("r2", "  services:\n    - name: a\n      replicas: -1\n")
	_, _ = h.pass() // refused: fires; drift still left, same revision: not again
	h.sw.Service("swarm/a", 2)
	h.src.commit("r3", report)
	_, _ = h.pass() // r3 in force: refusal resolves; no drift left: resolves

	want := []struct {
		typ    string
		firing bool
		rev    string
	}{
		{notify.EventDriftLeft, true, "r1"},
		{notify.EventRevisionRefused, true, "r2"},
		{notify.EventRevisionRefused, false, "r3"},
		{notify.EventDriftLeft, false, "r3"},
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(sink.got()) < len(want) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	got := sink.got()
	if len(got) != len(want) {
		t.Fatalf("heard %d notifications, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Type != w.typ || g.Firing != w.firing || g.Revision != w.rev || g.Host != "h1" || g.Pass == "" {
			t.Errorf("notification %d: %+v; want %s firing=%v revision %s, host h1, a pass id", i, g, w.typ, w.firing, w.rev)
		}
	}
}
