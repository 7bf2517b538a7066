package agent

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
	"reconciler.dev/reconciler/controllers/engine"
	"reconciler.dev/reconciler/controllers/monitor"
	"reconciler.dev/reconciler/desired/source"
)

// DefaultMonitorInterval is how often resource figures are collected when
// Config.MonitorInterval is not set.
const DefaultMonitorInterval = 30 * time.Second

// monitorState holds the last figures, for /status, /metrics and passes.
type monitorState struct {
	mu          sync.Mutex
	res         map[string]*monitor.Resources // by subject
	names       map[string]string             // subject -> service name
	last        *monitor.Cost
	collections int
	cpuSeconds  float64 // what every collection so far cost
	lastErrors  string  // the errors last logged, so a lasting one is logged once
}

// resourcesOf returns the last figures of a subject, or nil. They are never
// changed once collected, so they are shared, not copied.
func (a *Agent) resourcesOf(subject string) *monitor.Resources {
	a.mon.mu.Lock()
	defer a.mon.mu.Unlock()
	return a.mon.res[subject]
}

// monitorLoop collects resource figures: first as soon as a revision is in
// force, then every MonitorInterval, apart from passes (a pass never waits
// for a collection, nor a collection for a pass). Samples are not part of
// any pass: their events and log lines carry the revision in force and no
// pass id.
func (a *Agent) monitorLoop(ctx context.Context) {
	interval := a.cfg.MonitorInterval
	if interval <= 0 {
		interval = DefaultMonitorInterval
	}
	a.status.update(func(s *status.Status) { s.Monitor = &status.MonitorStatus{Interval: interval.String()} })
	wait := 200 * time.Millisecond
	for {
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		a.mu.Lock()
		good := a.good
		a.mu.Unlock()
		if good == nil {
			wait = time.Second
			continue
		}
		a.collect(ctx, good)
		a.idle.soon()
		wait = interval
	}
}

// collect samples the services of the revision in force once.
func (a *Agent) collect(ctx context.Context, good *GoodRevision) {
	spec := &good.Spec
	a.mu.Lock()
	if a.planned != nil && a.plannedRev == good.Revision.ID {
		spec = a.planned // what the selectors matched, too
	}
	a.mu.Unlock()
	targets := engine.Targets(spec, engine.MaintenanceAt(spec, time.Now()), nil)
	res, cost := a.cfg.Monitor.Collect(ctx, targets)
	if ctx.Err() != nil {
		return
	}
	byName := map[string]string{}
	for _, t := range targets {
		byName[t.Subject()] = t.Name
	}
	rev := source.Short(good.Revision.ID)
	errs := strings.Join(cost.Errors, "; ")
	a.mon.mu.Lock()
	a.mon.res, a.mon.names, a.mon.last = res, byName, &cost
	a.mon.collections++
	a.mon.cpuSeconds += cost.CPUSeconds
	logErrs := errs != a.mon.lastErrors
	a.mon.lastErrors = errs
	n := a.mon.collections
	a.mon.mu.Unlock()

	a.status.update(func(s *status.Status) {
		for i := range s.Objects {
			s.Objects[i].Resources = res[s.Objects[i].Subject]
		}
		if s.Monitor != nil {
			s.Monitor.Collections, s.Monitor.Last = n, &cost
		}
	})
	for _, subject := range slices.Sorted(maps.Keys(res)) {
		r := res[subject]
		a.status.publish(status.Event{Time: r.At, Revision: rev, Type: names.EventResources, Subject: subject,
			Message: describeResources(r), Resources: r})
	}
	log := a.log.With("pass", "-", "revision", rev)
	log.Debug("resource figures collected", "services", len(res), "took", time.Duration(cost.TookSeconds*float64(time.Second)).Round(time.Microsecond).String(),
		"cpu", time.Duration(cost.CPUSeconds*float64(time.Second)).String(), "calls", fmt.Sprint(cost.Calls), "procReads", cost.ProcReads)
	if logErrs && errs != "" {
		log.Warn("resource figures incomplete", "err", errs)
	} else if logErrs {
		log.Info("resource figures complete again")
	}
}

// describeResources is one line for people: "2 replicas, rss 12.3 MiB,
// cpu 4.20s, 3 processes, 14 threads, 21 open files, 2 connections".
func describeResources(r *monitor.Resources) string {
	return fmt.Sprintf("%d replicas, rss %s, vms %s, cpu %.2fs, %d processes, %d threads, %d open files, %d connections",
		r.Replicas, status.Bytes(r.MemoryBytes()), status.Bytes(r.VMSBytes), r.CPUSeconds, r.Processes, r.Threads, r.OpenFiles, r.Connections)
}

