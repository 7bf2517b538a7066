package v1

import (
	pathpkg "path"
	"strings"
)

// Reach are what the host's operator lets a revision reach. Whoever can
// push to the followed ref writes the documents; these come from the agent's
// own flags, so a commit cannot widen them. CheckReach refuses a host's
// effective state that needs more, naming the flag that would allow it.
//
// Validation (ValidateDocument, ValidateEffective) already refuses paths
// with ".." and relative paths, so the checks here can compare cleaned
// absolute paths lexically; no I/O happens in this package.
type Reach struct {
	// AllowExecProbes lets ready.exec run its argv on the host, as the
	// agent's user (usually root).
	AllowExecProbes bool
	// DaemontoolsRoots are the folders a daemontools or runit service dir
	// may lie in (any depth below).
	DaemontoolsRoots []string
	// SupervisorSockets are the supervisord sockets a service may talk to:
	// an exact path, or a folder ending in "/" for any socket below it.
	SupervisorSockets []string
	// SecretsDirs are the folders an autoscale urlFile may lie in.
	SecretsDirs []string
}

// The flags that set each limit, named in refusals so the operator knows
// what to change (cmd/reconciler registers them under these names).
const (
	FlagAllowExecProbes   = "--allow-exec-probes"
	FlagDaemontoolsRoot   = "--daemontools-root"
	FlagSupervisorSockets = "--allowed-supervisor-sockets"
	FlagSecretsDir        = "--secrets-dir"
)

// Defaults of the limits: what a stock host has.
var (
	// DefaultDaemontoolsRoots: daemontools' /service and runit's
	// /etc/service (Debian's runit) and /var/service (Void's).
	DefaultDaemontoolsRoots = []string{DefaultDaemontoolsRoot, "/etc/service", "/var/service"}
	// DefaultSupervisorSockets: the socket Debian's supervisord listens on,
	// under both of its names.
	DefaultSupervisorSockets = []string{DefaultSupervisorSocket, "/run/supervisor.sock"}
	DefaultSecretsDirs       = []string{"/etc/reconciler"}
)

// DefaultReach are the limits of an agent started without limit flags.
func DefaultReach() Reach {
	return Reach{
		DaemontoolsRoots:  append([]string(nil), DefaultDaemontoolsRoots...),
		SupervisorSockets: append([]string(nil), DefaultSupervisorSockets...),
		SecretsDirs:       append([]string(nil), DefaultSecretsDirs...),
	}
}

// IsZero reports whether nothing at all is set (not even an empty list).
func (l Reach) IsZero() bool {
	return !l.AllowExecProbes && l.DaemontoolsRoots == nil && l.SupervisorSockets == nil && l.SecretsDirs == nil
}

// CheckReach checks a host's merged and defaulted state against lim. loc
// says where each value came from (see Merge), as for ValidateEffective.
func CheckReach(s *HostSpec, loc func(idx string) Pos, lim Reach) ErrorList {
	e := &errs{loc: loc}
	sp := rootPath(specIdx)
	for i := range s.Services {
		svc := &s.Services[i]
		p := sp.field("services").item(i, svc.Name)
		if pr := svc.Ready; pr != nil && pr.Exec != nil && !lim.AllowExecProbes {
			e.add(p.field("ready").field("exec"), "exec probes are off on this host (they run any command as the agent's user); the agent allows them with %s", FlagAllowExecProbes)
		}
		switch svc.Driver {
		case DriverDaemontools:
			if svc.Dir != "" && !under(svc.Dir, lim.DaemontoolsRoots, false) {
				e.add(p.field("dir"), "%q is not under an allowed service root (%s); the agent allows more roots with %s", svc.Dir, listOrNone(lim.DaemontoolsRoots), FlagDaemontoolsRoot)
			}
		case DriverSupervisor:
			if svc.Socket != "" && !under(svc.Socket, lim.SupervisorSockets, true) {
				e.add(p.field("socket"), "%q is not an allowed supervisord socket (%s); the agent allows more with %s", svc.Socket, listOrNone(lim.SupervisorSockets), FlagSupervisorSockets)
			}
		}
		if a := svc.Autoscale; a != nil && a.AMQP != nil && a.AMQP.URLFile != "" && !under(a.AMQP.URLFile, lim.SecretsDirs, false) {
			e.add(p.field("autoscale").field("amqp").field("urlFile"), "%q is not under a secrets folder (%s); the agent allows more with %s", a.AMQP.URLFile, listOrNone(lim.SecretsDirs), FlagSecretsDir)
		}
	}
	return e.list
}

// under reports whether the absolute path p lies strictly below one of the
// folders in roots (or, with exact, is one of the entries not ending in /).
// Both sides are compared cleaned; validation has refused "..".
func under(p string, roots []string, exact bool) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	c := pathpkg.Clean(p)
	for _, r := range roots {
		if r == "" || !strings.HasPrefix(r, "/") {
			continue
		}
		if exact && !strings.HasSuffix(r, "/") {
			if c == pathpkg.Clean(r) {
				return true
			}
			continue
		}
		rc := pathpkg.Clean(r)
		if rc == "/" || strings.HasPrefix(c, rc+"/") {
			return true
		}
	}
	return false
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}
