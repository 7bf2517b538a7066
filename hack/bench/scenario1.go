package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"reconciler.dev/reconciler/internal/callcount"
	"reconciler.dev/reconciler/internal/filetree"
)

// Scenario 1: the maintenance flip of examples/factory-proxy (seed 000),
// entering and leaving, `reconciler apply` of the committed state against
// hack/bench/runbook-maintenance.sh, with the same order: the timer stopped
// and disabled first, then factory-proxy and reference-BL, then the broker;
// back up in reverse, the timer last.

const fpTimer = "abb-factory-proxy-housekeeping.timer"

var fpServices = []string{"factory-broker", "factory-proxy", "reference-BL"}

var maintenanceLine = regexp.MustCompile(`(?m)^  maintenance: false$`)

func init() { register(1, nil, (*bench).scenario1) }

func (b *bench) scenario1(ctx context.Context) error {
	e := b.e
	// The e2e tests use the same services and timer: take turns with them.
	unlock, err := e.lock("factory-proxy")
	if err != nil {
		return err
	}
	defer unlock()
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, s := range fpServices {
			_ = e.docker.ServiceRemove(cctx, s)
		}
		_, _ = e.inSystemd(cctx, "systemctl", "disable", "--now", fpTimer)
		_ = e.waitFor(cctx, time.Minute, "factory-proxy containers gone", func() error {
			for _, s := range fpServices {
				cs, err := e.docker.ContainerList(cctx, containerListAll("com.docker.swarm.service.name="+s))
				if err != nil || len(cs) > 0 {
					return fmt.Errorf("%s: %d containers, %v", s, len(cs), err)
				}
			}
			return nil
		})
	}()

	// The stack, as deployed: the three services at 1, the timer on.
	if err := e.createServices(ctx, fpServices, 1); err != nil {
		return err
	}
	if out, err := e.inSystemd(ctx, "systemctl", "enable", "--now", fpTimer); err != nil {
		return fmt.Errorf("enable the timer: %v: %s", err, out)
	}
	if err := b.fpState(ctx, 1); err != nil {
		return err
	}

	// examples/factory-proxy on the git server: main as it is, and the
	// commit of maintenance: true on branch "maintenance".
	repo, err := e.newRepo("fp")
	if err != nil {
		return err
	}
	files, err := filetree.Read(filepath.Join(e.root, "examples", "factory-proxy"))
	if err != nil {
		return err
	}
	if err := repo.commit("main", "factory proxy, as in examples/", files); err != nil {
		return err
	}
	host := files["hosts/fp-01.yaml"]
	if !maintenanceLine.MatchString(host) {
		return fmt.Errorf("examples/factory-proxy/hosts/fp-01.yaml has no `  maintenance: false` line")
	}
	if err := repo.commit("maintenance", "maintenance: true", map[string]string{
		"hosts/fp-01.yaml": maintenanceLine.ReplaceAllString(host, "  maintenance: true"),
	}); err != nil {
		return err
	}
	cache := filepath.Join(e.work, "cache-fp")
	apply := func(ref string) (runResult, calls, error) {
		e.resetCounts()
		r, err := e.reconciler(ctx, "apply", "--source", repo.httpURL, "--ref", ref, "--host", "fp-01", "--cache-dir", cache)
		return r, e.calls(), err
	}
	// Both revisions fetched once, so every timed apply does what an agent
	// does on a poll: one ref lookup, then the pass.
	for _, ref := range []string{"main", "maintenance"} {
		if r, err := e.reconciler(ctx, "plan", "--source", repo.httpURL, "--ref", ref, "--host", "fp-01", "--cache-dir", cache); err != nil && r.code != 2 {
			return err
		}
	}
	runbook := func(verb string) (runResult, error) {
		return e.run(ctx, os.Environ(), filepath.Join(e.root, "hack", "bench", "runbook-maintenance.sh"), verb)
	}

	bus, err := e.floorBus(ctx)
	if err != nil {
		return err
	}
	// The floor: the same stages, each one's services scaled at once by a
	// minimal client and awaited the engine's way; the timer's jobs awaited
	// over D-Bus (floor.go).
	floor := func(up bool) (float64, error) {
		var n uint64
		stages := [][]string{{"factory-proxy", "reference-BL"}, {"factory-broker"}}
		if up {
			n = 1
			stages[0], stages[1] = stages[1], stages[0]
		}
		start := time.Now()
		if !up {
			if err := bus.job(ctx, false, fpTimer); err != nil {
				return 0, err
			}
			if err := bus.enable(ctx, false, fpTimer); err != nil {
				return 0, err
			}
		}
		for _, st := range stages {
			if _, err := e.floorScale(ctx, st, n); err != nil {
				return 0, err
			}
		}
		if up {
			if err := bus.enable(ctx, true, fpTimer); err != nil {
				return 0, err
			}
			if err := bus.job(ctx, true, fpTimer); err != nil {
				return 0, err
			}
		}
		return seconds(time.Since(start)), nil
	}

	var enter, leave, enterFloor, leaveFloor paired
	var enterCalls, leaveCalls []calls
	for i := 0; i < b.cfg.pairs; i++ {
		// A: reconciler, enter then leave: the apply of ref, timed, then
		// the order its stages ran in and the state it left checked.
		reconciler := func(ref, what string, order func() error, replicas int) (float64, calls, error) {
			r, c, err := apply(ref)
			if err == nil {
				err = order()
			}
			if err != nil {
				return 0, c, fmt.Errorf("pair %d, reconciler %s: %w", i+1, what, err)
			}
			return seconds(r.wall), c, b.fpState(ctx, replicas)
		}
		wall, c, err := reconciler("maintenance", "enter", b.checkEnterOrder, 0)
		if err != nil {
			return err
		}
		enter.a, enterCalls = append(enter.a, wall), append(enterCalls, c)
		if wall, c, err = reconciler("main", "leave", b.checkLeaveOrder, 1); err != nil {
			return err
		}
		leave.a, leaveCalls = append(leave.a, wall), append(leaveCalls, c)
		// F: the floor, the same two ways.
		f, err := floor(false)
		if err != nil {
			return fmt.Errorf("pair %d, floor enter: %w", i+1, err)
		}
		if err := b.fpState(ctx, 0); err != nil {
			return err
		}
		enterFloor.a, enterFloor.b = append(enterFloor.a, enter.a[i]), append(enterFloor.b, f)
		if f, err = floor(true); err != nil {
			return fmt.Errorf("pair %d, floor leave: %w", i+1, err)
		}
		if err := b.fpState(ctx, 1); err != nil {
			return err
		}
		leaveFloor.a, leaveFloor.b = append(leaveFloor.a, leave.a[i]), append(leaveFloor.b, f)
		// B: the runbook, the same two ways.
		r, err := runbook("stop")
		if err != nil {
			return fmt.Errorf("pair %d, runbook stop: %w", i+1, err)
		}
		if err := b.fpState(ctx, 0); err != nil {
			return err
		}
		enter.b = append(enter.b, seconds(r.wall))
		if r, err = runbook("start"); err != nil {
			return fmt.Errorf("pair %d, runbook start: %w", i+1, err)
		}
		if err := b.fpState(ctx, 1); err != nil {
			return err
		}
		leave.b = append(leave.b, seconds(r.wall))
		e.logf("  pair %d: enter %.2fs (floor %.2fs) vs %.2fs, leave %.2fs (floor %.2fs) vs %.2fs", i+1,
			enter.a[i], enterFloor.b[i], enter.b[i], leave.a[i], leaveFloor.b[i], leave.b[i])
	}
	for _, x := range []struct {
		name string
		p, f paired
		c    []calls
	}{{"enter", enter, enterFloor, enterCalls}, {"leave", leave, leaveFloor, leaveCalls}} {
		m, _, _ := x.p.ratio()
		b.flip[x.name] = flipTimes{reconciler: x.p.a, floor: x.f.b, runbook: x.p.b}
		fl, fr := fmtFloor(x.f, fmtSeconds)
		b.add(row{
			floor: fl, floorRatio: fr,
			scenario:   "1. maintenance flip, " + x.name + " (3 services + timer)",
			reconciler: fmtSeconds(x.p.a), baseline: fmtSeconds(x.p.b), ratio: fmtRatio(x.p),
			calls:  describeCalls(x.c),
			target: verdict(m >= 5, "≥ 5x faster", fmt.Sprintf("%.1fx", m)) + "; " + floorVerdict(x.f),
		})
	}
	b.note("Scenario 1: `reconciler apply --source <http repo> --ref maintenance|main` (process start to exit: ref lookup, plan, actions, waits for drained/ready) vs `hack/bench/runbook-maintenance.sh stop|start`; same order, checked on the wire for every reconciler run. Floor: the same stages by a minimal client in the same process as the bench (StopUnit/StartUnit jobs awaited over D-Bus, DisableUnitFiles/EnableUnitFiles and Reload; each stage's services updated at once and the manager's running count polled every 100 ms, as the engine polls); rounds run reconciler, floor, runbook.")
	return nil
}

