//go:build e2e

package e2e

// End-to-end tests of the daemontools driver (issue 7, seed 003) against the
// testbed's real daemontools (svscan over /service, one supervise per
// folder) and runit (runsvdir over TESTBED_RUNIT_DIR, one runsv per
// folder). They read like the runbook they replace: the host's packaging
// installs service folders with run scripts (the tests do, with the worker
// standing in for slapd, amavis, squid...), git says which are up, and
// `reconciler apply` / `reconciler run` make it so. What really happened is
// read with the real tools (svstat, sv status) and the files supervise
// keeps; the status record is decoded with the driver's parser only where
// no tool shows the field (the want byte of a once service, the record
// time of a service that must not have been started).

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"reconciler.dev/reconciler/controllers/daemontools"
)

const dtHost = "dt-01"

// dtExampleNames are the services examples/daemontools-services declares.
var dtExampleNames = []string{"slapd", "amavis", "mldonkey", "cache-warmup", "squid"}

// dtExampleRun returns the run scripts the host's packaging installs for the
// example's services. The worker answers on the ports the example probes;
// cache-warmup is a job that runs for two seconds and exits.
func dtExampleRun(tb Testbed) map[string]string {
	w := tb.WorkerBin
	return map[string]string{
		"slapd":        "#!/bin/sh\nexec env WORKER_LISTEN=127.0.0.1:9389 " + w + " slapd\n",
		"amavis":       "#!/bin/sh\nexec env WORKER_LISTEN=127.0.0.1:9390 " + w + " amavis\n",
		"mldonkey":     "#!/bin/sh\nexec " + w + " mldonkey\n",
		"cache-warmup": "#!/bin/sh\necho warming the squid cache\nexec sleep 2\n",
		"squid":        "#!/bin/sh\nexec " + w + " squid\n",
	}
}

func dtExampleDir() string { return filepath.Join(repoRoot(), "examples", "daemontools-services") }

