package forge

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type recorded struct {
	path, auth string
	body       Status
}

func fakeForge(t *testing.T, down *atomic.Bool) (*httptest.Server, func() []recorded) {
	var mu sync.Mutex
	var got []recorded
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		var s Status
		if err := json.NewDecoder(r.Body).Decode(&s); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got = append(got, recorded{r.URL.Path, r.Header.Get("Authorization"), s})
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []recorded { mu.Lock(); defer mu.Unlock(); return append([]recorded(nil), got...) }
}

func tokenFile(t *testing.T) string {
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte("tok123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestPostShape(t *testing.T) {
	var down atomic.Bool
	srv, got := fakeForge(t, &down)
	c := &Client{API: srv.URL + "/api/v1/", Repo: "ops/fleet", TokenFile: tokenFile(t)}
	long := strings.Repeat("x", 200)
	if err := c.Post(context.Background(), Status{SHA: "abc", State: StateFailure, Context: "reconciler/h1", Description: long, TargetURL: "http://127.0.0.1:9440/"}); err != nil {
		t.Fatal(err)
	}
	g := got()
	if len(g) != 1 || g[0].path != "/api/v1/repos/ops/fleet/statuses/abc" || g[0].auth != "token tok123" ||
		g[0].body.State != StateFailure || g[0].body.Context != "reconciler/h1" || g[0].body.TargetURL != "http://127.0.0.1:9440/" ||
		len([]rune(g[0].body.Description)) != maxDescription {
		t.Fatalf("posted %+v", g)
	}
	if err := (&Client{API: srv.URL, Repo: "nope", TokenFile: tokenFile(t)}).Post(context.Background(), Status{SHA: "a"}); err == nil {
		t.Fatal("a repo without owner/ was accepted")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReporterDeduplicatesAndSurvivesADownForge(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	srv, got := fakeForge(t, &down)
	var mu sync.Mutex
	fails := 0
	r := &Reporter{
		Poster:      &Client{API: srv.URL, Repo: "ops/fleet", TokenFile: tokenFile(t)},
		MinInterval: 10 * time.Millisecond,
		OnResult: func(_ Status, err error) {
			if err != nil {
				mu.Lock()
				fails++
				mu.Unlock()
			}
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)

	start := time.Now()
	r.Set(Status{SHA: "bad", State: StateFailure, Context: "reconciler/h1", Description: "refused"})
	r.Set(Status{SHA: "a", State: StatePending, Context: "reconciler/h1"})
	r.Set(Status{SHA: "a", State: StateSuccess, Context: "reconciler/h1"}) // replaces the pending one
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Fatalf("Set blocked %s on a down forge", d)
	}
	waitFor(t, "retries against the down forge", func() bool { mu.Lock(); defer mu.Unlock(); return fails >= 2 })
	down.Store(false)
	waitFor(t, "both statuses posted", func() bool { return len(got()) == 2 })
	r.Set(Status{SHA: "a", State: StateSuccess, Context: "reconciler/h1"}) // already posted: dropped
	time.Sleep(100 * time.Millisecond)
	g := got()
	if len(g) != 2 || g[0].body.State != StateFailure || g[1].body.State != StateSuccess {
		t.Fatalf("posted %+v, want the failure of bad, then the success of a, once each", g)
	}
}
