package v1

import (
	"sort"
	"strings"
)

// The documents of apiVersion reconciler.dev/v1. Optional scalars are pointers
// so that merging can tell "not said" from "said zero": a Host that says
// `replicas: 0` overrides a Defaults that says 1, and one that says nothing
// keeps it. SetDefaults fills them in one place after merging.

// APIVersion is the only apiVersion this package reads.
const APIVersion = "reconciler.dev/v1"

// The kinds of document.
const (
	KindHost     = "Host"
	KindDefaults = "Defaults"
)

// TypeMeta names the schema of a document.
type TypeMeta struct {
	// APIVersion must be reconciler.dev/v1.
	APIVersion string `json:"apiVersion"`
	// Kind is Host or Defaults.
	Kind string `json:"kind"`
}

// ObjectMeta identifies a document.
type ObjectMeta struct {
	// Name of the document. For a Host it is the host name the document applies
	// to (matched against --host, which defaults to the OS host name).
	Name string `json:"name"`
	// Labels of a Host, matched by the selector of Defaults documents.
	Labels map[string]string `json:"labels,omitempty"`
}

// Host is the desired state of one host.
type Host struct {
	TypeMeta `json:",inline"`
	// Metadata names the host and carries its labels.
	Metadata ObjectMeta `json:"metadata"`
	// Spec is the desired state.
	Spec HostSpec `json:"spec"`
}

// Defaults is desired state merged under every Host it selects, so one commit
// can put a whole group of hosts into maintenance. It selects a host by name
// (spec.hosts globs) and/or by labels (spec.selector); with both, a host must
// match both: a second criterion narrows, it never widens what a commit
// touches.
type Defaults struct {
	TypeMeta `json:",inline"`
	// Metadata names the document; Defaults have no labels of their own.
	Metadata ObjectMeta `json:"metadata"`
	// Spec is the selection plus the desired state to merge.
	Spec DefaultsSpec `json:"spec"`
}

// DefaultsSpec is a HostSpec plus which hosts it applies to.
type DefaultsSpec struct {
	// Hosts are globs on host names (path.Match syntax: *, ?, [a-z]).
	Hosts []string `json:"hosts,omitempty"`
	// Selector selects hosts by the labels of their Host document.
	Selector *LabelSelector `json:"selector,omitempty"`
	HostSpec `json:",inline"`
}

