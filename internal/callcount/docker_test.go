package callcount

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// seen is what the fake Engine tells about the request it received.
type seen struct {
	Method, URI, Host, Body string
	Header                  http.Header
}

// fakeEngine serves on a unix socket: /_ping like the Engine, /v1.41/events
// as a stream that sends "one", then "two" once release is closed, and
// every other path by describing the request it got.
type fakeEngine struct {
	socket  string
	release chan struct{}
	srv     *http.Server
}

func startFakeEngine(t *testing.T) *fakeEngine {
	t.Helper()
	e := &fakeEngine{socket: sockPath(t, "engine.sock"), release: make(chan struct{})}
	ln, err := net.Listen("unix", e.socket)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/_ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		w.Header().Set("Content-Type", "text/plain")
		if r.Method == http.MethodHead {
			w.Header().Set("Content-Length", "0")
			return
		}
		io.WriteString(w, "OK")
	})
	mux.HandleFunc("/v1.41/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{\"event\":\"one\"}\n")
		w.(http.Flusher).Flush()
		select {
		case <-e.release:
			io.WriteString(w, "{\"event\":\"two\"}\n")
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Engine", "fake")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(seen{Method: r.Method, URI: r.RequestURI, Host: r.Host, Body: string(body), Header: r.Header})
	})
	e.srv = &http.Server{Handler: mux}
	go e.srv.Serve(ln)
	t.Cleanup(func() { e.srv.Close() })
	return e
}

func newDockerProxy(t *testing.T, upstream string) *DockerProxy {
	t.Helper()
	return startProxy(t, "docker.sock", upstream, NewDockerProxy)
}

// newDockerTest starts a fake Engine, a proxy of it and a client of the
// proxy, the three parts of most tests here.
func newDockerTest(t *testing.T) (*fakeEngine, *DockerProxy, *http.Client) {
	t.Helper()
	engine := startFakeEngine(t)
	p := newDockerProxy(t, engine.socket)
	return engine, p, unixClient(t, p.Socket())
}

