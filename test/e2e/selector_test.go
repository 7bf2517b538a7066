//go:build e2e

package e2e

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
)

// The stack namespace of examples/factory-proxy-stack.
const fpStack = "factory-proxy"

// createStackService creates a service as `docker stack deploy` of the
// stack ns would: createService's spec, labelled with the stack namespace.
func createStackService(t testing.TB, cli *client.Client, ns, name string) {
	t.Helper()
	id := createService(t, cli, name, 1)
	ctx := ctxT(t, 30*time.Second)
	s, _, err := cli.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatalf("inspect %s: %v", name, err)
	}
	s.Spec.Labels["com.docker.stack.namespace"] = ns
	if _, err := cli.ServiceUpdate(ctx, id, s.Version, s.Spec, swarm.ServiceUpdateOptions{}); err != nil {
		t.Fatalf("labelling %s with its stack: %v", name, err)
	}
}

// planDoc is the selectors part of `plan -o json`.
type planDoc struct {
	Selectors []struct {
		Name    string   `json:"name"`
		Select  string   `json:"select"`
		Matched []string `json:"matched"`
		Named   []string `json:"named"`
	} `json:"selectors"`
}

// planSelectors reads the selectors of a `plan -o json` output.
func planSelectors(t *testing.T, out string) planDoc {
	t.Helper()
	var doc planDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("plan -o json: %v\n%s", err, out)
	}
	return doc
}

// Seed 000's stop.sh stops "every service on the machine". A business
// module deployed after the commit is stopped by `maintenance: true` too, in
// order, with no commit naming it, and plan lists it under its selector.
func TestSelectorStopsAModuleDeployedAfterTheCommit(t *testing.T) {
	lockTestbed(t, "factory-proxy")
	all := append(slices.Clone(fpServices), "reference-BL2")
	f := &fpFixture{t: t, docker: dockerClient(t), files: readExample(t, "factory-proxy-stack")}
	removeServices(t, f.docker, all)
	t.Cleanup(func() {
		removeServices(t, f.docker, all)
		inSystemd(t, "systemctl", "disable", "--now", fpTimer)
	})
	for _, name := range fpServices {
		createStackService(t, f.docker, fpStack, name)
	}
	ctx := ctxT(t, 3*time.Minute)
	up := map[string]int{"factory-broker": 1, "factory-proxy": 1, "reference-BL": 1}
	eventually(t, 60*time.Second, "factory proxy stack running", func() error { return f.replicasRunning(ctx, up) })
	f.repo = newGitRepo(t, "factory-proxy-stack")
	f.repo.Commit("factory proxy stack, as in examples/", f.files)
	// file://: the test is about selectors, not the http server.
	src := []string{"--source", f.repo.FileURL, "--host", fpHost, "--cache-dir", t.TempDir()}
	cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "first apply")

	// A fourth module, deployed after the commit, created after the others.
	createStackService(t, f.docker, fpStack, "reference-BL2")
	up["reference-BL2"] = 1
	eventually(t, 60*time.Second, "the fourth module running", func() error { return f.replicasRunning(ctx, up) })

	r := cli(t, nil, append([]string{"plan", "-o", "json"}, src...)...).mustCode(t, 0, "plan with the fourth module (in sync)")
	doc := planSelectors(t, r.Stdout)
	if len(doc.Selectors) != 1 || doc.Selectors[0].Name != "business-modules" ||
		!slices.Equal(doc.Selectors[0].Matched, []string{"reference-BL", "reference-BL2"}) ||
		!slices.Equal(doc.Selectors[0].Named, []string{"factory-broker", "factory-proxy"}) {
		t.Fatalf("plan's selectors: %+v, want business-modules matching [reference-BL reference-BL2] in creation order, broker and proxy named\n%s", doc.Selectors, r.Stdout)
	}
	table := cli(t, nil, append([]string{"plan"}, src...)...).mustCode(t, 0, "plan table").Stdout
	if !strings.Contains(table, "selector business-modules (swarm, namespace=factory-proxy): 2 matched\n  reference-BL\n  reference-BL2\n") {
		t.Fatalf("plan does not list the fourth module under its selector:\n%s", table)
	}
	t.Logf("plan:\n%s", table)

	// Maintenance: the one commit says nothing of reference-BL2.
	ev := watchDockerEvents(t, f.docker)
	f.setMaintenance(true)
	r = cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "apply maintenance: true")
	t.Logf("entering maintenance took %s:\n%s", r.Took.Round(time.Millisecond), r.Stderr)
	down := map[string]int{"factory-broker": 0, "factory-proxy": 0, "reference-BL": 0, "reference-BL2": 0}
	if err := f.replicasRunning(ctx, down); err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if n := f.specReplicas(s); n != 0 {
			t.Errorf("%s declares %d replicas in maintenance, want 0", s, n)
		}
	}
	// In order: the newest module drained before the older one was scaled
	// down, every module and the proxy before the broker.
	before := func(first, then string) {
		t.Helper()
		died, ok := ev.last(first, "die")
		if !ok {
			t.Fatalf("no container of %s died:\n%s", first, ev.summary())
		}
		upd, ok := ev.first(then, "update")
		if !ok || !died.Before(upd) {
			t.Errorf("%s's last container died at %v, not before %s was scaled down at %v\n%s", first, died, then, upd, ev.summary())
		}
	}
	before("reference-BL2", "reference-BL")
	for _, s := range []string{"reference-BL", "reference-BL2", "factory-proxy"} {
		before(s, "factory-broker")
	}
	if en, act := timerState(t); en != "disabled" || act != "inactive" {
		t.Fatalf("in maintenance the timer is %s/%s, want disabled/inactive", en, act)
	}
	table = cli(t, nil, append([]string{"plan"}, src...)...).mustCode(t, 0, "plan in maintenance").Stdout
	if !strings.Contains(table, "  reference-BL2\n") {
		t.Fatalf("plan in maintenance does not list reference-BL2:\n%s", table)
	}

	// Leaving maintenance: modules come back in creation order after the broker.
	ev2 := watchDockerEvents(t, f.docker)
	head := f.setMaintenance(false)
	r = cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "apply maintenance: false")
	t.Logf("leaving maintenance took %s:\n%s", r.Took.Round(time.Millisecond), r.Stderr)
	if err := f.replicasRunning(ctx, up); err != nil {
		t.Fatal(err)
	}
	startedBefore := func(first, then string) {
		t.Helper()
		st, ok := ev2.first(first, "start")
		upd, ok2 := ev2.first(then, "update")
		if !ok || !ok2 || !st.Before(upd) {
			t.Errorf("%s started at %v, not before %s was scaled up at %v\n%s", first, st, then, upd, ev2.summary())
		}
	}
	startedBefore("factory-broker", "reference-BL")
	startedBefore("reference-BL", "reference-BL2")

	// The agent's /status lists what the selector matched, and the matched
	// services among its objects.
	a := startAgent(t, agentConfig{Source: f.repo.FileURL, Interval: "1m"})
	st := awaitConverged(t, a, head, 60*time.Second)
	if len(st.Selectors) != 1 || !slices.Equal(st.Selectors[0].Matched, []string{"reference-BL", "reference-BL2"}) {
		t.Fatalf("/status selectors: %+v", st.Selectors)
	}
	found := false
	for _, o := range st.Objects {
		if o.Subject == "swarm/reference-BL2" {
			found = true
		}
	}
	if !found {
		t.Errorf("/status objects do not include swarm/reference-BL2: %+v", st.Objects)
	}
}
