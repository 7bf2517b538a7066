package compose

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	v1 "reconciler.dev/reconciler/api/v1"
)

// recorder is a fake Docker API that records the calls the driver makes, so
// the order of stops, removals and creations can be checked without a
// daemon (the e2e suite checks the same against the real one).
type recorder struct {
	mu      sync.Mutex
	calls   []string
	created []spec
	tmpl    container.InspectResponse
	fail    map[string]error // call -> error returned
	list    []container.Summary
	exit    int64 // what ContainerWait answers, unless waitErr
	waitErr error
	// startErr fails every start (the names of one-offs are random, so
	// fail cannot name them).
	startErr error
}

func (r *recorder) record(call string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call)
	return r.fail[call]
}

func (r *recorder) ContainerList(context.Context, container.ListOptions) ([]container.Summary, error) {
	return r.list, r.record("list")
}

func (r *recorder) ContainerWait(_ context.Context, id string, cond container.WaitCondition) (<-chan container.WaitResponse, <-chan error) {
	ok, errc := make(chan container.WaitResponse, 1), make(chan error, 1)
	if err := errors.Join(r.record(fmt.Sprintf("wait %s %s", id, cond)), r.waitErr); err != nil {
		errc <- err
	} else {
		ok <- container.WaitResponse{StatusCode: r.exit}
	}
	return ok, errc
}

func (r *recorder) ContainerInspect(_ context.Context, id string) (container.InspectResponse, error) {
	return r.tmpl, r.record("inspect " + id)
}

func (r *recorder) ContainerCreate(_ context.Context, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig, _ *ocispec.Platform, name string) (container.CreateResponse, error) {
	r.mu.Lock()
	r.created = append(r.created, spec{Name: name, Config: cfg, HostConfig: hc, Networking: nc})
	r.mu.Unlock()
	return container.CreateResponse{ID: "id-" + name}, r.record("create " + name)
}

func (r *recorder) NetworkConnect(_ context.Context, net, id string, _ *network.EndpointSettings) error {
	return r.record("connect " + id + " " + net)
}

func (r *recorder) ContainerStart(_ context.Context, id string, _ container.StartOptions) error {
	return errors.Join(r.record("start "+id), r.startErr)
}

func (r *recorder) ContainerStop(_ context.Context, id string, o container.StopOptions) error {
	return r.record(fmt.Sprintf("stop %s %ds", id, *o.Timeout))
}

func (r *recorder) ContainerRestart(_ context.Context, id string, o container.StopOptions) error {
	return r.record(fmt.Sprintf("restart %s %ds", id, *o.Timeout))
}

func (r *recorder) ContainerRename(_ context.Context, id, name string) error {
	return r.record("rename " + id + " " + name)
}

func (r *recorder) ContainerRemove(_ context.Context, id string, o container.RemoveOptions) error {
	call := "remove " + id
	if o.Force {
		call += " force"
	}
	if o.RemoveVolumes {
		call += " volumes"
	}
	return r.record(call)
}

// applyPlan plans and applies every action against the fake, as the engine
// would (down before up), and returns the calls made.
func applyPlan(t *testing.T, svc v1.Service, live []container.Summary, fail map[string]error) ([]string, error) {
	t.Helper()
	rec := &recorder{fail: fail, tmpl: template("usm-poller-1")}
	err := applyWith(&Driver{API: rec, CallTimeout: time.Second, Concurrency: 1}, svc, live) // starts in order
	return rec.calls, err
}

// applyWith plans svc against live and applies every action with d, in
// order, up to the first error.
func applyWith(d *Driver, svc v1.Service, live []container.Summary) error {
	ts := targets(svc)
	l := liveFromList(ts, live)
	for _, a := range Plan(ts, l) {
		if err := d.Apply(context.Background(), a, ts[0], l[a.Subject]); err != nil {
			return err
		}
	}
	return nil
}

func withStop(s v1.Service, d time.Duration) v1.Service {
	s.StopTimeout = v1.NewDuration(d)
	return s
}

// applyPollers applies, on rec, the first action of the plan that takes
// the usm project's poller from the running replicas live to replicas.
func applyPollers(ctx context.Context, rec *recorder, replicas int32, live ...int) error {
	d := &Driver{API: rec}
	ts := targets(declare("usm", "poller", replicas))
	l := liveFromList(ts, pollers(running, live...))
	return d.Apply(ctx, Plan(ts, l)[0], ts[0], l["compose/poller"])
}

