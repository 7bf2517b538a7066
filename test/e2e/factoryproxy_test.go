//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"reconciler.dev/reconciler/internal/filetree"
)

// The Factory Proxy fixture (seed 000): the three Swarm services a stack
// would deploy, the housekeeping timer in the systemd container, and
// examples/factory-proxy committed to a repo on the testbed's git server.

const (
	fpHost  = "fp-01"
	fpTimer = "abb-factory-proxy-housekeeping.timer"
	fpFile  = "hosts/fp-01.yaml"
)

var fpServices = []string{"factory-broker", "factory-proxy", "reference-BL"}

type fpFixture struct {
	t      *testing.T
	docker *client.Client
	repo   *GitRepo
	files  map[string]string // the example's files, as last committed
}

// readExample returns every file of an example folder, by relative path.
func readExample(t testing.TB, name string) map[string]string {
	t.Helper()
	files, err := filetree.Read(filepath.Join(repoRoot(), "examples", name))
	if err != nil {
		t.Fatalf("reading examples/%s: %v", name, err)
	}
	return files
}

// deployFactoryProxy stands in for the stack deploy: it (re)creates the
// three services with one replica each, labelled so `hack/testbed down`
// removes them, and commits the example to a fresh repo.
func deployFactoryProxy(t *testing.T) *fpFixture {
	t.Helper()
	lockTestbed(t, "factory-proxy")
	f := &fpFixture{t: t, docker: dockerClient(t), files: readExample(t, "factory-proxy")}
	ctx := ctxT(t, 2*time.Minute)
	removeServices(t, f.docker, fpServices)
	for _, name := range fpServices {
		createService(t, f.docker, name, 1)
	}
	t.Cleanup(func() {
		removeServices(t, f.docker, fpServices)
		inSystemd(t, "systemctl", "disable", "--now", fpTimer)
	})
	eventually(t, 60*time.Second, "factory proxy services running", func() error {
		return f.replicasRunning(ctx, map[string]int{"factory-broker": 1, "factory-proxy": 1, "reference-BL": 1})
	})
	f.repo = newGitRepo(t, "factory-proxy")
	f.repo.Commit("factory proxy, as in examples/", f.files)
	return f
}

// labelledServiceSpec is a replicated service of image with the testbed's
// label (so the testbed's clean-up finds it).
func labelledServiceSpec(t testing.TB, name, image string, replicas uint64) swarm.ServiceSpec {
	return swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: name, Labels: map[string]string{testbed(t).Label: "1"}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image}},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
	}
}

// createService creates a replicated service of the worker image, with a
// short stop grace period, the way a stack file would declare it.
func createService(t testing.TB, cli *client.Client, name string, replicas uint64) string {
	t.Helper()
	grace := 2 * time.Second
	spec := labelledServiceSpec(t, name, "local/worker:1", replicas)
	spec.TaskTemplate.ContainerSpec.StopGracePeriod = &grace
	resp, err := cli.ServiceCreate(ctxT(t, 30*time.Second), spec, swarm.ServiceCreateOptions{})
	if err != nil {
		t.Fatalf("creating service %s: %v", name, err)
	}
	return resp.ID
}

// ownService is createService for a service of the test's own: it is
// removed (and waited for) when the test ends.
func ownService(t testing.TB, cli *client.Client, name string, replicas uint64) string {
	t.Helper()
	id := createService(t, cli, name, replicas)
	t.Cleanup(func() { removeServices(t, cli, []string{name}) })
	return id
}

// newOwnService is ownService for a test that needs no other Swarm
// services: a client of the testbed's dockerd, and a service named after
// prefix (uniqueName) with replicas running.
func newOwnService(t testing.TB, prefix string, replicas uint64) (*client.Client, string) {
	t.Helper()
	cli := dockerClient(t)
	name := uniqueName(prefix)
	ownService(t, cli, name, replicas)
	return cli, name
}

// removeServices removes the named services if they exist and waits until
// their containers are gone, so the next test starts clean.
func removeServices(t testing.TB, cli *client.Client, names []string) {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	for _, n := range names {
		_ = cli.ServiceRemove(ctx, n)
	}
	eventually(t, 60*time.Second, "services removed", func() error {
		for _, n := range names {
			list, err := cli.ContainerList(ctx, containerListOpts(n))
			if err != nil {
				return err
			}
			if len(list) > 0 {
				return fmt.Errorf("%s still has %d containers", n, len(list))
			}
		}
		return nil
	})
}

// replicasRunning checks the running task counts of services, from Docker.
func (f *fpFixture) replicasRunning(ctx context.Context, want map[string]int) error {
	list, err := f.docker.ServiceList(ctx, swarm.ServiceListOptions{Status: true})
	if err != nil {
		return err
	}
	got := map[string]int{}
	for _, s := range list {
		if _, ok := want[s.Spec.Name]; ok && s.ServiceStatus != nil {
			got[s.Spec.Name] = int(s.ServiceStatus.RunningTasks)
		}
	}
	for n, w := range want {
		if got[n] != w {
			return fmt.Errorf("%s runs %d tasks, want %d (all: %v)", n, got[n], w, got)
		}
	}
	return nil
}

