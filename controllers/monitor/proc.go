package monitor

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ClockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports (the kernel fixes it for
// user space whatever CONFIG_HZ is).
const ClockTicks = 100

// ProcStat is what /proc/PID/stat says of one process.
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

// ParseStat reads /proc/PID/stat. The command name may hold spaces and
// parentheses, so fields are counted from the last ')'.
func ParseStat(b []byte) (ProcStat, error) {
	var st ProcStat
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return st, errors.New("stat: no (comm)")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:open])))
	if err != nil {
		return st, fmt.Errorf("stat: pid: %w", err)
	}
	st.PID, st.Comm = pid, string(b[open+1:end])
	f := strings.Fields(string(b[end+1:]))
	// f[0] is field 3 (state); field n is f[n-3]. rss is field 24.
	if len(f) < 22 {
		return st, fmt.Errorf("stat: %d fields after the command, want at least 22", len(f))
	}
	if len(f[0]) != 1 {
		return st, fmt.Errorf("stat: state %q", f[0])
	}
	st.State = f[0][0]
	nums := []struct {
		i   int
		dst *uint64
	}{{11, &st.UTime}, {12, &st.STime}, {19, &st.StartTime}, {20, &st.VSize}, {21, &st.RSSPages}}
	for _, n := range nums {
		v, err := strconv.ParseUint(f[n.i], 10, 64)
		if err != nil {
			return st, fmt.Errorf("stat: field %d: %w", n.i+3, err)
		}
		*n.dst = v
	}
	if st.PPID, err = strconv.Atoi(f[1]); err != nil {
		return st, fmt.Errorf("stat: ppid: %w", err)
	}
	if st.Threads, err = strconv.Atoi(f[17]); err != nil {
		return st, fmt.Errorf("stat: num_threads: %w", err)
	}
	return st, nil
}

// ParseStatm reads /proc/PID/statm: total and resident size, in pages.
// Its resident figure is the one VmRSS shows; stat's may lag behind it by
// a few percent (the kernel's per-CPU counters are summed for statm and
// status, read approximately for stat).
func ParseStatm(b []byte) (size, resident uint64, err error) {
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, 0, fmt.Errorf("statm: %d fields", len(f))
	}
	if size, err = strconv.ParseUint(f[0], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("statm: size: %w", err)
	}
	if resident, err = strconv.ParseUint(f[1], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("statm: resident: %w", err)
	}
	return size, resident, nil
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

// tcpEstablished is the st column of an ESTABLISHED socket.
const tcpEstablished = "01"

// ParseNetTCP reads /proc/PID/net/tcp or tcp6 and adds to into the inode
// of every ESTABLISHED socket. The header line is skipped; a line that does
// not parse is an error (the format has not changed since Linux 2.2).
func ParseNetTCP(b []byte, into map[uint64]bool) error {
	lines := strings.Split(string(b), "\n")
	for i, line := range lines {
		if i == 0 || strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Fields(line)
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
		if len(f) < 10 {
			return fmt.Errorf("net/tcp line %d: %d fields", i+1, len(f))
		}
		if f[3] != tcpEstablished {
			continue
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return fmt.Errorf("net/tcp line %d: inode: %w", i+1, err)
		}
		if inode != 0 {
			into[inode] = true
		}
	}
	return nil
}

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
// of another PID namespace seen through /proc/PID/root/proc.
type procFS struct {
	root  string
	reads int // files, folders and links read: the I/O a collection cost
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
	b, err := p.readFile(p.path(pid, "stat"))
	if err != nil {
		return ProcStat{}, err
	}
	return ParseStat(b)
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
		if b, err := p.readFile(p.path(pid, "statm")); err == nil {
			if _, res, err := ParseStatm(b); err == nil {
				proc.RSSPages = res
			}
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
	dir := p.path(proc.PID, "fd")
	names, err := p.readDir(dir)
	if err != nil {
		return
	}
	proc.FDs = len(names)
	for _, n := range names {
		link, err := p.readLink(filepath.Join(dir, n))
		if err != nil {
			continue
		}
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
		for _, table := range []string{"tcp", "tcp6"} {
			b, err := p.readFile(p.path(proc.PID, "net", table))
			if err != nil {
				if !errors.Is(err, os.ErrNotExist) { // no IPv6: no tcp6
					errs = append(errs, err)
				}
				continue
			}
			if err := ParseNetTCP(b, out); err != nil {
				errs = append(errs, err)
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
