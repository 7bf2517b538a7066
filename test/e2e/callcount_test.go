//go:build e2e

package e2e

// The call counters of internal/callcount against the real Engine and the
// real systemd: what the proxies count is what the clients the reconciler
// uses really send, and the clients work through them unchanged.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/godbus/dbus/v5"

	"reconciler.dev/reconciler/internal/callcount"
	"reconciler.dev/reconciler/internal/socktest"
)

func TestCallCountDockerProxy(t *testing.T) {
	tb := testbed(t)
	direct := dockerClient(t) // for cleanup only, not counted
	ctx := ctxT(t, 2*time.Minute)

	p, err := callcount.NewDockerProxy(filepath.Join(socktest.Dir(t), "docker.sock"), tb.DockerHost)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	cli, err := client.NewClientWithOpts(client.WithHost(p.Host()), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })

	expect := func(step string, want map[string]int, mutating, reads int) {
		t.Helper()
		if got := p.Counts(); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: Counts() = %v, want %v\nlog: %s", step, got, want, dockerLog(p.Log()))
		}
		if p.Mutating() != mutating || p.Reads() != reads || p.Total() != mutating+reads {
			t.Fatalf("%s: Mutating %d Reads %d Total %d, want %d %d %d", step,
				p.Mutating(), p.Reads(), p.Total(), mutating, reads, mutating+reads)
		}
	}

	// Create: the client negotiates the API version first, with HEAD /_ping
	// (a GET /_ping would mean HEAD failed through the proxy).
	name := uniqueName("callcount")
	created, err := cli.ServiceCreate(ctx, labelledServiceSpec(t, name, "local/worker:1", 0), swarm.ServiceCreateOptions{QueryRegistry: false})
	if err != nil {
		t.Fatalf("ServiceCreate through the proxy: %v", err)
	}
	t.Cleanup(func() { direct.ServiceRemove(context.Background(), created.ID) })
	expect("create", map[string]int{"HEAD /_ping": 1, "POST /services/create": 1}, 1, 1)
	p.Reset()

	// Watch the events of this service through the proxy: a stream.
	evctx, stopEvents := context.WithCancel(ctx)
	defer stopEvents()
	// Since: the Engine replays what happened after it, so the update
	// cannot slip past a subscription that starts late.
	evs, evErrs := cli.Events(evctx, events.ListOptions{Since: strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10), Filters: filters.NewArgs(
		filters.Arg("type", string(events.ServiceEventType)),
		filters.Arg("service", created.ID),
	)})

	// The read, then the one write the reconciler would make.
	list, err := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", tb.Label+"=1"))})
	if err != nil {
		t.Fatalf("ServiceList through the proxy: %v", err)
	}
	var svc *swarm.Service
	for i := range list {
		if list[i].ID == created.ID {
			svc = &list[i]
		}
	}
	if svc == nil {
		t.Fatalf("ServiceList through the proxy: %s not among %d services", name, len(list))
	}
	one := uint64(1)
	spec := svc.Spec
	spec.Mode.Replicated.Replicas = &one
	if _, err := cli.ServiceUpdate(ctx, svc.ID, svc.Version, spec, swarm.ServiceUpdateOptions{}); err != nil {
		t.Fatalf("ServiceUpdate through the proxy: %v", err)
	}

	// The update's event comes through the stream.
	timeout := time.After(30 * time.Second)
	for updated := false; !updated; {
		select {
		case ev := <-evs:
			if ev.Actor.ID != created.ID {
				t.Fatalf("event %+v, want one of %s", ev, created.ID)
			}
			updated = ev.Action == events.ActionUpdate
		case err := <-evErrs:
			t.Fatalf("events through the proxy: %v", err)
		case <-timeout:
			t.Fatal("no service update event through the proxy within 30s")
		}
	}
	expect("list and update", map[string]int{
		"GET /events":                1,
		"GET /services":              1,
		"POST /services/{id}/update": 1,
	}, 1, 2)
	stopEvents()

	// The change is real: the Engine has 1 replica now (read directly).
	got, _, err := direct.ServiceInspectWithRaw(ctx, created.ID, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r := got.Spec.Mode.Replicated.Replicas; r == nil || *r != 1 {
		t.Fatalf("replicas after the update through the proxy: %v, want 1", r)
	}

	p.Reset()
	if err := cli.ServiceRemove(ctx, created.ID); err != nil {
		t.Fatalf("ServiceRemove through the proxy: %v", err)
	}
	expect("remove", map[string]int{"DELETE /services/{id}": 1}, 1, 0)
	for _, c := range p.Log() {
		if !strings.HasSuffix(c.Path, "/services/"+created.ID) {
			t.Fatalf("logged path %q, want the service's", c.Path)
		}
	}
}

func dockerLog(calls []callcount.Call) string {
	var b strings.Builder
	for _, c := range calls {
		fmt.Fprintf(&b, "\n  %s %s %s", c.Time.Format("15:04:05.000"), c.Method, c.Path)
	}
	return b.String()
}