func dtExampleHost(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dtExampleDir(), "hosts", "dt-01.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dtEdit replaces old by new in a YAML document, failing if old is not there.
func dtEdit(t testing.TB, doc, old, new string) string {
	t.Helper()
	if !strings.Contains(doc, old) {
		t.Fatalf("the document has no %q", old)
	}
	return strings.Replace(doc, old, new, 1)
}

// dtSource writes a desired-state folder holding one host document.
func dtSource(t testing.TB, host string) string {
	t.Helper()
	return sourceDir(t, map[string]string{"hosts/" + dtHost + ".yaml": host})
}

// ---------------------------------------------------------------------------
// Service folders, as packaging installs them

// dtKind says which supervisor a folder lives under.
type dtKind int

const (
	dtDaemontools dtKind = iota
	dtRunit
)

// dtInstall creates root/<name>/run for each service (and root/<name>/down
// for those in down), waits until supervise (or runsv) runs in every
// folder, and removes them all when the test ends. A folder left behind by
// an earlier run is removed first.
func dtInstall(t *testing.T, kind dtKind, root string, runs map[string]string, down map[string]bool) map[string]string {
	t.Helper()
	dirs := map[string]string{}
	for name, run := range runs {
		dir := filepath.Join(root, name)
		if _, err := os.Stat(dir); err == nil {
			t.Logf("removing %s left by an earlier run", dir)
			dtRemove(kind, root, name)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if down[name] {
			writeFile(t, filepath.Join(dir, "down"), "", 0o644)
		}
		// The run script last: svscan may look at the folder any moment.
		writeFileWhole(t, filepath.Join(dir, "run"), run, 0o755)
		dirs[name] = dir
		t.Cleanup(func() { dtRemove(kind, root, name) })
	}
	// svscan and runsvdir look for new folders every 5 seconds.
	for name, dir := range dirs {
		eventually(t, 20*time.Second, "supervise running for "+name, func() error {
			if err := dtSupervised(dir); err != nil {
				return err
			}
			_, err := dtRecord(dir)
			return err
		})
	}
	return dirs
}

// dtRemove takes a service away the way the daemontools and runit docs say:
// hide it from the scanner (svscan and runsvdir skip dot-folders), stop the
// service and its supervise, and delete the folder once supervise has
// exited (before that, supervise may still write its status into it). A
// hidden folder an earlier removal left is finished off first.
func dtRemove(kind dtKind, root, name string) {
	dir := filepath.Join(root, name)
	hidden := filepath.Join(root, "."+name)
	dtStopAndDelete(kind, hidden)
	if err := os.Rename(dir, hidden); err != nil {
		return
	}
	dtStopAndDelete(kind, hidden)
}

func dtStopAndDelete(kind dtKind, dir string) {
	if _, err := os.Stat(dir); err != nil {
		return
	}
	if kind == dtDaemontools {
		exec.Command("svc", "-dx", dir).Run()
	} else {
		exec.Command("sv", "-w", "5", "down", dir).Run()
		exec.Command("sv", "exit", dir).Run()
	}
	for i := 0; i < 100 && dtSupervised(dir) == nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	os.RemoveAll(dir)
}

// dtSupervised checks, as svok does, that a supervise holds DIR/supervise/ok.
func dtSupervised(dir string) error {
	fd, err := syscall.Open(filepath.Join(dir, "supervise", "ok"), syscall.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("%s: no supervise: %w", dir, err)
	}
	return syscall.Close(fd)
}

// dtRecord reads a folder's status record.
func dtRecord(dir string) (daemontools.Status, error) {
	b, err := os.ReadFile(filepath.Join(dir, "supervise", "status"))
	if err != nil {
		return daemontools.Status{}, err
	}
	return daemontools.ParseStatus(b)
}

func dtMustRecord(t testing.TB, dir string) daemontools.Status {
	t.Helper()
	st, err := dtRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// dtTool asks the real tool: svstat for daemontools, sv status for runit.
func dtTool(kind dtKind, dir string) string {
	var out []byte
	if kind == dtDaemontools {
		out, _ = exec.Command("svstat", dir).CombinedOutput()
	} else {
		out, _ = exec.Command("sv", "status", dir).CombinedOutput()
	}
	return strings.TrimSpace(string(out))
}

// dtIsUp and dtIsDown read the tool's words: "DIR: up (pid 1) 3 seconds",
// "DIR: down 2 seconds, normally up" (svstat); "run: DIR: (pid 1) 3s",
// "down: DIR: 2s, normally up" (sv).
func dtIsUp(kind dtKind, dir string) error {
	s := dtTool(kind, dir)
	if kind == dtDaemontools && strings.Contains(s, ": up (pid ") || kind == dtRunit && strings.HasPrefix(s, "run: ") {
		return nil
	}
	return fmt.Errorf("not up: %s", s)
}

func dtIsDown(kind dtKind, dir string) error {
	s := dtTool(kind, dir)
	if kind == dtDaemontools && strings.Contains(s, ": down ") || kind == dtRunit && strings.HasPrefix(s, "down: ") {
		return nil
	}
	return fmt.Errorf("not down: %s", s)
}

func dtHasDownFile(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "down"))
	return err == nil
}

// dtExpect waits until every service is as said: "up" (running, supervise
// wants it up, no down file), "down" (not running, down file) or "once"
// (svc -o: supervise will not restart it; down file so a reboot does not
// start it with restarts).
func dtExpect(t *testing.T, kind dtKind, dirs map[string]string, want map[string]string) {
	t.Helper()
	for name, w := range want {
		dir := dirs[name]
		eventually(t, 15*time.Second, name+" "+w, func() error {
			st, err := dtRecord(dir)
			if err != nil {
				return err
			}
			switch w {
			case "up":
				if err := dtIsUp(kind, dir); err != nil {
					return err
				}
				if st.Want != 'u' || dtHasDownFile(dir) {
					return fmt.Errorf("want %q, down file %v", st.Want, dtHasDownFile(dir))
				}
			case "down":
				if err := dtIsDown(kind, dir); err != nil {
					return err
				}
				if st.Want != 'd' || !dtHasDownFile(dir) {
					return fmt.Errorf("want %q, down file %v", st.Want, dtHasDownFile(dir))
				}
			case "once":
				if st.Want != 0 || !dtHasDownFile(dir) {
					return fmt.Errorf("want %q (svc -o writes 0), down file %v: %s", st.Want, dtHasDownFile(dir), dtTool(kind, dir))
				}
			default:
				t.Fatalf("unknown state %q", w)
			}
			return nil
		})
	}
}

// dtPortsFree waits until nothing answers on the example's ports, so a
// probe cannot pass thanks to a process left over from another run.
func dtPortsFree(t *testing.T, addrs ...string) {
	t.Helper()
	for _, addr := range addrs {
		eventually(t, 10*time.Second, addr+" free", func() error {
			if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
				c.Close()
				return fmt.Errorf("something answers on %s", addr)
			}
			return nil
		})
	}
}

