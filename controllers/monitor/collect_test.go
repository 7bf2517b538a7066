package monitor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/docker/docker/api/types/container"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/daemontools"
)

// fakeProc is a proc mount made of files, folders and symlinks.
type fakeProc struct {
	t    *testing.T
	root string
}

func newFakeProc(t *testing.T) *fakeProc { return &fakeProc{t: t, root: t.TempDir()} }

// fakeProcess describes one process of a fake proc mount.
type fakeProcess struct {
	pid, ppid      int
	threads        int
	rssPages       uint64
	vsize          uint64
	utime, stime   uint64
	start          uint64
	children       map[int][]int     // task id -> children it forked
	fds            map[string]string // fd -> link
	netns          string
	tcp, tcp6      string // net/tcp tables, "" for none
	state          byte
	missingTaskDir bool
	cgroup         string // /proc/PID/cgroup
	statm          string // /proc/PID/statm, "" for none
}

func (f *fakeProc) write(name, content string) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeProc) link(name, target string) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Symlink(target, name); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeProc) add(p fakeProcess) {
	dir := filepath.Join(f.root, strconv.Itoa(p.pid))
	state := p.state
	if state == 0 {
		state = 'S'
	}
	if p.threads == 0 {
		p.threads = 1
	}
	// Fields 3..24 of /proc/PID/stat, then the rest (52 in all, as Linux
	// writes them since 3.5; procfs reads every one).
	f.write(filepath.Join(dir, "stat"), fmt.Sprintf("%d (w %d) %c %d 1 1 0 -1 0 0 0 0 0 %d %d 0 0 20 0 %d 0 %d %d %d 18446744073709551615%s\n",
		p.pid, p.pid, state, p.ppid, p.utime, p.stime, p.threads, p.start, p.vsize, p.rssPages, strings.Repeat(" 0", 27)))
	if !p.missingTaskDir {
		tasks := map[int][]int{p.pid: nil}
		for tid := 1; tid < p.threads; tid++ {
			tasks[p.pid*100+tid] = nil
		}
		for tid, ch := range p.children {
			tasks[tid] = ch
		}
		for tid, ch := range tasks {
			var s []string
			for _, c := range ch {
				s = append(s, strconv.Itoa(c))
			}
			f.write(filepath.Join(dir, "task", strconv.Itoa(tid), "children"), strings.Join(s, " ")+" ")
		}
	}
	for fd, target := range p.fds {
		f.link(filepath.Join(dir, "fd", fd), target)
	}
	if p.fds == nil {
		if err := os.MkdirAll(filepath.Join(dir, "fd"), 0o755); err != nil {
			f.t.Fatal(err)
		}
	}
	if p.netns == "" {
		p.netns = "net:[4026531833]"
	}
	f.link(filepath.Join(dir, "ns", "net"), p.netns)
	if p.tcp != "" {
		f.write(filepath.Join(dir, "net", "tcp"), p.tcp)
	}
	if p.cgroup != "" {
		f.write(filepath.Join(dir, "cgroup"), p.cgroup)
	}
	if p.statm != "" {
		f.write(filepath.Join(dir, "statm"), p.statm)
	}
	if p.tcp6 != "" {
		f.write(filepath.Join(dir, "net", "tcp6"), p.tcp6)
	}
}

const tcpHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

func tcpLine(inode uint64, state string) string {
	return fmt.Sprintf("   0: 0100007F:1628 0100007F:D2F0 %s 00000000:00000000 00:00000000 00000000     0        0 %d 1 0000000000000000 20 4 30 10 -1\n", state, inode)
}

