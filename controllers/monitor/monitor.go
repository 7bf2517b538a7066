package monitor

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/supervisor"
)

// Resources are the figures of one service at one moment: every process of
// every replica that runs, children included. Counts and sizes are sums;
// a replica that runs nothing adds nothing.
type Resources struct {
	At time.Time `json:"at"`
	// Source says where the figures come from: "proc" (every figure from
	// /proc), "systemd+proc" or "docker+proc" (the manager's cgroup figures
	// plus /proc), or the manager alone when /proc could not be read.
	Source string `json:"source"`
	// Replicas is how many running replicas were sampled (containers,
	// units, processes of a group, service folders).
	Replicas int `json:"replicas"`
	// PIDs are the main process of each replica, as its manager names them
	// (systemd in its own PID namespace says so in Source).
	PIDs []int `json:"pids,omitempty"`
	// RSSBytes is resident memory (VmRSS), VMSBytes virtual memory.
	RSSBytes uint64 `json:"rssBytes"`
	VMSBytes uint64 `json:"vmsBytes"`
	// CgroupMemoryBytes is what the manager charges the service's cgroup
	// (systemd MemoryCurrent; Docker usage less inactive page cache), when
	// it says.
	CgroupMemoryBytes uint64 `json:"cgroupMemoryBytes,omitempty"`
	// CPUSeconds is CPU time used, user plus system: the cgroup's when the
	// manager counts it (processes that exited included), else the live
	// processes' from /proc.
	CPUSeconds float64 `json:"cpuSeconds"`
	// Processes counts the processes (replicas' main processes and their
	// children), Threads their threads.
	Processes int `json:"processes"`
	Threads   int `json:"threads"`
	// OpenFiles counts open descriptors of every kind (files, sockets,
	// pipes), as /proc/PID/fd lists them: the figure `ulimit -n` bounds.
	OpenFiles int `json:"openFiles"`
	// Connections counts the ESTABLISHED TCP sockets (IPv4 and IPv6) the
	// processes hold, each once.
	Connections int `json:"connections"`
	// Notes say what could not be read; the figures are then partial.
	Notes []string `json:"notes,omitempty"`
}

// MemoryBytes is the service's memory figure: resident memory when /proc
// was read, else what its cgroup is charged.
func (r *Resources) MemoryBytes() uint64 {
	if r.RSSBytes > 0 || r.CgroupMemoryBytes == 0 {
		return r.RSSBytes
	}
	return r.CgroupMemoryBytes
}

func (r *Resources) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// addProc adds what /proc says.
func (r *Resources) addProc(f procFigures) {
	r.RSSBytes += f.RSS
	r.VMSBytes += f.VMS
	r.CPUSeconds += f.CPUSeconds
	r.Processes += f.Processes
	r.Threads += f.Threads
	r.OpenFiles += f.OpenFiles
	r.Connections += f.Connections
}

// Cost is what one collection cost the agent.
type Cost struct {
	At time.Time `json:"at"`
	// TookSeconds is its wall time.
	TookSeconds float64 `json:"tookSeconds"`
	// CPUSeconds is the agent's CPU time (user + system, every thread)
	// while it ran: an upper bound, since a pass running meanwhile counts
	// too.
	CPUSeconds float64 `json:"cpuSeconds"`
	// Calls are the API calls made, by verb ("docker-list",
	// "docker-stats", "docker-inspect", "systemd-list-units",
	// "systemd-properties", "supervisor-getAllProcessInfo").
	Calls map[string]int `json:"calls"`
	// ProcReads counts the files, folders and links read under /proc.
	ProcReads int `json:"procReads"`
	// Services is how many services were sampled.
	Services int `json:"services"`
	// Errors are the reads that failed (the figures of those services are
	// partial or missing).
	Errors []string `json:"errors,omitempty"`
}

// Collector collects resource figures. Its zero value samples daemontools
// services only; set the clients of the other managers. It is safe for use
// by one collection at a time.
type Collector struct {
	// Docker reads swarm tasks and compose containers (nil: not sampled).
	Docker DockerAPI
	// Systemd returns the system bus connection (nil: not sampled).
	Systemd func(ctx context.Context) (SystemdAPI, error)
	// SystemdProc returns the proc mount systemd's PIDs are read under.
	// Default: BusProcRoot of Proc and DBUS_SYSTEM_BUS_ADDRESS, found once.
	SystemdProc func() (string, error)
	// Supervisor holds the client of each supervisord socket (nil: the
	// collector's own set); cmd hands it the driver's.
	Supervisor *supervisor.Clients
	// Proc is the host's proc mount (default /proc).
	Proc string
	// CallTimeout bounds every API call (default 10s).
	CallTimeout time.Duration
	// Count, when set, is told of every API call by verb, for metrics.
	Count func(verb string)

	mu            sync.Mutex
	containerPIDs map[string]containerPID
	statsSkip     int // collections left that leave Docker stats out
	sdProc        string
	ownClients    *supervisor.Clients
}

