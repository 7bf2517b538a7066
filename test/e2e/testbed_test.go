//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/docker/docker/client"
	"github.com/kolo/xmlrpc"

	"reconciler.dev/reconciler/internal/testbedlock"
)

// Testbed is what `hack/testbed env` says about the running testbed.
type Testbed struct {
	DockerHost       string
	SystemBus        string
	SystemdContainer string
	SystemdImage     string // the image of SystemdContainer, for tests that start their own
	AMQPURL          string
	SupervisorSocket string
	SupervisorConfD  string
	SvscanDir        string
	RunitDir         string
	GitRoot          string
	GitFileURL       string
	GitHTTPURL       string
	WorkerBin        string
	Label            string
	GiteaURL         string // http://127.0.0.1:3300
	GiteaUser        string // its admin
	GiteaTokenFile   string // an API token of the admin
	AlertmanagerURL  string // http://127.0.0.1:9393, Debian's prometheus-alertmanager

	// Debian's Prometheus (see prometheus_test.go): its API, the folder of
	// file_sd target files it watches, and the bearer token it sends to
	// every agent (agents off loopback run with --token-file set to it).
	PrometheusURL        string // http://127.0.0.1:9090
	PrometheusTargetsDir string
	PrometheusTokenFile  string
}

var (
	tbOnce sync.Once
	tbVal  Testbed
	tbErr  error
)

// repoRoot is the module root, two levels above this package.
func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Join(wd, "..", "..")
}

// testbed returns the testbed's coordinates. It reads the environment that
// `eval "$(hack/testbed env)"` sets, or asks hack/testbed itself, and checks
// that the testbed is up: a test never silently runs against nothing.
func testbed(t testing.TB) Testbed {
	t.Helper()
	tbOnce.Do(func() { tbVal, tbErr = loadTestbed() })
	if tbErr != nil {
		t.Fatalf("testbed: %v", tbErr)
	}
	holdDaemons(t, false)
	return tbVal
}

var (
	daemonsMu   sync.Mutex
	daemonsHeld = map[string]bool{}
)

// holdDaemons takes the "daemons" lock for the rest of the test: shared by
// every test that uses the testbed, exclusive for a fault test that kills,
// freezes or restarts a daemon (exclusive=true, called before testbed).
// Test processes running at once on one testbed then never see a daemon
// die under them because another process's fault test killed it.
func holdDaemons(t testing.TB, exclusive bool) {
	t.Helper()
	top, _, _ := strings.Cut(t.Name(), "/") // a subtest runs under its parent's lock
	daemonsMu.Lock()
	if daemonsHeld[top] {
		daemonsMu.Unlock()
		return
	}
	daemonsHeld[top] = true
	daemonsMu.Unlock()
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	flockPart(t, "daemons", how)
	t.Cleanup(func() {
		daemonsMu.Lock()
		delete(daemonsHeld, top)
		daemonsMu.Unlock()
	})
}

// testbedScript is this checkout's hack/testbed.
func testbedScript() string { return filepath.Join(repoRoot(), "hack", "testbed") }

// hackTestbed runs hack/testbed with args (up, status, hosts up 5) and
// returns its combined output, trimmed, and its error.
func hackTestbed(args ...string) (string, error) { return execOut(testbedScript(), args...) }

func loadTestbed() (Testbed, error) {
	script := testbedScript()
	out, err := exec.Command(script, "env").Output()
	if err != nil {
		return Testbed{}, fmt.Errorf("%s env: %w", script, err)
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if ok {
			env[k] = v
		}
	}
	// The process environment wins, so a person can point tests elsewhere.
	get := func(k string) string {
		if v, ok := os.LookupEnv(k); ok {
			return v
		}
		return env[k]
	}
	tb := Testbed{
		DockerHost:       get("DOCKER_HOST"),
		SystemBus:        get("DBUS_SYSTEM_BUS_ADDRESS"),
		SystemdContainer: get("TESTBED_SYSTEMD_CONTAINER"),
		SystemdImage:     get("TESTBED_SYSTEMD_IMAGE"),
		AMQPURL:          get("TESTBED_AMQP_URL"),
		SupervisorSocket: get("TESTBED_SUPERVISOR_SOCKET"),
		SupervisorConfD:  get("TESTBED_SUPERVISOR_CONF_DIR"),
		SvscanDir:        get("TESTBED_SVSCAN_DIR"),
		RunitDir:         get("TESTBED_RUNIT_DIR"),
		GitRoot:          get("TESTBED_GIT_ROOT"),
		GitFileURL:       get("TESTBED_GIT_FILE_URL"),
		GitHTTPURL:       get("TESTBED_GIT_HTTP_URL"),
		WorkerBin:        get("TESTBED_WORKER_BIN"),
		Label:            get("TESTBED_LABEL"),
		GiteaURL:         get("TESTBED_GITEA_URL"),
		GiteaUser:        get("TESTBED_GITEA_USER"),
		GiteaTokenFile:   get("TESTBED_GITEA_TOKEN_FILE"),
		AlertmanagerURL:  get("TESTBED_ALERTMANAGER_URL"),

		PrometheusURL:        get("TESTBED_PROMETHEUS_URL"),
		PrometheusTargetsDir: get("TESTBED_PROMETHEUS_TARGETS_DIR"),
		PrometheusTokenFile:  get("TESTBED_PROMETHEUS_TOKEN_FILE"),
	}
	// Libraries under test read these from the environment, as in production.
	os.Setenv("DOCKER_HOST", tb.DockerHost)
	os.Setenv("DBUS_SYSTEM_BUS_ADDRESS", tb.SystemBus)

	if err := exec.Command(script, "status").Run(); err != nil {
		st, _ := exec.Command(script, "status").CombinedOutput()
		return tb, fmt.Errorf("not every part is up; run `hack/testbed up` (make test does):\n%s", st)
	}
	return tb, nil
}

