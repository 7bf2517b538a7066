package daemontools

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"reconciler.dev/reconciler/controllers"
)

func TestRunEnded(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	t1 := t0.Add(1500 * time.Millisecond)
	for _, tc := range []struct {
		name        string
		before, now Status
		want        bool
	}{
		{"nothing happened yet", Status{Changed: t0, Want: 'd'}, Status{Changed: t0, Want: 0}, false},
		{"started, runs", Status{Changed: t0, Want: 'd'}, Status{Changed: t1, PID: 7}, false},
		{"started and ended", Status{Changed: t0, Want: 'd'}, Status{Changed: t1}, true},
		{"was running, still the same run", Status{Changed: t0, PID: 7}, Status{Changed: t0, PID: 7}, false},
		{"was running, ended", Status{Changed: t0, PID: 7}, Status{Changed: t1}, true},
		{"runit: ./finish runs", Status{Runit: true, Changed: t0},
			Status{Runit: true, Changed: t1, PID: 9, RunState: RunStateFinish}, false},
		{"runit: ./finish pid gone but state not down yet", Status{Runit: true, Changed: t0},
			Status{Runit: true, Changed: t1, RunState: RunStateFinish}, false},
		{"runit: down again", Status{Runit: true, Changed: t0}, Status{Runit: true, Changed: t1, Want: 'd'}, true},
	} {
		if got := RunEnded(tc.before, tc.now); got != tc.want {
			t.Errorf("%s: RunEnded = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// playOnce plays supervise for one once run: it waits for the o command,
// then shows the service running, then ended, each with a new time.
func playOnce(f *fakeSupervise, runit bool, got chan<- string) {
	var cmds string
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(cmds, "o") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		cmds += f.commands()
	}
	want := byte(0)
	if runit {
		want = 'd' // sv once leaves want d
	}
	run := Status{Runit: runit, Changed: time.Now(), PID: 4242, Want: want}
	if runit {
		run.RunState = RunStateRun
	}
	f.setStatus(run)
	time.Sleep(30 * time.Millisecond)
	f.setStatus(Status{Runit: runit, Changed: time.Now(), Want: want})
	got <- cmds
}

func TestRunWaitsForTheOnceRunToEnd(t *testing.T) {
	for _, tc := range []struct {
		name      string
		runit     bool
		replicas  int32
		wantAfter string // commands sent after the run
		wantMark  bool
	}{
		{"daemontools head (replicas 1)", false, 1, "", false},
		{"daemontools task run only by triggers (replicas 0)", false, 0, "d", false},
		{"runit head: the once mark", true, 1, "", true},
		{"runit task: no mark, sv once left it down", true, 0, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFolder(t, true)
			f.setStatus(Status{Runit: tc.runit, Changed: time.Now().Add(-time.Hour), Want: 'd'})
			got := make(chan string, 1)
			go playOnce(f, tc.runit, got)
			d := &Driver{}
			res, err := d.Run(context.Background(), f.target(declare("task", tc.replicas, once)))
			if err != nil {
				t.Fatal(err)
			}
			if before := <-got; before != "o" {
				t.Errorf("commands before the run ended: %q, want o", before)
			}
			if !res.Exited || !res.Succeeded || res.Detail != "exited (status not recorded)" {
				t.Errorf("result = %+v", res)
			}
			if after := f.commands(); after != tc.wantAfter {
				t.Errorf("commands after the run: %q, want %q", after, tc.wantAfter)
			}
			if f.exists(onceFile) != tc.wantMark {
				t.Errorf("once mark present = %v, want %v", f.exists(onceFile), tc.wantMark)
			}
		})
	}
}

func TestRunFailsClearly(t *testing.T) {
	never := newFolder(t, true)
	never.setStatus(Status{Changed: time.Now().Add(-time.Hour), Want: 'd'})
	d := &Driver{RunTimeout: 200 * time.Millisecond}
	_, err := d.Run(context.Background(), never.target(declare("task", 0, once)))
	if err == nil || !strings.Contains(err.Error(), "did not end within 200ms") {
		t.Errorf("a run that never ends: %v", err)
	}

	dead := newFolder(t, false)
	dead.setStatus(Status{Changed: time.Now(), Want: 'd'})
	_, err = d.Run(context.Background(), dead.target(declare("task", 0, once)))
	if err == nil || !strings.Contains(err.Error(), "no supervise running for "+dead.dir) {
		t.Errorf("no supervise: %v", err)
	}

	up := newFolder(t, true)
	up.setStatus(Status{Changed: time.Now(), Want: 'd'})
	_, err = d.Run(context.Background(), up.target(declare("svc", 0)))
	if !errors.Is(err, controllers.ErrCannotRun) {
		t.Errorf("a service without once: %v, want ErrCannotRun", err)
	}
	if c := up.commands(); c != "" {
		t.Errorf("sent %q to a service that is not once", c)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = d.Run(ctx, never.target(declare("task", 0, once)))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("abandoned: %v, want context.Canceled", err)
	}
}