// TestDockerProxyForwardsAndCounts: requests arrive upstream as the client
// sent them, answers come back as the Engine sent them, and each request is
// counted once under its normalised route and its kind.
func TestDockerProxyForwardsAndCounts(t *testing.T) {
	noLeaks(t)
	engine := startFakeEngine(t)
	p := newDockerProxy(t, "unix://"+engine.socket)
	if p.Host() != "unix://"+p.Socket() {
		t.Fatalf("Host() = %q", p.Host())
	}
	c := unixClient(t, p.Socket())
	start := time.Now()

	// HEAD /_ping: headers and no body.
	req, _ := http.NewRequest(http.MethodHead, "http://api.moby.localhost/_ping", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Api-Version") != "1.41" {
		t.Fatalf("HEAD /_ping: %s %v", resp.Status, resp.Header)
	}

	do := func(method, uri, body string) seen {
		t.Helper()
		req, _ := http.NewRequest(method, "http://api.moby.localhost"+uri, strings.NewReader(body))
		req.Header.Set("User-Agent", "Docker-Client/28.5.2 (linux)")
		req.Header.Set("X-Registry-Auth", "e30=")
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || resp.Header.Get("X-Engine") != "fake" {
			t.Fatalf("%s %s: %s %v", method, uri, resp.Status, resp.Header)
		}
		var s seen
		if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
			t.Fatal(err)
		}
		if s.Method != method || s.URI != uri || s.Body != body || s.Host != "api.moby.localhost" {
			t.Fatalf("upstream saw %+v, want %s %s %q", s, method, uri, body)
		}
		for _, h := range []string{"User-Agent", "X-Registry-Auth"} {
			if s.Header.Get(h) != req.Header.Get(h) {
				t.Fatalf("upstream saw %s %q, want %q", h, s.Header.Get(h), req.Header.Get(h))
			}
		}
		for _, h := range []string{"Accept-Encoding", "X-Forwarded-For", "X-Forwarded-Host", "Forwarded"} {
			if v := s.Header.Get(h); v != "" {
				t.Fatalf("the proxy added %s: %q", h, v)
			}
		}
		return s
	}
	do("GET", "/v1.41/services?filters=%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%7D&status=true", "")
	do("POST", "/v1.41/services/kq8g1dc5s1o2/update?version=42", `{"Name":"x","Mode":{"Replicated":{"Replicas":2}}}`)
	do("DELETE", "/v1.41/services/kq8g1dc5s1o2", "")
	do("GET", "/v1.41/images/local/worker:1/json", "")

	want := map[string]int{
		"HEAD /_ping":                1,
		"GET /services":              1,
		"POST /services/{id}/update": 1,
		"DELETE /services/{id}":      1,
		"GET /images/{id}/json":      1,
	}
	if got := p.Counts(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Counts() = %v, want %v", got, want)
	}
	if p.Mutating() != 2 || p.Reads() != 3 || p.Total() != 5 {
		t.Fatalf("Mutating %d Reads %d Total %d, want 2 3 5", p.Mutating(), p.Reads(), p.Total())
	}
	log := p.Log()
	var keys []string
	for i, c := range log {
		keys = append(keys, c.Key)
		if c.Time.Before(start) || c.Time.After(time.Now()) || (i > 0 && c.Time.Before(log[i-1].Time)) {
			t.Fatalf("Log()[%d].Time %v out of order or range", i, c.Time)
		}
		if c.Conn == 0 {
			t.Fatalf("Log()[%d] has no connection number", i)
		}
	}
	wantKeys := []string{"HEAD /_ping", "GET /services", "POST /services/{id}/update", "DELETE /services/{id}", "GET /images/{id}/json"}
	if !reflect.DeepEqual(keys, wantKeys) {
		t.Fatalf("Log keys %q, want %q", keys, wantKeys)
	}
	if l := log[2]; l.Method != "POST" || l.Path != "/v1.41/services/kq8g1dc5s1o2/update" || l.Kind != KindMutating {
		t.Fatalf("Log()[2] = %+v", l)
	}
	// The log is a copy.
	log[0].Key = "changed"
	if p.Log()[0].Key != "HEAD /_ping" {
		t.Fatal("Log() shares its backing array")
	}

	p.Reset()
	if len(p.Counts()) != 0 || p.Total() != 0 || p.Mutating() != 0 || p.Reads() != 0 || len(p.Log()) != 0 {
		t.Fatalf("after Reset: %v %d", p.Counts(), p.Total())
	}
	do("POST", "/v1.41/services/create", `{}`)
	if got := p.Counts(); !reflect.DeepEqual(got, map[string]int{"POST /services/create": 1}) || p.Mutating() != 1 {
		t.Fatalf("after Reset and one create: %v", got)
	}
}

// eventStream GETs /v1.41/events through c, with no client timeout, and
// returns a reader of its lines that fails the test when a line takes more
// than 5 s: the proxy must pass a stream on as it comes, not when it ends.
func eventStream(t *testing.T, c *http.Client) (readLine func() (string, error)) {
	t.Helper()
	c.Timeout = 0
	resp, err := c.Get("http://docker/v1.41/events")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	lines := bufio.NewReader(resp.Body)
	return func() (string, error) {
		type res struct {
			s   string
			err error
		}
		ch := make(chan res, 1)
		go func() { s, err := lines.ReadString('\n'); ch <- res{s, err} }()
		select {
		case r := <-ch:
			return r.s, r.err
		case <-time.After(5 * time.Second):
			t.Fatal("no line within 5s: the stream is buffered")
			return "", nil
		}
	}
}

