package probe

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
)

func TestOnce(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer ok.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer bad.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	cases := []struct {
		p       v1.Probe
		wantErr string
	}{
		{v1.Probe{TCP: strings.TrimPrefix(ok.URL, "http://")}, ""},
		{v1.Probe{TCP: closed}, "connection refused"},
		{v1.Probe{HTTP: ok.URL}, ""},
		{v1.Probe{HTTP: bad.URL}, "HTTP 503 Service Unavailable"},
		{v1.Probe{Exec: []string{"true"}}, ""},
		{v1.Probe{Exec: []string{"sh", "-c", "echo not yet >&2; exit 3"}}, "exit status 3: not yet"},
		{v1.Probe{}, "probe declares no check"},
	}
	for _, c := range cases {
		err := Once(context.Background(), &c.p)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s: %v", Describe(&c.p), err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s: error %v, want one containing %q", Describe(&c.p), err, c.wantErr)
		}
	}
}

func TestWaitRetriesUntilPassOrTimeout(t *testing.T) {
	// A file that appears after a few tries: the probe passes on a retry.
	dir := t.TempDir()
	go func() {
		time.Sleep(150 * time.Millisecond)
		_ = os.WriteFile(dir+"/ready", nil, 0o644)
	}()
	p := &v1.Probe{Exec: []string{"test", "-e", dir + "/ready"}, Timeout: v1.NewDuration(5 * time.Second), Interval: v1.NewDuration(20 * time.Millisecond)}
	if err := Wait(context.Background(), p); err != nil {
		t.Fatalf("probe that passes after a while: %v", err)
	}
	never := &v1.Probe{Exec: []string{"false"}, Timeout: v1.NewDuration(100 * time.Millisecond), Interval: v1.NewDuration(20 * time.Millisecond)}
	err := Wait(context.Background(), never)
	if err == nil || !strings.Contains(err.Error(), "exec false did not pass within 100ms") {
		t.Errorf("probe that never passes: %v", err)
	}
}