func dbusLog(calls []callcount.Call) string {
	var b strings.Builder
	for _, c := range calls {
		fmt.Fprintf(&b, "\n  %s conn %d %s.%s (%s)", c.Time.Format("15:04:05.000"), c.Conn, c.Interface, c.Member, c.Kind)
	}
	return b.String()
}

// unitState is what the test changes of a unit, to put it back afterwards.
type unitState struct{ active, enabled bool }

func readUnitState(t *testing.T, conn *sddbus.Conn, unit string) unitState {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	units, err := conn.ListUnitsByNamesContext(ctx, []string{unit})
	if err != nil {
		t.Fatal(err)
	}
	files, err := conn.ListUnitFilesByPatternsContext(ctx, nil, []string{unit})
	if err != nil {
		t.Fatal(err)
	}
	var s unitState
	s.active = len(units) == 1 && units[0].ActiveState == "active"
	s.enabled = len(files) == 1 && files[0].Type == "enabled"
	return s
}

// restoreUnit puts unit back as it was, over conn (a direct connection, so
// the restoring is not counted).
func restoreUnit(t *testing.T, conn *sddbus.Conn, unit string, want unitState) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := readUnitState(t, conn, unit)
	if now.enabled != want.enabled {
		var err error
		if want.enabled {
			_, _, err = conn.EnableUnitFilesContext(ctx, []string{unit}, false, true)
		} else {
			_, err = conn.DisableUnitFilesContext(ctx, []string{unit}, false)
		}
		if err == nil {
			err = conn.ReloadContext(ctx)
		}
		if err != nil {
			t.Errorf("restoring %s enabled=%v: %v", unit, want.enabled, err)
		}
	}
	if now.active != want.active {
		ch := make(chan string, 1)
		var err error
		if want.active {
			_, err = conn.StartUnitContext(ctx, unit, "replace", ch)
		} else {
			_, err = conn.StopUnitContext(ctx, unit, "replace", ch)
		}
		if err == nil {
			select {
			case <-ch:
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
		if err != nil {
			t.Errorf("restoring %s active=%v: %v", unit, want.active, err)
		}
	}
	if got := readUnitState(t, conn, unit); got != want {
		t.Errorf("%s left as %+v, found as %+v", unit, got, want)
	}
}

// dialThrough is a go-systemd dial function for the bus behind address, the
// way go-systemd dials the system bus: EXTERNAL auth by uid, then Hello. It
// counts the connections on which unix fd passing was agreed in *fdConns.
func dialThrough(ctx context.Context, address string, fdConns *int) func() (*dbus.Conn, error) {
	return func() (*dbus.Conn, error) {
		conn, err := dbus.Dial(address, dbus.WithContext(ctx))
		if err != nil {
			return nil, err
		}
		if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
			conn.Close()
			return nil, err
		}
		if conn.SupportsUnixFDs() {
			*fdConns++
		}
		if err := conn.Hello(); err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	}
}

