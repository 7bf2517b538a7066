package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"golang.org/x/sync/errgroup"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/compose"
)

// DockerAPI is the part of the Docker client the monitor uses.
type DockerAPI interface {
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
	ContainerStatsOneShot(ctx context.Context, containerID string) (container.StatsResponseReader, error)
	ContainerInspect(ctx context.Context, containerID string) (container.InspectResponse, error)
}

// LabelSwarmService is the label Swarm puts on every task container.
const LabelSwarmService = "com.docker.swarm.service.name"

// DockerFigures are what one container's stats say.
type DockerFigures struct {
	CPUSeconds  float64 // cpu_stats.cpu_usage.total_usage
	MemoryBytes uint64  // usage less inactive page cache, as `docker stats` shows it
	Tasks       uint64  // pids_stats.current: processes and threads of the cgroup
}

// ParseDockerStats reads one stats answer (stream=false). ok is false when
// the engine had no figures (it then answers zeros and a zero "read" time,
// as engines whose cgroups it cannot read do).
func ParseDockerStats(b []byte) (f DockerFigures, ok bool, err error) {
	var st container.StatsResponse
	if err := json.Unmarshal(b, &st); err != nil {
		return f, false, fmt.Errorf("stats: %w", err)
	}
	if st.Read.IsZero() || st.Read.Year() < 2000 {
		return f, false, nil
	}
	f.CPUSeconds = float64(st.CPUStats.CPUUsage.TotalUsage) / 1e9
	f.Tasks = st.PidsStats.Current
	m := st.MemoryStats
	f.MemoryBytes = m.Usage
	// The docker CLI's figure: cgroup v1 total_inactive_file, v2
	// inactive_file.
	if v, v1 := m.Stats["total_inactive_file"]; v1 && v < m.Usage {
		f.MemoryBytes = m.Usage - v
	} else if v := m.Stats["inactive_file"]; v < m.Usage {
		f.MemoryBytes = m.Usage - v
	}
	return f, true, nil
}

// containerPID is a container's main process, remembered with its start
// time: the same pid with another start time is another process.
type containerPID struct {
	pid   int
	start uint64
}

// dockerContainer is one running container of a declared service.
type dockerContainer struct {
	id, name string
}

// matchContainers pairs running containers with the declared swarm and
// compose services, by label. It is pure.
func matchContainers(targets []controllers.Target, list []container.Summary) map[string][]dockerContainer {
	swarmNames := map[string]string{}   // service name -> subject
	composeNames := map[string]string{} // project/service -> subject
	for _, t := range targets {
		switch t.Driver {
		case v1.DriverSwarm:
			swarmNames[t.Name] = t.Subject()
		case v1.DriverCompose:
			composeNames[t.Service.Project+"/"+t.Name] = t.Subject()
		}
	}
	out := map[string][]dockerContainer{}
	for _, c := range list {
		if c.State != container.StateRunning {
			continue
		}
		name := c.ID
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		if s, ok := swarmNames[c.Labels[LabelSwarmService]]; ok && c.Labels[LabelSwarmService] != "" {
			out[s] = append(out[s], dockerContainer{c.ID, name})
			continue
		}
		if strings.EqualFold(c.Labels[compose.LabelOneoff], "true") {
			continue
		}
		if p := c.Labels[compose.LabelProject]; p != "" {
			if s, ok := composeNames[p+"/"+c.Labels[compose.LabelService]]; ok {
				out[s] = append(out[s], dockerContainer{c.ID, name})
			}
		}
	}
	for _, cs := range out {
		sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	}
	return out
}

