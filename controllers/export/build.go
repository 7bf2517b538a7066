// Package export turns what runs on a host into a Host document operators
// can commit as a starting point (`reconciler export`), the way seed 002's
// create_service.py scaffolds a context from what an operator describes.
//
// Read (read.go) gathers the live state in a handful of calls: one Swarm
// ServiceList; two systemd calls (ListUnitFilesByPatterns and
// ListUnitsByPatterns, for timers, template instances and the units --select
// names); one getAllProcessInfo per supervisord socket; the status record
// of every folder under each svscan folder. Build (this file) is pure: it
// writes each object the way the drivers read it back, so that a plan of
// the document finds nothing to change, and says in a note where the live
// state has no exact declaration (instances 2 and 5 of a template: replicas
// 2 would mean instances 1 and 2). Marshal writes it as YAML, sorted, so the
// same live state always gives the same bytes.
package export

import (
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers/daemontools"
	"reconciler.dev/reconciler/controllers/supervisor"
	"reconciler.dev/reconciler/controllers/systemd"
)

// Live is what Read saw on the host.
type Live struct {
	Swarm       []SwarmService
	Units       []UnitState
	Supervisor  []SupervisorSocket
	Daemontools []daemontools.Folder // every service folder under an svscan (or runsvdir) folder
}

// SwarmService is one Swarm service.
type SwarmService struct {
	Name     string
	Replicas *uint64 // nil: not replicated (global, jobs)
	Image    string
}

// UnitState is one systemd unit: its unit file's state (enabled, disabled,
// static...; "" when it has none) and, when loaded, its active state.
type UnitState struct {
	Name        string
	FileState   string
	ActiveState string // "" when not loaded
}

// SupervisorSocket is the processes one supervisord reports.
type SupervisorSocket struct {
	Socket    string
	Processes []supervisor.Process
}

// Options say what to export.
type Options struct {
	// Host is metadata.name.
	Host string
	// Select are globs (path.Match) on names: only objects with a name
	// that matches one are exported; none means everything a kind exports
	// by default. Units other than timers and template instances are
	// exported only when a glob names them.
	Select []string
}

// UnitGlobs returns the globs that name systemd units (they end in a unit
// type: "*.service", "backup.timer"): only these bring units other than
// timers and template instances into the export, so "factory-*" meant for
// Swarm services does not drag in systemd's factory-reset.target.
func UnitGlobs(globs []string) []string {
	var out []string
	for _, g := range globs {
		if v1.HasUnitSuffix(g) {
			out = append(out, g)
		}
	}
	return out
}

// selected says whether an object answering to names passes the globs.
func (o Options) selected(names ...string) bool {
	if len(o.Select) == 0 {
		return true
	}
	for _, g := range o.Select {
		for _, n := range names {
			if ok, _ := path.Match(g, n); ok {
				return true
			}
		}
	}
	return false
}

// cleanName makes a valid service name of an object's name.
func cleanName(name string) string {
	if v1.ValidServiceName(name) {
		return name
	}
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("_.@-", r):
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	s := b.String()
	if s == "" || !v1.ValidServiceName(s) {
		s = "x" + s
	}
	return s
}

// candidate is a service before names are made unique.
type candidate struct {
	svc  v1.Service
	rank int // the driver's place in v1.Drivers: swarm keeps its name
}

func driverRank(d v1.Driver) int {
	for i, x := range v1.Drivers {
		if x == d {
			return i
		}
	}
	return len(v1.Drivers)
}

func i32(n int) *int32 { v := int32(n); return &v }

