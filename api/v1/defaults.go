package v1

import "time"

// The defaults, all applied by SetDefaults and nowhere else.
const (
	DefaultStopTimeout        = 10 * time.Second // Docker's own grace period
	DefaultProbeTimeout       = 60 * time.Second
	DefaultProbeInterval      = time.Second
	DefaultMessagesPerReplica = 100
	DefaultCooldown           = 5 * time.Minute
	DefaultMaxStepDown        = 1
	DefaultSupervisorSocket   = "/var/run/supervisor.sock"
	DefaultDaemontoolsRoot    = "/service"
	OnNotReadyDown            = "down"
	OnNotReadyKeep            = "keep"
)

// SetDefaults fills in every field a host's merged spec left out. It is the
// one place defaults live; call it after merging, before validating the
// effective state.
func SetDefaults(s *HostSpec) {
	if s.Drift == "" {
		s.Drift = DriftEnforce
	}
	// Services and units inherit the host's drift mode; an invalid one is
	// reported once, where it was written, not again on every service.
	inherit := s.Drift
	if inherit != DriftEnforce && inherit != DriftReport {
		inherit = ""
	}
	for i := range s.Services {
		setServiceDefaults(&s.Services[i], inherit)
	}
	for i := range s.Units {
		u := &s.Units[i]
		if u.Maintenance == "" {
			u.Maintenance = MaintenanceStop
		}
		if u.Drift == "" {
			u.Drift = inherit
		}
	}
}

func setServiceDefaults(svc *Service, drift DriftMode) {
	if svc.Driver == "" {
		svc.Driver = DriverSwarm
	}
	if svc.Maintenance == "" {
		svc.Maintenance = MaintenanceStop
	}
	if svc.Drift == "" {
		svc.Drift = drift
	}
	if svc.StopTimeout == nil {
		svc.StopTimeout = NewDuration(DefaultStopTimeout)
	}
	if p := svc.Ready; p != nil {
		if p.Timeout == nil {
			p.Timeout = NewDuration(DefaultProbeTimeout)
		}
		if p.Interval == nil {
			p.Interval = NewDuration(DefaultProbeInterval)
		}
	}
	switch svc.Driver {
	case DriverSystemd:
		if svc.Unit == "" {
			svc.Unit = svc.Name + ".service"
		}
	case DriverSupervisor:
		if svc.Program == "" && svc.Select == nil {
			svc.Program = svc.Name
		}
		if svc.Socket == "" {
			svc.Socket = DefaultSupervisorSocket
		}
	case DriverDaemontools:
		if svc.Dir == "" {
			svc.Dir = DefaultDaemontoolsRoot + "/" + svc.Name
		}
		if svc.OnNotReady == "" {
			svc.OnNotReady = OnNotReadyDown
		}
	}
	if a := svc.Autoscale; a != nil {
		if a.MessagesPerReplica == nil {
			a.MessagesPerReplica = Ptr[int32](DefaultMessagesPerReplica)
		}
		if a.Cooldown == nil {
			a.Cooldown = NewDuration(DefaultCooldown)
		}
		if a.MaxStepDown == nil {
			a.MaxStepDown = Ptr[int32](DefaultMaxStepDown)
		}
		if svc.Replicas == nil && a.Min != nil {
			svc.Replicas = Ptr(*a.Min)
		}
	}
}

// IsTemplateUnit reports whether a unit name is a systemd template such as
// usm-poller@.service (an instance has text after the @).
func IsTemplateUnit(name string) bool {
	at := -1
	for i := 0; i < len(name); i++ {
		if name[i] == '@' {
			at = i
		}
	}
	return at >= 0 && at+1 < len(name) && name[at+1] == '.'
}
