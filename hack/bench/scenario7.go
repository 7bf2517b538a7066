package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"reconciler.dev/reconciler/agent"
	"reconciler.dev/reconciler/desired/source"
	"reconciler.dev/reconciler/internal/gitserver"
)

// Scenario 7: the git server's side of a fleet. K simulated agents, one
// goroutine each, make exactly the request a real agent's poll makes when
// nothing moved (source.PollRequest: one protocol v2 ls-refs POST to the
// testbed's `git http-backend`), every interval with the agent's own waits
// (agent.NextWait). Steady-state runs start each agent at a uniform phase
// over one interval (where the agent's waits bring a fleet restarted
// together from its second poll on); -fleet-restart runs start them all in
// the same instant, as a fleet-wide restart does, with the agent's waits
// and with the waits it had before (±10% from the first wait on). Measured
// for -fleet-window: requests per second (and how they spread over the
// seconds), bytes per second on the wire, and the git server's CPU (its
// process and the http-backend and upload-pack children it waited for,
// from /proc).

var (
	fleetSizes    = flag.String("fleet-agents", "1000", "scenario 7: simulated agents per steady-state run, e.g. 1000,10000 (10,000 at 30s is 333 polls/s: more than a 2-core machine's CGI git server answers)")
	fleetRestart  = flag.Int("fleet-restart", 0, "scenario 7: also restart this many agents at once, with the agent's waits and with the waits before (0: skip; 1,000 at once overload the testbed's git server for a minute)")
	fleetInterval = flag.Duration("fleet-interval", 30*time.Second, "scenario 7: the agents' --interval")
	fleetWindow   = flag.Duration("fleet-window", 75*time.Second, "scenario 7: how long each run is measured after the restart")
)

// fleetMode is how a simulated fleet starts.
type fleetMode int

const (
	modeSteady        fleetMode = iota // phases uniform over one interval
	modeRestart                        // all at once, then the agent's waits
	modeRestartBefore                  // all at once, then ±10% from the first wait
)

// fleetRun is one simulated fleet's measurement.
type fleetRun struct {
	agents   int
	mode     fleetMode
	interval time.Duration
	window   time.Duration

	perSecond      []int64 // requests sent in each second after the restart
	requests, errs int64
	wireIn         int64   // bytes the server received (request line, headers, body)
	wireOut        int64   // bytes it sent
	cpu            float64 // the server's CPU seconds during the window
	latency        sample  // milliseconds, every request
	served         int64   // ls-refs requests by the server's own counter
}

func init() { register(7, nil, (*bench).scenario7) }

func (b *bench) scenario7(ctx context.Context) error {
	e := b.e
	sizes, err := ints(*fleetSizes)
	if err != nil {
		return fmt.Errorf("-fleet-agents: %w", err)
	}
	repo, err := e.newRepo("fleet")
	if err != nil {
		return err
	}
	if err := repo.commit("main", "one host", map[string]string{"hosts/h.yaml": hostDoc("h", nil, nil, "")}); err != nil {
		return err
	}
	pid, err := gitServerPID()
	if err != nil {
		return err
	}
	var runs []fleetRun
	for _, k := range sizes {
		r, err := simulateFleet(ctx, repo, pid, k, modeSteady, *fleetInterval, *fleetWindow)
		if err != nil {
			return err
		}
		runs = append(runs, r)
	}
	if k := *fleetRestart; k > 0 {
		for _, m := range []fleetMode{modeRestart, modeRestartBefore} {
			r, err := simulateFleet(ctx, repo, pid, k, m, *fleetInterval, *fleetWindow)
			if err != nil {
				return err
			}
			runs = append(runs, r)
		}
	}

	fmt.Println()
	fmt.Println(fleetTable(runs))
	for _, r := range runs {
		fmt.Printf("per-second requests, %d agents, %s: %s\n", r.agents, r.jitterName(), joinInts(r.perSecond))
	}
	for _, r := range runs {
		b.note("scenario 7, %d agents polling every %s (%s): %.0f requests/s, %s/s, git server CPU %.2f cores",
			r.agents, r.interval, r.jitterName(), r.rate(), fmtBytes(float64(r.wireIn+r.wireOut)/r.window.Seconds()), r.cpu/r.window.Seconds())
	}
	return nil
}

func (r fleetRun) jitterName() string {
	switch r.mode {
	case modeRestart:
		return "restarted at once; first wait 0.5-1.5x, then ±10% (the agent's)"
	case modeRestartBefore:
		return "restarted at once; ±10% from the first wait (before)"
	}
	return "steady: phases uniform, ±10%"
}

// rate is the mean requests per second over the window.
func (r fleetRun) rate() float64 { return float64(r.requests) / r.window.Seconds() }

// steady returns min, median and max requests per second after the first
// second (steady runs), or from half an interval after the restart on (the
// second polls' earliest) to the end.
func (r fleetRun) steady() (lo, med, hi float64) {
	from := 1
	if r.mode != modeSteady {
		from = int(r.interval.Seconds() / 2)
	}
	var s sample
	for _, c := range r.perSecond[from:] {
		s = append(s, float64(c))
	}
	return s.min(), s.median(), s.max()
}