// aTree is a service: a main process (2 threads) whose second thread
// forked a worker, which forked a helper; a zombie child; a socket shared
// by the main process and the worker; a listening socket.
func aTree(f *fakeProc, main int) {
	page := uint64(os.Getpagesize())
	_ = page
	tcp := tcpHeader + tcpLine(1001, "01") + tcpLine(1002, "01") + tcpLine(1003, "0A") + tcpLine(1004, "01")
	f.add(fakeProcess{pid: main, ppid: 1, threads: 2, rssPages: 1000, vsize: 100 << 20, utime: 150, stime: 50, start: 7,
		children: map[int][]int{main*100 + 1: {main + 1, main + 3}},
		fds:      map[string]string{"0": "/dev/null", "1": "pipe:[9]", "3": "socket:[1001]", "4": "socket:[1003]"},
		tcp:      tcp, statm: "25600 1100 300 10 0 900 0\n"}) // statm's resident wins over stat's
	f.add(fakeProcess{pid: main + 1, ppid: main, threads: 3, rssPages: 500, vsize: 50 << 20, utime: 100, stime: 0,
		children: map[int][]int{main + 1: {main + 2}},
		fds:      map[string]string{"0": "/dev/null", "3": "socket:[1001]", "5": "socket:[1002]"},
		tcp:      tcp})
	f.add(fakeProcess{pid: main + 2, ppid: main + 1, rssPages: 100, vsize: 10 << 20, utime: 0, stime: 0,
		fds: map[string]string{"0": "/dev/null"}, tcp: tcp})
	f.add(fakeProcess{pid: main + 3, ppid: main, state: 'Z', rssPages: 999, fds: map[string]string{"0": "/dev/null"}})
}

// aTreeWant is what aTree adds up to.
func aTreeWant(pid int) Resources {
	page := uint64(os.Getpagesize())
	return Resources{Replicas: 1, PIDs: []int{pid}, RSSBytes: 1700 * page, VMSBytes: 160 << 20, CPUSeconds: 3,
		Processes: 3, Threads: 6, OpenFiles: 8, Connections: 2}
}

// withReplica is want plus one more replica: a single process pid with
// these figures (RSS in pages).
func withReplica(want Resources, pid int, rssPages, vms uint64, cpu float64, threads int) Resources {
	want.Replicas++
	want.PIDs = append(want.PIDs, pid)
	want.RSSBytes += rssPages * uint64(os.Getpagesize())
	want.VMSBytes += vms
	want.CPUSeconds += cpu
	want.Processes++
	want.Threads += threads
	return want
}

func daemontoolsFolder(t *testing.T, pid int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "svc")
	if err := os.MkdirAll(filepath.Join(dir, "supervise"), 0o755); err != nil {
		t.Fatal(err)
	}
	rec := daemontools.Status{PID: pid, Want: 'u', Changed: time.Now().Add(-time.Minute)}.Bytes()
	if err := os.WriteFile(filepath.Join(dir, "supervise", "status"), rec, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func withoutTime(r *Resources) Resources {
	out := *r
	out.At = time.Time{}
	return out
}

func TestCollectDaemontoolsProcessTree(t *testing.T) {
	f := newFakeProc(t)
	aTree(f, 300)
	up := daemontoolsFolder(t, 300)
	down := daemontoolsFolder(t, 0)
	c := &Collector{Proc: f.root}
	targets := []controllers.Target{
		svc("squid", v1.DriverDaemontools, func(s *v1.Service) { s.Dir = up }),
		svc("mldonkey", v1.DriverDaemontools, func(s *v1.Service) { s.Dir = down }),
		svc("gone", v1.DriverDaemontools, func(s *v1.Service) { s.Dir = filepath.Join(t.TempDir(), "nothing") }),
		{Kind: controllers.KindUnit, Name: "x.timer", Driver: v1.DriverSystemd},
	}
	got, cost := c.Collect(context.Background(), targets)
	want := aTreeWant(300)
	want.Source = "proc"
	if r := got["daemontools/squid"]; r == nil || !reflect.DeepEqual(withoutTime(r), want) {
		t.Errorf("squid:\n got %+v\nwant %+v", r, want)
	}
	if r := got["daemontools/mldonkey"]; r == nil || !reflect.DeepEqual(withoutTime(r), Resources{Source: "proc"}) {
		t.Errorf("a service that is down: %+v", r)
	}
	if _, ok := got["daemontools/gone"]; ok || len(got) != 2 {
		t.Errorf("a missing folder or a unit was sampled: %v", got)
	}
	if len(cost.Calls) != 0 || cost.ProcReads == 0 || cost.Services != 2 || len(cost.Errors) != 0 {
		t.Errorf("cost %+v", cost)
	}
}

func TestCollectProcOfAProcessThatExited(t *testing.T) {
	f := newFakeProc(t)
	dir := daemontoolsFolder(t, 4321) // no such process
	c := &Collector{Proc: f.root}
	got, _ := c.Collect(context.Background(), []controllers.Target{svc("x", v1.DriverDaemontools, func(s *v1.Service) { s.Dir = dir })})
	r := got["daemontools/x"]
	if r == nil || r.Processes != 0 || len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "pid 4321") {
		t.Errorf("%+v", r)
	}
}

