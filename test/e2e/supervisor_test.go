//go:build e2e

package e2e

// The supervisor driver against the testbed's real supervisord: a program
// group declared with numprocs as the most that may run, taken through
// replica counts by commits, with the calls the reconciler makes counted on
// the wire by a proxy in front of supervisord's socket.

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kolo/xmlrpc"
	"reconciler.dev/reconciler/internal/socktest"
)

// svProgram is a program group a test adds to the testbed's supervisord
// through its conf.d, and removes again when the test ends.
type svProgram struct {
	t        *testing.T
	Name     string // the program and group name
	Numprocs int
	socket   string // supervisord's own socket
	rpc      *xmlrpc.Client
}

// svAddProgram declares [program:NAME] with numprocs processes NAME_01..,
// the testbed's worker as the command, not started, plus extra config lines
// (environment=...), and loads it with `supervisorctl update NAME`.
func svAddProgram(t *testing.T, numprocs int, extra ...string) *svProgram {
	t.Helper()
	tb := testbed(t)
	p := &svProgram{t: t, Name: uniqueName("rsv"), Numprocs: numprocs, socket: tb.SupervisorSocket}
	svConf(t, p.Name, svProgramConf(tb.WorkerBin, p.Name, "%(program_name)s_%(process_num)02d", numprocs, extra...))
	if out, err := p.ctl("update", p.Name); err != nil || !strings.Contains(out, "added process group") {
		t.Fatalf("supervisorctl update %s: %v\n%s", p.Name, err, out)
	}
	p.rpc = supervisorRPC(t, p.socket)
	if got := len(p.procs()); got != numprocs {
		t.Fatalf("supervisord lists %d processes of %s, want %d", got, p.Name, numprocs)
	}
	return p
}

// svConf writes conf to NAME.conf in the testbed's supervisord conf.d
// (loading it, supervisorctl update NAME, is the caller's). When the test
// ends, every process of the group NAME is stopped, the file removed and
// the group taken out of supervisord (a test that writes it again adds a
// cleanup that finds nothing left to do).
func svConf(t *testing.T, name, conf string) {
	t.Helper()
	tb := testbed(t)
	file := filepath.Join(tb.SupervisorConfD, name+".conf")
	writeFile(t, file, fmt.Sprintf("; added by %s, removed when it ends\n", t.Name())+conf, 0o644)
	t.Cleanup(func() {
		svctl(tb.SupervisorSocket, "stop", name+":*")
		os.Remove(file)
		svctl(tb.SupervisorSocket, "update", name)
	})
}

// svProgramConf is a [program:NAME] section: numprocs processes named
// procName running the testbed's worker (worker), none started by
// supervisord, plus extra config lines (environment=...).
func svProgramConf(worker, name, procName string, numprocs int, extra ...string) string {
	conf := fmt.Sprintf(`[program:%s]
command=%s %s
process_name=%s
numprocs=%d
numprocs_start=1
autostart=false
autorestart=true
startsecs=1
stopwaitsecs=10
stopsignal=TERM
`, name, worker, procName, procName, numprocs)
	for _, l := range extra {
		conf += l + "\n"
	}
	return conf
}

// svGroupConf is a [group:NAME] joining programs, each with its numprocs,
// the testbed's worker as the command, none started by supervisord.
func svGroupConf(t *testing.T, name string, programs []string, numprocs map[string]int) string {
	tb := testbed(t)
	conf := fmt.Sprintf("[group:%s]\nprograms=%s\n", name, strings.Join(programs, ","))
	for _, p := range programs {
		procName := "%(program_name)s"
		if numprocs[p] > 1 {
			procName = "%(program_name)s_%(process_num)02d"
		}
		conf += "\n" + svProgramConf(tb.WorkerBin, p, procName, numprocs[p])
	}
	return conf
}

// svctl runs supervisorctl against socket, as an operator on the host would.
func svctl(socket string, args ...string) (string, error) {
	return execOut("supervisorctl", append([]string{"-s", "unix://" + socket}, args...)...)
}