// ctxT returns a context that ends with the test or after d.
func ctxT(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond every 100ms until it returns nil or the deadline
// passes, then fails the test with cond's last error.
func eventually(t testing.TB, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	var err error
	for {
		if err = cond(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func dockerClient(t testing.TB) *client.Client {
	t.Helper()
	testbed(t)
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func systemdConn(t testing.TB) *sddbus.Conn {
	t.Helper()
	testbed(t)
	conn, err := sddbus.NewSystemConnectionContext(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatalf("systemd over D-Bus (%s): %v", os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"), err)
	}
	t.Cleanup(conn.Close)
	return conn
}

// inSystemd runs a command inside the systemd container, the way an operator
// on the host would type it.
func inSystemd(t testing.TB, args ...string) string {
	t.Helper()
	tb := testbed(t)
	out, err := exec.Command("docker", append([]string{"exec", tb.SystemdContainer}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker exec %s %v: %v\n%s", tb.SystemdContainer, args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// run runs a command on the host and fails the test if it fails.
func run(t testing.TB, dir string, name string, args ...string) string {
	t.Helper()
	return runEnv(t, dir, nil, name, args...)
}

// runEnv is run with env added to the test's environment.
func runEnv(t testing.TB, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// execOut runs a command on the host and returns its combined output,
// trimmed, and its error: for a test that reads a failure as an answer.
func execOut(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// inSystemdTry runs a command inside the systemd container like inSystemd,
// but returns its error instead of failing the test: for a cleanup that
// may find nothing left to undo, or a test that reads a non-zero exit as
// an answer (systemctl is-active).
func inSystemdTry(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return execOut("docker", append([]string{"exec", testbed(t).SystemdContainer}, args...)...)
}

// inSystemdFile writes content to path inside the systemd container.
func inSystemdFile(t testing.TB, path, content string) {
	t.Helper()
	cmd := exec.Command("docker", "exec", "-i", testbed(t).SystemdContainer, "sh", "-c", "cat > "+path)
	cmd.Stdin = strings.NewReader(content)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("writing %s in the systemd container: %v\n%s", path, err, out)
	}
}

// writeFile writes content to path, making its folder first, and fails the
// test if it cannot.
func writeFile[T string | []byte](t testing.TB, path string, content T, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
}

// writeFileWhole writes content to path whole: into path.tmp, then renamed
// into place, so that a daemon watching the folder (svscan, Prometheus)
// never reads half a file.
func writeFileWhole(t testing.TB, path, content string, perm os.FileMode) {
	t.Helper()
	writeFile(t, path+".tmp", content, perm)
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// writeSecret writes content to a file called name in a temporary folder of
// the test, readable by its owner alone (a token, a webhook secret, a URL
// with a password in it), and returns its path.
func writeSecret(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	writeFile(t, path, content, 0o600)
	return path
}

// unixHTTPClient talks HTTP over a unix socket (supervisord, the Docker socket).
func unixHTTPClient(socket string) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", socket)
			},
		},
	}
}

// supervisorRPC is an XML-RPC client of the supervisord on socket, closed
// at the end of the test.
func supervisorRPC(t testing.TB, socket string) *xmlrpc.Client {
	t.Helper()
	rpc, err := xmlrpc.NewClient("http://supervisord/RPC2", unixHTTPClient(socket).Transport)
	if err != nil {
		t.Fatalf("XML-RPC client of %s: %v", socket, err)
	}
	t.Cleanup(func() { rpc.Close() })
	return rpc
}

// uniqueName returns a name no other test run uses: prefix-<pid>-<n>.
func uniqueName(prefix string) string {
	nameMu.Lock()
	defer nameMu.Unlock()
	nameSeq++
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), nameSeq)
}

var (
	nameMu  sync.Mutex
	nameSeq int
)

// lockTestbed takes an exclusive lock on one shared part of the testbed for
// the rest of the test: the factory-proxy services and the housekeeping
// timer, the usm-poller instances, the daemontools example's folders. Test
// processes that run at the same time (two people, or two sessions, on one
// testbed) then take turns instead of stepping on each other. It is a flock:
// the kernel releases it when the test ends or the process dies.
//
// The "daemons" lock is always taken first (shared, unless the test holds
// it already): every process then takes locks in one order, so a fault
// test holding "daemons" and waiting for a part never waits on a test that
// holds that part and waits for "daemons".
func lockTestbed(t testing.TB, part string) {
	t.Helper()
	holdDaemons(t, false)
	flockPart(t, part, syscall.LOCK_EX)
}

// flockPart takes a flock (syscall.LOCK_EX or LOCK_SH) on one part's lock
// file until the test ends.
func flockPart(t testing.TB, part string, how int) {
	t.Helper()
	release, err := testbedlock.Take(part, how, func() { t.Logf("waiting for the testbed lock %q held by another test process", part) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
}
