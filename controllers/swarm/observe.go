package swarm

import (
	"cmp"
	"context"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

// API is the part of the Docker client this driver uses. The real client
// implements it; unit tests of pure logic never need it.
type API interface {
	ListServices(ctx context.Context, options swarm.ServiceListOptions) ([]Service, error)
	ServiceInspectWithRaw(ctx context.Context, serviceID string, opts swarm.ServiceInspectOptions) (swarm.Service, []byte, error)
	ServiceUpdate(ctx context.Context, serviceID string, version swarm.Version, service swarm.ServiceSpec, options swarm.ServiceUpdateOptions) (swarm.ServiceUpdateResponse, error)
	TaskList(ctx context.Context, options swarm.TaskListOptions) ([]swarm.Task, error)
}

// Driver manages Swarm service replicas and images.
type Driver struct {
	API API
	// CallTimeout bounds every Docker API call (default 30s).
	CallTimeout time.Duration
	// Count, when set, is told of every API call ("list", "update",
	// "inspect", "tasks"), for metrics.
	Count controllers.Counter
	// Now is the clock task failures are judged recent against (default
	// time.Now).
	Now controllers.Clock
	// Events opens Docker's event stream (DockerEvents); nil: no stream,
	// waits poll (watch.go).
	Events EventStream

	wmu sync.Mutex
	w   *watch

	// Cluster, when set, tells the driver its node's role in the swarm
	// (cluster.go): on a swarm with several managers only the leader's
	// agent writes services; the others observe them (Live.ConvergedBy),
	// and a worker's agent, which cannot read them, says so. Without it
	// the node counts as the only manager.
	Cluster ClusterAPI

	roles roleCache
}

// nameFilterLimit is the most names sent as list filters; beyond it the
// whole list is cheaper than a huge query string.
const nameFilterLimit = 50

func (d *Driver) timeout() time.Duration { return cmp.Or(d.CallTimeout, 30*time.Second) }

// Observe lists the declared services, with their task counts, in one call.
func (d *Driver) Observe(ctx context.Context, targets []controllers.Target) (map[string]controllers.Live, error) {
	opts := swarm.ServiceListOptions{Status: true}
	named, selectors := controllers.SplitSelectors(targets)
	if len(selectors) == 0 && len(targets) <= nameFilterLimit {
		args := filters.NewArgs()
		for _, t := range targets {
			args.Add("name", t.Name)
		}
		opts.Filters = args
	}
	role, err := d.observeRole(ctx)
	if err != nil {
		return nil, err
	}
	if role.Kind == RoleWorker {
		out := make(map[string]controllers.Live, len(targets))
		for _, t := range targets {
			out[t.Subject()] = controllers.Live{State: "not readable on a worker node", ConvergedBy: role.ConvergedBy(),
				Details: map[string]string{DetailConvergedBy: role.ConvergedBy()}, Raw: unreadable{}}
		}
		return out, nil
	}
	timeout := d.timeout()
	if controllers.Waiting(ctx) {
		// A wait looks again soon anyway: a list that hangs (a dockerd
		// dying mid-request) must not hold it for the whole call timeout.
		timeout = min(timeout, 10*time.Second)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d.Count.Add("list")
	list, err := d.API.ListServices(ctx, opts)
	if err != nil {
		d.roles.forget()
		return nil, fmt.Errorf("listing services: %w", err)
	}
	live := liveFromList(named, list)
	members := selectMembers(selectors, list, live)
	markRollouts(live, d.Now.Time())
	if err := d.observeTasks(ctx, append(named, members...), live, role.Kind == RoleLeader); err != nil {
		d.roles.forget()
		return nil, err
	}
	for _, t := range members {
		// Failures seen of a member go back into its selector's list.
		sel := controllers.Target{Kind: controllers.KindSelector, Name: t.Note, Driver: v1.DriverSwarm}
		sl := live[sel.Subject()]
		for i := range sl.Members {
			if sl.Members[i].Name == t.Name {
				sl.Members[i].Live = live[t.Subject()]
			}
		}
		delete(live, t.Subject())
	}
	if by := role.ConvergedBy(); by != "" {
		for k, l := range live {
			l.ConvergedBy = by
			l.Details = withDetail(l.Details, DetailConvergedBy, by)
			live[k] = l
		}
	}
	return live, nil
}

// stackNamespace is the label `docker stack deploy` puts on the services of
// a stack.
const stackNamespace = "com.docker.stack.namespace"

// selectMembers puts into live, for each selector, the listed services it
// matches, and returns them as targets (Note: the selector's name) so their
// failures are looked at as those of services declared by name. Those a
// target declares by name are matched too: the engine tells them apart.
func selectMembers(selectors []controllers.Target, list []Service, live map[string]controllers.Live) []controllers.Target {
	var members []controllers.Target
	for _, sel := range selectors {
		l := controllers.Live{Exists: true, Members: []controllers.Member{}}
		for i := range list {
			s := &list[i]
			if !Matches(sel.Service.Select, s) {
				continue
			}
			ml := liveOf(s)
			l.Members = append(l.Members, controllers.Member{Name: s.Spec.Name, Started: s.CreatedAt, Live: ml})
			mt := controllers.Target{Kind: controllers.KindService, Name: s.Spec.Name, Driver: v1.DriverSwarm, Note: sel.Name}
			if _, declared := live[mt.Subject()]; !declared {
				live[mt.Subject()] = ml
				members = append(members, mt)
			}
		}
		l.State = fmt.Sprintf("%d matched", len(l.Members))
		live[sel.Subject()] = l
	}
	return members
}

// Matches says whether a Swarm service is selected: it carries the
// namespace and every label asked for, and its name matches one of the
// globs, of those criteria that are given.
func Matches(sel *v1.ServiceSelector, s *Service) bool {
	if sel == nil {
		return false
	}
	labels := s.Spec.Labels
	if sel.Namespace != "" && labels[stackNamespace] != sel.Namespace {
		return false
	}
	for k, v := range sel.Labels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	if len(sel.Names) == 0 {
		return true
	}
	for _, g := range sel.Names {
		if ok, _ := path.Match(g, s.Spec.Name); ok {
			return true
		}
	}
	return false
}

// Failure detection; see failingOf.
const (
	// recentFailures is how far back a task failure counts.
	recentFailures = 5 * time.Minute
	// failuresToFail is how many recent task failures make a service
	// failing: tasks that fail over and over, not one that died once.
	failuresToFail = 2
	// recentChange is how long after a change of its spec a service's
	// tasks are counted on a swarm of several nodes (see observeTasks).
	recentChange = 2 * time.Minute
)

// observeTasks reads, in one TaskList, the tasks of two kinds of services:
//
//   - those that look unhealthy (fewer tasks running than the spec asks),
//     to record which are failing. A healthy pass makes no such call, nor
//     does waiting for a service to come up, unless its failure policy
//     already holds it (controllers.Waiting);
//   - on a swarm with several nodes (cluster true: the leader's agent),
//     those whose spec changed within recentChange, to count the tasks
//     that really run. The manager's running count leaves out a task as
//     soon as its desired state is shutdown, but its node stops it only
//     once the node's dispatcher hears of it, which after a leader change
//     takes seconds: a drain judged from the count alone would let a
//     dependency go down while its dependents still run.
//
// A TaskList that fails leaves the suspects as listed (the failure policy
// then waits for a pass that can see their tasks), but fails the
// observation when it was to count a changed service's tasks: a drain is
// never judged without them (right after an election such calls fail).
func (d *Driver) observeTasks(ctx context.Context, targets []controllers.Target, live map[string]controllers.Live, cluster bool) error {
	args := filters.NewArgs()
	var suspects, changed []string
	waiting := controllers.Waiting(ctx)
	now := d.Now.Time()
	for _, t := range targets {
		l := live[t.Subject()]
		s, ok := l.Raw.(*Service)
		if !ok || !l.Exists || s.Spec.Mode.Replicated == nil {
			continue
		}
		asked := false
		if cluster && now.Sub(s.UpdatedAt) < recentChange {
			args.Add("service", s.ID)
			changed, asked = append(changed, t.Subject()), true
		}
		if (waiting && t.Failure == "") || l.Replicas == 0 {
			continue
		}
		if l.Running < l.Replicas {
			if !asked {
				args.Add("service", s.ID)
			}
			suspects = append(suspects, t.Subject())
		}
	}
	if len(suspects) == 0 && len(changed) == 0 {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	d.Count.Add("tasks")
	tasks, err := d.API.TaskList(cctx, swarm.TaskListOptions{Filters: args})
	if err != nil {
		if len(changed) > 0 {
			return fmt.Errorf("listing the tasks of services changed lately: %w", err)
		}
		for _, subj := range suspects {
			l := live[subj]
			l.Details = withDetail(l.Details, "tasks", "not read: "+err.Error())
			live[subj] = l
		}
		return nil
	}
	byService := map[string][]swarm.Task{}
	for _, task := range tasks {
		byService[task.ServiceID] = append(byService[task.ServiceID], task)
	}
	for _, subj := range append(changed, suspects...) {
		// Tasks read anyway: their own start times beat the spec's.
		l := live[subj]
		s := l.Raw.(*Service)
		if rs := tasksSince(s, byService[s.ID]); len(rs) > 0 {
			l.ReplicasSince, l.Since = rs, controllers.EarliestSince(rs)
			live[subj] = l
		}
	}
	var unsettled []string
	var nodeList []swarm.Node
	if len(changed) > 0 && d.Cluster != nil {
		// After a leader change the new leader's store knows a node's tasks
		// only once the node's agent has registered with it again: until
		// then its tasks may be stale or gone, so no drain is judged.
		d.Count.Add("nodes")
		nodes, err := d.Cluster.NodeList(cctx, swarm.NodeListOptions{})
		if err != nil {
			return fmt.Errorf("listing the nodes of services changed lately: %w", err)
		}
		unsettled = unsettledNodes(nodes)
		nodeList = nodes
	}
	for _, subj := range changed {
		l := live[subj]
		s := l.Raw.(*Service)
		if len(unsettled) > 0 {
			l.Details = withDetail(l.Details, DetailUnsettled, "not re-registered with the leader: "+strings.Join(unsettled, ", "))
			live[subj] = l
		} else if r := settling(nodeList, s, d.roles.since(), now); len(r) > 0 {
			l.Details = withDetail(l.Details, DetailUnsettled, "registered with the leader within the stop grace period of the change: "+strings.Join(r, ", "))
			live[subj] = l
		}
		n := mayRun(byService[s.ID])
		if n > l.Running {
			l.Details = withDetail(l.Details, "stopping", fmt.Sprintf("%d task(s) still running on their nodes", n-l.Running))
			l.Running = n
			l.State = fmt.Sprintf("%d/%d running", l.Running, l.Replicas)
			live[subj] = l
		}
	}
	for _, subj := range suspects {
		l := live[subj]
		s := l.Raw.(*Service)
		if why := failingOf(s, byService[s.ID], now); why != "" {
			l.Failing = why
			l.Details = withDetail(l.Details, "failing", why)
			live[subj] = l
		}
	}
	return nil
}

// DetailUnsettled names the nodes whose tasks the leader does not know yet
// (see unsettledNodes), or may not know yet (settling); while it is set a
// service is never judged drained.
const DetailUnsettled = "unsettled"

// unsettledNodes is pure: the nodes (host names) whose status is neither
// ready nor down. A new leader marks every node unknown until the node's
// agent registers with it again, and only then hears of its tasks; a node
// that is down has no running tasks, as far as the manager says, and
// neither has a manager that Raft finds unreachable (the old leader whose
// dockerd died stays unknown for half a minute before it is down).
func unsettledNodes(nodes []swarm.Node) []string {
	var out []string
	for _, n := range nodes {
		if m := n.ManagerStatus; m != nil && m.Reachability == swarm.ReachabilityUnreachable {
			continue
		}
		if st := n.Status.State; st != swarm.NodeStateReady && st != swarm.NodeStateDown {
			out = append(out, cmp.Or(n.Description.Hostname, n.ID)+" ("+string(st)+")")
		}
	}
	sort.Strings(out)
	return out
}

// assignLag bounds how long after registering with a leader a node may
// take to act on the assignments the leader sends it (a stop among them):
// 2.1-2.2 s measured on the loaded testbed (a worker's first container
// kill after it became ready again, TestHostsLeaderFailover).
const assignLag = 5 * time.Second

// settling is pure: the ready nodes whose session with the current leader
// is too young for the leader's store to tell whether the service's tasks
// there still run. A node's session began when it last became ready (its
// UpdatedAt: a new leader marks every node unknown as it takes over, ready
// again once the node's agent registered with it), and not before this
// node became the leader (leaderSince: a node list read before the new
// leader's dispatcher marked the nodes shows the old sessions). A young
// session may not have delivered the stop yet, nor the node's reports
// (the store may hold a stale task, or none, for a container still
// stopping): a stop told to the node by the session's start plus
// assignLag, or by the change when it came later, is done within the
// service's stop grace period (dockerd's 10 s when unset). A change made
// once the session had lasted assignLag and the grace period holds nothing
// back: the leader's store then counts the tasks (mayRun).
func settling(nodes []swarm.Node, s *Service, leaderSince, now time.Time) []string {
	grace := 10 * time.Second // dockerd's default
	if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil && cs.StopGracePeriod != nil {
		grace = *cs.StopGracePeriod
	}
	var out []string
	for _, n := range nodes {
		if n.Status.State != swarm.NodeStateReady {
			continue
		}
		session := n.UpdatedAt
		if leaderSince.After(session) {
			session = leaderSince
		}
		if s.UpdatedAt.Sub(session) >= assignLag+grace {
			continue
		}
		told := session.Add(assignLag)
		if s.UpdatedAt.After(told) {
			told = s.UpdatedAt
		}
		if left := grace - now.Sub(told); left > 0 {
			out = append(out, fmt.Sprintf("%s (%s left)", cmp.Or(n.Description.Hostname, n.ID), left.Round(100*time.Millisecond)))
		}
	}
	sort.Strings(out)
	return out
}

// mayRun is pure: how many of a service's tasks may have a container
// running. A task told to stop (desired state past running) counts until
// its node reports it ended, from any state it may have started the
// container in: its node's last report may be lost with the old leader.
func mayRun(tasks []swarm.Task) int32 {
	n := int32(0)
	for _, t := range tasks {
		switch {
		case t.Status.State == swarm.TaskStateRunning:
			n++
		case stopping(t.DesiredState) && startedOrStarting(t.Status.State):
			n++
		}
	}
	return n
}

func stopping(s swarm.TaskState) bool {
	return s == swarm.TaskStateShutdown || s == swarm.TaskStateRemove || s == swarm.TaskStateComplete
}

func startedOrStarting(s swarm.TaskState) bool {
	switch s {
	case swarm.TaskStateAssigned, swarm.TaskStateAccepted, swarm.TaskStatePreparing, swarm.TaskStateReady, swarm.TaskStateStarting:
		return true
	}
	return false
}

// withDetail sets one detail, making the map if needed.
func withDetail(d map[string]string, k, v string) map[string]string {
	if d == nil {
		d = map[string]string{}
	}
	d[k] = v
	return d
}

// failingOf says why a service that runs fewer tasks than it asks for is
// failing, or "": its last update paused on a task failure, or at least
// failuresToFail of its tasks failed (or were rejected) within
// recentFailures. Only tasks of the service's current task spec count (same
// image, same force-update counter): failures of an image since replaced,
// or from before a forced restart, say nothing about the tasks now.
func failingOf(s *Service, tasks []swarm.Task, now time.Time) string {
	if updatePaused(s) {
		return "update paused: " + s.UpdateStatus.Message
	}
	n, last := 0, ""
	var lastAt time.Time
	for _, task := range tasks {
		switch task.Status.State {
		case swarm.TaskStateFailed, swarm.TaskStateRejected:
		default:
			continue
		}
		if !currentSpec(s, task) || now.Sub(task.Status.Timestamp) > recentFailures {
			continue
		}
		n++
		if task.Status.Timestamp.After(lastAt) {
			lastAt = task.Status.Timestamp
			last = task.Status.Err
			if last == "" {
				last = string(task.Status.State)
			}
		}
	}
	if n < failuresToFail {
		return ""
	}
	return fmt.Sprintf("%d tasks failed in the last %s (last: %s)", n, recentFailures, last)
}

// currentSpec is true for a task made from the service's current task spec.
func currentSpec(s *Service, task swarm.Task) bool {
	if task.Spec.ForceUpdate != s.Spec.TaskTemplate.ForceUpdate {
		return false
	}
	cs, tcs := s.Spec.TaskTemplate.ContainerSpec, task.Spec.ContainerSpec
	if cs == nil || tcs == nil {
		return cs == nil && tcs == nil
	}
	return sameImage(tcs.Image, cs.Image)
}

// updatePaused is true when Swarm paused the service's update because a
// task failed (the default update failure action).
func updatePaused(s *Service) bool {
	if s.UpdateStatus == nil {
		return false
	}
	return s.UpdateStatus.State == swarm.UpdateStatePaused || s.UpdateStatus.State == swarm.UpdateStateRollbackPaused
}

// liveFromList pairs declared services with listed ones by exact name (the
// API's name filter matches prefixes).
func liveFromList(targets []controllers.Target, list []Service) map[string]controllers.Live {
	byName := make(map[string]*Service, len(list))
	for i := range list {
		byName[list[i].Spec.Name] = &list[i]
	}
	out := make(map[string]controllers.Live, len(targets))
	for _, t := range targets {
		s, ok := byName[t.Name]
		if !ok {
			out[t.Subject()] = controllers.Live{State: "missing"}
			continue
		}
		out[t.Subject()] = liveOf(s)
	}
	return out
}

func liveOf(s *Service) controllers.Live {
	l := controllers.Live{Exists: true, Raw: s}
	if s.Spec.Mode.Replicated != nil && s.Spec.Mode.Replicated.Replicas != nil {
		l.Replicas = int32(*s.Spec.Mode.Replicated.Replicas)
	}
	if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
		l.Image = cs.Image
	}
	if s.ServiceStatus != nil {
		l.Running = int32(s.ServiceStatus.RunningTasks)
	}
	if l.Running > 0 {
		l.Since = specSince(s)
	}
	l.State = fmt.Sprintf("%d/%d running", l.Running, l.Replicas)
	if updating(s) {
		l.State += ", updating"
	}
	if s.Spec.Mode.Replicated == nil {
		l.State = "not replicated"
	}
	return l
}

// DetailRollout is set while a service's last update replaces its tasks
// but Swarm's updater has not started on it yet (see rolloutPending); while
// it is set the service is not ready.
const DetailRollout = "rollout"

// rolloutStart bounds how long after an update rolloutPending waits for
// Swarm's updater to start (it starts within milliseconds; seconds under
// load). Past it the update is taken to replace nothing: an update that
// also scaled up from zero gives its new tasks the new spec at once, and
// the updater, finding no task to replace, never records a status.
const rolloutStart = 10 * time.Second

// markRollouts sets DetailRollout on the services whose rollout is pending.
func markRollouts(live map[string]controllers.Live, now time.Time) {
	for k, l := range live {
		if s, ok := l.Raw.(*Service); ok && rolloutPending(s, now) {
			l.Details = withDetail(l.Details, DetailRollout, "update not started yet")
			l.State += ", updating"
			live[k] = l
		}
	}
}

// rolloutPending is pure: the service's last update changed what every
// task runs (a forced restart or a new image) and Swarm's updater has not
// started replacing tasks since. Right after such a ServiceUpdate the
// service still counts its old tasks running, and its update status is the
// one of the update before (or none): judged from those alone, a restart
// would be ready before a single task was replaced.
func rolloutPending(s *Service, now time.Time) bool {
	p := s.PreviousSpec
	if p == nil || s.Spec.Mode.Replicated == nil || s.Spec.Mode.Replicated.Replicas == nil || *s.Spec.Mode.Replicated.Replicas == 0 {
		return false
	}
	if now.Sub(s.UpdatedAt) > rolloutStart {
		return false
	}
	cs, pcs := s.Spec.TaskTemplate.ContainerSpec, p.TaskTemplate.ContainerSpec
	replaces := p.TaskTemplate.ForceUpdate != s.Spec.TaskTemplate.ForceUpdate ||
		(cs != nil && pcs != nil && cs.Image != pcs.Image)
	if !replaces {
		return false
	}
	u := s.UpdateStatus
	return u == nil || u.StartedAt == nil || u.StartedAt.Before(s.UpdatedAt)
}

// updating is true while a rolling update is still in progress.
func updating(s *Service) bool {
	if s.UpdateStatus == nil {
		return false
	}
	switch s.UpdateStatus.State {
	case swarm.UpdateStateUpdating, swarm.UpdateStateRollbackStarted:
		return true
	}
	return false
}

// sameImage compares a declared image with the live one. The Docker client
// writes every image into a service spec in familiar, tagged form ("nginx"
// becomes "nginx:latest", "docker.io/library/nginx:1" becomes "nginx:1"), and
// may pin it to a digest ("img:tag@sha256:..."): the tag is what git owns, so
// a declared image without a digest ignores the live one.
func sameImage(live, declared string) bool {
	if live == declared {
		return true
	}
	live, declared = clientImage(live), clientImage(declared)
	if !strings.Contains(declared, "@") {
		if i := strings.Index(live, "@"); i >= 0 {
			live = live[:i]
		}
	}
	return live == declared
}

// clientImage is an image as the Docker client writes it into a service
// spec; a reference that does not parse is left as it is.
func clientImage(image string) string {
	ref, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return image
	}
	return reference.FamiliarString(reference.TagNameOnly(ref))
}

// Name, Plan and Health make a Driver a controllers.Driver: Plan and Health
// are this package's pure functions.
func (d *Driver) Name() v1.Driver { return v1.DriverSwarm }
func (d *Driver) Plan(ts []controllers.Target, l map[string]controllers.Live) []controllers.Action {
	return Plan(ts, l)
}
func (d *Driver) Health(t controllers.Target, l controllers.Live) controllers.Health {
	return Health(t, l)
}

// specSince is since when a service has run its current task spec, from
// the service list alone: when its last update completed, else when it was
// created. UpdatedAt is not used: a scale changes it and restarts nothing.
// A task Swarm restarted since (after a crash) is not seen here: only a
// TaskList tells, and a healthy pass on one node makes none (tasksSince
// serves when the pass reads tasks anyway).
func specSince(s *Service) time.Time {
	if u := s.UpdateStatus; u != nil && u.CompletedAt != nil && u.CompletedAt.After(s.CreatedAt) {
		return u.CompletedAt.UTC()
	}
	return s.CreatedAt.UTC()
}

// tasksSince is since when each running task of the service's current spec
// has run (its status timestamp: when it became running), by task name
// "web.1" (nil when none runs).
func tasksSince(s *Service, tasks []swarm.Task) map[string]time.Time {
	var out map[string]time.Time
	for _, task := range tasks {
		if task.Status.State != swarm.TaskStateRunning || task.Status.Timestamp.IsZero() || !currentSpec(s, task) {
			continue
		}
		if out == nil {
			out = map[string]time.Time{}
		}
		name := s.Spec.Name + "." + strconv.Itoa(task.Slot)
		out[name] = task.Status.Timestamp.UTC()
	}
	return out
}
