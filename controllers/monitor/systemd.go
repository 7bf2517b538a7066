package monitor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	sd "github.com/coreos/go-systemd/v22/dbus"

	"reconciler.dev/reconciler/controllers"
)

// SystemdAPI is the part of go-systemd's D-Bus connection the monitor uses.
type SystemdAPI interface {
	ListUnitsByPatternsContext(ctx context.Context, states, patterns []string) ([]sd.UnitStatus, error)
	GetUnitTypePropertiesContext(ctx context.Context, unit, unitType string) (map[string]any, error)
}

// UnitFigures are what systemd says of one service unit. A figure systemd
// does not track (its accounting is off) is not Has.
type UnitFigures struct {
	MainPID                     int
	MemoryBytes                 uint64 // MemoryCurrent
	CPUNanoseconds              uint64 // CPUUsageNSec
	Tasks                       uint64 // TasksCurrent
	HasMemory, HasCPU, HasTasks bool
}

// unset is how systemd says "[not set]" over D-Bus.
const unset = ^uint64(0)

// ParseUnitProperties reads the org.freedesktop.systemd1.Service
// properties of one unit.
func ParseUnitProperties(props map[string]any) UnitFigures {
	var f UnitFigures
	if v, ok := props["MainPID"].(uint32); ok {
		f.MainPID = int(v)
	}
	get := func(name string, dst *uint64, has *bool) {
		if v, ok := props[name].(uint64); ok && v != unset {
			*dst, *has = v, true
		}
	}
	get("MemoryCurrent", &f.MemoryBytes, &f.HasMemory)
	get("CPUUsageNSec", &f.CPUNanoseconds, &f.HasCPU)
	get("TasksCurrent", &f.Tasks, &f.HasTasks)
	return f
}

// unitsOf returns, for each target, the listed units it runs: the numbered
// instances x@N.service of a template x@.service (as the systemd driver
// counts replicas), or the unit itself. It is pure.
func unitsOf(targets []controllers.Target, listed []sd.UnitStatus) map[string][]string {
	out := map[string][]string{}
	for _, t := range targets {
		unit := t.Service.Unit
		for _, u := range listed {
			if u.LoadState == "not-found" {
				continue
			}
			if u.Name == unit || isInstance(u.Name, unit) {
				out[t.Subject()] = append(out[t.Subject()], u.Name)
			}
		}
	}
	return out
}

// isInstance says whether name is a numbered instance of template
// ("x@3.service" of "x@.service").
func isInstance(name, template string) bool {
	at := strings.LastIndex(template, "@.")
	if at < 0 {
		return false
	}
	prefix, ext := template[:at+1], template[at+1:]
	if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, ext) || len(name) <= len(prefix)+len(ext) {
		return false
	}
	n := name[len(prefix) : len(name)-len(ext)]
	v, err := strconv.Atoi(n)
	return err == nil && v >= 1 && strconv.Itoa(v) == n
}

// listPattern is the ListUnitsByPatterns pattern of a service's unit.
func listPattern(unit string) string {
	if at := strings.LastIndex(unit, "@."); at >= 0 {
		return unit[:at+1] + "*" + unit[at+1:]
	}
	return unit
}

// startedStates are the unit states whose processes are sampled.
var startedStates = []string{"active", "activating", "reloading", "deactivating"}

// systemd samples systemd services: one list call for them all, one
// properties call per started unit, then /proc under systemd's PID
// namespace.
func (cl *collection) systemd(ctx context.Context, targets []controllers.Target) map[string]*Resources {
	c := cl.c
	api, err := c.Systemd(ctx)
	if err != nil {
		cl.fail("systemd: %v", err)
		return nil
	}
	var patterns []string
	for _, t := range targets {
		patterns = append(patterns, listPattern(t.Service.Unit))
	}
	cctx, cancel := context.WithTimeout(ctx, c.timeout())
	cl.call("systemd-list-units")
	listed, err := api.ListUnitsByPatternsContext(cctx, startedStates, patterns)
	cancel()
	if err != nil {
		cl.fail("systemd: listing units: %v", err)
		return nil
	}
	root, rootErr := c.systemdProc()
	units := unitsOf(targets, listed)
	out := map[string]*Resources{}
	for _, t := range targets {
		r := &Resources{At: cl.now}
		out[t.Subject()] = r
		var roots []int
		var mem, cpu, tasks uint64
		allMem, allCPU, allTasks := true, true, true
		for _, u := range units[t.Subject()] {
			cctx, cancel := context.WithTimeout(ctx, c.timeout())
			cl.call("systemd-properties")
			props, err := api.GetUnitTypePropertiesContext(cctx, u, "Service")
			cancel()
			if err != nil {
				r.note("%s: %v", u, err)
				continue
			}
			f := ParseUnitProperties(props)
			r.Replicas++
			if f.MainPID > 0 {
				if err := cl.inUnit(root, f.MainPID, u); err != nil {
					r.note("%v", err)
				} else {
					roots = append(roots, f.MainPID)
				}
			}
			mem, cpu, tasks = mem+f.MemoryBytes, cpu+f.CPUNanoseconds, tasks+f.Tasks
			allMem, allCPU, allTasks = allMem && f.HasMemory, allCPU && f.HasCPU, allTasks && f.HasTasks
		}
		r.PIDs = roots
		if rootErr != nil && len(roots) > 0 {
			r.note("systemd's PID namespace: %v", rootErr)
		}
		procRead := cl.fromProcs(r, root, roots)
		if r.Replicas > 0 && allMem {
			r.CgroupMemoryBytes = mem
		}
		if r.Replicas > 0 && allCPU {
			r.CPUSeconds = float64(cpu) / 1e9 // the cgroup's: exited processes count too
		}
		if r.Replicas > 0 && allTasks && !procRead {
			r.Threads = int(tasks)
		}
		manager := ""
		if r.Replicas > 0 {
			manager = "systemd"
		}
		r.Source = sourceOf(manager, procRead)
		if root != c.proc() && procRead {
			r.Source += " (" + root + ")"
		}
	}
	return out
}