// fakeDocker answers from fixed containers.
type fakeDocker struct {
	mu       sync.Mutex
	list     []container.Summary
	stats    map[string]string // id -> stats file
	pids     map[string]int
	calls    []string
	listOpts []container.ListOptions
}

func (d *fakeDocker) ContainerList(_ context.Context, o container.ListOptions) ([]container.Summary, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, "list")
	d.listOpts = append(d.listOpts, o)
	var out []container.Summary
	for _, c := range d.list {
		for _, kv := range o.Filters.Get("label") {
			if _, ok := c.Labels[kv]; ok {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

func (d *fakeDocker) ContainerStatsOneShot(_ context.Context, id string) (container.StatsResponseReader, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, "stats "+id)
	b, err := os.ReadFile(filepath.Join("testdata", d.stats[id]))
	if err != nil {
		return container.StatsResponseReader{}, err
	}
	return container.StatsResponseReader{Body: io.NopCloser(bytes.NewReader(b))}, nil
}

func (d *fakeDocker) ContainerInspect(_ context.Context, id string) (container.InspectResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, "inspect "+id)
	pid, ok := d.pids[id]
	if !ok {
		return container.InspectResponse{}, errors.New("no such container")
	}
	return container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{ID: id, State: &container.State{Pid: pid}}}, nil
}

func TestCollectDocker(t *testing.T) {
	f := newFakeProc(t)
	aTree(f, 500)
	f.add(fakeProcess{pid: 600, ppid: 1, threads: 4, rssPages: 10, vsize: 1 << 20, utime: 10, stime: 10, start: 9})
	d := &fakeDocker{
		list: []container.Summary{
			{ID: "p1", Names: []string{"/proxy.1"}, State: "running", Labels: map[string]string{LabelSwarmService: "proxy"}},
			{ID: "p2", Names: []string{"/proxy.2"}, State: "running", Labels: map[string]string{LabelSwarmService: "proxy"}},
			{ID: "w1", Names: []string{"/shop-web-1"}, State: "running", Labels: map[string]string{
				"com.docker.compose.project": "shop", "com.docker.compose.service": "web"}},
		},
		stats: map[string]string{"p1": "docker-stats-empty.json", "p2": "docker-stats-empty.json", "w1": "docker-stats-v2.json"},
		pids:  map[string]int{"p1": 500, "p2": 600, "w1": 600},
	}
	c := &Collector{Docker: d, Proc: f.root}
	targets := []controllers.Target{
		svc("proxy", v1.DriverSwarm, nil),
		svc("web", v1.DriverCompose, func(s *v1.Service) { s.Project = "shop" }),
		svc("idle", v1.DriverSwarm, nil),
	}
	got, cost := c.Collect(context.Background(), targets)

	// Docker had no figures for the swarm tasks: everything from /proc.
	want := withReplica(aTreeWant(500), 600, 10, 1<<20, 0.2, 4)
	want.Source = "proc"
	r := got["swarm/proxy"]
	if r == nil {
		t.Fatalf("no figures for swarm/proxy: %v", got)
	}
	if len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "docker stats had no figures") {
		t.Errorf("notes %q", r.Notes)
	}
	r.Notes = nil
	if !reflect.DeepEqual(withoutTime(r), want) {
		t.Errorf("swarm/proxy:\n got %+v\nwant %+v", withoutTime(r), want)
	}
	// Docker's figures for the compose container: CPU and cgroup memory
	// from the stats, the rest from /proc.
	w := got["compose/web"]
	wantW := Resources{Source: "docker+proc", Replicas: 1, PIDs: []int{600}, RSSBytes: 10 * uint64(os.Getpagesize()), VMSBytes: 1 << 20,
		CgroupMemoryBytes: 10485760 - 2097152, CPUSeconds: 2.5, Processes: 1, Threads: 4}
	if w == nil || !reflect.DeepEqual(withoutTime(w), wantW) {
		t.Errorf("compose/web:\n got %+v\nwant %+v", w, wantW)
	}
	if i := got["swarm/idle"]; i == nil || i.Replicas != 0 || i.Processes != 0 {
		t.Errorf("a service with no container: %+v", i)
	}
	wantCalls := map[string]int{"docker-list": 2, "docker-stats": 3, "docker-inspect": 3}
	if !reflect.DeepEqual(cost.Calls, wantCalls) {
		t.Errorf("calls %v, want %v", cost.Calls, wantCalls)
	}
	for _, o := range d.listOpts {
		if o.All || len(o.Filters.Get("label")) != 1 || !reflect.DeepEqual(o.Filters.Get("status"), []string{"running"}) {
			t.Errorf("list options %+v", o)
		}
	}

	// The second collection inspects no container: their main processes
	// still run (same pid, same start time).
	d.calls = nil
	_, cost = c.Collect(context.Background(), targets)
	if cost.Calls["docker-inspect"] != 0 || cost.Calls["docker-stats"] != 3 || cost.Calls["docker-list"] != 2 {
		t.Errorf("second collection: %v", cost.Calls)
	}
	// A container whose main process was replaced (another start time) is
	// inspected again.
	if err := os.RemoveAll(filepath.Join(f.root, "600")); err != nil {
		t.Fatal(err)
	}
	f.add(fakeProcess{pid: 600, ppid: 1, threads: 1, start: 99})
	_, cost = c.Collect(context.Background(), targets)
	if cost.Calls["docker-inspect"] != 2 {
		t.Errorf("after a restart: %v", cost.Calls)
	}
}

