package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/monitor"
)

func TestPrintPass(t *testing.T) {
	start := time.Date(2026, 11, 22, 15, 0, 0, 0, time.UTC)
	d := status.PassDetail{
		Pass: status.PassSummary{ID: "p1", Revision: "abc", Trigger: "webhook", Start: start, End: start.Add(2 * time.Second),
			Result: "failed", Error: "swarm/x: not ready",
			Stages: []status.StageTiming{{Number: 1, Title: "down: stop units", Start: start.Add(10 * time.Millisecond), End: start.Add(time.Second)}},
			Actions: []status.ActionOutcome{{Action: controllers.Action{Subject: "swarm/x", Field: "replicas", From: "1", To: "0",
				Op: controllers.OpScaleDown, Stage: 1}, Outcome: "failed", Error: "boom"}}},
		Events: []status.Event{{Time: start, Type: names.EventPassStarted, Message: "trigger: webhook"},
			{Time: start.Add(1500 * time.Millisecond), Type: names.EventAction, Subject: "swarm/x", Field: "replicas", From: "1", To: "0", Message: "scale-down"}},
		EventsDropped: 3,
	}
	var b bytes.Buffer
	printPass(&b, d)
	out := b.String()
	for _, want := range []string{
		"pass:      p1\n", "revision:  abc\n", "trigger:   webhook\n", "result:    failed (started ", "took 2s)\n",
		"error:     swarm/x: not ready\n",
		"  1      +0.010s  990ms  down: stop units\n",
		"swarm/x  replicas  1     0        scale-down  failed   boom\n",
		"events:    2 (and 3 more not kept)\n",
		"  +0.000s  pass-started",
		"  +1.500s  action        swarm/x  replicas 1 -> 0: scale-down\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
}

func TestPrintResources(t *testing.T) {
	st := status.Status{
		Monitor: &status.MonitorStatus{Interval: "30s", Collections: 2, Last: &monitor.Cost{At: time.Now(), TookSeconds: 0.004,
			CPUSeconds: 0.002, Calls: map[string]int{"docker-list": 1, "docker-stats": 2}, ProcReads: 40, Errors: []string{"systemd: no bus"}}},
		Objects: []status.ObjectStatus{
			{Subject: "unit/x.timer"},
			{Subject: "swarm/web", Resources: &monitor.Resources{Replicas: 2, RSSBytes: 12 << 20, VMSBytes: 1 << 30, CPUSeconds: 1.5,
				Processes: 2, Threads: 14, OpenFiles: 20, Connections: 3, Source: "docker+proc"}},
		},
	}
	var b bytes.Buffer
	printResources(&b, st)
	out := b.String()
	for _, want := range []string{
		"resources:   collected 0s ago, every 30s (took 4ms, 2.0 ms CPU, 3 API calls, 40 /proc reads)\n",
		"incomplete: systemd: no bus\n",
		"  swarm/web  2         12.0 MiB  1.0 GiB  1.50s  2      14       20     3      docker+proc\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "x.timer") {
		t.Errorf("a unit in the resources:\n%s", out)
	}
	b.Reset()
	printResources(&b, status.Status{})
	if b.Len() != 0 {
		t.Errorf("resources with the monitor off: %q", b.String())
	}
}

func TestPrintUptime(t *testing.T) {
	now := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		objs []status.ObjectStatus
		want []string
		not  []string
	}{
		{name: "none tells", objs: []status.ObjectStatus{{Subject: "compose/web"}}},
		{
			name: "service with replicas and a unit",
			objs: []status.ObjectStatus{
				{Subject: "unit/b.service"},
				{Subject: "swarm/web", Since: now.Add(-90 * time.Minute), ReplicasSince: map[string]time.Time{
					"web.2": now.Add(-5 * time.Second), "web.1": now.Add(-90 * time.Minute)}},
				{Subject: "daemontools/squid", Since: now.Add(-3 * time.Second)},
			},
			want: []string{"uptime:\n", "swarm/web          2026-12-02T04:30:00Z  1h30m0s  web.1 1h30m0s, web.2 5s\n",
				"daemontools/squid  2026-12-02T05:59:57Z  3s       none\n"},
			not: []string{"b.service"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			printUptime(&b, status.Status{Objects: tc.objs}, now)
			out := b.String()
			if len(tc.want) == 0 && out != "" {
				t.Errorf("printed %q, want nothing", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("no %q in:\n%s", w, out)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(out, n) {
					t.Errorf("%q in:\n%s", n, out)
				}
			}
		})
	}
}

func TestMarshalValidRefusesABadHostName(t *testing.T) {
	h := &v1.Host{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindHost}, Metadata: v1.ObjectMeta{Name: "bad_host"}}
	if _, _, err := marshalValid(h, nil); err == nil || !strings.Contains(err.Error(), "--host") {
		t.Errorf("err = %v", err)
	}
	h.Metadata.Name = "good-host"
	if b, eff, err := marshalValid(h, []string{"c"}); err != nil || eff == nil || !strings.HasPrefix(string(b), "# c\n") {
		t.Errorf("%s %v", b, err)
	}
}
