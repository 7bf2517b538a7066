package monitor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/daemontools"
	"reconciler.dev/reconciler/controllers/supervisor"
)

// SupervisorCaller is the part of supervisord's XML-RPC client the monitor
// uses; *supervisor.Client implements it.
type SupervisorCaller interface {
	Call(ctx context.Context, method string, params ...any) (any, error)
}

// ParseSupervisorPIDs reads getAllProcessInfo's answer and returns, by
// group, the pids of the processes that have one (running, starting,
// stopping), in name order.
func ParseSupervisorPIDs(v any) (map[string][]int, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("getAllProcessInfo answered a %T, not an array", v)
	}
	type proc struct {
		name string
		pid  int
	}
	byGroup := map[string][]proc{}
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("process %d is a %T, not a struct", i+1, item)
		}
		group, _ := m["group"].(string)
		name, _ := m["name"].(string)
		if group == "" || name == "" {
			return nil, fmt.Errorf("process %d: no name or group", i+1)
		}
		pid, _ := m["pid"].(int64)
		if _, ok := byGroup[group]; !ok {
			byGroup[group] = nil
		}
		if pid > 0 {
			byGroup[group] = append(byGroup[group], proc{name, int(pid)})
		}
	}
	out := map[string][]int{}
	for g, ps := range byGroup {
		sort.Slice(ps, func(i, j int) bool { return ps[i].name < ps[j].name })
		pids := []int{}
		for _, p := range ps {
			pids = append(pids, p.pid)
		}
		out[g] = pids
	}
	return out, nil
}

func (c *Collector) supervisorClient(socket string) SupervisorCaller {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.supervisors[socket]; ok {
		return cl
	}
	if c.supervisors == nil {
		c.supervisors = map[string]SupervisorCaller{}
	}
	var cl SupervisorCaller
	if c.Supervisor != nil {
		cl = c.Supervisor(socket)
	} else {
		cl = supervisor.NewClient(socket)
	}
	c.supervisors[socket] = cl
	return cl
}

// supervisor samples supervisord groups: one getAllProcessInfo per socket.
func (cl *collection) supervisor(ctx context.Context, targets []controllers.Target) map[string]*Resources {
	c := cl.c
	pidsBySocket := map[string]map[string][]int{}
	errBySocket := map[string]error{}
	for _, t := range targets {
		s := t.Service.Socket
		if _, done := pidsBySocket[s]; done || errBySocket[s] != nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, c.timeout())
		cl.call("supervisor-getAllProcessInfo")
		v, err := c.supervisorClient(s).Call(cctx, "supervisor.getAllProcessInfo")
		cancel()
		if err == nil {
			pidsBySocket[s], err = ParseSupervisorPIDs(v)
		}
		if err != nil {
			errBySocket[s] = err
			cl.fail("supervisord at %s: %v", s, err)
		}
	}
	out := map[string]*Resources{}
	for _, t := range targets {
		groups, ok := pidsBySocket[t.Service.Socket]
		if !ok {
			continue
		}
		pids, ok := groups[t.Service.Program]
		if !ok {
			continue // no such program: the plan reports it missing
		}
		r := &Resources{At: cl.now, Replicas: len(pids), PIDs: pids}
		procRead := cl.fromProcs(r, c.proc(), pids)
		r.Source = sourceOf("", procRead)
		out[t.Subject()] = r
	}
	return out
}

// daemontools samples daemontools and runit services: the pid in each
// folder's status record, then /proc. No call at all.
func (cl *collection) daemontools(targets []controllers.Target) map[string]*Resources {
	out := map[string]*Resources{}
	for _, t := range targets {
		dir := t.Service.Dir
		if dir == "" {
			dir = filepath.Join("/service", t.Name)
		}
		cl.mu.Lock()
		cl.reads++
		cl.mu.Unlock()
		st, err := daemontools.ReadStatusFile(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue // no folder or no supervise: the plan says so
		}
		if err != nil {
			cl.fail("%s: %v", dir, err)
			continue
		}
		r := &Resources{At: cl.now}
		if st.Running() {
			r.Replicas, r.PIDs = 1, []int{st.PID}
		}
		procRead := cl.fromProcs(r, cl.c.proc(), r.PIDs)
		r.Source = sourceOf("", procRead)
		out[t.Subject()] = r
	}
	return out
}
