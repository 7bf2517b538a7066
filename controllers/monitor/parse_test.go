package monitor

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/docker/docker/api/types/container"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/supervisor"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// procFiles writes files of one process into the fake proc mount f:
// path under ROOT/PID -> content.
func (f *fakeProc) procFiles(pid int, files map[string][]byte) {
	for rel, b := range files {
		f.write(filepath.Join(f.root, strconv.Itoa(pid), rel), string(b))
	}
}

// procfs parses stat; what the collector takes of it is checked on
// captured lines, one with a command holding spaces and parentheses.
func TestStatThroughProcfs(t *testing.T) {
	f := newFakeProc(t)
	f.procFiles(11622, map[string][]byte{"stat": fixture(t, "stat-sleep.txt")})
	f.procFiles(4242, map[string][]byte{"stat": fixture(t, "stat-odd-comm.txt")})
	f.procFiles(12, map[string][]byte{"stat": []byte("12 (x) S 1 2 3 4 5")})
	fs := &procFS{root: f.root}
	for pid, want := range map[int]ProcStat{
		11622: {PID: 11622, Comm: "bash", State: 'S', PPID: 11620, Threads: 1, StartTime: 700912, VSize: 4714496, RSSPages: 434},
		4242: {PID: 4242, Comm: "my (odd) name", State: 'S', PPID: 1, UTime: 250, STime: 75, Threads: 12,
			StartTime: 98765, VSize: 1234567890, RSSPages: 2048},
	} {
		if got, err := fs.stat(pid); err != nil || got != want {
			t.Errorf("stat of %d = %+v, %v\nwant %+v", pid, got, err, want)
		}
	}
	for _, pid := range []int{12, 13} { // truncated; not there
		if got, err := fs.stat(pid); err == nil {
			t.Errorf("stat of %d = %+v, want an error", pid, got)
		}
	}
	if fs.reads != 4 {
		t.Errorf("%d reads, want one per stat", fs.reads)
	}
}

// Established connections are counted from both tcp tables of a
// process's namespace: two ESTABLISHED ends of one loopback connection in
// tcp and a v4-mapped one in tcp6; LISTEN and TIME_WAIT (inode 0) sockets
// are not connections.
func TestEstablishedThroughProcfs(t *testing.T) {
	f := newFakeProc(t)
	f.procFiles(7, map[string][]byte{"net/tcp": fixture(t, "net-tcp.txt"), "net/tcp6": fixture(t, "net-tcp6.txt")})
	f.procFiles(8, map[string][]byte{"net/tcp": fixture(t, "net-tcp.txt")}) // no IPv6
	f.procFiles(9, map[string][]byte{"net/tcp": []byte("header\n 0: a b 01 c d e f g x\n")})
	fs := &procFS{root: f.root}
	got, err := fs.established([]process{{ProcStat: ProcStat{PID: 7}, Sockets: []uint64{1}, NetNS: "net:[1]"}})
	if want := map[uint64]bool{547973: true, 547974: true, 612345: true}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	if got, err := fs.established([]process{{ProcStat: ProcStat{PID: 8}, Sockets: []uint64{1}, NetNS: "net:[2]"}}); err != nil || len(got) != 2 {
		t.Errorf("without tcp6: %v, %v", got, err)
	}
	if _, err := fs.established([]process{{ProcStat: ProcStat{PID: 9}, Sockets: []uint64{1}, NetNS: "net:[3]"}}); err == nil {
		t.Error("a bad table was read without an error")
	}
}

func TestSocketInodeAndChildren(t *testing.T) {
	for link, want := range map[string]uint64{"socket:[12345]": 12345, "socket:[0]": 0} {
		if got, ok := SocketInode(link); !ok || got != want {
			t.Errorf("SocketInode(%q) = %d, %v", link, got, ok)
		}
	}
	for _, link := range []string{"/dev/null", "pipe:[123]", "socket:[x]", "socket:[12", "anon_inode:[eventpoll]"} {
		if _, ok := SocketInode(link); ok {
			t.Errorf("SocketInode(%q) is a socket", link)
		}
	}
	if got := ParseChildren([]byte("12 345 6 \n")); !reflect.DeepEqual(got, []int{12, 345, 6}) {
		t.Errorf("ParseChildren = %v", got)
	}
	if got := ParseChildren(nil); got != nil {
		t.Errorf("ParseChildren(nil) = %v", got)
	}
}