// ctl runs supervisorctl against the testbed's socket, the way an operator
// on the host would.
func (p *svProgram) ctl(args ...string) (string, error) { return svctl(p.socket, args...) }

// proc returns NAME_NN, the namespec of process n.
func (p *svProgram) proc(n int) string { return fmt.Sprintf("%s:%s_%02d", p.Name, p.Name, n) }

// svProc is a process as getAllProcessInfo tells it.
type svProc struct {
	Name       string `xmlrpc:"name"`
	Group      string `xmlrpc:"group"`
	State      string `xmlrpc:"statename"`
	PID        int    `xmlrpc:"pid"`
	Start      int    `xmlrpc:"start"`
	Stop       int    `xmlrpc:"stop"`
	ExitStatus int    `xmlrpc:"exitstatus"`
}

// procs reads the group's processes straight from supervisord (not through
// the reconciler's client, nor the counting proxy), in name order.
func (p *svProgram) procs() []svProc {
	p.t.Helper()
	return svGroupProcs(p.t, p.rpc, p.Name)
}

func svGroupProcs(t *testing.T, rpc *xmlrpc.Client, group string) []svProc {
	t.Helper()
	var all []svProc
	if err := rpc.Call("supervisor.getAllProcessInfo", nil, &all); err != nil {
		t.Fatalf("getAllProcessInfo: %v", err)
	}
	var out []svProc
	for _, pr := range all {
		if pr.Group == group {
			out = append(out, pr)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// svExpectFirstRunning checks that exactly the first n processes of group
// run (RUNNING, with a live process behind the pid whose command line
// names it) and that no other one does.
func svExpectFirstRunning(t *testing.T, procs []svProc, n int) {
	t.Helper()
	var states, bad []string
	for i, pr := range procs {
		states = append(states, pr.Name+"="+pr.State)
		if i < n {
			if pr.State != "RUNNING" || pr.PID <= 0 {
				bad = append(bad, fmt.Sprintf("%s is %s (pid %d), want RUNNING", pr.Name, pr.State, pr.PID))
				continue
			}
			cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pr.PID))
			if err != nil || !bytes.Contains(cmdline, []byte(pr.Name)) {
				bad = append(bad, fmt.Sprintf("%s: /proc/%d/cmdline = %q, %v: not the process supervisord says it runs", pr.Name, pr.PID, cmdline, err))
			}
			continue
		}
		if pr.State != "STOPPED" && pr.State != "EXITED" {
			bad = append(bad, fmt.Sprintf("%s is %s, want STOPPED beyond the first %d", pr.Name, pr.State, n))
		}
	}
	if len(bad) > 0 {
		t.Fatalf("want exactly the first %d RUNNING: %s\n%s", n, strings.Join(states, " "), strings.Join(bad, "\n"))
	}
}

// svCall is one XML-RPC call the proxy forwarded.
type svCall struct {
	Method   string // "supervisor.startProcess"
	Args     []string
	Received time.Time
	Answered time.Time
}

// Mutating is false only for calls that read: supervisord's get*, read*,
// tail* and list* methods and the system.* introspection. Everything else,
// system.multicall included, may change state.
func (c svCall) Mutating() bool {
	switch c.Method {
	case "system.listMethods", "system.methodHelp", "system.methodSignature":
		return false
	}
	name := c.Method[strings.LastIndex(c.Method, ".")+1:]
	for _, prefix := range []string{"get", "read", "tail", "list"} {
		if strings.HasPrefix(name, prefix) {
			return false
		}
	}
	return true
}

// svProxy is a counting HTTP proxy between the reconciler and supervisord's
// socket: it forwards every request unchanged and records the XML-RPC
// method name (and string parameters) from each request body, with when the
// request arrived and when its answer went back.
type svProxy struct {
	Socket string
	srv    *http.Server
	mu     sync.Mutex
	calls  []svCall
}

func svStartProxy(t *testing.T, upstream string) *svProxy {
	t.Helper()
	p := &svProxy{Socket: filepath.Join(socktest.Dir(t), "s.sock")}
	ln, err := net.Listen("unix", p.Socket)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", upstream)
	}, DisableCompression: true}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c := svCall{Received: time.Now()}
		var mc struct {
			MethodName string   `xml:"methodName"`
			Strings    []string `xml:"params>param>value>string"`
		}
		if err := xml.Unmarshal(body, &mc); err != nil {
			c.Method = "unparsable: " + err.Error() // counted as mutating
		} else {
			c.Method, c.Args = mc.MethodName, mc.Strings
		}
		defer func() {
			c.Answered = time.Now()
			p.mu.Lock()
			p.calls = append(p.calls, c)
			p.mu.Unlock()
		}()
		req, err := http.NewRequestWithContext(r.Context(), r.Method, "http://supervisord"+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		req.Header = r.Header.Clone()
		resp, err := tr.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})}
	go p.srv.Serve(ln)
	t.Cleanup(func() { p.srv.Close(); tr.CloseIdleConnections() })
	return p
}

