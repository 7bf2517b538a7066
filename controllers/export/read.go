package export

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"reconciler.dev/reconciler/controllers/daemontools"
	"reconciler.dev/reconciler/controllers/supervisor"
	swarmdrv "reconciler.dev/reconciler/controllers/swarm"
)

// DockerAPI is the swarm driver's reader of services (swarm.Client), the
// one export uses.
type DockerAPI interface {
	ListServices(ctx context.Context, options swarm.ServiceListOptions) ([]swarmdrv.Service, error)
}

// SystemdAPI is the part of go-systemd's D-Bus connection export uses.
type SystemdAPI interface {
	ListUnitFilesByPatternsContext(ctx context.Context, states, patterns []string) ([]sd.UnitFile, error)
	ListUnitsByPatternsContext(ctx context.Context, states, patterns []string) ([]sd.UnitStatus, error)
}

// Reader reads the live state. A client that is nil is not asked.
type Reader struct {
	Docker  DockerAPI
	Systemd func(ctx context.Context) (SystemdAPI, error)
	// Supervisor holds the client of each supervisord socket (the driver's).
	Supervisor *supervisor.Clients
	// SupervisorSockets are the supervisord sockets to ask.
	SupervisorSockets []string
	// SvscanDirs are the folders whose service folders are read.
	SvscanDirs []string
	// Select are the --select globs; systemd is asked for the units those
	// of them that name units (UnitGlobs) name, besides timers and
	// template instances.
	Select []string
	// CallTimeout bounds every call (default 30s).
	CallTimeout time.Duration
}

// Problem is a source that could not be read. Absent is true when the
// source is simply not there (no supervisord on the socket, no svscan
// folder, a node that is no swarm manager): nothing to export from it.
type Problem struct {
	Source string
	Err    error
	Absent bool
}

func (p Problem) String() string { return p.Source + ": " + p.Err.Error() }

func (r *Reader) timeout() time.Duration {
	if r.CallTimeout > 0 {
		return r.CallTimeout
	}
	return 30 * time.Second
}

// absent says whether an error means "nothing there" rather than
// "broken", by its type: a socket or folder that does not exist, a daemon
// that refuses the connection or that the Docker client cannot reach, and
// a node that is no swarm manager (Docker answers 503, Unavailable).
func absent(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) ||
		client.IsErrConnectionFailed(err) || cerrdefs.IsUnavailable(err)
}

// Read asks every source once. It returns what it could read and, apart,
// what it could not.
func (r *Reader) Read(ctx context.Context) (Live, []Problem) {
	var l Live
	var probs []Problem
	fail := func(source string, err error) {
		probs = append(probs, Problem{Source: source, Err: err, Absent: absent(err)})
	}
	if r.Docker != nil {
		cctx, cancel := context.WithTimeout(ctx, r.timeout())
		list, err := r.Docker.ListServices(cctx, swarm.ServiceListOptions{})
		cancel()
		if err != nil {
			fail("docker swarm", err)
		}
		for _, s := range list {
			ss := SwarmService{Name: s.Spec.Name}
			if m := s.Spec.Mode.Replicated; m != nil && m.Replicas != nil {
				n := *m.Replicas
				ss.Replicas = &n
			}
			if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
				ss.Image = cs.Image
			}
			l.Swarm = append(l.Swarm, ss)
		}
		sort.Slice(l.Swarm, func(i, j int) bool { return l.Swarm[i].Name < l.Swarm[j].Name })
	}
	if r.Systemd != nil {
		units, err := r.readSystemd(ctx)
		if err != nil {
			fail("systemd", err)
		}
		l.Units = units
	}
	for _, s := range r.SupervisorSockets {
		procs, err := r.readSupervisor(ctx, s)
		if err != nil {
			fail("supervisord at "+s, err)
			continue
		}
		l.Supervisor = append(l.Supervisor, SupervisorSocket{Socket: s, Processes: procs})
	}
	for _, dir := range r.SvscanDirs {
		svcs, err := daemontools.ReadSvscan(dir)
		if err != nil {
			fail("svscan folder "+dir, err)
		}
		l.Daemontools = append(l.Daemontools, svcs...)
	}
	return l, probs
}

// readSystemd asks for timers, template instances and the units --select
// names, in two calls: unit files (enablement) and loaded units (state).
func (r *Reader) readSystemd(ctx context.Context) ([]UnitState, error) {
	api, err := r.Systemd(ctx)
	if err != nil {
		return nil, err
	}
	patterns := append([]string{"*.timer", "*@*.service"}, UnitGlobs(r.Select)...)
	cctx, cancel := context.WithTimeout(ctx, r.timeout())
	files, err := api.ListUnitFilesByPatternsContext(cctx, nil, patterns)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("listing unit files: %w", err)
	}
	cctx, cancel = context.WithTimeout(ctx, r.timeout())
	loaded, err := api.ListUnitsByPatternsContext(cctx, nil, patterns)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("listing units: %w", err)
	}
	var out []UnitState
	for _, f := range files {
		out = append(out, UnitState{Name: filepath.Base(f.Path), FileState: f.Type})
	}
	for _, u := range loaded {
		if u.LoadState == "not-found" {
			continue
		}
		out = append(out, UnitState{Name: u.Name, ActiveState: u.ActiveState})
	}
	return out, nil
}

// readSupervisor asks one supervisord for its processes, as the driver
// reads them.
func (r *Reader) readSupervisor(ctx context.Context, socket string) ([]supervisor.Process, error) {
	if r.Supervisor == nil {
		return nil, errors.New("no supervisord client")
	}
	cctx, cancel := context.WithTimeout(ctx, r.timeout())
	defer cancel()
	return supervisor.ReadProcesses(cctx, r.Supervisor.For(socket))
}
