package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Scenario 2: N declared swarm services, a commit changes 10% of them
// (replicas 0 <-> 1). The reconciler applies the commit (`reconciler apply`:
// ref lookup, shallow fetch, plan, one ServiceUpdate per changed service,
// wait until they run or drained); the baseline is the runbook scaling the
// same services one by one (hack/bench/runbook-scale.sh). Each pair
// changes the services the other way from the pair before; between A and
// B the bench puts the services back directly (untimed), so both start
// from the same state.

func init() {
	register(2, func(c config) int { return slices.Max(c.sizes2) }, (*bench).scenario2)
}

func (b *bench) scenario2(ctx context.Context) error {
	for _, n := range b.cfg.sizes2 {
		if err := b.scenario2Size(ctx, n); err != nil {
			return fmt.Errorf("%d services: %w", n, err)
		}
	}
	b.note("Scenario 2: the changed services are every 10th declared one; pairs alternate 0→1 and 1→0. ServiceUpdate calls are counted by the Docker proxy in every reconciler run and must equal the changed count. Floor: the changed services' updates fired at once by a minimal client (its reads done before the clock), then the manager's running counts polled every 100 ms until all are at the new figure; each round runs reconciler, floor, runbook from the same state.")
	return nil
}

func (b *bench) scenario2Size(ctx context.Context, n int) error {
	e := b.e
	names := benchServices(n)
	var changed []string
	isChanged := map[int]bool{}
	for i := 0; i < n; i += 10 {
		changed = append(changed, names[i])
		isChanged[i] = true
	}
	repo, err := e.newRepo(fmt.Sprintf("s2-%d", n))
	if err != nil {
		return err
	}
	commit := func(replicas int) error {
		doc := hostDoc("bench-01", names, func(i int) int {
			if isChanged[i] {
				return replicas
			}
			return 0
		}, "")
		return repo.commit("main", fmt.Sprintf("%d services: %d of them to %d", n, len(changed), replicas), map[string]string{"hosts/bench-01.yaml": doc})
	}
	if err := commit(0); err != nil {
		return err
	}
	cache := filepath.Join(e.work, fmt.Sprintf("cache-s2-%d", n))
	if _, err := e.reconciler(ctx, "plan", "--source", repo.httpURL, "--host", "bench-01", "--cache-dir", cache); err != nil {
		return fmt.Errorf("the starting state is not in sync: %w", err)
	}
	state := 0
	var updates []calls
	var cpu, lastWrite sample
	byDirection := map[int]paired{} // target replicas -> the pairs going there
	var fl paired                   // a: the reconciler, b: the floor
	p, err := alternate(b.cfg.pairs,
		func(i int) (float64, error) {
			target := 1 - state
			if err := commit(target); err != nil {
				return 0, err
			}
			e.resetCounts()
			start := time.Now()
			r, err := e.reconciler(ctx, "apply", "--source", repo.httpURL, "--host", "bench-01", "--cache-dir", cache)
			if err != nil {
				return 0, err
			}
			c := e.calls()
			if c.updates != len(changed) || c.dockerWrites != len(changed) {
				return 0, fmt.Errorf("%d ServiceUpdate calls (%d writes in all) for %d changed services: %v", c.updates, c.dockerWrites, len(changed), c.docker)
			}
			updates = append(updates, c)
			cpu = append(cpu, seconds(r.cpu))
			// When the reconciler's own work was done: the last write on
			// the wire; the rest is Docker starting or stopping tasks.
			var last time.Time
			for _, call := range e.dockerP.Log() {
				if call.Key == "POST /services/{id}/update" && call.Time.After(last) {
					last = call.Time
				}
			}
			lastWrite = append(lastWrite, seconds(last.Sub(start)))
			d := byDirection[target]
			d.a = append(d.a, seconds(r.wall))
			byDirection[target] = d
			// Back (not timed), then the floor: every changed service's
			// update at once by a minimal client, awaited until the
			// manager counts them all; then back again where B starts.
			if err := e.scale(ctx, changed, uint64(state)); err != nil {
				return 0, err
			}
			f, err := e.floorScale(ctx, changed, uint64(target))
			if err != nil {
				return 0, err
			}
			fl.a, fl.b = append(fl.a, seconds(r.wall)), append(fl.b, seconds(f))
			return seconds(r.wall), e.scale(ctx, changed, uint64(state))
		},
		func(i int) (float64, error) {
			target := 1 - state
			args := make([]string, len(changed))
			for j, s := range changed {
				args[j] = fmt.Sprintf("%s=%d", s, target)
			}
			r, err := e.run(ctx, nil, filepath.Join(e.root, "hack", "bench", "runbook-scale.sh"), args...)
			if err != nil {
				return 0, err
			}
			want := map[string]int{}
			for _, s := range changed {
				want[s] = target
			}
			if err := e.waitRunning(ctx, want); err != nil {
				return 0, err
			}
			e.logf("  %d services, pair %d (%d→%d): reconciler %.2fs, floor %.2fs, runbook %.1fs", n, i+1, state, target, fl.a[i], fl.b[i], r.wall.Seconds())
			d := byDirection[target]
			d.b = append(d.b, seconds(r.wall))
			byDirection[target] = d
			state = target
			return seconds(r.wall), nil
		})
	if err != nil {
		return err
	}
	// Leave every bench service at 0 for the scenarios after this one.
	if err := e.scale(ctx, changed, 0); err != nil {
		return err
	}
	b.s2[n], b.s2floor[n] = p, fl
	flo, flr := fmtFloor(fl, fmtSeconds)
	m := p.a.median()
	target := "writes = changed: met"
	if n == 200 {
		target = "writes = changed: met; " + verdict(m < 5, "< 5 s", fmt.Sprintf("%.2f s", m))
	}
	target += "; " + floorVerdict(fl)
	var dirs []string
	for _, t := range []int{1, 0} {
		if d := byDirection[t]; len(d.a) > 0 {
			dirs = append(dirs, fmt.Sprintf("%d→%d: %s vs %s (%d pairs)", 1-t, t, sig(d.a.median()), sig(d.b.median()), len(d.a)))
		}
	}
	b.add(row{
		scenario:   fmt.Sprintf("2. %d swarm services, %d changed (0↔1)", n, len(changed)),
		reconciler: fmt.Sprintf("%s; last write after %s; CPU %s", fmtSeconds(p.a), fmtSeconds(lastWrite), fmtSeconds(cpu)),
		floor:      flo,
		floorRatio: flr,
		baseline:   fmtSeconds(p.b),
		ratio:      fmt.Sprintf("%s; by direction, medians in s: %s", fmtRatio(p), strings.Join(dirs, "; ")),
		calls:      describeCalls(updates),
		target:     target,
	})
	return nil
}
