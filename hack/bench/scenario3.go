package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"
)

// Scenario 3: a pass where nothing changed, at several declared sizes: N
// swarm services (all at their declared count) and one systemd unit.
//
//   - an agent (`reconciler run --interval 1s`) idles through -passes
//     passes: Docker, D-Bus and git calls per pass from the proxies and the
//     git server, CPU per pass from /proc;
//   - `reconciler plan` as a one-shot process (CPU from rusage) against one
//     `docker service ls` (the listing the seed's own scripts start from):
//     the price of a whole look (fetch, parse, validate, observe, plan)
//     next to the cheapest look there is.
//
// Scenario 4 idles an agent at the largest size for -idle (default 2m) at
// the default interval: its RSS and CPU seconds, from /proc.

// idleUnit is the one unit every size declares, so the systemd driver
// observes too (its two list calls are by design: README "Decisions").
const idleUnit = "    - name: systemd-journald.service\n      active: true\n      maintenance: keep\n"

const idlePasses = 5

func (b *bench) idleRepo(n int) (*gitRepo, string, error) {
	e := b.e
	repo, err := e.newRepo(fmt.Sprintf("idle-%d", n))
	if err != nil {
		return nil, "", err
	}
	doc := hostDoc("bench-01", benchServices(n), func(int) int { return 0 }, "  units:\n"+idleUnit)
	if err := repo.commit("main", fmt.Sprintf("%d services, nothing to change", n), map[string]string{"hosts/bench-01.yaml": doc}); err != nil {
		return nil, "", err
	}
	rev, err := repo.head()
	return repo, rev, err
}

func init() {
	sizes := func(c config) int { return slices.Max(c.sizes3) }
	register(3, sizes, (*bench).scenario3)
	register(4, sizes, (*bench).scenario4)
}

func (b *bench) scenario3(ctx context.Context) error {
	e := b.e
	for _, n := range b.cfg.sizes3 {
		repo, rev, err := b.idleRepo(n)
		if err != nil {
			return err
		}
		cache := filepath.Join(e.work, fmt.Sprintf("cache-idle-%d", n))
		if _, err := e.reconciler(ctx, "plan", "--source", repo.httpURL, "--host", "bench-01", "--cache-dir", cache); err != nil {
			return fmt.Errorf("%d services: not in sync to start with: %w", n, err)
		}

		// The agent, pass after pass.
		a, err := e.startAgent(ctx, repo.httpURL, "bench-01", "--interval", "1s")
		if err != nil {
			return err
		}
		if err := a.awaitConverged(ctx, rev, time.Minute); err != nil {
			a.stop()
			return err
		}
		ip, err := b.measurePasses(ctx, a, repo, idlePasses)
		a.stop()
		if err != nil {
			return fmt.Errorf("%d services: %w", n, err)
		}

		// One-shot plan against one docker service ls.
		var planCPU, lsCPU sample
		var planCalls []calls
		wall, err := alternate(b.cfg.pairs,
			func(int) (float64, error) {
				e.resetCounts()
				r, err := e.reconciler(ctx, "plan", "--source", repo.httpURL, "--host", "bench-01", "--cache-dir", cache)
				if err != nil {
					return 0, err
				}
				planCalls = append(planCalls, e.calls())
				planCPU = append(planCPU, seconds(r.cpu))
				return seconds(r.wall), nil
			},
			func(int) (float64, error) {
				r, err := e.run(ctx, nil, "docker", "service", "ls")
				if err != nil {
					return 0, err
				}
				lsCPU = append(lsCPU, seconds(r.cpu))
				return seconds(r.wall), nil
			})
		if err != nil {
			return err
		}
		cpu := paired{a: planCPU, b: lsCPU}
		// The drivers' own reads: the swarm driver's one list, the systemd
		// driver's two; anything else the agent reads is listed in calls.
		ok := ip.dockerWrites == 0 && ip.dbusWrites == 0 && ip.swarmLists <= 1 && ip.dbusReads <= 2
		b.add(row{
			scenario: fmt.Sprintf("3. idle pass, %d services + 1 unit: agent, per pass", n),
			reconciler: fmt.Sprintf("CPU %s (RSS %s after %d passes back to back, peak %s; anonymous %s)",
				fmtMillis(ip.cpu), fmtBytes(ip.rss), 3*idlePasses, fmtBytes(ip.peak), fmtBytes(ip.anon)),
			baseline: "—", ratio: "—",
			calls: fmt.Sprintf("Docker: %s writes, %s reads (%s); D-Bus: %s writes, %s reads (%s); git: %s request(s), %s",
				sig(ip.dockerWrites), sig(ip.dockerReads), ip.dockerKeys, sig(ip.dbusWrites), sig(ip.dbusReads), ip.dbusKeys,
				sig(ip.gitRequests), fmtBytes(ip.gitBytes)),
			target: verdict(ok, "0 writes, ≤ 1 read per driver (systemd: 2 by design)", "see calls"),
		})
		b.add(row{
			scenario:   fmt.Sprintf("3. idle pass, %d services + 1 unit: `plan` process vs one `docker service ls`", n),
			reconciler: "CPU " + fmtMillis(planCPU) + ", wall " + fmtMillis(wall.a),
			baseline:   "CPU " + fmtMillis(lsCPU) + ", wall " + fmtMillis(wall.b),
			ratio:      "CPU " + fmtRatio(cpu) + ", wall " + fmtRatio(wall),
			calls:      describeCalls(planCalls),
			target:     "—",
		})
	}
	b.note("Scenario 3: every size declares N swarm services (created once at 0 replicas and reused, not a subset of fewer kinds) plus systemd-journald.service (active: true), so both drivers observe. Agent figures are over 3 windows of %d passes at --interval 1s, each window from one pass boundary to another (CPU: median and spread of the windows); a `plan` process also pays one HEAD /_ping (Docker API version negotiation) and the D-Bus connection's housekeeping, which an agent pays once.", idlePasses)
	return nil
}

