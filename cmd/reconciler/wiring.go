package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/docker/docker/client"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/autoscale"
	"reconciler.dev/reconciler/controllers/compose"
	"reconciler.dev/reconciler/controllers/daemontools"
	"reconciler.dev/reconciler/controllers/engine"
	"reconciler.dev/reconciler/controllers/export"
	"reconciler.dev/reconciler/controllers/monitor"
	"reconciler.dev/reconciler/controllers/restarton"
	"reconciler.dev/reconciler/controllers/supervisor"
	"reconciler.dev/reconciler/controllers/swarm"
	"reconciler.dev/reconciler/controllers/systemd"
	"reconciler.dev/reconciler/desired"
)

// wiring is the parts of one reconciler process that reach the host, each
// client made once and handed to every part that reads or changes what it
// reaches: the Docker client to the swarm and compose drivers and the
// monitor, the system bus to the systemd driver, export and the monitor,
// the supervisord clients to the supervisor driver, export and the
// monitor; the AMQP reader to the autoscaler. Clients connect lazily: a host with no Swarm services never
// talks to Docker.
type wiring struct {
	docker      *client.Client
	bus         *systemd.Bus
	supervisors *supervisor.Clients

	amqp       *autoscale.AMQPReader
	autoscaler *autoscale.Autoscaler // on amqp

	swarm      *swarm.Driver
	swarmAPI   *swarm.Client // docker, as the swarm driver and export read services
	systemd    *systemd.Driver
	compose    *compose.Driver
	supervisor *supervisor.Driver
	engine     *engine.Engine
}

// newWiring makes the clients and the drivers on them.
func newWiring() (*wiring, error) {
	docker, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	w := &wiring{docker: docker, bus: &systemd.Bus{}, supervisors: &supervisor.Clients{}, amqp: &autoscale.AMQPReader{}}
	w.autoscaler = autoscale.New(w.amqp)
	w.swarmAPI = swarm.NewClient(docker)
	w.swarm = &swarm.Driver{API: w.swarmAPI, Cluster: w.swarmAPI, Events: swarm.DockerEvents(w.swarmAPI)}
	w.systemd = systemd.New(w.bus)
	w.compose = &compose.Driver{API: docker}
	w.supervisor = supervisor.New(w.supervisors)
	w.engine = &engine.Engine{
		Drivers: map[v1.Driver]controllers.Driver{
			v1.DriverSwarm:       w.swarm,
			v1.DriverSystemd:     w.systemd,
			v1.DriverSupervisor:  w.supervisor,
			v1.DriverCompose:     w.compose,
			v1.DriverDaemontools: &daemontools.Driver{},
		},
	}
	return w, nil
}

// oneShot is what plan and apply share: the revision resolved from the
// source flags, the wiring on the host and the plan of a pass to it, with
// the autoscaler sizing services from their queues as they are now.
type oneShot struct {
	snap *desired.Snapshot
	w    *wiring
	plan *engine.Plan
}

// planOnce resolves the revision and plans one pass on it, with the
// restartOn records in --state-dir. The caller closes the wiring
// (one.w.close) when it is done with it.
func planOnce(ctx context.Context, f *passFlags) (*oneShot, error) {
	snap, err := f.resolve(ctx)
	if err != nil {
		return nil, err
	}
	w, err := newWiring()
	if err != nil {
		return nil, err
	}
	w.setStateDir(f.stateDir)
	w.engine.Sizer = w.autoscaler
	plan, err := w.engine.Plan(ctx, &snap.Effective.Spec)
	if err != nil {
		w.close()
		return nil, err
	}
	return &oneShot{snap: snap, w: w, plan: plan}, nil
}

// setCallTimeout bounds each call of the drivers that talk to a daemon
// (--call-timeout; 0 keeps their default).
func (w *wiring) setCallTimeout(d time.Duration) {
	if d <= 0 {
		return
	}
	w.swarm.CallTimeout = d
	w.compose.CallTimeout = d
	w.systemd.CallTimeout = d
	w.supervisor.CallTimeout = d
}

// defaultStateDir is where the agent keeps its state (run --state-dir);
// apply and plan read and write the restartOn records under it too.
const defaultStateDir = "/var/lib/reconciler"

// setStateDir says where the drivers that cannot keep the last applied
// restartOn value on the live system (supervisor, systemd) keep it:
// DIR/restart-on (see package restarton).
func (w *wiring) setStateDir(dir string) {
	records := &restarton.Store{Dir: filepath.Join(dir, "restart-on")}
	w.supervisor.Records = records
	w.systemd.Records = records
}

// passFlags are the flags of the commands that plan one pass without
// running an agent (apply, plan): the source, and --state-dir for the
// restartOn records.
type passFlags struct {
	sourceFlags
	stateDir string
}

func (f *passFlags) register(fs *pflag.FlagSet) {
	f.sourceFlags.register(fs)
	fs.StringVar(&f.stateDir, "state-dir", defaultStateDir, "where the restartOn values last applied to supervisor and systemd services are kept (as run --state-dir)")
	f.reach.register(fs)
}

// close closes every client.
func (w *wiring) close() {
	w.swarm.Close() // the event streams first: they use the clients
	w.systemd.Close()
	w.docker.Close()
	w.bus.Close()
	w.supervisors.Close()
	w.amqp.Close()
}

// systemdConn is the bus's connection, for readers that need only part
// of it (systemd.API has all they ask for).
func (w *wiring) systemdConn(ctx context.Context) (systemd.API, error) { return w.bus.Conn(ctx) }

// monitor is the resource collector on the drivers' clients.
func (w *wiring) monitor() *monitor.Collector {
	return &monitor.Collector{
		Docker:     w.docker,
		Systemd:    func(ctx context.Context) (monitor.SystemdAPI, error) { return w.systemdConn(ctx) },
		Supervisor: w.supervisors,
	}
}

// exporter is the reader of `reconciler export` on the drivers' clients.
func (w *wiring) exporter() *export.Reader {
	return &export.Reader{
		Docker:     w.swarmAPI,
		Systemd:    func(ctx context.Context) (export.SystemdAPI, error) { return w.systemdConn(ctx) },
		Supervisor: w.supervisors,
	}
}
