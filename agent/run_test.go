package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
	"reconciler.dev/reconciler/controllers/drivertest"
)

const serviceAndTimer = `  services:
    - name: a
      replicas: 1
  units:
    - name: hk.timer
      enabled: true
      active: true
`

// Run passes on its interval and at once on a trigger, serves the
// endpoints while it runs, and writes the state when it stops.
func TestRunPassesServesAndStops(t *testing.T) {
	h := newPassHost(t)
	h.src.commit("r1", serviceAndTimer)
	h.sw.Service("swarm/a", 0)
	h.sd.Set("unit/hk.timer", drivertest.Object{Exists: true})
	a, err := New(Config{Source: h.src, Host: "h1", Engine: h.eng, StateDir: h.dir, Interval: 30 * time.Millisecond,
		Listen: "127.0.0.1:0", Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	await := func(what string, ok func(status.Status) bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !ok(a.Status()) {
			if time.Now().After(deadline) {
				t.Fatalf("gave up waiting for %s: %+v", what, a.Status().Passes)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	await("two passes", func(s status.Status) bool { return len(s.Passes) >= 2 })
	a.Trigger("webhook")
	await("the triggered pass", func(s status.Status) bool {
		for _, p := range s.Passes {
			if p.Trigger == "webhook" {
				return true
			}
		}
		return false
	})
	if !a.Ready() || h.sw.Get("swarm/a").Replicas != 1 || !h.sd.Get("unit/hk.timer").Active {
		t.Errorf("not converged: ready %v, a %+v, timer %+v", a.Ready(), h.sw.Get("swarm/a"), h.sd.Get("unit/hk.timer"))
	}

	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %s", path, resp.Status, b)
		}
		return string(b)
	}
	get("/healthz")
	get("/readyz")
	var st status.Status
	if err := json.Unmarshal([]byte(get("/status")), &st); err != nil || st.Revision == nil || st.Revision.ID != "r1" || len(st.Objects) != 2 {
		t.Errorf("/status: %v %+v", err, st)
	}
	if page := get("/"); !strings.Contains(page, "swarm/a") || !strings.Contains(page, "/static/names.js") {
		t.Errorf("the page lacks its objects or the names script:\n%s", page)
	}
	// The page's script takes every event type from the server and spells
	// none itself.
	namesJS, script := get("/static/names.js"), get("/static/status.js")
	for _, typ := range names.EventTypes {
		if !strings.Contains(namesJS, `"`+typ+`"`) {
			t.Errorf("names.js lacks %q: %s", typ, namesJS)
		}
		if strings.Contains(script, `"`+typ+`"`) {
			t.Errorf("status.js spells the event type %q itself", typ)
		}
	}

	// /events streams what happens, filtered by type.
	ectx, ecancel := context.WithTimeout(ctx, 5*time.Second)
	defer ecancel()
	req, _ := http.NewRequestWithContext(ectx, http.MethodGet, srv.URL+"/events?type="+names.EventWebhook, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, ":") {
		t.Fatalf("stream opened with %q", line)
	}
	a.event(status.Event{Type: names.EventDrift, Message: "filtered out"})
	a.event(status.Event{Type: names.EventWebhook, Message: "push"})
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		if strings.HasPrefix(line, "event: ") {
			if got := strings.TrimSpace(strings.TrimPrefix(line, "event: ")); got != names.EventWebhook {
				t.Errorf("streamed %s through a filter on %s", got, names.EventWebhook)
			}
			break
		}
	}

	cancel()
	if err := receive(t, done, 5*time.Second, "Run's return"); err != nil {
		t.Errorf("Run returned %v", err)
	}
	if s := h.state(t); s.Good == nil || s.Good.Revision.ID != "r1" || s.InProgress != nil {
		t.Errorf("state after stopping: %+v", s)
	}
	if a.Status().Phase != "stopping" {
		t.Errorf("phase %s", a.Status().Phase)
	}
}

func TestRunRefusesToListenBeyondLoopbackWithoutSecret(t *testing.T) {
	h := newPassHost(t)
	a, err := New(Config{Source: h.src, Host: "h1", Engine: h.eng, StateDir: h.dir, Listen: "0.0.0.0:0", Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(context.Background()); err == nil {
		t.Error("Run listened on every address without a webhook secret")
	}
}
