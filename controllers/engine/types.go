package engine

import (
	"context"
	"log/slog"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/failure"
)

// Engine plans and applies passes across drivers. It holds what lasts
// across passes; what belongs to one pass (its logger, progress, failure
// decisions) travels with the pass's context (WithScope), so one Engine
// serves every pass without being copied or changed.
type Engine struct {
	// Drivers by name. A target whose driver is not here fails the plan.
	Drivers map[v1.Driver]controllers.Driver
	// Concurrency bounds the actions running at once within a stage.
	Concurrency int
	// PollInterval is how often live state is observed while waiting.
	PollInterval time.Duration
	// Sizer, when set, decides the count of services that autoscale.
	Sizer Sizer
	// ReadyTimeout is how long an object without a probe may take to become
	// ready (default 60s); a probe's own timeout covers the probe.
	ReadyTimeout time.Duration
	// DrainSlack is added to the stop timeouts of a scale-down before the
	// wait for it to drain gives up (default 30s).
	DrainSlack time.Duration
	// Now is the clock, for maintenance windows.
	Now func() time.Time
}

// Scope is what belongs to one pass: it is handed to Plan and Apply in the
// context (WithScope), never kept in the Engine.
type Scope struct {
	// Log receives the pass's structured logs; the caller adds the pass id
	// and revision. Drivers get it too (controllers.Logger).
	Log *slog.Logger
	// Progress, when set, is told about every step as it happens.
	Progress func(Event)
	// Failures, when set, carries out the services' failure policies
	// (onFailure) in the plan; see Failures. Without it, failing services
	// are planned as any other.
	Failures Failures
}

type scopeKey struct{}

// WithScope returns ctx carrying the pass-scoped values s; its logger also
// reaches the drivers (controllers.WithLogger).
func WithScope(ctx context.Context, s Scope) context.Context {
	if s.Log != nil {
		ctx = controllers.WithLogger(ctx, s.Log)
	}
	return context.WithValue(ctx, scopeKey{}, s)
}

// scopeOf returns the scope ctx carries, with a logger that discards when
// none was given.
func scopeOf(ctx context.Context) Scope {
	s, _ := ctx.Value(scopeKey{}).(Scope)
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Maintenance is the maintenance state a pass worked with.
type Maintenance = controllers.Maintenance

// Event is one step of a pass, for progress output, logs and event streams.
type Event struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"` // one of the engine's names.Event* types: stage, action, applied, ...
	Stage   int       `json:"stage,omitempty"`
	Subject string    `json:"subject,omitempty"`
	Field   string    `json:"field,omitempty"`
	From    string    `json:"from,omitempty"`
	To      string    `json:"to,omitempty"`
	Message string    `json:"message,omitempty"`
}

// Plan is what a pass would do, computed from one observation.
type Plan struct {
	Maintenance Maintenance                 `json:"maintenance"`
	Targets     []controllers.Target        `json:"-"`
	Live        map[string]controllers.Live `json:"-"`
	// Health is each observed target's health as the plan saw it, by
	// subject (absent for objects that do not exist).
	Health  map[string]controllers.Health `json:"-"`
	Actions []controllers.Action          `json:"actions"`
	Stages  []Stage                       `json:"-"`
	// Selectors are what each selector entry matched in this pass.
	Selectors []controllers.Selection `json:"selectors,omitempty"`
	// Spec is the spec the plan was made of, selectors expanded.
	Spec *v1.HostSpec `json:"-"`
}

// InSync is true when nothing differs, not even report-only drift.
func (p *Plan) InSync() bool { return len(p.Actions) == 0 }

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// Sizer decides replica counts git leaves open (autoscale: bounds only).
type Sizer interface {
	// Size returns the count for an autoscaled service, given what runs
	// now, and a note saying why.
	Size(ctx context.Context, svc *v1.Service, live controllers.Live) (int32, string)
}

// Failures carries out failure policies (controllers/failure keeps their
// memory). A plan asks it twice: which standbys count as desired before
// observing, then what the policies do given what was observed.
type Failures interface {
	// Standbys returns the services raised to at least one replica by
	// failures remembered from earlier passes, and why.
	Standbys() map[string]string
	// Decide is given every declared service as the pass observed it.
	Decide(in []failure.Input) failure.Decision
}
