package v1

import (
	"cmp"
	"fmt"
	"net"
	"net/url"
	pathpkg "path"
	"regexp"
	"slices"
	"strings"
)

// Validation comes in two parts. ValidateDocument checks what one document
// says on its own; ValidateEffective checks a host's merged and defaulted
// state, where a service's bounds, dependencies and driver may come from
// different documents. Both report every problem, positioned where the
// offending value was written.

var (
	// RFC 1123 host names: dot-separated labels of letters, digits and '-'.
	hostLabelRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	// Names of services: what Swarm, systemd and supervisord all accept.
	serviceNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]*$`)
	unitSuffixes  = []string{".service", ".timer", ".socket", ".path", ".target", ".mount", ".automount", ".slice", ".scope", ".swap", ".device"}
)

// ValidateDocument checks one parsed document on its own.
func ValidateDocument(d *Document) ErrorList {
	// A document with errors lost the offending fields: "is required"
	// checks are skipped, so a mistyped field is reported once.
	e := &errs{loc: d.PosOf, partial: d.Invalid}
	meta := rootPath("metadata")
	switch {
	case d.Host != nil:
		if d.Host.Metadata.Name == "" {
			e.add(meta.field("name"), "is required: the host name this document applies to")
		} else if msg := checkHostName(d.Host.Metadata.Name); msg != "" {
			e.add(meta.field("name"), "%s", msg)
		}
	case d.Defaults != nil:
		ds := d.Defaults.Spec
		if d.Defaults.Metadata.Name == "" {
			e.add(meta.field("name"), "is required")
		}
		if len(d.Defaults.Metadata.Labels) > 0 {
			e.add(meta.field("labels"), "Defaults have no labels; select hosts with spec.hosts or spec.selector")
		}
		sp := rootPath("spec")
		if len(ds.Hosts) == 0 && ds.Selector == nil {
			e.add(sp, "selects no host: give spec.hosts (globs on host names) and/or spec.selector")
		}
		for i, g := range ds.Hosts {
			if _, err := pathpkg.Match(g, ""); err != nil || g == "" {
				e.add(sp.field("hosts").item(i, ""), "invalid host glob %q", g)
			}
		}
		if ds.Selector != nil && len(ds.Selector.MatchLabels) == 0 {
			e.add(sp.field("selector"), "matchLabels is empty; to select every host use hosts: [\"*\"]")
		}
	}
	validateLocal(e, d.Spec(), rootPath(specIdx))
	return e.list
}

// ValidHostName says whether name is a valid host name (RFC 1123), as a
// Host's metadata.name must be.
func ValidHostName(name string) bool { return checkHostName(name) == "" }

// ValidServiceName says whether name is what validation accepts as the
// name of a service.
func ValidServiceName(name string) bool { return serviceNameRE.MatchString(name) }

// checkHostName returns why name is not a valid host name, or "".
func checkHostName(name string) string {
	if len(name) > 253 {
		return fmt.Sprintf("host name %q is longer than 253 characters", name)
	}
	for _, label := range strings.Split(name, ".") {
		if !hostLabelRE.MatchString(label) {
			return fmt.Sprintf("%q is not a valid host name (RFC 1123: letters, digits and '-', dot-separated labels of 1-63 characters)", name)
		}
	}
	return ""
}

// checkUniqueName reports the name of item i of list as a duplicate when
// seen has it (with where it was first declared), or records it.
func checkUniqueName(e *errs, seen map[string]int, list path, i int, name, what string) {
	if first, dup := seen[name]; dup && name != "" {
		e.add(list.item(i, name).field("name"), "duplicate %s name %q (first declared at %s)", what, name,
			e.loc(list.item(first, name).idx))
		return
	}
	seen[name] = i
}

// validateLocal checks what needs nothing beyond the spec at hand.
func validateLocal(e *errs, s *HostSpec, sp path) {
	checkDrift(e, s.Drift, sp.field("drift"))
	seen := map[string]int{}
	for i := range s.Services {
		svc := &s.Services[i]
		p := sp.field("services").item(i, svc.Name)
		checkUniqueName(e, seen, sp.field("services"), i, svc.Name, "service")
		validateServiceLocal(e, svc, p)
	}
	seenUnits := map[string]int{}
	for i := range s.Units {
		u := &s.Units[i]
		p := sp.field("units").item(i, u.Name)
		checkUniqueName(e, seenUnits, sp.field("units"), i, u.Name, "unit")
		switch {
		case u.Name == "":
			e.add(p.field("name"), "is required")
		case IsTemplateUnit(u.Name):
			e.add(p.field("name"), "%q is a template unit; declare instances as a service with driver: systemd and replicas", u.Name)
		case !HasUnitSuffix(u.Name):
			e.add(p.field("name"), "%q is not a unit name (want a suffix such as .service or .timer)", u.Name)
		default:
			checkSingleName(e, p.field("name"), "unit", u.Name)
		}
		checkMaintenancePolicy(e, u.Maintenance, p.field("maintenance"))
		checkDrift(e, u.Drift, p.field("drift"))
	}
}

// checkSingleName refuses what would make a name mean more than one
// object, or another place: a unit, program or project name is handed to
// systemd, supervisord or Docker, where "*" and "?" match many and "/" or
// ".." walk elsewhere.
func checkSingleName(e *errs, p path, what, v string) {
	switch {
	case v == "":
	case v == "." || v == ".." || strings.Contains(v, ".."):
		e.add(p, "%q is not a single %s name: it must not contain \"..\"", v, what)
	case strings.ContainsAny(v, "*?[]"):
		e.add(p, "%q is not a single %s name: glob characters (* ? [ ]) match more than one", v, what)
	case strings.ContainsAny(v, "/ \t\n") || hasControl(v):
		e.add(p, "%q is not a single %s name: it must not contain '/', spaces or control characters", v, what)
	}
}

// checkHostPath refuses a path on the host that is relative or walks with
// "." or "..": the agent's limits (CheckReach) compare paths by prefix, so
// /service/../etc must never reach them.
func checkHostPath(e *errs, p path, v string) {
	switch {
	case v == "":
	case !strings.HasPrefix(v, "/"):
		e.add(p, "must be an absolute path, not %q", v)
	case hasDotElement(v):
		e.add(p, "%q must not contain \".\" or \"..\" elements", v)
	case strings.ContainsAny(v, "*?[]") || hasControl(v):
		e.add(p, "%q is not one path: glob characters (* ? [ ]) and control characters are not allowed", v)
	}
}

func hasDotElement(v string) bool {
	for _, el := range strings.Split(v, "/") {
		if el == "." || el == ".." {
			return true
		}
	}
	return false
}

func hasControl(v string) bool {
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// HasUnitSuffix says whether name ends in a systemd unit type (".service",
// ".timer", ...) after at least one character: a unit's name, or a glob
// that names units (export's --select).
func HasUnitSuffix(name string) bool {
	for _, s := range unitSuffixes {
		if strings.HasSuffix(name, s) && len(name) > len(s) {
			return true
		}
	}
	return false
}

func validateServiceLocal(e *errs, svc *Service, p path) {
	if svc.Name == "" {
		e.add(p.field("name"), "is required")
	} else if !serviceNameRE.MatchString(svc.Name) {
		e.add(p.field("name"), "%q is not a valid service name (letters, digits, '_', '.', '@' and '-', starting with a letter or digit)", svc.Name)
	}
	if svc.Driver != "" && !slices.Contains(Drivers, svc.Driver) {
		e.add(p.field("driver"), "unknown driver %q (want one of swarm, systemd, compose, supervisor, daemontools)", svc.Driver)
	}
	if svc.Replicas != nil && *svc.Replicas < 0 {
		e.add(p.field("replicas"), "must not be negative (got %d)", *svc.Replicas)
	}
	deps := map[string]bool{}
	for i, d := range svc.DependsOn {
		dp := p.field("dependsOn").item(i, "")
		switch {
		case d == "":
			e.add(dp, "empty service name")
		case d == svc.Name:
			e.add(dp, "service %q depends on itself", d)
		case deps[d]:
			e.add(dp, "%q is listed twice", d)
		}
		deps[d] = true
	}
	if pr := svc.Ready; pr != nil {
		validateProbe(e, pr, p.field("ready"))
	}
	checkMaintenancePolicy(e, svc.Maintenance, p.field("maintenance"))
	checkDrift(e, svc.Drift, p.field("drift"))
	if svc.OnNotReady != "" && svc.OnNotReady != OnNotReadyDown && svc.OnNotReady != OnNotReadyKeep {
		e.add(p.field("onNotReady"), "unknown value %q (want down or keep)", svc.OnNotReady)
	}
	if svc.Unit != "" {
		if !HasUnitSuffix(svc.Unit) {
			e.add(p.field("unit"), "%q is not a unit name (want a suffix such as .service)", svc.Unit)
		} else {
			checkSingleName(e, p.field("unit"), "unit", svc.Unit)
		}
	}
	checkSingleName(e, p.field("program"), "program", svc.Program)
	if g, prog, ok := strings.Cut(svc.Program, ":"); ok && (g == "" || prog == "" || strings.Contains(prog, ":")) {
		e.add(p.field("program"), "%q is neither a program nor GROUP:PROGRAM", svc.Program)
	}
	checkSingleName(e, p.field("project"), "project", svc.Project)
	checkHostPath(e, p.field("dir"), svc.Dir)
	checkHostPath(e, p.field("socket"), svc.Socket)
	if a := svc.Autoscale; a != nil && a.AMQP != nil {
		checkHostPath(e, p.field("autoscale").field("amqp").field("urlFile"), a.AMQP.URLFile)
	}
	if f := svc.OnFailure; f != nil {
		validateFailureLocal(e, svc.Name, f, p.field("onFailure"))
	}
	if sel := svc.Select; sel != nil {
		validateSelectorLocal(e, sel, p.field("select"))
	}
	if tr := svc.OnStart; tr != nil {
		checkStartList(e, svc.Name, tr.Start, p.field("onStart").field("start"), "trigger")
	}
	if tr := svc.OnExit; tr != nil {
		checkStartList(e, svc.Name, tr.Start, p.field("onExit").field("start"), "trigger")
		switch tr.On {
		case "", ExitSuccess, ExitFailure, ExitAny:
		default:
			e.add(p.field("onExit").field("on"), "unknown exit condition %q (want success, failure or any)", tr.On)
		}
	}
	if a := svc.Autoscale; a != nil {
		ap := p.field("autoscale")
		if a.Min != nil && *a.Min < 0 {
			e.add(ap.field("min"), "must not be negative (got %d)", *a.Min)
		}
		if a.Max != nil && *a.Max < 1 {
			e.add(ap.field("max"), "must be at least 1 (got %d)", *a.Max)
		}
		if a.Min != nil && a.Max != nil && *a.Min > *a.Max {
			e.add(ap, "min %d is greater than max %d", *a.Min, *a.Max)
		}
		if a.MessagesPerReplica != nil && *a.MessagesPerReplica < 1 {
			e.add(ap.field("messagesPerReplica"), "must be at least 1 (got %d)", *a.MessagesPerReplica)
		}
		if a.MaxStepDown != nil && *a.MaxStepDown < 1 {
			e.add(ap.field("maxStepDown"), "must be at least 1 (got %d)", *a.MaxStepDown)
		}
	}
}

// validateFailureLocal checks an onFailure policy on its own. It is
// replaced whole when documents merge, so each document's must be complete.
func validateFailureLocal(e *errs, self string, f *FailurePolicy, p path) {
	if r := f.Restart; r != nil {
		rp := p.field("restart")
		if r.Limit == nil {
			if !e.partial {
				e.add(rp, "needs limit (the most restarts per window)")
			}
		} else if *r.Limit < 1 {
			e.add(rp.field("limit"), "must be at least 1 (got %d)", *r.Limit)
		}
		if r.Window == nil {
			if !e.partial {
				e.add(rp, "needs window (a duration such as 1m)")
			}
		} else if r.Window.Duration <= 0 {
			e.add(rp.field("window"), "must be longer than 0")
		}
	}
	checkStartList(e, self, f.Start, p.field("start"), "restart")
}

// checkStartList checks a list of services to start (onFailure, onStart,
// onExit): no empty names, no repeats, not the service itself (instead
// says what to use).
func checkStartList(e *errs, self string, names []string, p path, instead string) {
	if names != nil && len(names) == 0 && instead == "trigger" {
		e.add(p, "names no service to start")
	}
	seen := map[string]bool{}
	for i, name := range names {
		sp := p.item(i, "")
		switch {
		case name == "":
			e.add(sp, "empty service name")
		case name == self && instead == "restart":
			e.add(sp, "service %q cannot start itself; use restart", name)
		case name == self:
			e.add(sp, "service %q cannot trigger itself", name)
		case seen[name]:
			e.add(sp, "%q is listed twice", name)
		}
		seen[name] = true
	}
}

// validateSelectorLocal checks a selector on its own: it selects by
// something, and its globs parse. Which criteria its driver takes is
// checked on the effective state, where the driver is known.
func validateSelectorLocal(e *errs, sel *ServiceSelector, p path) {
	if sel.Namespace == "" && len(sel.Labels) == 0 && len(sel.Names) == 0 && sel.Project == "" && sel.Group == "" {
		e.add(p, "selects nothing: give namespace, labels or names (swarm), project (compose) or group (supervisor)")
	}
	for i, g := range sel.Names {
		if _, err := pathpkg.Match(g, ""); err != nil || g == "" {
			e.add(p.field("names").item(i, ""), "invalid name glob %q", g)
		}
	}
	for k := range sel.Labels {
		if k == "" {
			e.add(p.field("labels"), "empty label key")
		}
	}
	checkSingleName(e, p.field("project"), "project", sel.Project)
	checkSingleName(e, p.field("group"), "group", sel.Group)
	if strings.Contains(sel.Group, ":") {
		e.add(p.field("group"), "%q is not a group name: it must not contain ':'", sel.Group)
	}
}

func validateProbe(e *errs, pr *Probe, p path) {
	n := 0
	if pr.TCP != "" {
		n++
		if _, port, err := net.SplitHostPort(pr.TCP); err != nil || port == "" {
			e.add(p.field("tcp"), "%q is not host:port", pr.TCP)
		}
	}
	if pr.HTTP != "" {
		n++
		if u, err := url.Parse(pr.HTTP); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			e.add(p.field("http"), "%q is not an http:// or https:// URL", pr.HTTP)
		}
	}
	if pr.Exec != nil {
		n++
		if len(pr.Exec) == 0 || pr.Exec[0] == "" {
			e.add(p.field("exec"), "needs a command")
		}
	}
	if n != 1 {
		e.add(p, "needs exactly one of tcp, http and exec (got %d)", n)
	}
}

func checkDrift(e *errs, d DriftMode, p path) {
	if d != "" && d != DriftEnforce && d != DriftReport {
		e.add(p, "unknown drift mode %q (want enforce or report)", d)
	}
}

func checkMaintenancePolicy(e *errs, m MaintenancePolicy, p path) {
	if m != "" && m != MaintenanceStop && m != MaintenanceKeep {
		e.add(p, "unknown maintenance policy %q (want stop or keep)", m)
	}
}

// ValidateEffective checks a host's merged state after SetDefaults. loc says
// where each value came from (see Merge), so errors point at the document
// that wrote the offending value. partial says some merged document had
// errors and lost fields to them: "is required" checks are then skipped, so
// a mistyped field is reported once, where it was written, and not again as
// missing.
func ValidateEffective(s *HostSpec, loc func(idx string) Pos, partial bool) ErrorList {
	e := &errs{loc: loc, partial: partial}
	sp := rootPath(specIdx)
	validateLocal(e, s, sp)
	byName := map[string]*Service{}
	for i := range s.Services {
		byName[s.Services[i].Name] = &s.Services[i]
	}
	owners := map[string]path{} // live object -> who declares it
	claim := func(obj string, p path) {
		if first, dup := owners[obj]; dup {
			e.add(p, "%s is already declared by %s (%s)", obj, first.disp, loc(first.idx))
			return
		}
		owners[obj] = p
	}
	for i := range s.Services {
		svc := &s.Services[i]
		p := sp.field("services").item(i, svc.Name)
		validateServiceEffective(e, svc, p)
		for j, d := range svc.DependsOn {
			if d != "" && byName[d] == nil {
				e.add(p.field("dependsOn").item(j, ""), "unknown service %q", d)
			}
		}
		if f := svc.OnFailure; f != nil {
			for j, d := range f.Start {
				if d != "" && byName[d] == nil {
					e.add(p.field("onFailure").field("start").item(j, ""), "unknown service %q", d)
				}
			}
		}
		for _, tr := range []struct {
			field string
			start []string
		}{{"onStart", triggerList(svc.OnStart)}, {"onExit", exitList(svc.OnExit)}} {
			for j, d := range tr.start {
				tp := p.field(tr.field).field("start").item(j, "")
				switch target := byName[d]; {
				case d == "":
				case target == nil:
					e.add(tp, "unknown service %q", d)
				case target.Select != nil:
					e.add(tp, "%q is a selector; a trigger starts one service", d)
				default:
					if why := target.runProblem(); why != "" {
						e.add(tp, "%q cannot be run by a trigger: %s", d, why)
					}
				}
			}
		}
		if obj := svc.LiveObject(); obj != "" && svc.Select == nil {
			claim(obj, p)
		}
	}
	for i := range s.Units {
		u := &s.Units[i]
		up := sp.field("units").item(i, u.Name)
		claim("systemd unit "+u.Name, up)
		// An instance x@3.service belongs to a service running x@.service.
		if at := strings.LastIndex(u.Name, "@"); at > 0 && !IsTemplateUnit(u.Name) {
			if dot := strings.LastIndex(u.Name, "."); dot > at {
				if owner, ok := owners["systemd unit "+u.Name[:at+1]+u.Name[dot:]]; ok {
					e.add(up, "systemd unit %s is an instance of %s, whose instances %s manages (%s)",
						u.Name, u.Name[:at+1]+u.Name[dot:], owner.disp, loc(owner.idx))
				}
			}
		}
	}
	for _, cyc := range dependencyCycles(s.Services) {
		i := cyc.path[0]
		e.add(sp.field("services").item(i, s.Services[i].Name).field("dependsOn"),
			"dependency cycle: %s", cycleNames(s.Services, cyc))
	}
	// A standby that starts the service it stands in for, when it fails in
	// turn, would keep both up for ever on one failure.
	for _, cyc := range cycles(s.Services, failureStarts) {
		i := cyc.path[0]
		e.add(sp.field("services").item(i, s.Services[i].Name).field("onFailure").field("start"),
			"onFailure start cycle: %s", cycleNames(s.Services, cyc))
	}
	// A trigger that comes back to where it started would run its chain
	// for ever within one pass.
	for _, cyc := range cycles(s.Services, triggerStarts) {
		i := cyc.path[0]
		e.add(sp.field("services").item(i, s.Services[i].Name),
			"trigger cycle (onStart/onExit): %s", cycleNames(s.Services, cyc))
	}
	return e.list
}

func triggerList(t *StartTrigger) []string {
	if t == nil {
		return nil
	}
	return t.Start
}

func exitList(t *ExitTrigger) []string {
	if t == nil {
		return nil
	}
	return t.Start
}

// triggerStarts are the edges of the trigger graph: onStart and onExit.
func triggerStarts(s *Service) []string {
	return append(slices.Clone(triggerList(s.OnStart)), exitList(s.OnExit)...)
}

// maxCycleNames bounds the names one cycle message lists: a ring of
// 10,000 services is reported in a line, not in 100 kB.
const maxCycleNames = 10

// cycleNames writes a cycle of service indexes as "a -> b -> a", the middle
// left out of a long one, and says how many services the strongly
// connected component holds when that is more than the cycle shown.
func cycleNames(svcs []Service, c cycle) string {
	names := make([]string, 0, maxCycleNames+2)
	for k, j := range c.path {
		if len(c.path) > maxCycleNames && k == maxCycleNames-1 {
			names = append(names, fmt.Sprintf("... (%d more)", len(c.path)-maxCycleNames))
			names = append(names, svcs[c.path[len(c.path)-1]].Name)
			break
		}
		names = append(names, svcs[j].Name)
	}
	names = append(names, svcs[c.path[0]].Name)
	out := strings.Join(names, " -> ")
	if c.component > len(c.path) {
		out += fmt.Sprintf(" (one cycle of %d services that all depend on each other)", c.component)
	}
	return out
}

func failureStarts(s *Service) []string {
	if s.OnFailure == nil {
		return nil
	}
	return s.OnFailure.Start
}

// LiveObject names the live object a service manages, so the same object
// declared twice can be caught: "systemd unit usm-poller@.service".
func (s *Service) LiveObject() string {
	switch s.Driver {
	case DriverSwarm, "":
		return "swarm service " + s.Name
	case DriverSystemd:
		return "systemd unit " + s.Unit
	case DriverCompose:
		return "compose service " + s.Project + "/" + s.Name
	case DriverSupervisor:
		return "supervisor program " + s.Socket + ":" + s.Program
	case DriverDaemontools:
		return "daemontools service " + pathpkg.Clean(s.Dir)
	}
	return ""
}

// driverFields says which driver each driver-specific field belongs to.
// restartOn is not among them: it applies to every driver.
var driverFields = []struct {
	name    string
	drivers []Driver
	set     func(*Service) bool
}{
	{"image", []Driver{DriverSwarm, DriverCompose}, func(s *Service) bool { return s.Image != "" }},
	{"unit", []Driver{DriverSystemd}, func(s *Service) bool { return s.Unit != "" }},
	{"project", []Driver{DriverCompose}, func(s *Service) bool { return s.Project != "" }},
	{"program", []Driver{DriverSupervisor}, func(s *Service) bool { return s.Program != "" }},
	{"socket", []Driver{DriverSupervisor}, func(s *Service) bool { return s.Socket != "" }},
	{"dir", []Driver{DriverDaemontools}, func(s *Service) bool { return s.Dir != "" }},
	{"once", []Driver{DriverDaemontools}, func(s *Service) bool { return s.Once != nil }},
	{"onNotReady", []Driver{DriverDaemontools}, func(s *Service) bool { return s.OnNotReady != "" }},
}

// joinDrivers names drivers for a message: "swarm or compose".
func joinDrivers(ds []Driver) string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d)
	}
	return strings.Join(out, " or ")
}

// selectorFields says which selector criteria each driver takes.
var selectorFields = []struct {
	name    string
	drivers []Driver
	set     func(*ServiceSelector) bool
}{
	{"namespace", []Driver{DriverSwarm}, func(s *ServiceSelector) bool { return s.Namespace != "" }},
	{"labels", []Driver{DriverSwarm}, func(s *ServiceSelector) bool { return len(s.Labels) > 0 }},
	{"names", []Driver{DriverSwarm}, func(s *ServiceSelector) bool { return len(s.Names) > 0 }},
	{"project", []Driver{DriverCompose}, func(s *ServiceSelector) bool { return s.Project != "" }},
	{"group", []Driver{DriverSupervisor}, func(s *ServiceSelector) bool { return s.Group != "" }},
}

// notWithSelect are the fields a selector cannot share with every service
// it matches: they name one object, or size one queue's consumers.
var notWithSelect = []struct {
	name string
	set  func(*Service) bool
}{
	{"image", func(s *Service) bool { return s.Image != "" }},
	{"project", func(s *Service) bool { return s.Project != "" }},
	{"program", func(s *Service) bool { return s.Program != "" }},
	{"autoscale", func(s *Service) bool { return s.Autoscale != nil }},
	{"onStart", func(s *Service) bool { return s.OnStart != nil }},
	{"onExit", func(s *Service) bool { return s.OnExit != nil }},
}

func validateSelectorEffective(e *errs, svc *Service, p path) {
	sp := p.field("select")
	switch svc.Driver {
	case DriverSwarm, DriverCompose, DriverSupervisor:
	default:
		if slices.Contains(Drivers, svc.Driver) {
			e.add(sp, "driver %s cannot select services (swarm, compose and supervisor can)", svc.Driver)
		}
		return
	}
	for _, f := range selectorFields {
		if f.set(svc.Select) && !slices.Contains(f.drivers, svc.Driver) {
			e.add(sp.field(f.name), "selects on driver %s, not %s", f.drivers[0], svc.Driver)
		}
	}
	switch {
	case svc.Driver == DriverCompose && svc.Select.Project == "" && !e.partial:
		e.add(sp, "needs project for driver compose (every service of that project)")
	case svc.Driver == DriverSupervisor && svc.Select.Group == "" && !e.partial:
		e.add(sp, "needs group for driver supervisor (every program of that group)")
	}
	for _, f := range notWithSelect {
		if f.set(svc) {
			e.add(p.field(f.name), "cannot be shared by the services a selector matches; declare the service by name")
		}
	}
}

// runProblem says why a trigger cannot run the service once and see it
// end, or "" when it can: a plain systemd unit (Type=oneshot for onExit),
// a daemontools (or runit) service with once: true (svc -o), or a compose
// service declared replicas: 0, which a trigger runs as a one-off
// container, as `docker-compose run` does. A compose service with replicas
// has replicas the plan starts and keeps; running it once would be a
// second thing of the same name, so a one-off task is declared at 0 (a
// missing count is reported as such, not here). An unknown driver is
// reported elsewhere.
func (s *Service) runProblem() string {
	switch s.Driver {
	case DriverSystemd:
		if IsTemplateUnit(s.Unit) {
			return "systemd template " + s.Unit + " runs instances, not one unit once"
		}
	case DriverDaemontools:
		if s.Once == nil || !*s.Once {
			return "a daemontools service runs once (svc -o) only with once: true"
		}
	case DriverCompose:
		if s.Autoscale != nil || s.Replicas != nil && *s.Replicas != 0 {
			return "a compose service runs as a one-off container (docker-compose run) only when declared replicas: 0"
		}
	default:
		if slices.Contains(Drivers, s.Driver) {
			return fmt.Sprintf("driver %s has no one-shot services (triggers run systemd units, daemontools once services and compose one-offs)", s.Driver)
		}
	}
	return ""
}

func validateServiceEffective(e *errs, svc *Service, p path) {
	if svc.Select != nil {
		validateSelectorEffective(e, svc, p)
	}
	if tr := svc.OnExit; tr != nil && svc.Select == nil { // a selector's is refused as shared
		if why := svc.runProblem(); why != "" {
			e.add(p.field("onExit"), "needs a one-shot service: %s", why)
		} else if svc.Driver == DriverDaemontools && (tr.On == "" || tr.On == ExitSuccess || tr.On == ExitFailure) {
			// supervise's status record holds a pid, a time and what it
			// wants, never how the run ended (runit's neither): success
			// and failure cannot be told apart, so only any is honest.
			op := p.field("onExit")
			if tr.On != "" {
				op = op.field("on")
			}
			e.add(op, "daemontools and runit record no exit status of a once service, so onExit cannot tell success from failure: write on: any (got %s)", cmp.Or(string(tr.On), "the default, success"))
		}
	}
	for _, f := range driverFields {
		if f.set(svc) && !slices.Contains(f.drivers, svc.Driver) && slices.Contains(Drivers, svc.Driver) {
			e.add(p.field(f.name), "applies to driver %s, not %s", joinDrivers(f.drivers), svc.Driver)
		}
	}
	a := svc.Autoscale
	if svc.Replicas == nil && a == nil && !e.partial {
		e.add(p, "replicas is required (or autoscale)")
	}
	if a != nil {
		ap := p.field("autoscale")
		if a.AMQP == nil || a.AMQP.URLFile == "" || a.AMQP.Queue == "" {
			if !e.partial {
				e.add(ap.field("amqp"), "needs urlFile and queue")
			}
		}
		if a.Min == nil || a.Max == nil {
			if !e.partial {
				e.add(ap, "needs min and max")
			}
		} else if svc.Replicas != nil && *a.Min <= *a.Max && (*svc.Replicas < *a.Min || *svc.Replicas > *a.Max) {
			e.add(p.field("replicas"), "%d is outside autoscale bounds [%d, %d]", *svc.Replicas, *a.Min, *a.Max)
		}
	}
	most := int32(-1) // the most replicas the driver can run; -1: no limit
	if a != nil && a.Max != nil {
		most = *a.Max
	} else if svc.Replicas != nil {
		most = *svc.Replicas
	}
	switch svc.Driver {
	case DriverSystemd:
		if !IsTemplateUnit(svc.Unit) && most > 1 {
			e.add(p.field("unit"), "%q is not a template unit (name@.service), so it runs at most 1 replica, not %d", svc.Unit, most)
		}
	case DriverDaemontools:
		if most > 1 {
			e.add(p.field("replicas"), "a daemontools service is up (1) or down (0), not %d", most)
		}
	case DriverCompose:
		if svc.Project == "" && svc.Select == nil && !e.partial {
			e.add(p.field("project"), "is required for driver compose")
		}
	}
}

// cycle is one cycle of service indexes, and the size of the strongly
// connected component it was found in.
type cycle struct {
	path      []int
	component int
}

// dependencyCycles returns one dependsOn cycle per strongly connected
// component, starting from the earliest declared service in it.
func dependencyCycles(svcs []Service) []cycle {
	return cycles(svcs, func(s *Service) []string { return s.DependsOn })
}

// cycles returns one cycle per strongly connected component of the edges
// between services (Tarjan's algorithm, iterative: linear in services and
// edges, however they are wired): the shortest cycle through the
// component's earliest declared service, in edge order. Reporting every
// elementary cycle instead can mean exponentially many.
func cycles(svcs []Service, edges func(*Service) []string) []cycle {
	idx := map[string]int{}
	for i, s := range svcs {
		if _, dup := idx[s.Name]; !dup {
			idx[s.Name] = i
		}
	}
	succ := func(i int) []int {
		var out []int
		for _, d := range edges(&svcs[i]) {
			if j, ok := idx[d]; ok && j != i {
				out = append(out, j)
			}
		}
		return out
	}
	n := len(svcs)
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	comp := make([]int, n)
	for i := range index {
		index[i], comp[i] = -1, -1
	}
	var stack []int
	next, ncomp := 0, 0
	type frame struct {
		v    int
		succ []int
		k    int
	}
	var comps [][]int
	for root := 0; root < n; root++ {
		if index[root] >= 0 {
			continue
		}
		call := []frame{{v: root, succ: succ(root)}}
		index[root], low[root] = next, next
		next++
		stack = append(stack, root)
		onStack[root] = true
		for len(call) > 0 {
			f := &call[len(call)-1]
			if f.k < len(f.succ) {
				w := f.succ[f.k]
				f.k++
				if index[w] < 0 {
					index[w], low[w] = next, next
					next++
					stack = append(stack, w)
					onStack[w] = true
					call = append(call, frame{v: w, succ: succ(w)})
				} else if onStack[w] {
					low[f.v] = min(low[f.v], index[w])
				}
				continue
			}
			v := f.v
			call = call[:len(call)-1]
			if len(call) > 0 {
				p := call[len(call)-1].v
				low[p] = min(low[p], low[v])
			}
			if low[v] == index[v] {
				var members []int
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[w] = false
					comp[w] = ncomp
					members = append(members, w)
					if w == v {
						break
					}
				}
				ncomp++
				comps = append(comps, members)
			}
		}
	}
	var out []cycle
	for c, members := range comps {
		if len(members) < 2 {
			continue
		}
		start := slices.Min(members)
		out = append(out, cycle{path: shortestCycle(start, c, comp, succ), component: len(members)})
	}
	slices.SortFunc(out, func(a, b cycle) int { return a.path[0] - b.path[0] })
	return out
}

// shortestCycle finds, breadth first in edge order, the shortest path from
// start back to itself inside component c.
func shortestCycle(start, c int, comp []int, succ func(int) []int) []int {
	prev := map[int]int{start: -1}
	queue := []int{start}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, w := range succ(v) {
			if comp[w] != c {
				continue
			}
			if w == start {
				path := []int{v}
				for p := prev[v]; p >= 0; p = prev[p] {
					path = append(path, p)
				}
				slices.Reverse(path)
				return path
			}
			if _, seen := prev[w]; !seen {
				prev[w] = v
				queue = append(queue, w)
			}
		}
	}
	return []int{start} // not reached: a component of two or more has a cycle through each member
}