// simulateFleet runs k simulated agents for window and measures.
func simulateFleet(ctx context.Context, repo *gitRepo, pid, k int, mode fleetMode, interval, window time.Duration) (fleetRun, error) {
	e := repo.e
	run := fleetRun{agents: k, mode: mode, interval: interval, window: window,
		perSecond: make([]int64, int(window/time.Second))}
	var wireIn, wireOut atomic.Int64
	// One transport for the simulated agents, keeping a connection per agent
	// at most, as k agents would each keep theirs between polls.
	tr := &http.Transport{
		MaxIdleConns: k, MaxIdleConnsPerHost: k, IdleConnTimeout: 90 * time.Second,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countedConn{Conn: c, in: &wireIn, out: &wireOut}, nil
		},
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	before, err := repo.stats()
	if err != nil {
		return run, err
	}
	cpu0, err := procCPU(pid)
	if err != nil {
		return run, err
	}
	e.logf("scenario 7: %d agents, %s, for %s", k, run.jitterName(), window)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	end := start.Add(window)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano())))
			at, first := start, mode == modeRestart
			if mode == modeSteady {
				at = start.Add(time.Duration(rng.Float64() * float64(interval)))
			}
			for at.Before(end) {
				if d := time.Until(at); d > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(d):
					}
				}
				sent := time.Now()
				if s := int(sent.Sub(start) / time.Second); s < len(run.perSecond) {
					atomic.AddInt64(&run.perSecond[s], 1)
				}
				err := pollOnce(ctx, client, repo.httpURL)
				took := time.Since(sent)
				mu.Lock()
				run.requests++
				if err != nil {
					run.errs++
				}
				run.latency = append(run.latency, float64(took.Microseconds())/1000)
				mu.Unlock()
				at = at.Add(agent.NextWait(interval, first, rng.Float64()))
				first = false
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	cpu1, err := procCPU(pid)
	if err != nil {
		return run, err
	}
	run.cpu = cpu1 - cpu0
	run.wireIn, run.wireOut = wireOut.Load(), wireIn.Load() // the client's out is the server's in
	// An overloaded server (10,000 agents here) is still working off the
	// connections queued during the window minutes later: its own count is
	// then left out of the table (-1), and the run's other figures stand.
	if after, err := statsOnceDrained(ctx, repo); err != nil {
		e.logf("scenario 7: %d agents: the git server's counters not read (it is still working off its backlog): %v", k, err)
		run.served = -1
	} else {
		run.served = after.ByService["git-upload-pack ls-refs"] - before.ByService["git-upload-pack ls-refs"]
	}
	e.logf("scenario 7: %d agents: %d requests (%d failed) in %s, server CPU %.1fs", k, run.requests, run.errs, took.Round(time.Second), run.cpu)
	if run.errs > 0 {
		e.logf("scenario 7: %d of %d polls failed (timeouts or refusals): the server did not keep up", run.errs, run.requests)
	}
	return run, nil
}

// statsOnceDrained reads the git server's counters after a run. A fleet
// larger than the server answers (10,000 agents at 30 s on this testbed)
// leaves a backlog of connections behind it, so the first reads may time
// out; they are retried, backing off, for up to two minutes.
func statsOnceDrained(ctx context.Context, repo *gitRepo) (gitserver.Counts, error) {
	deadline := time.Now().Add(2 * time.Minute)
	wait := 500 * time.Millisecond
	for {
		c, err := repo.stats()
		if err == nil || time.Now().After(deadline) {
			return c, err
		}
		select {
		case <-ctx.Done():
			return c, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// pollOnce makes one agent's poll when nothing moved, and reads the answer.
func pollOnce(ctx context.Context, c *http.Client, url string) error {
	req, err := source.PollRequest(ctx, url, "")
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ls-refs: %s", resp.Status)
	}
	return nil
}

// countedConn counts the bytes of one connection, each way.
type countedConn struct {
	net.Conn
	in, out *atomic.Int64
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(int64(n))
	return n, err
}

func (c *countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(int64(n))
	return n, err
}

// gitServerPID is the testbed's git server (hack/testbed keeps its pid).
func gitServerPID() (int, error) {
	run := os.Getenv("TESTBED_RUN")
	if run == "" {
		run = "/run/reconciler-testbed"
	}
	b, err := os.ReadFile(filepath.Join(run, "gitserver.pid"))
	if err != nil {
		return 0, fmt.Errorf("the git server's pid: %w", err)
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// procCPU is the CPU seconds a process used, with the children it waited
// for (utime, stime, cutime, cstime of /proc/PID/stat, in clock ticks of
// 1/100 s on Linux).
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command field", pid)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 15 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	var ticks float64
	for _, x := range f[11:15] { // fields 14-17
		v, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += v
	}
	return ticks / 100, nil
}

func fleetTable(runs []fleetRun) string {
	var sb strings.Builder
	sb.WriteString("| agents | interval | agents' waits | window | polls (server's count) | requests/s | per second (min / median / max) | second 0 | bytes/s (in + out) | git server CPU | CPU per poll | latency p50 / max | failed |\n")
	sb.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range runs {
		lo, med, hi := r.steady()
		w := r.window.Seconds()
		served := strconv.FormatInt(r.served, 10)
		if r.served < 0 {
			served = "not read: still working off its backlog"
		}
		fmt.Fprintf(&sb, "| %d | %s | %s | %s | %d (%s) | %.0f | %.0f / %.0f / %.0f | %d | %s/s (%s + %s) | %.2f cores | %.1f ms | %s / %s ms | %d |\n",
			r.agents, r.interval, r.jitterName(), r.window, r.requests, served, r.rate(), lo, med, hi, r.perSecond[0],
			fmtBytes(float64(r.wireIn+r.wireOut)/w), fmtBytes(float64(r.wireIn)/w), fmtBytes(float64(r.wireOut)/w),
			r.cpu/w, 1000*r.cpu/float64(max(r.requests, 1)), sig(r.latency.median()), sig(r.latency.max()), r.errs)
	}
	return sb.String()
}

func joinInts(v []int64) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.FormatInt(n, 10)
	}
	return strings.Join(s, " ")
}