// Take returns the calls recorded since the last Take and forgets them.
func (p *svProxy) Take() []svCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.calls
	p.calls = nil
	return out
}

func svMutating(calls []svCall) []svCall {
	var out []svCall
	for _, c := range calls {
		if c.Mutating() {
			out = append(out, c)
		}
	}
	return out
}

func svDescribe(calls []svCall) string {
	var parts []string
	for _, c := range calls {
		parts = append(parts, strings.TrimPrefix(c.Method, "supervisor.")+"("+strings.Join(c.Args, ",")+")")
	}
	return strings.Join(parts, " ")
}

// svHost is a Host document with one supervisor service.
func svHost(host, service, program, socket string, replicas int, extra string) string {
	return hostDocWith(host, extra, fmt.Sprintf(`    - name: %s
      driver: supervisor
      program: %s
      socket: %s
      replicas: %d
      stopTimeout: 10s
`, service, program, socket, replicas))
}

// svCallsOf lists the first argument (the process) of every call of method.
func svCallsOf(calls []svCall, method string) []string {
	var out []string
	for _, c := range calls {
		if c.Method == "supervisor."+method && len(c.Args) > 0 {
			out = append(out, c.Args[0])
		}
	}
	return out
}

// TestSupervisorScaleByCommits takes a program with numprocs=6 through
// 1 -> 5 -> 2 -> 0 -> 3 replicas, one commit each, applied from the git
// server over http. After every apply exactly the first N processes run;
// starts go lowest first, stops highest first and one at a time, each
// waiting for the process to finish its tasks (WORKER_STOP_DELAY=2s); a
// second apply with nothing to change makes no mutating call and one read.
func TestSupervisorScaleByCommits(t *testing.T) {
	prog := svAddProgram(t, 6, `environment=WORKER_STOP_DELAY="2s"`)
	proxy := svStartProxy(t, prog.socket)
	repo := newGitRepo(t, "supervisor-scale")
	src := repo.sourceArgs("sv-sat")

	prev := 0
	for _, n := range []int{1, 5, 2, 0, 3} {
		repo.Commit(fmt.Sprintf("%d pollers", n), map[string]string{
			"hosts/sv-sat.yaml": svHost("sv-sat", "sv-poller", prog.Name, proxy.Socket, n, ""),
		})
		r := cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, fmt.Sprintf("apply %d replicas", n))
		calls := proxy.Take()
		procs := prog.procs()
		svExpectFirstRunning(t, procs, n)
		t.Logf("%d -> %d took %s, calls: %s", prev, n, r.Took.Round(time.Millisecond), svDescribe(calls))

		// Exactly the processes that had to change, in order.
		var wantStart, wantStop []string
		for i := prev + 1; i <= n; i++ {
			wantStart = append(wantStart, prog.proc(i))
		}
		for i := prev; i > n; i-- {
			wantStop = append(wantStop, prog.proc(i))
		}
		if got := svCallsOf(calls, "startProcess"); strings.Join(got, " ") != strings.Join(wantStart, " ") {
			t.Errorf("%d -> %d started %q, want %q (lowest first)", prev, n, got, wantStart)
		}
		if got := svCallsOf(calls, "stopProcess"); strings.Join(got, " ") != strings.Join(wantStop, " ") {
			t.Errorf("%d -> %d stopped %q, want %q (highest first)", prev, n, got, wantStop)
		}
		if m := svMutating(calls); len(m) != len(wantStart)+len(wantStop) {
			t.Errorf("%d -> %d: mutating calls %s", prev, n, svDescribe(m))
		}
		if len(wantStop) > 0 {
			svCheckGracefulStops(t, calls, procs, prev, n)
		}

		// Nothing to change: no write, one read.
		cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, fmt.Sprintf("second apply of %d", n))
		again := proxy.Take()
		if m := svMutating(again); len(m) != 0 {
			t.Errorf("a converged apply of %d made mutating calls: %s", n, svDescribe(m))
		}
		if len(again) != 1 || again[0].Method != "supervisor.getAllProcessInfo" {
			t.Errorf("a converged apply of %d made the calls %s, want one getAllProcessInfo", n, svDescribe(again))
		}
		svExpectFirstRunning(t, prog.procs(), n)
		prev = n
	}

	// More replicas than numprocs: reported, naming both, nothing changed.
	repo.Commit("7 pollers", map[string]string{
		"hosts/sv-sat.yaml": svHost("sv-sat", "sv-poller", prog.Name, proxy.Socket, 7, ""),
	})
	p := cli(t, nil, append([]string{"plan", "-o", "json"}, src...)...).mustCode(t, 2, "plan 7 replicas of numprocs 6")
	var doc struct {
		Actions []struct{ Subject, Live, Desired, Action string }
	}
	if err := json.Unmarshal([]byte(p.Stdout), &doc); err != nil {
		t.Fatalf("plan -o json: %v\n%s", err, p.Stdout)
	}
	if len(doc.Actions) != 1 || doc.Actions[0].Subject != "supervisor/sv-poller" || doc.Actions[0].Action != "unsupported" ||
		doc.Actions[0].Live != "numprocs=6" || doc.Actions[0].Desired != "7" {
		t.Errorf("plan of 7 replicas of numprocs 6:\n%s", p.Stdout)
	}
	if m := svMutating(proxy.Take()); len(m) != 0 {
		t.Errorf("plan wrote: %s", svDescribe(m))
	}
	svExpectFirstRunning(t, prog.procs(), 3)
}

