//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// reconcilerBin returns the binary under test: $RECONCILER_BIN (make
// test-e2e sets it), or one built once for this test run.
func reconcilerBin(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if p := os.Getenv("RECONCILER_BIN"); p != "" {
			binPath = p
			return
		}
		dir, err := os.MkdirTemp("", "reconciler-e2e-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "reconciler")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/reconciler")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = errors.New(string(out))
		}
	})
	if binErr != nil {
		t.Fatalf("building reconciler: %v", binErr)
	}
	return binPath
}

// Run is the outcome of one reconciler command.
type Run struct {
	Stdout, Stderr string
	Code           int
	Took           time.Duration
}

// cli runs the reconciler binary with args, in the testbed's environment
// plus env ("KEY=value"), and returns its outcome (never fails the test on a
// non-zero exit: callers assert the code they expect).
func cli(t testing.TB, env []string, args ...string) Run {
	t.Helper()
	testbed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, reconcilerBin(t), slices.Concat(args, testbedLimits(t, args))...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := Run{Stdout: out.String(), Stderr: errb.String(), Took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		t.Fatalf("reconciler %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// limitFlags are the agent's limits on what a revision may reach
// (reconciler run --help).
var limitFlags = []string{"--allow-exec-probes", "--daemontools-root", "--allowed-supervisor-sockets", "--secrets-dir"}

// testbedLimits returns the limit flags that let a run, plan or apply with
// args reach the testbed: exec probes, its svscan and runit folders, its
// supervisord socket, the tests' own service folders, proxy sockets and
// AMQP url files (all under os.TempDir), and /etc/reconciler. A test that
// passes any limit flag itself (to see a refusal) gets none of these.
func testbedLimits(t testing.TB, args []string) []string {
	t.Helper()
	if len(args) == 0 || !slices.Contains([]string{"run", "plan", "apply"}, args[0]) {
		return nil
	}
	for _, a := range args {
		for _, f := range limitFlags {
			if a == f || strings.HasPrefix(a, f+"=") {
				return nil
			}
		}
	}
	tb := testbed(t)
	tmp := filepath.Clean(os.TempDir())
	return []string{
		"--allow-exec-probes",
		"--daemontools-root", strings.Join([]string{tb.SvscanDir, tb.RunitDir, tmp}, ","),
		"--allowed-supervisor-sockets", strings.Join([]string{tb.SupervisorSocket, tmp + "/"}, ","),
		"--secrets-dir", strings.Join([]string{"/etc/reconciler", tmp}, ","),
	}
}

// mustCode fails the test unless the run exited with code.
func (r Run) mustCode(t testing.TB, code int, what string) Run {
	t.Helper()
	if r.Code != code {
		t.Fatalf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", what, r.Code, code, r.Stdout, r.Stderr)
	}
	return r
}
