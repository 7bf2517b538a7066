package swarm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
)

// richService is a service with most of what Docker writes in a list
// answer, the fields the driver does not read among them.
func richService(name string) swarm.Service {
	replicas, grace := uint64(3), 2*time.Second
	created := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	started := created.Add(time.Hour)
	return swarm.Service{
		ID:   "id-" + name,
		Meta: swarm.Meta{Version: swarm.Version{Index: 42}, CreatedAt: created, UpdatedAt: created.Add(2 * time.Hour)},
		Spec: swarm.ServiceSpec{
			Annotations: swarm.Annotations{Name: name, Labels: map[string]string{"com.docker.stack.namespace": "factory", LabelRestartOn: "r1"}},
			TaskTemplate: swarm.TaskSpec{
				ContainerSpec: &swarm.ContainerSpec{Image: "local/worker:1@sha256:abcd", StopGracePeriod: &grace,
					Labels: map[string]string{"x": "y"}, Env: []string{"A=1"}, Args: []string{"--poll"}, Init: new(bool)},
				Resources:     &swarm.ResourceRequirements{Limits: &swarm.Limit{NanoCPUs: 5e8}},
				RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny},
				Placement:     &swarm.Placement{Constraints: []string{"node.role==manager"}, Platforms: []swarm.Platform{{Architecture: "amd64", OS: "linux"}}},
				ForceUpdate:   7,
				Runtime:       swarm.RuntimeContainer,
			},
			Mode:           swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
			UpdateConfig:   &swarm.UpdateConfig{Parallelism: 1, Order: "stop-first"},
			RollbackConfig: &swarm.UpdateConfig{Parallelism: 1},
			EndpointSpec:   &swarm.EndpointSpec{Mode: swarm.ResolutionModeVIP, Ports: []swarm.PortConfig{{TargetPort: 80, PublishedPort: 8080}}},
		},
		PreviousSpec: &swarm.ServiceSpec{Annotations: swarm.Annotations{Name: name},
			TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "local/worker:0"}, ForceUpdate: 6}},
		Endpoint:      swarm.Endpoint{VirtualIPs: []swarm.EndpointVirtualIP{{NetworkID: "n1", Addr: "10.0.0.2/24"}}},
		UpdateStatus:  &swarm.UpdateStatus{State: swarm.UpdateStateCompleted, StartedAt: &started, CompletedAt: &started, Message: "update completed"},
		ServiceStatus: &swarm.ServiceStatus{RunningTasks: 2, DesiredTasks: 3},
	}
}