// dtInstallExample installs the example's folders under /service, all with a
// down file (the package ships them stopped; git says what runs).
func dtInstallExample(t *testing.T, runs map[string]string) map[string]string {
	t.Helper()
	lockTestbed(t, "daemontools-example")
	tb := testbed(t)
	down := map[string]bool{}
	for _, n := range dtExampleNames {
		down[n] = true
		dtRemove(dtDaemontools, tb.SvscanDir, n) // whatever an earlier run left
	}
	dtPortsFree(t, "127.0.0.1:9389", "127.0.0.1:9390")
	return dtInstall(t, dtDaemontools, tb.SvscanDir, runs, down)
}

var dtRestartOnRE = regexp.MustCompile(`restartOn: "([^"]*)"`)

// ---------------------------------------------------------------------------
// A reboot, as far as daemontools can tell

const dtSvscanPidfile = "/run/reconciler-testbed/svscan.pid"

// dtRestartSvscan plays a reboot for the example's services: svscan, their
// supervise processes and the services themselves die, then svscan starts
// again over the same folder, in its own session, logging where the testbed
// logs it, with its pid in the testbed's pidfile so hack/testbed keeps
// working. Every new supervise starts its service unless a down file says
// otherwise.
func dtRestartSvscan(t *testing.T, dirs map[string]string) {
	t.Helper()
	tb := testbed(t)
	t.Cleanup(func() { dtEnsureSvscan(t) })
	b, err := os.ReadFile(dtSvscanPidfile)
	if err != nil {
		t.Fatal(err)
	}
	old, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	_ = syscall.Kill(old, syscall.SIGTERM)
	eventually(t, 5*time.Second, "old svscan gone", func() error {
		if syscall.Kill(old, 0) == nil && !dtZombie(old) {
			return fmt.Errorf("pid %d still there", old)
		}
		return nil
	})
	for name, dir := range dirs {
		for _, pid := range dtSupervisePIDs(tb.SvscanDir, name) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if st, err := dtRecord(dir); err == nil && st.PID != 0 {
			_ = syscall.Kill(st.PID, syscall.SIGKILL)
		}
	}
	for name := range dirs {
		eventually(t, 5*time.Second, "supervise of "+name+" gone", func() error {
			return dtNot(dtSupervised(dirs[name]))
		})
	}
	dtStartSvscan(t)
}

func dtNot(err error) error {
	if err == nil {
		return fmt.Errorf("still there")
	}
	return nil
}

// dtStartSvscan starts `svscan /service` detached, as hack/testbed does.
func dtStartSvscan(t *testing.T) {
	t.Helper()
	tb := testbed(t)
	logf, err := os.OpenFile("/var/lib/reconciler-testbed/log/svscan.log", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command("svscan", tb.SvscanDir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	writeFile(t, dtSvscanPidfile, strconv.Itoa(pid)+"\n", 0o644)
	t.Logf("svscan %s started again: pid %d", tb.SvscanDir, pid)
}

// dtEnsureSvscan leaves the testbed with an svscan running, whatever
// happened to the test.
func dtEnsureSvscan(t *testing.T) {
	if b, err := os.ReadFile(dtSvscanPidfile); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && syscall.Kill(pid, 0) == nil && !dtZombie(pid) {
			return
		}
	}
	dtStartSvscan(t)
}

func dtZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z'
}

