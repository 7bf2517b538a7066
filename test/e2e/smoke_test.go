//go:build e2e

package e2e

// Smoke tests: each real part of the testbed answers through the client
// library the reconciler uses for it.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/storage/memory"
	amqp "github.com/rabbitmq/amqp091-go"
)

func TestSmokeSwarmServiceCreatedAndScaled(t *testing.T) {
	cli := dockerClient(t)
	ctx := ctxT(t, 2*time.Minute)

	name := uniqueName("smoke-swarm")
	resp, err := cli.ServiceCreate(ctx, labelledServiceSpec(t, name, "local/worker:1", 0), swarm.ServiceCreateOptions{QueryRegistry: false})
	if err != nil {
		t.Fatalf("ServiceCreate %s: %v", name, err)
	}
	t.Cleanup(func() { cli.ServiceRemove(context.Background(), resp.ID) })

	scaleByHand(t, cli, resp.ID, 2)
	eventually(t, 60*time.Second, name+" running 2 tasks", func() error {
		list, err := cli.ServiceList(ctx, swarm.ServiceListOptions{
			Filters: filters.NewArgs(filters.Arg("name", name)),
			Status:  true,
		})
		if err != nil {
			return err
		}
		if len(list) != 1 || list[0].ServiceStatus == nil {
			return fmt.Errorf("service list gave %d services", len(list))
		}
		if got := list[0].ServiceStatus.RunningTasks; got != 2 {
			return fmt.Errorf("running tasks %d, want 2", got)
		}
		return nil
	})
}

func TestSmokeSystemdTimerEnabledStartedListed(t *testing.T) {
	conn := systemdConn(t)
	ctx := ctxT(t, time.Minute)
	const timer = "abb-factory-proxy-housekeeping.timer"
	lockTestbed(t, "factory-proxy") // the timer is the fixture's

	// Leave the timer as we found it.
	t.Cleanup(func() {
		ctx := context.Background()
		ch := make(chan string, 1)
		if _, err := conn.StopUnitContext(ctx, timer, "replace", ch); err == nil {
			<-ch
		}
		conn.DisableUnitFilesContext(ctx, []string{timer}, false)
		conn.ReloadContext(ctx)
	})

	if _, _, err := conn.EnableUnitFilesContext(ctx, []string{timer}, false, true); err != nil {
		t.Fatalf("EnableUnitFiles %s: %v", timer, err)
	}
	if err := conn.ReloadContext(ctx); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	ch := make(chan string, 1)
	if _, err := conn.StartUnitContext(ctx, timer, "replace", ch); err != nil {
		t.Fatalf("StartUnit %s: %v", timer, err)
	}
	if res := <-ch; res != "done" {
		t.Fatalf("StartUnit %s: job result %q", timer, res)
	}
	units, err := conn.ListUnitsByNamesContext(ctx, []string{timer})
	if err != nil {
		t.Fatal(err)
	}
	if len(units) != 1 || units[0].ActiveState != "active" {
		t.Fatalf("ListUnitsByNames %s = %+v, want one active unit", timer, units)
	}
	files, err := conn.ListUnitFilesByPatternsContext(ctx, nil, []string{timer})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].Type != "enabled" {
		t.Fatalf("ListUnitFilesByPatterns %s = %+v, want enabled", timer, files)
	}
	// The host-side view agrees with what systemctl says inside the container.
	if got := inSystemd(t, "systemctl", "is-enabled", timer); got != "enabled" {
		t.Fatalf("systemctl is-enabled %s = %q", timer, got)
	}
}

