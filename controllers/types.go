package controllers

import (
	"context"
	"fmt"
	"time"

	"reconciler.dev/reconciler/api/names"
	v1 "reconciler.dev/reconciler/api/v1"
)

// ObjectKind is what a target is: a service (a replica count) or a unit.
type ObjectKind string

// The object kinds.
const (
	KindService ObjectKind = "service"
	KindUnit    ObjectKind = "unit"
	// KindSelector is a service entry with select: observed only to learn
	// what it matches (Live.Members), never planned itself. The engine
	// turns each member into a service target of its own.
	KindSelector ObjectKind = "selector"
)

// Member is one live service a selector matched, as its driver listed it.
type Member struct {
	// Name is the service's name on its driver: the Swarm service, the
	// compose service, the supervisord program.
	Name string
	// Started is when the service was started, as the driver knows it
	// (swarm: when the service was created): members start in this order
	// and stop in reverse.
	Started time.Time
	// Live is the member's observation, as Observe returns it for a service
	// declared by name.
	Live Live
}

// Selection is what one selector matched in a pass, for plan and status.
type Selection struct {
	// Name is the selector's entry name.
	Name   string    `json:"name"`
	Driver v1.Driver `json:"driver"`
	// Select says what it selects by: "namespace=factory-proxy".
	Select string `json:"select"`
	// Matched are the services it manages in this pass, in start order.
	Matched []string `json:"matched"`
	// Named are services it matched that an entry of their own declares:
	// that entry's settings win.
	Named []string `json:"named,omitempty"`
}

// Target is the desired state of one object for this pass: the declared
// state with maintenance (and, later, autoscaling) already worked out.
type Target struct {
	Kind    ObjectKind
	Name    string      // the declared name
	Driver  v1.Driver   // which driver owns it (units: systemd)
	Service *v1.Service // set for services; defaulted
	Unit    *v1.Unit    // set for units; defaulted

	Replicas int32 // services: how many should run now
	Enabled  *bool // units: nil when not managed
	Active   *bool // units: nil when not managed

	Mode Mode
	// Note says why Replicas is what it is when git does not fix it:
	// "autoscale: 7 (queue usm_poller-sat-7: 340 ready / 50 per replica)".
	Note string
	// Barrier is set for units whose order is tied to maintenance (policy
	// stop): they go down before every service and come up after them all.
	Barrier bool
	// Failure is what the service's failure policy (onFailure) does in this
	// pass with what is failing of it (Live.Failing); the engine decides it
	// before planning. "" when the service is not failing or no policy
	// applies: it is planned as any other.
	Failure FailureMode
}

// FailureMode says what a pass does with the failing objects of a service
// (the failed units or instances, FATAL processes, exited containers).
type FailureMode string

// The failure modes. With any of them, a pass does not wait out the ready
// timeout of a service it sees failing: it reports the failure at once.
const (
	// FailureReport plans the failing objects as any other (a failed unit
	// declared up is started again) and reports the failure.
	FailureReport FailureMode = "report"
	// FailureRestart restarts the failing objects, as one OpRestart action
	// on the field "failing", and does not start them otherwise.
	FailureRestart FailureMode = "restart"
	// FailureGaveUp leaves the failing objects as they are: the policy
	// reached its restart limit. The rest of the service is planned as usual.
	FailureGaveUp FailureMode = "gave-up"
)

// waitingKey marks the context of an Observe made while a pass waits for
// readiness or drain; see Waiting.
type waitingKey struct{}

// WithWaiting marks ctx as that of an Observe made while waiting.
func WithWaiting(ctx context.Context) context.Context {
	return context.WithValue(ctx, waitingKey{}, true)
}

// Waiting says whether an Observe is made while the engine waits (for
// readiness or a drain) rather than to plan. Only the plan's observation
// decides failures, so while waiting a driver may skip failure detection
// that costs calls for targets whose Failure is "" (swarm's TaskList).
func Waiting(ctx context.Context) bool {
	w, _ := ctx.Value(waitingKey{}).(bool)
	return w
}

// FieldFailing is the field of the action that restarts what is failing.
const FieldFailing = "failing"

// Holds is true when the plan must not start the failing objects itself:
// the failure policy restarts them, or gave up.
func (m FailureMode) Holds() bool { return m == FailureRestart || m == FailureGaveUp }