// svCheckGracefulStops shows a scale-down from prev to n stopped one
// process at a time from the highest: each stopProcess was sent only after
// the one before had returned (the process had exited), each took about the
// worker's 2 s of finishing its tasks, the processes exited on their own
// (exit status 0, not killed), and supervisord's own stop times go up from
// the highest process to the lowest.
func svCheckGracefulStops(t *testing.T, calls []svCall, procs []svProc, prev, n int) {
	t.Helper()
	var stops []svCall
	for _, c := range calls {
		if c.Method == "supervisor.stopProcess" {
			stops = append(stops, c)
		}
	}
	for i, c := range stops {
		if took := c.Answered.Sub(c.Received); took < 1500*time.Millisecond {
			t.Errorf("stop of %v returned after %s: it did not wait for the worker to finish (2s)", c.Args, took)
		}
		if i > 0 && c.Received.Before(stops[i-1].Answered) {
			t.Errorf("stop of %v was sent before the stop of %v had returned", c.Args, stops[i-1].Args)
		}
	}
	for i := prev; i > n; i-- {
		pr := procs[i-1]
		if pr.ExitStatus != 0 || pr.Stop == 0 {
			t.Errorf("%s: exit status %d, stop %d: not a graceful stop", pr.Name, pr.ExitStatus, pr.Stop)
		}
		if i < prev {
			higher := procs[i]
			if pr.Stop-higher.Stop < 1 {
				t.Errorf("supervisord stopped %s at %d, %s at %d: not one at a time from the highest",
					higher.Name, higher.Stop, pr.Name, pr.Stop)
			}
		}
	}
}