// What the streaming decoder reads is what Docker's own type reads of the
// same answer, field by field, and the spec it keeps for writing back is
// the whole spec, unknown to the driver's fields or not.
func TestDecodeServicesAgreesWithDockersType(t *testing.T) {
	in := []swarm.Service{richService("factory-proxy"), service("plain", 0, 0, "w:1"), global("node-exporter", 2, "exporter:1")}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var docker []swarm.Service // the Docker client's decode of the answer
	if err := json.Unmarshal(b, &docker); err != nil {
		t.Fatal(err)
	}
	got, err := DecodeServices(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(docker) {
		t.Fatalf("%d services, want %d", len(got), len(docker))
	}
	for i, d := range docker {
		g := got[i]
		if g.ID != d.ID || g.Version != d.Version || !g.CreatedAt.Equal(d.CreatedAt) || !g.UpdatedAt.Equal(d.UpdatedAt) {
			t.Errorf("%s: meta %+v %v %v, want %+v", d.ID, g.Version, g.CreatedAt, g.UpdatedAt, d.Meta)
		}
		if g.Spec.Name != d.Spec.Name || !reflect.DeepEqual(g.Spec.Labels, d.Spec.Labels) || !reflect.DeepEqual(g.Spec.Mode, d.Spec.Mode) ||
			g.Spec.TaskTemplate.ForceUpdate != d.Spec.TaskTemplate.ForceUpdate {
			t.Errorf("%s: spec %+v, want %+v", d.ID, g.Spec, d.Spec)
		}
		if cs, dcs := g.Spec.TaskTemplate.ContainerSpec, d.Spec.TaskTemplate.ContainerSpec; (cs == nil) != (dcs == nil) ||
			cs != nil && (cs.Image != dcs.Image || !reflect.DeepEqual(cs.StopGracePeriod, dcs.StopGracePeriod)) {
			t.Errorf("%s: container spec %+v, want %+v", d.ID, cs, dcs)
		}
		if (g.PreviousSpec == nil) != (d.PreviousSpec == nil) ||
			g.PreviousSpec != nil && g.PreviousSpec.TaskTemplate.ContainerSpec.Image != d.PreviousSpec.TaskTemplate.ContainerSpec.Image {
			t.Errorf("%s: previous spec %+v, want %+v", d.ID, g.PreviousSpec, d.PreviousSpec)
		}
		if !reflect.DeepEqual(g.UpdateStatus, d.UpdateStatus) || !reflect.DeepEqual(g.ServiceStatus, d.ServiceStatus) {
			t.Errorf("%s: status %+v %+v, want %+v %+v", d.ID, g.UpdateStatus, g.ServiceStatus, d.UpdateStatus, d.ServiceStatus)
		}
		full, err := g.FullSpec()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(full, d.Spec) {
			t.Errorf("%s: full spec\n got  %+v\n want %+v", d.ID, full, d.Spec)
		}
	}
}

func TestDecodeServicesRefusesWhatIsNoList(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"an object", `{"message":"no"}`},
		{"cut short", `[{"ID":"a","Spec":{"Name":"a"}},{"ID":"b"`},
		{"no closing bracket", `[{"ID":"a","Spec":{"Name":"a"}}`},
		{"a service without its spec", `[{"ID":"a"}]`},
		{"a spec of the wrong shape", `[{"ID":"a","Spec":{"Name":7}}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := DecodeServices(strings.NewReader(tc.in)); err == nil {
				t.Errorf("decoded %+v, want an error", got)
			}
		})
	}
	if got, err := DecodeServices(strings.NewReader(`[]`)); err != nil || len(got) != 0 {
		t.Errorf("empty list: %v, %v", got, err)
	}
}

// A list past the bound is refused as too large, not as cut short, and no
// more than the bound is read of it.
func TestDecodeServicesBoundsTheRead(t *testing.T) {
	b, _ := json.Marshal([]swarm.Service{richService("a"), richService("b"), richService("c")})
	r := bytes.NewReader(b)
	_, err := decodeServices(r, int64(len(b)/2))
	if !errors.Is(err, ErrListTooLarge) {
		t.Fatalf("err %v, want ErrListTooLarge", err)
	}
	if read := int64(len(b)) - int64(r.Len()); read > int64(len(b)/2) {
		t.Errorf("read %d bytes of %d, bound %d", read, len(b), len(b)/2)
	}
	if _, err := decodeServices(bytes.NewReader(b), int64(len(b))); err != nil {
		t.Errorf("a list exactly at the bound: %v", err)
	}
}

// The client's GET /services goes through the Docker client's transport
// and version, asks with the list's filters and status, negotiates the API
// version once, and gives the daemon's errors typed as the Docker client
// does (a node that is no manager answers 503: Unavailable).
func TestClientListServices(t *testing.T) {
	var pings, lists atomic.Int32
	var manager atomic.Bool
	manager.Store(true)
	var query atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			pings.Add(1)
			w.Header().Set("API-Version", "1.41")
			w.Write([]byte("OK"))
		case r.URL.Path == "/v1.41/services":
			lists.Add(1)
			query.Store(r.URL.RawQuery)
			if !manager.Load() {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(`{"message":"This node is not a swarm manager."}`))
				return
			}
			json.NewEncoder(w).Encode([]swarm.Service{richService("factory-proxy")})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	dc, err := client.NewClientWithOpts(client.WithHost("tcp://"+srv.Listener.Addr().String()), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(dc)
	ctx := context.Background()
	args := filters.NewArgs(filters.Arg("name", "factory-proxy"))
	for range 2 {
		got, err := c.ListServices(ctx, swarm.ServiceListOptions{Status: true, Filters: args})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Spec.Name != "factory-proxy" {
			t.Fatalf("listed %+v", got)
		}
	}
	if pings.Load() != 1 || lists.Load() != 2 {
		t.Errorf("%d pings, %d lists; want 1, 2", pings.Load(), lists.Load())
	}
	if q := query.Load().(string); !strings.Contains(q, "status=true") || !strings.Contains(q, "factory-proxy") {
		t.Errorf("query %q lacks the status or the name filter", q)
	}
	// A client whose version is known already (negotiated by an earlier
	// call of its own, or fixed) pings no more.
	fixed, err := client.NewClientWithOpts(client.WithHost("tcp://"+srv.Listener.Addr().String()), client.WithVersion("1.41"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewClient(fixed).ListServices(ctx, swarm.ServiceListOptions{}); err != nil || pings.Load() != 1 {
		t.Errorf("a client at a known version: err %v, %d pings in all, want 1", err, pings.Load())
	}
	manager.Store(false)
	_, err = c.ListServices(ctx, swarm.ServiceListOptions{})
	var apiErr *APIError
	if !cerrdefs.IsUnavailable(err) || !errors.As(err, &apiErr) || apiErr.Message != "This node is not a swarm manager." {
		t.Errorf("err %v (%T), want Unavailable with the daemon's message", err, err)
	}
}

func FuzzDecodeServices(f *testing.F) {
	b, _ := json.Marshal([]swarm.Service{richService("a"), service("b", 1, 0, "w:1")})
	f.Add(b)
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"ID":"a","Spec":{"Name":"a","Mode":{"Global":{}}}}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeServices(bytes.NewReader(b), 1<<16)
		if err != nil {
			return
		}
		// A spec Docker's type cannot read fails the write built on it, with
		// an error; one it reads names the same service.
		for i := range got {
			if full, err := got[i].FullSpec(); err == nil && full.Name != got[i].Spec.Name {
				t.Fatalf("the full spec names %q, the list %q", full.Name, got[i].Spec.Name)
			}
		}
	})
}