// LabelSelector matches hosts whose labels include every pair of MatchLabels.
type LabelSelector struct {
	// MatchLabels are label pairs a Host must all carry.
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// HostSpec is what a host should run.
type HostSpec struct {
	// Maintenance puts the host into maintenance: `true`, or the long form
	// {enabled, until, reason}. During maintenance, units with maintenance:
	// stop are stopped and disabled first, then services with maintenance:
	// stop go to 0 replicas in reverse dependency order.
	Maintenance *Maintenance `json:"maintenance,omitempty"`
	// Drift is what to do with live state that differs from git: enforce
	// (revert it; the default) or report (only report it). Services and units
	// inherit it unless they say otherwise.
	Drift DriftMode `json:"drift,omitempty"`
	// Services are things with a replica count, on any driver.
	Services []Service `json:"services,omitempty"`
	// Units are systemd units whose enabled/active state is managed.
	Units []Unit `json:"units,omitempty"`
}

// Maintenance is the long form of spec.maintenance. In YAML, `maintenance:
// true` is short for {enabled: true}.
type Maintenance struct {
	// Enabled turns maintenance on.
	Enabled *bool `json:"enabled,omitempty"`
	// Until is when maintenance ends by itself (RFC 3339). After it, the host
	// counts as out of maintenance and the status says the window expired.
	Until *Time `json:"until,omitempty"`
	// Reason is shown in the status, for people.
	Reason string `json:"reason,omitempty"`
}

// DriftMode says whether drift is reverted or only reported.
type DriftMode string

// The drift modes.
const (
	DriftEnforce DriftMode = "enforce"
	DriftReport  DriftMode = "report"
)

// MaintenancePolicy says what maintenance does to a service or unit.
type MaintenancePolicy string

// The maintenance policies.
const (
	MaintenanceStop MaintenancePolicy = "stop"
	MaintenanceKeep MaintenancePolicy = "keep"
)

// Driver names how a service is run.
type Driver string

// The drivers.
const (
	DriverSwarm       Driver = "swarm"
	DriverSystemd     Driver = "systemd"
	DriverCompose     Driver = "compose"
	DriverSupervisor  Driver = "supervisor"
	DriverDaemontools Driver = "daemontools"
)

// Drivers lists every driver, in the order documentation shows them.
var Drivers = []Driver{DriverSwarm, DriverSystemd, DriverCompose, DriverSupervisor, DriverDaemontools}

// Service is something with a replica count. The reconciler owns its replica
// count (and its image, when declared), never the object itself: it does not
// create, redeploy or delete services.
type Service struct {
	// Name of the service. For swarm it is the Swarm service name; for compose
	// the service name inside the project; elsewhere it names the service in
	// plans, status and dependsOn.
	Name string `json:"name"`
	// Driver runs the service: swarm (default), systemd, compose, supervisor
	// or daemontools.
	Driver Driver `json:"driver,omitempty"`
	// Replicas is how many copies should run. daemontools services and plain
	// systemd units take 0 or 1. With autoscale it is the starting count.
	Replicas *int32 `json:"replicas,omitempty"`
	// DependsOn names services that must be ready before this one starts, and
	// that stop only after this one has drained.
	DependsOn []string `json:"dependsOn,omitempty"`
	// Ready is a probe that must pass before the service counts as ready.
	// Without it: every replica running.
	Ready *Probe `json:"ready,omitempty" merge:"replace"`
	// Maintenance says what host maintenance does to this service: stop (go to
	// 0 replicas; the default) or keep (stay as declared).
	Maintenance MaintenancePolicy `json:"maintenance,omitempty"`
	// Drift overrides spec.drift for this service: enforce or report.
	Drift DriftMode `json:"drift,omitempty"`
	// StopTimeout is how long a replica may take to exit on SIGTERM before it
	// is killed, on graceful scale-down (default 10s).
	StopTimeout *Duration `json:"stopTimeout,omitempty"`

	// Image (swarm, compose) is the image the service should run. When set,
	// the reconciler owns the image too; when not, the stack's or compose
	// file's image stays. Compose replicas on another image are recreated on
	// this one, one at a time, each ready before the old one is removed.
	Image string `json:"image,omitempty"`
	// Unit (systemd) is the unit to run: a template such as usm-poller@.service
	// for a count (instances usm-poller@1..N), or a plain unit for 0/1.
	// Default: <name>.service.
	Unit string `json:"unit,omitempty"`
	// Project (compose) is the compose project the service belongs to.
	Project string `json:"project,omitempty"`
	// Program (supervisor) is the supervisord program (group) name, declared
	// with numprocs as the most it may run. Default: the service name.
	// GROUP:PROGRAM names one program of a [group:GROUP] section (as a
	// group selector's members are named): its processes only.
	Program string `json:"program,omitempty"`
	// Socket (supervisor) is supervisord's unix socket (default
	// /var/run/supervisor.sock).
	Socket string `json:"socket,omitempty"`
	// Dir (daemontools) is the service folder supervise watches (default
	// /service/<name>).
	Dir string `json:"dir,omitempty"`
	// Once (daemontools) starts the service once and does not restart it when
	// it exits (svc -o). A once service is a one-shot for triggers: it may
	// have onExit (with on: any) and be run by another's onStart or onExit.
	Once *bool `json:"once,omitempty"`
	// OnNotReady (daemontools) says what to do when a start never becomes
	// ready: down (bring it down again; the default, as svcstart does) or keep.
	OnNotReady string `json:"onNotReady,omitempty"`
	// RestartOn (every driver) is any value, such as a config file's hash:
	// when it changes, what runs of the service is restarted, one replica at
	// a time with readiness between (and only what is up).
	RestartOn string `json:"restartOn,omitempty"`

	// Autoscale sizes the replica count from a RabbitMQ queue, within bounds.
	Autoscale *Autoscale `json:"autoscale,omitempty"`

	// Select makes the entry a selector: instead of one service named by
	// name, it manages every live service it matches, each pass anew, with
	// this entry's settings (replicas, dependsOn, ready, maintenance,
	// drift, stopTimeout, onFailure). The name then names the selector in
	// plans, the status and dependsOn (a service that depends on it depends
	// on everything it matched). A service declared by its own name is
	// never taken by a selector: its own entry wins. Drivers swarm (by
	// namespace, labels, names), compose (project) and supervisor (group).
	Select *ServiceSelector `json:"select,omitempty" merge:"replace"`

	// OnStart names declared services that a pass runs once, in the same
	// pass, right after it started this service and saw it ready.
	OnStart *StartTrigger `json:"onStart,omitempty" merge:"replace"`
	// OnExit names declared services that a pass runs once, in the same
	// pass, when this one-shot service (a systemd Type=oneshot unit, a
	// daemontools service with once, a compose service declared replicas 0,
	// run as a one-off container) that the pass ran has exited, as on says
	// (success by default; daemontools records no exit status, so there
	// only on: any is taken).
	OnExit *ExitTrigger `json:"onExit,omitempty" merge:"replace"`

	// OnFailure is what the agent does while the service is failing (swarm
	// tasks failing over and over, a systemd unit or instance in failed, a
	// supervisord process in FATAL or BACKOFF, a daemontools service
	// crash-looping, a compose container restarting or exited with an
	// error): report (the default: say so in the status and events), or
	// {restart, start}. It never changes the declared replica count. A
	// Host's onFailure replaces a Defaults' one whole.
	OnFailure *FailurePolicy `json:"onFailure,omitempty" merge:"replace"`
}

// ServiceSelector matches live services by what the driver lists: on
// swarm every criterion given must match (namespace, labels and at least one
// of names); compose takes project; supervisor takes group.
type ServiceSelector struct {
	// Namespace (swarm) is a stack's name: services labelled
	// com.docker.stack.namespace=<namespace>, as `docker stack deploy`
	// labels them.
	Namespace string `json:"namespace,omitempty"`
	// Labels (swarm) are label pairs a service must all carry.
	Labels map[string]string `json:"labels,omitempty"`
	// Names (swarm) are globs on service names (path.Match syntax: *, ?,
	// [a-z]); a service matching any of them matches.
	Names []string `json:"names,omitempty"`
	// Project (compose) selects every service of a compose project.
	Project string `json:"project,omitempty"`
	// Group (supervisor) selects every program of a supervisord process
	// group: the programs a [group:NAME] section lists (programs=), or the
	// one program of that name. Each program matched is one service, named
	// after the program (see the supervisor package for how a program is
	// told from its process names).
	Group string `json:"group,omitempty"`
}

// StartTrigger is onStart: the services to run once this one started.
type StartTrigger struct {
	// Start names declared services, run in this order, each after the one
	// before it is ready (or, for a one-shot, has exited).
	Start []string `json:"start"`
}

// ExitTrigger is onExit: the services to run once this one-shot exited.
type ExitTrigger struct {
	// Start names declared services, run in this order, each after the one
	// before it is ready (or, for a one-shot, has exited).
	Start []string `json:"start"`
	// On is which exits fire the trigger: success (exit status 0; the
	// default), failure or any. daemontools services take only any: supervise
	// records no exit status.
	On ExitCondition `json:"on,omitempty"`
}

// ExitCondition says which exits of a one-shot fire its onExit.
type ExitCondition string

// The exit conditions.
const (
	ExitSuccess ExitCondition = "success"
	ExitFailure ExitCondition = "failure"
	ExitAny     ExitCondition = "any"
)

// Matches says whether an exit (succeeded or not) fires the trigger.
func (c ExitCondition) Matches(succeeded bool) bool {
	switch c {
	case ExitAny:
		return true
	case ExitFailure:
		return !succeeded
	}
	return succeeded
}

// FailurePolicy is what the agent does while a service is failing. In YAML,
// `onFailure: report` (the default) only reports the failure; the long form
// {restart, start} acts on it too, and reports as well.
type FailurePolicy struct {
	// Restart restarts what is failing (the failing tasks, units, processes
	// or containers), at most limit times per window; after that it gives up
	// and reports until the window has room again. While a restart policy
	// holds, nothing else in the agent starts the failing objects again.
	Restart *RestartPolicy `json:"restart,omitempty"`
	// Start names other declared services (a standby poller declared with
	// replicas: 0) that count as desired, with at least 1 replica, from the
	// moment this service is seen failing until it runs as declared again.
	// Maintenance still takes them down.
	Start []string `json:"start,omitempty"`
}

// RestartPolicy bounds the restarts of a failing service.
type RestartPolicy struct {
	// Limit is the most restarts within one window (at least 1).
	Limit *int32 `json:"limit"`
	// Window is the sliding window the limit counts restarts in, such as 1m
	// or 1h. The restarts are remembered in the agent's state dir, so a
	// restart of the agent does not reset them.
	Window *Duration `json:"window"`
}

// Probe checks that a service really works. Exactly one of tcp, http and exec.
type Probe struct {
	// TCP is host:port that must accept a connection.
	TCP string `json:"tcp,omitempty"`
	// HTTP is a URL that must answer 2xx or 3xx.
	HTTP string `json:"http,omitempty"`
	// Exec is a command (argv, no shell; use [sh, -c, "..."] for one) run on
	// the host that must exit 0.
	Exec []string `json:"exec,omitempty"`
	// Timeout is how long the probe may keep failing before the start counts as
	// failed (default 60s).
	Timeout *Duration `json:"timeout,omitempty"`
	// Interval is the time between tries (default 1s).
	Interval *Duration `json:"interval,omitempty"`
}

// Autoscale sizes replicas from a queue's backlog:
// clamp(ceil(ready messages / messagesPerReplica), min, max), scaling up at
// once and down only after cooldown, one step of at most maxStepDown at a time.
type Autoscale struct {
	// AMQP says which queue to watch.
	AMQP *AMQPQueue `json:"amqp,omitempty"`
	// Min is the fewest replicas, also while the queue cannot be read.
	Min *int32 `json:"min,omitempty"`
	// Max is the most replicas.
	Max *int32 `json:"max,omitempty"`
	// MessagesPerReplica is the backlog one replica is expected to handle
	// (default 100).
	MessagesPerReplica *int32 `json:"messagesPerReplica,omitempty"`
	// Cooldown is how long the queue must stay below the threshold before a
	// step down, and the least time between steps down (default 5m).
	Cooldown *Duration `json:"cooldown,omitempty"`
	// MaxStepDown is the most replicas removed in one step down (default 1).
	MaxStepDown *int32 `json:"maxStepDown,omitempty"`
}

// AMQPQueue is a RabbitMQ queue read with a passive declare.
type AMQPQueue struct {
	// URLFile is a file on the host holding the AMQP URL (amqp:// or amqps://).
	// Secrets never live in git.
	URLFile string `json:"urlFile,omitempty"`
	// Queue is the queue name, for example usm_poller-sat-7.
	Queue string `json:"queue,omitempty"`
}

// Unit is a systemd unit whose state is managed. A field left out is not
// managed: the reconciler owns fields, not objects.
type Unit struct {
	// Name of the unit, for example abb-factory-proxy-housekeeping.timer.
	Name string `json:"name"`
	// Enabled says whether the unit file is enabled.
	Enabled *bool `json:"enabled,omitempty"`
	// Active says whether the unit is started.
	Active *bool `json:"active,omitempty"`
	// Maintenance says what host maintenance does to the unit: stop (stopped
	// and disabled before services go down, enabled and started after they
	// come back; the default) or keep.
	Maintenance MaintenancePolicy `json:"maintenance,omitempty"`
	// Drift overrides spec.drift for this unit: enforce or report.
	Drift DriftMode `json:"drift,omitempty"`
}

// String says what a selector selects by, for plans and the status:
// "namespace=factory-proxy, names=reference-*".
func (s *ServiceSelector) String() string {
	if s == nil {
		return ""
	}
	var parts []string
	if s.Namespace != "" {
		parts = append(parts, "namespace="+s.Namespace)
	}
	if len(s.Labels) > 0 {
		keys := make([]string, 0, len(s.Labels))
		for k := range s.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			parts = append(parts, "label "+k+"="+s.Labels[k])
		}
	}
	if len(s.Names) > 0 {
		parts = append(parts, "names="+strings.Join(s.Names, "|"))
	}
	if s.Project != "" {
		parts = append(parts, "project="+s.Project)
	}
	if s.Group != "" {
		parts = append(parts, "group="+s.Group)
	}
	return strings.Join(parts, ", ")
}