// TestSupervisorManualDrift stops and starts processes by hand with
// supervisorctl: plan shows the drift (exit 2), apply reverts it; with
// drift: report the same drift is only reported.
func TestSupervisorManualDrift(t *testing.T) {
	prog := svAddProgram(t, 4)
	repo := newGitRepo(t, "supervisor-drift")
	src := repo.sourceArgs("sv-drift")
	repo.Commit("2 pollers", map[string]string{
		"hosts/sv-drift.yaml": svHost("sv-drift", "sv-poller", prog.Name, prog.socket, 2, ""),
	})
	cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "first apply")
	svExpectFirstRunning(t, prog.procs(), 2)

	ctl := func(args ...string) {
		t.Helper()
		if out, err := prog.ctl(args...); err != nil {
			t.Fatalf("supervisorctl %v: %v\n%s", args, err, out)
		}
	}
	planShows := func(what string, rows ...string) {
		t.Helper()
		p := cli(t, nil, append([]string{"plan"}, src...)...).mustCode(t, 2, "plan with "+what)
		for _, row := range rows {
			if !regexp.MustCompile(row).MatchString(p.Stdout) {
				t.Errorf("plan with %s does not show %s:\n%s", what, row, p.Stdout)
			}
		}
	}

	// By hand: _02 stopped, _04 started.
	ctl("stop", prog.proc(2))
	ctl("start", prog.proc(4))
	planShows("_02 stopped and _04 started by hand",
		`(?m)^\d+\s+down\s+service\s+sv-poller\s+replicas\s+2\s+1\s+scale-down\s*$`,
		`(?m)^\d+\s+up\s+service\s+sv-poller\s+replicas\s+1\s+2\s+scale-up\s*$`)
	cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "apply reverting the drift")
	svExpectFirstRunning(t, prog.procs(), 2)
	cli(t, nil, append([]string{"plan"}, src...)...).mustCode(t, 0, "plan after reverting")

	// drift: report: the same kind of change is reported and left alone.
	repo.Commit("drift: report", map[string]string{
		"hosts/sv-drift.yaml": svHost("sv-drift", "sv-poller", prog.Name, prog.socket, 2, "  drift: report\n"),
	})
	cli(t, nil, append([]string{"plan"}, src...)...).mustCode(t, 0, "plan with drift: report, before any drift")
	ctl("stop", prog.proc(1))
	planShows("_01 stopped by hand, drift: report",
		`(?m)^\d+\s+up\s+service\s+sv-poller\s+replicas\s+1\s+2\s+report-only \(scale-up\)\s*$`)
	a := cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "apply with drift: report")
	if !strings.Contains(a.Stderr, "drift supervisor/sv-poller: replicas 1 -> 2 (scale-up, report-only)") {
		t.Errorf("apply does not report the drift:\n%s", a.Stderr)
	}
	procs := prog.procs()
	if procs[0].State != "STOPPED" || procs[1].State != "RUNNING" || procs[2].State != "STOPPED" || procs[3].State != "STOPPED" {
		t.Errorf("drift: report changed the processes: %+v", procs)
	}
}

