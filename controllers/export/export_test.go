package export

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/docker/docker/api/types/swarm"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers/daemontools"
	"reconciler.dev/reconciler/controllers/supervisor"
	swarmdrv "reconciler.dev/reconciler/controllers/swarm"
	"reconciler.dev/reconciler/desired"
)

func u64(n uint64) *uint64 { return &n }

func status(want byte, pid int) *daemontools.Status {
	return &daemontools.Status{Want: want, PID: pid, Changed: time.Unix(1795357062, 0)}
}

// folder is a service folder as daemontools.ReadFolder reads it; st nil:
// no status record.
func folder(dir string, supervised bool, st *daemontools.Status, down bool) daemontools.Folder {
	f := daemontools.Folder{Dir: dir, Supervised: supervised, DownFile: down}
	if st != nil {
		f.Status, f.HasStatus = *st, true
	}
	return f
}

// aHost is a host running a bit of everything.
func aHost() Live {
	return Live{
		Swarm: []SwarmService{
			{Name: "factory-proxy", Replicas: u64(1), Image: "local/worker:1@sha256:0123"},
			{Name: "factory-broker", Replicas: u64(2), Image: "local/worker:1"},
			{Name: "node-exporter", Image: "prom/node-exporter"}, // global
			{Name: "usm-poller", Replicas: u64(0), Image: "local/worker:2"},
		},
		Units: []UnitState{
			{Name: "abb-factory-proxy-housekeeping.timer", FileState: "enabled"},
			{Name: "abb-factory-proxy-housekeeping.timer", ActiveState: "active"},
			{Name: "apt-daily.timer", FileState: "disabled"}, // neither enabled nor active
			{Name: "systemd-tmpfiles-clean.timer", FileState: "static"},
			{Name: "systemd-tmpfiles-clean.timer", ActiveState: "active"},
			{Name: "usm-poller@.service", FileState: "disabled"},
			{Name: "usm-poller@1.service", ActiveState: "active"},
			{Name: "usm-poller@2.service", ActiveState: "activating"},
			{Name: "usm-poller@3.service", ActiveState: "failed"},
			{Name: "getty@tty1.service", ActiveState: "active"}, // not a replica
			{Name: "dbus.service", FileState: "static", ActiveState: "active"},
			{Name: "backup.service", FileState: "disabled", ActiveState: "inactive"},
		},
		Supervisor: []SupervisorSocket{{Socket: "/run/s.sock", Processes: []supervisor.Process{
			{Group: "worker", Name: "worker_02", State: "STOPPED"},
			{Group: "worker", Name: "worker_01", State: "RUNNING"},
			{Group: "mailer", Name: "mailer", State: "BACKOFF"},
		}}, {Socket: v1.DefaultSupervisorSocket, Processes: []supervisor.Process{
			{Group: "usm-poller", Name: "usm-poller_01", State: "RUNNING"},
		}}},
		Daemontools: []daemontools.Folder{
			folder("/service/slapd", true, status('u', 10), false),
			folder("/service/cache-warmup", true, status(0, 0), true),
			folder("/service/mldonkey", true, status('d', 0), true),
			folder("/service/orphan", false, status('d', 0), false),
			folder("/srv/runit/squid", true, &daemontools.Status{Runit: true, Want: 'u', PID: 3, RunState: daemontools.RunStateRun}, false),
		},
	}
}

func names(h *v1.Host) []string {
	var out []string
	for _, s := range h.Spec.Services {
		out = append(out, s.Name)
	}
	for _, u := range h.Spec.Units {
		out = append(out, u.Name)
	}
	return out
}

