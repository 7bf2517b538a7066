//go:build e2e

package e2e

// The .deb as an operator uses it, in a fresh container of the testbed's
// systemd image (the Debian bookworm root it debootstraps): dpkg -i, the
// unit refusing to start until a source is configured, configuration in
// /etc/default/reconciler, systemctl enable --now, a timer in that
// container converged from a commit, a stop within 10 s, an upgrade, dpkg
// -r and dpkg --purge.

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sysCtr is a systemd container a test started for itself.
type sysCtr struct {
	t    *testing.T
	name string
}

// startSystemdContainer starts a fresh container of the testbed's systemd
// image the way hack/testbed starts its own, on the host network so the
// agent inside reaches the git server on 127.0.0.1 (and the test reaches
// the agent's endpoints), and waits until systemd runs.
func startSystemdContainer(t *testing.T, prefix string) *sysCtr {
	t.Helper()
	tb := testbed(t)
	if tb.SystemdImage == "" {
		t.Fatal("hack/testbed env names no TESTBED_SYSTEMD_IMAGE (run hack/testbed up)")
	}
	c := &sysCtr{t: t, name: uniqueName(prefix)}
	run(t, "", "docker", "run", "-d", "--name", c.name, "--label", tb.Label+"=1", "--network", "host",
		"--cap-add", "SYS_ADMIN", "--security-opt", "seccomp=unconfined", "--cgroupns=host",
		"-e", "container=docker", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
		"--tmpfs", "/run", "--tmpfs", "/run/lock", "--stop-signal", "SIGRTMIN+3", tb.SystemdImage)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := execOut("docker", "exec", c.name, "journalctl", "--no-pager", "-n", "80", "-u", "reconciler")
			t.Logf("journal of reconciler in %s:\n%s", c.name, out)
		}
		_ = exec.Command("docker", "rm", "-f", c.name).Run()
	})
	eventually(t, 60*time.Second, "systemd running in "+c.name, func() error {
		s, _ := execOut("docker", "exec", c.name, "systemctl", "is-system-running")
		if s != "running" && s != "degraded" {
			return fmt.Errorf("is-system-running: %q", s)
		}
		return nil
	})
	return c
}

// sh runs a shell command in the container and fails the test if it fails.
func (c *sysCtr) sh(script string) string {
	c.t.Helper()
	out, err := c.try(script)
	if err != nil {
		c.t.Fatalf("in %s: sh -c %q: %v\n%s", c.name, script, err, out)
	}
	return out
}

// try runs a shell command in the container: its output and error.
func (c *sysCtr) try(script string) (string, error) {
	return execOut("docker", "exec", c.name, "sh", "-c", script)
}

// write puts content into a file of the container.
func (c *sysCtr) write(path, content string, appendTo bool) {
	c.t.Helper()
	op := ">"
	if appendTo {
		op = ">>"
	}
	cmd := exec.Command("docker", "exec", "-i", c.name, "sh", "-c", "cat "+op+" "+path)
	cmd.Stdin = strings.NewReader(content)
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("writing %s in %s: %v\n%s", path, c.name, err, out)
	}
}

// install copies a .deb into the container and installs it with dpkg -i.
func (c *sysCtr) install(deb string) {
	c.t.Helper()
	run(c.t, "", "docker", "cp", deb, c.name+":/tmp/"+filepath.Base(deb))
	c.sh("dpkg -i /tmp/" + filepath.Base(deb))
}

// exists says whether a path exists in the container.
func (c *sysCtr) exists(path string) bool {
	_, err := c.try("test -e " + path)
	return err == nil
}

func (c *sysCtr) mainPID() string {
	c.t.Helper()
	return c.sh("systemctl show -p MainPID --value reconciler")
}

const debHost = "deb-01"

func debHostDoc(active bool) string {
	return fmt.Sprintf(`apiVersion: reconciler.dev/v1
kind: Host
metadata:
  name: %s
spec:
  units:
    - name: %s
      enabled: %v
      active: %v
`, debHost, fpTimer, active, active)
}