// dtSupervisePIDs finds the `supervise NAME` processes svscan started in
// root: supervise works in the service folder itself (its cwd).
func dtSupervisePIDs(root, name string) []int {
	var out []int
	for _, pid := range hostPIDs() {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || string(cmdline) != "supervise\x00"+name+"\x00" {
			continue
		}
		if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err == nil && cwd == filepath.Join(root, name) {
			out = append(out, pid)
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// The tests

// TestDaemontoolsExampleApply: `reconciler apply` converges the seed 003
// example on a host whose packaging installed every service stopped:
// slapd, amavis (after slapd is ready) and squid up, mldonkey kept down,
// cache-warmup run once and not restarted when it exits; down files in line
// with git; squid's restartOn recorded. A second apply changes nothing.
func TestDaemontoolsExampleApply(t *testing.T) {
	tb := testbed(t)
	dirs := dtInstallExample(t, dtExampleRun(tb))
	src := dtExampleDir()

	r := cli(t, nil, "apply", "--source", src, "--host", dtHost).mustCode(t, 0, "apply of examples/daemontools-services")
	t.Logf("apply took %s:\n%s", r.Took.Round(time.Millisecond), r.Stderr)
	slapdReady := strings.Index(r.Stderr, "daemontools/slapd: ready")
	amavisStart := strings.Index(r.Stderr, "daemontools/amavis replicas 0 -> 1")
	if slapdReady < 0 || amavisStart < 0 || amavisStart < slapdReady {
		t.Errorf("amavis must be started only after slapd is ready (ready at %d, start at %d)", slapdReady, amavisStart)
	}
	dtExpect(t, dtDaemontools, dirs, map[string]string{
		"slapd": "up", "amavis": "up", "squid": "up", "mldonkey": "down", "cache-warmup": "once",
	})
	want := dtRestartOnRE.FindStringSubmatch(dtExampleHost(t))[1]
	if b, _ := os.ReadFile(filepath.Join(dirs["squid"], ".reconciler-restart-on")); strings.TrimSpace(string(b)) != want {
		t.Errorf("squid's restartOn record = %q, want %q", b, want)
	}

	// cache-warmup ran once: it exits after 2 s and supervise leaves it down.
	eventually(t, 10*time.Second, "cache-warmup finished", func() error {
		if st := dtMustRecord(t, dirs["cache-warmup"]); st.PID != 0 {
			return fmt.Errorf("still running: %s", dtTool(dtDaemontools, dirs["cache-warmup"]))
		}
		return nil
	})
	finished := dtMustRecord(t, dirs["cache-warmup"])
	time.Sleep(1500 * time.Millisecond) // supervise would restart within a second
	if st := dtMustRecord(t, dirs["cache-warmup"]); st.PID != 0 || !st.Changed.Equal(finished.Changed) {
		t.Errorf("cache-warmup was restarted: %s", dtTool(dtDaemontools, dirs["cache-warmup"]))
	}

	// Level-based and no needless writes: a second pass finds nothing to do,
	// and the finished once service is not run again.
	cli(t, nil, "plan", "--source", src, "--host", dtHost).mustCode(t, 0, "plan after apply")
	r = cli(t, nil, "apply", "--source", src, "--host", dtHost).mustCode(t, 0, "second apply")
	if !strings.Contains(r.Stderr, ": 0 action(s)") {
		t.Errorf("second apply did something:\n%s", r.Stderr)
	}
	if st := dtMustRecord(t, dirs["cache-warmup"]); !st.Changed.Equal(finished.Changed) {
		t.Errorf("cache-warmup was started again: %s", dtTool(dtDaemontools, dirs["cache-warmup"]))
	}
}

// TestDaemontoolsExampleRunDownByCommitSurvivesReboot: the agent converges
// the example from git; a commit takes amavis down (its down file is
// written) and changes squid's restartOn (a running squid is restarted);
// then a reboot of daemontools (svscan, supervise and services killed,
// svscan started again, no agent running) leaves amavis, mldonkey and
// cache-warmup down and slapd and squid up: the down files alone say so.
func TestDaemontoolsExampleRunDownByCommitSurvivesReboot(t *testing.T) {
	tb := testbed(t)
	dirs := dtInstallExample(t, dtExampleRun(tb))
	repo := newGitRepo(t, "dt-example")
	host := dtExampleHost(t)
	rev1 := repo.Commit("seed 003: daemontools services of dt-01", map[string]string{"hosts/dt-01.yaml": host})

	a := startAgent(t, agentConfig{Source: repo.FileURL, Host: dtHost, StopWithin: 15 * time.Second})
	awaitConverged(t, a, rev1, 90*time.Second)
	dtExpect(t, dtDaemontools, dirs, map[string]string{
		"slapd": "up", "amavis": "up", "squid": "up", "mldonkey": "down", "cache-warmup": "once",
	})
	// /status shows what the last plan observed: the next pass sees slapd up.
	eventually(t, 15*time.Second, "slapd up in /status", func() error {
		st, err := tryAgentStatus(a.Addr)
		if err != nil {
			return err
		}
		for _, o := range st.Objects {
			if o.Subject == "daemontools/slapd" {
				d := o.Details
				if d["state"] != "up" || d["pid"] == "" || d["uptime"] == "" || d["since"] == "" || d["normally"] != "up" || d["want"] != "up" {
					return fmt.Errorf("details %v", d)
				}
				return nil
			}
		}
		return fmt.Errorf("no slapd in /status")
	})
	squidBefore := dtMustRecord(t, dirs["squid"])

	doc := dtEdit(t, host, "- name: amavis\n      driver: daemontools\n      replicas: 1",
		"- name: amavis\n      driver: daemontools\n      replicas: 0")
	newHash := "sha256:0000000000000000000000000000000000000000000000000000000000000002"
	doc = dtRestartOnRE.ReplaceAllString(doc, `restartOn: "`+newHash+`"`)
	rev2 := repo.Commit("amavis down for maintenance; new squid.conf", map[string]string{"hosts/dt-01.yaml": doc})
	awaitConverged(t, a, rev2, 60*time.Second)
	dtExpect(t, dtDaemontools, dirs, map[string]string{"amavis": "down", "squid": "up", "slapd": "up"})
	squidAfter := dtMustRecord(t, dirs["squid"])
	if squidAfter.PID == squidBefore.PID {
		t.Errorf("squid was not restarted for its new restartOn (pid %d)", squidAfter.PID)
	}
	if b, _ := os.ReadFile(filepath.Join(dirs["squid"], ".reconciler-restart-on")); strings.TrimSpace(string(b)) != newHash {
		t.Errorf("squid's restartOn record = %q", b)
	}
	a.stop()

	up := map[string]int{}
	for _, n := range []string{"slapd", "squid"} {
		up[n] = dtMustRecord(t, dirs[n]).PID
	}
	dtRestartSvscan(t, dirs)
	for n, old := range up {
		eventually(t, 20*time.Second, n+" started by the new supervise", func() error {
			st, err := dtRecord(dirs[n])
			if err != nil {
				return err
			}
			if err := dtIsUp(dtDaemontools, dirs[n]); err != nil {
				return err
			}
			if st.PID == old {
				return fmt.Errorf("still the old pid %d", old)
			}
			return nil
		})
	}
	for _, n := range []string{"amavis", "mldonkey", "cache-warmup"} {
		eventually(t, 20*time.Second, n+" under a new supervise", func() error { return dtSupervised(dirs[n]) })
	}
	// Give supervise time to do anything it would, then check.
	time.Sleep(2 * time.Second)
	dtExpect(t, dtDaemontools, dirs, map[string]string{"slapd": "up", "squid": "up", "amavis": "down", "mldonkey": "down"})
	if st := dtMustRecord(t, dirs["cache-warmup"]); st.PID != 0 || !dtHasDownFile(dirs["cache-warmup"]) {
		t.Errorf("cache-warmup was started with restarts at boot: %s", dtTool(dtDaemontools, dirs["cache-warmup"]))
	}
	if _, err := hackTestbed("status"); err != nil {
		t.Errorf("hack/testbed status after the svscan restart: %v", err)
	}
}

// TestDaemontoolsProbeNeverPassesBringsItDown: slapd starts but never
// answers on 9389. Like the runbook's start script, apply tries the probe
// until its timeout, brings slapd down again (svc -d and its down file),
// exits 1 naming slapd with the probe's last output, and never starts
// amavis, which depends on it. (The example's 30 s probe timeout is cut to
// 6 s to keep the test short.)
func TestDaemontoolsProbeNeverPassesBringsItDown(t *testing.T) {
	tb := testbed(t)
	runs := dtExampleRun(tb)
	runs["slapd"] = "#!/bin/sh\n# starts, but never answers\nexec " + tb.WorkerBin + " slapd\n"
	dirs := dtInstallExample(t, runs)
	host := dtEdit(t, dtExampleHost(t), `timeout: 30s, interval: 5s`, `timeout: 6s, interval: 2s`)
	amavisBefore := dtMustRecord(t, dirs["amavis"])

	r := cli(t, nil, "apply", "--source", dtSource(t, host), "--host", dtHost).mustCode(t, 1, "apply with a slapd that never answers")
	t.Logf("apply took %s:\n%s", r.Took.Round(time.Millisecond), r.Stderr)
	for _, want := range []string{
		"daemontools/slapd: ready probe failed: tcp 127.0.0.1:9389 did not pass within 6s",
		"connect: connection refused", // the probe's last output
	} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	// The probe tries every 2 s until its 6 s are up, the last try on the
	// deadline: four tries, over 6 s at least.
	if r.Took < 6*time.Second || !strings.Contains(r.Stderr, "(4 tries; last: ") {
		t.Errorf("apply gave up after %s, before the probe had its tries", r.Took)
	}
	dtExpect(t, dtDaemontools, dirs, map[string]string{"slapd": "down"})
	if st := dtMustRecord(t, dirs["amavis"]); st.PID != 0 || st.Want != 'd' || !st.Changed.Equal(amavisBefore.Changed) || !dtHasDownFile(dirs["amavis"]) {
		t.Errorf("amavis was touched: %s (down file %v)", dtTool(dtDaemontools, dirs["amavis"]), dtHasDownFile(dirs["amavis"]))
	}
	if !strings.Contains(r.Stderr, "daemontools/amavis: not changed: its dependency slapd is not ready") {
		t.Errorf("stderr does not say why amavis was not started")
	}
}

// TestDaemontoolsCrashLoopReported: a service whose run script exits at once
// is restarted by supervise every second. The agent's /status shows it
// crash-looping, with the restarts it counted, within a few seconds of
// starting.
func TestDaemontoolsCrashLoopReported(t *testing.T) {
	tb := testbed(t)
	name := uniqueName("dt-crash")
	dirs := dtInstall(t, dtDaemontools, tb.SvscanDir, map[string]string{
		name: "#!/bin/sh\nexec env WORKER_FAIL_START=1 " + tb.WorkerBin + " " + name + "\n",
	}, nil)
	first := dtMustRecord(t, dirs[name])
	eventually(t, 10*time.Second, name+" restarted by supervise", func() error {
		if st := dtMustRecord(t, dirs[name]); st.PID == first.PID {
			return fmt.Errorf("pid %d", st.PID)
		}
		return nil
	})
	src := dtSource(t, fmt.Sprintf(`apiVersion: reconciler.dev/v1
kind: Host
metadata: {name: %s}
spec:
  services:
    - name: %s
      driver: daemontools
      replicas: 1
`, dtHost, name))

	start := time.Now()
	a := startAgent(t, agentConfig{Source: src, Host: dtHost, StopWithin: 15 * time.Second})
	var details map[string]string
	var live string
	eventually(t, 15*time.Second, name+" reported crash-looping in /status", func() error {
		st, err := tryAgentStatus(a.Addr)
		if err != nil {
			return err
		}
		for _, o := range st.Objects {
			if o.Subject == "daemontools/"+name {
				details, live = o.Details, o.Live
				if o.Details["crash-looping"] == "true" {
					return nil
				}
				return fmt.Errorf("details %v", o.Details)
			}
		}
		return fmt.Errorf("no object %s yet", name)
	})
	took := time.Since(start)
	t.Logf("crash-looping reported %s after the agent started: %s %v", took.Round(time.Millisecond), live, details)
	if n, _ := strconv.Atoi(details["restarts"]); n < 2 {
		t.Errorf("restarts = %q, want at least 2", details["restarts"])
	}
	if !strings.Contains(live, "crash-looping") {
		t.Errorf("live = %q", live)
	}
	if took > 10*time.Second {
		t.Errorf("crash-looping took %s to show", took)
	}
}

// dtLeftBehind makes a folder whose supervise died: supervise (or runsv)
// ran it, then it and the service were killed, leaving supervise/ with its
// FIFOs and a status record that still says up.
func dtLeftBehind(t *testing.T, kind dtKind, tb Testbed) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "left-behind")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "run"), "#!/bin/sh\nexec "+tb.WorkerBin+" left-behind\n", 0o755)
	prog := "supervise"
	if kind == dtRunit {
		prog = "runsv"
	}
	cmd := exec.Command(prog, dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var st daemontools.Status
	eventually(t, 10*time.Second, prog+" running the service", func() error {
		var err error
		if st, err = dtRecord(dir); err == nil && !st.Running() {
			err = fmt.Errorf("not up yet")
		}
		return err
	})
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	_ = syscall.Kill(st.PID, syscall.SIGKILL)
	if st, err := dtRecord(dir); err != nil || !st.Running() {
		t.Fatalf("the record left behind should still say up: %+v %v", st, err)
	}
	return dir
}

