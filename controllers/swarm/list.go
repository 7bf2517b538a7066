package swarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/containerd/errdefs/pkg/errhttp"
	"github.com/docker/docker/api"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
)

// Service is what the driver reads of one Swarm service: the fields it
// plans, judges health and counts tasks by, named and nested as in
// Docker's own type so the code reads the same, and the service's spec as
// Docker sent it, decoded whole only to write it back (FullSpec).
//
// Why not swarm.Service: an agent at 1,000 services decodes the whole list
// every pass. The Docker client reads the answer into one buffer before
// decoding it, and swarm.Service holds every field of the spec, so a pass
// allocated about 7 MB and the heap's goal grew with it (docs/BENCHMARKS.md,
// issue 22). ListServices decodes one service at a time, these fields only.
type Service struct {
	ID            string
	Version       swarm.Version
	CreatedAt     time.Time
	UpdatedAt     time.Time
	Spec          Spec
	PreviousSpec  *Spec
	UpdateStatus  *swarm.UpdateStatus
	ServiceStatus *swarm.ServiceStatus

	// spec is the whole spec, as the daemon wrote it.
	spec json.RawMessage
}

// Spec is the part of a service's spec the driver reads.
type Spec struct {
	Name         string
	Labels       map[string]string
	TaskTemplate TaskTemplate
	Mode         swarm.ServiceMode
}

// TaskTemplate is the part of a task spec the driver reads.
type TaskTemplate struct {
	ContainerSpec *ContainerSpec
	ForceUpdate   uint64
}

// ContainerSpec is the part of a container spec the driver reads.
type ContainerSpec struct {
	Image           string
	StopGracePeriod *time.Duration
}

// FullSpec decodes the whole spec the service was read with: what an
// update is built on, so that it changes the owned field and nothing else.
func (s *Service) FullSpec() (swarm.ServiceSpec, error) {
	var spec swarm.ServiceSpec
	if len(s.spec) == 0 {
		return spec, fmt.Errorf("service %s: read without its spec", s.Spec.Name)
	}
	if err := json.Unmarshal(s.spec, &spec); err != nil {
		return spec, fmt.Errorf("service %s: decoding its spec: %w", s.Spec.Name, err)
	}
	return spec, nil
}

// wireService is one element of GET /services as it is decoded: Service's
// own fields, but the spec kept as bytes (json.RawMessage copies them out of
// the decoder's buffer; this Spec, the shallower, is the one encoding/json
// fills) and decoded into Service.Spec after.
type wireService struct {
	Service
	Spec json.RawMessage
}

func (w *wireService) service() (Service, error) {
	s := w.Service
	s.spec = w.Spec
	if len(w.Spec) == 0 || string(w.Spec) == "null" {
		return s, fmt.Errorf("service %s: no spec", w.ID)
	}
	if err := json.Unmarshal(w.Spec, &s.Spec); err != nil {
		return s, fmt.Errorf("service %s: decoding its spec: %w", w.ID, err)
	}
	return s, nil
}

// ParseService reads one service as Docker's API writes it (GET
// /services/ID, or an element of GET /services).
func ParseService(b []byte) (Service, error) {
	var w wireService
	if err := json.Unmarshal(b, &w); err != nil {
		return Service{}, fmt.Errorf("decoding a service: %w", err)
	}
	return w.service()
}

// maxListBytes bounds the answer to one GET /services: about 2 KB a
// service, so room for some 60,000 services, far past what one swarm runs.
// An answer that goes past it fails the observation (ErrListTooLarge);
// nothing is planned from half a list.
const maxListBytes = 128 << 20

// ErrListTooLarge is returned for a service list over maxListBytes.
var ErrListTooLarge = errors.New("the service list is larger than the driver reads")

// DecodeServices reads a JSON array of services from r, one at a time, so
// that no more than one service's bytes are buffered at once, and at most
// maxListBytes of r.
func DecodeServices(r io.Reader) ([]Service, error) { return decodeServices(r, maxListBytes) }

func decodeServices(r io.Reader, limit int64) ([]Service, error) {
	lr := &limitReader{r: r, n: limit, limit: limit}
	dec := json.NewDecoder(lr)
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, listErr(lr, err, "the answer is not a list")
	}
	var out []Service
	for dec.More() {
		var w wireService
		if err := dec.Decode(&w); err != nil {
			return nil, listErr(lr, err, "")
		}
		s, err := w.service()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if _, err := dec.Token(); err != nil {
		return nil, listErr(lr, err, "")
	}
	return out, nil
}