// fpState waits until the three services run n replicas and the timer is
// enabled and active (n=1) or disabled and inactive (n=0).
func (b *bench) fpState(ctx context.Context, n int) error {
	e := b.e
	want := map[string]int{}
	for _, s := range fpServices {
		want[s] = n
	}
	if err := e.waitRunning(ctx, want); err != nil {
		return err
	}
	wantEn, wantAct := "enabled", "active"
	if n == 0 {
		wantEn, wantAct = "disabled", "inactive"
	}
	return e.waitFor(ctx, 30*time.Second, "timer state", func() error {
		en, _ := e.inSystemd(ctx, "systemctl", "is-enabled", fpTimer)
		act, _ := e.inSystemd(ctx, "systemctl", "is-active", fpTimer)
		if en != wantEn || act != wantAct {
			return fmt.Errorf("timer %s/%s, want %s/%s", en, act, wantEn, wantAct)
		}
		return nil
	})
}

// wire is what the proxies logged, in time order: D-Bus writes and Docker
// service updates (by service name).
func (b *bench) wire() []string {
	e := b.e
	type ev struct {
		t    time.Time
		what string
	}
	var evs []ev
	for _, c := range e.dbusP.Log() {
		if c.Kind == callcount.KindMutating {
			evs = append(evs, ev{c.Time, c.Member})
		}
	}
	for _, c := range e.dockerP.Log() {
		if c.Key == "POST /services/{id}/update" {
			parts := strings.Split(c.Path, "/")
			evs = append(evs, ev{c.Time, "update " + e.serviceName(parts[len(parts)-2])})
		}
	}
	for i := 1; i < len(evs); i++ {
		for j := i; j > 0 && evs[j].t.Before(evs[j-1].t); j-- {
			evs[j], evs[j-1] = evs[j-1], evs[j]
		}
	}
	out := make([]string, len(evs))
	for i, x := range evs {
		out[i] = x.what
	}
	return out
}