// idlePass is what one idle pass costs, averaged.
type idlePass struct {
	cpu                                              sample // seconds, one value per measurement window
	rss, peak, anon                                  float64
	dockerReads, dockerWrites, dbusReads, dbusWrites float64
	gitRequests, gitBytes                            float64
	dockerKeys, dbusKeys                             string
	swarmLists                                       float64
}

// measurePasses waits for a pass boundary, then counts k passes: every
// pass starts with the swarm driver's one list call, which the Docker proxy
// sees. The interval is 1s and an idle pass takes well under half of it, so
// 400ms after a pass's list call that pass is over and the next has not
// begun.
func (b *bench) measurePasses(ctx context.Context, a *agentProc, repo *gitRepo, k int) (idlePass, error) {
	e := b.e
	var ip idlePass
	lists := func() int { return e.dockerP.Counts()["GET /services"] }
	waitLists := func(n int) error {
		return e.waitFor(ctx, time.Duration(n)*3*time.Second+10*time.Second, fmt.Sprintf("%d passes", n), func() error {
			if got := lists(); got < n {
				return fmt.Errorf("%d passes so far", got)
			}
			return nil
		})
	}
	e.resetCounts()
	if err := waitLists(1); err != nil {
		return ip, err
	}
	time.Sleep(400 * time.Millisecond)
	e.resetCounts()
	cpu0, err := a.cpu()
	if err != nil {
		return ip, err
	}
	git0, err := repo.stats()
	if err != nil {
		return ip, err
	}
	// Windows of k passes each; the CPU figure is per pass in each window.
	const windows = 3
	for w := 1; w <= windows; w++ {
		if err := waitLists(w * k); err != nil {
			return ip, err
		}
		time.Sleep(400 * time.Millisecond)
		cpu1, err := a.cpu()
		if err != nil {
			return ip, err
		}
		ip.cpu = append(ip.cpu, (cpu1-cpu0).Seconds()/float64(k))
		cpu0 = cpu1
	}
	passes := float64(windows * k)
	if got := lists(); got != windows*k {
		return ip, fmt.Errorf("%d passes counted, want %d: the boundaries were missed", got, windows*k)
	}
	c := e.calls()
	git1, err := repo.stats()
	if err != nil {
		return ip, err
	}
	ip.dockerReads, ip.dockerWrites = float64(c.dockerReads)/passes, float64(c.dockerWrites)/passes
	ip.dbusReads, ip.dbusWrites = float64(c.dbusReads)/passes, float64(c.dbusWrites)/passes
	ip.gitRequests = float64(git1.Requests-git0.Requests) / passes
	ip.gitBytes = float64(git1.BytesOut+git1.BytesIn-git0.BytesOut-git0.BytesIn) / passes
	ip.dockerKeys, ip.dbusKeys = perPass(c.docker, passes), perPass(c.dbus, passes)
	ip.swarmLists = float64(c.docker["GET /services"]) / passes
	m, err := a.memory()
	ip.rss, ip.peak, ip.anon = m.rss, m.peak, m.anon
	return ip, err
}

// perPass lists call counts divided by the number of passes.
func perPass(m map[string]int, passes float64) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := ""
	for i, k := range keys {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%s %s", sig(float64(m[k])/passes), k)
	}
	if out == "" {
		return "none"
	}
	return out
}

func (b *bench) scenario4(ctx context.Context) error {
	e := b.e
	n := slices.Max(b.cfg.sizes3)
	repo, rev, err := b.idleRepo(n)
	if err != nil {
		return err
	}
	a, err := e.startAgent(ctx, repo.httpURL, "bench-01") // default --interval 30s
	if err != nil {
		return err
	}
	defer a.stop()
	if err := a.awaitConverged(ctx, rev, time.Minute); err != nil {
		return err
	}
	e.resetCounts()
	cpu0, err := a.cpu()
	if err != nil {
		return err
	}
	start := time.Now()
	var rss sample
	for time.Since(start) < b.cfg.idle {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
		}
		m, err := a.memory()
		if err != nil {
			return err
		}
		rss = append(rss, m.rss)
	}
	cpu1, err := a.cpu()
	if err != nil {
		return err
	}
	m, err := a.memory()
	if err != nil {
		return err
	}
	inuse, goal, err := a.goHeap()
	if err != nil {
		return err
	}
	passes := e.dockerP.Counts()["GET /services"]
	b.add(row{
		scenario: fmt.Sprintf("4. agent idle %s, %d services + 1 unit (interval 30s)", b.cfg.idle, n),
		reconciler: fmt.Sprintf("RSS %s at the end (%s–%s while idle, peak %s; the binary's pages %s, anonymous %s; Go heap in use %s, GC goal %s); CPU %.2f s in %s (%d passes)",
			fmtBytes(m.rss), fmtBytes(rss.min()), fmtBytes(rss.max()), fmtBytes(m.peak), fmtBytes(m.file), fmtBytes(m.anon),
			fmtBytes(inuse), fmtBytes(goal), (cpu1 - cpu0).Seconds(), b.cfg.idle, passes),
		baseline: "—", ratio: "—",
		calls:  fmt.Sprintf("Docker: %d writes; D-Bus: %d writes", e.dockerP.Mutating(), e.dbusP.Mutating()),
		target: verdict(rss.max() < 30<<20, "< 30 MiB RSS", "up to "+fmtBytes(rss.max())),
	})
	return nil
}