func TestParseDockerStats(t *testing.T) {
	tests := []struct {
		file    string
		want    DockerFigures
		ok      bool
		wantErr bool
	}{
		// cgroup v2: usage less inactive_file.
		{file: "docker-stats-v2.json", want: DockerFigures{CPUSeconds: 2.5, MemoryBytes: 10485760 - 2097152, Tasks: 7}, ok: true},
		// cgroup v1: usage less total_inactive_file (not inactive_file).
		{file: "docker-stats-v1.json", want: DockerFigures{CPUSeconds: 1, MemoryBytes: 8388608 - 1048576, Tasks: 5}, ok: true},
		// An engine that cannot read the cgroups answers zeros and no time.
		{file: "docker-stats-empty.json", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, ok, err := ParseDockerStats(fixture(t, tt.file))
			if err != nil || ok != tt.ok || got != tt.want {
				t.Errorf("got %+v ok %v err %v, want %+v ok %v", got, ok, err, tt.want, tt.ok)
			}
		})
	}
	if _, _, err := ParseDockerStats([]byte("{not json")); err == nil {
		t.Error("a broken answer parsed")
	}
}

func TestParseUnitProperties(t *testing.T) {
	tests := []struct {
		name  string
		props map[string]any
		want  UnitFigures
	}{
		{name: "every figure", props: map[string]any{"MainPID": uint32(1567), "MemoryCurrent": uint64(8044544),
			"CPUUsageNSec": uint64(120000000), "TasksCurrent": uint64(7), "ControlGroup": "/system.slice/x.service"},
			want: UnitFigures{MainPID: 1567, MemoryBytes: 8044544, CPUNanoseconds: 120000000, Tasks: 7, HasMemory: true, HasCPU: true, HasTasks: true}},
		// CPUAccounting=no: CPUUsageNSec is [not set], sent as the largest uint64.
		{name: "accounting off", props: map[string]any{"MainPID": uint32(9), "MemoryCurrent": uint64(4096),
			"CPUUsageNSec": ^uint64(0), "TasksCurrent": ^uint64(0)},
			want: UnitFigures{MainPID: 9, MemoryBytes: 4096, HasMemory: true}},
		{name: "stopped", props: map[string]any{"MainPID": uint32(0), "MemoryCurrent": ^uint64(0)}, want: UnitFigures{}},
		{name: "wrong types are ignored", props: map[string]any{"MainPID": "12", "MemoryCurrent": int64(5)}, want: UnitFigures{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseUnitProperties(tt.props); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSupervisorPIDs(t *testing.T) {
	b, err := os.ReadFile("../supervisor/testdata/getAllProcessInfo-mixed.xml")
	if err != nil {
		t.Fatal(err)
	}
	v, err := supervisor.DecodeResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := supervisor.ParseProcesses(v)
	if err != nil {
		t.Fatal(err)
	}
	// RUNNING and STARTING have a pid; the 13 STOPPED ones do not.
	if got, ok := SupervisorPIDs(ps, "usm-poller"); !ok || !reflect.DeepEqual(got, []int{10244, 10273}) {
		t.Errorf("usm-poller: %v %v, want [10244 10273]", got, ok)
	}
	// A group whose processes are all stopped is there, with no pid.
	stopped := []supervisor.Process{{Name: "a", Group: "g", State: "STOPPED"}}
	if got, ok := SupervisorPIDs(stopped, "g"); !ok || len(got) != 0 {
		t.Errorf("all stopped: %v %v", got, ok)
	}
	if _, ok := SupervisorPIDs(stopped, "other"); ok {
		t.Error("a program of no process is there")
	}
	// One program of a [group:] section: its processes only.
	joined := []supervisor.Process{
		{Name: "broker", Group: "factory", State: "RUNNING", PID: 7},
		{Name: "module_02", Group: "factory", State: "RUNNING", PID: 9},
		{Name: "module_01", Group: "factory", State: "RUNNING", PID: 8},
	}
	if got, ok := SupervisorPIDs(joined, "factory:module"); !ok || !reflect.DeepEqual(got, []int{8, 9}) {
		t.Errorf("factory:module: %v %v, want [8 9]", got, ok)
	}
}

func svc(name string, d v1.Driver, mod func(*v1.Service)) controllers.Target {
	s := &v1.Service{Name: name, Driver: d}
	if mod != nil {
		mod(s)
	}
	return controllers.Target{Kind: controllers.KindService, Name: name, Driver: d, Service: s}
}

func TestUnitsOf(t *testing.T) {
	tmpl := svc("usm-poller", v1.DriverSystemd, func(s *v1.Service) { s.Unit = "usm-poller@.service" })
	plain := svc("broker", v1.DriverSystemd, func(s *v1.Service) { s.Unit = "broker.service" })
	listed := []sd.UnitStatus{
		{Name: "usm-poller@1.service", LoadState: "loaded"},
		{Name: "usm-poller@2.service", LoadState: "loaded"},
		{Name: "usm-poller@blue.service", LoadState: "loaded"}, // not a replica
		{Name: "usm-poller@01.service", LoadState: "loaded"},   // not how the driver names replicas
		{Name: "usm-poller@3.service", LoadState: "not-found"},
		{Name: "broker.service", LoadState: "loaded"},
		{Name: "broker-extra.service", LoadState: "loaded"},
	}
	got := unitsOf([]controllers.Target{tmpl, plain}, listed)
	want := map[string][]string{
		"systemd/usm-poller": {"usm-poller@1.service", "usm-poller@2.service"},
		"systemd/broker":     {"broker.service"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for unit, want := range map[string]string{"usm-poller@.service": "usm-poller@*.service", "a.service": "a.service"} {
		if got := listPattern(unit); got != want {
			t.Errorf("listPattern(%q) = %q, want %q", unit, got, want)
		}
	}
}

func TestMatchContainers(t *testing.T) {
	web := svc("web", v1.DriverCompose, func(s *v1.Service) { s.Project = "shop" })
	proxy := svc("factory-proxy", v1.DriverSwarm, nil)
	list := []container.Summary{
		{ID: "b", Names: []string{"/factory-proxy.2.x"}, State: "running", Labels: map[string]string{LabelSwarmService: "factory-proxy"}},
		{ID: "a", Names: []string{"/factory-proxy.1.y"}, State: "running", Labels: map[string]string{LabelSwarmService: "factory-proxy"}},
		{ID: "c", Names: []string{"/factory-broker.1.z"}, State: "running", Labels: map[string]string{LabelSwarmService: "factory-broker"}},
		{ID: "d", Names: []string{"/shop-web-1"}, State: "running", Labels: map[string]string{
			"com.docker.compose.project": "shop", "com.docker.compose.service": "web"}},
		{ID: "e", Names: []string{"/shop-web-run-1"}, State: "running", Labels: map[string]string{
			"com.docker.compose.project": "shop", "com.docker.compose.service": "web", "com.docker.compose.oneoff": "True"}},
		{ID: "f", Names: []string{"/shop-web-2"}, State: "exited", Labels: map[string]string{
			"com.docker.compose.project": "shop", "com.docker.compose.service": "web"}},
		{ID: "g", Names: []string{"/other-web-1"}, State: "running", Labels: map[string]string{
			"com.docker.compose.project": "other", "com.docker.compose.service": "web"}},
	}
	got := matchContainers([]controllers.Target{web, proxy}, list)
	want := map[string][]dockerContainer{
		"swarm/factory-proxy": {{"a", "factory-proxy.1.y"}, {"b", "factory-proxy.2.x"}},
		"compose/web":         {{"d", "shop-web-1"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

func TestBusSocket(t *testing.T) {
	tests := map[string]string{
		"":                                      DefaultSystemBus,
		"unix:path=/run/x/system_bus_socket":    "/run/x/system_bus_socket",
		"unix:abstract=/tmp/x;unix:path=/run/y": "/run/y",
		"unix:guid=abc,path=/run/z":             "/run/z",
		"tcp:host=127.0.0.1,port=1234":          "",
		"unix:abstract=/tmp/dbus-abc":           "",
	}
	for in, want := range tests {
		if got := BusSocket(in); got != want {
			t.Errorf("BusSocket(%q) = %q, want %q", in, got, want)
		}
	}
}