func listErr(lr *limitReader, err error, what string) error {
	if lr.over {
		return fmt.Errorf("decoding the service list: %w (%d bytes)", ErrListTooLarge, lr.limit)
	}
	if err == nil {
		err = errors.New(what)
	}
	return fmt.Errorf("decoding the service list: %w", err)
}

// limitReader is io.LimitReader that remembers it ran out, so a list cut
// by the bound is told apart from one the daemon cut.
type limitReader struct {
	r     io.Reader
	n     int64
	limit int64
	over  bool
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		l.over = true
		return 0, io.ErrUnexpectedEOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// Client is a Docker client as the driver's API (and the Cluster's): the
// client's own calls, with ListServices in place of its ServiceList.
type Client struct {
	*client.Client
	negotiated atomic.Bool
}

// NewClient wraps a Docker client for the driver.
func NewClient(c *client.Client) *Client { return &Client{Client: c} }

// ListServices is GET /services, decoded by DecodeServices. A daemon that
// answers with an error gives it typed as the Docker client types it
// (containerd's errdefs: a node that is no manager is Unavailable).
func (c *Client) ListServices(ctx context.Context, opts swarm.ServiceListOptions) ([]Service, error) {
	q := url.Values{}
	if opts.Filters.Len() > 0 {
		f, err := filters.ToJSON(opts.Filters)
		if err != nil {
			return nil, err
		}
		q.Set("filters", f)
	}
	if opts.Status {
		q.Set("status", "true")
	}
	resp, err := c.get(ctx, "/services", q)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return DecodeServices(resp.Body)
}

// get sends one GET through the client's own transport (DOCKER_HOST, TLS
// and API version hold as for its other calls) and returns the answer once
// it is a 200.
func (c *Client) get(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	if err := c.negotiate(ctx); err != nil {
		return nil, err
	}
	hc := c.HTTPClient()
	u := url.URL{Scheme: "http", Host: "docker", Path: "/v" + c.ClientVersion() + path, RawQuery: q.Encode()}
	if h, err := client.ParseHostURL(c.DaemonHost()); err == nil && h.Scheme == "tcp" {
		u.Host = h.Host
		if t, ok := hc.Transport.(*http.Transport); ok && t.TLSClientConfig != nil {
			u.Scheme = "https"
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, daemonError(path, resp)
	}
	return resp, nil
}

// negotiate agrees on the API version once per client, as the client's own
// calls do (one HEAD /_ping); a failed ping is tried again on the next call.
// A version other than the client's default was negotiated already (by an
// earlier call of the client's own: the driver's /info comes first) or set
// by the user: no ping then, so the driver's own GET costs no call more
// than the client's ServiceList did.
func (c *Client) negotiate(ctx context.Context) error {
	if c.negotiated.Load() || c.ClientVersion() != api.DefaultVersion {
		return nil
	}
	ping, err := c.Ping(ctx)
	if err != nil {
		return err
	}
	c.NegotiateAPIVersionPing(ping)
	c.negotiated.Store(true)
	return nil
}

// APIError is a daemon's answer other than 200: its status and message,
// and the errdefs kind the status stands for (errors.Is with containerd's
// errdefs, as for the Docker client's own errors).
type APIError struct {
	Path    string
	Status  int
	Message string
	kind    error
}

func (e *APIError) Error() string {
	return fmt.Sprintf("GET %s: %d %s: %s", e.Path, e.Status, http.StatusText(e.Status), e.Message)
}

// Is makes errors.Is(err, errdefs.ErrUnavailable) and the like hold.
func (e *APIError) Is(target error) bool { return e.kind != nil && errors.Is(e.kind, target) }

// daemonError reads at most 64 KiB of an error answer.
func daemonError(path string, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	msg := strings.TrimSpace(string(b))
	var body struct{ Message string }
	if json.Unmarshal(b, &body) == nil && body.Message != "" {
		msg = body.Message
	}
	return &APIError{Path: path, Status: resp.StatusCode, Message: msg, kind: errhttp.ToNative(resp.StatusCode)}
}
