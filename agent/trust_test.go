package agent

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
	"reconciler.dev/reconciler/controllers/failure"
	"reconciler.dev/reconciler/desired"
	"reconciler.dev/reconciler/desired/source"
	"reconciler.dev/reconciler/desired/trust"
)

// historySource is a git source whose head and history the test decides.
type historySource struct {
	memSource
	hist source.History
	err  error
	asks int
}

func (s *historySource) String() string { return "http://git.example/repo.git" }
func (s *historySource) History(_ context.Context, req source.HistoryRequest) (source.History, error) {
	s.asks++
	if req.Base == "" {
		return source.History{Head: source.Commit{ID: req.Head}}, nil
	}
	return s.hist, s.err
}

const (
	appliedRev = "1111111111111111111111111111111111111111"
	newRev     = "2222222222222222222222222222222222222222"
)

func trustAgent(t *testing.T, src *historySource) *Agent {
	log := slog.New(slog.DiscardHandler)
	pol := &trust.Policy{Mode: trust.ModeOff}
	return &Agent{
		cfg:    Config{Source: src, Host: "h1", Trust: pol, FetchTimeout: time.Second, StateDir: t.TempDir()},
		log:    log,
		status: newStatusStore("h", src.String()), metrics: newMetrics(),
		failures: failure.New(),
		resolver: &desired.Resolver{Source: src, Host: "h1", Trust: pol, Timeout: time.Second},
	}
}

// judge has the agent fetch art with good in force, and says whether art
// came into force.
func judge(a *Agent, p *passRun, good *GoodRevision, art source.Artifact) bool {
	src := a.cfg.Source.(*historySource)
	id := art.Revision.ID
	src.commit(id, "  services: []\n")
	src.art.Revision.Message = art.Revision.Message
	a.good = good
	a.state = &State{DriftSince: map[string]time.Time{}}
	a.status.update(func(s *status.Status) { s.FailedRevision = nil })
	a.fetch(context.Background(), p)
	return a.good != nil && a.good.Revision.ID == id
}

func TestJudgeRefusesWhatDoesNotDescend(t *testing.T) {
	src := &historySource{hist: source.History{Known: true, HeadBeforeBase: true, Fetches: 2}}
	a := trustAgent(t, src)
	p := &passRun{id: "p1", base: a.log}
	good := &GoodRevision{Revision: source.Revision{ID: appliedRev}}
	art := source.Artifact{Revision: source.Revision{ID: newRev, Message: "back"}}
	if judge(a, p, good, art) {
		t.Fatal("a revision that does not descend was accepted")
	}
	st := a.Status()
	fr := st.FailedRevision
	if fr == nil || fr.ID != newRev || fr.Cause != trust.ReasonNotDescendant || fr.Commit != newRev {
		t.Fatalf("failedRevision %+v", fr)
	}
	if got := counterValue(a.metrics.refusals.WithLabelValues(trust.ReasonNotDescendant)); got != 1 {
		t.Errorf("refusals = %v", got)
	}
	if got := counterValue(a.metrics.historyFetches); got != 2 {
		t.Errorf("history fetches = %v, want the 2 the refusal cost", got)
	}
	if countEvents(st, "revision-refused") != 1 {
		t.Errorf("events %+v", st.Events)
	}

	// Descending: accepted, an event says why.
	src.hist = source.History{Known: true, Descends: true}
	if !judge(a, p, good, art) {
		t.Fatal("a descendant was refused")
	}
	if countEvents(a.Status(), "revision-trusted") != 1 {
		t.Errorf("no revision-trusted event")
	}
	// With no revision in force there is nothing to descend from.
	src.hist = source.History{}
	if !judge(a, p, nil, art) {
		t.Fatal("a first revision was refused")
	}
}

func TestJudgeFailureIsNoVerdict(t *testing.T) {
	src := &historySource{err: errors.New("git server gone")}
	a := trustAgent(t, src)
	p := &passRun{id: "p1", base: a.log}
	good := &GoodRevision{Revision: source.Revision{ID: appliedRev}}
	art := source.Artifact{Revision: source.Revision{ID: newRev}}
	for i := 0; i < 3; i++ {
		if judge(a, p, good, art) {
			t.Fatal("accepted without a verdict")
		}
	}
	st := a.Status()
	if st.FailedRevision != nil {
		t.Errorf("a failure to judge refused the revision: %+v", st.FailedRevision)
	}
	if n := countEvents(st, "trust-check-failed"); n != 1 {
		t.Errorf("%d trust-check-failed events for one failing spell, want 1", n)
	}
	if conditionStatus(st, names.ConditionTrustChecked) != "false" {
		t.Errorf("conditions %+v", st.Conditions)
	}
	src.err, src.hist = nil, source.History{Known: true, Descends: true}
	if !judge(a, p, good, art) {
		t.Fatal("refused once git answered")
	}
	if conditionStatus(a.Status(), names.ConditionTrustChecked) != "true" {
		t.Errorf("conditions %+v", a.Status().Conditions)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