// An engine whose stats are all empty is asked again only every tenth
// collection.
func TestCollectDockerStatsEmptyAskedLessOften(t *testing.T) {
	f := newFakeProc(t)
	f.add(fakeProcess{pid: 600, ppid: 1, threads: 4, rssPages: 10, start: 9})
	d := &fakeDocker{
		list:  []container.Summary{{ID: "p1", State: "running", Labels: map[string]string{LabelSwarmService: "proxy"}}},
		stats: map[string]string{"p1": "docker-stats-empty.json"},
		pids:  map[string]int{"p1": 600},
	}
	c := &Collector{Docker: d, Proc: f.root}
	targets := []controllers.Target{svc("proxy", v1.DriverSwarm, nil)}
	var stats []int
	for i := 0; i < 12; i++ {
		res, cost := c.Collect(context.Background(), targets)
		stats = append(stats, cost.Calls["docker-stats"])
		if r := res["swarm/proxy"]; r == nil || r.Processes != 1 || r.Source != "proc" || len(r.Notes) != 1 {
			t.Fatalf("collection %d: %+v", i, r)
		}
	}
	if want := []int{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}; !reflect.DeepEqual(stats, want) {
		t.Errorf("stats calls per collection %v, want %v", stats, want)
	}
}

// fakeSystemd answers from fixed units.
type fakeSystemd struct {
	units []sd.UnitStatus
	props map[string]map[string]any
	calls []string
}

func (s *fakeSystemd) ListUnitsByPatternsContext(_ context.Context, states, patterns []string) ([]sd.UnitStatus, error) {
	s.calls = append(s.calls, "list "+strings.Join(states, ",")+" "+strings.Join(patterns, ","))
	return s.units, nil
}

func (s *fakeSystemd) GetUnitTypePropertiesContext(_ context.Context, unit, typ string) (map[string]any, error) {
	s.calls = append(s.calls, "props "+unit+" "+typ)
	p, ok := s.props[unit]
	if !ok {
		return nil, errors.New("no such unit")
	}
	return p, nil
}

