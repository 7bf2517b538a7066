package supervisor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/restarton"
)

// Caller is the part of the XML-RPC client the driver uses; *Client
// implements it.
type Caller interface {
	Call(ctx context.Context, method string, params ...any) (any, error)
}

// Driver manages supervisord program groups: how many of a group's
// processes run.
type Driver struct {
	// Clients holds the client of each socket; nil: the driver makes its
	// own. cmd hands the driver, export and the monitor one set.
	Clients *Clients
	// CallTimeout bounds every call that does not wait for a process to stop
	// (default 30s).
	CallTimeout time.Duration
	// StopSlack is added to a service's stopTimeout to bound each stop,
	// which waits until the process has exited (default 15s).
	StopSlack time.Duration
	// PollInterval is how often a process already stopping is looked at
	// while waiting for it to exit (default 200ms).
	PollInterval time.Duration
	// Count, when set, is told of every XML-RPC call by method name
	// ("getAllProcessInfo", "startProcess", "stopProcess",
	// "getProcessInfo"), for metrics.
	Count controllers.Counter
	// Records keeps the restartOn value last applied to each service (see
	// package restarton: supervisord cannot hold it). nil keeps none: a
	// restartOn change then fails, saying so.
	Records *restarton.Store

	once sync.Once
}

// New returns a driver that talks to supervisord over the unix sockets the
// services name, with the clients of cs (nil: its own).
func New(cs *Clients) *Driver { return &Driver{Clients: cs} }

// Clients makes the XML-RPC client of each supervisord socket once and
// keeps it, so that the driver, export and the resource monitor of one
// process share one client (and its idle connection) per socket. Its zero
// value is ready to use; it is safe for concurrent use.
type Clients struct {
	// Dial returns the client for a socket (default: NewClient).
	Dial func(socket string) Caller

	mu sync.Mutex
	m  map[string]Caller
}

// For returns the client of socket, made on first use.
func (cs *Clients) For(socket string) Caller {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if c, ok := cs.m[socket]; ok {
		return c
	}
	if cs.m == nil {
		cs.m = map[string]Caller{}
	}
	var c Caller
	if cs.Dial != nil {
		c = cs.Dial(socket)
	} else {
		c = NewClient(socket)
	}
	cs.m[socket] = c
	return c
}

// Close drops the idle connections of every client.
func (cs *Clients) Close() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, c := range cs.m {
		if cl, ok := c.(interface{ Close() }); ok {
			cl.Close()
		}
	}
}

// ReadProcesses asks the supervisord behind c for every process it runs, in
// one getAllProcessInfo call, bounded by ctx.
func ReadProcesses(ctx context.Context, c Caller) ([]Process, error) {
	v, err := c.Call(ctx, "supervisor.getAllProcessInfo")
	if err != nil {
		return nil, err
	}
	return ParseProcesses(v)
}

func (d *Driver) callTimeout() time.Duration { return cmp.Or(d.CallTimeout, 30*time.Second) }

func (d *Driver) stopSlack() time.Duration { return cmp.Or(d.StopSlack, 15*time.Second) }

func (d *Driver) pollInterval() time.Duration { return cmp.Or(d.PollInterval, 200*time.Millisecond) }

// client returns the client for socket, made once.
func (d *Driver) client(socket string) Caller {
	d.once.Do(func() {
		if d.Clients == nil {
			d.Clients = &Clients{}
		}
	})
	return d.Clients.For(socket)
}

// Close drops the idle connections of every client.
func (d *Driver) Close() {
	if d.Clients != nil {
		d.Clients.Close()
	}
}

// call makes one call, counted, bounded by timeout.
func (d *Driver) call(ctx context.Context, socket string, timeout time.Duration, method string, params ...any) (any, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d.Count.Add(method)
	return d.client(socket).Call(cctx, "supervisor."+method, params...)
}

// The process states supervisord reports (supervisor/states.py).
const (
	stateStopped  = "STOPPED"
	stateStarting = "STARTING"
	stateRunning  = "RUNNING"
	stateBackoff  = "BACKOFF"
	stateStopping = "STOPPING"
	stateExited   = "EXITED"
	stateFatal    = "FATAL"
	stateUnknown  = "UNKNOWN"
)

