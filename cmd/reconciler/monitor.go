package main

import (
	"context"
	"fmt"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers/engine"
	"reconciler.dev/reconciler/controllers/monitor"
	"reconciler.dev/reconciler/controllers/swarm"
	"reconciler.dev/reconciler/controllers/systemd"
)

// newMonitor builds the resource collector on the engine's own clients: the
// Docker client of the swarm driver and the systemd driver's bus
// connection, so the agent keeps one connection to each.
func newMonitor(eng *engine.Engine) *monitor.Collector {
	c := &monitor.Collector{}
	if d, ok := eng.Drivers[v1.DriverSwarm].(*swarm.Driver); ok {
		if api, ok := d.API.(monitor.DockerAPI); ok {
			c.Docker = api
		}
	}
	if d, ok := eng.Drivers[v1.DriverSystemd].(*systemd.Driver); ok {
		c.Systemd = func(ctx context.Context) (monitor.SystemdAPI, error) {
			bus, err := d.Bus(ctx)
			if err != nil {
				return nil, err
			}
			api, ok := bus.(monitor.SystemdAPI)
			if !ok {
				return nil, fmt.Errorf("the systemd connection (%T) cannot read unit properties", bus)
			}
			return api, nil
		}
	}
	return c
}
