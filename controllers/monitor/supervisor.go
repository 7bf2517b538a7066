package monitor

import (
	"context"
	"errors"
	"os"
	"sort"

	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/daemontools"
	"reconciler.dev/reconciler/controllers/supervisor"
)

// SupervisorPIDs returns, by group, the pids of the processes that have one
// (running, starting, stopping), in name order; a group whose processes
// all rest is there with none. It is pure.
func SupervisorPIDs(ps []supervisor.Process) map[string][]int {
	byGroup := map[string][]supervisor.Process{}
	for _, p := range ps {
		if _, ok := byGroup[p.Group]; !ok {
			byGroup[p.Group] = nil
		}
		if p.PID > 0 {
			byGroup[p.Group] = append(byGroup[p.Group], p)
		}
	}
	out := map[string][]int{}
	for g, ps := range byGroup {
		sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
		pids := []int{}
		for _, p := range ps {
			pids = append(pids, p.PID)
		}
		out[g] = pids
	}
	return out
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
		ps, err := supervisor.ReadProcesses(cctx, c.supervisors().For(s))
		cancel()
		if err == nil {
			pidsBySocket[s] = SupervisorPIDs(ps)
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
		dir := daemontools.Dir(t)
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
