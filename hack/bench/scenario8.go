package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

// Scenario 8: event-driven waits. A 3-service stack (broker <- proxy, bl)
// declared with its dependencies and the same stack without them, each
// flipped in and out of maintenance by a push to the agent (`reconciler
// run --interval 30s` with the webhook, so nothing but the push starts a
// pass): push -> all three drained (0 running), push -> all three running,
// timed by the bench's own reads of the swarm (20 ms apart, not through
// the counting proxy), and the Docker calls from push to converged counted
// on the wire. The floor is Swarm's own: each stage one scale through the
// API, polled until it holds (the stack with dependencies has two stages
// each way, the one without, one).

var s8Services = []string{"bench-ev-broker", "bench-ev-proxy", "bench-ev-bl"}

func s8Doc(host string, deps, maintenance bool) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "apiVersion: reconciler.dev/v1\nkind: Host\nmetadata:\n  name: %s\nspec:\n  maintenance: %v\n  services:\n", host, maintenance)
	for i, n := range s8Services {
		fmt.Fprintf(&sb, "    - name: %s\n      replicas: 1\n", n)
		if deps && i > 0 {
			fmt.Fprintf(&sb, "      dependsOn: [%s]\n", s8Services[0])
		}
	}
	return sb.String()
}

func init() { register(8, nil, (*bench).scenario8) }

func (b *bench) scenario8(ctx context.Context) error {
	e := b.e
	if err := e.createServices(ctx, s8Services, 1); err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, s := range s8Services {
			_ = e.docker.ServiceRemove(cctx, s)
		}
	}()
	if err := e.scale(ctx, s8Services, 1); err != nil {
		return err
	}
	secret := "bench-webhook-secret-0123456789"
	secretFile := filepath.Join(e.work, "s8-webhook")
	if err := os.WriteFile(secretFile, []byte(secret), 0o600); err != nil {
		return err
	}
	type figures struct {
		down, up           sample
		downCalls, upCalls sample
		floorDown, floorUp sample
	}
	res := map[bool]*figures{}
	for _, deps := range []bool{true, false} {
		f := &figures{}
		res[deps] = f
		host := "ev-nodeps"
		if deps {
			host = "ev-deps"
		}
		repo, err := e.newRepo(host)
		if err != nil {
			return err
		}
		file := "hosts/" + host + ".yaml"
		if err := repo.commit("main", "up", map[string]string{file: s8Doc(host, deps, false)}); err != nil {
			return err
		}
		a, err := e.startAgent(ctx, repo.httpURL, host, "--interval", "30s", "--webhook-secret-file", secretFile)
		if err != nil {
			return err
		}
		head, _ := repo.head()
		if err := a.awaitConverged(ctx, head, time.Minute); err != nil {
			return err
		}
		flip := func(maint bool) (time.Duration, int, error) {
			what := "up"
			if maint {
				what = "down"
			}
			if err := repo.commit("main", fmt.Sprintf("maintenance: %v", maint), map[string]string{file: s8Doc(host, deps, maint)}); err != nil {
				return 0, 0, err
			}
			rev, _ := repo.head()
			e.resetCounts()
			pushed := time.Now()
			if err := postWebhook(a.addr, secret, rev); err != nil {
				return 0, 0, err
			}
			want := 1
			if maint {
				want = 0
			}
			if err := e.awaitCount(ctx, s8Services, want); err != nil {
				return 0, 0, err
			}
			took := time.Since(pushed)
			if err := a.awaitConverged(ctx, rev, time.Minute); err != nil {
				return 0, 0, err
			}
			c := e.calls()
			e.logf("  %s %s calls: %s", host, what, callBreakdown(c.docker))
			return took, c.dockerReads + c.dockerWrites, nil
		}
		stages := [][]string{s8Services}
		if deps {
			stages = [][]string{s8Services[1:], s8Services[:1]}
		}
		floor := func(n uint64) (time.Duration, error) {
			st := stages
			if n == 1 {
				st = [][]string{stages[len(stages)-1], stages[0]}[:len(stages)]
			}
			start := time.Now()
			for _, names := range st {
				if err := e.scaleFast(ctx, names, n); err != nil {
					return 0, err
				}
			}
			return time.Since(start), nil
		}
		for i := 0; i < b.cfg.pairs; i++ {
			d, c, err := flip(true)
			if err != nil {
				return fmt.Errorf("%s, pair %d, down: %w", host, i+1, err)
			}
			f.down, f.downCalls = append(f.down, seconds(d)), append(f.downCalls, float64(c))
			u, cu, err := flip(false)
			if err != nil {
				return fmt.Errorf("%s, pair %d, up: %w", host, i+1, err)
			}
			f.up, f.upCalls = append(f.up, seconds(u)), append(f.upCalls, float64(cu))
			e.logf("  %s run %d: down %.2fs (%d Docker calls), up %.2fs (%d Docker calls)", host, i+1, seconds(d), c, seconds(u), cu)
		}
		// The floor once the agent is gone: it would put a floor's scale
		// right at once (drift-event).
		a.stop()
		for i := 0; i < b.cfg.pairs; i++ {
			fd, err := floor(0)
			if err != nil {
				return err
			}
			fu, err := floor(1)
			if err != nil {
				return err
			}
			f.floorDown, f.floorUp = append(f.floorDown, seconds(fd)), append(f.floorUp, seconds(fu))
			e.logf("  %s floor %d: down %.2fs, up %.2fs", host, i+1, seconds(fd), seconds(fu))
		}
	}
	for _, deps := range []bool{true, false} {
		f := res[deps]
		name := "without dependencies"
		if deps {
			name = "with dependencies (broker <- proxy, bl)"
		}
		for _, x := range []struct {
			what         string
			t, floor, nc sample
			other        sample
		}{{"push -> all drained", f.down, f.floorDown, f.downCalls, res[false].down}, {"push -> all running", f.up, f.floorUp, f.upCalls, res[false].up}} {
			r := x.t.median() / x.floor.median()
			target := verdict(r <= 1.3, "≤ 1.3x floor", fmt.Sprintf("%.2fx", r))
			if deps {
				stage := res[false].floorDown.median()
				if x.what == "push -> all running" {
					stage = res[false].floorUp.median()
				}
				within := x.t.median() <= x.other.median()+stage
				target += "; " + verdict(within, "within one floor stage of no deps", fmt.Sprintf("+%.2fs, stage %.2fs", x.t.median()-x.other.median(), stage))
			}
			target += "; " + verdict(x.nc.median() <= 15, "≤ 15 Docker calls", sig(x.nc.median()))
			b.add(row{
				scenario:   "8. " + x.what + ", 3 services " + name,
				reconciler: fmtSeconds(x.t), baseline: "floor " + fmtSeconds(x.floor),
				ratio: fmt.Sprintf("%.2fx of floor", r),
				calls: "Docker: " + sig(x.nc.median()) + " calls push -> converged", target: target,
			})
		}
	}
	b.note("Scenario 8: `reconciler run --interval 30s --webhook-secret-file F`, a push of maintenance: true/false then POST /webhook; time from the POST to all three services at 0 (or 1) running tasks, read by the bench every 20 ms; calls on the Docker socket from the POST to the agent's converged pass. Floor: each stage one ServiceUpdate per service through the API, then polled every 20 ms until it holds.")
	return nil
}

