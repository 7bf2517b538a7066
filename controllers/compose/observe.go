package compose

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

// The labels Compose v2 puts on every container of a project. The driver
// finds a service's containers by them and writes them on the containers it
// creates.
const (
	LabelProject = "com.docker.compose.project"
	LabelService = "com.docker.compose.service"
	LabelNumber  = "com.docker.compose.container-number"
	LabelOneoff  = "com.docker.compose.oneoff"
	// labelReplace names the container a recreated one replaced; it says
	// nothing true of a new replica, so it is not copied.
	labelReplace = "com.docker.compose.replace"
	// labelConfigHash is the hash of the service's configuration the
	// compose client compares on up; it is on replicas, not on one-offs.
	labelConfigHash = "com.docker.compose.config-hash"
)

// API is the part of the Docker client this driver uses. The real client
// implements it; unit tests of the apply sequence use a recording fake.
type API interface {
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
	ContainerInspect(ctx context.Context, containerID string) (container.InspectResponse, error)
	ContainerCreate(ctx context.Context, config *container.Config, hostConfig *container.HostConfig, networkingConfig *network.NetworkingConfig, platform *ocispec.Platform, containerName string) (container.CreateResponse, error)
	NetworkConnect(ctx context.Context, networkID, containerID string, config *network.EndpointSettings) error
	ContainerStart(ctx context.Context, containerID string, options container.StartOptions) error
	ContainerStop(ctx context.Context, containerID string, options container.StopOptions) error
	ContainerRestart(ctx context.Context, containerID string, options container.StopOptions) error
	ContainerRemove(ctx context.Context, containerID string, options container.RemoveOptions) error
	ContainerRename(ctx context.Context, containerID, newContainerName string) error
	ContainerWait(ctx context.Context, containerID string, condition container.WaitCondition) (<-chan container.WaitResponse, <-chan error)
}

// Driver scales the services of Compose projects through the Docker API.
type Driver struct {
	API API
	// StartTimes has Observe tell since when each running container has
	// run (Live.Since, ReplicasSince), inspecting a container once when it
	// is first seen running (since.go). The agent sets it for its status;
	// a one-shot plan or apply shows no uptime and leaves it off.
	StartTimes bool
	starts     startTimes
	// CallTimeout bounds every Docker API call (default 30s); a stop may
	// take the service's stopTimeout on top of it.
	CallTimeout time.Duration
	// Concurrency bounds the containers started at once in a scale-up
	// (default 4); stops are always one at a time.
	Concurrency int
	// Count, when set, is told of every API call ("list", "inspect",
	// "create", "connect", "start", "stop", "restart", "remove",
	// "rename", "wait"), for metrics.
	Count controllers.Counter
	// MinReady is how long a recreated container must have run before it
	// counts as ready and the one it replaces is removed (default 1s).
	MinReady time.Duration
	// PollInterval is how often a recreated container is inspected while
	// waiting for it to be ready (default 200ms).
	PollInterval time.Duration
	// RunTimeout bounds how long Run waits for a one-off container to
	// exit (default 2 minutes); one still running then is stopped and
	// removed.
	RunTimeout time.Duration
}

func (d *Driver) concurrency() int { return cmp.Or(d.Concurrency, 4) }

func (d *Driver) timeout() time.Duration { return cmp.Or(d.CallTimeout, 30*time.Second) }

// replica is one container of a service, as the list call returned it.
type replica struct {
	Number int
	ID     string
	Name   string // without Docker's leading slash
	State  string // created, running, paused, restarting, removing, exited, dead
	// ExitCode is the code an exited container ended with, from the list's
	// status text ("Exited (1) 5 seconds ago"); -1 when unknown.
	ExitCode int
	// Image is the image the container was created from, as named then
	// (Docker shows the image id once that name points elsewhere).
	Image string
	// RestartOn is the restartOn value it was made with (LabelRestartOn),
	// "" for none.
	RestartOn string
}