// Build writes live state as a Host. notes say what could not be declared
// exactly or was left out, one line each, sorted.
func Build(l Live, o Options) (*v1.Host, []string) {
	var notes []string
	note := func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }
	var cands []candidate
	add := func(s v1.Service) { cands = append(cands, candidate{svc: s, rank: driverRank(s.Driver)}) }

	// Swarm: replicas and image (the tag; a pinned digest is the engine's).
	for _, s := range l.Swarm {
		if !o.selected(s.Name) {
			continue
		}
		if s.Replicas == nil {
			note("swarm service %s is not replicated (global or a job): left out", s.Name)
			continue
		}
		img := s.Image
		if i := strings.Index(img, "@"); i >= 0 {
			img = img[:i]
		}
		add(v1.Service{Name: s.Name, Driver: v1.DriverSwarm, Replicas: i32(int(*s.Replicas)), Image: img})
	}

	units, tmpl := buildSystemd(l.Units, o, note)
	for _, s := range tmpl {
		add(s)
	}
	for _, s := range buildSupervisor(l.Supervisor, o, note) {
		add(s)
	}
	for _, s := range buildDaemontools(l.Daemontools, o, note) {
		add(s)
	}

	h := &v1.Host{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindHost}, Metadata: v1.ObjectMeta{Name: o.Host}}
	h.Spec.Services = uniqueNames(cands, note)
	h.Spec.Units = units
	sort.Strings(notes)
	return h, notes
}

// uniqueNames gives every service its own name: on a clash the driver that
// comes first in v1.Drivers keeps it (a Swarm service's name is the object
// itself), the others get "-<driver>" (and a number), with the field that
// names their object written out. Services come out by driver, then name.
func uniqueNames(cands []candidate, note func(string, ...any)) []v1.Service {
	sort.SliceStable(cands, func(i, j int) bool {
		if cands[i].svc.Name != cands[j].svc.Name {
			return cands[i].svc.Name < cands[j].svc.Name
		}
		return cands[i].rank < cands[j].rank
	})
	used := map[string]bool{}
	for i := range cands {
		s := &cands[i].svc
		if !used[s.Name] {
			used[s.Name] = true
			continue
		}
		orig := s.Name
		name := orig + "-" + string(s.Driver)
		for n := 2; used[name]; n++ {
			name = fmt.Sprintf("%s-%s-%d", orig, s.Driver, n)
		}
		switch s.Driver {
		case v1.DriverSupervisor:
			if s.Program == "" {
				s.Program = orig
			}
		case v1.DriverDaemontools:
			if s.Dir == "" {
				s.Dir = filepath.Join(v1.DefaultDaemontoolsRoot, orig)
			}
		}
		s.Name = name
		used[name] = true
		note("%s service %q is named %q here: another service has its name", s.Driver, orig, name)
	}
	sort.SliceStable(cands, func(i, j int) bool {
		if cands[i].rank != cands[j].rank {
			return cands[i].rank < cands[j].rank
		}
		return cands[i].svc.Name < cands[j].svc.Name
	})
	out := make([]v1.Service, 0, len(cands))
	for _, c := range cands {
		out = append(out, c.svc)
	}
	return out
}