// awaitCount polls (every 20 ms, the bench's own client) until each service
// runs exactly n tasks and asks for n.
func (e *env) awaitCount(ctx context.Context, names []string, n int) error {
	args := filters.NewArgs()
	for _, s := range names {
		args.Add("name", s)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		list, err := e.docker.ServiceList(ctx, swarm.ServiceListOptions{Status: true, Filters: args})
		if err == nil {
			ok := 0
			for _, s := range list {
				if s.ServiceStatus != nil && int(s.ServiceStatus.RunningTasks) == n && s.Spec.Mode.Replicated != nil &&
					s.Spec.Mode.Replicated.Replicas != nil && int(*s.Spec.Mode.Replicated.Replicas) == n {
					ok++
				}
			}
			if ok == len(names) {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%v not at %d running within 2m (%v)", names, n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scaleFast is one floor stage: a ServiceUpdate of each service through the
// API, then polled until all run n.
func (e *env) scaleFast(ctx context.Context, names []string, n uint64) error {
	for _, name := range names {
		s, _, err := e.docker.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
		if err != nil {
			return err
		}
		v := n
		s.Spec.Mode.Replicated.Replicas = &v
		if _, err := e.docker.ServiceUpdate(ctx, s.ID, s.Version, s.Spec, swarm.ServiceUpdateOptions{}); err != nil {
			return err
		}
	}
	return e.awaitCount(ctx, names, int(n))
}

// callBreakdown shows calls by endpoint, most made first, so a figure over
// its goal says which call to cut.
func callBreakdown(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", m[k], k)
	}
	return strings.Join(parts, ", ")
}