// dtNoSupervise: folders with no supervise running (one never supervised,
// one whose supervise died) give a clear error at once, never a hang.
func dtNoSupervise(t *testing.T, kind dtKind) {
	tb := testbed(t)
	never := filepath.Join(t.TempDir(), "never-supervised")
	if err := os.MkdirAll(never, 0o755); err != nil {
		t.Fatal(err)
	}
	left := dtLeftBehind(t, kind, tb)
	src := dtSource(t, fmt.Sprintf(`apiVersion: reconciler.dev/v1
kind: Host
metadata: {name: %s}
spec:
  services:
    - {name: never, driver: daemontools, replicas: 1, dir: %s}
    - {name: orphan, driver: daemontools, replicas: 1, dir: %s}
`, dtHost, never, left))
	r := cli(t, nil, "apply", "--source", src, "--host", dtHost).mustCode(t, 1, "apply with no supervise running")
	t.Logf("apply exited 1 after %s:\n%s", r.Took.Round(time.Millisecond), r.Stderr)
	for _, want := range []string{
		"daemontools/never: no supervise running for " + never + ": open " + never + "/supervise/control: no such file or directory",
		"daemontools/orphan: no supervise running for " + left + ": open " + left + "/supervise/control: no such device or address",
	} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if r.Took >= time.Second {
		t.Errorf("apply took %s to report no supervise, want under a second", r.Took)
	}
}