// TestSupervisorExampleSat08 runs examples/usm-poller-satellite's sat-08 as
// it is against the testbed: it validates, plans (the program usm-poller is
// there, with numprocs=15 >= its max of 15) and applies, leaving exactly
// the first processes of usm-poller running. Its autoscale cannot read the
// queue here (no URL file on this host) and holds the count.
func TestSupervisorExampleSat08(t *testing.T) {
	lockTestbed(t, "supervisor-usm-poller")
	tb := testbed(t)
	rpc := supervisorRPC(t, tb.SupervisorSocket)
	stopAll := func() {
		out, err := exec.Command("supervisorctl", "-s", "unix://"+tb.SupervisorSocket, "stop", "usm-poller:*").CombinedOutput()
		if err != nil {
			t.Logf("supervisorctl stop usm-poller:*: %v\n%s", err, out)
		}
	}
	stopAll()
	t.Cleanup(stopAll)

	example := filepath.Join(repoRoot(), "examples", "usm-poller-satellite")
	cli(t, nil, "validate", "--host", "sat-08", example).mustCode(t, 0, "validate sat-08")
	src := []string{"--source", example, "--host", "sat-08", "--cache-dir", t.TempDir()}
	p := cli(t, nil, append([]string{"plan", "-o", "json"}, src...)...)
	if p.Code != 0 && p.Code != 2 {
		t.Fatalf("plan sat-08: exit %d\n%s\n%s", p.Code, p.Stdout, p.Stderr)
	}
	var doc struct {
		Actions []struct{ Subject, Live, Desired, Action string }
	}
	if err := json.Unmarshal([]byte(p.Stdout), &doc); err != nil {
		t.Fatalf("plan -o json: %v\n%s", err, p.Stdout)
	}
	for _, a := range doc.Actions {
		if a.Subject == "supervisor/usm-poller" && (a.Action == "missing" || a.Action == "unsupported") {
			t.Fatalf("sat-08 cannot run here: %+v", a)
		}
	}
	r := cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "apply sat-08")
	procs := svGroupProcs(t, rpc, "usm-poller")
	if len(procs) != 15 {
		t.Fatalf("usm-poller has %d processes, want numprocs=15", len(procs))
	}
	running := 0
	for _, pr := range procs {
		if pr.State == "RUNNING" {
			running++
		}
	}
	if running < 2 || running > 15 {
		t.Errorf("sat-08 runs %d pollers, outside its bounds [2, 15]", running)
	}
	svExpectFirstRunning(t, procs, running)
	t.Logf("sat-08 applied in %s: %d usm-poller processes running\n%s", r.Took.Round(time.Millisecond), running, r.Stderr)
}