// buildSystemd writes timers that are enabled or active, running numbered
// instances of templates as services with a replica count, and, when a
// --select glob that names units (UnitGlobs) matches them, other units
// (enabled and active as they are).
func buildSystemd(states []UnitState, o Options, note func(string, ...any)) ([]v1.Unit, []v1.Service) {
	byName := map[string]UnitState{}
	for _, u := range states {
		prev := byName[u.Name]
		if u.FileState == "" {
			u.FileState = prev.FileState
		}
		if u.ActiveState == "" {
			u.ActiveState = prev.ActiveState
		}
		byName[u.Name] = u
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)

	var units []v1.Unit
	instances := map[string][]int{} // template -> started instance numbers
	for _, n := range names {
		u := byName[n]
		if tmpl, num, ok := systemd.InstanceOf(n); ok {
			if systemd.Started(u.ActiveState) {
				instances[tmpl] = append(instances[tmpl], num)
			}
			continue
		}
		if strings.Contains(n, "@") {
			continue // templates themselves, and instances that are not replicas
		}
		timer := strings.HasSuffix(n, ".timer")
		enabled := systemd.Enabled(u.FileState)
		active := systemd.Started(u.ActiveState)
		if timer && (!(enabled || active) || !o.selected(n)) {
			continue
		}
		if unitGlobs := UnitGlobs(o.Select); !timer && (len(unitGlobs) == 0 || !(Options{Select: unitGlobs}).selected(n)) {
			continue // other units only when a glob naming units names them
		}
		unit := v1.Unit{Name: n, Active: v1.Ptr(active)}
		// Only a unit file that can be enabled or disabled gets the field:
		// static, masked, generated... units are what they are.
		switch u.FileState {
		case "enabled", "enabled-runtime":
			unit.Enabled = v1.Ptr(true)
		case "disabled":
			unit.Enabled = v1.Ptr(false)
		}
		units = append(units, unit)
	}

	var services []v1.Service
	for tmpl, nums := range instances {
		name := strings.TrimSuffix(tmpl[:strings.LastIndex(tmpl, "@")], "-")
		if !o.selected(name, tmpl) {
			continue
		}
		sort.Ints(nums)
		if nums[len(nums)-1] != len(nums) {
			note("systemd template %s runs instances %s: replicas %d means instances 1..%d, so a plan would move them",
				tmpl, joinInts(nums), len(nums), len(nums))
		}
		services = append(services, v1.Service{Name: cleanName(name), Driver: v1.DriverSystemd, Unit: tmpl, Replicas: i32(len(nums))})
	}
	return units, services
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// buildSupervisor writes every program group with the count of its
// processes that run.
func buildSupervisor(socks []SupervisorSocket, o Options, note func(string, ...any)) []v1.Service {
	var out []v1.Service
	for _, sock := range socks {
		groups := map[string][]supervisor.Process{}
		for _, p := range sock.Processes {
			groups[p.Group] = append(groups[p.Group], p)
		}
		for group, ps := range groups {
			name := cleanName(group)
			if !o.selected(name, group) {
				continue
			}
			sort.Slice(ps, func(i, j int) bool {
				a, b := supervisor.ProcessNumber(ps[i].Name), supervisor.ProcessNumber(ps[j].Name)
				if a != b {
					return a < b
				}
				return ps[i].Name < ps[j].Name
			})
			n := 0
			prefix := true
			for i, p := range ps {
				if supervisor.Started(p.State) {
					n++
					if i >= n {
						prefix = false
					}
				}
			}
			if !prefix {
				note("supervisord group %s at %s does not run its first %d processes: replicas %d means those, so a plan would move them",
					group, sock.Socket, n, n)
			}
			s := v1.Service{Name: name, Driver: v1.DriverSupervisor, Replicas: i32(n)}
			if name != group {
				s.Program = group
			}
			if sock.Socket != v1.DefaultSupervisorSocket {
				s.Socket = sock.Socket
			}
			out = append(out, s)
		}
	}
	return out
}

// buildDaemontools writes every supervised service folder: up (1), run
// once (1, once: true) or down (0), as supervise is told to keep it.
func buildDaemontools(svcs []daemontools.Folder, o Options, note func(string, ...any)) []v1.Service {
	var out []v1.Service
	for _, d := range svcs {
		base := filepath.Base(d.Dir)
		name := cleanName(base)
		if !o.selected(name, base, d.Dir) {
			continue
		}
		if !d.Supervised || !d.HasStatus {
			note("daemontools service %s has no supervise running (or no status): left out", d.Dir)
			continue
		}
		st := d.Status
		mode := d.Want()
		s := v1.Service{Name: name, Driver: v1.DriverDaemontools}
		if filepath.Clean(d.Dir) != filepath.Join(v1.DefaultDaemontoolsRoot, name) {
			s.Dir = filepath.Clean(d.Dir)
		}
		switch mode {
		case "up":
			s.Replicas = i32(1)
			if d.DownFile {
				note("daemontools service %s is up with a down file: a plan would remove the down file", d.Dir)
			}
		case "once":
			s.Replicas, s.Once = i32(1), v1.Ptr(true)
			if !d.DownFile {
				note("daemontools service %s runs once without a down file: a plan would write one", d.Dir)
			}
		default:
			s.Replicas = i32(0)
			if !d.DownFile {
				note("daemontools service %s is down without a down file: a plan would write one", d.Dir)
			}
		}
		if st.Paused && st.Running() {
			note("daemontools service %s is paused: a plan would continue it", d.Dir)
		}
		out = append(out, s)
	}
	return out
}
