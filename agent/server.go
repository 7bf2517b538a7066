package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
)

// DefaultMaxSubscribers is how many /events streams may be open at once.
const DefaultMaxSubscribers = 32

// The servers' timeouts. Variables so tests can shorten them.
var (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second // a webhook body (at most 1 MiB) included
	writeTimeout      = 30 * time.Second // per write on /events, whole answer elsewhere
	idleTimeout       = 2 * time.Minute
	sseKeepalive      = 15 * time.Second
)

// servers are the agent's running HTTP servers.
type servers struct {
	list []*http.Server
	errc chan error
}

func (s *servers) shutdown(ctx context.Context) {
	for _, srv := range s.list {
		_ = srv.Shutdown(ctx)
	}
}

// serve starts the HTTP endpoints on --listen, and the webhook on
// --webhook-listen when given, after checking the rules above.
func (a *Agent) serve() (*servers, error) {
	if err := a.checkEndpoints(); err != nil {
		return nil, err
	}
	s := &servers{errc: make(chan error, 2)}
	start := func(addr string, h http.Handler) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %q: %w", addr, err)
		}
		srv := newServer(h)
		s.list = append(s.list, srv)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.errc <- err
			}
		}()
		return nil
	}
	if a.cfg.Listen != "" {
		if err := start(a.cfg.Listen, a.Handler()); err != nil {
			return nil, err
		}
	}
	if a.cfg.WebhookListen != "" {
		if err := start(a.cfg.WebhookListen, a.WebhookHandler()); err != nil {
			s.shutdown(context.Background())
			return nil, err
		}
	}
	return s, nil
}

func newServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout,
		WriteTimeout: writeTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: 64 << 10}
}

// Handler serves /healthz, /readyz, /metrics, /status, /events,
// /passes/{id}, the status page at / and, unless it has a listener of its
// own, /webhook; with the rules above.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	a.handleHealth(mux)
	read := http.NewServeMux()
	read.Handle("GET /metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{}))
	read.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(a.Status())
	})
	read.HandleFunc("GET /events", a.serveEvents)
	read.HandleFunc("GET /passes/{id}", a.servePass)
	read.HandleFunc("POST /quarantine/release", a.serveRelease)
	read.HandleFunc("GET /{$}", a.servePage)
	read.HandleFunc("GET /static/names.js", namesScript)
	read.Handle("GET /static/", staticFiles())
	guarded := a.requireToken(a.idle.after(read))
	if a.loopbackListen() {
		guarded = a.checkHost(guarded)
	}
	mux.Handle("/", guarded)
	if a.cfg.WebhookListen == "" {
		mux.Handle("/webhook", a.webhookHandler())
	}
	return mux
}

// WebhookHandler serves the webhook's own listener: /webhook and /healthz.
func (a *Agent) WebhookHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/webhook", a.webhookHandler())
	return mux
}

func (a *Agent) webhookHandler() *webhook {
	a.hookOnce.Do(func() {
		a.hook = &webhook{
			secretFile:      a.cfg.WebhookSecretFile,
			gitlabTokenFile: a.cfg.WebhookGitLabTokenFile,
			followedRef:     a.goodRef,
			trigger:         a.Trigger,
			onEvent:         func(msg string) { a.event(status.Event{Type: names.EventWebhook, Revision: a.goodID(), Message: msg}) },
			onRefused:       func(reason string) { a.metrics.webhookRefusals.WithLabelValues(reason).Inc() },
		}
	})
	return a.hook
}

// handleHealth adds the endpoints that stay open: they say nothing beyond
// ok and ready.
func (a *Agent) handleHealth(mux *http.ServeMux) {
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
}

// serveEvents streams events as Server-Sent Events; ?type=a,b filters them.
// The server's write timeout would end a stream after 30 s: each write
// moves the deadline on instead, so a stalled reader is dropped within one
// timeout and a live one stays.
func (a *Agent) serveEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	types := map[string]bool{}
	for _, t := range strings.Split(r.URL.Query().Get("type"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			types[t] = true
		}
	}
	limit := a.cfg.MaxSubscribers
	if limit == 0 {
		limit = DefaultMaxSubscribers
	}
	ch, cancel, ok := a.status.trySubscribe(limit)
	if !ok {
		w.Header().Set("Retry-After", "30")
		http.Error(w, fmt.Sprintf("too many event streams open (at most %d)", limit), http.StatusServiceUnavailable)
		return
	}
	defer cancel()
	// A GET has no body to read: clear the read deadline, so its passing
	// cannot end a stream that is still being read.
	_ = rc.SetReadDeadline(time.Time{})
	send := func(format string, args ...any) bool {
		if err := rc.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
			return false
		}
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	if !send(": reconciler events\n\n") {
		return
	}
	keepalive := time.NewTicker(sseKeepalive)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepalive.C:
			if !send(": keepalive\n\n") {
				return
			}
		case ev := <-ch:
			if len(types) > 0 && !types[ev.Type] {
				continue
			}
			b, _ := json.Marshal(ev)
			if !send("event: %s\ndata: %s\n\n", ev.Type, b) {
				return
			}
		}
	}
}