// resourceMetrics exports the last figures at scrape time, so a service
// that is no longer declared disappears with the next collection.
type resourceMetrics struct{ a *Agent }

// serviceSeries are the per-service series, each with the figure it
// exports: one list serves Describe and Collect.
var serviceSeries = []struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(*monitor.Resources) float64
}{
	{serviceDesc("reconciler_service_memory_bytes", "Resident memory (RSS) of every process of the service (replicas and children); what its cgroup is charged when /proc cannot be read."),
		prometheus.GaugeValue, func(r *monitor.Resources) float64 { return float64(r.MemoryBytes()) }},
	{serviceDesc("reconciler_service_virtual_memory_bytes", "Virtual memory of every process of the service."),
		prometheus.GaugeValue, func(r *monitor.Resources) float64 { return float64(r.VMSBytes) }},
	{serviceDesc("reconciler_service_cpu_seconds_total", "CPU time (user + system) of the service: its cgroup's when systemd or Docker count it, else its live processes'."),
		prometheus.CounterValue, func(r *monitor.Resources) float64 { return r.CPUSeconds }},
	{serviceDesc("reconciler_service_processes", "Processes of the service: each replica's main process and its children."),
		prometheus.GaugeValue, func(r *monitor.Resources) float64 { return float64(r.Processes) }},
	{serviceDesc("reconciler_service_threads", "Threads of the service's processes."),
		prometheus.GaugeValue, func(r *monitor.Resources) float64 { return float64(r.Threads) }},
	{serviceDesc("reconciler_service_open_files", "Open descriptors (files, sockets, pipes) of the service's processes."),
		prometheus.GaugeValue, func(r *monitor.Resources) float64 { return float64(r.OpenFiles) }},
	{serviceDesc("reconciler_service_connections", "Established TCP connections of the service's processes."),
		prometheus.GaugeValue, func(r *monitor.Resources) float64 { return float64(r.Connections) }},
	{serviceDesc("reconciler_service_replicas_sampled", "Running replicas whose processes the last collection read."),
		prometheus.GaugeValue, func(r *monitor.Resources) float64 { return float64(r.Replicas) }},
}

func serviceDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, []string{"service"}, nil)
}

// The series of the collections themselves.
var (
	descCollections = prometheus.NewDesc("reconciler_monitor_collections_total",
		"Resource collections made.", nil, nil)
	descCollectionSeconds = prometheus.NewDesc("reconciler_monitor_collection_duration_seconds",
		"Wall time of the last resource collection.", nil, nil)
	descCollectionCPU = prometheus.NewDesc("reconciler_monitor_cpu_seconds_total",
		"CPU time the agent spent collecting resource figures (an upper bound: a pass running meanwhile counts too).", nil, nil)
	descCollectionTime = prometheus.NewDesc("reconciler_monitor_last_collection_timestamp_seconds",
		"When the last resource collection started.", nil, nil)
)

func (m resourceMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range serviceSeries {
		ch <- s.desc
	}
	for _, d := range []*prometheus.Desc{descCollections, descCollectionSeconds, descCollectionCPU, descCollectionTime} {
		ch <- d
	}
}

func (m resourceMetrics) Collect(ch chan<- prometheus.Metric) {
	st := &m.a.mon
	st.mu.Lock()
	defer st.mu.Unlock()
	for subject, r := range st.res {
		name := st.names[subject]
		if name == "" {
			name = subject
		}
		for _, s := range serviceSeries {
			ch <- prometheus.MustNewConstMetric(s.desc, s.kind, s.value(r), name)
		}
	}
	if st.last != nil {
		ch <- prometheus.MustNewConstMetric(descCollections, prometheus.CounterValue, float64(st.collections))
		ch <- prometheus.MustNewConstMetric(descCollectionSeconds, prometheus.GaugeValue, st.last.TookSeconds)
		ch <- prometheus.MustNewConstMetric(descCollectionCPU, prometheus.CounterValue, st.cpuSeconds)
		ch <- prometheus.MustNewConstMetric(descCollectionTime, prometheus.GaugeValue, float64(st.last.At.UnixNano())/1e9)
	}
}
