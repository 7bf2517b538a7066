package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"golang.org/x/sync/errgroup"

	"reconciler.dev/reconciler/internal/callcount"
	"reconciler.dev/reconciler/internal/filetree"
	"reconciler.dev/reconciler/internal/gitserver"
	"reconciler.dev/reconciler/internal/testbedlock"
)

// benchLabel marks everything the bench creates, besides the testbed's own
// label (so `hack/testbed down` removes it too).
const benchLabel = "dev.reconciler.bench"

// env is the testbed as the bench sees it, and what the bench made on it.
type env struct {
	root      string // the repository
	bin       string // bin/reconciler
	work      string // the bench's scratch folder
	testbed   map[string]string
	docker    *client.Client
	dockerP   *callcount.DockerProxy // what reconciler processes talk to
	dbusP     *callcount.DBusProxy
	cleanups  []func()
	serviceMu sync.Mutex
	services  map[string]string // bench service name -> id
	repos     int               // repositories made so far
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// newEnv reads `hack/testbed env`, checks the testbed is up and starts the
// counting proxies every reconciler process of the bench talks through.
func newEnv(root string) (*env, error) {
	e := &env{root: root, bin: filepath.Join(root, "bin", "reconciler"), services: map[string]string{}}
	if _, err := os.Stat(e.bin); err != nil {
		return nil, fmt.Errorf("%s: %w (make bench builds it)", e.bin, err)
	}
	script := filepath.Join(root, "hack", "testbed")
	out, err := exec.Command(script, "env").Output()
	if err != nil {
		return nil, fmt.Errorf("%s env: %w", script, err)
	}
	e.testbed = map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "="); ok {
			e.testbed[k] = v
			os.Setenv(k, v) // the docker CLI and the runbook scripts read them
		}
	}
	if st, err := exec.Command(script, "status").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("the testbed is not up (make bench runs hack/testbed up):\n%s", st)
	}
	// Unix socket paths are short: the scratch folder lives under /tmp.
	if e.work, err = os.MkdirTemp("", "rbench-"); err != nil {
		return nil, err
	}
	e.cleanup(func() { os.RemoveAll(e.work) })
	e.docker, err = client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, err
	}
	e.cleanup(func() { e.docker.Close() })
	if e.dockerP, err = callcount.NewDockerProxy(filepath.Join(e.work, "docker.sock"), e.testbed["DOCKER_HOST"]); err != nil {
		return nil, err
	}
	e.cleanup(func() { e.dockerP.Close() })
	if e.dbusP, err = callcount.NewDBusProxy(filepath.Join(e.work, "bus.sock"), e.testbed["DBUS_SYSTEM_BUS_ADDRESS"]); err != nil {
		return nil, err
	}
	e.cleanup(func() { e.dbusP.Close() })
	return e, nil
}

func (e *env) cleanup(f func()) { e.cleanups = append(e.cleanups, f) }

// close undoes everything, last made first.
func (e *env) close() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
	e.cleanups = nil
}

// countedEnv is the environment of a reconciler process whose Docker and
// D-Bus calls the proxies count.
func (e *env) countedEnv() []string {
	return append(os.Environ(), "DOCKER_HOST="+e.dockerP.Host(), "DBUS_SYSTEM_BUS_ADDRESS="+e.dbusP.Address())
}

// resetCounts zeroes both proxies.
func (e *env) resetCounts() {
	e.dockerP.Reset()
	e.dbusP.Reset()
}

// calls is what the proxies saw since the last reset.
type calls struct {
	dockerReads, dockerWrites, updates int
	dbusReads, dbusWrites              int
	docker, dbus                       map[string]int
}

func (e *env) calls() calls {
	c := calls{
		dockerReads: e.dockerP.Reads(), dockerWrites: e.dockerP.Mutating(),
		dbusReads: e.dbusP.Reads(), dbusWrites: e.dbusP.Mutating(),
		docker: e.dockerP.Counts(), dbus: e.dbusP.Counts(),
	}
	c.updates = c.docker["POST /services/{id}/update"]
	return c
}

// runResult is one finished process: wall time and CPU (user+sys).
type runResult struct {
	wall, cpu time.Duration
	out       string
	code      int
}