// failing is true for a container that is failing: Docker is restarting it
// after it died (its restart policy), or it exited with an error. 137 and
// 143 (KILL, TERM) are what a stop leaves behind (a scale-down, docker
// stop), so they are not taken for a failure.
func (r replica) failing() bool {
	if r.State == container.StateRestarting {
		return true
	}
	return r.State == container.StateExited && r.ExitCode > 0 && r.ExitCode != 137 && r.ExitCode != 143
}

// exitCode reads the code of "Exited (N) ..." from a container's status
// text; -1 when the text says none.
func exitCode(status string) int {
	rest, ok := strings.CutPrefix(status, "Exited (")
	if !ok {
		return -1
	}
	num, _, ok := strings.Cut(rest, ")")
	n, err := strconv.Atoi(num)
	if !ok || err != nil {
		return -1
	}
	return n
}

// failingReplicas returns the containers numbered 1..N (those the target
// wants running) that are failing, by number.
func failingReplicas(t controllers.Target, sl serviceLive) []replica {
	var out []replica
	for _, r := range sl.Replicas {
		if r.Number <= int(t.Replicas) && r.failing() {
			out = append(out, r)
		}
	}
	return out
}

// started is true for a container that holds its replica's place: running,
// or on its way back (restarting) or frozen (paused). A created, exited or
// dead container runs nothing; one being removed is going away.
func (r replica) started() bool {
	switch r.State {
	case container.StateRunning, container.StateRestarting, container.StatePaused:
		return true
	}
	return false
}

func (r replica) running() bool { return r.State == container.StateRunning }

// serviceLive is what a service's Live.Raw holds: every container of the
// service, one-off containers (`docker compose run`) left out, by ascending
// number (then name, should two share a number).
type serviceLive struct {
	Project, Service string
	Replicas         []replica
}

// lowest is the service's lowest-numbered container: the template new
// replicas are made from, and the one kept (stopped) at 0.
func (s serviceLive) lowest() (replica, bool) {
	if len(s.Replicas) == 0 {
		return replica{}, false
	}
	return s.Replicas[0], true
}

// Observe lists the containers of every declared service in one call: all
// containers (running or not) that carry a Compose project label, paired
// with the targets in code. Docker ANDs label filters, so one filter per
// project would not fit in one call.
func (d *Driver) Observe(ctx context.Context, targets []controllers.Target) (map[string]controllers.Live, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	d.Count.Add("list")
	list, err := d.API.ContainerList(ctx, container.ListOptions{
		All:     true,
		Filters: filters.NewArgs(filters.Arg("label", LabelProject)),
	})
	if err != nil {
		return nil, fmt.Errorf("listing compose containers: %w", err)
	}
	named, selectors := controllers.SplitSelectors(targets)
	live := liveFromList(named, list)
	for _, sel := range selectors {
		live[sel.Subject()] = selectProject(sel, list)
	}
	if d.StartTimes {
		d.fillSince(ctx, live, list)
	}
	return live, nil
}

// selectProject lists every service of the selector's project (select:
// {project}) from the one container list, as members started when their
// first container was created. It is pure.
func selectProject(sel controllers.Target, list []container.Summary) controllers.Live {
	project := sel.Service.Select.Project
	created := map[string]int64{}
	for _, c := range list {
		svc := c.Labels[LabelService]
		if c.Labels[LabelProject] != project || svc == "" || strings.EqualFold(c.Labels[LabelOneoff], "true") {
			continue
		}
		if at, seen := created[svc]; !seen || c.Created < at {
			created[svc] = c.Created
		}
	}
	l := controllers.Live{Exists: true, Members: []controllers.Member{}}
	for svc, at := range created {
		mt := controllers.Target{Kind: controllers.KindService, Name: svc, Driver: v1.DriverCompose,
			Service: &v1.Service{Name: svc, Driver: v1.DriverCompose, Project: project, Replicas: sel.Service.Replicas}}
		if sel.Service.Replicas != nil {
			mt.Replicas = *sel.Service.Replicas
		}
		ml := liveFromList([]controllers.Target{mt}, list)[mt.Subject()]
		l.Members = append(l.Members, controllers.Member{Name: svc, Started: time.Unix(at, 0), Live: ml})
	}
	l.State = fmt.Sprintf("%d matched", len(l.Members))
	return l
}