func TestCallCountDBusProxy(t *testing.T) {
	tb := testbed(t)
	direct := systemdConn(t) // state before and after, not counted
	const timer = "abb-factory-proxy-housekeeping.timer"
	lockTestbed(t, "factory-proxy") // the timer is the fixture's
	found := readUnitState(t, direct, timer)
	t.Logf("%s found active=%v enabled=%v", timer, found.active, found.enabled)
	t.Cleanup(func() { restoreUnit(t, direct, timer, found) })

	p, err := callcount.NewDBusProxy(filepath.Join(socktest.Dir(t), "bus.sock"), tb.SystemBus)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	ctx := ctxT(t, 2*time.Minute)

	var fdConns int
	conn, err := sddbus.NewConnection(dialThrough(ctx, p.Address(), &fdConns))
	if err != nil {
		t.Fatalf("go-systemd through the proxy: %v", err)
	}
	defer conn.Close()
	// The bus agreed to unix fd passing (AGREE_UNIX_FD went through as is),
	// and everything below works on such connections.
	if fdConns != 2 {
		t.Fatalf("unix fd passing agreed on %d of go-systemd's 2 connections", fdConns)
	}
	// Two bus connections, each saying Hello; the signal connection asks
	// for JobRemoved with AddMatch. All housekeeping.
	want := map[string]int{"Hello": 2, "AddMatch": 1}
	if got := p.Counts(); !reflect.DeepEqual(got, want) || p.Housekeeping() != 3 || p.Reads() != 0 || p.Mutating() != 0 {
		t.Fatalf("after connecting: Counts() = %v, want %v%s", got, want, dbusLog(p.Log()))
	}

	// Reads.
	units, err := conn.ListUnitsByPatternsContext(ctx, nil, []string{timer})
	if err != nil {
		t.Fatalf("ListUnitsByPatterns through the proxy: %v", err)
	}
	// An inactive, disabled unit is not loaded and so not listed.
	if len(units) > 1 || len(units) == 1 && units[0].Name != timer {
		t.Fatalf("ListUnitsByPatterns %s: %+v", timer, units)
	}
	if _, err := conn.ListUnitFilesByPatternsContext(ctx, nil, []string{timer}); err != nil {
		t.Fatalf("ListUnitFilesByPatterns through the proxy: %v", err)
	}

	// Start and stop, each waiting for the job result: JobRemoved is a
	// signal from the server, so it proves signals flow back.
	job := func(what string, call func(chan<- string) (int, error)) {
		t.Helper()
		ch := make(chan string, 1)
		if _, err := call(ch); err != nil {
			t.Fatalf("%s %s through the proxy: %v", what, timer, err)
		}
		select {
		case res := <-ch:
			if res != "done" {
				t.Fatalf("%s %s: job result %q, want done", what, timer, res)
			}
		case <-ctx.Done():
			t.Fatalf("%s %s: no job result (JobRemoved signal) through the proxy", what, timer)
		}
	}
	job("StartUnit", func(ch chan<- string) (int, error) { return conn.StartUnitContext(ctx, timer, "replace", ch) })
	if got := inSystemd(t, "systemctl", "is-active", timer); got != "active" {
		t.Fatalf("after StartUnit through the proxy: is-active %q", got)
	}
	job("StopUnit", func(ch chan<- string) (int, error) { return conn.StopUnitContext(ctx, timer, "replace", ch) })

	// Enable and disable, each followed by a daemon reload.
	if _, _, err := conn.EnableUnitFilesContext(ctx, []string{timer}, false, true); err != nil {
		t.Fatalf("EnableUnitFiles through the proxy: %v", err)
	}
	if err := conn.ReloadContext(ctx); err != nil {
		t.Fatalf("Reload through the proxy: %v", err)
	}
	if got := inSystemd(t, "systemctl", "is-enabled", timer); got != "enabled" {
		t.Fatalf("after EnableUnitFiles through the proxy: is-enabled %q", got)
	}
	if _, err := conn.DisableUnitFilesContext(ctx, []string{timer}, false); err != nil {
		t.Fatalf("DisableUnitFiles through the proxy: %v", err)
	}
	if err := conn.ReloadContext(ctx); err != nil {
		t.Fatalf("Reload through the proxy: %v", err)
	}

	want = map[string]int{
		"Hello": 2, "AddMatch": 1,
		"ListUnitsByPatterns": 1, "ListUnitFilesByPatterns": 1,
		"StartUnit": 1, "StopUnit": 1, "EnableUnitFiles": 1, "DisableUnitFiles": 1, "Reload": 2,
	}
	if got := p.Counts(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Counts() = %v, want %v%s", got, want, dbusLog(p.Log()))
	}
	if p.Mutating() != 6 || p.Reads() != 2 || p.Housekeeping() != 3 || p.Total() != 11 {
		t.Fatalf("Mutating %d Reads %d Housekeeping %d Total %d, want 6 2 3 11%s",
			p.Mutating(), p.Reads(), p.Housekeeping(), p.Total(), dbusLog(p.Log()))
	}
	if err := p.Err(); err != nil {
		t.Fatalf("the proxy could not follow a stream: %v", err)
	}
	for _, c := range p.Log() {
		if c.Kind != callcount.KindHousekeeping && (c.Destination != "org.freedesktop.systemd1" || c.Interface != "org.freedesktop.systemd1.Manager") {
			t.Fatalf("call %+v: not to the systemd manager", c)
		}
	}
	t.Logf("calls through the proxy:%s", dbusLog(p.Log()))
}

// TestCallCountDBusProxyFromEnv: code that finds the bus the way production
// code does, through DBUS_SYSTEM_BUS_ADDRESS, goes through the proxy with
// both of go-systemd's connections.
func TestCallCountDBusProxyFromEnv(t *testing.T) {
	tb := testbed(t)
	p, err := callcount.NewDBusProxy(filepath.Join(socktest.Dir(t), "bus.sock"), tb.SystemBus)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", p.Address())

	ctx := ctxT(t, time.Minute)
	conn, err := sddbus.NewSystemConnectionContext(ctx)
	if err != nil {
		t.Fatalf("go-systemd through the proxy: %v", err)
	}
	defer conn.Close()
	if _, err := conn.ListUnitsByPatternsContext(ctx, nil, []string{"usm-poller@*"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"Hello": 2, "AddMatch": 1, "ListUnitsByPatterns": 1}
	if got := p.Counts(); !reflect.DeepEqual(got, want) || p.Reads() != 1 || p.Mutating() != 0 {
		t.Fatalf("Counts() = %v, want %v%s", got, want, dbusLog(p.Log()))
	}
	conns := map[uint64]bool{}
	for _, c := range p.Log() {
		conns[c.Conn] = true
	}
	if len(conns) != 2 {
		t.Fatalf("calls on %d connections, want go-systemd's 2", len(conns))
	}
}
