package callcount

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultDockerSocket is where NewDockerProxy forwards to when given no upstream.
const DefaultDockerSocket = "/var/run/docker.sock"

// DockerProxy is a counting HTTP proxy between a Docker client and the Docker
// Engine, both on unix sockets. Point the code under test at it with
// DOCKER_HOST=p.Host().
//
// Requests are forwarded unchanged apart from what HTTP proxying itself
// implies (hop-by-hop headers such as Connection are not passed on). No
// X-Forwarded-* headers are added and the transport never asks for
// compression, so bodies pass as they are. Responses are flushed to the
// client as they arrive, so /events and logs stream. Upgraded (hijacked)
// connections, which docker attach and exec start use, are outside what the
// proxy is built and tested for.
//
// Every request is counted, including those the Engine rejects or that fail
// upstream: the Engine may have acted on them. A client with API version
// negotiation sends one HEAD /_ping (a read) before its first request; Reset
// after connecting, or count it in.
type DockerProxy struct {
	socket    string
	upstream  string
	ln        net.Listener
	srv       *http.Server
	transport *http.Transport
	tally     tally

	ctx    context.Context // ends with Close; every forwarded request's parent
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup // handlers running
	served   chan struct{}  // closed when srv.Serve has returned
	closeErr error
	once     sync.Once
	connSeq  atomic.Uint64
}

type connNumKey struct{}

// NewDockerProxy listens on the unix socket path socket (which must not
// exist) and forwards to the Docker socket upstream: a path or a
// "unix://path" DOCKER_HOST value; "" means DefaultDockerSocket.
func NewDockerProxy(socket, upstream string) (*DockerProxy, error) {
	if upstream == "" {
		upstream = DefaultDockerSocket
	}
	if rest, ok := strings.CutPrefix(upstream, "unix://"); ok {
		upstream = rest
	} else if strings.Contains(upstream, "://") {
		return nil, fmt.Errorf("callcount: docker upstream %q: only unix sockets are supported", upstream)
	}
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return nil, fmt.Errorf("callcount: %w", err)
	}
	p := &DockerProxy{socket: socket, upstream: upstream, ln: ln, served: make(chan struct{})}
	p.ctx, p.cancel = context.WithCancel(context.Background())

	p.transport = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", upstream)
		},
		DisableCompression:    true,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 0, // /events sends headers only when it likes
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			// The Host header (r.Out.Host) stays as the client sent it.
			r.Out.URL.Scheme = "http"
			r.Out.URL.Host = "docker"
		},
		Transport:     p.transport,
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return // the client went away or the proxy is closing
			}
			http.Error(w, "callcount proxy: "+err.Error(), http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{
		Handler:     p.handler(rp),
		ErrorLog:    log.New(io.Discard, "", 0),
		BaseContext: func(net.Listener) context.Context { return p.ctx },
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, connNumKey{}, p.connSeq.Add(1))
		},
		ReadHeaderTimeout: 30 * time.Second,
	}
	go func() {
		defer close(p.served)
		p.srv.Serve(ln)
	}()
	return p, nil
}

func (p *DockerProxy) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			http.Error(w, "callcount proxy: closed", http.StatusServiceUnavailable)
			return
		}
		p.inflight.Add(1)
		p.mu.Unlock()
		defer p.inflight.Done()

		conn, _ := r.Context().Value(connNumKey{}).(uint64)
		kind := KindMutating
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			kind = KindRead
		}
		p.tally.add(Call{
			Conn:   conn,
			Key:    r.Method + " " + DockerRoute(r.Method, r.URL.Path),
			Kind:   kind,
			Method: r.Method,
			Path:   r.URL.Path,
		})
		next.ServeHTTP(w, r)
	})
}

// Socket is the path the proxy listens on.
func (p *DockerProxy) Socket() string { return p.socket }

// Host is the DOCKER_HOST value that points a client at the proxy.
func (p *DockerProxy) Host() string { return "unix://" + p.socket }

// Counts maps "METHOD route" to the number of requests since the start or the
// last Reset, e.g. "POST /services/{id}/update" -> 1. The map is a copy.
func (p *DockerProxy) Counts() map[string]int { return p.tally.snapshot() }

// Mutating is the number of requests whose method is neither GET nor HEAD.
func (p *DockerProxy) Mutating() int { return p.tally.kind(KindMutating) }