// Subject names a target in actions, errors and logs: "swarm/factory-proxy",
// "unit/abb-factory-proxy-housekeeping.timer".
func (t Target) Subject() string {
	switch t.Kind {
	case KindUnit:
		return "unit/" + t.Name
	case KindSelector:
		return "select/" + string(t.Driver) + "/" + t.Name
	}
	return string(t.Driver) + "/" + t.Name
}

// Live is what a driver observed of one object. Drivers fill the fields that
// apply to them; Raw carries what only the driver needs (a version index).
type Live struct {
	Exists   bool
	Replicas int32  // services: the live desired count (swarm spec replicas; running instances elsewhere)
	Running  int32  // services: replicas actually running
	Image    string // swarm: the image of the service spec
	Enabled  *bool  // units: unit file enabled
	Active   *bool  // units: active (or activating)
	State    string // a short human state: "2/3 running", "active (waiting)"
	// Details are driver-specific facts for the status ("pid", "uptime",
	// "normally", "restarts"), shown as they are.
	Details map[string]string
	// Failing says why the service is failing, or is "": the driver's own
	// verdict from what it observed anyway (swarm tasks failing over and
	// over, a unit or instance in failed, a supervisord process in FATAL or
	// BACKOFF, a daemontools service crash-looping, a compose container
	// restarting or exited with an error), among the replicas the target
	// wants. Drivers also show it as Details["failing"].
	Failing string
	// Since is since when the object has run, as its driver read it in the
	// observation anyway (zero when it does not run or the driver cannot
	// tell without another call): the earliest of its running replicas.
	Since time.Time
	// ReplicasSince is since when each running replica has run, by the
	// driver's name of it ("web.1", "worker@2.service", "pollers:poller_00"),
	// where known.
	ReplicasSince map[string]time.Time
	// Members are what a selector target matched (KindSelector only).
	Members []Member
	// ConvergedBy is set when this agent only observes the object and
	// another converges it: a swarm service on a manager that is not the
	// Raft leader ("the leader's agent on node-2"), or on a worker. The
	// engine then plans it in mode Observed.
	ConvergedBy string
	Raw         any
}

// Mode says whether an action is carried out or only reported.
type Mode string

// The action modes.
const (
	Enforce    Mode = "enforce"
	ReportOnly Mode = "report-only"
	// Observed: a cluster object another node's agent converges (see
	// Live.ConvergedBy); its differences are reported, never written,
	// and never waited for.
	Observed Mode = names.DriftObserved
)

// Phase says which half of a pass an action belongs to: everything that
// stops or shrinks runs first (down), then everything that starts or grows
// (up).
type Phase string

// The phases of a pass.
const (
	PhaseDown Phase = "down"
	PhaseUp   Phase = "up"
)

// Op is what an action does.
type Op string

// The operations.
const (
	OpScaleUp   Op = "scale-up"
	OpScaleDown Op = "scale-down"
	OpSetImage  Op = "set-image"
	OpStart     Op = "start"
	OpStop      Op = "stop"
	OpEnable    Op = "enable"
	OpDisable   Op = "disable"
	// OpRestart restarts an object that is up because a declared trigger
	// changed (restartOn, on every driver); one that is down is never started
	// by it. On the field "failing" (FieldFailing) it restarts what is
	// failing of a service, for its failure policy.
	OpRestart Op = "restart"
	// OpMissing reports a declared object that does not exist. It is never
	// created: the reconciler owns fields, not objects.
	OpMissing Op = "missing"
	// OpUnsupported reports an object whose live form the driver cannot
	// manage (a global Swarm service has no replica count).
	OpUnsupported Op = "unsupported"
)

// Action is one change to one field of one object. Plans are lists of them,
// computed purely from desired and live state.
type Action struct {
	Subject string     `json:"subject"`
	Kind    ObjectKind `json:"kind"`
	Name    string     `json:"name"`
	Driver  v1.Driver  `json:"driver"`
	Field   string     `json:"field"`
	From    string     `json:"live"`
	To      string     `json:"desired"`
	Op      Op         `json:"action"`
	Mode    Mode       `json:"mode"`
	Phase   Phase      `json:"phase"`
	Stage   int        `json:"stage"`
	Note    string     `json:"note,omitempty"` // why the desired value is what it is (autoscale)
	// Steps are what the driver's Apply carries out for this action, worked
	// out by its Plan from the observation the plan was made of: the
	// containers, processes or units to stop or start, the count to write.
	// So what `plan` shows is what `apply` runs, computed once, and Apply
	// never parses From or To back. They belong to the driver that planned
	// the action; the engine carries them and never looks inside. Actions
	// made outside a driver's Plan (the failure policy's restart) have none.
	Steps any `json:"-"`
}