// TestSupervisorRestartOn is seed 001's `supervisorctl restart usm_poller:*`
// as a commit: changing the poller's restartOn value restarts the running
// processes of the group one at a time, lowest first, each RUNNING again
// before the next is stopped (never fewer than N-1 running), and nothing
// that does not run (the fourth process, beyond the count). The value last
// applied is kept under --state-dir, so a second apply restarts nothing.
func TestSupervisorRestartOn(t *testing.T) {
	const n = 3
	prog := svAddProgram(t, 4, `environment=WORKER_STOP_DELAY="1s"`)
	proxy := svStartProxy(t, prog.socket)
	repo := newGitRepo(t, "supervisor-restart-on")
	src := []string{"--source", repo.HTTPURL, "--host", "sv-sat", "--cache-dir", t.TempDir(), "--state-dir", t.TempDir()}
	commit := func(value string) {
		repo.Commit("restartOn "+value, map[string]string{
			"hosts/sv-sat.yaml": svHost("sv-sat", "sv-poller", prog.Name, proxy.Socket, n, "") + "      restartOn: " + value + "\n",
		})
	}
	commit("v1")
	cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "apply 3 pollers at restartOn v1")
	svExpectFirstRunning(t, prog.procs(), n)
	proxy.Take()
	cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "second apply at v1")
	if m := svMutating(proxy.Take()); len(m) != 0 {
		t.Fatalf("a second apply at v1 made mutating calls: %s", svDescribe(m))
	}
	before := prog.procs()

	commit("v2")
	pl := cli(t, nil, append([]string{"plan"}, src...)...).mustCode(t, 2, "plan of restartOn v2")
	if row := regexp.MustCompile(`(?m)^\d+\s+up\s+service\s+sv-poller\s+restartOn\s+v1\s+v2\s+restart(\s|$)`); !row.MatchString(pl.Stdout) {
		t.Errorf("plan does not show %s:\n%s", row, pl.Stdout)
	}
	// Sample the running count straight from supervisord while it runs.
	ctx, cancel := context.WithCancel(context.Background())
	fewest, samples := n, 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			var all []svProc
			if err := prog.rpc.Call("supervisor.getAllProcessInfo", nil, &all); err == nil {
				running := 0
				for _, pr := range all {
					if pr.Group == prog.Name && pr.State == "RUNNING" {
						running++
					}
				}
				fewest = min(fewest, running)
				samples++
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	r := cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "apply restartOn v2")
	cancel()
	<-done
	calls := svMutating(proxy.Take())
	t.Logf("restartOn v2 took %s; fewest running %d of %d in %d samples; calls:\n%s", r.Took.Round(time.Millisecond), fewest, n, samples, svDescribe(calls))
	var want []string
	for i := 1; i <= n; i++ {
		want = append(want, "supervisor.stopProcess "+prog.proc(i), "supervisor.startProcess "+prog.proc(i))
	}
	var got []string
	for _, c := range calls {
		if len(c.Args) > 0 {
			got = append(got, c.Method+" "+c.Args[0])
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("calls %q, want one process at a time %q", got, want)
	}
	// Each start was answered (the process RUNNING) before the next stop.
	for i := 1; i+1 < len(calls); i += 2 {
		if calls[i+1].Received.Before(calls[i].Answered) {
			t.Errorf("%s %v arrived before %s %v was answered", calls[i+1].Method, calls[i+1].Args, calls[i].Method, calls[i].Args)
		}
	}
	if fewest < n-1 {
		t.Errorf("only %d of %d ran at one time, want at least %d", fewest, n, n-1)
	}
	after := prog.procs()
	svExpectFirstRunning(t, after, n)
	for i := 0; i < n; i++ {
		if after[i].PID == before[i].PID {
			t.Errorf("%s was not restarted (pid %d)", after[i].Name, after[i].PID)
		}
	}
	if after[n].State == "RUNNING" || after[n].Start != before[n].Start {
		t.Errorf("%s, beyond the count, was started: %+v", after[n].Name, after[n])
	}
	cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "second apply at v2")
	if m := svMutating(proxy.Take()); len(m) != 0 {
		t.Errorf("a second apply at v2 restarted again: %s", svDescribe(m))
	}
}