func TestBuildEverything(t *testing.T) {
	h, notes := Build(aHost(), Options{Host: "fp-01"})
	want := `# x

apiVersion: reconciler.dev/v1
kind: Host
metadata:
  name: fp-01
spec:
  services:
    - name: factory-broker
      replicas: 2
      image: local/worker:1
    - name: factory-proxy
      replicas: 1
      image: local/worker:1
    - name: usm-poller
      replicas: 0
      image: local/worker:2
    - name: usm-poller-systemd
      driver: systemd
      unit: usm-poller@.service
      replicas: 2
    - name: mailer
      driver: supervisor
      socket: /run/s.sock
      replicas: 1
    - name: usm-poller-supervisor
      driver: supervisor
      program: usm-poller
      replicas: 1
    - name: worker
      driver: supervisor
      socket: /run/s.sock
      replicas: 1
    - name: cache-warmup
      driver: daemontools
      replicas: 1
      once: true
    - name: mldonkey
      driver: daemontools
      replicas: 0
    - name: slapd
      driver: daemontools
      replicas: 1
    - name: squid
      driver: daemontools
      dir: /srv/runit/squid
      replicas: 1
  units:
    - name: abb-factory-proxy-housekeeping.timer
      enabled: true
      active: true
    - name: systemd-tmpfiles-clean.timer
      active: true
`
	b, err := Marshal(h, []string{"x"})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Errorf("got:\n%s\nwant:\n%s", b, want)
	}
	wantNotes := []string{
		`daemontools service /service/orphan has no supervise running (or no status): left out`,
		`supervisor service "usm-poller" is named "usm-poller-supervisor" here: another service has its name`,
		`swarm service node-exporter is not replicated (global or a job): left out`,
		`systemd service "usm-poller" is named "usm-poller-systemd" here: another service has its name`,
	}
	if !reflect.DeepEqual(notes, wantNotes) {
		t.Errorf("notes:\n%s\nwant:\n%s", strings.Join(notes, "\n"), strings.Join(wantNotes, "\n"))
	}
	// It validates, with the project's own loader.
	repo, err := desired.LoadFiles([]string{"h.yaml"}, func(string) ([]byte, error) { return b, nil })
	if err != nil {
		t.Fatal(err)
	}
	if errs := repo.Validate(); len(errs) > 0 {
		t.Fatalf("invalid: %v", errs)
	}
	if _, errs := repo.Effective("fp-01"); len(errs) > 0 {
		t.Fatalf("invalid: %v", errs)
	}
	// The same live state, given in another order, prints the same bytes.
	l := aHost()
	for i, j := 0, len(l.Units)-1; i < j; i, j = i+1, j-1 {
		l.Units[i], l.Units[j] = l.Units[j], l.Units[i]
	}
	l.Swarm[0], l.Swarm[1] = l.Swarm[1], l.Swarm[0]
	l.Supervisor[0].Processes[0], l.Supervisor[0].Processes[2] = l.Supervisor[0].Processes[2], l.Supervisor[0].Processes[0]
	h2, _ := Build(l, Options{Host: "fp-01"})
	if b2, _ := Marshal(h2, []string{"x"}); string(b2) != string(b) {
		t.Errorf("not stable:\n%s", b2)
	}
}

func TestBuildSelect(t *testing.T) {
	tests := []struct {
		sel  []string
		want []string
	}{
		{sel: []string{"factory-*"}, want: []string{"factory-broker", "factory-proxy"}},
		// A glob that names no unit type brings in no other unit.
		{sel: []string{"*"}, want: []string{"factory-broker", "factory-proxy", "usm-poller", "usm-poller-systemd",
			"mailer", "usm-poller-supervisor", "worker", "cache-warmup", "mldonkey", "slapd", "squid",
			"abb-factory-proxy-housekeeping.timer", "systemd-tmpfiles-clean.timer"}},
		{sel: []string{"d*"}, want: nil},
		{sel: []string{"factory-proxy", "abb-*.timer"}, want: []string{"factory-proxy", "abb-factory-proxy-housekeeping.timer"}},
		// A template service answers to its name and to its template unit.
		{sel: []string{"usm-poller@.service"}, want: []string{"usm-poller"}},
		// Other units come only when a glob names them, in any state (and
		// the template's service answers to its unit usm-poller@.service).
		{sel: []string{"*.service"}, want: []string{"usm-poller", "backup.service", "dbus.service"}},
		// A disabled, inactive timer stays out even when named.
		{sel: []string{"apt-daily.timer"}, want: nil},
		// Folders answer to their name and their path.
		{sel: []string{"/srv/runit/*"}, want: []string{"squid"}},
		{sel: []string{"nothing"}, want: nil},
	}
	for _, tt := range tests {
		h, _ := Build(aHost(), Options{Host: "h", Select: tt.sel})
		if got := names(h); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("--select %v: %v, want %v", tt.sel, got, tt.want)
		}
	}
	h, _ := Build(aHost(), Options{Host: "h", Select: []string{"*.service"}})
	if u := h.Spec.Units[0]; u.Name != "backup.service" || u.Enabled == nil || *u.Enabled || *u.Active {
		t.Errorf("backup.service: %+v", u)
	}
	if u := h.Spec.Units[1]; u.Enabled != nil || !*u.Active {
		t.Errorf("a static unit gets no enabled: %+v", u)
	}
}

