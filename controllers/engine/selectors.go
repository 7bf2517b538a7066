package engine

import (
	"cmp"
	"slices"
	"strings"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

// Selectors: a service entry with select stands for every live service it
// matches. Each pass resolves it anew against the same observation the
// plan is made of (level-based: a service deployed after the commit is
// managed from the next pass on, without a new commit), and turns it into
// plain service entries, so ordering, readiness, maintenance and failure
// policies treat a matched service exactly as one declared by name.

// SelectorTargets returns one KindSelector target per selector entry of
// spec, for the drivers to list what each matches.
func SelectorTargets(spec *v1.HostSpec) []controllers.Target {
	var out []controllers.Target
	for i := range spec.Services {
		svc := &spec.Services[i]
		if svc.Select == nil {
			continue
		}
		out = append(out, controllers.Target{
			Kind: controllers.KindSelector, Name: svc.Name, Driver: svc.Driver, Service: svc, Mode: mode(svc.Drift),
		})
	}
	return out
}

// Expand returns spec with every selector entry replaced by one entry per
// service it matched (in live, under the selector's subject), and what each
// selector matched. It is pure and leaves spec as it is.
//
// A matched service takes the selector's settings and dependsOn. Members
// of one selector start in the order the driver says they were started
// (swarm: creation time; ties by name; one the driver never saw started,
// a zero Started, after those it did), each after the one before it is
// ready, and so stop in reverse: every member depends on the one started
// before it. A service that depends on the selector depends on all its
// members. A matched service that an entry declares by name (same live
// object) is left to that entry, and so is one whose name another entry
// already uses (and, on supervisor, every program of a group an entry
// declares whole).
func Expand(spec *v1.HostSpec, live map[string]controllers.Live) (*v1.HostSpec, []controllers.Selection) {
	out := *spec
	named := map[string]bool{} // live objects and names declared by name
	for i := range spec.Services {
		if svc := &spec.Services[i]; svc.Select == nil {
			named[svc.LiveObject()] = true
			named["name "+svc.Name] = true
		}
	}
	members := map[string][]string{} // selector name -> member names
	var selections []controllers.Selection
	out.Services = make([]v1.Service, 0, len(spec.Services))
	for i := range spec.Services {
		sel := &spec.Services[i]
		if sel.Select == nil {
			continue
		}
		t := controllers.Target{Kind: controllers.KindSelector, Name: sel.Name, Driver: sel.Driver}
		ms := slices.Clone(live[t.Subject()].Members)
		slices.SortStableFunc(ms, func(a, b controllers.Member) int {
			if c := cmp.Compare(boolInt(a.Started.IsZero()), boolInt(b.Started.IsZero())); c != 0 {
				return c // never started: last
			}
			if c := a.Started.Compare(b.Started); c != 0 {
				return c
			}
			return strings.Compare(a.Name, b.Name)
		})
		s := controllers.Selection{Name: sel.Name, Driver: sel.Driver, Select: sel.Select.String(), Matched: []string{}}
		prev, whole := "", wholeGroup(sel)
		for _, m := range ms {
			svc := memberOf(sel, m.Name)
			if named[svc.LiveObject()] || named["name "+svc.Name] || (whole != "" && named[whole]) {
				s.Named = append(s.Named, m.Name)
				continue
			}
			named[svc.LiveObject()], named["name "+svc.Name] = true, true // a second selector does not take it again
			if prev != "" {
				svc.DependsOn = append(svc.DependsOn, prev)
			}
			prev = m.Name
			s.Matched = append(s.Matched, m.Name)
			out.Services = append(out.Services, svc)
		}
		members[sel.Name] = s.Matched
		selections = append(selections, s)
	}
	expanded := out.Services
	out.Services = make([]v1.Service, 0, len(spec.Services)+len(expanded))
	for i := range spec.Services {
		svc := spec.Services[i]
		if svc.Select != nil {
			continue
		}
		svc.DependsOn = withMembers(svc.DependsOn, members)
		out.Services = append(out.Services, svc)
	}
	for _, svc := range expanded {
		svc.DependsOn = withMembers(svc.DependsOn, members)
		out.Services = append(out.Services, svc)
	}
	return &out, selections
}

// memberOf is the entry a selector's member is managed by: the selector's
// settings, the member's identity.
func memberOf(sel *v1.Service, name string) v1.Service {
	svc := *sel
	svc.Name = name
	svc.Select = nil
	svc.DependsOn = slices.Clone(sel.DependsOn)
	switch sel.Driver {
	case v1.DriverCompose:
		svc.Project = sel.Select.Project
	case v1.DriverSupervisor:
		svc.Program = sel.Select.Group + ":" + name
	}
	return svc
}

// wholeGroup is the live object of an entry that declares a supervisor
// selector's whole group (program: GROUP, on the same socket): such an
// entry manages every program of the group already, so the selector takes
// none of them. "" for other drivers.
func wholeGroup(sel *v1.Service) string {
	if sel.Driver != v1.DriverSupervisor {
		return ""
	}
	g := v1.Service{Driver: v1.DriverSupervisor, Socket: sel.Socket, Program: sel.Select.Group}
	return g.LiveObject()
}

// withMembers replaces each selector name in deps by the selector's
// members.
func withMembers(deps []string, members map[string][]string) []string {
	if !slices.ContainsFunc(deps, func(d string) bool { _, ok := members[d]; return ok }) {
		return deps
	}
	out := make([]string, 0, len(deps))
	for _, d := range deps {
		if ms, ok := members[d]; ok {
			out = append(out, ms...)
			continue
		}
		out = append(out, d)
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