func TestDebInstallConfigureUpgradeRemove(t *testing.T) {
	first, upgrade := dist(t)
	start := time.Now()
	c := startSystemdContainer(t, "reconciler-deb")
	// The housekeeping timer of seed 000, inside this container (disabled,
	// inactive): the agent there is to converge it.
	for _, f := range []string{"abb-factory-proxy-housekeeping.service", fpTimer} {
		run(t, "", "docker", "cp", filepath.Join(repoRoot(), "hack", "testbed.d", "units", f), c.name+":/etc/systemd/system/"+f)
	}
	c.sh("systemctl daemon-reload")

	// dpkg -i: installed, not enabled, and not startable without a source.
	c.install(first.Deb)
	if got := c.sh("/usr/bin/reconciler version"); !strings.Contains(got, "reconciler "+first.Version+" ") {
		t.Fatalf("reconciler version after dpkg -i: %q, want version %s", got, first.Version)
	}
	for path, want := range map[string]string{"/etc/reconciler": "700", "/var/lib/reconciler": "700", "/etc/default/reconciler": "644"} {
		if got := c.sh("stat -c %a " + path); got != want {
			t.Errorf("%s has mode %s, want %s", path, got, want)
		}
	}
	if got, _ := c.try("systemctl is-enabled reconciler"); got != "disabled" {
		t.Errorf("after dpkg -i the unit is %q, want disabled until configured", got)
	}
	c.sh("systemctl start reconciler")
	if got, _ := c.try("systemctl is-active reconciler"); got != "inactive" {
		t.Errorf("unconfigured, the unit is %q after systemctl start, want inactive", got)
	}
	eventually(t, 10*time.Second, "the journal saying what is missing", func() error {
		j, _ := c.try("journalctl --no-pager -u reconciler")
		if !strings.Contains(j, "RECONCILER_SOURCE is not set in /etc/default/reconciler") {
			return fmt.Errorf("journal:\n%s", j)
		}
		return nil
	})

	// Configure it the way the package says: /etc/default/reconciler, and a
	// secret in /etc/reconciler.
	repo := newGitRepo(t, "deb-host")
	rev := repo.Commit("deb-01: the housekeeping timer on", map[string]string{"hosts/deb-01.yaml": debHostDoc(true)})
	addr := freePort(t)
	c.sh("head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > /etc/reconciler/webhook-secret && chmod 600 /etc/reconciler/webhook-secret")
	c.write("/etc/default/reconciler", fmt.Sprintf(`
# Set by TestDebInstallConfigureUpgradeRemove.
RECONCILER_SOURCE=%s
RECONCILER_HOST=%s
RECONCILER_LISTEN=%s
RECONCILER_INTERVAL=2s
RECONCILER_WEBHOOK_SECRET_FILE=/etc/reconciler/webhook-secret
# Test-only choice: the test's commits are unsigned, so it says off
# explicitly, whatever the packaged default becomes.
RECONCILER_VERIFY_SIGNATURES=off
`, repo.HTTPURL, debHost, addr), true)
	c.sh("systemctl enable --now reconciler")
	awaitRevision(t, addr, rev, 60*time.Second)
	eventually(t, 30*time.Second, "the timer enabled and active in "+c.name, func() error {
		return timerIs(c, "enabled", "active")
	})
	t.Logf("installed, configured, converged in %s", time.Since(start).Round(time.Millisecond))
	statusOut := run(t, "", reconcilerBin(t), "status", "--listen", addr)
	if !strings.Contains(statusOut, shortRev(rev)) {
		t.Errorf("reconciler status --listen %s does not show the revision %s:\n%s", addr, shortRev(rev), statusOut)
	}

	// systemctl stop returns within 10 s, the agent having exited 0.
	t0 := time.Now()
	c.sh("systemctl stop reconciler")
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("systemctl stop reconciler took %s, want at most 10s", d)
	} else {
		t.Logf("systemctl stop reconciler: %s", d.Round(time.Millisecond))
	}
	if got := c.sh("systemctl show -p ExecMainStatus --value reconciler"); got != "0" {
		t.Errorf("the agent exited %s on stop, want 0", got)
	}
	c.sh("systemctl start reconciler")
	awaitRevision(t, addr, rev, 30*time.Second)

	// The upgrade: a higher version restarts the running agent, which
	// keeps the revision in force from its state.
	pid := c.mainPID()
	c.install(upgrade.Deb)
	if got := c.sh("/usr/bin/reconciler version"); !strings.Contains(got, "reconciler "+upgrade.Version+" ") {
		t.Fatalf("reconciler version after the upgrade: %q, want %s", got, upgrade.Version)
	}
	if now := c.mainPID(); now == pid || now == "0" {
		t.Errorf("the agent was not restarted by the upgrade: MainPID %s before, %s after", pid, now)
	}
	if got := c.sh("readlink /proc/$(systemctl show -p MainPID --value reconciler)/exe"); got != "/usr/bin/reconciler" {
		t.Errorf("the running agent's binary is %q, want the upgraded /usr/bin/reconciler", got)
	}
	awaitRevision(t, addr, rev, 30*time.Second)
	if err := timerIs(c, "enabled", "active"); err != nil {
		t.Errorf("after the upgrade: %v", err)
	}

	// dpkg -r: the agent stops, the state and the configuration stay.
	c.sh("dpkg -r reconciler")
	if c.exists("/usr/bin/reconciler") {
		t.Error("dpkg -r left /usr/bin/reconciler")
	}
	if _, err := tryAgentStatus(addr); err == nil {
		t.Error("the agent still answers after dpkg -r")
	}
	for _, p := range []string{"/var/lib/reconciler/state.json", "/etc/default/reconciler", "/etc/reconciler/webhook-secret"} {
		if !c.exists(p) {
			t.Errorf("dpkg -r removed %s; it must keep state and configuration", p)
		}
	}
	// dpkg --purge: both go, with the enablement link.
	c.sh("dpkg --purge reconciler")
	for _, p := range []string{"/var/lib/reconciler", "/etc/default/reconciler", "/etc/reconciler",
		"/etc/systemd/system/multi-user.target.wants/reconciler.service"} {
		if c.exists(p) {
			t.Errorf("dpkg --purge left %s", p)
		}
	}
	t.Logf("whole package life cycle: %s", time.Since(start).Round(time.Millisecond))
}

