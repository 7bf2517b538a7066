//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"reconciler.dev/reconciler/controllers/drivertest"
	"reconciler.dev/reconciler/internal/callcount"
)

// counted starts counting proxies in front of the Docker socket and the
// system bus, and returns them with the environment that points the
// reconciler at them.
func counted(t *testing.T) (*callcount.DockerProxy, *callcount.DBusProxy, []string) {
	t.Helper()
	tb := testbed(t)
	dir := t.TempDir()
	dp, err := callcount.NewDockerProxy(filepath.Join(dir, "docker.sock"), strings.TrimPrefix(tb.DockerHost, "unix://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dp.Close() })
	bp, err := callcount.NewDBusProxy(filepath.Join(dir, "bus.sock"), strings.TrimPrefix(tb.SystemBus, "unix:path="))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bp.Close() })
	env := []string{
		"DOCKER_HOST=unix://" + filepath.Join(dir, "docker.sock"),
		"DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + filepath.Join(dir, "bus.sock"),
	}
	return dp, bp, env
}

func TestFactoryProxyMaintenanceFlip(t *testing.T) {
	f := deployFactoryProxy(t)
	src := f.source()
	cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "first apply")
	if en, act := timerState(t); en != "enabled" || act != "active" {
		t.Fatalf("after the first apply the timer is %s/%s, want enabled/active", en, act)
	}

	// Enter maintenance.
	dp, bp, env := counted(t)
	ev := watchDockerEvents(t, f.docker)
	f.setMaintenance(true)
	r := cli(t, env, append([]string{"apply"}, src...)...).mustCode(t, 0, "apply maintenance: true")
	t.Logf("entering maintenance took %s:\n%s", r.Took.Round(time.Millisecond), r.Stderr)
	ctx := ctxT(t, time.Minute)
	if err := f.replicasRunning(ctx, map[string]int{"factory-broker": 0, "factory-proxy": 0, "reference-BL": 0}); err != nil {
		t.Fatal(err)
	}
	if en, act := timerState(t); en != "disabled" || act != "inactive" {
		t.Fatalf("in maintenance the timer is %s/%s, want disabled/inactive", en, act)
	}
	// The timer was stopped and disabled before any service was scaled
	// down: on the wire (D-Bus calls before the first Docker update) and in
	// systemd's own clock (it went inactive before Docker's first update).
	firstUpdate, ok := firstCall(dp.Log(), "POST /services/{id}/update")
	if !ok {
		t.Fatalf("no service update reached Docker: %v", dp.Counts())
	}
	for _, member := range []string{"StopUnit", "DisableUnitFiles"} {
		at, ok := lastCall(bp.Log(), member)
		if !ok || !at.Before(firstUpdate) {
			t.Errorf("%s at %v, not before the first service update at %v", member, at, firstUpdate)
		}
	}
	stopped := timerJob(t, "stop")
	for _, s := range fpServices {
		up, ok := ev.first(s, "update")
		if !ok {
			t.Fatalf("Docker reported no update of %s:\n%s", s, ev.summary())
		}
		if !stopped.Before(up) {
			t.Errorf("timer went inactive at %v, after %s was updated at %v", stopped, s, up)
		}
	}
	// Services reached 0 in reverse dependency order: the broker was
	// scaled down only after the last container of each dependent died.
	brokerUpdate, _ := ev.first("factory-broker", "update")
	for _, dep := range []string{"factory-proxy", "reference-BL"} {
		died, ok := ev.last(dep, "die")
		if !ok {
			t.Fatalf("no container of %s died:\n%s", dep, ev.summary())
		}
		if !died.Before(brokerUpdate) {
			t.Errorf("%s's last container died at %v, after the broker was scaled down at %v\n%s", dep, died, brokerUpdate, ev.summary())
		}
	}
	cli(t, nil, append([]string{"plan"}, src...)...).mustCode(t, 0, "plan after entering maintenance")

	// Leave maintenance.
	dp.Reset()
	bp.Reset()
	ev2 := watchDockerEvents(t, f.docker)
	f.setMaintenance(false)
	r = cli(t, env, append([]string{"apply"}, src...)...).mustCode(t, 0, "apply maintenance: false")
	t.Logf("leaving maintenance took %s:\n%s", r.Took.Round(time.Millisecond), r.Stderr)
	if err := f.replicasRunning(ctx, map[string]int{"factory-broker": 1, "factory-proxy": 1, "reference-BL": 1}); err != nil {
		t.Fatal(err)
	}
	// Each stage was ready before the next: the dependents were scaled up
	// only after a broker container had started.
	brokerStart, ok := ev2.first("factory-broker", "start")
	if !ok {
		t.Fatalf("no broker container started:\n%s", ev2.summary())
	}
	var lastStart time.Time
	for _, dep := range []string{"factory-proxy", "reference-BL"} {
		up, ok := ev2.first(dep, "update")
		if !ok || !brokerStart.Before(up) {
			t.Errorf("%s updated at %v, not after the broker started at %v\n%s", dep, up, brokerStart, ev2.summary())
		}
		if st, ok := ev2.last(dep, "start"); ok && st.After(lastStart) {
			lastStart = st
		}
	}
	// The timer came back last: enabled and started after every service.
	if en, act := timerState(t); en != "enabled" || act != "active" {
		t.Fatalf("after maintenance the timer is %s/%s, want enabled/active", en, act)
	}
	lastUpdate, _ := lastCall(dp.Log(), "POST /services/{id}/update")
	for _, member := range []string{"EnableUnitFiles", "StartUnit"} {
		at, ok := firstCall(bp.Log(), member)
		if !ok || !at.After(lastUpdate) {
			t.Errorf("%s at %v, not after the last service update at %v", member, at, lastUpdate)
		}
	}
	if started := timerJob(t, "start"); !started.After(lastStart) {
		t.Errorf("timer active at %v, before the last dependent container started at %v", started, lastStart)
	}
	cli(t, nil, append([]string{"plan"}, src...)...).mustCode(t, 0, "plan after leaving maintenance")
}

