//go:build e2e

package e2e

// The agent, `reconciler run`, as a background process: the one set of
// helpers every e2e test that runs the agent uses (agent_test.go,
// pollers_test.go, daemontools_test.go). Start it, read its /healthz,
// /readyz, /status and /metrics, wait until it converged, stop it with
// SIGTERM or kill it.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"reconciler.dev/reconciler/api/status"
	"reconciler.dev/reconciler/internal/syncbuf"
)

// agentConfig says how to start one agent.
type agentConfig struct {
	Source   string   // --source
	Host     string   // --host; default fpHost
	StateDir string   // --state-dir; "" is a new temporary folder
	Interval string   // --interval; default 2s
	Env      []string // added to the testbed's environment (DOCKER_HOST of a counting proxy...)
	Args     []string // more flags
	// Listen is --listen (default: a free loopback port); Wrap is a
	// command the agent runs under (nsenter --net=... for an agent on a
	// test host, hosts_test.go).
	Listen string
	Wrap   []string

	// StartWithin bounds the wait for /healthz at start (default 15s);
	// StopWithin, the exit after SIGTERM (default 10s).
	StartWithin time.Duration
	StopWithin  time.Duration
}

// agentProc is one `reconciler run` process.
type agentProc struct {
	t          *testing.T
	name       string
	cmd        *exec.Cmd
	Addr       string // --listen
	StateDir   string
	stopWithin time.Duration
	stderr     *syncbuf.Buffer
	done       chan struct{} // closed when the process has been reaped
	ended      bool          // the test sent SIGTERM (stop) or SIGKILL (kill)
}

var agentSeq struct {
	sync.Mutex
	n int
}

