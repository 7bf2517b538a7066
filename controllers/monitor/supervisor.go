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

// SupervisorPIDs returns the pids of the processes a service's program
// field selects (a group, or GROUP:PROGRAM: supervisor.Selects) that have
// one (running, starting, stopping), in name order; ok is false when it
// selects no process at all (a program whose processes all rest has none).
// It is pure.
func SupervisorPIDs(ps []supervisor.Process, program string) (pids []int, ok bool) {
	var sel []supervisor.Process
	for _, p := range ps {
		if supervisor.Selects(program, p) {
			ok = true
			if p.PID > 0 {
				sel = append(sel, p)
			}
		}
	}
	sort.Slice(sel, func(i, j int) bool { return sel[i].Name < sel[j].Name })
	pids = []int{}
	for _, p := range sel {
		pids = append(pids, p.PID)
	}
	return pids, ok
}

// supervisor samples supervisord groups: one getAllProcessInfo per socket.
func (cl *collection) supervisor(ctx context.Context, targets []controllers.Target) map[string]*Resources {
	c := cl.c
	procsBySocket := map[string][]supervisor.Process{}
	errBySocket := map[string]error{}
	for _, t := range targets {
		s := t.Service.Socket
		if _, done := procsBySocket[s]; done || errBySocket[s] != nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, c.timeout())
		cl.call("supervisor-getAllProcessInfo")
		ps, err := supervisor.ReadProcesses(cctx, c.supervisors().For(s))
		cancel()
		if err == nil {
			procsBySocket[s] = ps
		}
		if err != nil {
			errBySocket[s] = err
			cl.fail("supervisord at %s: %v", s, err)
		}
	}
	out := map[string]*Resources{}
	for _, t := range targets {
		ps, ok := procsBySocket[t.Service.Socket]
		if !ok {
			continue
		}
		pids, ok := SupervisorPIDs(ps, t.Service.Program)
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