// TestDockerProxyStreams: a streaming answer (/events) reaches the client
// line by line, not when it ends; and Close ends a stream in progress.
func TestDockerProxyStreams(t *testing.T) {
	noLeaks(t)
	engine, _, c := newDockerTest(t)
	readLine := eventStream(t, c)
	if l, err := readLine(); err != nil || l != "{\"event\":\"one\"}\n" {
		t.Fatalf("first event %q, %v", l, err)
	}
	close(engine.release)
	if l, err := readLine(); err != nil || l != "{\"event\":\"two\"}\n" {
		t.Fatalf("second event %q, %v", l, err)
	}
	if _, err := readLine(); err != io.EOF {
		t.Fatalf("after the stream: %v, want EOF", err)
	}

	// A stream that does not end by itself is ended by Close.
	_, p2, c2 := newDockerTest(t)
	readLine = eventStream(t, c2)
	if l, err := readLine(); err != nil || l != "{\"event\":\"one\"}\n" {
		t.Fatalf("first event %q, %v", l, err)
	}
	closeWithin(t, p2)
	if _, err := readLine(); err == nil {
		t.Fatal("the stream went on after Close")
	}
	if got := p2.Counts(); !reflect.DeepEqual(got, map[string]int{"GET /events": 1}) {
		t.Fatalf("Counts() after Close = %v", got)
	}
}

// TestDockerProxyConcurrent: many clients at once, every request counted.
func TestDockerProxyConcurrent(t *testing.T) {
	noLeaks(t)
	_, p, c := newDockerTest(t)

	const workers, each = 16, 25
	concurrently(t, workers, func(w int) error {
		for i := range each {
			method, path := "GET", fmt.Sprintf("/v1.41/services/s%d-%d", w, i)
			if i%5 == 0 {
				method, path = "POST", path+"/update"
			}
			req, _ := http.NewRequest(method, "http://docker"+path, nil)
			resp, err := c.Do(req)
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			// Reading while others write: the race detector watches.
			_ = p.Counts()
			_ = p.Log()
		}
		return nil
	})
	want := map[string]int{"GET /services/{id}": workers * each * 4 / 5, "POST /services/{id}/update": workers * each / 5}
	if got := p.Counts(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Counts() = %v, want %v", got, want)
	}
	if p.Total() != workers*each || p.Mutating() != workers*each/5 || len(p.Log()) != workers*each {
		t.Fatalf("Total %d Mutating %d", p.Total(), p.Mutating())
	}
}

// TestDockerProxyUpstreamDown: a request the Engine never got is answered
// 502 and still counted: the client made it.
func TestDockerProxyUpstreamDown(t *testing.T) {
	noLeaks(t)
	p := newDockerProxy(t, sockPath(t, "nobody-listens.sock"))
	c := unixClient(t, p.Socket())
	resp, err := c.Post("http://docker/v1.41/services/create", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %s, want 502", resp.Status)
	}
	if p.Mutating() != 1 {
		t.Fatalf("Mutating() = %d, want 1", p.Mutating())
	}
}

// TestDockerProxyClose: Close removes the socket, refuses new connections,
// keeps the counts readable, and may be called again.
func TestDockerProxyClose(t *testing.T) {
	noLeaks(t)
	engine := startFakeEngine(t)
	p := openProxy(t, "docker.sock", engine.socket, NewDockerProxy)
	c := unixClient(t, p.Socket())
	resp, err := c.Get("http://docker/v1.41/info")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	closedForGood(t, p)
	if _, err := c.Get("http://docker/v1.41/info"); err == nil {
		t.Fatal("a request succeeded after Close")
	}
	if p.Total() != 1 {
		t.Fatalf("Total() after Close = %d, want 1", p.Total())
	}

	// A socket path that is taken is an error, not a silent takeover.
	ln, err := net.Listen("unix", sockPath(t, "taken.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := NewDockerProxy(ln.Addr().String(), engine.socket); err == nil {
		t.Fatal("NewDockerProxy on a socket in use: no error")
	}
	if _, err := NewDockerProxy(sockPath(t, "x.sock"), "tcp://127.0.0.1:2375"); err == nil {
		t.Fatal("NewDockerProxy with a tcp upstream: no error")
	}
}
