package controllers

import (
	"strconv"
	"time"
)

// What every driver needs besides the Driver contract, written once.

// Counter is told of every call a driver makes, by verb, for the agent's
// metrics. A nil Counter counts nothing.
type Counter func(verb string)

// Add counts one call of verb.
func (c Counter) Add(verb string) {
	if c != nil {
		c(verb)
	}
}

// Clock is what a driver measures uptimes and ages against; nil is the
// wall clock (time.Now). Tests set a fixed one.
type Clock func() time.Time

// Time is the clock's time now.
func (c Clock) Time() time.Time {
	if c != nil {
		return c()
	}
	return time.Now()
}

// ScaleActions are the replica actions that take a count of now to the
// target in two halves, each only when it has steps: a scale-down that
// stops len(stop) replicas, carrying stop as its Steps, then a scale-up
// that starts len(start), carrying start. base gives every other field.
// Drivers whose live replicas may need both (the wrong ones run) plan with
// it, so the counts shown always add up.
func ScaleActions[S ~[]E, T ~[]F, E, F any](base Action, now int, stop S, start T) []Action {
	var out []Action
	base.Field = "replicas"
	if len(stop) > 0 {
		a := base
		a.Op, a.Steps = OpScaleDown, stop
		a.From, a.To = strconv.Itoa(now), strconv.Itoa(now-len(stop))
		now -= len(stop)
		out = append(out, a)
	}
	if len(start) > 0 {
		a := base
		a.Op, a.Steps = OpScaleUp, start
		a.From, a.To = strconv.Itoa(now), strconv.Itoa(now+len(start))
		out = append(out, a)
	}
	return out
}

// Base is the action on t that a plan fills in: subject, kind, name,
// driver and mode set; field, values and op left to the driver.
func (t Target) Base() Action {
	return Action{Subject: t.Subject(), Kind: t.Kind, Name: t.Name, Driver: t.Driver, Mode: t.Mode}
}

// PlanEach is a plan made target by target, in the targets' order: one
// returns the actions of a target from its live state (the zero Live when
// none was observed) and its Base action. Every driver's Plan is one.
func PlanEach(targets []Target, live map[string]Live, one func(t Target, l Live, base Action) []Action) []Action {
	var out []Action
	for _, t := range targets {
		out = append(out, one(t, live[t.Subject()], t.Base())...)
	}
	return out
}

// Set is a with its field, live and desired values and op set.
func (a Action) Set(field, from, to string, op Op) Action {
	a.Field, a.From, a.To, a.Op = field, from, to, op
	return a
}

// SplitSelectors parts the targets into services named and selectors
// (KindSelector), for a driver that observes both from one list.
func SplitSelectors(targets []Target) (named, selectors []Target) {
	for _, t := range targets {
		if t.Kind == KindSelector {
			selectors = append(selectors, t)
		} else {
			named = append(named, t)
		}
	}
	return named, selectors
}
