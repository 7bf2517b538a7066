package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"reconciler.dev/reconciler/api/names"
)

// serve starts the HTTP endpoints. It refuses to listen beyond loopback
// without a webhook secret: the endpoints say what runs on the host.
func (a *Agent) serve() (*http.Server, chan error, error) {
	host, _, err := net.SplitHostPort(a.cfg.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("--listen %q: %w", a.cfg.Listen, err)
	}
	if !isLoopback(host) && a.cfg.WebhookSecretFile == "" {
		return nil, nil, fmt.Errorf("--listen %q is not a loopback address: refusing without --webhook-secret-file", a.cfg.Listen)
	}
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("--listen %q: %w", a.cfg.Listen, err)
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	return srv, errc, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Handler serves /healthz, /readyz, /metrics, /status, /events, /webhook
// and the status page at /.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.Ready() {
			http.Error(w, "not ready: no pass has succeeded yet, or the last one failed", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(a.Status())
	})
	mux.HandleFunc("GET /events", a.serveEvents)
	mux.HandleFunc("GET /passes/{id}", a.servePass)
	mux.Handle("/webhook", &webhook{
		secretFile:      a.cfg.WebhookSecretFile,
		gitlabTokenFile: a.cfg.WebhookGitLabTokenFile,
		followedRef:     a.goodRef,
		trigger:         a.Trigger,
		onEvent:         func(msg string) { a.event(Event{Type: names.EventWebhook, Revision: a.goodID(), Message: msg}) },
	})
	mux.HandleFunc("GET /{$}", a.servePage)
	mux.HandleFunc("GET /static/names.js", namesScript)
	mux.Handle("GET /static/", staticFiles())
	return mux
}

// serveEvents streams events as Server-Sent Events; ?type=a,b filters them.
func (a *Agent) serveEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	types := map[string]bool{}
	for _, t := range strings.Split(r.URL.Query().Get("type"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			types[t] = true
		}
	}
	ch, cancel := a.status.subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": reconciler events\n\n")
	fl.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepalive.C:
			fmt.Fprint(w, ": keepalive\n\n")
			fl.Flush()
		case ev := <-ch:
			if len(types) > 0 && !types[ev.Type] {
				continue
			}
			b, _ := json.Marshal(ev)
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Type, b)
			fl.Flush()
		}
	}
}
