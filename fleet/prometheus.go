package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
	"reconciler.dev/reconciler/controllers"
)

// DefaultPrometheusJob is the scrape job of examples/deploy/prometheus/.
const DefaultPrometheusJob = "reconciler"

// maxPrometheusAnswer bounds what one query's answer may be: a thousand
// agents' series of one metric take about 200 KiB.
const maxPrometheusAnswer = 16 << 20

// ErrNotScraped is the Answer.Err of an agent whose last scrape failed
// (up == 0): Prometheus could not reach it, so nothing it says is current.
var ErrNotScraped = errors.New("Prometheus's last scrape of it failed (up == 0)")

// ErrPrometheusAnswer is wrapped by every error about what Prometheus
// answered (not JSON, status "error", too large).
var ErrPrometheusAnswer = errors.New("unexpected answer from Prometheus")

// Prometheus answers a fleet's status from Prometheus instead of asking
// every agent: a handful of instant queries over its HTTP API, whatever the
// size of the fleet. Each agent is named by its instance label (the address
// Prometheus scrapes).
type Prometheus struct {
	URL     string        // e.g. http://prometheus:9090
	Job     string        // the scrape job (default DefaultPrometheusJob)
	Timeout time.Duration // for all the queries together (default 10s)
	Client  *http.Client  // default http.DefaultClient
}

// promSample is one series of an instant vector.
type promSample struct {
	Metric map[string]string  `json:"metric"`
	Value  [2]json.RawMessage `json:"value"` // [unix time, "value"]
}

func (s promSample) value() float64 {
	var v string
	if err := json.Unmarshal(s.Value[1], &v); err != nil {
		return math.NaN()
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return math.NaN()
	}
	return f
}

// Collect returns the agents Prometheus knows in the job (sorted) and what
// their latest scrapes say, as the Answers Summarize reads.
func (p Prometheus) Collect(ctx context.Context) ([]string, map[string]Answer, error) {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	job := p.Job
	if job == "" {
		job = DefaultPrometheusJob
	}
	sel := fmt.Sprintf(`{job=%q}`, job)
	q := func(expr string) ([]promSample, error) { return p.query(ctx, expr) }

	up, err := q("up" + sel)
	if err != nil {
		return nil, nil, err
	}
	sts := map[string]*status.Status{}
	out := map[string]Answer{}
	var agents []string
	for _, s := range up {
		inst := s.Metric["instance"]
		if _, dup := out[inst]; dup || inst == "" {
			continue
		}
		agents = append(agents, inst)
		if s.value() != 1 {
			out[inst] = Answer{Err: ErrNotScraped}
			continue
		}
		st := &status.Status{Drift: []status.Drift{}}
		sts[inst] = st
		out[inst] = Answer{Status: st}
	}
	sort.Strings(agents)

	// Each query fills in one part of every scraped agent's status.
	parts := []struct {
		expr string
		fill func(st *status.Status, s promSample)
	}{
		{"reconciler_host_info" + sel, func(st *status.Status, s promSample) { st.Host = s.Metric["host"] }},
		{"reconciler_revision_info" + sel, func(st *status.Status, s promSample) {
			st.Revision = revisionOf(st)
			st.Revision.ID, st.Revision.Ref = s.Metric["revision"], s.Metric["ref"]
		}},
		{"reconciler_revision_timestamp_seconds" + sel, func(st *status.Status, s promSample) {
			if v := s.value(); v > 0 {
				revisionOf(st).Time = time.Unix(int64(v), 0)
			}
		}},
		{"reconciler_failed_revision_info" + sel, func(st *status.Status, s promSample) {
			st.FailedRevision = &status.FailedRevision{ID: s.Metric["revision"], Reason: s.Metric["reason"]}
		}},
		{"reconciler_maintenance" + sel, func(st *status.Status, s promSample) {
			st.Maintenance = &controllers.Maintenance{Active: s.value() == 1}
		}},
		// The agent exports only drift left (never "reverted"); Summarize
		// counts the entries, which carry nothing else here.
		{"count by (instance) (reconciler_drift" + sel + ")", func(st *status.Status, s promSample) {
			st.Drift = make([]status.Drift, min(int(s.value()), 100_000))
		}},
		{"reconciler_last_pass_timestamp_seconds" + sel, func(st *status.Status, s promSample) {
			if v := s.value(); v > 0 {
				lastPassOf(st).End = time.Unix(int64(v), 0)
			}
		}},
		{"reconciler_last_pass_result" + sel + " == 1", func(st *status.Status, s promSample) {
			res := s.Metric["result"]
			lastPassOf(st).Result = res
			ok := res == names.ResultInSync || res == names.ResultConverged
			st.Conditions = append(st.Conditions,
				status.Condition{Type: names.ConditionReady, Status: ok}, status.Condition{Type: names.ConditionConverged, Status: ok})
		}},
	}
	for _, part := range parts {
		samples, err := q(part.expr)
		if err != nil {
			return nil, nil, err
		}
		for _, s := range samples {
			if st := sts[s.Metric["instance"]]; st != nil {
				part.fill(st, s)
			}
		}
	}
	return agents, out, nil
}

func revisionOf(st *status.Status) *status.RevisionStatus {
	if st.Revision == nil {
		st.Revision = &status.RevisionStatus{}
	}
	return st.Revision
}

func lastPassOf(st *status.Status) *status.PassSummary {
	if st.LastPass == nil {
		st.LastPass = &status.PassSummary{}
	}
	return st.LastPass
}

// query runs one instant query and returns its vector.
func (p Prometheus) query(ctx context.Context, expr string) ([]promSample, error) {
	u := strings.TrimRight(p.URL, "/") + "/api/v1/query?" + url.Values{"query": {expr}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("Prometheus at %s: %w", p.URL, err)
	}
	c := p.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("Prometheus at %s: %w", p.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxPrometheusAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("Prometheus at %s: %s: %w", p.URL, expr, err)
	}
	if len(b) > maxPrometheusAnswer {
		return nil, fmt.Errorf("Prometheus at %s: %s: %w: more than %d bytes", p.URL, expr, ErrPrometheusAnswer, maxPrometheusAnswer)
	}
	return parsePrometheusVector(b, resp.StatusCode)
}

// parsePrometheusVector reads an /api/v1/query answer that must be a vector.
func parsePrometheusVector(b []byte, code int) ([]promSample, error) {
	var env struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string       `json:"resultType"`
			Result     []promSample `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("%w: HTTP %d: %w", ErrPrometheusAnswer, code, err)
	}
	if env.Status != "success" {
		return nil, fmt.Errorf("%w: HTTP %d: %s: %s", ErrPrometheusAnswer, code, env.ErrorType, env.Error)
	}
	if env.Data.ResultType != "vector" {
		return nil, fmt.Errorf("%w: result type %q, want vector", ErrPrometheusAnswer, env.Data.ResultType)
	}
	return env.Data.Result, nil
}
