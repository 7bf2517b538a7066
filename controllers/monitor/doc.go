// Package monitor collects the resource figures of the services a host
// declares: resident and virtual memory, CPU seconds, processes and
// threads, open file descriptors and established TCP connections, summed
// over every replica and every child process (seed 002's monitor, without
// the hand-written publisher).
//
// Each driver's processes are found the cheapest way its manager offers:
//
//   - systemd: one ListUnitsByPatterns for every declared unit and template,
//     then one GetAll of the org.freedesktop.systemd1.Service properties per
//     started unit (MainPID, MemoryCurrent, CPUUsageNSec, TasksCurrent).
//     systemd's own figures cover the whole cgroup; the main PID and its
//     children are read from /proc for RSS, VMS, descriptors and
//     connections. When systemd runs in another PID namespace (a systemd
//     container whose bus socket is shared with the host), its PIDs are read
//     through /proc/<peer>/root/proc, where <peer> is the process at the
//     other end of the bus socket (SO_PEERCRED).
//   - swarm and compose: one label-filtered ContainerList per driver, then
//     one one-shot ContainerStats (stream=false, one-shot=true) per running
//     container. The container's main PID comes from one ContainerInspect,
//     made once per container and remembered while the same process
//     (PID and start time) lives.
//   - supervisor: one getAllProcessInfo per socket; the pids it names.
//   - daemontools and runit: the pid in each folder's supervise/status; no
//     call at all.
//
// From /proc, per process: stat (utime, stime, threads, vsize, rss), the
// task list and each task's children file (the process tree), the fd
// folder and its links (descriptors, socket inodes), and once per network
// namespace net/tcp and net/tcp6 (which sockets are ESTABLISHED).
//
// stat, statm, fd and net/tcp are parsed by github.com/prometheus/procfs;
// the rest of the parsing is pure and table-tested on fixtures
// (ParseChildren, SocketInode, ParseDockerStats, ParseUnitProperties,
// SupervisorPIDs); the Collector does the I/O and counts what a
// collection cost: API calls by verb, /proc reads, wall time and the CPU
// time the agent spent.
package monitor