func TestCollectSystemd(t *testing.T) {
	f := newFakeProc(t) // systemd's PID namespace
	aTree(f, 40)
	f.write(filepath.Join(f.root, "40", "cgroup"), "0::/system.slice/system-usm\\x2dpoller.slice/usm-poller@1.service\n")
	f.add(fakeProcess{pid: 70, ppid: 1, threads: 7, rssPages: 20, vsize: 2 << 20, utime: 1, stime: 1,
		cgroup: "12:pids:/x\n1:name=systemd:/system.slice/system-usm\\x2dpoller.slice/usm-poller@2.service\n0::/\n"})
	// A main pid that is some other process where we look: not read.
	f.add(fakeProcess{pid: 90, ppid: 1, threads: 50, cgroup: "0::/user.slice/session-1.scope\n"})
	s := &fakeSystemd{
		units: []sd.UnitStatus{
			{Name: "usm-poller@1.service", LoadState: "loaded", ActiveState: "active"},
			{Name: "usm-poller@2.service", LoadState: "loaded", ActiveState: "active"},
			{Name: "broker.service", LoadState: "loaded", ActiveState: "active"},
			{Name: "other.service", LoadState: "loaded", ActiveState: "active"},
		},
		props: map[string]map[string]any{
			"usm-poller@1.service": {"MainPID": uint32(40), "MemoryCurrent": uint64(1 << 20), "CPUUsageNSec": ^uint64(0), "TasksCurrent": uint64(6)},
			"usm-poller@2.service": {"MainPID": uint32(70), "MemoryCurrent": uint64(2 << 20), "CPUUsageNSec": ^uint64(0), "TasksCurrent": uint64(7)},
			"broker.service":       {"MainPID": uint32(0), "MemoryCurrent": uint64(3 << 20), "CPUUsageNSec": uint64(4e9), "TasksCurrent": uint64(9)},
			"other.service":        {"MainPID": uint32(90), "MemoryCurrent": uint64(5 << 20), "CPUUsageNSec": ^uint64(0), "TasksCurrent": uint64(2)},
		},
	}
	c := &Collector{
		Systemd:     func(context.Context) (SystemdAPI, error) { return s, nil },
		SystemdProc: func() (string, error) { return f.root, nil },
		Proc:        "/nonexistent",
	}
	targets := []controllers.Target{
		svc("usm-poller", v1.DriverSystemd, func(s *v1.Service) { s.Unit = "usm-poller@.service" }),
		svc("broker", v1.DriverSystemd, func(s *v1.Service) { s.Unit = "broker.service" }),
		svc("idle", v1.DriverSystemd, func(s *v1.Service) { s.Unit = "idle.service" }),
		svc("other", v1.DriverSystemd, func(s *v1.Service) { s.Unit = "other.service" }),
	}
	got, cost := c.Collect(context.Background(), targets)
	// CPU accounting is off: CPU from /proc; memory both ways.
	want := withReplica(aTreeWant(40), 70, 20, 2<<20, 0.02, 7)
	want.CgroupMemoryBytes = 3 << 20
	want.Source = "systemd+proc (" + f.root + ")"
	if r := got["systemd/usm-poller"]; r == nil || !reflect.DeepEqual(withoutTime(r), want) {
		t.Errorf("usm-poller:\n got %+v\nwant %+v", r, want)
	}
	// No main process (a oneshot, or a unit stopping): systemd's figures.
	wantB := Resources{Source: "systemd", Replicas: 1, CgroupMemoryBytes: 3 << 20, CPUSeconds: 4, Threads: 9}
	if r := got["systemd/broker"]; r == nil || !reflect.DeepEqual(withoutTime(r), wantB) {
		t.Errorf("broker:\n got %+v\nwant %+v", r, wantB)
	}
	if r := got["systemd/idle"]; r == nil || r.Replicas != 0 || r.Source != "proc" {
		t.Errorf("idle: %+v", r)
	}
	// systemd's figures only, and a note, for a main pid outside the unit.
	if r := got["systemd/other"]; r == nil || r.Processes != 0 || r.Threads != 2 || r.CgroupMemoryBytes != 5<<20 ||
		len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "not in the unit's cgroup") {
		t.Errorf("other: %+v", r)
	}
	if want := map[string]int{"systemd-list-units": 1, "systemd-properties": 4}; !reflect.DeepEqual(cost.Calls, want) {
		t.Errorf("calls %v, want %v", cost.Calls, want)
	}
	if want := "list active,activating,reloading,deactivating usm-poller@*.service,broker.service,idle.service,other.service"; s.calls[0] != want {
		t.Errorf("first call %q, want %q", s.calls[0], want)
	}
}