// TestDebLintian: Debian's lintian finds nothing in the .deb that is not
// explained (the package's lintian overrides say why for each tag left).
func TestDebLintian(t *testing.T) {
	first, _ := dist(t)
	out, err := exec.Command("lintian", "-I", "--fail-on", "error,warning,info", first.Deb).CombinedOutput()
	var tags []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" && !strings.HasPrefix(l, "running with root privileges") {
			tags = append(tags, l)
		}
	}
	if err != nil || len(tags) > 0 {
		t.Fatalf("lintian -I %s: %v\n%s", filepath.Base(first.Deb), err, strings.Join(tags, "\n"))
	}
}

// timerIs checks the housekeeping timer's state inside c.
func timerIs(c *sysCtr, enabled, active string) error {
	e, _ := c.try("systemctl is-enabled " + fpTimer)
	a, _ := c.try("systemctl is-active " + fpTimer)
	if e != enabled || a != active {
		return fmt.Errorf("%s is %s/%s, want %s/%s", fpTimer, e, a, enabled, active)
	}
	return nil
}

// awaitRevision waits until the agent at addr has rev in force and its last
// pass with it converged (or found everything in sync).
func awaitRevision(t *testing.T, addr, rev string, within time.Duration) {
	t.Helper()
	eventually(t, within, "the agent at "+addr+" converged on "+shortRev(rev), func() error {
		st, err := tryAgentStatus(addr)
		if err != nil {
			return err
		}
		if st.Revision == nil || st.Revision.ID != rev {
			return fmt.Errorf("revision in force %+v (failed: %+v)", st.Revision, st.FailedRevision)
		}
		if lp := st.LastPass; lp == nil || lp.Revision != rev || (lp.Result != "converged" && lp.Result != "in-sync") {
			return fmt.Errorf("last pass %+v", st.LastPass)
		}
		return nil
	})
}