// checkEnterOrder: the timer stopped and disabled before any service
// update, the broker's update after the proxy's and the module's.
func (b *bench) checkEnterOrder() error {
	w := b.wire()
	pos := index(w)
	first := min(pos["update factory-proxy"], pos["update reference-BL"], pos["update factory-broker"])
	switch {
	case pos["StopUnit"] < 0 || pos["DisableUnitFiles"] < 0 || first < 0:
		return fmt.Errorf("missing calls on the wire: %v", w)
	case pos["StopUnit"] > first || pos["DisableUnitFiles"] > first:
		return fmt.Errorf("a service was updated before the timer was stopped and disabled: %v", w)
	case pos["update factory-broker"] < pos["update factory-proxy"] || pos["update factory-broker"] < pos["update reference-BL"]:
		return fmt.Errorf("the broker went down before its dependents: %v", w)
	}
	return nil
}

// checkLeaveOrder: the broker first, the timer enabled and started after
// every service update.
func (b *bench) checkLeaveOrder() error {
	w := b.wire()
	pos := index(w)
	last := max(pos["update factory-proxy"], pos["update reference-BL"], pos["update factory-broker"])
	first := min(pos["update factory-proxy"], pos["update reference-BL"], pos["update factory-broker"])
	switch {
	case pos["EnableUnitFiles"] < 0 || pos["StartUnit"] < 0 || first < 0:
		return fmt.Errorf("missing calls on the wire: %v", w)
	case pos["update factory-broker"] > pos["update factory-proxy"] || pos["update factory-broker"] > pos["update reference-BL"]:
		return fmt.Errorf("a dependent came up before the broker: %v", w)
	case pos["EnableUnitFiles"] < last || pos["StartUnit"] < last:
		return fmt.Errorf("the timer came back before every service: %v", w)
	}
	return nil
}

// index maps each event to its first position; absent ones are -1.
func index(w []string) map[string]int {
	pos := map[string]int{}
	for _, k := range []string{"StopUnit", "DisableUnitFiles", "EnableUnitFiles", "StartUnit",
		"update factory-proxy", "update reference-BL", "update factory-broker"} {
		pos[k] = -1
	}
	for i, x := range w {
		if p, ok := pos[x]; ok && p < 0 {
			pos[x] = i
		}
	}
	return pos
}

// describeCalls summarises the calls of several runs (the median of each).
func describeCalls(cs []calls) string {
	med := func(f func(calls) int) string {
		var s sample
		for _, c := range cs {
			s = append(s, float64(f(c)))
		}
		return sig(s.median())
	}
	return fmt.Sprintf("Docker: %s ServiceUpdate, %s reads; D-Bus: %s writes, %s reads",
		med(func(c calls) int { return c.updates }), med(func(c calls) int { return c.dockerReads }),
		med(func(c calls) int { return c.dbusWrites }), med(func(c calls) int { return c.dbusReads }))
}

func verdict(ok bool, target, got string) string {
	if ok {
		return target + ": met"
	}
	return target + ": MISSED (" + got + ")"
}