func TestApplySequence(t *testing.T) {
	cases := []struct {
		name string
		svc  v1.Service
		live []container.Summary
		want []string
	}{
		{
			name: "5 -> 2: one at a time from the highest, each stopped then removed",
			svc:  withStop(declare("usm", "poller", 2), 2500*time.Millisecond),
			live: pollers(running, 1, 2, 3, 4, 5),
			want: []string{
				"stop id-usm-poller-5 3s", "remove id-usm-poller-5",
				"stop id-usm-poller-4 3s", "remove id-usm-poller-4",
				"stop id-usm-poller-3 3s", "remove id-usm-poller-3",
			},
		},
		{
			name: "2 -> 0: the lowest is stopped and kept as the template",
			svc:  declare("usm", "poller", 0),
			live: pollers(running, 1, 2),
			want: []string{"stop id-usm-poller-2 10s", "remove id-usm-poller-2", "stop id-usm-poller-1 10s"},
		},
		{
			name: "0 -> 3: the kept one is started, the rest made from it",
			svc:  declare("usm", "poller", 3),
			live: pollers(exited, 1),
			want: []string{
				"inspect id-usm-poller-1", "create usm-poller-2", "create usm-poller-3",
				"start id-usm-poller-1", "start id-usm-poller-2", "start id-usm-poller-3",
			},
		},
		{
			name: "1 -> 5: the template is inspected once, all are made, then started",
			svc:  declare("usm", "poller", 5),
			live: pollers(running, 1),
			want: []string{
				"inspect id-usm-poller-1",
				"create usm-poller-2", "create usm-poller-3", "create usm-poller-4", "create usm-poller-5",
				"start id-usm-poller-2", "start id-usm-poller-3", "start id-usm-poller-4", "start id-usm-poller-5",
			},
		},
		{
			name: "a gap is filled under its old name",
			svc:  declare("usm", "poller", 4),
			live: pollers(running, 1, 2, 4),
			want: []string{"inspect id-usm-poller-1", "create usm-poller-3", "start id-usm-poller-3"},
		},
		{
			name: "a stopped replica is started again, not recreated",
			svc:  declare("usm", "poller", 3),
			live: join(pollers(running, 1, 3), pollers(exited, 2)),
			want: []string{"start id-usm-poller-2"},
		},
		{
			name: "a dead replica is replaced",
			svc:  declare("usm", "poller", 2),
			live: join(pollers(running, 1), pollers(container.StateDead, 2)),
			want: []string{"remove id-usm-poller-2 force", "inspect id-usm-poller-1", "create usm-poller-2", "start id-usm-poller-2"},
		},
		{
			name: "only higher numbers left: the lowest is kept as the template",
			svc:  declare("usm", "poller", 2),
			live: pollers(running, 4, 5),
			want: []string{
				"stop id-usm-poller-5 10s", "remove id-usm-poller-5", "stop id-usm-poller-4 10s",
				"inspect id-usm-poller-4", "create usm-poller-1", "create usm-poller-2",
				"start id-usm-poller-1", "start id-usm-poller-2",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := applyPlan(t, tc.svc, tc.live, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("calls:\n got  %q\n want %q", got, tc.want)
			}
		})
	}
}