// docker samples swarm and compose services: one label-filtered list per
// driver, one one-shot stats per running container, one inspect per
// container not seen before.
func (cl *collection) docker(ctx context.Context, targets []controllers.Target) map[string]*Resources {
	c := cl.c
	var list []container.Summary
	drivers := map[v1.Driver]string{v1.DriverSwarm: LabelSwarmService, v1.DriverCompose: compose.LabelProject}
	for _, d := range []v1.Driver{v1.DriverSwarm, v1.DriverCompose} {
		if !hasDriver(targets, d) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, c.timeout())
		cl.call("docker-list")
		l, err := c.Docker.ContainerList(cctx, container.ListOptions{
			Filters: filters.NewArgs(filters.Arg("label", drivers[d]), filters.Arg("status", "running")),
		})
		cancel()
		if err != nil {
			cl.fail("docker: listing %s containers: %v", d, err)
			return nil
		}
		list = append(list, l...)
	}
	running := map[string]bool{}
	for _, ct := range list {
		running[ct.ID] = true
	}
	c.forgetContainers(running)
	byService := matchContainers(targets, list)

	// Stats, concurrently: an engine may take a while per container.
	type stats struct {
		f   DockerFigures
		ok  bool
		err error
	}
	var all []dockerContainer
	for _, t := range targets {
		all = append(all, byService[t.Subject()]...)
	}
	results := make(map[string]stats, len(all))
	skip := c.skipStats()
	if !skip && len(all) > 0 {
		var mu sync.Mutex
		var g errgroup.Group
		g.SetLimit(statsConcurrency)
		for _, ct := range all {
			g.Go(func() error {
				f, ok, err := cl.dockerStats(ctx, ct.id)
				mu.Lock()
				results[ct.id] = stats{f, ok, err}
				mu.Unlock()
				return nil // kept per container, not returned
			})
		}
		g.Wait()
		anyOK := false
		for _, r := range results {
			anyOK = anyOK || r.ok || r.err != nil
		}
		if !anyOK {
			c.statsEmpty()
		}
	}

	out := map[string]*Resources{}
	for _, t := range targets {
		r := &Resources{At: cl.now}
		out[t.Subject()] = r
		var (
			roots       []int
			statsOK     int
			dockerCPU   float64
			dockerTasks int
		)
		for _, ct := range byService[t.Subject()] {
			r.Replicas++
			st := results[ct.id]
			switch {
			case st.err != nil:
				r.note("stats of %s: %v", ct.name, st.err)
			case st.ok:
				statsOK++
				r.CgroupMemoryBytes += st.f.MemoryBytes
				dockerCPU += st.f.CPUSeconds
				dockerTasks += int(st.f.Tasks)
			}
			pid, err := cl.containerPID(ctx, ct.id)
			if err != nil {
				r.note("main process of %s: %v", ct.name, err)
				continue
			}
			roots = append(roots, pid)
		}
		switch {
		case r.Replicas > 0 && skip:
			r.note("docker stats had no figures lately (the engine cannot read the cgroups); asked again every %d collections; CPU from /proc", statsRetryEvery)
		case r.Replicas > 0 && statsOK == 0:
			r.note("docker stats had no figures (the engine could not read the cgroups); CPU from /proc")
		}
		r.PIDs = roots
		procRead := cl.fromProcs(r, c.proc(), roots)
		if statsOK > 0 {
			// The cgroup's CPU counts processes that exited too.
			r.CPUSeconds = dockerCPU
		}
		if !procRead {
			r.Threads = dockerTasks
		}
		manager := ""
		if statsOK > 0 || (r.Replicas > 0 && !procRead) {
			manager = "docker"
		}
		r.Source = sourceOf(manager, procRead)
	}
	return out
}

// statsConcurrency bounds the stats calls in flight; statsRetryEvery is how
// often an engine whose stats came back empty is asked again.
const (
	statsConcurrency = 8
	statsRetryEvery  = 10
)

// skipStats says whether this collection leaves stats out: the last time
// they were asked, every answer was empty (an engine that cannot read its
// containers' cgroups answers zeros, slowly), and this is not a collection
// that asks again.
func (c *Collector) skipStats() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.statsSkip > 0 {
		c.statsSkip--
		return true
	}
	return false
}

// statsEmpty notes that every stats answer of a collection was empty.
func (c *Collector) statsEmpty() {
	c.mu.Lock()
	c.statsSkip = statsRetryEvery - 1
	c.mu.Unlock()
}

func hasDriver(ts []controllers.Target, d v1.Driver) bool {
	for _, t := range ts {
		if t.Driver == d {
			return true
		}
	}
	return false
}

// dockerStats makes one one-shot stats call.
func (cl *collection) dockerStats(ctx context.Context, id string) (DockerFigures, bool, error) {
	cctx, cancel := context.WithTimeout(ctx, cl.c.timeout())
	defer cancel()
	cl.call("docker-stats")
	resp, err := cl.c.Docker.ContainerStatsOneShot(cctx, id)
	if err != nil {
		return DockerFigures{}, false, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return DockerFigures{}, false, err
	}
	return ParseDockerStats(b)
}

// containerPID returns a container's main process: the one remembered if
// it still runs (same pid, same start time), else ContainerInspect's.
func (cl *collection) containerPID(ctx context.Context, id string) (int, error) {
	c := cl.c
	fs, done := cl.procFS(c.proc())
	defer done()
	c.mu.Lock()
	known, ok := c.containerPIDs[id]
	c.mu.Unlock()
	if ok {
		if st, err := fs.stat(known.pid); err == nil && st.StartTime == known.start {
			return known.pid, nil
		}
	}
	cctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	cl.call("docker-inspect")
	info, err := c.Docker.ContainerInspect(cctx, id)
	if err != nil {
		return 0, err
	}
	if info.ContainerJSONBase == nil || info.State == nil || info.State.Pid <= 0 {
		return 0, fmt.Errorf("not running")
	}
	pid := info.State.Pid
	st, err := fs.stat(pid)
	if err != nil {
		return 0, fmt.Errorf("pid %d: %w", pid, err)
	}
	c.mu.Lock()
	if c.containerPIDs == nil {
		c.containerPIDs = map[string]containerPID{}
	}
	c.containerPIDs[id] = containerPID{pid: pid, start: st.StartTime}
	c.mu.Unlock()
	return pid, nil
}

// forgetContainers drops remembered containers that no longer run.
func (c *Collector) forgetContainers(running map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.containerPIDs {
		if !running[id] {
			delete(c.containerPIDs, id)
		}
	}
}