func TestBuildNotesWhatAPlanWouldChange(t *testing.T) {
	l := Live{
		Units: []UnitState{{Name: "p@2.service", ActiveState: "active"}, {Name: "p@5.service", ActiveState: "active"}},
		Supervisor: []SupervisorSocket{{Socket: v1.DefaultSupervisorSocket, Processes: []supervisor.Process{
			{Group: "w", Name: "w_01", State: "STOPPED"}, {Group: "w", Name: "w_02", State: "RUNNING"}}}},
		Daemontools: []daemontools.Folder{
			folder("/service/a", true, status('u', 1), true),
			folder("/service/b", true, status('d', 0), false),
			folder("/service/c", true, &daemontools.Status{Want: 'u', PID: 2, Paused: true}, false),
		},
	}
	h, notes := Build(l, Options{Host: "h"})
	want := []string{
		"daemontools service /service/a is up with a down file: a plan would remove the down file",
		"daemontools service /service/b is down without a down file: a plan would write one",
		"daemontools service /service/c is paused: a plan would continue it",
		"supervisord group w at /var/run/supervisor.sock does not run its first 1 processes: replicas 1 means those, so a plan would move them",
		"systemd template p@.service runs instances 2,5: replicas 2 means instances 1..2, so a plan would move them",
	}
	if !reflect.DeepEqual(notes, want) {
		t.Errorf("notes:\n%s", strings.Join(notes, "\n"))
	}
	if len(h.Spec.Services) != 5 || *h.Spec.Services[0].Replicas != 2 {
		t.Errorf("services %+v", h.Spec.Services)
	}
}