func TestApplyErrors(t *testing.T) {
	boom := errors.New("boom")
	t.Run("a failed stop names the subject and stops the scale-down", func(t *testing.T) {
		calls, err := applyPlan(t, declare("usm", "poller", 1), pollers(running, 1, 2, 3),
			map[string]error{"stop id-usm-poller-3 10s": boom})
		if err == nil || !strings.HasPrefix(err.Error(), "compose/poller: stop usm-poller-3: ") || !errors.Is(err, boom) {
			t.Fatalf("err = %v", err)
		}
		if want := []string{"stop id-usm-poller-3 10s"}; !reflect.DeepEqual(calls, want) {
			t.Errorf("calls %q, want %q", calls, want)
		}
	})
	t.Run("a container already gone is not removed again", func(t *testing.T) {
		calls, err := applyPlan(t, declare("usm", "poller", 1), pollers(running, 1, 2, 3),
			map[string]error{"stop id-usm-poller-3 10s": cerrdefs.ErrNotFound})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"stop id-usm-poller-3 10s", "stop id-usm-poller-2 10s", "remove id-usm-poller-2"}
		if !reflect.DeepEqual(calls, want) {
			t.Errorf("calls %q, want %q", calls, want)
		}
	})
	t.Run("a failed create names the subject and the container; what was made is started", func(t *testing.T) {
		calls, err := applyPlan(t, declare("usm", "poller", 4), pollers(running, 1),
			map[string]error{"create usm-poller-3": boom})
		if err == nil || !strings.HasPrefix(err.Error(), "compose/poller: create usm-poller-3: ") {
			t.Fatalf("err = %v", err)
		}
		want := []string{"inspect id-usm-poller-1", "create usm-poller-2", "create usm-poller-3", "start id-usm-poller-2"}
		if !reflect.DeepEqual(calls, want) {
			t.Errorf("calls %q, want %q", calls, want)
		}
	})
	t.Run("starts run concurrently, every one waited for", func(t *testing.T) {
		rec := &recorder{tmpl: template("usm-poller-1"), fail: map[string]error{"start id-usm-poller-4": boom}}
		err := applyPollers(context.Background(), rec, 6, 1)
		if err == nil || !strings.HasPrefix(err.Error(), "compose/poller: start usm-poller-4: ") {
			t.Fatalf("err = %v", err)
		}
		var starts []string
		for _, c := range rec.calls {
			if strings.HasPrefix(c, "start ") {
				starts = append(starts, c)
			}
		}
		sort.Strings(starts)
		want := []string{"start id-usm-poller-2", "start id-usm-poller-3", "start id-usm-poller-4", "start id-usm-poller-5", "start id-usm-poller-6"}
		if !reflect.DeepEqual(starts, want) {
			t.Errorf("starts %q, want %q", starts, want)
		}
	})
	t.Run("a replica that cannot join its networks is removed again", func(t *testing.T) {
		rec := &recorder{
			tmpl: twoNetworks(template("usm-poller-1")),
			fail: map[string]error{"connect id-usm-poller-2 net-backend": boom},
		}
		err := applyPollers(context.Background(), rec, 2, 1)
		if err == nil || !strings.Contains(err.Error(), "connect usm-poller-2 to network net-backend") {
			t.Fatalf("err = %v", err)
		}
		want := []string{"inspect id-usm-poller-1", "create usm-poller-2", "connect id-usm-poller-2 net-backend", "remove id-usm-poller-2 force"}
		if !reflect.DeepEqual(rec.calls, want) {
			t.Errorf("calls %q, want %q", rec.calls, want)
		}
	})
	t.Run("an abandoned pass stops between containers", func(t *testing.T) {
		rec := &recorder{}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := applyPollers(ctx, rec, 0, 1, 2)
		if !errors.Is(err, context.Canceled) || len(rec.calls) != 0 {
			t.Fatalf("err = %v, calls %q", err, rec.calls)
		}
	})
	t.Run("an action its Plan did not make is refused", func(t *testing.T) {
		rec := &recorder{}
		d := &Driver{API: rec}
		ts := targets(declare("usm", "poller", 0))
		l := liveFromList(ts, pollers(running, 1, 2))
		a := Plan(ts, l)[0]
		a.Steps = nil
		if err := d.Apply(context.Background(), a, ts[0], l["compose/poller"]); err == nil || len(rec.calls) != 0 {
			t.Fatalf("err = %v, calls %q; want an error and no call", err, rec.calls)
		}
	})
}

// template is a compose replica as ContainerInspect returns it, on the
// project's default network.
func template(name string) container.InspectResponse {
	const fullID = "0123456789abcdef0123456789abcdef"
	return container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{
			ID: fullID, Name: "/" + name, Image: "sha256:feed",
			HostConfig: &container.HostConfig{
				NetworkMode:   "usm_default",
				RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
			},
		},
		Config: &container.Config{
			Hostname: fullID[:12],
			Image:    "erpuserside/usm_poller:3.18.8",
			Env:      []string{"US_AMQP_DSN=amqp://x", "USM_POLLER_SATELLITE_ID=7"},
			Labels: map[string]string{
				LabelProject: "usm", LabelService: "poller", LabelNumber: "1", LabelOneoff: "False",
				"com.docker.compose.config-hash": "c0ffee", "com.docker.compose.version": "2.29.1",
				labelReplace: "old-id",
			},
		},
		NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{
			"usm_default": {
				NetworkID: "net-default", EndpointID: "ep", IPAddress: "172.20.0.2", MacAddress: "02:42:ac:14:00:02",
				Aliases:    []string{name, "poller", fullID[:12]},
				IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: "172.20.0.2"},
			},
		}},
	}
}

