// Package gitserver serves bare git repositories over smart HTTP by running
// the real `git http-backend` as a CGI program, and counts what each
// repository is asked for. The testbed runs it as a daemon (hack/gitserver)
// and tests that must stop and start a git server run it in-process. The
// counters let tests and benchmarks prove how many requests and bytes a poll
// costs, measured at the server rather than trusted from the client.
package gitserver

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cgi"
	"os/exec"
	"strconv"
	"strings"
	"sync"
)

// Counts is what one repository was asked for.
type Counts struct {
	Requests int64 `json:"requests"`
	BytesOut int64 `json:"bytesOut"`
	BytesIn  int64 `json:"bytesIn"`
	// ByService counts requests by git service; a protocol v2 request to
	// git-upload-pack is counted with its command ("git-upload-pack
	// ls-refs", "git-upload-pack fetch").
	ByService map[string]int64 `json:"byService"`
	// UploadPacks counts fetches or clones that transferred objects: v0/v1
	// POSTs to git-upload-pack and v2 fetch commands, not v2 ref listings.
	UploadPacks int64 `json:"uploadPacks"`
}

// Server is an http.Handler for every bare repository below Root.
type Server struct {
	Root string // folder holding NAME.git bare repositories

	mu     sync.Mutex
	counts map[string]*Counts
}

// New returns a server for the bare repositories below root.
func New(root string) *Server {
	return &Server{Root: root, counts: map[string]*Counts{}}
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_stats" {
		s.serveStats(w, r)
		return
	}
	gitPath, err := exec.LookPath("git")
	if err != nil {
		http.Error(w, "git not installed", http.StatusInternalServerError)
		return
	}
	repo, service := classify(r)
	cr := &countingReader{r: r.Body}
	r.Body = cr
	fetches := service == "git-upload-pack"
	if fetches && strings.Contains(r.Header.Get("Git-Protocol"), "version=2") {
		// A v2 request names its command in its first packet: read the
		// (small) body to see it, then hand it on unchanged.
		body, err := io.ReadAll(io.LimitReader(cr, maxV2Body+1))
		if err != nil || len(body) > maxV2Body {
			http.Error(w, "request body unreadable or too large", http.StatusBadRequest)
			return
		}
		cmd := v2Command(body, r.Header.Get("Content-Encoding"))
		service += " " + cmd
		fetches = cmd == "fetch"
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	cw := &countingWriter{ResponseWriter: w}
	h := &cgi.Handler{
		Path: gitPath,
		Args: []string{"http-backend"},
		Env: []string{
			"GIT_PROJECT_ROOT=" + s.Root,
			"GIT_HTTP_EXPORT_ALL=1",
			// http-backend only enables receive-pack for an authenticated
			// user; the testbed lets tests push over http too.
			"REMOTE_USER=testbed",
		},
	}
	h.ServeHTTP(cw, r)

	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counts[repo]
	if c == nil {
		c = &Counts{ByService: map[string]int64{}}
		s.counts[repo] = c
	}
	c.Requests++
	c.BytesOut += cw.n
	c.BytesIn += cr.n
	c.ByService[service]++
	if fetches {
		c.UploadPacks++
	}
}

// maxV2Body bounds the v2 request bodies read to classify them: an ls-refs
// or a shallow fetch is a few kilobytes.
const maxV2Body = 8 << 20

// v2Command returns the command of a protocol v2 request body ("ls-refs",
// "fetch"), or "unknown".
func v2Command(body []byte, encoding string) string {
	var r io.Reader = bytes.NewReader(body)
	if strings.EqualFold(encoding, "gzip") {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return "unknown"
		}
		r = zr
	}
	var pkt [4 + 64]byte
	n, _ := io.ReadFull(r, pkt[:])
	if n < 4 {
		return "unknown"
	}
	size, err := strconv.ParseUint(string(pkt[:4]), 16, 16)
	if err != nil || size < 4 || int(size) > n {
		return "unknown"
	}
	cmd, ok := strings.CutPrefix(strings.TrimSuffix(string(pkt[4:size]), "\n"), "command=")
	if !ok || cmd == "" {
		return "unknown"
	}
	return cmd
}

// Stats returns a copy of the counters of one repository ("name.git").
func (s *Server) Stats(repo string) Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counts[repo]
	if c == nil {
		return Counts{ByService: map[string]int64{}}
	}
	out := *c
	out.ByService = map[string]int64{}
	for k, v := range c.ByService {
		out.ByService[k] = v
	}
	return out
}

// serveStats answers GET /_stats?repo=NAME.git with that repository's counts.
func (s *Server) serveStats(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s.Stats(r.URL.Query().Get("repo")))
}

// classify names the repository ("x.git") and the git service a request is for.
func classify(r *http.Request) (repo, service string) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	if i := strings.Index(p, ".git"); i >= 0 {
		repo = p[:i+4]
	}
	switch {
	case strings.HasSuffix(p, "/info/refs"):
		service = "info/refs?" + r.URL.Query().Get("service")
	case strings.HasSuffix(p, "/git-upload-pack"):
		service = "git-upload-pack"
	case strings.HasSuffix(p, "/git-receive-pack"):
		service = "git-receive-pack"
	default:
		service = "other"
	}
	return repo, service
}

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

type countingReader struct {
	r interface{ Read([]byte) (int, error) }
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) Close() error { return nil }