// specReplicas reads a service's declared replica count from Docker.
func (f *fpFixture) specReplicas(name string) int {
	f.t.Helper()
	s, _, err := f.docker.ServiceInspectWithRaw(ctxT(f.t, 10*time.Second), name, swarm.ServiceInspectOptions{})
	if err != nil {
		f.t.Fatalf("inspect %s: %v", name, err)
	}
	return int(*s.Spec.Mode.Replicated.Replicas)
}

// edit rewrites the host file with fn and commits it.
func (f *fpFixture) edit(msg string, fn func(string) string) string {
	f.t.Helper()
	f.files[fpFile] = fn(f.files[fpFile])
	return f.repo.Commit(msg, map[string]string{fpFile: f.files[fpFile]})
}

func (f *fpFixture) setMaintenance(on bool) string {
	return f.edit(fmt.Sprintf("maintenance: %v", on), func(s string) string { return withMaintenance(s, on) })
}

// hostMaintenanceRE finds the spec's maintenance line (not the comments).
var hostMaintenanceRE = regexp.MustCompile(`(?m)^  maintenance: (true|false)$`)

func withMaintenance(doc string, on bool) string {
	if !hostMaintenanceRE.MatchString(doc) {
		panic("no spec.maintenance line in the fixture")
	}
	return hostMaintenanceRE.ReplaceAllString(doc, fmt.Sprintf("  maintenance: %v", on))
}

// source returns the flags naming the fixture's repo on the http server.
func (f *fpFixture) source() []string {
	return []string{"--source", f.repo.HTTPURL, "--host", fpHost, "--cache-dir", f.t.TempDir()}
}

// timerState returns the timer's enablement and active state, from systemctl
// inside the container.
func timerState(t testing.TB) (enabled, active string) {
	t.Helper()
	out, _ := inSystemdTry(t, "systemctl", "is-enabled", fpTimer)
	act, _ := inSystemdTry(t, "systemctl", "is-active", fpTimer)
	return out, act
}

// unitTimestamp reads a systemd timestamp property (microseconds since the
// epoch) of a unit.
func unitTimestamp(t testing.TB, unit, prop string) time.Time {
	t.Helper()
	v := inSystemd(t, "systemctl", "show", "-p", prop, "--timestamp=unix", unit)
	v = strings.TrimPrefix(strings.TrimPrefix(v, prop+"="), "@")
	var sec int64
	if _, err := fmt.Sscan(v, &sec); err != nil || sec == 0 {
		t.Fatalf("%s %s = %q", unit, prop, v)
	}
	return time.Unix(sec, 0)
}

// first returns the time of the first event of a service's containers (or
// of the service itself) with the given action, and whether there was one.
func (el *eventLog) first(service, action string) (time.Time, bool) {
	el.mu.Lock()
	defer el.mu.Unlock()
	for _, m := range el.events {
		if m.Action != events.Action(action) {
			continue
		}
		name := m.Actor.Attributes["com.docker.swarm.service.name"]
		if m.Type == events.ServiceEventType {
			name = m.Actor.Attributes["name"]
		}
		if name == service {
			return time.Unix(0, m.TimeNano), true
		}
	}
	return time.Time{}, false
}

// last is like first, for the last such event.
func (el *eventLog) last(service, action string) (time.Time, bool) {
	el.mu.Lock()
	defer el.mu.Unlock()
	var at time.Time
	found := false
	for _, m := range el.events {
		name := m.Actor.Attributes["com.docker.swarm.service.name"]
		if m.Type == events.ServiceEventType {
			name = m.Actor.Attributes["name"]
		}
		if m.Action == events.Action(action) && name == service {
			at, found = time.Unix(0, m.TimeNano), true
		}
	}
	return at, found
}

func (el *eventLog) summary() string {
	el.mu.Lock()
	defer el.mu.Unlock()
	var lines []string
	for _, m := range el.events {
		a := m.Actor.Attributes
		name := a["com.docker.swarm.service.name"]
		switch m.Type {
		case events.ServiceEventType:
			name = a["name"]
		case events.NodeEventType:
			name = a["name"] + " " + a["state.old"] + "->" + a["state.new"]
			if a["leader.new"] == "true" {
				name += " leader"
			}
		}
		if on := a[eventHost]; on != "" {
			name += " (on " + on + ")"
		}
		lines = append(lines, fmt.Sprintf("%s %s %s %s", time.Unix(0, m.TimeNano).Format("15:04:05.000"), m.Type, m.Action, name))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// containerListOpts lists the containers of one Swarm service, running or not.
func containerListOpts(service string) container.ListOptions {
	return container.ListOptions{
		All:     true,
		Filters: filters.NewArgs(filters.Arg("label", "com.docker.swarm.service.name="+service)),
	}
}