// run runs a command to its end, timing it; stdout and stderr are kept
// for errors.
func (e *env) run(ctx context.Context, environ []string, name string, args ...string) (runResult, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = environ
	cmd.Dir = e.root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	r := runResult{wall: time.Since(start), out: out.String()}
	if cmd.ProcessState != nil {
		r.code = cmd.ProcessState.ExitCode()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	if err != nil {
		return r, fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, lastLines(r.out, 30))
	}
	return r, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// reconciler runs bin/reconciler through the counting proxies.
func (e *env) reconciler(ctx context.Context, args ...string) (runResult, error) {
	return e.run(ctx, e.countedEnv(), e.bin, args...)
}

// inSystemd runs systemctl (or anything) in the testbed's systemd
// container.
func (e *env) inSystemd(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "docker", append([]string{"exec", e.testbed["TESTBED_SYSTEMD_CONTAINER"]}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// lock takes the testbed lock the e2e tests take on a shared part
// (lockTestbed in test/e2e/testbed_test.go): the factory-proxy services
// and timer are the e2e tests' too.
func (e *env) lock(part string) (func(), error) { return e.flock(part, syscall.LOCK_EX) }

// lockShared takes a testbed lock shared: "daemons", which the e2e fault
// tests take exclusively while they kill and restart daemons.
func (e *env) lockShared(part string) (func(), error) { return e.flock(part, syscall.LOCK_SH) }

func (e *env) flock(part string, how int) (func(), error) {
	return testbedlock.Take(part, how, func() { e.logf("waiting for the testbed lock %q (a test holds it)", part) })
}

// ---------------------------------------------------------------------------
// Swarm services

// createServices makes replicated services of the worker image with the
// given replica count, concurrently, labelled for cleanup; existing ones
// (left by an interrupted run) are removed first.
func (e *env) createServices(ctx context.Context, names []string, replicas uint64) error {
	grace := 2 * time.Second
	var g errgroup.Group
	g.SetLimit(8)
	var mu sync.Mutex
	for _, name := range names {
		g.Go(func() error {
			_ = e.docker.ServiceRemove(ctx, name)
			n := replicas
			resp, err := e.docker.ServiceCreate(ctx, swarm.ServiceSpec{
				Annotations: swarm.Annotations{Name: name, Labels: map[string]string{e.testbed["TESTBED_LABEL"]: "1", benchLabel: "1"}},
				TaskTemplate: swarm.TaskSpec{
					ContainerSpec: &swarm.ContainerSpec{Image: "local/worker:1", StopGracePeriod: &grace,
						Labels: map[string]string{benchLabel: "1"}},
				},
				Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &n}},
			}, swarm.ServiceCreateOptions{})
			if err != nil {
				return fmt.Errorf("creating service %s: %w", name, err)
			}
			mu.Lock()
			defer mu.Unlock()
			e.services[name] = resp.ID
			return nil
		})
	}
	return g.Wait()
}

// removeBenchServices removes every service the bench labelled and waits
// until their containers are gone.
func (e *env) removeBenchServices(ctx context.Context) error {
	list, err := e.docker.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", benchLabel+"=1"))})
	if err != nil {
		return err
	}
	for _, s := range list {
		_ = e.docker.ServiceRemove(ctx, s.ID)
	}
	return e.waitFor(ctx, 2*time.Minute, "bench containers gone", func() error {
		cs, err := e.docker.ContainerList(ctx, containerListAll(benchLabel+"=1"))
		if err != nil {
			return err
		}
		if len(cs) > 0 {
			return fmt.Errorf("%d containers left", len(cs))
		}
		return nil
	})
}

// scale sets services' replica counts directly through the API (the
// bench's own resets, never timed), then waits until they run that many.
func (e *env) scale(ctx context.Context, names []string, replicas uint64) error {
	for _, name := range names {
		for attempt := 0; ; attempt++ {
			s, _, err := e.docker.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
			if err != nil {
				return err
			}
			n := replicas
			s.Spec.Mode.Replicated.Replicas = &n
			_, err = e.docker.ServiceUpdate(ctx, s.ID, s.Version, s.Spec, swarm.ServiceUpdateOptions{})
			if err == nil {
				break
			}
			// A reset re-reads the service on every try, so any failure
			// (an update out of sequence among them) is simply tried
			// again, a few times.
			if attempt > 3 {
				return err
			}
		}
	}
	want := map[string]int{}
	for _, n := range names {
		want[n] = int(replicas)
	}
	return e.waitRunning(ctx, want)
}

// waitRunning waits until each service asks for and runs exactly the given
// number of tasks, and no container of it is left stopping.
func (e *env) waitRunning(ctx context.Context, want map[string]int) error {
	return e.waitFor(ctx, 3*time.Minute, "services settled", func() error {
		list, err := e.docker.ServiceList(ctx, swarm.ServiceListOptions{Status: true})
		if err != nil {
			return err
		}
		got := map[string]swarm.Service{}
		for _, s := range list {
			got[s.Spec.Name] = s
		}
		for name, n := range want {
			s, ok := got[name]
			if !ok {
				return fmt.Errorf("%s missing", name)
			}
			if r := s.Spec.Mode.Replicated.Replicas; r == nil || int(*r) != n {
				return fmt.Errorf("%s asks for %v replicas, want %d", name, r, n)
			}
			if s.ServiceStatus == nil || int(s.ServiceStatus.RunningTasks) != n {
				return fmt.Errorf("%s: %+v running, want %d", name, s.ServiceStatus, n)
			}
		}
		return nil
	})
}

func (e *env) waitFor(ctx context.Context, within time.Duration, what string, cond func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s: not within %s: %w", what, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// serviceNames maps service ids in the proxy's log back to names.
func (e *env) serviceName(id string) string {
	e.serviceMu.Lock()
	defer e.serviceMu.Unlock()
	for n, i := range e.services {
		if i == id || strings.HasPrefix(i, id) {
			return n
		}
	}
	return id
}

// ---------------------------------------------------------------------------
// Git

// gitRepo is a bare repository on the testbed's git server and a work tree
// the bench commits from, as an operator would.
type gitRepo struct {
	e                *env
	name, bare, work string
	httpURL          string
}

func (e *env) newRepo(name string) (*gitRepo, error) {
	e.repos++
	r := &gitRepo{e: e, name: fmt.Sprintf("bench-%s-%d-%d.git", name, os.Getpid(), e.repos)}
	r.bare = filepath.Join(e.testbed["TESTBED_GIT_ROOT"], r.name)
	r.work = filepath.Join(e.work, strings.TrimSuffix(r.name, ".git"))
	r.httpURL = e.testbed["TESTBED_GIT_HTTP_URL"] + "/" + r.name
	os.RemoveAll(r.bare)
	e.cleanup(func() { os.RemoveAll(r.bare) })
	if err := r.git("", "init", "-q", "--bare", "-b", "main", r.bare); err != nil {
		return nil, err
	}
	if err := r.git("", "init", "-q", "-b", "main", r.work); err != nil {
		return nil, err
	}
	if err := r.git(r.work, "remote", "add", "origin", "file://"+r.bare); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *gitRepo) git(dir string, args ...string) error {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=bench", "GIT_AUTHOR_EMAIL=bench@localhost",
		"GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@localhost")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// commit writes files, commits them and pushes to branch (over file://, so
// the http server's counters see only the reconciler). It returns when
// `git push` has returned.
func (r *gitRepo) commit(branch, msg string, files map[string]string) error {
	if err := filetree.Write(r.work, files); err != nil {
		return err
	}
	if err := r.git(r.work, "add", "-A"); err != nil {
		return err
	}
	if err := r.git(r.work, "commit", "-q", "--allow-empty", "-m", msg); err != nil {
		return err
	}
	return r.git(r.work, "push", "-q", "-f", "origin", "HEAD:"+branch)
}

func (r *gitRepo) head() (string, error) {
	out, err := exec.Command("git", "-C", r.work, "rev-parse", "HEAD").Output()
	return strings.TrimSpace(string(out)), err
}

// stats reads the git server's counters for the repository.
func (r *gitRepo) stats() (gitserver.Counts, error) {
	var c gitserver.Counts
	c10 := &http.Client{Timeout: 10 * time.Second} // a loaded server must not stall the bench
	resp, err := c10.Get(r.e.testbed["TESTBED_GIT_HTTP_URL"] + "/_stats?repo=" + r.name)
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&c)
	return c, err
}