func TestSmokeRabbitMQPublishAndCount(t *testing.T) {
	tb := testbed(t)
	conn, err := amqp.DialConfig(tb.AMQPURL, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Fatalf("AMQP dial %s: %v", tb.AMQPURL, err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q := uniqueName("smoke-queue")
	if _, err := ch.QueueDeclare(q, false, true, false, false, nil); err != nil {
		t.Fatalf("declare %s: %v", q, err)
	}
	defer ch.QueueDelete(q, false, false, false)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 3))
	for i := 0; i < 3; i++ {
		err := ch.PublishWithContext(ctxT(t, 5*time.Second), "", q, false, false,
			amqp.Publishing{Body: []byte(fmt.Sprintf("job %d", i))})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		if c := <-confirms; !c.Ack {
			t.Fatalf("publish %d not acknowledged", c.DeliveryTag)
		}
	}
	got, err := ch.QueueDeclarePassive(q, false, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Messages != 3 {
		t.Fatalf("queue %s holds %d messages, want 3", q, got.Messages)
	}
}

func TestSmokeSupervisordStartsProcessOverXMLRPC(t *testing.T) {
	lockTestbed(t, "supervisor-usm-poller")
	tb := testbed(t)
	rpc := supervisorRPC(t, tb.SupervisorSocket)
	const proc = "usm-poller:usm-poller_01"
	var ok bool
	// From a known state: a process left running by an earlier run is stopped.
	var info map[string]any
	if err := rpc.Call("supervisor.getProcessInfo", proc, &info); err != nil {
		t.Fatalf("getProcessInfo %s: %v", proc, err)
	}
	if info["statename"] == "RUNNING" {
		if err := rpc.Call("supervisor.stopProcess", []any{proc, true}, &ok); err != nil {
			t.Fatal(err)
		}
	}
	if err := rpc.Call("supervisor.startProcess", []any{proc, true}, &ok); err != nil || !ok {
		t.Fatalf("startProcess %s: ok=%v err=%v", proc, ok, err)
	}
	t.Cleanup(func() { rpc.Call("supervisor.stopProcess", []any{proc, true}, &ok) })
	info = nil
	if err := rpc.Call("supervisor.getProcessInfo", proc, &info); err != nil {
		t.Fatal(err)
	}
	if info["statename"] != "RUNNING" {
		t.Fatalf("%s is %v, want RUNNING", proc, info["statename"])
	}
	pid, _ := info["pid"].(int64)
	if pid <= 0 {
		t.Fatalf("%s has no pid: %v", proc, info)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
		t.Fatalf("supervisord says pid %d, but it does not exist: %v", pid, err)
	}
}

func TestSmokeDaemontoolsServiceDownAndUp(t *testing.T) {
	tb := testbed(t)
	name := uniqueName("smoke-dt")
	// A service folder in svscan's, removed when the test ends.
	dir := dtInstall(t, dtDaemontools, tb.SvscanDir, map[string]string{name: fmt.Sprintf("#!/bin/sh\nexec %s %s\n", tb.WorkerBin, name)}, nil)[name]

	// svstat's words for a service up and one down.
	const up, down = ": up (pid ", ": down "
	// svscan looks for new folders every 5 seconds.
	awaitSvstat(t, 20*time.Second, dir, up)
	run(t, "", "svc", "-d", dir)
	awaitSvstat(t, 10*time.Second, dir, down)
	run(t, "", "svc", "-u", dir)
	awaitSvstat(t, 10*time.Second, dir, up)
}

// awaitSvstat waits until what `svstat dir` prints contains want.
func awaitSvstat(t *testing.T, within time.Duration, dir, want string) {
	t.Helper()
	eventually(t, within, fmt.Sprintf("svstat %s says %q", dir, want), func() error {
		out, _ := execOut("svstat", dir)
		if !strings.Contains(out, want) {
			return fmt.Errorf("svstat: %s", out)
		}
		return nil
	})
}

func TestSmokeGitCloneOverHTTP(t *testing.T) {
	repo := newGitRepo(t, "smoke-git")
	want := repo.Commit("first", map[string]string{"hosts/fp-01.yaml": "kind: Host\n"})

	ctx := ctxT(t, 30*time.Second)
	r, err := git.CloneContext(ctx, memory.NewStorage(), nil, &git.CloneOptions{URL: repo.HTTPURL, Depth: 1})
	if err != nil {
		t.Fatalf("go-git clone %s: %v", repo.HTTPURL, err)
	}
	head, err := r.Head()
	if err != nil {
		t.Fatal(err)
	}
	if head.Hash().String() != want {
		t.Fatalf("cloned HEAD %s, pushed %s", head.Hash(), want)
	}
}