// inUnit checks that pid, under the proc mount root, is a process of unit:
// its cgroup path names the unit. A pid systemd names in another PID
// namespace than the one root shows (the bus reached through a proxy, say)
// would otherwise be read as some other process.
func (cl *collection) inUnit(root string, pid int, unit string) error {
	fs, done := cl.procFS(root)
	defer done()
	b, err := fs.readFile(fs.path(pid, "cgroup"))
	if err != nil {
		return fmt.Errorf("%s: main pid %d: %w", unit, pid, err)
	}
	if !InCgroupOf(b, unit) {
		return fmt.Errorf("%s: pid %d under %s is not in the unit's cgroup (systemd runs in a PID namespace this agent cannot see); its processes were not read", unit, pid, root)
	}
	return nil
}

// InCgroupOf says whether /proc/PID/cgroup places the process in unit's
// cgroup (or below it).
func InCgroupOf(cgroup []byte, unit string) bool {
	for _, line := range strings.Split(string(cgroup), "\n") {
		_, p, ok := strings.Cut(line, "::") // the unified hierarchy, "0::/..."
		if !ok {
			if i := strings.LastIndexByte(line, ':'); i >= 0 && strings.Contains(line[:i], "name=systemd") {
				p, ok = line[i+1:], true
			}
		}
		if ok && (strings.HasSuffix(p, "/"+unit) || strings.Contains(p, "/"+unit+"/")) {
			return true
		}
	}
	return false
}

// systemdProc returns the proc mount of systemd's PID namespace, found once.
func (c *Collector) systemdProc() (string, error) {
	if c.SystemdProc != nil {
		return c.SystemdProc()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sdProc != "" {
		if _, err := os.Stat(filepath.Join(c.sdProc, "1", "stat")); err == nil {
			return c.sdProc, nil
		}
	}
	root, err := BusProcRoot(c.proc(), os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"))
	if err == nil {
		c.sdProc = root
	}
	return root, err
}

// DefaultSystemBus is the system bus socket when DBUS_SYSTEM_BUS_ADDRESS
// does not name one.
const DefaultSystemBus = "/var/run/dbus/system_bus_socket"

// BusSocket returns the unix socket path of a D-Bus address
// ("unix:path=/run/dbus/system_bus_socket;..."), or "" when it names none
// (tcp, abstract sockets).
func BusSocket(address string) string {
	if address == "" {
		return DefaultSystemBus
	}
	for _, a := range strings.Split(address, ";") {
		rest, ok := strings.CutPrefix(a, "unix:")
		if !ok {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			if p, ok := strings.CutPrefix(kv, "path="); ok {
				return p
			}
		}
	}
	return ""
}

// BusProcRoot returns the proc mount under which systemd's PIDs name the
// right processes. The process at the other end of the bus socket (the bus
// daemon, or systemd itself when it listens for it) runs in systemd's PID
// namespace; when that is not ours, as with systemd in a container whose
// bus socket is bind-mounted on the host, its PIDs are read through
// proc/<peer>/root/proc. The answer is proc itself when the namespaces
// match, and also, with an error, when the peer cannot be found.
func BusProcRoot(proc, address string) (string, error) {
	path := BusSocket(address)
	if path == "" {
		return proc, fmt.Errorf("bus address %q names no unix socket: assuming systemd shares our PID namespace", address)
	}
	conn, err := net.Dial("unix", path)
	if err != nil {
		return proc, fmt.Errorf("bus socket: %w", err)
	}
	defer conn.Close()
	raw, err := conn.(*net.UnixConn).SyscallConn()
	if err != nil {
		return proc, err
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return proc, err
	}
	if credErr != nil {
		return proc, fmt.Errorf("SO_PEERCRED: %w", credErr)
	}
	if cred.Pid <= 0 {
		return proc, errors.New("the bus's process is outside our PID namespace: assuming systemd shares it")
	}
	peer := strconv.Itoa(int(cred.Pid))
	theirs, err := os.Readlink(filepath.Join(proc, peer, "ns", "pid"))
	if err != nil {
		return proc, err
	}
	ours, err := os.Readlink(filepath.Join(proc, "self", "ns", "pid"))
	if err != nil {
		return proc, err
	}
	if theirs == ours {
		return proc, nil
	}
	root := filepath.Join(proc, peer, "root", "proc")
	if _, err := os.Stat(filepath.Join(root, "1", "stat")); err != nil {
		return proc, fmt.Errorf("systemd runs in another PID namespace and %s is not readable: %w", root, err)
	}
	return root, nil
}