// timerJob returns when systemd finished the last job of a type ("start",
// "stop") on the timer, from systemd's own journal in the container.
func timerJob(t *testing.T, jobType string) time.Time {
	t.Helper()
	out := inSystemd(t, "journalctl", "-u", fpTimer, "-o", "json", "--output-fields=JOB_TYPE,JOB_RESULT,__REALTIME_TIMESTAMP")
	var at time.Time
	for _, line := range strings.Split(out, "\n") {
		var e struct {
			Type   string `json:"JOB_TYPE"`
			Result string `json:"JOB_RESULT"`
			Time   string `json:"__REALTIME_TIMESTAMP"`
		}
		if json.Unmarshal([]byte(line), &e) != nil || e.Type != jobType || e.Result != "done" {
			continue
		}
		var us int64
		fmt.Sscan(e.Time, &us)
		at = time.UnixMicro(us)
	}
	if at.IsZero() {
		t.Fatalf("the journal has no finished %s job of %s:\n%s", jobType, fpTimer, out)
	}
	return at
}

func TestFactoryProxyDriftRevertedOrReported(t *testing.T) {
	f := deployFactoryProxy(t)
	src := f.source()
	cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "first apply")

	drift := func() {
		run(t, "", "docker", "service", "scale", "-d", "factory-proxy=3")
		inSystemd(t, "systemctl", "disable", fpTimer)
	}
	drift()
	p := cli(t, nil, append([]string{"plan"}, src...)...).mustCode(t, 2, "plan with manual drift")
	for _, row := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^\d+\s+down\s+service\s+factory-proxy\s+replicas\s+3\s+1\s+scale-down$`),
		regexp.MustCompile(`(?m)^\d+\s+up\s+unit\s+` + regexp.QuoteMeta(fpTimer) + `\s+enabled\s+false\s+true\s+enable$`),
	} {
		if !row.MatchString(p.Stdout) {
			t.Errorf("plan does not show %s:\n%s", row, p.Stdout)
		}
	}
	cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "apply reverting drift")
	if n := f.specReplicas("factory-proxy"); n != 1 {
		t.Errorf("factory-proxy still asks for %d replicas", n)
	}
	if en, _ := timerState(t); en != "enabled" {
		t.Errorf("timer is %s after apply", en)
	}

	// With drift: report, the same changes are reported and left alone.
	f.edit("drift: report", func(s string) string {
		return strings.Replace(s, "spec:\n", "spec:\n  drift: report\n", 1)
	})
	drift()
	p = cli(t, nil, append([]string{"plan"}, src...)...).mustCode(t, 2, "plan with drift: report")
	if !regexp.MustCompile(`factory-proxy\s+replicas\s+3\s+1\s+report-only \(scale-down\)`).MatchString(p.Stdout) ||
		!regexp.MustCompile(`enabled\s+false\s+true\s+report-only \(enable\)`).MatchString(p.Stdout) {
		t.Errorf("plan does not report the drift as report-only:\n%s", p.Stdout)
	}
	a := cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "apply with drift: report")
	if !strings.Contains(a.Stderr, "drift swarm/factory-proxy: replicas 3 -> 1") {
		t.Errorf("apply does not report the drift:\n%s", a.Stderr)
	}
	if n := f.specReplicas("factory-proxy"); n != 3 {
		t.Errorf("drift: report changed factory-proxy to %d replicas", n)
	}
	if en, _ := timerState(t); en != "disabled" {
		t.Errorf("drift: report changed the timer to %s", en)
	}
}

func TestFactoryProxySecondApplyMakesNoWrites(t *testing.T) {
	f := deployFactoryProxy(t)
	src := f.source()
	cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "first apply")

	dp, bp, env := counted(t)
	cli(t, env, append([]string{"apply"}, src...)...).mustCode(t, 0, "second apply")
	if n := dp.Mutating(); n != 0 {
		t.Errorf("second apply made %d mutating Docker calls: %v", n, dp.Counts())
	}
	if n := bp.Mutating(); n != 0 {
		t.Errorf("second apply made %d mutating D-Bus calls: %v", n, bp.Counts())
	}
	t.Logf("calls of a converged apply: docker %v; d-bus %v", dp.Counts(), bp.Counts())
	dp.Reset()
	bp.Reset()
	cli(t, env, append([]string{"plan"}, src...)...).mustCode(t, 0, "plan when converged")
	// A plan reads each driver's state in a constant number of calls (the
	// Docker client's version negotiation, HEAD /_ping, is once a process,
	// and so is the swarm driver's GET /info on a one-node swarm: the only
	// manager stays the leader, controllers/swarm/cluster.go).
	if n := dp.Reads() - dp.Counts()["HEAD /_ping"] - dp.Counts()["GET /info"]; n != 1 || dp.Counts()["GET /services"] != 1 || dp.Counts()["GET /info"] > 1 {
		t.Errorf("plan made %d Docker reads besides the ping, want 1 list call: %v", n, dp.Counts())
	}
	if n := bp.Reads(); n != 2 {
		t.Errorf("plan made %d D-Bus reads, want 2 list calls: %v", n, bp.Counts())
	}
	if dp.Mutating()+bp.Mutating() != 0 {
		t.Errorf("plan wrote: docker %v d-bus %v", dp.Counts(), bp.Counts())
	}
}

// freePort returns a loopback address nothing listens on.
func freePort(t *testing.T) string { return drivertest.ClosedAddr(t) }

func TestFactoryProxyFailingProbeStopsDependents(t *testing.T) {
	f := deployFactoryProxy(t)
	src := f.source()
	f.setMaintenance(true)
	cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 0, "enter maintenance")

	addr := freePort(t)
	f.edit("broker probe that never passes; leave maintenance", func(s string) string {
		s = withMaintenance(s, false)
		return strings.Replace(s, "    - name: factory-broker\n      replicas: 1\n",
			fmt.Sprintf("    - name: factory-broker\n      replicas: 1\n      ready: {tcp: %q, timeout: 3s, interval: 500ms}\n", addr), 1)
	})
	r := cli(t, nil, append([]string{"apply"}, src...)...).mustCode(t, 1, "apply with a failing probe")
	for _, want := range []string{"swarm/factory-broker: ready probe failed: tcp " + addr, "did not pass within 3s"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("apply output lacks %q:\n%s", want, r.Stderr)
		}
	}
	for _, dep := range []string{"factory-proxy", "reference-BL"} {
		if n := f.specReplicas(dep); n != 0 {
			t.Errorf("%s was scaled to %d although the broker never became ready", dep, n)
		}
	}
	if en, act := timerState(t); en != "disabled" || act != "inactive" {
		t.Errorf("timer is %s/%s although a service did not come up", en, act)
	}
}

// firstCall returns when a call with the given key first reached a proxy.
func firstCall(log []callcount.Call, key string) (time.Time, bool) {
	for _, c := range log {
		if c.Key == key {
			return c.Time, true
		}
	}
	return time.Time{}, false
}

// lastCall returns when a call with the given key last reached a proxy.
func lastCall(log []callcount.Call, key string) (time.Time, bool) {
	for i := len(log) - 1; i >= 0; i-- {
		if log[i].Key == key {
			return log[i].Time, true
		}
	}
	return time.Time{}, false
}