// Started is true for the states supervisord counts as running (its
// RUNNING_STATES): startProcess answers ALREADY_STARTED to them. A group's
// live replica count is how many of its processes are Started.
func Started(state string) bool {
	switch state {
	case stateRunning, stateStarting, stateBackoff:
		return true
	}
	return false
}

// down is true for the states of a process that has no process: a
// scaled-down replica rests in one of them.
func down(state string) bool {
	switch state {
	case stateStopped, stateExited, stateFatal:
		return true
	}
	return false
}

// Process is one process as getAllProcessInfo describes it: the one
// decoding of supervisord's answer, which the driver, export and the
// resource monitor share (ReadProcesses).
type Process struct {
	Name        string // usm-poller_01
	Group       string // usm-poller
	Num         int    // the number in its name, 0 when it has none
	State       string // RUNNING, STOPPED, ...
	PID         int
	Start, Stop int64 // unix seconds of the last start and stop, 0 if none
	ExitStatus  int
	Description string
}

// namespec is how supervisord's API names a process: "group:name".
func (p Process) namespec() string { return p.Group + ":" + p.Name }

// groupLive is what a service's Live.Raw holds: every process of the group,
// the first replica first.
type groupLive struct {
	Socket, Program string
	Procs           []Process
	// RestartOn is the restartOn record of the service, read when it
	// declares a value.
	RestartOn restarton.Seen
}

