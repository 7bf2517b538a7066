package drivertest

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

// Object is the live state of one object a Fake keeps.
type Object struct {
	Exists   bool
	Replicas int32 // services: the count set
	Running  int32 // services: how many run (follows Replicas after Lag looks)
	Enabled  bool  // units
	Active   bool  // units
	// Failing is the driver's verdict (controllers.Live.Failing); a
	// restart of what is failing clears it unless StillFailing is set.
	Failing      string
	StillFailing bool
}

// Fake is an in-memory driver for tests of the engine and the agent: it
// keeps each object's state, plans as the real drivers do (replicas for
// services, enabled and active for units, missing for objects that do not
// exist), carries actions out on that state and records them. It is safe
// for concurrent use, as the engine's stages need.
type Fake struct {
	name v1.Driver
	// Lag is how many looks (Observe calls) a scale takes before the
	// replicas run: 0 runs them at once.
	Lag int

	mu       sync.Mutex
	objs     map[string]*Object
	looks    map[string]int // looks since the last change, by subject
	failOn   map[string]error
	panicOn  map[string]bool
	applied  []controllers.Action
	observes int
}

// New returns an empty Fake named name (the driver of the targets it serves).
func New(name v1.Driver) *Fake {
	return &Fake{name: name, objs: map[string]*Object{}, looks: map[string]int{}, failOn: map[string]error{}, panicOn: map[string]bool{}}
}

// Set puts an object's live state, as someone outside the reconciler would.
func (f *Fake) Set(subject string, o Object) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objs[subject] = &o
	f.looks[subject] = 0
}

// Service sets a service that exists with n replicas running.
func (f *Fake) Service(subject string, n int32) {
	f.Set(subject, Object{Exists: true, Replicas: n, Running: n})
}

// Get returns an object's state (the zero Object when unknown).
func (f *Fake) Get(subject string) Object {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o := f.objs[subject]; o != nil {
		return *o
	}
	return Object{}
}

// FailOn makes every Apply on subject fail with err (nil: succeed again).
func (f *Fake) FailOn(subject string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failOn[subject] = err
}

// PanicOnPlan makes Plan panic when subject is among its targets (Plan runs
// on the caller's goroutine, so a test sees how a panic in a pass is met).
func (f *Fake) PanicOnPlan(subject string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.panicOn[subject] = on
}

// Applied returns the actions sent so far, in order, failed ones included.
func (f *Fake) Applied() []controllers.Action {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]controllers.Action(nil), f.applied...)
}

// Observes returns how many times Observe was called.
func (f *Fake) Observes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.observes
}

// Name implements controllers.Driver.
func (f *Fake) Name() v1.Driver { return f.name }

// Observe implements controllers.Driver.
func (f *Fake) Observe(_ context.Context, ts []controllers.Target) (map[string]controllers.Live, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.observes++
	out := make(map[string]controllers.Live, len(ts))
	for _, t := range ts {
		s := t.Subject()
		o := f.objs[s]
		if o == nil || !o.Exists {
			out[s] = controllers.Live{}
			continue
		}
		if t.Kind == controllers.KindUnit {
			en, ac := o.Enabled, o.Active
			out[s] = controllers.Live{Exists: true, Enabled: &en, Active: &ac, State: fmt.Sprintf("enabled %v, active %v", en, ac), Failing: o.Failing}
			continue
		}
		f.looks[s]++
		if f.looks[s] > f.Lag {
			o.Running = o.Replicas
		}
		out[s] = controllers.Live{Exists: true, Replicas: o.Replicas, Running: o.Running,
			State: fmt.Sprintf("%d/%d running", o.Running, o.Replicas), Failing: o.Failing}
	}
	return out, nil
}

// Plan implements controllers.Driver: one action per field that differs.
func (f *Fake) Plan(ts []controllers.Target, live map[string]controllers.Live) []controllers.Action {
	f.mu.Lock()
	for _, t := range ts {
		if f.panicOn[t.Subject()] {
			f.mu.Unlock()
			panic("drivertest: plan " + t.Subject())
		}
	}
	f.mu.Unlock()
	var out []controllers.Action
	for _, t := range ts {
		l := live[t.Subject()]
		a := controllers.Action{Subject: t.Subject(), Kind: t.Kind, Name: t.Name, Driver: f.name}
		add := func(field, from, to string, op controllers.Op) {
			a.Field, a.From, a.To, a.Op, a.Phase = field, from, to, op, op.Phase()
			out = append(out, a)
		}
		switch {
		case !l.Exists:
			add("exists", "false", "true", controllers.OpMissing)
		case t.Kind == controllers.KindUnit:
			if t.Enabled != nil && *t.Enabled != *l.Enabled {
				add("enabled", strconv.FormatBool(*l.Enabled), strconv.FormatBool(*t.Enabled), pick(*t.Enabled, controllers.OpEnable, controllers.OpDisable))
			}
			if t.Active != nil && *t.Active != *l.Active {
				add("active", strconv.FormatBool(*l.Active), strconv.FormatBool(*t.Active), pick(*t.Active, controllers.OpStart, controllers.OpStop))
			}
		case l.Replicas != t.Replicas:
			add("replicas", fmt.Sprint(l.Replicas), fmt.Sprint(t.Replicas), pick(t.Replicas > l.Replicas, controllers.OpScaleUp, controllers.OpScaleDown))
		}
	}
	return out
}

func pick(cond bool, yes, no controllers.Op) controllers.Op {
	if cond {
		return yes
	}
	return no
}

// Apply implements controllers.Driver on the kept state. Errors name the
// action's subject, as the real drivers' do.
func (f *Fake) Apply(_ context.Context, a controllers.Action, _ controllers.Target, _ controllers.Live) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, a)
	if err := f.failOn[a.Subject]; err != nil {
		return fmt.Errorf("%s: %s: %w", a.Subject, a.Op, err)
	}
	o := f.objs[a.Subject]
	if o == nil {
		return fmt.Errorf("%s: %s: no such object", a.Subject, a.Op)
	}
	switch a.Op {
	case controllers.OpScaleUp, controllers.OpScaleDown:
		n, err := strconv.Atoi(a.To)
		if err != nil {
			return fmt.Errorf("%s: replicas %q: %w", a.Subject, a.To, err)
		}
		o.Replicas = int32(n)
		f.looks[a.Subject] = 0
	case controllers.OpEnable, controllers.OpDisable:
		o.Enabled = a.Op == controllers.OpEnable
	case controllers.OpStart, controllers.OpStop:
		o.Active = a.Op == controllers.OpStart
	case controllers.OpRestart:
		if !o.StillFailing {
			o.Failing = ""
		}
	}
	return nil
}

// Health implements controllers.Driver.
func (f *Fake) Health(t controllers.Target, l controllers.Live) controllers.Health {
	if !l.Exists {
		return controllers.Health{Reason: "missing"}
	}
	if t.Kind == controllers.KindUnit {
		ok := (t.Active == nil || *t.Active == *l.Active) && (t.Enabled == nil || *t.Enabled == *l.Enabled)
		return controllers.Health{Ready: ok, Drained: ok, Reason: l.State}
	}
	return controllers.Health{
		Ready:   l.Replicas == t.Replicas && l.Running == t.Replicas && l.Failing == "",
		Drained: l.Running <= t.Replicas,
		Reason:  fmt.Sprintf("%d/%d running", l.Running, t.Replicas),
	}
}

var _ controllers.Driver = (*Fake)(nil)
