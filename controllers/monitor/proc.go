package monitor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
)

// ClockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports (the kernel fixes it for
// user space whatever CONFIG_HZ is).
const ClockTicks = 100

// ProcStat is what /proc/PID/stat says of one process, as procfs parses it.
type ProcStat struct {
	PID       int
	Comm      string
	State     byte
	PPID      int
	UTime     uint64 // clock ticks in user mode
	STime     uint64 // clock ticks in kernel mode
	Threads   int
	StartTime uint64 // clock ticks after boot; with the pid, names one process for good
	VSize     uint64 // virtual memory, bytes
	RSSPages  uint64 // resident set, pages (VmRSS: anon + file + shmem)
}

// ParseChildren reads /proc/PID/task/TID/children: the pids of the
// children that task forked, space-separated.
func ParseChildren(b []byte) []int {
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// SocketInode reads the link of a socket descriptor, "socket:[12345]".
func SocketInode(link string) (uint64, bool) {
	s, ok := strings.CutPrefix(link, "socket:[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// tcpEstablished is the st column of an ESTABLISHED socket (TCP_ESTABLISHED).
const tcpEstablished = 1

// process is one process as read from /proc.
type process struct {
	ProcStat
	FDs     int      // open descriptors of every kind
	Sockets []uint64 // inodes of its socket descriptors
	NetNS   string   // link of ns/net, to read each namespace's tcp tables once
}

// procFigures are the sums over a set of processes.
type procFigures struct {
	RSS, VMS    uint64
	CPUSeconds  float64
	Processes   int
	Threads     int
	OpenFiles   int
	Connections int
}

// sumProcesses adds up processes. A socket shared by several processes of
// the set (inherited over fork) is one connection.
func sumProcesses(procs []process, established map[uint64]bool, pageSize uint64) procFigures {
	var f procFigures
	conns := map[uint64]bool{}
	var ticks uint64
	for _, p := range procs {
		f.Processes++
		f.Threads += p.Threads
		f.RSS += p.RSSPages * pageSize
		f.VMS += p.VSize
		f.OpenFiles += p.FDs
		ticks += p.UTime + p.STime
		for _, s := range p.Sockets {
			if established[s] {
				conns[s] = true
			}
		}
	}
	f.CPUSeconds = float64(ticks) / ClockTicks
	f.Connections = len(conns)
	return f
}

// procFS reads processes under one proc mount: "/proc", or the proc mount
// of another PID namespace seen through /proc/PID/root/proc. The files of
// one process (stat, statm, fd, net/tcp) are parsed by
// github.com/prometheus/procfs; the process tree (task/*/children), which
// procfs does not walk, and socket inodes are read here.
type procFS struct {
	root  string
	reads int // files, folders and links read: the I/O a collection cost

	fs    procfs.FS
	fsErr error
	made  bool
}

// proc returns procfs's view of one process of the mount.
func (p *procFS) proc(pid int) (procfs.Proc, error) {
	if !p.made {
		p.fs, p.fsErr = procfs.NewFS(p.root)
		p.made = true
	}
	if p.fsErr != nil {
		return procfs.Proc{}, p.fsErr
	}
	return p.fs.Proc(pid)
}

func (p *procFS) path(pid int, parts ...string) string {
	return filepath.Join(append([]string{p.root, strconv.Itoa(pid)}, parts...)...)
}

func (p *procFS) readFile(name string) ([]byte, error) {
	p.reads++
	return os.ReadFile(name)
}

func (p *procFS) readDir(name string) ([]string, error) {
	p.reads++
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

func (p *procFS) readLink(name string) (string, error) {
	p.reads++
	return os.Readlink(name)
}

// stat reads one process's stat.
func (p *procFS) stat(pid int) (ProcStat, error) {
	p.reads++
	pr, err := p.proc(pid)
	if err != nil {
		return ProcStat{}, err
	}
	s, err := pr.Stat()
	if err != nil {
		return ProcStat{}, err
	}
	if len(s.State) != 1 {
		return ProcStat{}, fmt.Errorf("stat of %d: state %q", pid, s.State)
	}
	return ProcStat{
		PID: s.PID, Comm: s.Comm, State: s.State[0], PPID: s.PPID,
		UTime: uint64(s.UTime), STime: uint64(s.STime), Threads: s.NumThreads,
		StartTime: s.Starttime, VSize: uint64(s.VSize), RSSPages: uint64(max(s.RSS, 0)),
	}, nil
}

// resident reads statm's resident size, in pages.
func (p *procFS) resident(pid int) (uint64, bool) {
	p.reads++
	pr, err := p.proc(pid)
	if err != nil {
		return 0, false
	}
	m, err := pr.Statm()
	return m.Resident, err == nil
}

// tree reads every root and all its descendants, each once. A root that
// cannot be read is an error naming it; a child that exits meanwhile is
// skipped.
func (p *procFS) tree(roots []int) ([]process, error) {
	seen := map[int]bool{}
	var out []process
	var errs []error
	queue := append([]int(nil), roots...)
	isRoot := map[int]bool{}
	for _, r := range roots {
		isRoot[r] = true
	}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] || pid <= 0 {
			continue
		}
		seen[pid] = true
		st, err := p.stat(pid)
		if err != nil {
			if isRoot[pid] {
				errs = append(errs, fmt.Errorf("pid %d: %w", pid, err))
			}
			continue
		}
		if st.State == 'Z' {
			continue // a zombie holds no memory, descriptors or sockets
		}
		proc := process{ProcStat: st}
		// statm's resident figure is the one VmRSS shows; stat's may lag
		// behind it by a few percent (the kernel's per-CPU counters are
		// summed for statm and status, read approximately for stat).
		if res, ok := p.resident(pid); ok {
			proc.RSSPages = res
		}
		queue = append(queue, p.children(pid)...)
		p.fds(&proc)
		if ns, err := p.readLink(p.path(pid, "ns", "net")); err == nil {
			proc.NetNS = ns
		}
		out = append(out, proc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out, errors.Join(errs...)
}

// children lists the children every task of pid forked.
func (p *procFS) children(pid int) []int {
	tasks, err := p.readDir(p.path(pid, "task"))
	if err != nil {
		return nil
	}
	var out []int
	for _, t := range tasks {
		if b, err := p.readFile(p.path(pid, "task", t, "children")); err == nil {
			out = append(out, ParseChildren(b)...)
		}
	}
	return out
}

// fds counts a process's descriptors and notes its sockets.
func (p *procFS) fds(proc *process) {
	p.reads++
	pr, err := p.proc(proc.PID)
	if err != nil {
		return
	}
	links, err := pr.FileDescriptorTargets()
	if err != nil {
		return
	}
	p.reads += len(links)
	proc.FDs = len(links)
	for _, link := range links {
		if inode, ok := SocketInode(link); ok {
			proc.Sockets = append(proc.Sockets, inode)
		}
	}
}

// established reads the tcp tables of every network namespace the
// processes live in, once per namespace, and returns the inodes of the
// ESTABLISHED sockets.
func (p *procFS) established(procs []process) (map[uint64]bool, error) {
	out := map[uint64]bool{}
	done := map[string]bool{}
	var errs []error
	for _, proc := range procs {
		if len(proc.Sockets) == 0 || done[proc.NetNS] {
			continue
		}
		done[proc.NetNS] = true
		// procfs reads net/tcp under a mount point: the process's own
		// folder holds the tables of its network namespace.
		nsFS, err := procfs.NewFS(p.path(proc.PID))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, read := range []func() (procfs.NetTCP, error){nsFS.NetTCP, nsFS.NetTCP6} { //nolint:staticcheck // netlink would need a socket in every namespace; the files need none
			p.reads++
			lines, err := read()
			if err != nil {
				if !errors.Is(err, os.ErrNotExist) { // no IPv6: no tcp6
					errs = append(errs, fmt.Errorf("net/tcp of %d: %w", proc.PID, err))
				}
				continue
			}
			for _, l := range lines {
				if l.St == tcpEstablished && l.Inode != 0 {
					out[l.Inode] = true
				}
			}
		}
	}
	return out, errors.Join(errs...)
}

// sample reads the processes of roots and sums them.
func (p *procFS) sample(roots []int) (procFigures, []process, error) {
	procs, err := p.tree(roots)
	est, err2 := p.established(procs)
	return sumProcesses(procs, est, uint64(os.Getpagesize())), procs, errors.Join(err, err2)
}