// Observe reads every target with one getAllProcessInfo per socket,
// whatever the number of targets. Sockets are read one after another.
func (d *Driver) Observe(ctx context.Context, targets []controllers.Target) (map[string]controllers.Live, error) {
	var sockets []string
	seen := map[string]bool{}
	for _, t := range targets {
		if s := t.Service.Socket; !seen[s] {
			seen[s] = true
			sockets = append(sockets, s)
		}
	}
	procs := map[string][]Process{}
	var errs []error
	for _, s := range sockets {
		cctx, cancel := context.WithTimeout(ctx, d.callTimeout())
		d.Count.Add("getAllProcessInfo")
		ps, err := ReadProcesses(cctx, d.client(s))
		cancel()
		procs[s] = ps
		if err != nil {
			errs = append(errs, fmt.Errorf("supervisord at %s: getAllProcessInfo: %w", s, err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	named, selectors := controllers.SplitSelectors(targets)
	live := liveFrom(named, procs)
	if err := d.loadRecords(named, live); err != nil {
		return nil, err
	}
	for _, sel := range selectors {
		l, members := selectGroup(sel, procs[sel.Service.Socket])
		ml := liveFrom(members, procs)
		if err := d.loadRecords(members, ml); err != nil {
			return nil, err
		}
		for i := range l.Members {
			l.Members[i].Live = ml[members[i].Subject()]
		}
		live[sel.Subject()] = l
	}
	return live, nil
}

// selectGroup lists the programs of the selector's group (select: {group})
// from the one getAllProcessInfo answer of its socket, and the target each
// is observed as: a service named after the program, with program
// GROUP:PROGRAM and the selector's socket and settings. A program's start
// is the earliest last start among its processes (zero when none has ever
// started): supervisord starts by priority and the API tells none, so the
// order the processes were last started in stands for it. It is pure.
func selectGroup(sel controllers.Target, procs []Process) (controllers.Live, []controllers.Target) {
	group := sel.Service.Select.Group
	started := map[string]int64{}
	var order []string
	for _, p := range procs {
		if p.Group != group {
			continue
		}
		prog := ProgramOf(p.Name)
		at, seen := started[prog]
		if !seen {
			order = append(order, prog)
		}
		if !seen || (p.Start > 0 && (at == 0 || p.Start < at)) {
			started[prog] = p.Start
		}
	}
	sort.Strings(order)
	l := controllers.Live{Exists: true, Members: []controllers.Member{}}
	targets := make([]controllers.Target, 0, len(order))
	for _, prog := range order {
		svc := *sel.Service
		svc.Name, svc.Program, svc.Select = prog, group+":"+prog, nil
		mt := controllers.Target{Kind: controllers.KindService, Name: prog, Driver: v1.DriverSupervisor, Service: &svc, Mode: sel.Mode}
		if svc.Replicas != nil {
			mt.Replicas = *svc.Replicas
		}
		targets = append(targets, mt)
		m := controllers.Member{Name: prog}
		if at := started[prog]; at > 0 {
			m.Started = time.Unix(at, 0).UTC()
		}
		l.Members = append(l.Members, m)
	}
	l.State = fmt.Sprintf("%d matched", len(l.Members))
	return l, targets
}

// ProgramOf is the program of a group's process, as far as its name tells:
// supervisord's API knows groups and processes, not the programs a
// [group:] section joins, so a program is told by its process names. A
// name ending in a number after a separator ("poller_01", "poller-2", as
// process_name=%(program_name)s_%(process_num)02d makes them) is of the
// program before the separator ("poller"); any other name is a program of
// its own (numprocs=1 takes the program's name). So two programs whose
// own names differ only in such a number ("sat-7", "sat-8") read as one.
func ProgramOf(name string) string {
	end := len(name)
	for end > 0 && name[end-1] >= '0' && name[end-1] <= '9' {
		end--
	}
	if end == len(name) || end < 2 || !strings.ContainsRune("_-.", rune(name[end-1])) {
		return name
	}
	return name[:end-1]
}

// Selects says whether process p is one of those a service's program
// field names: every process of a group ("usm-poller"), or those of one
// program of a group ("factory:broker", see ProgramOf).
func Selects(program string, p Process) bool {
	if g, prog, ok := strings.Cut(program, ":"); ok {
		return p.Group == g && ProgramOf(p.Name) == prog
	}
	return p.Group == program
}

// ParseProcesses reads getAllProcessInfo's answer, as DecodeResponse
// decoded it. name, group and statename are required of every process.
func ParseProcesses(v any) ([]Process, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("answer is a %T, not an array", v)
	}
	out := make([]Process, 0, len(list))
	for i, item := range list {
		p, err := parseProcess(item)
		if err != nil {
			return nil, fmt.Errorf("process %d: %w", i+1, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// parseProcess reads one process's info struct. name, group and statename
// are required; the rest default to zero.
func parseProcess(v any) (Process, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return Process{}, fmt.Errorf("a %T, not a struct", v)
	}
	var p Process
	var ok1, ok2, ok3 bool
	p.Name, ok1 = m["name"].(string)
	p.Group, ok2 = m["group"].(string)
	p.State, ok3 = m["statename"].(string)
	if !ok1 || !ok2 || !ok3 || p.Name == "" || p.Group == "" {
		return Process{}, errors.New("name, group or statename missing")
	}
	num := func(k string) int64 { n, _ := m[k].(int64); return n }
	p.PID = int(num("pid"))
	p.Start, p.Stop = num("start"), num("stop")
	p.ExitStatus = int(num("exitstatus"))
	p.Description, _ = m["description"].(string)
	p.Num = ProcessNumber(p.Name)
	return p, nil
}

// ProcessNumber is the last run of digits in a process name: process_name
// %(program_name)s_%(process_num)02d makes "usm-poller_07" number 7. A name
// without digits (numprocs 1) is 0.
func ProcessNumber(name string) int {
	end := len(name)
	for end > 0 && (name[end-1] < '0' || name[end-1] > '9') {
		end--
	}
	start := end
	for start > 0 && name[start-1] >= '0' && name[start-1] <= '9' {
		start--
	}
	if start == end {
		return 0
	}
	digits := strings.TrimLeft(name[start:end], "0")
	if len(digits) > 9 {
		return 1e9 // absurd but ordered after every sensible number
	}
	n, _ := strconv.Atoi("0" + digits)
	return n
}

// liveFrom pairs targets with the processes their sockets listed. It is
// pure. A program with no process in the list does not exist.
func liveFrom(targets []controllers.Target, procs map[string][]Process) map[string]controllers.Live {
	out := make(map[string]controllers.Live, len(targets))
	for _, t := range targets {
		gl := groupLive{Socket: t.Service.Socket, Program: t.Service.Program}
		for _, p := range procs[gl.Socket] {
			if Selects(gl.Program, p) {
				gl.Procs = append(gl.Procs, p)
			}
		}
		// The first replica first: by process number, then by name.
		sort.SliceStable(gl.Procs, func(i, j int) bool {
			a, b := gl.Procs[i], gl.Procs[j]
			if a.Num != b.Num {
				return a.Num < b.Num
			}
			return a.Name < b.Name
		})
		if len(gl.Procs) == 0 {
			out[t.Subject()] = controllers.Live{
				State: fmt.Sprintf("program %s missing from supervisord at %s", gl.Program, gl.Socket),
				Raw:   gl,
			}
			continue
		}
		l := controllers.Live{Exists: true, Raw: gl}
		counts := map[string]int{}
		var pids, order []string
		for _, p := range gl.Procs {
			if Started(p.State) {
				l.Replicas++
			}
			if p.State == stateRunning {
				l.Running++
			}
			if counts[p.State] == 0 {
				order = append(order, p.State)
			}
			counts[p.State]++
			if p.PID > 0 {
				pids = append(pids, p.Name+"="+strconv.Itoa(p.PID))
			}
		}
		l.State = fmt.Sprintf("%d/%d running, numprocs %d", l.Running, l.Replicas, len(gl.Procs))
		l.ReplicasSince = runningSince(gl.Procs)
		l.Since = controllers.EarliestSince(l.ReplicasSince)
		summary := make([]string, 0, len(order))
		for _, st := range order {
			summary = append(summary, fmt.Sprintf("%d %s", counts[st], st))
		}
		l.Details = map[string]string{
			"numprocs":  strconv.Itoa(len(gl.Procs)),
			"states":    strings.Join(summary, ", "),
			"processes": processStates(gl.Procs),
		}
		if len(pids) > 0 {
			l.Details["pids"] = strings.Join(pids, " ")
		}
		if failing := failingProcs(t, gl); len(failing) > 0 {
			var why []string
			for _, p := range failing {
				why = append(why, p.Name+" "+p.State)
			}
			l.Failing = strings.Join(why, ", ")
			l.Details["failing"] = l.Failing
		}
		out[t.Subject()] = l
	}
	return out
}

// failingProcs returns the processes among the first N the target wants
// running that are failing: FATAL (supervisord gave up starting it) or
// BACKOFF (it exited too quickly and supervisord is retrying).
func failingProcs(t controllers.Target, gl groupLive) []Process {
	var out []Process
	for i, p := range gl.Procs {
		if i < int(t.Replicas) && (p.State == stateFatal || p.State == stateBackoff) {
			out = append(out, p)
		}
	}
	return out
}

// processStates lists every process that is not STOPPED, with its state,
// or says that all are: "usm-poller_01 RUNNING, usm-poller_02 STARTING".
func processStates(ps []Process) string {
	var parts []string
	for _, p := range ps {
		if p.State != stateStopped {
			parts = append(parts, p.Name+" "+p.State)
		}
	}
	if len(parts) == 0 {
		return "all STOPPED"
	}
	return strings.Join(parts, ", ")
}

// Name, Plan and Health make a Driver a controllers.Driver: Plan and Health
// are this package's pure functions.
func (d *Driver) Name() v1.Driver { return v1.DriverSupervisor }
func (d *Driver) Plan(ts []controllers.Target, l map[string]controllers.Live) []controllers.Action {
	return Plan(ts, l)
}
func (d *Driver) Health(t controllers.Target, l controllers.Live) controllers.Health {
	return Health(t, l)
}

// runningSince is since when each RUNNING process has run: the start of
// getAllProcessInfo's answer, already read to observe (nil when none runs).
func runningSince(procs []Process) map[string]time.Time {
	var out map[string]time.Time
	for _, p := range procs {
		if p.State != stateRunning || p.Start <= 0 {
			continue
		}
		if out == nil {
			out = map[string]time.Time{}
		}
		out[p.namespec()] = time.Unix(p.Start, 0).UTC()
	}
	return out
}
