package agent

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
)

// The endpoint rules (README "Trust model"):
//
//   - /healthz and /readyz are open on every listener: they answer "ok" or
//     "ready" and nothing else, for load balancers and supervisors.
//   - The read endpoints (/status, /events, /passes/{id}, /metrics, / and
//     its /static/ files) say what runs on the host, who committed it and
//     where its files are. They need "Authorization: Bearer <token>" with
//     the token of --token-file whenever one is given, and a listener that
//     is not loopback refuses to start without one.
//   - On a loopback listener, a request whose Host is not localhost, a
//     loopback address, the listen address or an --allowed-host is refused
//     (403): a web page elsewhere whose DNS name is rebound to 127.0.0.1
//     cannot read the endpoints through a browser on the host.
//   - POST /webhook needs the HMAC of --webhook-secret-file, a secret of at
//     least MinSecretBytes; it can have a listener of its own
//     (--webhook-listen), and is then served there only.
//   - Every server has read, write and idle timeouts; /events (SSE) extends
//     its write deadline before each write, and at most MaxSubscribers
//     streams are open at once.

// MinSecretBytes is the shortest webhook secret or endpoint token accepted:
// anything shorter can be guessed by a patient client.
const MinSecretBytes = 16

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

// checkEndpoints refuses a configuration that would expose the endpoints:
// a read listener off loopback without a token, a token or webhook secret
// that is missing or short, a webhook listener off loopback without a
// secret.
func (a *Agent) checkEndpoints() error {
	if a.cfg.Listen != "" {
		host, _, err := net.SplitHostPort(a.cfg.Listen)
		if err != nil {
			return fmt.Errorf("--listen %q: %w", a.cfg.Listen, err)
		}
		if !isLoopback(host) && a.cfg.TokenFile == "" {
			return fmt.Errorf("--listen %q is not a loopback address: the read endpoints (/status, /events, /passes, /metrics, /) need --token-file there", a.cfg.Listen)
		}
	}
	if a.cfg.WebhookListen != "" {
		if _, _, err := net.SplitHostPort(a.cfg.WebhookListen); err != nil {
			return fmt.Errorf("--webhook-listen %q: %w", a.cfg.WebhookListen, err)
		}
		if a.cfg.WebhookSecretFile == "" {
			return fmt.Errorf("--webhook-listen %q needs --webhook-secret-file", a.cfg.WebhookListen)
		}
	}
	if f := a.cfg.TokenFile; f != "" {
		if _, err := readSecret(f); err != nil {
			return fmt.Errorf("--token-file %w", err)
		}
	}
	if f := a.cfg.WebhookSecretFile; f != "" {
		if _, err := readSecret(f); err != nil {
			return fmt.Errorf("--webhook-secret-file %w", err)
		}
	}
	return nil
}

// errShortSecret says a secret file holds fewer than MinSecretBytes.
var errShortSecret = errors.New("secret too short")

// readSecret reads a token or secret file (at most 4 KiB), trimmed of
// surrounding white space, and refuses one shorter than MinSecretBytes. The
// error names the file, never its content.
func readSecret(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4<<10))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	key := []byte(strings.TrimSpace(string(b)))
	if len(key) < MinSecretBytes {
		return nil, fmt.Errorf("%s holds %d bytes; at least %d are needed (for example: head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'): %w",
			name, len(key), MinSecretBytes, errShortSecret)
	}
	return key, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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

func (a *Agent) loopbackListen() bool {
	host, _, err := net.SplitHostPort(a.cfg.Listen)
	return err == nil && isLoopback(host)
}

// requireToken lets a request through when no --token-file is given, or
// when it carries the file's token as a bearer token. The file is read at
// every request, so a rotated token counts without a restart.
func (a *Agent) requireToken(next http.Handler) http.Handler {
	if a.cfg.TokenFile == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		want, err := readSecret(a.cfg.TokenFile)
		if err != nil {
			a.log.Error("token file unusable: read endpoints refuse every request", "pass", "-", "revision", a.goodID(), "err", err)
		}
		if !ok || err != nil || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="reconciler"`)
			http.Error(w, "unauthorized: this endpoint needs Authorization: Bearer <the token of the agent's --token-file>", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkHost refuses a request on a loopback listener whose Host header
// names anything but this host (DNS rebinding).
func (a *Agent) checkHost(next http.Handler) http.Handler {
	listenHost, _, _ := net.SplitHostPort(a.cfg.Listen)
	allowed := map[string]bool{"localhost": true, strings.ToLower(listenHost): true}
	for _, h := range a.cfg.AllowedHosts {
		allowed[strings.ToLower(strings.TrimSpace(h))] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
		if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || allowed[host] {
			next.ServeHTTP(w, r)
			return
		}
		http.Error(w, "forbidden: Host is not this agent's (add it with --allowed-host if a proxy forwards it)", http.StatusForbidden)
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