// supervisors is the set of supervisord clients the collector uses.
func (c *Collector) supervisors() *supervisor.Clients {
	if c.Supervisor != nil {
		return c.Supervisor
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ownClients == nil {
		c.ownClients = &supervisor.Clients{}
	}
	return c.ownClients
}

func (c *Collector) proc() string {
	if c.Proc != "" {
		return c.Proc
	}
	return "/proc"
}

func (c *Collector) timeout() time.Duration {
	if c.CallTimeout > 0 {
		return c.CallTimeout
	}
	return 10 * time.Second
}

// collection is the bookkeeping of one Collect.
type collection struct {
	c     *Collector
	mu    sync.Mutex
	calls map[string]int
	reads int
	errs  []string
	now   time.Time
}

func (cl *collection) call(verb string) {
	cl.mu.Lock()
	cl.calls[verb]++
	cl.mu.Unlock()
	if cl.c.Count != nil {
		cl.c.Count(verb)
	}
}

func (cl *collection) fail(format string, args ...any) {
	cl.mu.Lock()
	cl.errs = append(cl.errs, fmt.Sprintf(format, args...))
	cl.mu.Unlock()
}

// procFS returns a reader of a proc mount whose reads count for this
// collection when done is called.
func (cl *collection) procFS(root string) (*procFS, func()) {
	fs := &procFS{root: root}
	return fs, func() {
		cl.mu.Lock()
		cl.reads += fs.reads
		cl.mu.Unlock()
	}
}

// Collect samples every service among targets (units are not sampled) and
// returns the figures by subject, with what the collection cost. A service
// whose manager cannot be read is left out and the cost says why; a
// service that runs nothing has figures of zero.
func (c *Collector) Collect(ctx context.Context, targets []controllers.Target) (map[string]*Resources, Cost) {
	start := time.Now()
	cpu0 := selfCPU()
	cl := &collection{c: c, calls: map[string]int{}, now: start}
	byDriver := map[v1.Driver][]controllers.Target{}
	for _, t := range targets {
		if t.Kind == controllers.KindService && t.Service != nil {
			byDriver[t.Driver] = append(byDriver[t.Driver], t)
		}
	}
	out := map[string]*Resources{}
	var mu sync.Mutex
	put := func(m map[string]*Resources) {
		mu.Lock()
		defer mu.Unlock()
		for k, v := range m {
			out[k] = v
		}
	}
	var wg sync.WaitGroup
	run := func(fn func() map[string]*Resources) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			put(fn())
		}()
	}
	if ts := append(byDriver[v1.DriverSwarm], byDriver[v1.DriverCompose]...); len(ts) > 0 {
		if c.Docker == nil {
			cl.fail("swarm and compose services: no Docker client")
		} else {
			run(func() map[string]*Resources { return cl.docker(ctx, ts) })
		}
	}
	if ts := byDriver[v1.DriverSystemd]; len(ts) > 0 {
		if c.Systemd == nil {
			cl.fail("systemd services: no system bus")
		} else {
			run(func() map[string]*Resources { return cl.systemd(ctx, ts) })
		}
	}
	if ts := byDriver[v1.DriverSupervisor]; len(ts) > 0 {
		run(func() map[string]*Resources { return cl.supervisor(ctx, ts) })
	}
	if ts := byDriver[v1.DriverDaemontools]; len(ts) > 0 {
		run(func() map[string]*Resources { return cl.daemontools(ts) })
	}
	wg.Wait()
	sort.Strings(cl.errs)
	cost := Cost{
		At: start, TookSeconds: time.Since(start).Seconds(), CPUSeconds: (selfCPU() - cpu0).Seconds(),
		Calls: cl.calls, ProcReads: cl.reads, Services: len(out), Errors: cl.errs,
	}
	return out, cost
}

// fromProcs samples the process trees of roots (one per replica) under a
// proc mount into r, and says whether any process was read.
func (cl *collection) fromProcs(r *Resources, root string, roots []int) bool {
	if len(roots) == 0 {
		return false
	}
	fs, done := cl.procFS(root)
	f, _, err := fs.sample(roots)
	done()
	r.addProc(f)
	if err != nil {
		r.note("/proc: %s", errText(err))
	}
	return f.Processes > 0
}

// selfCPU is the CPU time this process used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sourceOf names where figures came from.
func sourceOf(manager string, procRead bool) string {
	switch {
	case manager == "":
		return "proc"
	case procRead:
		return manager + "+proc"
	}
	return manager
}

func errText(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
