package agent

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"reconciler.dev/reconciler/api/status"
	"reconciler.dev/reconciler/desired/source"
)

// metrics are the agent's Prometheus series, on a registry of its own.
type metrics struct {
	reg             *prometheus.Registry
	passes          *prometheus.CounterVec
	passDuration    prometheus.Histogram
	lastPass        prometheus.Gauge
	drift           *prometheus.GaugeVec
	revision        *prometheus.GaugeVec
	revisionTime    prometheus.Gauge
	host            *prometheus.GaugeVec
	lastResult      *prometheus.GaugeVec
	failedRevision  *prometheus.GaugeVec
	quarantined     *prometheus.GaugeVec
	reverts         prometheus.Counter
	refusals        *prometheus.CounterVec
	historyFetches  prometheus.Counter
	sourceUp        prometheus.Gauge
	sourceLastFetch prometheus.Gauge
	sourceErrors    prometheus.Counter
	maintenance     prometheus.Gauge
	apiCalls        *prometheus.CounterVec
	actions         *prometheus.CounterVec

	autoscaleDesired   *prometheus.GaugeVec
	autoscaleReady     *prometheus.GaugeVec
	autoscaleConsumers *prometheus.GaugeVec
	autoscaleErrors    *prometheus.CounterVec

	webhookRefusals *prometheus.CounterVec
	started         *prometheus.GaugeVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		webhookRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconciler_webhook_refusals_total", Help: "Webhook deliveries refused: unauthorized (a bad or missing signature, a body too large) or limited (answered 429 unread, past the refusals a minute admits). Events fold them; this counts every one.",
		}, []string{"reason"}),
		// A start time, not an uptime gauge: it changes only when the
		// service restarts, so a scrape missed loses nothing, restarts show
		// as steps (changes() counts them), and time() - it is the uptime
		// at any instant, with no sample needed to keep it current.
		started: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconciler_service_started_timestamp_seconds", Help: "Since when each declared service or unit has run (its earliest running replica), as its driver observed it in the last pass; absent when it does not run or the driver does not tell.",
		}, []string{"driver", "service"}),
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconciler_passes_total", Help: "Passes by result (in-sync, converged, failed, error, abandoned).",
		}, []string{"result"}),
		passDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "reconciler_pass_duration_seconds", Help: "Duration of passes.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120},
		}),
		lastPass: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reconciler_last_pass_timestamp_seconds", Help: "When the last pass ended.",
		}),
		drift: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconciler_drift", Help: "1 for each field of an object that differs from git after the last pass.",
		}, []string{"subject", "field", "action"}),
		revision: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconciler_revision_info", Help: "The revision in force (value 1).",
		}, []string{"revision", "ref"}),
		revisionTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reconciler_revision_timestamp_seconds", Help: "The commit time of the revision in force: `fleet status --prometheus` judges a fleet against the newest.",
		}),
		host: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconciler_host_info", Help: "The agent's --host (value 1), so a view of many agents names hosts, not addresses.",
		}, []string{"host"}),
		lastResult: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconciler_last_pass_result", Help: "The result of the last pass that was not abandoned (value 1): in-sync and converged make the Ready and Converged conditions true.",
		}, []string{"result"}),
		failedRevision: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconciler_failed_revision_info", Help: "The newest revision that was refused (value 1), by reason.",
		}, []string{"revision", "reason"}),
		quarantined: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconciler_quarantined_revision_info", Help: "Each revision held in quarantine (value 1), with the object that failed.",
		}, []string{"revision", "subject"}),
		reverts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reconciler_reverts_total", Help: "Quarantines: times the last healthy revision went back in force.",
		}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconciler_revision_refusals_total", Help: "Revisions refused, by reason (invalid, unreadable, unsigned, untrusted-key, bad-signature, not-descendant, unverifiable).",
		}, []string{"reason"}),
		historyFetches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reconciler_source_history_fetches_total", Help: "Deepening fetches made to judge a new revision's history (anti-rollback, strict signatures).",
		}),
		sourceUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reconciler_source_up", Help: "1 when the last ref lookup succeeded.",
		}),
		sourceLastFetch: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reconciler_source_last_fetch_timestamp_seconds", Help: "When the source was last looked up successfully.",
		}),
		sourceErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reconciler_source_fetch_errors_total", Help: "Failed ref lookups or fetches.",
		}),
		maintenance: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reconciler_maintenance", Help: "1 while the host is in maintenance.",
		}),
		apiCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconciler_api_calls_total", Help: "Calls to Docker, D-Bus and other APIs, by driver and verb.",
		}, []string{"driver", "verb"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconciler_actions_total", Help: "Actions by operation and outcome.",
		}, []string{"op", "outcome"}),
		autoscaleDesired: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconciler_autoscale_desired_replicas", Help: "The replica count the autoscaler decided, by service.",
		}, []string{"service"}),
		autoscaleReady: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconciler_autoscale_queue_ready_messages", Help: "Ready messages of the queue an autoscaled service watches.",
		}, []string{"service", "queue"}),
		autoscaleConsumers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconciler_autoscale_queue_consumers", Help: "Consumers of the queue an autoscaled service watches.",
		}, []string{"service", "queue"}),
		autoscaleErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconciler_autoscale_read_errors_total", Help: "Queue readings that failed (the count was held).",
		}, []string{"service"}),
	}
	m.reg.MustRegister(m.passes, m.passDuration, m.lastPass, m.drift, m.revision, m.revisionTime, m.host, m.lastResult, m.failedRevision, m.quarantined, m.reverts, m.refusals, m.historyFetches,
		m.sourceUp, m.sourceLastFetch, m.sourceErrors, m.maintenance, m.apiCalls, m.actions,
		m.autoscaleDesired, m.autoscaleReady, m.autoscaleConsumers, m.autoscaleErrors, m.webhookRefusals, m.started,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// setRevision says which revision is in force, and its commit time.
func (m *metrics) setRevision(r source.Revision) {
	m.revision.Reset()
	m.revision.WithLabelValues(r.ID, r.Ref).Set(1)
	m.revisionTime.Set(float64(r.Time.Unix()))
}

// CallCounter returns a hook for a driver's Count field.
func (a *Agent) CallCounter(driver string) func(verb string) {
	return func(verb string) { a.metrics.apiCalls.WithLabelValues(driver, verb).Inc() }
}

// setStarted puts the objects' start times in force: only those that run
// and whose driver tells have a series.
func (m *metrics) setStarted(objects []status.ObjectStatus) {
	if m == nil {
		return
	}
	m.started.Reset()
	for _, o := range objects {
		if !o.Since.IsZero() {
			m.started.WithLabelValues(o.Driver, o.Name).Set(float64(o.Since.Unix()))
		}
	}
}
