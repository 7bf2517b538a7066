package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/internal/syncbuf"
)

// agentProc is one `reconciler run` process, talking through the counting
// proxies.
type agentProc struct {
	e    *env
	cmd  *exec.Cmd
	addr string
	out  *syncbuf.Buffer
	done chan struct{}
}

// startAgent runs `reconciler run --source S --host H --state-dir D
// --listen 127.0.0.1:PORT` with more args, and waits until /healthz
// answers.
func (e *env) startAgent(ctx context.Context, source, host string, args ...string) (*agentProc, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	state, err := os.MkdirTemp(e.work, "agent-")
	if err != nil {
		return nil, err
	}
	a := &agentProc{e: e, addr: addr, out: &syncbuf.Buffer{}, done: make(chan struct{})}
	all := append([]string{"run", "--source", source, "--host", host, "--state-dir", state, "--listen", addr, "--log-level", "warn"}, args...)
	a.cmd = exec.Command(e.bin, all...)
	a.cmd.Env = e.countedEnv()
	a.cmd.Stdout, a.cmd.Stderr = io.Discard, a.out
	if err := a.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = a.cmd.Wait(); close(a.done) }()
	e.cleanup(a.stop)
	err = e.waitFor(ctx, 30*time.Second, "agent /healthz", func() error {
		select {
		case <-a.done:
			return fmt.Errorf("the agent exited: %s", lastLines(a.out.String(), 20))
		default:
		}
		code, _, err := a.get("/healthz")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("/healthz %d", code)
		}
		return err
	})
	if err != nil {
		a.stop()
		return nil, err
	}
	return a, nil
}

func (a *agentProc) get(path string) (int, []byte, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + a.addr + path)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// status is the part of /status the bench reads.
type agentStatus struct {
	Revision *struct {
		ID string `json:"id"`
	} `json:"revision"`
	LastPass *struct {
		ID       string `json:"id"`
		Revision string `json:"revision"`
		Result   string `json:"result"`
		Error    string `json:"error"`
	} `json:"lastPass"`
}

// awaitConverged waits until the revision in force is rev and a pass made
// with it converged (or found nothing to do).
func (a *agentProc) awaitConverged(ctx context.Context, rev string, within time.Duration) error {
	return a.e.waitFor(ctx, within, "agent converged on "+rev, func() error {
		select {
		case <-a.done:
			return fmt.Errorf("the agent exited: %s", lastLines(a.out.String(), 20))
		default:
		}
		_, body, err := a.get("/status")
		if err != nil {
			return err
		}
		var st agentStatus
		if err := json.Unmarshal(body, &st); err != nil {
			return err
		}
		if st.Revision == nil || (rev != "" && st.Revision.ID != rev) {
			return fmt.Errorf("revision in force %+v", st.Revision)
		}
		lp := st.LastPass
		if lp == nil || (rev != "" && lp.Revision != rev) || (lp.Result != names.ResultConverged && lp.Result != names.ResultInSync) {
			return fmt.Errorf("last pass %+v", lp)
		}
		return nil
	})
}

// cpu is the agent's user+system CPU time so far, from /proc.
func (a *agentProc) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", a.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: fields count from after ")".
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc stat: %q", s)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc stat: %q", s)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// clockTicks is USER_HZ, which is 100 on every Linux the project runs on.
const clockTicks = 100

// mem is the agent's memory from /proc, in bytes.
type mem struct {
	rss, peak  float64 // VmRSS, VmHWM
	anon, file float64 // RssAnon (heap, stacks), RssFile (the binary's pages)
}

// memory reads VmRSS, VmHWM, RssAnon and RssFile from /proc.
func (a *agentProc) memory() (mem, error) {
	var m mem
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.cmd.Process.Pid))
	if err != nil {
		return m, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, _ := strconv.ParseFloat(f[0], 64)
		switch k {
		case "VmRSS":
			m.rss = n * 1024
		case "VmHWM":
			m.peak = n * 1024
		case "RssAnon":
			m.anon = n * 1024
		case "RssFile":
			m.file = n * 1024
		}
	}
	return m, nil
}

// goHeap reads the Go heap figures from the agent's /metrics.
func (a *agentProc) goHeap() (inuse, goal float64, err error) {
	_, body, err := a.get("/metrics")
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		name, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		f, _ := strconv.ParseFloat(v, 64)
		switch name {
		case "go_memstats_heap_inuse_bytes":
			inuse = f
		case "go_memstats_next_gc_bytes":
			goal = f
		}
	}
	return inuse, goal, nil
}

// stop sends SIGTERM and waits (then SIGKILL).
func (a *agentProc) stop() {
	select {
	case <-a.done:
		return
	default:
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(15 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
	}
}