func TestCleanNameAndNumbers(t *testing.T) {
	for in, want := range map[string]string{"ok-name_1.x": "ok-name_1.x", "my prog": "my-prog", "-x": "x-x", "": "x", "ünï": "x-n-"} {
		if got := cleanName(in); got != want {
			t.Errorf("cleanName(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]int{"usm-poller_07": 7, "w": 0, "a1b22": 22, "x_0010": 10} {
		if got := supervisor.ProcessNumber(in); got != want {
			t.Errorf("ProcessNumber(%q) = %d, want %d", in, got, want)
		}
	}
	for in, ok := range map[string]bool{"fp-01": true, "a.b.c": true, "-x": false, "a_b": false, "": false} {
		if v1.ValidHostName(in) != ok {
			t.Errorf("ValidHostName(%q) != %v", in, ok)
		}
	}
	if h, _ := Build(Live{}, Options{Host: "empty"}); len(h.Spec.Services) != 0 || len(h.Spec.Units) != 0 {
		t.Errorf("%+v", h)
	} else if b, err := Marshal(h, nil); err != nil || !strings.HasSuffix(string(b), "spec: {}\n") {
		t.Errorf("empty: %s %v", b, err)
	}
}

// Fakes for Read.

type fakeDocker struct{ list []swarmdrv.Service }

func (d fakeDocker) ListServices(context.Context, swarm.ServiceListOptions) ([]swarmdrv.Service, error) {
	return d.list, nil
}

type fakeSystemd struct{ patterns [][]string }

func (s *fakeSystemd) ListUnitFilesByPatternsContext(_ context.Context, _, p []string) ([]sd.UnitFile, error) {
	s.patterns = append(s.patterns, p)
	return []sd.UnitFile{{Path: "/etc/systemd/system/x.timer", Type: "enabled"}}, nil
}

func (s *fakeSystemd) ListUnitsByPatternsContext(_ context.Context, _, p []string) ([]sd.UnitStatus, error) {
	s.patterns = append(s.patterns, p)
	return []sd.UnitStatus{{Name: "x.timer", LoadState: "loaded", ActiveState: "active"},
		{Name: "gone.timer", LoadState: "not-found", ActiveState: "inactive"}}, nil
}

type fakeSupervisor struct{ v any }

func (f fakeSupervisor) Call(context.Context, string, ...any) (any, error) { return f.v, nil }

func TestRead(t *testing.T) {
	root := t.TempDir()
	// A supervised folder: a FIFO held open for reading, as supervise does.
	up := filepath.Join(root, "slapd")
	if err := os.MkdirAll(filepath.Join(up, "supervise"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(up, "supervise", "ok"), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Open(filepath.Join(up, "supervise", "ok"), syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := os.WriteFile(filepath.Join(up, "supervise", "status"), status('u', 42).Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{".hidden", "plain"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "plain", "down"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	sys := &fakeSystemd{}
	r := &Reader{
		Docker:  fakeDocker{list: []swarmdrv.Service{{Spec: swarmdrv.Spec{Name: "b"}}}},
		Systemd: func(context.Context) (SystemdAPI, error) { return sys, nil },
		Supervisor: &supervisor.Clients{Dial: func(s string) supervisor.Caller {
			if s == "/broken" {
				return fakeSupervisor{v: "not a list"}
			}
			return fakeSupervisor{v: []any{map[string]any{"group": "g", "name": "g_01", "statename": "RUNNING"}}}
		}},
		SupervisorSockets: []string{"/ok", "/broken"},
		SvscanDirs:        []string{root, filepath.Join(root, "none")},
		Select:            []string{"abb-*", "abb-*.service"},
	}
	l, probs := r.Read(context.Background())
	if len(l.Swarm) != 1 || l.Swarm[0].Replicas != nil {
		t.Errorf("swarm %+v", l.Swarm)
	}
	wantUnits := []UnitState{{Name: "x.timer", FileState: "enabled"}, {Name: "x.timer", ActiveState: "active"}}
	if !reflect.DeepEqual(l.Units, wantUnits) {
		t.Errorf("units %+v", l.Units)
	}
	if want := []string{"*.timer", "*@*.service", "abb-*.service"}; !reflect.DeepEqual(sys.patterns, [][]string{want, want}) {
		t.Errorf("patterns %v", sys.patterns)
	}
	if len(l.Supervisor) != 1 || l.Supervisor[0].Socket != "/ok" || l.Supervisor[0].Processes[0].Name != "g_01" {
		t.Errorf("supervisor %+v", l.Supervisor)
	}
	if len(l.Daemontools) != 2 {
		t.Fatalf("daemontools %+v", l.Daemontools)
	}
	if d := l.Daemontools[1]; d.Dir != up || !d.Supervised || !d.HasStatus || d.Status.PID != 42 || d.DownFile {
		t.Errorf("slapd %+v", d)
	}
	if d := l.Daemontools[0]; d.Supervised || d.HasStatus || !d.DownFile {
		t.Errorf("plain %+v", d)
	}
	if len(probs) != 2 || probs[0].Absent || !strings.Contains(probs[0].String(), "/broken") || !probs[1].Absent {
		t.Errorf("problems %+v", probs)
	}
	// Docker's answer on a node outside a swarm: 503, which the client
	// turns into an Unavailable error.
	if !absent(fmt.Errorf("listing services: %w", cerrdefs.ErrUnavailable.WithMessage("This node is not a swarm manager."))) {
		t.Error("a node outside a swarm is not absent")
	}
	if absent(errors.New("This node is not a swarm manager.")) {
		t.Error("absent was decided by an error's text")
	}
}
