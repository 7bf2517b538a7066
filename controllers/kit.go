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