func TestDaemontoolsNoSuperviseClearErrorFast(t *testing.T) { dtNoSupervise(t, dtDaemontools) }

// TestRunitServices: the same core against runit's runsv, whose status
// record is 20 bytes: up and down (with down files, dependsOn order),
// a probe that never passes (its last output in the error, the service
// brought down, its dependent not started), and a folder whose runsv died.
func TestRunitServices(t *testing.T) {
	tb := testbed(t)
	db, app, off := uniqueName("rt-db"), uniqueName("rt-app"), uniqueName("rt-off")
	bad, badDep := uniqueName("rt-ldap"), uniqueName("rt-ldap-user")
	dbAddr, appAddr := freePort(t), freePort(t)
	w := tb.WorkerBin
	dirs := dtInstall(t, dtRunit, tb.RunitDir, map[string]string{
		db:     "#!/bin/sh\nexec env WORKER_LISTEN=" + dbAddr + " " + w + " db\n",
		app:    "#!/bin/sh\nexec env WORKER_LISTEN=" + appAddr + " " + w + " app\n",
		off:    "#!/bin/sh\nexec " + w + " off\n",
		bad:    "#!/bin/sh\nexec " + w + " ldap\n",
		badDep: "#!/bin/sh\nexec " + w + " ldap-user\n",
	}, map[string]bool{db: true, app: true, bad: true, badDep: true}) // off: started by runsv, git says down
	for name, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "supervise", "status"))
		if err != nil || len(b) != daemontools.RunitRecordSize {
			t.Fatalf("%s: status record: %v, %d bytes; want runit's 20", name, err, len(b))
		}
	}
	eventually(t, 10*time.Second, "runsv started "+off+" (no down file)", func() error { return dtIsUp(dtRunit, dirs[off]) })
	svc := func(name string, replicas int, extra string) string {
		return fmt.Sprintf("    - name: %s\n      driver: daemontools\n      dir: %s\n      replicas: %d\n%s", name, dirs[name], replicas, extra)
	}
	hostDoc := func(services ...string) string {
		return fmt.Sprintf("apiVersion: reconciler.dev/v1\nkind: Host\nmetadata: {name: %s}\nspec:\n  services:\n%s", dtHost, strings.Join(services, ""))
	}

	// Up and down, in dependsOn order, down files in line.
	up := hostDoc(
		svc(db, 1, "      ready: {tcp: \""+dbAddr+"\", timeout: 20s}\n"),
		svc(app, 1, "      dependsOn: ["+db+"]\n      ready: {http: \"http://"+appAddr+"/\", timeout: 20s}\n"),
		svc(off, 0, ""),
	)
	src := dtSource(t, up)
	r := cli(t, nil, "apply", "--source", src, "--host", dtHost).mustCode(t, 0, "runit apply")
	t.Logf("apply:\n%s", r.Stderr)
	if i, j := strings.Index(r.Stderr, "daemontools/"+db+": ready"), strings.Index(r.Stderr, "daemontools/"+app+" replicas 0 -> 1"); i < 0 || j < i {
		t.Errorf("%s must start after %s is ready", app, db)
	}
	dtExpectRunit(t, dirs, map[string]string{db: "up", app: "up", off: "down"})
	r = cli(t, nil, "apply", "--source", src, "--host", dtHost).mustCode(t, 0, "second runit apply")
	if !strings.Contains(r.Stderr, ": 0 action(s)") {
		t.Errorf("second apply did something:\n%s", r.Stderr)
	}
	src = dtSource(t, hostDoc(
		svc(db, 1, "      ready: {tcp: \""+dbAddr+"\", timeout: 20s}\n"),
		svc(app, 0, "      dependsOn: ["+db+"]\n"),
		svc(off, 0, ""),
	))
	cli(t, nil, "apply", "--source", src, "--host", dtHost).mustCode(t, 0, "runit apply, app down")
	dtExpectRunit(t, dirs, map[string]string{db: "up", app: "down", off: "down"})

	// A probe that never passes: brought down, last output reported,
	// dependent not started.
	depBefore := dtMustRecord(t, dirs[badDep])
	src = dtSource(t, hostDoc(
		svc(bad, 1, "      ready:\n        exec: [sh, -c, \"echo 'ldap_sasl_bind(SIMPLE): Can not contact LDAP server (-1)'; exit 1\"]\n        timeout: 3s\n        interval: 1s\n"),
		svc(badDep, 1, "      dependsOn: ["+bad+"]\n"),
	))
	r = cli(t, nil, "apply", "--source", src, "--host", dtHost).mustCode(t, 1, "runit apply with a failing probe")
	t.Logf("apply exited 1 after %s:\n%s", r.Took.Round(time.Millisecond), r.Stderr)
	for _, want := range []string{"daemontools/" + bad + ": ready probe failed", "Can not contact LDAP server (-1)"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	dtExpectRunit(t, dirs, map[string]string{bad: "down"})
	if st := dtMustRecord(t, dirs[badDep]); st.PID != 0 || !st.Changed.Equal(depBefore.Changed) || !dtHasDownFile(dirs[badDep]) {
		t.Errorf("%s was started: %s", badDep, dtTool(dtRunit, dirs[badDep]))
	}

	t.Run("no runsv", func(t *testing.T) { dtNoSupervise(t, dtRunit) })
}

// dtExpectRunit is dtExpect for runit, whose record keeps want 'u'/'d' and
// a run state; up and down are read from sv status.
func dtExpectRunit(t *testing.T, dirs map[string]string, want map[string]string) {
	t.Helper()
	dtExpect(t, dtRunit, dirs, want)
	for name, w := range want {
		st := dtMustRecord(t, dirs[name])
		if !st.Runit {
			t.Errorf("%s: not a runit record", name)
		}
		if w == "up" && st.RunState != daemontools.RunStateRun {
			t.Errorf("%s: run state %d", name, st.RunState)
		}
	}
}