// TestCollectThisProcess reads the real /proc: this test process, with a
// loopback connection open, against what /proc/self/status says.
func TestCollectThisProcess(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	server := <-accepted
	defer server.Close()

	fs := &procFS{root: "/proc"}
	// RSS moves while the test runs (other tests' goroutines, the race
	// detector's shadow memory), so the sample is judged against the
	// kernel's own figure read just before and just after it.
	before := vmRSS(t)
	f, procs, err := fs.sample([]int{os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	after := vmRSS(t)
	if lo, hi := min(before, after), max(before, after); float64(f.RSS) < 0.9*float64(lo) || float64(f.RSS) > 1.1*float64(hi) {
		t.Errorf("RSS %d, VmRSS %d before and %d after the sample", f.RSS, before, after)
	}
	if f.Processes != 1 || len(procs) != 1 || procs[0].PID != os.Getpid() {
		t.Fatalf("processes %+v", procs)
	}
	// Both ends of the loopback connection are this process's.
	if f.Connections != 2 {
		t.Errorf("connections %d, want 2", f.Connections)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	// ReadDir holds one more descriptor while it reads.
	if d := len(fds) - f.OpenFiles; d < -1 || d > 1 {
		t.Errorf("open files %d, /proc/self/fd lists %d", f.OpenFiles, len(fds))
	}
	if f.Threads < 2 || f.CPUSeconds <= 0 {
		t.Errorf("figures %+v", f)
	}
}

// vmRSS is this process's resident set in bytes, as /proc/self/status says.
func vmRSS(t *testing.T) uint64 {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb * 1024
		}
	}
	t.Fatal("no VmRSS line in /proc/self/status")
	return 0
}

// BenchmarkProcSample is the /proc part of one service's collection: this
// test process and its threads.
func BenchmarkProcSample(b *testing.B) {
	for b.Loop() {
		fs := &procFS{root: "/proc"}
		if _, _, err := fs.sample([]int{os.Getpid()}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestBusProcRoot(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "bus")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	// The peer is this process: our own PID namespace.
	if root, err := BusProcRoot("/proc", "unix:path="+sock); root != "/proc" || err != nil {
		t.Errorf("same namespace: %q %v", root, err)
	}
	if root, err := BusProcRoot("/proc", "tcp:host=127.0.0.1,port=1"); root != "/proc" || err == nil {
		t.Errorf("tcp bus: %q %v", root, err)
	}
	if root, err := BusProcRoot("/proc", "unix:path="+sock+".none"); root != "/proc" || err == nil {
		t.Errorf("no socket: %q %v", root, err)
	}
}

func TestInCgroupOf(t *testing.T) {
	tests := []struct {
		cgroup, unit string
		want         bool
	}{
		{"0::/system.slice/x.service\n", "x.service", true},
		{"0::/system.slice/x.service/sub\n", "x.service", true},
		{"0::/system.slice/xx.service\n", "x.service", false},
		{"0::/docker/abc/system.slice/system-usm\\x2dpoller.slice/usm-poller@1.service\n", "usm-poller@1.service", true},
		{"4:memory:/x.service\n1:name=systemd:/system.slice/x.service\n0::/\n", "x.service", true},
		{"4:memory:/system.slice/x.service\n0::/\n", "x.service", false},
		{"", "x.service", false},
	}
	for _, tt := range tests {
		if got := InCgroupOf([]byte(tt.cgroup), tt.unit); got != tt.want {
			t.Errorf("InCgroupOf(%q, %q) = %v", tt.cgroup, tt.unit, got)
		}
	}
}