func twoNetworks(c container.InspectResponse) container.InspectResponse {
	c.NetworkSettings.Networks["backend"] = &network.EndpointSettings{NetworkID: "net-backend", Aliases: []string{"poller", "sat"}}
	return c
}

func TestReplicaSpec(t *testing.T) {
	tmpl := twoNetworks(template("usm-poller-1"))
	s, err := replicaSpec(tmpl, "usm", "poller", 4, override{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "usm-poller-4" {
		t.Errorf("name %q", s.Name)
	}
	if got := s.Config.Labels; got[LabelNumber] != "4" || got["com.docker.compose.config-hash"] != "c0ffee" ||
		got[LabelOneoff] != "False" || got[LabelProject] != "usm" || got[LabelService] != "poller" {
		t.Errorf("labels %v", got)
	}
	if _, ok := s.Config.Labels[labelReplace]; ok {
		t.Errorf("the replace label was copied: %v", s.Config.Labels)
	}
	if tmpl.Config.Labels[LabelNumber] != "1" {
		t.Errorf("the template's labels were changed: %v", tmpl.Config.Labels)
	}
	if s.Config.Hostname != "" {
		t.Errorf("hostname %q: the template's generated one was copied", s.Config.Hostname)
	}
	if s.Config.Image != tmpl.Config.Image || !reflect.DeepEqual(s.Config.Env, tmpl.Config.Env) {
		t.Errorf("image %q env %v, want the template's", s.Config.Image, s.Config.Env)
	}
	if s.HostConfig.NetworkMode != "usm_default" || s.HostConfig.RestartPolicy.Name != container.RestartPolicyUnlessStopped {
		t.Errorf("host config %+v", s.HostConfig)
	}
	eps := s.Networking.EndpointsConfig
	if len(eps) != 1 || eps["usm_default"] == nil {
		t.Fatalf("create networks %v, want only the primary", eps)
	}
	want := &network.EndpointSettings{Aliases: []string{"usm-poller-4", "poller"}}
	if !reflect.DeepEqual(eps["usm_default"], want) {
		t.Errorf("primary endpoint %+v, want %+v (no addresses, the template's aliases renamed)", eps["usm_default"], want)
	}
	wantConnect := []endpoint{{Network: "net-backend", Settings: &network.EndpointSettings{Aliases: []string{"poller", "sat"}}}}
	if !reflect.DeepEqual(s.Connect, wantConnect) {
		t.Errorf("connect %+v, want %+v", s.Connect, wantConnect)
	}

	t.Run("a declared hostname is kept", func(t *testing.T) {
		c := template("usm-poller-1")
		c.Config.Hostname = "poller"
		s, _ := replicaSpec(c, "usm", "poller", 2, override{})
		if s.Config.Hostname != "poller" {
			t.Errorf("hostname %q", s.Config.Hostname)
		}
	})
	t.Run("the default bridge takes no aliases", func(t *testing.T) {
		c := template("usm-poller-1")
		c.HostConfig.NetworkMode = "default"
		c.NetworkSettings.Networks = map[string]*network.EndpointSettings{"bridge": {NetworkID: "b", IPAddress: "172.17.0.2"}}
		s, _ := replicaSpec(c, "usm", "poller", 2, override{})
		if got := s.Networking.EndpointsConfig; !reflect.DeepEqual(got, map[string]*network.EndpointSettings{"bridge": {}}) {
			t.Errorf("endpoints %+v", got)
		}
	})
	t.Run("host networking has no endpoints", func(t *testing.T) {
		c := template("usm-poller-1")
		c.HostConfig.NetworkMode = "host"
		c.NetworkSettings.Networks = map[string]*network.EndpointSettings{"host": {}}
		s, _ := replicaSpec(c, "usm", "poller", 2, override{})
		if s.Networking != nil || len(s.Connect) != 0 {
			t.Errorf("networking %+v connect %+v", s.Networking, s.Connect)
		}
	})
	t.Run("a template without configuration is an error", func(t *testing.T) {
		if _, err := replicaSpec(container.InspectResponse{}, "usm", "poller", 2, override{}); err == nil {
			t.Error("no error")
		}
	})
}