// A selector over a supervisord group (select: {group}) manages every
// program the group joins, each with the selector's settings; an entry
// naming one program (program: GROUP:PROGRAM) overrides them for it. A
// program added to the group's config after the commit is picked up on the
// next pass, listed by plan under the selector, and stopped by maintenance
// in reverse start order, with no commit naming it.
func TestSupervisorGroupSelector(t *testing.T) {
	tb := testbed(t)
	group := uniqueName("rsg")
	a, b, c := group+"-a", group+"-b", group+"-c"
	numprocs := map[string]int{a: 2, b: 1, c: 1}
	write := func(programs ...string) {
		t.Helper()
		svConf(t, group, svGroupConf(t, group, programs, numprocs))
		if out, err := svctl(tb.SupervisorSocket, "update", group); err != nil || !strings.Contains(out, "process group") {
			t.Fatalf("supervisorctl update %s: %v\n%s", group, err, out)
		}
	}
	write(a, b)
	rpc := supervisorRPC(t, tb.SupervisorSocket)
	states := func() map[string]string {
		out := map[string]string{}
		for _, p := range svGroupProcs(t, rpc, group) {
			out[p.Name] = p.State
		}
		return out
	}
	expect := func(when string, want map[string]string) {
		t.Helper()
		got := states()
		for name, st := range want {
			if got[name] != st && !(st == "STOPPED" && got[name] == "EXITED") {
				t.Errorf("%s: %s is %s, want %s (all: %v)", when, name, got[name], st, got)
			}
		}
	}
	proxy := svStartProxy(t, tb.SupervisorSocket)
	repo := newGitRepo(t, "supervisor-group")
	doc := func(specExtra string) string {
		return hostDocWith("sv-group", specExtra, fmt.Sprintf(`    - name: all-of-%[1]s
      driver: supervisor
      socket: %[2]s
      select: {group: %[1]s}
      replicas: 1
      stopTimeout: 10s
    - name: %[3]s
      driver: supervisor
      socket: %[2]s
      program: "%[1]s:%[3]s"
      replicas: 1
      maintenance: keep
      stopTimeout: 10s
`, group, proxy.Socket, b))
	}
	src := []string{"--source", repo.FileURL, "--host", "sv-group", "--cache-dir", t.TempDir()}
	repo.Commit("every program of the group", map[string]string{"hosts/sv-group.yaml": doc("")})
	cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "first apply")
	expect("first apply", map[string]string{a + "_01": "RUNNING", a + "_02": "STOPPED", b: "RUNNING"})
	if got := svCallsOf(proxy.Take(), "startProcess"); !sameSet(got, []string{group + ":" + a + "_01", group + ":" + b}) {
		t.Errorf("first apply started %v", got)
	}

	// A third program joins the group; supervisorctl update re-creates the
	// group (supervisord stops every process of a group whose config changed).
	write(a, b, c)
	expect("after supervisorctl update", map[string]string{a + "_01": "STOPPED", b: "STOPPED", c: "STOPPED"})
	r := cli(t, nil, append([]string{"plan", "-o", "json"}, src...)...).mustCode(t, 2, "plan with the new program")
	plan := planSelectors(t, r.Stdout)
	// Never started (the group is new to supervisord): by name.
	if len(plan.Selectors) != 1 || plan.Selectors[0].Select != "group="+group ||
		!slices.Equal(plan.Selectors[0].Matched, []string{a, c}) || !slices.Equal(plan.Selectors[0].Named, []string{b}) {
		t.Fatalf("plan's selectors %+v, want %s and %s matched, %s named\n%s", plan.Selectors, a, c, b, r.Stdout)
	}
	table := cli(t, nil, append([]string{"plan"}, src...)...).mustCode(t, 2, "plan table").Stdout
	if want := fmt.Sprintf("selector all-of-%s (supervisor, group=%s): 2 matched\n  %s\n  %s\n", group, group, a, c); !strings.Contains(table, want) {
		t.Fatalf("plan does not list %q:\n%s", want, table)
	}
	proxy.Take()
	cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "apply with no new commit")
	expect("second apply", map[string]string{a + "_01": "RUNNING", a + "_02": "STOPPED", b: "RUNNING", c: "RUNNING"})
	starts := svCallsOf(proxy.Take(), "startProcess")
	if i, j := slices.Index(starts, group+":"+a+"_01"), slices.Index(starts, group+":"+c); i < 0 || j < i || len(starts) != 3 {
		t.Errorf("second apply started %v, want %s before %s (start order), and %s", starts, a, c, b)
	}

	// Maintenance: the new program first (started last), then the older
	// one; the program declared by name keeps running (maintenance: keep).
	repo.Commit("maintenance", map[string]string{"hosts/sv-group.yaml": doc("  maintenance: {enabled: true}\n")})
	r = cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "apply maintenance")
	t.Logf("maintenance took %s", r.Took)
	calls := proxy.Take()
	if got, want := svCallsOf(calls, "stopProcess"), []string{group + ":" + c, group + ":" + a + "_01"}; !slices.Equal(got, want) {
		t.Errorf("maintenance stopped %v, want %v (newest first); calls %s", got, want, svDescribe(calls))
	}
	expect("maintenance", map[string]string{a + "_01": "STOPPED", a + "_02": "STOPPED", b: "RUNNING", c: "STOPPED"})
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