// Reportable is true for actions that are never carried out.
func (a Action) Reportable() bool {
	return a.Mode == ReportOnly || a.Mode == Observed || a.Op == OpMissing || a.Op == OpUnsupported
}

func (a Action) String() string {
	return fmt.Sprintf("%s %s %s -> %s (%s)", a.Subject, a.Field, a.From, a.To, a.Op)
}

// Health is a driver's verdict on one object against its target.
type Health struct {
	Ready   bool   // up to its target and running (a probe may still be due)
	Drained bool   // nothing runs beyond its target
	Reason  string // why not, for progress and errors: "1/3 running"
}

// Driver is the contract every driver keeps. Observe and Apply do I/O; Plan
// and Health are pure, so they are tested with tables.
type Driver interface {
	// Name is the driver's name, as in the YAML ("swarm").
	Name() v1.Driver
	// Observe reads the live state of the targets in a constant number of
	// calls, whatever their number, keyed by Target.Subject(). An object
	// that does not exist is returned with Exists false.
	Observe(ctx context.Context, targets []Target) (map[string]Live, error)
	// Plan returns the actions that take live to the targets.
	Plan(targets []Target, live map[string]Live) []Action
	// Apply carries out one action. It does not wait for readiness; the
	// engine does, by observing. Errors name the action's subject.
	Apply(ctx context.Context, a Action, t Target, live Live) error
	// Health judges one object against its target.
	Health(t Target, l Live) Health
}

// NotReadyHandler is implemented by drivers that act when an object they
// started never becomes ready: daemontools brings it down again, as the
// runbook's svcstart does (onNotReady: down).
type NotReadyHandler interface {
	// NotReady acts on the failed start and says what it did ("brought
	// down again (onNotReady: down)"), for the error the pass reports.
	NotReady(ctx context.Context, t Target, cause error) (did string, err error)
}

// Runner is implemented by drivers that can run a service once, as the
// triggers onStart and onExit do: systemd (a plain unit), daemontools (a
// once service: svc -o) and compose (a one-off container, as
// `docker-compose run` makes).
type Runner interface {
	// Run starts the service's object once and returns when it has
	// started, or, for a one-shot (Type=oneshot, a daemontools once
	// service, a compose one-off), when it has exited.
	// An error says it could not be started at all; a one-shot that ran
	// and failed is a RunResult with Succeeded false.
	Run(ctx context.Context, t Target) (RunResult, error)
}

// RunResult is what one run of a service did.
type RunResult struct {
	// Exited is true for a one-shot that ran to its end.
	Exited bool
	// Succeeded is true when it exited with status 0 (or, not being a
	// one-shot, started). daemontools and runit record no exit status: a
	// once run there that ended counts as succeeded (its Detail says the
	// status was not recorded), which is why validation takes only
	// onExit on: any for them.
	Succeeded bool
	// Detail says what happened, for people: "exited 0 (success)".
	Detail string
}

// TriggerRun is one service run by a trigger in a pass: the pass record
// and the events list each, in order.
type TriggerRun struct {
	// Step is the run's place in the pass, from 1.
	Step    int    `json:"step"`
	Subject string `json:"subject"`
	Name    string `json:"name"`
	// By says which trigger of which service ran it: "onExit of task-a
	// (success)".
	By string `json:"by"`
	// Outcome is what the run did ("exited 0 (success)"), or why it
	// failed.
	Outcome   string    `json:"outcome"`
	Succeeded bool      `json:"succeeded"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
}

// Phase returns the phase of an operation.
func (o Op) Phase() Phase {
	switch o {
	case OpScaleDown, OpStop, OpDisable:
		return PhaseDown
	}
	return PhaseUp
}

// EarliestSince is the earliest of the replicas' start times (zero if none):
// a service's Since from its ReplicasSince.
func EarliestSince(replicas map[string]time.Time) time.Time {
	var first time.Time
	for _, t := range replicas {
		if !t.IsZero() && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	return first
}
