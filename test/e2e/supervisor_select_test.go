//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// svGroupConf is a [group:NAME] joining programs, each with its numprocs,
// the testbed's worker as the command, none started by supervisord.
func svGroupConf(t *testing.T, name string, programs []string, numprocs map[string]int) string {
	tb := testbed(t)
	conf := fmt.Sprintf("; added by %s, removed when it ends\n[group:%s]\nprograms=%s\n", t.Name(), name, strings.Join(programs, ","))
	for _, p := range programs {
		procName := "%(program_name)s"
		if numprocs[p] > 1 {
			procName = "%(program_name)s_%(process_num)02d"
		}
		conf += fmt.Sprintf(`
[program:%s]
command=%s %s
process_name=%s
numprocs=%d
numprocs_start=1
autostart=false
autorestart=true
startsecs=1
stopwaitsecs=10
stopsignal=TERM
`, p, tb.WorkerBin, procName, procName, numprocs[p])
	}
	return conf
}

// svctl runs supervisorctl against socket, as an operator on the host would.
func svctl(socket string, args ...string) (string, error) {
	out, err := exec.Command("supervisorctl", append([]string{"-s", "unix://" + socket}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
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
	file := filepath.Join(tb.SupervisorConfD, group+".conf")
	write := func(programs ...string) {
		t.Helper()
		writeFile(t, file, svGroupConf(t, group, programs, numprocs), 0o644)
		if out, err := svctl(tb.SupervisorSocket, "update", group); err != nil || !strings.Contains(out, "process group") {
			t.Fatalf("supervisorctl update %s: %v\n%s", group, err, out)
		}
	}
	t.Cleanup(func() {
		svctl(tb.SupervisorSocket, "stop", group+":*")
		os.Remove(file)
		svctl(tb.SupervisorSocket, "update", group)
	})
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