// liveFromList pairs declared services with listed containers by project and
// service label. It is pure.
func liveFromList(targets []controllers.Target, list []container.Summary) map[string]controllers.Live {
	type key struct{ project, service string }
	byService := map[key][]replica{}
	for _, c := range list {
		if strings.EqualFold(c.Labels[LabelOneoff], "true") {
			continue
		}
		n, err := strconv.Atoi(c.Labels[LabelNumber])
		if err != nil || n < 1 {
			continue // not a replica compose would count
		}
		k := key{c.Labels[LabelProject], c.Labels[LabelService]}
		name := c.ID
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		byService[k] = append(byService[k], replica{Number: n, ID: c.ID, Name: name, State: string(c.State), ExitCode: exitCode(c.Status),
			Image: c.Image, RestartOn: c.Labels[LabelRestartOn]})
	}
	out := make(map[string]controllers.Live, len(targets))
	for _, t := range targets {
		sl := serviceLive{Project: t.Service.Project, Service: t.Name}
		sl.Replicas = byService[key{sl.Project, sl.Service}]
		sort.Slice(sl.Replicas, func(i, j int) bool {
			a, b := sl.Replicas[i], sl.Replicas[j]
			if a.Number != b.Number {
				return a.Number < b.Number
			}
			return a.Name < b.Name
		})
		l := liveOf(sl)
		if failing := failingReplicas(t, sl); len(failing) > 0 {
			var why []string
			for _, r := range failing {
				w := r.Name + " " + r.State
				if r.State == container.StateExited {
					w = fmt.Sprintf("%s exited %d", r.Name, r.ExitCode)
				}
				why = append(why, w)
			}
			l.Failing = strings.Join(why, ", ")
			l.Details["failing"] = l.Failing
		}
		out[t.Subject()] = l
	}
	return out
}

func liveOf(sl serviceLive) controllers.Live {
	l := controllers.Live{Exists: len(sl.Replicas) > 0, Raw: sl}
	if !l.Exists {
		l.State = "missing: no containers (docker compose up the project once)"
		return l
	}
	var running, stopped []int
	var images []string
	for _, r := range sl.Replicas {
		if r.running() {
			images = append(images, r.Image)
		}
		if r.started() {
			l.Replicas++
		}
		if r.running() {
			l.Running++
			running = append(running, r.Number)
		} else {
			stopped = append(stopped, r.Number)
		}
	}
	l.Image = distinct(images)
	l.State = fmt.Sprintf("%d/%d running", l.Running, l.Replicas)
	l.Details = map[string]string{"project": sl.Project, "running": numbers(running)}
	if len(stopped) > 0 {
		l.Details["not running"] = numbers(stopped)
	}
	return l
}

// numbers writes container numbers as ranges: "1-3,5"; "none" for none.
func numbers(ns []int) string {
	if len(ns) == 0 {
		return "none"
	}
	ns = append([]int(nil), ns...)
	sort.Ints(ns)
	ns = slices.Compact(ns)
	var b strings.Builder
	for i := 0; i < len(ns); {
		j := i
		for j+1 < len(ns) && ns[j+1] <= ns[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if j > i {
			fmt.Fprintf(&b, "%d-%d", ns[i], ns[j])
		} else {
			fmt.Fprintf(&b, "%d", ns[i])
		}
		i = j + 1
	}
	return b.String()
}

// Name, Plan and Health make a Driver a controllers.Driver: Plan and Health
// are this package's pure functions.
func (d *Driver) Name() v1.Driver { return v1.DriverCompose }
func (d *Driver) Plan(ts []controllers.Target, l map[string]controllers.Live) []controllers.Action {
	return Plan(ts, l)
}
func (d *Driver) Health(t controllers.Target, l controllers.Live) controllers.Health {
	return Health(t, l)
}
