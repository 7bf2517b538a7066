//go:build e2e

package e2e

// The agent image as the Swarm stack of examples/deploy/agent runs it:
// `docker stack deploy -c examples/deploy/agent/stack.yml` on the testbed's
// swarm, the agent in its container converging seed 000 (the factory-proxy
// services over the mounted Docker socket, the housekeeping timer over the
// mounted system bus) on maintenance: true and false commits.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestStackAgentImageConvergesFactoryProxy(t *testing.T) {
	first, _ := dist(t)
	tb := testbed(t)
	f := deployFactoryProxy(t)
	// The secrets the stack names are fixed; one stack test at a time.
	lockTestbed(t, "agent-stack")
	start := time.Now()

	// The stack gives the agent the node's host name, so the host file is
	// named after the node, as an operator's would be.
	node := run(t, "", "docker", "info", "--format", "{{.Name}}")
	doc := regexp.MustCompile(`(?m)^  name: `+fpHost+`$`).ReplaceAllString(f.files[fpFile], "  name: "+node)
	hostFile := "hosts/" + node + ".yaml"
	rev := f.repo.Commit("the factory proxy, on node "+node, map[string]string{fpFile: "", hostFile: doc})

	for _, s := range []string{"reconciler-webhook", "reconciler-git-token", "reconciler-allowed-signers"} {
		_ = exec.Command("docker", "secret", "rm", s).Run() // a leftover of a killed run
		cmd := exec.Command("docker", "secret", "create", s, "-")
		cmd.Stdin = strings.NewReader(uniqueName("e2e-secret"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("docker secret create %s: %v\n%s", s, err, out)
		}
	}
	stack := uniqueName("reconciler-e2e")
	addr := freePort(t)
	bus, ok := strings.CutPrefix(tb.SystemBus, "unix:path=")
	if !ok {
		t.Fatalf("the testbed's system bus %q is not unix:path=...", tb.SystemBus)
	}
	deploy := exec.Command("docker", "stack", "deploy", "--resolve-image", "never",
		"-c", filepath.Join(repoRoot(), "examples", "deploy", "agent", "stack.yml"), stack)
	deploy.Env = append(os.Environ(),
		"RECONCILER_VERSION="+first.Version, // a local image: no RECONCILER_REGISTRY
		"RECONCILER_SOURCE="+f.repo.HTTPURL,
		"RECONCILER_LISTEN="+addr,
		"RECONCILER_INTERVAL=2s",
		"RECONCILER_SYSTEM_BUS="+bus,
		// Test-only choice: the test's commits are unsigned.
		"RECONCILER_VERIFY_SIGNATURES=off",
		"RECONCILER_ALLOWED_SIGNERS_FILE=", // the stack's default names the secret, for strict
	)
	t.Cleanup(func() { removeStack(t, stack) })
	if out, err := deploy.CombinedOutput(); err != nil {
		t.Fatalf("docker stack deploy: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := execOut("docker", "service", "logs", "--tail", "60", stack+"_agent")
			t.Logf("logs of %s_agent:\n%s", stack, out)
		}
	})
	if img := run(t, "", "docker", "service", "inspect", "-f", "{{.Spec.TaskTemplate.ContainerSpec.Image}}", stack+"_agent"); img != first.Image {
		t.Errorf("the stack runs %q, want %s", img, first.Image)
	}

	ctx := ctxT(t, 5*time.Minute)
	awaitRevision(t, addr, rev, 90*time.Second)
	t.Logf("deployed and converged on %s in %s", shortRev(rev), time.Since(start).Round(time.Millisecond))
	for _, on := range []bool{true, false} {
		t0 := time.Now()
		doc = withMaintenance(doc, on)
		rev = f.repo.Commit(fmt.Sprintf("maintenance: %v", on), map[string]string{hostFile: doc})
		awaitRevision(t, addr, rev, 60*time.Second)
		n, enabled, active := 1, "enabled", "active"
		if on {
			n, enabled, active = 0, "disabled", "inactive"
		}
		eventually(t, 30*time.Second, fmt.Sprintf("maintenance %v: services at %d", on, n), func() error {
			return f.replicasRunning(ctx, map[string]int{"factory-broker": n, "factory-proxy": n, "reference-BL": n})
		})
		if e, a := timerState(t); e != enabled || a != active {
			t.Errorf("maintenance %v: %s is %s/%s, want %s/%s", on, fpTimer, e, a, enabled, active)
		}
		t.Logf("maintenance: %v converged in %s", on, time.Since(t0).Round(time.Millisecond))
	}

	out := run(t, "", reconcilerBin(t), "status", "--listen", addr)
	if !strings.Contains(out, shortRev(rev)) || !strings.Contains(out, node) {
		t.Errorf("reconciler status --listen %s shows neither the revision %s nor the host %s:\n%s", addr, shortRev(rev), node, out)
	}
}

// removeStack removes a stack, waits until its containers are gone, then
// removes its volume, the secrets and the image the test built.
func removeStack(t *testing.T, stack string) {
	t.Helper()
	_, _ = execOut("docker", "stack", "rm", stack)
	eventually(t, 60*time.Second, "stack "+stack+" removed", func() error {
		out, _ := execOut("docker", "ps", "-aq", "--filter", "label=com.docker.stack.namespace="+stack)
		if out != "" {
			return fmt.Errorf("containers left: %s", out)
		}
		return nil
	})
	_, _ = execOut("docker", "volume", "rm", stack+"_reconciler-state")
	for _, s := range []string{"reconciler-webhook", "reconciler-git-token", "reconciler-allowed-signers"} {
		_, _ = execOut("docker", "secret", "rm", s)
	}
	_, _ = execOut("docker", "rmi", "reconciler:"+distVersion)
}