// startAgent runs `reconciler run --source S --host H --state-dir DIR
// --listen 127.0.0.1:<free port> --interval I` in the background and waits
// until /healthz answers. Its stderr is kept (and printed if the test
// fails). When the test ends, an agent still running is sent SIGTERM and
// must exit 0 within StopWithin; one that exited by itself, neither stopped
// nor killed by the test, fails it.
func startAgent(t *testing.T, cfg agentConfig) *agentProc {
	t.Helper()
	testbed(t)
	if cfg.Host == "" {
		cfg.Host = fpHost
	}
	if cfg.StateDir == "" {
		cfg.StateDir = t.TempDir()
	}
	if cfg.Interval == "" {
		cfg.Interval = "2s"
	}
	if cfg.StartWithin == 0 {
		cfg.StartWithin = 15 * time.Second
	}
	if cfg.StopWithin == 0 {
		cfg.StopWithin = 10 * time.Second
	}
	agentSeq.Lock()
	agentSeq.n++
	name := fmt.Sprintf("agent #%d", agentSeq.n)
	agentSeq.Unlock()
	if cfg.Listen == "" {
		cfg.Listen = freePort(t)
	}
	a := &agentProc{t: t, name: name, Addr: cfg.Listen, StateDir: cfg.StateDir, stopWithin: cfg.StopWithin,
		stderr: &syncbuf.Buffer{}, done: make(chan struct{})}
	args := append([]string{"run", "--source", cfg.Source, "--host", cfg.Host, "--state-dir", cfg.StateDir,
		"--listen", a.Addr, "--interval", cfg.Interval}, cfg.Args...)
	args = append(args, testbedLimits(t, args)...)
	argv := append(append(append([]string(nil), cfg.Wrap...), reconcilerBin(t)), args...)
	a.cmd = exec.Command(argv[0], argv[1:]...)
	a.cmd.Env = append(os.Environ(), cfg.Env...)
	a.cmd.Stdout = io.Discard
	a.cmd.Stderr = a.stderr
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("starting the agent: %v", err)
	}
	go func() {
		_ = a.cmd.Wait()
		close(a.done)
	}()
	t.Cleanup(func() {
		switch {
		case !a.exited():
			a.stop()
		case !a.ended:
			t.Errorf("%s exited before the test ended, neither stopped nor killed by it (%s)", a.name, a.cmd.ProcessState)
		}
		if t.Failed() {
			t.Logf("%s (%s, pid %d) stderr:\n%s", a.name, a.Addr, a.cmd.Process.Pid, a.stderr.String())
		}
	})
	t.Logf("%s: pid %d, reconciler %s", a.name, a.cmd.Process.Pid, strings.Join(args, " "))
	deadline := time.Now().Add(cfg.StartWithin)
	for {
		if a.exited() {
			t.Fatalf("%s exited at start (%s):\n%s", a.name, a.cmd.ProcessState, a.stderr.String())
		}
		if code, _, err := agentGet(a.Addr, "/healthz"); err == nil && code == http.StatusOK {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: /healthz did not answer within %s:\n%s", a.name, cfg.StartWithin, a.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (a *agentProc) exited() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

func (a *agentProc) pid() int { return a.cmd.Process.Pid }

// stop sends SIGTERM and asserts the agent exits 0 within StopWithin.
func (a *agentProc) stop() {
	a.t.Helper()
	if a.exited() {
		a.t.Errorf("%s had exited before it was stopped (%s)", a.name, a.cmd.ProcessState)
		return
	}
	a.ended = true
	start := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		a.t.Errorf("SIGTERM to %s: %v", a.name, err)
	}
	select {
	case <-a.done:
	case <-time.After(a.stopWithin):
		_ = a.cmd.Process.Kill()
		<-a.done
		a.t.Errorf("%s did not exit within %s of SIGTERM", a.name, a.stopWithin)
		return
	}
	if code := a.cmd.ProcessState.ExitCode(); code != 0 {
		a.t.Errorf("%s exited %d after SIGTERM, want 0 (%s)", a.name, code, a.cmd.ProcessState)
		return
	}
	a.t.Logf("%s: SIGTERM, exit 0 after %s", a.name, time.Since(start).Round(time.Millisecond))
}

// kill sends SIGKILL and waits until the process is gone.
func (a *agentProc) kill() {
	a.t.Helper()
	a.ended = true
	if err := a.cmd.Process.Kill(); err != nil {
		a.t.Fatalf("SIGKILL to %s: %v", a.name, err)
	}
	<-a.done
}

// agentGet GETs one of the agent's endpoints: status code and body.
func agentGet(addr, path string) (int, []byte, error) {
	a, err := httpCall(5*time.Second, http.MethodGet, "http://"+addr+path, nil)
	return a.Code, a.Body, err
}

// tryAgentStatus reads the agent's /status, for a test that waits for it.
func tryAgentStatus(addr string) (status.Status, error) {
	var st status.Status
	code, b, err := agentGet(addr, "/status")
	if err != nil {
		return st, err
	}
	if code != http.StatusOK {
		return st, fmt.Errorf("/status: %d %s", code, b)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("/status: %w\n%s", err, b)
	}
	return st, nil
}

// statusOf reads the agent's /status.
func statusOf(t testing.TB, addr string) status.Status {
	t.Helper()
	st, err := tryAgentStatus(addr)
	if err != nil {
		t.Fatalf("agent at %s: %v", addr, err)
	}
	return st
}

// conditionIs says whether /status has the condition typ with the status
// want (false if it has no such condition).
func conditionIs(st status.Status, typ string, want bool) bool {
	for _, c := range st.Conditions {
		if c.Type == typ {
			return c.Status == want
		}
	}
	return false
}

// agentMetrics reads /metrics into series ("name{labels}") -> value.
func agentMetrics(t testing.TB, addr string) map[string]float64 {
	t.Helper()
	code, b, err := agentGet(addr, "/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("/metrics of %s: %d %v", addr, code, err)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out
}

// sumMetric sums every series of one metric name.
func sumMetric(m map[string]float64, name string) float64 {
	var sum float64
	for series, v := range m {
		if series == name || strings.HasPrefix(series, name+"{") {
			sum += v
		}
	}
	return sum
}

// awaitConverged waits until the agent's revision in force is rev, its
// last pass, made with rev, converged (or found everything in sync), and
// /readyz says ready. It returns the /status that showed it.
func awaitConverged(t *testing.T, a *agentProc, rev string, within time.Duration) status.Status {
	t.Helper()
	var st status.Status
	eventually(t, within, a.name+" converged on "+shortRev(rev), func() error {
		var err error
		if a.exited() {
			t.Fatalf("%s exited (%s)", a.name, a.cmd.ProcessState)
		}
		if st, err = tryAgentStatus(a.Addr); err != nil {
			return err
		}
		if st.Revision == nil || st.Revision.ID != rev {
			return fmt.Errorf("revision in force %+v", st.Revision)
		}
		lp := st.LastPass
		if lp == nil {
			return fmt.Errorf("no pass yet (phase %s)", st.Phase)
		}
		if lp.Revision != rev || (lp.Result != "converged" && lp.Result != "in-sync") {
			return fmt.Errorf("last pass %s with %s: %s %s", lp.ID, shortRev(lp.Revision), lp.Result, lp.Error)
		}
		if code, body, err := agentGet(a.Addr, "/readyz"); err != nil || code != http.StatusOK {
			return fmt.Errorf("/readyz: %d %s %v", code, strings.TrimSpace(string(body)), err)
		}
		return nil
	})
	return st
}

// shortRev is a commit id as the agent's logs and events print it.
func shortRev(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