// Reads is the number of GET and HEAD requests.
func (p *DockerProxy) Reads() int { return p.tally.kind(KindRead) }

// Total is the number of requests: Reads() + Mutating().
func (p *DockerProxy) Total() int { return p.tally.total() }

// Log is every counted request in arrival order.
func (p *DockerProxy) Log() []Call { return p.tally.calls() }

// Reset forgets every count and the log. Requests in flight stay counted as
// of their arrival: one that arrived before Reset is not counted again.
func (p *DockerProxy) Reset() { p.tally.reset() }

// Close stops accepting connections, closes the live ones (ending streams
// such as /events), and returns when every handler has returned. Counts and
// Log stay readable. Close is safe to call more than once.
func (p *DockerProxy) Close() error {
	p.once.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.cancel() // ends every forwarded request, streams included
		if err := p.srv.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			p.closeErr = err
		}
		<-p.served
		p.inflight.Wait()
		p.transport.CloseIdleConnections()
	})
	return p.closeErr
}

// dockerCollection describes a top-level path segment of the Engine API whose
// next segment names an object.
type dockerCollection struct {
	// verbs are segments that act on the collection, not on an object:
	// /containers/json, /services/create.
	verbs []string
	// slashy collections have object names that may contain slashes
	// (image and plugin references); the name runs up to the last segment
	// when that is one of suffixes.
	slashy   bool
	suffixes []string
}

var dockerCollections = map[string]dockerCollection{
	"containers": {verbs: []string{"create", "json", "prune"}},
	"services":   {verbs: []string{"create"}},
	"tasks":      {},
	"nodes":      {},
	"networks":   {verbs: []string{"create", "prune"}},
	"volumes":    {verbs: []string{"create", "prune"}},
	"secrets":    {verbs: []string{"create"}},
	"configs":    {verbs: []string{"create"}},
	"exec":       {},
	"images": {
		verbs:  []string{"create", "json", "prune", "search", "load", "get"},
		slashy: true, suffixes: []string{"json", "history", "push", "tag", "get"},
	},
	"plugins": {
		verbs:  []string{"pull", "privileges", "create"},
		slashy: true, suffixes: []string{"json", "enable", "disable", "push", "set", "upgrade"},
	},
	"distribution": {slashy: true, suffixes: []string{"json"}},
}

// DockerRoute normalises the path of an Engine API request for counting: the
// version prefix ("/v1.41") is stripped and the segment(s) naming an object
// become {id}:
//
//	/v1.41/services/abc123/update -> /services/{id}/update
//	/containers/abc/json          -> /containers/{id}/json
//	/images/local/worker:1/json   -> /images/{id}/json
//	/containers/json              -> /containers/json
//
// Paths outside the collections with ids (/_ping, /events, /info, /swarm,
// ...) are returned as they are, without the version prefix.
func DockerRoute(method, path string) string {
	path = stripAPIVersion(path)
	segs := strings.Split(path, "/")
	// segs[0] is "" for an absolute path.
	if len(segs) < 3 || segs[0] != "" || segs[2] == "" {
		return path
	}
	coll, ok := dockerCollections[segs[1]]
	if !ok {
		return path
	}
	rest := segs[2:]
	// A verb is only ever the last segment, and nothing deletes a verb:
	// DELETE /images/json removes an image called "json".
	if len(rest) == 1 && method != http.MethodDelete && contains(coll.verbs, rest[0]) {
		return path
	}
	n := 1 // segments the object name takes
	if coll.slashy {
		n = len(rest)
		if len(rest) > 1 && contains(coll.suffixes, rest[len(rest)-1]) {
			n = len(rest) - 1
		}
	}
	out := append([]string{"", segs[1], "{id}"}, rest[n:]...)
	return strings.Join(out, "/")
}

// stripAPIVersion removes a leading "/v<digits and dots>" segment.
func stripAPIVersion(path string) string {
	if !strings.HasPrefix(path, "/v") {
		return path
	}
	i := 2
	for i < len(path) && (path[i] >= '0' && path[i] <= '9' || path[i] == '.') {
		i++
	}
	if i == 2 || path[2] < '0' || path[2] > '9' {
		return path
	}
	if i == len(path) {
		return "/"
	}
	if path[i] != '/' {
		return path
	}
	return path[i:]
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
