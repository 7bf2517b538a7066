package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers/daemontools"
	"reconciler.dev/reconciler/controllers/monitor"
	"reconciler.dev/reconciler/desired/source"
)

// selfService is a daemontools folder whose status record names this test
// process, so the collection reads real /proc figures.
func selfService(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "self")
	if err := os.MkdirAll(filepath.Join(dir, "supervise"), 0o755); err != nil {
		t.Fatal(err)
	}
	rec := daemontools.Status{PID: os.Getpid(), Want: 'u', Changed: time.Now()}.Bytes()
	if err := os.WriteFile(filepath.Join(dir, "supervise", "status"), rec, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCollectFillsStatusMetricsAndEvents(t *testing.T) {
	dir := selfService(t)
	one := int32(1)
	good := &GoodRevision{Revision: source.Revision{ID: "0123456789abcdef"}, Spec: v1.HostSpec{Services: []v1.Service{
		{Name: "self", Driver: v1.DriverDaemontools, Dir: dir, Replicas: &one},
	}}}
	a := &Agent{cfg: Config{Monitor: &monitor.Collector{}}, log: slog.New(slog.DiscardHandler),
		status: newStatusStore("h", "src"), metrics: newMetrics()}
	a.metrics.reg.MustRegister(resourceMetrics{a})
	a.status.update(func(s *status.Status) {
		s.Objects = []status.ObjectStatus{{Subject: "daemontools/self", Kind: "service", Name: "self"}}
		s.Monitor = &status.MonitorStatus{Interval: "30s"}
	})
	events, cancel := a.status.subscribe()
	defer cancel()

	a.collect(context.Background(), good)

	st := a.Status()
	r := st.Objects[0].Resources
	if r == nil || r.Replicas != 1 || r.Processes != 1 || r.RSSBytes == 0 || r.Threads < 2 || r.OpenFiles < 3 {
		t.Fatalf("resources in /status: %+v", r)
	}
	if st.Monitor.Collections != 1 || st.Monitor.Last == nil || st.Monitor.Last.ProcReads == 0 {
		t.Errorf("monitor status %+v", st.Monitor)
	}
	if ev := receive(t, events, time.Second, "a resources event"); ev.Type != names.EventResources || ev.Subject != "daemontools/self" || ev.Pass != "" || ev.Revision != "0123456789ab" ||
		ev.Resources == nil || !strings.Contains(ev.Message, "1 replicas") {
		t.Errorf("event %+v", ev)
	}
	if len(st.Events) != 0 {
		t.Errorf("resource events kept in /status: %v", st.Events)
	}
	fams := gather(t, a)
	if m := fams["reconciler_service_memory_bytes"]; len(m) != 1 || m[0].GetGauge().GetValue() != float64(r.RSSBytes) ||
		m[0].GetLabel()[0].GetName() != "service" || m[0].GetLabel()[0].GetValue() != "self" {
		t.Errorf("memory series %v", m)
	}
	if m := fams["reconciler_service_processes"]; len(m) != 1 || m[0].GetGauge().GetValue() != 1 {
		t.Errorf("processes %v", m)
	}
	if m := fams["reconciler_service_cpu_seconds_total"]; len(m) != 1 || m[0].GetCounter() == nil {
		t.Errorf("cpu %v", m)
	}
	if m := fams["reconciler_monitor_collections_total"]; len(m) != 1 || m[0].GetCounter().GetValue() != 1 {
		t.Errorf("collections %v", m)
	}
	// A later pass rebuilds the objects with the figures in them.
	if objs := a.objects(nil, nil, nil, nil); len(objs) != 0 {
		t.Errorf("objects %v", objs)
	}
	if got := a.resourcesOf("daemontools/self"); got == nil || !got.At.Equal(r.At) || got.RSSBytes != r.RSSBytes {
		t.Error("resourcesOf does not return the last figures")
	}
}

// gather reads the agent's registry: metrics by name.
func gather(t *testing.T, a *Agent) map[string][]*dto.Metric {
	t.Helper()
	fams, err := a.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]*dto.Metric{}
	for _, f := range fams {
		out[f.GetName()] = f.GetMetric()
	}
	return out
}

func TestMonitorLoopCollectsEveryInterval(t *testing.T) {
	dir := selfService(t)
	one := int32(1)
	a := &Agent{cfg: Config{Monitor: &monitor.Collector{}, MonitorInterval: 50 * time.Millisecond}, log: slog.New(slog.DiscardHandler),
		status: newStatusStore("h", "src"), metrics: newMetrics()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.monitorLoop(ctx); close(done) }()
	// No revision in force yet: nothing is collected.
	time.Sleep(300 * time.Millisecond)
	if st := a.Status(); st.Monitor == nil || st.Monitor.Interval != "50ms" || st.Monitor.Collections != 0 {
		t.Errorf("before a revision: %+v", st.Monitor)
	}
	a.mu.Lock()
	a.good = &GoodRevision{Revision: source.Revision{ID: "r1"}, Spec: v1.HostSpec{Services: []v1.Service{
		{Name: "self", Driver: v1.DriverDaemontools, Dir: dir, Replicas: &one}}}}
	a.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for a.Status().Monitor.Collections < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("collections: %+v", a.Status().Monitor)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if r := a.resourcesOf("daemontools/self"); r == nil || r.Processes != 1 {
		t.Errorf("figures %+v", r)
	}
}
