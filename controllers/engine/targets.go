package engine

import (
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

// MaintenanceAt evaluates a spec's maintenance at now.
func MaintenanceAt(spec *v1.HostSpec, now time.Time) Maintenance {
	on, expired := spec.Maintenance.ActiveAt(now)
	m := Maintenance{Active: on, Expired: expired}
	if spec.Maintenance != nil {
		m.Reason = spec.Maintenance.Reason
		if spec.Maintenance.Until != nil {
			u := spec.Maintenance.Until.Time
			m.Until = &u
		}
	}
	return m
}

// Targets works out what every declared object should be in this pass
// (selector entries aside: Expand turns them into entries first),
// maintenance applied: in maintenance, services with policy stop go to 0
// and units with policy stop are stopped and disabled. replicas, when not
// nil, overrides the declared count of a service (autoscaling decisions)
// and says why.
func Targets(spec *v1.HostSpec, m Maintenance, replicas func(svc *v1.Service) (int32, string, bool)) []controllers.Target {
	var out []controllers.Target
	for i := range spec.Services {
		svc := &spec.Services[i]
		if svc.Select != nil {
			continue // resolved by Expand; see SelectorTargets
		}
		n := int32(0)
		if svc.Replicas != nil {
			n = *svc.Replicas
		}
		note := ""
		if replicas != nil {
			if r, why, ok := replicas(svc); ok {
				n, note = r, why
			}
		}
		if m.Active && svc.Maintenance == v1.MaintenanceStop {
			n = 0
			if note != "" {
				note = "maintenance (" + note + ")"
			}
		}
		out = append(out, controllers.Target{
			Kind:     controllers.KindService,
			Name:     svc.Name,
			Driver:   svc.Driver,
			Service:  svc,
			Replicas: n,
			Mode:     mode(svc.Drift),
			Note:     note,
		})
	}
	for i := range spec.Units {
		u := &spec.Units[i]
		t := controllers.Target{
			Kind:    controllers.KindUnit,
			Name:    u.Name,
			Driver:  v1.DriverSystemd,
			Unit:    u,
			Enabled: u.Enabled,
			Active:  u.Active,
			Mode:    mode(u.Drift),
			Barrier: u.Maintenance == v1.MaintenanceStop,
		}
		if m.Active && u.Maintenance == v1.MaintenanceStop {
			t.Enabled, t.Active = v1.Ptr(false), v1.Ptr(false)
		}
		out = append(out, t)
	}
	return out
}

func mode(d v1.DriftMode) controllers.Mode {
	if d == v1.DriftReport {
		return controllers.ReportOnly
	}
	return controllers.Enforce
}
